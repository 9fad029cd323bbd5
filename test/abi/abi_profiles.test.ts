/**
 * @fileoverview The calling-convention harness under every kernel profile: the same fixed-seed
 * cases, drawn with the widest profile's shapes (structs by value from 6.1, up to 12 argument
 * slots from 6.6), pass under each profile that can trace them and are skipped under the others;
 * and the kernel's errno for the shapes a profile cannot trace, which is what skipping stands for.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { boot, type System } from '../../index.ts';
import { AbiHarness, type CaseResult } from '../../cli/abifuzz/harness.ts';
import { drawCase, needs, skipReason, STRUCT_TYPES, widest, BASE_FEATURES } from '../../cli/abifuzz/gen_ext.ts';
import { ctype, genCase, slotLayout, VOID, type AbiCase, type CType } from '../../cli/abifuzz/gen.ts';
import { formatReproducer } from '../../cli/abifuzz/campaign.ts';
import { buildModule } from '../../cli/abifuzz/build.ts';
import { enableModuleBtf } from '../../bpf/btf_module.ts';
import { BTF_KIND } from '../../bpf/btf/btf.ts';
import { BPF_PROG_LOAD, BPF_RAW_TRACEPOINT_OPEN, BPF_BTF_GET_FD_BY_ID } from '../../bpf/syscall/attr.ts';
import { encode } from '../../bpf/isa/insn.ts';
import { mov64Imm, exit } from '../../bpf/isa/build.ts';
import { KERNEL_PROFILES, KERNEL_VERSIONS } from '../../kernel/profile.ts';

/** Per profile: SEED's cases [0, SAMPLE), BATCH per gcc run (a batch's module is built once for all profiles). */
const SEED = 20251126, SAMPLE = 200, BATCH = 50;
const GEN = widest(Object.values(KERNEL_PROFILES).map((p) => p.trampoline));
const MODES = ['fentry', 'fexit', 'both'] as const;
const cases = Array.from({ length: SAMPLE }, (_, i) => drawCase(SEED, i, GEN));
const failed = (r: CaseResult): boolean => r.failures.length > 0 || r.error !== undefined;

describe('the generator with later profiles\' shapes', () => {
  it('5.5\'s features draw 5.5\'s cases, unchanged', () => {
    for (let i = 0; i < 50; i++) expect(drawCase(SEED, i, BASE_FEATURES)).toEqual(genCase(SEED, i));
  });

  it('the sample has struct arguments of every type, 7 to 12 slots, and 5.5-shaped cases', () => {
    const structs = new Set(cases.flatMap((c) => c.args.filter((t) => t.kind === 'struct').map((t) => t.c)));
    expect(structs).toEqual(new Set(STRUCT_TYPES.map((t) => t.c)));
    const slots = new Set(cases.map((c) => needs(c).slots).filter((n) => n > 6));
    expect(slots).toEqual(new Set([7, 8, 9, 10, 11, 12]));
    expect(cases.filter((c) => !needs(c).structArgs && needs(c).slots <= 6).length).toBeGreaterThan(SAMPLE / 2);
    // A struct straddling the sixth register goes to the stack whole (SysV): such cases exist.
    expect(cases.some((c) => { const { first } = slotLayout(c.args); return c.args.some((t, i) => t.kind === 'struct' && t.size > 8 && first[i] === 5); })).toBe(true);
  });
});

describe.each(KERNEL_VERSIONS)('kernel %s', (kernel) => {
  let sys: System;
  let h: AbiHarness;
  beforeAll(async () => {
    sys = await boot({ kernel });
    h = new AbiHarness(sys, { modes: MODES });
  });
  afterAll(() => { h.close(); sys.close(); });

  const batches = Array.from({ length: SAMPLE / BATCH }, (_, b) => [b * BATCH, (b + 1) * BATCH - 1] as const);
  it.each(batches)(`seed ${SEED} cases %i..%i: each slot as the caller passed it, or skipped when the profile cannot trace the shape`, (lo, hi) => {
    const batch = cases.slice(lo, hi + 1);
    const { results } = h.runBatch(batch);
    expect(results.filter(failed).map((r) => formatReproducer(r, { kernel, gen: '6.6' })).join('\n\n')).toBe('');
    const t = KERNEL_PROFILES[kernel].trampoline;
    // Skipped exactly when the table says the shape is beyond this generation.
    for (const r of results) {
      const n = needs(r.case);
      expect(r.skipped !== undefined, `${kernel} ${r.case.index}`).toBe((n.structArgs && !t.structArgs) || n.slots > t.maxArgs);
    }
    if (kernel === '6.6') expect(results.every((r) => !r.skipped)).toBe(true);
  });
});

