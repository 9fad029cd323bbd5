/**
 * @fileoverview Selftests of spills and fills of pointers (a partly overwritten spill reads back
 * as a scalar), atomic adds (aligned, not into packets, registers left intact), and dead code
 * (branches the bounds decide are never walked) — verifier/{spill_fill,xadd,dead_code}.c.
 */
import {
  prog, BPF_ST_MEM, BPF_STX_MEM, BPF_STX_XADD, BPF_LDX_MEM, BPF_EXIT_INSN, BPF_MOV64_REG, BPF_MOV64_IMM, BPF_ALU64_IMM, BPF_ALU64_REG,
  BPF_LD_MAP_FD, BPF_JMP_IMM, BPF_JMP_REG, BPF_EMIT_CALL, BPF_CALL_REL, BPF_FUNC,
  BPF_DW, BPF_W, BPF_H, BPF_B, BPF_MOV, BPF_ADD, BPF_JNE, BPF_JGE, BPF_JLT, BPF_JSET, BPF_JA,
  type VCase, R0, R1, R2, R3, R6, R7, R8, R9, R10,
} from './harness.ts';

const SCHED_CLS = 3, XDP = 6;
const SKB_MARK = 8, XDP_DATA = 0, XDP_DATA_END = 4;
const tc = (x: Omit<VCase, 'progType'>): VCase => ({ ...x, progType: SCHED_CLS });
/** xadd.c's "got mangled" programs: r6, r7 copies of r0 and r10 are compared after two xadds. */
const mangled = (size: number): VCase['insns'] => prog(BPF_MOV64_IMM(R0, 1), BPF_MOV64_REG(R6, R0), BPF_MOV64_REG(R7, R10),
  BPF_STX_MEM(size, R10, R0, -8), BPF_STX_XADD(size, R10, R0, -8), BPF_STX_XADD(size, R10, R0, -8),
  BPF_JMP_REG(BPF_JNE, R6, R0, 3), BPF_JMP_REG(BPF_JNE, R7, R10, 2), BPF_LDX_MEM(size, R0, R10, -8), BPF_EXIT_INSN(),
  BPF_MOV64_IMM(R0, 42), BPF_EXIT_INSN());

