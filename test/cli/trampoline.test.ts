/**
 * @fileoverview `bpfemu trampoline show|diff` through the real binary: `--kernel` given twice
 * after the subcommand parses as two profiles; the aligned diff's counts agree with its rows;
 * per profile, the trampoline of the same function and programs shows that generation's
 * changes (KERNEL.md A.2 and A.5, each with its source); bad input: an unknown profile, one
 * --kernel, an unknown function (exit 2), and a shape the profile cannot trace (the kernel's
 * errno, exit 1).
 */
import { describe, it, expect } from 'vitest';
import { spawn } from 'node:child_process';
import { BIN, bpfObj, type CliRun } from './bin.ts';
import { alignTexts } from '../../cli/tramp/align.ts';

/** The binary in a child process, asynchronously, so the cases of a table run side by side. */
const bin = (...args: string[]): Promise<CliRun> => new Promise((resolve) => {
  const p = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, BPFEMU_LOG: 'silent' } });
  let out = '', err = '';
  p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  p.on('close', (code) => resolve({ code, out, err }));
});

interface Side { kernel: string; symbol: string; insns: number; bytes: number; progs: { name: string; kind: string }[]; code: { offset: number; bytes: string; text: string }[] }
const texts = (s: Side): string[] => s.code.map((c) => c.text);

describe('the alignment (LCS, as diff -y)', () => {
  it.each([
    [['a', 'b', 'c'], ['a', 'b', 'c'], '= = ='],
    [['a', 'b', 'c'], ['a', 'x', 'c', 'd'], '= | = >'],
    [['push', 'save', 'call', 'ret'], ['push', 'nr', 'save', 'ip', 'call', 'test', 'je', 'ret'], '= > = > = > > ='],
    [['a', 'b'], [], '< <'],
    [['p', 'q', 'r'], ['r', 'q'], '< < = >'],
  ])('%j vs %j: %s', (a, b, ops) => {
    const rows = alignTexts(a, b);
    expect(rows.map((r) => r.op).join(' ')).toBe(ops);
    expect(rows.flatMap((r) => (r.a === undefined ? [] : [r.a]))).toEqual(a.map((_, i) => i));
    expect(rows.flatMap((r) => (r.b === undefined ? [] : [r.b]))).toEqual(b.map((_, i) => i));
    for (const r of rows.filter((x) => x.op === '=')) expect(a[r.a!]).toBe(b[r.b!]);
  });
});

