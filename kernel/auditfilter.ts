/**
 * @fileoverview Audit rules (kernel/auditfilter.c and the matching half of auditsc.c): struct
 * audit_rule_data as auditctl sends it, the checks made when one is added, rule identity for
 * delete and duplicates, audit_comparator, and the field tests of audit_filter_rules.
 */
import type { Task } from './task.ts';

/** AUDITSC_* (audit_context.return_valid). */
export const AUDITSC_INVALID = 0, AUDITSC_SUCCESS = 1, AUDITSC_FAILURE = 2;
const EINVAL = 22;

export type AuditOp = '=' | '!=' | '<' | '>' | '<=' | '>=' | '&' | '&=';
/** Fields a rule can test (auditctl's -F names; `loginuid` is auid). */
export const AUDIT_RULE_FIELDS = [
  'arch', 'pid', 'ppid', 'uid', 'euid', 'suid', 'fsuid', 'gid', 'egid', 'sgid', 'fsgid', 'auid', 'sessionid',
  'success', 'exit', 'a0', 'a1', 'a2', 'a3', 'msgtype',
] as const;
export type AuditFieldName = typeof AUDIT_RULE_FIELDS[number];

export interface AuditField { readonly name: AuditFieldName; readonly op: AuditOp; readonly value: number }

/** struct audit_rule_data, as auditctl sends it: the list, the action, the syscall mask, fields and a key. */
export interface AuditRule {
  readonly list: 'exit' | 'exclude';
  readonly action: 'always' | 'never';
  /** Syscall numbers (the rule's mask); 'all' sets every bit. Unused on the exclude list. */
  readonly syscalls: readonly number[] | 'all';
  readonly fields: readonly AuditField[];
  readonly key?: string;
}

/** A rule on its list: its priority (rules added later rank lower) and its syscall mask. */
export interface KRule extends AuditRule { readonly prio: bigint; readonly mask: ReadonlySet<number> | 'all' }

/** What the field tests read of a syscall's audit context. */
export interface FilterContext {
  readonly arch: number;
  readonly argv: readonly bigint[];
  readonly returnValid: number;
  readonly returnCode: bigint;
  /** Filled on first use (AUDIT_PPID). */
  ppid: number;
}

/** audit_filter_rules' field loop: true when every field of the rule matches the task and the call. */
export function fieldsMatch(task: Task, rule: AuditRule, ctx: FilterContext): boolean {
  const c = task.cred;
  for (const f of rule.fields) {
    let left: number | undefined;
    switch (f.name) {
      case 'pid': left = task.tgid; break;
      case 'ppid': ctx.ppid ||= task.ppid; left = ctx.ppid; break;
      case 'uid': left = c.uid; break;
      case 'euid': left = c.euid; break;
      case 'suid': left = c.suid; break;
      case 'fsuid': left = c.fsuid; break;
      case 'gid': left = c.gid; break;
      case 'egid': left = c.egid; break;
      case 'sgid': left = c.sgid; break;
      case 'fsgid': left = c.fsgid; break;
      case 'auid': left = task.loginuid; break;
      case 'sessionid': left = task.sessionid; break;
      case 'arch': left = ctx.arch; break;
      case 'exit': left = ctx.returnValid !== AUDITSC_INVALID ? Number(BigInt.asUintN(32, ctx.returnCode)) : undefined; break;
      case 'success':
        if (ctx.returnValid === AUDITSC_INVALID) break;
        if (!auditComparator(ctx.returnValid, f.op, f.value ? AUDITSC_SUCCESS : AUDITSC_FAILURE)) return false;
        continue;
      case 'a0': case 'a1': case 'a2': case 'a3': left = Number(BigInt.asUintN(32, ctx.argv[Number(f.name[1])]!)); break;
      case 'msgtype': left = undefined; break;
    }
    if (left === undefined || !auditComparator(left, f.op, f.value)) return false;
  }
  return true;
}

/** audit_comparator on u32 operands (Audit_equal … Audit_bittest). */
export function auditComparator(left: number, op: AuditOp, right: number): boolean {
  const l = left >>> 0, r = right >>> 0;
  switch (op) {
    case '=': return l === r;
    case '!=': return l !== r;
    case '<': return l < r;
    case '<=': return l <= r;
    case '>': return l > r;
    case '>=': return l >= r;
    case '&': return (l & r) !== 0;
    case '&=': return ((l & r) >>> 0) === r;
  }
}

/** The rule as it was sent (without its list position). */
export function stripRule(r: KRule): AuditRule {
  return { list: r.list, action: r.action, syscalls: r.syscalls, fields: r.fields, ...(r.key !== undefined ? { key: r.key } : {}) };
}

/** audit_compare_rule: the same list, action, mask, fields and key. */
export function sameRule(a: AuditRule, b: AuditRule): boolean {
  const mask = (r: AuditRule): string => (r.syscalls === 'all' ? 'all' : [...new Set(r.syscalls)].sort((x, y) => x - y).join(','));
  return a.list === b.list && a.action === b.action && (a.list === 'exclude' || mask(a) === mask(b)) && a.key === b.key &&
    a.fields.length === b.fields.length && a.fields.every((f, i) => f.name === b.fields[i]!.name && f.op === b.fields[i]!.op && f.value >>> 0 === b.fields[i]!.value >>> 0);
}

/** audit_data_to_entry's checks that matter here: fields valid for the list, ops for the field. */
export function checkRule(r: AuditRule): number {
  if (r.fields.length > 64) return -EINVAL; // AUDIT_MAX_FIELDS
  for (const f of r.fields) {
    if (!AUDIT_RULE_FIELDS.includes(f.name)) return -EINVAL;
    if ((f.name === 'msgtype') !== (r.list === 'exclude')) return -EINVAL;
    // arch and success take only = and !=
    if ((f.name === 'arch' || f.name === 'success') && f.op !== '=' && f.op !== '!=') return -EINVAL;
  }
  if (r.list === 'exclude' && r.fields.length === 0) return -EINVAL;
  return 0;
}
