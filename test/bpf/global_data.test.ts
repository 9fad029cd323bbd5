/**
 * @fileoverview Global data as a libbpf skeleton has it (bpf/libbpf/skeleton.ts): the clang
 * object's .bss/.data/.rodata maps are BPF_F_MMAPABLE arrays, .rodata frozen after load, and
 * TypeScript reads and writes the variables in the maps' own pages — what a program stores is
 * there at once, what TypeScript stores the program loads next. A user process can mmap them too.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { boot, type System } from '../../index.ts';
import { BpfObject } from '../../bpf/libbpf/load.ts';
import { globalData } from '../../bpf/libbpf/skeleton.ts';
import { BPF_PROG_TEST_RUN } from '../../bpf/syscall/attr.ts';
import { BPF_F_MMAPABLE } from '../../bpf/maps/map.ts';
import { ArrayMap } from '../../bpf/maps/array.ts';
import { MAP_SHARED, PROT_READ, PROT_WRITE } from '../../kernel/mm.ts';
import { __NR } from '../../kernel/syscalls.ts';
import { userProgram } from '../kernel/user_programs.ts';

const OBJ = fileURLToPath(new URL('../../images/build/bpf/objtest.bpf.o', import.meta.url));
let sys: System;
beforeAll(async () => { sys = await boot(); });
afterAll(() => sys.close());

const load = (): BpfObject => BpfObject.open(new Uint8Array(readFileSync(OBJ)), 'objtest.bpf.o', sys.objectLoadOptions).load(sys.bpfSys, sys.objectLoadOptions);

function testRun(obj: BpfObject, times = 1): void {
  const b = sys.bpfSys;
  const pkt = b.stage(new Uint8Array(60));
  for (let i = 0; i < times; i++)
    expect(b.call(BPF_PROG_TEST_RUN, { prog_fd: obj.findProgram('xdp_count')!.fd, data_in: pkt, data_size_in: 60, repeat: 1 }).ret).toBe(0);
  b.unstage(pkt);
}

describe.each(['jit', 'interp'] as const)('skeleton-style global data (%s)', (engine) => {
  let obj: BpfObject;
  beforeAll(() => { sys.bpfSys.jitEnabled = engine === 'jit'; obj = load(); });
  afterAll(() => { obj.close(); sys.bpfSys.jitEnabled = true; });

  it('the global data maps are mmap()-able arrays; .rodata is frozen', () => {
    for (const sec of ['.bss', '.data', '.rodata'] as const) {
      const g = globalData(obj, sys.bpfSys, sec);
      const map = sys.bpfSys.maps.find(g.map.id)!;
      expect(map.flags & BPF_F_MMAPABLE).toBe(BPF_F_MMAPABLE);
      expect(map.frozen).toBe(sec === '.rodata');
    }
  });

  it('typed by the DATASEC: names, offsets, sizes; initial values as the object has them', () => {
    const bss = globalData(obj, sys.bpfSys, '.bss'), data = globalData(obj, sys.bpfSys, '.data'), ro = globalData(obj, sys.bpfSys, '.rodata');
    expect(bss.layout.map((v) => [v.name, v.size])).toEqual(expect.arrayContaining([['runs', 8], ['skb_addr', 8], ['seen_proto', 4]]));
    expect(data.vars.last_len).toBe(7n);
    expect(ro.vars.factor).toBe(3);
    expect(bss.vars.runs).toBe(0n);
  });

  it('a program\'s stores are in the view at once; TypeScript\'s stores are what the program loads', () => {
    const bss = globalData(obj, sys.bpfSys, '.bss'), data = globalData(obj, sys.bpfSys, '.data');
    testRun(obj, 2);
    expect(bss.vars.runs).toBe(2n);
    expect(data.vars.last_len).toBe(181n); // scale(60) = 60 * factor + 1
    bss.vars.runs = 41n;
    testRun(obj);
    expect(bss.vars.runs).toBe(42n);
  });

  it('the view is the map\'s own pages (the vmalloc area\'s second page on), not a copy', () => {
    const bss = globalData(obj, sys.bpfSys, '.bss');
    const arr = sys.bpfSys.maps.find(bss.map.id)!.impl as ArrayMap;
    const area = sys.kernel.vmalloc.mapping(arr.area)!;
    expect(bss.bytes.buffer).toBe(area.region.bytes.buffer);
    expect(bss.bytes.byteOffset).toBe(area.region.bytes.byteOffset + area.offset + 4096);
  });

  it('.rodata refuses writes (libbpf maps it PROT_READ after freezing it)', () => {
    const ro = globalData(obj, sys.bpfSys, '.rodata');
    expect(() => { ro.vars.factor = 4; }).toThrow(/read-only \(the map is frozen/);
    expect(ro.vars.factor).toBe(3);
  });
});

describe('global data mmap()ed by a user process', () => {
  it('the process maps .bss and .rodata as libbpf\'s skeleton does (R/W, and R/O: R/W of frozen .rodata is -EPERM)', () => {
    const obj = load();
    const p = sys.procs.spawnFile(userProgram('hello'), { argv: ['hello'] }); // not run: the test acts for it
    const sc = (nr: number, ...a: (number | bigint)[]): bigint => sys.procs.asProcess(p, () => BigInt.asIntN(64, sys.kernel.syscall(nr, a.map(BigInt))));
    // The object's fds are the init task's: give the process its own (as fd passing would).
    const fdOf = (name: string): number => p.task.files.install(sys.kernel.current.files.get(obj.findMap(name)!.fd)!.get());
    const bssFd = fdOf('objtest.bss'), roFd = fdOf('objtest.rodata');
    const bss = sc(__NR.mmap, 0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, bssFd, 0);
    expect(bss > 0n).toBe(true);
    expect(sc(__NR.mmap, 0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, roFd, 0)).toBe(-1n); // -EPERM: frozen
    const ro = sc(__NR.mmap, 0, 4096, PROT_READ, MAP_SHARED, roFd, 0);
    expect(p.mm.user.readU32(ro)).toBe(3); // factor
    const g = globalData(obj, sys.bpfSys, '.bss');
    g.vars.runs = 5n;
    expect(p.mm.user.readU64(bss)).toBe(5n); // the process's mapping shows TypeScript's store
    testRun(obj);
    expect(p.mm.user.readU64(bss)).toBe(6n); // and the program's
    sys.procs.killAll();
    obj.close();
  });
});
