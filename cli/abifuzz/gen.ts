/**
 * @fileoverview The calling-convention fuzzer's generator: from (seed, case index) alone — so a
 * case is the same whatever shard, job or batch runs it — a random prototype (0 to 6 arguments
 * of C integer, _Bool, enum and pointer types; a return of one of them or void), the values its
 * caller passes (edge cases of each type, and raw 64-bit registers whose upper bits are garbage
 * the C conversion must drop), and the C source of a callee that mixes its arguments into its
 * return value and a caller that makes the call. The expected values are computed here, by the
 * C conversion rules, independently of gcc.
 *
 * Later kernel profiles trace more shapes (gen_ext.ts draws them): structs of at most 16 bytes
 * by value (6.1) and up to 12 arguments (6.6). Everything here counts in ctx slots, the u64
 * words the trampoline gives a program: an int or pointer takes one, a struct one per eightbyte
 * (the registers SysV passes it in), in prototype order.
 */

/** The C types the generator draws from. */
export interface CType {
  /** As written in C (kernel.h typedefs included). */
  readonly c: string;
  /** sizeof (1, 2, 4, 8; a struct up to 16). */
  readonly size: number;
  readonly signed: boolean;
  readonly kind: 'int' | 'bool' | 'enum' | 'ptr' | 'struct';
  /** A struct's members the generator sets, laid out without holes from offset 0 (gen_ext.ts). */
  readonly fields?: readonly CField[];
}

/** A struct member: its name, scalar type and byte offset. */
export interface CField { readonly name: string; readonly type: CType; readonly offset: number }

const t = (c: string, size: 1 | 2 | 4 | 8, signed: boolean, kind: CType['kind'] = 'int'): CType => ({ c, size, signed, kind });

/** Argument and return types (void is added for returns). */
export const TYPES: readonly CType[] = [
  t('char', 1, true), t('signed char', 1, true), t('unsigned char', 1, false), t('u8', 1, false), t('s8', 1, true),
  t('short', 2, true), t('unsigned short', 2, false), t('u16', 2, false), t('s16', 2, true),
  t('int', 4, true), t('unsigned int', 4, false), t('u32', 4, false), t('s32', 4, true),
  t('long', 8, true), t('unsigned long', 8, false), t('long long', 8, true), t('u64', 8, false), t('s64', 8, true),
  t('_Bool', 1, false, 'bool'), t('bool', 1, false, 'bool'),
  // gcc gives an enum unsigned int unless an enumerator is negative (then int).
  t('enum abi_eu', 4, false, 'enum'), t('enum abi_es', 4, true, 'enum'), t('enum abi_ebig', 4, false, 'enum'),
  t('void *', 8, false, 'ptr'), t('const void *', 8, false, 'ptr'), t('struct abi_s *', 8, false, 'ptr'),
  t('const struct abi_s *', 8, false, 'ptr'), t('u32 *', 8, false, 'ptr'), t('char *', 8, false, 'ptr'),
];
export const VOID: CType = { c: 'void', size: 8, signed: false, kind: 'int' };

/** The module-wide declarations every batch starts with. */
export const PRELUDE = `#include "kernel.h"
enum abi_eu { ABI_EU0, ABI_EU1, ABI_EU2, ABI_EU3 };
enum abi_es { ABI_ES_M1 = -1, ABI_ES0, ABI_ES_MAX = 0x7fffffff };
enum abi_ebig { ABI_EB0, ABI_EB_BIG = 0x80000000u };
struct abi_s { u64 a; u32 b; };
`;

/** What one argument's value is made of. */
export interface ArgValue {
  /** A struct: each member's value (source param: `(T)(pK >> 8*(offset % 8))`), and `slots` made of them. */
  readonly fields?: readonly ArgValue[];
  /** A struct's ctx slots: its defined bytes, little-endian, per eightbyte (tail padding 0). */
  readonly slots?: readonly bigint[];
  /** `param`: the caller passes (T)pK of its u64 parameter K (raw = the full register); `const`: a C literal. */
  readonly source: 'param' | 'const';
  /** The caller's parameter index (source param). */
  readonly param: number;
  /** The 64 bits before the C conversion (the register's content for a param). */
  readonly raw: bigint;
  /** The value after the C conversion to the declared type, as `(u64)(T)raw` gives it. */
  readonly value: bigint;
}

export interface AbiCase {
  readonly seed: number;
  readonly index: number;
  readonly args: readonly CType[];
  readonly ret: CType;
  readonly values: readonly ArgValue[];
  /** The caller's six u64 parameters (what TypeScript puts in rdi..r9). */
  readonly params: readonly bigint[];
  /** A caller parameter kept live across the call (in a callee-saved register), stored after it. */
  readonly keep: number | undefined;
  /** The callee's return value, `(u64)(RET)mix`, as the caller receives it (0 for void). */
  readonly expectedRet: bigint;
}

