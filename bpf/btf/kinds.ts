/**
 * @fileoverview Per-kind record handling, one row per BTF kind as btf.c's kind_ops[]: how much
 * data follows the record, how to decode it, the kind's check_meta (the first pass of
 * btf_check_all_metas(): names, flags, sizes, ids in range, member offsets) and its
 * log_details text. The second pass (resolve, check_member) is in verifier.ts.
 */
import {
  BTF_FUNC_GLOBAL, BTF_INT_BOOL, BTF_INT_CHAR, BTF_INT_SIGNED, BTF_KIND, BTF_MAX_TYPE,
  BTF_VAR_GLOBAL_ALLOCATED, BTF_VAR_STATIC, btfKindStr,
  type BtfMember, type BtfRealKind, type BtfType, type BtfVarSecinfo,
} from './uapi.ts';
import { btfFail, type BtfErrorCode, type ErrorArgs } from './errors.ts';
import type { Btf } from './btf.ts';

/** The record's data, read little-endian from where it starts. */
export interface DataReader { u32(off: number): number; s32(off: number): number }

export interface KindOps {
  /** Bytes after the 12-byte btf_type for a given vlen (check_meta's meta_needed). */
  dataLen(vlen: number): number;
  /** Fills the kind's fields of `t` from its data. */
  decode(btf: Btf, t: BtfType, r: DataReader): void;
  /** The kind's check_meta, after the data was found complete; throws a BtfError. */
  checkMeta(btf: Btf, t: BtfType): void;
  /** log_details: what the verifier prints after `[id] KIND name`. */
  details(btf: Btf, t: BtfType): string;
}

const BITS_PER_U128 = 128;
const KSYM_NAME_LEN = 512;
const BTF_INT_MASK = 0x0fffffff;
const typeIdValid = (id: number): boolean => id <= BTF_MAX_TYPE;
const roundupBytes = (bits: number): number => Math.ceil(bits / 8);
const isPow2 = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;

// --- log lines --------------------------------------------------------------------------

/** __btf_name_by_offset(): "(anon)" for 0, "(invalid-name-offset)" past the strings. */
export function logName(btf: Btf, off: number): string {
  return off === 0 ? '(anon)' : btf.strAt(off) ?? '(invalid-name-offset)';
}

/** __btf_verifier_log_type(): `[id] KIND name[ details][ msg]`. */
export function typeLine(btf: Btf, t: BtfType, withDetails: boolean, msg?: string): string {
  let s = `[${t.id}] ${btfKindStr(t.kind)} ${logName(btf, t.nameOff)}`;
  if (withDetails) s += ` ${KIND_OPS[t.kind as BtfRealKind].details(btf, t)}`;
  return msg ? `${s} ${msg}` : s;
}

/** btf_verifier_log_member(): `\tname type_id=N [bitfield_size=K ]bits_offset=M[ msg]`. */
export function memberLine(btf: Btf, s: BtfType, m: BtfMember, msg?: string): string {
  const head = s.kindFlag
    ? `\t${logName(btf, m.nameOff)} type_id=${m.type} bitfield_size=${m.bitfieldSize} bits_offset=${m.offset}`
    : `\t${logName(btf, m.nameOff)} type_id=${m.type} bits_offset=${m.offset}`;
  return msg ? `${head} ${msg}` : head;
}

/** btf_verifier_log_vsi(): `\t type_id=N offset=M size=K[ msg]`. */
export function vsiLine(v: BtfVarSecinfo, msg?: string): string {
  const head = `\t type_id=${v.type} offset=${v.offset} size=${v.size}`;
  return msg ? `${head} ${msg}` : head;
}

