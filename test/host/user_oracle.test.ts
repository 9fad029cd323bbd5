/**
 * The user programs of images/user/ against the host's real kernel (docs/ARCHITECTURE.md, "The
 * host kernel as an oracle"): the host runs the very binaries bpfemu runs.
 *
 *  (a) From test/fixtures/host-kernel/user-programs.json (scripts/record-host-user.ts): with the
 *      'v6' mmap profile, bpfemu prints what the host printed, line for line, and exits with the
 *      same status (the signal, for the fault cases) — except the lines of {@link LATER}, each a
 *      later kernel change outside mmap with its reason. With the seed's 'v5.5' profile, the
 *      lines of {@link V55} differ too, each a v5.5 behaviour a later kernel fixed. A new
 *      difference (or a stale entry) fails. Runs everywhere.
 *  (b) Live: re-runs the programs on the host and compares with the fixture; skipped, with the
 *      reason, where the host refuses bpf() or runs another kernel than the fixture's.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { boot, type System } from '../../index.ts';
import type { MmapProfile } from '../../bpf/syscall/mmap.ts';
import { hostBpfAvailable } from './oracle.ts';
import { userProgram } from '../kernel/user_programs.ts';
import {
  USER_FIXTURE, USER_RUNS, hostRunUser, maskPids, runKey, type UserFixture, type UserRun,
} from '../../scripts/record-host-user.ts';

const fixture = JSON.parse(readFileSync(USER_FIXTURE, 'utf8')) as UserFixture;

/** A line the model prints differently: `host` (the first one after `after`, if given) becomes `model`. */
interface LineDifference {
  run: string;
  after?: string;
  host: string;
  /** The model's line(s) in its place ('' lines removed: none). */
  model: string[];
  why: string;
}

/** Later kernels (the host) against every profile of bpfemu: changes outside mmap. */
const LATER: LineDifference[] = [
  {
    run: 'mmap_errors', host: 'freeze again: EPERM', model: ['freeze again: EBUSY'],
    why: 'v6.5 "bpf: drop unnecessary bpf_capable() check in BPF_MAP_FREEZE command": a frozen map has no '
      + 'FMODE_CAN_WRITE, so a second freeze is -EPERM before v5.5\'s -EBUSY (test/host/syscall_oracle.test.ts).',
  },
];

/** The seed's v5.5 against the host: what later kernels fixed in BPF map mmap (bpf/syscall/mmap.ts). */
const V55: LineDifference[] = [
  {
    run: 'mmap_test', host: 'page 2 from offset PAGE shows val[512]=0 val[0 of page 1]=page 1',
    model: ['page 2 from offset PAGE shows val[512]=111 val[0 of page 1]=page 0 (offset ignored)'],
    why: 'v5.5 array_map_mmap() ignores vm_pgoff: every mapping starts at the first value page (fixed in 5.7).',
  },
  { run: 'mmap_errors', host: 'offset past the values: EINVAL', model: ['offset past the values: ok'], why: 'v5.5 ignores the offset (5.7 checks pgoff + size).' },
  { run: 'mmap_errors', host: 'offset + length past the values: EINVAL', model: ['offset + length past the values: ok'], why: 'v5.5 ignores the offset.' },
  { run: 'mmap_errors', host: 'R/W of a BPF_F_RDONLY_PROG map: EACCES', model: ['R/W of a BPF_F_RDONLY_PROG map: ok'], why: 'v5.5 has no BPF_F_RDONLY_PROG check in bpf_map_mmap() (6.x refuses a writable mapping).' },
  { run: 'mmap_errors', host: 'mprotect a R/O map mapping to R/W: EACCES', model: ['mprotect a R/O map mapping to R/W: ok'], why: 'v5.5 leaves VM_MAYWRITE on R/O mappings (1f6cb19be2e2, 5.7, clears it).' },
  { run: 'mmap_errors', host: 'mprotect a map mapping to PROT_EXEC: EACCES', model: ['mprotect a map mapping to PROT_EXEC: ok'], why: 'v5.5 leaves VM_MAYEXEC (cleared from 5.7).' },
  {
    run: 'writecnt', host: '  mprotect to R/W: EACCES',
    model: ['  mprotect to R/W: OK', "  the frozen map's value after a user store: 99"],
    why: 'v5.5: a R/O mapping of a frozen map can be made writable, and the frozen map changes (Jann Horn\'s report).',
  },
  {
    run: 'writecnt', after: 'mprotect a R/W mapping to R/O:', host: '  freeze with no mapping left: OK', model: ['  freeze with no mapping left: EBUSY'],
    why: 'v5.5 counts VM_WRITE at mmap and close: a mapping made R/O is never uncounted, writecnt stays 1.',
  },
  {
    run: 'writecnt', after: 'mprotect half of a R/W mapping:', host: '  freeze with no mapping left: OK', model: ['  freeze with no mapping left: EBUSY'],
    why: 'v5.5: the split\'s new R/W half is counted in open(), the half made R/O is never uncounted.',
  },
];

