/**
 * @fileoverview Loaded BPF programs on the emulated kernel: fixups, functions and stack depths,
 * the JIT image in the module area named in kallsyms (`bpf_prog_<tag>_<name>`), helpers as
 * native entry points, running a JIT-compiled program by calling it, and freeing it all.
 */
import type { Kernel } from '../kernel/kernel.ts';
import type { ExecRegion } from '../kernel/execmem.ts';
import type { NativeFn, NativeFunction } from '../emulator/machine.ts';
import { GuestFault } from '../emulator/faults.ts';
import { GuestMemoryError } from '../emulator/memory.ts';
import type { BpfArch, JitImage } from './arch.ts';
import { doMiscFixups, type Patched } from './fixup.ts';
import { bpfProgCalcTag, bpfProgName, splitFuncs, stackDepths, type BpfFunc } from './core.ts';
import { opOf, isLdImm64, type Insn } from './isa/insn.ts';
import { MAX_BPF_STACK, MAX_CALL_FRAMES } from './isa/opcodes.ts';
import { BpfRuntimeError, bpfRun, stackRegion, type BpfRunResult, type InterpStack } from './interp/interpreter.ts';

export { BpfRuntimeError };
import { BPF_INSN_SIZE } from './isa/opcodes.ts';

export interface HelperDef {
  readonly id: number;
  readonly name: string;
  readonly fn: NativeFn;
  readonly argc?: number;
}

export interface LoadOptions {
  name?: string;
  /**
   * The value of an ld_imm64 with a pseudo source (BPF_PSEUDO_MAP_FD → the map's address,
   * BPF_PSEUDO_MAP_VALUE → a value's address, …), or a negative errno; without it such an
   * instruction is refused.
   */
  resolveLdImm64?: (insn: Insn, next: Insn, pc: number) => bigint | number;
  helpers?: readonly HelperDef[];
  /** Compile with the JIT (default). */
  jit?: boolean;
  /** The tag, when the instructions were rewritten after load (bpf_prog_calc_tag runs first). */
  tag?: string;
  /** Each function's name from func_info BTF: kallsyms `bpf_prog_<tag>_<name>` (bpf_get_prog_name). */
  funcNames?: readonly string[];
  /** BPF_PROBE_MEM: the loads (by index) the verifier found to go through typed kernel pointers. */
  probeMem?: readonly number[];
}

export interface BpfProg {
  readonly name: string;
  readonly tag: string;
  /** The instructions as loaded. */
  readonly insns: readonly Insn[];
  /** After the verifier's fixups (what `prog dump xlated` shows). */
  readonly patched: Patched;
  readonly funcs: readonly BpfFunc[];
  readonly helpers: ReadonlyMap<number, HelperDef>;
  /** ld_imm64 values resolved at load: instruction index → value. */
  readonly ldImm64: ReadonlyMap<number, bigint>;
  /** BPF_PROBE_MEM loads by index: a faulting address reads 0. */
  readonly probeMem?: ReadonlySet<number>;
  jit?: {
    region: ExecRegion;
    image: JitImage;
    /** Entry of each function: funcs[0]'s is bpf_func. */
    funcAddrs: bigint[];
    ksyms: string[];
    callxTable?: bigint;
  };
}

/** A fault in JIT-compiled code: the BPF instruction that faulted and the guest rip. */
export class BpfJitFault extends BpfRuntimeError {
  readonly rip: bigint;
  constructor(pc: number, op: string, rip: bigint, fault: GuestFault) {
    super('fault', pc, op, `${fault.message}`, fault);
    this.name = 'BpfJitFault';
    this.rip = rip;
  }
}

export type Engine = 'interp' | 'jit';

/** A program the loader refuses (-EINVAL in the kernel), naming the instruction. */
export class BpfLoadError extends Error {
  readonly errno: number;
  constructor(msg: string, errno = -22) { super(msg); this.name = 'BpfLoadError'; this.errno = errno; }
}

/** Checks every instruction is one the ISA table describes (the verifier's first pass). */
export function checkInsns(insns: readonly Insn[], pseudoOk = false): void {
  if (insns.length === 0) throw new BpfLoadError('empty program');
  for (let i = 0; i < insns.length; i++) {
    const ins = insns[i]!;
    if (!opOf(ins)) throw new BpfLoadError(`insn ${i}: unknown opcode 0x${ins.code.toString(16).padStart(2, '0')}`);
    if (ins.dst > 10 || ins.src > 10) throw new BpfLoadError(`insn ${i}: R${Math.max(ins.dst, ins.src)} is invalid`);
    if (isLdImm64(ins)) {
      if (ins.src !== 0 && !pseudoOk) throw new BpfLoadError(`insn ${i}: ld_imm64 with pseudo source ${ins.src} needs a map or BTF object, which this loader does not resolve`);
      const next = insns[i + 1];
      if (!next || next.code !== 0 || next.dst !== 0 || next.src !== 0 || next.off !== 0)
        throw new BpfLoadError(`insn ${i}: invalid bpf_ld_imm64 insn`);
      i++;
    }
  }
}

