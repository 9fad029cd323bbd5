/**
 * @fileoverview Conditional jumps (check_cond_jmp_op): a branch whose outcome the bounds
 * decide is followed one way only; otherwise both are explored, each with what it learns — a
 * scalar's bounds refined against a constant (reg_set_min_max), a map value pointer found
 * non-NULL or NULL (mark_ptr_or_null_regs), a packet pointer proven inside the packet
 * (find_good_pkt_pointers), and copies of a scalar (same id) refined together.
 */
import {
  BPF_JMP32, BPF_CLASS, BPF_OP, BPF_SRC, BPF_X, BPF_K, BPF_JA, BPF_JEQ, BPF_JNE, BPF_JSET, BPF_JGT, BPF_JGE, BPF_JLT, BPF_JLE,
  BPF_JSGT, BPF_JSGE, BPF_JSLT, BPF_JSLE,
} from '../isa/opcodes.ts';
import type { Insn } from '../isa/insn.ts';
import {
  tnumAnd, tnumOr, tnumConst, tnumSubreg, tnumClearSubreg, tnumIsConst, tnumEqualsConst, tnumIntersect, type Tnum,
} from './tnum.ts';
import {
  RegState, RegType, setKnown, mark32Known, combine32Into64, combine64Into32, regBoundsSync, copyReg,
  regTypeMayBeNull, regTypeNotNull, regIsPktPointerAny, type RegTypeT,
} from './reg.ts';
import { allRegs, type VerifierState } from './state.ts';
import { checkRegArg, SRC_OP } from './liveness.ts';
import { markChainPrecision } from './precision.ts';
import { EFAULT, EINVAL, type VerifierEnv } from './env.ts';
import { funcStateStr } from './state.ts';

const MAX_PACKET_OFF = 0xffff;
const AT_PKT_END = -1, BEYOND_PKT_END = -2;
const isPow2 = (v: bigint): boolean => v !== 0n && (v & (v - 1n)) === 0n;

function isBranch32Taken(reg: RegState, val: number, op: number): number {
  const sub = tnumSubreg(reg.varOff);
  const sval = val | 0, uval = val >>> 0;
  switch (op) {
    case BPF_JEQ: if (tnumIsConst(sub)) return sub.value === BigInt(uval) ? 1 : 0; break;
    case BPF_JNE: if (tnumIsConst(sub)) return sub.value !== BigInt(uval) ? 1 : 0; break;
    case BPF_JSET:
      if ((~sub.mask & sub.value) & BigInt(uval)) return 1;
      if (!((sub.mask | sub.value) & BigInt(uval))) return 0;
      break;
    case BPF_JGT: if (reg.u32min > uval) return 1; if (reg.u32max <= uval) return 0; break;
    case BPF_JSGT: if (reg.s32min > sval) return 1; if (reg.s32max <= sval) return 0; break;
    case BPF_JLT: if (reg.u32max < uval) return 1; if (reg.u32min >= uval) return 0; break;
    case BPF_JSLT: if (reg.s32max < sval) return 1; if (reg.s32min >= sval) return 0; break;
    case BPF_JGE: if (reg.u32min >= uval) return 1; if (reg.u32max < uval) return 0; break;
    case BPF_JSGE: if (reg.s32min >= sval) return 1; if (reg.s32max < sval) return 0; break;
    case BPF_JLE: if (reg.u32max <= uval) return 1; if (reg.u32min > uval) return 0; break;
    case BPF_JSLE: if (reg.s32max <= sval) return 1; if (reg.s32min > sval) return 0; break;
  }
  return -1;
}

function isBranch64Taken(reg: RegState, val: bigint, op: number): number {
  const uval = BigInt.asUintN(64, val), sval = BigInt.asIntN(64, val);
  const v = reg.varOff;
  switch (op) {
    case BPF_JEQ: if (tnumIsConst(v)) return v.value === uval ? 1 : 0; break;
    case BPF_JNE: if (tnumIsConst(v)) return v.value !== uval ? 1 : 0; break;
    case BPF_JSET:
      if ((~v.mask & v.value) & uval) return 1;
      if (!((v.mask | v.value) & uval)) return 0;
      break;
    case BPF_JGT: if (reg.umin > uval) return 1; if (reg.umax <= uval) return 0; break;
    case BPF_JSGT: if (reg.smin > sval) return 1; if (reg.smax <= sval) return 0; break;
    case BPF_JLT: if (reg.umax < uval) return 1; if (reg.umin >= uval) return 0; break;
    case BPF_JSLT: if (reg.smax < sval) return 1; if (reg.smin >= sval) return 0; break;
    case BPF_JGE: if (reg.umin >= uval) return 1; if (reg.umax < uval) return 0; break;
    case BPF_JSGE: if (reg.smin >= sval) return 1; if (reg.smax < sval) return 0; break;
    case BPF_JLE: if (reg.umax <= uval) return 1; if (reg.umin > uval) return 0; break;
    case BPF_JSLE: if (reg.smax <= sval) return 1; if (reg.smin > sval) return 0; break;
  }
  return -1;
}