/** The host's output with the listed differences applied: what the model must print. */
function expectedOutput(host: string, diffs: readonly LineDifference[]): string {
  const lines = host.split('\n');
  for (const d of diffs) {
    const from = d.after === undefined ? 0 : lines.indexOf(d.after);
    const i = from < 0 ? -1 : lines.indexOf(d.host, from);
    if (i < 0) throw new Error(`${d.run}: the host output has no line "${d.host}"${d.after ? ` after "${d.after}"` : ''}: a stale entry`);
    lines.splice(i, 1, ...d.model);
  }
  return lines.join('\n');
}

let sys: System;
beforeAll(async () => { sys = await boot(); });
afterAll(() => sys.close());

function model(r: UserRun, profile: MmapProfile): { stdout: string; status: number } {
  sys.mapMmap.profile = profile;
  try {
    const res = sys.procs.runProgram(userProgram(r.name), { argv: [r.name, ...r.args] });
    return { stdout: maskPids(res.stdout), status: res.status };
  } finally {
    sys.mapMmap.profile = 'v5.5';
  }
}

// --- (a) the fixture ----------------------------------------------------------------------------

describe(`user programs vs the host kernel ${fixture.kernel} (fixture recorded ${fixture.recorded.slice(0, 10)})`, () => {
  it('the fixture has exactly the runs of USER_RUNS (re-record with scripts/record-host-user.ts)', () => {
    expect(Object.keys(fixture.results)).toEqual(USER_RUNS.map(runKey));
    for (const d of [...LATER, ...V55]) expect(fixture.results[d.run], d.run).toBeDefined();
  });

  const runs = USER_RUNS.map((r) => [runKey(r), r] as const);

  it.each(runs)("'v6' profile: %s prints and exits as on the host", (key, r) => {
    const host = fixture.results[key]!;
    const got = model(r, 'v6');
    expect(got.status, `${key}: status`).toBe(host.status);
    if (!r.statusOnly) expect(got.stdout).toBe(expectedOutput(host.stdout, LATER.filter((d) => d.run === r.name)));
    else expect(got.stdout.split('\n')[0]).toBe(host.stdout.split('\n')[0]);
  });

  it.each(runs)("'v5.5' profile: %s differs from the host only where v5.5 did", (key, r) => {
    const host = fixture.results[key]!;
    const got = model(r, 'v5.5');
    expect(got.status, `${key}: status`).toBe(host.status);
    if (!r.statusOnly) expect(got.stdout).toBe(expectedOutput(host.stdout, [...LATER, ...V55].filter((d) => d.run === r.name)));
  });

  it('every listed difference says why', () => {
    for (const d of [...LATER, ...V55]) expect(d.why.length, d.host).toBeGreaterThan(20);
  });
});

// --- (b) live -----------------------------------------------------------------------------------

describe('live: the host runs the programs again', () => {
  const avail = hostBpfAvailable();
  const kernel = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
  const reason = !avail.ok ? `host bpf() unavailable: ${avail.reason}`
    : kernel !== fixture.kernel ? `the host runs ${kernel}, the fixture is from ${fixture.kernel}: re-record it` : undefined;
  it.skipIf(reason !== undefined).each(USER_RUNS.map((r) => [runKey(r), r] as const))(`%s${reason ? ` (skipped: ${reason})` : ''}`, (key, r) => {
    const got = hostRunUser(r);
    const rec = fixture.results[key]!;
    expect(got.status).toBe(rec.status);
    if (!r.statusOnly) expect(got.stdout).toBe(rec.stdout);
  });
});
