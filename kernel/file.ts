/**
 * @fileoverview Files and fd tables: a `KFile` is a reference-counted open file (an anon inode
 * for BPF objects: "bpf-prog", "bpf-map", "bpf-link", "btf"); each task has an fd table; closing
 * the last fd of a file drops its reference, and `release` runs when the count reaches zero.
 */

export const EBADF = 9, EMFILE = 24;

export class KFile {
  readonly name: string;
  readonly priv: unknown;
  private refs = 1;
  private onRelease: (() => void) | undefined;

  constructor(name: string, priv: unknown, onRelease?: () => void) {
    this.name = name;
    this.priv = priv;
    this.onRelease = onRelease;
  }

  get(): this { this.refs++; return this; }

  /** fput(): drops a reference; the last one releases the object behind the file. */
  put(): void {
    if (this.refs <= 0) throw new Error(`fput on released file ${this.name}`);
    if (--this.refs === 0) {
      const r = this.onRelease;
      this.onRelease = undefined;
      r?.();
    }
  }

  get refcount(): number { return this.refs; }
}

/** RLIMIT_NOFILE default soft limit. */
export const NR_OPEN_DEFAULT = 1024;

export class FdTable {
  private fds = new Map<number, KFile>();
  readonly max: number;

  constructor(max = NR_OPEN_DEFAULT) {
    this.max = max;
  }

  /** fd_install at the lowest free fd (0, 1, 2 are taken by stdio when the table is a process's). */
  install(file: KFile, lowest = 3): number {
    for (let fd = lowest; fd < this.max; fd++) {
      if (!this.fds.has(fd)) { this.fds.set(fd, file); return fd; }
    }
    file.put();
    return -EMFILE;
  }

  get(fd: number): KFile | undefined { return Number.isInteger(fd) ? this.fds.get(fd) : undefined; }

  /** close(fd): -EBADF when the fd is not open. */
  close(fd: number): number {
    const f = this.fds.get(fd);
    if (!f) return -EBADF;
    this.fds.delete(fd);
    f.put();
    return 0;
  }

  get count(): number { return this.fds.size; }

  closeAll(): void { for (const fd of [...this.fds.keys()]) this.close(fd); }
}
