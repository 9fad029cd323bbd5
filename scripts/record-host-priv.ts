/**
 * @fileoverview images/user/priv_drop on the host's real kernel, as root: bpf() before and after
 * the process gives up its privilege, recorded as the oracle for the 6.6 profile
 * (test/kernel/privilege.test.ts):
 *
 *   npx tsx scripts/record-host-priv.ts     writes test/fixtures/host-kernel/privilege.json
 *
 * The program starts as root and drops to uid 1000 itself (setresuid), so the host runs the very
 * binary bpfemu runs. The host's kernel.unprivileged_bpf_disabled is recorded with the output: the
 * comparison is only meaningful for the same value. Exit 3 (nothing written) when the host
 * refuses bpf() or the recorder is not root.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { recordScriptStart } from '../test/host/oracle.ts';
import { userProgram } from '../test/kernel/user_programs.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const PRIV_FIXTURE = join(ROOT, 'test/fixtures/host-kernel/privilege.json');

/** The runs: priv_drop's modes. */
export const PRIV_RUNS = ['drop', 'bset'] as const;

export interface PrivFixture {
  kernel: string;
  recorded: string;
  /** /proc/sys/kernel/unprivileged_bpf_disabled when recorded. */
  unprivilegedBpfDisabled: number;
  /** By mode: stdout and exit status. */
  results: Record<string, { stdout: string; status: number }>;
}

/** The host's kernel.unprivileged_bpf_disabled, or undefined when it cannot be read. */
export function hostUnprivSysctl(): number | undefined {
  try { return Number(readFileSync('/proc/sys/kernel/unprivileged_bpf_disabled', 'utf8').trim()); } catch { return undefined; }
}

/** Runs priv_drop MODE on the host (as the current user: root for a meaningful run). */
export function hostRunPriv(mode: string): { stdout: string; status: number } {
  const p = spawnSync(userProgram('priv_drop'), [mode], { encoding: 'utf8', timeout: 60_000 });
  if (p.error) throw p.error;
  return { stdout: p.stdout, status: p.status ?? -1 };
}

function main(): void {
  recordScriptStart('record-host-priv.ts');
  if (process.getuid?.() !== 0) {
    console.error('record-host-priv: must run as root (priv_drop starts privileged and drops itself)');
    process.exit(3);
  }
  const sysctl = hostUnprivSysctl();
  if (sysctl === undefined) {
    console.error('record-host-priv: cannot read /proc/sys/kernel/unprivileged_bpf_disabled');
    process.exit(3);
  }
  const results: PrivFixture['results'] = {};
  for (const mode of PRIV_RUNS) results[mode] = hostRunPriv(mode);
  const kernel = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
  const fixture: PrivFixture = { kernel, recorded: new Date().toISOString(), unprivilegedBpfDisabled: sysctl, results };
  mkdirSync(dirname(PRIV_FIXTURE), { recursive: true });
  writeFileSync(PRIV_FIXTURE, `${JSON.stringify(fixture, null, 2)}\n`);
  for (const [k, v] of Object.entries(results)) console.log(`priv_drop ${k}: status ${v.status}, ${v.stdout.split('\n').length - 1} lines`);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
