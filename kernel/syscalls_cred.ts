/**
 * @fileoverview Credential syscalls (kernel/sys.c, kernel/capability.c, prctl's capability options)
 * with Linux's x86-64 numbers: the setuid/setgid family, getres[ug]id, getgroups/setgroups,
 * capget/capset, prctl. The rules are kernel/cred.ts's; here the arguments are taken apart and the
 * user memory (the caller's own address space, so a kernel pointer is -EFAULT) read and written.
 * They work for the init task too (a TypeScript caller through kernel.syscall()).
 */
import type { Processes } from './process.ts';
import type { Task } from './task.ts';
import { GuestMemoryError, type GuestMemory } from '../emulator/memory.ts';
import {
  EFAULT, EINVAL, EPERM, ESRCH, CAP_SETGID, NGROUPS_MAX, capable, capLastCap, capU32s, capCapset, capTaskPrctl, LINUX_CAPABILITY_VERSION_3,
  sysSetuid, sysSetreuid, sysSetresuid, sysSetfsuid, sysSetgid, sysSetregid, sysSetresgid, sysSetfsgid, sysSetgroups,
  type CapContext,
} from './cred.ts';

/** arch/x86/entry/syscalls/syscall_64.tbl */
export const __NR_CRED = {
  setuid: 105, setgid: 106, setreuid: 113, setregid: 114, getgroups: 115, setgroups: 116, setresuid: 117,
  getresuid: 118, setresgid: 119, getresgid: 120, setfsuid: 122, setfsgid: 123, capget: 125, capset: 126, prctl: 157,
} as const;

