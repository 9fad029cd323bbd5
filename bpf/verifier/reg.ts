/**
 * @fileoverview The state of one register as the verifier tracks it (struct bpf_reg_state):
 * its type, a fixed offset for pointers, and for scalars and pointer offsets a tnum plus
 * signed/unsigned 64- and 32-bit bounds, kept consistent with each other by regBoundsSync()
 * (reg_bounds_sync: learn bounds from the tnum, sign from the bounds, bits from the bounds).
 * Liveness follows the kernel: a register read marks its parent (the same register in the
 * last checkpointed state) REG_LIVE_READ, unless this path wrote it first.
 *
 * 64-bit bounds are bigints (s64 as signed, u64 as unsigned); 32-bit bounds are numbers
 * (s32 in -2^31..2^31-1, u32 in 0..2^32-1).
 */
import {
  TNUM_UNKNOWN, U64_MAX, tnumConst, tnumRange, tnumIntersect, tnumOr, tnumClearSubreg, tnumSubreg, tnumCast,
  tnumConstSubreg, tnumIsConst, tnumEqualsConst, tnumIsUnknown, type Tnum,
} from './tnum.ts';

export const S64_MIN = -(1n << 63n), S64_MAX = (1n << 63n) - 1n;
export const S32_MIN = -0x8000_0000, S32_MAX = 0x7fff_ffff, U32_MAX = 0xffff_ffff;
export { U64_MAX };

/** enum bpf_reg_type (the ones bpfemu's programs can meet). */
export const RegType = {
  NOT_INIT: 0, SCALAR_VALUE: 1, PTR_TO_CTX: 2, CONST_PTR_TO_MAP: 3, PTR_TO_MAP_VALUE: 4, PTR_TO_MAP_VALUE_OR_NULL: 5,
  PTR_TO_STACK: 6, PTR_TO_PACKET_META: 7, PTR_TO_PACKET: 8, PTR_TO_PACKET_END: 9, PTR_TO_SOCK_COMMON: 10,
  PTR_TO_SOCK_COMMON_OR_NULL: 11, PTR_TO_BTF_ID: 12, PTR_TO_BTF_ID_OR_NULL: 13, PTR_TO_MEM: 14, PTR_TO_MEM_OR_NULL: 15,
} as const;
export type RegTypeT = (typeof RegType)[keyof typeof RegType];
const T = RegType;

/** reg_type_str[]: how the log names each type. */
export const REG_TYPE_STR: Readonly<Record<RegTypeT, string>> = {
  [T.NOT_INIT]: '?', [T.SCALAR_VALUE]: 'inv', [T.PTR_TO_CTX]: 'ctx', [T.CONST_PTR_TO_MAP]: 'map_ptr',
  [T.PTR_TO_MAP_VALUE]: 'map_value', [T.PTR_TO_MAP_VALUE_OR_NULL]: 'map_value_or_null', [T.PTR_TO_STACK]: 'fp',
  [T.PTR_TO_PACKET_META]: 'pkt_meta', [T.PTR_TO_PACKET]: 'pkt', [T.PTR_TO_PACKET_END]: 'pkt_end',
  [T.PTR_TO_SOCK_COMMON]: 'sock_common', [T.PTR_TO_SOCK_COMMON_OR_NULL]: 'sock_common_or_null',
  [T.PTR_TO_BTF_ID]: 'ptr_', [T.PTR_TO_BTF_ID_OR_NULL]: 'ptr_or_null_', [T.PTR_TO_MEM]: 'mem', [T.PTR_TO_MEM_OR_NULL]: 'mem_or_null',
};

// enum bpf_reg_liveness
export const REG_LIVE_NONE = 0, REG_LIVE_READ32 = 1, REG_LIVE_READ64 = 2, REG_LIVE_READ = 3, REG_LIVE_WRITTEN = 4, REG_LIVE_DONE = 8;

/** What the verifier knows of a map (struct bpf_map's fields it reads). */
export interface MapInfo {
  readonly type: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags: number;
  readonly name: string;
  /** The `struct bpf_map *` address, printed for ld_imm64 in the log. */
  readonly kaddr?: bigint;
  /** Frozen by BPF_MAP_FREEZE (with BPF_F_RDONLY_PROG: values read as constants). */
  readonly frozen?: boolean;
  /** map_direct_value_addr's read for a frozen read-only array: `size` bytes at `off` of value 0. */
  readonly readValue?: (off: number, size: number) => bigint | undefined;
}

