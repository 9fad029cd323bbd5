/**
 * @fileoverview `bpfemu --kernel V trace OBJ --test-run` with the selftests of later generations:
 * modify_return's fentry, fmod_ret and fexit programs attached through libbpf's attach, and the
 * test run of the fmod_ret program (bpf_prog_test_run_tracing: ((u32)side_effect << 16) | ret).
 * Under 5.5 the fmod_ret program does not load (BPF_MODIFY_RETURN came in 5.7).
 */
import { describe, it, expect } from 'vitest';
import { run, bpfObj } from './bin.ts';

describe('bpfemu --kernel V trace OBJ --test-run', () => {
  it.each([['5.7', 0x10004], ['6.1', 0x10004]])('modify_return under %s: every program ran in order, side effect 1, ret 4', (v, retval) => {
    const r = run('-j', '--kernel', v, 'trace', bpfObj('modify_return'), '--test-run');
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out) as { ret: string; globals: Record<string, string> };
    expect(Number(j.ret)).toBe(retval);
    expect(j.globals).toMatchObject({ fentry_result: '1', fmod_ret_result: '1', fexit_result: '1', sequence: '3' });
  });

  it('under 5.5 the fmod_ret program is refused at load (exit 1, the errno named)', () => {
    const r = run('trace', bpfObj('modify_return'), '--test-run');
    expect(r.code).toBe(1);
    expect(r.err).toBe("Error: program 'fmod_ret_test': BPF_PROG_LOAD: EINVAL (-22)\n");
  });
});

describe('bpfemu --kernel V feature', () => {
  it.each([
    ['5.5', ['fentry', 'fexit'], 40, 6, []],
    ['5.15', ['fentry', 'fexit', 'fmod_ret'], 38, 6, ['bpf_get_func_ip#173']],
    ['6.6', ['fentry', 'fexit', 'fmod_ret'], 38, 12, ['bpf_get_func_ip#173', 'bpf_get_attach_cookie#174', 'bpf_get_func_arg#183', 'bpf_get_func_ret#184', 'bpf_get_func_arg_cnt#185']],
  ] as const)('%s: its attach kinds, trampoline limits and trampoline-frame helpers', (v, attach, progs, args, later) => {
    const r = run('-j', '--kernel', v, 'feature');
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out) as { kernel: string; helpers: string[]; attach: string[]; max_trampoline_progs: number; max_trampoline_args: number };
    expect(j).toMatchObject({ kernel: v, attach, max_trampoline_progs: progs, max_trampoline_args: args });
    expect(j.helpers).toContain('bpf_map_lookup_elem#1');
    expect(j.helpers.filter((h) => Number(h.split('#')[1]) > 150)).toEqual(later);
  });
});
