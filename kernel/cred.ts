/**
 * @fileoverview Credentials and capabilities as the kernel changes them: capable() (cap_capable in
 * the init user namespace: the effective set decides, not the uid), the setuid family of
 * kernel/sys.c with security/commoncap.c's fix-ups (cap_task_fix_setuid), capget/capset
 * (kernel/capability.c, cap_capset) and the capability prctls (cap_task_prctl).
 *
 * Every change builds a new Cred and installs it (prepare_creds/commit_creds); a refused change
 * leaves the task's cred as it was. Results are 0 (or a value) or a negative errno, as the syscall
 * returns them; kernel/syscalls_cred.ts moves the user-memory arguments.
 *
 * Not modelled: user namespaces (every task is in init_user_ns), set_user()'s RLIMIT_NPROC,
 * the SafeSetID LSM (security_task_fix_setgid), PR_SET_SECUREBITS, file capabilities at execve.
 */
import { atLeast, type KernelVersion } from './profile.ts';
import type { Cred, Task } from './task.ts';

export const EPERM = 1, ESRCH = 3, EFAULT = 14, EINVAL = 22;

/** include/uapi/linux/capability.h (only those the model asks about by name). */
export const CAP_CHOWN = 0, CAP_DAC_OVERRIDE = 1, CAP_DAC_READ_SEARCH = 2, CAP_FOWNER = 3, CAP_FSETID = 4;
export const CAP_SETGID = 6, CAP_SETUID = 7, CAP_SETPCAP = 8, CAP_NET_ADMIN = 12, CAP_SYS_ADMIN = 21;
export const CAP_MKNOD = 27, CAP_MAC_OVERRIDE = 32, CAP_AUDIT_READ = 37, CAP_PERFMON = 38, CAP_BPF = 39;
export const CAP_CHECKPOINT_RESTORE = 40;

/**
 * CAP_LAST_CAP of a profile: CAP_AUDIT_READ (37) until 5.8 adds CAP_PERFMON (980737282232) and
 * CAP_BPF (a17b53c4a4b5), and 5.9 CAP_CHECKPOINT_RESTORE (124ea650d307): 40 from the 5.12 profile on.
 * In 5.5 and 5.7, capability 38 and 39 do not exist: cap_valid() refuses them.
 */
export function capLastCap(v: KernelVersion): number { return atLeast(v, '5.12') ? CAP_CHECKPOINT_RESTORE : CAP_AUDIT_READ; }

export const capMask = (cap: number): bigint => 1n << BigInt(cap);
/** CAP_FULL_SET: every capability the kernel knows. */
export const capFullSet = (lastCap: number): bigint => (1n << BigInt(lastCap + 1)) - 1n;
export const capRaised = (set: bigint, cap: number): boolean => (set & capMask(cap)) !== 0n;
const capIsSubset = (a: bigint, b: bigint): boolean => (a & ~b) === 0n;

/** CAP_FS_SET (include/linux/capability.h): what a fsuid change from/to root drops/raises. */
const CAP_FS_SET = [CAP_CHOWN, CAP_MKNOD, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID, CAP_MAC_OVERRIDE]
  .reduce((m, c) => m | capMask(c), 0n);

/** include/uapi/linux/securebits.h: bit numbers. */
export const SECURE_NO_SETUID_FIXUP = 2, SECURE_KEEP_CAPS = 4, SECURE_KEEP_CAPS_LOCKED = 5, SECURE_NO_CAP_AMBIENT_RAISE = 6;
const issecure = (c: Cred, bit: number): boolean => (c.securebits & (1 << bit)) !== 0;

/** (uid_t)-1: "leave unchanged" for setresuid and friends, and never a valid id (uid_valid). */
export const ID_UNCHANGED = 0xffffffff;
/** NGROUPS_MAX (include/uapi/linux/limits.h). */
export const NGROUPS_MAX = 65536;

