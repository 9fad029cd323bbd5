/**
 * @fileoverview The BPF trampoline end to end, with the kernel selftests' programs and values
 * (fentry_test, fexit_test, fexit_stress, trampoline_count), the target's bytes through attach
 * and detach, stats, and every refused input with the kernel's errno and message.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { boot, type System } from '../../index.ts';
import { BpfObject } from '../../bpf/libbpf/load.ts';
import { BPF_PROG_LOAD, BPF_PROG_TEST_RUN, BPF_RAW_TRACEPOINT_OPEN, BPF_MAP_LOOKUP_ELEM, BPF_ENABLE_STATS } from '../../bpf/syscall/attr.ts';
import { BTF_KIND } from '../../bpf/btf/btf.ts';
import { BPF_MAX_TRAMP_PROGS } from '../../bpf/trampoline.ts';
import { assemble } from '../../bpf/asm/assembler.ts';
import { encode } from '../../bpf/isa/insn.ts';
import { rootCred } from '../../kernel/task.ts';

const obj = (n: string): string => fileURLToPath(new URL(`../../images/build/bpf/${n}.bpf.o`, import.meta.url));
const NOP5 = '0f1f440000';
let sys: System;
beforeAll(async () => { sys = await boot(); });
afterAll(() => sys.close());

const files = () => sys.kernel.current.files;
const btfId = (fn: string): number => sys.btf.findByNameKind(fn, BTF_KIND.FUNC)!.id;
const siteBytes = (fn: string): string => Buffer.from(sys.kernel.machine.mem.read(sys.kernel.addressOf(fn), 5)).toString('hex');

/** PROG_LOAD of a tracing program from assembly; returns the fd or -errno, and the log. */
function loadTracing(fn: string | number, asm: string, fexit = false, name = 'tp'): { fd: number; log: string } {
  const b = sys.bpfSys;
  const ui = b.stage(encode(assemble(asm))), lic = b.stage(Buffer.from('GPL\0')), log = b.stage(new Uint8Array(4096));
  const cnt = assemble(asm).length;
  const fd = b.call(BPF_PROG_LOAD, {
    prog_type: 26, expected_attach_type: fexit ? 25 : 24, attach_btf_id: typeof fn === 'number' ? fn : btfId(fn),
    insns: ui, insn_cnt: cnt, license: lic, log_level: 1, log_size: 4096, log_buf: log, prog_name: name,
  }).ret;
  const text = sys.kernel.machine.mem.readCString(log, 4096);
  b.unstage(ui); b.unstage(lic); b.unstage(log);
  return { fd, log: text };
}
const attach = (fd: number): number => sys.bpfSys.call(BPF_RAW_TRACEPOINT_OPEN, { name: 0, prog_fd: fd }).ret;

function resultsOf(o: BpfObject, name: string): bigint[] {
  const b = sys.bpfSys;
  const k = b.stage(new Uint8Array(4)), v = b.stage(new Uint8Array(48));
  expect(b.call(BPF_MAP_LOOKUP_ELEM, { map_fd: o.findMap(`${name}.bss`)!.fd, key: k, value: v }).ret).toBe(0);
  const out = [0, 1, 2, 3, 4, 5].map((i) => sys.kernel.machine.mem.readU64(v + BigInt(8 * i)));
  b.unstage(k); b.unstage(v);
  return out;
}

describe.each(['jit', 'interp'] as const)('selftests fentry_test and fexit_test (%s)', (engine) => {
  it.each(['fentry_test', 'fexit_test'])('%s: every bpf_fentry_testN seen with the right args (and return)', (name) => {
    sys.bpfSys.jitEnabled = engine === 'jit';
    const o = BpfObject.open(new Uint8Array(readFileSync(obj(name))), `${name}.bpf.o`, sys.objectLoadOptions).load(sys.bpfSys, sys.objectLoadOptions);
    try {
      const links = [...o.programs.values()].map((p) => attach(p.fd));
      expect(links.every((l) => l > 0)).toBe(true);
      expect(siteBytes('bpf_fentry_test1').slice(0, 2)).toBe('e8'); // call the trampoline
      // PROG_TEST_RUN of a tracing program calls bpf_fentry_test1..9 as the kernel's test_run does.
      const r = sys.bpfSys.call(BPF_PROG_TEST_RUN, { prog_fd: [...o.programs.values()][0]!.fd });
      expect(r.ret).toBe(0);
      expect(resultsOf(o, name)).toEqual([1n, 1n, 1n, 1n, 1n, 1n]);
      links.forEach((l) => files().close(l));
      expect(siteBytes('bpf_fentry_test1')).toBe(NOP5);
    } finally {
      o.close();
      sys.bpfSys.jitEnabled = true;
    }
  });
});

