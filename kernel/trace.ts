/**
 * @fileoverview The trace pipe (/sys/kernel/debug/tracing/trace_pipe): lines written by
 * bpf_trace_printk, read (and consumed) by the host. Lines carry the kernel's prefix,
 * `<comm>-<pid> [<cpu>] d... <secs>.<usecs>: bpf_trace_printk: <text>`.
 */

export interface TraceLine { comm: string; pid: number; cpu: number; ns: bigint; text: string }

/** The trace buffer's size in lines before the oldest are overwritten (ring buffer). */
export const TRACE_BUF_LINES = 4096;

export class TracePipe {
  private lines: TraceLine[] = [];
  /** Lines overwritten before being read. */
  overruns = 0;

  write(line: TraceLine): void {
    this.lines.push(line);
    if (this.lines.length > TRACE_BUF_LINES) { this.lines.shift(); this.overruns++; }
  }

  /** Reads and consumes every line, formatted as trace_pipe prints them. */
  read(): string[] {
    const out = this.lines.map(formatTraceLine);
    this.lines = [];
    return out;
  }

  get pending(): number { return this.lines.length; }
}

export function formatTraceLine(l: TraceLine): string {
  const secs = l.ns / 1_000_000_000n, usecs = (l.ns % 1_000_000_000n) / 1000n;
  const task = `${l.comm}-${l.pid}`.padStart(16);
  return `${task} [${String(l.cpu).padStart(3, '0')}] d..31 ${secs}.${usecs.toString().padStart(6, '0')}: bpf_trace_printk: ${l.text}`;
}