export const callee = (c: AbiCase): string => `abi_callee_${c.index}`;
export const caller = (c: AbiCase): string => `abi_caller_${c.index}`;
export const MAX_ARGS = 6;
/** The most ctx slots any profile traces (6.6's MAX_BPF_FUNC_ARGS, struct eightbytes counted). */
export const MAX_SLOTS = 12;

/** How many u64 ctx slots an argument of `ty` takes (btf_ctx_access 6.1+: one per register). */
export const slotsOf = (ty: CType): number => (ty.kind === 'struct' ? Math.ceil(ty.size / 8) : 1);
/** An argument's ctx slot words: a scalar's converted value, or a struct's eightbytes. */
export const slotWords = (v: ArgValue): readonly bigint[] => v.slots ?? [v.value];
/** The bytes of slot `k` of an argument of `ty` that hold data (the rest is padding or garbage). */
export const definedBytes = (ty: CType, k: number): number => {
  if (ty.kind !== 'struct') return 8;
  const end = Math.max(...ty.fields!.map((f) => f.offset + f.type.size));
  return Math.max(0, Math.min(8, end - 8 * k));
};
/** The first ctx slot of each argument, and the total (where fexit's return value is). */
export function slotLayout(args: readonly CType[]): { first: number[]; total: number } {
  const first: number[] = [];
  let n = 0;
  for (const ty of args) { first.push(n); n += slotsOf(ty); }
  return { first, total: n };
}

/** xoshiro128**: small, fast, and the same everywhere; seeded per case by splitmix32. */
export class Rng {
  private s: Uint32Array;
  constructor(seed: number, stream: number) {
    let x = (Math.imul(seed >>> 0, 0x9e3779b9) ^ (Math.floor(seed / 0x100000000) >>> 0) ^ Math.imul(stream >>> 0, 0x85ebca6b)) >>> 0;
    const next = (): number => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s = Uint32Array.of(next(), next(), next(), next() | 1);
  }
  u32(): number {
    const s = this.s;
    const r = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const tt = s[1]! << 9;
    s[2] = s[2]! ^ s[0]!; s[3] = s[3]! ^ s[1]!; s[1] = s[1]! ^ s[2]!; s[0] = s[0]! ^ s[3]!;
    s[2] = s[2]! ^ tt; s[3] = rotl(s[3]!, 11);
    return r;
  }
  u64(): bigint { return (BigInt(this.u32()) << 32n) | BigInt(this.u32()); }
  /** An integer in [0, n). */
  below(n: number): number { return Math.floor((this.u32() / 0x100000000) * n); }
  pick<T>(xs: readonly T[]): T { return xs[this.below(xs.length)]!; }
  chance(p: number): boolean { return this.u32() / 0x100000000 < p; }
}
const rotl = (x: number, k: number): number => ((x << k) | (x >>> (32 - k))) >>> 0;

const M64 = (1n << 64n) - 1n;
/** `(u64)(T)raw`: the C conversion of a 64-bit value to `ty`, then to u64 (sign-extending signed types). */
export function convert(ty: CType, raw: bigint): bigint {
  raw = BigInt.asUintN(64, raw);
  if (ty.kind === 'bool') return raw !== 0n ? 1n : 0n;
  const bits = ty.size * 8;
  return ty.signed ? BigInt.asUintN(64, BigInt.asIntN(bits, raw)) : BigInt.asUintN(bits, raw);
}

/** Edge values of a type's range (as raw 64-bit patterns before conversion). */
function edgeValues(ty: CType): bigint[] {
  if (ty.kind === 'bool') return [0n, 1n];
  if (ty.kind === 'ptr') return [0n, M64, 0xffff888000001000n, 0xffffffff81000000n, 0xffffffffa0010000n, 0x1n, 0x00007ffffffff000n];
  const bits = BigInt(ty.size * 8);
  const umax = (1n << bits) - 1n;
  const smax = umax >> 1n;
  const smin = BigInt.asUintN(64, -(1n << (bits - 1n)));
  const e = [0n, 1n, M64, umax, smax, smin, smax - 1n, BigInt.asUintN(64, smin + 1n), 0x80n, 0x7fn, 0xffn, 0x8000n, 0x7fffn];
  if (ty.kind === 'enum') e.push(1n, 2n, 3n, 0x80000000n, 0x7fffffffn);
  return e;
}

/** Garbage for the bits above a narrow type: random, all ones, or the wrong extension of its sign. */
function upperGarbage(rng: Rng, ty: CType, low: bigint): bigint {
  if (ty.size === 8 || ty.kind === 'bool') return low;
  const bits = BigInt(ty.size * 8);
  const mask = (1n << bits) - 1n;
  const lo = low & mask;
  switch (rng.below(4)) {
    case 0: return lo; // clean
    case 1: return (M64 & ~mask) | lo; // all ones above
    case 2: return ((rng.u64() << bits) & M64) | lo; // random above
    default: {
      // The opposite of the correct extension: ones above a positive value, zeros above a negative one.
      const neg = (lo >> (bits - 1n)) & 1n;
      return neg ? lo : (M64 & ~mask) | lo;
    }
  }
}

