/**
 * @fileoverview Executable allocations in the module area (module_alloc / bpf_jit_alloc_exec):
 * whole pages, mapped read+exec for the guest. The kernel model writes them through the host
 * view (text_poke-like), which also drops stale translated code. Within ±2 GiB of the kernel
 * text, so `call rel32` from JIT images and trampolines reaches kernel functions and natives.
 */
import type { GuestMemory } from '../emulator/memory.ts';
import { PROT_R, PROT_X, PAGE_SIZE } from '../emulator/memory.ts';
import { MODULES_ALLOC_START, MODULES_END } from './layout.ts';

export interface ExecRegion {
  readonly start: bigint;
  readonly size: number;
  readonly name: string;
}

export class ExecMem {
  private mem: GuestMemory;
  private live = new Map<bigint, ExecRegion>();
  private next = MODULES_ALLOC_START;
  private freed: ExecRegion[] = [];

  constructor(mem: GuestMemory) {
    this.mem = mem;
  }

  /** Whole pages of executable memory; reuses freed ranges first (first fit). */
  alloc(size: number, name: string): ExecRegion {
    if (size <= 0) throw new RangeError(`execmem alloc ${name}: size ${size}`);
    const pages = Math.ceil(size / PAGE_SIZE) * PAGE_SIZE;
    let start: bigint | undefined;
    const i = this.freed.findIndex((f) => f.size >= pages);
    if (i >= 0) {
      const f = this.freed[i]!;
      start = f.start;
      if (f.size === pages) this.freed.splice(i, 1);
      else this.freed[i] = { start: f.start + BigInt(pages), size: f.size - pages, name: '' };
    } else {
      if (this.next + BigInt(pages) > MODULES_END) throw new RangeError(`execmem alloc ${name}: module area exhausted`);
      start = this.next;
      this.next += BigInt(pages);
    }
    this.mem.map(start, pages, PROT_R | PROT_X, { name });
    // int3 filler, as the kernel's bpf_fill_ill_insns: a jump into unused space traps.
    this.mem.write(start, new Uint8Array(pages).fill(0xcc));
    const r: ExecRegion = { start, size: pages, name };
    this.live.set(start, r);
    return r;
  }

  free(start: bigint): void {
    const r = this.live.get(start);
    if (!r) throw new Error(`execmem free 0x${start.toString(16)}: not an allocation`);
    this.mem.unmap(start);
    this.live.delete(start);
    this.freed.push({ start: r.start, size: r.size, name: '' });
  }

  /** Pages allocated and not freed (leak checks). */
  get pagesInUse(): number {
    let n = 0;
    for (const r of this.live.values()) n += r.size / PAGE_SIZE;
    return n;
  }

  /** Writes code into an allocation (drops stale translations through GuestMemory). */
  write(addr: bigint, bytes: Uint8Array): void {
    this.mem.write(addr, bytes);
  }
}
