/**
 * @fileoverview Test packets: the kernel selftests' pkt_v4/pkt_v6 (tools/testing/selftests/bpf,
 * test_progs.c / network_helpers.c) and small builders for Ethernet + IPv4/IPv6 + TCP/UDP frames,
 * so tests and the CLI can craft packets that take a given path through a program.
 */

export const ETH_P_IP = 0x0800, ETH_P_IPV6 = 0x86dd;
export const IPPROTO_TCP = 6, IPPROTO_UDP = 17;
/** MAGIC_BYTES: the selftests' payload length and TCP urgent pointer. */
export const MAGIC_BYTES = 123;

const be16 = (v: number): number[] => [(v >> 8) & 0xff, v & 0xff];

export interface PacketOptions {
  /** Destination and source MAC (default all zero, as the selftests'). */
  dst?: readonly number[];
  src?: readonly number[];
}

function eth(proto: number, o: PacketOptions): number[] {
  return [...(o.dst ?? [0, 0, 0, 0, 0, 0]), ...(o.src ?? [0, 0, 0, 0, 0, 0]), ...be16(proto)];
}

/** struct tcphdr with doff = 5 and the urgent pointer stored as the selftests do (host order). */
function tcp(urgPtr = MAGIC_BYTES): number[] {
  const h = new Array<number>(20).fill(0);
  h[12] = 5 << 4;
  h[18] = urgPtr & 0xff; // `.tcp.urg_ptr = 123`: a u16 in host (little-endian) order
  h[19] = (urgPtr >> 8) & 0xff;
  return h;
}

/**
 * pkt_v6: 74 bytes — Ethernet (ETH_P_IPV6), an IPv6 header with nexthdr TCP and payload_len
 * htons(123), a TCP header with doff 5 and urg_ptr 123. test_pkt_access returns TC_ACT_OK on it.
 */
export function pktV6(o: PacketOptions = {}): Uint8Array {
  const ip6 = new Array<number>(40).fill(0);
  ip6.splice(4, 2, ...be16(MAGIC_BYTES));
  ip6[6] = IPPROTO_TCP;
  return Uint8Array.from([...eth(ETH_P_IPV6, o), ...ip6, ...tcp()]);
}

/** pkt_v4: 54 bytes — Ethernet (ETH_P_IP), IPv4 (ihl 5, TCP, tot_len htons(123)), TCP. */
export function pktV4(o: PacketOptions = {}): Uint8Array {
  const ip = new Array<number>(20).fill(0);
  ip[0] = 0x45;
  ip.splice(2, 2, ...be16(MAGIC_BYTES));
  ip[9] = IPPROTO_TCP;
  return Uint8Array.from([...eth(ETH_P_IP, o), ...ip, ...tcp()]);
}

/** An Ethernet + IPv4 + UDP frame to `dport` with `payload` bytes (checksums left zero). */
export function udpV4(dport: number, payload: Uint8Array = new Uint8Array(0), o: PacketOptions & { sport?: number } = {}): Uint8Array {
  const udpLen = 8 + payload.length;
  const ip = new Array<number>(20).fill(0);
  ip[0] = 0x45;
  ip.splice(2, 2, ...be16(20 + udpLen));
  ip[8] = 64;
  ip[9] = IPPROTO_UDP;
  ip.splice(12, 8, 10, 0, 0, 1, 10, 0, 0, 2);
  const udp = [...be16(o.sport ?? 4242), ...be16(dport), ...be16(udpLen), 0, 0];
  return Uint8Array.from([...eth(ETH_P_IP, o), ...ip, ...udp, ...payload]);
}

/** Hex text of a packet (what `bpfemu net rx` takes). */
export const toHex = (p: Uint8Array): string => Buffer.from(p).toString('hex');
