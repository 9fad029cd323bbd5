/**
 * @fileoverview `bpftool btf dump file X` in its raw format, and its `-j` JSON: one line per
 * type, `[id] KIND 'name'` and the kind's fields, members/params/values/vars on tab-indented
 * lines (bpftool's dump_btf_type(), v7.x). Split BTF dumps its own types only.
 */
import {
  BTF_FUNC_EXTERN, BTF_FUNC_GLOBAL, BTF_FUNC_STATIC, BTF_KIND, BTF_VAR_GLOBAL_ALLOCATED, BTF_VAR_GLOBAL_EXTERN,
  BTF_VAR_STATIC, btfKindStr, type BtfType,
} from './uapi.ts';
import { intEncodingStr } from './kinds.ts';
import type { Btf } from './btf.ts';

/** bpftool's btf_str(): "(anon)" for offset 0, "(invalid)" past the strings. */
const nameOf = (btf: Btf, off: number): string => (off === 0 ? '(anon)' : btf.strAt(off) ?? '(invalid)');

const varLinkage = (l: number): string =>
  l === BTF_VAR_STATIC ? 'static' : l === BTF_VAR_GLOBAL_ALLOCATED ? 'global' : l === BTF_VAR_GLOBAL_EXTERN ? 'extern' : '(unknown)';
const funcLinkage = (l: number): string =>
  l === BTF_FUNC_STATIC ? 'static' : l === BTF_FUNC_GLOBAL ? 'global' : l === BTF_FUNC_EXTERN ? 'extern' : '(unknown)';

/** An ENUM value as bpftool prints it: signed (kind_flag) or the u32. */
function enumVal(t: BtfType, v: bigint): bigint {
  if (t.kind === BTF_KIND.ENUM) return t.kindFlag ? BigInt.asIntN(32, v) : BigInt.asUintN(32, v);
  return t.kindFlag ? BigInt.asIntN(64, v) : BigInt.asUintN(64, v);
}

/** One type as bpftool's JSON object (key order as bpftool writes them). */
export function btfTypeJson(btf: Btf, t: BtfType): Record<string, unknown> {
  const o: Record<string, unknown> = { id: t.id, kind: btfKindStr(t.kind), name: nameOf(btf, t.nameOff) };
  switch (t.kind) {
    case BTF_KIND.INT:
      Object.assign(o, { size: t.sizeOrType, bits_offset: t.intOffset, nr_bits: t.intBits, encoding: intEncodingStr(t.intEncoding!) });
      break;
    case BTF_KIND.PTR: case BTF_KIND.CONST: case BTF_KIND.VOLATILE: case BTF_KIND.RESTRICT: case BTF_KIND.TYPEDEF:
    case BTF_KIND.TYPE_TAG:
      o.type_id = t.sizeOrType;
      break;
    case BTF_KIND.ARRAY:
      Object.assign(o, { type_id: t.array!.type, index_type_id: t.array!.indexType, nr_elems: t.array!.nelems });
      break;
    case BTF_KIND.STRUCT: case BTF_KIND.UNION:
      Object.assign(o, {
        size: t.sizeOrType, vlen: t.vlen,
        members: t.members!.map((m) => ({
          name: nameOf(btf, m.nameOff), type_id: m.type, bits_offset: m.offset,
          ...(m.bitfieldSize ? { bitfield_size: m.bitfieldSize } : {}),
        })),
      });
      break;
    case BTF_KIND.ENUM: case BTF_KIND.ENUM64:
      Object.assign(o, {
        encoding: t.kindFlag ? 'SIGNED' : 'UNSIGNED', size: t.sizeOrType, vlen: t.vlen,
        // jsonw_int_field/jsonw_uint_field of the value widened to 64 bits (an ENUM's s32 sign-extended).
        values: t.enumValues!.map((v) => ({ name: nameOf(btf, v.nameOff), val: t.kindFlag ? BigInt.asIntN(64, v.value) : BigInt.asUintN(64, v.value) })),
      });
      break;
    case BTF_KIND.FWD:
      o.fwd_kind = t.kindFlag ? 'union' : 'struct';
      break;
    case BTF_KIND.FUNC:
      Object.assign(o, { type_id: t.sizeOrType, linkage: funcLinkage(t.vlen) });
      break;
    case BTF_KIND.FUNC_PROTO:
      Object.assign(o, {
        ret_type_id: t.sizeOrType, vlen: t.vlen,
        params: t.params!.map((p) => ({ name: nameOf(btf, p.nameOff), type_id: p.type })),
      });
      break;
    case BTF_KIND.VAR:
      Object.assign(o, { type_id: t.sizeOrType, linkage: varLinkage(t.linkage!) });
      break;
    case BTF_KIND.DATASEC:
      Object.assign(o, { size: t.sizeOrType, vlen: t.vlen, vars: t.secinfos!.map((v) => ({ type_id: v.type, offset: v.offset, size: v.size })) });
      break;
    case BTF_KIND.FLOAT:
      o.size = t.sizeOrType;
      break;
    case BTF_KIND.DECL_TAG:
      Object.assign(o, { type_id: t.sizeOrType, component_idx: t.componentIdx });
      break;
  }
  return o;
}

