/**
 * @fileoverview Scalar arithmetic on abstract values (adjust_scalar_min_max_vals and the
 * scalar{,32}_min_max_* family): for each ALU operation, the tnum and the 64- and 32-bit
 * signed/unsigned bounds of `dst op src`, computed as the kernel does — exact where overflow
 * is impossible, unbounded where it might happen.
 */
import {
  BPF_ADD, BPF_SUB, BPF_MUL, BPF_AND, BPF_OR, BPF_XOR, BPF_LSH, BPF_RSH, BPF_ARSH, BPF_ALU64, BPF_CLASS, BPF_OP,
} from '../isa/opcodes.ts';
import type { Insn } from '../isa/insn.ts';
import {
  tnumAdd, tnumSub, tnumMul, tnumAnd, tnumOr, tnumXor, tnumLshift, tnumRshift, tnumArshift, tnumSubreg,
  tnumIsConst, tnumSubregIsConst,
} from './tnum.ts';
import {
  RegState, S64_MIN, S64_MAX, S32_MIN, S32_MAX, U32_MAX, U64_MAX, markKnown, mark32Known, markUnknown,
  mark32Unbounded, mark64Unbounded, updateRegBounds, updateReg32Bounds, regBoundsSync, zext32To64,
} from './reg.ts';

const u64 = (v: bigint): bigint => BigInt.asUintN(64, v);
const s64 = (v: bigint): bigint => BigInt.asIntN(64, v);
/** signed_add_overflows and friends: the s64 result of a op b differs from the exact one. */
const addOv = (a: bigint, b: bigint): boolean => s64(a + b) !== a + b;
const subOv = (a: bigint, b: bigint): boolean => s64(a - b) !== a - b;
const addOv32 = (a: number, b: number): boolean => ((a + b) | 0) !== a + b;
const subOv32 = (a: number, b: number): boolean => ((a - b) | 0) !== a - b;

function add32(dst: RegState, src: RegState): void {
  if (addOv32(dst.s32min, src.s32min) || addOv32(dst.s32max, src.s32max)) { dst.s32min = S32_MIN; dst.s32max = S32_MAX; }
  else { dst.s32min += src.s32min; dst.s32max += src.s32max; }
  if (dst.u32min + src.u32min > U32_MAX || dst.u32max + src.u32max > U32_MAX) { dst.u32min = 0; dst.u32max = U32_MAX; }
  else { dst.u32min += src.u32min; dst.u32max += src.u32max; }
}

function add64(dst: RegState, src: RegState): void {
  if (addOv(dst.smin, src.smin) || addOv(dst.smax, src.smax)) { dst.smin = S64_MIN; dst.smax = S64_MAX; }
  else { dst.smin += src.smin; dst.smax += src.smax; }
  if (dst.umin + src.umin > U64_MAX || dst.umax + src.umax > U64_MAX) { dst.umin = 0n; dst.umax = U64_MAX; }
  else { dst.umin += src.umin; dst.umax += src.umax; }
}

function sub32(dst: RegState, src: RegState): void {
  if (subOv32(dst.s32min, src.s32max) || subOv32(dst.s32max, src.s32min)) { dst.s32min = S32_MIN; dst.s32max = S32_MAX; }
  else { dst.s32min -= src.s32max; dst.s32max -= src.s32min; }
  if (dst.u32min < src.u32max) { dst.u32min = 0; dst.u32max = U32_MAX; }
  else { dst.u32min -= src.u32max; dst.u32max -= src.u32min; }
}

function sub64(dst: RegState, src: RegState): void {
  if (subOv(dst.smin, src.smax) || subOv(dst.smax, src.smin)) { dst.smin = S64_MIN; dst.smax = S64_MAX; }
  else { dst.smin -= src.smax; dst.smax -= src.smin; }
  if (dst.umin < src.umax) { dst.umin = 0n; dst.umax = U64_MAX; }
  else { dst.umin -= src.umax; dst.umax -= src.umin; }
}

function mul32(dst: RegState, src: RegState): void {
  if (src.s32min < 0 || dst.s32min < 0) { mark32Unbounded(dst); return; }
  if (src.u32max > 0xffff || dst.u32max > 0xffff) { mark32Unbounded(dst); return; }
  dst.u32min *= src.u32min;
  dst.u32max *= src.u32max;
  if (dst.u32max > S32_MAX) { dst.s32min = S32_MIN; dst.s32max = S32_MAX; }
  else { dst.s32min = dst.u32min; dst.s32max = dst.u32max; }
}

function mul64(dst: RegState, src: RegState): void {
  if (src.smin < 0n || dst.smin < 0n) { mark64Unbounded(dst); return; }
  if (src.umax > BigInt(U32_MAX) || dst.umax > BigInt(U32_MAX)) { mark64Unbounded(dst); return; }
  dst.umin *= src.umin;
  dst.umax *= src.umax;
  if (dst.umax > S64_MAX) { dst.smin = S64_MIN; dst.smax = S64_MAX; }
  else { dst.smin = dst.umin; dst.smax = dst.umax; }
}

