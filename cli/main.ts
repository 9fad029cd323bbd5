/**
 * @fileoverview The `bpfemu` CLI, bpftool-shaped: `bpfemu [-j|-p] OBJECT COMMAND [ARGS]`.
 * Each invocation boots a fresh machine. Errors: one line on stderr; exit 2 for bad usage,
 * 1 for a failed operation.
 */
import { Command, CommanderError } from 'commander';
import { UsageError, type OutputOptions } from './output.ts';
import { isShared, setBootOptions } from './session.ts';
import { KERNEL_VERSIONS, kernelProfile } from '../kernel/profile.ts';
import * as call from './commands/call.ts';
import * as ftrace from './commands/ftrace.ts';
import * as disasm from './commands/disasm.ts';
import * as demo from './commands/demo.ts';
import * as conformance from './commands/conformance.ts';
import * as prog from './commands/prog.ts';
import * as map from './commands/map.ts';
import * as traceProg from './commands/trace_prog.ts';
import * as batch from './commands/batch.ts';
import * as link from './commands/link.ts';
import * as step from './commands/step.ts';
import * as bpfasm from './commands/bpfasm.ts';
import * as btf from './commands/btf.ts';
import * as gdbserver from './commands/gdbserver.ts';
import * as audit from './commands/audit.ts';
import * as abifuzz from './commands/abifuzz.ts';
import * as net from './commands/net.ts';
import * as runUser from './commands/run_user.ts';
import * as trampoline from './commands/trampoline.ts';

/** Every command module, registered in one list. */
const COMMANDS = [call, ftrace, disasm, demo, conformance, prog, map, traceProg, bpfasm, btf, batch, link, step, gdbserver, audit, abifuzz, net, runUser, trampoline];

export async function main(argv: string[]): Promise<number> {
  const program = new Command('bpfemu')
    .description('an x86-64 machine running a small Linux-like kernel with a BPF subsystem')
    .option('-j, --json', 'print JSON')
    .option('-p, --pretty', 'print indented JSON')
    // Repeatable: commander lets the root take every `--kernel` of the line, even after the
    // subcommand's name, so a command that wants several (trampoline diff: two; abi-fuzz: 'all')
    // declares its own --kernel option and the hook below hands it the list.
    .option('--kernel <version>', `the kernel generation the machine models: ${KERNEL_VERSIONS.join(', ')}`, (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--sysctl <name=value>', 'set a sysctl before the command runs (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .hook('preAction', (_root, action) => {
      const o = program.opts<{ kernel: string[]; sysctl: string[] }>();
      // A line of a batch file or the shell runs on the session's machine, booted with the
      // flags given to `batch`/`shell` itself: a line without flags keeps them.
      if (isShared() && !o.kernel.length && !o.sysctl.length) return;
      let kernel: string | undefined;
      if (action.options.some((opt) => opt.long === '--kernel')) {
        if (o.kernel.length) action.setOptionValueWithSource('kernel', o.kernel, 'cli');
      } else {
        if (o.kernel.length > 1) throw new UsageError(`--kernel: one kernel profile per machine, got ${o.kernel.join(', ')}`);
        kernel = o.kernel[0];
        if (kernel !== undefined) {
          try { kernelProfile(kernel); } catch (e) { throw new UsageError((e as Error).message); } // an unknown profile is bad usage
        }
      }
      // Kept in order: each --sysctl is one write, as `sysctl -w` would make them one after another.
      const sysctl = o.sysctl.map((kv): [string, string] => {
        const m = /^([\w.]+)=(.*)$/.exec(kv);
        if (!m) throw new UsageError(`--sysctl wants NAME=VALUE, got '${kv}'`);
        return [m[1]!, m[2]!];
      });
      setBootOptions({ ...(kernel ? { kernel } : {}), ...(o.sysctl.length ? { sysctl } : {}) });
    })
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s), outputError: () => {} });
  const global = (): OutputOptions => program.opts<OutputOptions>();
  process.exitCode = 0; // each command (also each line of a batch) starts clean
  const runner = {
    run: (args: string[]) => main(args),
    words: () => program.commands.flatMap((c) => [c.name(), ...c.commands.map((s) => s.name())]),
  };
  for (const c of COMMANDS) c.register(program, global, runner);
  for (const c of program.commands) c.exitOverride().configureOutput({ outputError: () => {} });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0) return 0; // --help, --version
      process.stderr.write(`Error: ${e.message.replace(/^error: /, '')}\n`);
      return 2;
    }
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`Error: ${msg.split('\n')[0]}\n`);
    return e instanceof UsageError ? 2 : 1;
  }
}

const isMain = process.argv[1] && /(cli[\\/]main\.ts|bin[\\/]bpfemu(\.js)?)$/.test(process.argv[1]);
if (isMain) process.exit(await main(process.argv.slice(2)));
