/**
 * @fileoverview Machine figures: guest instruction rate, guest call/ret cost, the cost of one
 * crossing from guest code into TypeScript, and of one call() from TypeScript into the guest.
 * Instructions are counted exactly (a code hook on a short run, then linear in n); time is
 * only compared within this process, interleaved, median of repetitions.
 */
import { boot } from '../../index.ts';
import { interleave, median, report, type Line } from './util.ts';

export async function machineBench(): Promise<Line[]> {
  const sys = await boot();
  const k = sys.kernel;
  const m = k.machine;

  /** Exact guest instructions of call(f, args): a code hook counts every one. */
  const countInsns = (f: bigint, args: bigint[]): number => {
    let n = 0;
    const h = m.hookCode(() => { n++; });
    try { m.call(f, args); } finally { m.removeHook(h); }
    return n;
  };
  /** Instructions per unit of n and fixed overhead, from two counted runs. */
  const perIteration = (f: bigint, extra: bigint[] = []): number => {
    const a = countInsns(f, [...extra, 100n]), b = countInsns(f, [...extra, 200n]);
    return (b - a) / 100;
  };

  const loop = k.addressOf('bpfemu_bench_loop');
  const calls = k.addressOf('bpfemu_bench_calls');
  const viaPtr = k.addressOf('bpfemu_bench_native');
  const guestTarget = k.addressOf('bpfemu_bench_target');
  const native = k.defineNative('bench_native_target', (x) => x * 3n + 1n, 1);
  const test1 = k.addressOf('bpf_fentry_test1');

  const loopIpi = perIteration(loop);
  const callsIpi = perIteration(calls);
  const ptrGuestIpi = perIteration(viaPtr, [guestTarget]);

  const N = 2_000_000n, NN = 20_000n, NT = 20_000;
  const [tLoop, tCalls] = interleave(5, [
    () => m.call(loop, [N]),
    () => m.call(calls, [N]),
  ]);
  const [tGuest, tNative] = interleave(5, [
    () => m.call(viaPtr, [guestTarget, NN]),
    () => m.call(viaPtr, [native.address, NN]),
  ]);
  const [tTs, tTsCall] = interleave(5, [
    () => { let s = 0n; for (let i = 0; i < NT; i++) s += BigInt(i) + 1n; return s; },
    () => { for (let i = 0; i < NT; i++) m.call(test1, [i]); },
  ]);
  const loopNs = median(tLoop) * 1e6 / Number(N);
  const callsNs = median(tCalls) * 1e6 / Number(N);
  const guestPtrNs = median(tGuest) * 1e6 / Number(NN);
  const nativePtrNs = median(tNative) * 1e6 / Number(NN);
  const callNs = (median(tTsCall) - median(tTs)) * 1e6 / NT;
  const c0 = m.crossings;
  m.call(viaPtr, [native.address, 1000n]);
  const crossingsPer1000 = m.crossings - c0;
  sys.close();

  return [
    ['machine.loop.insns_per_iteration', loopIpi],
    ['machine.loop.guest_insns_per_sec', Math.round(loopIpi / loopNs * 1e9)],
    ['machine.loop.ns_per_guest_insn', +(loopNs / loopIpi).toFixed(3)],
    ['machine.call_ret.insns_per_iteration', callsIpi],
    ['machine.call_ret.ns_per_iteration', +callsNs.toFixed(2)],
    ['machine.call_ret.ns_per_call_ret', +(callsNs - loopNs / loopIpi * (callsIpi - 2)).toFixed(2)],
    ['machine.native.crossings_per_1000_calls', crossingsPer1000],
    ['machine.native.ns_per_iteration_guest_target', +guestPtrNs.toFixed(1)],
    ['machine.native.ns_per_iteration_native_target', +nativePtrNs.toFixed(1)],
    ['machine.native.ns_per_crossing', +(nativePtrNs - guestPtrNs).toFixed(1)],
    ['machine.native.crossing_vs_guest_call_ratio', +(nativePtrNs / guestPtrNs).toFixed(1)],
    ['machine.ts_call.ns_per_call', Math.round(callNs)],
    ['machine.ts_call.vs_guest_insn_ratio', Math.round(callNs / (loopNs / loopIpi))],
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) report(await machineBench());
