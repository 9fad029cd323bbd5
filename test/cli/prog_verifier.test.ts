/**
 * @fileoverview `bpfemu prog load OBJ [--section NAME] --log`: the verifier's log of each
 * program as PROG_LOAD wrote it to log_buf; a rejected program prints its log (the failing path
 * and the kernel's message) and exits 1; --section loads one program of the object.
 */
import { describe, it, expect } from 'vitest';
import { fileURLToPath } from 'node:url';
import { run } from './bin.ts';

const DEMO = fileURLToPath(new URL('../../images/build/bpf/verifier_demo.bpf.o', import.meta.url));
const FILTER = fileURLToPath(new URL('../../images/build/bpf/xdp_filter.bpf.o', import.meta.url));
const STATS = /processed \d+ insns \(limit 1000000\) max_states_per_insn \d+ total_states \d+ peak_states \d+ mark_read \d+/;

describe('bpfemu prog load --log', () => {
  it('a rejected program: its log (the path walked, the kernel\'s message) on stdout, the error on stderr, exit 1', () => {
    const r = run('prog', 'load', DEMO);
    expect(r.code).toBe(1);
    expect(r.out).toBe([
      '-- BEGIN DUMP LOG: xdp_unchecked (xdp/unchecked) ---',
      '0: (61) r1 = *(u32 *)(r1 +0)',
      '1: (71) r1 = *(u8 *)(r1 +0)',
      'invalid access to packet, off=0 size=1, R1(id=0,off=0,r=0)',
      'R1 offset is outside of the packet',
      'processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0',
      '-- END LOG --',
      '',
    ].join('\n'));
    expect(r.err).toBe("Error: program 'xdp_unchecked': BPF_PROG_LOAD: EACCES (-13)\n");
  });

  it('--section loads one program; --log prints its log (level 1 on success: the statistics)', () => {
    const r = run('prog', 'load', DEMO, '--section', 'xdp/checked', '--log');
    expect(r.code).toBe(0);
    const lines = r.out.split('\n');
    expect(lines[0]).toBe('-- BEGIN DUMP LOG: xdp_checked (xdp/checked) ---');
    expect(lines[1]).toMatch(STATS);
    expect(lines[2]).toBe('-- END LOG --');
    expect(lines[3]).toMatch(/^1: xdp {2}name xdp_checked {2}tag [0-9a-f]{16} {2}gpl$/);
    expect(r.out).not.toContain('xdp_unchecked');
  });

  it('--log 2: the state before every instruction; -j gives the logs as JSON', () => {
    const r = run('prog', 'load', DEMO, '--section', 'xdp_unchecked', '--log', '2');
    expect(r.code).toBe(1);
    expect(r.out).toContain('0: R1=ctx(id=0,off=0,imm=0) R10=fp0\n0: (61) r1 = *(u32 *)(r1 +0)\n1: R1_w=pkt(id=0,off=0,r=0,imm=0) R10=fp0\n');
    const j = JSON.parse(run('-j', 'prog', 'load', FILTER, '--log').out);
    expect(j.programs.map((p: { name: string }) => p.name)).toEqual(['xdp_filter']);
    expect(j.logs).toEqual([{ name: 'xdp_filter', section: 'xdp', log: expect.stringMatching(STATS) }]);
  });

  it.each([
    [['prog', 'load', DEMO, '--section', 'nope'], /^Error: no program 'nope' in verifier_demo \(programs: xdp\/checked \(xdp_checked\), xdp\/unchecked \(xdp_unchecked\)\)$/],
    [['prog', 'load', DEMO, '--log', '9'], /^Error: --log 9: expected a log level 1\.\.7/],
  ])('%j is a usage error (exit 2)', (args, msg) => {
    const r = run(...args);
    expect(r.code).toBe(2);
    expect(r.err.trim()).toMatch(msg);
  });
});
