/**
 * @fileoverview Tasks: the current task's identity (pid, credentials, comm), which audit and the
 * bpf() surface read. One init task at boot; user processes add more later.
 */
import type { FdTable } from './file.ts';

/**
 * struct cred (include/linux/cred.h): ids (u32), supplementary groups, and the capability sets as
 * u64 masks (kernel_cap_t). A task's cred is replaced, never edited, when it changes (prepare_creds
 * / commit_creds): kernel/cred.ts builds the new one, so a copy taken earlier stays what it was.
 */
export interface Cred {
  uid: number; gid: number; euid: number; egid: number;
  suid: number; sgid: number; fsuid: number; fsgid: number;
  /** group_info: sorted (groups_sort); never mutated in place. */
  groups: readonly number[];
  capInheritable: bigint; capPermitted: bigint; capEffective: bigint;
  /** The bounding set: what execve may grant; only ever shrinks (PR_CAPBSET_DROP). */
  capBset: bigint;
  capAmbient: bigint;
  /** SECURE_* bits (include/uapi/linux/securebits.h), SECURE_KEEP_CAPS among them. */
  securebits: number;
}

export interface Task {
  pid: number;
  tgid: number;
  ppid: number;
  /** TASK_COMM_LEN is 16: at most 15 characters and the NUL. */
  comm: string;
  cred: Cred;
  /** Audit login id and session (4294967295 = unset, as the kernel prints it). */
  loginuid: number;
  sessionid: number;
  /** Kernel stack [stackBase, stackBase + THREAD_SIZE). */
  stackBase: bigint;
  /** Open files (shared by the threads of a process). */
  files: FdTable;
}

export const TASK_COMM_LEN = 16;
export const AUDIT_UID_UNSET = 4294967295;

/** CAP_LAST_CAP of v5.5 (CAP_AUDIT_READ); kernel/cred.ts has it per profile. */
const CAP_LAST_CAP_5_5 = 37;

/**
 * init_cred (kernel/cred.c): uid 0, every capability of the kernel (CAP_FULL_SET up to
 * `lastCap`) permitted, effective and bounding, none inheritable or ambient.
 */
export const rootCred = (lastCap = CAP_LAST_CAP_5_5): Cred => {
  const full = (1n << BigInt(lastCap + 1)) - 1n;
  return {
    uid: 0, gid: 0, euid: 0, egid: 0, suid: 0, sgid: 0, fsuid: 0, fsgid: 0, groups: [],
    capInheritable: 0n, capPermitted: full, capEffective: full, capBset: full, capAmbient: 0n, securebits: 0,
  };
};

/** set_task_comm(): truncated to TASK_COMM_LEN - 1 bytes. */
export function setTaskComm(t: Task, comm: string): void {
  t.comm = Buffer.from(comm, 'utf8').subarray(0, TASK_COMM_LEN - 1).toString('utf8');
}
