/**
 * @fileoverview A fuzzing campaign: one seed's cases [0, N), a shard of them (`--shard I/N`
 * splits the range into N contiguous parts as vitest's --shard splits files), spread over J
 * worker processes (each boots its own machine), compiled B cases per module. Failures come back
 * as reproducers (prototype, values, the differing slots, the live trampoline's disassembly),
 * minimised on request by rerunning smaller variants of the case; findings (the kernel's own
 * observable behaviours, docs/ABI.md) are merged across workers.
 *
 * Under a kernel profile (`kernel`), every worker boots that profile; the cases are drawn with
 * the features of `gen` (a profile's trampoline row, default: the machine's), and those the
 * machine's profile cannot trace are counted as skipped. runProfiles runs one campaign per
 * profile over the same cases.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { boot } from '../../index.ts';
import { AbiHarness, MODES, type CaseResult, type Finding, type FindingKind, type Mode, type SlotDiff } from './harness.ts';
import { prototype, caller, withArgs, type AbiCase } from './gen.ts';
import { drawCase, featuresOf, widest, type GenFeatures } from './gen_ext.ts';
import { DEFAULT_KERNEL, KERNEL_PROFILES, type KernelVersion } from '../../kernel/profile.ts';
import { installTrampolineVariant, TRAMPOLINE_VARIANTS, type TrampolineVariant } from './broken.ts';

export interface CampaignOptions {
  seed: number;
  cases: number;
  /** Exactly these cases [start, end) (--replay), instead of a shard of [0, cases). */
  range?: [number, number];
  /** [I, N]: the I-th (1-based) of N shards. */
  shard?: [number, number];
  jobs?: number;
  /** Cases per module (one gcc run each). */
  batch?: number;
  modes?: readonly Mode[];
  /** Minimise up to this many failures (each costs a few gcc runs). */
  minimise?: number;
  /** The kernel profile every machine boots (default 5.5). */
  kernel?: KernelVersion;
  /** What the generator draws (default: the features of `kernel`). */
  gen?: GenFeatures;
  /** Run against a deliberately wrong trampoline (proves the harness can fail). */
  variant?: TrampolineVariant;
  onProgress?: (p: Progress) => void;
}

export interface Progress { done: number; total: number; failed: number }

/** A failure, serialisable (workers send them to the parent). */
export interface FailureReport {
  seed: number;
  index: number;
  prototype: string;
  slots: { mode: string; slot: string; prog?: string; expected: string; got: string; note?: string }[];
  error?: string;
  /** The reproducer as printed. */
  text: string;
}

export interface CampaignTimings { gccMs: number; paholeMs: number; loadMs: number; runMs: number; wallMs: number }

export interface CampaignReport {
  seed: number;
  range: [number, number];
  /** The profile the machines ran. */
  kernel: KernelVersion;
  passed: number;
  failed: number;
  /** Cases the profile cannot trace (not run). */
  skipped: number;
  failures: FailureReport[];
  findings: Finding[];
  timings: CampaignTimings;
}

export const DEFAULT_BATCH = 50;

/** The [start, end) of shard I/N of `total` cases. */
export function shardRange(total: number, shard?: [number, number]): [number, number] {
  if (!shard) return [0, total];
  const [i, n] = shard;
  return [Math.floor(((i - 1) * total) / n), Math.floor((i * total) / n)];
}

const hex = (v: bigint): string => `0x${v.toString(16)}`;

