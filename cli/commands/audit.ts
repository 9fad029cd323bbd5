/**
 * @fileoverview `bpfemu audit [--start WHEN…] [-m TYPES] [--raw]`: the machine's audit records as
 * ausearch prints them (on the session's machine in a batch file or the shell; a fresh machine has
 * none). `bpfemu audit ctl ARGS…`: auditctl. `bpfemu audit run [OBJ] [--audit-format seed|v5.6]`:
 * with audit on and the rule `-a always,exit -F arch=x86_64 -S bpf`, the current task, given a
 * process identity (by default the one in the AUDIT_BPF commit's example: test_verifier), loads
 * the program of audit-testsuite's tests/bpf (or OBJ's programs) through bpf() and closes it; the
 * records are then printed as `bpfemu audit` prints them. This is the path from the bpf() surface
 * with the process context set; `run-user --audit` can reuse enableBpfAudit() before the run,
 * kernel.audit.setTaskInfo(task, { exe, cmdline }) at exec, and printAudit() after.
 */
import type { Command } from 'commander';
import { readFileSync, existsSync } from 'node:fs';
import { session, release } from '../session.ts';
import { emit, parseInteger, UsageError, type OutputOptions } from '../output.ts';
import { auditctl, AuditctlError } from '../auditctl.ts';
import { toEvents, searchEvents, formatAusearch, formatRaw, eventJson, parseMessageTypes, parseStart, type SearchOptions } from '../ausearch.ts';
import { setTaskComm, type Cred } from '../../kernel/task.ts';
import type { AuditTaskInfo, BpfAuditFormat } from '../../kernel/audit.ts';
import { BPF_PROG_LOAD } from '../../bpf/syscall/attr.ts';
import { BpfObject, errnoName } from '../../bpf/libbpf/load.ts';
import type { System } from '../../index.ts';

/** The process the commit message's example shows (ppid, pid and times are the machine's own). */
export const EXAMPLE_PROCESS: ProcessIdentity = {
  comm: 'test_verifier', exe: '/root/bpf-next/tools/testing/selftests/bpf/test_verifier', cmdline: ['./test_verifier'],
  tty: 'pts0', auid: 0, ses: 2, uid: 0, gid: 0, subj: 'unconfined_u:unconfined_r:unconfined_t:s0-s0:c0.c1023',
};

export interface ProcessIdentity {
  comm: string;
  exe?: string;
  cmdline?: readonly string[];
  tty?: string;
  auid: number;
  ses: number;
  uid: number;
  gid: number;
  /** The LSM label; undefined: none (no subj= field). */
  subj?: string;
}

/** auditctl -e 1; -D; -a always,exit -F arch=x86_64 -S bpf — and the AUDIT_BPF format. */
export function enableBpfAudit(sys: System, format: BpfAuditFormat = sys.kernel.profile.audit.bpfFormat): void {
  const a = sys.kernel.audit;
  auditctl(a, ['-e', '1']);
  auditctl(a, ['-D']);
  auditctl(a, ['-a', 'always,exit', '-F', 'arch=x86_64', '-S', 'bpf']);
  a.bpfFormat = format;
}

/** Runs `fn` as the current task with `id` (comm, credentials, login ids, exe, tty, label), then restores the task. */
export function asProcess<T>(sys: System, id: ProcessIdentity, fn: () => T): T {
  const t = sys.kernel.current, audit = sys.kernel.audit;
  const saved = { comm: t.comm, cred: { ...t.cred }, loginuid: t.loginuid, sessionid: t.sessionid, info: audit.taskInfo(t) };
  setTaskComm(t, id.comm);
  const cred: Partial<Cred> = { uid: id.uid, euid: id.uid, suid: id.uid, fsuid: id.uid, gid: id.gid, egid: id.gid, sgid: id.gid, fsgid: id.gid };
  Object.assign(t.cred, cred);
  t.loginuid = id.auid;
  t.sessionid = id.ses;
  const info: AuditTaskInfo = {
    ...(id.exe !== undefined ? { exe: id.exe } : {}), ...(id.cmdline ? { cmdline: id.cmdline } : {}),
    ...(id.tty !== undefined ? { tty: id.tty } : {}), ...(id.subj !== undefined ? { subj: id.subj } : {}),
  };
  audit.setTaskInfo(t, info);
  try {
    return fn();
  } finally {
    t.comm = saved.comm;
    Object.assign(t.cred, saved.cred);
    t.loginuid = saved.loginuid;
    t.sessionid = saved.sessionid;
    audit.setTaskInfo(t, saved.info);
  }
}

