/**
 * @fileoverview Calling-convention harness figures (bpfemu abi-fuzz): cases per second over a
 * fixed seed (all four modes, and each mode alone), and the share of the time spent in gcc and
 * pahole building the modules (one per batch of cases).
 */
import { pathToFileURL } from 'node:url';
import { runRange } from '../../cli/abifuzz/campaign.ts';
import { MODES } from '../../cli/abifuzz/harness.ts';
import { report, type Line } from './util.ts';

const SEED = 424242, CASES = 100;

export async function abiBench(): Promise<Line[]> {
  const lines: Line[] = [];
  const all = await runRange({ seed: SEED, cases: CASES }, 0, CASES);
  if (all.failed) throw new Error(`abi bench: ${all.failed} cases failed`);
  const t = all.timings, build = t.gccMs + t.paholeMs;
  lines.push(
    ['abi.cases_per_sec.all_modes', +(CASES / (t.wallMs / 1000)).toFixed(1)],
    ['abi.gcc_share', +(t.gccMs / t.wallMs).toFixed(3)],
    ['abi.gcc_pahole_share', +(build / t.wallMs).toFixed(3)],
    ['abi.module_load_ms_per_batch', +(t.loadMs / Math.ceil(CASES / 50)).toFixed(2)],
  );
  for (const mode of MODES) {
    const r = await runRange({ seed: SEED, cases: 50, modes: [mode] }, 0, 50);
    lines.push([`abi.run_ms_per_case.${mode}_only`, +(r.timings.runMs / 50).toFixed(2)]);
  }
  return lines;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) report(await abiBench());
