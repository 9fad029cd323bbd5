/**
 * @fileoverview The trampoline of each kernel generation, executed: under every profile the
 * selftests fentry_test/fexit_test (JIT and interpreter), the program limit (40, 38 from 5.12),
 * 5.12's image per update (pages come back, an image with a call inside stays until it is left),
 * the recursion guard (recursion_misses), fmod_ret (5.7) and the cookie's run context (5.19).
 * Programs driven through the TrampolineManager directly are natives (TypeScript functions the
 * guest calls), so the tests see exactly what the trampoline passed.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { boot, type System } from '../../index.ts';
import { BpfObject } from '../../bpf/libbpf/load.ts';
import { BPF_PROG_LOAD, BPF_PROG_TEST_RUN, BPF_RAW_TRACEPOINT_OPEN, BPF_MAP_LOOKUP_ELEM } from '../../bpf/syscall/attr.ts';
import { BTF_KIND } from '../../bpf/btf/btf.ts';
import { PROG_STANDIN, type TrampProg } from '../../bpf/arch.ts';
import type { BpfTrampoline, TrampKind, TrampLinkable } from '../../bpf/trampoline.ts';
import { currentBpfCtxSlot } from '../../bpf/helpers/tracing_func.ts';
import { assemble } from '../../bpf/asm/assembler.ts';
import { encode } from '../../bpf/isa/insn.ts';
import { KERNEL_VERSIONS, KERNEL_PROFILES, type KernelVersion } from '../../kernel/profile.ts';

const obj = (n: string): string => fileURLToPath(new URL(`../../images/build/bpf/${n}.bpf.o`, import.meta.url));
const NOP5 = '0f1f440000';

/** One booted machine per profile, with the helpers the cases share. */
function machine(v: KernelVersion) {
  let sys!: System;
  let seq = 0;
  const h = {
    get sys() { return sys; },
    async boot() { sys = await boot({ kernel: v }); },
    close() { sys.close(); },
    files: () => sys.kernel.current.files,
    site: (fn: string): string => Buffer.from(sys.kernel.machine.mem.read(sys.kernel.addressOf(fn), 5)).toString('hex'),
    /** PROG_LOAD of `r0 = 0; exit` as fentry (24) or fexit (25) on `fn`. */
    load(fn: string, fexit: boolean): number {
      const b = sys.bpfSys, insns = assemble('mov %r0, 0\nexit');
      const ui = b.stage(encode(insns)), lic = b.stage(Buffer.from('GPL\0'));
      const fd = b.call(BPF_PROG_LOAD, {
        prog_type: 26, expected_attach_type: fexit ? 25 : 24, attach_btf_id: sys.btf.findByNameKind(fn, BTF_KIND.FUNC)!.id,
        insns: ui, insn_cnt: insns.length, license: lic,
      }).ret;
      b.unstage(ui); b.unstage(lic);
      return fd;
    },
    attach: (fd: number): number => sys.bpfSys.call(BPF_RAW_TRACEPOINT_OPEN, { name: 0, prog_fd: fd }).ret,
    /** A program that is a native: `fn(ctx)` runs in TypeScript when the trampoline calls it. */
    nativeProg(fn: (ctx: bigint, self: TrampProg) => bigint, extra: Partial<TrampProg> = {}, callGetFuncIp = false): TrampLinkable & { trampProg: TrampProg } {
      const k = sys.kernel;
      const progAddr = k.slab.kzalloc(PROG_STANDIN.size)!;
      const p: TrampProg = { bpfFunc: 0n, progAddr, ...extra };
      p.bpfFunc = k.defineNative(`test_prog_${v.replace('.', '_')}_${seq++}`, (ctx) => fn(ctx, p), 1).address;
      return { name: `native${seq}`, trampProg: p, callGetFuncIp };
    },
    /** The trampoline of a kernel function, made directly (a key no BTF id uses). */
    tramp(fn: string, model = { retSize: 4, nrArgs: 1, argSize: [4] }): BpfTrampoline {
      return sys.bpfSys.trampolines!.lookup(0x7000_0000n + BigInt(seq++), { addr: sys.kernel.addressOf(fn), model, name: fn });
    },
  };
  return h;
}