/** The printed reproducer of a failed case. */
export function formatReproducer(r: CaseResult, opts: { minimisedFrom?: AbiCase; kernel?: KernelVersion; gen?: KernelVersion } = {}): string {
  const c = r.case;
  // The flags that give the same case on the same profile again.
  const flags = `${opts.kernel && opts.kernel !== DEFAULT_KERNEL ? `--kernel ${opts.kernel} ` : ''}${opts.gen && opts.gen !== (opts.kernel ?? DEFAULT_KERNEL) ? `--gen ${opts.gen} ` : ''}`;
  const lines = [`FAIL seed ${c.seed} case ${c.index}${opts.kernel && opts.kernel !== DEFAULT_KERNEL ? ` (kernel ${opts.kernel})` : ''}   (rerun: bpfemu abi-fuzz ${flags}--replay ${c.seed}:${c.index})`];
  if (opts.minimisedFrom) lines.push(`  minimised from: ${prototype(opts.minimisedFrom)}`);
  lines.push(`  prototype: ${prototype(c)}`);
  lines.push(`  caller:    ${caller(c)}(${c.params.map(hex).join(', ')})`);
  c.values.forEach((v, i) => {
    const ty = c.args[i]!.c;
    lines.push(v.source === 'param'
      ? `  a${i} = (${ty})p${v.param} = ${hex(v.value)}   (register ${hex(v.raw)})`
      : `  a${i} = (${ty})${hex(v.value)}   (a constant in the caller)`);
  });
  lines.push(`  returns:   ${c.ret.c === 'void' ? 'void' : `${hex(c.expectedRet)} (${c.ret.c})`}`);
  if (r.error) lines.push(`  error: ${r.error}`);
  const seen = new Set<string>();
  let tramp: string | undefined;
  // What the programs recorded first, then what the callee saw, then the caller's view.
  const rank = (f: SlotDiff): number => (f.prog ? 0 : f.slot.startsWith('callee') ? 1 : 2);
  for (const f of [...r.failures].sort((a, b) => rank(a) - rank(b))) {
    const key = `${f.mode}/${f.slot}`;
    if (seen.has(key)) continue;
    seen.add(key);
    lines.push(`  slot ${f.slot}${f.prog ? ` (${f.prog})` : ''}, ${f.mode}: expected ${hex(f.expected)}, got ${hex(f.got)}${f.note ? `: ${f.note}` : ''}`);
    tramp ??= f.trampoline;
  }
  if (tramp) lines.push('  trampoline:', ...tramp.split('\n').map((l) => `    ${l}`));
  return lines.join('\n');
}

function report(r: CaseResult, text: string): FailureReport {
  const slots = r.failures.map((f: SlotDiff) => ({
    mode: f.mode, slot: f.slot, ...(f.prog ? { prog: f.prog } : {}), expected: hex(f.expected), got: hex(f.got), ...(f.note ? { note: f.note } : {}),
  }));
  return { seed: r.case.seed, index: r.case.index, prototype: prototype(r.case), slots, ...(r.error ? { error: r.error } : {}), text };
}

const failedResult = (r: CaseResult): boolean => r.failures.length > 0 || r.error !== undefined;

/** The profile whose features equal `f` (for the reproducer's --gen), if one does. */
const genProfile = (f: GenFeatures): KernelVersion | undefined =>
  (Object.values(KERNEL_PROFILES).find((p) => p.trampoline.structArgs === f.structArgs && p.trampoline.maxArgs === f.maxArgs))?.version;

/**
 * Shrinks a failing case: the smallest failing mode, then fewer arguments (only the failing
 * one, a prefix up to it, or one argument less at a time) while it still fails.
 */
export function minimise(h: AbiHarness, first: CaseResult, budget = 8): CaseResult {
  let best = first;
  const modeOrder = MODES.filter((m) => first.failures.some((f) => f.mode === m));
  const mode = modeOrder[0];
  const modes: Mode[] = mode ? [mode] : [...MODES];
  const tryCase = (c: AbiCase): CaseResult | undefined => {
    if (budget-- <= 0) return undefined;
    const r = h.runBatch([c], modes).results[0]!;
    return failedResult(r) ? r : undefined;
  };
  const again = tryCase(best.case);
  if (again) best = again;
  const argOf = best.failures.map((f) => /arg(\d+)$/.exec(f.slot)).find((m) => m)?.[1];
  const n = best.case.args.length;
  const candidates: number[][] = [];
  if (argOf !== undefined) {
    const k = Number(argOf);
    candidates.push([k], Array.from({ length: k + 1 }, (_, i) => i));
  }
  for (let i = n - 1; i >= 0; i--) candidates.push(Array.from({ length: n }, (_, j) => j).filter((j) => j !== i));
  for (const keep of candidates) {
    if (keep.length >= best.case.args.length) continue;
    const r = tryCase(withArgs(best.case, keep.filter((i) => i < best.case.args.length)));
    if (r) best = r;
  }
  return best;
}

