/**
 * @fileoverview mmap() of BPF arrays (fc9702273e2e, bpf/syscall/mmap.ts) driven by gcc-built
 * user processes (images/user/): the kernel selftest `mmap` ported with its values, zero-copy
 * sharing between a process, a JIT-compiled program and the host, writecnt through fork,
 * partial munmap and mprotect, and every invalid call refused with nothing leaked — each under
 * the seed's v5.5 behaviour and the later kernels' ('v6', what the host oracle runs).
 */
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { boot, type System } from '../../index.ts';
import type { Processes } from '../../kernel/process.ts';
import { MAP_SHARED, PROT_READ, PROT_WRITE } from '../../kernel/mm.ts';
import { __NR } from '../../kernel/syscalls.ts';
import { BPF_MAP_CREATE, BPF_MAP_FREEZE } from '../../bpf/syscall/attr.ts';
import { BPF_F_MMAPABLE, type BpfMap } from '../../bpf/maps/map.ts';
import { ArrayMap } from '../../bpf/maps/array.ts';
import type { MmapProfile } from '../../bpf/syscall/mmap.ts';
import { userProgram } from '../kernel/user_programs.ts';

let sys: System;
let procs: Processes;
beforeAll(async () => { sys = await boot(); procs = sys.procs; });
afterAll(() => sys.close());
afterEach(() => { sys.mapMmap.profile = 'v5.5'; });

const run = (name: string, args: string[] = []) => procs.runProgram(userProgram(name), { argv: [name, ...args] });
const PROFILES: MmapProfile[] = ['v5.5', 'v6'];

/** What the kernel holds: a refused or undone call must leave these as they were. */
function census() {
  const k = sys.kernel;
  return {
    // (test runs map their packet area once, on first use)
    kernelMappings: k.machine.mem.mappings().filter((m) => m.name !== 'test_run packet').length,
    vmallocPages: k.vmalloc.pagesInUse,
    slabBytes: k.slab.inUse,
    execPages: k.execmem.pagesInUse,
    maps: sys.bpfSys.maps.size,
    progs: sys.bpfSys.progs.size,
    liveProcesses: [...procs.procs.values()].filter((p) => p.alive).length,
    initFds: k.current.files.count,
  };
}

describe('the kernel selftest mmap (prog_tests/mmap.c, v5.5) run by a gcc-built process', () => {
  it.each(PROFILES)('%s: every check passes with the selftest\'s values', (profile) => {
    sys.mapMmap.profile = profile;
    const before = census();
    const r = run('mmap_test');
    expect(r.stdout).not.toMatch(/^FAIL/m);
    expect(r.status).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines).toEqual(expect.arrayContaining([
      'after 123: in_val=123 out_val=123 val[0]=111 val[1]=222 val[2]=123 val[far]=369',
      'freeze with a R/W mapping: EBUSY',
      'freeze without R/W mappings: OK',
      'R/W mmap of a frozen map: EPERM',
      'after 321: in_val=321 out_val=321 val[0]=111 val[1]=222 val[2]=321 val[far]=963',
      'after remap: in_val=321 out_val=321 val[0]=111 val[1]=222 val[2]=321 val[far]=963',
      '5-page mmap of a 4-page map: EINVAL',
      'map by id with its fd closed, still mapped: found',
      'map by id after the last munmap: ENOENT',
      'failures: 0',
    ]));
    // The one line where the kernels differ: v5.5's array_map_mmap ignores the file offset.
    expect(lines).toContain(profile === 'v5.5'
      ? 'page 2 from offset PAGE shows val[512]=111 val[0 of page 1]=page 0 (offset ignored)'
      : 'page 2 from offset PAGE shows val[512]=0 val[0 of page 1]=page 1');
    expect(census()).toEqual(before);
  });

  it('the program ran JIT-compiled (the x86-64 code read the values the process wrote)', () => {
    const jitted: boolean[] = [];
    const orig = sys.bpfSys.runProg.bind(sys.bpfSys);
    sys.bpfSys.runProg = (p, ctx, engine) => { jitted.push(!!p.prog.jit); return orig(p, ctx, engine); };
    try { expect(run('mmap_test').status).toBe(0); } finally { sys.bpfSys.runProg = orig; }
    expect(jitted).toEqual([true, true]); // the selftest's two usleep(1)s
  });
});