describe.each(KERNEL_VERSIONS)('kernel %s', (v) => {
  const t = machine(v);
  const gen = KERNEL_PROFILES[v].trampoline;
  beforeAll(async () => { await t.boot(); });
  afterAll(() => t.close());

  it.each(['jit', 'interp'] as const)('selftests fentry_test and fexit_test (%s): every bpf_fentry_testN seen right', (engine) => {
    const sys = t.sys;
    sys.bpfSys.jitEnabled = engine === 'jit';
    for (const name of ['fentry_test', 'fexit_test']) {
      const o = BpfObject.open(new Uint8Array(readFileSync(obj(name))), `${name}.bpf.o`, sys.objectLoadOptions).load(sys.bpfSys, sys.objectLoadOptions);
      try {
        const links = [...o.programs.values()].map((p) => t.attach(p.fd));
        expect(links.every((l) => l > 0)).toBe(true);
        expect(sys.bpfSys.call(BPF_PROG_TEST_RUN, { prog_fd: [...o.programs.values()][0]!.fd }).ret).toBe(0);
        const b = sys.bpfSys;
        const k = b.stage(new Uint8Array(4)), val = b.stage(new Uint8Array(48));
        expect(b.call(BPF_MAP_LOOKUP_ELEM, { map_fd: o.findMap(`${name}.bss`)!.fd, key: k, value: val }).ret).toBe(0);
        expect([0, 1, 2, 3, 4, 5].map((i) => sys.kernel.machine.mem.readU64(val + BigInt(8 * i)))).toEqual([1n, 1n, 1n, 1n, 1n, 1n]);
        b.unstage(k); b.unstage(val);
        links.forEach((l) => t.files().close(l));
        expect(t.site('bpf_fentry_test1')).toBe(NOP5);
      } finally {
        o.close();
      }
    }
    sys.bpfSys.jitEnabled = true;
  });

  it(`${gen.maxProgs} programs attach (fentry and fexit together), the next gets -E2BIG`, () => {
    const progs = Array.from({ length: gen.maxProgs + 1 }, (_, i) => t.load('bpf_fentry_test1', i % 2 === 1));
    const links = progs.slice(0, gen.maxProgs).map(t.attach);
    expect(links.every((l) => l > 0)).toBe(true);
    expect(t.attach(progs[gen.maxProgs]!)).toBe(-7);
    expect(t.sys.kernel.call('bpf_fentry_test1', [1])).toBe(2n);
    links.forEach((l) => t.files().close(l));
    progs.forEach((p) => t.files().close(p));
  });

  it('attach/detach cycles give every page back; from 5.12 each update runs from a new image', () => {
    const k = t.sys.kernel, tr = t.sys.bpfSys.trampolines!;
    const before = { exec: k.execmem.pagesInUse, slab: k.slab.inUse };
    const seen = new Set<bigint>();
    for (let i = 0; i < 6; i++) {
      const ps = [t.load('bpf_fentry_test2', false), t.load('bpf_fentry_test2', true)];
      const ls = ps.map((p) => { const l = t.attach(p); seen.add(k.addressOf('bpf_fentry_test2') + 5n + BigInt(new DataView(k.machine.mem.read(k.addressOf('bpf_fentry_test2') + 1n, 4).buffer).getInt32(0, true))); return l; });
      expect(k.call('bpf_fentry_test2', [2, 3])).toBe(5n);
      ls.forEach((l) => t.files().close(l));
      ps.forEach((p) => t.files().close(p));
    }
    expect(tr.retiredImages).toBe(0);
    expect({ exec: k.execmem.pagesInUse, slab: k.slab.inUse }).toEqual(before);
    // 5.5: the two halves of a page; 5.12: a page of its own per update.
    expect([...seen].every((a) => (gen.imagePerUpdate ? a % 4096n === 0n : a % 2048n === 0n))).toBe(true);
    if (!gen.imagePerUpdate) expect([...seen].some((a) => a % 4096n === 2048n)).toBe(true);
  });
});

