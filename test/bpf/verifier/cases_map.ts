/**
 * @fileoverview Selftests of map lookups and map values: NULL checks, arithmetic on
 * maybe-NULL pointers, value bounds, spilling a value pointer
 * (verifier/{value_or_null,map_ret_val,value}.c).
 */
import {
  prog, BPF_ST_MEM, BPF_STX_MEM, BPF_LDX_MEM, BPF_EXIT_INSN, BPF_MOV64_REG, BPF_MOV64_IMM, BPF_ALU64_IMM, BPF_ALU64_REG,
  BPF_LD_MAP_FD, BPF_JMP_IMM, BPF_EMIT_CALL, BPF_FUNC,
  BPF_DW, BPF_W, BPF_ADD, BPF_AND, BPF_LSH, BPF_MOV, BPF_JEQ, BPF_JNE, BPF_JGE,
  type VCase, R0, R1, R2, R3, R4, R6, R7, R8, R10,
} from './harness.ts';

const SCHED_CLS = 3;
const MAX_ENTRIES = 11, FOO = 4; // struct test_val { unsigned int index; int foo[MAX_ENTRIES]; }
const lookupKey10 = prog(BPF_MOV64_IMM(R1, 10), BPF_STX_MEM(BPF_DW, R10, R1, -8), BPF_MOV64_REG(R2, R10), BPF_ALU64_IMM(BPF_ADD, R2, -8), BPF_LD_MAP_FD(R1, 0));
const lookupKey0 = prog(BPF_MOV64_REG(R2, R10), BPF_ALU64_IMM(BPF_ADD, R2, -8), BPF_ST_MEM(BPF_DW, R2, 0, 0), BPF_LD_MAP_FD(R1, 0), BPF_EMIT_CALL(BPF_FUNC.map_lookup_elem));
const lookupSt0 = prog(BPF_ST_MEM(BPF_DW, R10, -8, 0), BPF_MOV64_REG(R2, R10), BPF_ALU64_IMM(BPF_ADD, R2, -8), BPF_LD_MAP_FD(R1, 0));
const call = (f: number) => BPF_EMIT_CALL(f);

