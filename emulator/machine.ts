/**
 * @fileoverview The machine: one Unicorn x86-64 CPU, host-backed memory, System V calls into
 * guest code, native calls from guest code into TypeScript, stepping, hooks, breakpoints,
 * snapshots and typed faults. It knows nothing of kernels or BPF: the layer above chooses the
 * addresses (stack, exit page, native page) and names symbols through `symbolize`.
 */
import { UcEngine, UcError, type HookHandle } from './unicorn/engine.ts';
import {
  REG_NAMES, type RegName, UC_HOOK_MEM_INVALID,
} from './unicorn/consts.ts';
import { GuestMemory, PAGE_SIZE, PROT_R, PROT_X, type Mapping } from './memory.ts';
import { guestFaultOf, GuestFault, type FaultKind, type FaultLocator } from './faults.ts';

export type { RegName };
export type Registers = Record<RegName, bigint>;

/** System V integer argument registers, in order. */
export const SYSV_ARG_REGS = ['rdi', 'rsi', 'rdx', 'rcx', 'r8', 'r9'] as const satisfies readonly RegName[];

export type ArgValue = bigint | number;
/** A TypeScript function guest code can call: SysV integer args in, rax out. */
export type NativeFn = (...args: bigint[]) => bigint | number | boolean | void;

export interface NativeFunction {
  readonly name: string;
  readonly address: bigint;
  readonly argc: number;
  fn: NativeFn;
  calls: number;
}

export interface MachineOptions {
  /** Top of the stack call() uses (16-byte aligned, inside a mapping the caller made). */
  stackTop?: bigint;
  /** A page the machine maps for its return address: `hlt`s, so a finished call stops. */
  exitPage?: bigint;
  /** A page the machine maps for native-call entry points, 16 bytes each. */
  nativePage?: bigint;
  nativePages?: number;
  /** Names an address (`func+0x12`) in fault messages and disassembly. */
  symbolize?: (addr: bigint) => string | undefined;
  /** Finds the exact faulting instruction of a memory fault (see faults.ts). */
  faultLocator?: FaultLocator;
}

export type StopReason =
  | { kind: 'exit'; rax: bigint }      // the call returned to the exit page
  | { kind: 'breakpoint'; rip: bigint }
  | { kind: 'step'; rip: bigint }
  | { kind: 'stopped'; rip: bigint };   // count/timeout/stop()

export interface Snapshot {
  readonly regs: unknown;
  readonly memory: ReadonlyMap<Mapping['region'], Uint8Array>;
  readonly layout: string;
}

const NATIVE_SLOT = 16;
const HLT = 0xf4, RET = 0xc3, INT3 = 0xcc;
const hex = (v: bigint): string => `0x${v.toString(16)}`;

export class Machine {
  readonly uc: UcEngine;
  readonly mem: GuestMemory;
  /** Named registers: `m.regs.rax`, `m.regs.rdi = 5n`. */
  readonly regs: Registers;
  symbolize: (addr: bigint) => string | undefined;
  faultLocator: FaultLocator | undefined;
  stackTop: bigint | undefined;

  readonly exitPage: bigint;
  readonly nativePage: bigint;
  private readonly nativeCap: number;
  private natives: NativeFunction[] = [];
  private nativeByAddr = new Map<bigint, NativeFunction>();
  /** Crossings from guest code into TypeScript since boot. */
  crossings = 0;

  private breakpoints = new Map<bigint, HookHandle>();
  private skipBreakAt: bigint | undefined;
  private hitBreak: bigint | undefined;
  private lastFault: { type: number; address: bigint; size: number } | undefined;
  /** True when the running step count stops before the current instruction (see onNative). */
  private countStops: () => boolean = () => false;
  private depth = 0;
  private readArgs: () => BigUint64Array;
  private writeCallRegs: (v: readonly bigint[]) => void;

