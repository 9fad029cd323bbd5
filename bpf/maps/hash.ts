/**
 * @fileoverview BPF_MAP_TYPE_HASH (kernel/bpf/hashtab.c): elements are struct htab_elem in guest
 * memory (hash at +40, key at +48, value after the key rounded up to 8), chained in
 * roundup_pow_of_two(max_entries) buckets chosen by jhash(key, key_size, hashrnd).
 *
 * Preallocated (the default): one vmalloc area of max_entries + nr_cpus elements; a free list
 * holds max_entries of them and each CPU keeps one spare. As in the kernel, updating an existing
 * key writes a fresh element (this CPU's spare), links it at the bucket head and unlinks the old
 * one, which becomes the spare: a program holding the old value's address keeps reading the old
 * value, and a new lookup returns the new address. With BPF_F_NO_PREALLOC each element is
 * kzalloc'd on insert and kfree'd on delete or replacement (immediately: RCU is not modelled).
 *
 * GET_NEXT_KEY walks buckets in index order and each bucket's chain from its head (newest
 * first), like htab_map_get_next_key(); a key not in the map restarts at the first element.
 * hashrnd is random in the kernel; here it is HTAB_DEFAULT_SEED, or 0 with BPF_F_ZERO_SEED.
 */
import type { Kernel } from '../../kernel/kernel.ts';
import { capable, CAP_SYS_ADMIN } from '../../kernel/cred.ts';
import {
  BPF_EXIST, BPF_F_LOCK, BPF_F_NO_COMMON_LRU, BPF_F_NO_PREALLOC, BPF_F_NUMA_NODE, BPF_F_ZERO_SEED, BPF_NOEXIST,
  E2BIG, EEXIST, EINVAL, ENOENT, ENOMEM, EPERM, KMALLOC_MAX_SIZE, MAX_BPF_KEY_SIZE,
  type MapAttr, type MapContext, type MapImpl, type MapOps,
} from './map.ts';
import {
  BPF_F_ACCESS_MASK, PAGE_SIZE, U32_MAX, badUpdateFlags, bpfMapChargeInit, bpfMapFlagsAccessOk, mapAreaAlloc,
  needBytes, roundUp,
} from './common.ts';
import { jhash } from './jhash.ts';

/** HTAB_CREATE_FLAG_MASK (v5.5). */
export const HTAB_CREATE_FLAG_MASK = BPF_F_NO_PREALLOC | BPF_F_NO_COMMON_LRU | BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK | BPF_F_ZERO_SEED;
/**
 * struct htab_elem on x86-64: the hash node / free-list union (16), the rcu_head / bpf_lru_node
 * union (24), u32 hash at 40, key[] 8-aligned at 48 = sizeof(struct htab_elem).
 */
export const HTAB_ELEM_HASH_OFF = 40;
export const SIZEOF_HTAB_ELEM = 48;
/** struct bucket: hlist_nulls_head and a raw spinlock. */
export const SIZEOF_BUCKET = 16;
/** The fixed hashrnd used instead of get_random_int(). */
export const HTAB_DEFAULT_SEED = 0x9e3779b9;

/** roundup_pow_of_two() on an unsigned long, truncated to the u32 n_buckets (2^32 becomes 0). */
function nBuckets(maxEntries: number): number {
  let n = 1;
  while (n < maxEntries) n *= 2;
  return n > U32_MAX ? 0 : n;
}

/** htab_map_alloc_check() for BPF_MAP_TYPE_HASH. */
export function htabMapAllocCheck(attr: MapAttr, ctx: MapContext): number {
  const zeroSeed = (attr.mapFlags & BPF_F_ZERO_SEED) !== 0;
  // A fixed seed lets anyone build colliding keys: capable(CAP_SYS_ADMIN) only (every profile).
  if (zeroSeed && !capable(ctx.kernel.current.cred, CAP_SYS_ADMIN)) return -EPERM;
  if ((attr.mapFlags & ~HTAB_CREATE_FLAG_MASK) !== 0 || !bpfMapFlagsAccessOk(attr.mapFlags)) return -EINVAL;
  // BPF_F_NO_COMMON_LRU is for LRU maps only.
  if ((attr.mapFlags & BPF_F_NO_COMMON_LRU) !== 0) return -EINVAL;
  if (attr.maxEntries === 0 || attr.keySize === 0 || attr.valueSize === 0) return -EINVAL;
  // Programs build keys on their stack.
  if (attr.keySize > MAX_BPF_KEY_SIZE) return -E2BIG;
  if (attr.valueSize >= KMALLOC_MAX_SIZE - MAX_BPF_KEY_SIZE - SIZEOF_HTAB_ELEM) return -E2BIG;
  return 0;
}

