/**
 * @fileoverview What kind of value each register holds before each instruction: the small part
 * of the verifier's bpf_reg_state that the load-time rules need — which registers hold the
 * context (for convert_ctx_accesses and the tracing ctx rule), which hold scalars or pointers
 * (for btf_check_func_arg_match at bpf-to-bpf calls), and which hold a BTF-typed kernel pointer
 * (PTR_TO_BTF_ID, for btf_struct_access).
 *
 * A forward dataflow over every function of the program: R1 = ctx and R10 = fp at the entry of
 * the main function; a bpf-to-bpf call passes R1..R5 to the callee's entry, whose frame starts
 * empty; 8-byte spills to the stack keep their kind. Where paths meet, a register whose kinds
 * differ becomes UNKNOWN (or MIXED when one of them is the context, which the verifier refuses
 * to rewrite: "same insn cannot be used with different pointers"). The kernel walks each path
 * on its own instead of joining, so this is less precise, never more: an UNKNOWN register is
 * left alone by every rule.
 */
import {
  BPF_CLASS, BPF_ALU64, BPF_ALU, BPF_LD, BPF_LDX, BPF_ST, BPF_STX, BPF_JMP, BPF_JMP32, BPF_OP, BPF_SRC, BPF_X, BPF_K,
  BPF_MOV, BPF_ADD, BPF_SUB, BPF_CALL, BPF_EXIT, BPF_JA, BPF_SIZE, SIZE_BYTES, BPF_PSEUDO_CALL, BPF_MODE, BPF_ATOMIC,
  BPF_FETCH, BPF_CMPXCHG, BPF_ABS, BPF_IND, BPF_MEM, BPF_MEMSX, BPF_REG_FP, MAX_BPF_REG,
} from './isa/opcodes.ts';
import { isLdImm64, type Insn } from './isa/insn.ts';

/** Register kinds. A BTF-typed pointer is BTF_PTR_BASE + the vmlinux type id it points to. */
export const RK = {
  /** Not written on any path that reaches here. */
  UNINIT: 0,
  /** Anything: the rules leave it alone. */
  UNKNOWN: 1,
  /** A number (SCALAR_VALUE, "inv" in the verifier's log). */
  SCALAR: 2,
  /** The context pointer, unmodified (PTR_TO_CTX). */
  CTX: 3,
  /** The frame pointer R10, unmodified (PTR_TO_STACK). */
  FP: 4,
  /** Another pointer: packet, map, map value, stack + offset. */
  PTR: 5,
  /** The context pointer plus an offset. */
  CTX_MOD: 6,
  /** The context on one path, something else on another. */
  MIXED: 7,
} as const;
export const BTF_PTR_BASE = 16;

export const isBtfPtr = (k: number): boolean => k >= BTF_PTR_BASE;
export const btfPtr = (vmlinuxTypeId: number): number => BTF_PTR_BASE + vmlinuxTypeId;
export const btfPtrId = (k: number): number => k - BTF_PTR_BASE;
const isPointer = (k: number): boolean => k === RK.CTX || k === RK.FP || k === RK.PTR || k === RK.CTX_MOD || isBtfPtr(k);

/** The verifier's reg_type_str for a kind (v5.5). */
export function regTypeStr(k: number): string {
  switch (k) {
    case RK.UNINIT: return '?';
    case RK.SCALAR: return 'inv';
    case RK.CTX: case RK.CTX_MOD: return 'ctx';
    case RK.FP: return 'fp';
    default: return isBtfPtr(k) ? 'ptr_' : 'ptr';
  }
}

export interface RegState {
  readonly regs: Int32Array;
  /** Kinds of 8-byte spills, by frame offset (negative). */
  readonly stack: Map<number, number>;
}

export interface TrackOptions {
  /**
   * The kind of a value loaded through a register of kind `base` (CTX or a BTF pointer): a
   * context field, an argument of a traced function, a struct member. Default: UNKNOWN.
   */
  load?(base: number, off: number, size: number, pc: number): number;
  /** The kind of R1 at the main function's entry (default CTX). */
  entryR1?: number;
}

function join(a: number, b: number): number {
  if (a === b) return a;
  if (a === RK.UNINIT) return b;
  if (b === RK.UNINIT) return a;
  if (a === RK.CTX || b === RK.CTX || a === RK.MIXED || b === RK.MIXED) return RK.MIXED;
  return RK.UNKNOWN;
}

const clone = (s: RegState): RegState => ({ regs: s.regs.slice(), stack: new Map(s.stack) });

/** Joins `from` into `into`; true when `into` changed. */
function joinInto(into: RegState, from: RegState): boolean {
  let changed = false;
  for (let r = 0; r < MAX_BPF_REG; r++) {
    const k = join(into.regs[r]!, from.regs[r]!);
    if (k !== into.regs[r]) { into.regs[r] = k; changed = true; }
  }
  for (const [off, k] of [...into.stack]) {
    const j = join(k, from.stack.get(off) ?? RK.UNKNOWN);
    if (j !== k) { into.stack.set(off, j); changed = true; }
  }
  return changed;
}

function freshFrame(r1: number): RegState {
  const regs = new Int32Array(MAX_BPF_REG);
  regs[1] = r1;
  regs[BPF_REG_FP] = RK.FP;
  return { regs, stack: new Map() };
}

/** Clears the spill slots a store of `size` bytes at fp+off overlaps. */
function clobberStack(st: RegState, off: number, size: number): void {
  for (const o of [...st.stack.keys()]) if (o < off + size && off < o + 8) st.stack.delete(o);
}

