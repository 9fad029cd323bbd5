/**
 * @fileoverview Tasks: the current task's identity (pid, credentials, comm), which audit and the
 * bpf() surface read. One init task at boot; user processes add more later.
 */
import type { FdTable } from './file.ts';

export interface Cred {
  uid: number; gid: number; euid: number; egid: number;
  suid: number; sgid: number; fsuid: number; fsgid: number;
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

export const rootCred = (): Cred => ({ uid: 0, gid: 0, euid: 0, egid: 0, suid: 0, sgid: 0, fsuid: 0, fsgid: 0 });

/** set_task_comm(): truncated to TASK_COMM_LEN - 1 bytes. */
export function setTaskComm(t: Task, comm: string): void {
  t.comm = Buffer.from(comm, 'utf8').subarray(0, TASK_COMM_LEN - 1).toString('utf8');
}
