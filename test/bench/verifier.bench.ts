/**
 * @fileoverview Verifier figures: the clang-built programs of images/bpf loaded through bpf()
 * with log_level 4 (instructions processed, states, the verification time the log reports), the
 * selftest tables (programs verified per second), and a program that explores 2^40 paths until
 * the 1M-instruction complexity limit (the time to the limit, instructions walked per second).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { boot } from '../../index.ts';
import { BpfObject, type ObjectLoadOptions } from '../../bpf/libbpf/load.ts';
import { bpfCheck } from '../../bpf/verifier/verifier.ts';
import { BPF_FUNC } from '../../bpf/helpers/func_ids.ts';
import { BPF_ALU64, BPF_JMP, BPF_ADD, BPF_AND, BPF_JEQ, BPF_K, BPF_X, BPF_MOV, BPF_CALL, BPF_EXIT } from '../../bpf/isa/opcodes.ts';
import type { Insn } from '../../bpf/isa/insn.ts';
import { runCase, type VCase } from '../bpf/verifier/harness.ts';
import { TABLES } from '../bpf/verifier/tables.ts';
import { interleave, median, report, type Line } from './util.ts';

const i = (code: number, dst = 0, src = 0, off = 0, imm = 0): Insn => ({ code, dst, src, off, imm });

/** 40 diamonds adding distinct powers of two to r6, which ends as a stack offset (precise). */
function explosion(n: number): Insn[] {
  const p: Insn[] = [i(BPF_ALU64 | BPF_MOV | BPF_K, 6)];
  for (let k = 0; k < n; k++) {
    p.push(i(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC.get_prandom_u32), i(BPF_ALU64 | BPF_AND | BPF_K, 0, 0, 0, 1),
      i(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1, 0), i(BPF_ALU64 | BPF_ADD | BPF_K, 6, 0, 0, 1 << (k % 30)));
  }
  p.push(i(BPF_ALU64 | BPF_AND | BPF_K, 6, 0, 0, 0xff), i(BPF_ALU64 | BPF_MOV | BPF_X, 2, 10), i(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, -256),
    i(BPF_ALU64 | BPF_ADD | BPF_X, 2, 6), i(BPF_ALU64 | BPF_MOV | BPF_K, 0), i(BPF_JMP | BPF_EXIT));
  return p;
}

const OBJ_DIR = fileURLToPath(new URL('../../images/build/bpf/', import.meta.url));
/** Each object, and the program of another that its fentry/fexit programs attach to. */
const OBJECTS: [obj: string, target?: [obj: string, prog: string]][] = [
  ['objtest'], ['fentry_test'], ['fexit_test'], ['test_pkt_access'], ['xdp_filter'],
  ['fexit_bpf2bpf', ['test_pkt_access', 'test_pkt_access']], ['xdp_trace', ['xdp_filter', 'xdp_filter']],
];

/** The figures of each program as PROG_LOAD's log (level 4) reports them. */
async function objectLines(): Promise<Line[]> {
  const sys = await boot();
  const lines: Line[] = [];
  const open = (name: string): BpfObject => BpfObject.open(new Uint8Array(readFileSync(`${OBJ_DIR}${name}.bpf.o`)), name, sys.objectLoadOptions);
  try {
    for (const [name, target] of OBJECTS) {
      const logs: [string, string][] = [];
      const opts: ObjectLoadOptions = { ...sys.objectLoadOptions, logLevel: 4, onLog: (p, log) => { logs.push([p.name, log]); } };
      const tgt = target && open(target[0]).load(sys.bpfSys, sys.objectLoadOptions);
      const obj = open(name).load(sys.bpfSys, tgt ? { ...opts, attachProgFd: tgt.findProgram(target[1])!.fd } : opts);
      for (const [prog, log] of logs) {
        const num = (re: RegExp): number => Number(re.exec(log)?.[1] ?? NaN);
        lines.push(
          [`verifier.${name}.${prog}.insns_processed`, num(/processed (\d+) insns/)],
          [`verifier.${name}.${prog}.total_states`, num(/total_states (\d+)/)],
          [`verifier.${name}.${prog}.verification_us`, num(/verification time (\d+) usec/)],
        );
      }
      obj.close();
      tgt?.close();
    }
  } finally { sys.close(); }
  return lines;
}

export async function verifierBench(): Promise<Line[]> {
  const lines = await objectLines();
  // The loops table is left out: two of its programs run to the complexity limit on purpose.
  const cases: VCase[] = TABLES.filter(([name]) => name !== 'loops').flatMap(([, cs]) => cs);
  const [tTables] = interleave(5, [() => { for (const c of cases) runCase(c); }]);
  const big = explosion(40);
  let processed = 0;
  const [tLimit] = interleave(2, [() => { processed = bpfCheck(big, { progType: 1 }).stats.insnProcessed; }]);
  const limitMs = median(tLimit!);
  return [
    ...lines,
    ['verifier.selftest_programs', cases.length],
    ['verifier.selftest_programs_per_sec', Math.round(cases.length / (median(tTables!) / 1000))],
    ['verifier.complexity_limit_ms', +limitMs.toFixed(1)],
    ['verifier.insns_per_sec_at_limit', Math.round(processed / (limitMs / 1000))],
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) report(await verifierBench());
