/**
 * @fileoverview CO-RE relocations (libbpf's relo_core.c): a BPF program compiled against its
 * own ("local") BTF records, per instruction, a type id, an access string and a kind
 * (FIELD_BYTE_OFFSET of `skb->len` is `[sk_buff] "0:1"`: element 0 of the pointer, member
 * 1). Resolving it against the running kernel's ("target") BTF:
 *
 *  1. parse the access string into a spec: the low-level path of indices and the high-level
 *     accessors (named members and array indices; anonymous struct/union members are
 *     traversed but not accessors), with the bit offset it reaches;
 *  2. candidates: target types of a compatible kind with the same name, ignoring a
 *     `___flavor` suffix (`sk_buff___old` matches `sk_buff`);
 *  3. match the spec in each candidate by member *name* (searching anonymous members), array
 *     bounds and field compatibility; every matching candidate must agree;
 *  4. compute the value: byte offset/size of the field (bitfields: the smallest naturally
 *     aligned load that holds it, and the shifts to extract it), existence, signedness, type
 *     ids/size/existence, enumerator existence/value.
 *
 * No match leaves FIELD_EXISTS/TYPE_EXISTS/ENUMVAL_EXISTS (and TYPE_SIZE/TYPE_ID_TARGET) at 0;
 * for the others libbpf poisons the instruction (a guarded read of a missing field must still
 * load): the result says `poison` and carries a CoreReloError naming the relocation and what
 * was missing. Malformed relocations and ambiguous candidates throw (libbpf fails the load).
 */
import {
  BPF_CORE, BTF_INT_SIGNED, BTF_KIND, isAnyEnum, isComposite, type BpfCoreReloKind, type BtfType,
} from './uapi.ts';
import { E2BIG, EINVAL } from './errors.ts';
import { resolveSize, skipMods } from './layout.ts';
import type { Btf } from './btf.ts';

export const BPF_CORE_SPEC_MAX_LEN = 64;
const EOPNOTSUPP = 95;

/** core_relo_kind_str(). */
export const CORE_RELO_KIND_STR: Readonly<Record<BpfCoreReloKind, string>> = {
  [BPF_CORE.FIELD_BYTE_OFFSET]: 'byte_off', [BPF_CORE.FIELD_BYTE_SIZE]: 'byte_sz', [BPF_CORE.FIELD_EXISTS]: 'field_exists',
  [BPF_CORE.FIELD_SIGNED]: 'signed', [BPF_CORE.FIELD_LSHIFT_U64]: 'lshift_u64', [BPF_CORE.FIELD_RSHIFT_U64]: 'rshift_u64',
  [BPF_CORE.TYPE_ID_LOCAL]: 'local_type_id', [BPF_CORE.TYPE_ID_TARGET]: 'target_type_id', [BPF_CORE.TYPE_EXISTS]: 'type_exists',
  [BPF_CORE.TYPE_SIZE]: 'type_size', [BPF_CORE.ENUMVAL_EXISTS]: 'enumval_exists', [BPF_CORE.ENUMVAL_VALUE]: 'enumval_value',
  [BPF_CORE.TYPE_MATCHES]: 'type_matches',
};

const isFieldBased = (k: number): boolean => k <= BPF_CORE.FIELD_RSHIFT_U64;
const isTypeBased = (k: number): boolean =>
  k === BPF_CORE.TYPE_ID_LOCAL || k === BPF_CORE.TYPE_ID_TARGET || k === BPF_CORE.TYPE_EXISTS || k === BPF_CORE.TYPE_SIZE ||
  k === BPF_CORE.TYPE_MATCHES;
const isEnumvalBased = (k: number): boolean => k === BPF_CORE.ENUMVAL_EXISTS || k === BPF_CORE.ENUMVAL_VALUE;

/** libbpf's btf_kind_str(): lower-case kind names in its messages. */
const kindStr = (t: BtfType): string => (t.kind === 0 ? 'void' : (['', 'int', 'ptr', 'array', 'struct', 'union', 'enum', 'fwd', 'typedef',
  'volatile', 'const', 'restrict', 'func', 'func_proto', 'var', 'datasec', 'float', 'decl_tag', 'type_tag', 'enum64'][t.kind] ?? 'unknown'));

