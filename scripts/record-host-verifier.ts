/**
 * @fileoverview The verifier's selftest tables (test/bpf/verifier/tables.ts) loaded in the host's
 * real kernel (docs/ARCHITECTURE.md, "The host kernel as an oracle"), and each verdict and log
 * recorded:
 *
 *   npx tsx scripts/record-host-verifier.ts     writes test/fixtures/host-kernel/verifier.json
 *
 * Needs root and a kernel that accepts bpf(); exit 3 (nothing written) when the host refuses it.
 *
 * Each program is loaded as test_verifier loads it (privileged, log_level 4: errors and
 * statistics; level 2 for the VERBOSE_ACCEPT ones; BPF_F_STRICT_ALIGNMENT and
 * BPF_F_TEST_STATE_FREQ as the case says) through `images/build/host/bpfcall`: the map fixtures
 * first (their fds, 3 upwards in a fresh process, go into the ld_imm64 of each program), then
 * per case its instructions, a PROG_LOAD and the log (bpfcall's `str`). Batches of 200 cases per
 * process (bpfcall keeps 256 names). test/host/verifier_oracle.test.ts compares bpfemu with the
 * fixture, and live with {@link hostVerify} where the host allows it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BPF_ATTR_SIZE, BPF_MAP_CREATE, BPF_PROG_LOAD } from '../bpf/syscall/attr.ts';
import { encode } from '../bpf/isa/insn.ts';
import { MAPS, type MapFixture, type VCase } from '../test/bpf/verifier/harness.ts';
import { CASES_BY_KEY } from '../test/bpf/verifier/tables.ts';
import { HostRefusedError, recordScriptStart } from '../test/host/oracle.ts';
import { BPFCALL, ensureBpfcall, fieldTokens } from './record-host-syscalls.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const VERIFIER_FIXTURE = join(ROOT, 'test/fixtures/host-kernel/verifier.json');

/** What the host kernel said of one program: the load's errno (0: loaded) and the log's last lines. */
export interface HostVerdict { errno: number; log: string }

/** test/fixtures/host-kernel/verifier.json. */
export interface VerifierFixture {
  kernel: string;
  recorded: string;
  results: Record<string, HostVerdict>;
}

const LOG_SIZE = 1 << 20, BATCH = 200, KEEP_LINES = 12;
const BPF_F_STRICT_ALIGNMENT = 1, BPF_F_TEST_STATE_FREQ = 1 << 3;
const FIXTURES = Object.keys(MAPS) as MapFixture[];
/** A fresh bpfcall has fds 0-2: the maps get 3, 4, … in this order. */
const hostFd = (name: MapFixture): number => 3 + FIXTURES.indexOf(name);

/** The case's instructions as bytes, with the host's map fds in its ld_imm64s. */
function programBytes(c: VCase): Uint8Array {
  const insns = c.insns.map((i) => ({ ...i, imm: i.imm | 0, off: (i.off << 16) >> 16 }));
  for (const [name, idxs] of Object.entries(c.fixup ?? {})) for (const i of idxs!) insns[i]!.imm = hostFd(name as MapFixture);
  return encode(insns);
}