/** is_branch_taken: 1 taken, 0 not taken, -1 unknown. */
function isBranchTaken(reg: RegState, val: bigint, op: number, jmp32: boolean): number {
  if (reg.type !== RegType.SCALAR_VALUE) {
    if (!regTypeNotNull(reg.type)) return -1;
    if (val !== 0n) return -1;
    if (op === BPF_JEQ) return 0;
    if (op === BPF_JNE) return 1;
    return -1;
  }
  return jmp32 ? isBranch32Taken(reg, Number(BigInt.asUintN(32, val)), op) : isBranch64Taken(reg, val, op);
}

const FLIP: Record<number, number> = {
  [BPF_JEQ]: BPF_JEQ, [BPF_JNE]: BPF_JNE, [BPF_JSET]: BPF_JSET, [BPF_JGE]: BPF_JLE, [BPF_JGT]: BPF_JLT,
  [BPF_JLE]: BPF_JGE, [BPF_JLT]: BPF_JGT, [BPF_JSGE]: BPF_JSLE, [BPF_JSGT]: BPF_JSLT, [BPF_JSLE]: BPF_JSGE, [BPF_JSLT]: BPF_JSGT,
};

function isPktPtrBranchTaken(dst: RegState, src: RegState, op: number): number {
  let pkt: RegState;
  if (src.type === RegType.PTR_TO_PACKET_END) pkt = dst;
  else if (dst.type === RegType.PTR_TO_PACKET_END) { pkt = src; op = FLIP[op] ?? 0; }
  else return -1;
  if (pkt.range >= 0) return -1;
  switch (op) {
    case BPF_JLE: case BPF_JGT:
      if (pkt.range === BEYOND_PKT_END) return op === BPF_JGT ? 1 : 0;
      break;
    case BPF_JLT: case BPF_JGE:
      if (pkt.range === BEYOND_PKT_END || pkt.range === AT_PKT_END) return op === BPF_JGE ? 1 : 0;
      break;
  }
  return -1;
}

