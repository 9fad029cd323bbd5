/**
 * @fileoverview Selftests of the stack: helpers writing uninitialised stack (raw mode) and
 * clobbering spilled registers, stack pointer arithmetic and the 512-byte bounds
 * (verifier/{raw_stack,stack_ptr}.c).
 */
import {
  prog, BPF_ST_MEM, BPF_STX_MEM, BPF_LDX_MEM, BPF_EXIT_INSN, BPF_MOV64_REG, BPF_MOV64_IMM, BPF_ALU64_IMM, BPF_ALU64_REG,
  BPF_LD_MAP_FD, BPF_JMP_IMM, BPF_JMP_REG, BPF_JMP_A, BPF_EMIT_CALL, BPF_FUNC,
  BPF_DW, BPF_W, BPF_B, BPF_ADD, BPF_MOV, BPF_JEQ, BPF_JNE,
  type VCase, R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10,
} from './harness.ts';

const SCHED_CLS = 3;
const PRIORITY = 32, PKT_TYPE = 4, MARK = 8;
/** r2 = 4; r6 = fp + off; r3 = r6; r4 = len */
const rs = (off: number, len: number, ...between: ReturnType<typeof BPF_ST_MEM>[]) =>
  prog(BPF_MOV64_IMM(R2, 4), BPF_ALU64_REG(BPF_MOV, R6, R10), BPF_ALU64_IMM(BPF_ADD, R6, off), ...between, BPF_MOV64_REG(R3, R6), BPF_MOV64_IMM(R4, len));
const loadBytes = BPF_EMIT_CALL(BPF_FUNC.skb_load_bytes);
const tail = prog(BPF_LDX_MEM(BPF_DW, R0, R6, 0), BPF_EXIT_INSN());
const tc = (x: Omit<VCase, 'progType'>): VCase => ({ ...x, progType: SCHED_CLS });
const stk = (off1: number, soff: number, size = BPF_B) => prog(BPF_MOV64_REG(R1, R10), BPF_ALU64_IMM(BPF_ADD, R1, off1),
  BPF_ST_MEM(size, R1, soff, 42), BPF_LDX_MEM(size, R0, R1, soff), BPF_EXIT_INSN());

