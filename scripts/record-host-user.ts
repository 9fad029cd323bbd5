/**
 * @fileoverview The user programs of images/user/ run on the host's real kernel, and their
 * answers recorded (docs/ARCHITECTURE.md, "The host kernel as an oracle"):
 *
 *   npx tsx scripts/record-host-user.ts     writes test/fixtures/host-kernel/user-programs.json
 *
 * The programs are static executables with no libc that talk to the kernel with raw syscalls, so
 * the host runs the very binaries bpfemu runs: their output (one line per step) and exit status
 * are the oracle. Needs root and a kernel that accepts bpf(); exit 3 (nothing written) when the
 * host refuses it. test/host/user_oracle.test.ts imports the list and the runner from here.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { recordScriptStart } from '../test/host/oracle.ts';
import { userProgram } from '../test/kernel/user_programs.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const USER_FIXTURE = join(ROOT, 'test/fixtures/host-kernel/user-programs.json');

export interface UserRun {
  /** Program name (images/build/user/NAME) and its arguments. */
  name: string;
  args: string[];
  /** Compare the exit status only (the output names a pid). */
  statusOnly?: boolean;
}

/** What one run gave: stdout with pids masked, and the shell's status (128 + signal if killed). */
export interface UserResult { stdout: string; status: number }

export interface UserFixture {
  kernel: string;
  recorded: string;
  /** By run key (`name arg…`). */
  results: Record<string, UserResult>;
}

export const FAULT_CASES = [
  'read-kernel', 'write-kernel', 'read-vmalloc', 'exec-kernel', 'read-null', 'noncanonical',
  'write-rodata', 'write-ro-map', 'ud2', 'hlt', 'int3', 'div0',
];

export const USER_RUNS: UserRun[] = [
  { name: 'mmap_test', args: [] },
  { name: 'writecnt', args: [] },
  { name: 'mmap_errors', args: [] },
  { name: 'syscalls', args: [] },
  { name: 'fork', args: [] },
  { name: 'zerocopy', args: ['100'] },
  ...FAULT_CASES.map((c) => ({ name: 'fault', args: [c], statusOnly: true })),
];

export const runKey = (r: UserRun): string => [r.name, ...r.args].join(' ');

/** Pids differ from run to run and kernel to kernel. */
export const maskPids = (s: string): string => s.replace(/\bpid \d+/g, 'pid N');

/** Runs one program on the host. */
export function hostRunUser(r: UserRun): UserResult {
  const p = spawnSync(userProgram(r.name), r.args, { encoding: 'utf8', timeout: 60_000 });
  if (p.error) throw p.error;
  const sig = p.signal ? constants.signals[p.signal] : undefined;
  return { stdout: maskPids(p.stdout), status: sig !== undefined ? 128 + sig : p.status ?? -1 };
}

function main(): void {
  recordScriptStart('record-host-user.ts');
  const results: Record<string, UserResult> = {};
  for (const r of USER_RUNS) results[runKey(r)] = hostRunUser(r);
  const kernel = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
  const fixture: UserFixture = { kernel, recorded: new Date().toISOString(), results };
  mkdirSync(dirname(USER_FIXTURE), { recursive: true });
  writeFileSync(USER_FIXTURE, `${JSON.stringify(fixture, null, 2)}\n`);
  for (const [k, v] of Object.entries(results)) console.log(`${k}: status ${v.status}, ${v.stdout.split('\n').length - 1} lines`);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