/** reg_set_min_max: what `reg op val` being true or false says of reg. */
function regSetMinMax(trueReg: RegState, falseReg: RegState, val: bigint, val32: number, op: number, jmp32: boolean): void {
  if (falseReg.type !== RegType.SCALAR_VALUE) return;
  let false32: Tnum = tnumSubreg(falseReg.varOff), false64: Tnum = falseReg.varOff;
  let true32: Tnum = tnumSubreg(trueReg.varOff), true64: Tnum = trueReg.varOff;
  const uval = BigInt.asUintN(64, val), sval = BigInt.asIntN(64, val);
  const u32v = val32 >>> 0, s32v = val32 | 0;
  switch (op) {
    case BPF_JEQ:
      if (jmp32) { mark32Known(trueReg, BigInt(u32v)); true32 = tnumSubreg(trueReg.varOff); }
      else { setKnown(trueReg, uval); true64 = trueReg.varOff; }
      break;
    case BPF_JNE:
      if (jmp32) { mark32Known(falseReg, BigInt(u32v)); false32 = tnumSubreg(falseReg.varOff); }
      else { setKnown(falseReg, uval); false64 = falseReg.varOff; }
      break;
    case BPF_JSET:
      if (jmp32) {
        false32 = tnumAnd(false32, tnumConst(BigInt(~u32v >>> 0)));
        if (isPow2(BigInt(u32v))) true32 = tnumOr(true32, tnumConst(BigInt(u32v)));
      } else {
        false64 = tnumAnd(false64, tnumConst(~uval));
        if (isPow2(uval)) true64 = tnumOr(true64, tnumConst(uval));
      }
      break;
    case BPF_JGE: case BPF_JGT:
      if (jmp32) {
        const fUmax = op === BPF_JGT ? u32v : (u32v - 1) >>> 0, tUmin = op === BPF_JGT ? (u32v + 1) >>> 0 : u32v;
        falseReg.u32max = Math.min(falseReg.u32max, fUmax);
        trueReg.u32min = Math.max(trueReg.u32min, tUmin);
      } else {
        const fUmax = op === BPF_JGT ? uval : BigInt.asUintN(64, uval - 1n), tUmin = op === BPF_JGT ? BigInt.asUintN(64, uval + 1n) : uval;
        if (fUmax < falseReg.umax) falseReg.umax = fUmax;
        if (tUmin > trueReg.umin) trueReg.umin = tUmin;
      }
      break;
    case BPF_JSGE: case BPF_JSGT:
      if (jmp32) {
        const fSmax = op === BPF_JSGT ? s32v : (s32v - 1) | 0, tSmin = op === BPF_JSGT ? (s32v + 1) | 0 : s32v;
        falseReg.s32max = Math.min(falseReg.s32max, fSmax);
        trueReg.s32min = Math.max(trueReg.s32min, tSmin);
      } else {
        const fSmax = op === BPF_JSGT ? sval : BigInt.asIntN(64, sval - 1n), tSmin = op === BPF_JSGT ? BigInt.asIntN(64, sval + 1n) : sval;
        if (fSmax < falseReg.smax) falseReg.smax = fSmax;
        if (tSmin > trueReg.smin) trueReg.smin = tSmin;
      }
      break;
    case BPF_JLE: case BPF_JLT:
      if (jmp32) {
        const fUmin = op === BPF_JLT ? u32v : (u32v + 1) >>> 0, tUmax = op === BPF_JLT ? (u32v - 1) >>> 0 : u32v;
        falseReg.u32min = Math.max(falseReg.u32min, fUmin);
        trueReg.u32max = Math.min(trueReg.u32max, tUmax);
      } else {
        const fUmin = op === BPF_JLT ? uval : BigInt.asUintN(64, uval + 1n), tUmax = op === BPF_JLT ? BigInt.asUintN(64, uval - 1n) : uval;
        if (fUmin > falseReg.umin) falseReg.umin = fUmin;
        if (tUmax < trueReg.umax) trueReg.umax = tUmax;
      }
      break;
    case BPF_JSLE: case BPF_JSLT:
      if (jmp32) {
        const fSmin = op === BPF_JSLT ? s32v : (s32v + 1) | 0, tSmax = op === BPF_JSLT ? (s32v - 1) | 0 : s32v;
        falseReg.s32min = Math.max(falseReg.s32min, fSmin);
        trueReg.s32max = Math.min(trueReg.s32max, tSmax);
      } else {
        const fSmin = op === BPF_JSLT ? sval : BigInt.asIntN(64, sval + 1n), tSmax = op === BPF_JSLT ? BigInt.asIntN(64, sval - 1n) : sval;
        if (fSmin > falseReg.smin) falseReg.smin = fSmin;
        if (tSmax < trueReg.smax) trueReg.smax = tSmax;
      }
      break;
    default: return;
  }
  if (jmp32) {
    falseReg.varOff = tnumOr(tnumClearSubreg(false64), tnumSubreg(false32));
    trueReg.varOff = tnumOr(tnumClearSubreg(true64), tnumSubreg(true32));
    combine32Into64(falseReg);
    combine32Into64(trueReg);
  } else {
    falseReg.varOff = false64;
    trueReg.varOff = true64;
    combine64Into32(falseReg);
    combine64Into32(trueReg);
  }
}

/** __reg_combine_min_max: two registers known equal share what is known of each. */
function regCombineMinMax(a: RegState, b: RegState): void {
  a.umin = b.umin = a.umin > b.umin ? a.umin : b.umin;
  a.umax = b.umax = a.umax < b.umax ? a.umax : b.umax;
  a.smin = b.smin = a.smin > b.smin ? a.smin : b.smin;
  a.smax = b.smax = a.smax < b.smax ? a.smax : b.smax;
  a.varOff = b.varOff = tnumIntersect(a.varOff, b.varOff);
  regBoundsSync(a);
  regBoundsSync(b);
}

/** mark_ptr_or_null_regs: every copy (same id) of a maybe-NULL pointer is now NULL or valid. */
function markPtrOrNullRegs(vstate: VerifierState, regno: number, isNull: boolean): void {
  const id = vstate.frame[vstate.curframe]!.regs[regno]!.id;
  for (const reg of allRegs(vstate)) {
    if (!regTypeMayBeNull(reg.type) || reg.id !== id || !reg.id) continue;
    if (reg.smin || reg.smax || !tnumEqualsConst(reg.varOff, 0n) || reg.off) continue;
    if (isNull) {
      reg.type = RegType.SCALAR_VALUE;
      reg.id = 0;
      continue;
    }
    const t = reg.type as RegTypeT;
    reg.type = t === RegType.PTR_TO_MAP_VALUE_OR_NULL ? RegType.PTR_TO_MAP_VALUE
      : t === RegType.PTR_TO_SOCK_COMMON_OR_NULL ? RegType.PTR_TO_SOCK_COMMON
      : t === RegType.PTR_TO_BTF_ID_OR_NULL ? RegType.PTR_TO_BTF_ID : RegType.PTR_TO_MEM;
    reg.id = 0;
  }
}