describe('zero copy: one set of pages for the process, the JIT-compiled program and the host', () => {
  it('a store by the process is in the map at once; a store by the host is in the process at once', () => {
    const p = procs.spawnFile(userProgram('zerocopy'), { argv: ['zerocopy', '200'] });
    const zc = (): BpfMap | undefined => [...sys.bpfSys.maps.values()].find((m) => m.name === 'zc');
    const word = (i: number): bigint => sys.kernel.machine.mem.readU64((zc()!.impl as ArrayMap).values + BigInt(8 * i));
    // Run until the host sees the process's store (the process yields right after it).
    procs.run({ until: () => zc() !== undefined && word(0) === 0xfeedn });
    expect(p.alive).toBe(true);
    const map = zc()!, arr = map.impl as ArrayMap;
    // The process's VMA is the map's own vmalloc pages: the same host region, from the second page.
    const vma = p.mm.list().find((v) => v.file?.priv === map)!;
    const area = sys.kernel.vmalloc.mapping(arr.area)!;
    expect(vma.region).toBe(area.region);
    expect(vma.offset).toBe(area.offset + 4096);
    expect(p.mm.user.readU64(vma.start)).toBe(0xfeedn);
    sys.kernel.machine.mem.writeU64(arr.values + 8n, 0xbeefn);
    procs.run();
    expect(p.stdout.text()).toBe('the program loaded 0xfeed\nthe word after it reads 0xbeef\n200 rounds, 0 wrong\n');
    expect(p.exitCode).toBe(0);
    expect(zc()).toBeUndefined(); // freed with the process's last fd and mapping
  });
});