/**
 * What "skipped" stands for: the kernel's own refusal, per profile. Struct by value before 6.1,
 * or 12 arguments before 5.19: btf_distill_func_proto's -EINVAL at load; more register slots
 * than the generator takes (6, then 12 from 6.6): arch_prepare_bpf_trampoline's -ENOTSUPP at attach.
 */
describe('the errno of each shape a profile cannot trace', () => {
  const u64 = ctype('u64'), t16 = STRUCT_TYPES.find((t) => t.c === 'struct abi_t16')!;
  const shapes: [string, CType[]][] = [
    ['one 16-byte struct', [t16]],
    ['7 u64', Array(7).fill(u64)],
    ['12 u64', Array(12).fill(u64)],
    ['10 u64 and a 16-byte struct (12 slots)', [...Array(10).fill(u64), t16]],
    ['11 u64 and a 16-byte struct (13 slots)', [...Array(11).fill(u64), t16]],
  ];
  const proto = (args: CType[], name: string): string => `noinline u64 ${name}(${args.map((t, i) => `${t.c} a${i}`).join(', ')}) { return 0; }`;
  const src = ['#include "kernel.h"', 'struct abi_t16 { u64 a; s64 b; };', ...shapes.map(([, a], i) => proto(a, `shape${i}`))].join('\n');
  const asCase = (args: CType[]): AbiCase => ({ seed: 0, index: 0, args, ret: VOID, values: [], params: [], keep: undefined, expectedRet: 0n });

  it.each(KERNEL_VERSIONS)('kernel %s: load and attach errno per shape, 0 exactly where the harness runs the shape', async (kernel) => {
    const sys = await boot({ kernel });
    try {
      const mods = enableModuleBtf(sys.bpfSys, sys.btf);
      const mod = mods.modules.load(buildModule(src, { name: 'abi_shapes' }).bytes, { name: 'abi_shapes', requireBtf: true });
      const b = sys.bpfSys, files = sys.kernel.current.files, btf = mods.of(mod)!.btf;
      const btfFd = b.call(BPF_BTF_GET_FD_BY_ID, { start_id: mods.of(mod)!.obj.id }).ret;
      const t = KERNEL_PROFILES[kernel].trampoline;
      const got: Record<string, string> = {}, want: Record<string, string> = {};
      shapes.forEach(([what, args], i) => {
        const insns = [mov64Imm(0, 0), exit()];
        const ui = b.stage(encode(insns)), lic = b.stage(Buffer.from('GPL\0'));
        const fd = b.call(BPF_PROG_LOAD, {
          prog_type: 26, expected_attach_type: 24, attach_btf_id: btf.findByNameKind(`shape${i}`, BTF_KIND.FUNC)!.id, attach_prog_fd: btfFd,
          insns: ui, insn_cnt: insns.length, license: lic,
        }).ret;
        b.unstage(ui); b.unstage(lic);
        const link = fd < 0 ? undefined : b.call(BPF_RAW_TRACEPOINT_OPEN, { name: 0, prog_fd: fd }).ret;
        got[what] = fd < 0 ? `load ${fd}` : `attach ${link}`;
        if (link !== undefined && link >= 0) { files.close(link); got[what] = 'attach 0'; }
        if (fd >= 0) files.close(fd);
        const { structArgs, slots } = needs(asCase(args));
        // btf_distill_func_proto first (-EINVAL at load: a struct before 6.1, "Too many" past the
        // model's limit, 11 arguments before 5.19), then the generator's register count (-ENOTSUPP).
        const load = (structArgs && !t.structArgs) || args.length > KERNEL_PROFILES[kernel].verifier.modelMaxArgs;
        want[what] = load ? 'load -22' : slots > t.maxArgs ? 'attach -524' : 'attach 0';
        // The harness skips exactly the shapes the kernel refuses.
        expect(skipReason(t, asCase(args)) === undefined, what).toBe(want[what] === 'attach 0');
      });
      files.close(btfFd);
      expect(mods.modules.rmmod('abi_shapes')).toBe(0);
      expect(got).toEqual(want);
    } finally { sys.close(); }
  });
});
