/**
 * @fileoverview ALU and ALU64 instructions, as the kernel runs them after the verifier's
 * rewrites: 32-bit results zero-extend; shift counts are masked to 31/63; x/0 = 0 and x%0 = x
 * (for ALU32 that is (u32)x); sdiv INT_MIN/-1 = INT_MIN and smod INT_MIN%-1 = 0 (RFC 9669).
 *
 * Registers are int32 halves (see vm.ts): `d`/`s` index the low half of dst/src, the high half
 * follows. An Int32Array store wraps any integer-valued double, so sums and differences of halves
 * need no `| 0`. Each op has its own K and X closure literals: closures made from one shared
 * literal share V8's type feedback, and a generic `(op) => closure` would be megamorphic.
 */
import { BPF_X, type OpName } from '../isa/opcodes.ts';
import type { Insn } from '../isa/insn.ts';
import { getS64, getU64, setNum, setU64, type Compile } from './vm.ts';

const TWO32 = 0x1_0000_0000;

/** dst/src half indexes, imm sign-extended to 64 bits (kl, kh), the next pc, K or X form. */
const operands = (i: Insn, pc: number) =>
  ({ d: 2 * i.dst, s: 2 * i.src, kl: i.imm | 0, kh: i.imm >> 31, n: pc + 1, x: (i.code & BPF_X) !== 0 });

// 64-bit helpers on halves; top-level functions, so V8 inlines them into each closure.