describe('writecnt follows the mappings (images/user/writecnt.c)', () => {
  const common = [
    'fork:',
    "  munmap the parent's R/W mapping: OK",
    "  freeze while the child's copy exists: EBUSY",
    '  child exited with 7',
    '  value the child stored: 555',
    '  freeze after the child exited: OK',
    'partial munmap:',
    '  munmap page 1 of 4 (a split): OK',
    '  freeze: EBUSY',
    '  munmap page 0: OK',
    '  freeze: EBUSY',
    '  munmap pages 2-3: OK',
    '  freeze with no mapping left: OK',
    'mprotect a R/O mapping of a frozen map:',
    '  freeze with a R/O mapping: OK',
  ];
  const expected: Record<MmapProfile, string[]> = {
    // v5.5: mprotect can make a frozen map's R/O mapping writable, and writecnt counts VM_WRITE
    // at mmap/open/close only: a mapping made R/O is never uncounted (freeze stays -EBUSY).
    'v5.5': [...common,
      '  mprotect to R/W: OK',
      "  the frozen map's value after a user store: 99",
      '  munmap: OK',
      'mprotect a R/W mapping to R/O:',
      '  mprotect to R/O: OK',
      '  freeze: EBUSY',
      '  munmap: OK',
      '  freeze with no mapping left: EBUSY',
      'mprotect half of a R/W mapping:',
      '  mprotect page 0 to R/O (a split): OK',
      '  freeze: EBUSY',
      '  munmap both pages: OK',
      '  freeze with no mapping left: EBUSY',
      ''],
    // 5.7+: R/O mappings lose VM_MAYWRITE (mprotect to R/W is -EACCES), writecnt counts VM_MAYWRITE.
    v6: [...common,
      '  mprotect to R/W: EACCES',
      '  munmap: OK',
      'mprotect a R/W mapping to R/O:',
      '  mprotect to R/O: OK',
      '  freeze: EBUSY',
      '  munmap: OK',
      '  freeze with no mapping left: OK',
      'mprotect half of a R/W mapping:',
      '  mprotect page 0 to R/O (a split): OK',
      '  freeze: EBUSY',
      '  munmap both pages: OK',
      '  freeze with no mapping left: OK',
      ''],
  };

  it.each(PROFILES)('%s: fork, partial munmap, mprotect', (profile) => {
    sys.mapMmap.profile = profile;
    const before = census();
    const r = run('writecnt');
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n')).toEqual(expected[profile]);
    expect(census()).toEqual(before);
  });

  /** A process that has not run: the test acts for it in the kernel (its mm, its fds). */
  function actor() {
    const p = procs.spawnFile(userProgram('hello'), { argv: ['hello'] });
    const sc = (nr: number, ...a: (number | bigint)[]): bigint => procs.asProcess(p, () => BigInt.asIntN(64, sys.kernel.syscall(nr, a.map(BigInt))));
    const fd = Number(procs.asProcess(p, () => sys.bpfSys.call(BPF_MAP_CREATE, { map_type: 2, key_size: 4, value_size: 8, max_entries: 2048, map_flags: BPF_F_MMAPABLE }).ret));
    const map = p.task.files.get(fd)!.priv as BpfMap;
    const mmap = (pages: number, prot: number): bigint => sc(__NR.mmap, 0, pages * 4096, prot, MAP_SHARED, fd, 0);
    return { p, sc, fd, map, mmap };
  }

  it('counts as the commit says: the first VMA in mmap, each copy in open(), each VMA in close()', () => {
    const { p, sc, map, mmap } = actor();
    const mm = p.mm;
    const base = { refcnt: map.refcnt, usercnt: map.usercnt };
    const rw = mmap(4, PROT_READ | PROT_WRITE);
    expect([map.writecnt, map.refcnt - base.refcnt, mm.stats.opens, mm.stats.closes]).toEqual([1, 1, 0, 0]);
    const ro = mmap(1, PROT_READ);
    expect([map.writecnt, map.refcnt - base.refcnt]).toEqual([1, 2]);
    // munmap of page 1 of 4: a split at each end of it (two open()s), then it goes (close): two
    // writable VMAs are left, each counted.
    expect(sc(__NR.munmap, rw + 4096n, 4096)).toBe(0n);
    expect([map.writecnt, mm.stats.opens, mm.stats.closes, map.refcnt - base.refcnt]).toEqual([2, 2, 1, 3]);
    expect(mm.describe().filter((l) => l.endsWith('bpf-map')).map((l) => l.split(' ')[1])).toEqual(['r--s', 'rw-s', 'rw-s']);
    // munmap across both pieces, then the R/O mapping: #close = #open + 1 per mmap.
    expect(sc(__NR.munmap, rw, 4 * 4096)).toBe(0n);
    expect(sc(__NR.munmap, ro, 4096)).toBe(0n);
    expect([map.writecnt, mm.stats.opens, mm.stats.closes, map.refcnt - base.refcnt, map.usercnt]).toEqual([0, 2, 2 + 2, 0, base.usercnt]);
    procs.killAll();
  });

  it('the mapping holds the map: closing the fd does not free it, the last munmap does', () => {
    const { p, sc, fd, map, mmap } = actor();
    const m = mmap(1, PROT_READ);
    const vm = sys.kernel.vmalloc.pagesInUse;
    expect(sc(__NR.close, fd)).toBe(0n);
    expect(sys.bpfSys.maps.find(map.id)).toBe(map);
    expect(p.mm.user.readU64(m)).toBe(0n);
    expect(sc(__NR.munmap, m, 4096)).toBe(0n);
    expect(sys.bpfSys.maps.find(map.id)).toBeUndefined();
    expect(sys.kernel.vmalloc.pagesInUse).toBe(vm - 5); // the header page and 4 value pages
    procs.killAll();
  });

  it('the struct bpf_map in guest memory shows writecnt (offset 208) as it changes', () => {
    const { map, mmap } = actor();
    mmap(1, PROT_READ | PROT_WRITE);
    mmap(1, PROT_READ | PROT_WRITE);
    expect(sys.kernel.machine.mem.readU64(map.kaddr + 208n)).toBe(2n);
    procs.killAll(); // exit unmaps both: the map is freed with the process's fd
  });

  it('freeze from TypeScript sees a process\'s writable mapping (-EBUSY) and its end', () => {
    const { p, fd, mmap } = actor();
    mmap(1, PROT_READ | PROT_WRITE);
    expect(procs.asProcess(p, () => sys.bpfSys.call(BPF_MAP_FREEZE, { map_fd: fd }).ret)).toBe(-16);
    const m = p.mm.list().find((v) => v.name === 'bpf-map')!;
    expect(procs.asProcess(p, () => sys.kernel.syscall(__NR.munmap, [m.start, 4096n]))).toBe(0n);
    expect(procs.asProcess(p, () => sys.bpfSys.call(BPF_MAP_FREEZE, { map_fd: fd }).ret)).toBe(0);
    procs.killAll();
  });
});