describe.each(['5.12', '5.19', '6.6'] as const)('the recursion guard (kernel %s)', (v) => {
  const t = machine(v);
  beforeAll(async () => { await t.boot(); });
  afterAll(() => t.close());

  it('a program whose traced function runs again inside it: skipped there, recursion_misses 1', () => {
    const k = t.sys.kernel, mgr = t.sys.bpfSys.trampolines!;
    const tr = t.tramp('bpf_fentry_test1');
    const seen: bigint[] = [];
    let inner: bigint | undefined;
    const p = t.nativeProg((ctx) => {
      seen.push(k.machine.mem.readU64(ctx)); // ctx[0] = a
      if (inner === undefined) inner = k.call('bpf_fentry_test1', [41]); // re-enters the trampoline
      return 0n;
    });
    expect(mgr.linkProg(tr, p, 'fentry')).toBe(0);
    expect(k.call('bpf_fentry_test1', [1])).toBe(2n);
    expect(inner).toBe(42n); // the nested call ran the function, without the program
    expect(seen).toEqual([1n]);
    const mem = k.machine.mem, pa = p.trampProg.progAddr;
    expect(mem.readU64(pa + BigInt(PROG_STANDIN.misses))).toBe(1n);
    expect(mem.readU32(pa + BigInt(PROG_STANDIN.active))).toBe(0); // entered twice, left twice
    expect(k.call('bpf_fentry_test1', [5])).toBe(6n); // and it runs again afterwards
    expect(seen).toEqual([1n, 5n]); // the nested run (41) was skipped
    mgr.unlinkProg(tr, p, 'fentry');
    mgr.put(tr);
  });
});

describe.each(['5.7', '5.12', '6.1', '6.6'] as const)('fmod_ret (kernel %s)', (v) => {
  const t = machine(v);
  beforeAll(async () => { await t.boot(); });
  afterAll(() => t.close());

  it('a non-zero return skips the original function and becomes its return value; fexit sees it', () => {
    const k = t.sys.kernel, mgr = t.sys.bpfSys.trampolines!, mem = k.machine.mem;
    const tr = t.tramp('bpf_fentry_test1');
    let ret = 0n;
    const fexitSaw: bigint[] = [];
    const fm = t.nativeProg((ctx) => { expect(mem.readU64(ctx + 8n)).toBe(0n); return ret; }); // ctx[1]: 0 for the first fmod_ret
    const fx = t.nativeProg((ctx) => { fexitSaw.push(mem.readU64(ctx + 8n)); return 0n; });
    expect(mgr.linkProg(tr, fm, 'fmod_ret')).toBe(0);
    expect(mgr.linkProg(tr, fx, 'fexit')).toBe(0);
    expect(k.call('bpf_fentry_test1', [1])).toBe(2n); // 0: the function runs
    ret = 7n;
    expect(k.call('bpf_fentry_test1', [1])).toBe(7n); // skipped, 7 returned
    expect(fexitSaw).toEqual([2n, 7n]);
    mgr.unlinkProg(tr, fx, 'fexit');
    mgr.unlinkProg(tr, fm, 'fmod_ret');
    mgr.put(tr);
    expect(t.site('bpf_fentry_test1')).toBe(NOP5);
  });
});

describe('fmod_ret before 5.7', () => {
  const t = machine('5.5');
  beforeAll(async () => { await t.boot(); });
  afterAll(() => t.close());
  it('the manager refuses the kind: -EINVAL, nothing patched', () => {
    const tr = t.tramp('bpf_fentry_test1');
    expect(t.sys.bpfSys.trampolines!.linkProg(tr, t.nativeProg(() => 0n), 'fmod_ret' as TrampKind)).toBe(-22);
    expect(t.site('bpf_fentry_test1')).toBe(NOP5);
    t.sys.bpfSys.trampolines!.put(tr);
  });
});

