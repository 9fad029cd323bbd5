/**
 * @fileoverview The audit subsystem (kernel/audit.c, kernel/auditsc.c of the 5.5/5.6 era; rules in
 * auditfilter.ts): audit_enabled, the syscall exit filter list and the exclude list, a per-task
 * audit context begun at syscall entry and ended at exit (where a matching rule, or a record
 * written inside the syscall, produces the SYSCALL, PROCTITLE and EOE records sharing one
 * serial), record stamps `audit(SECONDS.MILLIS:SERIAL)` from the machine's clock, the backlog
 * queue with the kernel's limit (64) and lost counter, and kauditd handing records to auditd:
 * a sink the host reads.
 *
 * AUDIT_BPF (1334) comes from bpf/syscall through bpfProg(), in the seed's format (the reverted
 * v1 of bae141f54be8: audit_log_task fields and `event=` on LOAD, both events in the syscall's
 * context) or the one v5.6 shipped (`prog-id=%u op=%s`, UNLOAD never in a context).
 *
 * What is not modelled: task filters (every task has a context in the BUILD state, as if audit
 * had been enabled before it was forked), the filesystem/watch/tree rules, AUDIT_CONFIG_CHANGE
 * records for configuration changes, the netlink protocol, and kauditd's printk fallback (auditd
 * is always connected).
 */
import type { Kernel } from './kernel.ts';
import type { Task } from './task.ts';
import {
  AUDITSC_INVALID, AUDITSC_SUCCESS, AUDITSC_FAILURE, auditComparator, fieldsMatch, checkRule, sameRule, stripRule,
  type AuditRule, type KRule,
} from './auditfilter.ts';

export {
  AUDIT_RULE_FIELDS, auditComparator, type AuditOp, type AuditField, type AuditFieldName, type AuditRule,
} from './auditfilter.ts';

/** Record types (include/uapi/linux/audit.h). */
export const AUDIT_SYSCALL = 1300, AUDIT_EOE = 1320, AUDIT_PROCTITLE = 1327, AUDIT_BPF = 1334;
/** AUDIT_ARCH_X86_64: EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE. */
export const AUDIT_ARCH_X86_64 = 0xc000003e;
/** audit_enabled values. */
export const AUDIT_OFF = 0, AUDIT_ON = 1, AUDIT_LOCKED = 2;
/** audit_failure values: what losing a record does. */
export const AUDIT_FAIL_SILENT = 0, AUDIT_FAIL_PRINTK = 1, AUDIT_FAIL_PANIC = 2;
/** The kernel's defaults: audit_backlog_limit = 64, AUDIT_BACKLOG_WAIT_TIME = 60 * HZ (HZ = 1000). */
export const AUDIT_BACKLOG_LIMIT = 64;
export const HZ = 1000;
export const AUDIT_BACKLOG_WAIT_TIME = 60 * HZ;
/** MAX_PROCTITLE_AUDIT_LEN (auditsc.c). */
export const MAX_PROCTITLE_AUDIT_LEN = 128;
/** AUDIT_SID_UNSET / AUDIT_UID_UNSET as printed: (unsigned int)-1. */
export const AUDIT_UNSET = 4294967295;

/** The names auditd of late 2019 knows; 1334 is not among them, so it logs `UNKNOWN[1334]`. */
export const AUDIT_TYPE_NAMES: Readonly<Record<number, string>> = { 1300: 'SYSCALL', 1305: 'CONFIG_CHANGE', 1320: 'EOE', 1327: 'PROCTITLE' };

/** enum audit_state. */
const STATE_DISABLED = 0, STATE_BUILD = 1, STATE_RECORD = 3;
/** Rule priorities (auditfilter.c: prio_low = ~0ULL/2, prio_high = ~0ULL/2 - 1); a context in the RECORD state has ~0ULL. */
const PRIO_MAX = (1n << 64n) - 1n;
const EINTR = 4, ENOENT = 2, EEXIST = 17, EINVAL = 22, EPERM = 1, MAX_ERRNO = 4095;
const ERESTARTSYS = 512, ENOIOCTLCMD = 515, ERESTART_RESTARTBLOCK = 516;

/** One record as kauditd hands it to auditd: the netlink type and `audit(SEC.MSEC:SERIAL): body`. */
export interface AuditRecord {
  readonly type: number;
  readonly sec: number;
  readonly msec: number;
  readonly serial: number;
  readonly body: string;
}

