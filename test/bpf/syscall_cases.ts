/**
 * @fileoverview The bpf() bad-input table: each case a command, its attr fields by uAPI name
 * (values may name fixtures: $array, $hash, $prog, $key, $value, $insns…), an attr size, and the
 * errno v5.5 gives. The same table runs on bpfemu (test/bpf/syscall.test.ts) and on the host's
 * real kernel (test/host/syscall_oracle.test.ts), whose answers are recorded as a fixture.
 */
import {
  BPF_MAP_CREATE, BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM, BPF_MAP_DELETE_ELEM, BPF_MAP_GET_NEXT_KEY,
  BPF_PROG_LOAD, BPF_PROG_TEST_RUN, BPF_PROG_GET_NEXT_ID, BPF_MAP_GET_FD_BY_ID, BPF_PROG_GET_FD_BY_ID,
  BPF_OBJ_GET_INFO_BY_FD, BPF_BTF_LOAD, BPF_MAP_FREEZE,
  BPF_ATTR_SIZE, ATTR_FIELDS,
} from '../../bpf/syscall/attr.ts';

export type Fields = Record<string, number | bigint | string>;

export interface SyscallCase {
  name: string;
  cmd: number;
  fields: Fields;
  /** The attr size passed to bpf() (default 120, sizeof(union bpf_attr) in v5.5). */
  size?: number;
  /** Extra non-zero bytes in the attr: [offset, value]. */
  poke?: [number, number][];
  /** The errno v5.5 returns (0 for success, where a valid call is the point). */
  errno: number;
}

export const EPERM = 1, ENOENT = 2, E2BIG = 7, EBADF = 9, EACCES = 13, EBUSY = 16, EEXIST = 17, EINVAL = 22;

const array = { map_type: 2, key_size: 4, value_size: 8, max_entries: 4 };
const hash = { map_type: 1, key_size: 4, value_size: 8, max_entries: 4 };

/** Programs as hex `struct bpf_insn` strings (little-endian, 8 bytes each). */
export const PROGS: Record<string, string> = {
  ok: 'b700000001000000' + '9500000000000000',                 // r0 = 1; exit
  badop: 'ff00000000000000' + '9500000000000000',              // opcode 0xff
  noexit: 'b700000001000000',                                  // falls off the end
  fpwrite: 'b70a000001000000' + '9500000000000000',            // r10 = 1
  jumpout: '0500050000000000' + '9500000000000000',            // goto +5
  badreg: 'b70b000001000000' + '9500000000000000',             // r11 = 1
  halflddw: '1800000001000000' + '9500000000000000',           // ld_imm64 without its second half
};