/** The kind a scalar ALU op leaves in dst. */
function aluResult(i: Insn, st: RegState): number {
  const cls = BPF_CLASS(i.code), op = BPF_OP(i.code), src = BPF_SRC(i.code) === BPF_X ? st.regs[i.src]! : RK.SCALAR;
  const dst = st.regs[i.dst]!;
  if (op === BPF_MOV) return cls === BPF_ALU64 ? (BPF_SRC(i.code) === BPF_X && i.off === 0 ? src : RK.SCALAR) : (src === RK.SCALAR ? RK.SCALAR : RK.UNKNOWN);
  if (cls === BPF_ALU64 && (op === BPF_ADD || op === BPF_SUB)) {
    if (dst === RK.CTX || dst === RK.CTX_MOD) return src === RK.SCALAR && BPF_SRC(i.code) === BPF_K && i.imm === 0 ? dst : RK.CTX_MOD;
    if (dst === RK.FP || dst === RK.PTR) return src === RK.SCALAR ? RK.PTR : RK.UNKNOWN;
    if (dst === RK.SCALAR && op === BPF_ADD && isPointer(src) && !isBtfPtr(src)) return src === RK.CTX ? RK.CTX_MOD : RK.PTR;
  }
  return dst === RK.SCALAR && src === RK.SCALAR ? RK.SCALAR : RK.UNKNOWN;
}

/**
 * The state before each instruction (undefined where no path reaches). Function starts are the
 * main program's (0) and every bpf-to-bpf call target.
 */
export function trackRegs(insns: readonly Insn[], opts: TrackOptions = {}): (RegState | undefined)[] {
  const n = insns.length;
  const states: (RegState | undefined)[] = new Array(n);
  const work: number[] = [];
  const flow = (pc: number, st: RegState): void => {
    if (pc < 0 || pc >= n) return;
    const cur = states[pc];
    if (!cur) { states[pc] = clone(st); work.push(pc); return; }
    if (joinInto(cur, st)) work.push(pc);
  };
  flow(0, freshFrame(opts.entryR1 ?? RK.CTX));
  const loadKind = (base: number, off: number, size: number, pc: number): number =>
    (base === RK.CTX || isBtfPtr(base)) && opts.load ? opts.load(base, off, size, pc) : RK.UNKNOWN;
  while (work.length) {
    const pc = work.pop()!;
    const i = insns[pc]!;
    const st = clone(states[pc]!);
    const cls = BPF_CLASS(i.code);
    if (isLdImm64(i)) {
      st.regs[i.dst] = i.src === 0 ? RK.SCALAR : RK.PTR;
      flow(pc + 2, st);
      continue;
    }
    switch (cls) {
      case BPF_ALU: case BPF_ALU64:
        st.regs[i.dst] = aluResult(i, st);
        flow(pc + 1, st);
        break;
      case BPF_LDX: {
        const size = SIZE_BYTES[BPF_SIZE(i.code)]!;
        const base = st.regs[i.src]!;
        let k: number = RK.UNKNOWN;
        if (base === RK.FP && size === 8 && BPF_MODE(i.code) === BPF_MEM) k = st.stack.get(i.off) ?? RK.UNKNOWN;
        else if (BPF_MODE(i.code) === BPF_MEM || BPF_MODE(i.code) === BPF_MEMSX) k = loadKind(base, i.off, size, pc);
        st.regs[i.dst] = k;
        flow(pc + 1, st);
        break;
      }
      case BPF_ST: case BPF_STX: {
        const size = SIZE_BYTES[BPF_SIZE(i.code)]!;
        if (st.regs[i.dst] === RK.FP) {
          clobberStack(st, i.off, size);
          if (cls === BPF_STX && BPF_MODE(i.code) === BPF_MEM && size === 8) st.stack.set(i.off, st.regs[i.src]!);
        }
        if (cls === BPF_STX && BPF_MODE(i.code) === BPF_ATOMIC) {
          if (i.imm === BPF_CMPXCHG) st.regs[0] = RK.UNKNOWN;
          else if (i.imm & BPF_FETCH) st.regs[i.src] = RK.UNKNOWN;
        }
        flow(pc + 1, st);
        break;
      }
      case BPF_LD:
        if (BPF_MODE(i.code) === BPF_ABS || BPF_MODE(i.code) === BPF_IND) {
          for (let r = 1; r <= 5; r++) st.regs[r] = RK.UNINIT;
          st.regs[0] = RK.SCALAR;
        }
        flow(pc + 1, st);
        break;
      case BPF_JMP: case BPF_JMP32: {
        const op = BPF_OP(i.code);
        if (op === BPF_EXIT) break;
        if (op === BPF_CALL) {
          if (cls === BPF_JMP && i.src === BPF_PSEUDO_CALL) {
            const callee = freshFrame(RK.UNINIT);
            for (let r = 1; r <= 5; r++) callee.regs[r] = st.regs[r]!;
            flow(pc + 1 + i.imm, callee);
          }
          for (let r = 1; r <= 5; r++) st.regs[r] = RK.UNINIT;
          st.regs[0] = RK.UNKNOWN;
          flow(pc + 1, st);
          break;
        }
        if (op === BPF_JA) { flow(pc + 1 + (cls === BPF_JMP32 ? i.imm : i.off), st); break; }
        flow(pc + 1, st);
        flow(pc + 1 + i.off, st);
        break;
      }
      default:
        flow(pc + 1, st);
    }
  }
  return states;
}

/** The bpf-to-bpf calls of a program: call site, callee start. */
export function pseudoCalls(insns: readonly Insn[]): { pc: number; target: number }[] {
  const out: { pc: number; target: number }[] = [];
  insns.forEach((i, pc) => {
    if (i.code === (BPF_JMP | BPF_CALL) && i.src === BPF_PSEUDO_CALL) out.push({ pc, target: pc + 1 + i.imm });
  });
  return out;
}
