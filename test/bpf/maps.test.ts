/**
 * @fileoverview Map types against the kernel's semantics (kernel/bpf/arraymap.c, hashtab.c,
 * syscall.c map_create, v5.5): creation attributes and their errnos, each operation's flags and
 * errnos, values in guest memory at the addresses lookups return, per-CPU syscall sizes, the
 * hash map's GET_NEXT_KEY order, and guest memory coming back when maps are freed.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { boot, type System } from '../../index.ts';
import {
  BpfMap, BPF_ANY, BPF_EXIST, BPF_F_LOCK, BPF_F_MMAPABLE, BPF_F_NO_COMMON_LRU, BPF_F_NO_PREALLOC, BPF_F_NUMA_NODE,
  BPF_F_RDONLY, BPF_F_RDONLY_PROG, BPF_F_WRONLY, BPF_F_WRONLY_PROG, BPF_F_ZERO_SEED, BPF_MAP_TYPE_ARRAY,
  BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_PERCPU_ARRAY, BPF_MAP_TYPE_PROG_ARRAY, BPF_NOEXIST, E2BIG, EEXIST, EINVAL, ENOENT,
  ENOMEM, EPERM, KMALLOC_MAX_SIZE, type MapAttr, type MapContext,
} from '../../bpf/maps/map.ts';
import { MAP_TYPES, STRUCT_BPF_MAP, createMap, freeMap } from '../../bpf/maps/types.ts';
import { ArrayMap } from '../../bpf/maps/array.ts';
import { PercpuArrayMap } from '../../bpf/maps/percpu_array.ts';
import { HashMap, HTAB_DEFAULT_SEED, SIZEOF_HTAB_ELEM } from '../../bpf/maps/hash.ts';
import { jhash } from '../../bpf/maps/jhash.ts';

const NR_CPUS = 4;
let sys: System;
let ctx: MapContext;
beforeAll(async () => {
  sys = await boot();
  ctx = { kernel: sys.kernel, nrCpus: NR_CPUS };
});
afterAll(() => sys.close());

const mem = () => sys.kernel.machine.mem;
const TYPE_NAME: Record<number, string> = { [BPF_MAP_TYPE_HASH]: 'hash', [BPF_MAP_TYPE_ARRAY]: 'array', [BPF_MAP_TYPE_PERCPU_ARRAY]: 'percpu_array' };
const attrOf = (mapType: number, over: Partial<MapAttr> = {}): MapAttr =>
  ({ mapType, keySize: 4, valueSize: 8, maxEntries: 4, mapFlags: 0, name: 'm', ...over });
const usage = () => ({ pages: sys.kernel.vmalloc.pagesInUse, slab: sys.kernel.slab.inUse });

/** Creates a map that must succeed. */
function make(mapType: number, over: Partial<MapAttr> = {}): BpfMap {
  const m = createMap(attrOf(mapType, over), ctx);
  if (typeof m === 'number') throw new Error(`createMap(${TYPE_NAME[mapType]}) failed with ${m}`);
  return m;
}
/** Runs `fn` on a fresh map, frees it, and checks every guest byte came back. */
function withMap<T>(mapType: number, over: Partial<MapAttr>, fn: (m: BpfMap) => T): T {
  const before = usage();
  const m = make(mapType, over);
  try { return fn(m); } finally { freeMap(m); expect(usage()).toEqual(before); }
}
const k32 = (v: number): Uint8Array => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, v, true); return b; };
const v64 = (v: bigint): Uint8Array => { const b = new Uint8Array(8); new DataView(b.buffer).setBigUint64(0, v, true); return b; };
const u32Of = (b: Uint8Array | number): number => {
  if (typeof b === 'number') throw new Error(`expected a key, got errno ${b}`);
  return new DataView(b.buffer, b.byteOffset).getUint32(0, true);
};

