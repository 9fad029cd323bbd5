/**
 * @fileoverview `bpfemu trace OBJ (--call FUNC ARG… | --test-run) [--stats] [--step] [-j]`: load a
 * clang-built object, attach its fentry/fexit programs through the BPF trampoline, call the
 * traced function (or PROG_TEST_RUN a tracing program, which calls bpf_fentry_test1..9 as the
 * kernel does), and print the return value, the programs' global variables and their stats.
 */
import { BPF_MODIFY_RETURN } from '../../bpf/prog_types.ts';
import { release, releaseObject } from '../session.ts';
import type { Command } from 'commander';
import { BPF_MAP_LOOKUP_ELEM, BPF_PROG_TEST_RUN } from '../../bpf/syscall/attr.ts';
import { BTF_KIND, BTF_INT_SIGNED, type Btf } from '../../bpf/btf/btf.ts';
import { errnoName, type BpfObject } from '../../bpf/libbpf/load.ts';
import { bootAndLoad } from '../bpfobj.ts';
import { tracePipe } from './trace.ts';
import { traceTarget } from './trace_target.ts';
import { emit, parseInteger, UsageError, toJson, type OutputOptions } from '../output.ts';
import type { System } from '../../index.ts';

type Value = string | Value[];

/** One global's value from its section's bytes, by its BTF type: integers as decimal strings. */
function decodeValue(btf: Btf, typeId: number, bytes: Uint8Array): Value {
  const t = btf.resolve(typeId);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (t.kind === BTF_KIND.ARRAY) {
    const elem = btf.resolveSize(t.array!.type);
    return Array.from({ length: t.array!.nelems }, (_, i) => decodeValue(btf, t.array!.type, bytes.subarray(i * elem, (i + 1) * elem)));
  }
  const size = bytes.length;
  if ((t.kind === BTF_KIND.INT || t.kind === BTF_KIND.ENUM || t.kind === BTF_KIND.PTR) && [1, 2, 4, 8].includes(size)) {
    let v = size === 8 ? dv.getBigUint64(0, true) : BigInt(size === 4 ? dv.getUint32(0, true) : size === 2 ? dv.getUint16(0, true) : dv.getUint8(0));
    if (t.kind === BTF_KIND.INT && (t.intEncoding! & BTF_INT_SIGNED)) v = BigInt.asIntN(size * 8, v);
    return v.toString();
  }
  return Buffer.from(bytes).toString('hex');
}

/** Every global of the object's data sections, read back through its maps. */
export function readGlobals(sys: System, obj: BpfObject): Record<string, Value> {
  const out: Record<string, Value> = {};
  const btf = obj.spec.btf;
  if (!btf) return out;
  const b = sys.bpfSys;
  for (const m of obj.maps.values()) {
    const sec = m.spec.internal?.section;
    if (!sec) continue;
    const ds = btf.findByNameKind(sec, BTF_KIND.DATASEC);
    if (!ds) continue;
    const k = b.stage(new Uint8Array(4)), v = b.stage(new Uint8Array(m.spec.valueSize));
    try {
      if (b.call(BPF_MAP_LOOKUP_ELEM, { map_fd: m.fd, key: k, value: v }).ret < 0) continue;
      const data = sys.kernel.machine.mem.read(v, m.spec.valueSize);
      for (const vsi of ds.secinfos ?? []) {
        const name = btf.type(vsi.type).name;
        if (name === '_license' || name === 'LICENSE') continue;
        out[name] = decodeValue(btf, btf.type(vsi.type).sizeOrType, data.subarray(vsi.offset, vsi.offset + vsi.size));
      }
    } finally { b.unstage(k); b.unstage(v); }
  }
  return out;
}

