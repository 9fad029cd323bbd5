/**
 * @fileoverview The map types (include/linux/bpf_types.h's BPF_MAP_TYPE list): one ops table per
 * type, registered here, so a new type is one file and one line. createMap() is the part of
 * map_create() (kernel/bpf/syscall.c) between the bpf() attribute copy and the fd: the generic
 * checks, the type's alloc_check and alloc, the name, and the map's `struct bpf_map` in guest
 * memory (its address is what ld_imm64 of the map's fd loads and what helpers receive in R1).
 */
import type { Kernel } from '../../kernel/kernel.ts';
import type { GuestMemory } from '../../emulator/memory.ts';
import {
  BpfMap, BPF_F_RDONLY, BPF_F_WRONLY, BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_PERCPU_ARRAY,
  BPF_OBJ_NAME_LEN, EINVAL, ENOMEM, type MapAttr, type MapContext, type MapOps,
} from './map.ts';
import { arrayMapOps } from './array.ts';
import { percpuArrayMapOps } from './percpu_array.ts';
import { hashMapOps } from './hash.ts';
import { NUMA_NO_NODE, bpfMapAttrNumaNode } from './common.ts';

/** bpf_map_types[]: map type → its ops. */
export const MAP_TYPES = {
  [BPF_MAP_TYPE_HASH]: hashMapOps,
  [BPF_MAP_TYPE_ARRAY]: arrayMapOps,
  [BPF_MAP_TYPE_PERCPU_ARRAY]: percpuArrayMapOps,
} satisfies Record<number, MapOps>;

/** The ops of a map type, or undefined for one this kernel does not have. */
export const mapOps = (type: number): MapOps | undefined => (MAP_TYPES as Record<number, MapOps>)[type];

/**
 * struct bpf_map on x86-64 in v5.5 (CONFIG_SECURITY=y, after fc9702273e2e moved name up and
 * added freeze_mutex/writecnt): byte offsets of the fields the emulator fills in.
 * ops 0, inner_map_meta 8, security 16, then the u32s; refcnt starts the third cacheline.
 */
export const STRUCT_BPF_MAP = {
  ops: 0, innerMapMeta: 8, security: 16,
  mapType: 24, keySize: 28, valueSize: 32, maxEntries: 36, mapFlags: 40, spinLockOff: 44, id: 48, numaNode: 52,
  btfKeyTypeId: 56, btfValueTypeId: 60, btf: 64, memoryPages: 72, memoryUser: 80, name: 88,
  unprivArray: 104, frozen: 105, refcnt: 128, usercnt: 136, work: 144, freezeMutex: 176, writecnt: 208,
  size: 256,
} as const;

/** The kernel a live map's guest memory came from (freeMap needs it). */
const owners = new WeakMap<BpfMap, Kernel>();

/** bpf_obj_name_cpy(): only [A-Za-z0-9_.], and a NUL within BPF_OBJ_NAME_LEN bytes. */
export function bpfObjNameOk(name: string): boolean {
  const bytes = Buffer.from(name, 'utf8');
  const end = bytes.indexOf(0);
  const len = end < 0 ? bytes.length : end;
  if (len >= BPF_OBJ_NAME_LEN) return false;
  for (let i = 0; i < len; i++) {
    const c = bytes[i]!;
    const alnum = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
    if (!alnum && c !== 0x5f && c !== 0x2e) return false;
  }
  return true;
}

/** Writes the map's struct bpf_map from the object (again after id, frozen or counts change). */
export function writeBpfMapStruct(mem: GuestMemory, map: BpfMap): void {
  const S = STRUCT_BPF_MAP, at = (off: number): bigint => map.kaddr + BigInt(off);
  mem.writeU32(at(S.mapType), map.type);
  mem.writeU32(at(S.keySize), map.keySize);
  mem.writeU32(at(S.valueSize), map.valueSize);
  mem.writeU32(at(S.maxEntries), map.maxEntries);
  mem.writeU32(at(S.mapFlags), map.flags);
  mem.writeU32(at(S.spinLockOff), -EINVAL); // no bpf_spin_lock without BTF
  mem.writeU32(at(S.id), map.id);
  mem.writeU32(at(S.numaNode), bpfMapAttrNumaNode(map.attr));
  mem.writeU32(at(S.btfKeyTypeId), map.attr.btfKeyTypeId ?? 0);
  mem.writeU32(at(S.btfValueTypeId), map.attr.btfValueTypeId ?? 0);
  mem.writeU32(at(S.memoryPages), Math.ceil(map.impl.memUsage / 4096));
  const name = new Uint8Array(BPF_OBJ_NAME_LEN);
  name.set(Buffer.from(map.name, 'utf8').subarray(0, BPF_OBJ_NAME_LEN - 1));
  mem.write(at(S.name), name);
  mem.writeU8(at(S.frozen), map.frozen ? 1 : 0);
  mem.writeU64(at(S.refcnt), BigInt(map.refcnt));
  mem.writeU64(at(S.usercnt), BigInt(map.usercnt));
  mem.writeU64(at(S.writecnt), BigInt.asUintN(64, BigInt(map.writecnt)));
}

/**
 * map_create() from the attributes on: a live BpfMap (id 0: the caller allocates ids and fds),
 * or a negative errno, in the kernel's order: file flags, NUMA node, offload, type, the type's
 * alloc_check (sizes, flags), alloc (-E2BIG/-ENOMEM), then the name (the map is freed again).
 */
export function createMap(attr: MapAttr, ctx: MapContext): BpfMap | number {
  // bpf_get_file_flag(): not both read-only and write-only for user space.
  if ((attr.mapFlags & BPF_F_RDONLY) !== 0 && (attr.mapFlags & BPF_F_WRONLY) !== 0) return -EINVAL;
  // One online NUMA node (0).
  const node = bpfMapAttrNumaNode(attr);
  if (node !== NUMA_NO_NODE && node !== 0) return -EINVAL;
  // Offloaded maps need a netdev that offloads BPF; there is none.
  if (attr.mapIfindex) return -EINVAL;
  // find_and_alloc_map()
  const ops = mapOps(attr.mapType);
  if (!ops) return -EINVAL;
  const err = ops.allocCheck(attr, ctx);
  if (err) return err;
  const impl = ops.alloc(attr, ctx);
  if (typeof impl === 'number') return impl;
  if (!bpfObjNameOk(attr.name)) { impl.free(); return -EINVAL; }
  const kaddr = ctx.kernel.slab.kzalloc(STRUCT_BPF_MAP.size);
  if (kaddr === undefined) { impl.free(); return -ENOMEM; }
  const map = new BpfMap({ ...attr }, ops, impl, kaddr);
  writeBpfMapStruct(ctx.kernel.machine.mem, map);
  owners.set(map, ctx.kernel);
  return map;
}

/**
 * bpf_map_free_deferred(): the values' memory and the struct bpf_map go back. The kernel is the
 * one the map was created on (`ctx`, if given, must be that one).
 */
export function freeMap(map: BpfMap, ctx?: MapContext): void {
  const kernel = owners.get(map);
  if (!kernel) throw new Error(`freeMap: map ${map.name || map.kaddr.toString(16)} is not live (freed twice?)`);
  if (ctx && ctx.kernel !== kernel) throw new Error(`freeMap: map ${map.name} belongs to another kernel`);
  owners.delete(map);
  map.impl.free();
  kernel.slab.kfree(map.kaddr);
}
