/**
 * @fileoverview `bpfemu --sysctl NAME=VALUE …` through the real binary: the value reaches the
 * machine every command boots (priv_drop's answers change with it), and a value the profile's
 * kernel refuses is a usage error (exit 2) with the kernel's errno and why.
 */
import { describe, it, expect } from 'vitest';
import { userProgram } from '../kernel/user_programs.ts';
import { run } from './bin.ts';
const line = (out: string, start: string): string | undefined => out.split('\n').find((l) => l.startsWith(start));

describe('bpfemu --sysctl', () => {
  it('kernel.unprivileged_bpf_disabled=1 on 5.5: the dropped process is refused even with the fd it kept', () => {
    const prog = userProgram('priv_drop');
    const off = run('--kernel', '5.5', 'run-user', prog);
    const on = run('--kernel', '5.5', '--sysctl', 'kernel.unprivileged_bpf_disabled=1', 'run-user', prog);
    expect([off.code, on.code]).toEqual([0, 0]);
    expect(line(off.out, "user lookup in root's map")).toBe("user lookup in root's map: ok");
    expect(line(on.out, "user lookup in root's map")).toBe("user lookup in root's map: EPERM");
    expect(line(off.out, 'user map create (array)')).toBe('user map create (array): ok');
    expect(line(on.out, 'user map create (array)')).toBe('user map create (array): EPERM');
  });

  it('6.6 defaults to 2; =0 lets the unprivileged process create a map again', () => {
    const prog = userProgram('priv_drop');
    expect(line(run('--kernel', '6.6', 'run-user', prog).out, 'user map create (array)')).toBe('user map create (array): EPERM');
    expect(line(run('--kernel', '6.6', '--sysctl', 'kernel.unprivileged_bpf_disabled=0', 'run-user', prog).out, 'user map create (array)'))
      .toBe('user map create (array): ok');
  });

  it.each([
    [['--sysctl', 'kernel.unprivileged_bpf_disabled=3', 'run-user', '/bin/true'], /^Error: --sysctl kernel\.unprivileged_bpf_disabled=3: EINVAL: out of range 1 in 5\.5/],
    [['--kernel', '6.6', '--sysctl', 'kernel.unprivileged_bpf_disabled=3', 'run-user', '/bin/true'], /^Error: --sysctl kernel\.unprivileged_bpf_disabled=3: EINVAL: out of range 0\.\.2 in 6\.6\n$/],
    [['--sysctl', 'kernel.unprivileged_bpf_disabled=0', 'run-user', '/bin/true'], /only the transition 0 -> 1 can be written/],
    [['--sysctl', 'kernel.no_such=1', 'run-user', '/bin/true'], /^Error: --sysctl kernel\.no_such=1: ENOENT: the 5\.5 profile has no \/proc\/sys\/kernel\/no_such/],
    [['--sysctl', 'net.core.bpf_jit_enable=on', 'run-user', '/bin/true'], /^Error: --sysctl net\.core\.bpf_jit_enable=on: EINVAL: not an integer/],
    [['--sysctl', 'novalue', 'run-user', '/bin/true'], /^Error: --sysctl wants NAME=VALUE, got 'novalue'\n$/],
    // Two writes in order: 1 then 0, and 1 cannot be undone (the last value does not simply win).
    [['--kernel', '5.15', '--sysctl', 'kernel.unprivileged_bpf_disabled=1', '--sysctl', 'kernel.unprivileged_bpf_disabled=0', 'run-user', '/bin/true'],
      /^Error: --sysctl kernel\.unprivileged_bpf_disabled=0: EPERM: it is 1, which cannot be undone\n$/],
  ])('refuses %j (exit 2)', (args, msg) => {
    const r = run(...args);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(msg);
    expect(r.out).toBe('');
  });
});
