/**
 * @fileoverview `bpfemu prog load OBJ [--engine jit|interp] [--section NAME] [--log [LEVEL]]`
 * (load a clang-built object, or one program of it, through bpf() and show its programs as
 * `bpftool prog show` does, with the verifier's log; a rejected program's log is printed and
 * the command exits 1) and `bpfemu prog run OBJ PROG [--data-in HEX] [--repeat N]`
 * (BPF_PROG_TEST_RUN, printed as `bpftool prog run` prints it).
 */
import { session, release, releaseObject } from '../session.ts';
import type { Command } from 'commander';
import { BPF_PROG_TEST_RUN } from '../../bpf/syscall/attr.ts';
import { PROG_TYPES } from '../../bpf/prog_types.ts';
import { errnoName, LoadError } from '../../bpf/libbpf/load.ts';
import { parseLogLevel, progLoadOptions, progLogText, type ProgLog } from '../proglog.ts';
import { bootAndLoad, findProgram, hexBytes } from '../bpfobj.ts';
import { emit, parseInteger, UsageError, type OutputOptions } from '../output.ts';
import type { System } from '../../index.ts';
import type { BpfObject } from '../../bpf/libbpf/load.ts';
import type { BpfProgObj } from '../../bpf/syscall/objects.ts';
import { dumpXlated } from '../../bpf/asm/disassembler.ts';
import { bpfFuncName } from '../../bpf/helpers/index.ts';
import { encode } from '../../bpf/isa/insn.ts';
import type { Insn } from '../../emulator/capstone.ts';
import { registerAttach } from './prog_attach.ts';

/** What `bpftool prog show` shows of one program. */
export function progShow(sys: System, fd: number) {
  return progShowOf(sys, sys.bpfSys.progFromFd(fd)!);
}

export function progShowOf(sys: System, p: BpfProgObj) {
  const jited = p.prog.jit?.image.code.length ?? 0;
  return {
    id: p.id, type: PROG_TYPES[p.type]?.name ?? String(p.type), name: p.prog.name, tag: p.prog.tag, gpl_compatible: p.gplCompatible,
    loaded_at: Number(p.loadTime), uid: p.uid, bytes_xlated: p.prog.patched.insns.length * 8, jited: jited > 0,
    bytes_jited: jited, bytes_memlock: 4096 * Math.ceil((p.prog.patched.insns.length * 8 + 4096) / 4096),
    map_ids: p.maps.map((m) => m.id), btf_id: p.btf?.id ?? 0,
    ...(sys.bpfSys.statsEnabled ? { run_time_ns: Number(p.runTimeNs), run_cnt: Number(p.runCnt) } : {}),
  };
}

