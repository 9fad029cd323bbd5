import { describe, it, expect } from 'vitest';
import { run, batchFile, bpfObj } from './bin.ts';

const OBJ = bpfObj('objtest');
const FENTRY = bpfObj('fentry_test');

describe('batch files: one machine for every line', () => {
  it('objects loaded on one line are shown, dumped and run by the next', () => {
    const f = batchFile(`# comments and blank lines are skipped

prog load ${OBJ}
prog show id 1
map show id 1
prog dump xlated id 1
prog dump jited id 1 opcodes
map dump ${OBJ} counts --run xdp --repeat 4
`);
    const r = run('batch', 'file', f);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^1: xdp {2}name xdp_count {2}tag [0-9a-f]{16} {2}gpl$/m);
    expect(r.out).toMatch(/^1: hash {2}name counts {2}flags 0x0\n\tkey 4B {2}value 8B {2}max_entries 16 {2}memlock \d+B$/m);
    expect(r.out).toMatch(/^ {3}0: \(bf\) r6 = r1$/m); // xlated, as the verifier prints it
    expect(r.out).toMatch(/call bpf_map_lookup_elem#1/);
    expect(r.out).toMatch(/^bpf_prog_[0-9a-f]{16}_xdp_count:\n {3}0:\tnop dword ptr \[rax \+ rax\]\n\t0f 1f 44 00 00$/m);
    expect(r.out).toContain('key: 01 00 00 00  value: 04 00 00 00 00 00 00 00');
  });

  it('-j on a line prints that line\'s JSON as bpftool does', () => {
    const r = run('batch', 'file', batchFile(`prog load ${OBJ}\n-j prog show id 2\n`));
    const last = JSON.parse(r.out.trim().split('\n').at(-1)!);
    expect(last).toMatchObject({ id: 2, type: 'kprobe', name: 'probe_skb', gpl_compatible: true, jited: true, btf_id: 1 });
    expect(last.map_ids).toEqual(expect.arrayContaining([2, 3]));
  });

  it('an error names its line and stops the batch', () => {
    const r = run('batch', 'file', batchFile('call bpf_fentry_test1 1\n\n# x\nprog show id 99\ncall bpf_fentry_test1 5\n'));
    expect(r.out).toBe('2\n');
    expect(r.err).toMatch(/^Error: get by id \(99\): No such file or directory\nError: .*:4: 'prog show id 99' failed; 1 command before it succeeded\n$/);
    expect(r.code).toBe(1);
  });

  it.each([
    ['prog show id x', /'x' is not an integer/],
    ['prog show 5', /expected 'id N'/],
    ['prog dump foo id 1', /expected xlated or jited/],
    ['call "unterminated', /unterminated " quote/],
    ['frobnicate', /unknown command 'frobnicate'/],
  ])('bad line %j: a clear error, exit 2', (line, msg) => {
    const r = run('batch', 'file', batchFile(`${line}\n`));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(msg);
  });

  it('link show lists fentry links; feature lists what is supported', () => {
    expect(run('feature').out).toMatch(/^program types: .*tracing.*\nmap types: .*hash.*\nhelpers: bpf_map_lookup_elem#1/);
    expect(JSON.parse(run('-j', '--kernel', '5.12', 'link', 'show').out)).toEqual([]);
    // v5.5 has no BPF_LINK_GET_NEXT_ID (5.8): bpftool's error with the kernel's -EINVAL.
    expect(run('link', 'show')).toEqual({ code: 1, out: '', err: "Error: can't get next link: Invalid argument\n" });
    void FENTRY;
  });
});
