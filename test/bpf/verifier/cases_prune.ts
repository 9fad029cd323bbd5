/**
 * @fileoverview Selftests of state pruning and scalar precision: explored states must not cover
 * a current state that differs in what matters (a pointer against a scalar, a stack slot's
 * contents, a scalar's range once it is precise), and the backtracking log of
 * mark_chain_precision (verifier/{search_pruning,precise}.c).
 */
import {
  prog, BPF_ST_MEM, BPF_STX_MEM, BPF_LDX_MEM, BPF_EXIT_INSN, BPF_MOV64_REG, BPF_MOV64_IMM, BPF_MOV32_IMM, BPF_ALU64_IMM, BPF_ALU64_REG,
  BPF_ALU32_IMM, BPF_LD_MAP_FD, BPF_JMP_IMM, BPF_JMP_REG, BPF_JMP_A, BPF_EMIT_CALL, BPF_CALL_REL, BPF_FUNC,
  BPF_DW, BPF_W, BPF_B, BPF_MOV, BPF_ADD, BPF_SUB, BPF_LSH, BPF_JEQ, BPF_JNE, BPF_JGE, BPF_JGT, BPF_JLT, BPF_JSGT, BPF_JA,
  type VCase, R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10,
} from './harness.ts';

const SOCKET_FILTER = 1, TRACEPOINT = 5, XDP = 6;
/** r2 = fp - 8; *(u64 *)r2 = 0; r1 = map; call map_lookup_elem (the map's ld_imm64 at 3) */
const lookup = prog(BPF_ST_MEM(BPF_DW, R10, -8, 0), BPF_MOV64_REG(R2, R10), BPF_ALU64_IMM(BPF_ADD, R2, -8), BPF_LD_MAP_FD(R1, 0),
  BPF_EMIT_CALL(BPF_FUNC.map_lookup_elem));
const lookup2 = prog(BPF_MOV64_REG(R2, R10), BPF_ALU64_IMM(BPF_ADD, R2, -8), BPF_ST_MEM(BPF_DW, R2, 0, 0), BPF_LD_MAP_FD(R1, 0),
  BPF_EMIT_CALL(BPF_FUNC.map_lookup_elem));
/** precise.c's test 1/2: the difference of two map value pointers is a scalar, bounded, used as a size. */
const preciseProg = prog(
  BPF_MOV64_IMM(R0, 1), BPF_LD_MAP_FD(R6, 0), BPF_MOV64_REG(R1, R6), BPF_MOV64_REG(R2, R10), BPF_ALU64_IMM(BPF_ADD, R2, -8),
  BPF_ST_MEM(BPF_DW, R10, -8, 0), BPF_EMIT_CALL(BPF_FUNC.map_lookup_elem), BPF_JMP_IMM(BPF_JNE, R0, 0, 1), BPF_EXIT_INSN(),
  BPF_MOV64_REG(R9, R0),
  BPF_MOV64_REG(R1, R6), BPF_MOV64_REG(R2, R10), BPF_ALU64_IMM(BPF_ADD, R2, -8), BPF_EMIT_CALL(BPF_FUNC.map_lookup_elem),
  BPF_JMP_IMM(BPF_JNE, R0, 0, 1), BPF_EXIT_INSN(),
  BPF_MOV64_REG(R8, R0),
  BPF_ALU64_REG(BPF_SUB, R9, R8), BPF_MOV64_REG(R2, R9), BPF_JMP_IMM(BPF_JLT, R2, 8, 1), BPF_EXIT_INSN(),
  BPF_ALU64_IMM(BPF_ADD, R2, 1), BPF_MOV64_REG(R1, R10), BPF_ALU64_IMM(BPF_ADD, R1, -8), BPF_MOV64_IMM(R3, 0),
  BPF_EMIT_CALL(BPF_FUNC.probe_read_kernel), BPF_EXIT_INSN());