/** capable(cap) in init_user_ns (cap_capable): the effective set holds it. */
export function capable(cred: Cred, cap: number): boolean { return capRaised(cred.capEffective, cap); }
/** bpf_capable() (5.8, include/linux/capability.h): CAP_BPF, or CAP_SYS_ADMIN for compatibility. */
export const bpfCapable = (c: Cred): boolean => capable(c, CAP_BPF) || capable(c, CAP_SYS_ADMIN);
/** perfmon_capable() (5.8): CAP_PERFMON, or CAP_SYS_ADMIN. */
export const perfmonCapable = (c: Cred): boolean => capable(c, CAP_PERFMON) || capable(c, CAP_SYS_ADMIN);

/** The machine's capability context: which capabilities exist (cap_valid). */
export interface CapContext { readonly lastCap: number }
const capValid = (ctx: CapContext, cap: number): boolean => Number.isInteger(cap) && cap >= 0 && cap <= ctx.lastCap;

// --- the setuid fix-ups (security/commoncap.c) ------------------------------------------------

/** LSM_SETID_*: which family of call changed the ids. */
export type SetidKind = 'ID' | 'RE' | 'RES' | 'FS';

/**
 * cap_emulate_setxuid: leaving root entirely (no uid of r/e/s is 0 any more) clears permitted and
 * effective unless SECURE_KEEP_CAPS, and ambient always; euid 0 → non-0 clears effective;
 * euid non-0 → 0 gives effective back from permitted.
 */
function capEmulateSetxuid(nw: Cred, old: Cred): void {
  const wasRoot = old.uid === 0 || old.euid === 0 || old.suid === 0;
  const isRoot = nw.uid === 0 || nw.euid === 0 || nw.suid === 0;
  if (wasRoot && !isRoot) {
    if (!issecure(old, SECURE_KEEP_CAPS)) { nw.capPermitted = 0n; nw.capEffective = 0n; }
    // Pre-ambient programs expect setresuid to nonroot followed by exec to drop capabilities.
    nw.capAmbient = 0n;
  }
  if (old.euid === 0 && nw.euid !== 0) nw.capEffective = 0n;
  if (old.euid !== 0 && nw.euid === 0) nw.capEffective = nw.capPermitted;
}

/** cap_task_fix_setuid(new, old, flags): the capability sets after an id change. */
export function capTaskFixSetuid(nw: Cred, old: Cred, kind: SetidKind): void {
  if (issecure(old, SECURE_NO_SETUID_FIXUP)) return;
  if (kind !== 'FS') { capEmulateSetxuid(nw, old); return; }
  // FSUID changes juggle the filesystem capabilities only.
  if (old.fsuid === 0 && nw.fsuid !== 0) nw.capEffective &= ~CAP_FS_SET;
  if (old.fsuid !== 0 && nw.fsuid === 0) nw.capEffective |= nw.capPermitted & CAP_FS_SET;
}

/** prepare_creds(): a private copy to change. */
const prepareCreds = (t: Task): Cred => ({ ...t.cred });
/** commit_creds(): the new cred replaces the old one. */
const commitCreds = (t: Task, c: Cred): number => { t.cred = c; return 0; };

// --- kernel/sys.c -------------------------------------------------------------------------------

/** __sys_setuid: with CAP_SETUID all of r/e/s/fs; else only e/fs, to the real or saved uid. */
export function sysSetuid(t: Task, uid: number): number {
  if (uid === ID_UNCHANGED) return -EINVAL; // !uid_valid
  const old = t.cred, nw = prepareCreds(t);
  if (capable(old, CAP_SETUID)) {
    nw.suid = nw.uid = uid;
  } else if (uid !== old.uid && uid !== nw.suid) {
    return -EPERM;
  }
  nw.fsuid = nw.euid = uid;
  capTaskFixSetuid(nw, old, 'ID');
  return commitCreds(t, nw);
}

