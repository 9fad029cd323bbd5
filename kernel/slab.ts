/**
 * @fileoverview kmalloc/kfree over an arena in the direct map: first-fit with coalescing,
 * 16-byte granules (ARCH_KMALLOC_MINALIGN on x86-64 is 8; 16 keeps u128-safe alignment).
 * Objects the kernel model hands to guest code (skbs, test structs, per-CPU stats) live here,
 * and `inUse` lets tests prove nothing leaked.
 */
import type { GuestMemory } from '../emulator/memory.ts';
import { PROT_R, PROT_W } from '../emulator/memory.ts';

const GRANULE = 16n;

export class Slab {
  private free: { start: bigint; size: bigint }[];
  private live = new Map<bigint, bigint>();
  private mem: GuestMemory;
  readonly base: bigint;
  readonly size: number;

  constructor(mem: GuestMemory, base: bigint, size: number) {
    this.mem = mem;
    this.base = base;
    this.size = size;
    mem.map(base, size, PROT_R | PROT_W, { name: 'kmalloc arena' });
    this.free = [{ start: base, size: BigInt(size) }];
  }

  /** Zeroed memory (kzalloc), or undefined when the arena is exhausted (-ENOMEM to callers). */
  kzalloc(size: number): bigint | undefined {
    if (size <= 0) return undefined;
    const need = (BigInt(size) + GRANULE - 1n) & ~(GRANULE - 1n);
    const i = this.free.findIndex((f) => f.size >= need);
    if (i < 0) return undefined;
    const f = this.free[i]!;
    const addr = f.start;
    if (f.size === need) this.free.splice(i, 1);
    else { f.start += need; f.size -= need; }
    this.live.set(addr, need);
    this.mem.write(addr, new Uint8Array(Number(need)));
    return addr;
  }

  kfree(addr: bigint): void {
    if (addr === 0n) return; // kfree(NULL) is a no-op
    const size = this.live.get(addr);
    if (size === undefined) throw new Error(`kfree(0x${addr.toString(16)}): not an allocated object`);
    this.live.delete(addr);
    this.free.push({ start: addr, size });
    this.free.sort((a, b) => (a.start < b.start ? -1 : 1));
    for (let j = this.free.length - 1; j > 0; j--) {
      const a = this.free[j - 1]!, b = this.free[j]!;
      if (a.start + a.size === b.start) { a.size += b.size; this.free.splice(j, 1); }
    }
  }

  /** Bytes allocated and not freed. */
  get inUse(): number {
    let n = 0n;
    for (const s of this.live.values()) n += s;
    return Number(n);
  }
}