export class RegState {
  type: RegTypeT = T.NOT_INIT;
  /** Fixed part of a pointer's offset (s32). */
  off = 0;
  /** Pointers sharing an id point to the same object (null checks, packet ranges, equal scalars). */
  id = 0;
  /** Packet pointers: bytes after the pointer known to be inside the packet (<0: at/after pkt_end). */
  range = 0;
  map: MapInfo | undefined = undefined;
  btfId = 0;
  memSize = 0;
  varOff: Tnum = TNUM_UNKNOWN;
  smin = S64_MIN; smax = S64_MAX; umin = 0n; umax = U64_MAX;
  s32min = S32_MIN; s32max = S32_MAX; u32min = 0; u32max = U32_MAX;
  /** The frame a PTR_TO_STACK points into. */
  frameno = 0;
  /** This scalar's exact range matters (precision tracking); pruning compares imprecise scalars as equal. */
  precise = false;
  /** Liveness: the same register in the parent checkpoint, and REG_LIVE_* marks. */
  parent: RegState | null = null;
  live = REG_LIVE_NONE;
}

/** Copies src's value into dst, keeping dst's parent and liveness (copy_register_state). */
export function copyReg(dst: RegState, src: RegState): void {
  dst.type = src.type; dst.off = src.off; dst.id = src.id; dst.range = src.range; dst.map = src.map;
  dst.btfId = src.btfId; dst.memSize = src.memSize; dst.varOff = src.varOff;
  dst.smin = src.smin; dst.smax = src.smax; dst.umin = src.umin; dst.umax = src.umax;
  dst.s32min = src.s32min; dst.s32max = src.s32max; dst.u32min = src.u32min; dst.u32max = src.u32max;
  dst.frameno = src.frameno; dst.precise = src.precise;
}

/** A full copy, parent and liveness included (what a state copy does). */
export function cloneReg(src: RegState): RegState {
  const r = new RegState();
  copyReg(r, src);
  r.parent = src.parent;
  r.live = src.live;
  return r;
}

// --- marking ------------------------------------------------------------------------------

const s32 = (v: bigint): number => Number(BigInt.asIntN(32, v));
const u32 = (v: bigint): number => Number(BigInt.asUintN(32, v));

/** ___mark_reg_known: the value is imm (id kept). */
export function setKnown(reg: RegState, imm: bigint): void {
  const v = BigInt.asUintN(64, imm);
  reg.varOff = tnumConst(v);
  reg.smin = reg.smax = BigInt.asIntN(64, v);
  reg.umin = reg.umax = v;
  reg.s32min = reg.s32max = s32(v);
  reg.u32min = reg.u32max = u32(v);
}

/** __mark_reg_known: clears id, off and the type-specific fields, then the value is imm. */
export function markKnown(reg: RegState, imm: bigint): void {
  reg.id = 0; reg.off = 0; reg.range = 0; reg.map = undefined; reg.btfId = 0; reg.memSize = 0;
  setKnown(reg, imm);
}

/** __mark_reg32_known: the low 32 bits are imm. */
export function mark32Known(reg: RegState, imm: bigint): void {
  reg.varOff = tnumConstSubreg(reg.varOff, imm);
  reg.s32min = reg.s32max = s32(imm);
  reg.u32min = reg.u32max = u32(imm);
}

export const markKnownZero = (reg: RegState): void => markKnown(reg, 0n);

export function markConstZero(reg: RegState): void {
  markKnown(reg, 0n);
  reg.type = T.SCALAR_VALUE;
}

export function mark64Unbounded(reg: RegState): void {
  reg.smin = S64_MIN; reg.smax = S64_MAX; reg.umin = 0n; reg.umax = U64_MAX;
}
export function mark32Unbounded(reg: RegState): void {
  reg.s32min = S32_MIN; reg.s32max = S32_MAX; reg.u32min = 0; reg.u32max = U32_MAX;
}
export function markUnbounded(reg: RegState): void { mark64Unbounded(reg); mark32Unbounded(reg); }

/** __mark_reg_unknown: a scalar about which nothing is known. */
export function markUnknown(reg: RegState): void {
  reg.type = T.SCALAR_VALUE;
  reg.id = 0; reg.off = 0; reg.range = 0; reg.map = undefined; reg.btfId = 0; reg.memSize = 0;
  reg.varOff = TNUM_UNKNOWN;
  reg.frameno = 0;
  reg.precise = false; // !bpf_capable would make it precise
  markUnbounded(reg);
}

/** __mark_reg_not_init */
export function markNotInit(reg: RegState): void {
  markUnknown(reg);
  reg.type = T.NOT_INIT;
}

// --- bounds -------------------------------------------------------------------------------

