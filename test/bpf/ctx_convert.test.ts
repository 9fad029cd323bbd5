/**
 * @fileoverview convert_ctx_accesses: XDP and skb programs read their uAPI context (xdp_md,
 * __sk_buff) while the hook hands them the kernel's xdp_buff / sk_buff. Each field through a
 * test run (the kernel's values: loopback's ifindex 1, queue 0, skb->protocol from
 * eth_type_trans, tc programs at the MAC header), on both engines; the rewritten instructions;
 * and every refused access with the verifier's errno and message.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { boot, type System } from '../../index.ts';
import { BPF_PROG_LOAD, BPF_PROG_TEST_RUN } from '../../bpf/syscall/attr.ts';
import { assemble } from '../../bpf/asm/assembler.ts';
import { encode } from '../../bpf/isa/insn.ts';
import { disassemble } from '../../bpf/asm/disassembler.ts';
import { bpfProgCalcTag } from '../../bpf/core.ts';
import { pktV6, udpV4 } from '../../net/packets.ts';

let sys: System;
beforeAll(async () => { sys = await boot(); });
afterAll(() => sys.close());

const XDP = 6, SCHED_CLS = 3, SOCKET_FILTER = 1;

function load(type: number, asm: string): { fd: number; log: string } {
  const b = sys.bpfSys;
  const insns = assemble(asm);
  const ui = b.stage(encode(insns)), lic = b.stage(Buffer.from('GPL\0')), log = b.stage(new Uint8Array(4096));
  const fd = b.call(BPF_PROG_LOAD, { prog_type: type, insns: ui, insn_cnt: insns.length, license: lic, log_level: 1, log_size: 4096, log_buf: log }).ret;
  const text = sys.kernel.machine.mem.readCString(log, 4096);
  b.unstage(ui); b.unstage(lic); b.unstage(log);
  return { fd, log: text };
}

function run(fd: number, pkt: Uint8Array): { ret: number; retval: number } {
  const d = sys.bpfSys.stage(pkt);
  const r = sys.bpfSys.call(BPF_PROG_TEST_RUN, { prog_fd: fd, data_in: d, data_size_in: pkt.length });
  sys.bpfSys.unstage(d);
  return { ret: r.ret, retval: r.attr.retval as number };
}

/** Loads, test-runs once, closes: the program's 32-bit return value. */
function value(type: number, asm: string, pkt: Uint8Array = pktV6()): number {
  const { fd, log } = load(type, asm);
  expect(fd, log).toBeGreaterThan(0);
  try {
    const r = run(fd, pkt);
    expect(r.ret).toBe(0);
    return r.retval;
  } finally { sys.kernel.current.files.close(fd); }
}

describe.each(['jit', 'interp'] as const)('context fields through a test run (%s)', (engine) => {
  beforeAll(() => { sys.bpfSys.jitEnabled = engine === 'jit'; });
  afterAll(() => { sys.bpfSys.jitEnabled = true; });
  const len = 'ldxw %r2, [%r1+4]\nldxw %r1, [%r1+0]\nmov %r0, %r2\nsub %r0, %r1\nexit';
  it.each([
    ['xdp_md data_end - data', XDP, len, 74],
    ['xdp_md ingress_ifindex: the loopback device', XDP, 'ldxw %r0, [%r1+12]\nexit', 1],
    ['xdp_md rx_queue_index', XDP, 'ldxw %r0, [%r1+16]\nexit', 0],
    ['xdp_md data_meta == data', XDP, 'ldxw %r2, [%r1+8]\nldxw %r1, [%r1+0]\nmov %r0, %r2\nsub %r0, %r1\nexit', 0],
    ['xdp: the first byte of the frame', XDP, 'ldxw %r2, [%r1+4]\nldxw %r1, [%r1+0]\nmov %r3, %r1\nadd %r3, 13\nmov %r0, 0\njgt %r3, %r2, +1\nldxb %r0, [%r1+12]\nexit', 0x86],
    ['__sk_buff len: tc sees the MAC header', SCHED_CLS, 'ldxw %r0, [%r1+0]\nexit', 74],
    ['__sk_buff len: a socket filter starts at the network header', SOCKET_FILTER, 'ldxw %r0, [%r1+0]\nexit', 60],
    ['__sk_buff protocol (eth_type_trans, network order)', SCHED_CLS, 'ldxw %r0, [%r1+16]\nexit', 0xdd86],
    ['__sk_buff ifindex (skb->dev->ifindex)', SCHED_CLS, 'ldxw %r0, [%r1+40]\nexit', 1],
    ['__sk_buff pkt_type: PACKET_HOST on lo', SCHED_CLS, 'ldxw %r0, [%r1+4]\nexit', 0],
    ['__sk_buff data_end - data', SCHED_CLS, 'ldxw %r2, [%r1+80]\nldxw %r1, [%r1+76]\nmov %r0, %r2\nsub %r0, %r1\nexit', 74],
    ['narrow read: the second byte of protocol', SCHED_CLS, 'ldxb %r0, [%r1+17]\nexit', 0xdd],
    ['narrow read: the low half of len', SCHED_CLS, 'ldxh %r0, [%r1+0]\nexit', 74],
    ['mark written then read', SCHED_CLS, 'mov %r2, 77\nstxw [%r1+8], %r2\nldxw %r0, [%r1+8]\nexit', 77],
    ['cb[2] written then read (in qdisc_skb_cb)', SOCKET_FILTER, 'mov %r2, 5\nstxw [%r1+56], %r2\nldxw %r0, [%r1+56]\nexit', 5],
    ['ctx through a spill and a copy', XDP, 'stxdw [%r10-8], %r1\nldxdw %r3, [%r10-8]\nmov %r4, %r3\nldxw %r0, [%r4+12]\nexit', 1],
  ])('%s', (_n, type, asm, want) => {
    expect(value(type, asm)).toBe(want);
  });

  it('a subprogram reading the context its caller passes', () => {
    expect(value(SCHED_CLS, 'call local +1\nexit\nldxw %r0, [%r1+0]\nexit')).toBe(74);
  });

  it('bpf_xdp_adjust-free XDP data_out is the frame; skb data_out of a socket filter gets a zeroed MAC header', () => {
    const frame = udpV4(53, Uint8Array.of(1, 2, 3));
    for (const [type, expectHead] of [[XDP, frame.subarray(0, 14)], [SOCKET_FILTER, new Uint8Array(14)]] as const) {
      const { fd } = load(type, 'mov %r0, 0\nexit');
      const b = sys.bpfSys, d = b.stage(frame), out = b.stage(new Uint8Array(128));
      const r = b.call(BPF_PROG_TEST_RUN, { prog_fd: fd, data_in: d, data_size_in: frame.length, data_out: out });
      expect(r.ret).toBe(0);
      expect(r.attr.data_size_out).toBe(frame.length);
      const got = sys.kernel.machine.mem.read(out, frame.length);
      expect(got.subarray(0, 14)).toEqual(Uint8Array.from(expectHead));
      expect(got.subarray(14)).toEqual(frame.subarray(14));
      b.unstage(d); b.unstage(out);
      sys.kernel.current.files.close(fd);
    }
  });
});