/**
 * A fresh machine every this many batches: Unicorn 2.0.1 keeps some native memory for each
 * mapping made and removed (every JIT image and trampoline page), ~0.3 MB per 40-program case;
 * closing the engine returns it. Booting costs about a second.
 */
const BATCHES_PER_BOOT = 10;

/** A booted machine with the harness (and the trampoline variant) on it. */
async function harnessOn(opts: CampaignOptions): Promise<{ h: AbiHarness; close(): void }> {
  const sys = await boot({ kernel: opts.kernel ?? DEFAULT_KERNEL });
  const restore = opts.variant ? installTrampolineVariant(sys, opts.variant) : undefined;
  const h = new AbiHarness(sys, { modes: opts.modes ?? MODES });
  return { h, close: () => { h.close(); restore?.(); sys.close(); } };
}

/** Runs cases [start, end) in this process. */
export async function runRange(opts: CampaignOptions, start: number, end: number): Promise<CampaignReport> {
  const t0 = performance.now();
  const kernel = opts.kernel ?? DEFAULT_KERNEL;
  const gen = opts.gen ?? featuresOf(KERNEL_PROFILES[kernel].trampoline);
  const repro = { kernel, ...(genProfile(gen) ? { gen: genProfile(gen)! } : {}) };
  const rep: CampaignReport = {
    seed: opts.seed, range: [start, end], kernel, passed: 0, failed: 0, skipped: 0, failures: [], findings: [],
    timings: { gccMs: 0, paholeMs: 0, loadMs: 0, runMs: 0, wallMs: 0 },
  };
  const findings = new Map<FindingKind, Finding>();
  const keepFindings = (h: AbiHarness): void => {
    for (const f of h.findings.values()) {
      const g = findings.get(f.kind);
      if (g) g.count += f.count; else findings.set(f.kind, { ...f });
    }
  };
  let minimised = 0;
  let m = await harnessOn(opts);
  try {
    const batch = opts.batch ?? DEFAULT_BATCH;
    for (let i = start, n = 0; i < end; i += batch, n++) {
      if (n && n % BATCHES_PER_BOOT === 0) {
        keepFindings(m.h);
        m.close();
        m = await harnessOn(opts);
      }
      const h = m.h;
      const cases = Array.from({ length: Math.min(batch, end - i) }, (_, k) => drawCase(opts.seed, i + k, gen));
      let results: CaseResult[];
      try {
        const r = h.runBatch(cases);
        results = r.results;
        for (const k of ['gccMs', 'paholeMs', 'loadMs', 'runMs'] as const) rep.timings[k] += r.timings[k];
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        results = cases.map((c) => ({ case: c, failures: [], error: `batch ${i}..${i + cases.length - 1}: ${msg}` }));
      }
      for (const r of results) {
        if (r.skipped) { rep.skipped++; continue; }
        if (!failedResult(r)) { rep.passed++; continue; }
        rep.failed++;
        if (minimised < (opts.minimise ?? 0) && !r.error) {
          minimised++;
          const m = minimise(h, r);
          rep.failures.push(report(r, formatReproducer(m, { ...repro, ...(m.case.args.length < r.case.args.length ? { minimisedFrom: r.case } : {}) })));
        } else rep.failures.push(report(r, formatReproducer(r, repro)));
      }
      opts.onProgress?.({ done: rep.passed + rep.failed + rep.skipped, total: end - start, failed: rep.failed });
    }
  } finally {
    keepFindings(m.h);
    rep.findings = [...findings.values()];
    m.close();
  }
  rep.timings.wallMs = performance.now() - t0;
  return rep;
}

