/**
 * The verifier's selftest tables (test/bpf/verifier/tables.ts) against the host's real kernel
 * (docs/ARCHITECTURE.md, "The host kernel as an oracle").
 *
 *  (a) From test/fixtures/host-kernel/verifier.json (recorded by scripts/record-host-verifier.ts):
 *      bpfemu's verifier gives each program the host's verdict, and for a rejection the host's
 *      message (its log, after the wording changes of {@link HOST_WORDING} are undone), except the
 *      programs of {@link VERDICT_CHANGES} and {@link MESSAGE_CHANGES}: each says which behaviour
 *      bpfemu follows (v5.5/v5.10's) and the kernel change behind the host's, so that a new
 *      difference, or a stale entry, fails. Runs everywhere.
 *  (b) Live: loads the tables in the host kernel again and compares with the fixture (same
 *      kernel release); skipped, with the reason, where the host refuses bpf() or runs another
 *      release than the one recorded.
 */
import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { CASES_BY_KEY } from '../bpf/verifier/tables.ts';
import { runCase } from '../bpf/verifier/harness.ts';
import { hostBpfAvailable } from './oracle.ts';
import { VERIFIER_FIXTURE, hostVerify, type VerifierFixture } from '../../scripts/record-host-verifier.ts';

const fixture = JSON.parse(readFileSync(VERIFIER_FIXTURE, 'utf8')) as VerifierFixture;

interface Change { since: string; change: string; why: string }

const UNINIT_STACK: Change = {
  since: 'v6.3', change: 'bpf: Allow reads from uninit stack',
  why: 'a privileged (CAP_PERFMON) program may read stack it never wrote; v5.5 rejects the read',
};
const CFG_PRIV: Change = {
  since: 'v6.7', change: 'bpf: fix control-flow graph checking in privileged mode',
  why: 'check_cfg() no longer looks for back-edges in privileged programs; loops (and recursion) are left to the walk',
};

/** Programs the host kernel judges otherwise than v5.5 does (bpfemu follows v5.5). */
const VERDICT_CHANGES: Readonly<Record<string, Change>> = {
  'basic/uninitialized stack1': UNINIT_STACK,
  'basic/uninitialized stack2': UNINIT_STACK,
  'stack/raw_stack: no skb_load_bytes': UNINIT_STACK,
  'pruning and precision/search pruning: all branches should be verified (invalid stack access)': UNINIT_STACK,
  'pruning and precision/write tracking and register parent chain bug': UNINIT_STACK,
  'array access and variable offsets/variable-offset stack read, uninitialized': UNINIT_STACK,
  'array access and variable offsets/indirect variable-offset stack access, max_off+size > max_initialized': UNINIT_STACK,
  'array access and variable offsets/indirect variable-offset stack access, min_off < min_initialized': UNINIT_STACK,
  'loops/bounded loop, start in the middle': CFG_PRIV,
  'basic/invalid 64-bit BPF_END': {
    since: 'v6.6', change: 'bpf: Support new unconditional bswap instruction',
    why: 'BPF_ALU64 | BPF_END is the v4 ISA\'s bswap; v5.5 knows no such opcode (d7)',
  },
  'context/past the end of __sk_buff': {
    since: 'after v5.5', change: 'struct __sk_buff grew (tstamp_type, hwtstamp)',
    why: 'offset 176 is past v5.5\'s struct __sk_buff, a field of the host\'s',
  },
  'context/ST into ctx': {
    since: 'v6.3', change: 'bpf: allow ctx writes using BPF_ST_MEM instruction',
    why: 'v5.5 refuses BPF_ST into ctx (only BPF_STX is converted)',
  },
};

/** Wordings of the host's log that v5.10 (bpfemu's messages) spells otherwise: host → v5.10. */
const HOST_WORDING: readonly [RegExp, string, string][] = [
  [/'scalar'/g, "'inv'", 'SCALAR_VALUE is printed as \'scalar\' (was \'inv\')'],
  [/BPF_ATOMIC stores into/g, 'BPF_XADD stores into', 'atomics other than xadd: the message names BPF_ATOMIC'],
  [/(misaligned packet access off \d+\+)0\+/g, '$1(0x0; 0x0)+', 'a constant var_off is printed as its value, not as a tnum'],
  [/(misaligned stack access off )0\+/g, '$1(0x0; 0x0)+', 'a constant var_off is printed as its value, not as a tnum'],
];