function genValue(rng: Rng, ty: CType, source: 'param' | 'const', param: number): ArgValue {
  let raw: bigint;
  if (ty.kind === 'bool') raw = source === 'param' ? (rng.chance(0.4) ? 0n : rng.pick([1n, 0x100n, rng.u64(), M64])) : BigInt(rng.below(2));
  else {
    raw = rng.chance(0.6) ? rng.pick(edgeValues(ty)) : rng.u64();
    if (ty.kind !== 'ptr' && ty.size < 8) raw = source === 'param' ? upperGarbage(rng, ty, raw) : convert(ty, raw);
  }
  return { source, param, raw, value: convert(ty, raw) };
}

/** The callee's mix of its arguments (FNV-1a over the converted values), as the generated C computes it. */
export function mix(index: number, values: readonly bigint[]): bigint {
  let h = 0xcbf29ce484222325n ^ BigInt(index);
  for (const v of values) h = ((h ^ v) * 0x100000001b3n) & M64;
  return h ^ (h >> 29n);
}

/** `(u64)(RET)` of the callee's mix: what the caller receives (the C: `return (RET)h`, `(h >> 7) & 1` for _Bool). */
export function returned(index: number, ret: CType, values: readonly ArgValue[]): bigint {
  if (ret === VOID) return 0n;
  const m = mix(index, values.flatMap(slotWords));
  return convert(ret, ret.kind === 'bool' ? (m >> 7n) & 1n : m);
}

/** The case `index` of `seed`. */
export function genCase(seed: number, index: number): AbiCase {
  const rng = new Rng(seed, index);
  const nargs = rng.below(MAX_ARGS + 1);
  const args = Array.from({ length: nargs }, () => rng.pick(TYPES));
  const ret = rng.chance(0.12) ? VOID : rng.pick(TYPES);
  // Which caller parameter feeds each argument: a permutation, so gcc has registers to move.
  const perm = [0, 1, 2, 3, 4, 5];
  for (let i = perm.length - 1; i > 0; i--) { const j = rng.below(i + 1); [perm[i], perm[j]] = [perm[j]!, perm[i]!]; }
  const params = Array.from({ length: MAX_ARGS }, () => rng.u64());
  const values = args.map((ty, i) => {
    const v = genValue(rng, ty, rng.chance(0.7) ? 'param' : 'const', perm[i]!);
    if (v.source === 'param') params[v.param] = v.raw;
    return v;
  });
  const free = perm.filter((p) => !values.some((v) => v.source === 'param' && v.param === p));
  const keep = rng.chance(0.4) && free.length ? rng.pick(free) : undefined;
  return { seed, index, args, ret, values, params, keep, expectedRet: returned(index, ret, values) };
}

const hex = (v: bigint): string => `0x${v.toString(16)}`;

/** A C expression of type `ty` with the converted value `v`. */
export function literal(ty: CType, v: bigint): string {
  if (ty.kind === 'ptr') return `(${ty.c})${hex(v)}UL`;
  if (ty.kind === 'bool') return `(${ty.c})${v}`;
  return `(${ty.c})${hex(v)}ULL`;
}

/** `(u64)x` for an expression of type `ty` (pointers through unsigned long). */
const toU64 = (ty: CType, x: string): string => (ty.kind === 'ptr' ? `(u64)(unsigned long)${x}` : `(u64)${x}`);
/** The unsigned type of a member's width, so `<<` puts its bytes in place without sign bits. */
const UNSIGNED: Record<number, string> = { 1: 'u8', 2: 'u16', 4: 'u32', 8: 'u64' };

/** C expressions for the ctx slot words of argument `a` (a struct: its members' bytes per eightbyte). */
function slotExprs(ty: CType, a: string): string[] {
  if (ty.kind !== 'struct') return [toU64(ty, a)];
  return Array.from({ length: slotsOf(ty) }, (_, k) => ty.fields!.filter((f) => Math.floor(f.offset / 8) === k)
    .map((f) => `((u64)(${UNSIGNED[f.type.size]})${f.type.kind === 'ptr' ? `(unsigned long)${a}.${f.name}` : `${a}.${f.name}`} << ${8 * (f.offset % 8)})`).join(' | '));
}

