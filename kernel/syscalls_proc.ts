/**
 * @fileoverview Process and file syscalls for user processes (kernel/process.ts): identity
 * (getpid, getuid…), the console (read, write), fds (close, dup), and fork, exit, wait4,
 * sched_yield, nanosleep — with Linux's numbers (arch/x86/entry/syscalls/syscall_64.tbl) and
 * errnos. Each works for the init task too (a TypeScript caller), where it makes sense.
 */
import type { Processes } from './process.ts';
import { CONSOLE, Console } from './process.ts';
import { __NR } from './syscalls.ts';
import { GuestMemoryError } from '../emulator/memory.ts';
import { registerCredSyscalls } from './syscalls_cred.ts';

/** The numbers kernel/syscalls.ts does not list yet. */
export const __NR_PROC = {
  dup: 32, nanosleep: 35, sched_yield: 24, wait4: 61, getppid: 110, gettid: 186, exit_group: 231,
} as const;

export const EBADF = 9, ECHILD = 10, EFAULT = 14, EINVAL = 22;
/** MAX_RW_COUNT: INT_MAX rounded down to a page. */
const MAX_RW_COUNT = 0x7ffff000;
/** The wait4() options known here: WNOHANG, WUNTRACED, WCONTINUED, __WNOTHREAD, __WALL, __WCLONE. */
const WNOHANG = 1, WAIT_OPTIONS = 1 | 2 | 8 | 0x20000000 | 0x40000000 | 0x80000000;
const SIZEOF_RUSAGE = 144;

export function registerProcessSyscalls(procs: Processes): void {
  const k = procs.kernel;
  const reg = (nr: number, name: string, argc: number, fn: (...a: bigint[]) => bigint | number): void =>
    k.syscalls.register({ nr, name, argc, fn });
  const files = () => k.current.files;
  const int = (v: bigint): number => Number(BigInt.asIntN(32, v));

  reg(__NR.getpid, 'getpid', 0, () => k.current.tgid);
  reg(__NR_PROC.gettid, 'gettid', 0, () => k.current.pid);
  reg(__NR_PROC.getppid, 'getppid', 0, () => {
    const p = procs.caller;
    return p ? p.parent?.pid ?? 1 : k.current.ppid;
  });
  reg(__NR.getuid, 'getuid', 0, () => k.current.cred.uid);
  reg(__NR.geteuid, 'geteuid', 0, () => k.current.cred.euid);
  reg(__NR.getgid, 'getgid', 0, () => k.current.cred.gid);
  reg(__NR.getegid, 'getegid', 0, () => k.current.cred.egid);
  registerCredSyscalls(procs);

  reg(__NR.write, 'write', 3, (fdArg, buf, count) => {
    const f = files().get(int(fdArg));
    if (!f) return -EBADF;
    if (f.name !== CONSOLE || !(f.priv instanceof Console)) return -EINVAL; // bpf_dummy_write
    const n = Number(count > BigInt(MAX_RW_COUNT) ? BigInt(MAX_RW_COUNT) : count);
    if (n === 0) return 0;
    const p = procs.caller;
    try {
      // From the process's own address space: a kernel pointer is not the user's to pass.
      f.priv.write((p ? p.mm.user : k.machine.mem).read(buf, n));
    } catch (e) {
      if (e instanceof GuestMemoryError) return -EFAULT;
      throw e;
    }
    return n;
  });
  reg(__NR.read, 'read', 3, (fdArg) => {
    const f = files().get(int(fdArg));
    if (!f) return -EBADF;
    return f.name === CONSOLE ? 0 : -EINVAL; // the console has no input: end of file
  });
  reg(__NR.close, 'close', 1, (fd) => files().close(int(fd)));
  reg(__NR_PROC.dup, 'dup', 1, (fd) => {
    const f = files().get(int(fd));
    return f ? files().install(f.get(), 0) : -EBADF;
  });

  reg(__NR.fork, 'fork', 0, () => {
    const p = procs.caller;
    return p ? procs.fork(p) : -EINVAL;
  });
  const exit = (code: bigint): number => {
    const p = procs.caller;
    if (!p) return -EINVAL;
    procs.exit(p, Number(code & 0xffn));
    return 0;
  };
  reg(__NR.exit, 'exit', 1, exit);
  reg(__NR_PROC.exit_group, 'exit_group', 1, exit);

  reg(__NR_PROC.wait4, 'wait4', 4, (pidArg, status, options, rusage) => {
    const p = procs.caller;
    if (!p) return -ECHILD;
    const pid = int(pidArg), opts = int(options);
    if (opts & ~WAIT_OPTIONS) return -EINVAL;
    const mine = () => p.children.filter((c) => pid === -1 || pid === 0 || c.pid === pid || (pid < -1 && -pid === p.pid));
    if (mine().length === 0) return -ECHILD;
    const attempt = (): bigint | undefined => {
      const cands = mine();
      if (cands.length === 0) return BigInt(-ECHILD);
      const z = cands.find((c) => c.state === 'zombie');
      if (!z) return undefined;
      try {
        if (status) p.mm.user.writeU32(status, z.waitStatus ?? 0);
        if (rusage) p.mm.user.write(rusage, new Uint8Array(SIZEOF_RUSAGE));
      } catch (e) {
        if (e instanceof GuestMemoryError) return BigInt(-EFAULT);
        throw e;
      }
      procs.reap(z);
      return BigInt(z.pid);
    };
    const now = attempt();
    if (now !== undefined) return now;
    if (opts & WNOHANG) return 0;
    procs.block(p, attempt);
    return 0;
  });

  reg(__NR_PROC.sched_yield, 'sched_yield', 0, () => {
    const p = procs.caller;
    if (p) procs.yield(p);
    return 0;
  });
  reg(__NR_PROC.nanosleep, 'nanosleep', 2, (req) => {
    const p = procs.caller;
    const mem = p ? p.mm.user : k.machine.mem;
    let sec: bigint, nsec: bigint;
    try { sec = mem.readU64(req); nsec = mem.readU64(req + 8n); } catch (e) {
      if (e instanceof GuestMemoryError) return -EFAULT;
      throw e;
    }
    if (BigInt.asIntN(64, sec) < 0n || nsec >= 1_000_000_000n) return -EINVAL;
    // Virtual time passes; the others run meanwhile.
    k.clock.tick(sec * 1_000_000_000n + nsec);
    if (p) procs.yield(p);
    return 0;
  });
}