/** One relocation, as in .BTF.ext's core_relo (the access string already looked up). */
export interface CoreRelo { typeId: number; accessStr: string; kind: BpfCoreReloKind; insnOff?: number }

/** A CO-RE relocation that cannot be resolved (libbpf would fail the load or poison the insn). */
export class CoreReloError extends Error {
  readonly errno: number;
  readonly relo: CoreRelo;
  /** true: libbpf would replace the instruction with an invalid call (no matching target). */
  readonly poison: boolean;
  constructor(msg: string, relo: CoreRelo, errno = -EINVAL, poison = false) {
    super(msg);
    this.name = 'CoreReloError';
    this.errno = errno;
    this.relo = relo;
    this.poison = poison;
  }
}

export interface CoreAccessor { typeId: number; idx: number; name?: string }
/** struct bpf_core_spec. */
export interface CoreSpec {
  btf: Btf;
  rootTypeId: number;
  kind: BpfCoreReloKind;
  /** The access string's indices (low-level spec). */
  raw: number[];
  /** Named members and array indices (high-level spec). */
  spec: CoreAccessor[];
  bitOffset: number;
}

/** A spec failure inside the algorithm: an errno and what to say. */
class SpecError extends Error {
  readonly errno: number;
  constructor(errno: number, msg: string) { super(msg); this.errno = errno; }
}

/** bpf_core_essential_name_len(): the name without a `___flavor` suffix. */
export function essentialName(name: string): string {
  for (let i = name.length - 5; i >= 0; i--) {
    if (name[i] !== '_' && name.startsWith('___', i + 1) && name[i + 4] !== '_') return name.slice(0, i + 1);
  }
  return name;
}

const kindCompat = (a: BtfType, b: BtfType): boolean => a.kind === b.kind || (isAnyEnum(a.kind) && isAnyEnum(b.kind));
const skip = (btf: Btf, id: number): { id: number; t: BtfType } => {
  const r = skipMods(btf, id);
  if (!r.t) throw new SpecError(-EINVAL, `[${id}] cannot be resolved`);
  return { id: r.id, t: r.t };
};
const sizeOf = (btf: Btf, id: number): number => {
  try { return resolveSize(btf, id); } catch (e) { throw new SpecError(-EINVAL, (e as Error).message); }
};
/** is_flex_arr(): a zero-length array as the last member of its struct. */
const isFlexArr = (btf: Btf, acc: CoreAccessor | undefined, nelems: number): boolean =>
  !!acc?.name && nelems === 0 && acc.idx === btf.type(acc.typeId).vlen - 1;