describe('bpfemu trampoline diff', () => {
  it('--kernel A --kernel B after the subcommand are two profiles; the rows account for every instruction', async () => {
    const [j, t, g] = await Promise.all([
      bin('-j', 'trampoline', 'diff', 'bpf_fentry_test2', '--kernel', '5.5', '--kernel', '6.6'),
      bin('trampoline', 'diff', 'bpf_fentry_test2', '--kernel', '5.5', '--kernel', '6.6'),
      bin('--kernel', '5.5', 'trampoline', 'diff', 'bpf_fentry_test2', '--kernel', 'v6.6', '-j'),
    ]);
    expect(j.code, j.err).toBe(0);
    const d = JSON.parse(j.out) as { a: Side; b: Side; rows: { op: string; a: number | null; b: number | null }[]; identical: number };
    expect([d.a.kernel, d.b.kernel]).toEqual(['5.5', '6.6']);
    expect(JSON.parse(g.out).a.kernel).toBe('5.5'); // the global position and a v prefix work too
    expect(JSON.parse(g.out).b.kernel).toBe('6.6');
    for (const [side, key] of [[d.a, 'a'], [d.b, 'b']] as const) {
      const idx = d.rows.map((r) => r[key]).filter((x) => x !== null);
      expect(idx).toEqual(side.code.map((_, i) => i)); // each instruction once, in order
      expect(side.insns).toBe(side.code.length);
      expect(side.bytes).toBe(side.code.reduce((n, c) => n + c.bytes.length / 2, 0));
    }
    expect(d.identical).toBe(d.rows.filter((r) => r.op === '=').length);
    // An '=' row has the same instruction on both sides, addresses named.
    for (const r of d.rows.filter((x) => x.op === '=')) expect(d.a.code[r.a!]!.text.replace(/tramp\+0x[0-9a-f]+/, 'tramp')).toBe(d.b.code[r.b!]!.text.replace(/tramp\+0x[0-9a-f]+/, 'tramp'));
    expect(d.a.code.map((c) => c.text)).toContain('call <__bpf_prog_enter>');
    expect(d.a.code.map((c) => c.text)).toContain('call <bpf_fentry_test2+0x5>');
    expect(d.a.code.map((c) => c.text)).toContain('movabs rdi, <prog fentry>');
    // The text: the two columns, then the counts of each side.
    expect(t.code).toBe(0);
    const lines = t.out.trimEnd().split('\n');
    expect(lines[0]).toBe('trampoline of bpf_fentry_test2 with fentry, fexit');
    expect(lines[1]).toMatch(/^ {6}5\.5 +6\.6$/);
    expect(lines).toContain(`5.5: ${d.a.symbol}, ${d.a.insns} instructions, ${d.a.bytes} bytes`);
    expect(lines).toContain(`6.6: ${d.b.symbol}, ${d.b.insns} instructions, ${d.b.bytes} bytes`);
    expect(lines.at(-1)).toMatch(new RegExp(`^${d.identical} identical, \\d+ changed, \\d+ only in 5\\.5, \\d+ only in 6\\.6$`));
    expect(lines[2]).toMatch(/^ {3}0 {2}push rbp +0 {2}push rbp$/);
  });

  it('the same profile twice: every row identical; v5.5 is the sequence of KERNEL.md A.2 (fec56f5890d9)', async () => {
    const r = await bin('-j', 'trampoline', 'diff', 'bpf_fentry_test2', '--kernel', '5.5', '--kernel', '5.5');
    const d = JSON.parse(r.out) as { a: Side; rows: { op: string }[] };
    expect(d.rows.every((x) => x.op === '=')).toBe(true);
    expect(texts(d.a)).toEqual([
      'push rbp', 'mov rbp, rsp', 'sub rsp, 0x18', 'push rbx',
      'mov dword ptr [rbp - 0x18], edi', 'mov qword ptr [rbp - 0x10], rsi',
      ...['fentry', 'fexit'].flatMap((k) => [
        'call <__bpf_prog_enter>', 'mov rbx, rax', 'lea rdi, [rbp - 0x18]', expect.stringMatching(new RegExp(`^call <bpf_prog_[0-9a-f]{16}_${k}>$`)),
        `movabs rdi, <prog ${k}>`, 'mov rsi, rbx', 'call <__bpf_prog_exit>',
        ...(k === 'fentry' ? ['mov edi, dword ptr [rbp - 0x18]', 'mov rsi, qword ptr [rbp - 0x10]', 'call <bpf_fentry_test2+0x5>', 'mov qword ptr [rbp - 8], rax'] : []),
      ]),
      'mov rax, qword ptr [rbp - 8]', 'pop rbx', 'leave', 'add rsp, 8', 'ret',
    ]);
  });

  it("OBJ: the object's programs on FUNC (fentry_test.bpf.o's fentry/bpf_fentry_test2)", async () => {
    const r = await bin('-j', 'trampoline', 'diff', 'bpf_fentry_test2', '--kernel', '5.5', '--kernel', '5.12', bpfObj('fentry_test'));
    expect(r.code, r.err).toBe(0);
    const d = JSON.parse(r.out) as { a: Side; b: Side };
    expect(d.a.progs).toEqual([{ name: 'test2', kind: 'fentry' }]);
    expect(texts(d.a)).toContain('movabs rdi, <prog test2>');
    expect(texts(d.b)).toContain('test rax, rax');
  });
});

/**
 * Per profile, what its generation changed (KERNEL.md A.5), in `trampoline show`'s instructions.
 * Each row: the profile, the command's arguments, and a check of the instruction texts.
 */
