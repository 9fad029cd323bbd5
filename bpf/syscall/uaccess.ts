/**
 * @fileoverview access_ok() for bpf() called by a user process. The bpf() code reads and writes
 * user buffers through the kernel's view of memory, where the current process's pages show at
 * their user addresses (kernel/mm.ts) — and so does the kernel. On Linux, copy_from_user and
 * copy_to_user refuse a pointer outside user space with -EFAULT before touching it; this check
 * gives the same answer for the attr pointer and every pointer field of the command's attr
 * (keys, values, instructions, license, logs, test-run buffers, info, BTF, the raw_tp name).
 *
 * It runs before the command (kernel/process.ts's per-syscall access checks), so a kernel
 * pointer is -EFAULT even where v5.5 would have found another error first: a documented
 * difference in order only.
 */
import type { GuestMemory } from '../../emulator/memory.ts';
import { TASK_SIZE_MAX } from '../../kernel/layout.ts';
import {
  ATTR_FIELDS, BPF_ATTR_SIZE, BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM, BPF_MAP_DELETE_ELEM, BPF_MAP_GET_NEXT_KEY,
  BPF_PROG_LOAD, BPF_PROG_TEST_RUN, BPF_OBJ_GET_INFO_BY_FD, BPF_BTF_LOAD, BPF_RAW_TRACEPOINT_OPEN,
} from './attr.ts';

export const EFAULT = 14;
const PAGE_SIZE = 4096;

/** The user pointers in each command's attr: [layout, field names]. */
const POINTERS: Readonly<Record<number, readonly [keyof typeof ATTR_FIELDS, readonly string[]]>> = {
  [BPF_MAP_LOOKUP_ELEM]: ['map_elem', ['key', 'value']],
  [BPF_MAP_UPDATE_ELEM]: ['map_elem', ['key', 'value']],
  [BPF_MAP_DELETE_ELEM]: ['map_elem', ['key']],
  [BPF_MAP_GET_NEXT_KEY]: ['map_next_key', ['key', 'next_key']],
  [BPF_PROG_LOAD]: ['prog_load', ['insns', 'license', 'log_buf', 'func_info', 'line_info']],
  [BPF_PROG_TEST_RUN]: ['test', ['data_in', 'data_out', 'ctx_in', 'ctx_out']],
  [BPF_OBJ_GET_INFO_BY_FD]: ['info', ['info']],
  [BPF_BTF_LOAD]: ['btf_load', ['btf', 'btf_log_buf']],
  [BPF_RAW_TRACEPOINT_OPEN]: ['raw_tp', ['name']],
};

/** A user range: [addr, addr + size) inside user space. */
export const accessOk = (addr: bigint, size: bigint): boolean => addr <= TASK_SIZE_MAX && size <= TASK_SIZE_MAX - addr;

/**
 * 0, or -EFAULT when bpf(cmd, uattr, size) from a process names memory outside user space.
 * `user` is the process's own memory (a kernel address is never mapped there).
 */
export function bpfAccessOk(args: readonly bigint[], user: GuestMemory): number {
  const cmd = Number(BigInt.asIntN(32, args[0] ?? 0n)), uattr = args[1] ?? 0n;
  const size = Math.min(Number((args[2] ?? 0n) & 0xffffffffn), PAGE_SIZE);
  if (!accessOk(uattr, BigInt(size))) return -EFAULT;
  const ptrs = POINTERS[cmd];
  if (!ptrs || size === 0) return 0;
  let bytes: Uint8Array;
  try { bytes = user.read(uattr, Math.min(size, BPF_ATTR_SIZE)); } catch { return -EFAULT; }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const [layout, names] = ptrs;
  for (const [name, off, width] of ATTR_FIELDS[layout]!) {
    if (width !== 8 || !names.includes(name) || off + 8 > bytes.length) continue;
    const p = dv.getBigUint64(off, true);
    if (p !== 0n && !accessOk(p, 1n)) return -EFAULT;
  }
  return 0;
}
