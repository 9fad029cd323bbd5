/**
 * @fileoverview A CPU in user mode, running in an address space of its own.
 *
 * Unicorn 2.0.1 has no guest page tables (docs/ARCHITECTURE.md), so the hardware's user/kernel
 * separation (the U/S bit, CPL 3) cannot be had inside one engine. An address space is therefore
 * its own Unicorn instance: it holds the process's mappings and nothing else, so any access to a
 * kernel address faults as an unmapped one — what a page fault on a supervisor page is on real
 * hardware — and the kernel's engine, and every other process, are untouched by it. Pages that
 * are shared (an mmap of a BPF array, MAP_SHARED memory after fork) are the same host pages
 * mapped into both instances (GuestMemory aliases), so a store by the process is seen by the
 * kernel's engine and by TypeScript at once, with no copy.
 *
 * `syscall` is a UC_HOOK_INSN hook: Unicorn runs it instead of the SYSCALL transition and
 * continues after the instruction, in the same uc_emu_start. The kernel side (kernel/process.ts)
 * handles the call inside the hook (~1.6 µs per syscall measured) and may itself run code on the
 * kernel's engine: a nested uc_emu_start of another instance from a hook works (measured).
 */
import { UcEngine, UcError, type HookHandle } from './unicorn/engine.ts';
import {
  REG_NAMES, type RegName, UC_HOOK_MEM_INVALID,
  UC_X86_REG_XMM0, UC_X86_REG_MXCSR,
} from './unicorn/consts.ts';
import { GuestMemory } from './memory.ts';
import { guestFaultOf, type GuestFault, type FaultLocator } from './faults.ts';

/** Registers a user task has (what fork copies): general purpose, rip, flags, fs/gs bases. */
export const USER_REGS = [
  'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15',
  'rip', 'eflags', 'fs_base', 'gs_base',
] as const satisfies readonly RegName[];

/** The saved user register state of a task (struct pt_regs plus the FPU/SSE state that matters). */
export interface UserRegs {
  gpr: Record<(typeof USER_REGS)[number], bigint>;
  xmm: Uint8Array[];
  mxcsr: Uint8Array;
}

/** Why a run of user code ended. */
export type UserStop =
  | { kind: 'stopped' }                        // stop() from a syscall or a hook
  | { kind: 'fault'; fault: GuestFault }       // a memory fault or an invalid opcode
  | { kind: 'trap'; intno: number; rip: bigint } // a CPU exception or `int n` (#DE, #BP, #GP…)
  | { kind: 'halted'; rip: bigint }            // `hlt`: privileged, a #GP for a user task
  | { kind: 'timeout' };

/** The syscall registers in the x86-64 Linux convention, read in one call. */
export const SYSCALL_REGS = ['rax', 'rdi', 'rsi', 'rdx', 'r10', 'r8', 'r9', 'rip', 'eflags'] as const satisfies readonly RegName[];

export interface UserCpuOptions {
  /** Runs for each `syscall` instruction (rip is the instruction; the CPU goes on after it). */
  onSyscall: () => void;
  faultLocator?: FaultLocator;
  symbolize?: (addr: bigint) => string | undefined;
}

const HLT = 0xf4;

export class UserCpu {
  readonly uc: UcEngine;
  /** The address space: only this task's mappings. */
  readonly mem: GuestMemory;
  /** rax, rdi, rsi, rdx, r10, r8, r9, rip, eflags in one FFI call. */
  readonly readSyscallRegs: () => BigUint64Array;
  /** rax (the result), rcx and r11 (what SYSCALL leaves there: the return rip and rflags). */
  readonly writeSyscallResult: (v: readonly bigint[]) => void;
  private readAll: () => BigUint64Array;
  private writeAll: (v: readonly bigint[]) => void;
  private lastFault: { type: number; address: bigint; size: number } | undefined;
  private trap: { intno: number; rip: bigint } | undefined;
  private stopRequested = false;
  private faultLocator: FaultLocator | undefined;
  private symbolize: (addr: bigint) => string | undefined;
  private syscallHook: HookHandle;
  /** `syscall` instructions executed. */
  syscalls = 0;

