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