describe('the target function\'s bytes and the half-page flip', () => {
  it('nop before, call to the live half while attached, nop after the last detach', () => {
    const ip = sys.kernel.addressOf('bpf_fentry_test2');
    expect(siteBytes('bpf_fentry_test2')).toBe(NOP5);
    const a = loadTracing('bpf_fentry_test2', 'mov %r0, 0\nexit').fd, c = loadTracing('bpf_fentry_test2', 'mov %r0, 0\nexit', true).fd;
    const tr = sys.bpfSys.progFromFd(a)!.trampoline!;
    const target = (): bigint => { const v = new DataView(sys.kernel.machine.mem.read(ip + 1n, 4).buffer).getInt32(0, true); return ip + 5n + BigInt(v); };
    const la = attach(a);
    expect(target()).toBe(tr.image.start); // selector 0 → first half
    const lc = attach(c);
    expect(target()).toBe(tr.image.start + 2048n); // regenerated into the other half
    expect(sys.kernel.call('bpf_fentry_test2', [2, 3])).toBe(5n);
    files().close(la);
    expect(target()).toBe(tr.image.start); // and back
    files().close(lc);
    expect(siteBytes('bpf_fentry_test2')).toBe(NOP5);
    expect(sys.kernel.symbolize(tr.image.start)).toBeUndefined(); // no trampoline symbol without programs
    files().close(a); files().close(c);
  });

  it('a site whose bytes changed is not patched: -EBUSY, nothing attached', () => {
    const ip = sys.kernel.addressOf('bpf_fentry_test3');
    const p = loadTracing('bpf_fentry_test3', 'mov %r0, 0\nexit').fd;
    sys.kernel.machine.writeCode(ip, Uint8Array.of(0x66, 0x0f, 0x1f, 0x44, 0x00)); // someone else's patch
    expect(attach(p)).toBe(-16);
    expect(sys.bpfSys.progFromFd(p)!.linked).toBe(false);
    sys.kernel.machine.writeCode(ip, Uint8Array.of(0x0f, 0x1f, 0x44, 0x00, 0x00));
    const l = attach(p);
    expect(l).toBeGreaterThan(0);
    files().close(l); files().close(p);
  });
});

describe('fexit_stress and trampoline_count', () => {
  it(`${BPF_MAX_TRAMP_PROGS} fexit programs attach and run; the next gets -E2BIG`, () => {
    const progs = Array.from({ length: BPF_MAX_TRAMP_PROGS + 1 }, () => loadTracing('bpf_fentry_test1', 'mov %r0, 0\nexit', true).fd);
    const links = progs.slice(0, BPF_MAX_TRAMP_PROGS).map(attach);
    expect(links.every((l) => l > 0)).toBe(true);
    expect(attach(progs[BPF_MAX_TRAMP_PROGS]!)).toBe(-7);
    sys.bpfSys.statsEnabled = true;
    expect(sys.kernel.call('bpf_fentry_test1', [1])).toBe(2n);
    sys.bpfSys.statsEnabled = false;
    expect(progs.slice(0, BPF_MAX_TRAMP_PROGS).every((p) => sys.bpfSys.progFromFd(p)!.runCnt === 1n)).toBe(true);
    links.forEach((l) => files().close(l));
    progs.forEach((p) => files().close(p));
    expect(siteBytes('bpf_fentry_test1')).toBe(NOP5);
  });

  it('attach/detach cycles leave no page, id or fd behind, and detach never fails', () => {
    const b = sys.bpfSys, k = sys.kernel;
    const snap = () => ({ fds: files().count, progs: b.progs.size, tramps: b.trampolines!.count, exec: k.execmem.pagesInUse, slab: k.slab.inUse });
    const before = snap();
    for (let i = 0; i < 30; i++) {
      const ps = [loadTracing('bpf_fentry_test5', 'mov %r0, 0\nexit').fd, loadTracing('bpf_fentry_test5', 'mov %r0, 0\nexit', true).fd];
      const ls = ps.map(attach);
      // Churn: detach in either order.
      (i % 2 ? ls : [...ls].reverse()).forEach((l) => expect(files().close(l)).toBe(0));
      ps.forEach((p) => files().close(p));
    }
    expect(snap()).toEqual(before);
  });
});

