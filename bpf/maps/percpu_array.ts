/**
 * @fileoverview BPF_MAP_TYPE_PERCPU_ARRAY (kernel/bpf/arraymap.c): each element has one
 * round_up(value_size, 8)-byte copy per possible CPU. Programs see this CPU's copy (the emulated
 * machine runs everything on CPU 0); the syscall reads and writes all copies at once, each
 * rounded up to 8 bytes, CPU 0 first (bpf_percpu_array_copy / bpf_percpu_array_update).
 *
 * Layout: one vmalloc area, a unit of max_entries elements per CPU (the percpu allocator's
 * units), so CPU c's copy of element i is at area + c * unit + i * elem_size.
 */
import type { Kernel } from '../../kernel/kernel.ts';
import {
  BPF_EXIST, BPF_NOEXIST, E2BIG, EEXIST, EINVAL, ENOENT, type MapAttr, type MapContext, type MapImpl, type MapOps,
} from './map.ts';
import { SIZEOF_BPF_ARRAY, arrayGetNextKey, arrayMapAllocCheck, arrayUpdateCheck } from './array.ts';
import { PAGE_SIZE, U32_MAX, bpfMapChargeInit, keyU32, mapAreaAlloc, needBytes, roundUp } from './common.ts';

export class PercpuArrayMap implements MapImpl {
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly elemSize: number;
  readonly nrCpus: number;
  readonly area: bigint;
  /** Bytes of one CPU's unit: max_entries * elem_size. */
  readonly unitSize: number;
  readonly memUsage: number;
  private readonly kernel: Kernel;
  private freed = false;

  constructor(kernel: Kernel, attr: MapAttr, nrCpus: number, area: bigint, memUsage: number) {
    this.kernel = kernel;
    this.valueSize = attr.valueSize;
    this.maxEntries = attr.maxEntries;
    this.elemSize = roundUp(attr.valueSize, 8);
    this.nrCpus = nrCpus;
    this.area = area;
    this.unitSize = attr.maxEntries * this.elemSize;
    this.memUsage = memUsage;
  }

  /** per_cpu_ptr(pptrs[index], cpu). */
  valueAddr(index: number, cpu = 0): bigint {
    return this.area + BigInt(cpu) * BigInt(this.unitSize) + BigInt(index) * BigInt(this.elemSize);
  }

  /** Bytes the syscall moves: round_up(value_size, 8) for each possible CPU (bpf_map_value_size). */
  get syscallValueSize(): number { return this.elemSize * this.nrCpus; }

  lookupElem(key: Uint8Array): bigint | undefined {
    needBytes('percpu array lookup key', key, 4);
    const index = keyU32(key);
    return index < this.maxEntries ? this.valueAddr(index) : undefined; // this_cpu_ptr(): CPU 0
  }

  lookupSyscall(key: Uint8Array): Uint8Array | number {
    needBytes('percpu array lookup key', key, 4);
    const index = keyU32(key);
    if (index >= this.maxEntries) return -ENOENT;
    const mem = this.kernel.machine.mem;
    const out = new Uint8Array(this.syscallValueSize);
    for (let cpu = 0; cpu < this.nrCpus; cpu++) out.set(mem.read(this.valueAddr(index, cpu), this.elemSize), cpu * this.elemSize);
    return out;
  }

  updateElem(key: Uint8Array, value: Uint8Array, flags: number, fromSyscall: boolean): number {
    needBytes('percpu array update key', key, 4);
    const index = keyU32(key);
    const mem = this.kernel.machine.mem;
    if (!fromSyscall) {
      // array_map_update_elem(): value_size bytes into this CPU's copy.
      const err = arrayUpdateCheck(index, this.maxEntries, flags);
      if (err) return err;
      needBytes('percpu array update value', value, this.valueSize);
      mem.write(this.valueAddr(index), value.subarray(0, this.valueSize));
      return 0;
    }
    // bpf_percpu_array_update(): no BPF_F_LOCK here, and the rounded size for every CPU.
    if (!Number.isInteger(flags) || flags < 0 || flags > U32_MAX || flags > BPF_EXIST) return -EINVAL;
    if (index >= this.maxEntries) return -E2BIG;
    if (flags === BPF_NOEXIST) return -EEXIST;
    needBytes('percpu array update value', value, this.syscallValueSize);
    for (let cpu = 0; cpu < this.nrCpus; cpu++)
      mem.write(this.valueAddr(index, cpu), value.subarray(cpu * this.elemSize, (cpu + 1) * this.elemSize));
    return 0;
  }

  deleteElem(): number { return -EINVAL; }

  getNextKey(key: Uint8Array | undefined): Uint8Array | number { return arrayGetNextKey(key, this.maxEntries); }

  free(): void {
    if (this.freed) throw new Error('percpu array map freed twice');
    this.freed = true;
    this.kernel.vmalloc.vfree(this.area);
  }
}

/** array_map_alloc() for BPF_MAP_TYPE_PERCPU_ARRAY: the pointer array plus every CPU's values. */
function percpuArrayMapAlloc(attr: MapAttr, ctx: MapContext): MapImpl | number {
  const elemSize = roundUp(attr.valueSize, 8);
  const cost = SIZEOF_BPF_ARRAY + attr.maxEntries * 8 + attr.maxEntries * elemSize * ctx.nrCpus;
  const pages = bpfMapChargeInit(cost);
  if (pages < 0) return pages;
  const area = mapAreaAlloc(ctx.kernel, attr.maxEntries * elemSize * ctx.nrCpus, `bpf percpu array ${attr.name}`);
  if (typeof area === 'number') return area;
  return new PercpuArrayMap(ctx.kernel, attr, ctx.nrCpus, area, pages * PAGE_SIZE);
}

export const percpuArrayMapOps: MapOps = {
  name: 'percpu_array_map_ops',
  allocCheck: (attr) => arrayMapAllocCheck(attr),
  alloc: percpuArrayMapAlloc,
};
