import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/bpfemu.js', import.meta.url));
const obj = (n: string): string => fileURLToPath(new URL(`../../images/build/bpf/${n}.bpf.o`, import.meta.url));
const step = (o: string, call: string[], input: string) => {
  const r = spawnSync(process.execPath, [BIN, 'step', obj(o), '--call', ...call], { encoding: 'utf8', input });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
/** The symbols visited, one entry per change of function (sym without +off). */
const visited = (out: string): string[] => {
  const syms = [...out.matchAll(/^[0-9a-f]+ <([^>+]+)/gm)].map((m) => m[1]!.replace(/^bpf_prog_[0-9a-f]{16}_/, 'bpf_prog_*_').replace(/^bpf_trampoline_\d+/, 'bpf_trampoline_*'));
  return syms.filter((s, i) => s !== syms[i - 1]);
};

describe('bpfemu step: the stepping console on a traced call', () => {
  it('fentry: function entry → trampoline → __bpf_prog_enter → the program → __bpf_prog_exit → back in the body', () => {
    const r = step('fentry_test', ['bpf_fentry_test1', '1'], 's\n'.repeat(200));
    expect(r.code).toBe(0);
    expect(visited(r.out)).toEqual(['bpf_fentry_test1', 'bpf_trampoline_*', '__bpf_prog_enter', 'bpf_trampoline_*', 'bpf_prog_*_test1',
      'bpf_trampoline_*', '__bpf_prog_exit', 'bpf_trampoline_*', 'bpf_fentry_test1']);
    expect(r.out).toMatch(/the call returned 2/);
  });

  it('fexit: the trampoline calls the body past its nop, then the program, then returns to the caller', () => {
    const r = step('fexit_test', ['bpf_fentry_test2', '2', '3'], 's\n'.repeat(200));
    expect(visited(r.out)).toEqual(['bpf_fentry_test2', 'bpf_trampoline_*', 'bpf_fentry_test2', 'bpf_trampoline_*', '__bpf_prog_enter',
      'bpf_trampoline_*', 'bpf_prog_*_test2', 'bpf_trampoline_*', '__bpf_prog_exit', 'bpf_trampoline_*']);
    expect(r.out).toMatch(/bpf_fentry_test2\+0x5>/); // the original body, after the patched call
  });

  it('ctx shows the slots the programs see, named and typed from BTF; regs, x, b and c work', () => {
    const r = step('fexit_test', ['bpf_fentry_test2', '2', '3'], 'ctx\ns\nctx\ns\ns\ns\ns\ns\ns\nctx\nregs\nx 0xffffffff81000000 16\nb __bpf_prog_exit\nc\nbogus\nc\n');
    expect(r.out).toMatch(/arg0 a: int = 0x2 \(rdi, saved into ctx\[0\] by the trampoline\)/);
    expect(r.out).toMatch(/has not set up its frame yet/);
    expect(r.out).toMatch(/ctx\[0\] a: int = 0x2\nctx\[1\] b: u64 = 0x3\nctx\[2\] return: int = 0x/);
    expect(r.out).toMatch(/^rax +0x/m);
    expect(r.out).toMatch(/^ffffffff81000000: [0-9a-f]{2}( [0-9a-f]{2}){15}$/m);
    expect(r.out).toMatch(/breakpoint at [0-9a-f]+ <__bpf_prog_exit>/);
    expect(r.out).toMatch(/unknown command 'bogus'/);
    expect(r.out).toMatch(/the call returned 5/);
  });

  it('bad input: unknown function, bad breakpoint', () => {
    expect(step('fentry_test', ['nosuch'], '').code).toBe(2);
    expect(step('fentry_test', ['bpf_fentry_test1', '1'], 'b nosym\nq\n').out).toMatch(/error: unknown symbol nosym/);
  });
});
