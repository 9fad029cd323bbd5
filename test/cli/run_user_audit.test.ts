/**
 * @fileoverview `bpfemu run-user --audit PROGRAM`: the bpf() calls of a real user process audited
 * (the rule `-a always,exit -S bpf`), printed as ausearch prints them after the program's output:
 * a SYSCALL record per bpf() with the process's pid, comm and exe, PROCTITLE with its argv, and
 * the AUDIT_BPF (1334) LOAD/UNLOAD pair of the program it loaded. `--kernel` picks the profile,
 * whose mmap behaviour run-user now follows by default.
 */
import { describe, it, expect } from 'vitest';
import { userProgram } from '../kernel/user_programs.ts';
import { run } from './bin.ts';


describe('bpfemu run-user --audit', () => {
  it('prints the program\'s output, then one event per bpf() call and the 1334 LOAD/UNLOAD pair', () => {
    const prog = userProgram('mmap_test');
    const r = run('run-user', '--audit', prog);
    expect(r.code).toBe(0);
    const [own, audit] = [r.out.slice(0, r.out.indexOf('----')), r.out.slice(r.out.indexOf('----'))];
    expect(own).toMatch(/failures: 0\n$/);
    const syscalls = [...audit.matchAll(/type=SYSCALL [^\n]*syscall=321 [^\n]*pid=(\d+) [^\n]*comm="mmap_test" exe="([^"]+)"/g)];
    expect(syscalls.length).toBeGreaterThan(3);
    expect(new Set(syscalls.map((m) => m[1]))).toEqual(new Set(['2']));
    expect(syscalls[0]![2]).toBe(prog);
    expect(audit).toContain(`proctitle="${prog}"`);
    const bpf = [...audit.matchAll(/type=UNKNOWN\[1334\] [^\n]*prog-id=(\d+) event=(LOAD|UNLOAD)/g)].map((m) => `${m[1]} ${m[2]}`);
    expect(bpf).toEqual(['1 LOAD', '1 UNLOAD']);
  });

  it('-j puts the events in the run\'s object; the exit status stays the program\'s', () => {
    const j = run('-j', 'run-user', '--audit', userProgram('mmap_test'));
    expect(j.code).toBe(0);
    const o = JSON.parse(j.out) as { exit_code: number; audit: { events: { records: { type: string }[] }[]; lost: number } };
    expect(o.exit_code).toBe(0);
    expect(o.audit.lost).toBe(0);
    expect(o.audit.events.length).toBeGreaterThan(3);
    // hello makes no bpf() call: ausearch's "<no matches>" on stderr, exit status still hello's own.
    const h = run('run-user', '--audit', userProgram('hello'), 'a', '3');
    expect(h.code).toBe(3);
    expect(h.err).toBe('to stderr\n<no matches>\n');
  });

  it('--kernel 5.7 gives run-user 5.7\'s mmap (vm_pgoff honoured) without --mmap-profile', () => {
    expect(run('--kernel', '5.7', 'run-user', userProgram('mmap_test')).out).toMatch(/=page 1\n[^]*failures: 0\n$/);
    expect(run('--kernel', '5.5', 'run-user', userProgram('mmap_test')).out).toMatch(/page 0 \(offset ignored\)\n[^]*failures: 0\n$/);
  });
});
