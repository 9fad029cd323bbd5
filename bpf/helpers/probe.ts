/**
 * @fileoverview Reading memory that may not be there (mm/maccess.c, v5.5): probe_kernel_read(),
 * strncpy_from_unsafe() and their user-space twins. A fault is a result (-EFAULT), never a
 * GuestMemoryError: a helper probing an unmapped address must not stop the program.
 */
import { PROT_R, type GuestMemory } from '../../emulator/memory.ts';

export const EFAULT = 14;
/** TASK_SIZE_MAX on x86-64 with 4-level paging: the end of user space (access_ok()'s limit). */
export const TASK_SIZE_MAX = 0x00007ffffffff000n;

/** Whether every byte of [addr, addr + len) is mapped readable. */
export function readable(mem: GuestMemory, addr: bigint, len: number): boolean {
  const end = addr + BigInt(len);
  if (addr < 0n || end > 1n << 64n) return false;
  let a = addr;
  while (a < end) {
    const m = mem.find(a);
    if (!m || (m.perms & PROT_R) === 0) return false;
    a = m.end;
  }
  return true;
}

/** probe_kernel_read(): the bytes, or -EFAULT if any of them is unmapped. */
export function probeKernelRead(mem: GuestMemory, src: bigint, size: number): Uint8Array | number {
  if (size === 0) return new Uint8Array(0);
  return readable(mem, src, size) ? mem.read(src, size) : -EFAULT;
}

/** probe_user_read(): as probe_kernel_read, and the range must lie in user space (access_ok). */
export function probeUserRead(mem: GuestMemory, src: bigint, size: number): Uint8Array | number {
  if (src + BigInt(size) > TASK_SIZE_MAX) return -EFAULT;
  return probeKernelRead(mem, src, size);
}

/**
 * strncpy_from_unsafe(dst, src, count): copies up to and including the NUL, at most `count`
 * bytes, the last one always turned into NUL; returns the bytes (`count`-sized buffer, unused tail
 * zero) and the number copied including the NUL, or -EFAULT when a byte could not be read.
 * On a fault the bytes read so far are kept (bpf_trace_printk's %s prints them).
 */
export function strncpyFromUnsafe(mem: GuestMemory, src: bigint, count: number): { buf: Uint8Array; ret: number } {
  const buf = new Uint8Array(Math.max(count, 0));
  if (count <= 0) return { buf, ret: 0 };
  let n = 0;
  for (;;) {
    const a = src + BigInt(n);
    if (!readable(mem, a, 1)) { buf[n] = 0; return { buf, ret: -EFAULT }; }
    const c = mem.readU8(a);
    buf[n++] = c;
    if (c === 0 || n >= count) break;
  }
  buf[n - 1] = 0;
  return { buf, ret: n };
}

/**
 * strncpy_from_unsafe_user(): strncpy_from_user() under the same contract (length including the
 * NUL, `count` when truncated), -EFAULT for a fault or a range past user space.
 */
export function strncpyFromUnsafeUser(mem: GuestMemory, src: bigint, count: number): { buf: Uint8Array; ret: number } {
  if (count > 0 && src >= TASK_SIZE_MAX) return { buf: new Uint8Array(count), ret: -EFAULT };
  const r = strncpyFromUnsafe(mem, src, Math.min(count, Number(TASK_SIZE_MAX - src)));
  if (r.buf.length < count) { const b = new Uint8Array(count); b.set(r.buf); r.buf = b; }
  return r;
}
