/**
 * @fileoverview BPF_PROG_TEST_RUN as net/bpf/test_run.c does it (v5.5): skb and XDP programs get
 * a packet built from data_in (bpf_test_init first calls bpf_fentry_test1..6 in the kernel and
 * fails with -EFAULT if any returns a wrong value), run `repeat` times, and report retval,
 * data_out and the average duration; tracing programs call the kernel's test functions.
 *
 * The packet and its context live below 4 GiB so that xdp_md's and __sk_buff's 32-bit data
 * pointers hold real addresses: the kernel rewrites those context loads into loads of the
 * kernel structures' pointers (convert_ctx_access), which the verifier of a later issue models.
 */
import type { BpfSubsystem } from './bpf.ts';
import type { Attr } from './attr.ts';
import type { BpfProgObj } from './objects.ts';
import { PROG_TYPES } from '../prog_types.ts';
import { PROT_R, PROT_W } from '../../emulator/memory.ts';

const EINVAL = 22, EFAULT = 14, ENOSPC = 28, ENOTSUPP = 524;
export const ETH_HLEN = 14;
export const XDP_PACKET_HEADROOM = 256;
/** SKB_DATA_ALIGN(sizeof(struct skb_shared_info)) on x86-64. */
export const TAILROOM = 320;
const PAGE_SIZE = 4096;
/** Where test-run packets live (a low, 32-bit-addressable kernel buffer). */
export const TEST_RUN_AREA = 0x100000n;
const AREA_SIZE = 4 * PAGE_SIZE;
const CTX = TEST_RUN_AREA, DATA_HARD_START = TEST_RUN_AREA + 0x400n;

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
    const r = Number(BigInt.asIntN(32, sub.kernel.call('bpfemu_test_run_tracing')));
    if (r !== 0) return -EFAULT;
    sub.writeTestResult(uattr, 'retval', 0);
    sub.writeTestResult(uattr, 'duration', 0);
    return 0;
  }
  if (f.ctx_in || f.ctx_out || f.ctx_size_in || f.ctx_size_out) return -EINVAL; // no ctx in v5.5 for these
  const size = f.data_size_in as number;
  const max = PAGE_SIZE - XDP_PACKET_HEADROOM - TAILROOM;
  if (size < ETH_HLEN || size > max) return -EINVAL;
  // bpf_test_init: the fentry test functions must give the kernel's values.
  if (BigInt.asIntN(32, sub.kernel.call('bpf_test_run_fentry')) !== 0n) return -EFAULT;
  const input = mem.read(f.data_in as bigint, size);
  area(sub);
  const repeat = Math.max(1, f.repeat as number);
  let retval = 0n, out = input, t = 0n;
  for (let i = 0; i < repeat; i++) {
    mem.view(TEST_RUN_AREA, AREA_SIZE).fill(0);
    const data = DATA_HARD_START + BigInt(XDP_PACKET_HEADROOM);
    mem.write(data, input);
    let len = size, start = data;
    if (kind === 'xdp') {
      // struct xdp_md { u32 data, data_end, data_meta, ingress_ifindex, rx_queue_index; }
      mem.writeU32(CTX, Number(data));
      mem.writeU32(CTX + 4n, Number(data + BigInt(size)));
      mem.writeU32(CTX + 8n, Number(data));
      mem.writeU32(CTX + 12n, 1); // loopback's ifindex
    } else {
      // struct __sk_buff: len @0, pkt_type @4, protocol @16, ifindex @40, data @76, data_end @80.
      const proto = (input[12]! << 8) | input[13]!;
      const isL2 = p.type === 3 || p.type === 4; // tc programs see the Ethernet header
      if (!isL2) { start = data + BigInt(ETH_HLEN); len = size - ETH_HLEN; }
      mem.writeU32(CTX, len);
      mem.writeU32(CTX + 16n, proto >= 0x600 ? ((proto & 0xff) << 8) | (proto >> 8) : 0x0400);
      mem.writeU32(CTX + 40n, 1);
      mem.writeU32(CTX + 76n, Number(start));
      mem.writeU32(CTX + 80n, Number(start + BigInt(len)));
    }
    const t0 = sub.kernel.clock.ktimeGetNs();
    retval = sub.runProg(p, CTX);
    t += sub.kernel.clock.ktimeGetNs() - t0;
    out = mem.read(start, len);
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
