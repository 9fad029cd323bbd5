/**
 * The bpf() bad-input table (test/bpf/syscall_cases.ts) against the host's real kernel
 * (docs/ARCHITECTURE.md, "The host kernel as an oracle").
 *
 *  (a) From test/fixtures/host-kernel/syscalls.json (recorded by scripts/record-host-syscalls.ts):
 *      every case gives on the host the errno the table says v5.5 gives, except those listed in
 *      {@link KNOWN_DIFFERENCES}, each with its reason and the kernel change responsible, so that
 *      a new difference (or a stale entry) fails. Runs everywhere.
 *  (b) Live: re-runs the table on the host (images/build/host/bpfcall) and compares with the
 *      fixture; skipped, with the reason, where the host refuses bpf().
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { BPF_ATTR_SIZE } from '../../bpf/syscall/attr.ts';
import { CASES, PROGS, attrBytes, type SyscallCase } from '../bpf/syscall_cases.ts';
import { hostBpfAvailable } from './oracle.ts';
import {
  SYSCALLS_FIXTURE, bpfcallScript, callLine, ensureBpfcall, fixtureLines, hostSyscalls,
  type HostCall, type SyscallsFixture,
} from '../../scripts/record-host-syscalls.ts';

const fixture = JSON.parse(readFileSync(SYSCALLS_FIXTURE, 'utf8')) as SyscallsFixture;

const EPERM = 1, ENOENT = 2, EBADF = 9, EBUSY = 16, EINVAL = 22, E2BIG = 7, ENOSPC = 28, EBADFD = 77;

interface KnownDifference {
  /** The host's errno (0: the call succeeds there). */
  host: number;
  /**
   * `kernel`: v5.5 gives the table's errno and a later kernel changed it (`since`, `change`).
   * `table`: the table's errno is wrong for v5.5 too: v5.5 gives what the host gives.
   */
  kind: 'kernel' | 'table';
  /** The first release with the host's behaviour (for `table`: the one that introduced the code). */
  since: string;
  /** The upstream change (subject line), or for `table` the code v5.5 runs. */
  change: string;
  why: string;
}

/**
 * Every case whose host errno is not the table's v5.5 errno. Found with the recorded fixture on
 * 6.18.44; the changes were looked up in the bpf mailing-list archives and kernel sources.
 */
const KNOWN_DIFFERENCES: Record<string, KnownDifference> = {
  'map create: oversized hash key': {
    host: 0, kind: 'kernel', since: 'v5.11',
    change: 'bpf: Lift hashtab key_size limit (Florian Lehner, bpf-next v4 2020-10-28)',
    why: 'v5.5 htab_map_alloc_check(): key_size > MAX_BPF_STACK (512) -> -E2BIG. The patch dropped that check '
      + '(keys may come from map values, e.g. PATH_MAX paths); only key_size + value_size >= KMALLOC_MAX_SIZE - '
      + 'sizeof(struct htab_elem) is -E2BIG now, so a 600-byte key is accepted.',
  },
  'map create: oversized array value': {
    host: 0, kind: 'kernel', since: 'v6.0',
    change: 'bpf: remove obsolete KMALLOC_MAX_SIZE restriction on array map value size (Andrii Nakryiko, bpf-next 2022-07-15)',
    why: 'v5.5 array_map_alloc_check(): value_size > KMALLOC_MAX_SIZE (4 MiB on x86-64) -> -E2BIG. Since, the '
      + 'syscall side uses kvmalloc() and the limit is value_size > INT_MAX: 1 GiB values are accepted (this case '
      + 'then allocates 4 x 1 GiB of zeroed kernel memory on the host, hence LIVE_SKIP).',
  },
  'freeze: twice': {
    host: EPERM, kind: 'kernel', since: 'v6.5',
    change: 'bpf: drop unnecessary bpf_capable() check in BPF_MAP_FREEZE command (Andrii Nakryiko, bpf-next 2023-05-02)',
    why: 'v5.5 map_freeze(): frozen -> -EBUSY, checked before capable(CAP_SYS_ADMIN). The patch replaced the '
      + 'capability check with `!(map_get_sys_perms(map, f) & FMODE_CAN_WRITE) -> -EPERM`, placed before the '
      + 'frozen check; map_get_sys_perms() clears FMODE_CAN_WRITE once the map is frozen, so a second freeze '
      + 'is -EPERM before it can be -EBUSY.',
  },
  'prog load: log_size under 128': {
    host: ENOSPC, kind: 'kernel', since: 'v6.4',
    change: 'bpf: Remove minimum size restrictions on verifier log buffer (Andrii Nakryiko, 03cc3aa6a533)',
    why: 'v5.5 bpf_check(): log->len_total < 128 -> -EINVAL ("log attributes have to be sane"). 6.4 dropped the '
      + 'minimum; the 64-byte log then fills up, which is -ENOSPC (kept even with the rotating log of '
      + '"bpf: Switch BPF verifier log to be a rotating log by default", same series).',
  },
};

