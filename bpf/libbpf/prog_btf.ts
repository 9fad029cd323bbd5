/**
 * @fileoverview libbpf_find_prog_btf_id (libbpf, v5.5): the BTF id of a function in another
 * loaded program's BTF, found as libbpf finds it — through bpf(): the program's info gives its
 * btf_id, BTF_GET_FD_BY_ID opens that BTF, its info gives the raw bytes, and the FUNC is looked
 * up by name. Used for fentry/fexit programs with an attach_prog_fd.
 */
import type { BpfSubsystem } from '../syscall/bpf.ts';
import { BPF_OBJ_GET_INFO_BY_FD, BPF_BTF_GET_FD_BY_ID } from '../syscall/attr.ts';
import { PROG_INFO_SIZE, BTF_INFO_SIZE } from '../syscall/info.ts';
import { Btf, BTF_KIND } from '../btf/btf.ts';

const ENOENT = 2, EINVAL = 22;

/** A failure, with libbpf's message and a negative errno. */
export class ProgBtfError extends Error {
  readonly errno: number;
  constructor(msg: string, errno: number) { super(msg); this.name = 'ProgBtfError'; this.errno = errno; }
}

/** The BTF of the program behind `progFd`, read through bpf() (btf__get_from_id). */
export function progBtf(sub: BpfSubsystem, progFd: number): Btf {
  const mem = sub.kernel.machine.mem;
  const info = sub.stage(new Uint8Array(PROG_INFO_SIZE));
  let btfId: number;
  try {
    const r = sub.call(BPF_OBJ_GET_INFO_BY_FD, { bpf_fd: progFd, info_len: PROG_INFO_SIZE, info }).ret;
    if (r < 0) throw new ProgBtfError(`failed get_prog_info_linear for FD ${progFd}`, r);
    btfId = mem.readU32(info + 128n); // bpf_prog_info.btf_id
  } finally { sub.unstage(info); }
  if (!btfId) throw new ProgBtfError(`The target program doesn't have BTF`, -EINVAL);
  const btfFd = sub.call(BPF_BTF_GET_FD_BY_ID, { start_id: btfId }).ret;
  if (btfFd < 0) throw new ProgBtfError(`Failed to get BTF of the program`, btfFd);
  try {
    const binfo = sub.stage(new Uint8Array(BTF_INFO_SIZE));
    try {
      // First the size, then the bytes (btf__get_from_id does the same two calls).
      let r = sub.call(BPF_OBJ_GET_INFO_BY_FD, { bpf_fd: btfFd, info_len: BTF_INFO_SIZE, info: binfo }).ret;
      if (r < 0) throw new ProgBtfError('Failed to get BTF info', r);
      const size = mem.readU32(binfo + 8n);
      const buf = sub.stage(new Uint8Array(size));
      try {
        mem.writeU64(binfo, buf);
        mem.writeU32(binfo + 8n, size);
        r = sub.call(BPF_OBJ_GET_INFO_BY_FD, { bpf_fd: btfFd, info_len: BTF_INFO_SIZE, info: binfo }).ret;
        if (r < 0) throw new ProgBtfError('Failed to get BTF info', r);
        return new Btf(mem.read(buf, size).slice());
      } finally { sub.unstage(buf); }
    } finally { sub.unstage(binfo); }
  } finally { sub.kernel.current.files.close(btfFd); }
}

/** The BTF id of FUNC `name` in the program behind `progFd`. */
export function findProgBtfId(sub: BpfSubsystem, progFd: number, name: string): number {
  const f = progBtf(sub, progFd).findByNameKind(name, BTF_KIND.FUNC);
  if (!f) throw new ProgBtfError(`${name} is not found in prog's BTF`, -ENOENT);
  return f.id;
}
