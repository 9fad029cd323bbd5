/**
 * @fileoverview bpf() through the kernel's syscall entry: the bad-input table (syscall_cases.ts)
 * with the kernel's errnos and the machine usable after each; ids, fds and refcounts across
 * load/close cycles, with nothing left behind.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { boot, type System } from '../../index.ts';
import { __NR } from '../../kernel/syscalls.ts';
import {
  BPF_ATTR_SIZE, BPF_MAP_CREATE, BPF_MAP_FREEZE, BPF_PROG_LOAD, BPF_MAP_UPDATE_ELEM, BPF_MAP_LOOKUP_ELEM,
  BPF_PROG_GET_NEXT_ID, BPF_PROG_GET_FD_BY_ID, BPF_MAP_GET_NEXT_ID, BPF_OBJ_GET_INFO_BY_FD, BPF_PROG_TEST_RUN,
} from '../../bpf/syscall/attr.ts';
import { CASES, PROGS, attrBytes, type Fields } from './syscall_cases.ts';

let sys: System;
let fx: Record<string, bigint>;
beforeAll(async () => {
  sys = await boot();
  const b = sys.bpfSys;
  const fd = (cmd: number, f: Fields): bigint => { const r = b.call(cmd, f).ret; if (r < 0) throw new Error(`fixture: ${r}`); return BigInt(r); };
  const stage = (bytes: Uint8Array): bigint => b.stage(bytes);
  fx = {
    array: fd(BPF_MAP_CREATE, { map_type: 2, key_size: 4, value_size: 8, max_entries: 4 }),
    hash: fd(BPF_MAP_CREATE, { map_type: 1, key_size: 4, value_size: 8, max_entries: 4 }),
    frozen: fd(BPF_MAP_CREATE, { map_type: 2, key_size: 4, value_size: 8, max_entries: 1 }),
    key: stage(new Uint8Array(4)), key3: stage(Uint8Array.of(3, 0, 0, 0)), key9: stage(Uint8Array.of(9, 0, 0, 0)),
    value: stage(new Uint8Array(64)), log: stage(new Uint8Array(4096)), gpl: stage(Buffer.from('GPL\0')),
  };
  for (const [n, hex] of Object.entries(PROGS)) fx[`insns:${n}`] = stage(Buffer.from(hex, 'hex'));
  fx.prog = fd(BPF_PROG_LOAD, { prog_type: 6, insn_cnt: 2, insns: fx['insns:ok']!, license: fx.gpl! });
  b.call(BPF_MAP_FREEZE, { map_fd: fx.frozen! });
});
afterAll(() => sys.close());

describe('bpf() bad inputs give the kernel\'s errno', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', (_n, c) => {
    const bytes = attrBytes(c, fx);
    const uattr = sys.bpfSys.stage(bytes);
    const files = sys.kernel.current.files.count;
    const ret = Number(BigInt.asIntN(64, sys.kernel.syscall(__NR.bpf, [BigInt(c.cmd), uattr, BigInt(c.size ?? BPF_ATTR_SIZE)])));
    sys.bpfSys.unstage(uattr);
    if (c.errno === 0) {
      expect(ret).toBeGreaterThanOrEqual(0);
      expect(sys.kernel.current.files.close(ret)).toBe(0);
    } else {
      expect(ret).toBe(-c.errno);
      expect(sys.kernel.current.files.count).toBe(files); // nothing installed on failure
    }
    // The machine is still usable.
    expect(sys.callFunc('bpf_fentry_test1', [1n]).ret).toBe(2n);
  });
});

describe('ids, fds and refcounts', () => {
  it('load/close cycles leave no id, fd or guest memory behind', () => {
    const b = sys.bpfSys, k = sys.kernel;
    const before = { fds: k.current.files.count, progs: b.progs.size, maps: b.maps.size, slab: k.slab.inUse, vm: k.vmalloc.pagesInUse, exec: k.execmem.pagesInUse };
    for (let i = 0; i < 20; i++) {
      const m = b.call(BPF_MAP_CREATE, { map_type: 1, key_size: 4, value_size: 8, max_entries: 8, map_name: 'cycle' }).ret;
      // A program using the map: ld_imm64 r1 = map; r0 = 0; exit.
      const insns = new Uint8Array(32);
      const dv = new DataView(insns.buffer);
      insns.set([0x18, 0x11], 0); dv.setInt32(4, m, true);
      insns.set([0xb7, 0x00], 16); insns.set([0x95], 24);
      const ui = b.stage(insns);
      const p = b.call(BPF_PROG_LOAD, { prog_type: 6, insn_cnt: 4, insns: ui, license: fx.gpl! }).ret;
      b.unstage(ui);
      expect(p).toBeGreaterThan(0);
      // The program holds the map: closing the map's fd keeps the map (and its id) alive.
      const mapId = b.mapFromFd(m)!.id;
      expect(k.current.files.close(m)).toBe(0);
      expect(b.maps.find(mapId)).toBeDefined();
      expect(k.current.files.close(p)).toBe(0);
      expect(b.maps.find(mapId)).toBeUndefined();
    }
    expect({ fds: k.current.files.count, progs: b.progs.size, maps: b.maps.size, slab: k.slab.inUse, vm: k.vmalloc.pagesInUse, exec: k.execmem.pagesInUse }).toEqual(before);
  });

  it('ids are cyclic and never reused at once; GET_NEXT_ID walks them; GET_FD_BY_ID takes a reference', () => {
    const b = sys.bpfSys;
    const load = (): number => b.call(BPF_PROG_LOAD, { prog_type: 6, insn_cnt: 2, insns: fx['insns:ok']!, license: fx.gpl! }).ret;
    const a = load(), c = load();
    const ida = b.progFromFd(a)!.id, idc = b.progFromFd(c)!.id;
    expect(idc).toBe(ida + 1);
    sys.kernel.current.files.close(a);
    const d = load();
    expect(b.progFromFd(d)!.id).toBe(idc + 1); // cyclic: the freed id is not handed out again yet
    const ids: number[] = [];
    for (let id = 0; ;) {
      const r = b.call(BPF_PROG_GET_NEXT_ID, { start_id: id });
      if (r.ret !== 0) { expect(r.ret).toBe(-2); break; }
      id = r.attr.next_id as number;
      ids.push(id);
    }
    expect(ids).toEqual(expect.arrayContaining([idc, idc + 1]));
    expect(ids).not.toContain(ida);
    const again = b.call(BPF_PROG_GET_FD_BY_ID, { start_id: idc }).ret;
    sys.kernel.current.files.close(c);
    expect(b.progs.find(idc)).toBeDefined(); // the second fd keeps it
    sys.kernel.current.files.close(again);
    expect(b.progs.find(idc)).toBeUndefined();
    sys.kernel.current.files.close(d);
    expect(b.call(BPF_MAP_GET_NEXT_ID, { start_id: 0 }).ret).toBe(0);
  });

  it('prog info: id, tag, name, lengths; run_cnt/run_time_ns only with stats enabled', () => {
    const b = sys.bpfSys, mem = sys.kernel.machine.mem;
    const fd = b.call(BPF_PROG_LOAD, { prog_type: 6, insn_cnt: 2, insns: fx['insns:ok']!, license: fx.gpl!, prog_name: 'info_test' }).ret;
    const run = (): void => { expect(b.call(BPF_PROG_TEST_RUN, { prog_fd: fd, data_in: fx.value!, data_size_in: 64, repeat: 3 }).ret).toBe(0); };
    const info = b.stage(new Uint8Array(208));
    const get = (): DataView => {
      expect(b.call(BPF_OBJ_GET_INFO_BY_FD, { bpf_fd: fd, info_len: 208, info }).ret).toBe(0);
      return new DataView(mem.read(info, 208).buffer);
    };
    run();
    let dv = get();
    expect(dv.getUint32(0, true)).toBe(6);
    expect(dv.getUint32(4, true)).toBe(b.progFromFd(fd)!.id);
    expect(Buffer.from(mem.read(info + 8n, 8)).toString('hex')).toBe(b.progFromFd(fd)!.prog.tag);
    expect(dv.getUint32(20, true)).toBe(16); // xlated_prog_len: 2 insns
    expect(dv.getUint32(16, true)).toBeGreaterThan(25); // jited: prologue and more
    expect(mem.readCString(info + 64n)).toBe('info_test');
    expect(dv.getBigUint64(200, true)).toBe(0n); // stats off: run_cnt stays 0
    b.statsEnabled = true;
    run();
    dv = get();
    expect(dv.getBigUint64(200, true)).toBe(3n);
    expect(dv.getBigUint64(192, true)).toBeGreaterThan(0n);
    b.statsEnabled = false;
    b.unstage(info);
    sys.kernel.current.files.close(fd);
  });

  it('a map update through bpf() is seen by the program, and its result through lookup', () => {
    const b = sys.bpfSys;
    expect(b.call(BPF_MAP_UPDATE_ELEM, { map_fd: fx.array!, key: fx.key3!, value: fx.value!, flags: 0 }).ret).toBe(0);
    expect(b.call(BPF_MAP_LOOKUP_ELEM, { map_fd: fx.array!, key: fx.key3!, value: fx.value! }).ret).toBe(0);
  });
});
