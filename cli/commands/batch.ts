/**
 * @fileoverview `bpfemu batch file FILE`: one command a line, bpftool's batch syntax (`#` starts a
 * comment, quotes group words), all on one machine; the first failing line stops the batch and
 * is named. The shell (`bpfemu shell`) reads the same commands interactively, with history and
 * completion of command words.
 */
import type { Command } from 'commander';
import { readFileSync, existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { beginShared, endShared } from '../session.ts';
import { UsageError, type OutputOptions } from '../output.ts';

/** Splits a command line into words: whitespace-separated, "double" or 'single' quotes group. */
export function splitLine(line: string): string[] {
  const out: string[] = [];
  let cur = '', quote = '', has = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) { if (c === quote) quote = ''; else cur += c; continue; }
    if (c === '#') break;
    if (c === '"' || c === "'") { quote = c; has = true; continue; }
    if (/\s/.test(c)) { if (cur || has) out.push(cur); cur = ''; has = false; continue; }
    if (c === '\\' && i + 1 < line.length) { cur += line[++i]; continue; }
    cur += c;
  }
  if (quote) throw new UsageError(`unterminated ${quote} quote`);
  if (cur || has) out.push(cur);
  return out;
}

export interface Runner { run(argv: string[]): Promise<number>; words(): string[] }

export function register(program: Command, _global: () => OutputOptions, runner?: Runner): void {
  const batch = program.command('batch').description('run commands from a file on one machine');
  batch.command('file')
    .description("one command a line ('-' reads standard input); stops at the first error")
    .argument('<file>', 'the batch file')
    .action(async (file: string) => {
      if (!runner) throw new Error('batch: no runner');
      if (file !== '-' && !existsSync(file)) throw new UsageError(`batch file ${file} not found`);
      const lines = readFileSync(file === '-' ? 0 : file, 'utf8').split('\n');
      beginShared();
      let n = 0;
      try {
        for (let i = 0; i < lines.length; i++) {
          let argv: string[];
          try { argv = splitLine(lines[i]!); } catch (e) { throw new UsageError(`${file}:${i + 1}: ${(e as Error).message}`); }
          if (argv.length === 0) continue;
          if (argv[0] === 'batch') throw new UsageError(`${file}:${i + 1}: batch inside a batch file is not allowed`);
          const code = await runner.run(argv);
          n++;
          if (code !== 0) {
            process.stderr.write(`Error: ${file}:${i + 1}: '${lines[i]!.trim()}' failed; ${n - 1} command${n - 1 === 1 ? '' : 's'} before it succeeded\n`);
            process.exitCode = code;
            return;
          }
        }
      } finally {
        await endShared();
      }
    });

  program.command('shell')
    .description('an interactive shell over one machine (history, Tab completion)')
    .action(async () => {
      if (!runner) throw new Error('shell: no runner');
      beginShared();
      const words = runner.words();
      const rl = createInterface({
        input: process.stdin, output: process.stdout, prompt: 'bpfemu> ', historySize: 1000,
        completer: (line: string): [string[], string] => {
          const parts = line.split(/\s+/);
          const last = parts.at(-1) ?? '';
          const hits = words.filter((w) => w.startsWith(last));
          return [hits.length ? hits : words, last];
        },
      });
      rl.prompt();
      try {
        for await (const line of rl) {
          let argv: string[] = [];
          try { argv = splitLine(line); } catch (e) { process.stderr.write(`Error: ${(e as Error).message}\n`); }
          if (argv[0] === 'quit' || argv[0] === 'exit') break;
          if (argv.length) await runner.run(argv);
          rl.prompt();
        }
      } finally {
        rl.close();
        await endShared();
      }
    });
}
