/**
 * @fileoverview `bpfemu conformance [DIR] [--engine interp|jit|both]`: every `.data` file of the
 * BPF ISA conformance suite on each engine; ends with `N passed, M failed` (and `, K skipped`
 * with each skip's reason listed). Exit 1 when any failed.
 */
import { session, release } from '../session.ts';
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConformanceRunner, conformanceFiles, type ConformanceResult } from '../../bpf/conformance.ts';
import type { Engine } from '../../bpf/prog.ts';
import { emit, UsageError, type OutputOptions } from '../output.ts';

const DEFAULT_DIR = fileURLToPath(new URL('../../../shared/conformance/', import.meta.url));

export function register(program: Command, global: () => OutputOptions): void {
  program.command('conformance')
    .description('run the BPF ISA conformance suite on the interpreter and/or the JIT')
    .argument('[dir]', 'directory of .data files', DEFAULT_DIR)
    .option('--engine <engine>', 'interp, jit or both', 'both')
    .action(async (dir: string, opts: { engine: string }) => {
      const engines: Engine[] = opts.engine === 'both' ? ['interp', 'jit'] : opts.engine === 'interp' || opts.engine === 'jit' ? [opts.engine] : [];
      if (engines.length === 0) throw new UsageError(`--engine ${opts.engine}: expected interp, jit or both`);
      if (!existsSync(dir)) throw new UsageError(`conformance directory ${dir} not found`);
      const files = conformanceFiles(dir);
      if (files.length === 0) throw new UsageError(`no .data files in ${dir}`);
      const sys = await session();
      const runner = new ConformanceRunner(sys.bpf);
      const results: ConformanceResult[] = [];
      try {
        for (const e of engines) for (const f of files) results.push(runner.run(f, e));
      } finally {
        runner.free();
        release(sys);
      }
      const count = (s: string): number => results.filter((r) => r.status === s).length;
      const [passed, failed, skipped] = [count('pass'), count('fail'), count('skip')];
      emit(global(), { passed, failed, skipped, results }, () => [
        ...results.filter((r) => r.status !== 'pass').map((r) => `${r.status.toUpperCase()} ${r.engine} ${r.file}: ${r.reason}`),
        `${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`,
      ].join('\n'));
      if (failed) process.exitCode = 1;
    });
}