export class BpfRuntime {
  readonly kernel: Kernel;
  readonly arch: BpfArch;
  private natives = new Map<HelperDef, NativeFunction>();
  private badHelper: NativeFunction;

  constructor(kernel: Kernel, arch: BpfArch) {
    this.kernel = kernel;
    this.arch = arch;
    this.badHelper = kernel.defineNative('__bpf_callx_bad_helper', (id) => {
      throw new BpfRuntimeError('unknown-helper', -1, 'callx', `no helper with id ${BigInt.asIntN(64, id)}`);
    }, 1);
    const stack = kernel.slab.kzalloc(MAX_CALL_FRAMES * MAX_BPF_STACK);
    if (stack === undefined) throw new Error('BpfRuntime: cannot allocate the interpreter stack');
    this.interpStack = stackRegion(stack, MAX_CALL_FRAMES * MAX_BPF_STACK);
  }

  private interpStack: InterpStack;

  /**
   * Runs a program with R1..R5 = args on the chosen engine: the JIT image called as a SysV
   * function (`bpf_func(ctx)`), or the interpreter over the instructions as loaded.
   */
  run(prog: BpfProg, args: readonly bigint[], engine: Engine = 'jit'): BpfRunResult {
    if (engine === 'jit') return { r0: this.runJit(prog, ...args), insns: -1 };
    const helpers = new Map([...prog.helpers].map(([id, h]) => [id, (a: bigint, b: bigint, c: bigint, d: bigint, e: bigint) => {
      const r = h.fn(a, b, c, d, e);
      return typeof r === 'bigint' ? r : BigInt(typeof r === 'boolean' ? Number(r) : r ?? 0);
    }]));
    const r = bpfRun({ insns: prog.insns, probeMem: prog.probeMem }, args, {
      mem: this.kernel.machine.mem, stack: this.interpStack, helpers,
      resolveLdImm64: (_insn, pc) => prog.ldImm64.get(pc)!,
    });
    this.kernel.clock.instructions(r.insns); // virtual time advances with the instructions run
    return r;
  }

  private probeLoad: NativeFunction | undefined;

  /**
   * BPF_PROBE_MEM in JIT images: `u64 load(addr, size)`, the value zero-extended, or 0 when the
   * address faults (what the kernel's exception table fixup gives).
   */
  private probeLoadAddress(): bigint {
    this.probeLoad ??= this.kernel.defineNative('__bpf_probe_mem_load', (addr, size) => {
      const mem = this.kernel.machine.mem;
      try {
        switch (Number(size)) {
          case 1: return BigInt(mem.readU8(addr));
          case 2: return BigInt(mem.readU16(addr));
          case 4: return BigInt(mem.readU32(addr));
          default: return mem.readU64(addr);
        }
      } catch (e) {
        if (e instanceof GuestMemoryError) return 0n;
        throw e;
      }
    }, 2);
    return this.probeLoad.address;
  }

  /** The native entry point of a helper (one per definition, made on first use). */
  helperAddress(def: HelperDef): bigint {
    let nf = this.natives.get(def);
    if (!nf) {
      nf = this.kernel.defineNative(def.name, def.fn, def.argc ?? 5);
      this.natives.set(def, nf);
    }
    return nf.address;
  }

  load(insns: readonly Insn[], opts: LoadOptions = {}): BpfProg {
    checkInsns(insns, opts.resolveLdImm64 !== undefined);
    const ldImm64 = new Map<number, bigint>();
    for (let i = 0; i < insns.length; i++) {
      const ins = insns[i]!;
      if (!isLdImm64(ins)) continue;
      if (ins.src !== 0) {
        const v = opts.resolveLdImm64!(ins, insns[i + 1]!, i);
        if (typeof v === 'number') throw new BpfLoadError(`insn ${i}: ld_imm64 pseudo source ${ins.src} imm ${ins.imm}: error ${v}`, v);
        ldImm64.set(i, BigInt.asUintN(64, v));
      }
      i++;
    }
    const patched = doMiscFixups(insns);
    const funcs = stackDepths(patched.insns, splitFuncs(patched.insns));
    const helpers = new Map((opts.helpers ?? []).map((h) => [h.id, h]));
    const name = (opts.name ?? '').slice(0, 15); // BPF_OBJ_NAME_LEN 16
    const prog: BpfProg = {
      name, tag: opts.tag ?? bpfProgCalcTag(insns), insns, patched, funcs, helpers, ldImm64,
      ...(opts.probeMem?.length ? { probeMem: new Set(opts.probeMem) } : {}),
    };
    if (opts.jit !== false) this.jitCompile(prog, opts.funcNames);
    return prog;
  }

