/**
 * @fileoverview The machine's clock. By default virtual: it advances by a fixed number of ns for
 * each guest instruction or BPF instruction reported to it, and by explicit ticks, so
 * ktime_get_ns, run_time_ns and audit timestamps are reproducible in tests. The host clock is
 * an option.
 */

export interface ClockOptions {
  mode?: 'virtual' | 'host';
  /** Virtual ns per instruction (default 1). */
  nsPerInsn?: number;
  /** Virtual time at boot (default: 1 s, so timestamps are never 0). */
  startNs?: bigint;
}

export class Clock {
  readonly mode: 'virtual' | 'host';
  private ns: bigint;
  private readonly perInsn: bigint;
  private readonly hostStart = process.hrtime.bigint();
  private readonly bootNs: bigint;

  constructor(opts: ClockOptions = {}) {
    this.mode = opts.mode ?? 'virtual';
    this.perInsn = BigInt(opts.nsPerInsn ?? 1);
    this.ns = opts.startNs ?? 1_000_000_000n;
    this.bootNs = this.ns;
  }

  /** Advances virtual time by `n` executed instructions. */
  instructions(n: number | bigint): void {
    if (this.mode === 'virtual') this.ns += BigInt(n) * this.perInsn;
  }

  /** Advances virtual time by `ns`. */
  tick(ns: bigint): void { if (this.mode === 'virtual') this.ns += ns; }

  /** ktime_get_ns(): monotonic since boot; each read advances virtual time by one ns so reads are ordered. */
  ktimeGetNs(): bigint {
    if (this.mode === 'host') return this.bootNs + (process.hrtime.bigint() - this.hostStart);
    return this.ns++;
  }
}