export function registerCredSyscalls(procs: Processes): void {
  const k = procs.kernel;
  const ctx: CapContext = { lastCap: capLastCap(k.profile.version) };
  const reg = (nr: number, name: string, argc: number, fn: (...a: bigint[]) => bigint | number): void =>
    k.syscalls.register({ nr, name, argc, fn });
  const task = (): Task => k.current;
  /** uid_t / gid_t: the low 32 bits; (uid_t)-1 stays 0xffffffff. */
  const id = (v: bigint): number => Number(v & 0xffffffffn);
  /** The caller's memory: its own address space, or the kernel's for the init task. */
  const mem = (): GuestMemory => procs.caller?.mm.user ?? k.machine.mem;
  /** copy_to_user / copy_from_user: -EFAULT when the memory is not there. */
  const user = (fn: () => number): number => {
    try { return fn(); } catch (e) {
      if (e instanceof GuestMemoryError) return -EFAULT;
      throw e;
    }
  };
  const initTask = k.current; // registered at boot, while init is current
  /** A task by pid (capget of another task): init or a live process. */
  const findTask = (pid: number): Task | undefined =>
    pid === k.current.tgid ? k.current : pid === 1 ? initTask : procs.procs.get(pid)?.task;

  reg(__NR_CRED.setuid, 'setuid', 1, (u) => sysSetuid(task(), id(u)));
  reg(__NR_CRED.setreuid, 'setreuid', 2, (r, e) => sysSetreuid(task(), id(r), id(e)));
  reg(__NR_CRED.setresuid, 'setresuid', 3, (r, e, s) => sysSetresuid(task(), id(r), id(e), id(s)));
  reg(__NR_CRED.setfsuid, 'setfsuid', 1, (u) => sysSetfsuid(task(), id(u)));
  reg(__NR_CRED.setgid, 'setgid', 1, (g) => sysSetgid(task(), id(g)));
  reg(__NR_CRED.setregid, 'setregid', 2, (r, e) => sysSetregid(task(), id(r), id(e)));
  reg(__NR_CRED.setresgid, 'setresgid', 3, (r, e, s) => sysSetresgid(task(), id(r), id(e), id(s)));
  reg(__NR_CRED.setfsgid, 'setfsgid', 1, (g) => sysSetfsgid(task(), id(g)));

  // put_user of each id in turn: the first that faults is the result.
  const getres = (ids: [number, number, number], ptrs: bigint[]): number => user(() => {
    ptrs.forEach((p, i) => mem().writeU32(p, ids[i]!));
    return 0;
  });
  reg(__NR_CRED.getresuid, 'getresuid', 3, (r, e, s) => { const c = task().cred; return getres([c.uid, c.euid, c.suid], [r, e, s]); });
  reg(__NR_CRED.getresgid, 'getresgid', 3, (r, e, s) => { const c = task().cred; return getres([c.gid, c.egid, c.sgid], [r, e, s]); });

  reg(__NR_CRED.getgroups, 'getgroups', 2, (size, list) => {
    const n = Number(BigInt.asIntN(32, size)), groups = task().cred.groups;
    if (n < 0) return -EINVAL;
    if (n === 0) return groups.length;
    if (groups.length > n) return -EINVAL;
    return user(() => { groups.forEach((g, i) => mem().writeU32(list + BigInt(4 * i), g)); return groups.length; });
  });
  reg(__NR_CRED.setgroups, 'setgroups', 2, (size, list) => {
    const n = Number(BigInt.asIntN(32, size));
    if (!capable(task().cred, CAP_SETGID)) return -EPERM; // may_setgroups, before the size and the copy
    if (n < 0 || n > NGROUPS_MAX) return -EINVAL;
    let groups: number[] = [];
    const r = user(() => { groups = Array.from({ length: n }, (_, i) => mem().readU32(list + BigInt(4 * i))); return 0; });
    return r || sysSetgroups(task(), groups);
  });

  // struct __user_cap_header_struct { u32 version; int pid; }, then 1 or 2 of
  // struct __user_cap_data_struct { u32 effective, permitted, inheritable; }.
  reg(__NR_CRED.capget, 'capget', 2, (hdr, data) => user(() => {
    const u32s = capU32s(mem().readU32(hdr));
    if (u32s === undefined) {
      mem().writeU32(hdr, LINUX_CAPABILITY_VERSION_3);
      return data === 0n ? 0 : -EINVAL; // a NULL dataptr asks for the preferred version
    }
    if (data === 0n) return 0;
    const pid = mem().readU32(hdr + 4n) | 0;
    if (pid < 0) return -EINVAL;
    const target = pid === 0 ? task() : findTask(pid);
    if (!target) return -ESRCH;
    const c = target.cred, out = new Uint8Array(12 * u32s), dv = new DataView(out.buffer);
    for (let i = 0; i < u32s; i++) {
      const word = (v: bigint): number => Number((v >> BigInt(32 * i)) & 0xffffffffn);
      dv.setUint32(12 * i, word(c.capEffective), true);
      dv.setUint32(12 * i + 4, word(c.capPermitted), true);
      dv.setUint32(12 * i + 8, word(c.capInheritable), true);
    }
    mem().write(data, out);
    return 0;
  }));
  reg(__NR_CRED.capset, 'capset', 2, (hdr, data) => user(() => {
    const u32s = capU32s(mem().readU32(hdr));
    if (u32s === undefined) { mem().writeU32(hdr, LINUX_CAPABILITY_VERSION_3); return -EINVAL; }
    const pid = mem().readU32(hdr + 4n) | 0;
    if (pid !== 0 && pid !== task().tgid) return -EPERM; // may only affect current
    const dv = new DataView(mem().read(data, 12 * u32s).slice().buffer);
    const set = (off: number): bigint => {
      let v = 0n;
      for (let i = 0; i < u32s; i++) v |= BigInt(dv.getUint32(12 * i + off, true)) << BigInt(32 * i);
      return v;
    };
    return capCapset(task(), ctx, { effective: set(0), permitted: set(4), inheritable: set(8) });
  }));

  reg(__NR_CRED.prctl, 'prctl', 5, (option, a2, a3, a4, a5) =>
    capTaskPrctl(task(), ctx, Number(BigInt.asIntN(32, option)), a2, a3, a4, a5) ?? -EINVAL);
}
