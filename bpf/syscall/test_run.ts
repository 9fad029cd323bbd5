/**
 * @fileoverview BPF_PROG_TEST_RUN as net/bpf/test_run.c does it (v5.5): skb and XDP programs get
 * a packet built from data_in (bpf_test_init first calls bpf_fentry_test1..6 in the kernel and
 * fails with -EFAULT if any returns a wrong value), run `repeat` times, and report retval,
 * data_out and the average duration; tracing programs call the kernel's test functions.
 *
 * The context is the kernel's own structure, set up by the image's C code as the kernel sets it
 * up (images/kernel/netdev.c): an `struct sk_buff` from the loopback device, with
 * skb->protocol from eth_type_trans() and the MAC header pushed back for tc programs, or an
 * `struct xdp_buff` on the loopback device's rx queue 0. Programs read them through their uAPI
 * context, which the load rewrote (bpf/ctx_convert.ts).
 */
import type { BpfSubsystem } from './bpf.ts';
import type { Attr } from './attr.ts';
import type { BpfProgObj } from './objects.ts';
import { PROG_TYPES, BPF_MODIFY_RETURN } from '../prog_types.ts';
import { fmodRetTestRun } from '../fmod_ret.ts';
import { PROT_R, PROT_W } from '../../emulator/memory.ts';
import { kernelField } from '../ctx_convert.ts';

const EINVAL = 22, EFAULT = 14, ENOSPC = 28, ENOTSUPP = 524;
export const ETH_HLEN = 14;
export const XDP_PACKET_HEADROOM = 256;
/** NET_SKB_PAD + NET_IP_ALIGN on x86-64. */
export const SKB_HEADROOM = 64;
/** SKB_DATA_ALIGN(sizeof(struct skb_shared_info)) on x86-64. */
export const TAILROOM = 320;
const PAGE_SIZE = 4096;
/** Where test-run contexts and packets live (a kernel buffer; low, as a page from the allocator). */
export const TEST_RUN_AREA = 0x100000n;
const AREA_SIZE = 4 * PAGE_SIZE;
const CTX = TEST_RUN_AREA, BUF = TEST_RUN_AREA + 0x400n;

function area(sub: BpfSubsystem): void {
  const mem = sub.kernel.machine.mem;
  if (!mem.find(TEST_RUN_AREA)) mem.map(TEST_RUN_AREA, AREA_SIZE, PROT_R | PROT_W, { name: 'test_run packet' });
}

export function testRun(sub: BpfSubsystem, p: BpfProgObj, f: Attr, uattr: bigint): number {
  const kind = PROG_TYPES[p.type]?.testRun ?? 'none';
  if (kind === 'none') return -ENOTSUPP;
  const mem = sub.kernel.machine.mem;
  if (kind === 'tracing') {
    if (f.ctx_in || f.ctx_out || f.data_in || f.data_out || f.data_size_in) return -EINVAL;
    if (p.expectedAttachType === BPF_MODIFY_RETURN) { // 5.7: ((u32)side_effect << 16) | ret
      sub.writeTestResult(uattr, 'retval', fmodRetTestRun(sub.kernel));
      sub.writeTestResult(uattr, 'duration', 0);
      return 0;
    }
    const r = Number(BigInt.asIntN(32, sub.kernel.call('bpfemu_test_run_tracing')));
    if (r !== 0) return -EFAULT;
    sub.writeTestResult(uattr, 'retval', 0);
    sub.writeTestResult(uattr, 'duration', 0);
    return 0;
  }
  if (f.ctx_in || f.ctx_out || f.ctx_size_in || f.ctx_size_out) return -EINVAL; // no ctx in v5.5 for these
  const size = f.data_size_in as number;
  const headroom = kind === 'xdp' ? XDP_PACKET_HEADROOM : SKB_HEADROOM;
  if (size < ETH_HLEN || size > PAGE_SIZE - headroom - TAILROOM) return -EINVAL;
  // bpf_test_init: the fentry test functions must give the kernel's values.
  if (BigInt.asIntN(32, sub.kernel.call('bpf_test_run_fentry')) !== 0n) return -EFAULT;
  const btf = sub.vmlinuxBtf;
  if (!btf) return -ENOTSUPP;
  const input = mem.read(f.data_in as bigint, size);
  area(sub);
  mem.view(TEST_RUN_AREA, AREA_SIZE).fill(0);
  mem.write(BUF + BigInt(headroom), input);
  const isL2 = p.type === 3 || p.type === 4; // tc programs see the Ethernet header
  if (kind === 'xdp') sub.kernel.call('bpfemu_test_xdp_init', [CTX, BUF, size]);
  else sub.kernel.call('bpfemu_test_skb_init', [CTX, BUF, size, isL2 ? 1 : 0]);
  const repeat = Math.max(1, f.repeat as number);
  let retval = 0n, t = 0n;
  for (let i = 0; i < repeat; i++) {
    const t0 = sub.kernel.clock.ktimeGetNs();
    retval = sub.runProg(p, CTX);
    t += sub.kernel.clock.ktimeGetNs() - t0;
  }
  let out: Uint8Array;
  if (kind === 'xdp') {
    // The program may have moved data or data_end (bpf_xdp_adjust_head/tail).
    const data = mem.readU64(CTX + BigInt(kernelField(btf, 'xdp_buff', 'data').off));
    const end = mem.readU64(CTX + BigInt(kernelField(btf, 'xdp_buff', 'data_end').off));
    out = mem.read(data, Number(end - data));
  } else {
    sub.kernel.call('bpfemu_test_skb_finish', [CTX, isL2 ? 1 : 0]); // non-L2: a zeroed MAC header back in front
    const data = mem.readU64(CTX + BigInt(kernelField(btf, 'sk_buff', 'data').off));
    out = mem.read(data, mem.readU32(CTX + BigInt(kernelField(btf, 'sk_buff', 'len').off)));
  }
  // bpf_test_finish: data_out truncated to data_size_out gives -ENOSPC (after writing what fits).
  let err = 0;
  const dataOut = f.data_out as bigint;
  if (dataOut) {
    let n = out.length;
    const room = f.data_size_out as number;
    if (room && n > room) { n = room; err = -ENOSPC; }
    mem.write(dataOut, out.subarray(0, n));
  }
  sub.writeTestResult(uattr, 'data_size_out', out.length);
  sub.writeTestResult(uattr, 'retval', Number(BigInt.asUintN(32, retval)));
  sub.writeTestResult(uattr, 'duration', Number(t / BigInt(repeat)));
  return err;
}
