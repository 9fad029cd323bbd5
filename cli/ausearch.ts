/**
 * @fileoverview What auditd and ausearch make of the kernel's audit records (audit-userspace):
 * auditd's raw log line `type=NAME msg=audit(SEC.MSEC:SERIAL): body` (EOE records are for the
 * realtime interface and not logged; a type auditd does not know is `UNKNOWN[n]`), events grouped
 * by their stamp, and ausearch's outputs: the default one (src/ausearch-report.c output_default:
 * `----`, `time->` + ctime(), the records last to first) and `--raw` (output_raw: the log lines
 * first to last, no separators). Times are printed in UTC (the emulated machine has no TZ).
 */
import { AUDIT_EOE, AUDIT_TYPE_NAMES, recordText, type AuditRecord } from '../kernel/audit.ts';

/** One event: the records that share a stamp. */
export interface AuditEvent {
  readonly sec: number;
  readonly msec: number;
  readonly serial: number;
  readonly records: readonly AuditRecord[];
}

/** audit_msg_type_to_name, or `UNKNOWN[n]` as auditd writes a type it does not know. */
export function typeName(type: number): string { return AUDIT_TYPE_NAMES[type] ?? `UNKNOWN[${type}]`; }

/** auditd's raw log format: `type=%s msg=%.*s`. */
export function logLine(r: AuditRecord): string { return `type=${typeName(r.type)} msg=${recordText(r)}`; }

/** The log as ausearch reads it: EOE dropped, records grouped into events by stamp, in order of first record. */
export function toEvents(records: readonly AuditRecord[]): AuditEvent[] {
  const byStamp = new Map<string, { sec: number; msec: number; serial: number; records: AuditRecord[] }>();
  for (const r of records) {
    if (r.type === AUDIT_EOE) continue;
    const k = `${r.sec}.${r.msec}:${r.serial}`;
    let e = byStamp.get(k);
    if (!e) byStamp.set(k, e = { sec: r.sec, msec: r.msec, serial: r.serial, records: [] });
    e.records.push(r);
  }
  return [...byStamp.values()];
}

export interface SearchOptions {
  /** Events at or after this time (seconds since the epoch, with milliseconds). */
  start?: { sec: number; msec: number };
  /** Events with at least one record of one of these types (ausearch -m). */
  types?: readonly number[];
}

export function searchEvents(events: readonly AuditEvent[], opts: SearchOptions): AuditEvent[] {
  const s = opts.start;
  return events.filter((e) => (!s || e.sec > s.sec || (e.sec === s.sec && e.msec >= s.msec)) &&
    (!opts.types || e.records.some((r) => opts.types!.includes(r.type))));
}

/** ctime(3) in UTC: `Wed Nov 20 17:45:51 2019` (asctime's `%.3s %.3s%3d %.2d:%.2d:%.2d %d`). */
export function ctimeUtc(sec: number): string {
  const d = new Date(sec * 1000);
  const day = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][d.getUTCDay()]!;
  const mon = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getUTCMonth()]!;
  const p2 = (n: number): string => String(n).padStart(2, '0');
  return `${day} ${mon}${String(d.getUTCDate()).padStart(3, ' ')} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} ${d.getUTCFullYear()}`;
}

/** ausearch's default output: per event `----`, `time->…`, then its records last to first ("lifo"). */
export function formatAusearch(events: readonly AuditEvent[]): string {
  return events.map((e) => ['----', `time->${ctimeUtc(e.sec)}`, ...[...e.records].reverse().map(logLine)].join('\n') + '\n').join('');
}

/** ausearch --raw: the log lines as they are, first to last. */
export function formatRaw(events: readonly AuditEvent[]): string {
  return events.flatMap((e) => e.records.map((r) => `${logLine(r)}\n`)).join('');
}

/** The `name=value` fields of a record body (quoted values keep their quotes, as in the log). */
export function recordFields(body: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of body.matchAll(/(?:^| )([^ =]+)=("[^"]*"|[^ ]*)/g)) out[m[1]!] = m[2]!;
  return out;
}

/** An event for programs (-j). */
export function eventJson(e: AuditEvent) {
  return {
    time: `${e.sec}.${String(e.msec).padStart(3, '0')}`, serial: e.serial,
    records: e.records.map((r) => ({ type: r.type, type_name: typeName(r.type), msg: recordText(r), fields: recordFields(r.body) })),
  };
}

/** Names ausearch -m takes besides numbers; BPF is 1334 for a userspace that knows it. */
const MESSAGE_TYPES: Readonly<Record<string, number>> = { SYSCALL: 1300, CONFIG_CHANGE: 1305, EOE: 1320, PROCTITLE: 1327, BPF: 1334 };

/** ausearch -m: comma-separated numbers or names; ALL is every type (no filter: undefined). */
export function parseMessageTypes(spec: string): number[] | undefined {
  const out: number[] = [];
  for (const raw of spec.split(',')) {
    const w = raw.trim().toUpperCase();
    if (w === 'ALL') return undefined;
    const n = /^\d+$/.test(w) ? Number(w) : /^UNKNOWN\[(\d+)\]$/.exec(w)?.[1] ?? MESSAGE_TYPES[w];
    if (n === undefined) throw new Error(`Invalid message type: ${raw}`);
    out.push(Number(n));
  }
  return out;
}

/**
 * ausearch --start: `now`, `recent` (10 minutes ago), `today`, `yesterday`, `week-ago`, or a date
 * `MM/DD/YYYY` with an optional `HH:MM[:SS]` (midnight when absent); all in UTC.
 */
export function parseStart(words: readonly string[], now: { sec: number; msec: number }): { sec: number; msec: number } {
  const w = words.join(' ').trim();
  const midnight = Math.floor(now.sec / 86400) * 86400;
  switch (w) {
    case 'now': return now;
    case 'recent': return { sec: now.sec - 600, msec: now.msec };
    case 'today': return { sec: midnight, msec: 0 };
    case 'yesterday': return { sec: midnight - 86400, msec: 0 };
    case 'week-ago': return { sec: now.sec - 7 * 86400, msec: now.msec };
  }
  const m = /^(\d{1,2})\/(\d{1,2})\/(\d{4})(?: (\d{1,2}):(\d{2})(?::(\d{2}))?)?$/.exec(w);
  if (!m) throw new Error(`Invalid start time: ${w}`);
  const [mo, d, y, h, mi, s] = m.slice(1).map((x) => Number(x ?? 0));
  const ms = Date.UTC(y!, mo! - 1, d!, h!, mi!, s!);
  if (Number.isNaN(ms) || mo! < 1 || mo! > 12 || d! < 1 || d! > 31 || h! > 23 || mi! > 59 || s! > 59) throw new Error(`Invalid start time: ${w}`);
  return { sec: ms / 1000, msec: 0 };
}
