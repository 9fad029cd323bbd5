/**
 * @fileoverview The audit subsystem with bpf(): AUDIT_BPF LOAD/UNLOAD records with the programs'
 * ids, the syscall context (SYSCALL + PROCTITLE sharing the serial of the records written inside
 * the call), UNLOAD outside a syscall as a record of its own, rules added and deleted, audit off
 * emitting nothing, the backlog limit and the lost counter, exactly one LOAD and one UNLOAD per
 * program over 10,000 cycles, the commit example reproduced, and every record's text checked
 * byte for byte against the kernel's own format strings.
 */
import { describe, it, expect, beforeAll, afterAll, beforeEach } from 'vitest';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { boot, type System } from '../../index.ts';
import { __NR } from '../../kernel/syscalls.ts';
import { KFile } from '../../kernel/file.ts';
import { BTF_KIND } from '../../bpf/btf/btf.ts';
import {
  BPF_PROG_LOAD, BPF_MAP_CREATE, BPF_RAW_TRACEPOINT_OPEN, BPF_LINK_CREATE, BPF_LINK_DETACH, BPF_PROG_GET_FD_BY_ID,
} from '../../bpf/syscall/attr.ts';
import {
  AUDIT_BPF, AUDIT_SYSCALL, AUDIT_PROCTITLE, AUDIT_EOE, AUDIT_BACKLOG_LIMIT, recordText, untrustedString, proctitleRtrim,
  type AuditRecord, type BpfAuditFormat,
} from '../../kernel/audit.ts';
import { auditctl, AuditctlError } from '../../cli/auditctl.ts';
import { toEvents, formatAusearch, formatRaw, ctimeUtc, logLine, parseStart, parseMessageTypes, searchEvents } from '../../cli/ausearch.ts';
import { asProcess, EXAMPLE_PROCESS, loadTestsuiteProg, type ProcessIdentity } from '../../cli/commands/audit.ts';

let sys: System;
beforeAll(async () => { sys = await boot(); });
afterAll(() => sys.close());

const audit = () => sys.kernel.audit;
const files = () => sys.kernel.current.files;
const ctl = (...args: string[]): string => auditctl(audit(), args);
const RULE_BPF = ['-a', 'always,exit', '-F', 'arch=x86_64', '-S', 'bpf'];

/** printf for the conversions of the kernel's audit format strings (%u %d %x %s %lx %ld %llu %03lu). */
function kfmt(fmt: string, ...args: (string | number | bigint)[]): string {
  let i = 0;
  return fmt.replace(/%(0\d+)?(?:ll|l)?([udxs])/g, (_m, width: string | undefined, conv: string) => {
    const a = args[i++]!;
    const s = conv === 'x' ? BigInt.asUintN(64, BigInt(a)).toString(16) : String(a);
    return width ? s.padStart(Number(width), '0') : s;
  });
}

/** Audit on, no rules, a clean log, the given AUDIT_BPF format. */
function fresh(format: BpfAuditFormat = 'seed'): void {
  const a = audit();
  ctl('-e', '1', '-D', '-b', String(AUDIT_BACKLOG_LIMIT), '-f', '1', '-r', '0', '--backlog_wait_time', '60000');
  a.bpfFormat = format;
  a.kauditd = 'auto';
  a.records();
  a.clearLog();
}

/** The audit-testsuite program through bpf() with an attr we lay out (so a1 is known): fd and uattr. */
function loadAt(type = 1): { fd: number; uattr: bigint } {
  const b = sys.bpfSys;
  const insns = b.stage(Buffer.from('b7000000000000009500000000000000', 'hex')), lic = b.stage(Buffer.from('GPL\0'));
  const attr = new Uint8Array(120), dv = new DataView(attr.buffer);
  dv.setUint32(0, type, true); dv.setUint32(4, 2, true); dv.setBigUint64(8, insns, true); dv.setBigUint64(16, lic, true);
  const uattr = b.stage(attr);
  const fd = Number(BigInt.asIntN(64, sys.kernel.syscall(__NR.bpf, [BigInt(BPF_PROG_LOAD), uattr, 120n])));
  b.unstage(insns); b.unstage(lic); b.unstage(uattr);
  return { fd, uattr };
}
const load = (): number => loadTestsuiteProg(sys);
const idOf = (fd: number): number => sys.bpfSys.progFromFd(fd)!.id;
const mapCreate = (): number => sys.bpfSys.call(BPF_MAP_CREATE, { map_type: 2, key_size: 4, value_size: 8, max_entries: 1 }).ret;
const logged = (): readonly AuditRecord[] => audit().records();
const bpfBodies = (): string[] => logged().filter((r) => r.type === AUDIT_BPF).map((r) => r.body);
const types = (): number[] => logged().map((r) => r.type);