/** bpf_core_parse_spec(). */
export function parseCoreSpec(btf: Btf, relo: CoreRelo): CoreSpec {
  const s = relo.accessStr;
  if (!s || s.startsWith(':')) throw new SpecError(-EINVAL, `bad access string '${s}'`);
  const spec: CoreSpec = { btf, rootTypeId: relo.typeId, kind: relo.kind, raw: [], spec: [], bitOffset: 0 };
  if (isTypeBased(relo.kind)) {
    if (s !== '0') throw new SpecError(-EINVAL, `a type relocation's access string must be "0", not '${s}'`);
    return spec;
  }
  for (const part of s.split(':')) {
    if (part === '') continue;
    if (!/^[+-]?\d+$/.test(part)) throw new SpecError(-EINVAL, `bad access string '${s}'`);
    if (spec.raw.length === BPF_CORE_SPEC_MAX_LEN) throw new SpecError(-E2BIG, 'access string too long');
    spec.raw.push(Number(part));
  }
  if (!spec.raw.length || spec.raw.some((x) => x < 0)) throw new SpecError(-EINVAL, `bad access string '${s}'`);
  let { id, t } = skip(btf, relo.typeId);
  spec.spec.push({ typeId: id, idx: spec.raw[0]! });

  if (isEnumvalBased(relo.kind)) {
    if (!isAnyEnum(t.kind) || spec.raw.length > 1 || spec.raw[0]! >= t.vlen) throw new SpecError(-EINVAL, 'not an enumerator of an enum');
    spec.spec[0]!.name = t.enumValues![spec.raw[0]!]!.name;
    return spec;
  }
  if (!isFieldBased(relo.kind)) throw new SpecError(-EINVAL, `unknown relocation kind ${relo.kind}`);

  // The first index steps over whole objects (&p[n]), the rest go into members and elements.
  spec.bitOffset = spec.raw[0]! * sizeOf(btf, id) * 8;
  for (let i = 1; i < spec.raw.length; i++) {
    ({ id, t } = skip(btf, id));
    const idx = spec.raw[i]!;
    if (isComposite(t.kind)) {
      if (idx >= t.vlen) throw new SpecError(-EINVAL, `member #${idx} of [${id}] does not exist`);
      const m = t.members![idx]!;
      spec.bitOffset += m.offset;
      if (m.nameOff) {
        if (!m.name) throw new SpecError(-EINVAL, `member #${idx} of [${id}] has an empty name`);
        spec.spec.push({ typeId: id, idx, name: m.name });
      }
      id = m.type;
    } else if (t.kind === BTF_KIND.ARRAY) {
      const a = t.array!;
      ({ id } = skip(btf, a.type));
      if (!isFlexArr(btf, spec.spec.at(-1), a.nelems) && idx >= a.nelems) throw new SpecError(-EINVAL, `index ${idx} out of [${t.id}]'s bounds`);
      spec.spec.push({ typeId: id, idx });
      spec.bitOffset += idx * sizeOf(btf, id) * 8;
    } else {
      throw new SpecError(-EINVAL, `relo for [${relo.typeId}] ${s} (at idx ${i}) captures type [${id}] of unexpected kind ${kindStr(t)}`);
    }
  }
  return spec;
}

/** bpf_core_fields_are_compat(). */
function fieldsCompat(lb: Btf, lid: number, tb: Btf, tid: number): boolean {
  for (let depth = 0; depth < 32; depth++) {
    const l = skip(lb, lid).t, t = skip(tb, tid).t;
    if (isComposite(l.kind) && isComposite(t.kind)) return true;
    if (!kindCompat(l, t)) return false;
    switch (l.kind) {
      case BTF_KIND.PTR: case BTF_KIND.FLOAT: return true;
      case BTF_KIND.FWD: case BTF_KIND.ENUM: case BTF_KIND.ENUM64: {
        const ln = essentialName(l.name), tn = essentialName(t.name);
        return !ln || !tn || ln === tn; // one anonymous, or the same flavor-less name
      }
      case BTF_KIND.INT: return l.intOffset === 0 && t.intOffset === 0;
      case BTF_KIND.ARRAY: lid = l.array!.type; tid = t.array!.type; continue;
      default: return false;
    }
  }
  throw new SpecError(-EINVAL, 'field types nest too deep');
}

/** __bpf_core_types_are_compat(): for TYPE_* relocations. */
function typesCompat(lb: Btf, lid: number, tb: Btf, tid: number, level = 32): boolean {
  if (!kindCompat(lb.type(lid), tb.type(tid))) return false;
  for (let depth = 32; depth > 0; depth--) {
    const l = skip(lb, lid), t = skip(tb, tid);
    if (!kindCompat(l.t, t.t)) return false;
    switch (l.t.kind) {
      case 0: case BTF_KIND.STRUCT: case BTF_KIND.UNION: case BTF_KIND.ENUM: case BTF_KIND.FWD: case BTF_KIND.ENUM64: return true;
      case BTF_KIND.INT: return l.t.intOffset === 0 && t.t.intOffset === 0;
      case BTF_KIND.PTR: lid = l.t.sizeOrType; tid = t.t.sizeOrType; continue;
      case BTF_KIND.ARRAY: lid = l.t.array!.type; tid = t.t.array!.type; continue;
      case BTF_KIND.FUNC_PROTO: {
        const lp = l.t.params!, tp = t.t.params!;
        if (lp.length !== tp.length) return false;
        for (let i = 0; i < lp.length; i++) {
          if (level <= 0) throw new SpecError(-EINVAL, 'types nest too deep');
          if (!typesCompat(lb, skip(lb, lp[i]!.type).id, tb, skip(tb, tp[i]!.type).id, level - 1)) return false;
        }
        lid = skip(lb, l.t.sizeOrType).id; tid = skip(tb, t.t.sizeOrType).id;
        continue;
      }
      default: return false;
    }
  }
  throw new SpecError(-EINVAL, 'types nest too deep');
}

