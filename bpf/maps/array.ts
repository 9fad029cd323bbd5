/**
 * @fileoverview BPF_MAP_TYPE_ARRAY (kernel/bpf/arraymap.c): max_entries values of
 * round_up(value_size, 8) bytes, preallocated and zeroed in one vmalloc area, indexed by a u32 key.
 * Elements always exist: lookups return their address, updates overwrite, deletes fail.
 *
 * With BPF_F_MMAPABLE the area is laid out as the kernel's (fc9702273e2e): one page standing for
 * struct bpf_array, then the values from the second page on, page-rounded, so the value pages
 * can be mapped into a process as they are.
 */
import type { Kernel } from '../../kernel/kernel.ts';
import {
  BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_PERCPU_ARRAY, BPF_F_LOCK, BPF_F_MMAPABLE, BPF_F_NUMA_NODE, BPF_NOEXIST,
  E2BIG, EEXIST, EINVAL, ENOENT, KMALLOC_MAX_SIZE, type MapAttr, type MapContext, type MapImpl, type MapOps,
} from './map.ts';
import {
  BPF_F_ACCESS_MASK, NUMA_NO_NODE, PAGE_SIZE, badUpdateFlags, bpfMapAttrNumaNode, bpfMapChargeInit,
  bpfMapFlagsAccessOk, keyU32, mapAreaAlloc, needBytes, pageAlign, roundUp, u32Key,
} from './common.ts';

/** ARRAY_CREATE_FLAG_MASK (v5.5). */
export const ARRAY_CREATE_FLAG_MASK = BPF_F_NUMA_NODE | BPF_F_MMAPABLE | BPF_F_ACCESS_MASK;

/**
 * sizeof(struct bpf_array) on x86-64 in v5.5: struct bpf_map (256 bytes, cacheline-aligned),
 * elem_size, index_mask, the aux pointer, then the values at offset 272; 320 with the padding.
 * It counts in the memlock charge.
 */
export const SIZEOF_BPF_ARRAY = 320;

/** array_map_alloc_check(), shared by ARRAY and PERCPU_ARRAY. */
export function arrayMapAllocCheck(attr: MapAttr): number {
  const percpu = attr.mapType === BPF_MAP_TYPE_PERCPU_ARRAY;
  if (attr.maxEntries === 0 || attr.keySize !== 4 || attr.valueSize === 0 ||
      (attr.mapFlags & ~ARRAY_CREATE_FLAG_MASK) !== 0 || !bpfMapFlagsAccessOk(attr.mapFlags) ||
      (percpu && bpfMapAttrNumaNode(attr) !== NUMA_NO_NODE)) return -EINVAL;
  if (attr.mapType !== BPF_MAP_TYPE_ARRAY && (attr.mapFlags & BPF_F_MMAPABLE) !== 0) return -EINVAL;
  // Larger values could not be copied to user space by the syscall.
  if (attr.valueSize > KMALLOC_MAX_SIZE) return -E2BIG;
  return 0;
}

/** The update checks array_map_update_elem() makes before it copies (all array kinds). */
export function arrayUpdateCheck(index: number, maxEntries: number, flags: number): number {
  if (badUpdateFlags(flags)) return -EINVAL;
  // All elements were preallocated: there is no index to insert.
  if (index >= maxEntries) return -E2BIG;
  if ((flags & BPF_NOEXIST) !== 0) return -EEXIST;
  // BPF_F_LOCK needs a bpf_spin_lock in the value, which only BTF-described values have.
  if ((flags & BPF_F_LOCK) !== 0) return -EINVAL;
  return 0;
}

/** array_map_get_next_key(): 0 for no key or one out of range, index + 1, -ENOENT after the last. */
export function arrayGetNextKey(key: Uint8Array | undefined, maxEntries: number): Uint8Array | number {
  const index = key === undefined ? 0xffffffff : keyU32(key);
  if (index >= maxEntries) return u32Key(0);
  if (index === maxEntries - 1) return -ENOENT;
  return u32Key(index + 1);
}