/** btf_verifier_log_type(): the type's line with its details. */
export function failType<C extends BtfErrorCode>(btf: Btf, t: BtfType, code: C, ...args: ErrorArgs<C>): never {
  return btfFail(code, { typeId: t.id, line: (r) => typeLine(btf, t, true, r) }, ...args);
}
/** btf_verifier_log_basic(): the type's line without details (its data may be missing). */
export function failBasic<C extends BtfErrorCode>(btf: Btf, t: BtfType, code: C, ...args: ErrorArgs<C>): never {
  return btfFail(code, { typeId: t.id, line: (r) => typeLine(btf, t, false, r) }, ...args);
}
export function failMember<C extends BtfErrorCode>(btf: Btf, s: BtfType, m: BtfMember, code: C, ...args: ErrorArgs<C>): never {
  return btfFail(code, { typeId: s.id, context: [typeLine(btf, s, true)], line: (r) => memberLine(btf, s, m, r) }, ...args);
}
export function failVsi<C extends BtfErrorCode>(btf: Btf, s: BtfType, v: BtfVarSecinfo, code: C, ...args: ErrorArgs<C>): never {
  return btfFail(code, { typeId: s.id, context: [typeLine(btf, s, true)], line: (r) => vsiLine(v, r) }, ...args);
}

// --- names ------------------------------------------------------------------------------

const isAlpha = (c: number): boolean => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const nameCharOk = (c: number, first: boolean): boolean =>
  (first ? isAlpha(c) : isAlpha(c) || isDigit(c)) || c === 0x5f /* _ */ || c === 0x2e /* . */;

/** btf_name_valid_identifier(): [A-Za-z_.][A-Za-z0-9_.]*, shorter than KSYM_NAME_LEN. */
export function validIdentifier(btf: Btf, off: number): boolean {
  const s = btf.rawStrAt(off);
  if (!s || s.length === 0 || s.length >= KSYM_NAME_LEN) return false;
  return s.every((c, i) => nameCharOk(c, i === 0));
}

/** btf_name_valid_section(): any printable characters, not empty. */
function validSection(btf: Btf, off: number): boolean {
  const s = btf.rawStrAt(off);
  return !!s && s.length > 0 && s.length < KSYM_NAME_LEN && s.every((c) => c >= 0x20 && c < 0x7f);
}

const str = (btf: Btf, off: number): string => btf.strAt(off) ?? '';

// --- the kinds --------------------------------------------------------------------------

const noData = (): number => 0;
const decodeNothing = (): void => {};

function checkNoVlenNoFlag(btf: Btf, t: BtfType): void {
  if (t.vlen) failType(btf, t, 'VLEN_NOT_ZERO');
  if (t.kindFlag) failType(btf, t, 'INVALID_KIND_FLAG');
}

const intOps: KindOps = {
  dataLen: () => 4,
  decode(_btf, t, r) {
    const v = r.u32(0);
    t.intData = v; t.intEncoding = (v >>> 24) & 0xf; t.intOffset = (v >>> 16) & 0xff; t.intBits = v & 0xff;
  },
  checkMeta(btf, t) {
    checkNoVlenNoFlag(btf, t);
    if ((t.intData! & ~BTF_INT_MASK) !== 0) failBasic(btf, t, 'INVALID_INT_DATA', t.intData! >>> 0);
    const nrBits = t.intBits! + t.intOffset!;
    if (nrBits > BITS_PER_U128) failType(btf, t, 'NR_BITS_EXCEEDS_128');
    if (roundupBytes(nrBits) > t.sizeOrType) failType(btf, t, 'NR_BITS_EXCEEDS_SIZE');
    const enc = t.intEncoding!;
    if (enc && enc !== BTF_INT_SIGNED && enc !== BTF_INT_CHAR && enc !== BTF_INT_BOOL) failType(btf, t, 'UNSUPPORTED_ENCODING');
  },
  details: (_btf, t) => `size=${t.sizeOrType} bits_offset=${t.intOffset} nr_bits=${t.intBits} encoding=${intEncodingStr(t.intEncoding!)}`,
};

/** btf_int_encoding_str(), also bpftool's btf_int_enc_str(). */
export function intEncodingStr(enc: number): string {
  return enc === 0 ? '(none)' : enc === BTF_INT_SIGNED ? 'SIGNED' : enc === BTF_INT_CHAR ? 'CHAR' : enc === BTF_INT_BOOL ? 'BOOL' : 'UNKN';
}

