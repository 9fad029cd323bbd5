/**
 * @fileoverview union bpf_attr in its uAPI byte layout (include/uapi/linux/bpf.h, v5.5): the
 * fields each command reads, by their uAPI names, and the last field each command knows
 * (CHECK_ATTR: every byte after it must be zero, else -EINVAL).
 */
import type { GuestMemory } from '../../emulator/memory.ts';

/** sizeof(union bpf_attr) in v5.5: PROG_LOAD's fields end at 116, padded to 8 bytes. */
export const BPF_ATTR_SIZE = 120;

// enum bpf_cmd
export const BPF_MAP_CREATE = 0, BPF_MAP_LOOKUP_ELEM = 1, BPF_MAP_UPDATE_ELEM = 2, BPF_MAP_DELETE_ELEM = 3;
export const BPF_MAP_GET_NEXT_KEY = 4, BPF_PROG_LOAD = 5, BPF_OBJ_PIN = 6, BPF_OBJ_GET = 7, BPF_PROG_ATTACH = 8;
export const BPF_PROG_DETACH = 9, BPF_PROG_TEST_RUN = 10, BPF_PROG_GET_NEXT_ID = 11, BPF_MAP_GET_NEXT_ID = 12;
export const BPF_PROG_GET_FD_BY_ID = 13, BPF_MAP_GET_FD_BY_ID = 14, BPF_OBJ_GET_INFO_BY_FD = 15, BPF_PROG_QUERY = 16;
export const BPF_RAW_TRACEPOINT_OPEN = 17, BPF_BTF_LOAD = 18, BPF_BTF_GET_FD_BY_ID = 19, BPF_TASK_FD_QUERY = 20;
export const BPF_MAP_LOOKUP_AND_DELETE_ELEM = 21, BPF_MAP_FREEZE = 22, BPF_BTF_GET_NEXT_ID = 23;
/** Links (5.7+): BPF_LINK_CREATE 28, BPF_LINK_UPDATE 29, BPF_LINK_GET_FD_BY_ID 30, BPF_LINK_GET_NEXT_ID 31, BPF_LINK_DETACH 34. */
export const BPF_LINK_CREATE = 28, BPF_LINK_GET_FD_BY_ID = 30, BPF_LINK_GET_NEXT_ID = 31, BPF_LINK_DETACH = 34;
/** 5.8: stats on while the returned fd is open. */
export const BPF_ENABLE_STATS = 32;
export const BPF_STATS_RUN_TIME = 0;

type Field = readonly [name: string, off: number, size: 1 | 2 | 4 | 8 | 16];

/** Each command's fields: [uAPI name, offset, size]; 16 = a char[16] name. */
export const ATTR_FIELDS: Readonly<Record<string, readonly Field[]>> = {
  map_create: [['map_type', 0, 4], ['key_size', 4, 4], ['value_size', 8, 4], ['max_entries', 12, 4], ['map_flags', 16, 4],
    ['inner_map_fd', 20, 4], ['numa_node', 24, 4], ['map_name', 28, 16], ['map_ifindex', 44, 4], ['btf_fd', 48, 4],
    ['btf_key_type_id', 52, 4], ['btf_value_type_id', 56, 4]],
  map_elem: [['map_fd', 0, 4], ['key', 8, 8], ['value', 16, 8], ['flags', 24, 8]],
  map_next_key: [['map_fd', 0, 4], ['key', 8, 8], ['next_key', 16, 8]],
  prog_load: [['prog_type', 0, 4], ['insn_cnt', 4, 4], ['insns', 8, 8], ['license', 16, 8], ['log_level', 24, 4],
    ['log_size', 28, 4], ['log_buf', 32, 8], ['kern_version', 40, 4], ['prog_flags', 44, 4], ['prog_name', 48, 16],
    ['prog_ifindex', 64, 4], ['expected_attach_type', 68, 4], ['prog_btf_fd', 72, 4], ['func_info_rec_size', 76, 4],
    ['func_info', 80, 8], ['func_info_cnt', 88, 4], ['line_info_rec_size', 92, 4], ['line_info', 96, 8],
    ['line_info_cnt', 104, 4], ['attach_btf_id', 108, 4], ['attach_prog_fd', 112, 4]],
  test: [['prog_fd', 0, 4], ['retval', 4, 4], ['data_size_in', 8, 4], ['data_size_out', 12, 4], ['data_in', 16, 8],
    ['data_out', 24, 8], ['repeat', 32, 4], ['duration', 36, 4], ['ctx_size_in', 40, 4], ['ctx_size_out', 44, 4],
    ['ctx_in', 48, 8], ['ctx_out', 56, 8]],
  get_id: [['start_id', 0, 4], ['next_id', 4, 4], ['open_flags', 8, 4]],
  info: [['bpf_fd', 0, 4], ['info_len', 4, 4], ['info', 8, 8]],
  btf_load: [['btf', 0, 8], ['btf_log_buf', 8, 8], ['btf_size', 16, 4], ['btf_log_size', 20, 4], ['btf_log_level', 24, 4]],
  raw_tp: [['name', 0, 8], ['prog_fd', 8, 4]],
  map_freeze: [['map_fd', 0, 4]],
  enable_stats: [['type', 0, 4]],
  // tracing.target_btf_id overlays target_btf_id at 16; tracing.cookie (5.19) is the aligned u64 at 24.
  link_create: [['prog_fd', 0, 4], ['target_fd', 4, 4], ['attach_type', 8, 4], ['flags', 12, 4], ['target_btf_id', 16, 4],
    ['tracing_cookie', 24, 8]],
  link_detach: [['link_fd', 0, 4]],
};

/** A command's attr: numeric fields as bigint (u64) or number (u32), names as strings. */
export type Attr = Record<string, number | bigint | string>;

/** Decodes `fields` from the attr bytes (already copied in and zero-extended to BPF_ATTR_SIZE). */
export function readAttr(bytes: Uint8Array, layout: keyof typeof ATTR_FIELDS): Attr {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Attr = {};
  for (const [name, off, size] of ATTR_FIELDS[layout]!) {
    if (size === 16) {
      const raw = bytes.subarray(off, off + 16);
      const end = raw.indexOf(0);
      out[name] = Buffer.from(raw.subarray(0, end < 0 ? 16 : end)).toString('latin1');
    } else if (size === 8) out[name] = dv.getBigUint64(off, true);
    else out[name] = size === 4 ? dv.getUint32(off, true) : size === 2 ? dv.getUint16(off, true) : dv.getUint8(off);
  }
  return out;
}

/** CHECK_ATTR: the bytes after the command's last field are zero. */
export function checkAttrTail(bytes: Uint8Array, layout: keyof typeof ATTR_FIELDS): boolean {
  const fields = ATTR_FIELDS[layout]!;
  const end = Math.max(...fields.map(([, off, size]) => off + size));
  return bytes.subarray(end).every((b) => b === 0);
}

/** Writes a u32 field back into the user's attr (e.g. test.retval, info.info_len). */
export function writeAttrU32(mem: GuestMemory, uattr: bigint, layout: keyof typeof ATTR_FIELDS, name: string, v: number): void {
  const f = ATTR_FIELDS[layout]!.find(([n]) => n === name);
  if (!f) throw new Error(`no field ${name} in ${layout}`);
  mem.writeU32(uattr + BigInt(f[1]), v >>> 0);
}