export const STACK: VCase[] = [
  // raw_stack.c
  tc({ descr: 'raw_stack: no skb_load_bytes', insns: prog(rs(-8, 8), tail), result: 'reject', errstr: 'invalid read from stack R6 off=-8 size=8' }),
  tc({ descr: 'raw_stack: skb_load_bytes, negative len', insns: prog(rs(-8, -8), loadBytes, tail), result: 'reject', errstr: 'R4 min value is negative' }),
  tc({ descr: 'raw_stack: skb_load_bytes, negative len 2', insns: prog(rs(-8, ~0), loadBytes, tail), result: 'reject', errstr: 'R4 min value is negative' }),
  tc({ descr: 'raw_stack: skb_load_bytes, zero len', insns: prog(rs(-8, 0), loadBytes, tail), result: 'reject', errstr: 'invalid zero-sized read' }),
  tc({ descr: 'raw_stack: skb_load_bytes, no init', insns: prog(rs(-8, 8), loadBytes, tail), result: 'accept' }),
  tc({ descr: 'raw_stack: skb_load_bytes, init', insns: prog(rs(-8, 8, BPF_ST_MEM(BPF_DW, R6, 0, 0xcafe)), loadBytes, tail), result: 'accept' }),
  tc({
    descr: 'raw_stack: skb_load_bytes, spilled regs around bounds',
    insns: prog(rs(-16, 8, BPF_STX_MEM(BPF_DW, R6, R1, -8), BPF_STX_MEM(BPF_DW, R6, R1, 8)), loadBytes, BPF_LDX_MEM(BPF_DW, R0, R6, -8),
      BPF_LDX_MEM(BPF_DW, R2, R6, 8), BPF_LDX_MEM(BPF_W, R0, R0, MARK), BPF_LDX_MEM(BPF_W, R2, R2, PRIORITY), BPF_ALU64_REG(BPF_ADD, R0, R2), BPF_EXIT_INSN()),
    result: 'accept',
  }),
  tc({
    descr: 'raw_stack: skb_load_bytes, spilled regs corruption',
    insns: prog(rs(-8, 8, BPF_STX_MEM(BPF_DW, R6, R1, 0)), loadBytes, BPF_LDX_MEM(BPF_DW, R0, R6, 0), BPF_LDX_MEM(BPF_W, R0, R0, MARK), BPF_EXIT_INSN()),
    result: 'reject', errstr: "R0 invalid mem access 'inv'",
  }),
  tc({
    descr: 'raw_stack: skb_load_bytes, spilled regs corruption 2',
    insns: prog(rs(-16, 8, BPF_STX_MEM(BPF_DW, R6, R1, -8), BPF_STX_MEM(BPF_DW, R6, R1, 0), BPF_STX_MEM(BPF_DW, R6, R1, 8)), loadBytes,
      BPF_LDX_MEM(BPF_DW, R0, R6, -8), BPF_LDX_MEM(BPF_DW, R2, R6, 8), BPF_LDX_MEM(BPF_DW, R3, R6, 0), BPF_LDX_MEM(BPF_W, R0, R0, MARK),
      BPF_LDX_MEM(BPF_W, R2, R2, PRIORITY), BPF_ALU64_REG(BPF_ADD, R0, R2), BPF_LDX_MEM(BPF_W, R3, R3, PKT_TYPE), BPF_ALU64_REG(BPF_ADD, R0, R3), BPF_EXIT_INSN()),
    result: 'reject', errstr: "R3 invalid mem access 'inv'",
  }),
  tc({
    descr: 'raw_stack: skb_load_bytes, spilled regs + data',
    insns: prog(rs(-16, 8, BPF_STX_MEM(BPF_DW, R6, R1, -8), BPF_STX_MEM(BPF_DW, R6, R1, 0), BPF_STX_MEM(BPF_DW, R6, R1, 8)), loadBytes,
      BPF_LDX_MEM(BPF_DW, R0, R6, -8), BPF_LDX_MEM(BPF_DW, R2, R6, 8), BPF_LDX_MEM(BPF_DW, R3, R6, 0), BPF_LDX_MEM(BPF_W, R0, R0, MARK),
      BPF_LDX_MEM(BPF_W, R2, R2, PRIORITY), BPF_ALU64_REG(BPF_ADD, R0, R2), BPF_ALU64_REG(BPF_ADD, R0, R3), BPF_EXIT_INSN()),
    result: 'accept',
  }),
  tc({ descr: 'raw_stack: skb_load_bytes, invalid access 1', insns: prog(rs(-513, 8), loadBytes, tail), result: 'reject', errstr: 'invalid indirect access to stack R3 off=-513 size=8' }),
  tc({ descr: 'raw_stack: skb_load_bytes, invalid access 2', insns: prog(rs(-1, 8), loadBytes, tail), result: 'reject', errstr: 'invalid indirect access to stack R3 off=-1 size=8' }),
  tc({ descr: 'raw_stack: skb_load_bytes, invalid access 3', insns: prog(rs(0xffffffff, 0xffffffff), loadBytes, tail), result: 'reject', errstr: 'R4 min value is negative' }),
  tc({ descr: 'raw_stack: skb_load_bytes, invalid access 4', insns: prog(rs(-1, 0x7fffffff), loadBytes, tail), result: 'reject', errstr: "R4 unbounded memory access, use 'var &= const' or 'if (var < const)'" }),
  tc({ descr: 'raw_stack: skb_load_bytes, invalid access 5', insns: prog(rs(-512, 0x7fffffff), loadBytes, tail), result: 'reject', errstr: "R4 unbounded memory access, use 'var &= const' or 'if (var < const)'" }),
  tc({ descr: 'raw_stack: skb_load_bytes, invalid access 6', insns: prog(rs(-512, 0), loadBytes, tail), result: 'reject', errstr: 'invalid zero-sized read' }),
  tc({ descr: 'raw_stack: skb_load_bytes, large access', insns: prog(rs(-512, 512), loadBytes, tail), result: 'accept' }),
  // stack_ptr.c
  { descr: 'PTR_TO_STACK store/load', insns: prog(BPF_MOV64_REG(R1, R10), BPF_ALU64_IMM(BPF_ADD, R1, -10), BPF_ST_MEM(BPF_DW, R1, 2, 0xfaceb00c), BPF_LDX_MEM(BPF_DW, R0, R1, 2), BPF_EXIT_INSN()), result: 'accept' },
  { descr: 'PTR_TO_STACK store/load - bad alignment on off', insns: prog(BPF_MOV64_REG(R1, R10), BPF_ALU64_IMM(BPF_ADD, R1, -8), BPF_ST_MEM(BPF_DW, R1, 2, 0xfaceb00c), BPF_LDX_MEM(BPF_DW, R0, R1, 2), BPF_EXIT_INSN()), result: 'reject', errstr: 'misaligned stack access off (0x0; 0x0)+-8+2 size 8' },
  { descr: 'PTR_TO_STACK store/load - bad alignment on reg', insns: prog(BPF_MOV64_REG(R1, R10), BPF_ALU64_IMM(BPF_ADD, R1, -10), BPF_ST_MEM(BPF_DW, R1, 8, 0xfaceb00c), BPF_LDX_MEM(BPF_DW, R0, R1, 8), BPF_EXIT_INSN()), result: 'reject', errstr: 'misaligned stack access off (0x0; 0x0)+-10+8 size 8' },
  { descr: 'PTR_TO_STACK store/load - out of bounds low', insns: prog(BPF_MOV64_REG(R1, R10), BPF_ALU64_IMM(BPF_ADD, R1, -80000), BPF_ST_MEM(BPF_DW, R1, 8, 0xfaceb00c), BPF_LDX_MEM(BPF_DW, R0, R1, 8), BPF_EXIT_INSN()), result: 'reject', errstr: 'invalid write to stack R1 off=-79992 size=8' },
  { descr: 'PTR_TO_STACK store/load - out of bounds high', insns: prog(BPF_MOV64_REG(R1, R10), BPF_ALU64_IMM(BPF_ADD, R1, -8), BPF_ST_MEM(BPF_DW, R1, 8, 0xfaceb00c), BPF_LDX_MEM(BPF_DW, R0, R1, 8), BPF_EXIT_INSN()), result: 'reject', errstr: 'invalid write to stack R1 off=0 size=8' },
  { descr: 'PTR_TO_STACK check high 1', insns: stk(-1, 0), result: 'accept' },
  { descr: 'PTR_TO_STACK check high 2', insns: prog(BPF_MOV64_REG(R1, R10), BPF_ST_MEM(BPF_B, R1, -1, 42), BPF_LDX_MEM(BPF_B, R0, R1, -1), BPF_EXIT_INSN()), result: 'accept' },
  { descr: 'PTR_TO_STACK check high 3', insns: stk(0, -1), result: 'accept' },
  { descr: 'PTR_TO_STACK check high 4', insns: stk(0, 0), result: 'reject', errstr: 'invalid write to stack R1 off=0 size=1' },
  { descr: 'PTR_TO_STACK check high 5', insns: stk((1 << 29) - 1, 0), result: 'reject', errstr: 'invalid write to stack R1' },
  { descr: 'PTR_TO_STACK check high 6', insns: stk((1 << 29) - 1, 0x7fff), result: 'reject', errstr: 'invalid write to stack' },
  {
    descr: 'PTR_TO_STACK check high 7',
    insns: prog(BPF_MOV64_REG(R1, R10), BPF_ALU64_IMM(BPF_ADD, R1, (1 << 29) - 1), BPF_ALU64_IMM(BPF_ADD, R1, (1 << 29) - 1),
      BPF_ST_MEM(BPF_B, R1, 0x7fff, 42), BPF_LDX_MEM(BPF_B, R0, R1, 0x7fff), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'fp pointer offset',
  },
  { descr: 'PTR_TO_STACK check low 1', insns: stk(-512, 0), result: 'accept' },
  { descr: 'PTR_TO_STACK check low 2', insns: stk(-513, 1), result: 'accept' },
  { descr: 'PTR_TO_STACK check low 3', insns: stk(-513, 0), result: 'reject', errstr: 'invalid write to stack R1 off=-513 size=1' },
  { descr: 'PTR_TO_STACK check low 4', insns: stk(-0x80000000, 0), result: 'reject', errstr: 'math between fp pointer' },
  { descr: 'PTR_TO_STACK check low 5', insns: stk(-((1 << 29) - 1), 0), result: 'reject', errstr: 'invalid write to stack' },
  { descr: 'PTR_TO_STACK check low 6', insns: stk(-((1 << 29) - 1), -0x8000), result: 'reject', errstr: 'invalid write to stack' },
  {
    descr: 'PTR_TO_STACK check low 7',
    insns: prog(BPF_MOV64_REG(R1, R10), BPF_ALU64_IMM(BPF_ADD, R1, -((1 << 29) - 1)), BPF_ALU64_IMM(BPF_ADD, R1, -((1 << 29) - 1)),
      BPF_ST_MEM(BPF_B, R1, -0x8000, 42), BPF_LDX_MEM(BPF_B, R0, R1, -0x8000), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'fp pointer offset',
  },
  {
    descr: 'PTR_TO_STACK mixed reg/k, 1',
    insns: prog(BPF_MOV64_REG(R1, R10), BPF_ALU64_IMM(BPF_ADD, R1, -3), BPF_MOV64_IMM(R2, -3), BPF_ALU64_REG(BPF_ADD, R1, R2),
      BPF_ST_MEM(BPF_B, R1, 0, 42), BPF_LDX_MEM(BPF_B, R0, R1, 0), BPF_EXIT_INSN()),
    result: 'accept',
  },
  {
    descr: 'PTR_TO_STACK mixed reg/k, 2',
    insns: prog(BPF_ST_MEM(BPF_DW, R10, -8, 0), BPF_ST_MEM(BPF_DW, R10, -16, 0), BPF_MOV64_REG(R1, R10), BPF_ALU64_IMM(BPF_ADD, R1, -3),
      BPF_MOV64_IMM(R2, -3), BPF_ALU64_REG(BPF_ADD, R1, R2), BPF_ST_MEM(BPF_B, R1, 0, 42), BPF_MOV64_REG(R5, R10), BPF_LDX_MEM(BPF_B, R0, R5, -6), BPF_EXIT_INSN()),
    result: 'accept',
  },
  {
    descr: 'PTR_TO_STACK mixed reg/k, 3',
    insns: prog(BPF_MOV64_REG(R1, R10), BPF_ALU64_IMM(BPF_ADD, R1, -3), BPF_MOV64_IMM(R2, -3), BPF_ALU64_REG(BPF_ADD, R1, R2),
      BPF_ST_MEM(BPF_B, R1, 0, 42), BPF_MOV64_REG(R0, R2), BPF_EXIT_INSN()),
    result: 'accept',
  },
  {
    descr: 'PTR_TO_STACK reg',
    insns: prog(BPF_MOV64_REG(R1, R10), BPF_MOV64_IMM(R2, -3), BPF_ALU64_REG(BPF_ADD, R1, R2), BPF_ST_MEM(BPF_B, R1, 0, 42), BPF_LDX_MEM(BPF_B, R0, R1, 0), BPF_EXIT_INSN()),
    result: 'accept',
  },
  {
    descr: 'stack pointer arithmetic',
    insns: prog(BPF_MOV64_IMM(R1, 4), BPF_JMP_A(0), BPF_MOV64_REG(R7, R10), BPF_ALU64_IMM(BPF_ADD, R7, -10), BPF_ALU64_IMM(BPF_ADD, R7, -10),
      BPF_MOV64_REG(R2, R7), BPF_ALU64_REG(BPF_ADD, R2, R1), BPF_ST_MEM(BPF_W, R2, 4, 0), BPF_MOV64_REG(R2, R7), BPF_ALU64_IMM(BPF_ADD, R2, 8),
      BPF_ST_MEM(BPF_W, R2, 4, 0), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    result: 'accept',
  },
  tc({
    descr: 'store PTR_TO_STACK in R10 to array map using BPF_B',
    insns: prog(BPF_MOV64_REG(R2, R10), BPF_ALU64_IMM(BPF_ADD, R2, -8), BPF_ST_MEM(BPF_DW, R2, 0, 0), BPF_LD_MAP_FD(R1, 0),
      BPF_EMIT_CALL(BPF_FUNC.map_lookup_elem), BPF_JMP_IMM(BPF_JNE, R0, 0, 2), BPF_MOV64_IMM(R0, 2), BPF_EXIT_INSN(), BPF_MOV64_REG(R1, R0),
      BPF_MOV64_REG(R9, R10), BPF_MOV64_IMM(R2, -1), BPF_MOV64_IMM(R3, -1), BPF_MOV64_IMM(R4, -1), BPF_MOV64_IMM(R5, -1), BPF_MOV64_IMM(R6, -1),
      BPF_MOV64_IMM(R7, -1), BPF_MOV64_IMM(R8, -1), BPF_STX_MEM(BPF_B, R1, R10, 0), BPF_LDX_MEM(BPF_B, R2, R1, 0), BPF_STX_MEM(BPF_B, R1, R9, 0),
      BPF_LDX_MEM(BPF_B, R3, R1, 0), BPF_JMP_REG(BPF_JEQ, R2, R3, 2), BPF_MOV64_IMM(R0, 1), BPF_EXIT_INSN(), BPF_MOV64_IMM(R0, 42), BPF_EXIT_INSN()),
    fixup: { map_array_48b: [3] }, result: 'accept',
  }),
];