  private jitCompile(prog: BpfProg, funcNames?: readonly string[]): void {
    const k = this.kernel;
    let callxTable: bigint | undefined;
    const maxId = Math.max(-1, ...prog.helpers.keys());
    if (maxId >= 0) {
      callxTable = k.slab.kzalloc(8 * (maxId + 1));
      if (callxTable === undefined) throw new BpfLoadError('cannot allocate the helper table', -12);
      // One write for the whole table (each guest write scans the mappings for code to invalidate).
      const table = new DataView(new ArrayBuffer(8 * (maxId + 1)));
      for (let id = 0; id <= maxId; id++) {
        const h = prog.helpers.get(id);
        table.setBigUint64(8 * id, h ? this.helperAddress(h) : this.badHelper.address, true);
      }
      k.machine.mem.write(callxTable, new Uint8Array(table.buffer));
    }
    let region: ExecRegion | undefined;
    try {
      const image = this.arch.jitCompile({
        insns: prog.patched.insns,
        funcs: prog.funcs,
        helperAddr: (id) => { const h = prog.helpers.get(id); return h ? this.helperAddress(h) : undefined; },
        ldImm64: (_insn, pc) => prog.ldImm64.get(prog.patched.newToOrig[pc]!)!,
        ...(prog.probeMem ? { probeMem: { has: (pc: number) => prog.probeMem!.has(prog.patched.newToOrig[pc]!), load: this.probeLoadAddress() } } : {}),
        ...(callxTable !== undefined ? { callx: { table: callxTable, count: maxId + 1, bad: this.badHelper.address } } : {}),
      }, (size) => {
        // bpf_jit_binary_alloc: a header word, then the image; int3 everywhere else.
        region = k.execmem.alloc(size + 4, bpfProgName(prog.tag, prog.name));
        return region.start + 4n;
      });
      k.execmem.write(image.image, image.code);
      const funcAddrs = image.funcOffsets.map((o) => image.image + BigInt(o));
      const ksyms = funcAddrs.map((a, i) => {
        const btfName = funcNames?.length === funcAddrs.length ? funcNames[i] : undefined;
        const sym = btfName ? bpfProgName(prog.tag, btfName) : i === 0 ? bpfProgName(prog.tag, prog.name) : `${bpfProgName(prog.tag, prog.name)}_F${i}`;
        const end = i + 1 < funcAddrs.length ? funcAddrs[i + 1]! : image.image + BigInt(image.code.length);
        k.ksyms.add({ name: sym, address: a, size: Number(end - a), type: 't' });
        return sym;
      });
      prog.jit = { region: region!, image, funcAddrs, ksyms, ...(callxTable !== undefined ? { callxTable } : {}) };
    } catch (e) {
      if (region) k.execmem.free(region.start);
      if (callxTable !== undefined) k.slab.kfree(callxTable);
      throw e;
    }
  }

  /** Runs a JIT-compiled program as the kernel does: a direct call of bpf_func(ctx). */
  runJit(prog: BpfProg, ...args: bigint[]): bigint {
    if (!prog.jit) throw new Error(`program ${prog.name || prog.tag} is not JIT-compiled`);
    try {
      return this.kernel.call(prog.jit.funcAddrs[0]!, args);
    } catch (e) {
      throw this.mapFault(prog, e);
    }
  }

  /** A fault inside the image becomes the BPF instruction that faulted. */
  private mapFault(prog: BpfProg, e: unknown): unknown {
    if (!(e instanceof GuestFault) || !prog.jit) return e;
    const { image, code, addrs } = prog.jit.image;
    const off = Number(e.rip - image);
    if (off < 0 || off >= code.length) return e; // in a helper or the kernel: the guest fault as is
    let lo = 0, hi = addrs.length - 1;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (addrs[mid]! > off) hi = mid; else lo = mid + 1; }
    const insn = prog.patched.newToOrig[lo]!;
    return new BpfJitFault(insn, opOf(prog.insns[insn]!) ?? '?', e.rip, e);
  }

  free(prog: BpfProg): void {
    if (!prog.jit) return;
    for (const s of prog.jit.ksyms) this.kernel.ksyms.remove(s);
    this.kernel.execmem.free(prog.jit.region.start);
    if (prog.jit.callxTable !== undefined) this.kernel.slab.kfree(prog.jit.callxTable);
    delete prog.jit;
  }
}

