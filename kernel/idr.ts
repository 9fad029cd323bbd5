/**
 * @fileoverview idr_alloc_cyclic(): ids handed out cyclically from `start` (never 0 for BPF
 * objects), skipping ids in use, wrapping at INT_MAX; freeing makes an id reusable only when
 * the cursor comes round again, as the kernel's prog/map/link/btf idrs do.
 */

export const INT_MAX = 0x7fffffff;

export class Idr<T> {
  private map = new Map<number, T>();
  private next: number;
  private readonly start: number;

  constructor(start = 1) {
    this.start = start;
    this.next = start;
  }

  /** Allocates an id for `obj`; -ENOSPC (undefined) when every id is taken. */
  allocCyclic(obj: T): number | undefined {
    if (this.map.size >= INT_MAX - this.start + 1) return undefined;
    let id = this.next;
    while (this.map.has(id)) id = id >= INT_MAX ? this.start : id + 1;
    this.map.set(id, obj);
    this.next = id >= INT_MAX ? this.start : id + 1;
    return id;
  }

  find(id: number): T | undefined { return this.map.get(id); }

  remove(id: number): boolean { return this.map.delete(id); }

  /** idr_get_next: the smallest id greater than `after` in use. */
  getNext(after: number): { id: number; obj: T } | undefined {
    let best: number | undefined;
    for (const id of this.map.keys()) if (id > after && (best === undefined || id < best)) best = id;
    return best === undefined ? undefined : { id: best, obj: this.map.get(best)! };
  }

  get size(): number { return this.map.size; }

  values(): IterableIterator<T> { return this.map.values(); }
}