describe('5.12: an image with a call inside outlives its replacement', () => {
  const t = machine('5.12');
  beforeAll(async () => { await t.boot(); });
  afterAll(() => t.close());

  it('replaced during the call: the old image skips its fexit programs (jmp at ip_after_call), freed once left', () => {
    const k = t.sys.kernel, mgr = t.sys.bpfSys.trampolines!;
    const tr = t.tramp('bpf_fentry_test1');
    const pages = k.execmem.pagesInUse;
    let fexitRuns = 0;
    const fx = t.nativeProg(() => { fexitRuns++; return 0n; });
    let second: TrampLinkable | undefined;
    // An fmod_ret program (inside __bpf_tramp_enter's reference) links another program: update.
    const fm = t.nativeProg(() => {
      if (!second) { second = t.nativeProg(() => 0n); expect(mgr.linkProg(tr, second, 'fentry')).toBe(0); }
      return 0n;
    });
    expect(mgr.linkProg(tr, fx, 'fexit')).toBe(0);
    expect(mgr.linkProg(tr, fm, 'fmod_ret')).toBe(0);
    const old = tr.cur!;
    expect(k.call('bpf_fentry_test1', [1])).toBe(2n);
    expect(tr.cur).not.toBe(old);
    expect(fexitRuns).toBe(0); // the old image jumped over its fexit program
    expect(mgr.retiredImages).toBeGreaterThanOrEqual(1); // left, but retired from inside a guest call
    expect(k.machine.mem.readU64(old.im)).toBe(0n); // __bpf_tramp_exit ran
    expect(mgr.reap()).toBeGreaterThanOrEqual(1);
    expect(mgr.retiredImages).toBe(0);
    expect(k.call('bpf_fentry_test1', [1])).toBe(2n); // the new image runs fexit
    expect(fexitRuns).toBe(1);
    for (const [p, kind] of [[second!, 'fentry'], [fm, 'fmod_ret'], [fx, 'fexit']] as const) mgr.unlinkProg(tr, p, kind);
    mgr.put(tr);
    expect(k.execmem.pagesInUse).toBe(pages);
  });
});

describe.each(['5.19', '6.1', '6.6'] as const)('the run context (kernel %s)', (v) => {
  const t = machine(v);
  beforeAll(async () => { await t.boot(); });
  afterAll(() => t.close());

  it('current->bpf_ctx points at the program\'s bpf_tramp_run_ctx (its cookie first) while it runs, restored after', () => {
    const k = t.sys.kernel, mgr = t.sys.bpfSys.trampolines!, mem = k.machine.mem;
    const slot = currentBpfCtxSlot(k);
    const tr = t.tramp('bpf_fentry_test1');
    const saw: bigint[] = [];
    const a = t.nativeProg(() => { saw.push(mem.readU64(mem.readU64(slot))); return 0n; }, { cookie: 0x1234_5678_9abc_def0n });
    const b = t.nativeProg(() => { saw.push(mem.readU64(mem.readU64(slot))); return 0n; }, { cookie: 7n });
    expect(mgr.linkProg(tr, a, 'fentry')).toBe(0);
    expect(mgr.linkProg(tr, b, 'fexit')).toBe(0);
    expect(k.call('bpf_fentry_test1', [1])).toBe(2n);
    expect(saw).toEqual([0x1234_5678_9abc_def0n, 7n]);
    expect(mem.readU64(slot)).toBe(0n);
    mgr.unlinkProg(tr, b, 'fexit'); mgr.unlinkProg(tr, a, 'fentry'); mgr.put(tr);
  });

  it('IP_ARG when a program calls bpf_get_func_ip: ctx[-2] is the function\'s address', () => {
    const k = t.sys.kernel, mgr = t.sys.bpfSys.trampolines!, mem = k.machine.mem;
    const tr = t.tramp('bpf_fentry_test1');
    let ip = 0n, cnt = 0n;
    const p = t.nativeProg((ctx) => { ip = mem.readU64(ctx - 16n); cnt = mem.readU64(ctx - 8n); return 0n; }, {}, true);
    expect(mgr.linkProg(tr, p, 'fentry')).toBe(0);
    k.call('bpf_fentry_test1', [1]);
    expect(ip).toBe(k.addressOf('bpf_fentry_test1'));
    expect(cnt).toBe(1n); // nr_args at ctx[-1]
    mgr.unlinkProg(tr, p, 'fentry'); mgr.put(tr);
  });
});
