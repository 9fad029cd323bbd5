/**
 * @fileoverview Selftests of 32-bit jumps: each comparison on the low half, and the bounds it
 * lets the verifier deduce so that a dead branch (which would dereference a scalar) is never
 * walked (verifier/jmp32.c).
 */
import {
  prog, BPF_LDX_MEM, BPF_EXIT_INSN, BPF_MOV64_REG, BPF_MOV64_IMM, BPF_ALU64_IMM, BPF_ALU32_IMM, BPF_LD_IMM64, BPF_JMP_IMM,
  BPF_JMP_REG, BPF_JMP32_IMM, BPF_JMP32_REG, BPF_JMP_A, BPF_EMIT_CALL, BPF_FUNC,
  BPF_DW, BPF_W, BPF_B, BPF_ADD, BPF_LSH, BPF_RSH, BPF_OR, BPF_MOV, BPF_JEQ, BPF_JNE, BPF_JSET, BPF_JGT, BPF_JGE, BPF_JLT, BPF_JLE,
  BPF_JSGT, BPF_JSGE, BPF_JSLT, BPF_JSLE,
  type VCase, R0, R1, R2, R3, R4, R7, R8, R9,
} from './harness.ts';
import { SKB } from './cases_pkt.ts';

const SCHED_CLS = 3;
const UINT_MAX = 0xffffffff, INT_MAX = 0x7fffffff;
/** test_verifier's BPF_DIRECT_PKT_R2: r2 = data with 8 bytes proven, r0 = 0. */
const DIRECT_PKT_R2 = prog(BPF_MOV64_IMM(R0, 0), BPF_LDX_MEM(BPF_W, R2, R1, SKB.data), BPF_LDX_MEM(BPF_W, R3, R1, SKB.data_end),
  BPF_MOV64_REG(R4, R2), BPF_ALU64_IMM(BPF_ADD, R4, 8), BPF_JMP_REG(BPF_JLE, R4, R3, 1), BPF_EXIT_INSN());
/** BPF_RAND_UEXT_R7: r7 = a random number in [0, 2^31). */
const RAND_UEXT_R7 = prog(BPF_EMIT_CALL(BPF_FUNC.get_prandom_u32), BPF_MOV64_REG(R7, R0), BPF_ALU64_IMM(BPF_LSH, R7, 33), BPF_ALU64_IMM(BPF_RSH, R7, 33));
/** BPF_RAND_SEXT_R7: r7 = a random number with bit 31 set. */
const RAND_SEXT_R7 = prog(BPF_EMIT_CALL(BPF_FUNC.get_prandom_u32), BPF_MOV64_REG(R7, R0), BPF_ALU64_IMM(BPF_OR, R7, 0x80000000));
const loadR7 = BPF_LDX_MEM(BPF_DW, R7, R2, 0);
const tailK = prog(BPF_EXIT_INSN(), BPF_ALU32_IMM(BPF_MOV, R0, 2), BPF_EXIT_INSN());
const K = (descr: string, op: number, imm: number): VCase =>
  ({ descr, insns: prog(DIRECT_PKT_R2, loadR7, BPF_JMP32_IMM(op, R7, imm, 1), tailK), progType: SCHED_CLS, result: 'accept' });
const X = (descr: string, op: number, r8: bigint): VCase =>
  ({ descr, insns: prog(DIRECT_PKT_R2, BPF_LD_IMM64(R8, r8), loadR7, BPF_JMP32_REG(op, R7, R8, 1), tailK), progType: SCHED_CLS, result: 'accept' });
/** min/max deduction: the second test is known from the first, so the dereference of R0 is dead. */
const MM = (descr: string, rand: ReturnType<typeof prog>, op32: number, r8: bigint, second: ReturnType<typeof BPF_JMP_IMM>): VCase => ({
  descr, insns: prog(rand, BPF_ALU32_IMM(BPF_MOV, R0, 2), BPF_LD_IMM64(R8, r8), BPF_JMP32_REG(op32, R7, R8, 1), BPF_EXIT_INSN(), second,
    BPF_LDX_MEM(BPF_DW, R0, R0, 0), BPF_EXIT_INSN()),
  result: 'accept',
});
const hi1 = (lo: number) => BigInt(lo >>> 0) | (1n << 32n);