describe('map_create: attributes and errnos', () => {
  const H = BPF_MAP_TYPE_HASH, A = BPF_MAP_TYPE_ARRAY, P = BPF_MAP_TYPE_PERCPU_ARRAY;
  const cases: { descr: string; type: number; over: Partial<MapAttr>; err: number }[] = [
    { descr: 'unknown map type', type: 99, over: {}, err: -EINVAL },
    { descr: 'BPF_MAP_TYPE_UNSPEC', type: 0, over: {}, err: -EINVAL },
    { descr: 'a type without ops here (prog array)', type: BPF_MAP_TYPE_PROG_ARRAY, over: {}, err: -EINVAL },
    { descr: 'read-only and write-only', type: A, over: { mapFlags: BPF_F_RDONLY | BPF_F_WRONLY }, err: -EINVAL },
    { descr: 'rdonly_prog and wronly_prog', type: A, over: { mapFlags: BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG }, err: -EINVAL },
    { descr: 'rdonly_prog', type: A, over: { mapFlags: BPF_F_RDONLY_PROG }, err: 0 },
    { descr: 'NUMA node 0', type: A, over: { mapFlags: BPF_F_NUMA_NODE, numaNode: 0 }, err: 0 },
    { descr: 'NUMA node 1 (offline)', type: A, over: { mapFlags: BPF_F_NUMA_NODE, numaNode: 1 }, err: -EINVAL },
    { descr: 'offload ifindex', type: H, over: { mapIfindex: 1 }, err: -EINVAL },
    // array_map_alloc_check
    { descr: 'array key_size 8', type: A, over: { keySize: 8 }, err: -EINVAL },
    { descr: 'array key_size 0', type: A, over: { keySize: 0 }, err: -EINVAL },
    { descr: 'array value_size 0', type: A, over: { valueSize: 0 }, err: -EINVAL },
    { descr: 'array max_entries 0', type: A, over: { maxEntries: 0 }, err: -EINVAL },
    { descr: 'array value_size KMALLOC_MAX_SIZE + 1', type: A, over: { valueSize: KMALLOC_MAX_SIZE + 1, maxEntries: 1 }, err: -E2BIG },
    { descr: 'array value_size KMALLOC_MAX_SIZE', type: A, over: { valueSize: KMALLOC_MAX_SIZE, maxEntries: 1 }, err: 0 },
    { descr: 'array BPF_F_NO_PREALLOC', type: A, over: { mapFlags: BPF_F_NO_PREALLOC }, err: -EINVAL },
    { descr: 'array BPF_F_ZERO_SEED', type: A, over: { mapFlags: BPF_F_ZERO_SEED }, err: -EINVAL },
    { descr: 'array BPF_F_MMAPABLE', type: A, over: { mapFlags: BPF_F_MMAPABLE }, err: 0 },
    { descr: 'array flag bit 31', type: A, over: { mapFlags: 0x80000000 }, err: -EINVAL },
    { descr: 'array charge past U32_MAX - PAGE_SIZE', type: A, over: { maxEntries: 0xffffffff }, err: -E2BIG },
    { descr: 'array past the emulator\'s 256 MiB per map', type: A, over: { maxEntries: 1 << 25 }, err: -ENOMEM },
    // percpu
    { descr: 'percpu array BPF_F_MMAPABLE', type: P, over: { mapFlags: BPF_F_MMAPABLE }, err: -EINVAL },
    { descr: 'percpu array with a NUMA node', type: P, over: { mapFlags: BPF_F_NUMA_NODE, numaNode: 0 }, err: -EINVAL },
    { descr: 'percpu array key_size 2', type: P, over: { keySize: 2 }, err: -EINVAL },
    // htab_map_alloc_check / htab_map_alloc
    { descr: 'hash key_size 0', type: H, over: { keySize: 0 }, err: -EINVAL },
    { descr: 'hash value_size 0', type: H, over: { valueSize: 0 }, err: -EINVAL },
    { descr: 'hash max_entries 0', type: H, over: { maxEntries: 0 }, err: -EINVAL },
    { descr: 'hash key_size 512 (MAX_BPF_STACK)', type: H, over: { keySize: 512 }, err: 0 },
    { descr: 'hash key_size 513', type: H, over: { keySize: 513 }, err: -E2BIG },
    { descr: 'hash value_size KMALLOC_MAX_SIZE - 512 - 48', type: H, over: { valueSize: KMALLOC_MAX_SIZE - 560, mapFlags: BPF_F_NO_PREALLOC }, err: -E2BIG },
    { descr: 'hash value_size one less', type: H, over: { valueSize: KMALLOC_MAX_SIZE - 561, maxEntries: 1, mapFlags: BPF_F_NO_PREALLOC }, err: 0 },
    { descr: 'hash BPF_F_MMAPABLE', type: H, over: { mapFlags: BPF_F_MMAPABLE }, err: -EINVAL },
    { descr: 'hash BPF_F_NO_COMMON_LRU (LRU only)', type: H, over: { mapFlags: BPF_F_NO_COMMON_LRU }, err: -EINVAL },
    { descr: 'hash BPF_F_ZERO_SEED as root', type: H, over: { mapFlags: BPF_F_ZERO_SEED }, err: 0 },
    { descr: 'hash n_buckets 2^32 (truncated to 0)', type: H, over: { maxEntries: 0x80000001 }, err: -E2BIG },
    { descr: 'hash n_buckets > U32_MAX / sizeof(bucket)', type: H, over: { maxEntries: (1 << 28) + 1 }, err: -E2BIG },
    { descr: 'hash charge past U32_MAX - PAGE_SIZE', type: H, over: { maxEntries: 1 << 26, valueSize: 64 }, err: -E2BIG },
    // bpf_obj_name_cpy, after the map was allocated
    { descr: 'name with a dash', type: A, over: { name: 'bad-name' }, err: -EINVAL },
    { descr: 'name of 16 characters', type: A, over: { name: 'abcdefghijklmnop' }, err: -EINVAL },
    { descr: 'name of 15 characters', type: A, over: { name: 'abcdefghijklmno' }, err: 0 },
    { descr: 'name with dot, underscore, digits', type: H, over: { name: 'my_map.v2' }, err: 0 },
    { descr: 'empty name', type: H, over: { name: '' }, err: 0 },
    { descr: 'name with a non-ASCII letter', type: H, over: { name: 'caf\u00e9' }, err: -EINVAL },
    { descr: 'alloc check before the name (bad key and bad name)', type: A, over: { keySize: 8, name: 'x-y' }, err: -EINVAL },
    { descr: 'alloc errno before the name', type: H, over: { keySize: 513, name: 'x-y' }, err: -E2BIG },
  ];
  it.each(cases)('$descr → $err', ({ type, over, err }) => {
    const before = usage();
    const m = createMap(attrOf(type, over), ctx);
    if (err === 0) {
      expect(m).toBeInstanceOf(BpfMap);
      freeMap(m as BpfMap);
    } else expect(m).toBe(err);
    expect(usage()).toEqual(before);
  });

  it('BPF_F_ZERO_SEED needs CAP_SYS_ADMIN (-EPERM for a task without it)', () => {
    const t = sys.kernel.current, cred = t.cred;
    t.cred = { ...cred, euid: 1000, capEffective: 0n };
    try {
      expect(createMap(attrOf(BPF_MAP_TYPE_HASH, { mapFlags: BPF_F_ZERO_SEED }), ctx)).toBe(-EPERM);
    } finally { t.cred = cred; }
  });

  it('registers exactly hash, array and percpu_array', () => {
    expect(Object.keys(MAP_TYPES).map(Number)).toEqual([BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_PERCPU_ARRAY]);
  });

  it('writes struct bpf_map at the map\'s kaddr (v5.5 x86-64 offsets)', () => {
    withMap(BPF_MAP_TYPE_HASH, { keySize: 12, valueSize: 20, maxEntries: 33, mapFlags: BPF_F_NO_PREALLOC, name: 'counts' }, (m) => {
      const S = STRUCT_BPF_MAP, at = (o: number) => m.kaddr + BigInt(o);
      expect([S.mapType, S.keySize, S.valueSize, S.maxEntries, S.mapFlags].map((o) => mem().readU32(at(o))))
        .toEqual([BPF_MAP_TYPE_HASH, 12, 20, 33, BPF_F_NO_PREALLOC]);
      expect(mem().readU32(at(S.spinLockOff)) | 0).toBe(-EINVAL);
      expect(mem().readU32(at(S.numaNode)) | 0).toBe(-1);
      expect(mem().readCString(at(S.name), 16)).toBe('counts');
      expect(mem().readU64(at(S.refcnt))).toBe(1n);
      expect(sys.kernel.slab.inUse).toBeGreaterThanOrEqual(S.size);
    });
  });

  it('memlock charge follows the kernel\'s cost formulas (pages of bytes)', () => {
    // array: sizeof(struct bpf_array) 320 + 1000 * 8 = 8320 → 3 pages
    withMap(BPF_MAP_TYPE_ARRAY, { maxEntries: 1000 }, (m) => expect(m.impl.memUsage).toBe(3 * 4096));
    // mmapable: PAGE_ALIGN(320) + PAGE_ALIGN(1000 * 8) → 1 + 2 pages
    withMap(BPF_MAP_TYPE_ARRAY, { maxEntries: 1000, mapFlags: BPF_F_MMAPABLE }, (m) => expect(m.impl.memUsage).toBe(3 * 4096));
    // percpu: 320 + 1000 * 8 pointers + 1000 * 8 * 4 CPUs = 40320 → 10 pages
    withMap(BPF_MAP_TYPE_PERCPU_ARRAY, { maxEntries: 1000 }, (m) => expect(m.impl.memUsage).toBe(10 * 4096));
    // hash: 1024 buckets * 16 + 64 * 1000 + 64 * 4 CPUs = 80640 → 20 pages
    withMap(BPF_MAP_TYPE_HASH, { maxEntries: 1000 }, (m) => expect(m.impl.memUsage).toBe(20 * 4096));
  });
});