/** bpf_core_names_match(). */
const namesMatch = (l: string, t: string): boolean => (t === '' ? l === '' : essentialName(l) === essentialName(t));

/** __bpf_core_types_match(): for TYPE_MATCHES (stricter: members by name, sizes, signedness). */
function typesMatch(lb: Btf, lid: number, tb: Btf, tid: number, behindPtr = false, level = 32): boolean {
  if (level <= 0) throw new SpecError(-EINVAL, 'types nest too deep');
  for (let depth = 32; depth > 0; depth--) {
    const l = skip(lb, lid).t, t = skip(tb, tid).t;
    if (!namesMatch(l.name, t.name)) return false;
    switch (l.kind) {
      case 0: return t.kind === 0;
      case BTF_KIND.FWD:
        if (behindPtr && t.kind !== BTF_KIND.FWD) return (t.kind === BTF_KIND.STRUCT && !l.kindFlag) || (t.kind === BTF_KIND.UNION && l.kindFlag);
        return t.kind === BTF_KIND.FWD && l.kindFlag === t.kindFlag;
      case BTF_KIND.ENUM: case BTF_KIND.ENUM64:
        // Same size; every local enumerator has a namesake in the target.
        return isAnyEnum(t.kind) && l.sizeOrType === t.sizeOrType && l.vlen <= t.vlen &&
          l.enumValues!.every((lv) => t.enumValues!.some((tv) => namesMatch(lv.name, tv.name)));
      case BTF_KIND.STRUCT: case BTF_KIND.UNION:
        if (behindPtr) return l.kind === t.kind || (t.kind === BTF_KIND.FWD && (l.kind === BTF_KIND.UNION) === t.kindFlag);
        if (l.kind !== t.kind || l.vlen > t.vlen) return false;
        return l.members!.every((lm) => t.members!.some((tm) => namesMatch(lm.name, tm.name) && typesMatch(lb, lm.type, tb, tm.type, behindPtr, level - 1)));
      case BTF_KIND.INT:
        return t.kind === BTF_KIND.INT && l.sizeOrType === t.sizeOrType && (l.intEncoding! & BTF_INT_SIGNED) === (t.intEncoding! & BTF_INT_SIGNED);
      case BTF_KIND.PTR:
        if (t.kind !== BTF_KIND.PTR) return false;
        behindPtr = true; lid = l.sizeOrType; tid = t.sizeOrType;
        continue;
      case BTF_KIND.ARRAY:
        if (t.kind !== BTF_KIND.ARRAY || l.array!.nelems !== t.array!.nelems) return false;
        lid = l.array!.type; tid = t.array!.type;
        continue;
      case BTF_KIND.FUNC_PROTO:
        if (t.kind !== BTF_KIND.FUNC_PROTO || l.vlen !== t.vlen) return false;
        for (let i = 0; i < l.vlen; i++) if (!typesMatch(lb, l.params![i]!.type, tb, t.params![i]!.type, behindPtr, level - 1)) return false;
        lid = l.sizeOrType; tid = t.sizeOrType;
        continue;
      default: return false;
    }
  }
  throw new SpecError(-EINVAL, 'types nest too deep');
}