/** The values of a BPF_MAP_TYPE_ARRAY in guest memory. */
export class ArrayMap implements MapImpl {
  readonly valueSize: number;
  readonly maxEntries: number;
  /** round_up(value_size, 8): the stride between values. */
  readonly elemSize: number;
  /** The vmalloc area (page-aligned; what is freed). */
  readonly area: bigint;
  readonly areaSize: number;
  /** The first value: the area itself, or its second page with BPF_F_MMAPABLE. */
  readonly values: bigint;
  /** Pages the values take from `values` on (what an mmap of the map shows), when BPF_F_MMAPABLE. */
  readonly mmapable: boolean;
  readonly memUsage: number;
  private readonly kernel: Kernel;
  private freed = false;

  constructor(kernel: Kernel, attr: MapAttr, area: bigint, areaSize: number, values: bigint, memUsage: number) {
    this.kernel = kernel;
    this.valueSize = attr.valueSize;
    this.maxEntries = attr.maxEntries;
    this.elemSize = roundUp(attr.valueSize, 8);
    this.area = area;
    this.areaSize = areaSize;
    this.values = values;
    this.mmapable = (attr.mapFlags & BPF_F_MMAPABLE) !== 0;
    this.memUsage = memUsage;
  }

  /** The address of value `index` (no range check). */
  valueAddr(index: number): bigint { return this.values + BigInt(index) * BigInt(this.elemSize); }

  /** Bytes an mmap of the map may cover: PAGE_ALIGN(max_entries * elem_size) (array_map_mmap). */
  get mmapSize(): number { return pageAlign(this.maxEntries * this.elemSize); }

  lookupElem(key: Uint8Array): bigint | undefined {
    needBytes('array lookup key', key, 4);
    const index = keyU32(key);
    return index < this.maxEntries ? this.valueAddr(index) : undefined;
  }

  lookupSyscall(key: Uint8Array): Uint8Array | number {
    const addr = this.lookupElem(key);
    return addr === undefined ? -ENOENT : this.kernel.machine.mem.read(addr, this.valueSize);
  }

  updateElem(key: Uint8Array, value: Uint8Array, flags: number): number {
    needBytes('array update key', key, 4);
    const index = keyU32(key);
    const err = arrayUpdateCheck(index, this.maxEntries, flags);
    if (err) return err;
    needBytes('array update value', value, this.valueSize);
    // copy_map_value(): value_size bytes; the padding up to elem_size keeps what it had.
    this.kernel.machine.mem.write(this.valueAddr(index), value.subarray(0, this.valueSize));
    return 0;
  }

  deleteElem(): number { return -EINVAL; }

  getNextKey(key: Uint8Array | undefined): Uint8Array | number { return arrayGetNextKey(key, this.maxEntries); }

  free(): void {
    if (this.freed) throw new Error('array map freed twice');
    this.freed = true;
    this.kernel.vmalloc.vfree(this.area);
  }
}

/** array_map_alloc() for BPF_MAP_TYPE_ARRAY. */
function arrayMapAlloc(attr: MapAttr, ctx: MapContext): MapImpl | number {
  const elemSize = roundUp(attr.valueSize, 8);
  const mmapable = (attr.mapFlags & BPF_F_MMAPABLE) !== 0;
  const valuesSize = attr.maxEntries * elemSize;
  // The kernel's array_size: struct bpf_array and the values, each page-aligned when mmapable.
  const arraySize = mmapable ? pageAlign(SIZEOF_BPF_ARRAY) + pageAlign(valuesSize) : SIZEOF_BPF_ARRAY + valuesSize;
  const pages = bpfMapChargeInit(arraySize);
  if (pages < 0) return pages;
  // The values here: at the start of their own area, or from the second page when mmapable.
  const header = mmapable ? pageAlign(SIZEOF_BPF_ARRAY) : 0;
  const areaSize = header + (mmapable ? pageAlign(valuesSize) : valuesSize);
  const area = mapAreaAlloc(ctx.kernel, areaSize, `bpf array ${attr.name}`);
  if (typeof area === 'number') return area;
  return new ArrayMap(ctx.kernel, attr, area, pageAlign(areaSize), area + BigInt(header), pages * PAGE_SIZE);
}

export const arrayMapOps: MapOps = {
  name: 'array_map_ops',
  allocCheck: (attr) => arrayMapAllocCheck(attr),
  alloc: arrayMapAlloc,
};
