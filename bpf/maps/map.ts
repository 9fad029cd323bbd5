/**
 * @fileoverview BPF maps: the object (struct bpf_map) and the per-type ops table
 * (struct bpf_map_ops), registered in one list (maps/types.ts): a new map type is one file and
 * one line. Values live in guest memory so JIT-compiled programs reach them directly; the map
 * also has a guest address of its own (what ld_imm64 of a map fd loads, and what helpers get).
 */
import type { Kernel } from '../../kernel/kernel.ts';

// enum bpf_map_type (include/uapi/linux/bpf.h)
export const BPF_MAP_TYPE_UNSPEC = 0, BPF_MAP_TYPE_HASH = 1, BPF_MAP_TYPE_ARRAY = 2, BPF_MAP_TYPE_PROG_ARRAY = 3;
export const BPF_MAP_TYPE_PERF_EVENT_ARRAY = 4, BPF_MAP_TYPE_PERCPU_HASH = 5, BPF_MAP_TYPE_PERCPU_ARRAY = 6;
// Map flags.
export const BPF_F_NO_PREALLOC = 1 << 0, BPF_F_NO_COMMON_LRU = 1 << 1, BPF_F_NUMA_NODE = 1 << 2;
export const BPF_F_RDONLY = 1 << 3, BPF_F_WRONLY = 1 << 4, BPF_F_STACK_BUILD_ID = 1 << 5, BPF_F_ZERO_SEED = 1 << 6;
export const BPF_F_RDONLY_PROG = 1 << 7, BPF_F_WRONLY_PROG = 1 << 8, BPF_F_CLONE = 1 << 9, BPF_F_MMAPABLE = 1 << 10;
// Update flags.
export const BPF_ANY = 0, BPF_NOEXIST = 1, BPF_EXIST = 2, BPF_F_LOCK = 4;
export const BPF_OBJ_NAME_LEN = 16;
/** KMALLOC_MAX_SIZE-ish cap the kernel puts on a key (MAX_BPF_STACK for lookups from programs). */
export const MAX_BPF_KEY_SIZE = 512;
/** Values larger than this are refused at map creation (KMALLOC_MAX_SIZE in the kernel: -E2BIG). */
export const KMALLOC_MAX_SIZE = 1 << 22;

export const ENOENT = 2, E2BIG = 7, ENOMEM = 12, EFAULT = 14, EBUSY = 16, EEXIST = 17, EINVAL = 22, ENOSPC = 28, ENOTSUPP = 524, EPERM = 1;

/** The attributes of BPF_MAP_CREATE (union bpf_attr's map fields). */
export interface MapAttr {
  mapType: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  mapFlags: number;
  innerMapFd?: number;
  numaNode?: number;
  name: string;
  mapIfindex?: number;
  btfFd?: number;
  btfKeyTypeId?: number;
  btfValueTypeId?: number;
}

/** What a map implementation may use of the kernel. */
export interface MapContext {
  kernel: Kernel;
  /** num_possible_cpus(): per-CPU maps keep this many copies of each value. */
  nrCpus: number;
}

/**
 * The map's contents (one per map type): keys and values as bytes in, guest addresses out, and
 * errors as negative errnos, exactly as the kernel's map_ops return them.
 */
export interface MapImpl {
  /** map_lookup_elem from a program: the value's guest address (this CPU's for per-CPU maps). */
  lookupElem(key: Uint8Array): bigint | undefined;
  /** The syscall's lookup: the value bytes (all CPUs', each rounded up to 8, for per-CPU maps). */
  lookupSyscall(key: Uint8Array): Uint8Array | number;
  /** Update from a program (value: value_size bytes) or the syscall (per-CPU: all CPUs'). */
  updateElem(key: Uint8Array, value: Uint8Array, flags: number, fromSyscall: boolean): number;
  deleteElem(key: Uint8Array): number;
  /** The key after `key` (the first key when undefined); -ENOENT at the end. */
  getNextKey(key: Uint8Array | undefined): Uint8Array | number;
  /** Releases guest memory. */
  free(): void;
  /** Guest memory held (bytes), for leak checks and memlock. */
  readonly memUsage: number;
}

export interface MapOps {
  readonly name: string;
  /** map_alloc_check: 0 or a negative errno for attributes this type refuses. */
  allocCheck(attr: MapAttr, ctx: MapContext): number;
  alloc(attr: MapAttr, ctx: MapContext): MapImpl | number;
}

/** struct bpf_map: what the bpf() surface, helpers and programs share. */
export class BpfMap {
  id = 0;
  readonly attr: MapAttr;
  readonly ops: MapOps;
  readonly impl: MapImpl;
  /** The guest address standing for `struct bpf_map *` (ld_imm64 of the map fd loads it). */
  readonly kaddr: bigint;
  /** References: fds, programs using it, links; usercnt: user-space references (fds). */
  refcnt = 1;
  usercnt = 1;
  frozen = false;
  /** Writable memory mappings of the map (bpf_map_mmap, fc9702273e2e): freeze is -EBUSY while > 0. */
  writecnt = 0;
  btfId = 0;

  constructor(attr: MapAttr, ops: MapOps, impl: MapImpl, kaddr: bigint) {
    this.attr = attr;
    this.ops = ops;
    this.impl = impl;
    this.kaddr = kaddr;
  }

  get type(): number { return this.attr.mapType; }
  get keySize(): number { return this.attr.keySize; }
  get valueSize(): number { return this.attr.valueSize; }
  get maxEntries(): number { return this.attr.maxEntries; }
  get flags(): number { return this.attr.mapFlags; }
  get name(): string { return this.attr.name; }
}