/** bpf_core_match_member(): a named member in the target, through anonymous members. */
function matchMember(local: Btf, acc: CoreAccessor, targ: Btf, targId: number, spec: CoreSpec): { found: boolean; next: number } {
  const { id, t } = skip(targ, targId);
  if (!isComposite(t.kind)) return { found: false, next: 0 };
  const lm = local.type(acc.typeId).members![acc.idx]!;
  for (let i = 0; i < t.members!.length; i++) {
    const m = t.members![i]!;
    if (spec.raw.length === BPF_CORE_SPEC_MAX_LEN) throw new SpecError(-E2BIG, 'struct/union/array nesting too deep');
    // Speculate that this member is the one.
    spec.bitOffset += m.offset;
    spec.raw.push(i);
    if (m.name === '') {
      const r = matchMember(local, acc, targ, m.type, spec);
      if (r.found) return r;
    } else if (m.name === lm.name) {
      spec.spec.push({ typeId: id, idx: i, name: m.name });
      const found = fieldsCompat(local, lm.type, targ, m.type);
      if (!found) spec.spec.pop();
      return { found, next: m.type };
    }
    spec.bitOffset -= m.offset;
    spec.raw.pop();
  }
  return { found: false, next: 0 };
}

/** bpf_core_spec_match(): the local spec in one candidate; undefined when it does not match. */
function specMatch(local: CoreSpec, targ: Btf, targId: number): CoreSpec | undefined {
  const ts: CoreSpec = { btf: targ, rootTypeId: targId, kind: local.kind, raw: [], spec: [], bitOffset: 0 };
  if (isTypeBased(local.kind)) {
    const ok = local.kind === BPF_CORE.TYPE_MATCHES
      ? typesMatch(local.btf, local.rootTypeId, targ, targId)
      : typesCompat(local.btf, local.rootTypeId, targ, targId);
    return ok ? ts : undefined;
  }
  if (isEnumvalBased(local.kind)) {
    const { id, t } = skip(targ, targId);
    if (!isAnyEnum(t.kind)) return undefined;
    const want = essentialName(local.spec[0]!.name!);
    const i = t.enumValues!.findIndex((v) => essentialName(v.name) === want);
    if (i < 0) return undefined;
    ts.spec.push({ typeId: id, idx: i, name: t.enumValues![i]!.name });
    ts.raw.push(i);
    return ts;
  }
  let tid = targId;
  for (let i = 0; i < local.spec.length; i++) {
    const la = local.spec[i]!;
    const st = skip(targ, tid);
    tid = st.id;
    if (la.name) {
      const r = matchMember(local.btf, la, targ, tid, ts);
      if (!r.found) return undefined;
      tid = r.next;
      continue;
    }
    // An array index: in bounds of the target array (element 0 of the root is the root).
    if (i > 0) {
      if (st.t.kind !== BTF_KIND.ARRAY) return undefined;
      const a = st.t.array!;
      if (!isFlexArr(targ, ts.spec.at(-1), a.nelems) && la.idx >= a.nelems) return undefined;
      tid = skip(targ, a.type).id;
    }
    if (ts.raw.length === BPF_CORE_SPEC_MAX_LEN) throw new SpecError(-E2BIG, 'struct/union/array nesting too deep');
    ts.spec.push({ typeId: tid, idx: la.idx });
    ts.raw.push(la.idx);
    ts.bitOffset += la.idx * sizeOf(targ, tid) * 8;
  }
  return ts;
}

interface FieldVal { val: bigint; size: number; typeId: number; validate: boolean }