/** find_good_pkt_pointers: `dst` (and every pointer with its id) has `off` bytes in the packet. */
function findGoodPktPointers(vstate: VerifierState, dst: RegState, type: RegTypeT, rangeRightOpen: boolean): void {
  if (dst.off < 0 || (dst.off === 0 && rangeRightOpen)) return;
  if (dst.umax > BigInt(MAX_PACKET_OFF) || dst.umax + BigInt(dst.off) > BigInt(MAX_PACKET_OFF)) return;
  const newRange = dst.off + (rangeRightOpen ? 1 : 0);
  for (const reg of allRegs(vstate)) if (reg.type === type && reg.id === dst.id) reg.range = Math.max(reg.range, newRange);
}

/** mark_pkt_end: the pointer is at (or beyond) pkt_end on this branch. */
function markPktEnd(vstate: VerifierState, regno: number, rangeOpen: boolean): void {
  const reg = vstate.frame[vstate.curframe]!.regs[regno]!;
  if (reg.type !== RegType.PTR_TO_PACKET) return;
  reg.range = rangeOpen ? BEYOND_PKT_END : AT_PKT_END;
}

const isInitPkt = (r: RegState, t: RegTypeT): boolean => r.type === t && r.id === 0 && r.off === 0 && tnumEqualsConst(r.varOff, 0n);

/** try_match_pkt_pointers: a comparison of packet pointers gives ranges on one branch. */
function tryMatchPktPointers(insn: Insn, dst: RegState, src: RegState, thisBr: VerifierState, otherBr: VerifierState): boolean {
  if (BPF_SRC(insn.code) !== BPF_X || BPF_CLASS(insn.code) === BPF_JMP32) return false;
  const P = RegType.PTR_TO_PACKET, PE = RegType.PTR_TO_PACKET_END, PM = RegType.PTR_TO_PACKET_META;
  const dstData = (dst.type === P && src.type === PE) || (dst.type === PM && isInitPkt(src, P));
  const srcData = (dst.type === PE && src.type === P) || (isInitPkt(dst, P) && src.type === PM);
  const otherDst = (): RegState => otherBr.frame[otherBr.curframe]!.regs[insn.dst]!;
  const otherSrc = (): RegState => otherBr.frame[otherBr.curframe]!.regs[insn.src]!;
  switch (BPF_OP(insn.code)) {
    case BPF_JGT:
      if (dstData) { findGoodPktPointers(thisBr, dst, dst.type, false); markPktEnd(otherBr, insn.dst, true); }
      else if (srcData) { findGoodPktPointers(otherBr, otherSrc(), src.type, true); markPktEnd(thisBr, insn.src, false); }
      else return false;
      break;
    case BPF_JLT:
      if (dstData) { findGoodPktPointers(otherBr, otherDst(), dst.type, true); markPktEnd(thisBr, insn.dst, false); }
      else if (srcData) { findGoodPktPointers(thisBr, src, src.type, false); markPktEnd(otherBr, insn.src, true); }
      else return false;
      break;
    case BPF_JGE:
      if (dstData) { findGoodPktPointers(thisBr, dst, dst.type, true); markPktEnd(otherBr, insn.dst, false); }
      else if (srcData) { findGoodPktPointers(otherBr, otherSrc(), src.type, false); markPktEnd(thisBr, insn.src, true); }
      else return false;
      break;
    case BPF_JLE:
      if (dstData) { findGoodPktPointers(otherBr, otherDst(), dst.type, false); markPktEnd(thisBr, insn.dst, true); }
      else if (srcData) { findGoodPktPointers(thisBr, src, src.type, true); markPktEnd(otherBr, insn.src, false); }
      else return false;
      break;
    default:
      return false;
  }
  return true;
}

/** find_equal_scalars: copies of a scalar (same id) learn what it learned. */
function findEqualScalars(vstate: VerifierState, known: RegState): void {
  for (const reg of allRegs(vstate)) if (reg.type === RegType.SCALAR_VALUE && reg.id === known.id && reg !== known) copyReg(reg, known);
}

