/**
 * @fileoverview `bpfemu ftrace list`: the attachable functions (the __mcount_loc sites), one a line.
 */
import { session, release } from '../session.ts';
import type { Command } from 'commander';
import { emit, type OutputOptions } from '../output.ts';

export function register(program: Command, global: () => OutputOptions): void {
  const ftrace = program.command('ftrace').description('ftrace call sites of the kernel image');
  ftrace.command('list')
    .description('print the attachable functions, one per line')
    .action(async () => {
      const sys = await session();
      try {
        const sites = sys.kernel.ftrace.list();
        emit(global(), sites.map((s) => ({ name: s.func, address: `0x${s.ip.toString(16)}` })),
          () => sites.map((s) => s.func).join('\n'));
      } finally {
        release(sys);
      }
    });
}