/** Fills the fd table, so that the next load fails at bpf_prog_new_fd (after its id); returns the undo. */
function fillFds(): () => void {
  const held: number[] = [];
  for (let fd; (fd = files().install(new KFile('filler', undefined))) >= 0;) held.push(fd);
  return () => { for (const fd of held) files().close(fd); };
}

describe('record formats, byte for byte against the kernel\'s format strings', () => {
  beforeEach(() => fresh());

  it('a load through bpf() as the commit example\'s process: SYSCALL, PROCTITLE, seed LOAD; UNLOAD on close', () => {
    ctl(...RULE_BPF);
    const t = sys.kernel.current;
    const { fd, uattr } = asProcess(sys, EXAMPLE_PROCESS, () => loadAt());
    expect(fd).toBeGreaterThan(2);
    const id = idOf(fd);
    files().close(fd);
    const [bpf, syscall, proctitle, eoe, unload] = logged();
    const stamp = (r: AuditRecord): string => kfmt('audit(%llu.%03lu:%u): ', r.sec, r.msec, r.serial); // kernel/audit.c audit_log_start
    // kernel/auditsc.c audit_log_task (made non-static by the seed) + the seed's bpf_audit_prog "%sprog-id=%u event=%s"
    const task = kfmt('auid=%u uid=%u gid=%u ses=%u', 0, 0, 0, 2) + kfmt(' subj=%s', EXAMPLE_PROCESS.subj!) +
      kfmt(' pid=%d comm=', t.tgid) + '"test_verifier"' + ' exe=' + `"${EXAMPLE_PROCESS.exe}"`;
    expect(recordText(bpf!)).toBe(stamp(bpf!) + task + kfmt('%sprog-id=%u event=%s', ' ', id, 'LOAD'));
    // kernel/auditsc.c audit_log_exit, audit_log_task_info (kernel/audit.c), audit_log_key
    expect(recordText(syscall!)).toBe(stamp(bpf!) +
      kfmt('arch=%x syscall=%d', 0xc000003e, 321) + kfmt(' success=%s exit=%ld', 'yes', fd) +
      kfmt(' a0=%lx a1=%lx a2=%lx a3=%lx items=%d', 5, uattr, 120, 0, 0) +
      kfmt(' ppid=%d pid=%d auid=%u uid=%u gid=%u euid=%u suid=%u fsuid=%u egid=%u sgid=%u fsgid=%u tty=%s ses=%u',
        t.ppid, t.tgid, 0, 0, 0, 0, 0, 0, 0, 0, 0, 'pts0', 2) +
      ' comm=' + '"test_verifier"' + ' exe=' + `"${EXAMPLE_PROCESS.exe}"` + kfmt(' subj=%s', EXAMPLE_PROCESS.subj!) + ' key=' + '(null)');
    // audit_log_proctitle: "proctitle=" + audit_log_n_untrustedstring(cmdline, rtrimmed)
    expect(recordText(proctitle!)).toBe(`${stamp(bpf!)}proctitle="./test_verifier"`);
    // The end-of-event record: type 1320, no body.
    expect([eoe!.type, recordText(eoe!)]).toEqual([AUDIT_EOE, stamp(bpf!)]);
    // The close is outside any syscall: bpf_audit_prog(UNLOAD) without task fields, a serial of its own.
    expect(recordText(unload!)).toBe(stamp(unload!) + kfmt('%sprog-id=%u event=%s', '', id, 'UNLOAD'));
    expect(unload!.serial).toBe(bpf!.serial + 1);
  });

  it('v5.6 as shipped: "prog-id=%u op=%s" for LOAD and UNLOAD', () => {
    fresh('v5.6');
    const fd = load(), id = idOf(fd);
    files().close(fd);
    expect(bpfBodies()).toEqual([kfmt('prog-id=%u op=%s', id, 'LOAD'), kfmt('prog-id=%u op=%s', id, 'UNLOAD')]);
  });

  it('untrusted strings: quoted when clean, uppercase hex with a space, quote or control byte (audit_log_n_untrustedstring)', () => {
    expect(untrustedString('test_verifier')).toBe('"test_verifier"');
    expect(untrustedString('x y')).toBe('782079');
    expect(untrustedString('a"b')).toBe('612262');
    expect(untrustedString('é')).toBe('C3A9');
    // audit_proctitle_rtrim: trailing NULs go, inner ones stay (and force hex)
    expect(proctitleRtrim(Buffer.from('./a\0-v\0'))).toBe(6);
    expect(proctitleRtrim(Buffer.from('\0'))).toBe(0);
  });

  it('the task\'s fields: hex comm and proctitle, no exe/tty/LSM, auid and ses unset, a key from the rule', () => {
    ctl(...RULE_BPF, '-k', 'bpf-watch');
    const id: ProcessIdentity = { comm: 'loader two', cmdline: ['./loader', '--verbose'], auid: 4294967295, ses: 4294967295, uid: 1000, gid: 100 };
    const fd = asProcess(sys, id, load), progId = idOf(fd);
    files().close(fd);
    const sc = logged().find((r) => r.type === AUDIT_SYSCALL)!, pt = logged().find((r) => r.type === AUDIT_PROCTITLE)!;
    const t = sys.kernel.current;
    expect(sc.body).toMatch(new RegExp(`^arch=c000003e syscall=321 success=yes exit=${fd} a0=5 a1=[0-9a-f]+ a2=78 a3=0 items=0 `));
    expect(sc.body.slice(sc.body.indexOf(' ppid='))).toBe(
      kfmt(' ppid=%d pid=%d auid=%u uid=%u gid=%u euid=%u suid=%u fsuid=%u egid=%u sgid=%u fsgid=%u tty=%s ses=%u',
        t.ppid, t.tgid, 4294967295, 1000, 100, 1000, 1000, 1000, 100, 100, 100, '(none)', 4294967295) +
      ' comm=' + Buffer.from('loader two').toString('hex').toUpperCase() + ' exe=(null)' + ' key=' + '"bpf-watch"');
    expect(pt.body).toBe(`proctitle=${Buffer.from('./loader\0--verbose').toString('hex').toUpperCase()}`);
    const seedLoad = bpfBodies()[0]!;
    expect(seedLoad).toBe(kfmt('auid=%u uid=%u gid=%u ses=%u', 4294967295, 1000, 100, 4294967295) +
      kfmt(' pid=%d comm=', t.tgid) + '6C6F616465722074776F' + ' exe=(null)' + kfmt('%sprog-id=%u event=%s', ' ', progId, 'LOAD'));
  });

  it('a task with no command line logs proctitle="(null)"; a long one is cut at 128 bytes', () => {
    ctl(...RULE_BPF);
    files().close(asProcess(sys, { comm: 'k', auid: 0, ses: 1, uid: 0, gid: 0 }, load));
    expect(logged().find((r) => r.type === AUDIT_PROCTITLE)!.body).toBe('proctitle="(null)"');
    audit().clearLog();
    files().close(asProcess(sys, { comm: 'k', cmdline: ['x'.repeat(200)], auid: 0, ses: 1, uid: 0, gid: 0 }, load));
    expect(logged().find((r) => r.type === AUDIT_PROCTITLE)!.body).toBe(`proctitle="${'x'.repeat(128)}"`);
  });

  it('a failed bpf() a rule matches: success=no exit=-errno', () => {
    ctl(...RULE_BPF);
    const r = sys.bpfSys.call(999, {}).ret;
    expect(r).toBe(-22);
    const [sc] = logged();
    expect(sc!.body).toMatch(/^arch=c000003e syscall=321 success=no exit=-22 a0=3e7 a1=[0-9a-f]+ a2=78 a3=0 items=0 /);
    expect(bpfBodies()).toEqual([]);
  });
});