/** The netlink payload: `audit(%llu.%03lu:%u): ` then the body (audit_log_start). */
export function recordText(r: AuditRecord): string {
  return `audit(${r.sec}.${String(r.msec).padStart(3, '0')}:${r.serial}): ${r.body}`;
}

/** What audit reads of a task beyond its struct task_struct fields in task.ts. */
export interface AuditTaskInfo {
  /** The executable (audit_log_d_path_exe); absent: a task without mm, `exe=(null)`. */
  exe?: string;
  /** argv as /proc/PID/cmdline, for PROCTITLE; absent: `proctitle="(null)"`. */
  cmdline?: readonly string[];
  /** The controlling tty's name (`pts0`); absent: `tty=(none)`. */
  tty?: string;
  /** The LSM's label of the task (`subj=`); absent: the subsystem's lsmLabel. */
  subj?: string;
}

/** struct audit_context: the per-task state between syscall entry and exit. */
interface AuditContext {
  state: number;
  inSyscall: boolean;
  dummy: boolean;
  currentState: number;
  prio: bigint;
  arch: number;
  major: number;
  argv: bigint[];
  serial: number;
  ctime: { sec: number; msec: number };
  returnValid: number;
  returnCode: bigint;
  filterkey: string | undefined;
  ppid: number;
  /** The cached proctitle (the kernel caches it in the context on first use). */
  proctitle: Uint8Array | undefined;
}

/** What `auditctl -s` shows. */
export interface AuditStatus {
  enabled: number; failure: number; pid: number; rate_limit: number; backlog_limit: number;
  lost: number; backlog: number; backlog_wait_time: number;
}

/** audit_panic() with audit_failure = AUDIT_FAIL_PANIC: the machine stops. */
export class AuditPanic extends Error {
  constructor(message: string) { super(`Kernel panic - not syncing: audit: ${message}`); this.name = 'AuditPanic'; }
}

/** AUDIT_BPF's text: the seed (v1, `event=`, task fields on LOAD) or v5.6 as shipped (`op=`). */
export type BpfAuditFormat = 'seed' | 'v5.6';

/**
 * When kauditd gets the CPU. 'auto' (one CPU): when the current task leaves the kernel (syscall
 * exit) or sleeps (a full backlog), and at once for records written outside a syscall. 'stalled':
 * only when the host runs it (kauditdRun), as with an auditd that stopped reading.
 */
export type KauditdMode = 'auto' | 'stalled';

/** Realtime at boot of a virtual clock: the commit example's second, so runs are reproducible. */
const VIRTUAL_EPOCH_NS = 1574271951_000_000_000n;

export class AuditSubsystem {
  private readonly kernel: Kernel;
  private enabledState = AUDIT_OFF;
  private failure = AUDIT_FAIL_PRINTK;
  private rateLimit = 0;
  private backlogLimit = AUDIT_BACKLOG_LIMIT;
  private backlogWaitTime = AUDIT_BACKLOG_WAIT_TIME;
  private lostCount = 0;
  private serialCounter = 0;
  private readonly exitRules: KRule[] = [];
  private readonly excludeRules: KRule[] = [];
  /** audit_n_rules: rules on lists that syscall auditing consults (not exclude). */
  private nRules = 0;
  private prioLow = PRIO_MAX / 2n;
  private prioHigh = PRIO_MAX / 2n - 1n;
  private readonly contexts = new WeakMap<Task, AuditContext>();
  private readonly taskInfos = new WeakMap<Task, AuditTaskInfo>();
  /** audit_queue: records waiting for kauditd. */
  private queue: AuditRecord[] = [];
  private realtimeBase: bigint | undefined;
  private rate = { lastCheckMs: 0n, messages: 0 };
  private lostMsg = { lastMs: -1n };
  private printkRl = { beginMs: -1n, printed: 0, missed: 0 };

