/**
 * @fileoverview The host's side of the image's packet path (images/kernel/netdev.c): the network
 * devices the image defines, attaching programs to a device's hooks — an XDP program
 * (dev_change_xdp_fd, what `ip link set dev eth0 xdp fd N` asks through netlink) and one
 * cls_bpf direct-action program at ingress (`tc filter add dev eth0 ingress bpf da fd N`) —
 * injecting packets into the driver's receive function, and reading back the verdicts and the
 * device's counters. The hooks hold a reference to their program, as the kernel's do; the
 * receive path calls it through `struct bpf_prog`'s bpf_func (BPF_PROG_RUN), which this module
 * fills from the loaded program at attach.
 *
 * Every offset comes from the image's BTF (struct net_device, bpf_prog, bpfemu_rx_result), so the
 * C structures can change without this file.
 */
import type { Kernel } from '../kernel/kernel.ts';
import type { BpfSubsystem } from '../bpf/syscall/bpf.ts';
import type { BpfProgObj } from '../bpf/syscall/objects.ts';
import type { Btf } from '../bpf/btf/btf.ts';
import { kernelField } from '../bpf/ctx_convert.ts';
import { BPF_PROG_TYPE_SCHED_CLS, BPF_PROG_TYPE_XDP } from '../bpf/prog_types.ts';

const EBADF = 9, EINVAL = 22, EBUSY = 16, ENODEV = 19, ENOMEM = 12;
/** XDP_FLAGS_UPDATE_IF_NOEXIST (if_link.h): refuse to replace an attached program. */
export const XDP_FLAGS_UPDATE_IF_NOEXIST = 1;
/** XDP_PACKET_HEADROOM: the driver's buffer starts this far before the frame. */
const XDP_PACKET_HEADROOM = 256;
/** Room after the frame (skb_shared_info), as a driver's page would leave. */
const TAILROOM = 320;
/** The largest frame a device takes (its buffer is one page). */
export const MAX_FRAME = 4096 - XDP_PACKET_HEADROOM - TAILROOM;

export const XDP_ACTIONS = ['XDP_ABORTED', 'XDP_DROP', 'XDP_PASS', 'XDP_TX', 'XDP_REDIRECT'] as const;
/** TC verdicts by value + 1 (TC_ACT_UNSPEC is -1). */
export const TC_ACTIONS = ['TC_ACT_UNSPEC', 'TC_ACT_OK', 'TC_ACT_RECLASSIFY', 'TC_ACT_SHOT', 'TC_ACT_PIPE', 'TC_ACT_STOLEN',
  'TC_ACT_QUEUED', 'TC_ACT_REPEAT', 'TC_ACT_REDIRECT'] as const;
export const xdpActionName = (a: number): string => XDP_ACTIONS[a] ?? `XDP action ${a}`;
export const tcActionName = (a: number): string => TC_ACTIONS[a + 1] ?? `TC action ${a}`;

/** The result flags of bpfemu_rx (netdev.c). */
const RX_XDP = 0x1, RX_TC = 0x2, RX_DELIVERED = 0x4;

export interface NetDevice {
  readonly name: string;
  readonly ifindex: number;
  /** `struct net_device *` in the guest. */
  readonly addr: bigint;
}

export interface RxResult {
  /** NET_RX_SUCCESS (0) or NET_RX_DROP (1), as the receive function returned. */
  ret: number;
  /** The XDP program's verdict, when one ran. */
  xdp?: { action: number; name: string };
  /** The TC ingress program's verdict, when one ran. */
  tc?: { action: number; name: string };
  /** The packet reached the protocol layer. */
  delivered: boolean;
  /** At delivery: skb->len (the L3 length), skb->protocol (host order), skb->pkt_type. */
  len?: number;
  protocol?: number;
  pktType?: number;
}

export interface DeviceStats {
  rxPackets: bigint;
  rxBytes: bigint;
  rxDropped: bigint;
  /** Per XDP verdict, by name. */
  xdp: Record<string, bigint>;
  /** Per TC verdict, by name. */
  tc: Record<string, bigint>;
}