/** bpf_core_calc_field_relo(); undefined for "poison" (no target). */
function calcField(kind: BpfCoreReloKind, spec: CoreSpec | undefined): FieldVal | undefined {
  if (kind === BPF_CORE.FIELD_EXISTS) return { val: spec ? 1n : 0n, size: 0, typeId: 0, validate: true };
  if (!spec) return undefined;
  const { btf } = spec;
  const acc = spec.spec.at(-1)!;
  if (!acc.name) {
    // An array element a[n].
    const sz = sizeOf(btf, acc.typeId);
    if (kind === BPF_CORE.FIELD_BYTE_OFFSET) return { val: BigInt(spec.bitOffset / 8), size: sz, typeId: acc.typeId, validate: true };
    if (kind === BPF_CORE.FIELD_BYTE_SIZE) return { val: BigInt(sz), size: 0, typeId: 0, validate: true };
    throw new SpecError(-EINVAL, `relocation ${CORE_RELO_KIND_STR[kind]} can't be applied to array access`);
  }
  const m = btf.type(acc.typeId).members![acc.idx]!;
  const { id: fieldTypeId, t: mt } = skip(btf, m.type);
  const bitOff = spec.bitOffset;
  let bitSz = m.bitfieldSize, byteSz: number, byteOff: number;
  const bitfield = bitSz > 0;
  if (bitfield) {
    // The smallest naturally aligned load, from the field's type size up, that holds it.
    byteSz = mt.sizeOrType;
    byteOff = Math.floor(bitOff / 8 / byteSz) * byteSz;
    while (bitOff + bitSz - byteOff * 8 > byteSz * 8) {
      if (byteSz >= 8) throw new SpecError(-E2BIG, "bitfield can't be read with a 64-bit load");
      byteSz *= 2;
      byteOff = Math.floor(bitOff / 8 / byteSz) * byteSz;
    }
  } else {
    byteSz = sizeOf(btf, fieldTypeId);
    byteOff = bitOff / 8;
    bitSz = byteSz * 8;
  }
  switch (kind) {
    case BPF_CORE.FIELD_BYTE_OFFSET:
      return { val: BigInt(byteOff), size: bitfield ? 0 : byteSz, typeId: bitfield ? 0 : fieldTypeId, validate: !bitfield };
    case BPF_CORE.FIELD_BYTE_SIZE:
      return { val: BigInt(byteSz), size: 0, typeId: 0, validate: !bitfield };
    case BPF_CORE.FIELD_SIGNED: {
      const signed = (isAnyEnum(mt.kind) && mt.kindFlag) || (mt.kind === BTF_KIND.INT && (mt.intEncoding! & BTF_INT_SIGNED) !== 0);
      return { val: signed ? 1n : 0n, size: 0, typeId: 0, validate: true };
    }
    case BPF_CORE.FIELD_LSHIFT_U64: // little-endian
      return { val: BigInt(64 - (bitOff + bitSz - byteOff * 8)), size: 0, typeId: 0, validate: !bitfield };
    default: // FIELD_RSHIFT_U64
      return { val: BigInt(64 - bitSz), size: 0, typeId: 0, validate: true };
  }
}

/** bpf_core_calc_type_relo() and bpf_core_calc_enumval_relo(); undefined for "poison". */
function calcOther(kind: BpfCoreReloKind, spec: CoreSpec | undefined): { val: bigint; validate: boolean } | undefined {
  if (isTypeBased(kind)) {
    if (!spec) return { val: 0n, validate: true }; // type relocations are 0 without a target
    if (kind === BPF_CORE.TYPE_ID_TARGET) return { val: BigInt(spec.rootTypeId), validate: false };
    if (kind === BPF_CORE.TYPE_SIZE) return { val: BigInt(sizeOf(spec.btf, spec.rootTypeId)), validate: true };
    return { val: 1n, validate: true }; // TYPE_EXISTS, TYPE_MATCHES
  }
  if (kind === BPF_CORE.ENUMVAL_EXISTS) return { val: spec ? 1n : 0n, validate: true };
  if (!spec) return undefined;
  const v = spec.btf.type(spec.spec[0]!.typeId).enumValues![spec.spec[0]!.idx]!;
  return { val: BigInt.asUintN(64, v.value), validate: true };
}