/** dst <<= n (0..63). */
function shl64(r: Int32Array, d: number, n: number): void {
  if (n === 0) return;
  const lo = r[d], hi = r[d + 1];
  if (n < 32) { r[d + 1] = (hi << n) | (lo >>> (32 - n)); r[d] = lo << n; } else { r[d + 1] = lo << (n - 32); r[d] = 0; }
}
/** dst >>= n (0..63), logical. */
function shr64(r: Int32Array, d: number, n: number): void {
  if (n === 0) return;
  const lo = r[d], hi = r[d + 1];
  if (n < 32) { r[d] = (lo >>> n) | (hi << (32 - n)); r[d + 1] = hi >>> n; } else { r[d] = hi >>> (n - 32); r[d + 1] = 0; }
}
/** dst s>>= n (0..63). */
function sar64(r: Int32Array, d: number, n: number): void {
  if (n === 0) return;
  const lo = r[d], hi = r[d + 1];
  if (n < 32) { r[d] = (lo >>> n) | (hi << (32 - n)); r[d + 1] = hi >> n; } else { r[d] = hi >> (n - 32); r[d + 1] = hi >> 31; }
}
/** dst *= b (mod 2^64): the low product in 16-bit limbs, cross terms with Math.imul. */
function mul64(r: Int32Array, d: number, bl: number, bh: number): void {
  const al = r[d] >>> 0, ah = r[d + 1];
  const bu = bl >>> 0;
  const a0 = al & 0xffff, a1 = al >>> 16, b0 = bu & 0xffff, b1 = bu >>> 16;
  const p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  r[d] = (mid << 16) | (p00 & 0xffff);
  r[d + 1] = a1 * b1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16) + Math.imul(al, bh) + Math.imul(ah, bu);
}
const u64 = (lo: number, hi: number): bigint => (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
const s64 = (lo: number, hi: number): bigint => (BigInt(hi) << 32n) | BigInt(lo >>> 0);

/** dst /= b unsigned; /0 gives 0. Numbers when both fit 32 bits (exact), BigInt otherwise. */
function divU64(r: Int32Array, d: number, bl: number, bh: number): void {
  if (bl === 0 && bh === 0) { r[d] = 0; r[d + 1] = 0; return; }
  if (r[d + 1] === 0 && bh === 0) { r[d] = Math.floor((r[d] >>> 0) / (bl >>> 0)); return; }
  setU64(r, d, getU64(r, d) / u64(bl, bh));
}
/** dst %= b unsigned; %0 leaves dst. */
function modU64(r: Int32Array, d: number, bl: number, bh: number): void {
  if (bl === 0 && bh === 0) return;
  if (r[d + 1] === 0 && bh === 0) { r[d] = (r[d] >>> 0) % (bl >>> 0); return; }
  setU64(r, d, getU64(r, d) % u64(bl, bh));
}
/** dst s/= b, truncating; /0 gives 0; INT64_MIN/-1 wraps to INT64_MIN. */
function divS64(r: Int32Array, d: number, bl: number, bh: number): void {
  if (bl === 0 && bh === 0) { r[d] = 0; r[d + 1] = 0; return; }
  const al = r[d];
  if (r[d + 1] === al >> 31 && bh === bl >> 31) { setNum(r, d, Math.trunc(al / bl)); return; }
  setU64(r, d, getS64(r, d) / s64(bl, bh));
}
/** dst s%= b, sign of the dividend; %0 leaves dst; INT64_MIN%-1 = 0. */
function modS64(r: Int32Array, d: number, bl: number, bh: number): void {
  if (bl === 0 && bh === 0) return;
  const al = r[d];
  if (r[d + 1] === al >> 31 && bh === bl >> 31) { setNum(r, d, al % bl); return; }
  setU64(r, d, getS64(r, d) % s64(bl, bh));
}

const bswap16 = (x: number): number => ((x & 0xff) << 8) | ((x >>> 8) & 0xff);
const bswap32 = (x: number): number => ((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24);


export const ALU_HANDLERS = {
  // ALU64
  add: (i, { pc }) => {
    const { d, s, kl, kh, n, x } = operands(i, pc), ku = kl >>> 0;
    return x
      ? (r) => { const lo = (r[d] >>> 0) + (r[s] >>> 0); r[d] = lo; r[d + 1] = r[d + 1] + r[s + 1] + (lo >= TWO32 ? 1 : 0); return n; }
      : (r) => { const lo = (r[d] >>> 0) + ku; r[d] = lo; r[d + 1] = r[d + 1] + kh + (lo >= TWO32 ? 1 : 0); return n; };
  },
  sub: (i, { pc }) => {
    const { d, s, kl, kh, n, x } = operands(i, pc), ku = kl >>> 0;
    return x
      ? (r) => { const a = r[d] >>> 0, b = r[s] >>> 0; r[d] = a - b; r[d + 1] = r[d + 1] - r[s + 1] - (a < b ? 1 : 0); return n; }
      : (r) => { const a = r[d] >>> 0; r[d] = a - ku; r[d + 1] = r[d + 1] - kh - (a < ku ? 1 : 0); return n; };
  },
  mul: (i, { pc }) => {
    const { d, s, kl, kh, n, x } = operands(i, pc);
    return x ? (r) => { mul64(r, d, r[s], r[s + 1]); return n; } : (r) => { mul64(r, d, kl, kh); return n; };
  },
  div: (i, { pc }) => {
    const { d, s, kl, kh, n, x } = operands(i, pc);
    return x ? (r) => { divU64(r, d, r[s], r[s + 1]); return n; } : (r) => { divU64(r, d, kl, kh); return n; };
  },
  sdiv: (i, { pc }) => {
    const { d, s, kl, kh, n, x } = operands(i, pc);
    return x ? (r) => { divS64(r, d, r[s], r[s + 1]); return n; } : (r) => { divS64(r, d, kl, kh); return n; };
  },
  mod: (i, { pc }) => {
    const { d, s, kl, kh, n, x } = operands(i, pc);
    return x ? (r) => { modU64(r, d, r[s], r[s + 1]); return n; } : (r) => { modU64(r, d, kl, kh); return n; };
  },
  smod: (i, { pc }) => {
    const { d, s, kl, kh, n, x } = operands(i, pc);
    return x ? (r) => { modS64(r, d, r[s], r[s + 1]); return n; } : (r) => { modS64(r, d, kl, kh); return n; };
  },
  or: (i, { pc }) => {
    const { d, s, kl, kh, n, x } = operands(i, pc);
    return x ? (r) => { r[d] |= r[s]; r[d + 1] |= r[s + 1]; return n; } : (r) => { r[d] |= kl; r[d + 1] |= kh; return n; };
  },
  and: (i, { pc }) => {
    const { d, s, kl, kh, n, x } = operands(i, pc);
    return x ? (r) => { r[d] &= r[s]; r[d + 1] &= r[s + 1]; return n; } : (r) => { r[d] &= kl; r[d + 1] &= kh; return n; };
  },
  xor: (i, { pc }) => {
    const { d, s, kl, kh, n, x } = operands(i, pc);
    return x ? (r) => { r[d] ^= r[s]; r[d + 1] ^= r[s + 1]; return n; } : (r) => { r[d] ^= kl; r[d + 1] ^= kh; return n; };
  },
  lsh: (i, { pc }) => {
    const { d, s, kl, n, x } = operands(i, pc), k = kl & 63;
    return x ? (r) => { shl64(r, d, r[s] & 63); return n; } : (r) => { shl64(r, d, k); return n; };
  },
  rsh: (i, { pc }) => {
    const { d, s, kl, n, x } = operands(i, pc), k = kl & 63;
    return x ? (r) => { shr64(r, d, r[s] & 63); return n; } : (r) => { shr64(r, d, k); return n; };
  },
  arsh: (i, { pc }) => {
    const { d, s, kl, n, x } = operands(i, pc), k = kl & 63;
    return x ? (r) => { sar64(r, d, r[s] & 63); return n; } : (r) => { sar64(r, d, k); return n; };
  },
  neg: (i, { pc }) => {
    const { d, n } = operands(i, pc);
    // -x = ~x + 1: the carry reaches the high half only when the low half is 0.
    return (r) => { const lo = r[d]; r[d] = -lo; r[d + 1] = ~r[d + 1] + (lo === 0 ? 1 : 0); return n; };
  },
  mov: (i, { pc }) => {
    const { d, s, kl, kh, n, x } = operands(i, pc);
    return x ? (r) => { r[d] = r[s]; r[d + 1] = r[s + 1]; return n; } : (r) => { r[d] = kl; r[d + 1] = kh; return n; };
  },
  // movsx (X form only): the low 8/16/32 bits of src (off), sign-extended to 64.
  movsx864: (i, { pc }) => {
    const { d, s, n } = operands(i, pc);
    return (r) => { const v = (r[s] << 24) >> 24; r[d] = v; r[d + 1] = v >> 31; return n; };
  },
  movsx1664: (i, { pc }) => {
    const { d, s, n } = operands(i, pc);
    return (r) => { const v = (r[s] << 16) >> 16; r[d] = v; r[d + 1] = v >> 31; return n; };
  },
  movsx3264: (i, { pc }) => {
    const { d, s, n } = operands(i, pc);
    return (r) => { const v = r[s]; r[d] = v; r[d + 1] = v >> 31; return n; };
  },

  // ALU (32-bit, zero-extended)
  add32: (i, { pc }) => {
    const { d, s, kl, n, x } = operands(i, pc);
    return x ? (r) => { r[d] = r[d] + r[s]; r[d + 1] = 0; return n; } : (r) => { r[d] = r[d] + kl; r[d + 1] = 0; return n; };
  },
  sub32: (i, { pc }) => {
    const { d, s, kl, n, x } = operands(i, pc);
    return x ? (r) => { r[d] = r[d] - r[s]; r[d + 1] = 0; return n; } : (r) => { r[d] = r[d] - kl; r[d + 1] = 0; return n; };
  },
  mul32: (i, { pc }) => {
    const { d, s, kl, n, x } = operands(i, pc);
    return x ? (r) => { r[d] = Math.imul(r[d], r[s]); r[d + 1] = 0; return n; } : (r) => { r[d] = Math.imul(r[d], kl); r[d + 1] = 0; return n; };
  },
  div32: (i, { pc }) => {
    const { d, s, kl, n, x } = operands(i, pc), ku = kl >>> 0;
    return x
      ? (r) => { const b = r[s] >>> 0; r[d] = b === 0 ? 0 : Math.floor((r[d] >>> 0) / b); r[d + 1] = 0; return n; }
      : (r) => { r[d] = ku === 0 ? 0 : Math.floor((r[d] >>> 0) / ku); r[d + 1] = 0; return n; };
  },
  sdiv32: (i, { pc }) => {
    const { d, s, kl, n, x } = operands(i, pc);
    // INT_MIN / -1 = 2^31, which the int32 store wraps to INT_MIN.
    return x
      ? (r) => { const b = r[s]; r[d] = b === 0 ? 0 : Math.trunc(r[d] / b); r[d + 1] = 0; return n; }
      : (r) => { r[d] = kl === 0 ? 0 : Math.trunc(r[d] / kl); r[d + 1] = 0; return n; };
  },
  mod32: (i, { pc }) => {
    const { d, s, kl, n, x } = operands(i, pc), ku = kl >>> 0;
    return x
      ? (r) => { const b = r[s] >>> 0; if (b !== 0) r[d] = (r[d] >>> 0) % b; r[d + 1] = 0; return n; }
      : (r) => { if (ku !== 0) r[d] = (r[d] >>> 0) % ku; r[d + 1] = 0; return n; };
  },
  smod32: (i, { pc }) => {
    const { d, s, kl, n, x } = operands(i, pc);
    return x
      ? (r) => { const b = r[s]; if (b !== 0) r[d] = r[d] % b; r[d + 1] = 0; return n; }
      : (r) => { if (kl !== 0) r[d] = r[d] % kl; r[d + 1] = 0; return n; };
  },
  or32: (i, { pc }) => {
    const { d, s, kl, n, x } = operands(i, pc);
    return x ? (r) => { r[d] |= r[s]; r[d + 1] = 0; return n; } : (r) => { r[d] |= kl; r[d + 1] = 0; return n; };
  },
  and32: (i, { pc }) => {
    const { d, s, kl, n, x } = operands(i, pc);
    return x ? (r) => { r[d] &= r[s]; r[d + 1] = 0; return n; } : (r) => { r[d] &= kl; r[d + 1] = 0; return n; };
  },
  xor32: (i, { pc }) => {
    const { d, s, kl, n, x } = operands(i, pc);
    return x ? (r) => { r[d] ^= r[s]; r[d + 1] = 0; return n; } : (r) => { r[d] ^= kl; r[d + 1] = 0; return n; };
  },
  lsh32: (i, { pc }) => {
    const { d, s, kl, n, x } = operands(i, pc), k = kl & 31;
    return x ? (r) => { r[d] = r[d] << (r[s] & 31); r[d + 1] = 0; return n; } : (r) => { r[d] = r[d] << k; r[d + 1] = 0; return n; };
  },
  rsh32: (i, { pc }) => {
    const { d, s, kl, n, x } = operands(i, pc), k = kl & 31;
    return x ? (r) => { r[d] = r[d] >>> (r[s] & 31); r[d + 1] = 0; return n; } : (r) => { r[d] = r[d] >>> k; r[d + 1] = 0; return n; };
  },
  arsh32: (i, { pc }) => {
    const { d, s, kl, n, x } = operands(i, pc), k = kl & 31;
    return x ? (r) => { r[d] = r[d] >> (r[s] & 31); r[d + 1] = 0; return n; } : (r) => { r[d] = r[d] >> k; r[d + 1] = 0; return n; };
  },
  neg32: (i, { pc }) => {
    const { d, n } = operands(i, pc);
    return (r) => { r[d] = -r[d]; r[d + 1] = 0; return n; };
  },
  mov32: (i, { pc }) => {
    const { d, s, kl, n, x } = operands(i, pc);
    return x ? (r) => { r[d] = r[s]; r[d + 1] = 0; return n; } : (r) => { r[d] = kl; r[d + 1] = 0; return n; };
  },
  movsx832: (i, { pc }) => {
    const { d, s, n } = operands(i, pc);
    return (r) => { r[d] = (r[s] << 24) >> 24; r[d + 1] = 0; return n; };
  },
  movsx1632: (i, { pc }) => {
    const { d, s, n } = operands(i, pc);
    return (r) => { r[d] = (r[s] << 16) >> 16; r[d + 1] = 0; return n; };
  },

  // Byte swaps. On little-endian x86-64, le16/le32 truncate (zero-extend) and le64 is a no-op;
  // be* and the ALU64 bswap* swap; every result is zero-extended from its width.
  le16: (i, { pc }) => { const { d, n } = operands(i, pc); return (r) => { r[d] &= 0xffff; r[d + 1] = 0; return n; }; },
  le32: (i, { pc }) => { const { d, n } = operands(i, pc); return (r) => { r[d + 1] = 0; return n; }; },
  le64: (i, { pc }) => { const { n } = operands(i, pc); return () => n; },
  be16: (i, { pc }) => { const { d, n } = operands(i, pc); return (r) => { r[d] = bswap16(r[d]); r[d + 1] = 0; return n; }; },
  be32: (i, { pc }) => { const { d, n } = operands(i, pc); return (r) => { r[d] = bswap32(r[d]); r[d + 1] = 0; return n; }; },
  be64: (i, { pc }) => {
    const { d, n } = operands(i, pc);
    return (r) => { const lo = r[d]; r[d] = bswap32(r[d + 1]); r[d + 1] = bswap32(lo); return n; };
  },
  bswap16: (i, { pc }) => { const { d, n } = operands(i, pc); return (r) => { r[d] = bswap16(r[d]); r[d + 1] = 0; return n; }; },
  bswap32: (i, { pc }) => { const { d, n } = operands(i, pc); return (r) => { r[d] = bswap32(r[d]); r[d + 1] = 0; return n; }; },
  bswap64: (i, { pc }) => {
    const { d, n } = operands(i, pc);
    return (r) => { const lo = r[d]; r[d] = bswap32(r[d + 1]); r[d + 1] = bswap32(lo); return n; };
  },
} satisfies Partial<Record<OpName, Compile>>;
