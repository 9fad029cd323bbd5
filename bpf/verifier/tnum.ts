/**
 * @fileoverview Tristate numbers (kernel/bpf/tnum.c): a 64-bit value whose bits are each known
 * 0, known 1 or unknown. `value` holds the known-1 bits, `mask` the unknown ones; a bit set in
 * both never occurs. The verifier tracks every scalar and every pointer offset as a tnum next to
 * its min/max bounds. All values are u64 bigints.
 *
 *   value 0b0100, mask 0b0011  →  0b01xx  = {4, 5, 6, 7}
 */

export interface Tnum { readonly value: bigint; readonly mask: bigint }

export const U64_MAX = 0xffff_ffff_ffff_ffffn;
export const U32_MASK = 0xffff_ffffn;
const u64 = (v: bigint): bigint => BigInt.asUintN(64, v);

export const tnum = (value: bigint, mask: bigint): Tnum => ({ value, mask });
export const TNUM_UNKNOWN: Tnum = tnum(0n, U64_MAX);
export const tnumConst = (v: bigint): Tnum => tnum(u64(v), 0n);

/** fls64: the 1-based index of the highest set bit (0 for 0). */
export const fls64 = (v: bigint): number => (v === 0n ? 0 : v.toString(2).length);

/** The smallest tnum holding every value of [min, max]. */
export function tnumRange(min: bigint, max: bigint): Tnum {
  const bits = fls64(min ^ max);
  if (bits > 63) return TNUM_UNKNOWN;
  const delta = (1n << BigInt(bits)) - 1n;
  return tnum(min & ~delta, delta);
}

export const tnumLshift = (a: Tnum, s: number): Tnum => tnum(u64(a.value << BigInt(s)), u64(a.mask << BigInt(s)));
export const tnumRshift = (a: Tnum, s: number): Tnum => tnum(a.value >> BigInt(s), a.mask >> BigInt(s));

/** Arithmetic shift of the 32-bit subregister or the whole 64 bits. */
export function tnumArshift(a: Tnum, s: number, bits: 32 | 64): Tnum {
  if (bits === 32) {
    const sh = (v: bigint): bigint => BigInt.asUintN(32, BigInt.asIntN(32, v) >> BigInt(s));
    return tnum(sh(a.value), sh(a.mask));
  }
  return tnum(u64(BigInt.asIntN(64, a.value) >> BigInt(s)), u64(BigInt.asIntN(64, a.mask) >> BigInt(s)));
}

export function tnumAdd(a: Tnum, b: Tnum): Tnum {
  const sm = u64(a.mask + b.mask), sv = u64(a.value + b.value);
  const sigma = u64(sm + sv), chi = sigma ^ sv;
  const mu = chi | a.mask | b.mask;
  return tnum(sv & ~mu & U64_MAX, mu);
}

export function tnumSub(a: Tnum, b: Tnum): Tnum {
  const dv = u64(a.value - b.value);
  const alpha = u64(dv + a.mask), beta = u64(dv - b.mask);
  const mu = (alpha ^ beta) | a.mask | b.mask;
  return tnum(dv & ~mu & U64_MAX, mu);
}

export function tnumAnd(a: Tnum, b: Tnum): Tnum {
  const alpha = a.value | a.mask, beta = b.value | b.mask, v = a.value & b.value;
  return tnum(v, alpha & beta & ~v & U64_MAX);
}

export function tnumOr(a: Tnum, b: Tnum): Tnum {
  const v = a.value | b.value, mu = a.mask | b.mask;
  return tnum(v, mu & ~v & U64_MAX);
}

export function tnumXor(a: Tnum, b: Tnum): Tnum {
  const v = a.value ^ b.value, mu = a.mask | b.mask;
  return tnum(v & ~mu & U64_MAX, mu);
}

/** Half-multiply-add: acc + value * (each unknown bit of mask). */
function hma(acc: Tnum, value: bigint, mask: bigint): Tnum {
  while (mask) {
    if (mask & 1n) acc = tnumAdd(acc, tnum(0n, value));
    mask >>= 1n;
    value = u64(value << 1n);
  }
  return acc;
}

export function tnumMul(a: Tnum, b: Tnum): Tnum {
  const pi = u64(a.value * b.value);
  const acc = hma(tnum(pi, 0n), a.mask, b.mask | b.value);
  return hma(acc, b.mask, a.value);
}

/** Values both a and b allow (a and b are known to describe the same value). */
export function tnumIntersect(a: Tnum, b: Tnum): Tnum {
  const v = a.value | b.value, mu = a.mask & b.mask;
  return tnum(v & ~mu & U64_MAX, mu);
}

/** Keeps the low `size` bytes. */
export function tnumCast(a: Tnum, size: number): Tnum {
  const m = (1n << BigInt(size * 8)) - 1n;
  return tnum(a.value & m, a.mask & m);
}

export const tnumIsAligned = (a: Tnum, size: number): boolean => size === 0 || ((a.value | a.mask) & BigInt(size - 1)) === 0n;

/** Whether every value of b is a value of a. */
export function tnumIn(a: Tnum, b: Tnum): boolean {
  if (b.mask & ~a.mask & U64_MAX) return false;
  return a.value === (b.value & ~a.mask & U64_MAX);
}

export const tnumIsConst = (a: Tnum): boolean => a.mask === 0n;
export const tnumEqualsConst = (a: Tnum, v: bigint): boolean => a.mask === 0n && a.value === v;
export const tnumIsUnknown = (a: Tnum): boolean => a.mask === U64_MAX;
export const tnumSubreg = (a: Tnum): Tnum => tnumCast(a, 4);
export const tnumClearSubreg = (a: Tnum): Tnum => tnumLshift(tnumRshift(a, 32), 32);
export const tnumConstSubreg = (a: Tnum, v: bigint): Tnum => tnumOr(tnumClearSubreg(a), tnumConst(v & U32_MASK));
export const tnumSubregIsConst = (a: Tnum): boolean => (a.mask & U32_MASK) === 0n;
export const tnumEquals = (a: Tnum, b: Tnum): boolean => a.value === b.value && a.mask === b.mask;

/** tnum_strn: `(0x0; 0xff)`. */
export const tnumStr = (a: Tnum): string => `(0x${a.value.toString(16)}; 0x${a.mask.toString(16)})`;