/** audit-testsuite tests/bpf/bpf.c: a SOCKET_FILTER `r0 = 0; exit` ("GPL"), loaded through bpf() and closed. */
export function loadTestsuiteProg(sys: System): number {
  const b = sys.bpfSys;
  const insns = b.stage(Buffer.from('b700000000000000' + '9500000000000000', 'hex')), lic = b.stage(Buffer.from('GPL\0'));
  try {
    const fd = b.call(BPF_PROG_LOAD, { prog_type: 1, insn_cnt: 2, insns, license: lic }).ret;
    if (fd < 0) throw new Error(`BPF_PROG_LOAD: ${errnoName(fd)} (${fd})`);
    return fd;
  } finally {
    b.unstage(insns);
    b.unstage(lic);
  }
}

/** `bpfemu audit`'s search flags: --start WHEN…, -m TYPES, --raw. */
export interface SearchFlags { start?: string[]; message?: string; raw?: boolean }

function searchOptions(sys: System, f: SearchFlags): SearchOptions {
  const now = sys.kernel.audit.realtimeNs();
  try {
    const types = f.message !== undefined ? parseMessageTypes(f.message) : undefined;
    return {
      ...(f.start ? { start: parseStart(f.start, { sec: Number(now / 1_000_000_000n), msec: Number((now / 1_000_000n) % 1000n) }) } : {}),
      ...(types ? { types } : {}),
    };
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** The matching events as data, and as ausearch prints them (default or --raw). */
export function auditOutput(sys: System, f: SearchFlags): { events: ReturnType<typeof eventJson>[]; text: string; lost: number } {
  const events = searchEvents(toEvents(sys.kernel.audit.records()), searchOptions(sys, f));
  return { events: events.map(eventJson), text: f.raw ? formatRaw(events) : formatAusearch(events), lost: sys.kernel.audit.lost };
}

/** Prints as ausearch: `<no matches>` on stderr and exit status 1 when nothing matched. */
export function printAudit(sys: System, global: OutputOptions, f: SearchFlags): void {
  const out = auditOutput(sys, f);
  emit(global, { events: out.events, lost: out.lost }, () => out.text);
  if (out.events.length === 0) {
    if (!global.json && !global.pretty) process.stderr.write('<no matches>\n');
    process.exitCode = 1;
  }
}

const searchFlags = (c: Command): Command => c
  .option('--start <when...>', 'recent, now, today, yesterday, week-ago, or MM/DD/YYYY [HH:MM:SS] (UTC)')
  .option('-m, --message <types>', 'record types, comma separated (1334, SYSCALL, PROCTITLE, BPF, ALL)')
  .option('--raw', 'the raw log lines, first to last');

export function register(program: Command, global: () => OutputOptions): void {
  const audit = searchFlags(program.command('audit')
    .description('audit records of this machine, as ausearch prints them (audit ctl: auditctl; audit run: an audited bpf() load)'))
    .action(async (f: SearchFlags) => {
      const sys = await session();
      try { printAudit(sys, global(), f); } finally { release(sys); }
    });
  audit.command('ctl')
    .description('auditctl on this machine (-e, -f, -b, -r, -D, -a/-A/-d with -S/-F/-k, -l, -s)')
    .argument('<args...>', 'auditctl arguments (after --)')
    .allowUnknownOption()
    .action(async (args: string[]) => {
      const sys = await session();
      try {
        let text: string;
        try { text = auditctl(sys.kernel.audit, args); } catch (e) {
          if (e instanceof AuditctlError) throw new UsageError(e.message);
          throw e;
        }
        emit(global(), { rules: sys.kernel.audit.rules, status: sys.kernel.audit.status() }, () => text);
      } finally { release(sys); }
    });
  // --start, -m and --raw belong to `audit` (commander parses a parent's options anywhere on the line)
  audit.command('run')
    .description('with audit on (-a always,exit -F arch=x86_64 -S bpf), load and close a program through bpf() as a process, then print the records')
    .argument('[obj]', 'a clang-built BPF object (default: audit-testsuite\'s SOCKET_FILTER r0=0; exit)')
    .option('--audit-format <format>', 'AUDIT_BPF text: seed (v1, event=) or v5.6 (op=); default: the kernel profile\'s')
    .option('--comm <name>', 'the process name', EXAMPLE_PROCESS.comm)
    .option('--exe <path>', 'its executable', EXAMPLE_PROCESS.exe)
    .option('--cmdline <args>', 'its command line (space-separated)', EXAMPLE_PROCESS.cmdline!.join(' '))
    .option('--tty <name>', 'its tty (none: no tty)', EXAMPLE_PROCESS.tty)
    .option('--auid <n>', 'login uid (unset: 4294967295)', String(EXAMPLE_PROCESS.auid))
    .option('--ses <n>', 'session id', String(EXAMPLE_PROCESS.ses))
    .option('--uid <n>', 'uid (all of uid, euid, suid, fsuid)', '0')
    .option('--gid <n>', 'gid (all of gid, egid, sgid, fsgid)', '0')
    .option('--subj <label>', 'LSM label (none: no LSM)', EXAMPLE_PROCESS.subj)
    .option('--engine <engine>', 'jit or interp', 'jit')
    .action(async (path: string | undefined, _o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<SearchFlags & Record<string, string>>();
      if (o.auditFormat !== undefined && o.auditFormat !== 'seed' && o.auditFormat !== 'v5.6') throw new UsageError(`--audit-format ${o.auditFormat}: expected seed or v5.6`);
      if (o.engine !== 'jit' && o.engine !== 'interp') throw new UsageError(`--engine ${o.engine}: expected jit or interp`);
      if (path !== undefined && !existsSync(path)) throw new UsageError(`object file ${path} not found`);
      const num = (s: string, what: string): number => (s === 'unset' ? 4294967295 : Number(parseInteger(s, what) & 0xffffffffn));
      const id: ProcessIdentity = {
        comm: o.comm!, exe: o.exe!, cmdline: o.cmdline!.split(' ').filter((w) => w !== ''), auid: num(o.auid!, '--auid'), ses: num(o.ses!, '--ses'),
        uid: num(o.uid!, '--uid'), gid: num(o.gid!, '--gid'),
        ...(o.tty !== 'none' ? { tty: o.tty! } : {}), ...(o.subj !== 'none' ? { subj: o.subj! } : {}),
      };
      const sys = await session();
      try {
        sys.bpfSys.jitEnabled = o.engine === 'jit';
        enableBpfAudit(sys, (o.auditFormat as BpfAuditFormat | undefined) ?? sys.kernel.profile.audit.bpfFormat);
        asProcess(sys, id, () => {
          if (path === undefined) {
            sys.kernel.current.files.close(loadTestsuiteProg(sys)); // the process exits: its fd goes
          } else {
            BpfObject.open(new Uint8Array(readFileSync(path)), path, sys.objectLoadOptions).load(sys.bpfSys, sys.objectLoadOptions).close();
          }
        });
        printAudit(sys, global(), o);
      } finally { release(sys); }
    });
}