  /** The text AUDIT_BPF records take. */
  #bpfFormat: BpfAuditFormat | undefined;
  /** AUDIT_BPF's text: the kernel profile's (seed for 5.5, v5.6 from 5.7) unless set. */
  get bpfFormat(): BpfAuditFormat { return this.#bpfFormat ?? this.kernel.profile.audit.bpfFormat; }
  set bpfFormat(f: BpfAuditFormat) { this.#bpfFormat = f; }
  kauditd: KauditdMode = 'auto';
  /** The LSM label of tasks that have none of their own (`subj=`); undefined: no LSM, no subj field. */
  lsmLabel: string | undefined;
  /** What auditd received (EOE included), in order: the sink the host reads. */
  readonly log: AuditRecord[] = [];
  /** printk lines of the audit subsystem (pr_fmt "audit: "), as dmesg shows them. */
  readonly kmsg: string[] = [];

  constructor(kernel: Kernel) { this.kernel = kernel; }

  // --- configuration (what auditctl sets through netlink) -----------------------------------

  get enabled(): number { return this.enabledState; }

  /** audit_set_enabled: 0, 1 or 2 (locked: no more changes); -EINVAL / -EPERM. */
  setEnabled(state: number): number {
    if (state < AUDIT_OFF || state > AUDIT_LOCKED || !Number.isInteger(state)) return -EINVAL;
    if (this.enabledState === AUDIT_LOCKED) return -EPERM;
    this.enabledState = state;
    return 0;
  }

  setFailure(mode: number): number {
    if (mode !== AUDIT_FAIL_SILENT && mode !== AUDIT_FAIL_PRINTK && mode !== AUDIT_FAIL_PANIC) return -EINVAL;
    return this.change(() => { this.failure = mode; });
  }

  setBacklogLimit(limit: number): number { return this.change(() => { this.backlogLimit = limit >>> 0; }); }
  setBacklogWaitTime(jiffies: number): number { return this.change(() => { this.backlogWaitTime = jiffies >>> 0; }); }
  setRateLimit(perSecond: number): number { return this.change(() => { this.rateLimit = perSecond >>> 0; }); }

  private change(set: () => void): number {
    if (this.enabledState === AUDIT_LOCKED) return -EPERM;
    set();
    return 0;
  }

  get lost(): number { return this.lostCount; }
  /** Records waiting in the backlog (audit_queue). */
  get backlog(): number { return this.queue.length; }

  status(): AuditStatus {
    return {
      enabled: this.enabledState, failure: this.failure, pid: 0, rate_limit: this.rateLimit,
      backlog_limit: this.backlogLimit, lost: this.lostCount, backlog: this.queue.length, backlog_wait_time: this.backlogWaitTime,
    };
  }

  /** The process details audit logs for `task` (exe, cmdline, tty, LSM label); setting them models an exec. */
  setTaskInfo(task: Task, info: AuditTaskInfo): void {
    this.taskInfos.set(task, info);
    const ctx = this.contexts.get(task);
    if (ctx) ctx.proctitle = undefined;
  }

  taskInfo(task: Task): AuditTaskInfo { return this.taskInfos.get(task) ?? {}; }

  /** Sets CLOCK_REALTIME (ns since the epoch); by default a virtual clock starts at the commit example's date. */
  setRealtime(ns: bigint): void { this.realtimeBase = ns - this.kernel.clock.ktimeGetNs(); }

  realtimeNs(): bigint {
    const mono = this.kernel.clock.ktimeGetNs();
    this.realtimeBase ??= this.kernel.clock.mode === 'host' ? BigInt(Date.now()) * 1_000_000n - mono : VIRTUAL_EPOCH_NS - 1_000_000_000n;
    return this.realtimeBase + mono;
  }

  // --- rules (auditfilter.c) -------------------------------------------------------------------

  /** The rules in list order (what `auditctl -l` lists). */
  get rules(): readonly AuditRule[] { return [...this.exitRules, ...this.excludeRules].map(stripRule); }

  /** audit_add_rule: appended (or prepended, auditctl -A); -EEXIST for a duplicate, -EINVAL, -EPERM when locked. */
  addRule(rule: AuditRule, opts: { prepend?: boolean } = {}): number {
    if (this.enabledState === AUDIT_LOCKED) return -EPERM;
    const bad = checkRule(rule);
    if (bad) return bad;
    const list = rule.list === 'exit' ? this.exitRules : this.excludeRules;
    if (list.some((r) => sameRule(r, rule))) return -EEXIST;
    const prio = rule.list !== 'exit' ? PRIO_MAX : opts.prepend ? ++this.prioHigh : --this.prioLow;
    const k: KRule = { ...rule, prio, mask: rule.syscalls === 'all' ? 'all' : new Set(rule.syscalls) };
    if (opts.prepend) list.unshift(k); else list.push(k);
    if (rule.list === 'exit') this.nRules++;
    return 0;
  }

  /** audit_del_rule: the rule that is the same in every part; -ENOENT when there is none. */
  deleteRule(rule: AuditRule): number {
    if (this.enabledState === AUDIT_LOCKED) return -EPERM;
    const list = rule.list === 'exit' ? this.exitRules : this.excludeRules;
    const i = list.findIndex((r) => sameRule(r, rule));
    if (i < 0) return -ENOENT;
    list.splice(i, 1);
    if (rule.list === 'exit') this.nRules--;
    return 0;
  }

  // --- the per-task context (auditsc.c) --------------------------------------------------------

  private contextOf(task: Task): AuditContext {
    let ctx = this.contexts.get(task);
    if (!ctx) {
      ctx = {
        state: STATE_BUILD, inSyscall: false, dummy: true, currentState: STATE_BUILD, prio: 0n, arch: 0, major: 0,
        argv: [0n, 0n, 0n, 0n], serial: 0, ctime: { sec: 0, msec: 0 }, returnValid: AUDITSC_INVALID, returnCode: 0n,
        filterkey: undefined, ppid: 0, proctitle: undefined,
      };
      this.contexts.set(task, ctx);
    }
    return ctx;
  }

  /**
   * A system call of the current task under audit: __audit_syscall_entry, the call, then
   * __audit_syscall_exit. A call already inside one (a nested entry) is not a new context.
   */
  syscall<T extends number | bigint>(nr: number, args: readonly bigint[], fn: () => T): T {
    const ctx = this.syscallEntry(nr, args);
    if (!ctx) return fn();
    let ret: T;
    try {
      ret = fn();
    } catch (e) {
      ctx.inSyscall = false; // a model bug or a panic: nothing more is logged for this call
      throw e;
    }
    this.syscallExit(ctx, BigInt(ret));
    return ret;
  }

  /** __audit_syscall_entry: the context records the call; undefined when audit is off (or nested). */
  private syscallEntry(major: number, args: readonly bigint[]): AuditContext | undefined {
    if (this.enabledState === AUDIT_OFF) return undefined;
    const ctx = this.contextOf(this.kernel.current);
    if (ctx.inSyscall || ctx.state === STATE_DISABLED) return undefined;
    ctx.dummy = this.nRules === 0;
    if (!ctx.dummy && ctx.state === STATE_BUILD) ctx.prio = 0n;
    ctx.arch = AUDIT_ARCH_X86_64;
    ctx.major = major;
    ctx.argv = [0, 1, 2, 3].map((i) => BigInt.asUintN(64, args[i] ?? 0n));
    ctx.serial = 0;
    ctx.inSyscall = true;
    ctx.currentState = ctx.state;
    ctx.ppid = 0;
    ctx.ctime = this.now();
    return ctx;
  }

  /** __audit_syscall_exit: the exit filter decides, or a record written in the call already did. */
  private syscallExit(ctx: AuditContext, ret: bigint): void {
    const task = this.kernel.current;
    if (!ctx.dummy && ctx.inSyscall) {
      const rc = BigInt.asIntN(64, ret);
      // is_syscall_success(): not IS_ERR_VALUE of the return register
      ctx.returnValid = rc < 0n && rc >= -BigInt(MAX_ERRNO) ? AUDITSC_FAILURE : AUDITSC_SUCCESS;
      ctx.returnCode = rc <= -BigInt(ERESTARTSYS) && rc >= -BigInt(ERESTART_RESTARTBLOCK) && rc !== -BigInt(ENOIOCTLCMD) ? -BigInt(EINTR) : rc;
      this.filterSyscall(task, ctx);
      if (ctx.currentState === STATE_RECORD) this.logExit(task, ctx);
    }
    ctx.inSyscall = false;
    ctx.prio = ctx.state === STATE_RECORD ? PRIO_MAX : 0n;
    if (ctx.state !== STATE_RECORD) ctx.filterkey = undefined;
    // One CPU: kauditd runs once the task returns to user mode.
    if (this.kauditd === 'auto') this.kauditdRun();
  }

  /** audit_filter_syscall: the first exit rule whose mask and fields match sets the state. */
  private filterSyscall(task: Task, ctx: AuditContext): void {
    for (const r of this.exitRules) {
      if ((r.mask === 'all' || r.mask.has(ctx.major)) && this.filterRules(task, r, ctx)) return;
    }
  }

  /** audit_filter_rules: every field must match; then the rule's priority must beat the context's. */
  private filterRules(task: Task, rule: KRule, ctx: AuditContext): boolean {
    if (!fieldsMatch(task, rule, ctx)) return false;
    if (rule.prio <= ctx.prio) return false;
    if (rule.key !== undefined) ctx.filterkey = rule.key;
    ctx.prio = rule.prio;
    ctx.currentState = rule.action === 'never' ? STATE_DISABLED : STATE_RECORD;
    return true;
  }

  /** audit_filter(type, AUDIT_FILTER_EXCLUDE): any matching exclude rule drops the record. */
  private excluded(type: number): boolean {
    return this.excludeRules.some((r) => r.fields.every((f) => f.name === 'msgtype' && auditComparator(type, f.op, f.value)));
  }

  /** audit_log_exit: SYSCALL, then PROCTITLE, then EOE, all with the context's stamp. */
  private logExit(task: Task, ctx: AuditContext): void {
    const ret = ctx.returnValid !== AUDITSC_INVALID
      ? ` success=${ctx.returnValid === AUDITSC_SUCCESS ? 'yes' : 'no'} exit=${ctx.returnCode}` : '';
    const [a0, a1, a2, a3] = ctx.argv.map((a) => a.toString(16));
    const key = ctx.filterkey === undefined ? '(null)' : untrustedString(ctx.filterkey);
    this.log1(ctx, AUDIT_SYSCALL, true, () =>
      `arch=${ctx.arch.toString(16)} syscall=${ctx.major}${ret} a0=${a0} a1=${a1} a2=${a2} a3=${a3} items=0${this.taskInfoText(task)} key=${key}`);
    this.log1(ctx, AUDIT_PROCTITLE, true, () => `proctitle=${this.proctitle(task, ctx)}`);
    this.log1(ctx, AUDIT_EOE, true, () => '');
  }

  /** audit_log_task_info: the SYSCALL record's process fields. */
  private taskInfoText(t: Task): string {
    const c = t.cred, info = this.taskInfo(t);
    return ` ppid=${t.ppid} pid=${t.tgid} auid=${t.loginuid >>> 0} uid=${c.uid} gid=${c.gid} euid=${c.euid} suid=${c.suid}` +
      ` fsuid=${c.fsuid} egid=${c.egid} sgid=${c.sgid} fsgid=${c.fsgid} tty=${info.tty ?? '(none)'} ses=${t.sessionid >>> 0}` +
      ` comm=${untrustedString(taskComm(t))}${exeText(info)}${this.subjText(t)}`;
  }

  /** audit_log_task (auditsc.c), which the seed's LOAD record begins with. */
  private auditLogTask(t: Task): string {
    return `auid=${t.loginuid >>> 0} uid=${t.cred.uid} gid=${t.cred.gid} ses=${t.sessionid >>> 0}${this.subjText(t)}` +
      ` pid=${t.tgid} comm=${untrustedString(taskComm(t))}${exeText(this.taskInfo(t))}`;
  }

  /** audit_log_task_context: ` subj=LABEL` when an LSM labels the task. */
  private subjText(t: Task): string {
    const label = this.taskInfo(t).subj ?? this.lsmLabel;
    return label === undefined ? '' : ` subj=${label}`;
  }

  /** audit_log_proctitle: get_cmdline (at most 128 bytes), trailing non-printables trimmed, cached in the context. */
  private proctitle(t: Task, ctx: AuditContext): string {
    if (!ctx.proctitle) {
      const argv = this.taskInfo(t).cmdline;
      if (!argv) return untrustedString('(null)');
      const raw = Buffer.from(argv.map((a) => `${a}\0`).join(''), 'utf8').subarray(0, MAX_PROCTITLE_AUDIT_LEN);
      const len = proctitleRtrim(raw);
      if (len === 0) return untrustedString('(null)');
      ctx.proctitle = raw.subarray(0, len);
    }
    return untrustedString(ctx.proctitle);
  }

  // --- AUDIT_BPF (kernel/bpf/syscall.c) -------------------------------------------------------

  /**
   * bpf_audit_prog(): after a program gets its id (LOAD) and when its last reference goes,
   * before its id is freed (UNLOAD). Seed: both in audit_context() (so inside a syscall they share
   * its serial), LOAD with audit_log_task's fields. v5.6: LOAD in the context, UNLOAD with none.
   */
  bpfProg(id: number, op: 'LOAD' | 'UNLOAD'): void {
    if (this.enabledState === AUDIT_OFF) return;
    const seed = this.bpfFormat === 'seed';
    const ctx = seed || op === 'LOAD' ? this.contextOf(this.kernel.current) : undefined;
    this.log1(ctx, AUDIT_BPF, false, () => (seed
      ? `${op === 'LOAD' ? `${this.auditLogTask(this.kernel.current)} ` : ''}prog-id=${id >>> 0} event=${op}`
      : `prog-id=${id >>> 0} op=${op}`));
  }

  // --- records (audit.c) -----------------------------------------------------------------------

  /**
   * audit_log_start + audit_log_end for one record. `mayBlock` is GFP_KERNEL (may wait for
   * kauditd when the backlog is full); GFP_ATOMIC callers lose the record at once.
   */
  private log1(ctx: AuditContext | undefined, type: number, mayBlock: boolean, body: () => string): void {
    if (this.excluded(type)) return;
    if (!this.backlogRoom(mayBlock)) return;
    let stamp: { sec: number; msec: number; serial: number };
    if (ctx && ctx.inSyscall) {
      // auditsc_get_stamp: the syscall's time and (lazily) serial; a record makes the context auditable
      ctx.serial ||= ++this.serialCounter;
      stamp = { ...ctx.ctime, serial: ctx.serial };
      if (!ctx.prio) { ctx.prio = 1n; ctx.currentState = STATE_RECORD; }
    } else {
      stamp = { ...this.now(), serial: ++this.serialCounter };
    }
    if (ctx) ctx.dummy = false; // cancel dummy context to enable supporting records
    const rec: AuditRecord = { type, ...stamp, serial: stamp.serial >>> 0, body: body() };
    // audit_log_end
    if (this.rateCheck()) this.queue.push(rec);
    else this.logLost('rate limit exceeded');
    // Outside a syscall nothing holds the CPU: kauditd runs at once (inside one, at its exit).
    if (this.kauditd === 'auto' && !this.contexts.get(this.kernel.current)?.inSyscall) this.kauditdRun();
  }

  /** The backlog check of audit_log_start: true when the record may be queued. */
  private backlogRoom(mayBlock: boolean): boolean {
    while (this.backlogLimit && this.queue.length > this.backlogLimit) {
      if (mayBlock && this.backlogWaitTime > 0) {
        // The task sleeps; kauditd gets the CPU and drains the queue, unless it is stalled,
        // in which case the wait runs out (schedule_timeout) and the record is lost.
        if (this.kauditd === 'auto') { this.kauditdRun(); continue; }
        this.kernel.clock.tick(BigInt(this.backlogWaitTime) * 1_000_000n);
      }
      if (this.rateCheck() && this.printkRatelimit('audit_log_start')) {
        this.printk(`audit_backlog=${this.queue.length} > audit_backlog_limit=${this.backlogLimit}`);
      }
      this.logLost('backlog limit exceeded');
      return false;
    }
    return true;
  }

  /** audit_log_lost: always counted; printed (and audit_panic) when not rate limited. */
  private logLost(message: string): void {
    this.lostCount = (this.lostCount + 1) >>> 0;
    let print = this.failure === AUDIT_FAIL_PANIC || !this.rateLimit;
    if (!print) {
      const now = this.jiffies();
      if (this.lostMsg.lastMs < 0n || now - this.lostMsg.lastMs > BigInt(HZ)) { print = true; this.lostMsg.lastMs = now; }
    }
    if (!print) return;
    if (this.printkRatelimit('audit_log_lost')) {
      this.printk(`audit_lost=${this.lostCount} audit_rate_limit=${this.rateLimit} audit_backlog_limit=${this.backlogLimit}`);
    }
    this.panic(message);
  }

  /** audit_panic. */
  private panic(message: string): void {
    if (this.failure === AUDIT_FAIL_PRINTK) { if (this.printkRatelimit('audit_panic')) this.printk(message); }
    else if (this.failure === AUDIT_FAIL_PANIC) throw new AuditPanic(message);
  }

  /** audit_rate_check: at most rate_limit records a second (0: no limit). */
  private rateCheck(): boolean {
    if (!this.rateLimit) return true;
    if (++this.rate.messages < this.rateLimit) return true;
    const now = this.jiffies();
    if (now - this.rate.lastCheckMs > BigInt(HZ)) { this.rate.lastCheckMs = now; this.rate.messages = 0; return true; }
    return false;
  }

  /** printk_ratelimit(): 10 messages per 5 s, then "callbacks suppressed" when the window ends. */
  private printkRatelimit(func: string): boolean {
    const rl = this.printkRl, now = this.jiffies();
    if (rl.beginMs < 0n || now - rl.beginMs >= BigInt(5 * HZ)) {
      if (rl.missed) this.kmsg.push(`${func}: ${rl.missed} callbacks suppressed`);
      rl.beginMs = now; rl.printed = 0; rl.missed = 0;
    }
    if (rl.printed < 10) { rl.printed++; return true; }
    rl.missed++;
    return false;
  }

  private printk(line: string): void { this.kmsg.push(`audit: ${line}`); }

  /** kauditd: every queued record goes to auditd (the host's sink). */
  kauditdRun(): number {
    const n = this.queue.length;
    for (const r of this.queue) this.log.push(r);
    this.queue = [];
    return n;
  }

  /** What auditd has received; in 'auto' mode kauditd runs first (the host reading lets it). */
  records(): readonly AuditRecord[] {
    if (this.kauditd === 'auto') this.kauditdRun();
    return this.log;
  }

  /** Empties auditd's log (rotating it); the serial counter goes on. */
  clearLog(): void { this.log.length = 0; }

  /** ktime_get_coarse_real_ts64, as seconds and milliseconds. */
  private now(): { sec: number; msec: number } {
    const ns = this.realtimeNs();
    return { sec: Number(ns / 1_000_000_000n), msec: Number((ns / 1_000_000n) % 1000n) };
  }

  /** jiffies (HZ = 1000): the monotonic clock in ms. */
  private jiffies(): bigint { return this.kernel.clock.ktimeGetNs() / 1_000_000n; }
}

/**
 * audit_log_untrustedstring / audit_log_n_untrustedstring: a string with a `"`, a control
 * character, a space or a byte above 0x7e is logged as uppercase hex, else in double quotes.
 */
export function untrustedString(s: string | Uint8Array): string {
  if (typeof s === 'string') {
    let clean = true;
    for (let i = 0; i < s.length && clean; i++) { const c = s.charCodeAt(i); clean = c > 0x20 && c < 0x7f && c !== 0x22; }
    if (clean) return `"${s}"`;
  }
  const bytes = typeof s === 'string' ? Buffer.from(s, 'utf8') : Buffer.from(s);
  const control = bytes.some((b) => b === 0x22 || b < 0x21 || b > 0x7e);
  return control ? bytes.toString('hex').toUpperCase() : `"${bytes.toString('latin1')}"`;
}

/** audit_proctitle_rtrim: drop trailing non-printable bytes (isprint: 0x20..0x7e). */
export function proctitleRtrim(buf: Uint8Array): number {
  if (buf.length === 0) return 0;
  const isprint = (b: number): boolean => b >= 0x20 && b <= 0x7e;
  let end = buf.length - 1;
  while (end > 0 && !isprint(buf[end]!)) end--;
  let len = end + 1;
  if (!isprint(buf[len - 1]!)) len--;
  return len;
}

/** get_task_comm: at most TASK_COMM_LEN - 1 bytes. */
function taskComm(t: Task): string | Uint8Array {
  return t.comm.length <= 15 && /^[\x00-\x7f]*$/.test(t.comm) ? t.comm : Buffer.from(t.comm, 'utf8').subarray(0, 15);
}

/** audit_log_d_path_exe. */
function exeText(info: AuditTaskInfo): string {
  return info.exe === undefined ? ' exe=(null)' : ` exe=${untrustedString(info.exe)}`;
}