const maxB = (a: bigint, b: bigint): bigint => (a > b ? a : b);
const minB = (a: bigint, b: bigint): bigint => (a < b ? a : b);

/** __update_reg32_bounds: learn 32-bit bounds from the tnum's low half. */
export function updateReg32Bounds(reg: RegState): void {
  const v = reg.varOff.value & 0xffff_ffffn, m = reg.varOff.mask & 0xffff_ffffn;
  reg.s32min = Math.max(reg.s32min, s32(v | (m & 0x8000_0000n)));
  reg.s32max = Math.min(reg.s32max, s32(v | (m & 0x7fff_ffffn)));
  reg.u32min = Math.max(reg.u32min, Number(v));
  reg.u32max = Math.min(reg.u32max, Number(v | m));
}

/** __update_reg64_bounds */
export function updateReg64Bounds(reg: RegState): void {
  const { value, mask } = reg.varOff;
  reg.smin = maxB(reg.smin, BigInt.asIntN(64, value | (mask & (1n << 63n))));
  reg.smax = minB(reg.smax, BigInt.asIntN(64, value | (mask & S64_MAX)));
  reg.umin = maxB(reg.umin, value);
  reg.umax = minB(reg.umax, value | mask);
}

export function updateRegBounds(reg: RegState): void { updateReg32Bounds(reg); updateReg64Bounds(reg); }

/** __reg32_deduce_bounds: signed bounds from unsigned ones and back. */
function reg32DeduceBounds(reg: RegState): void {
  if (reg.s32min >= 0 || reg.s32max < 0) {
    const lo = Math.max(reg.s32min >>> 0, reg.u32min), hi = Math.min(reg.s32max >>> 0, reg.u32max);
    reg.s32min = lo | 0; reg.u32min = lo;
    reg.s32max = hi | 0; reg.u32max = hi;
    return;
  }
  if ((reg.u32max | 0) >= 0) {
    reg.s32min = reg.u32min | 0;
    const hi = Math.min(reg.s32max >>> 0, reg.u32max);
    reg.s32max = hi | 0; reg.u32max = hi;
  } else if ((reg.u32min | 0) < 0) {
    const lo = Math.max(reg.s32min >>> 0, reg.u32min);
    reg.s32min = lo | 0; reg.u32min = lo;
    reg.s32max = reg.u32max | 0;
  }
}

/** __reg64_deduce_bounds */
function reg64DeduceBounds(reg: RegState): void {
  const U = (v: bigint): bigint => BigInt.asUintN(64, v), S = (v: bigint): bigint => BigInt.asIntN(64, v);
  if (reg.smin >= 0n || reg.smax < 0n) {
    const lo = maxB(U(reg.smin), reg.umin), hi = minB(U(reg.smax), reg.umax);
    reg.smin = S(lo); reg.umin = lo;
    reg.smax = S(hi); reg.umax = hi;
    return;
  }
  if (S(reg.umax) >= 0n) {
    reg.smin = S(reg.umin);
    const hi = minB(U(reg.smax), reg.umax);
    reg.smax = S(hi); reg.umax = hi;
  } else if (S(reg.umin) < 0n) {
    const lo = maxB(U(reg.smin), reg.umin);
    reg.smin = S(lo); reg.umin = lo;
    reg.smax = S(reg.umax);
  }
}

/** __reg_bound_offset: learn known bits from the unsigned bounds. */
function regBoundOffset(reg: RegState): void {
  const v64 = tnumIntersect(reg.varOff, tnumRange(reg.umin, reg.umax));
  const v32 = tnumIntersect(tnumSubreg(reg.varOff), tnumRange(BigInt(reg.u32min), BigInt(reg.u32max)));
  reg.varOff = tnumOr(tnumClearSubreg(v64), v32);
}

/** reg_bounds_sync */
export function regBoundsSync(reg: RegState): void {
  updateRegBounds(reg);
  reg32DeduceBounds(reg);
  reg64DeduceBounds(reg);
  regBoundOffset(reg);
  updateRegBounds(reg);
}

/** __reg_assign_32_into_64: the upper 32 bits are known zero. */
function assign32Into64(reg: RegState): void {
  reg.umin = BigInt(reg.u32min);
  reg.umax = BigInt(reg.u32max);
  if (reg.s32min >= 0 && reg.s32max >= 0) {
    reg.smin = BigInt(reg.s32min);
    reg.smax = BigInt(reg.s32max);
  } else {
    reg.smin = 0n;
    reg.smax = BigInt(U32_MAX);
  }
}

