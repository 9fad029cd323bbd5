/**
 * @fileoverview The calling-convention harness: a fixed-seed sample of generated cases passes
 * in every mode (fentry, fexit, both, 40 programs); a deliberately wrong trampoline is caught
 * with a reproducer naming the slot; and the kernel's own behaviours the harness reports
 * (docs/ABI.md) are pinned with exact values.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { boot, type System } from '../../index.ts';
import { AbiHarness, MODES, type CaseResult } from '../../cli/abifuzz/harness.ts';
import { genCase, convert, ctype, makeCase, prototype, TYPES, VOID, MAX_ARGS, withArgs, emitC } from '../../cli/abifuzz/gen.ts';
import { shardRange, formatReproducer, minimise, runRange } from '../../cli/abifuzz/campaign.ts';
import { installTrampolineVariant } from '../../cli/abifuzz/broken.ts';
import { buildModule } from '../../cli/abifuzz/build.ts';
import { enableModuleBtf } from '../../bpf/btf_module.ts';
import { BTF_KIND } from '../../bpf/btf/btf.ts';
import { BPF_PROG_LOAD, BPF_RAW_TRACEPOINT_OPEN, BPF_BTF_GET_FD_BY_ID } from '../../bpf/syscall/attr.ts';
import { encode } from '../../bpf/isa/insn.ts';
import { ldxMem, mov64Imm, exit } from '../../bpf/isa/build.ts';
import { BPF_DW } from '../../bpf/isa/opcodes.ts';

/** The sample `npm test` runs: SEED's cases [0, SAMPLE), BATCH per gcc run. */
const SEED = 20251125, SAMPLE = 300, BATCH = 50;

let sys: System;
let h: AbiHarness;
beforeAll(async () => {
  sys = await boot();
  h = new AbiHarness(sys, { details: true });
});
afterAll(() => { h.close(); sys.close(); });

const failed = (r: CaseResult): boolean => r.failures.length > 0 || r.error !== undefined;

describe('the generator', () => {
  it('a case depends on (seed, index) only', () => {
    expect(genCase(7, 123)).toEqual(genCase(7, 123));
    expect(genCase(7, 123)).not.toEqual(genCase(8, 123));
    expect(emitC([genCase(7, 1), genCase(7, 2)])).toBe(emitC([genCase(7, 1), genCase(7, 2)]));
  });

  it('shards split the cases into contiguous parts that cover them once', () => {
    const parts = [1, 2, 3].map((i) => shardRange(10, [i, 3]));
    expect(parts).toEqual([[0, 3], [3, 6], [6, 10]]);
    expect(shardRange(10)).toEqual([0, 10]);
  });

  it.each([
    ['s8', 0x1ffn, 0xffffffffffffffffn], ['u8', 0xffffffffffffff80n, 0x80n], ['char', 0x7fn, 0x7fn],
    ['short', 0x18000n, 0xffffffffffff8000n], ['u16', -1n, 0xffffn], ['int', 0xffffffff00000005n, 5n],
    ['int', 0x80000000n, 0xffffffff80000000n], ['unsigned int', -1n, 0xffffffffn], ['_Bool', 0x100n, 1n], ['_Bool', 0n, 0n],
    ['enum abi_es', 0xffffffffn, 0xffffffffffffffffn], ['enum abi_eu', 0x1_00000003n, 3n], ['enum abi_ebig', 0x80000000n, 0x80000000n],
    ['void *', -1n, 0xffffffffffffffffn], ['s64', 0x8000000000000000n, 0x8000000000000000n],
  ] as const)('(u64)(%s)%s = %s', (ty, raw, want) => {
    expect(convert(ctype(ty), raw)).toBe(want);
  });

  it(`the sample (seed ${SEED}, ${SAMPLE} cases) covers every type, as argument and return, and 0..${MAX_ARGS} arguments`, () => {
    const cases = Array.from({ length: SAMPLE }, (_, i) => genCase(SEED, i));
    const argTypes = new Set(cases.flatMap((c) => c.args.map((t) => t.c)));
    const retTypes = new Set(cases.map((c) => c.ret.c));
    for (const t of TYPES) {
      expect(argTypes.has(t.c), t.c).toBe(true);
      expect(retTypes.has(t.c), t.c).toBe(true);
    }
    expect(retTypes.has(VOID.c)).toBe(true);
    expect(new Set(cases.map((c) => c.args.length))).toEqual(new Set([0, 1, 2, 3, 4, 5, 6]));
    const vals = cases.flatMap((c) => c.values);
    expect(vals.some((v) => v.source === 'const') && vals.some((v) => v.source === 'param')).toBe(true);
    // Registers with garbage above a narrow argument, which the C conversion drops.
    expect(vals.filter((v) => v.raw !== v.value).length).toBeGreaterThan(50);
  });
});