/** The result of a relocation (struct bpf_core_relo_res). */
export interface CoreReloResult {
  kind: BpfCoreReloKind;
  /** The value compiled into the instruction (from the local BTF). */
  origValue: bigint;
  /** The relocated value for the target. */
  value: bigint;
  /** Whether a target type matched (false: the *_EXISTS kinds are 0, TYPE_SIZE/TYPE_ID_TARGET 0). */
  matched: boolean;
  /** Whether libbpf checks the instruction holds origValue before patching it. */
  validate: boolean;
  /** FIELD_BYTE_OFFSET of a non-bitfield: the field's size locally and in the target (a load/store size change). */
  origSize: number;
  newSize: number;
  /** The size differs and is not a pointer or unsigned int: libbpf poisons a load/store using it. */
  failMemszAdjust: boolean;
  localSpec: CoreSpec;
  targetSpec: CoreSpec | undefined;
  /** The target type id the relocation resolved to. */
  targetTypeId: number | undefined;
  /** No target for a kind that needs one (FIELD_BYTE_OFFSET …, ENUMVAL_VALUE): libbpf poisons the instruction. */
  poison: boolean;
  /** Why, when `poison`: names the relocation, its local spec and the candidates tried. */
  error: CoreReloError | undefined;
}

/** bpf_core_format_spec(): `<byte_off> [53] struct sk_buff.len (0:1 @ offset 8)`. */
export function formatCoreSpec(spec: CoreSpec): string {
  const t = spec.btf.type(spec.rootTypeId);
  let s = `<${CORE_RELO_KIND_STR[spec.kind]}> [${spec.rootTypeId}] ${kindStr(t)} ${t.name || '<anon>'}`;
  if (isTypeBased(spec.kind)) return s;
  if (isEnumvalBased(spec.kind)) {
    const et = skipMods(spec.btf, spec.rootTypeId).t!;
    const v = et.enumValues![spec.raw[0]!]!;
    const val = et.kind === BTF_KIND.ENUM ? (et.kindFlag ? BigInt.asIntN(32, v.value) : BigInt.asUintN(32, v.value)) : v.value;
    return `${s}::${v.name} = ${val}`;
  }
  spec.spec.forEach((a, i) => { s += a.name ? `.${a.name}` : i > 0 || a.idx > 0 ? `[${a.idx}]` : ''; });
  const off = spec.bitOffset % 8 ? `${Math.floor(spec.bitOffset / 8)}.${spec.bitOffset % 8}` : `${spec.bitOffset / 8}`;
  return `${s} (${spec.raw.join(':')} @ offset ${off})`;
}

export interface CoreReloOptions { /** For messages: the relocation's index and program. */ reloIdx?: number; progName?: string }

/** Candidate target types: a compatible kind and the same name without its flavor. */
export function coreCandidates(local: Btf, localId: number, targ: Btf): number[] {
  const lt = local.type(localId);
  const want = essentialName(lt.name);
  const out: number[] = [];
  for (let id = 1; id < targ.typeCount; id++) {
    const t = targ.types[id]!;
    if (t.name && kindCompat(t, lt) && essentialName(t.name) === want) out.push(id);
  }
  return out;
}

/**
 * bpf_core_calc_relo_insn(): resolves one relocation of `local` (the program's BTF) against
 * `target` (vmlinux BTF). A relocation with no target where one is needed comes back with
 * `poison` and its `error`; a bad access string, an anonymous root type or ambiguous
 * candidates throw a CoreReloError.
 */
