/**
 * @fileoverview Selftests of scalar bounds: subtraction, zero- and sign-extension, truncation
 * to 32 bits, shifts, and pointer offsets that would overflow (verifier/bounds.c).
 */
import {
  prog, BPF_ST_MEM, BPF_STX_MEM, BPF_LDX_MEM, BPF_EXIT_INSN, BPF_MOV64_REG, BPF_MOV64_IMM, BPF_MOV32_IMM, BPF_MOV32_REG,
  BPF_ALU64_IMM, BPF_ALU64_REG, BPF_ALU32_IMM, BPF_ALU32_REG, BPF_LD_MAP_FD, BPF_JMP_IMM, BPF_JMP_A, BPF_EMIT_CALL, BPF_FUNC,
  BPF_DW, BPF_W, BPF_B, BPF_ADD, BPF_SUB, BPF_AND, BPF_LSH, BPF_RSH, BPF_JEQ, BPF_JNE, BPF_JGT,
  type VCase, R0, R1, R2, R3, R6, R9, R10,
} from './harness.ts';
import { SKB } from './cases_pkt.ts';

const SCHED_CLS = 3;
/** fp-8 = 0; r0 = lookup(map, fp-8); if r0 == 0 goto +skip (map fixup at insn 3) */
const lookup = (skip: number, jne = false) => prog(BPF_ST_MEM(BPF_DW, R10, -8, 0), BPF_MOV64_REG(R2, R10), BPF_ALU64_IMM(BPF_ADD, R2, -8),
  BPF_LD_MAP_FD(R1, 0), BPF_EMIT_CALL(BPF_FUNC.map_lookup_elem), BPF_JMP_IMM(jne ? BPF_JNE : BPF_JEQ, R0, 0, skip));
const H = 0xffffff80 >>> 1;
const end = prog(BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN());