/** check_cond_jmp_op: env.insnIdx moves to the branch taken when it is known. */
export function checkCondJmpOp(env: VerifierEnv, insn: Insn): number {
  const thisBr = env.cur;
  const regs = env.regs;
  const op = BPF_OP(insn.code);
  let err: number;
  if (op === BPF_JA || op > BPF_JSLE) {
    env.verbose(`invalid BPF_JMP/JMP32 opcode ${op.toString(16)}\n`);
    return -EINVAL;
  }
  let src: RegState | undefined;
  if (BPF_SRC(insn.code) === BPF_X) {
    if (insn.imm !== 0) { env.verbose('BPF_JMP/JMP32 uses reserved fields\n'); return -EINVAL; }
    if ((err = checkRegArg(env, insn.src, SRC_OP))) return err;
    src = regs[insn.src]!;
  } else if (insn.src !== 0) {
    env.verbose('BPF_JMP/JMP32 uses reserved fields\n');
    return -EINVAL;
  }
  if ((err = checkRegArg(env, insn.dst, SRC_OP))) return err;
  const dst = regs[insn.dst]!;
  const jmp32 = BPF_CLASS(insn.code) === BPF_JMP32;
  let pred = -1;
  if (BPF_SRC(insn.code) === BPF_K) pred = isBranchTaken(dst, BigInt(insn.imm), op, jmp32);
  else if (src!.type === RegType.SCALAR_VALUE && jmp32 && tnumIsConst(tnumSubreg(src!.varOff)))
    pred = isBranchTaken(dst, tnumSubreg(src!.varOff).value, op, jmp32);
  else if (src!.type === RegType.SCALAR_VALUE && !jmp32 && tnumIsConst(src!.varOff))
    pred = isBranchTaken(dst, src!.varOff.value, op, jmp32);
  else if (regIsPktPointerAny(dst) && regIsPktPointerAny(src!) && !jmp32)
    pred = isPktPtrBranchTaken(dst, src!, op);

  if (pred >= 0) { // the outcome depends on these values: they must be precise
    if (dst.type === RegType.SCALAR_VALUE) err = markChainPrecision(env, insn.dst);
    if (src && !err && src.type === RegType.SCALAR_VALUE) err = markChainPrecision(env, insn.src);
    if (err) return err;
  }
  if (pred === 1) { env.insnIdx += insn.off; return 0; }
  if (pred === 0) return 0;

  const other = env.pushStack(env.insnIdx + insn.off + 1, env.insnIdx);
  if (!other) return -EFAULT;
  const oregs = other.frame[other.curframe]!.regs;
  if (src) {
    if (dst.type === RegType.SCALAR_VALUE && src.type === RegType.SCALAR_VALUE) {
      if (tnumIsConst(src.varOff) || (jmp32 && tnumIsConst(tnumSubreg(src.varOff))))
        regSetMinMax(oregs[insn.dst]!, dst, src.varOff.value, Number(tnumSubreg(src.varOff).value), op, jmp32);
      else if (tnumIsConst(dst.varOff) || (jmp32 && tnumIsConst(tnumSubreg(dst.varOff)))) {
        const fl = FLIP[op];
        if (fl) regSetMinMax(oregs[insn.src]!, src, dst.varOff.value, Number(tnumSubreg(dst.varOff).value), fl, jmp32);
      } else if (!jmp32 && op === BPF_JEQ) regCombineMinMax(oregs[insn.src]!, oregs[insn.dst]!);
      else if (!jmp32 && op === BPF_JNE) regCombineMinMax(src, dst);
      if (src.id && src.id === oregs[insn.src]!.id) {
        findEqualScalars(thisBr, src);
        findEqualScalars(other, oregs[insn.src]!);
      }
    }
  } else if (dst.type === RegType.SCALAR_VALUE) {
    regSetMinMax(oregs[insn.dst]!, dst, BigInt(insn.imm), insn.imm, op, jmp32);
  }
  if (dst.type === RegType.SCALAR_VALUE && dst.id && dst.id === oregs[insn.dst]!.id) {
    findEqualScalars(thisBr, dst);
    findEqualScalars(other, oregs[insn.dst]!);
  }
  if (!jmp32 && BPF_SRC(insn.code) === BPF_K && insn.imm === 0 && (op === BPF_JEQ || op === BPF_JNE) && regTypeMayBeNull(dst.type)) {
    markPtrOrNullRegs(thisBr, insn.dst, op === BPF_JNE);
    markPtrOrNullRegs(other, insn.dst, op === BPF_JEQ);
  } else if (src) {
    tryMatchPktPointers(insn, dst, src, thisBr, other);
  }
  if (env.log.level & 3) env.verbose(`${funcStateStr(env.curFunc, (id) => env.typeName(id))}\n`);
  return 0;
}

export { BPF_K };
