/**
 * @fileoverview The packet path of the image (images/kernel/netdev.c) from the host: devices,
 * attaching XDP and TC ingress programs (type checks, references held by the hooks, replace and
 * detach), frames through the driver's receive with each verdict and the counters, a vmlinux
 * fexit program on eth_type_trans seeing the receive path's skb, and both engines.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { boot, type System } from '../../index.ts';
import { BpfObject } from '../../bpf/libbpf/load.ts';
import { BPF_PROG_LOAD, BPF_MAP_CREATE, BPF_MAP_LOOKUP_ELEM, BPF_RAW_TRACEPOINT_OPEN } from '../../bpf/syscall/attr.ts';
import { BTF_KIND } from '../../bpf/btf/btf.ts';
import { assemble } from '../../bpf/asm/assembler.ts';
import { encode, type Insn } from '../../bpf/isa/insn.ts';
import { NetError, XDP_FLAGS_UPDATE_IF_NOEXIST } from '../../net/netdev.ts';
import { pktV6, pktV4, udpV4 } from '../../net/packets.ts';

const objPath = (n: string): string => fileURLToPath(new URL(`../../images/build/bpf/${n}.bpf.o`, import.meta.url));
let sys: System;
beforeAll(async () => { sys = await boot(); });
afterAll(() => sys.close());
const files = () => sys.kernel.current.files;
const open = (n: string): BpfObject => BpfObject.open(new Uint8Array(readFileSync(objPath(n))), `${n}.bpf.o`, sys.objectLoadOptions);

function load(type: number, insns: Insn[], extra: Record<string, number> = {}): number {
  const b = sys.bpfSys;
  const ui = b.stage(encode(insns)), lic = b.stage(Buffer.from('GPL\0'));
  const fd = b.call(BPF_PROG_LOAD, { prog_type: type, insns: ui, insn_cnt: insns.length, license: lic, ...extra }).ret;
  b.unstage(ui); b.unstage(lic);
  return fd;
}
const ret = (type: number, v: number): number => load(type, assemble(`mov %r0, ${v}\nexit`));

describe('devices', () => {
  it('lo (ifindex 1) and eth0 (ifindex 2), read from the image', () => {
    expect(sys.net.devices().map((d) => [d.name, d.ifindex])).toEqual([['lo', 1], ['eth0', 2]]);
    expect(sys.net.device('eth1')).toBeUndefined();
  });

  it('no program: every frame delivered, protocol from eth_type_trans, L3 length', () => {
    const before = sys.net.stats('eth0');
    expect(sys.net.rx('eth0', pktV6())).toEqual({ ret: 0, delivered: true, len: 60, protocol: 0x86dd, pktType: 3 });
    // Addressed to eth0's MAC 02:00:00:00:00:01: PACKET_HOST; broadcast: PACKET_BROADCAST.
    expect(sys.net.rx('eth0', pktV4({ dst: [2, 0, 0, 0, 0, 1] })).pktType).toBe(0);
    expect(sys.net.rx('eth0', pktV4({ dst: [255, 255, 255, 255, 255, 255] })).pktType).toBe(1);
    const after = sys.net.stats('eth0');
    expect(after.rxPackets - before.rxPackets).toBe(3n);
    expect(after.rxBytes - before.rxBytes).toBe(74n + 54n + 54n);
  });

  it('frames of the wrong size and unknown devices are refused', () => {
    expect(() => sys.net.rx('eth0', new Uint8Array(10))).toThrow(NetError);
    expect(() => sys.net.rx('eth0', new Uint8Array(4000))).toThrow(/14\.\.3520/);
    expect(() => sys.net.rx('eth9', pktV6())).toThrow(/no device eth9/);
    expect(sys.net.setXdp('eth9', -1)).toBe(-19);
  });
});

describe('attaching: types, references, replace and detach', () => {
  it('an XDP hook takes only XDP programs; a TC hook only sched_cls; fds of other things are -EINVAL, no fd -EBADF', () => {
    const cls = ret(3, 0), xdp = ret(6, 2);
    const m = sys.bpfSys.call(BPF_MAP_CREATE, { map_type: 2, key_size: 4, value_size: 4, max_entries: 1 }).ret;
    expect(sys.net.setXdp('eth0', cls)).toBe(-22);
    expect(sys.net.setTcIngress('eth0', xdp)).toBe(-22);
    expect(sys.net.setXdp('eth0', m)).toBe(-22);
    expect(sys.net.setXdp('eth0', 999)).toBe(-9);
    expect(sys.net.program('eth0', 'xdp')).toBeUndefined();
    [cls, xdp, m].forEach((f) => files().close(f));
  });

  it('the hook holds its program: closing the fd keeps it running; detach frees it', () => {
    const fd = ret(6, 1); // XDP_DROP
    const id = sys.bpfSys.progFromFd(fd)!.id;
    expect(sys.net.setXdp('eth0', fd)).toBe(0);
    files().close(fd);
    expect(sys.bpfSys.progs.find(id)).toBeDefined();
    expect(sys.net.rx('eth0', pktV6())).toEqual({ ret: 1, delivered: false, xdp: { action: 1, name: 'XDP_DROP' } });
    expect(sys.net.setXdp('eth0', -1)).toBe(0);
    expect(sys.bpfSys.progs.find(id)).toBeUndefined();
    expect(sys.net.rx('eth0', pktV6()).delivered).toBe(true);
  });

  it('replacing: the old program is released; XDP_FLAGS_UPDATE_IF_NOEXIST refuses with -EBUSY', () => {
    const a = ret(6, 2), c = ret(6, 1);
    const ida = sys.bpfSys.progFromFd(a)!.id;
    expect(sys.net.setXdp('eth0', a)).toBe(0);
    expect(sys.net.setXdp('eth0', c, XDP_FLAGS_UPDATE_IF_NOEXIST)).toBe(-16);
    files().close(a);
    expect(sys.net.setXdp('eth0', c)).toBe(0);
    expect(sys.bpfSys.progs.find(ida)).toBeUndefined();
    expect(sys.net.rx('eth0', pktV6()).xdp!.name).toBe('XDP_DROP');
    sys.net.setXdp('eth0', -1);
    files().close(c);
  });
});

describe.each(['jit', 'interp'] as const)('verdicts and counters (%s)', (engine) => {
  beforeAll(() => { sys.bpfSys.jitEnabled = engine === 'jit'; });
  afterAll(() => { sys.bpfSys.jitEnabled = true; sys.net.setXdp('eth0', -1); sys.net.setTcIngress('eth0', -1); });

  it('xdp_filter then test_pkt_access at TC ingress: each frame\'s path', () => {
    const x = open('xdp_filter').load(sys.bpfSys, sys.objectLoadOptions);
    const t = open('test_pkt_access').load(sys.bpfSys, sys.objectLoadOptions);
    try {
      expect(sys.net.setXdp('eth0', x.findProgram('xdp_filter')!.fd)).toBe(0);
      expect(sys.net.setTcIngress('eth0', t.findProgram('test_pkt_access')!.fd)).toBe(0);
      const before = sys.net.stats('eth0');
      const shortTcp = pktV4().subarray(0, 40); // IPv4 but the TCP header cut off
      const arp = Uint8Array.from([...new Array<number>(12).fill(0), 0x08, 0x06, ...new Array<number>(28).fill(0)]);
      const rs = [pktV6(), udpV4(9), udpV4(53), shortTcp, arp].map((f) => sys.net.rx('eth0', f));
      expect(rs.map((r) => [r.xdp?.name, r.tc?.name ?? null, r.delivered, r.ret])).toEqual([
        ['XDP_PASS', 'TC_ACT_OK', true, 0],       // pkt_v6: urg_ptr 123
        ['XDP_DROP', null, false, 1],             // UDP to the discard port: XDP drops it
        ['XDP_PASS', 'TC_ACT_SHOT', false, 1],    // IPv4 not TCP: test_pkt_access shoots it
        ['XDP_PASS', 'TC_ACT_SHOT', false, 1],    // TCP header past data_end
        ['XDP_PASS', 'TC_ACT_UNSPEC', true, 0],   // neither IPv4 nor IPv6: no tcp, the last return
      ]);
      const s = sys.net.stats('eth0');
      expect(s.rxPackets - before.rxPackets).toBe(5n);
      expect(s.rxDropped - before.rxDropped).toBe(3n);
      expect(s.xdp.XDP_DROP! - before.xdp.XDP_DROP!).toBe(1n);
      expect(s.tc.TC_ACT_SHOT! - before.tc.TC_ACT_SHOT!).toBe(2n);
      expect(s.tc.TC_ACT_OK! - before.tc.TC_ACT_OK!).toBe(1n);
    } finally {
      sys.net.setXdp('eth0', -1); sys.net.setTcIngress('eth0', -1);
      x.close(); t.close();
    }
  });
});

describe('the receive path seen by a vmlinux fexit program', () => {
  it('fexit on eth_type_trans: skb->len is the L3 length, dev->ifindex is eth0\'s, ret the protocol', () => {
    const b = sys.bpfSys, btf = sys.btf;
    const off = (s: string, m: string): number => btf.findMember(btf.findByNameKind(s, BTF_KIND.STRUCT)!.id, m)!.bitOffset / 8;
    const m = b.call(BPF_MAP_CREATE, { map_type: 2, key_size: 4, value_size: 8, max_entries: 3 }).ret;
    // values[0] = skb->len, values[1] = dev->ifindex, values[2] = ret, through bpf_map_lookup_elem.
    const store = (k: number, reg: string): string => `stw [%r10-4], ${k}\nmov %r2, %r10\nadd %r2, -4\nlddw %r1, 0\ncall 1\njeq %r0, 0, +1\nstxdw [%r0+0], ${reg}\n`;
    const asm = `ldxdw %r2, [%r1+0]\nldxw %r6, [%r2+${off('sk_buff', 'len')}]\nldxdw %r2, [%r1+8]\nldxw %r7, [%r2+${off('net_device', 'ifindex')}]\n` +
      `ldxdw %r8, [%r1+16]\n${store(0, '%r6')}${store(1, '%r7')}${store(2, '%r8')}mov %r0, 0\nexit`;
    const insns = assemble(asm);
    insns.forEach((i) => { if (i.code === 0x18) { i.src = 1; i.imm = m; } });
    const p = load(26, insns, { expected_attach_type: 25, attach_btf_id: btf.findByNameKind('eth_type_trans', BTF_KIND.FUNC)!.id });
    expect(p).toBeGreaterThan(0);
    const l = b.call(BPF_RAW_TRACEPOINT_OPEN, { name: 0, prog_fd: p }).ret;
    sys.net.rx('eth0', pktV6());
    const k = b.stage(new Uint8Array(4)), v = b.stage(new Uint8Array(8));
    const get = (i: number): bigint => {
      sys.kernel.machine.mem.writeU32(k, i);
      expect(b.call(BPF_MAP_LOOKUP_ELEM, { map_fd: m, key: k, value: v }).ret).toBe(0);
      return sys.kernel.machine.mem.readU64(v);
    };
    expect([get(0), get(1), get(2) & 0xffffn]).toEqual([60n, 2n, 0xdd86n]);
    b.unstage(k); b.unstage(v);
    [l, p, m].forEach((f) => files().close(f));
  });
});