describe('stats', () => {
  it('run_cnt counts exactly the calls made while stats were on; no crossing into TypeScript while off', () => {
    const p = loadTracing('bpf_fentry_test1', 'mov %r0, 0\nexit').fd;
    const l = attach(p);
    const po = sys.bpfSys.progFromFd(p)!;
    const m = sys.kernel.machine;
    let c0 = m.crossings;
    for (let i = 0; i < 5; i++) sys.kernel.call('bpf_fentry_test1', [i]);
    expect(m.crossings - c0).toBe(0);
    expect([po.runCnt, po.runTimeNs]).toEqual([0n, 0n]);
    // v5.5 switches stats with the sysctl (BPF_ENABLE_STATS is 5.8's: -EINVAL here).
    expect(sys.bpfSys.call(BPF_ENABLE_STATS, { type: 0 }).ret).toBe(-22);
    expect(sys.kernel.sysctl.write('kernel.bpf_stats_enabled', '1', rootCred())).toBe(0);
    c0 = m.crossings;
    for (let i = 0; i < 3; i++) sys.kernel.call('bpf_fentry_test1', [i]);
    expect(m.crossings - c0).toBe(6); // enter and exit of one program, three calls
    expect(sys.kernel.sysctl.write('kernel.bpf_stats_enabled', '0', rootCred())).toBe(0);
    sys.kernel.call('bpf_fentry_test1', [9]);
    expect(po.runCnt).toBe(3n);
    expect(po.runTimeNs).toBeGreaterThan(0n);
    files().close(l); files().close(p);
  });
});

describe('refused inputs: the kernel\'s errno and message, nothing attached, machine usable', () => {
  const ok = 'mov %r0, 0\nexit';
  it.each([
    ['unknown attach_btf_id', 99999, ok, false, -22, 'attach_btf_id 99999 is invalid'],
    ['a struct type id', () => sys.btf.findByNameKind('sk_buff', BTF_KIND.STRUCT)!.id, ok, false, -22, 'is not a function'],
    ['a struct passed by value', 'bpfemu_struct_by_value', ok, false, -22, 'The function bpfemu_struct_by_value arg0 type STRUCT is unsupported.'],
    ['a variadic function', 'bpfemu_varargs', ok, false, -22, 'The function bpfemu_varargs with variable args is unsupported.'],
    ['reading past the args', 'bpf_fentry_test1', 'ldxdw %r0, [%r1+8]\nexit', false, -13, "func 'bpf_fentry_test1' doesn't have 2-th argument"],
    ['fexit reading past the return value', 'bpf_fentry_test1', 'ldxdw %r0, [%r1+16]\nexit', true, -13, "func 'bpf_fentry_test1' doesn't have 3-th argument"],
    ['an unaligned ctx read', 'bpf_fentry_test2', 'ldxw %r0, [%r1+4]\nexit', false, -13, "func 'bpf_fentry_test2' offset 4 is not multiple of 8"],
    ['writing ctx', 'bpf_fentry_test1', 'stdw [%r1+0], 1\nmov %r0, 0\nexit', false, -13, 'BPF_ST stores into R1 ctx is not allowed'],
    ['writing ctx from a register', 'bpf_fentry_test1', 'mov %r2, 1\nstxdw [%r1+0], %r2\nmov %r0, 0\nexit', false, -13, 'invalid bpf_context access off=0 size=8'],
    ['ctx through a copy', 'bpf_fentry_test1', 'mov %r2, %r1\nldxdw %r0, [%r2+24]\nexit', false, -13, "doesn't have 4-th argument"],
  ])('%s', (_n, target, asm, fexit, errno, msg) => {
    const id = typeof target === 'function' ? target() : target;
    const before = sys.bpfSys.progs.size;
    const r = loadTracing(id as string | number, asm as string, fexit as boolean);
    expect(r.fd).toBe(errno);
    expect(r.log).toContain(msg);
    expect(sys.bpfSys.progs.size).toBe(before);
    expect(sys.callFunc('bpf_fentry_test1', [1n]).ret).toBe(2n);
  });

  it('a notrace function: loads, but the poke finds no nop: -EBUSY at attach', () => {
    const p = loadTracing('bpfemu_notrace_add', 'mov %r0, 0\nexit').fd;
    expect(p).toBeGreaterThan(0);
    expect(attach(p)).toBe(-16);
    expect(sys.kernel.call('bpfemu_notrace_add', [1, 2])).toBe(3n);
    files().close(p);
  });

  it('7 args: more than v5.5 x86-64 saves, -ENOTSUPP at attach', () => {
    const p = loadTracing('bpf_modify_return_test2', 'mov %r0, 0\nexit').fd;
    expect(p).toBeGreaterThan(0);
    expect(attach(p)).toBe(-524);
    expect(siteBytes('bpf_modify_return_test2')).toBe(NOP5);
    files().close(p);
  });
});