/** __reg_combine_32_into_64: after a JMP32 refinement. */
export function combine32Into64(reg: RegState): void {
  if (tnumEqualsConst(tnumClearSubreg(reg.varOff), 0n)) assign32Into64(reg);
  else mark64Unbounded(reg);
  regBoundsSync(reg);
}

/** __reg_combine_64_into_32: after a 64-bit refinement. */
export function combine64Into32(reg: RegState): void {
  mark32Unbounded(reg);
  if (reg.smin >= BigInt(S32_MIN) && reg.smax <= BigInt(S32_MAX)) {
    reg.s32min = Number(reg.smin);
    reg.s32max = Number(reg.smax);
  }
  if (reg.umax <= BigInt(U32_MAX)) {
    reg.u32min = Number(reg.umin);
    reg.u32max = Number(reg.umax);
  }
  regBoundsSync(reg);
}

/** zext_32_to_64: an ALU32 result, zero-extended. */
export function zext32To64(reg: RegState): void {
  reg.varOff = tnumSubreg(reg.varOff);
  assign32Into64(reg);
}

/** coerce_reg_to_size: a b/h/w load or a narrowing, upper bits cleared. */
export function coerceRegToSize(reg: RegState, size: number): void {
  reg.varOff = tnumCast(reg.varOff, size);
  const mask = (1n << BigInt(size * 8)) - 1n;
  if ((reg.umin & ~mask) === (reg.umax & ~mask)) {
    reg.umin &= mask;
    reg.umax &= mask;
  } else {
    reg.umin = 0n;
    reg.umax = mask;
  }
  reg.smin = reg.umin;
  reg.smax = reg.umax;
  if (size >= 4) return;
  combine64Into32(reg);
}

// --- predicates ---------------------------------------------------------------------------

export const typeIsPktPointer = (t: RegTypeT): boolean => t === T.PTR_TO_PACKET || t === T.PTR_TO_PACKET_META;
export const regIsPktPointerAny = (r: RegState): boolean => typeIsPktPointer(r.type) || r.type === T.PTR_TO_PACKET_END;
export const regTypeMayBeNull = (t: RegTypeT): boolean =>
  t === T.PTR_TO_MAP_VALUE_OR_NULL || t === T.PTR_TO_SOCK_COMMON_OR_NULL || t === T.PTR_TO_BTF_ID_OR_NULL || t === T.PTR_TO_MEM_OR_NULL;
export const regTypeNotNull = (t: RegTypeT): boolean => t === T.PTR_TO_MAP_VALUE || t === T.PTR_TO_SOCK_COMMON;
export const isSpillable = (t: RegTypeT): boolean => t !== T.NOT_INIT && t !== T.SCALAR_VALUE;
export const registerIsNull = (r: RegState): boolean => r.type === T.SCALAR_VALUE && tnumEqualsConst(r.varOff, 0n);
export const registerIsConst = (r: RegState): boolean => r.type === T.SCALAR_VALUE && tnumIsConst(r.varOff);

/** Whether nothing at all is known of a scalar (__is_scalar_unbounded). */
export function isScalarUnbounded(r: RegState): boolean {
  return tnumIsUnknown(r.varOff) && r.smin === S64_MIN && r.smax === S64_MAX && r.umin === 0n && r.umax === U64_MAX &&
    r.s32min === S32_MIN && r.s32max === S32_MAX && r.u32min === 0 && r.u32max === U32_MAX;
}
export const registerIsBounded = (r: RegState): boolean => r.type === T.SCALAR_VALUE && !isScalarUnbounded(r);

/** Equality of everything but liveness (the memcmp up to `parent` in regsafe()). */
export function regEqual(a: RegState, b: RegState): boolean {
  return a.type === b.type && a.off === b.off && a.id === b.id && a.range === b.range && a.map === b.map &&
    a.btfId === b.btfId && a.memSize === b.memSize && a.varOff.value === b.varOff.value && a.varOff.mask === b.varOff.mask &&
    a.smin === b.smin && a.smax === b.smax && a.umin === b.umin && a.umax === b.umax &&
    a.s32min === b.s32min && a.s32max === b.s32max && a.u32min === b.u32min && a.u32max === b.u32max &&
    a.frameno === b.frameno;
}

/** range_within: cur's bounds are inside old's. */
export function rangeWithin(old: RegState, cur: RegState): boolean {
  return old.umin <= cur.umin && old.umax >= cur.umax && old.smin <= cur.smin && old.smax >= cur.smax &&
    old.u32min <= cur.u32min && old.u32max >= cur.u32max && old.s32min <= cur.s32min && old.s32max >= cur.s32max;
}