/** __sys_setreuid: real to the real or effective uid, effective to any of r/e/s, unless CAP_SETUID. */
export function sysSetreuid(t: Task, ruid: number, euid: number): number {
  const old = t.cred, nw = prepareCreds(t), setuidCap = capable(old, CAP_SETUID);
  if (ruid !== ID_UNCHANGED) {
    nw.uid = ruid;
    if (old.uid !== ruid && old.euid !== ruid && !setuidCap) return -EPERM;
  }
  if (euid !== ID_UNCHANGED) {
    nw.euid = euid;
    if (old.uid !== euid && old.euid !== euid && old.suid !== euid && !setuidCap) return -EPERM;
  }
  if (ruid !== ID_UNCHANGED || (euid !== ID_UNCHANGED && euid !== old.uid)) nw.suid = nw.euid;
  nw.fsuid = nw.euid;
  capTaskFixSetuid(nw, old, 'RE');
  return commitCreds(t, nw);
}

/** __sys_setresuid: each id to one of the current three, unless CAP_SETUID; -1 leaves one as is. */
export function sysSetresuid(t: Task, ruid: number, euid: number, suid: number): number {
  const old = t.cred, ids = [old.uid, old.euid, old.suid];
  const isNew = (id: number): boolean => id !== ID_UNCHANGED && !ids.includes(id);
  if ((isNew(ruid) || isNew(euid) || isNew(suid)) && !capable(old, CAP_SETUID)) return -EPERM;
  const nw = prepareCreds(t);
  if (ruid !== ID_UNCHANGED) nw.uid = ruid;
  if (euid !== ID_UNCHANGED) nw.euid = euid;
  if (suid !== ID_UNCHANGED) nw.suid = suid;
  nw.fsuid = nw.euid;
  capTaskFixSetuid(nw, old, 'RES');
  return commitCreds(t, nw);
}

/** __sys_setfsuid: returns the old fsuid whether or not the change was allowed. */
export function sysSetfsuid(t: Task, uid: number): number {
  const old = t.cred, oldFsuid = old.fsuid;
  if (uid === ID_UNCHANGED) return oldFsuid;
  if ([old.uid, old.euid, old.suid, old.fsuid].includes(uid) || capable(old, CAP_SETUID)) {
    if (uid !== old.fsuid) {
      const nw = prepareCreds(t);
      nw.fsuid = uid;
      capTaskFixSetuid(nw, old, 'FS');
      commitCreds(t, nw);
    }
  }
  return oldFsuid;
}

/** __sys_setgid: with CAP_SETGID all four; else e/fs to the real or saved gid. */
export function sysSetgid(t: Task, gid: number): number {
  if (gid === ID_UNCHANGED) return -EINVAL;
  const old = t.cred, nw = prepareCreds(t);
  if (capable(old, CAP_SETGID)) nw.gid = nw.egid = nw.sgid = nw.fsgid = gid;
  else if (gid === old.gid || gid === old.sgid) nw.egid = nw.fsgid = gid;
  else return -EPERM;
  return commitCreds(t, nw);
}

/** __sys_setregid. */
export function sysSetregid(t: Task, rgid: number, egid: number): number {
  const old = t.cred, nw = prepareCreds(t), cap = capable(old, CAP_SETGID);
  if (rgid !== ID_UNCHANGED) {
    if (old.gid !== rgid && old.egid !== rgid && !cap) return -EPERM;
    nw.gid = rgid;
  }
  if (egid !== ID_UNCHANGED) {
    if (old.gid !== egid && old.egid !== egid && old.sgid !== egid && !cap) return -EPERM;
    nw.egid = egid;
  }
  if (rgid !== ID_UNCHANGED || (egid !== ID_UNCHANGED && egid !== old.gid)) nw.sgid = nw.egid;
  nw.fsgid = nw.egid;
  return commitCreds(t, nw);
}