/** Merges reports of parts of one range. */
function merge(seed: number, range: [number, number], kernel: KernelVersion, parts: CampaignReport[], wallMs: number): CampaignReport {
  const findings = new Map<FindingKind, Finding>();
  for (const p of parts) for (const f of p.findings) {
    const g = findings.get(f.kind);
    if (g) g.count += f.count; else findings.set(f.kind, { ...f });
  }
  const timings: CampaignTimings = { gccMs: 0, paholeMs: 0, loadMs: 0, runMs: 0, wallMs };
  for (const p of parts) for (const k of ['gccMs', 'paholeMs', 'loadMs', 'runMs'] as const) timings[k] += p.timings[k];
  return {
    seed, range, kernel, passed: parts.reduce((a, p) => a + p.passed, 0), failed: parts.reduce((a, p) => a + p.failed, 0),
    skipped: parts.reduce((a, p) => a + p.skipped, 0),
    failures: parts.flatMap((p) => p.failures).sort((a, b) => a.index - b.index), findings: [...findings.values()], timings,
  };
}

const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url));

/** The campaign: its shard's range, over `jobs` worker processes (in this process for 1). */
export async function runCampaign(opts: CampaignOptions): Promise<CampaignReport> {
  return (await runKernels(opts, [opts.kernel ?? DEFAULT_KERNEL]))[0]!;
}

/**
 * The campaign's range under each of `kernels`, one report per profile. Over several workers
 * each worker runs its part under every profile in turn, so a process is forked once (tsx's
 * start-up costs more than booting), not once per profile.
 */
async function runKernels(opts: CampaignOptions, kernels: readonly KernelVersion[]): Promise<CampaignReport[]> {
  const [start, end] = opts.range ?? shardRange(opts.cases, opts.shard);
  const jobs = Math.max(1, Math.min(opts.jobs ?? 1, end - start));
  if (jobs === 1) {
    const out: CampaignReport[] = [];
    for (const kernel of kernels) out.push(await runRange({ ...opts, kernel }, start, end));
    return out;
  }
  const t0 = performance.now();
  const total = (end - start) * kernels.length;
  const done = new Array<Progress>(jobs).fill({ done: 0, total: 0, failed: 0 });
  const progress = (): void => opts.onProgress?.({ done: done.reduce((a, p) => a + p.done, 0), total, failed: done.reduce((a, p) => a + p.failed, 0) });
  const tsx = fileURLToPath(import.meta.resolve('tsx'));
  const parts = await Promise.all(Array.from({ length: jobs }, (_, j) => {
    const s = start + Math.floor((j * (end - start)) / jobs), e = start + Math.floor(((j + 1) * (end - start)) / jobs);
    const { onProgress: _p, ...wopts } = opts;
    return new Promise<CampaignReport[]>((resolve, reject) => {
      const child = fork(WORKER, [JSON.stringify({ opts: wopts, start: s, end: e, kernels })], {
        execArgv: ['--import', tsx], stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      });
      let result: CampaignReport[] | undefined;
      child.on('message', (m: { t: 'progress'; p: Progress } | { t: 'done'; reports: CampaignReport[] }) => {
        if (m.t === 'progress') { done[j] = m.p; progress(); } else result = m.reports;
      });
      child.on('error', reject);
      child.on('exit', (code) => (result ? resolve(result) : reject(new Error(`abi-fuzz worker ${j + 1}/${jobs} (cases ${s}..${e - 1}) exited with ${code}`))));
    });
  }));
  const wallMs = performance.now() - t0;
  // Per profile: its parts from every worker; the wall time is the profile's share of the run's.
  return kernels.map((kernel, k) => {
    const mine = parts.map((p) => p[k]!);
    const cpu = (r: CampaignReport): number => r.timings.wallMs;
    const share = parts.reduce((a, p) => a + cpu(p[k]!), 0) / Math.max(1, parts.reduce((a, p) => a + p.reduce((b, r) => b + cpu(r), 0), 0));
    return merge(opts.seed, [start, end], kernel, mine, wallMs * share);
  });
}

/**
 * One campaign per profile over the same cases: drawn with the widest features of the
 * profiles (unless `gen` says otherwise), each profile skipping what it cannot trace.
 */
export async function runProfiles(opts: CampaignOptions, kernels: readonly KernelVersion[]): Promise<CampaignReport[]> {
  const gen = opts.gen ?? widest(kernels.map((k) => KERNEL_PROFILES[k].trampoline));
  return runKernels({ ...opts, gen }, kernels);
}

export { TRAMPOLINE_VARIANTS };