export const JMP32: VCase[] = [
  {
    descr: 'jset32: BPF_K',
    insns: prog(DIRECT_PKT_R2, loadR7, BPF_JMP32_IMM(BPF_JSET, R7, -2, 1), BPF_JMP_A(1), BPF_EXIT_INSN(), BPF_JMP32_IMM(BPF_JSET, R7, 1, 1),
      BPF_EXIT_INSN(), BPF_MOV64_IMM(R0, 2), BPF_EXIT_INSN()),
    progType: SCHED_CLS, result: 'accept',
  },
  {
    descr: 'jset32: BPF_X',
    insns: prog(DIRECT_PKT_R2, loadR7, BPF_LD_IMM64(R8, 0x8000000000000000n), BPF_JMP32_REG(BPF_JSET, R7, R8, 1), BPF_JMP_A(1), BPF_EXIT_INSN(),
      BPF_LD_IMM64(R8, 0x8000000000000001n), BPF_JMP32_REG(BPF_JSET, R7, R8, 1), BPF_EXIT_INSN(), BPF_MOV64_IMM(R0, 2), BPF_EXIT_INSN()),
    progType: SCHED_CLS, result: 'accept',
  },
  {
    descr: 'jset32: ignores upper bits',
    insns: prog(BPF_MOV64_IMM(R0, 0), BPF_LD_IMM64(R7, 0x8000000000000000n), BPF_LD_IMM64(R8, 0x8000000000000000n), BPF_JMP_REG(BPF_JSET, R7, R8, 1),
      BPF_EXIT_INSN(), BPF_JMP32_REG(BPF_JSET, R7, R8, 1), BPF_MOV64_IMM(R0, 2), BPF_EXIT_INSN()),
    result: 'accept',
  },
  {
    descr: 'jset32: min/max deduction',
    insns: prog(RAND_UEXT_R7, BPF_MOV64_IMM(R0, 0), BPF_JMP32_IMM(BPF_JSET, R7, 0x10, 1), BPF_EXIT_INSN(), BPF_JMP32_IMM(BPF_JGE, R7, 0x10, 1),
      BPF_LDX_MEM(BPF_B, R8, R9, 0), BPF_EXIT_INSN()),
    result: 'accept',
  },
  K('jeq32: BPF_K', BPF_JEQ, -1),
  X('jeq32: BPF_X', BPF_JEQ, 0x7000000000000001n),
  {
    descr: 'jeq32: min/max deduction',
    insns: prog(RAND_UEXT_R7, BPF_MOV64_IMM(R0, 0), BPF_JMP32_IMM(BPF_JEQ, R7, 0x10, 1), BPF_EXIT_INSN(), BPF_JMP32_IMM(BPF_JSGE, R7, 0xf, 1),
      BPF_LDX_MEM(BPF_B, R8, R9, 0), BPF_EXIT_INSN()),
    result: 'accept',
  },
  K('jne32: BPF_K', BPF_JNE, -1),
  X('jne32: BPF_X', BPF_JNE, 0x8000000000000001n),
  {
    descr: 'jne32: min/max deduction',
    insns: prog(RAND_UEXT_R7, BPF_MOV64_IMM(R0, 0), BPF_JMP32_IMM(BPF_JNE, R7, 0x10, 1), BPF_JMP_IMM(BPF_JNE, R7, 0x10, 1), BPF_EXIT_INSN(),
      BPF_LDX_MEM(BPF_B, R8, R9, 0), BPF_EXIT_INSN()),
    result: 'accept',
  },
  K('jge32: BPF_K', BPF_JGE, UINT_MAX - 1),
  X('jge32: BPF_X', BPF_JGE, BigInt(UINT_MAX) | (1n << 32n)),
  MM('jge32: min/max deduction', RAND_UEXT_R7, BPF_JGE, hi1(0x7ffffff0), BPF_JMP32_IMM(BPF_JGE, R7, 0x7ffffff0, 1)),
  K('jgt32: BPF_K', BPF_JGT, UINT_MAX - 1),
  X('jgt32: BPF_X', BPF_JGT, BigInt(UINT_MAX - 1) | (1n << 32n)),
  MM('jgt32: min/max deduction', RAND_UEXT_R7, BPF_JGT, hi1(0x7ffffff0), BPF_JMP_IMM(BPF_JGT, R7, 0x7ffffff0, 1)),
  K('jle32: BPF_K', BPF_JLE, INT_MAX),
  X('jle32: BPF_X', BPF_JLE, BigInt(INT_MAX - 1) | (2n << 32n)),
  MM('jle32: min/max deduction', RAND_UEXT_R7, BPF_JLE, hi1(0x7ffffff0), BPF_JMP32_IMM(BPF_JLE, R7, 0x7ffffff0, 1)),
  K('jlt32: BPF_K', BPF_JLT, INT_MAX),
  X('jlt32: BPF_X', BPF_JLT, BigInt(INT_MAX) | (2n << 32n)),
  MM('jlt32: min/max deduction', RAND_UEXT_R7, BPF_JLT, hi1(0x7ffffff0), BPF_JMP_IMM(BPF_JSLT, R7, 0x7ffffff0, 1)),
  K('jsge32: BPF_K', BPF_JSGE, -1),
  X('jsge32: BPF_X', BPF_JSGE, BigInt(0xffffffff) | (2n << 32n)),
  MM('jsge32: min/max deduction', RAND_UEXT_R7, BPF_JSGE, hi1(0x7ffffff0), BPF_JMP_IMM(BPF_JSGE, R7, 0x7ffffff0, 1)),
  K('jsgt32: BPF_K', BPF_JSGT, -1),
  X('jsgt32: BPF_X', BPF_JSGT, hi1(0x7ffffffe)),
  MM('jsgt32: min/max deduction', RAND_SEXT_R7, BPF_JSGT, hi1(-2), BPF_JMP_IMM(BPF_JSGT, R7, -2, 1)),
  K('jsle32: BPF_K', BPF_JSLE, -1),
  X('jsle32: BPF_X', BPF_JSLE, hi1(0x7ffffffe)),
  MM('jsle32: min/max deduction', RAND_UEXT_R7, BPF_JSLE, hi1(0x7ffffff0), BPF_JMP_IMM(BPF_JSLE, R7, 0x7ffffff0, 1)),
];

export { BPF_W, BPF_JSLT };
