/**
 * @fileoverview `bpfemu run-user PROGRAM [ARG…]`: boots, runs a static x86-64 executable (no
 * libc, e.g. images/build/user/*) as a process with the given argv, shows what it writes to fd 1
 * and fd 2 as it writes it, and exits with its status: its exit code, or 128 + the signal that
 * killed it (the kernel's log line for the fault goes to stderr, as dmesg would show it).
 * With -j the output is collected into one JSON object instead.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { session, release } from '../session.ts';
import { emit, UsageError, type OutputOptions } from '../output.ts';
import { ExecError } from '../../kernel/process.ts';
import type { MmapProfile } from '../../bpf/syscall/mmap.ts';
import { auditOutput, enableBpfAudit } from './audit.ts';

const PROFILES: MmapProfile[] = ['v5.5', 'v6'];

export function register(program: Command, global: () => OutputOptions): void {
  program.command('run-user')
    .description('run a static x86-64 program (no libc) as a user process; exit with its status')
    .argument('<program>', 'the executable (built with -static -nostdlib)')
    .argument('[args...]', 'its arguments (argv[1]…); put -- before ones that look like options')
    .option('--mmap-profile <v>', `BPF map mmap behaviour: ${PROFILES.join(' or ')} (default: the kernel profile's)`)
    .option('--audit', 'audit bpf() calls (-S bpf) during the run and print the records after it, as ausearch')
    .option('--timeout <ms>', 'stop after this long (the process is killed)')
    .allowUnknownOption()
    .action(async (path: string, args: string[], o: { mmapProfile?: string; timeout?: string; audit?: boolean }) => {
      if (o.mmapProfile !== undefined && !PROFILES.includes(o.mmapProfile as MmapProfile)) throw new UsageError(`--mmap-profile must be ${PROFILES.join(' or ')}`);
      const timeoutMs = o.timeout === undefined ? undefined : Number(o.timeout);
      if (timeoutMs !== undefined && !(Number.isInteger(timeoutMs) && timeoutMs > 0)) throw new UsageError(`--timeout '${o.timeout}' is not a positive integer`);
      if (!existsSync(path)) throw new UsageError(`${path}: no such file`);
      const image = new Uint8Array(readFileSync(path));
      const json = !!(global().json || global().pretty);
      const sys = await session();
      const savedProfile = sys.mapMmap.profile;
      try {
        if (o.mmapProfile !== undefined) sys.mapMmap.profile = o.mmapProfile as MmapProfile;
        if (o.audit) enableBpfAudit(sys);
        let p;
        try {
          p = sys.procs.spawn(image, {
            argv: [path, ...args],
            ...(json ? {} : { onStdout: (b: Uint8Array) => process.stdout.write(b), onStderr: (b: Uint8Array) => process.stderr.write(b) }),
          });
        } catch (e) {
          if (e instanceof ExecError) throw new Error(`${path}: exec format error: ${e.message}`);
          throw e;
        }
        // What the audit records show for the process: its executable and argv (PROCTITLE).
        if (o.audit) sys.kernel.audit.setTaskInfo(p.task, { exe: path, cmdline: [path, ...args] });
        sys.procs.run(timeoutMs !== undefined ? { timeoutMs } : {});
        const timedOut = p.alive;
        if (timedOut) sys.procs.killAll();
        const r = sys.procs.result(p);
        if (json) {
          emit(global(), {
            pid: r.pid, exit_code: r.exitCode ?? null, signal: r.signal ?? null, status: r.status, timed_out: timedOut,
            stdout: r.stdout, stderr: r.stderr, fault: r.fault ? { signal: r.fault.signalName, message: r.fault.message, address: r.fault.address, rip: r.fault.rip } : null,
            ...(o.audit ? { audit: (({ events, lost }) => ({ events, lost }))(auditOutput(sys, {})) } : {}),
          }, () => '');
        } else {
          if (r.fault?.message) process.stderr.write(`${r.fault.message}\n`);
          if (r.signal !== undefined) process.stderr.write(`bpfemu: ${path}: killed by ${r.fault?.signalName ?? `signal ${r.signal}`}${timedOut ? ` (timeout after ${timeoutMs} ms)` : ''}\n`);
        }
        if (o.audit && !json) { // after the program's own output, as ausearch prints it
          const a = auditOutput(sys, {});
          process.stdout.write(a.events.length ? a.text : '');
          if (!a.events.length) process.stderr.write('<no matches>\n');
        }
        process.exitCode = r.status;
      } finally {
        sys.mapMmap.profile = savedProfile;
        release(sys);
      }
    });
}
