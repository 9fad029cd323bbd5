/**
 * @fileoverview The BPF interpreter (kernel/bpf/core.c ___bpf_prog_run): runs a verified
 * program with R1 = ctx, R10 = the top of a MAX_BPF_STACK-byte stack in guest memory, and
 * returns R0 when the main frame exits. Guest memory is read and written through the
 * mappings' host views (no FFI call).
 *
 * prepare() compiles each instruction once into a closure (its "Step") chosen by its ISA row
 * (opOf): the handler tables of alu.ts, jmp.ts and mem.ts are merged into HANDLERS, which
 * `satisfies Record<OpName, Compile>`, so an ISA row without a handler is a type error. The run
 * loop is then `pc = ops[pc](regs, vm)`: no decoding, no table lookup.
 *
 *   insns ──prepare()──▶ ops: Step[]   (operands, K/X form, jump targets bound in closures;
 *                                       cached per insns array)
 *   bpfRun(): vm = an idle Vm; R1.. = args; R10 = top of a zeroed 512-byte frame
 *             while (pc >= 0) { budget; n++; pc = ops[pc](r, vm) }   (exit of frame 0 → -1)
 *
 * Register semantics at calls: helpers get R1-R5 and set R0, R1-R5 keep their values (as the
 * kernel's interpreter; the verifier forbids reading them). bpf-to-bpf calls give the callee its
 * own frame, stack and R10, and restore all of the caller's R1-R10 at exit (the kernel's
 * interpreter runs the callee with a fresh register file): R6-R9 are callee-saved.
 * BPF_PROBE_MEM: the loads the verifier marked (through typed kernel pointers, the program's
 * probeMem) read 0 into dst when the address faults, as the kernel's exception table fixup does.
 * Not modelled: tail calls (BPF_TAIL_CALL is not an ISA row).
 *
 * Errors: a Step throws a VmTrap (vm.ts); the loop rethrows it as a BpfRuntimeError naming the
 * instruction index and mnemonic, e.g. `insn 7 (ldxdw): read of 8 bytes at 0x10 faults: not mapped`.
 */
import { BPF_REG_AX, type OpName } from '../isa/opcodes.ts';
import { isLdImm64, opOf, type Insn } from '../isa/insn.ts';
import { Vm, VmTrap, getU64, setU64, type Compile, type Site, type Step, type TrapKind } from './vm.ts';
import { ALU_HANDLERS } from './alu.ts';
import { JMP_HANDLERS } from './jmp.ts';
import { MEM_HANDLERS } from './mem.ts';
import type { GuestMemory } from '../../emulator/memory.ts';

export type { TrapKind };

/** A verified program (verifier rewrites done); probeMem: its BPF_PROBE_MEM loads by index. */
export interface InterpProgram { readonly insns: readonly Insn[]; readonly probeMem?: ReadonlySet<number> }

/** Where frames' stacks come from: MAX_BPF_STACK bytes each, freed in LIFO order. */
export interface InterpStack {
  alloc(size: number): bigint;
  free(addr: bigint): void;
}

/** A helper or kfunc: R0 = fn(R1, …, R5), u64 in and out. */
export type BpfHelper = (r1: bigint, r2: bigint, r3: bigint, r4: bigint, r5: bigint) => bigint;

export interface InterpEnv {
  readonly mem: GuestMemory;
  readonly stack: InterpStack;
  /** `call imm` (and callx): helper id → function. */
  readonly helpers?: ReadonlyMap<number, BpfHelper>;
  /** `call` with src = BPF_PSEUDO_KFUNC_CALL: imm (BTF id) → function. */
  readonly kfuncs?: ReadonlyMap<number, BpfHelper>;
  /** The value of a pseudo LD_IMM64 (src != 0: map fd/value, BTF id, func …); `next` is its second slot. */
  readonly resolveLdImm64?: (insn: Insn, pc: number, next: Insn) => bigint;
  /** Instructions one run may execute (a guard against endless loops); default DEFAULT_MAX_INSNS. */
  readonly maxInsns?: number;
}

export const DEFAULT_MAX_INSNS = 100_000_000;

export interface BpfRunResult {
  readonly r0: bigint;
  /** Instructions executed (an LD_IMM64 counts once). */
  readonly insns: number;
}

/** A run that stopped on an error: `kind`, the instruction index `pc` and its mnemonic `op`. */
export class BpfRuntimeError extends Error {
  readonly kind: TrapKind;
  readonly pc: number;
  readonly op: string;
  constructor(kind: TrapKind, pc: number, op: string, detail: string, cause?: unknown) {
    super(`insn ${pc} (${op}): ${detail}`, cause === undefined ? undefined : { cause });
    this.name = 'BpfRuntimeError';
    this.kind = kind;
    this.pc = pc;
    this.op = op;
  }
}

/** Every ISA row's compiler. */
export const HANDLERS = { ...ALU_HANDLERS, ...JMP_HANDLERS, ...MEM_HANDLERS } satisfies Record<OpName, Compile>;

export interface PreparedProgram {
  /** One Step per instruction slot, plus one past the end (falling off it traps). */
  readonly ops: readonly Step[];
  /** Mnemonic per slot, for error messages. */
  readonly names: readonly string[];
}

