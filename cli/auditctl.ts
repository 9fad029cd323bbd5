/**
 * @fileoverview auditctl's command line against the emulated kernel's audit subsystem: `-e`, `-f`,
 * `-b`, `-r`, `--backlog_wait_time`, `-D`, `-a/-A/-d action,list` with `-S`, `-F` and `-k`, `-l`, `-s`.
 * Rules are parsed as auditctl does (syscall names of x86_64, `arch=x86_64|b64`, errno names in
 * `exit=`, `unset` for ids) and sent as struct audit_rule_data; `-l` lists them as auditctl prints
 * them (`-a always,exit -F arch=b64 -S bpf`). Errors carry auditctl's wording.
 */
import {
  AUDIT_ARCH_X86_64, AUDIT_RULE_FIELDS, AUDIT_TYPE_NAMES, AUDIT_UNSET,
  type AuditSubsystem, type AuditRule, type AuditField, type AuditFieldName, type AuditOp,
} from '../kernel/audit.ts';
import { __NR } from '../kernel/syscalls.ts';

export class AuditctlError extends Error {
  constructor(msg: string) { super(msg); this.name = 'AuditctlError'; }
}

/** x86_64 syscall numbers auditctl resolves (arch/x86/entry/syscalls/syscall_64.tbl), beyond the kernel's own table. */
const SYSCALLS: Readonly<Record<string, number>> = {
  ...__NR, open: 2, stat: 4, ioctl: 16, socket: 41, connect: 42, sendto: 44, execve: 59, kill: 62, prctl: 157,
  init_module: 175, delete_module: 176, openat: 257, perf_event_open: 298, finit_module: 313,
};
const SYSCALL_NAMES = new Map(Object.entries(SYSCALLS).map(([n, nr]) => [nr, n]));

const ERRNO: Readonly<Record<string, number>> = {
  EPERM: 1, ENOENT: 2, EINTR: 4, EBADF: 9, ENOMEM: 12, EACCES: 13, EFAULT: 14, EBUSY: 16, EEXIST: 17,
  EINVAL: 22, EMFILE: 24, ENOSPC: 28, E2BIG: 7, ENOSYS: 38,
};
const ERRNO_NAMES = new Map(Object.entries(ERRNO).map(([n, v]) => [v, n]));
const ERRNO_TEXT: Readonly<Record<number, string>> = { 1: 'Operation not permitted', 2: 'No such file or directory', 17: 'Rule exists', 22: 'Invalid argument' };

