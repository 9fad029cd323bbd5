/**
 * @fileoverview `bpfemu gdbserver [--port P] -- COMMAND…`: sets up COMMAND's call without running
 * it, then serves the machine to gdb (emulator/gdbstub.ts) from the call's first instruction.
 * When the call returns, gdb sees the inferior exit (`W` + rax's low byte) and the command prints
 * what it prints on its own. COMMAND is one of
 *
 *   call FUNC ARG…                                        a kernel function
 *   trace OBJ --call FUNC ARG… [--engine E] [--stats]     the same, with OBJ's fentry/fexit attached
 *
 * gdb gets the kernel image from qXfer:exec-file:read, and the names of the JIT images,
 * trampolines and native entry points (kallsyms entries outside the image) as a generated
 * symbol file listed by qXfer:libraries:read, so `gdb -ex 'target remote :P'` needs no other step.
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { ArityError, UnknownSymbolError, type System } from '../../index.ts';
import { bootMachine } from '../session.ts';
import { BTF_KIND, BTF_INT_SIGNED } from '../../bpf/btf/btf.ts';
import { DEFAULT_IMAGE } from '../../kernel/image.ts';
import { GdbStub, type ElfSymbol, type GdbSessionEnd } from '../../emulator/gdbstub.ts';
import { bootAndLoad } from '../bpfobj.ts';
import { readGlobals } from './trace_prog.ts';
import { emit, parseInteger, UsageError, type OutputOptions } from '../output.ts';

/** A command whose call is prepared and waits for gdb; `report` prints its result afterwards. */
interface DrivenCall {
  sys: System;
  func: string;
  args: bigint[];
  report(rax: bigint): void;
  close(): void;
}

const USAGE = 'gdbserver [--port P] -- call FUNC ARG... | trace OBJ --call FUNC ARG... [--engine jit|interp] [--stats]';

export function register(program: Command, global: () => OutputOptions): void {
  program.command('gdbserver')
    .description('run a call under a gdb remote stub: it stops before its first instruction and waits for `target remote`')
    .option('--port <port>', 'TCP port on 127.0.0.1 (0: a free one, printed on stderr)', '0')
    .argument('<command...>', 'call FUNC ARG... | trace OBJ --call FUNC ARG... [--engine jit|interp] [--stats]')
    .allowUnknownOption() // COMMAND's own options and negative numbers are its words
    .action(async (words: string[], opts: { port: string }) => {
      const port = Number(parseInteger(opts.port, '--port'));
      if (port > 65535) throw new UsageError(`--port ${opts.port}: not a TCP port`);
      const driven = await prepare(words, global);
      try {
        await serve(driven, port);
      } finally {
        driven.close();
      }
    });
}

async function serve(d: DrivenCall, port: number): Promise<void> {
  const k = d.sys.kernel;
  const m = k.machine;
  const addr = k.addressOf(d.func);
  m.prepareCall(addr, d.args);
  const stub = await GdbStub.listen(m, { port, execFile: resolve(DEFAULT_IMAGE), symbols: () => runtimeSymbols(d.sys) });
  const say = (s: string): void => { process.stderr.write(`gdbserver: ${s}\n`); };
  say(`listening on 127.0.0.1:${stub.port}; stopped at ${m.describe(addr)}`);
  say(`connect: gdb -ex 'target remote 127.0.0.1:${stub.port}'`);
  const symfile = stub.symbolFile();
  if (symfile) say(`JIT/trampoline symbols: ${symfile} (gdb loads them as a library; by hand: add-symbol-file ${symfile})`);
  // Ctrl-C or a kill before gdb ends the session: close the stub so its temporary files go.
  const onSignal = (): void => stub.close();
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  const end: GdbSessionEnd = await stub.ended.finally(() => process.off('SIGINT', onSignal).off('SIGTERM', onSignal));
  switch (end.kind) {
    case 'exit':
      say(`the call returned: rax 0x${end.rax.toString(16)}`);
      d.report(end.rax);
      return;
    case 'detach': {
      say('gdb detached: the call runs on');
      const r = m.run();
      if (r.kind !== 'exit') throw new Error(`after detach: the call stopped (${r.kind}) at ${m.describe(r.rip)}`);
      d.report(r.rax);
      return;
    }
    case 'kill': throw new Error('killed by gdb before the call returned');
    case 'disconnect': throw new Error('gdb disconnected before the call returned');
    case 'closed': throw new Error('interrupted before the call returned');
  }
}

/** Code kallsyms names outside the kernel image: JIT images, trampolines, native entry points. */
function runtimeSymbols(sys: System): ElfSymbol[] {
  const segs = sys.kernel.segments;
  const inImage = (a: bigint): boolean => segs.some((s) => a >= s.start && a < s.start + BigInt(s.size));
  return sys.kernel.ksyms.all()
    .filter((s) => /^[TtWw]$/.test(s.type) && !inImage(s.address))
    .map((s) => ({ name: s.name, address: s.address, size: s.size, local: s.type === s.type.toLowerCase() }));
}

