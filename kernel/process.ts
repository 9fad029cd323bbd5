/**
 * @fileoverview User processes: a task (identity, credentials, fd table), an address space
 * (kernel/mm.ts) and a CPU in user mode of its own (emulator/user_cpu.ts), created from a static
 * x86-64 ELF (kernel/exec.ts) and scheduled round-robin by {@link Processes.run}.
 *
 * A process enters the kernel with the `syscall` instruction. The hook runs inside the process's
 * uc_emu_start: the task becomes `kernel.current`, its address space is shown in the kernel's
 * engine (mm.attachMirror, the context switch), and the call goes through the kernel's syscall
 * table — the same table TypeScript callers use, so bpf() from a process runs exactly the
 * BpfSubsystem code a test calls, with `union bpf_attr` read from the process's memory. The
 * result goes to rax (rcx and r11 as SYSCALL leaves them) and the process goes on with no exit
 * from emulation. Calls that cannot finish at once (exit, wait4 for a running child,
 * sched_yield) stop the CPU and the scheduler takes over.
 *
 * A fault of the process (an access to a kernel address, to unmapped or protected memory, an
 * invalid opcode, a trap) kills it with the signal Linux sends (SIGSEGV, SIGILL, SIGFPE,
 * SIGTRAP), logs Linux's message for it (show_signal_msg: `prog[pid]: segfault at ADDR ip IP sp
 * SP error N in prog[START+SIZE]`) in {@link Processes.dmesg}, and tears the process down as
 * exit does: its fds are closed, its mappings unmapped (vm_ops.close runs), its engine freed.
 * The kernel's engine never ran a user instruction, so it and every other process are intact.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Kernel } from './kernel.ts';
import type { Task } from './task.ts';
import { setTaskComm } from './task.ts';
import { credForIds } from './cred.ts';
import { FdTable, KFile } from './file.ts';
import { INIT_STACK } from './layout.ts';
import { Mm, type FileMmapOps } from './mm.ts';
import { checkElf, loadElf, ExecError } from './exec.ts';
import { UserCpu, type UserStop } from '../emulator/user_cpu.ts';
import type { GuestFault } from '../emulator/faults.ts';
import type { GuestMemory } from '../emulator/memory.ts';
import { registerProcessSyscalls } from './syscalls_proc.ts';
import { registerMmSyscalls } from './syscalls_mm.ts';

export const SIGTRAP = 5, SIGILL = 4, SIGBUS = 7, SIGFPE = 8, SIGKILL = 9, SIGSEGV = 11;
export const SIGNAL_NAMES: Readonly<Record<number, string>> = {
  [SIGILL]: 'SIGILL', [SIGTRAP]: 'SIGTRAP', [SIGBUS]: 'SIGBUS', [SIGFPE]: 'SIGFPE', [SIGKILL]: 'SIGKILL', [SIGSEGV]: 'SIGSEGV',
};
/** The console's file name (the process's fds 0, 1 and 2). */
export const CONSOLE = '/dev/console';

/** What killed a process: the signal and Linux's kernel-log line for it. */
export interface FaultReport {
  signal: number;
  signalName: string;
  /** The faulting data address (memory faults), else the instruction's. */
  address: bigint;
  rip: bigint;
  rsp: bigint;
  /** x86 page-fault error code (bit 0 present, 1 write, 2 user, 4 fetch) for memory faults. */
  errorCode?: number;
  /** The dmesg line (show_signal_msg / do_trap's "traps:" line). */
  message: string;
  fault?: GuestFault;
}

/** One console stream: what the processes wrote to it, and an optional live sink. */
export class Console {
  readonly chunks: Uint8Array[] = [];
  sink: ((bytes: Uint8Array) => void) | undefined;
  constructor(sink?: (bytes: Uint8Array) => void) { this.sink = sink; }
  write(bytes: Uint8Array): void {
    this.chunks.push(bytes.slice());
    this.sink?.(bytes);
  }
  text(): string { return Buffer.concat(this.chunks).toString('utf8'); }
}

export type ProcState = 'runnable' | 'blocked' | 'zombie' | 'reaped';

export class Process {
  readonly pid: number;
  readonly task: Task;
  readonly mm: Mm;
  readonly cpu: UserCpu;
  parent: Process | undefined;
  readonly children: Process[] = [];
  state: ProcState = 'runnable';
  /** Its parent died: init reaps it when it dies. */
  orphan = false;
  /** The wait status (exit code << 8, or the signal) once a zombie. */
  waitStatus: number | undefined;
  exitCode: number | undefined;
  signal: number | undefined;
  fault: FaultReport | undefined;
  readonly stdout: Console;
  readonly stderr: Console;
  /** Set by a syscall that stopped the CPU: exit, a blocking wait, a yield. */
  pending: { kind: 'exit'; code: number } | { kind: 'block'; retry: () => bigint | undefined; resumeRip: bigint; eflags: bigint } | { kind: 'yield' } | undefined;

