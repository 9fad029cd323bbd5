/**
 * @fileoverview What the map types share (kernel/bpf/syscall.c, include/linux/bpf.h): attribute
 * helpers, memlock charging's size limit, and the byte helpers keys and values go through.
 */
import type { Kernel } from '../../kernel/kernel.ts';
import {
  BPF_EXIST, BPF_F_LOCK, BPF_F_NUMA_NODE, BPF_F_RDONLY, BPF_F_RDONLY_PROG, BPF_F_WRONLY, BPF_F_WRONLY_PROG, E2BIG, ENOMEM,
  type MapAttr,
} from './map.ts';

export const PAGE_SIZE = 4096;
export const U32_MAX = 0xffffffff;
export const NUMA_NO_NODE = -1;
/** BPF_F_ACCESS_MASK (include/linux/bpf.h): the flags every map type accepts. */
export const BPF_F_ACCESS_MASK = BPF_F_RDONLY | BPF_F_RDONLY_PROG | BPF_F_WRONLY | BPF_F_WRONLY_PROG;
/** Guest memory one map may take here (the emulator's limit, not the kernel's): beyond it -ENOMEM. */
export const MAP_AREA_MAX = 256 << 20;

export const roundUp = (x: number, a: number): number => Math.ceil(x / a) * a;
export const pageAlign = (x: number): number => roundUp(x, PAGE_SIZE);

/** bpf_map_attr_numa_node(): the node asked for with BPF_F_NUMA_NODE, else NUMA_NO_NODE. */
export const bpfMapAttrNumaNode = (attr: MapAttr): number =>
  (attr.mapFlags & BPF_F_NUMA_NODE) !== 0 ? (attr.numaNode ?? 0) : NUMA_NO_NODE;

/** bpf_map_flags_access_ok(): a program may not be both read-only and write-only. */
export const bpfMapFlagsAccessOk = (flags: number): boolean =>
  (flags & (BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG)) !== (BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG);

/**
 * bpf_map_charge_init(): the memlock charge of `cost` bytes in whole pages, or -E2BIG when the
 * cost would overflow the u32 page arithmetic (size >= U32_MAX - PAGE_SIZE). The emulator adds
 * its own ceiling on guest memory (-ENOMEM, as a failed bpf_map_area_alloc()).
 */
export function bpfMapChargeInit(cost: number): number {
  if (cost >= U32_MAX - PAGE_SIZE) return -E2BIG;
  if (cost > MAP_AREA_MAX) return -ENOMEM;
  return pageAlign(cost) / PAGE_SIZE;
}

/** A key as the u32 the array maps index with (little-endian, as on x86-64). */
export const keyU32 = (key: Uint8Array): number =>
  (key[0]! | (key[1]! << 8) | (key[2]! << 16) | (key[3]! << 24)) >>> 0;

export const u32Key = (v: number): Uint8Array => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
};

/** Checks a key/value buffer is at least `len` bytes (a caller bug otherwise, not a guest error). */
export function needBytes(what: string, buf: Uint8Array, len: number): void {
  if (buf.length < len) throw new RangeError(`${what}: ${buf.length} bytes given, ${len} needed`);
}

/** `(map_flags & ~BPF_F_LOCK) > BPF_EXIST` on the u64 flags of an update (unknown flags). */
export const badUpdateFlags = (flags: number): boolean =>
  !Number.isInteger(flags) || flags < 0 || flags > U32_MAX || ((flags & ~BPF_F_LOCK) >>> 0) > BPF_EXIST;

/** Allocates guest pages for a map area: the address, or -ENOMEM (bpf_map_area_alloc() failing). */
export function mapAreaAlloc(kernel: Kernel, size: number, name: string): bigint | number {
  if (size > MAP_AREA_MAX) return -ENOMEM;
  try {
    return kernel.vmalloc.vzalloc(size, name);
  } catch {
    return -ENOMEM;
  }
}
