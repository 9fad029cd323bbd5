/**
 * @fileoverview BTF errors from one table: each code, the errno the kernel returns and its log
 * wording (kernel/bpf/btf.c's btf_verifier_log*() format strings; .BTF.ext ones from libbpf's
 * btf_ext_parse_hdr()/btf_ext_setup_info()). Most are -EINVAL; the exceptions are the kernel's
 * own: -E2BIG for a non-zero unknown header tail and too deep resolving, -ENOTSUPP (524, the
 * kernel-internal errno) for version/flags/int encoding, -EEXIST for a loop (env_stack_push()).
 *
 * A type's line is the verifier's `[id] KIND name details msg`; a member's is
 * `\tname type_id=N bits_offset=M msg` after its struct's line.
 */

export const EINVAL = 22, E2BIG = 7, EEXIST = 17, ELOOP = 40, ENOTSUPP = 524;

interface ErrorRow { readonly errno: number; readonly msg: (...a: never[]) => string }

export const BTF_ERRORS = {
  // btf_parse_hdr(), btf_check_sec_info()
  HDR_LEN_NOT_FOUND: { errno: -EINVAL, msg: () => 'hdr_len not found' },
  HDR_NOT_FOUND: { errno: -EINVAL, msg: () => 'btf_header not found' },
  UNSUPPORTED_HDR: { errno: -E2BIG, msg: () => 'Unsupported btf_header' },
  INVALID_MAGIC: { errno: -EINVAL, msg: () => 'Invalid magic' },
  UNSUPPORTED_VERSION: { errno: -ENOTSUPP, msg: () => 'Unsupported version' },
  UNSUPPORTED_FLAGS: { errno: -ENOTSUPP, msg: () => 'Unsupported flags' },
  NO_DATA: { errno: -EINVAL, msg: () => 'No data' },
  INVALID_SECTION_OFFSET: { errno: -EINVAL, msg: () => 'Invalid section offset' },
  UNSUPPORTED_SECTION: { errno: -EINVAL, msg: () => 'Unsupported section found' },
  SECTION_OVERLAP: { errno: -EINVAL, msg: () => 'Section overlap found' },
  SECTION_TOO_LONG: { errno: -EINVAL, msg: () => 'Total section length too long' },
  // btf_parse_str_sec(), btf_parse_type_sec()
  STR_NOT_AT_END: { errno: -EINVAL, msg: () => 'String section is not at the end' },
  INVALID_STR_SECTION: { errno: -EINVAL, msg: () => 'Invalid string section' },
  UNALIGNED_TYPE_OFF: { errno: -EINVAL, msg: () => 'Unaligned type_off' },
  NO_TYPE: { errno: -EINVAL, msg: () => 'No type found' },
  EXCEEDED_MAX_TYPES: { errno: -E2BIG, msg: () => 'Exceeded max num of types' },
  // btf_check_meta() (logged as `[id] ...` without the type's name)
  META_LEFT: { errno: -EINVAL, msg: (left: number, needed: number) => `meta_left:${left} meta_needed:${needed}` },
  INVALID_KIND: { errno: -EINVAL, msg: (kind: number) => `Invalid kind:${kind}` },
  INVALID_NAME_OFFSET: { errno: -EINVAL, msg: (off: number) => `Invalid name_offset:${off}` },
  // The kinds' check_meta
  VLEN_NOT_ZERO: { errno: -EINVAL, msg: () => 'vlen != 0' },
  INVALID_KIND_FLAG: { errno: -EINVAL, msg: () => 'Invalid btf_info kind_flag' },
  INVALID_INT_DATA: { errno: -EINVAL, msg: (data: number) => `Invalid int_data:${data.toString(16)}` },
  NR_BITS_EXCEEDS_128: { errno: -EINVAL, msg: () => 'nr_bits exceeds 128' },
  NR_BITS_EXCEEDS_SIZE: { errno: -EINVAL, msg: () => 'nr_bits exceeds type_size' },
  UNSUPPORTED_ENCODING: { errno: -ENOTSUPP, msg: () => 'Unsupported encoding' },
  INVALID_TYPE_ID: { errno: -EINVAL, msg: () => 'Invalid type_id' },
  INVALID_NAME: { errno: -EINVAL, msg: () => 'Invalid name' },
  TYPE_NOT_ZERO: { errno: -EINVAL, msg: () => 'type != 0' },
  SIZE_NOT_ZERO: { errno: -EINVAL, msg: () => 'size != 0' },
  SIZE_ZERO: { errno: -EINVAL, msg: () => 'size == 0' },
  INVALID_ELEM: { errno: -EINVAL, msg: () => 'Invalid elem' },
  INVALID_INDEX: { errno: -EINVAL, msg: () => 'Invalid index' },
  INVALID_MEMBER_NAME_OFFSET: { errno: -EINVAL, msg: (off: number) => `Invalid member name_offset:${off}` },
  INVALID_MEMBER_BITS_OFFSET: { errno: -EINVAL, msg: () => 'Invalid member bits_offset' },
  MEMBER_BITS_OFFSET_EXCEEDS: { errno: -EINVAL, msg: () => 'Member bits_offset exceeds its struct size' },
  UNEXPECTED_SIZE: { errno: -EINVAL, msg: () => 'Unexpected size' },
  ENUM_INVALID_NAME_OFFSET: { errno: -EINVAL, msg: (off: number) => `\tInvalid name_offset:${off}` },
  INVALID_FUNC_LINKAGE: { errno: -EINVAL, msg: () => 'Invalid func linkage' },
  LINKAGE_NOT_SUPPORTED: { errno: -EINVAL, msg: () => 'Linkage not supported' },
  INVALID_OFFSET: { errno: -EINVAL, msg: () => 'Invalid offset' },
  INVALID_SIZE: { errno: -EINVAL, msg: () => 'Invalid size' },
  INVALID_OFFSET_SIZE: { errno: -EINVAL, msg: () => 'Invalid offset+size' },
  INVALID_BTF_INFO_SIZE: { errno: -EINVAL, msg: () => 'Invalid btf_info size' },
  INVALID_TYPE_SIZE: { errno: -EINVAL, msg: () => 'Invalid type_size' },
  INVALID_VALUE: { errno: -EINVAL, msg: () => 'Invalid value' },
  INVALID_COMPONENT_IDX: { errno: -EINVAL, msg: () => 'Invalid component_idx' },
  // btf_resolve(), the kinds' resolve and check_member, btf_func_proto_check(), btf_func_check()
  LOOP_DETECTED: { errno: -EEXIST, msg: () => 'Loop detected' },
  MAX_RESOLVE_DEPTH: { errno: -E2BIG, msg: (depth: number) => `Exceeded max resolving depth:${depth}` },
  INVALID_RESOLVE_STATE: { errno: -EINVAL, msg: () => 'Invalid resolve state' },
  UNSUPPORTED_RESOLVE: { errno: -EINVAL, msg: () => 'Unsupported resolve' },
  UNSUPPORTED_CHECK_MEMBER: { errno: -EINVAL, msg: () => 'Unsupported check_member' },
  UNSUPPORTED_CHECK_KFLAG_MEMBER: { errno: -EINVAL, msg: () => 'Unsupported check_kflag_member' },
  INVALID_ARRAY_OF_INT: { errno: -EINVAL, msg: () => 'Invalid array of int' },
  ARRAY_SIZE_OVERFLOW: { errno: -EINVAL, msg: () => 'Array size overflows U32_MAX' },
  INVALID_MEMBER: { errno: -EINVAL, msg: () => 'Invalid member' },
  MEMBER_NOT_BYTE_ALIGNED: { errno: -EINVAL, msg: () => 'Member is not byte aligned' },
  MEMBER_NOT_PROPERLY_ALIGNED: { errno: -EINVAL, msg: () => 'Member is not properly aligned' },
  MEMBER_EXCEEDS_STRUCT_SIZE: { errno: -EINVAL, msg: () => 'Member exceeds struct_size' },
  BITS_OFFSET_EXCEEDS_U32: { errno: -EINVAL, msg: () => 'bits_offset exceeds U32_MAX' },
  NR_COPY_BITS_EXCEEDS_128: { errno: -EINVAL, msg: () => 'nr_copy_bits exceeds 128' },
  INVALID_MEMBER_BASE_TYPE: { errno: -EINVAL, msg: () => 'Invalid member base type' },
  INVALID_MEMBER_OFFSET: { errno: -EINVAL, msg: () => 'Invalid member offset' },
  INVALID_MEMBER_BITFIELD_SIZE: { errno: -EINVAL, msg: () => 'Invalid member bitfield_size' },
  NOT_A_VAR: { errno: -EINVAL, msg: () => 'Not a VAR kind member' },
  INVALID_TYPE: { errno: -EINVAL, msg: () => 'Invalid type' },
  INVALID_RETURN_TYPE: { errno: -EINVAL, msg: () => 'Invalid return type' },
  INVALID_ARG: { errno: -EINVAL, msg: (n: number) => `Invalid arg#${n}` },
  // .BTF.ext (libbpf)
  EXT_HDR_NOT_FOUND: { errno: -EINVAL, msg: () => 'BTF.ext header not found' },
  EXT_INVALID_MAGIC: { errno: -EINVAL, msg: (magic: number) => `Invalid BTF.ext magic:${magic.toString(16)}` },
  EXT_UNSUPPORTED_VERSION: { errno: -ENOTSUPP, msg: (v: number) => `Unsupported BTF.ext version:${v}` },
  EXT_UNSUPPORTED_FLAGS: { errno: -ENOTSUPP, msg: (f: number) => `Unsupported BTF.ext flags:${f.toString(16)}` },
  EXT_NO_DATA: { errno: -EINVAL, msg: () => 'BTF.ext has no data' },
  EXT_UNALIGNED: { errno: -EINVAL, msg: (sec: string) => `.BTF.ext ${sec} section is not aligned to 4 bytes` },
  EXT_BEYOND_END: {
    errno: -EINVAL,
    msg: (sec: string, off: number, len: number) => `${sec} section (off:${off} len:${len}) is beyond the end of the ELF section .BTF.ext`,
  },
  EXT_NO_RECORD_SIZE: { errno: -EINVAL, msg: (sec: string) => `.BTF.ext ${sec} record size not found` },
  EXT_BAD_RECORD_SIZE: { errno: -EINVAL, msg: (sec: string, size: number) => `${sec} section in .BTF.ext has invalid record size ${size}` },
  EXT_NO_RECORDS: { errno: -EINVAL, msg: (sec: string) => `${sec} section in .BTF.ext has no records` },
  EXT_NO_SEC_HDR: { errno: -EINVAL, msg: (sec: string) => `${sec} section header is not found in .BTF.ext` },
  EXT_BAD_NUM_RECORDS: { errno: -EINVAL, msg: (sec: string) => `${sec} section has incorrect num_records in .BTF.ext` },
  EXT_BAD_SEC_NAME: { errno: -EINVAL, msg: (sec: string, off: number) => `${sec} section has invalid sec_name_off ${off}` },
} as const satisfies Record<string, ErrorRow>;
export type BtfErrorCode = keyof typeof BTF_ERRORS;