  constructor(pid: number, task: Task, mm: Mm, cpu: UserCpu, stdout: Console, stderr: Console) {
    this.pid = pid;
    this.task = task;
    this.mm = mm;
    this.cpu = cpu;
    this.stdout = stdout;
    this.stderr = stderr;
  }

  get comm(): string { return this.task.comm; }
  get alive(): boolean { return this.state === 'runnable' || this.state === 'blocked'; }
}

export interface SpawnOptions {
  argv?: readonly string[];
  envp?: readonly string[];
  /** Where fd 1 and fd 2 go as they are written (they are also kept in the process's Consoles). */
  onStdout?: (bytes: Uint8Array) => void;
  onStderr?: (bytes: Uint8Array) => void;
  uid?: number;
  gid?: number;
}

export interface RunOptions {
  /** Stop scheduling after this much wall time (ms); the processes stay as they are. */
  timeoutMs?: number;
  /** The time slice when several processes are runnable (µs). */
  sliceUs?: number;
  /** Checked whenever a process leaves the CPU (a yield, a block, an exit…): true stops the run. */
  until?: () => boolean;
}

/** What a finished program left: its status, output, and the fault that killed it, if any. */
export interface ProgramResult {
  pid: number;
  exitCode: number | undefined;
  signal: number | undefined;
  /** The shell's $?: the exit code, or 128 + the signal. */
  status: number;
  stdout: string;
  stderr: string;
  fault: FaultReport | undefined;
}

/** access_ok() for one syscall's arguments: 0, or -EFAULT. `user` is the caller's own memory. */
export type UserAccessCheck = (args: readonly bigint[], user: GuestMemory) => number;

const hex = (v: bigint, w = 0): string => v.toString(16).padStart(w, '0');

export class Processes {
  readonly kernel: Kernel;
  readonly procs = new Map<number, Process>();
  /** Kernel log lines (segfault reports). */
  readonly dmesg: string[] = [];
  private nextPid = 2;
  private queue: Process[] = [];
  private fileOps = new Map<string, FileMmapOps>();
  private accessChecks = new Map<number, UserAccessCheck>();
  private taskProc = new WeakMap<Task, Process>();
  /** The process whose address space the kernel's engine shows (the last one in the kernel). */
  private mirrored: Process | undefined;
  /** The process in the kernel right now (during one of its syscalls). */
  private inKernel: Process | undefined;
  /** Syscalls handled for processes since boot. */
  syscalls = 0;

  constructor(kernel: Kernel) {
    this.kernel = kernel;
    registerProcessSyscalls(this);
    registerMmSyscalls(this);
  }

  /** Gives files named `name` an mmap (file_operations.mmap), e.g. "bpf-map". */
  registerFileOps(name: string, ops: FileMmapOps): void {
    if (this.fileOps.has(name)) throw new Error(`file ops for ${name} registered twice`);
    this.fileOps.set(name, ops);
  }

  /**
   * Checks a syscall's user pointers before it runs for a process (access_ok: a pointer outside
   * user space is -EFAULT), for syscalls whose handlers read user memory through the kernel's view.
   */
  registerAccessCheck(nr: number, check: UserAccessCheck): void {
    if (this.accessChecks.has(nr)) throw new Error(`access check for syscall ${nr} registered twice`);
    this.accessChecks.set(nr, check);
  }

  /** The process of the current task (undefined for the init task: TypeScript callers). */
  get current(): Process | undefined { return this.taskProc.get(this.kernel.current); }

  /** Reads a program from a path and spawns it (argv[0] defaults to the path). */
  spawnFile(path: string, opts: SpawnOptions = {}): Process {
    return this.spawn(new Uint8Array(readFileSync(path)), { ...opts, argv: opts.argv ?? [path] });
  }