/** bpfcall's input for a batch: the maps (each a `call`, to check its fd), then load + log per case. */
function script(cases: readonly [string, VCase][]): string {
  const lines = ['# test/bpf/verifier tables through scripts/record-host-verifier.ts'];
  for (const name of FIXTURES) {
    const m = MAPS[name].info;
    lines.push(['call', BPF_MAP_CREATE, BPF_ATTR_SIZE, ...fieldTokens({
      map_type: m.type, key_size: m.keySize, value_size: m.valueSize, max_entries: m.maxEntries, map_flags: m.flags,
    })].join(' '));
  }
  lines.push(`buf gpl 4 ${Buffer.from('GPL\0').toString('hex')}`, `buf log ${LOG_SIZE}`);
  cases.forEach(([key, c], k) => {
    const bytes = programBytes(c);
    lines.push(`# ${key}`, `buf p${k} ${bytes.length} ${Buffer.from(bytes).toString('hex')}`);
    lines.push(['call', BPF_PROG_LOAD, BPF_ATTR_SIZE, ...fieldTokens({
      prog_type: c.progType ?? 1, insn_cnt: bytes.length / 8, insns: `$p${k}`, license: '$gpl',
      log_level: c.logSeq ? 2 : 4, log_size: LOG_SIZE, log_buf: '$log', expected_attach_type: c.expectedAttachType ?? 0,
      prog_flags: (c.strictAlignment ? BPF_F_STRICT_ALIGNMENT : 0) | (c.testStateFreq ? BPF_F_TEST_STATE_FREQ : 0),
    })].join(' '), 'str log');
  });
  return `${lines.join('\n')}\n`;
}

/**
 * Loads `keys` (of CASES_BY_KEY) in the host kernel.
 * @throws HostRefusedError when bpf() itself is refused; Error when the tool fails otherwise.
 */
export function hostVerify(keys: readonly string[]): Record<string, HostVerdict> {
  const missing = ensureBpfcall();
  if (missing) throw new Error(missing);
  const out: Record<string, HostVerdict> = {};
  for (let at = 0; at < keys.length; at += BATCH) {
    const batch = keys.slice(at, at + BATCH).map((k) => [k, CASES_BY_KEY.get(k)!] as [string, VCase]);
    const r = spawnSync(BPFCALL, [], { input: script(batch), encoding: 'utf8', maxBuffer: 64 << 20 });
    if (r.status === 3) throw new HostRefusedError(r.stderr.trim());
    if (r.status !== 0) throw new Error(`bpfcall exited ${r.status ?? r.signal}: ${(r.stderr || r.error?.message || '').trim()}`);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { ret?: number; errno?: number; str?: string });
    FIXTURES.forEach((name, i) => {
      const l = lines[i]!;
      if (l.ret === undefined || l.ret < 0) throw new HostRefusedError(`map fixture ${name}: BPF_MAP_CREATE errno ${l.errno}`);
      if (l.ret !== hostFd(name)) throw new Error(`map fixture ${name} got fd ${l.ret}, not ${hostFd(name)}`);
    });
    batch.forEach(([key], k) => {
      const load = lines[FIXTURES.length + 2 * k]!, log = lines[FIXTURES.length + 2 * k + 1]!;
      if (load.errno === undefined || log.str === undefined) throw new Error(`bpfcall: unexpected output for ${key}`);
      out[key] = { errno: load.errno, log: log.str.trimEnd().split('\n').slice(-KEEP_LINES).join('\n') };
    });
  }
  return out;
}

function main(): void {
  recordScriptStart('record-host-verifier.ts');
  let results: Record<string, HostVerdict>;
  try {
    results = hostVerify([...CASES_BY_KEY.keys()]);
  } catch (e) {
    if (e instanceof HostRefusedError) {
      console.error(`record-host-verifier: ${e.message}`);
      process.exit(3);
    }
    throw e;
  }
  const kernel = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
  const fixture: VerifierFixture = { kernel, recorded: new Date().toISOString(), results };
  mkdirSync(dirname(VERIFIER_FIXTURE), { recursive: true });
  writeFileSync(VERIFIER_FIXTURE, `${JSON.stringify(fixture, null, 2)}\n`);
  const differ = [...CASES_BY_KEY].filter(([k, c]) => (results[k]!.errno === 0) !== (c.result === 'accept'));
  console.log(`kernel ${kernel}: ${CASES_BY_KEY.size} programs, ${CASES_BY_KEY.size - differ.length} with the tables' verdict, ${differ.length} differ`);
  for (const [k, c] of differ) console.log(`  ${k}: host errno ${results[k]!.errno}, table ${c.result}: ${results[k]!.log.split('\n').slice(-2).join(' | ')}`);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