export function progShowText(s: ReturnType<typeof progShow>): string {
  return [
    `${s.id}: ${s.type}  name ${s.name}  tag ${s.tag}${s.gpl_compatible ? '  gpl' : ''}${'run_cnt' in s ? `  run_time_ns ${s.run_time_ns} run_cnt ${s.run_cnt}` : ''}`,
    `\tloaded_at ${s.loaded_at}  uid ${s.uid}`,
    `\txlated ${s.bytes_xlated}B  ${s.jited ? `jited ${s.bytes_jited}B` : 'not jited'}  memlock ${s.bytes_memlock}B${s.map_ids.length ? `  map_ids ${s.map_ids.join(',')}` : ''}`,
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

/** `id N` → N (bpftool's way of naming a program or map). */
export function parseId(words: string[], what: string): number | undefined {
  if (words.length === 0) return undefined;
  if (words[0] !== 'id' || words.length !== 2) throw new UsageError(`expected 'id N' after ${what}, got '${words.join(' ')}'`);
  const id = Number(parseInteger(words[1]!, 'id'));
  if (id <= 0 || id > 0x7fffffff) throw new UsageError(`id ${words[1]} out of range`);
  return id;
}

export function register(program: Command, global: () => OutputOptions): void {
  const prog = program.command('prog').description('BPF programs (as bpftool prog)');
  prog.command('show').alias('list')
    .description('show the loaded programs (all, or `id N`)')
    .argument('[sel...]', 'id N')
    .action(async (sel: string[]) => {
      const id = parseId(sel, 'prog show');
      const sys = await session();
      try {
        const progs = [...sys.bpfSys.progs.values()].filter((p) => id === undefined || p.id === id).sort((a, b) => a.id - b.id);
        if (id !== undefined && progs.length === 0) throw new Error(`get by id (${id}): No such file or directory`);
        const shown = progs.map((p) => progShowOf(sys, p));
        emit(global(), id !== undefined ? shown[0] : shown, () => shown.map(progShowText).join('\n'));
      } finally { release(sys); }
    });
  prog.command('dump')
    .description('dump a program: xlated (BPF, as the verifier prints it) or jited (x86-64, with symbols)')
    .argument('<kind>', 'xlated or jited')
    .argument('<sel...>', 'id N [opcodes]')
    .action(async (kind: string, sel: string[]) => {
      if (kind !== 'xlated' && kind !== 'jited') throw new UsageError(`prog dump ${kind}: expected xlated or jited`);
      const opcodes = sel.at(-1) === 'opcodes';
      const id = parseId(opcodes ? sel.slice(0, -1) : sel, `prog dump ${kind}`)!;
      const sys = await session();
      try {
        const p = sys.bpfSys.progs.find(id);
        if (!p) throw new Error(`get by id (${id}): No such file or directory`);
        if (kind === 'xlated') {
          const insns = p.prog.patched.insns;
          // Map pointers as bpftool shows them: map[id:N], or map[id:N][0]+off for a value.
          const immName = (_insn: unknown, imm: bigint): string | undefined => {
            for (const m of p.maps) {
              imm = BigInt.asUintN(64, imm);
              if (imm === m.kaddr) return `map[id:${m.id}]`;
              const base = m.impl.lookupElem(new Uint8Array(m.keySize));
              if (base !== undefined && imm >= base && imm < base + BigInt(m.valueSize)) return `map[id:${m.id}][0]+${imm - base}`;
            }
            return undefined;
          };
          // ld_imm64 of a map: the address the load resolved, shown by immName.
          const resolved = insns.map((ins) => ({ ...ins }));
          resolved.forEach((ins, k) => {
            const v = ins.code === 0x18 && ins.src ? p.prog.ldImm64.get(p.prog.patched.newToOrig[k]!) : undefined;
            if (v === undefined) return;
            ins.src = 0;
            ins.imm = Number(BigInt.asIntN(32, v));
            resolved[k + 1]!.imm = Number(BigInt.asIntN(32, v >> 32n));
          });
          const lines = dumpXlated(resolved, { helperName: bpfFuncName, immName: (insn, imm) => immName(insn, imm) })
            .map((l) => l.replace(/^(\d+):/, (_m, n: string) => `${n.padStart(4)}:`));
          const bytes = encode(insns);
          emit(global(), lines.map((l) => ({ insn: l })), () => lines.map((l) => {
            if (!opcodes) return l;
            const n = Number(/^\s*(\d+):/.exec(l)?.[1] ?? 0);
            return `${l}\n       ${Buffer.from(bytes.subarray(n * 8, n * 8 + (insns[n]?.code === 0x18 ? 16 : 8))).toString('hex').replace(/(..)(?!$)/g, '$1 ')}`;
          }).join('\n'));
        } else {
          if (!p.prog.jit) throw new Error(`program ${id} is not JIT-compiled`);
          const { image, code } = p.prog.jit.image;
          const insns = sys.disassembler.disasm(code, image);
          const sym = (a: bigint): string | undefined => sys.kernel.symbolize(a);
          emit(global(), insns.map((i: Insn) => ({ pc: `0x${i.address.toString(16)}`, operation: i.mnemonic, operands: i.opStr, ...(opcodes ? { opcodes: Buffer.from(i.bytes).toString('hex') } : {}) })),
            () => insns.map((i: Insn) => {
              const head = p.prog.jit!.funcAddrs.indexOf(i.address) >= 0 ? `${sym(i.address)}:\n` : '';
              return `${head}${(i.address - image).toString(16).padStart(4, ' ')}:\t${`${i.mnemonic} ${i.opStr}`.trimEnd()}${opcodes ? `\n\t${Buffer.from(i.bytes).toString('hex').replace(/(..)(?!$)/g, '$1 ')}` : ''}`;
            }).join('\n'));
        }
      } finally { release(sys); }
    });
  prog.command('load')
    .description('load a BPF object file through bpf() and show its programs and maps')
    .argument('<obj>', 'an ELF object built by clang -target bpf')
    .option('--engine <engine>', 'jit or interp', 'jit')
    .option('--section <name>', 'load only this program (section or function name)')
    .option('--log [level]', "print each program's verifier log (log_level 1, or the level given)")
    .action(async (path: string, opts: { engine: string; section?: string; log?: string | true }) => {
      const level = parseLogLevel(opts.log), logs: ProgLog[] = [];
      let loaded;
      try {
        loaded = await bootAndLoad(path, opts.engine, progLoadOptions(opts.section, level, logs));
      } catch (e) {
        // A rejected program: the verifier's log on stdout, the error on stderr, exit 1.
        const failed = logs.filter((l) => level || l === logs.at(-1));
        if (e instanceof LoadError && failed.length) emit(global(), { logs: failed }, () => progLogText(failed));
        throw e;
      }
      const { sys, obj } = loaded;
      try {
        if (obj.programs.size === 0 && opts.section !== undefined)
          throw new UsageError(`no program '${opts.section}' in ${obj.name} (programs: ${obj.spec.programs.map((p) => `${p.secName} (${p.name})`).join(', ')})`);
        const shown = [...obj.programs.values()].map((p) => progShow(sys, p.fd));
        const maps = [...obj.maps.values()].map((m) => ({ id: m.id, name: m.spec.name, type: m.spec.type, key: m.spec.keySize, value: m.spec.valueSize, max_entries: m.spec.maxEntries }));
        emit(global(), { programs: shown, maps, ...(level ? { logs } : {}) }, () => [...(level ? [progLogText(logs)] : []), ...shown.map(progShowText),
          ...maps.map((m) => `map ${m.id}: ${m.name}  key ${m.key}B  value ${m.value}B  max_entries ${m.max_entries}`)].join('\n'));
      } finally { releaseObject(obj); release(sys); }
    });
  registerAttach(prog, global);
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
      } finally { releaseObject(obj); release(sys); }
    });
}