  constructor(opts: UserCpuOptions) {
    this.uc = new UcEngine();
    this.mem = new GuestMemory(this.uc);
    this.faultLocator = opts.faultLocator;
    this.symbolize = opts.symbolize ?? (() => undefined);
    this.readSyscallRegs = this.uc.regReader(SYSCALL_REGS);
    this.writeSyscallResult = this.uc.regWriter(['rax', 'rcx', 'r11']);
    this.readAll = this.uc.regReader(USER_REGS);
    this.writeAll = this.uc.regWriter(USER_REGS);
    this.syscallHook = this.uc.hookSyscall(() => { this.syscalls++; opts.onSyscall(); });
    this.uc.hookMemInvalid(UC_HOOK_MEM_INVALID, (type, address, size) => {
      this.lastFault = { type, address, size };
      return false;
    });
    // CPU exceptions and `int n` come here instead of failing the run: stop and report.
    this.uc.hookIntr((intno) => {
      this.trap = { intno, rip: this.uc.regRead('rip') };
      this.uc.emuStop();
    });
  }

  get closed(): boolean { return this.uc.closed; }

  get hookCount(): number { return this.uc.hookCount; }

  reg(name: RegName): bigint { return this.uc.regRead(name); }
  setReg(name: RegName, v: bigint): void { this.uc.regWrite(name, v); }

  /** Stops the run after the current instruction (from inside a hook). */
  stop(): void {
    this.stopRequested = true;
    this.uc.emuStop();
  }

  /** Runs from rip until stop(), a fault, a trap, `hlt`, or the timeout (µs, 0: none). */
  run(timeoutUs = 0): UserStop {
    this.stopRequested = false;
    this.lastFault = undefined;
    this.trap = undefined;
    const rip = this.uc.regRead('rip');
    try {
      this.uc.emuStart(rip, 0n, timeoutUs, 0);
    } catch (e) {
      const t = this.takeTrap();
      return t ?? { kind: 'fault', fault: this.toFault(e) };
    }
    const t = this.takeTrap();
    if (t) return t;
    if (this.stopRequested) return { kind: 'stopped' };
    if (timeoutUs && this.uc.timedOut()) return { kind: 'timeout' };
    // Otherwise `hlt` ended the run (Unicorn stops there cleanly), rip after it.
    const at = this.uc.regRead('rip');
    let halted = false;
    try { halted = this.mem.readU8(at - 1n) === HLT; } catch { halted = false; }
    return { kind: 'halted', rip: halted ? at - 1n : at };
  }

  /** The trap the interrupt hook recorded during the last run (a hook's write: TS cannot see it). */
  private takeTrap(): UserStop | undefined {
    const t = this.trap as { intno: number; rip: bigint } | undefined;
    return t ? { kind: 'trap', intno: t.intno, rip: t.rip } : undefined;
  }

  private toFault(e: unknown): GuestFault {
    if (!(e instanceof UcError) || e.call !== 'uc_emu_start') throw e;
    const f = guestFaultOf(e.code, {
      rip: this.uc.regRead('rip'), lastFault: this.lastFault, symbolize: (a) => this.symbolize(a), faultLocator: this.faultLocator,
      reg: (n) => {
        if (!(REG_NAMES as string[]).includes(n)) throw new Error(`no register ${n}`);
        return this.uc.regRead(n as RegName);
      },
      readCode: (a, len) => { try { return this.mem.read(a, len); } catch { return undefined; } },
    });
    if (!f) throw e;
    return f;
  }

  /** The task's registers (fork copies them into the child's CPU). */
  saveRegs(): UserRegs {
    const v = this.readAll();
    const gpr = {} as UserRegs['gpr'];
    USER_REGS.forEach((r, i) => { gpr[r] = v[i]!; });
    const xmm: Uint8Array[] = [];
    for (let i = 0; i < 16; i++) xmm.push(this.uc.regReadBytes(UC_X86_REG_XMM0 + i, 16).slice());
    return { gpr, xmm, mxcsr: this.uc.regReadBytes(UC_X86_REG_MXCSR, 4).slice() };
  }

  loadRegs(s: UserRegs): void {
    this.writeAll(USER_REGS.map((r) => s.gpr[r]));
    s.xmm.forEach((x, i) => this.uc.regWriteBytes(UC_X86_REG_XMM0 + i, x));
    this.uc.regWriteBytes(UC_X86_REG_MXCSR, s.mxcsr);
  }

  /** Frees the engine; the caller unmaps the mappings first (their pages are not this CPU's). */
  close(): void {
    if (this.uc.closed) return;
    this.uc.hookDel(this.syscallHook);
    this.uc.close();
    this.mem.dispose();
  }
}