describe('LOAD and UNLOAD records', () => {
  beforeEach(() => fresh());

  it('carry the ids the programs got, in load and free order', () => {
    const fds = [load(), load(), load()];
    const ids = fds.map(idOf);
    for (const fd of [...fds].reverse()) files().close(fd);
    const evs = bpfBodies().map((b) => /prog-id=(\d+) event=(\w+)$/.exec(b)!.slice(1));
    expect(evs).toEqual([...ids.map((i) => [String(i), 'LOAD']), ...[...ids].reverse().map((i) => [String(i), 'UNLOAD'])]);
  });

  it('records written inside one syscall share its serial and time, in the kernel\'s order', () => {
    ctl(...RULE_BPF);
    const fd = load();
    // BPF during the call, then at exit SYSCALL, PROCTITLE and the end-of-event record
    expect(types()).toEqual([AUDIT_BPF, AUDIT_SYSCALL, AUDIT_PROCTITLE, AUDIT_EOE]);
    const stamps = new Set(logged().map((r) => `${r.sec}.${r.msec}:${r.serial}`));
    expect(stamps.size).toBe(1);
    const first = logged()[0]!;
    files().close(fd);
    const unload = logged().at(-1)!;
    expect([unload.type, unload.serial]).toEqual([AUDIT_BPF, first.serial + 1]);
    // The next syscall is a new event with the next serial.
    audit().clearLog();
    files().close(mapCreate());
    expect(logged().map((r) => r.serial)).toEqual([unload.serial + 1, unload.serial + 1, unload.serial + 1]);
  });

  it('UNLOAD outside a syscall is its own event; inside one (a load failing after its id) seed shares the serial, v5.6 does not', () => {
    ctl(...RULE_BPF);
    const undo = fillFds();
    expect(() => load()).toThrow(/\(-24\)$/);
    undo();
    // seed: LOAD and UNLOAD in the failed call's context, then its SYSCALL (success=no exit=-24)
    const seed = logged();
    expect(seed.map((x) => x.type)).toEqual([AUDIT_BPF, AUDIT_BPF, AUDIT_SYSCALL, AUDIT_PROCTITLE, AUDIT_EOE]);
    expect(new Set(seed.map((x) => x.serial)).size).toBe(1);
    expect(seed[1]!.body).toMatch(/^prog-id=\d+ event=UNLOAD$/);
    expect(seed[2]!.body).toMatch(/ success=no exit=-24 /);

    fresh('v5.6');
    ctl(...RULE_BPF);
    const undo2 = fillFds();
    expect(() => load()).toThrow(/\(-24\)$/);
    undo2();
    const v56 = logged();
    expect(v56.map((x) => x.type)).toEqual([AUDIT_BPF, AUDIT_BPF, AUDIT_SYSCALL, AUDIT_PROCTITLE, AUDIT_EOE]);
    const [ld, ul, sc] = v56;
    expect(ul!.body).toMatch(/^prog-id=\d+ op=UNLOAD$/);
    expect(sc!.serial).toBe(ld!.serial);
    expect(ul!.serial).not.toBe(ld!.serial); // ctx NULL: a serial of its own
    expect(toEvents(v56).map((e) => e.records.length)).toEqual([3, 1]);
  });
});