export function resolveCoreRelo(local: Btf, relo: CoreRelo, target: Btf, opts: CoreReloOptions = {}): CoreReloResult {
  const prefix = `${opts.progName ? `prog '${opts.progName}': ` : ''}relo #${opts.reloIdx ?? 0}`;
  const lt = local.types[relo.typeId];
  if (!lt) throw new CoreReloError(`${prefix}: local type id ${relo.typeId} is invalid`, relo);
  let localSpec: CoreSpec;
  try {
    localSpec = parseCoreSpec(local, relo);
  } catch (e) {
    if (!(e instanceof SpecError)) throw e;
    throw new CoreReloError(`${prefix}: parsing [${relo.typeId}] ${kindStr(lt)} ${lt.name || '<anon>'} + ${relo.accessStr} failed: ${e.message}`, relo, e.errno);
  }
  const fail = (e: unknown): never => {
    if (e instanceof SpecError) throw new CoreReloError(`${prefix}: ${formatCoreSpec(localSpec)}: ${e.message}`, relo, e.errno);
    throw e;
  };
  const none = { failMemszAdjust: false, origSize: 0, newSize: 0, targetSpec: undefined, targetTypeId: undefined, poison: false, error: undefined };
  // TYPE_ID_LOCAL needs no target.
  if (relo.kind === BPF_CORE.TYPE_ID_LOCAL) {
    const v = BigInt(relo.typeId);
    return { ...none, kind: relo.kind, localSpec, origValue: v, value: v, matched: true, validate: false };
  }
  if (!lt.name) throw new CoreReloError(`${prefix}: <${CORE_RELO_KIND_STR[relo.kind]}> (${relo.kind}) relocation doesn't support anonymous types`, relo, -EOPNOTSUPP);

  // bpf_core_calc_relo(): the local value and the target's (undefined: poison).
  const calc = (spec: CoreSpec | undefined): CoreReloResult => {
    const base = { ...none, kind: relo.kind, localSpec, matched: !!spec, targetSpec: spec, targetTypeId: spec?.rootTypeId };
    if (isFieldBased(relo.kind)) {
      const orig = calcField(relo.kind, localSpec)!;
      const now = calcField(relo.kind, spec);
      if (!now) return { ...base, origValue: orig.val, value: 0n, validate: orig.validate, poison: true };
      let failMemszAdjust = false;
      if (orig.size !== now.size) {
        // Safe size changes: pointers, and unsigned ints (zero-extended either way).
        const ot = local.type(orig.typeId), nt = spec!.btf.type(now.typeId);
        const unsignedInt = (t: BtfType): boolean => t.kind === BTF_KIND.INT && t.intEncoding !== BTF_INT_SIGNED;
        failMemszAdjust = !(ot.kind === BTF_KIND.PTR && nt.kind === BTF_KIND.PTR) && !(unsignedInt(ot) && unsignedInt(nt));
      }
      return { ...base, origValue: orig.val, value: now.val, validate: orig.validate, origSize: orig.size, newSize: now.size, failMemszAdjust };
    }
    const orig = calcOther(relo.kind, localSpec)!;
    const now = calcOther(relo.kind, spec);
    if (!now) return { ...base, origValue: orig.val, value: 0n, validate: orig.validate, poison: true };
    return { ...base, origValue: orig.val, value: now.val, validate: orig.validate };
  };

  const cands = coreCandidates(local, relo.typeId, target);
  let chosen: CoreReloResult | undefined;
  try {
    for (const [i, cand] of cands.entries()) {
      let spec: CoreSpec | undefined;
      try {
        spec = specMatch(localSpec, target, cand);
      } catch (e) {
        if (e instanceof SpecError) throw new SpecError(e.errno, `error matching candidate #${i} [${cand}]: ${e.message}`);
        throw e;
      }
      if (!spec) continue;
      const res = calc(spec);
      if (!chosen) { chosen = res; continue; }
      // Several candidates (flavors, dedup leftovers) must agree.
      if (spec.bitOffset !== chosen.targetSpec!.bitOffset) {
        throw new SpecError(-EINVAL, `field offset ambiguity: ${spec.bitOffset} != ${chosen.targetSpec!.bitOffset}`);
      }
      if (res.value !== chosen.value) throw new SpecError(-EINVAL, `relocation decision ambiguity: ${res.value} != ${chosen.value}`);
    }
    if (chosen) return chosen;
    // No candidate: the *_EXISTS kinds say 0, the others have nothing to give.
    const res = calc(undefined);
    if (!res.poison) return res;
    const what = isEnumvalBased(relo.kind) ? 'enumerator' : 'field';
    const where = cands.length
      ? `no candidate has it (candidates: ${cands.map((c) => `[${c}] ${kindStr(target.type(c))} ${target.type(c).name}`).join(', ')})`
      : `no ${kindStr(lt)} named '${essentialName(lt.name)}' in the target BTF`;
    return { ...res, error: new CoreReloError(`${prefix}: ${formatCoreSpec(localSpec)}: target ${what} not found: ${where}`, relo, -EINVAL, true) };
  } catch (e) {
    return fail(e);
  }
}
