/**
 * @fileoverview BPF_PROBE_MEM: loads the verifier finds going through typed kernel pointers
 * (PTR_TO_BTF_ID) are exception-safe, as the kernel makes them with an exception table entry: a
 * bad kernel pointer reads 0 and the program goes on, on both engines; a good one reads memory.
 * The program is a fentry on bpf_fentry_test8(struct bpf_fentry_test_t *arg), which returns
 * (long)arg->a; the program reads arg->a->a, storing what it read in an array map.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { boot, type System } from '../../index.ts';
import { BPF_MAP_CREATE, BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM, BPF_PROG_LOAD, BPF_RAW_TRACEPOINT_OPEN } from '../../bpf/syscall/attr.ts';
import { BTF_KIND } from '../../bpf/btf/btf.ts';
import { assemble } from '../../bpf/asm/assembler.ts';
import { encode } from '../../bpf/isa/insn.ts';

let sys: System;
beforeAll(async () => { sys = await boot(); });
afterAll(() => sys.close());

describe.each(['jit', 'interp'] as const)('BPF_PROBE_MEM (%s)', (engine) => {
  let map = -1, prog = -1, link = -1, arg = 0n, other = 0n;
  beforeAll(() => {
    const b = sys.bpfSys;
    map = b.call(BPF_MAP_CREATE, { map_type: 2, key_size: 4, value_size: 16, max_entries: 1 }).ret;
    // value[0] = arg->a->a (two loads through typed pointers), value[1] = 1 once the program ran to the end.
    const insns = assemble(`
      ldxdw %r6, [%r1+0]
      ldxdw %r7, [%r6+0]
      ldxdw %r8, [%r7+0]
      stw [%r10-4], 0
      mov %r2, %r10
      add %r2, -4
      lddw %r1, 0
      call 1
      jeq %r0, 0, +3
      stxdw [%r0+0], %r8
      stdw [%r0+8], 1
      mov %r0, 0
      exit`);
    insns.forEach((i) => { if (i.code === 0x18) { i.src = 1; i.imm = map; } });
    b.jitEnabled = engine === 'jit';
    const ui = b.stage(encode(insns)), lic = b.stage(Buffer.from('GPL\0'));
    prog = b.call(BPF_PROG_LOAD, {
      prog_type: 26, expected_attach_type: 24, insns: ui, insn_cnt: insns.length, license: lic,
      attach_btf_id: sys.btf.findByNameKind('bpf_fentry_test8', BTF_KIND.FUNC)!.id,
    }).ret;
    b.unstage(ui); b.unstage(lic);
    b.jitEnabled = true;
    expect(prog).toBeGreaterThan(0);
    link = b.call(BPF_RAW_TRACEPOINT_OPEN, { name: 0, prog_fd: prog }).ret;
    expect(link).toBeGreaterThan(0);
    arg = sys.kernel.slab.kzalloc(8)!;
    other = sys.kernel.slab.kzalloc(8)!;
  });
  afterAll(() => { for (const fd of [link, prog, map]) sys.kernel.current.files.close(fd); });

  /** Calls bpf_fentry_test8(arg) with arg->a = a; returns [what the program read, whether it finished]. */
  function call(a: bigint): [bigint, bigint] {
    const mem = sys.kernel.machine.mem, b = sys.bpfSys;
    mem.writeU64(arg, a);
    const k = b.stage(new Uint8Array(4)), v = b.stage(new Uint8Array(16));
    try {
      expect(sys.callFunc('bpf_fentry_test8', [arg]).ret).toBe(BigInt.asIntN(32, a)); // (int)(long)arg->a
      expect(b.call(BPF_MAP_LOOKUP_ELEM, { map_fd: map, key: k, value: v }).ret).toBe(0);
      const r: [bigint, bigint] = [mem.readU64(v), mem.readU64(v + 8n)];
      mem.write(v, new Uint8Array(16));
      expect(b.call(BPF_MAP_UPDATE_ELEM, { map_fd: map, key: k, value: v, flags: 0 }).ret).toBe(0);
      return r;
    } finally { b.unstage(k); b.unstage(v); }
  }

  it('the verifier marks both loads through typed pointers (not the ctx read)', () => {
    expect([...sys.bpfSys.progFromFd(prog)!.prog.probeMem!]).toEqual([1, 2]);
  });

  it('a good pointer: the value is read', () => {
    sys.kernel.machine.mem.writeU64(other, 0x1234_5678_9abcn);
    expect(call(other)).toEqual([0x1234_5678_9abcn, 1n]);
  });

  it('NULL and an unmapped kernel address read 0, and the program runs on to its end', () => {
    expect(call(0n)).toEqual([0n, 1n]);
    expect(call(0xffff_dead_0000_0000n)).toEqual([0n, 1n]);
  });
});