describe(`fixed-seed sample: seed ${SEED}, ${SAMPLE} cases, modes ${MODES.join('/')}`, () => {
  const batches = Array.from({ length: SAMPLE / BATCH }, (_, b) => [b * BATCH, (b + 1) * BATCH - 1] as const);
  it.each(batches)('cases %i..%i: every argument, return value, register and rsp as the caller passed them', (lo, hi) => {
    const cases = Array.from({ length: hi - lo + 1 }, (_, i) => genCase(SEED, lo + i));
    const { results } = h.runBatch(cases);
    const bad = results.filter(failed);
    expect(bad.map((r) => formatReproducer(r)).join('\n\n')).toBe('');
    expect(results.length).toBe(cases.length);
    // Each case ran 1 + 1 + 2 + 40 programs, each recording once.
    expect(results.every((r) => r.records!.length === 44)).toBe(true);
  });

  it('the sample reported the kernel\'s behaviours as findings, not failures', () => {
    const kinds = new Set(h.findings.keys());
    expect(kinds).toEqual(new Set(['narrow-arg-slot-upper-bytes', 'narrow-ret-upper-bits', 'ctx-access-refused', 'body-rsp-alignment']));
  });
});

describe('the harness fails on a wrong trampoline', () => {
  it('arg 0 saved from rsi: every case with an argument fails, the reproducer names slot arg0', () => {
    const restore = installTrampolineVariant(sys, 'wrong-arg-reg');
    let results: CaseResult[];
    try {
      results = h.runBatch(Array.from({ length: 12 }, (_, i) => genCase(SEED, 1000 + i))).results;
    } finally { restore(); }
    for (const r of results) {
      if (!r.case.args.length) { expect(failed(r), prototype(r.case)).toBe(false); continue; }
      // Unless rsi happened to hold arg 0's value, every mode sees it, and the callee too once
      // fentry programs made the trampoline restore the registers from the slots.
      const slots = new Set(r.failures.map((f) => `${f.mode}/${f.slot}`));
      for (const mode of MODES) expect(slots.has(`${mode}/arg0`), `${prototype(r.case)} ${mode}`).toBe(true);
      expect(slots.has('fentry/callee arg0')).toBe(true);
      const text = formatReproducer(r);
      expect(text).toMatch(/slot arg0 \(fentry#0\), fentry: expected 0x[0-9a-f]+, got 0x[0-9a-f]+/);
      expect(text).toMatch(/trampoline:\n.*push\s+rbp/);
      expect(text).toContain(`--replay ${SEED}:${r.case.index}`);
    }
    expect(results.filter(failed).length).toBeGreaterThan(8);
  });

  it('the reproducer is minimised: only the argument that differs is left', () => {
    const c = makeCase(2000, [ctype('int'), ctype('u8'), ctype('void *')], ctype('long'), [0x11n, 0x22n, 0x33n]);
    const restore = installTrampolineVariant(sys, 'wrong-arg-reg');
    try {
      const r = h.runBatch([c]).results[0]!;
      expect(r.failures.find((f) => f.mode === 'fentry' && f.slot === 'arg0')).toMatchObject({ expected: 0x11n, got: 0x22n });
      const m = minimise(h, r);
      expect(m.case.args.map((t) => t.c)).toEqual(['int']);
      expect(m.failures.some((f) => f.slot === 'arg0')).toBe(true);
      expect(formatReproducer(m, { minimisedFrom: c })).toMatch(/minimised from: long abi_callee_2000\(int a0, u8 a1, void \* a2\)\n  prototype: long abi_callee_2000\(int a0\)/);
    } finally { restore(); }
  });

  it('rbx not restored: the callee-saved register slot is named', () => {
    const restore = installTrampolineVariant(sys, 'clobber-callee-saved');
    try {
      const r = h.runBatch([makeCase(2001, [ctype('u64')], ctype('u64'), [5n])]).results[0]!;
      expect(r.failures.filter((f) => f.slot === 'rbx').map((f) => f.mode)).toEqual(MODES);
      expect(r.failures.find((f) => f.slot === 'rbx')!.note).toBe('callee-saved register changed across the call');
    } finally { restore(); }
  });

  it('a campaign over the wrong trampoline ends with failures counted', async () => {
    const rep = await runRange({ seed: 3, cases: 4, modes: ['fentry'], variant: 'wrong-arg-reg' }, 0, 4);
    expect(rep.failed).toBe(genCaseCount(3, 4, (n) => n > 0));
    expect(rep.passed + rep.failed).toBe(4);
    expect(rep.failures[0]!.slots.some((s) => s.slot === 'arg0')).toBe(true);
  });
});

const genCaseCount = (seed: number, n: number, pred: (nargs: number) => boolean): number =>
  Array.from({ length: n }, (_, i) => genCase(seed, i)).filter((c) => pred(c.args.length)).length;

describe('what the kernel really does (docs/ABI.md)', () => {
  it('v5.5 stores a narrow argument with its own width: the rest of its u64 slot is stack (poisoned 0x5a)', () => {
    const c = makeCase(3000, [ctype('u8'), ctype('s16'), ctype('int'), ctype('_Bool'), ctype('u64')], ctype('u64'),
      [0xffffffffffffff80n, 0xabcd1234n, -5n, 0x301n, 0x0123456789abcdefn]);
    const r = h.runBatch([c], ['fentry']).results[0]!;
    expect(failed(r)).toBe(false);
    const rec = r.records![0]!;
    expect(rec.cast).toEqual([0x80n, 0x1234n, 0xfffffffffffffffbn, 1n, 0x0123456789abcdefn]);
    expect(rec.raw).toEqual([0x5a5a5a5a5a5a5a80n, 0x5a5a5a5a5a5a1234n, 0x5a5a5a5afffffffbn, 0x5a5a5a5a5a5a5a01n, 0x0123456789abcdefn]);
    expect(r.observed!.filter((o) => o.kind === 'narrow-arg-slot-upper-bytes').length).toBe(4);
  });

  it('fexit sees rax as the callee left it: a narrow return\'s upper bits are the callee\'s', () => {
    const c = makeCase(3001, [ctype('u64')], ctype('signed char'), [7n]);
    const r = h.runBatch([c], ['fexit']).results[0]!;
    expect(failed(r)).toBe(false);
    const rec = r.records![0]!;
    expect(rec.castRet).toBe(c.expectedRet);
    expect(BigInt.asIntN(8, rec.rawRet!)).toBe(BigInt.asIntN(8, c.expectedRet));
    // gcc returned `(signed char)h` in al with h's other bits above it.
    expect(rec.rawRet).not.toBe(rec.castRet);
  });

  it('with fexit programs the body runs 40 + 8*nr_args bytes deeper: off the 16-byte alignment for an even count', () => {
    const cases = [0, 1, 2, 3, 4, 5, 6].map((n) => makeCase(3010 + n, Array(n).fill(ctype('u64')), ctype('u64'), [1n, 2n, 3n, 4n, 5n, 6n]));
    const results = h.runBatch(cases, ['fentry', 'fexit']).results;
    for (const r of results) {
      expect(failed(r)).toBe(false);
      const mis = (r.observed ?? []).filter((o) => o.kind === 'body-rsp-alignment');
      // fentry only: the body runs on the caller's frame (the trampoline returned to it).
      expect(mis.map((o) => o.mode)).toEqual(r.case.args.length % 2 === 0 ? ['fexit'] : []);
    }
  });

  it('btf_ctx_access (v5.5) refuses enum and non-struct pointer arguments; bpf_probe_read reads them', () => {
    const c = makeCase(3020, ['enum abi_es', 'const void *', 'u32 *', 'char *', 'void *', 'struct abi_s *', 'const struct abi_s *'].slice(0, 6).map(ctype), ctype('enum abi_eu'),
      [0xffffffffn, 0x1000n, 0x2000n, 0x3000n, 0x4000n, 0x5000n]);
    const r = h.runBatch([c], ['fexit']).results[0]!;
    expect(failed(r)).toBe(false);
    const refused = r.observed!.filter((o) => o.kind === 'ctx-access-refused').map((o) => /ctx\[(\d)\] \((.*)\)/.exec(o.detail)![2]);
    expect(refused).toEqual(['enum abi_es', 'const void *', 'u32 *', 'char *', 'enum abi_eu']);
    expect(r.records![0]!.cast).toEqual([0xffffffffffffffffn, 0x1000n, 0x2000n, 0x3000n, 0x4000n, 0x5000n]);
  });

  it('the verifier\'s message for a direct read of an enum argument, and 7 arguments: -ENOTSUPP at attach', () => {
    const mods = enableModuleBtf(sys.bpfSys, sys.btf);
    const src = `#include "kernel.h"
enum e { E0, E1 = -1 };
noinline u64 seven(u64 a, u64 b, u64 c, u64 d, u64 e, u64 f, u64 g) { return a + b + c + d + e + f + g; }
noinline u64 takes_enum(enum e x) { return x; }
`;
    const mod = mods.modules.load(buildModule(src).bytes, { name: 'abi_facts', requireBtf: true });
    const b = sys.bpfSys, files = sys.kernel.current.files;
    const btf = mods.of(mod)!.btf;
    const btfFd = b.call(BPF_BTF_GET_FD_BY_ID, { start_id: mods.of(mod)!.obj.id }).ret;
    const load = (fn: string, insns = [mov64Imm(0, 0), exit()]): { fd: number; log: string } => {
      const ui = b.stage(encode(insns)), lic = b.stage(Buffer.from('GPL\0')), log = b.stage(new Uint8Array(512));
      const fd = b.call(BPF_PROG_LOAD, {
        prog_type: 26, expected_attach_type: 24, attach_btf_id: btf.findByNameKind(fn, BTF_KIND.FUNC)!.id, attach_prog_fd: btfFd,
        insns: ui, insn_cnt: insns.length, license: lic, log_level: 1, log_size: 512, log_buf: log,
      }).ret;
      const text = sys.kernel.machine.mem.readCString(log, 512);
      b.unstage(ui); b.unstage(lic); b.unstage(log);
      return { fd, log: text };
    };
    try {
      const e = load('takes_enum', [ldxMem(BPF_DW, 0, 1, 0), exit()]);
      expect(e.fd).toBe(-13);
      // v5.5's btf_ctx_access names the argument's type and its kind (btf_kind_str), not the parameter.
      expect(e.log).toContain("func 'takes_enum' arg0 'e' has type ENUM. Only pointer access is allowed");
      // btf_distill_func_proto takes up to 11 arguments; v5.5's x86-64 trampoline only 6.
      const s = load('seven');
      expect(s.fd).toBeGreaterThan(0);
      expect(b.call(BPF_RAW_TRACEPOINT_OPEN, { name: 0, prog_fd: s.fd }).ret).toBe(-524);
      files.close(s.fd);
    } finally {
      files.close(btfFd);
      expect(mods.modules.rmmod('abi_facts')).toBe(0);
    }
  });

  it('withArgs keeps the values and recomputes the return', () => {
    const c = makeCase(9, [ctype('int'), ctype('u8')], ctype('u64'), [1n, 2n]);
    const w = withArgs(c, [1]);
    expect(w.values).toEqual([c.values[1]]);
    expect(w.args).toEqual([c.args[1]]);
    expect(w.expectedRet).toBe(makeCase(9, [ctype('u8')], ctype('u64'), [2n]).expectedRet);
  });
});
