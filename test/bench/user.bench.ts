/**
 * @fileoverview User-process figures (images/user/bench.c, zerocopy.c): syscalls per second from
 * a gcc-built program (getpid: entering and leaving the kernel; bpf() map lookups: the attr, key
 * and value through the process's memory), a process's start to exit, and a map value read by a
 * JIT-compiled program after the process stored it through its mmap() of the map — no copy in
 * between — against the same round with the value copied in by BPF_MAP_UPDATE_ELEM. Timings are
 * interleaved (A B A B) and the ratio is of two runs of the same process; the syscall counts are
 * exact.
 */
import { pathToFileURL } from 'node:url';
import { boot } from '../../index.ts';
import { userProgram } from '../kernel/user_programs.ts';
import { interleave, median, report, type Line } from './util.ts';

export async function userBench(): Promise<Line[]> {
  const sys = await boot();
  const procs = sys.procs;
  const run = (name: string, args: string[]): void => {
    const r = procs.runProgram(userProgram(name), { argv: [name, ...args] });
    if (r.status !== 0) throw new Error(`${name} ${args.join(' ')}: status ${r.status}: ${r.stdout}`);
  };
  const N = 20_000, M = 2_000, Z = 2_000;
  const lines: Line[] = [];

  // Syscalls: the loop's run minus an empty run of the same program (start-up and exit).
  const before = procs.syscalls;
  run('bench', ['getpid', String(N)]);
  lines.push(['user.getpid_loop_syscalls', procs.syscalls - before]);
  const [tEmpty, tGetpid, tLookup] = interleave(5, [
    () => run('bench', ['getpid', '0']),
    () => run('bench', ['getpid', String(N)]),
    () => run('bench', ['lookup', String(M)]),
  ]);
  const empty = median(tEmpty!);
  lines.push(
    ['user.spawn_to_exit_ms', +empty.toFixed(2)],
    ['user.getpid_per_sec', Math.round(N / ((median(tGetpid!) - empty) / 1000))],
    ['user.bpf_lookup_per_sec', Math.round(M / ((median(tLookup!) - empty) / 1000))],
  );

  // A user store read by the JIT-compiled program, per round (store + test-run bpf() + compare).
  sys.bpfSys.jitEnabled = true;
  const [tZero, tUpdate, tNone] = interleave(5, [
    () => run('zerocopy', [String(Z)]),
    () => run('zerocopy', [String(Z), 'update']),
    () => run('zerocopy', ['0']),
  ]);
  const base = median(tNone!);
  const zero = (median(tZero!) - base) / Z, upd = (median(tUpdate!) - base) / Z;
  lines.push(
    ['user.mmap_store_then_jit_read_us', +(zero * 1000).toFixed(2)],
    ['user.update_elem_then_jit_read_us', +(upd * 1000).toFixed(2)],
    ['user.mmap_vs_update_ratio', +(zero / upd).toFixed(3)],
  );
  sys.close();
  return lines;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) report(await userBench());
