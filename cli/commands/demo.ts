/**
 * @fileoverview `bpfemu demo` (what `npm start` runs): boot the kernel image, show its ftrace
 * sites, call the traced test functions with the kernel selftests' values, and let gcc-built
 * code call into a TypeScript function to show what it saw.
 */
import { session, release, releaseObject } from '../session.ts';
import type { Command } from 'commander';
import { formatInsn } from '../../emulator/capstone.ts';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BpfObject } from '../../bpf/libbpf/load.ts';
import { readGlobals } from './trace_prog.ts';

const FEXIT_OBJ = fileURLToPath(new URL('../../images/build/bpf/fexit_test.bpf.o', import.meta.url));
import { emit, type OutputOptions } from '../output.ts';

/** net/bpf/test_run.c's calls and the values the selftests expect. */
const SELFTEST_CALLS: [string, number[], number][] = [
  ['bpf_fentry_test1', [1], 2],
  ['bpf_fentry_test2', [2, 3], 5],
  ['bpf_fentry_test3', [4, 5, 6], 15],
  ['bpf_fentry_test4', [7, 8, 9, 10], 34],
  ['bpf_fentry_test5', [11, 12, 13, 14, 15], 65],
  ['bpf_fentry_test6', [16, 17, 18, 19, 20, 21], 111],
];

export function register(program: Command, global: () => OutputOptions): void {
  program.command('demo')
    .description('boot, call traced functions, show a guest-to-TypeScript call')
    .action(async () => {
      const t0 = performance.now();
      const sys = await session();
      const bootMs = performance.now() - t0;
      try {
        const k = sys.kernel;
        const calls = SELFTEST_CALLS.map(([fn, args, want]) => {
          const r = sys.callFunc(fn, args.map(BigInt));
          return { fn, args, ret: r.ret!, expected: want, ok: r.ret === BigInt(want) };
        });
        let seen: bigint[] = [];
        const native = k.defineNative('demo_observer', (...a) => { seen = a; return 0n; }, 8);
        k.call('bpfemu_call_fn8', [native.address]);
        const entry = sys.disasm('bpf_fentry_test2').slice(0, 4);
        // The kernel selftest's fexit programs (clang-built), attached through the BPF trampoline.
        sys.bpfSys.statsEnabled = true;
        const obj = BpfObject.open(new Uint8Array(readFileSync(FEXIT_OBJ)), 'fexit_test.bpf.o', sys.objectLoadOptions).load(sys.bpfSys, sys.objectLoadOptions);
        const attached = obj.attachTracing();
        const patched = sys.disasm('bpf_fentry_test2').slice(0, 1).map((i) => formatInsn(i, (a) => k.symbolize(a)));
        const traced = SELFTEST_CALLS.map(([fn, args]) => ({ fn, args, ret: sys.callFunc(fn, args.map(BigInt)).ret! }));
        const globals = readGlobals(sys, obj);
        const stats = attached.map((n) => { const p = sys.bpfSys.progFromFd(obj.findProgram(n)!.fd)!; return { name: n, run_cnt: p.runCnt, run_time_ns: p.runTimeNs }; });
        const stepped = sys.stepCall('bpf_fentry_test1', [1n]).steps.length;
        releaseObject(obj);
        const data = {
          boot_ms: Math.round(bootMs), image: k.elf.bytes.length, ftrace_sites: k.ftrace.size, btf_types: sys.btf.types.length - 1,
          calls, native: { name: native.name, address: native.address, args_seen: seen }, crossings: k.machine.crossings,
          traced: { programs: attached, calls: traced, globals, stats, steps_of_traced_call: stepped },
        };
        emit(global(), data, () => [
          `bpfemu: booted the kernel image in ${data.boot_ms} ms: ${k.ftrace.size} traceable functions (5-byte nop at entry), ${data.btf_types} BTF types`,
          '',
          'bpf_fentry_test2 begins with the ftrace nop a trampoline will be patched into:',
          ...entry.map((i) => `  ${formatInsn(i, (a) => k.symbolize(a))}`),
          '',
          'Calling the traced test functions under emulation, with the kernel selftests\' values:',
          ...calls.map((c) => `  ${c.fn}(${c.args.join(', ')}) = ${c.ret}  ${c.ok ? 'ok' : `MISMATCH, expected ${c.expected}`}`),
          '',
          `gcc-compiled bpfemu_call_fn8() called TypeScript at ${native.address.toString(16)} <${native.name}>; the 8 System V args it saw:`,
          ...seen.map((v, i) => `  arg${i + 1} = 0x${v.toString(16)}${i >= 6 ? '  (on the stack)' : ''}`),
          '',
          `The kernel selftest fexit_test (clang-built, loaded through bpf()): ${attached.length} fexit programs attached through the BPF trampoline.`,
          'bpf_fentry_test2 now calls its trampoline:',
          ...patched.map((l) => `  ${l}`),
          'Calling the traced functions again:',
          ...traced.map((c) => `  ${c.fn}(${c.args.join(', ')}) = ${c.ret}`),
          'What the programs saw (their globals: 1 = every argument and the return value were right):',
          ...Object.entries(globals).map(([n, v]) => `  ${n} = ${String(v)}`),
          'Their stats (kernel.bpf_stats_enabled=1, virtual clock):',
          ...stats.map((p) => `  ${p.name}: run_cnt ${p.run_cnt} run_time_ns ${p.run_time_ns}`),
          `A traced call of bpf_fentry_test1 takes ${stepped} guest instructions (bpfemu trace … --step shows them).`,
        ].join('\n'));
        if (!calls.every((c) => c.ok)) process.exitCode = 1;
      } finally {
        release(sys);
      }
    });
}