describe('BPF_MAP_TYPE_ARRAY', () => {
  const arr = { valueSize: 12, maxEntries: 4 }; // elem_size 16

  it('values are 8-byte-rounded slots of one zeroed vmalloc area', () => {
    const before = sys.kernel.vmalloc.pagesInUse;
    withMap(BPF_MAP_TYPE_ARRAY, arr, (m) => {
      const a = m.impl as ArrayMap;
      expect(a).toBeInstanceOf(ArrayMap);
      expect(a.elemSize).toBe(16);
      expect(sys.kernel.vmalloc.pagesInUse - before).toBe(1);
      const addrs = [0, 1, 2, 3].map((i) => m.impl.lookupElem(k32(i))!);
      expect(addrs.map((x) => Number(x - addrs[0]!))).toEqual([0, 16, 32, 48]);
      expect(addrs[0]! % 4096n).toBe(0n);
      expect(mem().read(addrs[0]!, 64).every((b) => b === 0)).toBe(true);
    });
  });

  it.each([
    { descr: 'index in range, BPF_ANY', key: 1, flags: BPF_ANY, err: 0 },
    { descr: 'BPF_EXIST (elements always exist)', key: 1, flags: BPF_EXIST, err: 0 },
    { descr: 'BPF_NOEXIST', key: 1, flags: BPF_NOEXIST, err: -EEXIST },
    { descr: 'NOEXIST | EXIST', key: 1, flags: 3, err: -EINVAL },
    { descr: 'unknown flag 8', key: 1, flags: 8, err: -EINVAL },
    { descr: 'flag bit 32', key: 1, flags: 2 ** 32, err: -EINVAL },
    { descr: 'BPF_F_LOCK without a spin lock', key: 1, flags: BPF_F_LOCK, err: -EINVAL },
    { descr: 'BPF_F_LOCK | BPF_NOEXIST (NOEXIST first)', key: 1, flags: BPF_F_LOCK | BPF_NOEXIST, err: -EEXIST },
    { descr: 'index == max_entries', key: 4, flags: BPF_ANY, err: -E2BIG },
    { descr: 'index out of range with BPF_NOEXIST (range first)', key: 100, flags: BPF_NOEXIST, err: -E2BIG },
    { descr: 'index out of range with bad flags (flags first)', key: 100, flags: 3, err: -EINVAL },
    { descr: 'index 0xffffffff', key: 0xffffffff, flags: BPF_ANY, err: -E2BIG },
  ])('update: $descr → $err', ({ key, flags, err }) => {
    withMap(BPF_MAP_TYPE_ARRAY, arr, (m) => {
      const value = Uint8Array.from({ length: 12 }, (_, i) => i + 1);
      expect(m.impl.updateElem(k32(key), value, flags, true)).toBe(err);
      if (err === 0) expect(mem().read(m.impl.lookupElem(k32(key))!, 12)).toEqual(value);
    });
  });

  it('update writes value_size bytes and keeps the slot\'s padding; lookups see it in guest memory', () => {
    withMap(BPF_MAP_TYPE_ARRAY, arr, (m) => {
      const addr = m.impl.lookupElem(k32(2))!;
      mem().write(addr + 12n, Uint8Array.of(0xaa, 0xbb, 0xcc, 0xdd));
      expect(m.impl.updateElem(k32(2), new Uint8Array(12).fill(7), BPF_ANY, true)).toBe(0);
      expect([...mem().read(addr, 16)]).toEqual([...new Array(12).fill(7), 0xaa, 0xbb, 0xcc, 0xdd]);
      mem().writeU32(addr, 0x12345678); // a program's store
      expect((m.impl.lookupSyscall(k32(2)) as Uint8Array).slice(0, 4)).toEqual(Uint8Array.of(0x78, 0x56, 0x34, 0x12));
      expect(m.impl.lookupSyscall(k32(2))).toHaveLength(12);
    });
  });

  it('lookup out of range: NULL for programs, -ENOENT for the syscall', () => {
    withMap(BPF_MAP_TYPE_ARRAY, arr, (m) => {
      expect(m.impl.lookupElem(k32(4))).toBeUndefined();
      expect(m.impl.lookupSyscall(k32(4))).toBe(-ENOENT);
      expect(m.impl.lookupSyscall(k32(0xffffffff))).toBe(-ENOENT);
    });
  });

  it('delete is -EINVAL, in range or not', () => {
    withMap(BPF_MAP_TYPE_ARRAY, arr, (m) => {
      expect(m.impl.deleteElem(k32(0))).toBe(-EINVAL);
      expect(m.impl.deleteElem(k32(99))).toBe(-EINVAL);
    });
  });

  it.each([
    { descr: 'no key', key: undefined, next: 0 },
    { descr: 'first', key: 0, next: 1 },
    { descr: 'middle', key: 2, next: 3 },
    { descr: 'last', key: 3, next: -ENOENT },
    { descr: 'out of range', key: 4, next: 0 },
    { descr: '0xffffffff', key: 0xffffffff, next: 0 },
  ])('get_next_key: $descr → $next', ({ key, next }) => {
    withMap(BPF_MAP_TYPE_ARRAY, arr, (m) => {
      const r = m.impl.getNextKey(key === undefined ? undefined : k32(key));
      expect(typeof r === 'number' ? r : u32Of(r)).toBe(next);
    });
  });

  it('BPF_F_MMAPABLE: a header page, then the values page-aligned and page-rounded', () => {
    const before = sys.kernel.vmalloc.pagesInUse;
    withMap(BPF_MAP_TYPE_ARRAY, { valueSize: 8, maxEntries: 1000, mapFlags: BPF_F_MMAPABLE }, (m) => {
      const a = m.impl as ArrayMap;
      expect(a.values).toBe(a.area + 4096n);
      expect(a.values % 4096n).toBe(0n);
      expect(a.mmapSize).toBe(8192);
      expect(sys.kernel.vmalloc.pagesInUse - before).toBe(3);
      expect(m.impl.lookupElem(k32(999))).toBe(a.values + 999n * 8n);
      expect(sys.kernel.vmalloc.mapping(a.area)!.size).toBe(3 * 4096);
    });
  });
});