const trapStep = (t: VmTrap): Step => () => { throw t; };

/**
 * Compiles a program into Steps. Nothing here throws: an instruction that cannot run (no ISA
 * row, a jump outside the program, lddw's second slot) becomes a Step that traps when reached,
 * as a verified program never reaches one.
 */
export function prepare(insns: readonly Insn[], probeMem?: ReadonlySet<number>): PreparedProgram {
  const ops: Step[] = [], names: string[] = [];
  for (let pc = 0; pc < insns.length; pc++) {
    const i = insns[pc]!;
    const op = opOf(i);
    names.push(op ?? `0x${i.code.toString(16).padStart(2, '0')}`);
    const site: Site = { pc, insns };
    try {
      if (!op) throw new VmTrap('bad-insn', `no instruction has opcode 0x${i.code.toString(16)} (off ${i.off}, imm ${i.imm})`);
      if (i.dst > BPF_REG_AX || i.src > BPF_REG_AX) throw new VmTrap('bad-insn', `register r${Math.max(i.dst, i.src)} does not exist`);
      const step = (HANDLERS[op] as Compile)(i, site);
      ops.push(probeMem?.has(pc) ? probeLoad(step, i, pc) : step);
    } catch (e) {
      if (!(e instanceof VmTrap)) throw e;
      ops.push(trapStep(e));
    }
    if (isLdImm64(i) && pc + 1 < insns.length) {
      names.push('lddw (2nd slot)');
      ops.push(trapStep(new VmTrap('bad-insn', 'jumped into the second slot of lddw')));
      pc++;
    }
  }
  names.push('end');
  ops.push(trapStep(new VmTrap('bad-jump', 'fell off the end of the program')));
  return { ops, names };
}

/** BPF_PROBE_MEM: the load, or dst = 0 and on to the next instruction when it faults. */
function probeLoad(step: Step, i: Insn, pc: number): Step {
  const d = 2 * i.dst, n = pc + 1;
  return (r, vm) => {
    try {
      return step(r, vm);
    } catch (e) {
      if (!(e instanceof VmTrap) || e.kind !== 'fault') throw e;
      r[d] = 0; r[d + 1] = 0;
      return n;
    }
  };
}

/** Run states not in use: a run takes one (a helper may start a nested run) and gives it back. */
const idle: Vm[] = [];
const MAX_IDLE = 8;

const prepared = new WeakMap<readonly Insn[], PreparedProgram>();

/** The program's Steps, compiled on first use (instructions must not change afterwards). */
export function preparedOf(prog: InterpProgram): PreparedProgram {
  let p = prepared.get(prog.insns);
  if (!p) prepared.set(prog.insns, (p = prepare(prog.insns, prog.probeMem)));
  return p;
}

/**
 * Runs `prog` with R1..R5 = args (the rest 0), to the exit of its main frame.
 * Throws BpfRuntimeError on a fault, an unknown helper, too deep calls or the budget.
 */
export function bpfRun(prog: InterpProgram, args: readonly bigint[], env: InterpEnv): BpfRunResult {
  if (args.length > 5) throw new RangeError(`bpfRun: ${args.length} arguments, at most 5 (R1-R5)`);
  const { ops, names } = preparedOf(prog);
  const vm = idle.pop() ?? new Vm(env);
  const r = vm.r;
  const max = env.maxInsns ?? DEFAULT_MAX_INSNS;
  let pc = 0, n = 0;
  try {
    vm.begin(env);
    for (let k = 0; k < args.length; k++) setU64(r, 2 * (k + 1), args[k]!);
    while (pc >= 0) {
      if (n === max) throw new VmTrap('budget', `instruction budget exhausted: ${max} executed (env.maxInsns)`);
      n++;
      pc = ops[pc]!(r, vm);
    }
    return { r0: getU64(r, 0), insns: n };
  } catch (e) {
    const op = names[pc] ?? '?';
    if (e instanceof VmTrap) throw new BpfRuntimeError(e.kind, pc, op, e.message, e.cause);
    throw e;
  } finally {
    vm.end();
    if (idle.length < MAX_IDLE) idle.push(vm);
  }
}

/** ___bpf_prog_run: R1 = ctx; returns R0. */
export function bpfInterpret(prog: InterpProgram, ctx: bigint, env: InterpEnv): bigint {
  return bpfRun(prog, [ctx], env).r0;
}

/**
 * A stack of frames carved downwards from the top of [base, base + size): each alloc() takes
 * the next `size` bytes below the previous frame; free() must release the newest frame first.
 */
export function stackRegion(base: bigint, size: number): InterpStack {
  const frames: bigint[] = [];
  let sp = base + BigInt(size);
  return {
    alloc(n: number): bigint {
      if (sp - BigInt(n) < base) throw new VmTrap('fault', `stack region 0x${base.toString(16)}+0x${size.toString(16)} exhausted`);
      sp -= BigInt(n);
      frames.push(sp);
      return sp;
    },
    free(addr: bigint): void {
      const top = frames.pop();
      if (top !== addr) throw new Error(`stack free 0x${addr.toString(16)} is not the newest frame`);
      sp = frames.length ? frames[frames.length - 1]! : base + BigInt(size);
    },
  };
}