  constructor(opts: MachineOptions = {}) {
    this.uc = new UcEngine();
    this.mem = new GuestMemory(this.uc);
    this.symbolize = opts.symbolize ?? (() => undefined);
    this.faultLocator = opts.faultLocator;
    this.stackTop = opts.stackTop;
    this.regs = makeRegs(this.uc);
    this.readArgs = this.uc.regReader([...SYSV_ARG_REGS, 'rsp']);
    this.writeCallRegs = this.uc.regWriter([...SYSV_ARG_REGS, 'rsp', 'rax', 'rbp']);

    this.exitPage = opts.exitPage ?? 0xffffffffff600000n;
    this.mem.map(this.exitPage, PAGE_SIZE, PROT_R | PROT_X, { name: 'exit' });
    this.mem.write(this.exitPage, new Uint8Array(PAGE_SIZE).fill(HLT));

    const pages = opts.nativePages ?? 1;
    this.nativePage = opts.nativePage ?? this.exitPage + BigInt(PAGE_SIZE);
    this.nativeCap = (pages * PAGE_SIZE) / NATIVE_SLOT;
    this.mem.map(this.nativePage, pages * PAGE_SIZE, PROT_R | PROT_X, { name: 'native' });
    // An unregistered slot traps: int3 everywhere, `ret` at the head of each registered slot.
    this.mem.write(this.nativePage, new Uint8Array(pages * PAGE_SIZE).fill(INT3));
    this.hookCode((addr) => this.onNative(addr), this.nativePage, this.nativePage + BigInt(pages * PAGE_SIZE) - 1n);

    this.uc.hookMemInvalid(UC_HOOK_MEM_INVALID, (type, address, size) => {
      this.lastFault = { type, address, size };
      return false;
    });
  }

  close(): void {
    if (this.uc.closed) return;
    this.uc.close();
    this.mem.dispose();
  }

  // --- native calls ------------------------------------------------------------------------

  /** Gives `fn` a guest address: a guest `call` there runs it with the SysV args and returns. */
  defineNative(name: string, fn: NativeFn, argc = 6): NativeFunction {
    if (this.natives.length >= this.nativeCap) throw new RangeError(`defineNative(${name}): native page full (${this.nativeCap} slots)`);
    if (argc < 0 || argc > 16) throw new RangeError(`defineNative(${name}): argc ${argc} out of range 0..16`);
    const address = this.nativePage + BigInt(this.natives.length * NATIVE_SLOT);
    const nf: NativeFunction = { name, address, argc, fn, calls: 0 };
    this.natives.push(nf);
    this.nativeByAddr.set(address, nf);
    this.mem.write(address, Uint8Array.of(RET)); // runs after the hook has set rax
    return nf;
  }

  nativeFunctions(): readonly NativeFunction[] { return this.natives; }

  private onNative(addr: bigint): void {
    const nf = this.nativeByAddr.get(addr);
    if (!nf) throw new GuestFault('invalid-insn', addr, addr, true, 'unregistered native slot');
    // The step counter's and breakpoints' hooks run after this one and may stop before the slot's
    // `ret`: then the function runs when the run resumes there, not now and again then.
    if (this.countStops() || (this.breakpoints.has(addr) && this.skipBreakAt !== addr)) return;
    this.crossings++;
    nf.calls++;
    const r = this.readArgs();
    const args: bigint[] = [];
    for (let i = 0; i < nf.argc; i++) {
      // Args 7.. are on the stack above the return address.
      args.push(i < 6 ? r[i]! : this.mem.readU64(r[6]! + BigInt(8 * (i - 5))));
    }
    const ret = nf.fn(...args);
    this.uc.regWrite('rax', typeof ret === 'bigint' ? ret : BigInt(typeof ret === 'boolean' ? Number(ret) : ret ?? 0));
  }

  // --- calls ---------------------------------------------------------------------------------

