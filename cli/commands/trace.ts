/**
 * @fileoverview `bpfemu trace pipe [--run OBJ PROG [--data-in HEX] [--repeat N]]`: the lines
 * bpf_trace_printk wrote (read and consumed, as /sys/kernel/debug/tracing/trace_pipe), after
 * test-running a program of an object when --run is given.
 */
import type { Command } from 'commander';
import { boot } from '../../index.ts';
import { bootAndLoad, hexBytes } from '../bpfobj.ts';
import { testRunProgram, DEFAULT_PACKET } from './prog.ts';
import { emit, parseInteger, UsageError, type OutputOptions } from '../output.ts';

export function register(program: Command, global: () => OutputOptions): void {
  const trace = program.command('trace').description('the kernel trace pipe');
  trace.command('pipe')
    .description('print (and consume) the trace pipe; with OBJ PROG, after test-running that program')
    .argument('[obj]', 'an ELF object built by clang -target bpf')
    .argument('[prog]', 'the program to test-run (section or function name)')
    .option('--data-in <hex>', 'packet bytes for the test run')
    .option('--repeat <n>', 'test runs', '1')
    .action(async (path: string | undefined, which: string | undefined, opts: { dataIn?: string; repeat: string }) => {
      let lines: string[];
      if (path) {
        if (!which) throw new UsageError('trace pipe OBJ needs the PROG to run');
        const { sys, obj } = await bootAndLoad(path);
        try {
          testRunProgram(sys, obj, which, opts.dataIn ? hexBytes(opts.dataIn, '--data-in') : DEFAULT_PACKET, Number(parseInteger(opts.repeat, '--repeat')));
          lines = sys.kernel.trace.read();
        } finally { obj.close(); sys.close(); }
      } else {
        const sys = await boot();
        lines = sys.kernel.trace.read();
        sys.close();
      }
      emit(global(), lines, () => lines.join('\n'));
    });
}
