/**
 * @fileoverview vmalloc: page-granular kernel allocations in the vmalloc area, each its own
 * mapping (so a mapping can later be shown to a user process too: mmap of BPF arrays).
 */
import type { GuestMemory, Mapping } from '../emulator/memory.ts';
import { PROT_R, PROT_W, PAGE_SIZE } from '../emulator/memory.ts';
import { VMALLOC_START } from './layout.ts';

/** A guard page between areas, as vmalloc leaves one. */
const GUARD = BigInt(PAGE_SIZE);

export class Vmalloc {
  private mem: GuestMemory;
  private next = VMALLOC_START;
  private live = new Map<bigint, Mapping>();

  constructor(mem: GuestMemory) { this.mem = mem; }

  /** vzalloc(): zeroed pages; the returned address is page-aligned. */
  vzalloc(size: number, name = 'vmalloc'): bigint {
    if (size <= 0) throw new RangeError(`vzalloc(${size})`);
    const bytes = Math.ceil(size / PAGE_SIZE) * PAGE_SIZE;
    const addr = this.next;
    this.live.set(addr, this.mem.map(addr, bytes, PROT_R | PROT_W, { name }));
    this.next += BigInt(bytes) + GUARD;
    return addr;
  }

  vfree(addr: bigint): void {
    if (!this.live.has(addr)) throw new Error(`vfree(0x${addr.toString(16)}): not a vmalloc area`);
    this.mem.unmap(addr);
    this.live.delete(addr);
  }

  /** The mapping behind an area (its host region can be mapped again elsewhere). */
  mapping(addr: bigint): Mapping | undefined { return this.live.get(addr); }

  get pagesInUse(): number {
    let n = 0;
    for (const m of this.live.values()) n += m.size / PAGE_SIZE;
    return n;
  }
}
