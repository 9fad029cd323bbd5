/**
 * @fileoverview Selftests of direct packet access for tc programs (__sk_buff data/data_end):
 * bounds proven against pkt_end on each branch direction, arithmetic on packet pointers,
 * alignment, and what socket filters may not see (verifier/direct_packet_access.c).
 */
import {
  prog, BPF_ST_MEM, BPF_STX_MEM, BPF_LDX_MEM, BPF_EXIT_INSN, BPF_MOV64_REG, BPF_MOV64_IMM, BPF_ALU64_IMM, BPF_ALU64_REG,
  BPF_JMP_IMM, BPF_JMP_REG, BPF_JMP_A, BPF_STX_XADD,
  BPF_DW, BPF_W, BPF_B, BPF_ADD, BPF_SUB, BPF_AND, BPF_LSH, BPF_RSH, BPF_MUL, BPF_JGT, BPF_JGE,
  type VCase, R0, R1, R2, R3, R4, R5, R6, R7, R10,
} from './harness.ts';

export const SCHED_CLS = 3;
/** struct __sk_buff offsets */
export const SKB = { len: 0, mark: 8, data: 76, data_end: 80, data_meta: 140 } as const;
const ldData = (dst: number) => BPF_LDX_MEM(BPF_W, dst, R1, SKB.data);
const ldEnd = (dst: number) => BPF_LDX_MEM(BPF_W, dst, R1, SKB.data_end);
/** r2 = data, r3 = data_end, r0 = r2 + n */
const pkt = (n: number) => prog(ldData(R2), ldEnd(R3), BPF_MOV64_REG(R0, R2), BPF_ALU64_IMM(BPF_ADD, R0, n));
const tc = (c: Omit<VCase, 'progType'>): VCase => ({ ...c, progType: SCHED_CLS });