describe('BPF_MAP_TYPE_PERCPU_ARRAY', () => {
  const pc = { valueSize: 4, maxEntries: 3 }; // elem_size 8, 4 CPUs

  it('the syscall moves round_up(value_size, 8) * nr_cpus bytes; programs see CPU 0', () => {
    withMap(BPF_MAP_TYPE_PERCPU_ARRAY, pc, (m) => {
      const p = m.impl as PercpuArrayMap;
      expect(p.syscallValueSize).toBe(32);
      const all = Uint8Array.from({ length: 32 }, (_, i) => i);
      expect(m.impl.updateElem(k32(1), all, BPF_ANY, true)).toBe(0);
      expect(m.impl.lookupSyscall(k32(1))).toEqual(all);
      const cpu0 = m.impl.lookupElem(k32(1))!;
      expect(cpu0).toBe(p.valueAddr(1, 0));
      expect(mem().read(cpu0, 8)).toEqual(all.slice(0, 8));
      for (let cpu = 0; cpu < NR_CPUS; cpu++) expect(mem().read(p.valueAddr(1, cpu), 8)).toEqual(all.slice(cpu * 8, cpu * 8 + 8));
      // A program's update: value_size bytes into this CPU's copy only.
      expect(m.impl.updateElem(k32(1), Uint8Array.of(0xf0, 0xf1, 0xf2, 0xf3), BPF_ANY, false)).toBe(0);
      const after = m.impl.lookupSyscall(k32(1)) as Uint8Array;
      expect([...after.slice(0, 8)]).toEqual([0xf0, 0xf1, 0xf2, 0xf3, 4, 5, 6, 7]);
      expect(after.slice(8)).toEqual(all.slice(8));
    });
  });

  it.each([
    { descr: 'syscall BPF_ANY', key: 0, flags: BPF_ANY, sys: true, err: 0 },
    { descr: 'syscall BPF_EXIST', key: 0, flags: BPF_EXIST, sys: true, err: 0 },
    { descr: 'syscall BPF_NOEXIST', key: 0, flags: BPF_NOEXIST, sys: true, err: -EEXIST },
    { descr: 'syscall BPF_F_LOCK (> BPF_EXIST)', key: 0, flags: BPF_F_LOCK, sys: true, err: -EINVAL },
    { descr: 'syscall out of range', key: 3, flags: BPF_ANY, sys: true, err: -E2BIG },
    { descr: 'program BPF_NOEXIST', key: 0, flags: BPF_NOEXIST, sys: false, err: -EEXIST },
    { descr: 'program BPF_F_LOCK', key: 0, flags: BPF_F_LOCK, sys: false, err: -EINVAL },
    { descr: 'program out of range', key: 3, flags: BPF_ANY, sys: false, err: -E2BIG },
  ])('update: $descr → $err', ({ key, flags, sys: fromSyscall, err }) => {
    withMap(BPF_MAP_TYPE_PERCPU_ARRAY, pc, (m) => {
      expect(m.impl.updateElem(k32(key), new Uint8Array(32), flags, fromSyscall)).toBe(err);
    });
  });

  it('lookup, delete and get_next_key as an array', () => {
    withMap(BPF_MAP_TYPE_PERCPU_ARRAY, pc, (m) => {
      expect(m.impl.lookupSyscall(k32(3))).toBe(-ENOENT);
      expect(m.impl.lookupElem(k32(3))).toBeUndefined();
      expect(m.impl.deleteElem(k32(0))).toBe(-EINVAL);
      expect(u32Of(m.impl.getNextKey(undefined))).toBe(0);
      expect(u32Of(m.impl.getNextKey(k32(1)))).toBe(2);
      expect(m.impl.getNextKey(k32(2))).toBe(-ENOENT);
    });
  });

  it('one unit of max_entries values per CPU', () => {
    const before = sys.kernel.vmalloc.pagesInUse;
    withMap(BPF_MAP_TYPE_PERCPU_ARRAY, { valueSize: 16, maxEntries: 512 }, (m) => {
      const p = m.impl as PercpuArrayMap;
      expect(p.valueAddr(0, 1) - p.valueAddr(0, 0)).toBe(512n * 16n);
      expect(sys.kernel.vmalloc.pagesInUse - before).toBe((512 * 16 * NR_CPUS) / 4096);
    });
  });
});

