/**
 * @fileoverview `bpfemu abi-fuzz [--seed S] [--cases N] [--jobs J] [--shard I/N] [--batch B]
 * [--replay SEED:CASE]`: the calling-convention regression harness (cli/abifuzz/). Random
 * prototypes compiled by gcc into kernel modules, fentry/fexit programs attached through the
 * trampoline, every argument and return value checked. A progress bar on a terminal; failures
 * as minimised reproducers; the findings (the kernel's own behaviours, docs/ABI.md); the last
 * line is `N passed, M failed` (exit 1 when M > 0).
 *
 * `--kernel V` runs under one kernel profile, `--kernel all` (or several --kernel) under each in
 * turn over the same cases, drawn with the widest profile's shapes (struct arguments from 6.1,
 * up to 12 from 6.6; `--gen V` draws with V's instead): one line per profile,
 * `6.1: N passed, M failed, K skipped`, a skipped case being one that profile cannot trace.
 */
import type { Command } from 'commander';
import { emit, UsageError, type OutputOptions } from '../output.ts';
import { runCampaign, runProfiles, DEFAULT_BATCH, TRAMPOLINE_VARIANTS, type CampaignReport, type Progress } from '../abifuzz/campaign.ts';
import { featuresOf } from '../abifuzz/gen_ext.ts';
import { KERNEL_VERSIONS, kernelProfile, type KernelVersion } from '../../kernel/profile.ts';
import { MODES, type Mode } from '../abifuzz/harness.ts';
import type { TrampolineVariant } from '../abifuzz/broken.ts';

interface Opts {
  seed?: string; cases: string; jobs: string; shard?: string; batch: string; replay?: string;
  modes?: string; minimise: string; brokenTrampoline?: string; kernel: string[]; gen?: string;
}

/** `--kernel all`, `--kernel 6.1`, or several: the profiles to run, in the table's order. */
function profiles(list: readonly string[]): KernelVersion[] | undefined {
  if (!list.length) return undefined;
  if (list.includes('all')) return [...KERNEL_VERSIONS];
  const want = new Set(list.map(profileOf));
  return KERNEL_VERSIONS.filter((v) => want.has(v));
}

const profileOf = (v: string): KernelVersion => {
  try { return kernelProfile(v).version; } catch (e) { throw new UsageError(`${(e as Error).message.replace(/\)$/, ', all)')}`); }
};

const int = (s: string, what: string, min = 0): number => {
  if (!/^\d+$/.test(s) || Number(s) < min || !Number.isSafeInteger(Number(s))) throw new UsageError(`${what} '${s}' must be an integer >= ${min}`);
  return Number(s);
};

/** A progress bar on stderr, redrawn at most every 100 ms. */
function progressBar(): { update(p: Progress): void; end(): void } {
  if (!process.stderr.isTTY) return { update: () => {}, end: () => {} };
  const t0 = performance.now();
  let last = 0;
  const draw = (p: Progress): void => {
    const w = 30, fill = p.total ? Math.round((p.done / p.total) * w) : w;
    const rate = p.done / ((performance.now() - t0) / 1000);
    process.stderr.write(`\r[${'#'.repeat(fill)}${'.'.repeat(w - fill)}] ${p.done}/${p.total} cases, ${p.failed} failed, ${rate.toFixed(1)} cases/s `);
  };
  return {
    update: (p) => { const now = performance.now(); if (now - last > 100 || p.done === p.total) { last = now; draw(p); } },
    end: () => process.stderr.write('\n'),
  };
}

function text(r: CampaignReport, showFindings: boolean): string {
  const out: string[] = [];
  for (const f of r.failures) out.push(f.text, '');
  if (showFindings && r.findings.length) {
    out.push('findings (the kernel\'s real behaviour, not failures; see docs/ABI.md):');
    for (const f of r.findings) out.push(`  ${f.kind} x${f.count}: ${f.example}`);
    out.push('');
  }
  const secs = r.timings.wallMs / 1000, n = r.passed + r.failed;
  out.push(`seed ${r.seed}, cases ${r.range[0]}..${r.range[1] - 1}: ${secs.toFixed(1)} s, ${(n / secs).toFixed(1)} cases/s, gcc+pahole ${((r.timings.gccMs + r.timings.paholeMs) / 1000).toFixed(1)} s`);
  out.push(`${r.passed} passed, ${r.failed} failed${r.skipped ? `, ${r.skipped} skipped` : ''}`);
  return out.join('\n');
}