/** btf_ref_type_check_meta(): PTR, TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG. */
const refOps: KindOps = {
  dataLen: noData,
  decode: decodeNothing,
  checkMeta(btf, t) {
    if (t.vlen) failType(btf, t, 'VLEN_NOT_ZERO');
    if (t.kindFlag && t.kind !== BTF_KIND.TYPE_TAG) failType(btf, t, 'INVALID_KIND_FLAG');
    if (!typeIdValid(t.sizeOrType)) failType(btf, t, 'INVALID_TYPE_ID');
    // typedef/type_tag need a name; the others must be anonymous.
    if (t.kind === BTF_KIND.TYPEDEF) {
      if (!t.nameOff || !validIdentifier(btf, t.nameOff)) failType(btf, t, 'INVALID_NAME');
    } else if (t.kind === BTF_KIND.TYPE_TAG) {
      if (!str(btf, t.nameOff)) failType(btf, t, 'INVALID_NAME');
    } else if (t.nameOff) {
      failType(btf, t, 'INVALID_NAME');
    }
  },
  details: (_btf, t) => `type_id=${t.sizeOrType}`,
};

const fwdOps: KindOps = {
  dataLen: noData,
  decode: decodeNothing,
  checkMeta(btf, t) {
    if (t.vlen) failType(btf, t, 'VLEN_NOT_ZERO');
    if (t.sizeOrType) failType(btf, t, 'TYPE_NOT_ZERO');
    if (!t.nameOff || !validIdentifier(btf, t.nameOff)) failType(btf, t, 'INVALID_NAME');
  },
  details: (_btf, t) => (t.kindFlag ? 'union' : 'struct'),
};

const arrayOps: KindOps = {
  dataLen: () => 12,
  decode(_btf, t, r) { t.array = { type: r.u32(0), indexType: r.u32(4), nelems: r.u32(8) }; },
  checkMeta(btf, t) {
    if (t.nameOff) failType(btf, t, 'INVALID_NAME');
    checkNoVlenNoFlag(btf, t);
    if (t.sizeOrType) failType(btf, t, 'SIZE_NOT_ZERO');
    // Neither the element nor the index can be void.
    if (!t.array!.type || !typeIdValid(t.array!.type)) failType(btf, t, 'INVALID_ELEM');
    if (!t.array!.indexType || !typeIdValid(t.array!.indexType)) failType(btf, t, 'INVALID_INDEX');
  },
  details: (_btf, t) => `type_id=${t.array!.type} index_type_id=${t.array!.indexType} nr_elems=${t.array!.nelems}`,
};

const structOps: KindOps = {
  dataLen: (vlen) => 12 * vlen,
  decode(btf, t, r) {
    t.members = [];
    for (let i = 0; i < t.vlen; i++) {
      const nameOff = r.u32(12 * i), off = r.u32(12 * i + 8);
      t.members.push({
        name: str(btf, nameOff), nameOff, type: r.u32(12 * i + 4),
        offset: t.kindFlag ? off & 0xffffff : off, bitfieldSize: t.kindFlag ? off >>> 24 : 0,
      });
    }
  },
  checkMeta(btf, t) {
    const isUnion = t.kind === BTF_KIND.UNION;
    if (t.nameOff && !validIdentifier(btf, t.nameOff)) failType(btf, t, 'INVALID_NAME');
    let lastOffset = 0;
    for (const m of t.members!) {
      if (!btf.nameOffsetValid(m.nameOff)) failMember(btf, t, m, 'INVALID_MEMBER_NAME_OFFSET', m.nameOff);
      if (m.nameOff && !validIdentifier(btf, m.nameOff)) failMember(btf, t, m, 'INVALID_NAME');
      // A member cannot be void.
      if (!m.type || !typeIdValid(m.type)) failMember(btf, t, m, 'INVALID_TYPE_ID');
      if (isUnion && m.offset) failMember(btf, t, m, 'INVALID_MEMBER_BITS_OFFSET');
      // ">" rather than ">=": the last member may be `char a[0]`.
      if (lastOffset > m.offset) failMember(btf, t, m, 'INVALID_MEMBER_BITS_OFFSET');
      if (roundupBytes(m.offset) > t.sizeOrType) failMember(btf, t, m, 'MEMBER_BITS_OFFSET_EXCEEDS');
      lastOffset = m.offset;
    }
  },
  details: (_btf, t) => `size=${t.sizeOrType} vlen=${t.vlen}`,
};