/** Cases the live run leaves out (the fixture still checks them). */
const LIVE_SKIP: Record<string, string> = {
  'map create: oversized array value': 'succeeds on 6.x: 4 GiB of zeroed kernel memory for each run (see KNOWN_DIFFERENCES)',
};

const errnoName: Record<number, string> = {
  0: 'success', [EPERM]: 'EPERM', [ENOENT]: 'ENOENT', [E2BIG]: 'E2BIG', [EBADF]: 'EBADF', 13: 'EACCES', 14: 'EFAULT',
  [EBUSY]: 'EBUSY', 17: 'EEXIST', [EINVAL]: 'EINVAL', [ENOSPC]: 'ENOSPC', [EBADFD]: 'EBADFD',
};
const name = (e: number): string => errnoName[e] ?? `errno ${e}`;

/** The table's v5.5 answer, or the known difference's host answer. */
function expectedOnHost(c: SyscallCase): number {
  return KNOWN_DIFFERENCES[c.name]?.host ?? c.errno;
}

/** Checks a set of host answers against the table and KNOWN_DIFFERENCES. */
function checkAgainstTable(results: Record<string, HostCall>, c: SyscallCase): void {
  const r = results[c.name]!;
  const known = KNOWN_DIFFERENCES[c.name];
  const msg = `${c.name}: host ${name(r.errno)}, v5.5 (table) ${name(c.errno)}`
    + (known ? ` (known: ${known.why})` : ' — a difference not in KNOWN_DIFFERENCES: find the kernel change and list it, or fix the table');
  expect(r.errno, msg).toBe(expectedOnHost(c));
  expect(r.errno === 0 ? r.ret >= 0 : r.ret === -1, `${c.name}: ret ${r.ret} with errno ${r.errno}`).toBe(true);
}

// --- (a) the fixture ----------------------------------------------------------------------------

describe(`bpf() bad-input table vs the host kernel ${fixture.kernel} (fixture recorded ${fixture.recorded.slice(0, 10)})`, () => {
  it('the fixture has exactly the table\'s cases (re-record with scripts/record-host-syscalls.ts when the table changes)', () => {
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
    expect(Object.keys(fixture.results)).toEqual(CASES.map((c) => c.name));
  });

  it.each(CASES.map((c) => [c.name, c] as const))('%s', (_n, c) => {
    checkAgainstTable(fixture.results, c);
  });

  it('KNOWN_DIFFERENCES: every entry is a case, still differs, and says why', () => {
    for (const [n, d] of Object.entries(KNOWN_DIFFERENCES)) {
      const c = CASES.find((x) => x.name === n);
      expect(c, `${n}: no such case`).toBeDefined();
      expect(d.host, `${n}: the table now agrees with the host: remove the entry`).not.toBe(c!.errno);
      expect(fixture.results[n]!.errno, n).toBe(d.host);
      expect(d.since).toMatch(/^v\d+\.\d+$/);
      expect(d.change.length && d.why.length).toBeGreaterThan(0);
    }
    for (const n of Object.keys(LIVE_SKIP)) expect(CASES.some((c) => c.name === n), n).toBe(true);
  });

  it('the counts: the host agrees with v5.5 on all but the listed cases', () => {
    const differ = CASES.filter((c) => fixture.results[c.name]!.errno !== c.errno).map((c) => c.name);
    expect(differ.sort()).toEqual(Object.keys(KNOWN_DIFFERENCES).sort());
    // Recorded on 6.18.44: 50 cases, 44 as v5.5; 4 later kernel changes, 2 table entries wrong for v5.5 too.
    expect(CASES.length - differ.length).toBeGreaterThanOrEqual(44);
  });
});