/**
 * Malformed BTF, as the kernel's btf_parse() rejects it: a negative errno (-EINVAL mostly), the
 * table code, the type id when a type is at fault, and the verifier's log lines (the message
 * is the lines joined; the last one carries the reason).
 */
export class BtfError extends Error {
  readonly errno: number;
  readonly code: BtfErrorCode | undefined;
  readonly typeId: number | undefined;
  readonly log: readonly string[];
  constructor(msg: string, opts: { errno?: number; code?: BtfErrorCode; typeId?: number; log?: readonly string[] } = {}) {
    super(msg);
    this.name = 'BtfError';
    this.errno = opts.errno ?? -EINVAL;
    this.code = opts.code;
    this.typeId = opts.typeId;
    this.log = opts.log ?? [msg];
  }
}

export type ErrorArgs<C extends BtfErrorCode> = Parameters<(typeof BTF_ERRORS)[C]['msg']>;

/** The reason text of a code. */
export function btfMsg<C extends BtfErrorCode>(code: C, ...args: ErrorArgs<C>): string {
  return (BTF_ERRORS[code].msg as (...a: unknown[]) => string)(...args);
}

/**
 * Throws the error of `code`: `context` are the log lines before the reason (a struct's line
 * for a member error), `line(reason)` builds the reason's line.
 */
export function btfFail<C extends BtfErrorCode>(
  code: C, where: { typeId?: number; context?: readonly string[]; line?: (reason: string) => string },
  ...args: ErrorArgs<C>
): never {
  const reason = btfMsg(code, ...args);
  const log = [...(where.context ?? []), where.line ? where.line(reason) : reason];
  throw new BtfError(log.join('\n'), { errno: BTF_ERRORS[code].errno, code, typeId: where.typeId, log });
}
