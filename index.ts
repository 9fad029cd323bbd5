/**
 * @fileoverview bpfemu's public API, the composition root: boot() gives a machine running the
 * emulated kernel, with the image's BTF (vmlinux BTF) and a disassembler-backed fault locator.
 */
import { Kernel, type BootOptions } from './kernel/kernel.ts';
import { Btf, BTF_KIND, BTF_INT_SIGNED } from './bpf/btf/btf.ts';
import { loadDisassembler, formatInsn, type Disassembler, type Insn } from './emulator/capstone.ts';
import { makeFaultLocator } from './emulator/faultloc.ts';
import { BpfRuntime } from './bpf/prog.ts';
import { BpfSubsystem } from './bpf/syscall/bpf.ts';
import { BtfExt } from './bpf/btf/btf_ext.ts';
import { coreResolver } from './bpf/libbpf/core_patch.ts';
import type { ObjectLoadOptions } from './bpf/libbpf/load.ts';
import type { BtfExtSections } from './bpf/libbpf/object.ts';
import { x86_64 } from './arch/x86_64/jit.ts';
import { x86_64Trampoline } from './arch/x86_64/trampoline.ts';
import { emitProgEnterExit, staticKeyInsn } from './arch/x86_64/prog_enter.ts';
import type { BpfArch } from './bpf/arch.ts';
import { NetStack } from './net/netdev.ts';
import { Processes } from './kernel/process.ts';
import { BpfMapMmap } from './bpf/syscall/mmap.ts';
import { ANON_MAP } from './bpf/syscall/objects.ts';
import { bpfAccessOk } from './bpf/syscall/uaccess.ts';

export { Kernel, UnknownSymbolError } from './kernel/kernel.ts';
export { Machine, GuestFault } from './emulator/machine.ts';
export { Btf, BTF_KIND } from './bpf/btf/btf.ts';
export { BpfRuntime, BpfRuntimeError, BpfJitFault, BpfLoadError } from './bpf/prog.ts';
export { BpfSubsystem } from './bpf/syscall/bpf.ts';
export { BpfObject } from './bpf/libbpf/load.ts';
export { NetStack } from './net/netdev.ts';

/** A call whose argument count does not match the function's BTF prototype. */
export class ArityError extends Error {
  constructor(msg: string) { super(msg); this.name = 'ArityError'; }
}

export interface StepRecord {
  address: bigint;
  symbol: string | undefined;
  insn: string;
  /** Registers whose value the instruction changed: [before, after]. */
  changed: Record<string, [bigint, bigint]>;
}

/** The registers a step reports on (general purpose, rip excluded: it always moves). */
const STEP_REGS = ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'] as const;

export interface System {
  readonly kernel: Kernel;
  /** The image's BTF, as /sys/kernel/btf/vmlinux. */
  readonly btf: Btf;
  readonly disassembler: Disassembler;
  /** The BPF runtime: load, JIT, run and free programs directly. */
  readonly bpf: BpfRuntime;
  /** The bpf() system call surface: objects with ids, fds and refcounts. */
  readonly bpfSys: BpfSubsystem;
  /** The packet path: devices, their XDP and TC ingress hooks, rx of frames (net/netdev.ts). */
  readonly net: NetStack;
  /** User processes (static ELF programs entering the kernel with `syscall`); mmap of BPF maps. */
  readonly procs: Processes;
  /** bpf_map_fops.mmap, with the kernel profile's behaviour ('v5.5' for 5.5, 'v6' from 5.7). */
  readonly mapMmap: BpfMapMmap;
  /** What BpfObject.open/load need from this kernel: its BTF, CO-RE, .BTF.ext parsing. */
  readonly objectLoadOptions: ObjectLoadOptions;
  /** Disassembles `len` bytes (default: the symbol's size) at an address or kernel symbol. */
  disasm(at: string | bigint, len?: number): Insn[];
  /**
   * Calls a kernel function with arity checked against its BTF prototype and the result read
   * as its BTF return type (sign-extended for signed types, undefined for void).
   */
  callFunc(name: string, args: readonly bigint[]): { ret: bigint | undefined; retType: string };
  /**
   * Runs a kernel function call instruction by instruction: per step the address, symbol+offset,
   * instruction text and the registers it changed. Stops at the return or after maxSteps.
   */
  stepCall(func: string | bigint, args: readonly bigint[], maxSteps?: number): { steps: StepRecord[]; ret: bigint | undefined };
  /** objdump-like text of disasm(), with symbols. */
  disasmText(at: string | bigint, len?: number): string;
  close(): void;
}