export const MAP: VCase[] = [
  // value_or_null.c
  {
    descr: 'multiple registers share map_lookup_elem result',
    insns: prog(lookupKey10, call(BPF_FUNC.map_lookup_elem), BPF_MOV64_REG(R4, R0), BPF_JMP_IMM(BPF_JEQ, R0, 0, 1), BPF_ST_MEM(BPF_DW, R4, 0, 0), BPF_EXIT_INSN()),
    fixup: { map_hash_8b: [4] }, result: 'accept', progType: SCHED_CLS,
  },
  {
    descr: 'alu ops on ptr_to_map_value_or_null, 1',
    insns: prog(lookupKey10, call(BPF_FUNC.map_lookup_elem), BPF_MOV64_REG(R4, R0), BPF_ALU64_IMM(BPF_ADD, R4, -2), BPF_ALU64_IMM(BPF_ADD, R4, 2),
      BPF_JMP_IMM(BPF_JEQ, R0, 0, 1), BPF_ST_MEM(BPF_DW, R4, 0, 0), BPF_EXIT_INSN()),
    fixup: { map_hash_8b: [4] }, result: 'reject', errstr: 'R4 pointer arithmetic on map_value_or_null', progType: SCHED_CLS,
  },
  {
    descr: 'alu ops on ptr_to_map_value_or_null, 2',
    insns: prog(lookupKey10, call(BPF_FUNC.map_lookup_elem), BPF_MOV64_REG(R4, R0), BPF_ALU64_IMM(BPF_AND, R4, -1),
      BPF_JMP_IMM(BPF_JEQ, R0, 0, 1), BPF_ST_MEM(BPF_DW, R4, 0, 0), BPF_EXIT_INSN()),
    fixup: { map_hash_8b: [4] }, result: 'reject', errstr: 'R4 pointer arithmetic on map_value_or_null', progType: SCHED_CLS,
  },
  {
    descr: 'alu ops on ptr_to_map_value_or_null, 3',
    insns: prog(lookupKey10, call(BPF_FUNC.map_lookup_elem), BPF_MOV64_REG(R4, R0), BPF_ALU64_IMM(BPF_LSH, R4, 1),
      BPF_JMP_IMM(BPF_JEQ, R0, 0, 1), BPF_ST_MEM(BPF_DW, R4, 0, 0), BPF_EXIT_INSN()),
    fixup: { map_hash_8b: [4] }, result: 'reject', errstr: 'R4 pointer arithmetic on map_value_or_null', progType: SCHED_CLS,
  },
  {
    descr: 'invalid memory access with multiple map_lookup_elem calls',
    insns: prog(lookupKey10, BPF_MOV64_REG(R8, R1), BPF_MOV64_REG(R7, R2), call(BPF_FUNC.map_lookup_elem), BPF_MOV64_REG(R4, R0),
      BPF_MOV64_REG(R1, R8), BPF_MOV64_REG(R2, R7), call(BPF_FUNC.map_lookup_elem), BPF_JMP_IMM(BPF_JEQ, R0, 0, 1), BPF_ST_MEM(BPF_DW, R4, 0, 0), BPF_EXIT_INSN()),
    fixup: { map_hash_8b: [4] }, result: 'reject', errstr: 'R4 !read_ok', progType: SCHED_CLS,
  },
  {
    descr: 'valid indirect map_lookup_elem access with 2nd lookup in branch',
    insns: prog(lookupKey10, BPF_MOV64_REG(R8, R1), BPF_MOV64_REG(R7, R2), call(BPF_FUNC.map_lookup_elem), BPF_MOV64_IMM(R2, 10),
      BPF_JMP_IMM(BPF_JNE, R2, 0, 3), BPF_MOV64_REG(R1, R8), BPF_MOV64_REG(R2, R7), call(BPF_FUNC.map_lookup_elem), BPF_MOV64_REG(R4, R0),
      BPF_JMP_IMM(BPF_JEQ, R0, 0, 1), BPF_ST_MEM(BPF_DW, R4, 0, 0), BPF_EXIT_INSN()),
    fixup: { map_hash_8b: [4] }, result: 'accept', progType: SCHED_CLS,
  },
  {
    descr: 'invalid map access from else condition',
    insns: prog(lookupSt0, call(BPF_FUNC.map_lookup_elem), BPF_JMP_IMM(BPF_JEQ, R0, 0, 6), BPF_LDX_MEM(BPF_W, R1, R0, 0),
      BPF_JMP_IMM(BPF_JGE, R1, MAX_ENTRIES - 1, 1), BPF_ALU64_IMM(BPF_ADD, R1, 1), BPF_ALU64_IMM(BPF_LSH, R1, 2),
      BPF_ALU64_REG(BPF_ADD, R0, R1), BPF_ST_MEM(BPF_DW, R0, 0, FOO), BPF_EXIT_INSN()),
    fixup: { map_hash_48b: [3] }, result: 'reject', errstr: 'R0 unbounded memory access',
  },
  {
    descr: 'map lookup and null branch prediction',
    insns: prog(lookupKey10, call(BPF_FUNC.map_lookup_elem), BPF_MOV64_REG(R6, R0), BPF_JMP_IMM(BPF_JEQ, R6, 0, 2),
      BPF_JMP_IMM(BPF_JNE, R6, 0, 1), BPF_ALU64_IMM(BPF_ADD, R10, 10), BPF_EXIT_INSN()),
    fixup: { map_hash_8b: [4] }, result: 'accept', progType: SCHED_CLS,
  },
  // map_ret_val.c
  {
    descr: 'invalid map_fd for function call',
    insns: prog(BPF_ST_MEM(BPF_DW, R10, -8, 0), BPF_ALU64_REG(BPF_MOV, R2, R10), BPF_ALU64_IMM(BPF_ADD, R2, -8), BPF_LD_MAP_FD(R1, 0),
      call(BPF_FUNC.map_delete_elem), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'fd 0 is not pointing to valid bpf_map',
  },
  {
    descr: "don't check return value before access",
    insns: prog(lookupSt0, call(BPF_FUNC.map_lookup_elem), BPF_ST_MEM(BPF_DW, R0, 0, 0), BPF_EXIT_INSN()),
    fixup: { map_hash_8b: [3] }, result: 'reject', errstr: "R0 invalid mem access 'map_value_or_null'",
  },
  {
    descr: 'access memory with incorrect alignment',
    insns: prog(lookupSt0, call(BPF_FUNC.map_lookup_elem), BPF_JMP_IMM(BPF_JEQ, R0, 0, 1), BPF_ST_MEM(BPF_DW, R0, 4, 0), BPF_EXIT_INSN()),
    fixup: { map_hash_8b: [3] }, result: 'reject', errstr: 'misaligned value access', strictAlignment: true,
  },
  {
    descr: 'sometimes access memory with incorrect alignment',
    insns: prog(lookupSt0, call(BPF_FUNC.map_lookup_elem), BPF_JMP_IMM(BPF_JEQ, R0, 0, 2), BPF_ST_MEM(BPF_DW, R0, 0, 0), BPF_EXIT_INSN(),
      BPF_ST_MEM(BPF_DW, R0, 0, 1), BPF_EXIT_INSN()),
    fixup: { map_hash_8b: [3] }, result: 'reject', errstr: 'R0 invalid mem access', strictAlignment: true,
  },
  // value.c
  {
    descr: 'map element value store of cleared call register',
    insns: prog(lookupKey0, BPF_JMP_IMM(BPF_JEQ, R0, 0, 1), BPF_STX_MEM(BPF_DW, R0, R1, 0), BPF_EXIT_INSN()),
    fixup: { map_hash_48b: [3] }, result: 'reject', errstr: 'R1 !read_ok',
  },
  {
    descr: 'map element value with unaligned store',
    insns: prog(lookupKey0, BPF_JMP_IMM(BPF_JEQ, R0, 0, 17), BPF_ALU64_IMM(BPF_ADD, R0, 3), BPF_ST_MEM(BPF_DW, R0, 0, 42),
      BPF_ST_MEM(BPF_DW, R0, 2, 43), BPF_ST_MEM(BPF_DW, R0, -2, 44), BPF_MOV64_REG(R8, R0), BPF_ST_MEM(BPF_DW, R8, 0, 32),
      BPF_ST_MEM(BPF_DW, R8, 2, 33), BPF_ST_MEM(BPF_DW, R8, -2, 34), BPF_ALU64_IMM(BPF_ADD, R8, 5), BPF_ST_MEM(BPF_DW, R8, 0, 22),
      BPF_ST_MEM(BPF_DW, R8, 4, 23), BPF_ST_MEM(BPF_DW, R8, -7, 24), BPF_MOV64_REG(R7, R8), BPF_ALU64_IMM(BPF_ADD, R7, 3),
      BPF_ST_MEM(BPF_DW, R7, 0, 22), BPF_ST_MEM(BPF_DW, R7, 4, 23), BPF_ST_MEM(BPF_DW, R7, -4, 24), BPF_EXIT_INSN()),
    fixup: { map_hash_48b: [3] }, result: 'accept',
  },
  {
    descr: 'map element value with unaligned load',
    insns: prog(lookupKey0, BPF_JMP_IMM(BPF_JEQ, R0, 0, 11), BPF_LDX_MEM(BPF_W, R1, R0, 0), BPF_JMP_IMM(BPF_JGE, R1, MAX_ENTRIES, 9),
      BPF_ALU64_IMM(BPF_ADD, R0, 3), BPF_LDX_MEM(BPF_DW, R7, R0, 0), BPF_LDX_MEM(BPF_DW, R7, R0, 2), BPF_MOV64_REG(R8, R0),
      BPF_LDX_MEM(BPF_DW, R7, R8, 0), BPF_LDX_MEM(BPF_DW, R7, R8, 2), BPF_ALU64_IMM(BPF_ADD, R0, 5), BPF_LDX_MEM(BPF_DW, R7, R0, 0),
      BPF_LDX_MEM(BPF_DW, R7, R0, 4), BPF_EXIT_INSN()),
    fixup: { map_hash_48b: [3] }, result: 'accept',
  },
  {
    descr: 'map element value is preserved across register spilling',
    insns: prog(lookupKey0, BPF_JMP_IMM(BPF_JEQ, R0, 0, 7), BPF_ALU64_IMM(BPF_ADD, R0, FOO), BPF_ST_MEM(BPF_DW, R0, 0, 42),
      BPF_MOV64_REG(R1, R10), BPF_ALU64_IMM(BPF_ADD, R1, -184), BPF_STX_MEM(BPF_DW, R1, R0, 0), BPF_LDX_MEM(BPF_DW, R3, R1, 0),
      BPF_ST_MEM(BPF_DW, R3, 0, 42), BPF_EXIT_INSN()),
    fixup: { map_hash_48b: [3] }, result: 'accept',
  },
];