interface HtabElem {
  readonly addr: bigint;
  readonly key: Uint8Array;
  readonly hash: number;
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
};

export class HashMap implements MapImpl {
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly nBuckets: number;
  /** sizeof(struct htab_elem) + round_up(key_size, 8) + round_up(value_size, 8). */
  readonly elemSize: number;
  readonly prealloc: boolean;
  readonly hashrnd: number;
  readonly memUsage: number;
  /** The preallocated elements' vmalloc area (prealloc only). */
  readonly elems: bigint | undefined;
  private readonly kernel: Kernel;
  /** Bucket index → chain, head first; only non-empty buckets are present. */
  private readonly buckets = new Map<number, HtabElem[]>();
  /** Sorted indices of the non-empty buckets, rebuilt after a bucket appears or empties. */
  private order: number[] | undefined;
  /** Free preallocated elements (a stack: the last pushed is popped first). */
  private readonly freelist: bigint[] = [];
  /** Each CPU's spare element for replacing updates (extra_elems). */
  private readonly extra: bigint[] = [];
  private count = 0;
  private freed = false;

  constructor(kernel: Kernel, attr: MapAttr, nrCpus: number, elems: bigint | undefined, memUsage: number) {
    this.kernel = kernel;
    this.keySize = attr.keySize;
    this.valueSize = attr.valueSize;
    this.maxEntries = attr.maxEntries;
    this.nBuckets = nBuckets(attr.maxEntries);
    this.elemSize = SIZEOF_HTAB_ELEM + roundUp(attr.keySize, 8) + roundUp(attr.valueSize, 8);
    this.prealloc = elems !== undefined;
    this.hashrnd = (attr.mapFlags & BPF_F_ZERO_SEED) !== 0 ? 0 : HTAB_DEFAULT_SEED;
    this.memUsage = memUsage;
    this.elems = elems;
    if (elems !== undefined) {
      const at = (i: number): bigint => elems + BigInt(i) * BigInt(this.elemSize);
      for (let i = attr.maxEntries - 1; i >= 0; i--) this.freelist.push(at(i));
      for (let cpu = 0; cpu < nrCpus; cpu++) this.extra.push(at(attr.maxEntries + cpu));
    }
  }

  /** Elements in the map. */
  get size(): number { return this.count; }

  /** The value's offset in an element: after the key, rounded up to 8. */
  private get valueOff(): bigint { return BigInt(SIZEOF_HTAB_ELEM + roundUp(this.keySize, 8)); }

  /** htab_map_hash(). */
  hashOf(key: Uint8Array): number { return jhash(key.subarray(0, this.keySize), this.hashrnd); }

  private bucketOf(hash: number): number { return hash & (this.nBuckets - 1); }

  private lookupRaw(key: Uint8Array, hash: number): HtabElem | undefined {
    const chain = this.buckets.get(this.bucketOf(hash));
    return chain?.find((e) => e.hash === hash && sameBytes(e.key, key));
  }

  private link(e: HtabElem): void {
    const b = this.bucketOf(e.hash);
    const chain = this.buckets.get(b);
    if (chain) chain.unshift(e); // hlist_nulls_add_head_rcu
    else { this.buckets.set(b, [e]); this.order = undefined; }
  }

  private unlink(e: HtabElem): void {
    const b = this.bucketOf(e.hash);
    const chain = this.buckets.get(b)!;
    chain.splice(chain.indexOf(e), 1);
    if (chain.length === 0) { this.buckets.delete(b); this.order = undefined; }
  }

  private key(key: Uint8Array): Uint8Array {
    needBytes('hash map key', key, this.keySize);
    return key.slice(0, this.keySize);
  }

  lookupElem(key: Uint8Array): bigint | undefined {
    const k = this.key(key);
    const e = this.lookupRaw(k, this.hashOf(k));
    return e ? e.addr + this.valueOff : undefined;
  }

  lookupSyscall(key: Uint8Array): Uint8Array | number {
    const addr = this.lookupElem(key);
    return addr === undefined ? -ENOENT : this.kernel.machine.mem.read(addr, this.valueSize);
  }

  /** alloc_htab_elem(): an element for `key` (replacing `old` if set), or a negative errno. */
  private allocElem(key: Uint8Array, hash: number, old: HtabElem | undefined): HtabElem | number {
    let addr: bigint;
    if (this.prealloc) {
      if (old) {
        // Use this CPU's spare element; the old one becomes the spare.
        addr = this.extra[0]!;
        this.extra[0] = old.addr;
      } else {
        const a = this.freelist.pop();
        if (a === undefined) return -E2BIG; // every preallocated element is in use
        addr = a;
      }
    } else {
      // When full, replacing is allowed (the old element is freed right after).
      if (!old && this.count >= this.maxEntries) return -E2BIG;
      const a = this.kernel.slab.kzalloc(this.elemSize);
      if (a === undefined) return -ENOMEM;
      addr = a;
    }
    return { addr, key, hash };
  }