export function register(program: Command, global: () => OutputOptions): void {
  program.command('trace')
    .description('trace OBJ: attach its fentry/fexit programs, call the traced function, show what they saw; trace pipe [OBJ PROG]: the trace pipe')
    .argument('<obj>', "an ELF object built by clang -target bpf, or 'pipe'")
    .argument('[rest...]', 'for pipe: OBJ PROG to test-run first')
    .option('--data-in <hex>', 'pipe: packet bytes for the test run')
    .option('--repeat <n>', 'pipe: test runs', '1')
    .option('--call <func...>', 'call FUNC with integer arguments')
    .option('--test-run', 'PROG_TEST_RUN a tracing program (calls bpf_fentry_test1..9)')
    .option('--stats', 'turn kernel.bpf_stats_enabled on')
    .option('--step', 'print the instruction trace of the call')
    .option('--engine <engine>', 'jit or interp', 'jit')
    .option('--target <obj>', 'fentry/fexit on the programs of this object (attach_prog_fd): with --test-run or --net-rx')
    .option('--net-rx <hex...>', 'with --target: attach its xdp/tc program to eth0 and receive these frames')
    .action(async (path: string, rest: string[], opts: { call?: string[]; testRun?: boolean; stats?: boolean; step?: boolean; engine: string; dataIn?: string; repeat: string; target?: string; netRx?: string[] }) => {
      if (path === 'pipe') { await tracePipe(rest[0], rest[1], opts, global); return; }
      if (rest.length) throw new UsageError(`unexpected arguments: ${rest.join(' ')}`);
      if (opts.target) {
        if (opts.call || opts.step) throw new UsageError('--target traces BPF programs: use --test-run or --net-rx, not --call');
        await traceTarget(path, { ...opts, target: opts.target }, global);
        return;
      }
      if (opts.netRx) throw new UsageError('--net-rx needs --target TARGET_OBJ');
      if (!opts.call === !opts.testRun) throw new UsageError('give exactly one of --call FUNC ARG... and --test-run');
      if (opts.step && !opts.call) throw new UsageError('--step needs --call');
      const [func, ...rawArgs] = opts.call ?? [];
      const args = rawArgs.map((a, i) => parseInteger(a, `argument ${i + 1}`));
      const { sys, obj } = await bootAndLoad(path, opts.engine);
      try {
        if (opts.stats) sys.bpfSys.statsEnabled = true;
        const attached = obj.attachTracing();
        if (attached.length === 0) throw new UsageError(`${obj.name} has no fentry/fexit/fmod_ret programs`);
        let ret: bigint | undefined;
        let steps: ReturnType<System['stepCall']>['steps'] = [];
        if (func) {
          if (!sys.kernel.ksyms.lookup(func)) throw new UsageError(`unknown kernel function: ${func}`);
          if (opts.step) ({ ret, steps } = sys.stepCall(func, args));
          else ret = sys.callFunc(func, args).ret;
        } else {
          // bpf_prog_test_run_tracing calls what the program's attach type tests: fentry/fexit
          // the bpf_fentry_test functions, fmod_ret bpf_modify_return_test (5.7).
          const fmodRet = attached.find((n) => obj.findProgram(n)!.spec.def.expectedAttachType === BPF_MODIFY_RETURN);
          const p = obj.findProgram(fmodRet ?? attached[0]!)!;
          const r = sys.bpfSys.call(BPF_PROG_TEST_RUN, { prog_fd: p.fd });
          if (r.ret < 0) throw new Error(`BPF_PROG_TEST_RUN: ${errnoName(r.ret)} (${r.ret})`);
          ret = BigInt(r.attr.retval as number);
        }
        const progs = attached.map((n) => {
          const p = sys.bpfSys.progFromFd(obj.findProgram(n)!.fd)!;
          return { name: n, run_cnt: p.runCnt.toString(), run_time_ns: p.runTimeNs.toString() };
        });
        const globals = readGlobals(sys, obj);
        const data = { ret: ret?.toString() ?? null, globals, progs, ...(opts.step ? { steps: steps.map((s) => ({ address: `0x${s.address.toString(16)}`, symbol: s.symbol ?? null, insn: s.insn, changed: Object.fromEntries(Object.entries(s.changed).map(([r, [, a]]) => [r, `0x${a.toString(16)}`])) })) } : {}) };
        const opt = global();
        if (opt.json || opt.pretty) { process.stdout.write(`${toJson(data, opt.pretty)}\n`); return; }
        emit(opt, data, () => [
          ...(opts.step ? steps.map((s) => `${s.address.toString(16)}  ${(s.symbol ?? '').padEnd(36)} ${s.insn.padEnd(36)} ${Object.entries(s.changed).map(([r, [, a]]) => `${r}=0x${a.toString(16)}`).join(' ')}`) : []),
          `return value: ${ret ?? '(void)'}`,
          ...Object.entries(globals).map(([n, v]) => `${n} = ${Array.isArray(v) ? `[${v.join(', ')}]` : v}`),
          ...progs.map((p) => `prog ${p.name}: run_cnt ${p.run_cnt} run_time_ns ${p.run_time_ns}`),
        ].join('\n'));
      } finally { releaseObject(obj); release(sys); }
    });
}
