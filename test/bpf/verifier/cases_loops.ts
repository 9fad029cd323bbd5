/**
 * @fileoverview Selftests of bounded loops (v5.3+: back-edges allowed for privileged programs,
 * each iteration verified until the bound ends it), infinite-loop detection and the
 * 1M-instruction complexity limit (verifier/loops1.c).
 */
import {
  prog, BPF_EXIT_INSN, BPF_MOV64_REG, BPF_MOV64_IMM, BPF_ALU64_IMM, BPF_ALU64_REG, BPF_JMP_IMM, BPF_JMP_REG, BPF_JMP32_IMM,
  BPF_JMP_A, BPF_EMIT_CALL, BPF_RAW_INSN, BPF_FUNC,
  BPF_ADD, BPF_SUB, BPF_AND, BPF_JEQ, BPF_JNE, BPF_JGT, BPF_JLT, BPF_JSLT, BPF_JMP, BPF_CALL,
  type VCase, R0, R1, R2, R6,
} from './harness.ts';

const TRACEPOINT = 5, XDP = 6;
const CALL = (imm: number) => BPF_RAW_INSN(BPF_JMP | BPF_CALL, 0, 1, 0, imm);
const tp = (x: Omit<VCase, 'progType'>): VCase => ({ ...x, progType: TRACEPOINT });