/** Rejections whose message is another in the host kernel (after HOST_WORDING). */
const MESSAGE_CHANGES: Readonly<Record<string, Change & { host: string }>> = {
  'bpf-to-bpf calls/calls: wrong src reg': {
    host: 'invalid kernel function call not eliminated in verifier pass', since: 'v5.13', change: 'bpf: Support bpf program calling kernel function',
    why: 'src_reg 2 on a call is BPF_PSEUDO_KFUNC_CALL there; v5.5 refuses the reserved field',
  },
  'bpf-to-bpf calls/calls: jump back loop': { host: 'the call stack of 9 frames is too deep', ...CFG_PRIV },
  'bpf-to-bpf calls/calls: recursive call. test1': { host: 'the call stack of 9 frames is too deep', ...CFG_PRIV },
  'bpf-to-bpf calls/calls: recursive call. test2': { host: 'the call stack of 9 frames is too deep', ...CFG_PRIV },
  'loops/bounded recursion': { host: 'the call stack of 8 frames is too deep !', ...CFG_PRIV },
  'stack/raw_stack: skb_load_bytes, invalid access 1': {
    host: 'invalid write to stack R3 off=-513 size=8', since: 'after v5.10', change: 'helper stack arguments checked by access type (read or write)',
    why: 'a helper\'s stack argument is checked as a read or a write, and the message says which',
  },
  'stack/raw_stack: skb_load_bytes, invalid access 2': {
    host: 'invalid write to stack R3 off=-1 size=8', since: 'after v5.10', change: 'helper stack arguments checked by access type (read or write)',
    why: 'a helper\'s stack argument is checked as a read or a write, and the message says which',
  },
  'array access and variable offsets/indirect variable-offset stack access, max out of bound': {
    host: 'invalid variable-offset read from stack R2', since: 'after v5.10', change: 'helper stack arguments checked by access type (read or write)',
    why: 'the variable-offset bounds check of a helper argument is the one of a direct read',
  },
  'array access and variable offsets/indirect variable-offset stack access, min out of bound': {
    host: 'invalid variable-offset read from stack R2', since: 'after v5.10', change: 'helper stack arguments checked by access type (read or write)',
    why: 'the variable-offset bounds check of a helper argument is the one of a direct read',
  },
};

const inV510Words = (log: string): string => HOST_WORDING.reduce((s, [re, to]) => s.replace(re, to), log);

describe(`the verifier tables against the host kernel (${fixture.kernel}, recorded ${fixture.recorded.slice(0, 10)})`, () => {
  const keys = [...CASES_BY_KEY.keys()];

  it('the fixture has every program of the tables, and only those', () => {
    expect(Object.keys(fixture.results).sort()).toEqual([...keys].sort());
  });

  it('bpfemu\'s verdict is the host\'s, but for the listed kernel changes', () => {
    const differ: string[] = [];
    for (const k of keys) {
      const hostOk = fixture.results[k]!.errno === 0, ours = runCase(CASES_BY_KEY.get(k)!).errno === 0;
      if (hostOk !== ours) differ.push(k);
    }
    expect(differ.sort()).toEqual(Object.keys(VERDICT_CHANGES).sort());
    // Where they differ, the host is the one that accepts (every change listed relaxes a rule).
    for (const k of differ) expect(fixture.results[k]!.errno).toBe(0);
  });

  it('a program both reject: the host\'s log has bpfemu\'s message, but for the listed changes', () => {
    const differ: string[] = [];
    let same = 0;
    for (const k of keys) {
      const c = CASES_BY_KEY.get(k)!, host = fixture.results[k]!;
      if (host.errno === 0 || c.result !== 'reject' || !c.errstr) continue;
      const ours = runCase(c).log.join('\n');
      expect(ours, k).toContain(c.errstr);
      if (inV510Words(host.log).includes(c.errstr)) { same++; continue; }
      differ.push(k);
      expect(host.log, k).toContain(MESSAGE_CHANGES[k]?.host ?? c.errstr);
    }
    expect(differ.sort()).toEqual(Object.keys(MESSAGE_CHANGES).sort());
    expect(same).toBeGreaterThanOrEqual(170);
  });
});

describe('live: the tables in the host kernel now', () => {
  const avail = hostBpfAvailable();
  const kernel = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
  const reason = !avail.ok ? avail.reason : kernel !== fixture.kernel ? `the host runs ${kernel}, the fixture is of ${fixture.kernel}` : undefined;
  it.skipIf(reason !== undefined)(`gives the fixture's verdicts${reason ? ` (skipped: ${reason})` : ''}`, () => {
    const live = hostVerify([...CASES_BY_KEY.keys()]);
    const differ = Object.keys(live).filter((k) => (live[k]!.errno === 0) !== (fixture.results[k]!.errno === 0));
    expect(differ).toEqual([]);
  });
});