  /** free_htab_elem(): back to the free list, or kfree. */
  private freeElem(e: HtabElem): void {
    if (this.prealloc) this.freelist.push(e.addr);
    else this.kernel.slab.kfree(e.addr);
  }

  updateElem(key: Uint8Array, value: Uint8Array, flags: number): number {
    if (badUpdateFlags(flags)) return -EINVAL;
    const k = this.key(key);
    const hash = this.hashOf(k);
    // BPF_F_LOCK needs a bpf_spin_lock in the value (BTF-described values only).
    if ((flags & BPF_F_LOCK) !== 0) return -EINVAL;
    const old = this.lookupRaw(k, hash);
    // check_flags()
    const mode = flags & ~BPF_F_LOCK;
    if (old && mode === BPF_NOEXIST) return -EEXIST;
    if (!old && mode === BPF_EXIST) return -ENOENT;
    needBytes('hash map value', value, this.valueSize);
    const e = this.allocElem(k, hash, old);
    if (typeof e === 'number') return e;
    const mem = this.kernel.machine.mem;
    mem.write(e.addr + BigInt(SIZEOF_HTAB_ELEM), k);
    mem.write(e.addr + this.valueOff, value.subarray(0, this.valueSize));
    mem.writeU32(e.addr + BigInt(HTAB_ELEM_HASH_OFF), hash);
    // New element at the head first, so a concurrent search finds it before the old one.
    this.link(e);
    if (old) {
      this.unlink(old);
      if (!this.prealloc) this.freeElem(old);
    } else this.count++;
    return 0;
  }

  deleteElem(key: Uint8Array): number {
    const k = this.key(key);
    const e = this.lookupRaw(k, this.hashOf(k));
    if (!e) return -ENOENT;
    this.unlink(e);
    this.freeElem(e);
    this.count--;
    return 0;
  }

  /** The first key in bucket order from bucket `from` on. */
  private firstFrom(from: number): Uint8Array | number {
    this.order ??= [...this.buckets.keys()].sort((a, b) => a - b);
    let lo = 0, hi = this.order.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (this.order[mid]! < from) lo = mid + 1; else hi = mid; }
    if (lo === this.order.length) return -ENOENT; // iterated over all buckets and all elements
    return this.buckets.get(this.order[lo]!)![0]!.key.slice();
  }

  getNextKey(key: Uint8Array | undefined): Uint8Array | number {
    if (key === undefined) return this.firstFrom(0);
    const k = this.key(key);
    const hash = this.hashOf(k);
    const e = this.lookupRaw(k, hash);
    if (!e) return this.firstFrom(0);
    const chain = this.buckets.get(this.bucketOf(hash))!;
    const next = chain[chain.indexOf(e) + 1];
    if (next) return next.key.slice();
    return this.firstFrom(this.bucketOf(hash) + 1);
  }

  free(): void {
    if (this.freed) throw new Error('hash map freed twice');
    this.freed = true;
    if (this.elems !== undefined) this.kernel.vmalloc.vfree(this.elems);
    else for (const chain of this.buckets.values()) for (const e of chain) this.kernel.slab.kfree(e.addr);
    this.buckets.clear();
    this.order = undefined;
  }
}

/** htab_map_alloc() for BPF_MAP_TYPE_HASH. */
function htabMapAlloc(attr: MapAttr, ctx: MapContext): MapImpl | number {
  const n = nBuckets(attr.maxEntries);
  const elemSize = SIZEOF_HTAB_ELEM + roundUp(attr.keySize, 8) + roundUp(attr.valueSize, 8);
  // Zero-size allocation or u32 overflow of the bucket array.
  if (n === 0 || n > Math.floor(U32_MAX / SIZEOF_BUCKET)) return -E2BIG;
  const cost = n * SIZEOF_BUCKET + elemSize * attr.maxEntries + elemSize * ctx.nrCpus;
  const pages = bpfMapChargeInit(cost);
  if (pages < 0) return pages;
  let elems: bigint | undefined;
  if ((attr.mapFlags & BPF_F_NO_PREALLOC) === 0) {
    const area = mapAreaAlloc(ctx.kernel, elemSize * (attr.maxEntries + ctx.nrCpus), `bpf htab ${attr.name}`);
    if (typeof area === 'number') return area;
    elems = area;
  }
  return new HashMap(ctx.kernel, attr, ctx.nrCpus, elems, pages * PAGE_SIZE);
}

export const hashMapOps: MapOps = {
  name: 'htab_map_ops',
  allocCheck: htabMapAllocCheck,
  alloc: htabMapAlloc,
};