describe('BPF_MAP_TYPE_HASH', () => {
  const h = { keySize: 4, valueSize: 8, maxEntries: 4 };

  for (const prealloc of [true, false]) {
    const flags = prealloc ? 0 : BPF_F_NO_PREALLOC;
    const tag = prealloc ? 'preallocated' : 'BPF_F_NO_PREALLOC';

    it(`${tag}: check_flags, full and delete errnos`, () => {
      withMap(BPF_MAP_TYPE_HASH, { ...h, mapFlags: flags }, (m) => {
        const up = (k: number, v: bigint, f: number) => m.impl.updateElem(k32(k), v64(v), f, true);
        expect(up(1, 10n, BPF_EXIST)).toBe(-ENOENT);       // absent
        expect(up(1, 10n, BPF_NOEXIST)).toBe(0);
        expect(up(1, 11n, BPF_NOEXIST)).toBe(-EEXIST);     // present
        expect(up(1, 12n, BPF_EXIST)).toBe(0);
        expect(up(1, 13n, 3)).toBe(-EINVAL);
        expect(up(1, 13n, BPF_F_LOCK)).toBe(-EINVAL);
        expect(up(1, 13n, 2 ** 33)).toBe(-EINVAL);
        expect(up(2, 20n, BPF_ANY)).toBe(0);
        expect(up(3, 30n, BPF_ANY)).toBe(0);
        expect(up(4, 40n, BPF_ANY)).toBe(0);
        expect(up(5, 50n, BPF_ANY)).toBe(-E2BIG);          // full
        expect(up(5, 50n, BPF_EXIST)).toBe(-ENOENT);       // check_flags before the allocation
        expect(up(4, 41n, BPF_ANY)).toBe(0);               // replacing in a full map is fine
        expect((m.impl as HashMap).size).toBe(4);
        expect(m.impl.deleteElem(k32(9))).toBe(-ENOENT);
        expect(m.impl.deleteElem(k32(2))).toBe(0);
        expect(m.impl.deleteElem(k32(2))).toBe(-ENOENT);
        expect(m.impl.lookupSyscall(k32(2))).toBe(-ENOENT);
        expect(up(5, 50n, BPF_NOEXIST)).toBe(0);           // room again
        expect([1, 3, 4, 5].map((k) => new DataView((m.impl.lookupSyscall(k32(k)) as Uint8Array).buffer).getBigUint64(0, true)))
          .toEqual([12n, 30n, 41n, 50n]);
      });
    });

    it(`${tag}: elements are struct htab_elem in guest memory; the value address is stable until replaced`, () => {
      withMap(BPF_MAP_TYPE_HASH, { keySize: 6, valueSize: 8, maxEntries: 8, mapFlags: flags }, (m) => {
        const hm = m.impl as HashMap;
        const key = Uint8Array.of(1, 2, 3, 4, 5, 6);
        expect(m.impl.updateElem(key, v64(0x1111n), BPF_ANY, true)).toBe(0);
        const addr = m.impl.lookupElem(key)!;
        const elem = addr - BigInt(SIZEOF_HTAB_ELEM + 8); // key 6 rounds up to 8
        expect(mem().read(elem + 48n, 6)).toEqual(key);
        expect(mem().readU32(elem + 40n)).toBe(jhash(key, HTAB_DEFAULT_SEED));
        expect(mem().readU64(addr)).toBe(0x1111n);
        mem().writeU64(addr, 0x2222n); // a program's store through the pointer
        expect(m.impl.lookupElem(key)).toBe(addr);
        expect(m.impl.lookupSyscall(key)).toEqual(v64(0x2222n));
        expect(m.impl.lookupElem(Uint8Array.of(1, 2, 3, 4, 5, 7))).toBeUndefined();
        // Replacing writes a new element; a holder of the old address still reads the old value
        // (preallocated: the old element became this CPU's spare; kmalloc'd: freed).
        expect(m.impl.updateElem(key, v64(0x3333n), BPF_ANY, true)).toBe(0);
        const addr2 = m.impl.lookupElem(key)!;
        expect(addr2).not.toBe(addr);
        expect(mem().readU64(addr2)).toBe(0x3333n);
        if (prealloc) {
          expect(mem().readU64(addr)).toBe(0x2222n);
          expect(hm.elems).toBeDefined();
          // The old element is the spare the next replacement uses.
          expect(m.impl.updateElem(key, v64(0x4444n), BPF_ANY, true)).toBe(0);
          expect(m.impl.lookupElem(key)).toBe(addr);
        }
      });
    });
  }

  it('BPF_F_NO_PREALLOC: one kzalloc per element, returned on delete and free', () => {
    const base = usage();
    const m = make(BPF_MAP_TYPE_HASH, { keySize: 4, valueSize: 100, maxEntries: 64, mapFlags: BPF_F_NO_PREALLOC });
    const empty = usage();
    expect(empty.pages).toBe(base.pages); // no vmalloc for elements
    const elem = 48 + 8 + 104; // 160, a multiple of the slab's 16-byte granule
    for (let i = 0; i < 10; i++) expect(m.impl.updateElem(k32(i), new Uint8Array(100), BPF_ANY, true)).toBe(0);
    expect(usage().slab - empty.slab).toBe(10 * elem);
    for (let i = 0; i < 5; i++) expect(m.impl.deleteElem(k32(i))).toBe(0);
    expect(usage().slab - empty.slab).toBe(5 * elem);
    expect(m.impl.updateElem(k32(7), new Uint8Array(100), BPF_EXIST, true)).toBe(0); // replace: no growth
    expect(usage().slab - empty.slab).toBe(5 * elem);
    freeMap(m);
    expect(usage()).toEqual(base);
  });

  it('preallocated: max_entries + nr_cpus elements in one vmalloc area, nothing more on insert', () => {
    const base = usage();
    const m = make(BPF_MAP_TYPE_HASH, { keySize: 4, valueSize: 8, maxEntries: 100 });
    const hm = m.impl as HashMap;
    expect(hm.elemSize).toBe(64);
    expect(usage().pages - base.pages).toBe(Math.ceil((64 * (100 + NR_CPUS)) / 4096));
    const full = usage();
    for (let i = 0; i < 100; i++) expect(m.impl.updateElem(k32(i), v64(BigInt(i)), BPF_ANY, true)).toBe(0);
    expect(m.impl.updateElem(k32(100), v64(0n), BPF_ANY, true)).toBe(-E2BIG);
    expect(usage()).toEqual(full);
    for (let i = 0; i < 100; i++) {
      const a = m.impl.lookupElem(k32(i))!;
      expect(a >= hm.elems! && a < hm.elems! + BigInt(64 * (100 + NR_CPUS))).toBe(true);
    }
    freeMap(m);
    expect(usage()).toEqual(base);
  });

  /** The kernel's GET_NEXT_KEY order: buckets ascending, each chain newest first. */
  const expectedOrder = (keys: number[], seed: number, nBuckets: number): number[] => {
    const bucket = (k: number) => jhash(k32(k), seed) & (nBuckets - 1);
    return keys.map((k, i) => ({ k, i, b: bucket(k) })).sort((x, y) => x.b - y.b || y.i - x.i).map((x) => x.k);
  };
  const walk = (m: BpfMap): number[] => {
    const out: number[] = [];
    let key: Uint8Array | undefined;
    for (;;) {
      const next = m.impl.getNextKey(key);
      if (typeof next === 'number') { expect(next).toBe(-ENOENT); return out; }
      out.push(u32Of(next));
      key = next;
      if (out.length > 1000) throw new Error('get_next_key does not end');
    }
  };

  it.each([
    { descr: 'default seed', mapFlags: 0, seed: HTAB_DEFAULT_SEED },
    { descr: 'BPF_F_ZERO_SEED', mapFlags: BPF_F_ZERO_SEED, seed: 0 },
    { descr: 'BPF_F_NO_PREALLOC', mapFlags: BPF_F_NO_PREALLOC, seed: HTAB_DEFAULT_SEED },
  ])('get_next_key walks buckets in order, chains newest first ($descr)', ({ mapFlags, seed }) => {
    withMap(BPF_MAP_TYPE_HASH, { keySize: 4, valueSize: 8, maxEntries: 30, mapFlags }, (m) => {
      expect(m.impl.getNextKey(undefined)).toBe(-ENOENT); // empty
      const keys = Array.from({ length: 30 }, (_, i) => (i * 7919 + 13) >>> 0);
      for (const k of keys) expect(m.impl.updateElem(k32(k), v64(BigInt(k)), BPF_ANY, true)).toBe(0);
      expect((m.impl as HashMap).nBuckets).toBe(32);
      const order = walk(m);
      expect(order).toEqual(expectedOrder(keys, seed, 32));
      expect(new Set(order).size).toBe(30);
      // An absent key restarts at the first; the last key ends the walk.
      expect(u32Of(m.impl.getNextKey(k32(0xdeadbeef)))).toBe(order[0]);
      expect(m.impl.getNextKey(k32(order.at(-1)!))).toBe(-ENOENT);
      // Deleting while walking: the walk after the deleted key's successor goes on.
      expect(m.impl.deleteElem(k32(order[5]!))).toBe(0);
      expect(u32Of(m.impl.getNextKey(k32(order[4]!)))).toBe(order[6]);
    });
  });

  it('a chain lists newest first, and a replaced key moves to its head', () => {
    withMap(BPF_MAP_TYPE_HASH, { keySize: 4, valueSize: 8, maxEntries: 3 }, (m) => {
      // n_buckets = 4: three keys that all hash to bucket 1.
      const same: number[] = [];
      for (let k = 0; same.length < 3; k++) if ((jhash(k32(k), HTAB_DEFAULT_SEED) & 3) === 1) same.push(k);
      for (const k of same) expect(m.impl.updateElem(k32(k), v64(1n), BPF_ANY, true)).toBe(0);
      expect(walk(m)).toEqual([same[2], same[1], same[0]]);
      expect(m.impl.updateElem(k32(same[0]!), v64(2n), BPF_EXIST, true)).toBe(0);
      expect(walk(m)).toEqual([same[0], same[2], same[1]]);
      // The next of a chain's last element is the first of a later bucket, or the end.
      expect(m.impl.getNextKey(k32(same[1]!))).toBe(-ENOENT);
    });
  });

  it('jhash is lookup3\'s hashlittle (published test vectors)', () => {
    const s = new TextEncoder().encode('Four score and seven years ago');
    expect(jhash(s, 0)).toBe(0x17770551);
    expect(jhash(s, 1)).toBe(0xcd628161);
    expect(jhash(new Uint8Array(0), 0)).toBe(0xdeadbeef);
    expect(jhash(new Uint8Array(0), 0xdeadbeef)).toBe(0xbd5b7dde);
  });
});