/** The caller's expression for argument `i`: a conversion of a parameter, a literal, or a struct of them. */
function argExpr(ty: CType, v: ArgValue): string {
  if (ty.kind === 'struct') {
    return `(${ty.c}){ ${ty.fields!.map((f, k) => {
      const fv = v.fields![k]!;
      return `.${f.name} = ${fv.source === 'param' ? `(${f.type.c})(p${fv.param} >> ${8 * (f.offset % 8)})` : literal(f.type, fv.value)}`;
    }).join(', ')} }`;
  }
  return v.source === 'param' ? `(${ty.c})p${v.param}` : literal(ty, v.value);
}

/** The struct declarations a batch's cases use (gen_ext.ts's types), each once. */
function structDecls(cases: readonly AbiCase[]): string[] {
  const seen = new Map<string, CType>();
  for (const c of cases) for (const ty of c.args) if (ty.kind === 'struct') seen.set(ty.c, ty);
  return [...seen.values()].map((ty) => `${ty.c} { ${ty.fields!.map((f) => `${f.type.c} ${f.name};`).join(' ')}${ty.c.startsWith('union') ? ' u32 lo;' : ''} };`);
}

/** The C of a batch: the prelude, per-case state arrays, and each case's callee and caller. */
export function emitC(cases: readonly AbiCase[]): string {
  const n = Math.max(...cases.map((c) => c.index)) + 1;
  const out = [PRELUDE, ...structDecls(cases)];
  out.push(`u64 abi_seen[${n}][${MAX_SLOTS}];`, `u64 abi_sp[${n}];`, `u64 abi_keep[${n}];`, '');
  for (const c of cases) {
    const params = c.args.map((ty, i) => `${ty.c} a${i}`).join(', ') || 'void';
    out.push(`noinline ${c.ret.c} ${callee(c)}(${params})`, '{');
    out.push(`\tu64 h = 0xcbf29ce484222325ULL ^ ${c.index}ULL, sp;`);
    const { first } = slotLayout(c.args);
    c.args.forEach((ty, i) => {
      slotExprs(ty, `a${i}`).forEach((w, k) => {
        out.push(`\tabi_seen[${c.index}][${first[i]! + k}] = ${w};`);
        out.push(`\th = (h ^ abi_seen[${c.index}][${first[i]! + k}]) * 0x100000001b3ULL;`);
      });
    });
    out.push('\t__asm__ volatile("mov %%rsp, %0" : "=r"(sp));', `\tabi_sp[${c.index}] = sp;`, '\th ^= h >> 29;');
    if (c.ret !== VOID) out.push(c.ret.kind === 'bool' ? '\treturn (h >> 7) & 1;' : c.ret.kind === 'ptr' ? `\treturn (${c.ret.c})(unsigned long)h;` : `\treturn (${c.ret.c})h;`);
    out.push('}', '');
    const call = `${callee(c)}(${c.values.map((v, i) => argExpr(c.args[i]!, v)).join(', ')})`;
    out.push(`notrace u64 ${caller(c)}(u64 p0, u64 p1, u64 p2, u64 p3, u64 p4, u64 p5)`, '{');
    if (c.ret === VOID) out.push(`\t${call};`);
    else out.push(`\t${c.ret.c} r = ${call};`);
    if (c.keep !== undefined) out.push(`\tabi_keep[${c.index}] = p${c.keep};`);
    out.push(c.ret === VOID ? '\treturn 0;' : `\treturn ${toU64(c.ret, 'r')};`, '}', '');
  }
  return out.join('\n');
}

/** The prototype as C (for reproducers). */
export const prototype = (c: AbiCase): string =>
  `${c.ret.c} ${callee(c)}(${c.args.map((ty, i) => `${ty.c} a${i}`).join(', ') || 'void'})`;

/**
 * The case with only the arguments `keep` (in order), the rest unchanged: what the minimiser
 * tries. The expected return is recomputed from the kept values.
 */
export function withArgs(c: AbiCase, keep: readonly number[]): AbiCase {
  const values = keep.map((i) => c.values[i]!);
  return { ...c, args: keep.map((i) => c.args[i]!), values, expectedRet: returned(c.index, c.ret, values) };
}

/** A hand-made case (tests): each argument a caller parameter (its register `raw`), in order. */
export function makeCase(index: number, args: readonly CType[], ret: CType, raws: readonly bigint[]): AbiCase {
  const values = args.map((ty, i): ArgValue => ({ source: 'param', param: i, raw: BigInt.asUintN(64, raws[i]!), value: convert(ty, raws[i]!) }));
  const params = Array.from({ length: MAX_ARGS }, (_, i) => BigInt.asUintN(64, raws[i] ?? 0n));
  return { seed: 0, index, args, ret, values, params, keep: undefined, expectedRet: returned(index, ret, values) };
}

/** A type of TYPES by its C spelling. */
export function ctype(c: string): CType {
  const ty = c === 'void' ? VOID : TYPES.find((x) => x.c === c);
  if (!ty) throw new Error(`no generator type ${c}`);
  return ty;
}