/** One type in bpftool's raw text (without the final newline). */
export function btfTypeRaw(btf: Btf, t: BtfType): string {
  let s = `[${t.id}] ${btfKindStr(t.kind)} '${nameOf(btf, t.nameOff)}'`;
  switch (t.kind) {
    case BTF_KIND.INT:
      s += ` size=${t.sizeOrType} bits_offset=${t.intOffset} nr_bits=${t.intBits} encoding=${intEncodingStr(t.intEncoding!)}`;
      break;
    case BTF_KIND.PTR: case BTF_KIND.CONST: case BTF_KIND.VOLATILE: case BTF_KIND.RESTRICT: case BTF_KIND.TYPEDEF:
    case BTF_KIND.TYPE_TAG:
      s += ` type_id=${t.sizeOrType}`;
      break;
    case BTF_KIND.ARRAY:
      s += ` type_id=${t.array!.type} index_type_id=${t.array!.indexType} nr_elems=${t.array!.nelems}`;
      break;
    case BTF_KIND.STRUCT: case BTF_KIND.UNION:
      s += ` size=${t.sizeOrType} vlen=${t.vlen}`;
      for (const m of t.members!) {
        s += `\n\t'${nameOf(btf, m.nameOff)}' type_id=${m.type} bits_offset=${m.offset}`;
        if (m.bitfieldSize) s += ` bitfield_size=${m.bitfieldSize}`;
      }
      break;
    case BTF_KIND.ENUM: case BTF_KIND.ENUM64: {
      s += ` encoding=${t.kindFlag ? 'SIGNED' : 'UNSIGNED'} size=${t.sizeOrType} vlen=${t.vlen}`;
      const suffix = t.kind === BTF_KIND.ENUM ? '' : t.kindFlag ? 'LL' : 'ULL';
      for (const v of t.enumValues!) s += `\n\t'${nameOf(btf, v.nameOff)}' val=${enumVal(t, v.value)}${suffix}`;
      break;
    }
    case BTF_KIND.FWD:
      s += ` fwd_kind=${t.kindFlag ? 'union' : 'struct'}`;
      break;
    case BTF_KIND.FUNC:
      s += ` type_id=${t.sizeOrType} linkage=${funcLinkage(t.vlen)}`;
      break;
    case BTF_KIND.FUNC_PROTO:
      s += ` ret_type_id=${t.sizeOrType} vlen=${t.vlen}`;
      for (const p of t.params!) s += `\n\t'${nameOf(btf, p.nameOff)}' type_id=${p.type}`;
      break;
    case BTF_KIND.VAR:
      s += ` type_id=${t.sizeOrType}, linkage=${varLinkage(t.linkage!)}`;
      break;
    case BTF_KIND.DATASEC:
      s += ` size=${t.sizeOrType} vlen=${t.vlen}`;
      for (const v of t.secinfos!) {
        s += `\n\ttype_id=${v.type} offset=${v.offset} size=${v.size}`;
        const vt = btf.types[v.type];
        if (vt) s += ` (${btfKindStr(vt.kind)} '${nameOf(btf, vt.nameOff)}')`;
      }
      break;
    case BTF_KIND.FLOAT:
      s += ` size=${t.sizeOrType}`;
      break;
    case BTF_KIND.DECL_TAG:
      s += ` type_id=${t.sizeOrType} component_idx=${t.componentIdx}`;
      break;
  }
  return s;
}

/** This BTF's own types (split BTF: from its start id), or the given ids. */
const ownTypes = (btf: Btf, ids?: readonly number[]): BtfType[] =>
  ids ? ids.map((id) => btf.type(id)) : btf.types.slice(btf.startId);

/** `bpftool btf dump file X` (raw format): every line newline-terminated. */
export function dumpBtfRaw(btf: Btf, opts: { ids?: readonly number[] } = {}): string {
  return ownTypes(btf, opts.ids).map((t) => `${btfTypeRaw(btf, t)}\n`).join('');
}

/** `bpftool -j btf dump file X`: `{ types: [...] }`. */
export function dumpBtfJson(btf: Btf, opts: { ids?: readonly number[] } = {}): { types: Record<string, unknown>[] } {
  return { types: ownTypes(btf, opts.ids).map((t) => btfTypeJson(btf, t)) };
}
