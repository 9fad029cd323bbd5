/**
 * @fileoverview Selftests of the basic rules: stack bounds and initialisation, register
 * numbers, ALU instructions, uninitialised registers, ld_imm64, jumps and the control flow
 * graph (verifier/{basic_stack,basic_stx_ldx,basic_instr,uninit,ld_imm64,jump,cfg}.c).
 */
import {
  prog, BPF_ST_MEM, BPF_STX_MEM, BPF_LDX_MEM, BPF_EXIT_INSN, BPF_MOV64_REG, BPF_MOV64_IMM, BPF_MOV32_IMM, BPF_ALU64_IMM,
  BPF_ALU64_REG, BPF_ALU32_IMM, BPF_ALU32_REG, BPF_LD_MAP_FD, BPF_LD_IMM64, BPF_RAW_INSN, BPF_JMP_IMM, BPF_JMP_REG,
  BPF_JMP_A, BPF_EMIT_CALL, BPF_FUNC, BPF_ENDIAN,
  BPF_DW, BPF_W, BPF_B, BPF_ADD, BPF_SUB, BPF_MUL, BPF_LSH, BPF_RSH, BPF_ARSH, BPF_OR, BPF_XOR, BPF_MOV, BPF_JEQ, BPF_JNE,
  BPF_JGE, BPF_JA, BPF_JMP, BPF_CALL, BPF_LD, BPF_IMM, BPF_ALU64, BPF_END, BPF_TO_LE, BPF_TO_BE, BPF_PSEUDO_MAP_FD,
  type VCase, R0, R1, R2, R3, R10,
} from './harness.ts';

const SCHED_CLS = 3;
const mov42x16 = Array.from({ length: 16 }, () => BPF_MOV64_IMM(R0, 42));
const ja0x16 = Array.from({ length: 16 }, () => BPF_JMP_A(0));

