/**
 * @fileoverview A clang-compiled object (images/bpf/objtest.bpf.c, built by `make -C images`)
 * loaded unmodified through bpf() as libbpf would: global data, a BTF-defined hash map, a
 * subprogram in .text, a CO-RE read of a kernel struct; results read back through the maps;
 * on both engines; nothing left behind after close.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { boot, type System } from '../../index.ts';
import { BpfObject, LoadError } from '../../bpf/libbpf/load.ts';
import { ObjectError } from '../../bpf/libbpf/object.ts';
import { BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM, BPF_PROG_TEST_RUN } from '../../bpf/syscall/attr.ts';

const OBJ = fileURLToPath(new URL('../../images/build/bpf/objtest.bpf.o', import.meta.url));
const VMLINUX = fileURLToPath(new URL('../../images/build/vmlinux', import.meta.url));
let sys: System;
beforeAll(async () => { sys = await boot(); });
afterAll(() => sys.close());

const open = (): BpfObject => BpfObject.open(new Uint8Array(readFileSync(OBJ)), 'objtest.bpf.o', sys.objectLoadOptions);

function lookup(obj: BpfObject, map: string, key: Uint8Array, size: number): Uint8Array | number {
  const b = sys.bpfSys;
  const k = b.stage(key), v = b.stage(new Uint8Array(size));
  try {
    const r = b.call(BPF_MAP_LOOKUP_ELEM, { map_fd: obj.findMap(map)!.fd, key: k, value: v }).ret;
    return r < 0 ? r : sys.kernel.machine.mem.read(v, size);
  } finally { b.unstage(k); b.unstage(v); }
}
const u64 = (b: Uint8Array | number): bigint => (typeof b === 'number' ? BigInt(b) : Buffer.from(b).readBigUInt64LE());

describe('objtest.bpf.o: opened as libbpf does', () => {
  it('finds the programs by SEC name, the maps from .maps and the global data sections', () => {
    const o = open();
    expect(o.spec.license).toBe('GPL');
    expect(o.spec.programs.map((p) => [p.name, p.secName])).toEqual([['xdp_count', 'xdp'], ['probe_skb', 'kprobe/eth_type_trans']]);
    expect(o.spec.maps.map((m) => [m.name, m.type, m.keySize, m.valueSize, m.maxEntries, m.mapFlags])).toEqual([
      ['counts', 1, 4, 8, 16, 0],
      ['objtest.data', 2, 4, 8, 1, 1024], // BPF_F_MMAPABLE, as libbpf makes global data
      ['objtest.bss', 2, 4, 20, 1, 1024],
      ['objtest.rodata', 2, 4, 32, 1, 128 | 1024], // BPF_F_RDONLY_PROG: factor and bpf_printk's format
    ]);
    // The subprogram `scale` in .text is appended to the program that calls it.
    const xdp = o.spec.programs[0]!;
    expect(xdp.funcInfo.map((f) => o.spec.btf!.type(f.typeId).name)).toEqual(['xdp_count', 'scale']);
    expect(xdp.lineInfo.length).toBeGreaterThan(5);
  });
});

describe.each(['jit', 'interp'] as const)('objtest.bpf.o loaded and run (%s)', (engine) => {
  let obj: BpfObject;
  beforeAll(() => { sys.bpfSys.jitEnabled = engine === 'jit'; obj = open().load(sys.bpfSys, sys.objectLoadOptions); });
  afterAll(() => { obj.close(); sys.bpfSys.jitEnabled = true; });

  it('xdp_count: three test runs count in the hash map and the globals', () => {
    const b = sys.bpfSys;
    const pkt = b.stage(new Uint8Array(60).fill(0xab));
    for (let i = 0; i < 3; i++) {
      const r = b.call(BPF_PROG_TEST_RUN, { prog_fd: obj.findProgram('xdp_count')!.fd, data_in: pkt, data_size_in: 60, repeat: 1 });
      expect(r.ret).toBe(0);
      expect(r.attr.retval).toBe(2); // XDP_PASS
    }
    b.unstage(pkt);
    expect(u64(lookup(obj, 'counts', Uint8Array.of(1, 0, 0, 0), 8))).toBe(3n);
    expect(lookup(obj, 'counts', Uint8Array.of(2, 0, 0, 0), 8)).toBe(-2); // -ENOENT
    const bss = lookup(obj, 'objtest.bss', new Uint8Array(4), 20) as Uint8Array;
    expect(u64(bss.subarray(0, 8))).toBe(3n); // runs
    // last_len = scale(60) = 60 * factor(3) + 1, computed in the .text subprogram from .rodata.
    expect(u64(lookup(obj, 'objtest.data', new Uint8Array(4), 8))).toBe(181n);
    expect(sys.bpfSys.progFromFd(obj.findProgram('xdp_count')!.fd)!.prog.jit !== undefined).toBe(engine === 'jit');
  });

  it('.rodata is frozen: user space cannot change it', () => {
    const b = sys.bpfSys;
    const k = b.stage(new Uint8Array(4)), v = b.stage(new Uint8Array(4));
    expect(b.call(BPF_MAP_UPDATE_ELEM, { map_fd: obj.findMap('objtest.rodata')!.fd, key: k, value: v }).ret).toBe(-1);
    b.unstage(k); b.unstage(v);
  });

  it('probe_skb: CO-RE reads sk_buff.len and .protocol at the kernel image\'s offsets', () => {
    // pahole of the image is the ground truth for the offsets.
    const layout = execFileSync('pahole', ['-C', 'sk_buff', VMLINUX], { encoding: 'utf8' });
    const off = (f: string): number => Number(new RegExp(`\\b${f};\\s+/\\*\\s+(\\d+)`).exec(layout)![1]);
    expect([off('len'), off('protocol')]).toEqual([8, 12]); // not the object's own 0 and 4
    const b = sys.bpfSys, mem = sys.kernel.machine.mem;
    const skb = sys.kernel.slab.kzalloc(64)!;
    mem.writeU32(skb + BigInt(off('len')), 1234);
    mem.writeU16(skb + BigInt(off('protocol')), 0xdd86);
    // Point the program at it: skb_addr lives in .bss after runs (8) and ... (layout from BTF).
    const bss = obj.spec.btf!.findByNameKind('.bss', 15)!;
    const vsi = bss.secinfos!.find((s) => obj.spec.btf!.type(s.type).name === 'skb_addr')!;
    const k = b.stage(new Uint8Array(4));
    const cur = lookup(obj, 'objtest.bss', new Uint8Array(4), 20) as Uint8Array;
    new DataView(cur.buffer, cur.byteOffset).setBigUint64(vsi.offset, skb, true);
    const v = b.stage(cur);
    expect(b.call(BPF_MAP_UPDATE_ELEM, { map_fd: obj.findMap('objtest.bss')!.fd, key: k, value: v }).ret).toBe(0);
    b.unstage(k); b.unstage(v);
    const p = sys.bpfSys.progFromFd(obj.findProgram('probe_skb')!.fd)!;
    expect(sys.bpfSys.runProg(p, 0n)).toBe(0n);
    expect(u64(lookup(obj, 'objtest.data', new Uint8Array(4), 8))).toBe(1234n);
    const after = lookup(obj, 'objtest.bss', new Uint8Array(4), 20) as Uint8Array;
    const proto = obj.spec.btf!.findByNameKind('.bss', 15)!.secinfos!.find((s) => obj.spec.btf!.type(s.type).name === 'seen_proto')!;
    expect(new DataView(after.buffer, after.byteOffset).getUint32(proto.offset, true)).toBe(0xdd86);
    sys.kernel.slab.kfree(skb);
  });
});

describe('object lifetime and bad objects', () => {
  it('load and close 10 times: no id, fd or guest memory left', () => {
    const b = sys.bpfSys, k = sys.kernel;
    const snap = () => ({ fds: k.current.files.count, progs: b.progs.size, maps: b.maps.size, btfs: b.btfs.size, slab: k.slab.inUse, vm: k.vmalloc.pagesInUse, exec: k.execmem.pagesInUse });
    const before = snap();
    for (let i = 0; i < 10; i++) open().load(b, sys.objectLoadOptions).close();
    expect(snap()).toEqual(before);
  });

  it('a non-BPF ELF, a truncated object and a missing attach target are clear errors', () => {
    expect(() => BpfObject.open(new Uint8Array(readFileSync(VMLINUX)), 'vmlinux', sys.objectLoadOptions)).toThrow(/not a BPF object \(e_machine 62/);
    expect(() => BpfObject.open(new Uint8Array(readFileSync(OBJ)).subarray(0, 100), 'cut.o')).toThrow(ObjectError);
    const o = open();
    o.spec.programs[0]!.def = { ...o.spec.programs[0]!.def, attachBtf: true };
    o.spec.programs[0]!.target = 'no_such_function';
    const before = sys.bpfSys.maps.size;
    expect(() => o.load(sys.bpfSys, sys.objectLoadOptions)).toThrow(LoadError);
    expect(sys.bpfSys.maps.size).toBe(before); // the maps it had created were closed again
  });
});