export const BOUNDS: VCase[] = [
  {
    descr: 'subtraction bounds (map value) variant 1',
    insns: prog(lookup(9), BPF_LDX_MEM(BPF_B, R1, R0, 0), BPF_JMP_IMM(BPF_JGT, R1, 0xff, 7), BPF_LDX_MEM(BPF_B, R3, R0, 1),
      BPF_JMP_IMM(BPF_JGT, R3, 0xff, 5), BPF_ALU64_REG(BPF_SUB, R1, R3), BPF_ALU64_IMM(BPF_RSH, R1, 56), BPF_ALU64_REG(BPF_ADD, R0, R1),
      BPF_LDX_MEM(BPF_B, R0, R0, 0), BPF_EXIT_INSN(), end),
    fixup: { map_hash_8b: [3] }, result: 'reject', errstr: 'R0 max value is outside of the allowed memory range',
  },
  {
    descr: 'subtraction bounds (map value) variant 2',
    insns: prog(lookup(8), BPF_LDX_MEM(BPF_B, R1, R0, 0), BPF_JMP_IMM(BPF_JGT, R1, 0xff, 6), BPF_LDX_MEM(BPF_B, R3, R0, 1),
      BPF_JMP_IMM(BPF_JGT, R3, 0xff, 4), BPF_ALU64_REG(BPF_SUB, R1, R3), BPF_ALU64_REG(BPF_ADD, R0, R1), BPF_LDX_MEM(BPF_B, R0, R0, 0),
      BPF_EXIT_INSN(), end),
    fixup: { map_hash_8b: [3] }, result: 'reject', errstr: 'R0 min value is negative, either use unsigned index or do a if (index >=0) check.',
  },
  {
    descr: 'check subtraction on pointers for unpriv',
    insns: prog(BPF_MOV64_IMM(R0, 0), BPF_LD_MAP_FD(R1, 0), BPF_MOV64_REG(R2, R10), BPF_ALU64_IMM(BPF_ADD, R2, -8), BPF_ST_MEM(BPF_DW, R2, 0, 9),
      BPF_EMIT_CALL(BPF_FUNC.map_lookup_elem), BPF_MOV64_REG(R9, R10), BPF_ALU64_REG(BPF_SUB, R9, R0), BPF_LD_MAP_FD(R1, 0),
      BPF_MOV64_REG(R2, R10), BPF_ALU64_IMM(BPF_ADD, R2, -8), BPF_ST_MEM(BPF_DW, R2, 0, 0), BPF_EMIT_CALL(BPF_FUNC.map_lookup_elem),
      BPF_JMP_IMM(BPF_JNE, R0, 0, 1), BPF_EXIT_INSN(), BPF_STX_MEM(BPF_DW, R0, R9, 0), end),
    fixup: { map_hash_8b: [1, 9] }, result: 'accept',
  },
  {
    descr: 'bounds check based on zero-extended MOV',
    insns: prog(lookup(4), BPF_MOV32_IMM(R2, 0xffffffff), BPF_ALU64_IMM(BPF_RSH, R2, 32), BPF_ALU64_REG(BPF_ADD, R0, R2), BPF_LDX_MEM(BPF_B, R0, R0, 0), end),
    fixup: { map_hash_8b: [3] }, result: 'accept',
  },
  {
    descr: 'bounds check based on sign-extended MOV. test1',
    insns: prog(lookup(4), BPF_MOV64_IMM(R2, 0xffffffff), BPF_ALU64_IMM(BPF_RSH, R2, 32), BPF_ALU64_REG(BPF_ADD, R0, R2), BPF_LDX_MEM(BPF_B, R0, R0, 0), end),
    fixup: { map_hash_8b: [3] }, result: 'reject', errstr: 'map_value pointer and 4294967295',
  },
  {
    descr: 'bounds check based on sign-extended MOV. test2',
    insns: prog(lookup(4), BPF_MOV64_IMM(R2, 0xffffffff), BPF_ALU64_IMM(BPF_RSH, R2, 36), BPF_ALU64_REG(BPF_ADD, R0, R2), BPF_LDX_MEM(BPF_B, R0, R0, 0), end),
    fixup: { map_hash_8b: [3] }, result: 'reject', errstr: 'R0 min value is outside of the allowed memory range',
  },
  {
    descr: 'bounds check based on reg_off + var_off + insn_off. test1',
    insns: prog(BPF_LDX_MEM(BPF_W, R6, R1, SKB.mark), lookup(4), BPF_ALU64_IMM(BPF_AND, R6, 1), BPF_ALU64_IMM(BPF_ADD, R6, (1 << 29) - 1),
      BPF_ALU64_REG(BPF_ADD, R0, R6), BPF_ALU64_IMM(BPF_ADD, R0, (1 << 29) - 1), BPF_LDX_MEM(BPF_B, R0, R0, 3), end),
    fixup: { map_hash_8b: [4] }, result: 'reject', errstr: 'value_size=8 off=1073741825', progType: SCHED_CLS,
  },
  {
    descr: 'bounds check based on reg_off + var_off + insn_off. test2',
    insns: prog(BPF_LDX_MEM(BPF_W, R6, R1, SKB.mark), lookup(4), BPF_ALU64_IMM(BPF_AND, R6, 1), BPF_ALU64_IMM(BPF_ADD, R6, (1 << 30) - 1),
      BPF_ALU64_REG(BPF_ADD, R0, R6), BPF_ALU64_IMM(BPF_ADD, R0, (1 << 29) - 1), BPF_LDX_MEM(BPF_B, R0, R0, 3), end),
    fixup: { map_hash_8b: [4] }, result: 'reject', errstr: 'value 1073741823', progType: SCHED_CLS,
  },
  {
    descr: 'bounds check after truncation of non-boundary-crossing range',
    insns: prog(lookup(9), BPF_LDX_MEM(BPF_B, R1, R0, 0), BPF_MOV64_IMM(R2, 1), BPF_ALU64_IMM(BPF_LSH, R2, 36), BPF_ALU64_REG(BPF_ADD, R1, R2),
      BPF_ALU64_IMM(BPF_ADD, R1, 0x7fffffff), BPF_ALU32_IMM(BPF_SUB, R1, 0x7fffffff), BPF_ALU64_IMM(BPF_RSH, R1, 8), BPF_ALU64_REG(BPF_ADD, R0, R1),
      BPF_LDX_MEM(BPF_B, R0, R0, 0), end),
    fixup: { map_hash_8b: [3] }, result: 'accept',
  },
  {
    descr: 'bounds check after truncation of boundary-crossing range (1)',
    insns: prog(lookup(8), BPF_LDX_MEM(BPF_B, R1, R0, 0), BPF_ALU64_IMM(BPF_ADD, R1, H), BPF_ALU64_IMM(BPF_ADD, R1, H), BPF_ALU32_IMM(BPF_ADD, R1, 0),
      BPF_ALU64_IMM(BPF_SUB, R1, H), BPF_ALU64_IMM(BPF_SUB, R1, H), BPF_ALU64_REG(BPF_ADD, R0, R1), end),
    fixup: { map_hash_8b: [3] }, result: 'reject', errstr: 'value -4294967168 makes map_value pointer be out of bounds',
  },
  {
    descr: 'bounds check after truncation of boundary-crossing range (2)',
    insns: prog(lookup(8), BPF_LDX_MEM(BPF_B, R1, R0, 0), BPF_ALU64_IMM(BPF_ADD, R1, H), BPF_ALU64_IMM(BPF_ADD, R1, H), BPF_MOV32_REG(R1, R1),
      BPF_ALU64_IMM(BPF_SUB, R1, H), BPF_ALU64_IMM(BPF_SUB, R1, H), BPF_ALU64_REG(BPF_ADD, R0, R1), end),
    fixup: { map_hash_8b: [3] }, result: 'reject', errstr: 'value -4294967168 makes map_value pointer be out of bounds',
  },
  {
    descr: 'bounds check after wrapping 32-bit addition',
    insns: prog(lookup(5), BPF_MOV64_IMM(R1, 0x7fffffff), BPF_ALU64_IMM(BPF_ADD, R1, 0x7fffffff), BPF_ALU32_IMM(BPF_ADD, R1, 2),
      BPF_ALU64_REG(BPF_ADD, R0, R1), BPF_LDX_MEM(BPF_B, R0, R0, 0), end),
    fixup: { map_hash_8b: [3] }, result: 'accept',
  },
  {
    descr: 'bounds check after shift with oversized count operand',
    insns: prog(lookup(6), BPF_MOV64_IMM(R2, 32), BPF_MOV64_IMM(R1, 1), BPF_ALU32_REG(BPF_LSH, R1, R2), BPF_ALU64_IMM(BPF_AND, R1, 0xffff),
      BPF_ALU64_REG(BPF_ADD, R0, R1), BPF_LDX_MEM(BPF_B, R0, R0, 0), end),
    fixup: { map_hash_8b: [3] }, result: 'reject', errstr: 'R0 max value is outside of the allowed memory range',
  },
  {
    descr: 'bounds check after right shift of maybe-negative number',
    insns: prog(lookup(6), BPF_LDX_MEM(BPF_B, R1, R0, 0), BPF_ALU64_IMM(BPF_SUB, R1, 1), BPF_ALU64_IMM(BPF_RSH, R1, 8), BPF_ALU64_IMM(BPF_RSH, R1, 8),
      BPF_ALU64_REG(BPF_ADD, R0, R1), BPF_LDX_MEM(BPF_B, R0, R0, 0), end),
    fixup: { map_hash_8b: [3] }, result: 'reject', errstr: 'R0 unbounded memory access',
  },
  {
    descr: 'bounds check after 32-bit right shift with 64-bit input',
    insns: prog(lookup(6), BPF_MOV64_IMM(R1, 2), BPF_ALU64_IMM(BPF_LSH, R1, 31), BPF_ALU32_IMM(BPF_RSH, R1, 31), BPF_ALU32_IMM(BPF_SUB, R1, 2),
      BPF_ALU64_REG(BPF_ADD, R0, R1), end),
    fixup: { map_hash_8b: [3] }, result: 'reject', errstr: 'math between map_value pointer and 4294967294 is not allowed',
  },
  {
    descr: 'bounds check map access with off+size signed 32bit overflow. test1',
    insns: prog(lookup(1, true), BPF_EXIT_INSN(), BPF_ALU64_IMM(BPF_ADD, R0, 0x7ffffffe), BPF_LDX_MEM(BPF_DW, R0, R0, 0), BPF_JMP_A(0), BPF_EXIT_INSN()),
    fixup: { map_hash_8b: [3] }, result: 'reject', errstr: 'map_value pointer and 2147483646',
  },
  {
    descr: 'bounds check map access with off+size signed 32bit overflow. test2',
    insns: prog(lookup(1, true), BPF_EXIT_INSN(), BPF_ALU64_IMM(BPF_ADD, R0, 0x1fffffff), BPF_ALU64_IMM(BPF_ADD, R0, 0x1fffffff),
      BPF_ALU64_IMM(BPF_ADD, R0, 0x1fffffff), BPF_LDX_MEM(BPF_DW, R0, R0, 0), BPF_JMP_A(0), BPF_EXIT_INSN()),
    fixup: { map_hash_8b: [3] }, result: 'reject', errstr: 'pointer offset 1073741822',
  },
  {
    descr: 'bounds check map access with off+size signed 32bit overflow. test3',
    insns: prog(lookup(1, true), BPF_EXIT_INSN(), BPF_ALU64_IMM(BPF_SUB, R0, 0x1fffffff), BPF_ALU64_IMM(BPF_SUB, R0, 0x1fffffff),
      BPF_LDX_MEM(BPF_DW, R0, R0, 2), BPF_JMP_A(0), BPF_EXIT_INSN()),
    fixup: { map_hash_8b: [3] }, result: 'reject', errstr: 'pointer offset -1073741822',
  },
];

export { BPF_W, BPF_ALU32_REG };