  /** execve() of a static x86-64 ELF into a new process (its parent: init). */
  spawn(image: Uint8Array, opts: SpawnOptions = {}): Process {
    const elf = checkElf(image);
    const argv = opts.argv ?? ['a.out'];
    const stdout = new Console(opts.onStdout), stderr = new Console(opts.onStderr);
    // Another uid is as after setresuid() from root: a non-root uid keeps no capabilities.
    const cred = credForIds(this.kernel.current.cred, opts.uid, opts.gid);
    const p = this.newProcess(cred, undefined, stdout, stderr);
    setTaskComm(p.task, basename(argv[0] ?? 'a.out'));
    const files = p.task.files;
    files.install(new KFile(CONSOLE, stdout), 0); // a terminal: reads give EOF, writes show
    files.install(new KFile(CONSOLE, stdout), 1);
    files.install(new KFile(CONSOLE, stderr), 2);
    try {
      const img = loadElf(p.mm, elf, { argv, envp: opts.envp ?? [], uid: cred.uid, gid: cred.gid });
      p.cpu.loadRegs({
        gpr: {
          rax: 0n, rbx: 0n, rcx: 0n, rdx: 0n, rsi: 0n, rdi: 0n, rbp: 0n, rsp: img.sp, r8: 0n, r9: 0n, r10: 0n, r11: 0n,
          r12: 0n, r13: 0n, r14: 0n, r15: 0n, rip: img.entry, eflags: 0x202n, fs_base: 0n, gs_base: 0n,
        },
        xmm: Array.from({ length: 16 }, () => new Uint8Array(16)),
        mxcsr: Uint8Array.of(0x80, 0x1f, 0, 0), // 0x1f80: every exception masked, as at exec
      });
    } catch (e) {
      this.release(p);
      this.procs.delete(p.pid);
      throw e;
    }
    this.queue.push(p);
    return p;
  }

  private newProcess(cred: Task['cred'], parent: Process | undefined, stdout: Console, stderr: Console): Process {
    const pid = this.nextPid++;
    const task: Task = {
      pid, tgid: pid, ppid: parent?.pid ?? this.kernel.current.pid, comm: parent?.comm ?? '', cred,
      loginuid: this.kernel.current.loginuid, sessionid: this.kernel.current.sessionid,
      stackBase: INIT_STACK, files: new FdTable(),
    };
    let proc: Process | undefined;
    const cpu = new UserCpu({
      onSyscall: () => this.onSyscall(proc!),
      ...(this.kernel.machine.faultLocator ? { faultLocator: this.kernel.machine.faultLocator } : {}),
    });
    const mm = new Mm(cpu.mem, (f) => this.fileOps.get(f.name));
    proc = new Process(pid, task, mm, cpu, stdout, stderr);
    proc.parent = parent;
    parent?.children.push(proc);
    this.procs.set(pid, proc);
    this.taskProc.set(task, proc);
    return proc;
  }

  // --- entering the kernel -------------------------------------------------------------------

  /** The context switch: `p` is current, and its memory shows in the kernel's engine. */
  private enter(p: Process): { task: Task; proc: Process | undefined } {
    const prev = { task: this.kernel.current, proc: this.inKernel };
    this.kernel.current = p.task;
    if (this.mirrored !== p) {
      this.mirrored?.mm.detachMirror();
      p.mm.attachMirror(this.kernel.machine.mem);
      this.mirrored = p;
    }
    this.inKernel = p;
    return prev;
  }

  private leave(prev: { task: Task; proc: Process | undefined }): void {
    this.kernel.current = prev.task;
    this.inKernel = prev.proc;
  }

  /**
   * Runs `fn` as process `p` in the kernel (current task, its memory in the kernel's view): a
   * TypeScript caller acting for a process, as a test may.
   */
  asProcess<T>(p: Process, fn: () => T): T {
    const prev = this.enter(p);
    try { return fn(); } finally { this.leave(prev); }
  }

  private onSyscall(p: Process): void {
    this.syscalls++;
    const r = p.cpu.readSyscallRegs(); // rax, rdi, rsi, rdx, r10, r8, r9, rip, eflags
    const prev = this.enter(p);
    let ret: bigint;
    try {
      const nr = r[0]! > 0x7fffffffn ? -1 : Number(r[0]!);
      const args = [r[1]!, r[2]!, r[3]!, r[4]!, r[5]!, r[6]!];
      const bad = this.accessChecks.get(nr)?.(args, p.mm.user) ?? 0;
      ret = bad ? BigInt(bad) : this.kernel.syscalls.call(nr, args);
    } finally {
      this.leave(prev);
    }
    const next = r[7]! + 2n; // the instruction after `syscall` (0f 05)
    const pend = p.pending;
    if (pend?.kind === 'block') {
      pend.resumeRip = next;
      pend.eflags = r[8]!;
      p.cpu.stop();
      return;
    }
    p.cpu.writeSyscallResult([BigInt.asUintN(64, ret), next, r[8]!]);
    if (pend) p.cpu.stop();
  }

  /** The process making the current syscall (for the handlers). */
  get caller(): Process | undefined { return this.inKernel ?? this.current; }

