/**
 * @fileoverview The syscall table: subsystems register their calls by x86-64 number (one
 * typed entry each, no lookup by name convention). A call returns a value or a negative errno;
 * an exception from a handler is a bug in the model and propagates, loudly.
 */

export interface SyscallDef {
  readonly nr: number;
  readonly name: string;
  readonly argc: number;
  readonly fn: (...args: bigint[]) => bigint | number;
}

export const ENOSYS = 38;

/** x86-64 numbers of the calls the emulated kernel knows (arch/x86/entry/syscalls/syscall_64.tbl). */
export const __NR = {
  read: 0, write: 1, close: 3, mmap: 9, mprotect: 10, munmap: 11, getpid: 39, fork: 57, exit: 60,
  getuid: 102, getgid: 104, geteuid: 107, getegid: 108, bpf: 321,
} as const;

export class SyscallTable {
  private table = new Map<number, SyscallDef>();

  register(def: SyscallDef): void {
    if (this.table.has(def.nr)) throw new Error(`syscall ${def.nr} (${def.name}) registered twice`);
    this.table.set(def.nr, def);
  }

  get(nr: number): SyscallDef | undefined { return this.table.get(nr); }

  /** Calls syscall `nr`; an unknown number gives -ENOSYS. */
  call(nr: number, args: readonly bigint[]): bigint {
    const def = this.table.get(nr);
    if (!def) return BigInt(-ENOSYS);
    const r = def.fn(...args.slice(0, def.argc).concat(new Array(Math.max(0, def.argc - args.length)).fill(0n)));
    return BigInt(r);
  }
}