function checkEnumMeta(btf: Btf, t: BtfType): void {
  if (t.sizeOrType > 8 || !isPow2(t.sizeOrType)) failType(btf, t, 'UNEXPECTED_SIZE');
  if (t.nameOff && !validIdentifier(btf, t.nameOff)) failType(btf, t, 'INVALID_NAME');
  for (const v of t.enumValues!) {
    if (!btf.nameOffsetValid(v.nameOff)) {
      btfFail('ENUM_INVALID_NAME_OFFSET', { typeId: t.id, context: [typeLine(btf, t, true)] }, v.nameOff);
    }
    if (!v.nameOff || !validIdentifier(btf, v.nameOff)) failType(btf, t, 'INVALID_NAME');
  }
}

const enumOps: KindOps = {
  dataLen: (vlen) => 8 * vlen,
  decode(btf, t, r) {
    t.enumValues = [];
    for (let i = 0; i < t.vlen; i++) {
      const nameOff = r.u32(8 * i);
      t.enumValues.push({ name: str(btf, nameOff), nameOff, value: BigInt(r.s32(8 * i + 4)) });
    }
  },
  checkMeta: checkEnumMeta,
  details: (_btf, t) => `size=${t.sizeOrType} vlen=${t.vlen}`,
};

const enum64Ops: KindOps = {
  dataLen: (vlen) => 12 * vlen,
  decode(btf, t, r) {
    t.enumValues = [];
    for (let i = 0; i < t.vlen; i++) {
      const nameOff = r.u32(12 * i);
      const v = (BigInt(r.u32(12 * i + 8)) << 32n) | BigInt(r.u32(12 * i + 4));
      t.enumValues.push({ name: str(btf, nameOff), nameOff, value: t.kindFlag ? BigInt.asIntN(64, v) : v });
    }
  },
  checkMeta: checkEnumMeta,
  details: (_btf, t) => `size=${t.sizeOrType} vlen=${t.vlen}`,
};

const funcProtoOps: KindOps = {
  dataLen: (vlen) => 8 * vlen,
  decode(btf, t, r) {
    t.params = [];
    for (let i = 0; i < t.vlen; i++) {
      const nameOff = r.u32(8 * i);
      t.params.push({ name: str(btf, nameOff), nameOff, type: r.u32(8 * i + 4) });
    }
  },
  checkMeta(btf, t) {
    if (t.nameOff) failType(btf, t, 'INVALID_NAME');
    if (t.kindFlag) failType(btf, t, 'INVALID_KIND_FLAG');
  },
  // btf_func_proto_log(): `return=R args=(T name, …)`, a type-0 last arg is the vararg.
  details(btf, t) {
    const p = t.params!;
    let args: string;
    if (p.length === 0) args = 'void';
    else if (p.length === 1 && !p[0]!.type) args = 'vararg';
    else {
      args = p.map((x, i) => (i === p.length - 1 && i > 0 && !x.type ? 'vararg' : `${x.type} ${logName(btf, x.nameOff)}`)).join(', ');
    }
    return `return=${t.sizeOrType} args=(${args})`;
  },
};

const funcOps: KindOps = {
  dataLen: noData,
  decode(_btf, t) { t.linkage = t.vlen; },
  checkMeta(btf, t) {
    if (!t.nameOff || !validIdentifier(btf, t.nameOff)) failType(btf, t, 'INVALID_NAME');
    if (t.vlen > BTF_FUNC_GLOBAL) failType(btf, t, 'INVALID_FUNC_LINKAGE');
    if (t.kindFlag) failType(btf, t, 'INVALID_KIND_FLAG');
  },
  details: (_btf, t) => `type_id=${t.sizeOrType}`,
};

const varOps: KindOps = {
  dataLen: () => 4,
  decode(_btf, t, r) { t.linkage = r.u32(0); },
  checkMeta(btf, t) {
    checkNoVlenNoFlag(btf, t);
    if (!t.nameOff || !validIdentifier(btf, t.nameOff)) failType(btf, t, 'INVALID_NAME');
    // A variable cannot be void.
    if (!t.sizeOrType || !typeIdValid(t.sizeOrType)) failType(btf, t, 'INVALID_TYPE_ID');
    if (t.linkage !== BTF_VAR_STATIC && t.linkage !== BTF_VAR_GLOBAL_ALLOCATED) failType(btf, t, 'LINKAGE_NOT_SUPPORTED');
  },
  details: (_btf, t) => `type_id=${t.sizeOrType} linkage=${t.linkage}`,
};