describe('rules (auditctl -a/-d/-D/-l)', () => {
  beforeEach(() => fresh());

  it('with no rules a LOAD still brings its syscall\'s records (audit_log_start cancels the dummy context); other calls none', () => {
    files().close(mapCreate());
    expect(types()).toEqual([]);
    const fd = load();
    expect(types()).toEqual([AUDIT_BPF, AUDIT_SYSCALL, AUDIT_PROCTITLE, AUDIT_EOE]);
    files().close(fd);
  });

  it('-S bpf records every bpf() call; a rule for another syscall only the calls that wrote a record', () => {
    ctl(...RULE_BPF);
    files().close(mapCreate());
    expect(types()).toEqual([AUDIT_SYSCALL, AUDIT_PROCTITLE, AUDIT_EOE]);
    expect(logged()[0]!.body).toMatch(/^arch=c000003e syscall=321 success=yes exit=\d+ a0=0 /);
    fresh();
    ctl('-a', 'always,exit', '-F', 'arch=b64', '-S', 'close');
    files().close(mapCreate());
    expect(types()).toEqual([]);
    files().close(load());
    expect(types()).toEqual([AUDIT_BPF, AUDIT_SYSCALL, AUDIT_PROCTITLE, AUDIT_EOE, AUDIT_BPF]);
  });

  it('never,exit suppresses the SYSCALL record, not the BPF one; fields and keys select', () => {
    ctl('-a', 'never,exit', '-F', 'arch=x86_64', '-S', 'bpf');
    files().close(load());
    expect(types()).toEqual([AUDIT_BPF, AUDIT_BPF]);
    fresh();
    ctl('-a', 'always,exit', '-F', 'arch=x86_64', '-S', 'bpf', '-F', 'success=0', '-k', 'fails');
    files().close(mapCreate());
    expect(types()).toEqual([]);
    sys.bpfSys.call(999, {});
    expect(logged()[0]!.body).toMatch(/ success=no exit=-22 .* key="fails"$/);
    fresh();
    ctl('-a', 'always,exit', '-S', 'bpf', '-F', 'uid=1000');
    files().close(mapCreate());
    expect(types()).toEqual([]);
    ctl('-a', 'always,exit', '-S', 'bpf', '-F', 'auid=unset', '-F', 'a0=0');
    files().close(mapCreate()); // init: auid unset, cmd 0 = BPF_MAP_CREATE
    expect(types()).toEqual([AUDIT_SYSCALL, AUDIT_PROCTITLE, AUDIT_EOE]);
  });

  it('the exclude list drops a record type before it is stamped', () => {
    ctl('-a', 'always,exclude', '-F', 'msgtype=1334');
    files().close(load());
    expect(types()).toEqual([]);
  });

  it('-l lists as auditctl does; -d deletes the same rule; -D all; duplicates and missing rules are refused', () => {
    expect(ctl('-l')).toBe('No rules\n');
    ctl(...RULE_BPF);
    ctl('-a', 'always,exit', '-F', 'arch=b64', '-S', 'bpf,close', '-F', 'success=0', '-k', 'k1');
    ctl('-A', 'always,exit', '-S', 'all', '-F', 'exit=-EPERM');
    expect(ctl('-l')).toBe([
      '-a always,exit -S all -F exit=-EPERM',
      '-a always,exit -F arch=b64 -S bpf',
      '-a always,exit -F arch=b64 -S bpf,close -F success=0 -F key=k1',
    ].join('\n') + '\n');
    expect(() => ctl(...RULE_BPF)).toThrow(new AuditctlError('Error sending add rule data request (Rule exists)'));
    ctl('-d', 'always,exit', '-F', 'arch=x86_64', '-S', 'bpf');
    expect(audit().rules).toHaveLength(2);
    files().close(mapCreate());
    expect(types()).toEqual([]); // the remaining rules do not match a successful MAP_CREATE
    expect(() => ctl('-d', 'always,exit', '-F', 'arch=x86_64', '-S', 'bpf')).toThrow(/\(No such file or directory\)$/);
    ctl('-D');
    expect(ctl('-l')).toBe('No rules\n');
    expect(() => ctl('-a', 'always,exit', '-S', 'nosuch')).toThrow('Syscall name unknown: nosuch');
    expect(() => ctl('-a', 'always,task')).toThrow('The task list is not supported');
  });
});