export const BASIC: VCase[] = [
  // basic_stack.c
  { descr: 'stack out of bounds', insns: prog(BPF_ST_MEM(BPF_DW, R10, 8, 0), BPF_EXIT_INSN()), result: 'reject', errstr: 'invalid write to stack' },
  {
    descr: 'uninitialized stack1',
    insns: prog(BPF_MOV64_REG(R2, R10), BPF_ALU64_IMM(BPF_ADD, R2, -8), BPF_LD_MAP_FD(R1, 0), BPF_EMIT_CALL(BPF_FUNC.map_lookup_elem), BPF_EXIT_INSN()),
    fixup: { map_hash_8b: [2] }, result: 'reject', errstr: 'invalid indirect read from stack',
  },
  { descr: 'uninitialized stack2', insns: prog(BPF_MOV64_REG(R2, R10), BPF_LDX_MEM(BPF_DW, R0, R2, -8), BPF_EXIT_INSN()), result: 'reject', errstr: 'invalid read from stack' },
  {
    descr: 'invalid fp arithmetic',
    insns: prog(BPF_MOV64_IMM(R0, 0), BPF_MOV64_REG(R1, R10), BPF_ALU64_IMM(BPF_SUB, R1, 8), BPF_STX_MEM(BPF_DW, R1, R0, 0), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'R1 subtraction from stack pointer',
  },
  { descr: 'non-invalid fp arithmetic', insns: prog(BPF_MOV64_IMM(R0, 0), BPF_STX_MEM(BPF_DW, R10, R0, -8), BPF_EXIT_INSN()), result: 'accept' },
  { descr: 'misaligned read from stack', insns: prog(BPF_MOV64_REG(R2, R10), BPF_LDX_MEM(BPF_DW, R0, R2, -4), BPF_EXIT_INSN()), result: 'reject', errstr: 'misaligned stack access' },
  // basic_stx_ldx.c
  { descr: 'invalid src register in STX', insns: prog(BPF_STX_MEM(BPF_B, R10, -1, -1), BPF_EXIT_INSN()), result: 'reject', errstr: 'R15 is invalid' },
  { descr: 'invalid dst register in STX', insns: prog(BPF_STX_MEM(BPF_B, 14, R10, -1), BPF_EXIT_INSN()), result: 'reject', errstr: 'R14 is invalid' },
  { descr: 'invalid dst register in ST', insns: prog(BPF_ST_MEM(BPF_B, 14, -1, -1), BPF_EXIT_INSN()), result: 'reject', errstr: 'R14 is invalid' },
  { descr: 'invalid src register in LDX', insns: prog(BPF_LDX_MEM(BPF_B, R0, 12, 0), BPF_EXIT_INSN()), result: 'reject', errstr: 'R12 is invalid' },
  { descr: 'invalid dst register in LDX', insns: prog(BPF_LDX_MEM(BPF_B, 11, R1, 0), BPF_EXIT_INSN()), result: 'reject', errstr: 'R11 is invalid' },
  // basic_instr.c
  {
    descr: 'add+sub+mul',
    insns: prog(BPF_MOV64_IMM(R1, 1), BPF_ALU64_IMM(BPF_ADD, R1, 2), BPF_MOV64_IMM(R2, 3), BPF_ALU64_REG(BPF_SUB, R1, R2),
      BPF_ALU64_IMM(BPF_ADD, R1, -1), BPF_ALU64_IMM(BPF_MUL, R1, 3), BPF_MOV64_REG(R0, R1), BPF_EXIT_INSN()),
    result: 'accept',
  },
  {
    descr: 'xor32 zero extend check',
    insns: prog(BPF_MOV32_IMM(R2, -1), BPF_ALU64_IMM(BPF_LSH, R2, 32), BPF_ALU64_IMM(BPF_OR, R2, 0xffff), BPF_ALU32_REG(BPF_XOR, R2, R2),
      BPF_MOV32_IMM(R0, 2), BPF_JMP_IMM(BPF_JNE, R2, 0, 1), BPF_MOV32_IMM(R0, 1), BPF_EXIT_INSN()),
    progType: SCHED_CLS, result: 'accept',
  },
  { descr: 'arsh32 on imm', insns: prog(BPF_MOV64_IMM(R0, 1), BPF_ALU32_IMM(BPF_ARSH, R0, 5), BPF_EXIT_INSN()), result: 'accept' },
  { descr: 'arsh32 on imm 2', insns: prog(BPF_LD_IMM64(R0, 0x1122334485667788n), BPF_ALU32_IMM(BPF_ARSH, R0, 7), BPF_EXIT_INSN()), result: 'accept' },
  { descr: 'arsh32 on reg', insns: prog(BPF_MOV64_IMM(R0, 1), BPF_MOV64_IMM(R1, 5), BPF_ALU32_REG(BPF_ARSH, R0, R1), BPF_EXIT_INSN()), result: 'accept' },
  { descr: 'arsh64 on imm', insns: prog(BPF_MOV64_IMM(R0, 1), BPF_ALU64_IMM(BPF_ARSH, R0, 5), BPF_EXIT_INSN()), result: 'accept' },
  { descr: 'arsh64 on reg', insns: prog(BPF_MOV64_IMM(R0, 1), BPF_MOV64_IMM(R1, 5), BPF_ALU64_REG(BPF_ARSH, R0, R1), BPF_EXIT_INSN()), result: 'accept' },
  {
    descr: 'lsh64 by 0 imm',
    insns: prog(BPF_LD_IMM64(R0, 1), BPF_LD_IMM64(R1, 1), BPF_ALU64_IMM(BPF_LSH, R1, 0), BPF_JMP_IMM(BPF_JEQ, R1, 1, 1), BPF_MOV64_IMM(R0, 2), BPF_EXIT_INSN()),
    result: 'accept',
  },
  {
    descr: 'rsh64 by 0 reg',
    insns: prog(BPF_LD_IMM64(R0, 1), BPF_LD_IMM64(R1, 0x100000000n), BPF_ALU64_REG(BPF_MOV, R2, R1), BPF_LD_IMM64(R3, 0),
      BPF_ALU64_REG(BPF_RSH, R1, R3), BPF_JMP_REG(BPF_JEQ, R1, R2, 1), BPF_MOV64_IMM(R0, 2), BPF_EXIT_INSN()),
    result: 'accept',
  },
  {
    descr: 'invalid 64-bit BPF_END',
    insns: prog(BPF_MOV32_IMM(R0, 0), BPF_RAW_INSN(BPF_ALU64 | BPF_END | BPF_TO_LE, R0, 0, 0, 32), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'unknown opcode d7',
  },
  { descr: 'BPF_END: le32 and be16 of a scalar', insns: prog(BPF_MOV64_IMM(R0, 0x1234), BPF_ENDIAN(BPF_TO_LE, R0, 32), BPF_ENDIAN(BPF_TO_BE, R0, 16), BPF_EXIT_INSN()), result: 'accept' },
  {
    descr: 'mov64 src == dst',
    insns: prog(BPF_MOV64_IMM(R2, 0), BPF_MOV64_REG(R2, R2), BPF_ALU64_REG(BPF_ADD, R1, R2), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    progType: SCHED_CLS, result: 'accept',
  },
  {
    descr: 'mov64 src != dst',
    insns: prog(BPF_MOV64_IMM(R3, 0), BPF_MOV64_REG(R2, R3), BPF_ALU64_REG(BPF_ADD, R1, R2), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    progType: SCHED_CLS, result: 'accept',
  },
  // uninit.c
  { descr: 'read uninitialized register', insns: prog(BPF_MOV64_REG(R0, R2), BPF_EXIT_INSN()), result: 'reject', errstr: 'R2 !read_ok' },
  { descr: 'read invalid register', insns: prog(BPF_MOV64_REG(R0, -1), BPF_EXIT_INSN()), result: 'reject', errstr: 'R15 is invalid' },
  { descr: "program doesn't init R0 before exit", insns: prog(BPF_ALU64_REG(BPF_MOV, R2, R1), BPF_EXIT_INSN()), result: 'reject', errstr: 'R0 !read_ok' },
  {
    descr: "program doesn't init R0 before exit in all branches",
    insns: prog(BPF_JMP_IMM(BPF_JGE, R1, 0, 2), BPF_MOV64_IMM(R0, 1), BPF_ALU64_IMM(BPF_ADD, R0, 2), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'R0 !read_ok',
  },
  // ld_imm64.c
  {
    descr: 'test1 ld_imm64',
    insns: prog(BPF_JMP_IMM(BPF_JEQ, R1, 0, 1), BPF_LD_IMM64(R0, 0), BPF_LD_IMM64(R0, 0), BPF_LD_IMM64(R0, 1), BPF_LD_IMM64(R0, 1), BPF_MOV64_IMM(R0, 2), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'jump into the middle of ldimm64 insn 1',
    note: 'v5.10 walks into the second half and says "invalid BPF_LD_IMM insn"; check_cfg of later kernels refuses the jump itself',
  },
  {
    descr: 'test3 ld_imm64',
    insns: prog(BPF_JMP_IMM(BPF_JEQ, R1, 0, 1), BPF_RAW_INSN(BPF_LD | BPF_IMM | BPF_DW, 0, 0, 0, 0), BPF_LD_IMM64(R0, 0), BPF_LD_IMM64(R0, 0),
      BPF_LD_IMM64(R0, 1), BPF_LD_IMM64(R0, 1), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'invalid bpf_ld_imm64 insn',
  },
  { descr: 'test4 ld_imm64', insns: prog(BPF_RAW_INSN(BPF_LD | BPF_IMM | BPF_DW, 0, 0, 0, 0), BPF_EXIT_INSN()), result: 'reject', errstr: 'invalid bpf_ld_imm64 insn' },
  { descr: 'test6 ld_imm64', insns: prog(BPF_RAW_INSN(BPF_LD | BPF_IMM | BPF_DW, 0, 0, 0, 0), BPF_RAW_INSN(0, 0, 0, 0, 0), BPF_EXIT_INSN()), result: 'accept' },
  { descr: 'test7 ld_imm64', insns: prog(BPF_RAW_INSN(BPF_LD | BPF_IMM | BPF_DW, 0, 0, 0, 1), BPF_RAW_INSN(0, 0, 0, 0, 1), BPF_EXIT_INSN()), result: 'accept' },
  { descr: 'test8 ld_imm64', insns: prog(BPF_RAW_INSN(BPF_LD | BPF_IMM | BPF_DW, 0, 0, 1, 1), BPF_RAW_INSN(0, 0, 0, 0, 1), BPF_EXIT_INSN()), result: 'reject', errstr: 'uses reserved fields' },
  { descr: 'test9 ld_imm64', insns: prog(BPF_RAW_INSN(BPF_LD | BPF_IMM | BPF_DW, 0, 0, 0, 1), BPF_RAW_INSN(0, 0, 0, 1, 1), BPF_EXIT_INSN()), result: 'reject', errstr: 'invalid bpf_ld_imm64 insn' },
  { descr: 'test10 ld_imm64', insns: prog(BPF_RAW_INSN(BPF_LD | BPF_IMM | BPF_DW, 0, 0, 0, 1), BPF_RAW_INSN(0, R1, 0, 0, 1), BPF_EXIT_INSN()), result: 'reject', errstr: 'invalid bpf_ld_imm64 insn' },
  { descr: 'test11 ld_imm64', insns: prog(BPF_RAW_INSN(BPF_LD | BPF_IMM | BPF_DW, 0, 0, 0, 1), BPF_RAW_INSN(0, 0, R1, 0, 1), BPF_EXIT_INSN()), result: 'reject', errstr: 'invalid bpf_ld_imm64 insn' },
  {
    descr: 'test12 ld_imm64',
    insns: prog(BPF_MOV64_IMM(R1, 0), BPF_RAW_INSN(BPF_LD | BPF_IMM | BPF_DW, 0, R1, 0, 1), BPF_RAW_INSN(0, 0, 0, 0, 0), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'not pointing to valid bpf_map', errno: 9,
  },
  {
    descr: 'test13 ld_imm64',
    insns: prog(BPF_MOV64_IMM(R1, 0), BPF_RAW_INSN(BPF_LD | BPF_IMM | BPF_DW, 0, R1, 0, 1), BPF_RAW_INSN(0, 0, R1, 0, 1), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'invalid bpf_ld_imm64 insn',
  },
  {
    descr: 'test14 ld_imm64: reject 2nd imm != 0',
    insns: prog(BPF_MOV64_IMM(R0, 0), BPF_RAW_INSN(BPF_LD | BPF_IMM | BPF_DW, R1, BPF_PSEUDO_MAP_FD, 0, 0), BPF_RAW_INSN(0, 0, 0, 0, 0xfefefe), BPF_EXIT_INSN()),
    fixup: { map_hash_48b: [1] }, result: 'reject', errstr: 'unrecognized bpf_ld_imm64 insn',
  },
  // jump.c
  {
    descr: 'jump test 1',
    insns: prog(BPF_MOV64_REG(R2, R10), BPF_STX_MEM(BPF_DW, R2, R1, -8), BPF_JMP_IMM(BPF_JEQ, R1, 0, 1), BPF_ST_MEM(BPF_DW, R2, -8, 0),
      BPF_JMP_IMM(BPF_JEQ, R1, 1, 1), BPF_ST_MEM(BPF_DW, R2, -16, 1), BPF_JMP_IMM(BPF_JEQ, R1, 2, 1), BPF_ST_MEM(BPF_DW, R2, -8, 2),
      BPF_JMP_IMM(BPF_JEQ, R1, 3, 1), BPF_ST_MEM(BPF_DW, R2, -16, 3), BPF_JMP_IMM(BPF_JEQ, R1, 4, 1), BPF_ST_MEM(BPF_DW, R2, -8, 4),
      BPF_JMP_IMM(BPF_JEQ, R1, 5, 1), BPF_ST_MEM(BPF_DW, R2, -32, 5), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    result: 'accept',
  },
  {
    descr: 'jump test 2',
    insns: prog(BPF_MOV64_REG(R2, R10), BPF_JMP_IMM(BPF_JEQ, R1, 0, 2), BPF_ST_MEM(BPF_DW, R2, -8, 0), BPF_JMP_A(14),
      BPF_JMP_IMM(BPF_JEQ, R1, 1, 2), BPF_ST_MEM(BPF_DW, R2, -16, 0), BPF_JMP_A(11), BPF_JMP_IMM(BPF_JEQ, R1, 2, 2),
      BPF_ST_MEM(BPF_DW, R2, -32, 0), BPF_JMP_A(8), BPF_JMP_IMM(BPF_JEQ, R1, 3, 2), BPF_ST_MEM(BPF_DW, R2, -40, 0), BPF_JMP_A(5),
      BPF_JMP_IMM(BPF_JEQ, R1, 4, 2), BPF_ST_MEM(BPF_DW, R2, -48, 0), BPF_JMP_A(2), BPF_JMP_IMM(BPF_JEQ, R1, 5, 1),
      BPF_ST_MEM(BPF_DW, R2, -56, 0), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    result: 'accept',
  },
  {
    descr: 'jump test 3',
    insns: prog(BPF_MOV64_REG(R2, R10), BPF_JMP_IMM(BPF_JEQ, R1, 0, 3), BPF_ST_MEM(BPF_DW, R2, -8, 0), BPF_ALU64_IMM(BPF_ADD, R2, -8), BPF_JMP_A(19),
      BPF_JMP_IMM(BPF_JEQ, R1, 1, 3), BPF_ST_MEM(BPF_DW, R2, -16, 0), BPF_ALU64_IMM(BPF_ADD, R2, -16), BPF_JMP_A(15),
      BPF_JMP_IMM(BPF_JEQ, R1, 2, 3), BPF_ST_MEM(BPF_DW, R2, -32, 0), BPF_ALU64_IMM(BPF_ADD, R2, -32), BPF_JMP_A(11),
      BPF_JMP_IMM(BPF_JEQ, R1, 3, 3), BPF_ST_MEM(BPF_DW, R2, -40, 0), BPF_ALU64_IMM(BPF_ADD, R2, -40), BPF_JMP_A(7),
      BPF_JMP_IMM(BPF_JEQ, R1, 4, 3), BPF_ST_MEM(BPF_DW, R2, -48, 0), BPF_ALU64_IMM(BPF_ADD, R2, -48), BPF_JMP_A(3),
      BPF_JMP_IMM(BPF_JEQ, R1, 5, 0), BPF_ST_MEM(BPF_DW, R2, -56, 0), BPF_ALU64_IMM(BPF_ADD, R2, -56),
      BPF_LD_MAP_FD(R1, 0), BPF_EMIT_CALL(BPF_FUNC.map_delete_elem), BPF_EXIT_INSN()),
    fixup: { map_hash_8b: [24] }, result: 'accept',
  },
  {
    descr: 'jump test 4',
    insns: prog(...Array.from({ length: 36 }, (_, i) => BPF_JMP_IMM(BPF_JEQ, R1, R10, (i % 4) + 1)),
      ...Array.from({ length: 4 }, () => BPF_JMP_IMM(BPF_JEQ, R1, R10, 0)), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    result: 'accept',
  },
  {
    descr: 'jump test 6',
    insns: prog(BPF_MOV64_IMM(R0, 1), BPF_MOV64_IMM(R1, 2), BPF_JMP_A(2), BPF_MOV64_IMM(R0, 2), BPF_EXIT_INSN(),
      BPF_JMP_REG(BPF_JNE, R0, R1, 16), ...ja0x16, BPF_JMP_A(-20)),
    result: 'accept',
  },
  {
    descr: 'jump test 7',
    insns: prog(BPF_MOV64_IMM(R0, 1), BPF_JMP_A(2), BPF_MOV64_IMM(R0, 3), BPF_EXIT_INSN(), BPF_JMP_IMM(BPF_JNE, R0, 2, 16), ...mov42x16, BPF_JMP_A(-20)),
    result: 'accept',
  },
  {
    descr: 'jump/call test 9',
    insns: prog(BPF_MOV64_IMM(R0, 1), BPF_JMP_A(2), BPF_MOV64_IMM(R0, 3), BPF_EXIT_INSN(), BPF_JMP_IMM(BPF_JNE, R0, 2, 16), ...mov42x16,
      BPF_RAW_INSN(BPF_JMP | BPF_CALL, 0, 1, 0, -20), BPF_EXIT_INSN()),
    progType: SCHED_CLS, result: 'reject', errstr: 'jump out of range from insn 1 to 4',
  },
  {
    descr: 'jump/call test 10',
    insns: prog(BPF_MOV64_IMM(R0, 1), BPF_RAW_INSN(BPF_JMP | BPF_CALL, 0, 1, 0, 2), BPF_MOV64_IMM(R0, 3), BPF_EXIT_INSN(),
      BPF_JMP_IMM(BPF_JNE, R0, 2, 16), ...mov42x16, BPF_RAW_INSN(BPF_JMP | BPF_CALL, 0, 1, 0, -20), BPF_EXIT_INSN()),
    progType: SCHED_CLS, result: 'reject', errstr: 'last insn is not an exit or jmp',
  },
  {
    descr: 'jump/call test 11',
    insns: prog(BPF_MOV64_IMM(R0, 1), BPF_RAW_INSN(BPF_JMP | BPF_CALL, 0, 1, 0, 4), BPF_MOV64_IMM(R0, 3), BPF_EXIT_INSN(),
      BPF_MOV64_IMM(R0, 3), BPF_EXIT_INSN(), BPF_MOV64_IMM(R0, 1), BPF_JMP_IMM(BPF_JNE, R0, 2, 26),
      ...Array.from({ length: 26 }, () => BPF_MOV64_IMM(R0, 42)), BPF_RAW_INSN(BPF_JMP | BPF_CALL, 0, 1, 0, -31), BPF_EXIT_INSN()),
    progType: SCHED_CLS, result: 'accept',
  },
  // cfg.c
  { descr: 'unreachable', insns: prog(BPF_EXIT_INSN(), BPF_EXIT_INSN()), result: 'reject', errstr: 'unreachable' },
  { descr: 'unreachable2', insns: prog(BPF_JMP_A(1), BPF_JMP_A(0), BPF_EXIT_INSN()), result: 'reject', errstr: 'unreachable' },
  { descr: 'out of range jump', insns: prog(BPF_JMP_A(1), BPF_EXIT_INSN()), result: 'reject', errstr: 'jump out of range' },
  { descr: 'out of range jump2', insns: prog(BPF_JMP_A(-2), BPF_EXIT_INSN()), result: 'reject', errstr: 'jump out of range' },
  { descr: 'loop (back-edge)', insns: prog(BPF_JMP_A(-1), BPF_EXIT_INSN()), result: 'reject', errstr: 'unreachable insn 1' },
  {
    descr: 'loop2 (back-edge)',
    insns: prog(BPF_MOV64_REG(R1, R0), BPF_MOV64_REG(R2, R0), BPF_MOV64_REG(R3, R0), BPF_JMP_A(-4), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'unreachable insn 4',
  },
  {
    descr: 'conditional loop',
    insns: prog(BPF_MOV64_REG(R0, R1), BPF_MOV64_REG(R2, R0), BPF_MOV64_REG(R3, R0), BPF_JMP_IMM(BPF_JEQ, R1, 0, -3), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'infinite loop detected',
  },
];

export { BPF_JA, BPF_JMP };