function and32(dst: RegState, src: RegState): void {
  const v = tnumSubreg(dst.varOff);
  if (tnumSubregIsConst(src.varOff) && tnumSubregIsConst(dst.varOff)) { mark32Known(dst, v.value); return; }
  dst.u32min = Number(v.value);
  dst.u32max = Math.min(dst.u32max, src.u32max);
  if (dst.s32min < 0 || src.s32min < 0) { dst.s32min = S32_MIN; dst.s32max = S32_MAX; }
  else { dst.s32min = dst.u32min; dst.s32max = dst.u32max; }
}

function and64(dst: RegState, src: RegState): void {
  if (tnumIsConst(src.varOff) && tnumIsConst(dst.varOff)) { markKnown(dst, dst.varOff.value); return; }
  dst.umin = dst.varOff.value;
  dst.umax = dst.umax < src.umax ? dst.umax : src.umax;
  if (dst.smin < 0n || src.smin < 0n) { dst.smin = S64_MIN; dst.smax = S64_MAX; }
  else { dst.smin = dst.umin; dst.smax = dst.umax; }
  updateRegBounds(dst);
}

function or32(dst: RegState, src: RegState): void {
  const v = tnumSubreg(dst.varOff);
  if (tnumSubregIsConst(src.varOff) && tnumSubregIsConst(dst.varOff)) { mark32Known(dst, v.value); return; }
  dst.u32min = Math.max(dst.u32min, src.u32min);
  dst.u32max = Number(v.value | v.mask);
  if (dst.s32min < 0 || src.s32min < 0) { dst.s32min = S32_MIN; dst.s32max = S32_MAX; }
  else { dst.s32min = dst.u32min; dst.s32max = dst.u32max; }
}

function or64(dst: RegState, src: RegState): void {
  if (tnumIsConst(src.varOff) && tnumIsConst(dst.varOff)) { markKnown(dst, dst.varOff.value); return; }
  dst.umin = dst.umin > src.umin ? dst.umin : src.umin;
  dst.umax = dst.varOff.value | dst.varOff.mask;
  if (dst.smin < 0n || src.smin < 0n) { dst.smin = S64_MIN; dst.smax = S64_MAX; }
  else { dst.smin = dst.umin; dst.smax = dst.umax; }
  updateRegBounds(dst);
}

function xor32(dst: RegState, src: RegState): void {
  const v = tnumSubreg(dst.varOff);
  if (tnumSubregIsConst(src.varOff) && tnumSubregIsConst(dst.varOff)) { mark32Known(dst, v.value); return; }
  dst.u32min = Number(v.value);
  dst.u32max = Number(v.value | v.mask);
  if (dst.s32min >= 0 && src.s32min >= 0) { dst.s32min = dst.u32min; dst.s32max = dst.u32max; }
  else { dst.s32min = S32_MIN; dst.s32max = S32_MAX; }
}

function xor64(dst: RegState, src: RegState): void {
  if (tnumIsConst(src.varOff) && tnumIsConst(dst.varOff)) { markKnown(dst, dst.varOff.value); return; }
  dst.umin = dst.varOff.value;
  dst.umax = dst.varOff.value | dst.varOff.mask;
  if (dst.smin >= 0n && src.smin >= 0n) { dst.smin = dst.umin; dst.smax = dst.umax; }
  else { dst.smin = S64_MIN; dst.smax = S64_MAX; }
  updateRegBounds(dst);
}

function lsh32Bounds(dst: RegState, umin: number, umax: number): void {
  dst.s32min = S32_MIN; dst.s32max = S32_MAX;
  if (umax > 31 || dst.u32max > 2 ** (31 - umax)) { dst.u32min = 0; dst.u32max = U32_MAX; }
  else { dst.u32min = dst.u32min * 2 ** umin; dst.u32max = dst.u32max * 2 ** umax; }
}

function lsh32(dst: RegState, src: RegState): void {
  const sub = tnumSubreg(dst.varOff);
  lsh32Bounds(dst, src.u32min, src.u32max);
  dst.varOff = tnumSubreg(tnumLshift(sub, src.u32min));
  mark64Unbounded(dst);
  updateReg32Bounds(dst);
}

function lsh64(dst: RegState, src: RegState): void {
  const umin = Number(src.umin), umax = Number(src.umax);
  // <<32 of a non-negative 32-bit value keeps its sign (the compiler's sign-extension idiom).
  dst.smax = umin === 32 && umax === 32 && dst.s32max >= 0 ? BigInt(dst.s32max) << 32n : S64_MAX;
  dst.smin = umin === 32 && umax === 32 && dst.s32min >= 0 ? BigInt(dst.s32min) << 32n : S64_MIN;
  if (dst.umax > 1n << BigInt(63 - umax)) { dst.umin = 0n; dst.umax = U64_MAX; }
  else { dst.umin <<= BigInt(umin); dst.umax <<= BigInt(umax); }
  lsh32Bounds(dst, umin, umax);
  dst.varOff = tnumLshift(dst.varOff, umin);
  updateRegBounds(dst);
}