type Hook = 'xdp_prog' | 'tc_ingress';

/** The packet path's devices and hooks. */
export class NetStack {
  private readonly kernel: Kernel;
  private readonly bpf: BpfSubsystem;
  private readonly btf: Btf;
  /** What each hook holds (device address + hook → program). */
  private readonly attached = new Map<string, BpfProgObj>();

  constructor(kernel: Kernel, bpf: BpfSubsystem, btf: Btf) {
    this.kernel = kernel;
    this.bpf = bpf;
    this.btf = btf;
  }

  private get mem() { return this.kernel.machine.mem; }
  private off(struct: string, path: string): bigint { return BigInt(kernelField(this.btf, struct, path).off); }

  /** Every device, in the image's list order (dev_base_head). */
  devices(): NetDevice[] {
    const list = this.kernel.addressOf('bpfemu_net_devices', 'symbol');
    const out: NetDevice[] = [];
    for (let i = 0; ; i++) {
      const addr = this.mem.readU64(list + BigInt(8 * i));
      if (addr === 0n) return out;
      out.push({
        addr,
        name: this.mem.readCString(addr + this.off('net_device', 'name'), 16),
        ifindex: this.mem.readU32(addr + this.off('net_device', 'ifindex')),
      });
    }
  }

  /** __dev_get_by_name. */
  device(name: string): NetDevice | undefined { return this.devices().find((d) => d.name === name); }

  /**
   * dev_change_xdp_fd: attach the XDP program behind `progFd`, replacing the one there (unless
   * XDP_FLAGS_UPDATE_IF_NOEXIST: -EBUSY), or detach with fd -1. 0 or a negative errno.
   */
  setXdp(ifname: string, progFd: number, flags = 0): number {
    const dev = this.device(ifname);
    if (!dev) return -ENODEV;
    if (progFd >= 0 && flags & XDP_FLAGS_UPDATE_IF_NOEXIST && this.attached.has(`${dev.addr}:xdp_prog`)) return -EBUSY;
    return this.install(dev, 'xdp_prog', progFd, BPF_PROG_TYPE_XDP);
  }

  /** The ingress cls_bpf filter (direct action): attach a SCHED_CLS program, or detach with -1. */
  setTcIngress(ifname: string, progFd: number): number {
    const dev = this.device(ifname);
    if (!dev) return -ENODEV;
    return this.install(dev, 'tc_ingress', progFd, BPF_PROG_TYPE_SCHED_CLS);
  }

  /** The program on a hook, if any. */
  program(ifname: string, hook: 'xdp' | 'tc'): BpfProgObj | undefined {
    const dev = this.device(ifname);
    return dev && this.attached.get(`${dev.addr}:${hook === 'xdp' ? 'xdp_prog' : 'tc_ingress'}`);
  }

  private install(dev: NetDevice, hook: Hook, progFd: number, type: number): number {
    let p: BpfProgObj | undefined;
    if (progFd >= 0) {
      // bpf_prog_get_type_dev: another kind of fd, or a program of another type, is -EINVAL.
      p = this.bpf.progFromFd(progFd);
      if (!p) return this.kernel.current.files.get(progFd) ? -EINVAL : -EBADF;
      if (p.type !== type) return -EINVAL;
      p.refcnt++;
      this.fillBpfProg(p);
    }
    const key = `${dev.addr}:${hook}`;
    const old = this.attached.get(key);
    this.mem.writeU64(dev.addr + this.off('net_device', hook), p ? p.progAddr : 0n);
    if (p) this.attached.set(key, p); else this.attached.delete(key);
    if (old) this.bpf.progPut(old);
    return 0;
  }

