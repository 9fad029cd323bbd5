/**
 * @fileoverview `bpfemu trace pipe [OBJ PROG [--data-in HEX] [--repeat N]]`: the lines
 * bpf_trace_printk wrote (read and consumed, as /sys/kernel/debug/tracing/trace_pipe), after
 * test-running a program of an object when one is named (registered by trace_prog.ts).
 */
import { session, release, releaseObject } from '../session.ts';
import { bootAndLoad, hexBytes } from '../bpfobj.ts';
import { testRunProgram, DEFAULT_PACKET } from './prog.ts';
import { emit, parseInteger, UsageError, type OutputOptions } from '../output.ts';

/** `trace pipe [OBJ PROG]`: print (and consume) the trace pipe, after an optional test run. */
export async function tracePipe(path: string | undefined, which: string | undefined, opts: { dataIn?: string; repeat: string }, global: () => OutputOptions): Promise<void> {
  let lines: string[];
  if (path) {
    if (!which) throw new UsageError('trace pipe OBJ needs the PROG to run');
    const { sys, obj } = await bootAndLoad(path);
    try {
      testRunProgram(sys, obj, which, opts.dataIn ? hexBytes(opts.dataIn, '--data-in') : DEFAULT_PACKET, Number(parseInteger(opts.repeat, '--repeat')));
      lines = sys.kernel.trace.read();
    } finally { releaseObject(obj); release(sys); }
  } else {
    const sys = await session();
    lines = sys.kernel.trace.read();
    release(sys);
  }
  emit(global(), lines, () => lines.join('\n'));
}
