/**
 * @fileoverview User processes (kernel/process.ts): gcc-built static programs from images/user/
 * run in their own address space, enter the kernel with `syscall`, fork and wait, and are killed
 * with Linux's signal and log line when they touch what is not theirs — leaving the kernel, its
 * BPF objects and the other processes as they were.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { boot, type System } from '../../index.ts';
import { ExecError, SIGSEGV, SIGILL, SIGTRAP, SIGFPE, type Processes } from '../../kernel/process.ts';
import { ENOEXEC } from '../../kernel/exec.ts';
import { BPF_MAP_CREATE, BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM } from '../../bpf/syscall/attr.ts';
import { userProgram } from './user_programs.ts';

let sys: System;
let procs: Processes;
beforeAll(async () => { sys = await boot(); procs = sys.procs; });
afterAll(() => sys.close());

const run = (name: string, args: string[] = []) => procs.runProgram(userProgram(name), { argv: [name, ...args] });

describe('a static program as a process', () => {
  it('gets its argv, writes fd 1 and fd 2, and exits with its status', () => {
    const r = run('hello', ['a', 'b c', '3']);
    expect(r.stdout).toBe(`hello from pid ${r.pid} (uid 0), argc=4\nargv[0]=hello\nargv[1]=a\nargv[2]=b c\nargv[3]=3\n`);
    expect(r.stderr).toBe('to stderr\n');
    expect([r.exitCode, r.signal, r.status, r.fault]).toEqual([3, undefined, 3, undefined]);
  });

  it('runs as the task the kernel sees: its own pid, comm, credentials and fd table', () => {
    const p = procs.spawnFile(userProgram('hello'), { argv: ['/some/where/hello'], uid: 1000, gid: 1000 });
    expect(p.comm).toBe('hello');
    expect(p.task.files.count).toBe(3); // the console on 0, 1, 2
    procs.run();
    expect(p.stdout.text()).toMatch(new RegExp(`^hello from pid ${p.pid} \\(uid 1000\\)`));
    expect(sys.kernel.current.pid).toBe(1); // the init task again once the process is out of the kernel
    expect(p.state).toBe('zombie');
    expect(p.cpu.closed).toBe(true);
    expect(p.mm.mapCount).toBe(0);
  });

  it('streams its output as it is written', () => {
    const seen: string[] = [];
    procs.runProgram(userProgram('hello'), { argv: ['hello'], onStdout: (b) => seen.push(Buffer.from(b).toString()) });
    expect(seen.join('')).toContain('argv[0]=hello');
  });

  it('is refused when it is not a static x86-64 executable (-ENOEXEC, with the reason)', () => {
    const noexec = (img: Uint8Array): ExecError => {
      try { procs.spawn(img); } catch (e) { if (e instanceof ExecError) return e; throw e; }
      throw new Error('spawned');
    };
    expect(noexec(Uint8Array.from([1, 2, 3]))).toMatchObject({ errno: ENOEXEC, message: expect.stringMatching(/not an executable/) });
    // /bin/true: PIE with an interpreter (ld.so), which this kernel does not have.
    expect(noexec(new Uint8Array(readFileSync('/bin/true')))).toMatchObject({ errno: ENOEXEC, message: expect.stringMatching(/dynamically linked/) });
    const arm = new Uint8Array(readFileSync(userProgram('hello')));
    arm[18] = 183; // EM_AARCH64
    expect(noexec(arm).message).toMatch(/machine 183 is not x86-64/);
  });
});

describe('the system call layer (images/user/syscalls.c: the same lines as on a real kernel)', () => {
  it('unknown numbers, kernel and unmapped pointers, bad fds, brk, memory, sleep and wait', () => {
    const r = run('syscalls');
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n')).toEqual(expect.arrayContaining([
      'unknown syscall 999: ENOSYS',
      'write from a kernel pointer: EFAULT',
      'write from an unmapped pointer: EFAULT',
      'write to a bad fd: EBADF',
      'bpf attr at a kernel address: EFAULT',
      'bpf attr unmapped: EFAULT',
      'bpf lookup, key in the kernel: EFAULT',
      'bpf lookup, value to the kernel: EFAULT',
      'bpf lookup, value unmapped: EFAULT',
      'bpf lookup: ok',
      'write to a map fd: EINVAL',
      'close it again: EBADF',
      'dup(1) gives the lowest free fd: yes',
      'brk grows by 2 pages: yes',
      'the heap is usable: yes',
      'mprotect across the hole: ENOMEM',
      'nanosleep with nsec 1e9: EINVAL',
      'nanosleep from a kernel pointer: EFAULT',
      'wait4 with no children: ECHILD',
      'wait4 with bad options: EINVAL',
    ]));
    expect(r.stdout).not.toMatch(/: no$/m);
  });

  it('counts the syscalls it handled', () => {
    const before = procs.syscalls;
    const p = procs.spawnFile(userProgram('hello'), { argv: ['hello'] });
    procs.run();
    expect(p.cpu.syscalls).toBeGreaterThan(5);
    expect(procs.syscalls - before).toBe(p.cpu.syscalls);
  });
});

describe('fork and wait4 (images/user/fork.c)', () => {
  it('copies private memory and fds, shares MAP_SHARED memory, reaps exit codes and signals', () => {
    const r = run('fork');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe([
      'wait4 returned the child: yes',
      'child exit status: 42 (exited: yes)',
      "parent's global after the child wrote it: 1",
      "parent's private page: 10",
      "parent's shared page: 30",
      "the map through the parent's fd: OK, value 77",
      'two children reaped, exit codes summing to 3',
      'wait4 with none left: ECHILD',
      `a child that faulted: signal ${SIGSEGV}`,
      '',
    ].join('\n'));
    // The children are gone (reaped: out of the process table), and so is the parent.
    expect([...procs.procs.values()].filter((p) => p.pid >= r.pid)).toEqual([]);
    expect(procs.dmesg.at(-1)).toMatch(/^fork\[\d+\]: segfault at 0 ip [0-9a-f]{16} sp [0-9a-f]{16} error 6 in fork\[401000\+[0-9a-f]+\]$/);
  });
});

describe('a process cannot touch the kernel: it is killed, everything else is intact', () => {
  /** [case, signal, dmesg line]: the signals are the host kernel's (test/host/user_oracle.test.ts). */
  const cases: [string, number, RegExp][] = [
    ['read-kernel', SIGSEGV, /^fault\[\d+\]: segfault at ffffffff81000000 ip 0{10}[0-9a-f]{6} sp [0-9a-f]{16} error 5 in fault\[401000\+[0-9a-f]+\]$/],
    ['write-kernel', SIGSEGV, /segfault at ffffffff81000000 .* error 7 in fault/],
    ['read-vmalloc', SIGSEGV, /segfault at ffffc90000000000 .* error [45] in fault/],
    ['exec-kernel', SIGSEGV, /segfault at ffffffff81000000 ip ffffffff81000000 .* error 15$/],
    ['read-null', SIGSEGV, /segfault at 0 .* error 4 in fault/],
    ['noncanonical', SIGSEGV, /^traps: fault\[\d+\] general protection fault ip:[0-9a-f]+ sp:[0-9a-f]+ error:0 in fault/],
    ['write-rodata', SIGSEGV, /segfault at 40[0-9a-f]{4} .* error 7 in fault/],
    ['write-ro-map', SIGSEGV, /segfault at 7ffff7[0-9a-f]{6} .* error 7 in fault/],
    ['ud2', SIGILL, /^traps: fault\[\d+\] invalid opcode ip:/],
    ['hlt', SIGSEGV, /^traps: fault\[\d+\] general protection fault ip:/],
    ['int3', SIGTRAP, /^$/],
    ['div0', SIGFPE, /^traps: fault\[\d+\] divide error ip:/],
  ];

  it.each(cases)('%s: killed by signal %d, with Linux\'s log line', (c, signal, msg) => {
    const r = run('fault', [c]);
    expect(r.stdout).toMatch(new RegExp(`^pid ${r.pid}: ${c}\n`));
    expect(r.stdout).not.toMatch(/survived/);
    expect([r.signal, r.status, r.exitCode]).toEqual([signal, 128 + signal, undefined]);
    expect(r.fault!.message).toMatch(msg);
    if (r.fault!.message) expect(procs.dmesg).toContain(r.fault!.message);
  });

  it('the fault names the exact instruction (the locator) and the register state', () => {
    const r = run('fault', ['read-kernel']);
    const f = r.fault!;
    expect(f.fault?.exact).toBe(true);
    expect(f.address).toBe(0xffffffff81000000n);
    expect(f.errorCode).toBe(5); // present (a kernel page), user mode, read
    expect(f.rsp > 0x7fff00000000n).toBe(true);
  });

  it('after every kind of fault the kernel still runs, its BPF maps hold their values, other processes run', () => {
    const b = sys.bpfSys;
    const fd = b.call(BPF_MAP_CREATE, { map_type: 2, key_size: 4, value_size: 8, max_entries: 4 }).ret;
    const key = b.stage(new Uint8Array(4)), val = b.stage(new Uint8Array(8));
    sys.kernel.machine.mem.writeU64(val, 0x1234n);
    expect(b.call(BPF_MAP_UPDATE_ELEM, { map_fd: fd, key, value: val, flags: 0 }).ret).toBe(0);
    const mappings = sys.kernel.machine.mem.mappings().length;
    for (const [c] of cases) expect(run('fault', [c]).signal).toBeDefined();
    sys.kernel.machine.mem.writeU64(val, 0n);
    expect(b.call(BPF_MAP_LOOKUP_ELEM, { map_fd: fd, key, value: val }).ret).toBe(0);
    expect(sys.kernel.machine.mem.readU64(val)).toBe(0x1234n);
    expect(sys.kernel.call('bpf_fentry_test1', [1])).toBe(2n);
    expect(run('hello', ['0']).status).toBe(0);
    // No user pages were left in the kernel's view (a dead process's mirror goes with it).
    expect(sys.kernel.machine.mem.mappings().filter((m) => m.start < 0x800000000000n && m.name.startsWith('user ')).length).toBe(0);
    expect(sys.kernel.machine.mem.mappings().length).toBeLessThanOrEqual(mappings);
    b.unstage(key); b.unstage(val);
  });
});

describe('scheduling', () => {
  it('a spinning process is preempted: another one runs to its end; the timeout stops the run', () => {
    const spin = procs.spawnFile(userProgram('fault'), { argv: ['fault', 'spin'] });
    const hello = procs.spawnFile(userProgram('hello'), { argv: ['hello', '5'] });
    const t0 = Date.now();
    procs.run({ timeoutMs: 1500, sliceUs: 20_000 });
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(hello.exitCode).toBe(5);
    expect(spin.alive).toBe(true);
    procs.killAll();
    expect([spin.alive, spin.signal, spin.cpu.closed]).toEqual([false, 9, true]);
  });
});
