/**
 * @fileoverview Interpreter figures: BPF instructions per second for a tight ALU loop (64- and
 * 32-bit ops and a conditional jump), a memory loop (load, add, store over a buffer and the
 * stack), a bpf-to-bpf call loop, and the fixed cost of one run. Instructions are counted exactly by the interpreter; time
 * is the median of interleaved repetitions (test/bench/util.ts).
 */
import { pathToFileURL } from 'node:url';
import { Machine } from '../../emulator/machine.ts';
import { PROT_R, PROT_W } from '../../emulator/memory.ts';
import {
  BPF_ADD, BPF_AND, BPF_DW, BPF_JNE, BPF_LSH, BPF_MUL, BPF_RSH, BPF_SUB, BPF_W, BPF_XOR,
} from '../../bpf/isa/opcodes.ts';
import {
  alu32Imm, alu64Imm, alu64Reg, callLocal, exit, jmpImm, ldxMem, mov64Imm, mov64Reg, stxMem,
} from '../../bpf/isa/build.ts';
import type { Insn } from '../../bpf/isa/insn.ts';
import { bpfRun, stackRegion, type InterpEnv } from '../../bpf/interp/interpreter.ts';
import { interleave, median, report, type Line } from './util.ts';

const STACK = 0xffff888000100000n, DATA = 0xffffc90000000000n;

/** r1 = iterations: xor/add/mul/shift mixing, 10 instructions per iteration. */
const aluLoop: Insn[] = [
  mov64Imm(0, 1), mov64Imm(2, 7),
  alu64Reg(BPF_XOR, 0, 1), alu64Imm(BPF_ADD, 0, 0x1234), alu64Reg(BPF_MUL, 0, 2), alu64Imm(BPF_RSH, 0, 3),
  alu32Imm(BPF_ADD, 2, 3), alu64Imm(BPF_LSH, 2, 1), alu64Imm(BPF_AND, 2, 0xfff),
  alu64Imm(BPF_SUB, 1, 1), jmpImm(BPF_JNE, 1, 0, -9),
  exit(),
];
/** r1 = buffer, r2 = iterations: sum of 8-byte words, a running word stored back and on the stack. */
const memLoop: Insn[] = [
  mov64Imm(0, 0), mov64Reg(3, 1), mov64Imm(4, 0),
  ldxMem(BPF_DW, 5, 3, 0), alu64Reg(BPF_ADD, 0, 5), stxMem(BPF_DW, 3, 0, 8), ldxMem(BPF_W, 6, 10, -8),
  alu64Imm(BPF_ADD, 6, 1), stxMem(BPF_W, 10, 6, -8), alu64Imm(BPF_ADD, 4, 1), alu64Imm(BPF_AND, 4, 0xff),
  alu64Imm(BPF_SUB, 2, 1), jmpImm(BPF_JNE, 2, 0, -10),
  exit(),
];
/** r1 = iterations: each calls a 3-instruction subprogram. */
const callLoop: Insn[] = [
  mov64Imm(6, 0),
  callLocal(5), alu64Reg(BPF_ADD, 6, 0), alu64Imm(BPF_SUB, 1, 1), jmpImm(BPF_JNE, 1, 0, -4),
  mov64Reg(0, 6), exit(),
  mov64Imm(0, 1), alu64Imm(BPF_ADD, 0, 1), exit(),
];

export async function interpBench(): Promise<Line[]> {
  const m = new Machine();
  try {
    m.mem.map(STACK, 0x10000, PROT_R | PROT_W, { name: 'bpf stack' });
    m.mem.map(DATA, 0x1000, PROT_R | PROT_W, { name: 'data' });
    const env: InterpEnv = { mem: m.mem, stack: stackRegion(STACK, 0x10000) };
    const N = 200_000n;
    const runs = [
      () => bpfRun({ insns: aluLoop }, [N], env),
      () => bpfRun({ insns: memLoop }, [DATA, N], env),
      () => bpfRun({ insns: callLoop }, [N / 4n], env),
    ];
    const tiny = [mov64Imm(0, 0), exit()], R = 20_000;
    const counts = runs.map((f) => f().insns);
    const times = interleave(7, [...runs, () => { for (let k = 0; k < R; k++) bpfRun({ insns: tiny }, [DATA], env); }]);
    const rate = (k: number): number => Math.round(counts[k]! / (median(times[k]!) / 1000));
    return [
      ['interp ALU loop, BPF insns/s', rate(0)],
      ['interp memory loop, BPF insns/s', rate(1)],
      ['interp bpf-to-bpf call loop, BPF insns/s', rate(2)],
      ['interp one run of `r0 = 0; exit` (stack frame, registers), ns', Math.round(median(times[3]!) * 1e6 / R)],
    ];
  } finally {
    m.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) report(await interpBench());
