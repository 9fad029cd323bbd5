/**
 * @fileoverview The tracing helpers of kernel/trace/bpf_trace.c (v5.5): probe reads of kernel
 * and user memory (6ae08ae3dea2 split bpf_probe_read into _kernel/_user; the old ids stay as
 * the "compat" forms, which on x86-64 read kernel memory the same way) and bpf_trace_printk.
 *
 * Probe reads copy `size` bytes, or zero the whole destination and return -EFAULT if any source
 * byte is unmapped. The _str forms copy up to size - 1 bytes and a NUL and return the length
 * including the NUL; on a fault the destination is zeroed and -EFAULT returned.
 */
import type { HelperDef } from '../prog.ts';
import { formatTracePrintk, BPF_PRINTK_STR_BUF } from './printk.ts';
import { errnoU64, helper, type HelperEnv } from './helpers.ts';
import { probeKernelRead, probeUserRead, strncpyFromUnsafe, strncpyFromUnsafeUser } from './probe.ts';

type Reader = (src: bigint, size: number) => Uint8Array | number;
type StrReader = (src: bigint, count: number) => { buf: Uint8Array; ret: number };

export function traceHelpers(env: HelperEnv): HelperDef[] {
  const k = env.kernel, mem = k.machine.mem;
  const u32 = (v: bigint): number => Number(BigInt.asUintN(32, v));

  /** bpf_probe_read_{kernel,user}_common: copy, or memset(dst, 0, size) and the error. */
  const probeRead = (read: Reader) => (dst: bigint, size: bigint, src: bigint): bigint => {
    const n = u32(size);
    const r = read(src, n);
    if (typeof r === 'number') { if (n > 0) mem.write(dst, new Uint8Array(n)); return errnoU64(r); }
    if (n > 0) mem.write(dst, r);
    return 0n;
  };

  /** bpf_probe_read_{kernel,user}_str_common: the string and its length with the NUL. */
  const probeReadStr = (read: StrReader) => (dst: bigint, size: bigint, src: bigint): bigint => {
    const n = u32(size);
    const { buf, ret } = read(src, n);
    if (ret < 0) { if (n > 0) mem.write(dst, new Uint8Array(n)); return errnoU64(ret); }
    // Only the copied bytes are written: the rest of dst is left as it was.
    if (ret > 0) mem.write(dst, buf.subarray(0, ret));
    return BigInt(ret);
  };

  const kernelRead: Reader = (src, n) => probeKernelRead(mem, src, n);
  const userRead: Reader = (src, n) => probeUserRead(mem, src, n);
  const kernelStr: StrReader = (src, n) => strncpyFromUnsafe(mem, src, n);
  const userStr: StrReader = (src, n) => strncpyFromUnsafeUser(mem, src, n);

  return [
    // long bpf_probe_read(dst, size, unsafe_ptr): the compat form, kernel memory on x86-64.
    helper('probe_read', 3, probeRead(kernelRead)),
    helper('probe_read_str', 3, probeReadStr(kernelStr)),
    helper('probe_read_user', 3, probeRead(userRead)),
    helper('probe_read_kernel', 3, probeRead(kernelRead)),
    helper('probe_read_user_str', 3, probeReadStr(userStr)),
    helper('probe_read_kernel_str', 3, probeReadStr(kernelStr)),
    // long bpf_trace_printk(fmt, fmt_size, arg1, arg2, arg3): a line in the trace pipe.
    helper('trace_printk', 5, (fmt, fmtSize, a1, a2, a3) => {
      const n = u32(fmtSize);
      // The verifier checks fmt is fmt_size initialized bytes; an unmapped fmt is a bug.
      const text = formatTracePrintk(n === 0 ? new Uint8Array(0) : mem.read(fmt, n), [a1, a2, a3], (p) => {
        // What was read before a NUL, the 64th byte or a fault (the fault itself is not reported).
        const { buf } = strncpyFromUnsafe(mem, p, BPF_PRINTK_STR_BUF);
        return buf.subarray(0, buf.indexOf(0));
      });
      if (typeof text === 'number') return errnoU64(text);
      const cur = k.current;
      // A line of the trace buffer; the trailing newline of the format ends it.
      k.trace.write({ comm: cur.comm, pid: cur.pid, cpu: 0, ns: k.clock.ktimeGetNs(), text: text.replace(/\n$/, '') });
      return BigInt(Buffer.byteLength(text, 'utf8'));
    }),
  ];
}