export async function boot(opts: Omit<BootOptions, 'faultLocator'> = {}): Promise<System> {
  const disassembler = await loadDisassembler();
  const kernel = new Kernel({ ...opts, faultLocator: makeFaultLocator(disassembler) });
  const btf = new Btf(kernel.elf.sectionData('.BTF'));
  const disasm = (at: string | bigint, len?: number): Insn[] => {
    let addr: bigint, size = len;
    if (typeof at === 'string') {
      addr = kernel.addressOf(at, 'symbol');
      size ??= kernel.ksyms.lookup(at)!.size;
    } else addr = at;
    if (!size) throw new Error(`disasm ${typeof at === 'string' ? at : `0x${at.toString(16)}`}: unknown length`);
    return disassembler.disasm(kernel.machine.mem.read(addr, size), addr);
  };
  const callFunc = (name: string, args: readonly bigint[]): { ret: bigint | undefined; retType: string } => {
    const addr = kernel.addressOf(name);
    const proto = btf.funcProto(name);
    if (proto && proto.params!.length !== args.length) {
      const n = proto.params!.length;
      throw new ArityError(`${name} takes ${n} argument${n === 1 ? '' : 's'} (${btf.typeName(proto.id).replace('(*)', name)}), got ${args.length}`);
    }
    const rax = kernel.call(addr, args);
    if (!proto) return { ret: rax, retType: 'u64' };
    const rt = btf.resolve(proto.sizeOrType);
    const retType = btf.typeName(proto.sizeOrType);
    if (rt.kind === 0) return { ret: undefined, retType };
    const bits = rt.kind === BTF_KIND.PTR ? 64 : rt.sizeOrType * 8;
    const signed = (rt.kind === BTF_KIND.INT && (rt.intEncoding! & BTF_INT_SIGNED) !== 0) ||
      (rt.kind === BTF_KIND.ENUM && rt.enumValues!.some((v) => v.value < 0n));
    return { ret: signed ? BigInt.asIntN(bits, rax) : BigInt.asUintN(bits, rax), retType };
  };
  const arch: BpfArch = { ...x86_64, trampoline: x86_64Trampoline, progEnterExit: emitProgEnterExit, staticKeyInsn };
  const bpf = new BpfRuntime(kernel, arch);
  const bpfSys = new BpfSubsystem(kernel, bpf, { vmlinuxBtf: btf });
  const procs = new Processes(kernel);
  const mapMmap = new BpfMapMmap(bpfSys, kernel.profile.mmap);
  procs.registerFileOps(ANON_MAP, mapMmap);
  procs.registerAccessCheck(321, bpfAccessOk); // __NR_bpf
  const objectLoadOptions: ObjectLoadOptions = { vmlinuxBtf: btf, core: coreResolver(btf), ext: parseBtfExt };
  const stepCall = (func: string | bigint, args: readonly bigint[], maxSteps = 100_000): { steps: StepRecord[]; ret: bigint | undefined } => {
    const m = kernel.machine;
    m.prepareCall(typeof func === 'string' ? kernel.addressOf(func) : func, args);
    const steps: StepRecord[] = [];
    const regs = (): bigint[] => STEP_REGS.map((r) => m.regs[r]);
    for (let n = 0; n < maxSteps; n++) {
      const rip = m.regs.rip;
      const insn = disassembler.disasm(m.mem.read(rip, 16), rip, { count: 1 })[0];
      const before = regs();
      const stop = m.step();
      const after = regs();
      const changed: Record<string, [bigint, bigint]> = {};
      STEP_REGS.forEach((r, i) => { if (before[i] !== after[i]) changed[r] = [before[i]!, after[i]!]; });
      steps.push({ address: rip, symbol: kernel.symbolize(rip), insn: insn ? `${insn.mnemonic} ${insn.opStr}`.trim() : '(bad)', changed });
      if (stop.kind === 'exit') return { steps, ret: stop.rax };
    }
    return { steps, ret: undefined };
  };
  return {
    kernel, btf, disassembler, disasm, callFunc, bpf, bpfSys, procs, mapMmap, objectLoadOptions, stepCall, net: new NetStack(kernel, bpfSys, btf),
    disasmText: (at, len) => disasm(at, len).map((i) => formatInsn(i, (a) => kernel.symbolize(a))).join('\n'),
    close: () => { procs.killAll(); kernel.close(); },
  };
}

/** .BTF.ext records by section, as the object loader takes them. */
function parseBtfExt(data: Uint8Array, btf: Btf): BtfExtSections {
  const ext = new BtfExt(data, btf);
  const bySec = <R>(info: { sections: { secName: string; records: R[] }[] }): Map<string, R[]> =>
    new Map(info.sections.map((s) => [s.secName, s.records]));
  return { funcInfo: bySec(ext.funcInfo), lineInfo: bySec(ext.lineInfo), coreRelos: bySec(ext.coreRelos) };
}