describe('audit off', () => {
  it('emits nothing: no records, no backlog, no serials used', () => {
    fresh();
    ctl(...RULE_BPF);
    files().close(load());
    const last = logged().at(-1)!.serial;
    ctl('-e', '0');
    const before = { lost: audit().lost, log: audit().log.length };
    const fd = load();
    sys.bpfSys.call(999, {});
    files().close(mapCreate());
    files().close(fd);
    const undo = fillFds();
    expect(() => load()).toThrow(/\(-24\)$/);
    undo();
    expect({ lost: audit().lost, log: audit().records().length, backlog: audit().backlog }).toEqual({ ...before, backlog: 0 });
    ctl('-e', '1');
    audit().clearLog();
    files().close(load());
    // Serials continue from before: nothing was stamped while off.
    expect(logged().map((r) => r.serial)).toEqual([1, 1, 1, 1, 2].map((d) => last + d));
  });
});

describe('the backlog (audit_backlog_limit 64) and the lost counter', () => {
  it('a stalled kauditd: 65 records queue, the rest are lost and counted, with the kernel\'s messages; the machine goes on', () => {
    fresh('v5.6');
    ctl('-e', '0');
    const fds = Array.from({ length: 100 }, () => load()); // loaded while off: no records
    const ids = fds.map(idOf);
    ctl('-e', '1');
    const a = audit();
    a.kauditd = 'stalled';
    const lost0 = a.lost, kmsg0 = a.kmsg.length;
    for (const fd of fds) files().close(fd); // 100 UNLOADs outside syscalls (GFP_ATOMIC)
    // audit_log_start refuses when skb_queue_len > audit_backlog_limit: 65 fit.
    expect(a.backlog).toBe(AUDIT_BACKLOG_LIMIT + 1);
    expect(a.lost - lost0).toBe(35);
    expect(a.status()).toMatchObject({ backlog: 65, backlog_limit: 64, lost: a.lost });
    expect(a.kmsg.slice(kmsg0, kmsg0 + 3)).toEqual([
      'audit: audit_backlog=65 > audit_backlog_limit=64',
      `audit: audit_lost=${lost0 + 1} audit_rate_limit=0 audit_backlog_limit=64`,
      'audit: backlog limit exceeded',
    ]);
    expect(a.records()).toEqual([]); // auditd got nothing: kauditd has not run
    // The machine keeps running: kernel calls, and a load (its records are lost too).
    expect(sys.callFunc('bpf_fentry_test1', [1n]).ret).toBe(2n);
    const t0 = sys.kernel.clock.ktimeGetNs();
    const fd = load();
    expect(fd).toBeGreaterThan(0);
    // The load's LOAD (atomic) is lost at once; with no rule there is no SYSCALL record to wait.
    expect(a.lost - lost0).toBe(36);
    expect(sys.kernel.clock.ktimeGetNs() - t0).toBeLessThan(1_000_000_000n);
    // kauditd runs: the 65 reach auditd, in order; later records flow again.
    expect(a.kauditdRun()).toBe(65);
    expect(a.records().map((r) => Number(/prog-id=(\d+)/.exec(r.body)![1]))).toEqual(ids.slice(0, 65));
    a.kauditd = 'auto';
    files().close(fd);
    expect(a.records().at(-1)!.body).toBe(`prog-id=${ids.at(-1)! + 1} op=UNLOAD`);
    expect(a.lost - lost0).toBe(36);
  });

  it('a record that may sleep (GFP_KERNEL) waits backlog_wait_time for a stalled kauditd, then is lost', () => {
    fresh('v5.6');
    ctl(...RULE_BPF, '-b', '2');
    const a = audit();
    a.kauditd = 'stalled';
    const lost0 = a.lost;
    const t0 = sys.kernel.clock.ktimeGetNs();
    files().close(mapCreate()); // SYSCALL, PROCTITLE, EOE: 3 fit (limit 2 allows 3)
    expect([a.backlog, a.lost - lost0]).toEqual([3, 0]);
    files().close(mapCreate()); // three more, each waits 60 s and is lost
    expect([a.backlog, a.lost - lost0]).toEqual([3, 3]);
    expect(sys.kernel.clock.ktimeGetNs() - t0).toBeGreaterThanOrEqual(3n * 60_000_000_000n);
    ctl('-b', '0'); // 0: no limit
    files().close(mapCreate());
    expect([a.backlog, a.lost - lost0]).toEqual([6, 3]);
    a.kauditdRun();
    a.kauditd = 'auto';
  });

  it('a rate limit loses records beyond it (audit_log_end, audit_rate_check)', () => {
    fresh('v5.6');
    ctl('-e', '0');
    const fds = Array.from({ length: 10 }, () => load());
    ctl('-e', '1', '-r', '2');
    sys.kernel.clock.tick(2_000_000_000n);
    const lost0 = audit().lost;
    for (const fd of fds) files().close(fd);
    // ++messages < limit passes; at the limit only a new second (elapsed > HZ) resets the count.
    expect(bpfBodies()).toHaveLength(3);
    expect(audit().lost - lost0).toBe(7);
    sys.kernel.clock.tick(2_000_000_000n);
    files().close(load());
    // A new second: the LOAD and its SYSCALL pass; PROCTITLE, EOE and the UNLOAD are over the limit.
    expect(bpfBodies()).toHaveLength(4);
    expect(logged().slice(-2).map((r) => r.type)).toEqual([AUDIT_BPF, AUDIT_SYSCALL]);
    expect(audit().lost - lost0).toBe(10);
    ctl('-r', '0');
  });
});

