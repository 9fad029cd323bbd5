/**
 * @fileoverview `bpfemu audit`: the audited bpf() run printed as ausearch prints it (and --raw,
 * -j), auditctl through `audit ctl`, a batch file sharing the machine, and the usage errors.
 */
import { describe, it, expect } from 'vitest';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from './bin.ts';

const OBJ = fileURLToPath(new URL('../../images/build/bpf/objtest.bpf.o', import.meta.url));
const EXE = '/root/bpf-next/tools/testing/selftests/bpf/test_verifier';
const SUBJ = 'unconfined_u:unconfined_r:unconfined_t:s0-s0:c0.c1023';

describe('bpfemu audit', () => {
  it('audit run: the commit example\'s sequence, as ausearch prints it', () => {
    const r = run('audit', 'run');
    expect(r.code).toBe(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines.map((l) => l.replace(/audit\(\d+\.\d{3}:\d+\)/, 'audit(T)').replace(/exit=\d+|a1=[0-9a-f]+|ppid=\d+|pid=\d+|prog-id=\d+/g, (m) => m.split('=')[0] + '=N'))).toEqual([
      '----',
      'time->Wed Nov 20 17:45:51 2019',
      'type=PROCTITLE msg=audit(T): proctitle="./test_verifier"',
      `type=SYSCALL msg=audit(T): arch=c000003e syscall=321 success=yes exit=N a0=5 a1=N a2=78 a3=0 items=0 ppid=N pid=N auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=2 comm="test_verifier" exe="${EXE}" subj=${SUBJ} key=(null)`,
      `type=UNKNOWN[1334] msg=audit(T): auid=0 uid=0 gid=0 ses=2 subj=${SUBJ} pid=N comm="test_verifier" exe="${EXE}" prog-id=N event=LOAD`,
      '----',
      'time->Wed Nov 20 17:45:51 2019',
      'type=UNKNOWN[1334] msg=audit(T): prog-id=N event=UNLOAD',
    ]);
  });

  it('the kernel profile picks the format: the seed\'s under 5.5, op= (as 5.6 shipped it) from 5.7', () => {
    const op = (args: string[]): string[] => run(...args, 'audit', 'run', '--raw', '-m', '1334').out.trimEnd().split('\n')
      .filter((l) => l.startsWith('type=UNKNOWN[1334]')).map((l) => / (event|op)=(LOAD|UNLOAD)$/.exec(l)?.slice(1, 3).join('=') ?? l);
    expect(op([])).toEqual(['event=LOAD', 'event=UNLOAD']);
    expect(op(['--kernel', '5.7'])).toEqual(['op=LOAD', 'op=UNLOAD']);
    expect(op(['--kernel', '6.6'])).toEqual(['op=LOAD', 'op=UNLOAD']);
  });

  it('--raw --audit-format v5.6 with a process of our own; -j for programs', () => {
    const r = run('audit', 'run', '--raw', '--audit-format', 'v5.6', '--comm', 'loader', '--exe', '/usr/bin/loader', '--tty', 'none', '--subj', 'none', '--auid', '1000', '--ses', '7', '-m', '1334');
    expect(r.code).toBe(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines.map((l) => l.slice(0, l.indexOf(' msg=')))).toEqual(['type=UNKNOWN[1334]', 'type=SYSCALL', 'type=PROCTITLE', 'type=UNKNOWN[1334]']);
    expect(lines[0]).toMatch(/^type=UNKNOWN\[1334\] msg=audit\(\d+\.\d{3}:(\d+)\): prog-id=\d+ op=LOAD$/);
    expect(lines[1]).toMatch(/ auid=1000 .* tty=\(none\) ses=7 comm="loader" exe="\/usr\/bin\/loader" key=\(null\)$/);
    expect(lines[3]).toMatch(/ prog-id=\d+ op=UNLOAD$/);
    const j = JSON.parse(run('-j', 'audit', 'run', OBJ).out) as { events: { serial: number; records: { type: number; fields: Record<string, string> }[] }[]; lost: number };
    expect(j.lost).toBe(0);
    const loads = j.events.flatMap((e) => e.records).filter((x) => x.fields.event === 'LOAD').map((x) => x.fields['prog-id']);
    const unloads = j.events.flatMap((e) => e.records).filter((x) => x.fields.event === 'UNLOAD').map((x) => x.fields['prog-id']);
    expect(loads.length).toBeGreaterThan(0);
    expect([...unloads].sort()).toEqual([...loads].sort());
  });

  it('a batch shares the machine: auditctl, a load, the records; a fresh machine has none (exit 1)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bpfemu-audit-'));
    const file = join(dir, 'audit.batch');
    writeFileSync(file, [
      'audit ctl -- -e 1 -a always,exit -F arch=x86_64 -S bpf -k bpf',
      `prog load ${OBJ}`,
      'audit -m 1334 --raw',
      'audit ctl -- -l',
    ].join('\n'));
    const r = run('batch', 'file', file);
    expect(r.code).toBe(0);
    const lines = r.out.split('\n');
    expect(lines.filter((l) => /^type=UNKNOWN\[1334\] .* comm="init" exe=\(null\) prog-id=\d+ event=LOAD$/.test(l)).length).toBeGreaterThan(0);
    expect(lines.filter((l) => l.startsWith('type=SYSCALL ')).every((l) => l.endsWith(' key="bpf"'))).toBe(true);
    expect(lines).toContain('-a always,exit -F arch=b64 -S bpf -F key=bpf');
    expect(run('audit', '--start', 'recent')).toEqual({ code: 1, out: '', err: '<no matches>\n' });
  });

  it.each([
    [['audit', 'ctl', '--', '-a', 'always,exit', '-S', 'nosuch'], /^Error: Syscall name unknown: nosuch\n$/],
    [['audit', 'run', '--audit-format', 'v9'], /^Error: --audit-format v9: expected seed or v5\.6\n$/],
    [['audit', '-m', 'NOPE'], /^Error: Invalid message type: NOPE\n$/],
    [['audit', '--start', 'someday'], /^Error: Invalid start time: someday\n$/],
  ])('bad usage %j: exit 2', (args, msg) => {
    const r = run(...args);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(msg);
  });
});