describe('guest memory comes back', () => {
  it.each([
    { descr: 'array', type: BPF_MAP_TYPE_ARRAY, over: { valueSize: 24, maxEntries: 300 } },
    { descr: 'mmapable array', type: BPF_MAP_TYPE_ARRAY, over: { valueSize: 8, maxEntries: 600, mapFlags: BPF_F_MMAPABLE } },
    { descr: 'percpu array', type: BPF_MAP_TYPE_PERCPU_ARRAY, over: { valueSize: 24, maxEntries: 300 } },
    { descr: 'hash', type: BPF_MAP_TYPE_HASH, over: { valueSize: 24, maxEntries: 300 } },
    { descr: 'hash, no prealloc', type: BPF_MAP_TYPE_HASH, over: { valueSize: 24, maxEntries: 300, mapFlags: BPF_F_NO_PREALLOC } },
  ])('$descr: 20 create/fill/free cycles leave vmalloc pages and slab bytes as they were', ({ type, over }) => {
    const base = usage();
    for (let cycle = 0; cycle < 20; cycle++) {
      const m = make(type, over);
      const n = Math.min(m.maxEntries, 50 + cycle);
      const value = new Uint8Array(m.valueSize * (type === BPF_MAP_TYPE_PERCPU_ARRAY ? NR_CPUS : 1));
      for (let i = 0; i < n; i++) expect(m.impl.updateElem(k32(i), value, BPF_ANY, true)).toBe(0);
      if (type === BPF_MAP_TYPE_HASH) for (let i = 0; i < n; i += 3) expect(m.impl.deleteElem(k32(i))).toBe(0);
      freeMap(m);
      expect(usage()).toEqual(base);
    }
  });

  it('freeing twice is refused', () => {
    const m = make(BPF_MAP_TYPE_ARRAY);
    freeMap(m);
    expect(() => freeMap(m)).toThrow(/not live/);
  });
});