/** Several profiles: each one's failures, then a line per profile, then the totals. */
function profilesText(rs: readonly CampaignReport[]): string {
  const out: string[] = [];
  for (const r of rs) for (const f of r.failures) out.push(f.text, '');
  const r0 = rs[0]!;
  out.push(`seed ${r0.seed}, cases ${r0.range[0]}..${r0.range[1] - 1} under ${rs.length} kernel profiles:`);
  for (const r of rs) {
    const secs = r.timings.wallMs / 1000;
    out.push(`${r.kernel}: ${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped (${secs.toFixed(1)} s)`);
  }
  out.push(`${rs.reduce((a, r) => a + r.passed, 0)} passed, ${rs.reduce((a, r) => a + r.failed, 0)} failed`);
  return out.join('\n');
}

export function register(program: Command, global: () => OutputOptions): void {
  program.command('abi-fuzz')
    .description('fuzz the native-to-BPF calling convention: random prototypes built by gcc, traced by fentry/fexit, every slot checked')
    .option('--seed <S>', 'seed (default: from the clock, printed)')
    .option('--cases <N>', 'number of cases', '1000')
    .option('--jobs <J>', 'worker processes', '1')
    .option('--shard <I/N>', 'run the I-th of N parts of the cases (CI matrices)')
    .option('--batch <B>', 'cases per module (one gcc run each)', String(DEFAULT_BATCH))
    .option('--replay <SEED:CASE>', 'rerun one case (minimised when it fails)')
    .option('--modes <LIST>', `modes to run, comma-separated (${MODES.join(',')})`)
    .option('--minimise <K>', 'minimise the first K failures (a few gcc runs each)', '3')
    .option('--broken-trampoline <VARIANT>', `run against a deliberately wrong trampoline (${TRAMPOLINE_VARIANTS.join(', ')})`)
    // Declared so main.ts hands this command every --kernel (the global flag takes one profile).
    .option('--kernel <V>', `kernel profile(s) to run under: ${KERNEL_VERSIONS.join(', ')} or all (repeatable)`, (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--gen <V>', 'draw the cases with this profile\'s shapes (default: the widest profile run)')
    .action(async (o: Opts) => {
      let seed = o.seed !== undefined ? int(o.seed, '--seed') : Date.now() % 1_000_000_007;
      let cases = int(o.cases, '--cases', 1);
      let shard: [number, number] | undefined;
      let range: [number, number] | undefined;
      if (o.shard !== undefined) {
        const m = /^(\d+)\/(\d+)$/.exec(o.shard);
        if (!m || Number(m[1]) < 1 || Number(m[1]) > Number(m[2])) throw new UsageError(`--shard '${o.shard}' must be I/N with 1 <= I <= N`);
        shard = [Number(m[1]), Number(m[2])];
      }
      if (o.replay !== undefined) {
        const m = /^(\d+):(\d+)$/.exec(o.replay);
        if (!m) throw new UsageError(`--replay '${o.replay}' must be SEED:CASE`);
        seed = Number(m[1]);
        range = [Number(m[2]), Number(m[2]) + 1];
        cases = range[1];
      }
      const modes = o.modes?.split(',').map((s) => s.trim()) as Mode[] | undefined;
      for (const m of modes ?? []) if (!MODES.includes(m)) throw new UsageError(`--modes: unknown mode '${m}' (${MODES.join(', ')})`);
      const variant = o.brokenTrampoline as TrampolineVariant | undefined;
      if (variant !== undefined && !TRAMPOLINE_VARIANTS.includes(variant)) throw new UsageError(`--broken-trampoline: unknown variant '${variant}' (${TRAMPOLINE_VARIANTS.join(', ')})`);
      const kernels = profiles(o.kernel);
      const gen = o.gen !== undefined ? featuresOf(kernelProfile(profileOf(o.gen)).trampoline) : undefined;
      const bar = global().json || global().pretty ? { update: () => {}, end: () => {} } : progressBar();
      const opts = {
        seed, cases, ...(shard ? { shard } : {}), ...(range ? { range } : {}), jobs: int(o.jobs, '--jobs', 1), batch: int(o.batch, '--batch', 1),
        ...(modes ? { modes } : {}), minimise: o.replay !== undefined ? 1 : int(o.minimise, '--minimise'),
        ...(variant ? { variant } : {}), ...(gen ? { gen } : {}), onProgress: (p: Progress) => bar.update(p),
      };
      if (!kernels || kernels.length === 1) {
        const r = await runCampaign({ ...opts, ...(kernels ? { kernel: kernels[0]! } : {}) });
        bar.end();
        emit(global(), r, () => text(r, o.replay === undefined));
        if (r.failed) process.exitCode = 1;
        return;
      }
      const rs = await runProfiles(opts, kernels);
      bar.end();
      const total = (k: 'passed' | 'failed' | 'skipped'): number => rs.reduce((a, r) => a + r[k], 0);
      emit(global(), { seed, profiles: rs, passed: total('passed'), failed: total('failed'), skipped: total('skipped') }, () => profilesText(rs));
      if (total('failed')) process.exitCode = 1;
    });
}