export const PRUNE: VCase[] = [
  // search_pruning.c
  {
    descr: 'pointer/scalar confusion in state equality check (way 1)',
    insns: prog(lookup, BPF_JMP_IMM(BPF_JEQ, R0, 0, 2), BPF_LDX_MEM(BPF_DW, R0, R0, 0), BPF_JMP_A(1), BPF_MOV64_REG(R0, R10), BPF_JMP_A(0), BPF_EXIT_INSN()),
    fixup: { map_hash_8b: [3] }, result: 'accept',
  },
  {
    descr: 'pointer/scalar confusion in state equality check (way 2)',
    insns: prog(lookup, BPF_JMP_IMM(BPF_JNE, R0, 0, 2), BPF_MOV64_REG(R0, R10), BPF_JMP_A(1), BPF_LDX_MEM(BPF_DW, R0, R0, 0), BPF_EXIT_INSN()),
    fixup: { map_hash_8b: [3] }, result: 'accept',
  },
  {
    descr: 'liveness pruning and write screening',
    insns: prog(BPF_LDX_MEM(BPF_W, R2, R1, 0), BPF_JMP_IMM(BPF_JGE, R2, 0, 1), BPF_MOV64_IMM(R0, 0), BPF_JMP_IMM(BPF_JGE, R2, 0, 1),
      BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'R0 !read_ok', progType: SOCKET_FILTER, note: 'the selftest is LWT_IN, whose ctx is the same __sk_buff; bpfemu has no LWT programs',
  },
  {
    descr: 'varlen_map_value_access pruning',
    insns: prog(lookup, BPF_JMP_IMM(BPF_JEQ, R0, 0, 8), BPF_LDX_MEM(BPF_DW, R1, R0, 0), BPF_MOV32_IMM(R2, 4), BPF_JMP_REG(BPF_JSGT, R2, R1, 1),
      BPF_MOV32_IMM(R1, 0), BPF_ALU32_IMM(BPF_LSH, R1, 2), BPF_ALU64_REG(BPF_ADD, R0, R1), BPF_JMP_IMM(BPF_JA, 0, 0, 0),
      BPF_ST_MEM(BPF_DW, R0, 0, 4), BPF_EXIT_INSN()),
    fixup: { map_hash_48b: [3] }, result: 'reject', errstr: 'R0 unbounded memory access',
  },
  {
    descr: 'search pruning: all branches should be verified (nop operation)',
    insns: prog(lookup2, BPF_JMP_IMM(BPF_JEQ, R0, 0, 11), BPF_LDX_MEM(BPF_DW, R3, R0, 0), BPF_JMP_IMM(BPF_JEQ, R3, 0xbeef, 2),
      BPF_MOV64_IMM(R4, 0), BPF_JMP_A(1), BPF_MOV64_IMM(R4, 1), BPF_STX_MEM(BPF_DW, R10, R4, -16), BPF_EMIT_CALL(BPF_FUNC.ktime_get_ns),
      BPF_LDX_MEM(BPF_DW, R5, R10, -16), BPF_JMP_IMM(BPF_JEQ, R5, 0, 2), BPF_MOV64_IMM(R6, 0), BPF_ST_MEM(BPF_DW, R6, 0, 0xdead), BPF_EXIT_INSN()),
    fixup: { map_hash_8b: [3] }, result: 'reject', errstr: "R6 invalid mem access 'inv'", progType: TRACEPOINT,
  },
  {
    descr: 'search pruning: all branches should be verified (invalid stack access)',
    insns: prog(lookup2, BPF_JMP_IMM(BPF_JEQ, R0, 0, 8), BPF_LDX_MEM(BPF_DW, R3, R0, 0), BPF_MOV64_IMM(R4, 0), BPF_JMP_IMM(BPF_JEQ, R3, 0xbeef, 2),
      BPF_STX_MEM(BPF_DW, R10, R4, -16), BPF_JMP_A(1), BPF_STX_MEM(BPF_DW, R10, R4, -24), BPF_EMIT_CALL(BPF_FUNC.ktime_get_ns),
      BPF_LDX_MEM(BPF_DW, R5, R10, -16), BPF_EXIT_INSN()),
    fixup: { map_hash_8b: [3] }, result: 'reject', errstr: 'invalid read from stack off -16+0 size 8', progType: TRACEPOINT,
  },
  {
    descr: 'allocated_stack',
    insns: prog(BPF_ALU64_REG(BPF_MOV, R6, R1), BPF_EMIT_CALL(BPF_FUNC.get_prandom_u32), BPF_ALU64_REG(BPF_MOV, R7, R0), BPF_JMP_IMM(BPF_JEQ, R0, 0, 5),
      BPF_MOV64_IMM(R0, 0), BPF_STX_MEM(BPF_DW, R10, R6, -8), BPF_LDX_MEM(BPF_DW, R6, R10, -8), BPF_STX_MEM(BPF_B, R10, R7, -9),
      BPF_LDX_MEM(BPF_B, R7, R10, -9), BPF_JMP_IMM(BPF_JNE, R0, 0, 0), BPF_JMP_IMM(BPF_JNE, R0, 0, 0), BPF_JMP_IMM(BPF_JNE, R0, 0, 0),
      BPF_JMP_IMM(BPF_JNE, R0, 0, 0), BPF_EXIT_INSN()),
    result: 'accept', insnProcessed: 15,
  },
  {
    descr: 'write tracking and register parent chain bug',
    insns: prog(BPF_EMIT_CALL(BPF_FUNC.ktime_get_ns), BPF_MOV64_REG(R6, R0), BPF_EMIT_CALL(BPF_FUNC.ktime_get_ns), BPF_JMP_REG(BPF_JGT, R0, R6, 1),
      BPF_ST_MEM(BPF_DW, R10, -8, 0xdeadbeef), BPF_MOV64_IMM(R1, 42), BPF_STX_MEM(BPF_B, R10, R1, -8), BPF_LDX_MEM(BPF_DW, R2, R10, -8),
      BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    testStateFreq: true, result: 'reject', errstr: 'invalid read from stack off -8+1 size 8',
  },

  // precise.c
  {
    descr: 'precise: test 1', insns: preciseProg, progType: TRACEPOINT, fixup: { map_array_48b: [1] }, result: 'accept',
    logSeq: ['26: (85) call bpf_probe_read_kernel#113', 'last_idx 26 first_idx 20', 'regs=4 stack=0 before 25', 'regs=4 stack=0 before 24',
      'regs=4 stack=0 before 23', 'regs=4 stack=0 before 22', 'regs=4 stack=0 before 20', "parent didn't have regs=4 stack=0 marks",
      'last_idx 19 first_idx 10', 'regs=4 stack=0 before 19', 'regs=200 stack=0 before 18', 'regs=300 stack=0 before 17',
      'regs=201 stack=0 before 15', 'regs=201 stack=0 before 14', 'regs=200 stack=0 before 13', 'regs=200 stack=0 before 12',
      'regs=200 stack=0 before 11', 'regs=200 stack=0 before 10', 'parent already had regs=0 stack=0 marks'],
  },
  {
    descr: 'precise: test 2', insns: preciseProg, progType: TRACEPOINT, fixup: { map_array_48b: [1] }, result: 'accept', testStateFreq: true,
    logSeq: ['26: (85) call bpf_probe_read_kernel#113', 'last_idx 26 first_idx 22', 'regs=4 stack=0 before 25', 'regs=4 stack=0 before 24',
      'regs=4 stack=0 before 23', 'regs=4 stack=0 before 22', "parent didn't have regs=4 stack=0 marks", 'last_idx 20 first_idx 20',
      'regs=4 stack=0 before 20', "parent didn't have regs=4 stack=0 marks", 'last_idx 19 first_idx 17', 'regs=4 stack=0 before 19',
      'regs=200 stack=0 before 18', 'regs=300 stack=0 before 17', 'parent already had regs=0 stack=0 marks'],
  },
  {
    descr: 'precise: cross frame pruning',
    insns: prog(BPF_EMIT_CALL(BPF_FUNC.get_prandom_u32), BPF_MOV64_IMM(R8, 0), BPF_JMP_IMM(BPF_JNE, R0, 0, 1), BPF_MOV64_IMM(R8, 1),
      BPF_EMIT_CALL(BPF_FUNC.get_prandom_u32), BPF_MOV64_IMM(R9, 0), BPF_JMP_IMM(BPF_JNE, R0, 0, 1), BPF_MOV64_IMM(R9, 1),
      BPF_MOV64_REG(R1, R0), BPF_CALL_REL(4), BPF_JMP_IMM(BPF_JEQ, R8, 1, 1), BPF_LDX_MEM(BPF_B, R1, R2, 0), BPF_MOV64_IMM(R0, 0),
      BPF_EXIT_INSN(), BPF_JMP_IMM(BPF_JEQ, R1, 0, 0), BPF_EXIT_INSN()),
    progType: XDP, testStateFreq: true, result: 'reject', errstr: '!read_ok',
  },
  {
    descr: 'precise: ST insn causing spi > allocated_stack',
    insns: prog(BPF_MOV64_REG(R3, R10), BPF_JMP_IMM(BPF_JNE, R3, 123, 0), BPF_ST_MEM(BPF_DW, R3, -8, 0), BPF_LDX_MEM(BPF_DW, R4, R10, -8),
      BPF_MOV64_IMM(R0, -1), BPF_JMP_REG(BPF_JGT, R4, R0, 0), BPF_EXIT_INSN()),
    progType: XDP, testStateFreq: true, result: 'accept',
    logSeq: ['5: (2d) if r4 > r0 goto pc+0', 'last_idx 5 first_idx 5', "parent didn't have regs=10 stack=0 marks", 'last_idx 4 first_idx 2',
      'regs=10 stack=0 before 4', 'regs=10 stack=0 before 3', 'regs=0 stack=1 before 2', 'last_idx 5 first_idx 5',
      "parent didn't have regs=1 stack=0 marks"],
  },
  {
    descr: 'precise: STX insn causing spi > allocated_stack',
    insns: prog(BPF_EMIT_CALL(BPF_FUNC.get_prandom_u32), BPF_MOV64_REG(R3, R10), BPF_JMP_IMM(BPF_JNE, R3, 123, 0), BPF_STX_MEM(BPF_DW, R3, R0, -8),
      BPF_LDX_MEM(BPF_DW, R4, R10, -8), BPF_MOV64_IMM(R0, -1), BPF_JMP_REG(BPF_JGT, R4, R0, 0), BPF_EXIT_INSN()),
    progType: XDP, testStateFreq: true, result: 'accept',
    logSeq: ['last_idx 6 first_idx 6', "parent didn't have regs=10 stack=0 marks", 'last_idx 5 first_idx 3', 'regs=10 stack=0 before 5',
      'regs=10 stack=0 before 4', 'regs=0 stack=1 before 3', 'last_idx 6 first_idx 6', "parent didn't have regs=1 stack=0 marks",
      'last_idx 5 first_idx 3', 'regs=1 stack=0 before 5'],
  },
];