  /**
   * Sets up a System V call of `addr` (args 1-6 in registers, the rest on the stack, return
   * address = the exit page) without running it. Returns the stack pointer at entry.
   */
  prepareCall(addr: bigint, args: readonly ArgValue[], stackTop?: bigint): bigint {
    let top = stackTop ?? this.stackTop;
    if (top === undefined) throw new Error('call: no stack (set MachineOptions.stackTop)');
    top &= ~15n;
    const onStack = args.slice(6).map((a) => BigInt.asUintN(64, BigInt(a)));
    let sp = (top - BigInt(8 * onStack.length)) & ~15n; // 16-aligned before the call pushes rip
    onStack.forEach((a, i) => this.mem.writeU64(sp + BigInt(8 * i), a));
    sp -= 8n;
    this.mem.writeU64(sp, this.exitAddress());
    const regArgs = SYSV_ARG_REGS.map((_, i) => BigInt.asUintN(64, BigInt(args[i] ?? 0)));
    this.writeCallRegs([...regArgs, sp, 0n, 0n]);
    this.regs.rip = addr;
    return sp;
  }

  /** Guest runs in progress (0: no guest code is executing; natives called from guest code see > 0). */
  get callDepth(): number { return this.depth; }

  /** Each nesting depth returns to its own `hlt` so an inner finish cannot end an outer run. */
  private exitAddress(): bigint { return this.exitPage + BigInt(this.depth * 16); }

  /**
   * Calls guest code at `addr` and returns rax. Called from inside a native function it nests:
   * registers are saved, the inner call runs below the current stack, and all is restored.
   */
  call(addr: bigint, args: readonly ArgValue[] = [], opts: { timeoutUs?: number } = {}): bigint {
    if (this.depth > 0) return this.nestedCall(addr, args, opts);
    this.prepareCall(addr, args);
    const stop = this.run(opts);
    if (stop.kind !== 'exit') throw new Error(`call ${this.describe(addr)}: stopped before returning (${stop.kind} at ${hex(stop.rip)})`);
    return stop.rax;
  }

  private nestedCall(addr: bigint, args: readonly ArgValue[], opts: { timeoutUs?: number }): bigint {
    const ctx = this.uc.contextSave();
    try {
      // The kernel has no red zone, but a margin keeps the caller's frame intact regardless.
      this.prepareCall(addr, args, this.regs.rsp - 256n);
      const stop = this.run(opts);
      if (stop.kind !== 'exit') throw new Error(`nested call ${this.describe(addr)}: stopped (${stop.kind})`);
      return stop.rax;
    } finally {
      this.uc.contextRestore(ctx);
      this.uc.contextFree(ctx);
    }
  }

  /**
   * Runs from rip until the call returns to the exit page, a breakpoint, `count` instructions or
   * the timeout. Throws GuestFault on a guest fault (the machine stays usable).
   *
   * Counting uses a code hook, not uc_emu_start's count: Unicorn 2.0.1 flushes its whole
   * translation cache when the count hook comes and goes (1.7 s the first time, ~50 ms after).
   */
  run(opts: { count?: number; timeoutUs?: number } = {}): StopReason {
    const exit = this.exitAddress();
    const start = this.regs.rip;
    if (this.breakpoints.has(start)) this.skipBreakAt = start; // resuming from a breakpoint
    const count = opts.count ?? 0;
    let counter: HookHandle | undefined;
    let executed = 0;
    let counted = false;
    const outerCountStops = this.countStops;
    if (count > 0) {
      this.countStops = () => executed === count;
      counter = this.hookCode(() => {
        if (executed === count) { counted = true; this.uc.emuStop(); return; }
        executed++;
      });
    }
    this.hitBreak = undefined;
    this.lastFault = undefined;
    this.depth++;
    try {
      this.uc.emuStart(start, exit, opts.timeoutUs ?? 0, 0);
    } catch (e) {
      throw this.toFault(e);
    } finally {
      this.depth--;
      this.skipBreakAt = undefined;
      if (counter) this.removeHook(counter);
      this.countStops = outerCountStops;
    }
    const rip = this.regs.rip;
    if (this.hitBreak !== undefined) return { kind: 'breakpoint', rip };
    if (rip === exit) return { kind: 'exit', rax: this.regs.rax };
    return counted && count === 1 ? { kind: 'step', rip } : { kind: 'stopped', rip };
  }

  /** Executes one instruction at rip. */
  step(): StopReason {
    return this.run({ count: 1 });
  }

  /** Asks a running machine (from a hook or native function) to stop after this instruction. */
  stop(): void { this.uc.emuStop(); }