describe('BPF links (as later kernels attach fentry/fexit)', () => {
  // Tracing links through BPF_LINK_CREATE are 5.10's (LINK_DETACH 5.9): the 5.12 profile.
  let v55: System;
  beforeAll(async () => { v55 = sys; sys = await boot({ kernel: '5.12' }); });
  afterAll(() => { sys.close(); sys = v55; });

  it('under 5.5 BPF_LINK_CREATE and the other link commands do not exist: -EINVAL', async () => {
    const { BPF_LINK_CREATE, BPF_LINK_GET_NEXT_ID, BPF_LINK_DETACH } = await import('../../bpf/syscall/attr.ts');
    const p = v55.bpfSys;
    expect([BPF_LINK_CREATE, BPF_LINK_GET_NEXT_ID, BPF_LINK_DETACH].map((c) => p.call(c, {}).ret)).toEqual([-22, -22, -22]);
  });

  it('from 5.8 RAW_TRACEPOINT_OPEN gives a bpf_link too (an id); in v5.5 only an fd', () => {
    const p = loadTracing('bpf_fentry_test5', 'mov %r0, 0\nexit').fd;
    const l = attach(p);
    expect(sys.bpfSys.linkFromFd(l)?.id).toBeGreaterThan(0);
    files().close(l);
    files().close(p);
    expect(sys.bpfSys.links.size).toBe(0);
    const [s512, s55] = [sys, v55];
    sys = s55;
    try {
      const q = loadTracing('bpf_fentry_test5', 'mov %r0, 0\nexit').fd;
      const m = attach(q);
      expect(sys.bpfSys.linkFromFd(m)).toBeUndefined();
      expect(sys.bpfSys.links.size).toBe(0);
      files().close(m);
      files().close(q);
    } finally { sys = s512; }
  });

  it('LINK_CREATE attaches with an id; GET_FD_BY_ID holds it; DETACH or the last close detaches', async () => {
    const { BPF_LINK_CREATE, BPF_LINK_GET_FD_BY_ID, BPF_LINK_DETACH, BPF_LINK_GET_NEXT_ID, BPF_OBJ_GET_INFO_BY_FD } = await import('../../bpf/syscall/attr.ts');
    const b = sys.bpfSys;
    const p = loadTracing('bpf_fentry_test6', 'mov %r0, 0\nexit', true).fd;
    expect(b.call(BPF_LINK_CREATE, { prog_fd: p, attach_type: 24 }).ret).toBe(-22); // not its attach type
    const l = b.call(BPF_LINK_CREATE, { prog_fd: p, attach_type: 25 }).ret;
    expect(l).toBeGreaterThan(0);
    expect(siteBytes('bpf_fentry_test6').slice(0, 2)).toBe('e8');
    const id = b.linkFromFd(l)!.id;
    expect(b.call(BPF_LINK_GET_NEXT_ID, { start_id: 0 }).attr.next_id).toBe(id);
    const info = b.stage(new Uint8Array(24));
    expect(b.call(BPF_OBJ_GET_INFO_BY_FD, { bpf_fd: l, info_len: 24, info }).ret).toBe(0);
    expect([0, 4, 8, 16].map((o) => sys.kernel.machine.mem.readU32(info + BigInt(o)))).toEqual([2, id, b.progFromFd(p)!.id, 25]);
    b.unstage(info);
    const l2 = b.call(BPF_LINK_GET_FD_BY_ID, { start_id: id }).ret;
    files().close(l);
    expect(siteBytes('bpf_fentry_test6').slice(0, 2)).toBe('e8'); // the second fd holds the link
    expect(b.call(BPF_LINK_DETACH, { link_fd: l2 }).ret).toBe(0);
    expect(siteBytes('bpf_fentry_test6')).toBe(NOP5);
    expect(b.call(BPF_LINK_DETACH, { link_fd: l2 }).ret).toBe(0); // defunct: nothing left to undo
    files().close(l2);
    expect(b.links.size).toBe(0);
    files().close(p);
  });
});