describe('the rewritten instructions (prog dump xlated)', () => {
  it('xdp_md.data_end (u32 at 4) becomes xdp_buff.data_end (u64 at 8); ingress_ifindex three loads', () => {
    const { fd } = load(XDP, 'ldxw %r2, [%r1+4]\nldxw %r0, [%r1+12]\nexit');
    const p = sys.bpfSys.progFromFd(fd)!;
    expect(disassemble(p.prog.insns).split('\n').filter(Boolean)).toEqual([
      'ldxdw %r2, [%r1+8]', 'ldxdw %r0, [%r1+40]', 'ldxdw %r0, [%r0]', 'ldxw %r0, [%r0+16]', 'exit',
    ]);
    sys.kernel.current.files.close(fd);
  });

  it('jumps over a rewritten access are re-aimed; the tag is the one of the program as loaded', () => {
    const asm = 'mov %r0, 0\njeq %r1, 0, +1\nldxw %r0, [%r1+12]\nexit';
    const { fd } = load(XDP, asm);
    const p = sys.bpfSys.progFromFd(fd)!;
    expect(disassemble(p.prog.insns).split('\n')[1]).toBe('jeq %r1, 0, +3');
    expect(p.prog.tag).toBe(bpfProgCalcTag(assemble(asm)));
    sys.kernel.current.files.close(fd);
  });
});

describe('refused context accesses: the verifier\'s errno and message, nothing loaded', () => {
  it.each([
    ['an unknown __sk_buff offset', SCHED_CLS, 'ldxw %r0, [%r1+84]\nexit', -13, 'invalid bpf_context access off=84 size=4'],
    ['an unaligned read', SCHED_CLS, 'ldxw %r0, [%r1+2]\nexit', -13, 'invalid bpf_context access off=2 size=4'],
    ['a narrow xdp_md read', XDP, 'ldxh %r0, [%r1+12]\nexit', -13, 'invalid bpf_context access off=12 size=2'],
    ['a narrow read of skb->data', SCHED_CLS, 'ldxh %r0, [%r1+76]\nexit', -13, 'invalid bpf_context access off=76 size=2'],
    ['a socket filter reading data', SOCKET_FILTER, 'ldxw %r0, [%r1+76]\nexit', -13, 'invalid bpf_context access off=76 size=4'],
    ['a socket filter writing mark', SOCKET_FILTER, 'mov %r2, 1\nstxw [%r1+8], %r2\nmov %r0, 0\nexit', -13, 'invalid bpf_context access off=8 size=4'],
    ['writing len', SCHED_CLS, 'mov %r2, 1\nstxw [%r1+0], %r2\nmov %r0, 0\nexit', -13, 'invalid bpf_context access off=0 size=4'],
    ['writing xdp_md', XDP, 'mov %r2, 1\nstxw [%r1+0], %r2\nmov %r0, 0\nexit', -13, 'invalid bpf_context access off=0 size=4'],
    ['BPF_ST into the context', SCHED_CLS, 'stw [%r1+8], 1\nmov %r0, 0\nexit', -13, 'BPF_ST stores into R1 ctx is not allowed'],
    ['a modified context pointer', XDP, 'add %r1, 4\nldxw %r0, [%r1+0]\nexit', -13, 'dereference of modified ctx ptr R1 off=0 disallowed'],
    ['the context on one path only', XDP, 'jeq %r2, 0, +1\nmov %r1, %r10\nldxw %r0, [%r1-8]\nexit', -22, 'same insn cannot be used with different pointers'],
  ])('%s', (_n, type, asm, errno, msg) => {
    const before = sys.bpfSys.progs.size;
    const r = load(type, asm);
    expect(r.fd).toBe(errno);
    expect(r.log).toContain(msg);
    expect(sys.bpfSys.progs.size).toBe(before);
  });
});