  /** struct bpf_prog as BPF_PROG_RUN reads it: bpf_func (JIT image or the interpreter), insnsi. */
  private fillBpfProg(p: BpfProgObj): void {
    const a = p.progAddr;
    const bpfFunc = p.prog.jit ? p.prog.jit.funcAddrs[0]! : this.kernel.addressOf('__bpf_prog_run_interp');
    this.mem.writeU32(a + this.off('bpf_prog', 'type'), p.type);
    this.mem.writeU32(a + this.off('bpf_prog', 'len'), p.prog.insns.length);
    this.mem.writeU32(a + this.off('bpf_prog', 'jited'), p.prog.jit ? 1 : 0);
    this.mem.writeU64(a + this.off('bpf_prog', 'bpf_func'), bpfFunc);
    this.mem.writeU64(a + this.off('bpf_prog', 'insnsi'), p.insnsi ?? 0n);
  }

  /** Detaches everything (as unregistering the devices would). */
  detachAll(): void {
    for (const [key, p] of [...this.attached]) {
      const [addr, hook] = key.split(':') as [string, Hook];
      this.mem.writeU64(BigInt(addr) + this.off('net_device', hook), 0n);
      this.attached.delete(key);
      this.bpf.progPut(p);
    }
  }

  /**
   * A frame arriving at the device: the driver's receive (bpfemu_rx) runs the XDP program,
   * builds the skb, eth_type_trans, then the TC ingress program.
   */
  rx(ifname: string, frame: Uint8Array): RxResult {
    const dev = this.device(ifname);
    if (!dev) throw new NetError(`no device ${ifname}`, -ENODEV);
    if (frame.length < 14 || frame.length > MAX_FRAME) throw new NetError(`a frame is 14..${MAX_FRAME} bytes, not ${frame.length}`, -EINVAL);
    const slab = this.kernel.slab;
    const buf = slab.kzalloc(XDP_PACKET_HEADROOM + frame.length + TAILROOM);
    const res = slab.kzalloc(64);
    if (buf === undefined || res === undefined) {
      if (buf !== undefined) slab.kfree(buf);
      throw new NetError('no memory for the frame', -ENOMEM);
    }
    try {
      this.mem.write(buf + BigInt(XDP_PACKET_HEADROOM), frame);
      const ret = Number(BigInt.asIntN(32, this.kernel.call('bpfemu_rx', [dev.addr, buf, frame.length, res])));
      const f = (m: string): bigint => res + this.off('bpfemu_rx_result', m);
      const flags = this.mem.readU32(f('flags'));
      const out: RxResult = { ret, delivered: (flags & RX_DELIVERED) !== 0 };
      if (flags & RX_XDP) { const a = this.mem.readU32(f('xdp_act')); out.xdp = { action: a, name: xdpActionName(a) }; }
      if (flags & RX_TC) { const a = this.mem.readU32(f('tc_act')) | 0; out.tc = { action: a, name: tcActionName(a) }; }
      if (out.delivered) {
        out.len = this.mem.readU32(f('len'));
        const p = this.mem.readU16(f('protocol'));
        out.protocol = ((p & 0xff) << 8) | (p >> 8);
        out.pktType = this.mem.readU8(f('pkt_type'));
      }
      return out;
    } finally {
      slab.kfree(buf);
      slab.kfree(res);
    }
  }

  /** The device's counters (rx_packets, rx_bytes, rx_dropped, per-verdict counts). */
  stats(ifname: string): DeviceStats {
    const dev = this.device(ifname);
    if (!dev) throw new NetError(`no device ${ifname}`, -ENODEV);
    const u64 = (m: string): bigint => this.mem.readU64(dev.addr + this.off('net_device', m));
    const arr = (m: string, names: readonly string[]): Record<string, bigint> =>
      Object.fromEntries(names.map((n, i) => [n, this.mem.readU64(dev.addr + this.off('net_device', m) + BigInt(8 * i))]));
    return {
      rxPackets: u64('rx_packets'), rxBytes: u64('rx_bytes'), rxDropped: u64('rx_dropped'),
      xdp: arr('xdp_verdicts', XDP_ACTIONS), tc: arr('tc_verdicts', TC_ACTIONS),
    };
  }
}

/** A packet the device cannot take, or a device that does not exist. */
export class NetError extends Error {
  readonly errno: number;
  constructor(msg: string, errno: number) { super(msg); this.name = 'NetError'; this.errno = errno; }
}