export const MISC: VCase[] = [
  // spill_fill.c
  { descr: 'check valid spill/fill', insns: prog(BPF_STX_MEM(BPF_DW, R10, R1, -8), BPF_LDX_MEM(BPF_DW, R2, R10, -8), BPF_MOV64_REG(R0, R2), BPF_EXIT_INSN()), result: 'accept' },
  {
    descr: 'check valid spill/fill, skb mark',
    insns: prog(BPF_ALU64_REG(BPF_MOV, R6, R1), BPF_STX_MEM(BPF_DW, R10, R6, -8), BPF_LDX_MEM(BPF_DW, R0, R10, -8), BPF_LDX_MEM(BPF_W, R0, R0, SKB_MARK), BPF_EXIT_INSN()),
    result: 'accept',
  },
  {
    descr: 'check corrupted spill/fill',
    insns: prog(BPF_STX_MEM(BPF_DW, R10, R1, -8), BPF_ST_MEM(BPF_B, R10, -7, 0x23), BPF_LDX_MEM(BPF_DW, R0, R10, -8), BPF_LDX_MEM(BPF_DW, R0, R0, 8), BPF_EXIT_INSN()),
    result: 'reject', errstr: "R0 invalid mem access 'inv",
  },
  { descr: 'check corrupted spill/fill, LSB', insns: prog(BPF_STX_MEM(BPF_DW, R10, R1, -8), BPF_ST_MEM(BPF_H, R10, -8, 0xcafe), BPF_LDX_MEM(BPF_DW, R0, R10, -8), BPF_EXIT_INSN()), result: 'accept' },
  { descr: 'check corrupted spill/fill, MSB', insns: prog(BPF_STX_MEM(BPF_DW, R10, R1, -8), BPF_ST_MEM(BPF_W, R10, -4, 0x12345678), BPF_LDX_MEM(BPF_DW, R0, R10, -8), BPF_EXIT_INSN()), result: 'accept' },

  // xadd.c
  tc({
    descr: 'xadd/w check unaligned stack',
    insns: prog(BPF_MOV64_IMM(R0, 1), BPF_STX_MEM(BPF_DW, R10, R0, -8), BPF_STX_XADD(BPF_W, R10, R0, -7), BPF_LDX_MEM(BPF_DW, R0, R10, -8), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'misaligned stack access off',
  }),
  tc({
    descr: 'xadd/w check unaligned map',
    insns: prog(BPF_ST_MEM(BPF_DW, R10, -8, 0), BPF_MOV64_REG(R2, R10), BPF_ALU64_IMM(BPF_ADD, R2, -8), BPF_LD_MAP_FD(R1, 0),
      BPF_EMIT_CALL(BPF_FUNC.map_lookup_elem), BPF_JMP_IMM(BPF_JNE, R0, 0, 1), BPF_EXIT_INSN(), BPF_MOV64_IMM(R1, 1),
      BPF_STX_XADD(BPF_W, R0, R1, 3), BPF_LDX_MEM(BPF_W, R0, R0, 3), BPF_EXIT_INSN()),
    fixup: { map_hash_8b: [3] }, result: 'reject', errstr: 'misaligned value access off',
  }),
  {
    descr: 'xadd/w check unaligned pkt',
    insns: prog(BPF_LDX_MEM(BPF_W, R2, R1, XDP_DATA), BPF_LDX_MEM(BPF_W, R3, R1, XDP_DATA_END), BPF_MOV64_REG(R1, R2), BPF_ALU64_IMM(BPF_ADD, R1, 8),
      BPF_JMP_REG(BPF_JLT, R1, R3, 2), BPF_MOV64_IMM(R0, 99), BPF_JMP_IMM(BPF_JA, 0, 0, 6), BPF_MOV64_IMM(R0, 1),
      BPF_ST_MEM(BPF_W, R2, 0, 0), BPF_ST_MEM(BPF_W, R2, 3, 0), BPF_STX_XADD(BPF_W, R2, R0, 1), BPF_STX_XADD(BPF_W, R2, R0, 2),
      BPF_LDX_MEM(BPF_W, R0, R2, 1), BPF_EXIT_INSN()),
    progType: XDP, result: 'reject', errstr: 'BPF_XADD stores into R2 pkt is not allowed',
  },
  tc({ descr: 'xadd/w check whether src/dst got mangled, 1', insns: mangled(BPF_DW), result: 'accept' }),
  tc({ descr: 'xadd/w check whether src/dst got mangled, 2', insns: mangled(BPF_W), result: 'accept' }),

  // dead_code.c
  {
    descr: 'dead code: start',
    insns: prog(BPF_JMP_IMM(BPF_JA, 0, 0, 2), BPF_LDX_MEM(BPF_B, R8, R9, 0), BPF_JMP_IMM(BPF_JA, 0, 0, 2), BPF_MOV64_IMM(R0, 7),
      BPF_JMP_IMM(BPF_JGE, R0, 10, -4), BPF_EXIT_INSN()),
    result: 'accept',
  },
  { descr: 'dead code: mid 1', insns: prog(BPF_MOV64_IMM(R0, 7), BPF_JMP_IMM(BPF_JGE, R0, 0, 1), BPF_JMP_IMM(BPF_JGE, R0, 10, 0), BPF_EXIT_INSN()), result: 'accept' },
  {
    descr: 'dead code: mid 2',
    insns: prog(BPF_EMIT_CALL(BPF_FUNC.get_prandom_u32), BPF_JMP_IMM(BPF_JSET, R0, 1, 4), BPF_JMP_IMM(BPF_JSET, R0, 1, 1), BPF_JMP_IMM(BPF_JA, 0, 0, 2),
      BPF_MOV64_IMM(R0, 7), BPF_EXIT_INSN(), BPF_MOV64_IMM(R0, 1), BPF_EXIT_INSN()),
    result: 'accept',
  },
  { descr: 'dead code: end 1', insns: prog(BPF_MOV64_IMM(R0, 7), BPF_JMP_IMM(BPF_JGE, R0, 10, 1), BPF_EXIT_INSN(), BPF_EXIT_INSN()), result: 'accept' },
  { descr: 'dead code: end 2', insns: prog(BPF_MOV64_IMM(R0, 7), BPF_JMP_IMM(BPF_JGE, R0, 10, 1), BPF_EXIT_INSN(), BPF_MOV64_IMM(R0, 12), BPF_EXIT_INSN()), result: 'accept' },
  {
    descr: 'dead code: end 3',
    insns: prog(BPF_MOV64_IMM(R0, 7), BPF_JMP_IMM(BPF_JGE, R0, 8, 1), BPF_EXIT_INSN(), BPF_JMP_IMM(BPF_JGE, R0, 10, 1), BPF_JMP_IMM(BPF_JA, 0, 0, 1),
      BPF_MOV64_IMM(R0, 12), BPF_JMP_IMM(BPF_JA, 0, 0, -5)),
    result: 'accept',
  },
  {
    descr: 'dead code: tail of main + func',
    insns: prog(BPF_MOV64_IMM(R0, 7), BPF_JMP_IMM(BPF_JGE, R0, 8, 1), BPF_EXIT_INSN(), BPF_CALL_REL(1), BPF_EXIT_INSN(), BPF_MOV64_IMM(R0, 12), BPF_EXIT_INSN()),
    result: 'accept',
  },
  {
    descr: 'dead code: tail of main + two functions',
    insns: prog(BPF_MOV64_IMM(R0, 7), BPF_JMP_IMM(BPF_JGE, R0, 8, 1), BPF_EXIT_INSN(), BPF_CALL_REL(1), BPF_EXIT_INSN(), BPF_CALL_REL(1), BPF_EXIT_INSN(),
      BPF_MOV64_IMM(R0, 12), BPF_EXIT_INSN()),
    result: 'accept',
  },
  {
    descr: 'dead code: function in the middle and mid of another func',
    insns: prog(BPF_MOV64_IMM(R1, 7), BPF_CALL_REL(3), BPF_EXIT_INSN(), BPF_MOV64_IMM(R0, 12), BPF_EXIT_INSN(), BPF_MOV64_IMM(R0, 7),
      BPF_JMP_IMM(BPF_JGE, R1, 7, 1), BPF_CALL_REL(-5), BPF_EXIT_INSN()),
    result: 'accept',
  },
  {
    descr: 'dead code: middle of main before call',
    insns: prog(BPF_MOV64_IMM(R1, 2), BPF_JMP_IMM(BPF_JGE, R1, 2, 1), BPF_MOV64_IMM(R1, 5), BPF_CALL_REL(1), BPF_EXIT_INSN(), BPF_MOV64_REG(R0, R1), BPF_EXIT_INSN()),
    result: 'accept',
  },
  {
    descr: 'dead code: start of a function',
    insns: prog(BPF_MOV64_IMM(R1, 2), BPF_CALL_REL(1), BPF_EXIT_INSN(), BPF_JMP_IMM(BPF_JA, 0, 0, 0), BPF_MOV64_REG(R0, R1), BPF_EXIT_INSN()),
    result: 'accept',
  },
];