export const LOOPS: VCase[] = [
  tp({ descr: 'bounded loop, count to 4', insns: prog(BPF_MOV64_IMM(R0, 0), BPF_ALU64_IMM(BPF_ADD, R0, 1), BPF_JMP_IMM(BPF_JLT, R0, 4, -2), BPF_EXIT_INSN()), result: 'accept' }),
  tp({ descr: 'bounded loop, count to 20', insns: prog(BPF_MOV64_IMM(R0, 0), BPF_ALU64_IMM(BPF_ADD, R0, 3), BPF_JMP_IMM(BPF_JLT, R0, 20, -2), BPF_EXIT_INSN()), result: 'accept' }),
  tp({
    descr: 'bounded loop, count from positive unknown to 4',
    insns: prog(BPF_EMIT_CALL(BPF_FUNC.get_prandom_u32), BPF_JMP_IMM(BPF_JSLT, R0, 0, 2), BPF_ALU64_IMM(BPF_ADD, R0, 1), BPF_JMP_IMM(BPF_JLT, R0, 4, -2), BPF_EXIT_INSN()),
    result: 'accept',
  }),
  tp({
    descr: 'bounded loop, count from totally unknown to 4',
    insns: prog(BPF_EMIT_CALL(BPF_FUNC.get_prandom_u32), BPF_ALU64_IMM(BPF_ADD, R0, 1), BPF_JMP_IMM(BPF_JLT, R0, 4, -2), BPF_EXIT_INSN()),
    result: 'accept',
  }),
  tp({ descr: 'bounded loop, count to 4 with equality', insns: prog(BPF_MOV64_IMM(R0, 0), BPF_ALU64_IMM(BPF_ADD, R0, 1), BPF_JMP_IMM(BPF_JNE, R0, 4, -2), BPF_EXIT_INSN()), result: 'accept' }),
  tp({
    descr: 'bounded loop, start in the middle',
    insns: prog(BPF_MOV64_IMM(R0, 0), BPF_JMP_A(1), BPF_ALU64_IMM(BPF_ADD, R0, 1), BPF_JMP_IMM(BPF_JLT, R0, 4, -2), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'back-edge',
  }),
  tp({
    descr: 'bounded loop containing a forward jump',
    insns: prog(BPF_MOV64_IMM(R0, 0), BPF_ALU64_IMM(BPF_ADD, R0, 1), BPF_JMP_REG(BPF_JEQ, R0, R0, 0), BPF_JMP_IMM(BPF_JLT, R0, 4, -3), BPF_EXIT_INSN()),
    result: 'accept',
  }),
  tp({
    descr: 'bounded loop that jumps out rather than in',
    insns: prog(BPF_MOV64_IMM(R6, 0), BPF_ALU64_IMM(BPF_ADD, R6, 1), BPF_JMP_IMM(BPF_JGT, R6, 10000, 2), BPF_EMIT_CALL(BPF_FUNC.get_prandom_u32),
      BPF_JMP_A(-4), BPF_EXIT_INSN()),
    result: 'accept',
  }),
  tp({
    descr: 'infinite loop after a conditional jump',
    insns: prog(BPF_MOV64_IMM(R0, 5), BPF_JMP_IMM(BPF_JLT, R0, 4, 2), BPF_ALU64_IMM(BPF_ADD, R0, 1), BPF_JMP_A(-2), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'BPF program is too large. Processed 1000001 insn', errno: 7, insnProcessed: 1000001,
  }),
  tp({
    descr: 'bounded recursion',
    insns: prog(BPF_MOV64_IMM(R1, 0), CALL(1), BPF_EXIT_INSN(), BPF_ALU64_IMM(BPF_ADD, R1, 1), BPF_MOV64_REG(R0, R1), BPF_JMP_IMM(BPF_JLT, R1, 4, 1),
      BPF_EXIT_INSN(), CALL(-5), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'back-edge',
  }),
  tp({ descr: 'infinite loop in two jumps', insns: prog(BPF_MOV64_IMM(R0, 0), BPF_JMP_A(0), BPF_JMP_IMM(BPF_JLT, R0, 4, -2), BPF_EXIT_INSN()), result: 'reject', errstr: 'loop detected' }),
  tp({
    descr: 'infinite loop: three-jump trick',
    insns: prog(BPF_MOV64_IMM(R0, 0), BPF_ALU64_IMM(BPF_ADD, R0, 1), BPF_ALU64_IMM(BPF_AND, R0, 1), BPF_JMP_IMM(BPF_JLT, R0, 2, 1), BPF_EXIT_INSN(),
      BPF_ALU64_IMM(BPF_ADD, R0, 1), BPF_ALU64_IMM(BPF_AND, R0, 1), BPF_JMP_IMM(BPF_JLT, R0, 2, 1), BPF_EXIT_INSN(),
      BPF_ALU64_IMM(BPF_ADD, R0, 1), BPF_ALU64_IMM(BPF_AND, R0, 1), BPF_JMP_IMM(BPF_JLT, R0, 2, -11), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'loop detected',
  }),
  { descr: 'not-taken loop with back jump to 1st insn', insns: prog(BPF_MOV64_IMM(R0, 123), BPF_JMP_IMM(BPF_JEQ, R0, 4, -2), BPF_EXIT_INSN()), result: 'accept', progType: XDP },
  {
    descr: 'taken loop with back jump to 1st insn',
    insns: prog(BPF_MOV64_IMM(R1, 10), BPF_MOV64_IMM(R2, 0), CALL(1), BPF_EXIT_INSN(), BPF_ALU64_REG(BPF_ADD, R2, R1), BPF_ALU64_IMM(BPF_SUB, R1, 1),
      BPF_JMP_IMM(BPF_JNE, R1, 0, -3), BPF_MOV64_REG(R0, R2), BPF_EXIT_INSN()),
    result: 'accept', progType: XDP,
  },
  {
    descr: 'taken loop with back jump to 1st insn, 2',
    insns: prog(BPF_MOV64_IMM(R1, 10), BPF_MOV64_IMM(R2, 0), CALL(1), BPF_EXIT_INSN(), BPF_ALU64_REG(BPF_ADD, R2, R1), BPF_ALU64_IMM(BPF_SUB, R1, 1),
      BPF_JMP32_IMM(BPF_JNE, R1, 0, -3), BPF_MOV64_REG(R0, R2), BPF_EXIT_INSN()),
    result: 'accept', progType: XDP,
  },
];