// --- what bpfcall is sent (no host needed) ------------------------------------------------------

/** Lays out a `call` line as bpfcall does (images/host/bpfcall.c), `$names` from `fx`. */
function layoutLine(line: string, fx: Record<string, bigint>): { cmd: number; size: number; bytes: Uint8Array } {
  const [verb, cmd, size, ...fields] = line.split(' ');
  expect(verb).toBe('call');
  const bytes = new Uint8Array(Math.max(Number(size), BPF_ATTR_SIZE));
  for (const f of fields) {
    const m = /^(\d+):(\d+):(.*)$/.exec(f);
    expect(m, f).not.toBeNull();
    const off = Number(m![1]), w = Number(m![2]), v = m![3]!;
    if (v.startsWith('x')) {
      bytes.set(Buffer.from(v.slice(1), 'hex'), off);
      continue;
    }
    const n = v.startsWith('$') ? fx[v.slice(1)]! : BigInt(v);
    expect(n, f).toBeDefined();
    for (let i = 0; i < w; i++) bytes[off + i] = Number((n >> BigInt(8 * i)) & 0xffn);
  }
  return { cmd: Number(cmd), size: Number(size), bytes: bytes.subarray(0, Number(size)) };
}

describe('bpfcall input: the same attr bytes as bpfemu is given', () => {
  // Distinct, recognisable values for every placeholder: fds small, pointers wide.
  const names = ['array', 'hash', 'frozen', 'prog', 'key', 'key3', 'key9', 'value', 'log', 'gpl', ...Object.keys(PROGS).map((p) => `insns:${p}`)];
  const fx = Object.fromEntries(names.map((n, i) => [n, i < 4 ? BigInt(3 + i) : 0x7f0000001000n + BigInt(i) * 0x10000n]));

  it.each(CASES.map((c) => [c.name, c] as const))('%s', (_n, c) => {
    const { cmd, size, bytes } = layoutLine(callLine(c), fx);
    expect(cmd).toBe(c.cmd);
    expect(size).toBe(c.size ?? BPF_ATTR_SIZE);
    expect(Buffer.from(bytes).toString('hex')).toBe(Buffer.from(attrBytes(c, fx)).toString('hex'));
  });

  it('the fixtures are made as test/bpf/syscall.test.ts makes them, before the cases, in order', () => {
    const lines = fixtureLines();
    const script = bpfcallScript(CASES).split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    expect(script.slice(0, lines.length)).toEqual(lines);
    expect(script.slice(lines.length)).toEqual(CASES.map(callLine));
    expect(lines.filter((l) => l.startsWith('fd ')).map((l) => l.split(' ')[1])).toEqual(['array', 'hash', 'frozen', 'prog']);
    expect(lines.at(-1)).toBe('do 22 120 0:4:$frozen'); // BPF_MAP_FREEZE of the one-entry array
    for (const [p, hex] of Object.entries(PROGS)) expect(lines).toContain(`buf insns:${p} ${hex.length / 2} ${hex}`);
  });
});

// --- (b) live -----------------------------------------------------------------------------------

const avail = ((): { ok: boolean; reason?: string } => {
  const a = hostBpfAvailable();
  if (!a.ok) return a;
  const missing = ensureBpfcall();
  return missing ? { ok: false, reason: missing } : a;
})();
const liveIt = avail.ok ? it : it.skip;
const why = avail.ok ? '' : ` (skipped: ${avail.reason})`;

describe(`live: the bad-input table on the host kernel now${why}`, () => {
  const cases = CASES.filter((c) => !(c.name in LIVE_SKIP));
  let live: Record<string, HostCall> = {};
  let kernel = '';
  beforeAll(() => {
    if (!avail.ok) return;
    live = hostSyscalls(cases);
    kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  });

  liveIt.each(cases.map((c) => [c.name, c] as const))('%s: as recorded (same kernel), else as the table and KNOWN_DIFFERENCES say', (_n, c) => {
    const r = live[c.name]!;
    if (kernel === fixture.kernel) {
      const rec = fixture.results[c.name]!;
      expect(r.errno, `${c.name}: live ${name(r.errno)}, recorded ${name(rec.errno)}`).toBe(rec.errno);
      expect(r.ret >= 0).toBe(rec.ret >= 0);
    } else {
      checkAgainstTable(live, c);
    }
  });
});