/** __sys_setresgid. */
export function sysSetresgid(t: Task, rgid: number, egid: number, sgid: number): number {
  const old = t.cred, ids = [old.gid, old.egid, old.sgid];
  const isNew = (id: number): boolean => id !== ID_UNCHANGED && !ids.includes(id);
  if ((isNew(rgid) || isNew(egid) || isNew(sgid)) && !capable(old, CAP_SETGID)) return -EPERM;
  const nw = prepareCreds(t);
  if (rgid !== ID_UNCHANGED) nw.gid = rgid;
  if (egid !== ID_UNCHANGED) nw.egid = egid;
  if (sgid !== ID_UNCHANGED) nw.sgid = sgid;
  nw.fsgid = nw.egid;
  return commitCreds(t, nw);
}

/** __sys_setfsgid: the old fsgid, whether or not it changed. */
export function sysSetfsgid(t: Task, gid: number): number {
  const old = t.cred, oldFsgid = old.fsgid;
  if (gid === ID_UNCHANGED) return oldFsgid;
  if (([old.gid, old.egid, old.sgid, old.fsgid].includes(gid) || capable(old, CAP_SETGID)) && gid !== old.fsgid) {
    commitCreds(t, { ...prepareCreds(t), fsgid: gid });
  }
  return oldFsgid;
}

/** setgroups(): CAP_SETGID (may_setgroups); the list sorted as groups_sort() leaves it. */
export function sysSetgroups(t: Task, groups: readonly number[]): number {
  if (!capable(t.cred, CAP_SETGID)) return -EPERM;
  if (groups.length > NGROUPS_MAX) return -EINVAL;
  return commitCreds(t, { ...prepareCreds(t), groups: [...groups].sort((a, b) => a - b) });
}

// --- capget / capset (kernel/capability.c, security/commoncap.c) --------------------------------

/** _LINUX_CAPABILITY_VERSION_1/2/3 and their u32 counts per set. */
export const LINUX_CAPABILITY_VERSION_1 = 0x19980330, LINUX_CAPABILITY_VERSION_2 = 0x20071026, LINUX_CAPABILITY_VERSION_3 = 0x20080522;

/** cap_validate_magic: how many u32 per set the version moves, or undefined (-EINVAL, version 3 written back). */
export function capU32s(version: number): 1 | 2 | undefined {
  if (version === LINUX_CAPABILITY_VERSION_1) return 1;
  if (version === LINUX_CAPABILITY_VERSION_2 || version === LINUX_CAPABILITY_VERSION_3) return 2;
  return undefined;
}

export interface CapSets { effective: bigint; permitted: bigint; inheritable: bigint }

/**
 * cap_capset: inheritable only within old inheritable | permitted (unless CAP_SETPCAP) and never
 * outside the bounding set; permitted only shrinks; effective within the new permitted; ambient
 * keeps only what stays both permitted and inheritable.
 */
export function capCapset(t: Task, ctx: CapContext, want: CapSets): number {
  const old = t.cred, valid = capFullSet(ctx.lastCap);
  const e = want.effective & valid, p = want.permitted & valid, i = want.inheritable & valid;
  // cap_inh_is_capped(): without CAP_SETPCAP, no new inheritable bits beyond permitted.
  if (!capable(old, CAP_SETPCAP) && !capIsSubset(i, old.capInheritable | old.capPermitted)) return -EPERM;
  if (!capIsSubset(i, old.capInheritable | old.capBset)) return -EPERM;
  if (!capIsSubset(p, old.capPermitted)) return -EPERM;
  if (!capIsSubset(e, p)) return -EPERM;
  const nw = prepareCreds(t);
  nw.capEffective = e;
  nw.capInheritable = i;
  nw.capPermitted = p;
  nw.capAmbient &= p & i;
  return commitCreds(t, nw);
}

// --- prctl (cap_task_prctl) ---------------------------------------------------------------------

export const PR_GET_KEEPCAPS = 7, PR_SET_KEEPCAPS = 8, PR_CAPBSET_READ = 23, PR_CAPBSET_DROP = 24;
export const PR_GET_SECUREBITS = 27, PR_CAP_AMBIENT = 47;
export const PR_CAP_AMBIENT_IS_SET = 1, PR_CAP_AMBIENT_RAISE = 2, PR_CAP_AMBIENT_LOWER = 3, PR_CAP_AMBIENT_CLEAR_ALL = 4;

