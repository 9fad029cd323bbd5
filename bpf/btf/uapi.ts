/**
 * @fileoverview BTF's uAPI (include/uapi/linux/btf.h, btf_ext in tools/lib/bpf/libbpf_internal.h,
 * enum bpf_core_relo_kind in include/uapi/linux/bpf.h) and the decoded record shapes.
 *
 * The type section is a sequence of records, each a 12-byte `struct btf_type` followed by
 * kind-specific data (every record 4-byte aligned):
 *
 *   struct btf_type { u32 name_off; u32 info; union { u32 size; u32 type; }; }
 *   info: bits 0-15 vlen, bits 24-28 kind, bit 31 kind_flag
 *
 *   INT        + u32 int_data: encoding << 24 | offset << 16 | nr_bits
 *   ARRAY      + struct btf_array { u32 type; u32 index_type; u32 nelems; }
 *   STRUCT/UNION + vlen × struct btf_member { u32 name_off; u32 type; u32 offset; }
 *                (kind_flag: offset = bitfield_size << 24 | bit_offset)
 *   ENUM       + vlen × struct btf_enum { u32 name_off; s32 val; }
 *   ENUM64     + vlen × struct btf_enum64 { u32 name_off; u32 val_lo32; u32 val_hi32; }
 *   FUNC_PROTO + vlen × struct btf_param { u32 name_off; u32 type; }
 *   VAR        + struct btf_var { u32 linkage; }
 *   DATASEC    + vlen × struct btf_var_secinfo { u32 type; u32 offset; u32 size; }
 *   DECL_TAG   + struct btf_decl_tag { s32 component_idx; }
 *   FUNC: vlen is the linkage. PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FLOAT, TYPE_TAG:
 *   no data.
 */

export const BTF_MAGIC = 0xeb9f;
export const BTF_VERSION = 1;
/** sizeof(struct btf_header): magic, version, flags, hdr_len, type_off/len, str_off/len. */
export const BTF_HDR_LEN = 24;
export const BTF_TYPE_LEN = 12;
export const BTF_MAX_TYPE = 0x000fffff;
export const BTF_MAX_NAME_OFFSET = 0x00ffffff;
export const BTF_MAX_VLEN = 0xffff;

export const BTF_KIND = {
  UNKN: 0, INT: 1, PTR: 2, ARRAY: 3, STRUCT: 4, UNION: 5, ENUM: 6, FWD: 7, TYPEDEF: 8,
  VOLATILE: 9, CONST: 10, RESTRICT: 11, FUNC: 12, FUNC_PROTO: 13, VAR: 14, DATASEC: 15,
  FLOAT: 16, DECL_TAG: 17, TYPE_TAG: 18, ENUM64: 19,
} as const;
export type BtfKind = (typeof BTF_KIND)[keyof typeof BTF_KIND];
/** Every kind but UNKN: the keys of the per-kind ops tables. */
export type BtfRealKind = Exclude<BtfKind, 0>;
export const BTF_KIND_MAX = BTF_KIND.ENUM64;
export const BTF_KIND_NAME: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(BTF_KIND).map(([k, v]) => [v, k]));
/** btf_kind_str[] of the kernel and bpftool ("UNKNOWN" for kind 0). */
export const btfKindStr = (kind: number): string => (kind === 0 || kind > BTF_KIND_MAX ? 'UNKNOWN' : BTF_KIND_NAME[kind]!);

/** BTF_INT_ENCODING bits. */
export const BTF_INT_SIGNED = 1, BTF_INT_CHAR = 2, BTF_INT_BOOL = 4;
/** enum btf_func_linkage (FUNC's vlen). */
export const BTF_FUNC_STATIC = 0, BTF_FUNC_GLOBAL = 1, BTF_FUNC_EXTERN = 2;
/** VAR linkage. */
export const BTF_VAR_STATIC = 0, BTF_VAR_GLOBAL_ALLOCATED = 1, BTF_VAR_GLOBAL_EXTERN = 2;

/** enum bpf_core_relo_kind (include/uapi/linux/bpf.h). */
export const BPF_CORE = {
  FIELD_BYTE_OFFSET: 0, FIELD_BYTE_SIZE: 1, FIELD_EXISTS: 2, FIELD_SIGNED: 3,
  FIELD_LSHIFT_U64: 4, FIELD_RSHIFT_U64: 5, TYPE_ID_LOCAL: 6, TYPE_ID_TARGET: 7,
  TYPE_EXISTS: 8, TYPE_SIZE: 9, ENUMVAL_EXISTS: 10, ENUMVAL_VALUE: 11, TYPE_MATCHES: 12,
} as const;
export type BpfCoreReloKind = (typeof BPF_CORE)[keyof typeof BPF_CORE];
export const BPF_CORE_NAME: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(BPF_CORE).map(([k, v]) => [v, k]));

export interface BtfHeader {
  magic: number; version: number; flags: number; hdrLen: number;
  typeOff: number; typeLen: number; strOff: number; strLen: number;
}

export interface BtfMember {
  name: string;
  nameOff: number;
  type: number;
  /** Bit offset from the start of the struct (kind_flag: the low 24 bits of `offset`). */
  offset: number;
  /** kind_flag structs only; 0 for a regular member. */
  bitfieldSize: number;
}
export interface BtfParam { name: string; nameOff: number; type: number }
export interface BtfEnumValue {
  name: string;
  nameOff: number;
  /**
   * ENUM: the stored word as v5.5's `__s32 val` (so 0xffffffff reads -1 whatever the
   * kind_flag; 6.0's kind_flag = signed only changes how tools print it). ENUM64: the u64,
   * signed iff kind_flag.
   */
  value: bigint;
}
export interface BtfVarSecinfo { type: number; offset: number; size: number }

export interface BtfType {
  id: number;
  kind: BtfKind;
  name: string;
  nameOff: number;
  kindFlag: boolean;
  vlen: number;
  /** size for INT/STRUCT/UNION/ENUM/ENUM64/FLOAT/DATASEC; else the referenced type id. */
  sizeOrType: number;
  // Kind-specific data.
  /** INT: the raw u32 after the record, and its fields. */
  intData?: number; intEncoding?: number; intOffset?: number; intBits?: number;
  array?: { type: number; indexType: number; nelems: number };
  members?: BtfMember[];
  params?: BtfParam[];
  enumValues?: BtfEnumValue[];
  /** FUNC: vlen; VAR: btf_var.linkage. */
  linkage?: number;
  secinfos?: BtfVarSecinfo[];
  componentIdx?: number;
}

export const isModifier = (k: number): boolean =>
  k === BTF_KIND.TYPEDEF || k === BTF_KIND.VOLATILE || k === BTF_KIND.CONST ||
  k === BTF_KIND.RESTRICT || k === BTF_KIND.TYPE_TAG;
export const isComposite = (k: number): boolean => k === BTF_KIND.STRUCT || k === BTF_KIND.UNION;
export const isAnyEnum = (k: number): boolean => k === BTF_KIND.ENUM || k === BTF_KIND.ENUM64;
/** btf_type_has_size(): t->size is a size. */
export const hasSize = (k: number): boolean =>
  k === BTF_KIND.INT || k === BTF_KIND.STRUCT || k === BTF_KIND.UNION || k === BTF_KIND.ENUM ||
  k === BTF_KIND.DATASEC || k === BTF_KIND.FLOAT || k === BTF_KIND.ENUM64;

/** An enumerator's value as the u64 libbpf computes (ENUM's s32 sign-extended). */
export const enumValueU64 = (v: BtfEnumValue): bigint => BigInt.asUintN(64, v.value);