const GENERATIONS: [string, string[], string, (t: string[]) => void][] = [
  ['5.7', ['bpf_modify_return_test', '--progs', 'fentry,fmod_ret,fexit'], 'fmod_ret (ae24082331d9): retval slot zeroed, each result stored and tested, jne to the 16-byte aligned fexit block', (t) => {
    const i = t.indexOf('xor eax, eax');
    expect(t[i + 1]).toBe('mov qword ptr [rbp - 8], rax');
    const call = t.findIndex((x) => /^call <bpf_prog_\w+_fmod_ret>$/.test(x));
    expect(t[call + 1]).toBe('mov qword ptr [rbp - 8], rax');
    const cmp = t.indexOf('cmp qword ptr [rbp - 8], 0');
    expect(cmp).toBeGreaterThan(call);
    expect(t[cmp + 1]).toMatch(/^jne <tramp\+0x[0-9a-f]*0>$/); // do_fexit is 16-byte aligned
  }],
  ['5.7', ['bpf_fentry_test2'], 'no enter/exit change yet: the v5.5 block per program', (t) => {
    expect(t.filter((x) => x === 'test rax, rax')).toEqual([]);
  }],
  ['5.12', ['bpf_fentry_test2'], '__bpf_prog_enter(prog) returns 0 to skip (ca06f55b9002): movabs rdi, prog before it, test rax,rax; je after; __bpf_tramp_enter/exit around (e21aa341785c)', (t) => {
    const enters = t.flatMap((x, i) => (x === 'call <__bpf_prog_enter>' ? [i] : []));
    expect(enters.length).toBe(2);
    for (const i of enters) {
      expect(t[i - 1]).toMatch(/^movabs rdi, <prog (fentry|fexit)>$/);
      expect(t.slice(i + 1, i + 4)).toEqual(['mov rbx, rax', 'test rax, rax', expect.stringMatching(/^je <tramp\+0x[0-9a-f]+>$/)]);
    }
    expect(t).toContain('call <__bpf_tramp_enter>');
    expect(t).toContain('call <__bpf_tramp_exit>');
    expect(t.filter((x) => x === 'movabs rdi, <bpf_tramp_image>').length).toBe(2);
    // im->ip_after_call: a 5-byte nop after the original call's result is stored.
    const ret = t.indexOf('call <bpf_fentry_test2+0x5>');
    expect(t.slice(ret + 1, ret + 3)).toEqual(['mov qword ptr [rbp - 8], rax', 'nop dword ptr [rax + rax]']);
  }],
  ['5.15', ['bpf_fentry_test2', '--progs', 'fentry', '--func-ip'], 'BPF_TRAMP_F_IP_ARG: the traced ip, [rbp+8] - 5, stored on the frame', (t) => {
    const i = t.indexOf('mov rax, qword ptr [rbp + 8]');
    expect(i).toBeGreaterThan(0);
    expect(t[i + 1]).toBe('sub rax, 5');
    expect(t[i + 2]).toMatch(/^mov qword ptr \[rbp - (0x[0-9a-f]+|\d+)\], rax$/);
  }],
  ['5.19', ['bpf_fentry_test2'], 'nr_args on the frame (bpf_get_func_arg_cnt) and the run ctx with the cookie, passed to __bpf_prog_enter', (t) => {
    const i = t.indexOf('mov eax, 2');
    expect(i).toBeGreaterThan(0);
    expect(t[i + 1]).toMatch(/^mov qword ptr \[rbp - (0x[0-9a-f]+|\d+)\], rax$/);
    for (const [k, x] of t.entries()) {
      if (x !== 'call <__bpf_prog_enter>') continue;
      const slot = /^lea rsi, \[rbp - (0x[0-9a-f]+)\]$/.exec(t[k - 1]!)![1];
      expect(t.slice(k - 4, k - 2)).toEqual(['xor edi, edi', `mov qword ptr [rbp - ${slot}], rdi`]); // cookie 0
    }
  }],
  ['6.1', ['bpfemu_struct_by_value', '--progs', 'fentry'], 'a 16-byte struct by value (BTF_FMODEL_STRUCT_ARG): two register slots saved, nr_regs 2', (t) => {
    const a = t.findIndex((x) => /^mov qword ptr \[rbp - (0x[0-9a-f]+|\d+)\], rdi$/.test(x));
    expect(t[a + 1]).toMatch(/^mov qword ptr \[rbp - (0x[0-9a-f]+|\d+)\], rsi$/);
    expect(t).toContain('mov eax, 2');
  }],
  ['6.6', ['bpf_fentry_test2'], 'save_args with BPF_DW: the int argument saved and restored whole', (t) => {
    expect(t).toContain('mov qword ptr [rbp - 0x18], rdi');
    expect(t).toContain('mov rdi, qword ptr [rbp - 0x18]');
  }],
  ['6.6', ['bpf_modify_return_test2', '--progs', 'fentry'], '7 arguments (473e3150e30a): the 7th copied from the caller\'s stack at rbp+0x18', (t) => {
    const i = t.indexOf('mov rax, qword ptr [rbp + 0x18]');
    expect(i).toBeGreaterThan(0);
    expect(t[i + 1]).toMatch(/^mov qword ptr \[rbp - (0x[0-9a-f]+|\d+)\], rax$/);
    expect(t).toContain('mov eax, 7');
  }],
];

