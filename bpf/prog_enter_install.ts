/**
 * @fileoverview Installs __bpf_prog_enter / __bpf_prog_exit (and from 5.12 __bpf_tramp_enter /
 * __bpf_tramp_exit) as guest code of the kernel's generation (arch/x86_64/prog_enter.ts), with
 * their stats slow paths as natives. The stats check is a static key in guest code, so a traced
 * call crosses into TypeScript only while kernel.bpf_stats_enabled is on.
 *
 * Where things are, for the other layers:
 *  - prog->active and recursion_misses (5.12+): the `struct bpf_prog` stand-in at progAddr,
 *    PROG_STANDIN.active (a u32) and PROG_STANDIN.misses (a u64) — bpf_prog_info.recursion_misses
 *    reads the latter.
 *  - current->bpf_ctx (5.19+): helpers/tracing_func.ts's currentBpfCtxSlot(kernel); while a
 *    program runs it points at its struct bpf_tramp_run_ctx, whose first u64 is the link cookie.
 */
import type { Kernel } from '../kernel/kernel.ts';
import type { BpfArch } from './arch.ts';
import { currentBpfCtxSlot } from './helpers/tracing_func.ts';

/** The guest addresses of the entry points and of the static-key sites. */
export interface ProgEnterExitAddrs {
  enter: bigint;
  exit: bigint;
  enterKey: bigint;
  exitKey: bigint;
  enterStats: bigint;
  exitStats: bigint;
  /** 5.12+: __bpf_tramp_enter(im) / __bpf_tramp_exit(im). */
  trampEnter?: bigint;
  trampExit?: bigint;
}

/** bpf_prog_start_time()'s "no stats" value from 5.12 (NO_START_TIME); 0 before. */
export const NO_START_TIME = 1n;

/**
 * Writes the guest code into a page of its own and names it in kallsyms. `account(prog, start)`
 * runs from __bpf_prog_exit's slow path (stats on and a valid start): update_prog_stats().
 */
export function installProgEnterExit(k: Kernel, arch: BpfArch, account: (prog: bigint, start: bigint) => void): ProgEnterExitAddrs {
  const gen = k.profile.trampoline;
  // sched_clock(); from 5.12 a 0 reading becomes NO_START_TIME, since 0 now means "skip the program".
  const nEnter = k.defineNative('__bpf_prog_enter_stats', () => {
    const t = k.clock.ktimeGetNs();
    return gen.enterSkips && t === 0n ? NO_START_TIME : t;
  }, 0);
  const nExit = k.defineNative('__bpf_prog_exit_stats', (prog, start) => { account(prog, start); }, 2);
  const page = k.execmem.alloc(4096, 'bpf runtime');
  const code = arch.progEnterExit!(page.start, nEnter.address, nExit.address,
    { gen, ...(gen.runCtx ? { bpfCtx: currentBpfCtxSlot(k) } : {}) });
  k.execmem.write(page.start, code.bytes);
  const at = (o: number): bigint => page.start + BigInt(o);
  const a: ProgEnterExitAddrs = {
    enter: at(code.enter), exit: at(code.exit), enterKey: at(code.enterKey), exitKey: at(code.exitKey),
    enterStats: at(code.enterStats), exitStats: at(code.exitStats),
  };
  const exitEnd = code.trampEnter ?? code.bytes.length;
  k.ksyms.add({ name: '__bpf_prog_enter', address: a.enter, size: code.exit - code.enter, type: 'T' });
  k.ksyms.add({ name: '__bpf_prog_exit', address: a.exit, size: exitEnd - code.exit, type: 'T' });
  if (code.trampEnter !== undefined && code.trampExit !== undefined) {
    a.trampEnter = at(code.trampEnter);
    a.trampExit = at(code.trampExit);
    k.ksyms.add({ name: '__bpf_tramp_enter', address: a.trampEnter, size: code.trampExit - code.trampEnter, type: 'T' });
    k.ksyms.add({ name: '__bpf_tramp_exit', address: a.trampExit, size: code.bytes.length - code.trampExit, type: 'T' });
  }
  return a;
}