function rsh32(dst: RegState, src: RegState): void {
  const sub = tnumSubreg(dst.varOff);
  dst.s32min = S32_MIN; dst.s32max = S32_MAX;
  dst.varOff = tnumRshift(sub, src.u32min);
  dst.u32min = Math.floor(dst.u32min / 2 ** src.u32max);
  dst.u32max = Math.floor(dst.u32max / 2 ** src.u32min);
  mark64Unbounded(dst);
  updateReg32Bounds(dst);
}

function rsh64(dst: RegState, src: RegState): void {
  dst.smin = S64_MIN; dst.smax = S64_MAX;
  dst.varOff = tnumRshift(dst.varOff, Number(src.umin));
  dst.umin >>= src.umax;
  dst.umax >>= src.umin;
  mark32Unbounded(dst);
  updateRegBounds(dst);
}

function arsh32(dst: RegState, src: RegState): void {
  const sh = src.u32min;
  dst.s32min >>= sh;
  dst.s32max >>= sh;
  dst.varOff = tnumArshift(tnumSubreg(dst.varOff), sh, 32);
  dst.u32min = 0; dst.u32max = U32_MAX;
  mark64Unbounded(dst);
  updateReg32Bounds(dst);
}

function arsh64(dst: RegState, src: RegState): void {
  const sh = src.umin;
  dst.smin >>= sh;
  dst.smax >>= sh;
  dst.varOff = tnumArshift(dst.varOff, Number(sh), 64);
  dst.umin = 0n; dst.umax = U64_MAX;
  mark32Unbounded(dst);
  updateRegBounds(dst);
}

/**
 * adjust_scalar_min_max_vals: dst = dst op src for two scalars (src may be a known
 * immediate). Operations with an unknown operand other than add/sub/and give an unknown.
 */
export function adjustScalarMinMaxVals(insn: Insn, dst: RegState, src: RegState): void {
  const op = BPF_OP(insn.code);
  const alu32 = BPF_CLASS(insn.code) !== BPF_ALU64;
  const bits = alu32 ? 32 : 64;
  let known: boolean;
  if (alu32) {
    known = tnumSubregIsConst(src.varOff);
    if ((known && (src.s32min !== src.s32max || src.u32min !== src.u32max)) || src.s32min > src.s32max || src.u32min > src.u32max) {
      markUnknown(dst); // bounds from a dead branch: taint
      return;
    }
  } else {
    known = tnumIsConst(src.varOff);
    if ((known && (src.smin !== src.smax || src.umin !== src.umax)) || src.smin > src.smax || src.umin > src.umax) {
      markUnknown(dst);
      return;
    }
  }
  if (!known && op !== BPF_ADD && op !== BPF_SUB && op !== BPF_AND) { markUnknown(dst); return; }
  if (!alu32 && tnumIsConst(dst.varOff) && op !== BPF_LSH && op !== BPF_RSH && op !== BPF_ARSH) {
    // Both known: the exact value (what the tnum and bounds math converges to).
    const a = dst.varOff.value, b = src.varOff.value;
    const v = op === BPF_ADD ? a + b : op === BPF_SUB ? a - b : op === BPF_MUL ? a * b : op === BPF_AND ? a & b
      : op === BPF_OR ? a | b : op === BPF_XOR ? a ^ b : undefined;
    if (v === undefined) { markUnknown(dst); return; }
    markKnown(dst, u64(v));
    return;
  }
  const umaxVal = alu32 ? BigInt(src.u32max) : src.umax;
  switch (op) {
    case BPF_ADD: add32(dst, src); add64(dst, src); dst.varOff = tnumAdd(dst.varOff, src.varOff); break;
    case BPF_SUB: sub32(dst, src); sub64(dst, src); dst.varOff = tnumSub(dst.varOff, src.varOff); break;
    case BPF_MUL: dst.varOff = tnumMul(dst.varOff, src.varOff); mul32(dst, src); mul64(dst, src); break;
    case BPF_AND: dst.varOff = tnumAnd(dst.varOff, src.varOff); and32(dst, src); and64(dst, src); break;
    case BPF_OR: dst.varOff = tnumOr(dst.varOff, src.varOff); or32(dst, src); or64(dst, src); break;
    case BPF_XOR: dst.varOff = tnumXor(dst.varOff, src.varOff); xor32(dst, src); xor64(dst, src); break;
    case BPF_LSH:
      if (umaxVal >= BigInt(bits)) { markUnknown(dst); break; } // undefined shift
      if (alu32) lsh32(dst, src); else lsh64(dst, src);
      break;
    case BPF_RSH:
      if (umaxVal >= BigInt(bits)) { markUnknown(dst); break; }
      if (alu32) rsh32(dst, src); else rsh64(dst, src);
      break;
    case BPF_ARSH:
      if (umaxVal >= BigInt(bits)) { markUnknown(dst); break; }
      if (alu32) arsh32(dst, src); else arsh64(dst, src);
      break;
    default: markUnknown(dst); break;
  }
  if (alu32) zext32To64(dst);
  regBoundsSync(dst);
}

export { u64 };