export const CASES: SyscallCase[] = [
  { name: 'unknown command', cmd: 999, fields: {}, errno: EINVAL },
  { name: 'attr size over a page', cmd: BPF_MAP_CREATE, fields: array, size: 4097, errno: E2BIG },
  { name: 'bigger attr with a non-zero tail', cmd: BPF_MAP_CREATE, fields: array, size: 256, poke: [[200, 1]], errno: E2BIG },
  { name: 'bigger attr with a zero tail is fine', cmd: BPF_MAP_CREATE, fields: array, size: 256, errno: 0 },
  { name: 'map create: non-zero byte after its fields', cmd: BPF_MAP_CREATE, fields: array, poke: [[100, 1]], errno: EINVAL },
  { name: 'map create: key_size 0', cmd: BPF_MAP_CREATE, fields: { ...hash, key_size: 0 }, errno: EINVAL },
  { name: 'map create: value_size 0', cmd: BPF_MAP_CREATE, fields: { ...array, value_size: 0 }, errno: EINVAL },
  { name: 'map create: max_entries 0', cmd: BPF_MAP_CREATE, fields: { ...array, max_entries: 0 }, errno: EINVAL },
  { name: 'map create: array with an 8-byte key', cmd: BPF_MAP_CREATE, fields: { ...array, key_size: 8 }, errno: EINVAL },
  { name: 'map create: unknown map type', cmd: BPF_MAP_CREATE, fields: { ...array, map_type: 999 }, errno: EINVAL },
  { name: 'map create: unknown flag', cmd: BPF_MAP_CREATE, fields: { ...array, map_flags: 1 << 20 }, errno: EINVAL },
  { name: 'map create: BPF_F_RDONLY | BPF_F_WRONLY', cmd: BPF_MAP_CREATE, fields: { ...array, map_flags: 0x18 }, errno: EINVAL },
  { name: 'map create: BPF_F_MMAPABLE on a hash', cmd: BPF_MAP_CREATE, fields: { ...hash, map_flags: 1 << 10 }, errno: EINVAL },
  { name: 'map create: name with a dash', cmd: BPF_MAP_CREATE, fields: { ...array, map_name: 'bad-name' }, errno: EINVAL },
  { name: 'map create: oversized hash key', cmd: BPF_MAP_CREATE, fields: { ...hash, key_size: 600 }, errno: E2BIG },
  { name: 'map create: oversized array value', cmd: BPF_MAP_CREATE, fields: { ...array, value_size: 1 << 30 }, errno: E2BIG },
  { name: 'lookup: bad fd', cmd: BPF_MAP_LOOKUP_ELEM, fields: { map_fd: 999, key: '$key', value: '$value' }, errno: EBADF },
  { name: 'lookup: fd of a program', cmd: BPF_MAP_LOOKUP_ELEM, fields: { map_fd: '$prog', key: '$key', value: '$value' }, errno: EINVAL },
  { name: 'lookup: unknown flag', cmd: BPF_MAP_LOOKUP_ELEM, fields: { map_fd: '$array', key: '$key', value: '$value', flags: 2 }, errno: EINVAL },
  { name: 'lookup: array index out of range', cmd: BPF_MAP_LOOKUP_ELEM, fields: { map_fd: '$array', key: '$key9', value: '$value' }, errno: ENOENT },
  { name: 'lookup: hash key absent', cmd: BPF_MAP_LOOKUP_ELEM, fields: { map_fd: '$hash', key: '$key', value: '$value' }, errno: ENOENT },
  { name: 'lookup: NULL key pointer', cmd: BPF_MAP_LOOKUP_ELEM, fields: { map_fd: '$array', key: 0, value: '$value' }, errno: 14 },
  { name: 'update: BPF_NOEXIST|BPF_EXIST', cmd: BPF_MAP_UPDATE_ELEM, fields: { map_fd: '$array', key: '$key', value: '$value', flags: 3 }, errno: EINVAL },
  { name: 'update: array BPF_NOEXIST', cmd: BPF_MAP_UPDATE_ELEM, fields: { map_fd: '$array', key: '$key', value: '$value', flags: 1 }, errno: EEXIST },
  { name: 'update: array index out of range', cmd: BPF_MAP_UPDATE_ELEM, fields: { map_fd: '$array', key: '$key9', value: '$value' }, errno: E2BIG },
  { name: 'update: hash BPF_EXIST of an absent key', cmd: BPF_MAP_UPDATE_ELEM, fields: { map_fd: '$hash', key: '$key', value: '$value', flags: 2 }, errno: ENOENT },
  { name: 'update: frozen map', cmd: BPF_MAP_UPDATE_ELEM, fields: { map_fd: '$frozen', key: '$key', value: '$value' }, errno: EPERM },
  { name: 'delete: from an array', cmd: BPF_MAP_DELETE_ELEM, fields: { map_fd: '$array', key: '$key' }, errno: EINVAL },
  { name: 'delete: hash key absent', cmd: BPF_MAP_DELETE_ELEM, fields: { map_fd: '$hash', key: '$key' }, errno: ENOENT },
  { name: 'get_next_key: after the last', cmd: BPF_MAP_GET_NEXT_KEY, fields: { map_fd: '$array', key: '$key3', next_key: '$value' }, errno: ENOENT },
  { name: 'freeze: twice', cmd: BPF_MAP_FREEZE, fields: { map_fd: '$frozen' }, errno: EBUSY },
  { name: 'freeze: bad fd', cmd: BPF_MAP_FREEZE, fields: { map_fd: 999 }, errno: EBADF },
  { name: 'prog load: no instructions', cmd: BPF_PROG_LOAD, fields: { prog_type: 6, insn_cnt: 0, insns: '$insns:ok', license: '$gpl' }, errno: E2BIG },
  { name: 'prog load: unknown program type', cmd: BPF_PROG_LOAD, fields: { prog_type: 999, insn_cnt: 2, insns: '$insns:ok', license: '$gpl' }, errno: EINVAL },
  { name: 'prog load: unknown opcode', cmd: BPF_PROG_LOAD, fields: { prog_type: 6, insn_cnt: 2, insns: '$insns:badop', license: '$gpl' }, errno: EINVAL },
  { name: 'prog load: falls off the end', cmd: BPF_PROG_LOAD, fields: { prog_type: 6, insn_cnt: 1, insns: '$insns:noexit', license: '$gpl' }, errno: EINVAL },
  { name: 'prog load: writes the frame pointer', cmd: BPF_PROG_LOAD, fields: { prog_type: 6, insn_cnt: 2, insns: '$insns:fpwrite', license: '$gpl' }, errno: EACCES },
  { name: 'prog load: jump out of range', cmd: BPF_PROG_LOAD, fields: { prog_type: 6, insn_cnt: 2, insns: '$insns:jumpout', license: '$gpl' }, errno: EINVAL },
  { name: 'prog load: R11', cmd: BPF_PROG_LOAD, fields: { prog_type: 6, insn_cnt: 2, insns: '$insns:badreg', license: '$gpl' }, errno: EINVAL },
  { name: 'prog load: half an ld_imm64', cmd: BPF_PROG_LOAD, fields: { prog_type: 6, insn_cnt: 2, insns: '$insns:halflddw', license: '$gpl' }, errno: EINVAL },
  { name: 'prog load: log_size under 128', cmd: BPF_PROG_LOAD, fields: { prog_type: 6, insn_cnt: 2, insns: '$insns:ok', license: '$gpl', log_level: 1, log_size: 64, log_buf: '$log' }, errno: EINVAL },
  { name: 'prog load: attach_btf_id on XDP', cmd: BPF_PROG_LOAD, fields: { prog_type: 6, insn_cnt: 2, insns: '$insns:ok', license: '$gpl', attach_btf_id: 5 }, errno: EINVAL },
  { name: 'test run: bad fd', cmd: BPF_PROG_TEST_RUN, fields: { prog_fd: 999 }, errno: EBADF },
  { name: 'test run: packet shorter than ETH_HLEN', cmd: BPF_PROG_TEST_RUN, fields: { prog_fd: '$prog', data_in: '$value', data_size_in: 8 }, errno: EINVAL },
  { name: 'test run: fd of a map', cmd: BPF_PROG_TEST_RUN, fields: { prog_fd: '$array', data_in: '$value', data_size_in: 64 }, errno: EINVAL },
  { name: 'get next id: start_id INT_MAX', cmd: BPF_PROG_GET_NEXT_ID, fields: { start_id: 0x7fffffff }, errno: EINVAL },
  { name: 'get next id: past the last', cmd: BPF_PROG_GET_NEXT_ID, fields: { start_id: 0x7ffffffe }, errno: ENOENT },
  { name: 'get fd by id: absent id', cmd: BPF_MAP_GET_FD_BY_ID, fields: { start_id: 0x7ffffffe }, errno: ENOENT },
  { name: 'get fd by id: bad open_flags', cmd: BPF_PROG_GET_FD_BY_ID, fields: { start_id: 1, open_flags: 0x100 }, errno: EINVAL },
  { name: 'info: bad fd (-EBADFD, not -EBADF)', cmd: BPF_OBJ_GET_INFO_BY_FD, fields: { bpf_fd: 999, info_len: 8, info: '$value' }, errno: 77 },
  { name: 'btf load: garbage', cmd: BPF_BTF_LOAD, fields: { btf: '$value', btf_size: 64 }, errno: EINVAL },
];

/** The attr bytes of a case, fixtures substituted. */
export function attrBytes(c: SyscallCase, fixtures: Record<string, bigint>): Uint8Array {
  const layout = Object.entries(ATTR_FIELDS).find(([, fs]) => Object.keys(c.fields).every((n) => fs.some(([f]) => f === n)))?.[0];
  const bytes = new Uint8Array(Math.max(c.size ?? BPF_ATTR_SIZE, BPF_ATTR_SIZE));
  const dv = new DataView(bytes.buffer);
  for (const [name, raw] of Object.entries(c.fields)) {
    const [, off, w] = ATTR_FIELDS[layout!]!.find(([f]) => f === name)!;
    const v = typeof raw === 'string' && raw.startsWith('$') ? fixtures[raw.slice(1)]! : raw;
    if (w === 16) bytes.set(Buffer.from(String(v)).subarray(0, 16), off);
    else if (w === 8) dv.setBigUint64(off, BigInt(v), true);
    else dv.setUint32(off, Number(v), true);
  }
  for (const [off, v] of c.poke ?? []) bytes[off] = v;
  return bytes.subarray(0, c.size ?? BPF_ATTR_SIZE);
}

