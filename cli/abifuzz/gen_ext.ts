/**
 * @fileoverview The shapes later kernels trace, for the calling-convention fuzzer: structs of at
 * most 16 bytes passed by value (6.1, BTF_FMODEL_STRUCT_ARG: one ctx slot per eightbyte, the
 * registers SysV passes it in) and 7 to 12 arguments (6.6, the 7th slot on from the caller's
 * stack), and which profile may run which case.
 *
 * A campaign draws its cases with one profile's features (drawCase): with the 5.5 features
 * every case is gen.ts's genCase, unchanged; with more, a share of the cases (decided on a
 * stream of their own, so the others stay what 5.5 draws) become extended ones. A profile runs
 * the cases it can trace and skips the others (skipReason), so `--kernel all` runs the same
 * cases under every profile.
 */
import {
  convert, genCase, returned, Rng, slotLayout, slotsOf, TYPES, VOID, MAX_ARGS, MAX_SLOTS,
  type AbiCase, type ArgValue, type CField, type CType,
} from './gen.ts';
import type { TrampolineBehaviour } from '../../kernel/profile.ts';

/** What the generator may draw: a profile's trampoline row, the two fields that matter. */
export interface GenFeatures { readonly structArgs: boolean; readonly maxArgs: number }
export const BASE_FEATURES: GenFeatures = { structArgs: false, maxArgs: MAX_ARGS };
export const featuresOf = (t: TrampolineBehaviour): GenFeatures => ({ structArgs: t.structArgs, maxArgs: t.maxArgs });

/** The share of cases that are extended when the features allow (the rest are 5.5's cases). */
const EXT_SHARE = 0.4;
/** Salt of the extended cases' random stream, so the base ones keep theirs. */
const EXT_SALT = 0x5bd1e995;

const scalar = (c: string): CType => TYPES.find((x) => x.c === c)!;
const field = (name: string, c: string, offset: number): CField => ({ name, type: scalar(c), offset });
const struct = (c: string, size: number, fields: CField[]): CType => ({ c, size, signed: false, kind: 'struct', fields });

/**
 * Structs (and a union) of 1 to 16 bytes, integer and pointer members only (the kernel is built
 * without SSE), laid out without holes so that a slot's defined bytes are its low ones; some
 * with tail padding, whose bytes in the register are whatever the caller left.
 */
export const STRUCT_TYPES: readonly CType[] = [
  struct('struct abi_t1', 1, [field('a', 'u8', 0)]),
  struct('struct abi_t2', 2, [field('a', 's8', 0), field('b', 'u8', 1)]),
  struct('struct abi_t3', 4, [field('a', 'u16', 0), field('b', 'u8', 2)]),
  struct('struct abi_t4', 4, [field('a', 's16', 0), field('b', 'u16', 2)]),
  struct('struct abi_t6', 6, [field('a', 'u16', 0), field('b', 'u16', 2), field('c', 's16', 4)]),
  struct('struct abi_t8', 8, [field('a', 'u32', 0), field('b', 's32', 4)]),
  struct('struct abi_t8p', 8, [field('p', 'void *', 0)]),
  struct('struct abi_t8b', 8, [field('a', 'u8', 0), field('b', 's8', 1), field('c', 'u16', 2), field('d', 'int', 4)]),
  struct('union abi_u8', 8, [field('a', 'u64', 0)]),
  struct('struct abi_t9', 16, [field('a', 'u64', 0), field('b', 'u8', 8)]),
  struct('struct abi_t12', 12, [field('a', 'u32', 0), field('b', 'u32', 4), field('c', 's32', 8)]),
  struct('struct abi_t16', 16, [field('a', 'u64', 0), field('b', 's64', 8)]),
  struct('struct abi_t16m', 16, [field('a', 'u32', 0), field('b', 'u16', 4), field('c', 'u8', 6), field('d', 'u8', 7), field('e', 's64', 8)]),
];

/** What a case needs of the trampoline. */
export function needs(c: AbiCase): { structArgs: boolean; slots: number } {
  return { structArgs: c.args.some((t) => t.kind === 'struct'), slots: slotLayout(c.args).total };
}

/**
 * Why `profile` cannot trace the case (undefined: it can). Before 6.1 btf_distill_func_proto
 * refuses a struct by value (-EINVAL at load); the x86-64 generator refuses more than 6
 * registers' worth of arguments until 6.6 and more than 12 from then on (-ENOTSUPP at attach).
 */