describe('one LOAD per load and one UNLOAD per free, over 10,000 cycles', () => {
  it('plain closes, a second fd by id, links, raw tracepoint attachments, loads failing after their id', () => {
    fresh('seed');
    ctl(...RULE_BPF);
    const b = sys.bpfSys;
    const lic = b.stage(Buffer.from('GPL\0'));
    const tracing = b.stage(Buffer.from('b7000000000000009500000000000000', 'hex'));
    const fentryId = sys.btf.findByNameKind('bpf_fentry_test1', BTF_KIND.FUNC)!.id;
    const loadTracing = (): number => b.call(BPF_PROG_LOAD, {
      prog_type: 26, expected_attach_type: 24, attach_btf_id: fentryId, insns: tracing, insn_cnt: 2, license: lic,
    }).ret;
    const progs0 = b.progs.size;
    const loads = new Map<number, number>(), unloads = new Map<number, number>();
    let attempts = 0;
    const tally = (): void => {
      for (const r of audit().records()) {
        if (r.type !== AUDIT_BPF) continue;
        const [, id, ev] = /prog-id=(\d+) event=(\w+)$/.exec(r.body)!;
        const m = ev === 'LOAD' ? loads : unloads;
        expect(ev === 'UNLOAD' ? loads.has(Number(id)) : true).toBe(true); // never an UNLOAD before its LOAD
        m.set(Number(id), (m.get(Number(id)) ?? 0) + 1);
      }
      audit().clearLog();
    };
    b.jitEnabled = false;
    for (let i = 0; i < 10_000; i++) {
      attempts++;
      switch (i % 250) {
        case 1: { // freed by the raw tracepoint fd's release (the trampoline drops its reference)
          const p = loadTracing(), l = b.call(BPF_RAW_TRACEPOINT_OPEN, { name: 0, prog_fd: p }).ret;
          expect(l).toBeGreaterThan(0);
          files().close(p);
          files().close(l);
          break;
        }
        case 2: { // v5.5 has no BPF_LINK_CREATE (-EINVAL, nothing held): freed by its fd's close
          const p = loadTracing();
          expect(b.call(BPF_LINK_CREATE, { prog_fd: p, attach_type: 24 }).ret).toBe(-22);
          expect(b.call(BPF_LINK_DETACH, { link_fd: p }).ret).toBe(-22);
          files().close(p);
          break;
        }
        case 3: { // a second fd from GET_FD_BY_ID: freed with the last one
          const p = load(), q = b.call(BPF_PROG_GET_FD_BY_ID, { start_id: idOf(p) }).ret;
          files().close(p);
          files().close(q);
          break;
        }
        case 4: { // id allocated, no fd: freed inside the failing call
          const undo = fillFds();
          expect(() => load()).toThrow(/\(-24\)$/);
          undo();
          break;
        }
        case 5: b.jitEnabled = true; files().close(load()); b.jitEnabled = false; break; // a JIT image
        default: files().close(load());
      }
      if (i % 1000 === 999) tally();
    }
    tally();
    b.unstage(lic); b.unstage(tracing);
    expect(loads.size).toBe(attempts);
    expect([...loads.values()].every((n) => n === 1)).toBe(true);
    expect([...unloads.keys()].sort((x, y) => x - y)).toEqual([...loads.keys()].sort((x, y) => x - y));
    expect([...unloads.values()].every((n) => n === 1)).toBe(true);
    expect(b.progs.size).toBe(progs0);
  });
});