/** rax as FUNC's BTF return type (signed types sign-extended; undefined for void), as `call` prints it. */
function typedReturn(sys: System, func: string, rax: bigint): { ret: bigint | undefined; retType: string } {
  const proto = sys.btf.funcProto(func);
  if (!proto) return { ret: rax, retType: 'u64' };
  const rt = sys.btf.resolve(proto.sizeOrType);
  const retType = sys.btf.typeName(proto.sizeOrType);
  if (rt.kind === 0) return { ret: undefined, retType };
  const bits = rt.kind === BTF_KIND.PTR ? 64 : rt.sizeOrType * 8;
  const signed = (rt.kind === BTF_KIND.INT && (rt.intEncoding! & BTF_INT_SIGNED) !== 0) ||
    (rt.kind === BTF_KIND.ENUM && rt.enumValues!.some((v) => v.value < 0n));
  return { ret: signed ? BigInt.asIntN(bits, rax) : BigInt.asUintN(bits, rax), retType };
}

function checkCall(sys: System, func: string, args: readonly bigint[]): void {
  try {
    sys.kernel.addressOf(func);
  } catch (e) {
    if (e instanceof UnknownSymbolError) throw new UsageError(e.message);
    throw e;
  }
  const proto = sys.btf.funcProto(func);
  if (proto && proto.params!.length !== args.length) {
    const n = proto.params!.length;
    throw new UsageError(new ArityError(`${func} takes ${n} argument${n === 1 ? '' : 's'} (${sys.btf.typeName(proto.id).replace('(*)', func)}), got ${args.length}`).message);
  }
}

const intArgs = (raw: string[]): bigint[] => raw.map((a, i) => parseInteger(a, `argument ${i + 1}`));

/** Parses COMMAND and boots its machine, with the call not yet made. */
async function prepare(words: string[], global: () => OutputOptions): Promise<DrivenCall> {
  const [cmd, ...rest] = words;
  if (cmd === 'call') {
    const [func, ...raw] = rest;
    if (!func) throw new UsageError(`usage: ${USAGE}`);
    const args = intArgs(raw);
    const sys = await bootMachine();
    try { checkCall(sys, func, args); } catch (e) { sys.close(); throw e; }
    return {
      sys, func, args, close: () => sys.close(),
      report: (rax) => {
        const r = typedReturn(sys, func, rax);
        emit(global(), { function: func, args, ret: r.ret ?? null, ret_type: r.retType }, () => (r.ret === undefined ? '' : r.ret.toString()));
      },
    };
  }
  if (cmd === 'trace') return prepareTrace(rest, global);
  throw new UsageError(cmd === undefined ? `usage: ${USAGE}` : `gdbserver cannot drive '${cmd}' (it drives call and trace --call)`);
}

async function prepareTrace(words: string[], global: () => OutputOptions): Promise<DrivenCall> {
  const [path, ...rest] = words;
  if (!path || path.startsWith('--')) throw new UsageError(`usage: ${USAGE}`);
  let call: string[] | undefined, engine = 'jit', stats = false;
  for (let i = 0; i < rest.length; i++) {
    const w = rest[i]!;
    if (w === '--call') {
      call = [];
      while (i + 1 < rest.length && !rest[i + 1]!.startsWith('--')) call.push(rest[++i]!);
    } else if (w === '--engine' && i + 1 < rest.length) engine = rest[++i]!;
    else if (w === '--stats') stats = true;
    else throw new UsageError(`trace under gdbserver: unexpected '${w}' (usage: ${USAGE})`);
  }
  if (!call || call.length === 0) throw new UsageError('trace under gdbserver needs --call FUNC ARG...');
  const [func, ...raw] = call as [string, ...string[]];
  const args = intArgs(raw);
  const { sys, obj } = await bootAndLoad(path, engine);
  const close = (): void => { obj.close(); sys.close(); };
  try {
    checkCall(sys, func, args);
    if (stats) sys.bpfSys.statsEnabled = true;
    const attached = obj.attachTracing();
    if (attached.length === 0) throw new UsageError(`${obj.name} has no fentry/fexit programs`);
    return {
      sys, func, args, close,
      report: (rax) => {
        const ret = typedReturn(sys, func, rax).ret;
        const progs = attached.map((n) => {
          const p = sys.bpfSys.progFromFd(obj.findProgram(n)!.fd)!;
          return { name: n, run_cnt: p.runCnt.toString(), run_time_ns: p.runTimeNs.toString() };
        });
        const globals = readGlobals(sys, obj);
        emit(global(), { ret: ret?.toString() ?? null, globals, progs }, () => [
          `return value: ${ret ?? '(void)'}`,
          ...Object.entries(globals).map(([n, v]) => `${n} = ${Array.isArray(v) ? `[${v.join(', ')}]` : v}`),
          ...progs.map((p) => `prog ${p.name}: run_cnt ${p.run_cnt} run_time_ns ${p.run_time_ns}`),
        ].join('\n'));
      },
    };
  } catch (e) {
    close();
    throw e;
  }
}