export const PKT: VCase[] = [
  tc({ descr: 'pkt_end - pkt_start is allowed', insns: prog(ldEnd(R0), ldData(R2), BPF_ALU64_REG(BPF_SUB, R0, R2), BPF_EXIT_INSN()), result: 'accept' }),
  tc({ descr: 'direct packet access: test1', insns: prog(pkt(8), BPF_JMP_REG(BPF_JGT, R0, R3, 1), BPF_LDX_MEM(BPF_B, R0, R2, 0), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()), result: 'accept' }),
  tc({
    descr: 'direct packet access: test2',
    insns: prog(BPF_MOV64_IMM(R0, 1), ldEnd(R4), ldData(R3), BPF_MOV64_REG(R5, R3), BPF_ALU64_IMM(BPF_ADD, R5, 14), BPF_JMP_REG(BPF_JGT, R5, R4, 15),
      BPF_LDX_MEM(BPF_B, R0, R3, 7), BPF_LDX_MEM(BPF_B, R4, R3, 12), BPF_ALU64_IMM(BPF_MUL, R4, 14), ldData(R3), BPF_ALU64_REG(BPF_ADD, R3, R4),
      BPF_LDX_MEM(BPF_W, R2, R1, SKB.len), BPF_ALU64_IMM(BPF_LSH, R2, 49), BPF_ALU64_IMM(BPF_RSH, R2, 49), BPF_ALU64_REG(BPF_ADD, R3, R2),
      BPF_MOV64_REG(R2, R3), BPF_ALU64_IMM(BPF_ADD, R2, 8), BPF_LDX_MEM(BPF_W, R1, R1, SKB.data_end), BPF_JMP_REG(BPF_JGT, R2, R1, 1),
      BPF_LDX_MEM(BPF_B, R1, R3, 4), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    result: 'accept',
  }),
  { descr: 'direct packet access: test3', insns: prog(ldData(R2), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()), result: 'reject', errstr: 'invalid bpf_context access off=76', progType: 1 },
  tc({ descr: 'direct packet access: test4 (write)', insns: prog(pkt(8), BPF_JMP_REG(BPF_JGT, R0, R3, 1), BPF_STX_MEM(BPF_B, R2, R2, 0), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()), result: 'accept' }),
  tc({
    descr: 'direct packet access: test5 (pkt_end >= reg, good access)',
    insns: prog(pkt(8), BPF_JMP_REG(BPF_JGE, R3, R0, 2), BPF_MOV64_IMM(R0, 1), BPF_EXIT_INSN(), BPF_LDX_MEM(BPF_B, R0, R2, 0), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    result: 'accept',
  }),
  tc({
    descr: 'direct packet access: test6 (pkt_end >= reg, bad access)',
    insns: prog(pkt(8), BPF_JMP_REG(BPF_JGE, R3, R0, 3), BPF_LDX_MEM(BPF_B, R0, R2, 0), BPF_MOV64_IMM(R0, 1), BPF_EXIT_INSN(), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'invalid access to packet',
  }),
  tc({
    descr: 'direct packet access: test7 (pkt_end >= reg, both accesses)',
    insns: prog(pkt(8), BPF_JMP_REG(BPF_JGE, R3, R0, 3), BPF_LDX_MEM(BPF_B, R0, R2, 0), BPF_MOV64_IMM(R0, 1), BPF_EXIT_INSN(),
      BPF_LDX_MEM(BPF_B, R0, R2, 0), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'invalid access to packet',
  }),
  tc({
    descr: 'direct packet access: test8 (double test, variant 1)',
    insns: prog(pkt(8), BPF_JMP_REG(BPF_JGE, R3, R0, 4), BPF_JMP_REG(BPF_JGT, R0, R3, 1), BPF_LDX_MEM(BPF_B, R0, R2, 0), BPF_MOV64_IMM(R0, 1),
      BPF_EXIT_INSN(), BPF_LDX_MEM(BPF_B, R0, R2, 0), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    result: 'accept',
  }),
  tc({
    descr: 'direct packet access: test9 (double test, variant 2)',
    insns: prog(pkt(8), BPF_JMP_REG(BPF_JGE, R3, R0, 2), BPF_MOV64_IMM(R0, 1), BPF_EXIT_INSN(), BPF_JMP_REG(BPF_JGT, R0, R3, 1),
      BPF_LDX_MEM(BPF_B, R0, R2, 0), BPF_LDX_MEM(BPF_B, R0, R2, 0), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    result: 'accept',
  }),
  tc({
    descr: 'direct packet access: test10 (write invalid)',
    insns: prog(pkt(8), BPF_JMP_REG(BPF_JGT, R0, R3, 2), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN(), BPF_STX_MEM(BPF_B, R2, R2, 0), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'invalid access to packet',
  }),
  tc({
    descr: 'direct packet access: test11 (shift, good access)',
    insns: prog(pkt(22), BPF_JMP_REG(BPF_JGT, R0, R3, 8), BPF_MOV64_IMM(R3, 144), BPF_MOV64_REG(R5, R3), BPF_ALU64_IMM(BPF_ADD, R5, 23),
      BPF_ALU64_IMM(BPF_RSH, R5, 3), BPF_MOV64_REG(R6, R2), BPF_ALU64_REG(BPF_ADD, R6, R5), BPF_MOV64_IMM(R0, 1), BPF_EXIT_INSN(), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    result: 'accept',
  }),
  tc({
    descr: 'direct packet access: test12 (and, good access)',
    insns: prog(pkt(22), BPF_JMP_REG(BPF_JGT, R0, R3, 8), BPF_MOV64_IMM(R3, 144), BPF_MOV64_REG(R5, R3), BPF_ALU64_IMM(BPF_ADD, R5, 23),
      BPF_ALU64_IMM(BPF_AND, R5, 15), BPF_MOV64_REG(R6, R2), BPF_ALU64_REG(BPF_ADD, R6, R5), BPF_MOV64_IMM(R0, 1), BPF_EXIT_INSN(), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    result: 'accept',
  }),
  tc({
    descr: 'direct packet access: test13 (branches, good access)',
    insns: prog(pkt(22), BPF_JMP_REG(BPF_JGT, R0, R3, 13), BPF_LDX_MEM(BPF_W, R3, R1, SKB.mark), BPF_MOV64_IMM(R4, 1), BPF_JMP_REG(BPF_JGT, R3, R4, 2),
      BPF_MOV64_IMM(R3, 14), BPF_JMP_A(1), BPF_MOV64_IMM(R3, 24), BPF_MOV64_REG(R5, R3), BPF_ALU64_IMM(BPF_ADD, R5, 23), BPF_ALU64_IMM(BPF_AND, R5, 15),
      BPF_MOV64_REG(R6, R2), BPF_ALU64_REG(BPF_ADD, R6, R5), BPF_MOV64_IMM(R0, 1), BPF_EXIT_INSN(), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    result: 'accept',
  }),
  tc({
    descr: 'direct packet access: test14 (pkt_ptr += 0, CONST_IMM, good access)',
    insns: prog(pkt(22), BPF_JMP_REG(BPF_JGT, R0, R3, 7), BPF_MOV64_IMM(R5, 12), BPF_ALU64_IMM(BPF_RSH, R5, 4), BPF_MOV64_REG(R6, R2),
      BPF_ALU64_REG(BPF_ADD, R6, R5), BPF_LDX_MEM(BPF_B, R0, R6, 0), BPF_MOV64_IMM(R0, 1), BPF_EXIT_INSN(), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    result: 'accept',
  }),
  tc({
    descr: 'direct packet access: test15 (spill with xadd)',
    insns: prog(pkt(8), BPF_JMP_REG(BPF_JGT, R0, R3, 8), BPF_MOV64_IMM(R5, 4096), BPF_MOV64_REG(R4, R10), BPF_ALU64_IMM(BPF_ADD, R4, -8),
      BPF_STX_MEM(BPF_DW, R4, R2, 0), BPF_STX_XADD(BPF_DW, R4, R5, 0), BPF_LDX_MEM(BPF_DW, R2, R4, 0), BPF_STX_MEM(BPF_W, R2, R5, 0),
      BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    result: 'reject', errstr: "R2 invalid mem access 'inv'",
  }),
  tc({
    descr: 'direct packet access: test16 (arith on data_end)',
    insns: prog(pkt(8), BPF_ALU64_IMM(BPF_ADD, R3, 16), BPF_JMP_REG(BPF_JGT, R0, R3, 1), BPF_STX_MEM(BPF_B, R2, R2, 0), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'R3 pointer arithmetic on pkt_end',
  }),
  tc({
    descr: 'direct packet access: test17 (pruning, alignment)',
    insns: prog(ldData(R2), ldEnd(R3), BPF_LDX_MEM(BPF_W, R7, R1, SKB.mark), BPF_MOV64_REG(R0, R2), BPF_ALU64_IMM(BPF_ADD, R0, 14),
      BPF_JMP_IMM(BPF_JGT, R7, 1, 4), BPF_JMP_REG(BPF_JGT, R0, R3, 1), BPF_STX_MEM(BPF_W, R0, R0, -4), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN(),
      BPF_ALU64_IMM(BPF_ADD, R0, 1), BPF_JMP_A(-6)),
    result: 'reject', errstr: 'misaligned packet access off 2+(0x0; 0x0)+15+-4 size 4', strictAlignment: true,
  }),
  tc({
    descr: 'direct packet access: test18 (imm += pkt_ptr, 1)',
    insns: prog(ldData(R2), ldEnd(R3), BPF_MOV64_IMM(R0, 8), BPF_ALU64_REG(BPF_ADD, R0, R2), BPF_JMP_REG(BPF_JGT, R0, R3, 1),
      BPF_STX_MEM(BPF_B, R2, R2, 0), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    result: 'accept',
  }),
  tc({
    descr: 'direct packet access: test19 (imm += pkt_ptr, 2)',
    insns: prog(pkt(8), BPF_JMP_REG(BPF_JGT, R0, R3, 3), BPF_MOV64_IMM(R4, 4), BPF_ALU64_REG(BPF_ADD, R4, R2), BPF_STX_MEM(BPF_B, R4, R4, 0),
      BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    result: 'accept',
  }),
  tc({
    descr: 'direct packet access: test20 (x += pkt_ptr, 1)',
    insns: prog(ldData(R2), ldEnd(R3), BPF_MOV64_IMM(R0, 0xffffffff), BPF_STX_MEM(BPF_DW, R10, R0, -8), BPF_LDX_MEM(BPF_DW, R0, R10, -8),
      BPF_ALU64_IMM(BPF_AND, R0, 0x7fff), BPF_MOV64_REG(R4, R0), BPF_ALU64_REG(BPF_ADD, R4, R2), BPF_MOV64_REG(R5, R4),
      BPF_ALU64_IMM(BPF_ADD, R4, 0x7fff - 1), BPF_JMP_REG(BPF_JGT, R4, R3, 1), BPF_STX_MEM(BPF_DW, R5, R4, 0), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    result: 'accept',
  }),
  tc({
    descr: 'direct packet access: test21 (x += pkt_ptr, 2)',
    insns: prog(pkt(8), BPF_JMP_REG(BPF_JGT, R0, R3, 9), BPF_MOV64_IMM(R4, 0xffffffff), BPF_STX_MEM(BPF_DW, R10, R4, -8), BPF_LDX_MEM(BPF_DW, R4, R10, -8),
      BPF_ALU64_IMM(BPF_AND, R4, 0x7fff), BPF_ALU64_REG(BPF_ADD, R4, R2), BPF_MOV64_REG(R5, R4), BPF_ALU64_IMM(BPF_ADD, R4, 0x7fff - 1),
      BPF_JMP_REG(BPF_JGT, R4, R3, 1), BPF_STX_MEM(BPF_DW, R5, R4, 0), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    result: 'accept',
  }),
];

export { BPF_ST_MEM };