describe('bad input: every invalid mmap/munmap/mprotect gets the kernel\'s errno, nothing leaks (images/user/mmap_errors.c)', () => {
  /** The answers of the seed (v5.5); the ones later kernels changed are in LATER. */
  const V55: Record<string, string> = {
    'create hash with BPF_F_MMAPABLE': 'EINVAL',
    'create percpu array with BPF_F_MMAPABLE': 'EINVAL',
    'array without BPF_F_MMAPABLE': 'EINVAL',
    'hash map': 'ENOTSUPP',
    'percpu array': 'ENOTSUPP',
    'MAP_PRIVATE': 'EINVAL',
    'MAP_PRIVATE writable': 'EINVAL',
    '3 pages of a 2-page map': 'EINVAL',
    'offset past the values': 'ok', // v5.5 ignores the offset: it maps page 0
    'offset + length past the values': 'ok',
    'second page by offset': 'ok',
    'R/W of a BPF_F_RDONLY_PROG map': 'ok',
    'R/O of a BPF_F_RDONLY_PROG map': 'ok',
    'R/W of a BPF_F_RDONLY map': 'EACCES', // the fd is O_RDONLY
    'R/O of a BPF_F_RDONLY map': 'EINVAL', // do_mmap drops VM_SHARED for a read-only fd
    'R/O of a BPF_F_WRONLY map': 'EACCES', // the fd is O_WRONLY
    'length 0': 'EINVAL',
    'unaligned offset': 'EINVAL',
    'bad fd': 'EBADF',
    'negative fd': 'EBADF',
    'prog fd (no mmap)': 'ENODEV',
    'no map type': 'EINVAL',
    'map type 0xf': 'EINVAL',
    'MAP_SHARED_VALIDATE with MAP_SYNC': 'EOPNOTSUPP',
    'MAP_SHARED with MAP_SYNC (ignored)': 'ok',
    'MAP_SHARED_VALIDATE': 'ok',
    'length past the address space': 'ENOMEM',
    'anonymous MAP_SHARED_VALIDATE': 'EINVAL',
    'anonymous with no map type': 'EINVAL',
    'MAP_FIXED unaligned': 'EINVAL',
    'MAP_FIXED_NOREPLACE over a mapping': 'EEXIST',
    'MAP_FIXED past the address space': 'ENOMEM',
    'MAP_FIXED over a mapping': 'ok',
    'munmap unaligned': 'EINVAL',
    'munmap length 0': 'EINVAL',
    'munmap a hole': 'ok',
    'munmap it again': 'ok',
    'munmap past the address space': 'EINVAL',
    'mprotect unaligned': 'EINVAL',
    'mprotect length 0': 'ok',
    'mprotect unknown prot bit': 'EINVAL',
    'mprotect over a hole': 'ENOMEM',
    'mprotect unmapped': 'ENOMEM',
    'mprotect GROWSDOWN|GROWSUP': 'EINVAL',
    'mprotect a R/O map mapping to R/W': 'ok',
    'mprotect a map mapping to PROT_EXEC': 'ok',
    'mprotect a R/W map mapping to R/O': 'ok',
    'mprotect it back to R/W': 'ok',
    'freeze with a R/W mapping': 'EBUSY',
    'freeze': 'ok',
    'freeze again': 'EBUSY',
    'R/W of a frozen map': 'EPERM',
    'write-only of a frozen map': 'EPERM',
    'R/O of a frozen map': 'ok',
  };
  /** What the 'v6' profile answers differently (each the host kernel's answer too). */
  const LATER: Record<string, string> = {
    'offset past the values': 'EINVAL',
    'offset + length past the values': 'EINVAL',
    'R/W of a BPF_F_RDONLY_PROG map': 'EACCES',
    'mprotect a R/O map mapping to R/W': 'EACCES',
    'mprotect a map mapping to PROT_EXEC': 'EACCES',
  };
  const parse = (out: string): Record<string, string> =>
    Object.fromEntries(out.trim().split('\n').map((l) => { const i = l.lastIndexOf(': '); return [l.slice(0, i), l.slice(i + 2)]; }));

  it.each(PROFILES)('%s', (profile) => {
    sys.mapMmap.profile = profile;
    const before = census();
    const r = run('mmap_errors');
    expect(r.status).toBe(0);
    expect(parse(r.stdout)).toEqual(profile === 'v5.5' ? V55 : { ...V55, ...LATER });
    expect(census()).toEqual(before);
  });
});