  // --- scheduling ----------------------------------------------------------------------------

  /**
   * Runs the processes until none can run (all exited, or the rest blocked for good), or the
   * timeout. Round-robin: a process runs until it blocks, yields, exits or is killed, or for a
   * time slice when others are runnable.
   */
  run(opts: RunOptions = {}): void {
    const deadline = opts.timeoutMs !== undefined ? Date.now() + opts.timeoutMs : undefined;
    const slice = opts.sliceUs ?? 100_000;
    for (;;) {
      if (deadline !== undefined && Date.now() >= deadline) return;
      if (opts.until?.()) return;
      const p = this.pickNext();
      if (!p) return;
      const others = this.queue.some((q) => q !== p && q.state === 'runnable');
      let timeout = others ? slice : 0;
      if (deadline !== undefined) {
        const left = Math.max(1, (deadline - Date.now()) * 1000);
        timeout = timeout ? Math.min(timeout, left) : left;
      }
      const stop = p.cpu.run(timeout);
      this.afterRun(p, stop);
    }
  }

  /** The next process that can run: runnable, or blocked with its wait now satisfied. */
  private pickNext(): Process | undefined {
    for (let n = this.queue.length; n > 0; n--) {
      const p = this.queue.shift()!;
      if (!p.alive) continue;
      this.queue.push(p);
      if (p.state === 'runnable') return p;
      const pend = p.pending;
      if (pend?.kind !== 'block') continue;
      const prev = this.enter(p);
      let ret: bigint | undefined;
      try { ret = pend.retry(); } finally { this.leave(prev); }
      if (ret === undefined) continue;
      p.pending = undefined;
      p.state = 'runnable';
      p.cpu.writeSyscallResult([BigInt.asUintN(64, ret), pend.resumeRip, pend.eflags]);
      p.cpu.setReg('rip', pend.resumeRip);
      return p;
    }
    return undefined;
  }

  private afterRun(p: Process, stop: UserStop): void {
    switch (stop.kind) {
      case 'stopped': {
        const pend = p.pending;
        if (pend?.kind === 'exit') { p.pending = undefined; this.doExit(p, (pend.code & 0xff) << 8, pend.code & 0xff, undefined); }
        else if (pend?.kind === 'block') p.state = 'blocked';
        else if (pend?.kind === 'yield') p.pending = undefined;
        return;
      }
      case 'timeout':
        return;
      case 'fault':
      case 'trap':
      case 'halted':
        this.kill(p, this.report(p, stop));
        return;
    }
  }

  /** The signal and Linux's log line for a fault of `p`. */
  private report(p: Process, stop: Exclude<UserStop, { kind: 'stopped' | 'timeout' }>): FaultReport {
    const rsp = p.cpu.reg('rsp');
    const where = (ip: bigint): string => {
      const v = p.mm.list().find((x) => x.start <= ip && ip < x.end);
      return v ? ` in ${p.comm}[${hex(v.start)}+${hex(v.end - v.start)}]` : '';
    };
    const trap = (signal: number, what: string, rip: bigint, address = rip): FaultReport => ({
      signal, signalName: SIGNAL_NAMES[signal]!, address, rip, rsp,
      message: `traps: ${p.comm}[${p.pid}] ${what} ip:${hex(rip)} sp:${hex(rsp)} error:0${where(rip)}`,
    });
    if (stop.kind === 'halted') return trap(SIGSEGV, 'general protection fault', stop.rip);
    if (stop.kind === 'trap') {
      const t = stop.intno;
      if (t === 0) return trap(SIGFPE, 'divide error', stop.rip);
      if (t === 1 || t === 3) return { ...trap(SIGTRAP, 'int3', stop.rip), message: '' };
      if (t === 6) return trap(SIGILL, 'invalid opcode', stop.rip);
      if (t === 16 || t === 19) return trap(SIGFPE, 'simd exception', stop.rip);
      return trap(SIGSEGV, 'general protection fault', stop.rip);
    }
    const f = stop.fault;
    if (f.kind === 'invalid-insn') return { ...trap(SIGILL, 'invalid opcode', f.rip), fault: f };
    if (f.kind === 'exception') return { ...trap(SIGSEGV, 'general protection fault', f.rip), fault: f };
    const a = f.address;
    // A non-canonical address is a #GP on x86-64, not a page fault: si_addr 0, no address logged.
    if (a >= 0x0000800000000000n && a < 0xffff800000000000n) return { ...trap(SIGSEGV, 'general protection fault', f.rip, 0n), fault: f };
    const write = f.kind.startsWith('write'), fetch = f.kind.startsWith('fetch');
    // Present: a protection fault in the process's pages, or a kernel page (the U/S bit).
    const present = f.kind.endsWith('prot') || this.kernel.machine.mem.find(a) !== undefined;
    const errorCode = (present ? 1 : 0) | (write ? 2 : 0) | 4 | (fetch ? 16 : 0);
    return {
      signal: SIGSEGV, signalName: 'SIGSEGV', address: a, rip: f.rip, rsp, errorCode, fault: f,
      message: `${p.comm}[${p.pid}]: segfault at ${hex(a)} ip ${hex(f.rip, 16)} sp ${hex(rsp, 16)} error ${errorCode.toString(16)}${where(f.rip)}`,
    };
  }

