/**
 * @fileoverview fentry/fexit on BPF programs (5b92a28aae4d, v5.5): the kernel selftest
 * fexit_bpf2bpf with its values, the same through libbpf's set_attach_target, fentry/fexit on an
 * XDP program and its subprogram seeing the frame's length through the typed xdp_buff and the
 * verdicts, the all-u64 fallback when BTF disagrees, every refused input with the kernel's errno
 * and message, and lifetimes (detach, closing a traced target) leaving nothing behind.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { boot, type System } from '../../index.ts';
import { BpfObject, LoadError } from '../../bpf/libbpf/load.ts';
import { BPF_PROG_LOAD, BPF_PROG_TEST_RUN, BPF_RAW_TRACEPOINT_OPEN, BPF_MAP_CREATE, BPF_PROG_GET_FD_BY_ID, BPF_BTF_LOAD, BPF_MAP_LOOKUP_ELEM } from '../../bpf/syscall/attr.ts';
import { BTF_KIND } from '../../bpf/btf/btf.ts';
import { bpf2bpfKey, CONSERVATIVE_MODEL } from '../../bpf/bpf2bpf.ts';
import { assemble } from '../../bpf/asm/assembler.ts';
import { encode } from '../../bpf/isa/insn.ts';
import { readGlobals } from '../../cli/commands/trace_prog.ts';
import { pktV6, pktV4, udpV4 } from '../../net/packets.ts';

const objPath = (n: string): string => fileURLToPath(new URL(`../../images/build/bpf/${n}.bpf.o`, import.meta.url));
const NOP5 = '0f1f440000';
let sys: System;
beforeAll(async () => { sys = await boot(); });
afterAll(() => sys.close());

const files = () => sys.kernel.current.files;
const open = (n: string): BpfObject => BpfObject.open(new Uint8Array(readFileSync(objPath(n))), `${n}.bpf.o`, sys.objectLoadOptions);
const bytesAt = (a: bigint): string => Buffer.from(sys.kernel.machine.mem.read(a, 5)).toString('hex');

/** test_pkt_access.bpf.o, JIT-compiled. */
function loadTarget(jit = true): { obj: BpfObject; fd: number } {
  const was = sys.bpfSys.jitEnabled;
  sys.bpfSys.jitEnabled = jit;
  try {
    const obj = open('test_pkt_access').load(sys.bpfSys, sys.objectLoadOptions);
    return { obj, fd: obj.findProgram('test_pkt_access')!.fd };
  } finally { sys.bpfSys.jitEnabled = was; }
}

function testRun(fd: number, pkt: Uint8Array = pktV6()): { ret: number; retval: number } {
  const d = sys.bpfSys.stage(pkt);
  const r = sys.bpfSys.call(BPF_PROG_TEST_RUN, { prog_fd: fd, data_in: d, data_size_in: pkt.length });
  sys.bpfSys.unstage(d);
  return { ret: r.ret, retval: r.attr.retval as number };
}

/** PROG_LOAD of a tracing program from assembly against a BPF program target. */
function loadTracing(fields: Record<string, number>, asm = 'mov %r0, 0\nexit'): { fd: number; log: string } {
  const b = sys.bpfSys;
  const insns = assemble(asm);
  const ui = b.stage(encode(insns)), lic = b.stage(Buffer.from('GPL\0')), log = b.stage(new Uint8Array(4096));
  const fd = b.call(BPF_PROG_LOAD, {
    prog_type: 26, expected_attach_type: 25, insns: ui, insn_cnt: insns.length, license: lic,
    log_level: 1, log_size: 4096, log_buf: log, prog_name: 'tp', ...fields,
  }).ret;
  const text = sys.kernel.machine.mem.readCString(log, 4096);
  b.unstage(ui); b.unstage(lic); b.unstage(log);
  return { fd, log: text };
}

const funcId = (fd: number, name: string): number => {
  const fi = sys.bpfSys.progFromFd(fd)!.funcInfo!;
  return fi.typeIds[fi.names.indexOf(name)]!;
};

