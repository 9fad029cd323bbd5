/**
 * @fileoverview The emulated kernel: boots the gcc-built image in a Machine (layout, section
 * permissions, kernel stack, init task), and knows its symbols and ftrace sites. Subsystems
 * (BPF, audit, …) are built on top of a booted Kernel.
 */
import { Machine, type ArgValue, type NativeFn, type NativeFunction } from '../emulator/machine.ts';
import { PROT_R, PROT_W } from '../emulator/memory.ts';
import type { FaultLocator } from '../emulator/faults.ts';
import type { ElfFile } from './elf.ts';
import { readImage, mapImage, type LoadedSegment } from './image.ts';
import { Kallsyms } from './kallsyms.ts';
import { FtraceSites } from './ftrace.ts';
import { kernelProfile, type KernelProfile } from './profile.ts';
import {
  INIT_STACK, THREAD_SIZE, KMALLOC_ARENA, KMALLOC_ARENA_SIZE, RUNTIME_EXIT_PAGE, RUNTIME_NATIVE_PAGE, RUNTIME_NATIVE_PAGES,
} from './layout.ts';
import { rootCred, AUDIT_UID_UNSET, type Task } from './task.ts';
import { Slab } from './slab.ts';
import { ExecMem } from './execmem.ts';
import { Vmalloc } from './vmalloc.ts';
import { Clock, type ClockOptions } from './clock.ts';
import { TracePipe } from './trace.ts';
import { SyscallTable } from './syscalls.ts';
import { FdTable } from './file.ts';
import { AuditSubsystem } from './audit.ts';
import { Sysctls, type SysctlValues } from './sysctl.ts';
import { capLastCap } from './cred.ts';

export interface BootOptions {
  /** Path of the kernel image (default: images/build/vmlinux). */
  image?: string;
  /** Finds exact faulting instructions (the disassembler-based one by default in index.ts). */
  faultLocator?: FaultLocator;
  /** The clock: virtual (default, reproducible) or the host's. */
  clock?: ClockOptions;
  /** The kernel generation modelled: '5.5' (default, the seed's) … '6.6' (kernel/profile.ts). */
  kernel?: string;
  /** Sysctls set at boot (`--sysctl NAME=VALUE`), e.g. kernel.unprivileged_bpf_disabled. */
  sysctl?: SysctlValues;
}

/** A name that is not a kernel symbol, or not a function. */
export class UnknownSymbolError extends Error {
  constructor(name: string, what = 'function') {
    super(`unknown kernel ${what}: ${name}`);
    this.name = 'UnknownSymbolError';
  }
}

export class Kernel {
  readonly machine: Machine;
  readonly elf: ElfFile;
  readonly ksyms = new Kallsyms();
  readonly ftrace: FtraceSites;
  /** Which kernel generation this machine models: every version-dependent behaviour reads its row. */
  readonly profile: KernelProfile;
  readonly segments: LoadedSegment[];
  /** The task in the kernel: init, or a user process during its syscall (kernel/process.ts). */
  current: Task;
  readonly slab: Slab;
  /** Module-area executable memory (JIT images, trampolines, modules). */
  readonly execmem: ExecMem;
  readonly vmalloc: Vmalloc;
  readonly clock: Clock;
  readonly trace = new TracePipe();
  readonly syscalls = new SyscallTable();
  /** The audit subsystem (off until enabled): rules, per-task contexts, the backlog, auditd's log. */
  readonly audit: AuditSubsystem = new AuditSubsystem(this);
  /** /proc/sys: the profile's sysctls, `--sysctl` values written at boot (kernel/sysctl.ts). */
  readonly sysctl: Sysctls;

  constructor(opts: BootOptions = {}) {
    this.profile = kernelProfile(opts.kernel);
    // Before the machine exists: a refused --sysctl (SysctlError) leaves nothing to close.
    this.sysctl = new Sysctls(this.profile.version);
    this.sysctl.applyBoot(opts.sysctl);
    this.elf = readImage(opts.image);
    this.machine = new Machine({
      exitPage: RUNTIME_EXIT_PAGE,
      nativePage: RUNTIME_NATIVE_PAGE,
      nativePages: RUNTIME_NATIVE_PAGES,
      stackTop: INIT_STACK + BigInt(THREAD_SIZE),
      symbolize: (a) => this.ksyms.symbolize(a),
      ...(opts.faultLocator ? { faultLocator: opts.faultLocator } : {}),
    });
    try {
      this.segments = mapImage(this.elf, this.machine.mem);
      this.machine.mem.map(INIT_STACK, THREAD_SIZE, PROT_R | PROT_W, { name: 'init stack' });
      this.slab = new Slab(this.machine.mem, KMALLOC_ARENA, KMALLOC_ARENA_SIZE);
      this.execmem = new ExecMem(this.machine.mem);
      this.vmalloc = new Vmalloc(this.machine.mem);
      this.clock = new Clock(opts.clock);
      this.ksyms.addElf(this.elf);
      this.ksyms.add({ name: '__bpfemu_exit', address: RUNTIME_EXIT_PAGE, size: 4096, type: 't' });
      const start = this.ksyms.lookup('__start_mcount_loc'), stop = this.ksyms.lookup('__stop_mcount_loc');
      if (!start || !stop) throw new Error('kernel image has no __mcount_loc table (built without -mrecord-mcount?)');
      const table = this.machine.mem.read(start.address, Number(stop.address - start.address));
      this.ftrace = FtraceSites.fromMcountLoc(table, this.ksyms, this.machine.mem);
      this.current = {
        pid: 1, tgid: 1, ppid: 0, comm: 'init', cred: rootCred(capLastCap(this.profile.version)),
        loginuid: AUDIT_UID_UNSET, sessionid: AUDIT_UID_UNSET, stackBase: INIT_STACK, files: new FdTable(),
      };
    } catch (e) {
      this.machine.close();
      throw e;
    }
  }

  /** The address of a kernel function (or any symbol with `what`). */
  addressOf(name: string, what: 'function' | 'symbol' = 'function'): bigint {
    const s = this.ksyms.lookup(name);
    if (!s || (what === 'function' && s.type.toUpperCase() !== 'T' && s.type !== 'W')) throw new UnknownSymbolError(name, what);
    return s.address;
  }

  /** A system call made by the current task: the result, or a negative errno. */
  syscall(nr: number, args: readonly bigint[]): bigint {
    return this.syscalls.call(nr, args);
  }

  /** Calls a kernel function by name or address with integer arguments; returns rax. */
  call(func: string | bigint, args: readonly ArgValue[] = []): bigint {
    const addr = typeof func === 'string' ? this.addressOf(func) : func;
    return this.machine.call(addr, args);
  }

  /** A TypeScript function guest code can call, named in kallsyms. */
  defineNative(name: string, fn: NativeFn, argc = 6): NativeFunction {
    const nf = this.machine.defineNative(name, fn, argc);
    this.ksyms.add({ name, address: nf.address, size: 16, type: 'T' });
    return nf;
  }

  symbolize(addr: bigint): string | undefined { return this.ksyms.symbolize(addr); }

  close(): void { this.machine.close(); }
}