  /** A fatal signal: the process dies as exit does, with the signal as its status. */
  kill(p: Process, report: FaultReport): void {
    p.fault = report;
    if (report.message) this.dmesg.push(report.message);
    this.doExit(p, report.signal, undefined, report.signal);
  }

  /** do_exit(): files closed, mappings gone, CPU freed, a zombie until its parent reaps it. */
  private doExit(p: Process, waitStatus: number, code: number | undefined, signal: number | undefined): void {
    p.waitStatus = waitStatus;
    p.exitCode = code;
    p.signal = signal;
    p.pending = undefined;
    this.release(p);
    p.state = 'zombie';
    // Orphans go to init, which reaps them as they die.
    for (const c of p.children) {
      c.parent = undefined;
      c.orphan = true;
      if (c.state === 'zombie') this.reap(c);
    }
    p.children.length = 0;
    if (p.orphan) this.reap(p);
  }

  private release(p: Process): void {
    if (this.inKernel === p) this.inKernel = undefined;
    p.task.files.closeAll();
    p.mm.exitMmap();
    if (this.mirrored === p) this.mirrored = undefined;
    p.cpu.close();
  }

  // --- what the syscalls need ------------------------------------------------------------------

  /** fork(): a copy of `p` (memory, fds, registers) that returns 0; the child's pid. */
  fork(p: Process): number {
    const child = this.newProcess({ ...p.task.cred }, p, p.stdout, p.stderr);
    child.task.comm = p.task.comm;
    p.mm.dupMmap(child.mm);
    const files = p.task.files;
    for (let fd = 0; fd < files.max; fd++) {
      const f = files.get(fd);
      if (f) child.task.files.install(f.get(), fd);
    }
    const regs = p.cpu.saveRegs();
    const next = regs.gpr.rip + 2n; // inside the syscall hook rip is the `syscall` itself
    child.cpu.loadRegs({ ...regs, gpr: { ...regs.gpr, rip: next, rax: 0n, rcx: next, r11: regs.gpr.eflags } });
    this.queue.push(child);
    return child.pid;
  }

  /** Marks `p` as exiting with `code` once its syscall returns (the CPU stops). */
  exit(p: Process, code: number): void { p.pending = { kind: 'exit', code }; }

  /** Blocks `p` in its syscall until `retry` gives a result. */
  block(p: Process, retry: () => bigint | undefined): void {
    p.pending = { kind: 'block', retry, resumeRip: 0n, eflags: 0n };
  }

  yield(p: Process): void { p.pending = { kind: 'yield' }; }

  /** Reaps a zombie (wait4 found it, or init): it leaves the process table. */
  reap(p: Process): void {
    p.state = 'reaped';
    const par = p.parent;
    if (par) par.children.splice(par.children.indexOf(p), 1);
    this.procs.delete(p.pid);
    const i = this.queue.indexOf(p);
    if (i >= 0) this.queue.splice(i, 1);
  }

  // --- running a program -----------------------------------------------------------------------

  /** Spawns a program, runs every process until they are done, reports on it and reaps it. */
  runProgram(image: Uint8Array | string, opts: SpawnOptions & RunOptions = {}): ProgramResult {
    const p = typeof image === 'string' ? this.spawnFile(image, opts) : this.spawn(image, opts);
    this.run(opts);
    const r = this.result(p);
    if (p.state === 'zombie') this.reap(p);
    return r;
  }

  result(p: Process): ProgramResult {
    return {
      pid: p.pid, exitCode: p.exitCode, signal: p.signal,
      status: p.signal !== undefined ? 128 + p.signal : p.exitCode ?? 0,
      stdout: p.stdout.text(), stderr: p.stderr.text(), fault: p.fault,
    };
  }

  /** Kills every live process (SIGKILL: no report) and frees them. */
  killAll(): void {
    for (const p of [...this.procs.values()]) if (p.alive) this.doExit(p, SIGKILL, undefined, SIGKILL);
  }
}

export { ExecError };