  private toFault(e: unknown): unknown {
    if (!(e instanceof UcError) || e.call !== 'uc_emu_start') return e;
    return guestFaultOf(e.code, {
      rip: this.regs.rip, lastFault: this.lastFault, symbolize: (a) => this.symbolize(a), faultLocator: this.faultLocator,
      reg: (n) => {
        if (!(n in this.regs)) throw new Error(`no register ${n}`);
        return this.regs[n as RegName];
      },
      readCode: (a, len) => { try { return this.mem.read(a, len); } catch { return undefined; } },
    }) ?? e;
  }

  // --- hooks and breakpoints -----------------------------------------------------------------

  /** A code hook over [begin, end] (inclusive); the handle is removed with removeHook. */
  hookCode(fn: (addr: bigint, size: number) => void, begin = 1n, end = 0n): HookHandle {
    const h = this.uc.hookCode(fn, begin, end);
    this.mem.invalidateRange(begin, end); // blocks translated before the hook do not call it
    return h;
  }

  /** A memory hook (UC_HOOK_MEM_READ/WRITE/…): makes every access of the hooked kind slower. */
  hookMem(types: number, fn: (type: number, addr: bigint, size: number, value: bigint) => void, begin = 1n, end = 0n): HookHandle {
    const h = this.uc.hookMem(types, fn, begin, end);
    this.mem.invalidateRange(); // memory hooks change how every load/store is translated
    return h;
  }

  removeHook(h: HookHandle): void {
    this.uc.hookDel(h);
    this.mem.invalidateRange(h.begin, h.end);
  }

  addBreakpoint(addr: bigint): void {
    if (this.breakpoints.has(addr)) return;
    const h = this.hookCode((a) => {
      if (this.skipBreakAt === a) { this.skipBreakAt = undefined; return; }
      this.hitBreak = a;
      this.uc.emuStop(); // stops before the instruction at `a` runs
    }, addr, addr);
    this.breakpoints.set(addr, h);
  }

  removeBreakpoint(addr: bigint): boolean {
    const h = this.breakpoints.get(addr);
    if (!h) return false;
    this.removeHook(h);
    this.breakpoints.delete(addr);
    return true;
  }

  listBreakpoints(): bigint[] { return [...this.breakpoints.keys()]; }

  // --- code writes ---------------------------------------------------------------------------

  /** Writes code and drops its stale translation (mem.write does that for executable pages). */
  writeCode(addr: bigint, bytes: Uint8Array): void {
    this.mem.write(addr, bytes);
    this.uc.removeCache(addr, addr + BigInt(bytes.length));
  }

  // --- snapshots -----------------------------------------------------------------------------

  /** Registers and the contents of every mapped region. */
  snapshot(): Snapshot {
    const memory = new Map<Mapping['region'], Uint8Array>();
    for (const m of this.mem.mappings()) if (!memory.has(m.region)) memory.set(m.region, m.region.bytes.slice());
    return { regs: this.uc.contextSave(), memory, layout: this.layoutKey() };
  }

  restore(s: Snapshot): void {
    if (s.layout !== this.layoutKey()) throw new Error('restore: the memory layout changed since the snapshot (mappings differ)');
    for (const [region, bytes] of s.memory) region.bytes.set(bytes);
    this.uc.contextRestore(s.regs);
    this.mem.invalidateRange();
  }

  dropSnapshot(s: Snapshot): void { this.uc.contextFree(s.regs); }

  private layoutKey(): string {
    return this.mem.mappings().map((m) => `${m.start}:${m.size}:${m.perms}`).join(',');
  }

  /** `sym+0x12 (0xffff…)` or just the address. */
  describe(addr: bigint): string {
    const s = this.symbolize(addr);
    return s ? `${s} (${hex(addr)})` : hex(addr);
  }
}

function makeRegs(uc: UcEngine): Registers {
  const regs = {} as Registers;
  for (const name of REG_NAMES) {
    Object.defineProperty(regs, name, {
      enumerable: true,
      get: () => uc.regRead(name),
      set: (v: bigint) => uc.regWrite(name, v),
    });
  }
  return regs;
}

export type { FaultKind };
export { GuestFault };