const datasecOps: KindOps = {
  dataLen: (vlen) => 12 * vlen,
  decode(_btf, t, r) {
    t.secinfos = [];
    for (let i = 0; i < t.vlen; i++) t.secinfos.push({ type: r.u32(12 * i), offset: r.u32(12 * i + 4), size: r.u32(12 * i + 8) });
  },
  checkMeta(btf, t) {
    const size = t.sizeOrType;
    if (!size) failType(btf, t, 'SIZE_ZERO');
    if (t.kindFlag) failType(btf, t, 'INVALID_KIND_FLAG');
    if (!t.nameOff || !validSection(btf, t.nameOff)) failType(btf, t, 'INVALID_NAME');
    let lastEnd = 0, sum = 0;
    for (const v of t.secinfos!) {
      if (!v.type || !typeIdValid(v.type)) failVsi(btf, t, v, 'INVALID_TYPE_ID');
      if (v.offset < lastEnd || v.offset >= size) failVsi(btf, t, v, 'INVALID_OFFSET');
      if (!v.size || v.size > size) failVsi(btf, t, v, 'INVALID_SIZE');
      lastEnd = v.offset + v.size;
      if (lastEnd > size) failVsi(btf, t, v, 'INVALID_OFFSET_SIZE');
      sum += v.size;
    }
    if (size < sum) failType(btf, t, 'INVALID_BTF_INFO_SIZE');
  },
  details: (_btf, t) => `size=${t.sizeOrType} vlen=${t.vlen}`,
};

const floatOps: KindOps = {
  dataLen: noData,
  decode: decodeNothing,
  checkMeta(btf, t) {
    checkNoVlenNoFlag(btf, t);
    if (![2, 4, 8, 12, 16].includes(t.sizeOrType)) failType(btf, t, 'INVALID_TYPE_SIZE');
  },
  details: (_btf, t) => `size=${t.sizeOrType}`,
};

const declTagOps: KindOps = {
  dataLen: () => 4,
  decode(_btf, t, r) { t.componentIdx = r.s32(0); },
  checkMeta(btf, t) {
    if (!str(btf, t.nameOff)) failType(btf, t, 'INVALID_VALUE');
    if (t.vlen) failType(btf, t, 'VLEN_NOT_ZERO');
    if (t.componentIdx! < -1) failType(btf, t, 'INVALID_COMPONENT_IDX');
  },
  details: (_btf, t) => `type=${t.sizeOrType} component_idx=${t.componentIdx}`,
};

/** kind_ops[]: one row per kind. */
export const KIND_OPS = {
  [BTF_KIND.INT]: intOps,
  [BTF_KIND.PTR]: refOps,
  [BTF_KIND.ARRAY]: arrayOps,
  [BTF_KIND.STRUCT]: structOps,
  [BTF_KIND.UNION]: structOps,
  [BTF_KIND.ENUM]: enumOps,
  [BTF_KIND.FWD]: fwdOps,
  [BTF_KIND.TYPEDEF]: refOps,
  [BTF_KIND.VOLATILE]: refOps,
  [BTF_KIND.CONST]: refOps,
  [BTF_KIND.RESTRICT]: refOps,
  [BTF_KIND.FUNC]: funcOps,
  [BTF_KIND.FUNC_PROTO]: funcProtoOps,
  [BTF_KIND.VAR]: varOps,
  [BTF_KIND.DATASEC]: datasecOps,
  [BTF_KIND.FLOAT]: floatOps,
  [BTF_KIND.DECL_TAG]: declTagOps,
  [BTF_KIND.TYPE_TAG]: refOps,
  [BTF_KIND.ENUM64]: enum64Ops,
} satisfies Record<BtfRealKind, KindOps>;

/** Bytes after the 12-byte btf_type of a `kind` record with `vlen` (0 for an unknown kind). */
export function btfDataLen(kind: number, vlen: number): number {
  const ops = (KIND_OPS as Partial<Record<number, KindOps>>)[kind];
  return ops ? ops.dataLen(vlen) : 0;
}
