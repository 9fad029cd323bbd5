import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/bpfemu.js', import.meta.url));
const OBJ = fileURLToPath(new URL('../../images/build/bpf/objtest.bpf.o', import.meta.url));
const run = (...args: string[]) => {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

describe('bpfemu prog / map / trace', () => {
  it('prog load shows each program as bpftool prog show does', () => {
    const r = run('prog', 'load', OBJ);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^1: xdp {2}name xdp_count {2}tag [0-9a-f]{16} {2}gpl\n\tloaded_at \d+ {2}uid 0\n\txlated \d+B {2}jited \d+B {2}memlock \d+B {2}map_ids [\d,]+\n\tbtf_id 1$/m);
    expect(r.out).toMatch(/^2: kprobe {2}name probe_skb/m);
    expect(run('prog', 'load', OBJ, '--engine', 'interp').out).toMatch(/xlated \d+B {2}not jited/);
  });

  it('prog run prints the return value and average duration; -j gives JSON', () => {
    expect(run('prog', 'run', OBJ, 'xdp', '--repeat', '3').out).toMatch(/^Return value: 2, duration \(average\): \d+ns\n$/);
    const j = JSON.parse(run('-j', 'prog', 'run', OBJ, 'xdp_count', '--data-out', '--data-in', '00'.repeat(20)).out);
    expect(j).toMatchObject({ retval: 2, data_out: '00'.repeat(20) });
  });

  it('map dump after a run shows what the program counted', () => {
    const out = run('map', 'dump', OBJ, 'counts', '--run', 'xdp', '--repeat', '5').out;
    expect(out).toBe('map 1: counts\nkey: 01 00 00 00  value: 05 00 00 00 00 00 00 00\nFound 1 element\n');
  });

  it('trace pipe after a run shows bpf_printk lines', () => {
    const lines = run('trace', 'pipe', OBJ, 'xdp', '--repeat', '2', '--data-in', 'ab'.repeat(30)).out.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/^ +init-1 +\[000\] d\.\.31 +\d+\.\d{6}: bpf_trace_printk: xdp_count: run 2, len 30$/);
  });

  it.each([
    [['prog', 'run', OBJ, 'nope'], 2, /^Error: no program 'nope' in objtest/],
    [['prog', 'run', OBJ, 'xdp', '--data-in', 'zz'], 2, /not hex bytes/],
    [['prog', 'run', OBJ, 'xdp', '--data-in', '0000'], 1, /BPF_PROG_TEST_RUN of xdp: EINVAL \(-22\)/],
    [['prog', 'run', OBJ, 'probe_skb'], 1, /ENOTSUPP \(-524\)/],
    [['prog', 'load', '/no/such.o'], 2, /not found/],
    [['prog', 'load', OBJ, '--engine', 'fast'], 2, /--engine fast/],
    [['map', 'dump', OBJ, 'nomap'], 2, /no map 'nomap'/],
  ])('%j fails with exit %d', (args, code, msg) => {
    const r = run(...args);
    expect(r.code).toBe(code);
    expect(r.err).toMatch(msg);
    expect(r.err.trim().split('\n')).toHaveLength(1);
  });
});

describe('bpfemu trace', () => {
  const FENTRY = fileURLToPath(new URL('../../images/build/bpf/fentry_test.bpf.o', import.meta.url));
  const FEXIT = fileURLToPath(new URL('../../images/build/bpf/fexit_test.bpf.o', import.meta.url));

  it('--test-run: every selftest program saw its values; stats with --stats', () => {
    const r = run('trace', FEXIT, '--test-run', '--stats');
    expect(r.code).toBe(0);
    for (let i = 1; i <= 6; i++) expect(r.out).toContain(`test${i}_result = 1`);
    expect(r.out).toMatch(/prog test1: run_cnt 1 run_time_ns [1-9]\d*/);
  });

  it('-j --call: one JSON object, integers as decimal strings', () => {
    const j = JSON.parse(run('-j', 'trace', FENTRY, '--call', 'bpf_fentry_test3', '4', '5', '6').out);
    expect(j.ret).toBe('15');
    expect(j.globals.test3_result).toBe('1');
    expect(j.globals.test1_result).toBe('0');
    expect(j.progs).toContainEqual({ name: 'test3', run_cnt: '0', run_time_ns: '0' });
  });

  it('--step prints the instruction trace through the trampoline and the program', () => {
    const out = run('trace', FENTRY, '--call', 'bpf_fentry_test1', '1', '--step').out;
    expect(out).toMatch(/^[0-9a-f]+ {2}bpf_fentry_test1 +call 0x[0-9a-f]+/m);
    expect(out).toMatch(/bpf_trampoline_\d+ +push rbp/);
    expect(out).toMatch(/bpf_prog_[0-9a-f]{16}_test1 +nop dword ptr \[rax \+ rax\]/);
    expect(out).toContain('return value: 2');
  });

  it.each([
    [['trace', FENTRY], 2, /exactly one of --call/],
    [['trace', FENTRY, '--test-run', '--step'], 2, /--step needs --call/],
    [['trace', FENTRY, '--call', 'nope'], 2, /unknown kernel function: nope/],
    [['trace', OBJ, '--test-run'], 2, /has no fentry\/fexit\/fmod_ret programs/],
  ])('%j fails with exit %d', (args, code, msg) => {
    const r = run(...args);
    expect(r.code).toBe(code);
    expect(r.err).toMatch(msg);
  });
});
