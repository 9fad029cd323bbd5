/**
 * @fileoverview `bpfemu run-user PROGRAM [ARG…]` (cli/commands/run_user.ts): a static program's
 * fd 1 and fd 2 on the CLI's stdout and stderr, its status as the exit code (128 + the signal
 * when killed, with the kernel's log line on stderr).
 */
import { describe, it, expect } from 'vitest';
import { userProgram } from '../kernel/user_programs.ts';
import { run } from './bin.ts';


describe('bpfemu run-user', () => {
  it('prints fd 1 and fd 2 and exits with the program\'s status', () => {
    const hello = userProgram('hello');
    expect(run('run-user', hello, 'x', '9')).toEqual({
      code: 9, out: `hello from pid 2 (uid 0), argc=3\nargv[0]=${hello}\nargv[1]=x\nargv[2]=9\n`, err: 'to stderr\n',
    });
  });

  it('a process killed by a fault: 128 + the signal, and the kernel\'s line on stderr', () => {
    const r = run('run-user', userProgram('fault'), 'write-kernel');
    expect(r.code).toBe(139);
    expect(r.out).toBe('pid 2: write-kernel\n');
    expect(r.err).toMatch(/^fault\[2\]: segfault at ffffffff81000000 ip [0-9a-f]{16} sp [0-9a-f]{16} error 7 in fault\[401000\+[0-9a-f]+\]\nbpfemu: .*fault: killed by SIGSEGV\n$/);
  });

  it('-j collects it all into one object', () => {
    const r = run('-j', 'run-user', userProgram('fault'), 'div0');
    expect(r.code).toBe(136);
    expect(JSON.parse(r.out)).toMatchObject({ pid: 2, exit_code: null, signal: 8, status: 136, timed_out: false, stdout: 'pid 2: div0\n', fault: { signal: 'SIGFPE' } });
  });

  it('runs the mmap selftest port with either mmap profile', () => {
    expect(run('run-user', userProgram('mmap_test')).out).toMatch(/page 0 \(offset ignored\)\n[^]*failures: 0\n$/);
    expect(run('run-user', '--mmap-profile', 'v6', userProgram('mmap_test')).out).toMatch(/=page 1\n[^]*failures: 0\n$/);
  });

  it('--timeout kills a process that does not finish (SIGKILL: 137)', () => {
    const r = run('run-user', '--timeout', '200', userProgram('fault'), 'spin');
    expect(r.code).toBe(137);
    expect(r.err).toMatch(/killed by signal 9 \(timeout after 200 ms\)/);
  });

  it.each([
    [['run-user', '/nonexistent'], 2, /^Error: \/nonexistent: no such file\n$/],
    [['run-user', '/bin/true'], 1, /^Error: \/bin\/true: exec format error: dynamically linked/],
    [['run-user', '--mmap-profile', 'v4', '/bin/true'], 2, /^Error: --mmap-profile must be v5.5 or v6\n$/],
    [['run-user', '--timeout', 'soon', '/bin/true'], 2, /^Error: --timeout 'soon' is not a positive integer\n$/],
  ])('refuses %j (exit %d)', (args, code, msg) => {
    const r = run(...args);
    expect(r.code).toBe(code);
    expect(r.err).toMatch(msg);
  });
});