/** Runs one auditctl invocation; returns what it prints. */
export function auditctl(audit: AuditSubsystem, argv: readonly string[]): string {
  const out: string[] = [];
  let rule: { verb: 'add' | 'prepend' | 'delete'; list: AuditRule['list']; action: AuditRule['action']; syscalls: number[] | 'all' | undefined; fields: AuditField[]; key: string | undefined } | undefined;
  const send = (what: string, r: number): void => {
    if (r < 0) throw new AuditctlError(`Error sending ${what} request (${ERRNO_TEXT[-r] ?? `errno ${-r}`})`);
  };
  const value = (i: number, opt: string): string => {
    const v = argv[i];
    if (v === undefined) throw new AuditctlError(`option requires an argument -- '${opt.replace(/^-+/, '')}'`);
    return v;
  };
  const int = (s: string, opt: string): number => {
    if (!/^\d+$/.test(s)) throw new AuditctlError(`${opt} must be a numeric value, was ${s}`);
    return Number(s);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    switch (a) {
      case '-e': send('enable', audit.setEnabled(int(value(++i, a), 'Enable'))); break;
      case '-f': send('failure mode', audit.setFailure(int(value(++i, a), 'Failure'))); break;
      case '-b': send('backlog limit', audit.setBacklogLimit(int(value(++i, a), 'Backlog limit'))); break;
      case '-r': send('rate limit', audit.setRateLimit(int(value(++i, a), 'Rate limit'))); break;
      case '--backlog_wait_time': send('backlog_wait_time', audit.setBacklogWaitTime(int(value(++i, a), 'backlog_wait_time'))); break;
      case '-D': {
        // auditctl lists the rules and deletes each (with -k: only those with that key)
        const k = argv[i + 1] === '-k' ? value(i += 2, '-k') : undefined;
        for (const r of audit.rules) if (k === undefined || r.key === k) send('delete rule data', audit.deleteRule(r));
        break;
      }
      case '-a': case '-A': case '-d': {
        if (rule) throw new AuditctlError('Multiple rule insert/delete operations are not allowed');
        const [action, list] = parseActionList(value(++i, a));
        rule = { verb: a === '-d' ? 'delete' : a === '-A' ? 'prepend' : 'add', list, action, syscalls: undefined, fields: [], key: undefined };
        break;
      }
      case '-S': {
        if (!rule) throw new AuditctlError('List must be given before field');
        if (rule.list !== 'exit') throw new AuditctlError('syscalls can only be used with the exit list');
        const names = value(++i, a).split(',');
        for (const n of names) {
          if (n === 'all') { rule.syscalls = 'all'; continue; }
          const nr = /^\d+$/.test(n) ? Number(n) : SYSCALLS[n];
          if (nr === undefined) throw new AuditctlError(`Syscall name unknown: ${n}`);
          if (rule.syscalls !== 'all') rule.syscalls = [...(rule.syscalls ?? []), nr];
        }
        break;
      }
      case '-F': {
        if (!rule) throw new AuditctlError('List must be given before field');
        const f = parseField(value(++i, a));
        if ('key' in f) rule.key = f.key;
        else rule.fields.push(f);
        break;
      }
      case '-k': {
        if (!rule) throw new AuditctlError('List must be given before field');
        rule.key = value(++i, a);
        break;
      }
      case '-l': out.push(...(audit.rules.length ? audit.rules.map(formatRule) : ['No rules'])); break;
      case '-s': {
        const s = audit.status();
        out.push(`enabled ${s.enabled}`, `failure ${s.failure}`, `pid ${s.pid}`, `rate_limit ${s.rate_limit}`,
          `backlog_limit ${s.backlog_limit}`, `lost ${s.lost}`, `backlog ${s.backlog}`, `backlog_wait_time ${s.backlog_wait_time}`,
          'loginuid_immutable 0 unlocked');
        break;
      }
      default: throw new AuditctlError(`unknown option -- '${a}'`);
    }
  }
  if (rule) {
    if (rule.list === 'exit' && rule.syscalls === undefined && rule.fields.length === 0 && rule.key === undefined) {
      throw new AuditctlError('Error - no syscalls or fields given for the rule');
    }
    const r: AuditRule = {
      list: rule.list, action: rule.action, syscalls: rule.syscalls ?? 'all', fields: rule.fields,
      ...(rule.key !== undefined ? { key: rule.key } : {}),
    };
    if (rule.verb === 'delete') send('delete rule data', audit.deleteRule(r));
    else send('add rule data', audit.addRule(r, { prepend: rule.verb === 'prepend' }));
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

/** `always,exit` (either order, as auditctl accepts). */
function parseActionList(s: string): [AuditRule['action'], AuditRule['list']] {
  const parts = s.split(',');
  const action = parts.find((p) => p === 'always' || p === 'never');
  const list = parts.find((p) => p === 'exit' || p === 'exclude');
  if (parts.length !== 2 || !action || !list) {
    if (parts.some((p) => ['task', 'user', 'filesystem', 'io_uring'].includes(p))) throw new AuditctlError(`The ${parts.find((p) => p !== action)} list is not supported`);
    throw new AuditctlError(`Append rule - bad keyword ${s}`);
  }
  return [action, list];
}

/** `name OP value`; `key=TEXT` gives the key's text. */
function parseField(s: string): AuditField | { key: string } {
  const m = /^([a-z0-9_]+)(!=|<=|>=|&=|=|<|>|&)(.*)$/.exec(s);
  if (!m) throw new AuditctlError(`-F missing operation for ${s}`);
  const [, rawName, op, v] = m as unknown as [string, string, AuditOp, string];
  if (rawName === 'key') return { key: v };
  const name = (rawName === 'loginuid' ? 'auid' : rawName) as AuditFieldName;
  if (!AUDIT_RULE_FIELDS.includes(name)) throw new AuditctlError(`-F unknown field: ${rawName}`);
  return { name, op, value: fieldValue(name, v) };
}

function fieldValue(name: AuditFieldName, v: string): number {
  if (name === 'arch') {
    if (v === 'x86_64' || v === 'b64') return AUDIT_ARCH_X86_64;
    if (/^(0x)?c000003e$/i.test(v)) return AUDIT_ARCH_X86_64;
    throw new AuditctlError(`-F arch=${v}: only x86_64 (b64) is known to this machine`);
  }
  if (name === 'msgtype') {
    const byName = Object.entries(AUDIT_TYPE_NAMES).find(([, n]) => n === v)?.[0] ?? (v === 'BPF' ? '1334' : undefined);
    if (byName !== undefined) return Number(byName);
  }
  if ((name === 'auid' || name.endsWith('uid') || name.endsWith('gid')) && v === 'unset') return AUDIT_UNSET;
  if (name === 'exit') {
    const m = /^-?(E[A-Z0-9]+)$/.exec(v);
    if (m && ERRNO[m[1]!] !== undefined) return (v.startsWith('-') ? -ERRNO[m[1]!]! : ERRNO[m[1]!]!) >>> 0;
  }
  if (!/^-?\d+$/.test(v)) throw new AuditctlError(`-F ${name}=${v}: value must be numeric`);
  return Number(v) >>> 0;
}

/** auditctl -l's line for a rule. */
export function formatRule(r: AuditRule): string {
  const parts = [`-a ${r.action},${r.list}`];
  const sys = r.list !== 'exit' ? undefined : r.syscalls === 'all' ? '-S all'
    : `-S ${r.syscalls.map((n) => SYSCALL_NAMES.get(n) ?? String(n)).join(',')}`;
  let syscallsShown = false;
  for (const f of r.fields) {
    parts.push(`-F ${f.name}${f.op}${formatValue(f)}`);
    if (f.name === 'arch' && sys && !syscallsShown) { parts.push(sys); syscallsShown = true; }
  }
  if (sys && !syscallsShown) parts.splice(1, 0, sys);
  if (r.key !== undefined) parts.push(`-F key=${r.key}`);
  return parts.join(' ');
}

function formatValue(f: AuditField): string {
  if (f.name === 'arch') return f.value >>> 0 === AUDIT_ARCH_X86_64 ? 'b64' : (f.value >>> 0).toString(16);
  if (f.name === 'msgtype') return AUDIT_TYPE_NAMES[f.value] ?? String(f.value);
  if (f.name === 'exit') {
    const v = f.value | 0;
    return v < 0 && ERRNO_NAMES.has(-v) ? `-${ERRNO_NAMES.get(-v)}` : String(v);
  }
  if (f.name === 'auid' && f.value >>> 0 === AUDIT_UNSET) return 'unset';
  return String(f.value >>> 0);
}