export function skipReason(t: TrampolineBehaviour, c: AbiCase): string | undefined {
  const n = needs(c);
  if (n.structArgs && !t.structArgs) return 'a struct argument by value (6.1+)';
  if (n.slots > t.maxArgs) return `${n.slots} argument slots (at most ${t.maxArgs})`;
  return undefined;
}

/** The widest features of several profiles (what `--kernel all` draws with). */
export function widest(rows: readonly TrampolineBehaviour[]): GenFeatures {
  return { structArgs: rows.some((r) => r.structArgs), maxArgs: Math.max(...rows.map((r) => r.maxArgs)) };
}

/** Case `index` of `seed` as a campaign with `features` draws it. */
export function drawCase(seed: number, index: number, features: GenFeatures = BASE_FEATURES): AbiCase {
  if (features.structArgs || features.maxArgs > MAX_ARGS) {
    const ext = extendedCase(seed, index, features);
    if (ext) return ext;
  }
  return genCase(seed, index);
}

/** A scalar's value: edge-heavy raw bits, converted (or, from a parameter, that parameter's bits). */
function scalarValue(rng: Rng, ty: CType, params: readonly bigint[]): ArgValue {
  if (rng.chance(0.6)) {
    const param = rng.below(MAX_ARGS);
    return { source: 'param', param, raw: params[param]!, value: convert(ty, params[param]!) };
  }
  const raw = rng.chance(0.5) ? rng.u64() : rng.pick([0n, 1n, (1n << 64n) - 1n, 0x80n, 0x8000n, 0x80000000n, 0x7fffffffn]);
  return { source: 'const', param: 0, raw, value: convert(ty, raw) };
}

/** A struct's value: each member from a parameter's bytes at its offset, or a constant. */
function structValue(rng: Rng, ty: CType, params: readonly bigint[]): ArgValue {
  const fields = ty.fields!.map((f): ArgValue => {
    if (rng.chance(0.6)) {
      const param = rng.below(MAX_ARGS), raw = params[param]! >> BigInt(8 * (f.offset % 8));
      return { source: 'param', param, raw, value: convert(f.type, raw) };
    }
    const raw = rng.u64();
    return { source: 'const', param: 0, raw, value: convert(f.type, raw) };
  });
  const slots = Array.from({ length: slotsOf(ty) }, () => 0n);
  ty.fields!.forEach((f, k) => {
    const bits = BigInt(f.type.size * 8), v = fields[k]!.value & ((1n << bits) - 1n);
    slots[Math.floor(f.offset / 8)]! |= v << BigInt(8 * (f.offset % 8));
  });
  return { source: 'const', param: 0, raw: slots[0]!, value: slots[0]!, fields, slots };
}

/**
 * An extended case, or undefined (this index stays a 5.5 case). Half of them, where 6.6's
 * features allow, have 7 to 12 slots; the others at most 6 slots with at least one struct.
 */
function extendedCase(seed: number, index: number, f: GenFeatures): AbiCase | undefined {
  const rng = new Rng(seed ^ EXT_SALT, index);
  if (!rng.chance(EXT_SHARE)) return undefined;
  const many = f.maxArgs > MAX_ARGS && (!f.structArgs || rng.chance(0.5));
  const target = many ? MAX_ARGS + 1 + rng.below(Math.min(f.maxArgs, MAX_SLOTS) - MAX_ARGS) : 1 + rng.below(MAX_ARGS);
  const args: CType[] = [];
  let slots = 0;
  while (slots < target) {
    const fit = STRUCT_TYPES.filter((t) => slots + slotsOf(t) <= target);
    const ty = f.structArgs && fit.length && rng.chance(many ? 0.25 : 0.45) ? rng.pick(fit) : rng.pick(TYPES);
    args.push(ty);
    slots += slotsOf(ty);
  }
  // Without `many` the case exists for its struct: make sure it has one (a one-slot struct fits anywhere).
  if (!many && !args.some((t) => t.kind === 'struct')) args[rng.below(args.length)] = rng.pick(STRUCT_TYPES.filter((t) => slotsOf(t) === 1));
  const ret = rng.chance(0.12) ? VOID : rng.pick(TYPES);
  const params = Array.from({ length: MAX_ARGS }, () => rng.u64());
  const values = args.map((ty) => (ty.kind === 'struct' ? structValue(rng, ty, params) : scalarValue(rng, ty, params)));
  const keep = rng.chance(0.4) ? rng.below(MAX_ARGS) : undefined;
  return { seed, index, args, ret, values, params, keep, expectedRet: returned(index, ret, values) };
}
