/**
 * @fileoverview `bpfemu trace OBJ --target TARGET_OBJ (--test-run | --net-rx HEX...) [--stats]`:
 * fentry/fexit on BPF programs. TARGET_OBJ is loaded first; then OBJ's `SEC("fentry/FUNC")` and
 * `SEC("fexit/FUNC")` programs, each with attach_prog_fd = the target program that has a
 * function (its main one or a subprogram) named FUNC, as libbpf's
 * bpf_program__set_attach_target does. `--test-run` runs PROG_TEST_RUN of the target's main
 * program with the kernel selftests' 74-byte IPv6 packet (pkt_v6); `--net-rx` attaches the
 * target's XDP or TC program to eth0 and sends the frames through the device. Printed: the
 * target's verdicts, the tracing programs' globals and stats (as `trace OBJ --call`).
 */
import { readFileSync, existsSync } from 'node:fs';
import type { System } from '../../index.ts';
import { BpfObject, errnoName, type LoadedProgram } from '../../bpf/libbpf/load.ts';
import { BPF_PROG_TEST_RUN } from '../../bpf/syscall/attr.ts';
import { BPF_PROG_TYPE_SCHED_CLS, BPF_PROG_TYPE_SCHED_ACT, BPF_PROG_TYPE_XDP } from '../../bpf/prog_types.ts';
import { pktV6 } from '../../net/packets.ts';
import type { RxResult } from '../../net/netdev.ts';
import { session, release, keepObject, releaseObject } from '../session.ts';
import { hexBytes } from '../bpfobj.ts';
import { readGlobals } from './trace_prog.ts';
import { rxLine, rxJson, statsLine, attachHook } from './net.ts';
import { emit, toJson, UsageError, type OutputOptions } from '../output.ts';

export interface TraceTargetOptions { target: string; testRun?: boolean; netRx?: string[]; stats?: boolean; engine: string }

const open = (sys: System, path: string): BpfObject => {
  if (!existsSync(path)) throw new UsageError(`object file ${path} not found`);
  return BpfObject.open(new Uint8Array(readFileSync(path)), path, sys.objectLoadOptions);
};

/** The target program that has a function named `func` (main or subprogram), by its func_info. */
function targetOf(sys: System, target: BpfObject, func: string): LoadedProgram | undefined {
  for (const p of target.programs.values()) {
    if (sys.bpfSys.progFromFd(p.fd)?.funcInfo?.names.includes(func)) return p;
  }
  return undefined;
}

export async function traceTarget(path: string, opts: TraceTargetOptions, global: () => OutputOptions): Promise<void> {
  if (!opts.testRun === !opts.netRx) throw new UsageError('with --target, give exactly one of --test-run and --net-rx HEX...');
  const frames = (opts.netRx ?? []).map((h, i) => hexBytes(h, `frame ${i + 1}`));
  if (opts.engine !== 'jit' && opts.engine !== 'interp') throw new UsageError(`--engine ${opts.engine}: expected jit or interp`);
  const sys = await session();
  const objs: BpfObject[] = [];
  try {
    // The target is JIT-compiled (only JITed programs can be traced); --engine is the tracers'.
    sys.bpfSys.jitEnabled = true;
    const target = open(sys, opts.target).load(sys.bpfSys, sys.objectLoadOptions);
    objs.push(target);
    const main = [...target.programs.values()].find((p) => [BPF_PROG_TYPE_XDP, BPF_PROG_TYPE_SCHED_CLS, BPF_PROG_TYPE_SCHED_ACT].includes(p.spec.def.progType))
      ?? [...target.programs.values()][0];
    if (!main) throw new UsageError(`${target.name} has no programs`);
    const tracer = open(sys, path);
    for (const p of tracer.spec.programs) {
      if (!p.def.attachBtf || !p.target) continue;
      const t = targetOf(sys, target, p.target);
      if (!t) throw new UsageError(`program '${p.name}' (SEC("${p.secName}")): no function ${p.target} in ${target.name}`);
      tracer.setAttachTarget(p.name, t.fd, p.target);
    }
    sys.bpfSys.jitEnabled = opts.engine === 'jit';
    tracer.load(sys.bpfSys, sys.objectLoadOptions);
    objs.push(tracer);
    if (opts.stats) sys.bpfSys.statsEnabled = true;
    const attached = tracer.attachTracing();
    if (attached.length === 0) throw new UsageError(`${tracer.name} has no fentry/fexit programs`);

    let verdicts: { retval?: number; packets?: ReturnType<typeof rxJson> };
    let text: string[];
    if (opts.testRun) {
      const pkt = pktV6();
      const d = sys.bpfSys.stage(pkt);
      let r;
      try { r = sys.bpfSys.call(BPF_PROG_TEST_RUN, { prog_fd: main.fd, data_in: d, data_size_in: pkt.length }); } finally { sys.bpfSys.unstage(d); }
      if (r.ret < 0) throw new Error(`BPF_PROG_TEST_RUN of ${main.spec.name}: ${errnoName(r.ret)} (${r.ret})`);
      const retval = r.attr.retval as number;
      verdicts = { retval };
      text = [`target ${main.spec.name}: test run over pkt_v6 (74 bytes): retval ${retval | 0}`];
    } else {
      const hook = main.spec.def.progType === BPF_PROG_TYPE_XDP ? 'xdp' : 'tc';
      if (main.spec.def.progType !== BPF_PROG_TYPE_XDP && main.spec.def.progType !== BPF_PROG_TYPE_SCHED_CLS)
        throw new UsageError(`--net-rx: ${main.spec.name} is neither an xdp nor a tc classifier program`);
      attachHook(sys, 'eth0', hook, main.fd);
      const results: RxResult[] = frames.map((f) => sys.net.rx('eth0', f));
      verdicts = { packets: rxJson(frames, results) };
      text = [`target ${main.spec.name} on eth0 ${hook}:`, ...results.map((r, i) => rxLine(i + 1, frames[i]!.length, r)), statsLine('eth0', sys.net.stats('eth0'))];
      attachHook(sys, 'eth0', hook, -1); // what this command attached, it detaches
    }
    const progs = attached.map((n) => {
      const p = sys.bpfSys.progFromFd(tracer.findProgram(n)!.fd)!;
      return { name: n, target: p.linkedProg ? `${p.linkedProg.prog.name}` : null, run_cnt: p.runCnt.toString(), run_time_ns: p.runTimeNs.toString() };
    });
    const globals = readGlobals(sys, tracer);
    const data = { target: main.spec.name, ...verdicts, globals, progs };
    const opt = global();
    if (opt.json || opt.pretty) { process.stdout.write(`${toJson(data, opt.pretty)}\n`); return; }
    emit(opt, data, () => [
      ...text,
      ...Object.entries(globals).map(([n, v]) => `${n} = ${Array.isArray(v) ? `[${v.join(', ')}]` : v}`),
      ...progs.map((p) => `prog ${p.name}: run_cnt ${p.run_cnt} run_time_ns ${p.run_time_ns}`),
    ].join('\n'));
  } finally {
    for (const o of objs.reverse()) { keepObject(o); releaseObject(o); }
    release(sys);
  }
}