describe('the commit example, line for line', () => {
  /** bae141f54be8's parent v1 commit message (seed-commits.txt): `ausearch --start recent -m 1334`. */
  const COMMIT_EXAMPLE = [
    '----',
    'time->Wed Nov 20 12:45:51 2019',
    'type=PROCTITLE msg=audit(1574271951.590:8974): proctitle="./test_verifier"',
    'type=SYSCALL msg=audit(1574271951.590:8974): arch=c000003e syscall=321 success=yes exit=14 a0=5 a1=7ffe2d923e80 a2=78 a3=0 items=0 ppid=742 pid=949 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=2 comm="test_verifier" exe="/root/bpf-next/tools/testing/selftests/bpf/test_verifier" subj=unconfined_u:unconfined_r:unconfined_t:s0-s0:c0.c1023 key=(null)',
    'type=UNKNOWN[1334] msg=audit(1574271951.590:8974): auid=0 uid=0 gid=0 ses=2 subj=unconfined_u:unconfined_r:unconfined_t:s0-s0:c0.c1023 pid=949 comm="test_verifier" exe="/root/bpf-next/tools/testing/selftests/bpf/test_verifier" prog-id=3260 event=LOAD',
    '----',
    'time->Wed Nov 20 12:45:51 2019',
    'type=UNKNOWN[1334] msg=audit(1574271951.590:8975): prog-id=3260 event=UNLOAD',
  ];
  /** A line as a pattern: times, serials, ids, pids, the fd and the attr's address differ by nature. */
  const shape = (line: string): RegExp => new RegExp(`^${line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    .replace(/^time->.*$/, 'time->[A-Z][a-z]{2} [A-Z][a-z]{2} [ \\d]\\d \\d{2}:\\d{2}:\\d{2} \\d{4}')
    .replace(/audit\\\(\d+\\\.\d+:\d+\\\)/, 'audit\\(\\d+\\.\\d{3}:\\d+\\)')
    .replace(/(exit|a1|ppid|pid|prog-id)=[0-9a-f]+/g, '$1=[0-9a-f]+')}$`);

  it('ausearch shape: the same lines, one SYSCALL event and a standalone UNLOAD with the next serial', () => {
    fresh('seed');
    ctl('-D');
    ctl(...RULE_BPF);
    files().close(asProcess(sys, EXAMPLE_PROCESS, load));
    const events = searchEvents(toEvents(audit().records()), { types: parseMessageTypes('1334')!, start: parseStart(['recent'], { sec: logged()[0]!.sec, msec: 999 }) });
    const lines = formatAusearch(events).trimEnd().split('\n');
    expect(lines).toHaveLength(COMMIT_EXAMPLE.length);
    lines.forEach((l, i) => expect(l).toMatch(shape(COMMIT_EXAMPLE[i]!)));
    const serial = (l: string): number => Number(/:(\d+)\)/.exec(l)![1]);
    expect([serial(lines[3]!), serial(lines[4]!), serial(lines[7]!)]).toEqual([serial(lines[2]!), serial(lines[2]!), serial(lines[2]!) + 1]);
    const pid = sys.kernel.current.tgid;
    expect(lines[3]).toContain(` ppid=${sys.kernel.current.ppid} pid=${pid} `);
    expect(/prog-id=(\d+)/.exec(lines[4]!)![1]).toBe(/prog-id=(\d+)/.exec(lines[7]!)![1]);
    // --raw: the log lines first to last, no separators
    expect(formatRaw(events).trimEnd().split('\n').map((l) => l.slice(0, l.indexOf(' msg=')))).toEqual([
      'type=UNKNOWN[1334]', 'type=SYSCALL', 'type=PROCTITLE', 'type=UNKNOWN[1334]',
    ]);
  });

  it('time-> is ctime(): the example\'s local time is UTC-5 of its stamp', () => {
    expect(ctimeUtc(1574271951 - 5 * 3600)).toBe('Wed Nov 20 12:45:51 2019');
    expect(ctimeUtc(1572930000)).toBe('Tue Nov  5 05:00:00 2019');
    expect(logLine({ type: 1334, sec: 1574271951, msec: 590, serial: 8975, body: 'prog-id=3260 event=UNLOAD' }))
      .toBe(COMMIT_EXAMPLE.at(-1));
  });
});