describe('the target: test_pkt_access with two subprograms', () => {
  it('func_info: three functions named from BTF; subprog2 unreliable (clang dropped `val`)', () => {
    const { obj, fd } = loadTarget();
    try {
      const p = sys.bpfSys.progFromFd(fd)!;
      expect(p.funcInfo!.names).toEqual(['test_pkt_access', 'test_pkt_access_subprog1', 'test_pkt_access_subprog2']);
      expect(p.funcInfo!.unreliable).toEqual([false, false, true]);
      // Every function of the image begins with the 5-byte nop, named in kallsyms by its BTF name.
      expect(p.prog.jit!.funcAddrs.map(bytesAt)).toEqual([NOP5, NOP5, NOP5]);
      expect(p.prog.jit!.funcAddrs.map((a) => sys.kernel.symbolize(a))).toEqual(
        p.funcInfo!.names.map((n) => `bpf_prog_${p.prog.tag}_${n}`));
      expect(testRun(fd)).toEqual({ ret: 0, retval: 0 }); // TC_ACT_OK on pkt_v6
      expect(testRun(fd, pktV4()).retval).toBe(0);
    } finally { obj.close(); }
  });

  it('the verifier log says why subprog2 is unreliable', () => {
    // Through bpf() directly, with the log: the object's program loaded by hand.
    const o = open('test_pkt_access');
    const p = o.spec.programs[0]!;
    const b = sys.bpfSys;
    const btfFd = b.call(BPF_BTF_LOAD, { btf: b.stage(o.spec.btfData!), btf_size: o.spec.btfData!.length }).ret;
    const fi = new Uint8Array(8 * p.funcInfo.length);
    p.funcInfo.forEach((r, k) => { new DataView(fi.buffer).setUint32(8 * k, r.insnOff, true); new DataView(fi.buffer).setUint32(8 * k + 4, r.typeId, true); });
    const log = b.stage(new Uint8Array(4096));
    const fd = b.call(BPF_PROG_LOAD, {
      prog_type: 3, insns: b.stage(encode(p.insns)), insn_cnt: p.insns.length, license: b.stage(Buffer.from('GPL\0')),
      prog_btf_fd: btfFd, func_info_rec_size: 8, func_info: b.stage(fi), func_info_cnt: p.funcInfo.length,
      log_level: 1, log_size: 4096, log_buf: log,
    }).ret;
    expect(fd).toBeGreaterThan(0);
    expect(sys.kernel.machine.mem.readCString(log, 4096)).toMatch(/^R1 is not a scalar\nType info disagrees with actual arguments due to compiler optimizations\nprocessed \d+ insns/);
    files().close(fd); files().close(btfFd);
  });
});

describe.each(['jit', 'interp'] as const)('selftest fexit_bpf2bpf (tracing programs: %s)', (engine) => {
  it('fexit on test_pkt_access and both subprograms: each sees its args and return value', () => {
    const { obj: target, fd } = loadTarget();
    sys.bpfSys.jitEnabled = engine === 'jit';
    const tracer = open('fexit_bpf2bpf').load(sys.bpfSys, { ...sys.objectLoadOptions, attachProgFd: fd });
    sys.bpfSys.jitEnabled = true;
    try {
      const tgt = sys.bpfSys.progFromFd(fd)!;
      const progs = [...tracer.programs.values()];
      // The trampoline of each: key (target id << 32) | btf id; subprog2's model is all-u64.
      const trs = progs.map((p) => sys.bpfSys.progFromFd(p.fd)!.trampoline!);
      expect(trs.map((t) => t.key)).toEqual(tgt.funcInfo!.typeIds.map((id) => bpf2bpfKey(tgt.id, id)));
      expect(trs.map((t) => t.func.addr)).toEqual(tgt.prog.jit!.funcAddrs);
      expect(trs[2]!.func.model).toEqual(CONSERVATIVE_MODEL);
      expect(trs[1]!.func.model).toEqual({ retSize: 4, nrArgs: 1, argSize: [8] });
      expect(tracer.attachTracing()).toEqual(['test_main', 'test_subprog1', 'test_subprog2']);
      expect(tgt.prog.jit!.funcAddrs.map((a) => bytesAt(a).slice(0, 2))).toEqual(['e8', 'e8', 'e8']);
      expect(testRun(fd)).toEqual({ ret: 0, retval: 0 });
      expect(readGlobals(sys, tracer)).toEqual({ test_result: '1', test_result_subprog1: '1', test_result_subprog2: '1' });
      for (const p of progs) tracer.detach(p.spec.name);
      expect(tgt.prog.jit!.funcAddrs.map(bytesAt)).toEqual([NOP5, NOP5, NOP5]);
      expect(testRun(fd)).toEqual({ ret: 0, retval: 0 }); // the target runs on, untraced
    } finally {
      tracer.close();
      target.close();
    }
  });
});