describe.concurrent('bpfemu trampoline show: each generation as that kernel emits it', () => {
  it.each(GENERATIONS)('%s %j: %s', async (kernel, args, _what, check) => {
    const r = await bin('-j', '--kernel', kernel, 'trampoline', 'show', ...args);
    expect(r.code, r.err).toBe(0);
    const side = JSON.parse(r.out) as Side & { func: string };
    expect(side.kernel).toBe(kernel);
    const t = texts(side);
    check(t);
  });
});

describe.concurrent('bad input', () => {
  const cases: [string, number, string[], RegExp][] = [
    ['an unknown profile', 2, ['trampoline', 'diff', 'bpf_fentry_test2', '--kernel', '5.5', '--kernel', '9.9'], /^Error: unknown kernel profile '9\.9' \(known: 5\.5, 5\.7, 5\.12, 5\.15, 5\.19, 6\.1, 6\.6\)\n$/],
    ['one --kernel only', 2, ['trampoline', 'diff', 'bpf_fentry_test2', '--kernel', '6.1'], /needs two kernel profiles \(--kernel A --kernel B\), got 1\n$/],
    ['an unknown function', 2, ['trampoline', 'diff', 'no_such_func', '--kernel', '5.5', '--kernel', '6.6'], /^Error: unknown kernel function: no_such_func/],
    ['an unknown program kind', 2, ['trampoline', 'show', 'bpf_fentry_test2', '--progs', 'fentry,kprobe'], /unknown program kind 'kprobe'/],
    ['two profiles for a one-machine command', 2, ['--kernel', '5.5', '--kernel', '6.6', 'call', 'bpf_fentry_test1', '1'], /^Error: --kernel: one kernel profile per machine, got 5\.5, 6\.6\n$/],
    // x86-64 takes 6 argument registers until 6.6: arch_prepare_bpf_trampoline's -ENOTSUPP at attach.
    ['7 arguments under 6.1', 1, ['trampoline', 'diff', 'bpf_modify_return_test2', '--kernel', '6.1', '--kernel', '6.6'], /^Error: kernel 6\.1: attaching fentry program fentry to bpf_modify_return_test2: ENOTSUPP \(-524\)\n$/],
    // No BPF_MODIFY_RETURN before 5.7: check_attach_btf_id's -EINVAL at load.
    // bpf_get_func_ip is 5.15's helper: an unknown function to the 5.12 verifier.
    ['bpf_get_func_ip under 5.12', 1, ['--kernel', '5.12', 'trampoline', 'show', 'bpf_fentry_test2', '--func-ip'], /^Error: kernel 5\.12: loading fentry on bpf_fentry_test2: EINVAL \(-22\): .*func.*#173/],
    ['fmod_ret under 5.5', 1, ['trampoline', 'diff', 'bpf_modify_return_test', '--kernel', '5.5', '--kernel', '5.7', '--progs', 'fmod_ret'], /^Error: kernel 5\.5: loading fmod_ret on bpf_modify_return_test: EINVAL \(-22\)/],
    // btf_distill_func_proto refuses a struct by value before 6.1: -EINVAL at load.
    ['a struct by value under 5.19', 1, ['trampoline', 'diff', 'bpfemu_struct_by_value', '--kernel', '5.19', '--kernel', '6.1'], /^Error: kernel 5\.19: loading fentry on bpfemu_struct_by_value: EINVAL \(-22\): .*arg0 type \w+( bpfemu_pair)? is unsupported/],
  ];
  it.each(cases)('%s: exit %i', async (_what, code, args, msg) => {
    const r = await bin(...args);
    expect(r.code).toBe(code);
    expect(r.out).toBe('');
    expect(r.err).toMatch(msg);
  });
});