/** The prctl options of cap_task_prctl; undefined for other options (prctl's own switch: -EINVAL here). */
export function capTaskPrctl(t: Task, ctx: CapContext, option: number, a2: bigint, a3: bigint, a4: bigint, a5: bigint): number | undefined {
  const c = t.cred;
  const cap = (a: bigint): number => (a > BigInt(ctx.lastCap) ? -1 : Number(a));
  switch (option) {
    case PR_CAPBSET_READ:
      if (!capValid(ctx, cap(a2))) return -EINVAL;
      return capRaised(c.capBset, cap(a2)) ? 1 : 0;
    case PR_CAPBSET_DROP: // cap_prctl_drop: CAP_SETPCAP; a dropped bit never comes back
      if (!capable(c, CAP_SETPCAP)) return -EPERM;
      if (!capValid(ctx, cap(a2))) return -EINVAL;
      return commitCreds(t, { ...prepareCreds(t), capBset: c.capBset & ~capMask(cap(a2)) });
    case PR_GET_SECUREBITS:
      return c.securebits;
    case PR_GET_KEEPCAPS:
      return issecure(c, SECURE_KEEP_CAPS) ? 1 : 0;
    case PR_SET_KEEPCAPS: {
      if (a2 > 1n) return -EINVAL;
      if (issecure(c, SECURE_KEEP_CAPS_LOCKED)) return -EPERM;
      const bit = 1 << SECURE_KEEP_CAPS;
      return commitCreds(t, { ...prepareCreds(t), securebits: a2 ? c.securebits | bit : c.securebits & ~bit });
    }
    case PR_CAP_AMBIENT: {
      if (a2 === BigInt(PR_CAP_AMBIENT_CLEAR_ALL)) {
        if (a3 | a4 | a5) return -EINVAL;
        return commitCreds(t, { ...prepareCreds(t), capAmbient: 0n });
      }
      if (!capValid(ctx, cap(a3)) || a4 || a5) return -EINVAL;
      const n = cap(a3);
      if (a2 === BigInt(PR_CAP_AMBIENT_IS_SET)) return capRaised(c.capAmbient, n) ? 1 : 0;
      if (a2 !== BigInt(PR_CAP_AMBIENT_RAISE) && a2 !== BigInt(PR_CAP_AMBIENT_LOWER)) return -EINVAL;
      if (a2 === BigInt(PR_CAP_AMBIENT_RAISE)) {
        if (!capRaised(c.capPermitted, n) || !capRaised(c.capInheritable, n) || issecure(c, SECURE_NO_CAP_AMBIENT_RAISE)) return -EPERM;
        return commitCreds(t, { ...prepareCreds(t), capAmbient: c.capAmbient | capMask(n) });
      }
      return commitCreds(t, { ...prepareCreds(t), capAmbient: c.capAmbient & ~capMask(n) });
    }
    default:
      return undefined;
  }
}

/**
 * The cred a process spawned with another uid/gid starts with: as if root had called
 * setresgid(gid, gid, gid) and setresuid(uid, uid, uid) before exec (so a non-root uid has no
 * capabilities left, as after `su`).
 */
export function credForIds(base: Cred, uid: number | undefined, gid: number | undefined): Cred {
  const t = { cred: { ...base } } as Task;
  // Set the ids directly (the spawner is trusted), then apply the fix-ups the kernel would.
  if (gid !== undefined) t.cred = { ...t.cred, gid, egid: gid, sgid: gid, fsgid: gid };
  if (uid !== undefined) {
    const old = t.cred, nw = { ...old, uid, euid: uid, suid: uid, fsuid: uid };
    capTaskFixSetuid(nw, old, 'RES');
    t.cred = nw;
  }
  return t.cred;
}