describe('libbpf: bpf_program__set_attach_target', () => {
  it('per program: a target fd and the function (the SEC name\'s by default)', () => {
    const { obj: target, fd } = loadTarget();
    const tracer = open('fexit_bpf2bpf');
    tracer.setAttachTarget('test_main', fd).setAttachTarget('test_subprog1', fd, 'test_pkt_access_subprog1')
      .setAttachTarget('test_subprog2', fd, 'test_pkt_access_subprog2');
    tracer.load(sys.bpfSys, sys.objectLoadOptions);
    try {
      tracer.attachTracing();
      expect(testRun(fd).retval).toBe(0);
      expect(Object.values(readGlobals(sys, tracer))).toEqual(['1', '1', '1']);
      expect(() => tracer.setAttachTarget('test_main', fd)).toThrow(/before load/);
    } finally { tracer.close(); target.close(); }
  });

  it('a function the target does not have: libbpf\'s error, nothing loaded', () => {
    const { obj: target, fd } = loadTarget();
    const before = sys.bpfSys.progs.size;
    const tracer = open('fexit_bpf2bpf').setAttachTarget('test_main', fd, 'no_such_func');
    expect(() => tracer.load(sys.bpfSys, sys.objectLoadOptions)).toThrow(/no_such_func is not found in prog's BTF/);
    expect(sys.bpfSys.progs.size).toBe(before);
    target.close();
  });
});

describe('fentry/fexit on an XDP program and its subprogram', () => {
  let xdp: BpfObject, tracer: BpfObject, fd: number;
  beforeAll(() => {
    xdp = open('xdp_filter').load(sys.bpfSys, sys.objectLoadOptions);
    fd = xdp.findProgram('xdp_filter')!.fd;
    tracer = open('xdp_trace').load(sys.bpfSys, { ...sys.objectLoadOptions, attachProgFd: fd });
    tracer.attachTracing();
  });
  afterAll(() => { sys.net.setXdp('eth0', -1); tracer.close(); xdp.close(); });

  it('through the device: fexit sees XDP_PASS and XDP_DROP, fentry the length through struct xdp_buff', () => {
    expect(sys.net.setXdp('eth0', fd)).toBe(0);
    const frames = [pktV6(), udpV4(9, new Uint8Array(6)), udpV4(53, new Uint8Array(20)), udpV4(9)];
    const verdicts = frames.map((f) => {
      const r = sys.net.rx('eth0', f);
      const g = readGlobals(sys, tracer);
      expect(g.entry_len).toBe(String(f.length)); // read through the typed pointer
      expect(g.exit_len).toBe(String(f.length));
      return [r.xdp!.name, g.last_verdict, g.last_dport];
    });
    expect(verdicts).toEqual([
      ['XDP_PASS', '2', '-1'], ['XDP_DROP', '1', '9'], ['XDP_PASS', '2', '53'], ['XDP_DROP', '1', '9'],
    ]);
    const g = readGlobals(sys, tracer);
    expect(g.verdicts).toEqual(['0', '2', '2', '0', '0']);
    expect(g.entry_calls).toBe('4');
    expect(readGlobals(sys, xdp)).toEqual({ passed: '2', dropped: '2' });
    expect(sys.net.stats('eth0').xdp).toMatchObject({ XDP_PASS: 2n, XDP_DROP: 2n });
  });

  it('through PROG_TEST_RUN: the same programs, the loopback device', () => {
    expect(testRun(fd, udpV4(9)).retval).toBe(1);
    expect(readGlobals(sys, tracer).last_verdict).toBe('1');
    expect(readGlobals(sys, tracer).entry_len).toBe('42');
  });
});

describe('when BTF disagrees: the conservative model', () => {
  it('a typed read of an unreliable subprogram\'s argument is refused with the kernel\'s message', () => {
    const { obj: target, fd } = loadTarget();
    const before = sys.bpfSys.progs.size, trs = sys.bpfSys.trampolines!.count;
    let err: unknown;
    try { open('fexit_bpf2bpf_typed').load(sys.bpfSys, { ...sys.objectLoadOptions, attachProgFd: fd }); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(LoadError);
    expect((err as LoadError).errno).toBe(-13);
    expect((err as LoadError).log).toContain("R1 invalid mem access 'inv'");
    expect(sys.bpfSys.progs.size).toBe(before);
    expect(sys.bpfSys.trampolines!.count).toBe(trs);
    target.close();
  });

  it('all-u64: ctx[0..4] and, for fexit, ctx[5] are readable; ctx[6] is not', () => {
    const { obj: target, fd } = loadTarget();
    const id = funcId(fd, 'test_pkt_access_subprog2');
    const ok = loadTracing({ attach_prog_fd: fd, attach_btf_id: id }, 'ldxdw %r0, [%r1+32]\nldxdw %r0, [%r1+40]\nmov %r0, 0\nexit');
    expect(ok.fd).toBeGreaterThan(0);
    files().close(ok.fd);
    const fentry = loadTracing({ attach_prog_fd: fd, attach_btf_id: id, expected_attach_type: 24 }, 'ldxdw %r0, [%r1+40]\nexit');
    expect(fentry.fd).toBe(-13);
    expect(fentry.log).toContain("func 'test_pkt_access_subprog2' doesn't have 6-th argument");
    const past = loadTracing({ attach_prog_fd: fd, attach_btf_id: id }, 'ldxdw %r0, [%r1+48]\nexit');
    expect(past.log).toContain("doesn't have 7-th argument");
    target.close();
  });
});

describe('typed access on a reliable target: only the kernel struct\'s own fields', () => {
  it.each([
    ['skb->len as 4 bytes', 'ldxdw %r1, [%r1+0]\nldxw %r0, [%r1+8]\nexit', 0, ''],
    ['skb->dev->ifindex (pointer walk)', 'ldxdw %r1, [%r1+0]\nldxdw %r1, [%r1+16]\nldxw %r0, [%r1+16]\nexit', 0, ''],
    ['skb->len as 2 bytes', 'ldxdw %r1, [%r1+0]\nldxh %r0, [%r1+8]\nexit', -13, 'cannot access 2 bytes in struct sk_buff field len that has size 4'],
    ['into a hole', 'ldxdw %r1, [%r1+0]\nldxb %r0, [%r1+15]\nexit', -22, "struct sk_buff doesn't have field at offset 15"],
    ['writing through it', 'ldxdw %r1, [%r1+0]\nstw [%r1+8], 1\nmov %r0, 0\nexit', -13, 'only read is supported'],
    ['the int return value as a pointer', 'ldxdw %r1, [%r1+8]\nldxw %r0, [%r1+0]\nexit', -13, "R1 invalid mem access 'inv'"],
    ['a negative offset', 'ldxdw %r1, [%r1+0]\nldxw %r0, [%r1-8]\nexit', -13, 'R1 is ptr_sk_buff invalid negative access: off=-8'],
  ])('%s', (_n, asm, errno, msg) => {
    const { obj: target, fd } = loadTarget();
    const r = loadTracing({ attach_prog_fd: fd, attach_btf_id: funcId(fd, 'test_pkt_access_subprog1') }, asm);
    if (errno) {
      expect(r.fd).toBe(errno);
      expect(r.log).toContain(msg);
    } else {
      expect(r.fd, r.log).toBeGreaterThan(0);
      files().close(r.fd);
    }
    target.close();
  });

  it('skb->dev->ifindex seen by fentry on the tc program during a test run is loopback\'s 1', () => {
    const { obj: target, fd } = loadTarget();
    const m = sys.bpfSys.call(BPF_MAP_CREATE, { map_type: 2, key_size: 4, value_size: 8, max_entries: 1 }).ret;
    const asm = `ldxdw %r1, [%r1+0]\nldxdw %r1, [%r1+16]\nldxw %r6, [%r1+16]\nstw [%r10-4], 0\nmov %r2, %r10\nadd %r2, -4\nlddw %r1, 0\n` +
      'call 1\njeq %r0, 0, +1\nstxdw [%r0+0], %r6\nmov %r0, 0\nexit';
    const insns = assemble(asm);
    const ld = insns.findIndex((i) => i.code === 0x18);
    insns[ld]!.src = 1; insns[ld]!.imm = m;
    const b = sys.bpfSys;
    const ui = b.stage(encode(insns)), lic = b.stage(Buffer.from('GPL\0'));
    const p = b.call(BPF_PROG_LOAD, { prog_type: 26, expected_attach_type: 24, insns: ui, insn_cnt: insns.length, license: lic, attach_prog_fd: fd, attach_btf_id: funcId(fd, 'test_pkt_access') }).ret;
    expect(p).toBeGreaterThan(0);
    const l = b.call(BPF_RAW_TRACEPOINT_OPEN, { name: 0, prog_fd: p }).ret;
    expect(testRun(fd).retval).toBe(0);
    const k = b.stage(new Uint8Array(4)), v = b.stage(new Uint8Array(8));
    expect(b.call(BPF_MAP_LOOKUP_ELEM, { map_fd: m, key: k, value: v }).ret).toBe(0);
    expect(sys.kernel.machine.mem.readU64(v)).toBe(1n);
    [l, p, m].forEach((x) => files().close(x));
    target.close();
  });
});

describe('refused inputs: the kernel\'s errno and message, nothing attached', () => {
  const check = (r: { fd: number; log: string }, errno: number, msg: string) => {
    expect(r.fd).toBe(errno);
    expect(r.log).toContain(msg);
  };
  let target: BpfObject, fd: number, entry: bigint;
  beforeAll(() => { ({ obj: target, fd } = loadTarget()); entry = sys.bpfSys.progFromFd(fd)!.prog.jit!.funcAddrs[0]!; });
  afterAll(() => target.close());
  const unchanged = (f: () => void) => {
    const progs = sys.bpfSys.progs.size, trs = sys.bpfSys.trampolines!.count, refs = sys.bpfSys.progFromFd(fd)!.refcnt;
    f();
    expect(sys.bpfSys.progs.size).toBe(progs);
    expect(sys.bpfSys.trampolines!.count).toBe(trs);
    expect(sys.bpfSys.progFromFd(fd)!.refcnt).toBe(refs);
    expect(bytesAt(entry)).toBe(NOP5);
  };

  it('attach_prog_fd of a map: -EINVAL; of no file: -EBADF (bpf_prog_get)', () => unchanged(() => {
    const m = sys.bpfSys.call(BPF_MAP_CREATE, { map_type: 2, key_size: 4, value_size: 8, max_entries: 1 }).ret;
    expect(loadTracing({ attach_prog_fd: m, attach_btf_id: funcId(fd, 'test_pkt_access') }).fd).toBe(-22);
    expect(loadTracing({ attach_prog_fd: 999, attach_btf_id: 1 }).fd).toBe(-9);
    files().close(m);
  }));

  it('no btf id', () => unchanged(() => check(loadTracing({ attach_prog_fd: fd, attach_btf_id: 0 }), -22, 'Tracing programs must provide btf_id')));

  it('a btf id past the target\'s BTF', () => unchanged(() => check(loadTracing({ attach_prog_fd: fd, attach_btf_id: 9999 }), -22, 'attach_btf_id 9999 is invalid')));

  it('a btf id in the target\'s BTF that is not one of its functions', () => unchanged(() => {
    const skb = sys.bpfSys.progFromFd(fd)!.btf!.btf.findByNameKind('__sk_buff', BTF_KIND.STRUCT)!.id;
    check(loadTracing({ attach_prog_fd: fd, attach_btf_id: skb }), -22, "Subprog __sk_buff doesn't exist");
  }));

  it('a raw_tp program with attach_prog_fd', () => unchanged(() =>
    check(loadTracing({ attach_prog_fd: fd, attach_btf_id: funcId(fd, 'test_pkt_access'), expected_attach_type: 23 }), -22, 'Only FENTRY/FEXIT progs are attachable to another BPF prog')));

  it('a target that is not JIT-compiled', () => {
    const { obj, fd: ifd } = loadTarget(false);
    const progs = sys.bpfSys.progs.size;
    check(loadTracing({ attach_prog_fd: ifd, attach_btf_id: funcId(ifd, 'test_pkt_access') }), -22, 'Can trace only JITed BPF progs');
    expect(sys.bpfSys.progs.size).toBe(progs);
    obj.close();
  });

  it('a target without BTF', () => {
    const b = sys.bpfSys;
    const insns = assemble('mov %r0, 0\nexit');
    const raw = b.call(BPF_PROG_LOAD, { prog_type: 6, insns: b.stage(encode(insns)), insn_cnt: 2, license: b.stage(Buffer.from('GPL\0')) }).ret;
    check(loadTracing({ attach_prog_fd: raw, attach_btf_id: 1 }), -22, 'FENTRY/FEXIT program can only be attached to another program annotated with BTF');
    files().close(raw);
  });

  it('a tracing program as the target of a tracing program', () => {
    const tracer = open('fexit_bpf2bpf').load(sys.bpfSys, { ...sys.objectLoadOptions, attachProgFd: fd });
    const t = tracer.findProgram('test_main')!.fd;
    const progs = sys.bpfSys.progs.size;
    check(loadTracing({ attach_prog_fd: t, attach_btf_id: funcId(t, 'test_main') }), -22, 'Cannot recursively attach');
    expect(sys.bpfSys.progs.size).toBe(progs);
    tracer.close();
  });
});

describe('lifetimes: nothing left behind', () => {
  it('closing the traced target first: it lives while traced, then everything goes', () => {
    const b = sys.bpfSys, slab = sys.kernel.slab;
    const base = { progs: b.progs.size, trs: b.trampolines!.count, slab: slab.inUse, fds: files().count, pages: sys.kernel.execmem.pagesInUse };
    const { obj: target, fd } = loadTarget();
    const id = b.progFromFd(fd)!.id;
    const tracer = open('fexit_bpf2bpf').load(b, { ...sys.objectLoadOptions, attachProgFd: fd });
    tracer.attachTracing();
    target.close(); // the user's fd goes; the tracing programs hold the target
    const again = b.call(BPF_PROG_GET_FD_BY_ID, { start_id: id }).ret;
    expect(again).toBeGreaterThan(0);
    expect(testRun(again).retval).toBe(0);
    expect(readGlobals(sys, tracer).test_result_subprog2).toBe('1');
    files().close(again);
    expect(b.progs.find(id)).toBeDefined();
    tracer.close(); // links, then programs: the last reference to the target goes with them
    expect(b.progs.find(id)).toBeUndefined();
    expect(b.progs.size).toBe(base.progs);
    expect(b.trampolines!.count).toBe(base.trs);
    expect(slab.inUse).toBe(base.slab);
    expect(files().count).toBe(base.fds);
    expect(sys.kernel.execmem.pagesInUse).toBe(base.pages); // JIT images and trampoline pages
  });

  it('attach/detach cycles on a subprogram: nop, call, nop; no page or id kept', () => {
    const b = sys.bpfSys;
    const { obj: target, fd } = loadTarget();
    const site = b.progFromFd(fd)!.prog.jit!.funcAddrs[1]!;
    const id = funcId(fd, 'test_pkt_access_subprog1');
    const trs = b.trampolines!.count, progs = b.progs.size, pages = sys.kernel.execmem.pagesInUse;
    for (let i = 0; i < 5; i++) {
      const p = loadTracing({ attach_prog_fd: fd, attach_btf_id: id, expected_attach_type: 24 }).fd;
      const l = b.call(BPF_RAW_TRACEPOINT_OPEN, { name: 0, prog_fd: p }).ret;
      expect(bytesAt(site).slice(0, 2)).toBe('e8');
      expect(testRun(fd).retval).toBe(0);
      files().close(l);
      expect(bytesAt(site)).toBe(NOP5);
      files().close(p);
      expect(b.trampolines!.count).toBe(trs);
      expect(b.progs.size).toBe(progs);
      expect(sys.kernel.execmem.pagesInUse).toBe(pages);
    }
    target.close();
  });
});