/** User processes (the user-process issue), when this tree has them: records carry the process. */
interface ProcsApi { spawnFile(path: string, o: { argv: string[] }): { pid: number; task: Parameters<ReturnType<typeof audit>['setTaskInfo']>[0] }; run(): void }
const MMAP_TEST = fileURLToPath(new URL('../../images/build/user/mmap_test', import.meta.url));

describe('a user process loading through the syscall instruction', () => {
  it('the records name the process (pid, ppid, comm, exe, a user-space attr address); its close frees outside the bpf() call', (ctx) => {
    const procs = (sys as unknown as { procs?: ProcsApi }).procs;
    if (!procs || !existsSync(MMAP_TEST)) return ctx.skip(); // no user processes in this tree yet
    fresh('seed');
    ctl(...RULE_BPF);
    const argv = ['./mmap_test', '-v'], lost0 = audit().lost;
    const p = procs.spawnFile(MMAP_TEST, { argv });
    audit().setTaskInfo(p.task, { exe: MMAP_TEST, cmdline: argv, tty: 'pts0' }); // what execve records
    procs.run();
    const events = toEvents(audit().records());
    const loadEv = events.find((e) => e.records.some((r) => /event=LOAD$/.test(r.body)))!;
    const ld = loadEv.records.find((r) => r.type === AUDIT_BPF)!, sc = loadEv.records.find((r) => r.type === AUDIT_SYSCALL)!;
    const id = /prog-id=(\d+)/.exec(ld.body)![1];
    expect(ld.body).toBe(`auid=4294967295 uid=0 gid=0 ses=4294967295 pid=${p.pid} comm="mmap_test" exe="${MMAP_TEST}" prog-id=${id} event=LOAD`);
    expect(sc.body).toMatch(new RegExp(`^arch=c000003e syscall=321 success=yes exit=\\d+ a0=5 a1=7f[0-9a-f]+ a2=[0-9a-f]+ a3=[0-9a-f]+ items=0 ppid=${sys.kernel.current.pid} pid=${p.pid} .* tty=pts0 ses=4294967295 comm="mmap_test" exe="[^"]+" key=\\(null\\)$`));
    expect(loadEv.records.find((r) => r.type === AUDIT_PROCTITLE)!.body).toBe(`proctitle=${Buffer.from('./mmap_test\0-v').toString('hex').toUpperCase()}`);
    const unloadEv = events.find((e) => e.records.some((r) => r.body === `prog-id=${id} event=UNLOAD`))!;
    expect(unloadEv.records).toHaveLength(1);
    expect(audit().lost).toBe(lost0);
  });
});

describe('a locked configuration (auditctl -e 2)', () => {
  it('refuses every change, and keeps auditing', async () => {
    const s2 = await boot();
    try {
      const a = s2.kernel.audit;
      auditctl(a, ['-e', '2']);
      expect(() => auditctl(a, ['-e', '0'])).toThrow('Error sending enable request (Operation not permitted)');
      expect(() => auditctl(a, RULE_BPF)).toThrow(/Operation not permitted/);
      expect(() => auditctl(a, ['-b', '8192'])).toThrow(/Operation not permitted/);
      const fd = loadTestsuiteProg(s2);
      expect(a.records().filter((r) => r.type === AUDIT_BPF)).toHaveLength(1);
      s2.kernel.current.files.close(fd);
    } finally {
      s2.close();
    }
  });
});
