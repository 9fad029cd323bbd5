/**
 * @fileoverview `bpfemu prog load OBJ [--engine jit|interp]` (load a clang-built object through
 * bpf() and show its programs as `bpftool prog show` does) and `bpfemu prog run OBJ PROG
 * [--data-in HEX] [--repeat N]` (BPF_PROG_TEST_RUN, printed as `bpftool prog run` prints it).
 */
import type { Command } from 'commander';
import { BPF_PROG_TEST_RUN } from '../../bpf/syscall/attr.ts';
import { PROG_TYPES } from '../../bpf/prog_types.ts';
import { errnoName } from '../../bpf/libbpf/load.ts';
import { bootAndLoad, findProgram, hexBytes } from '../bpfobj.ts';
import { emit, parseInteger, UsageError, type OutputOptions } from '../output.ts';
import type { System } from '../../index.ts';
import type { BpfObject } from '../../bpf/libbpf/load.ts';

/** What `bpftool prog show` shows of one program. */
export function progShow(sys: System, fd: number) {
  const p = sys.bpfSys.progFromFd(fd)!;
  const jited = p.prog.jit?.image.code.length ?? 0;
  return {
    id: p.id, type: PROG_TYPES[p.type]?.name ?? String(p.type), name: p.prog.name, tag: p.prog.tag, gpl_compatible: p.gplCompatible,
    loaded_at: Number(p.loadTime), uid: p.uid, bytes_xlated: p.prog.patched.insns.length * 8, jited: jited > 0,
    bytes_jited: jited, map_ids: p.maps.map((m) => m.id), btf_id: p.btf?.id ?? 0,
    ...(sys.bpfSys.statsEnabled ? { run_time_ns: Number(p.runTimeNs), run_cnt: Number(p.runCnt) } : {}),
  };
}

export function progShowText(s: ReturnType<typeof progShow>): string {
  return [
    `${s.id}: ${s.type}  name ${s.name}  tag ${s.tag}${s.gpl_compatible ? '  gpl' : ''}${'run_cnt' in s ? `  run_time_ns ${s.run_time_ns} run_cnt ${s.run_cnt}` : ''}`,
    `\tloaded_at ${s.loaded_at}  uid ${s.uid}`,
    `\txlated ${s.bytes_xlated}B  ${s.jited ? `jited ${s.bytes_jited}B` : 'not jited'}${s.map_ids.length ? `  map_ids ${s.map_ids.join(',')}` : ''}`,
    ...(s.btf_id ? [`\tbtf_id ${s.btf_id}`] : []),
  ].join('\n');
}

/** BPF_PROG_TEST_RUN of one program of a loaded object. */
export function testRunProgram(sys: System, obj: BpfObject, which: string, dataIn: Uint8Array, repeat: number) {
  const prog = findProgram(obj, which);
  const b = sys.bpfSys;
  const din = b.stage(dataIn), dout = b.stage(new Uint8Array(4096));
  try {
    const r = b.call(BPF_PROG_TEST_RUN, { prog_fd: prog.fd, data_in: din, data_size_in: dataIn.length, data_out: dout, data_size_out: 4096, repeat });
    if (r.ret < 0) throw new Error(`BPF_PROG_TEST_RUN of ${which}: ${errnoName(r.ret)} (${r.ret})`);
    const n = r.attr.data_size_out as number;
    return { retval: r.attr.retval as number, duration: r.attr.duration as number, data_out: sys.kernel.machine.mem.read(dout, n) };
  } finally {
    b.unstage(din);
    b.unstage(dout);
  }
}

/** An Ethernet frame of 64 zero bytes: the default packet when none is given. */
export const DEFAULT_PACKET = new Uint8Array(64);

export function register(program: Command, global: () => OutputOptions): void {
  const prog = program.command('prog').description('BPF programs (as bpftool prog)');
  prog.command('load')
    .description('load a BPF object file through bpf() and show its programs and maps')
    .argument('<obj>', 'an ELF object built by clang -target bpf')
    .option('--engine <engine>', 'jit or interp', 'jit')
    .action(async (path: string, opts: { engine: string }) => {
      const { sys, obj } = await bootAndLoad(path, opts.engine);
      try {
        const shown = [...obj.programs.values()].map((p) => progShow(sys, p.fd));
        const maps = [...obj.maps.values()].map((m) => ({ id: m.id, name: m.spec.name, type: m.spec.type, key: m.spec.keySize, value: m.spec.valueSize, max_entries: m.spec.maxEntries }));
        emit(global(), { programs: shown, maps }, () => [...shown.map(progShowText), ...maps.map((m) => `map ${m.id}: ${m.name}  key ${m.key}B  value ${m.value}B  max_entries ${m.max_entries}`)].join('\n'));
      } finally { obj.close(); sys.close(); }
    });
  prog.command('run')
    .description('BPF_PROG_TEST_RUN a program of an object (by section or function name)')
    .argument('<obj>', 'an ELF object built by clang -target bpf')
    .argument('<prog>', 'section name (xdp, tc, fentry/FUNC…) or function name')
    .option('--data-in <hex>', 'packet bytes (default: 64 zero bytes)')
    .option('--repeat <n>', 'runs', '1')
    .option('--engine <engine>', 'jit or interp', 'jit')
    .option('--data-out', 'print the packet after the program')
    .action(async (path: string, which: string, opts: { dataIn?: string; repeat: string; engine: string; dataOut?: boolean }) => {
      const repeat = Number(parseInteger(opts.repeat, '--repeat'));
      if (repeat < 1 || repeat > 1_000_000) throw new UsageError(`--repeat ${opts.repeat}: expected 1..1000000`);
      const data = opts.dataIn ? hexBytes(opts.dataIn, '--data-in') : DEFAULT_PACKET;
      const { sys, obj } = await bootAndLoad(path, opts.engine);
      try {
        const r = testRunProgram(sys, obj, which, data, repeat);
        emit(global(), { retval: r.retval, duration: r.duration, ...(opts.dataOut ? { data_out: Buffer.from(r.data_out).toString('hex') } : {}) }, () => [
          `Return value: ${r.retval}, duration${repeat > 1 ? ' (average)' : ''}: ${r.duration}ns`,
          ...(opts.dataOut ? [`data_out: ${Buffer.from(r.data_out).toString('hex').replace(/(..)(?!$)/g, '$1 ')}`] : []),
        ].join('\n'));
      } finally { obj.close(); sys.close(); }
    });
}
