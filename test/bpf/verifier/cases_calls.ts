/**
 * @fileoverview Selftests of bpf-to-bpf calls: function boundaries, recursion, arguments and
 * return values across frames, pointers into the caller's stack, the combined stack size and
 * the depth limit of 8 frames (verifier/calls.c).
 */
import {
  prog, BPF_ST_MEM, BPF_STX_MEM, BPF_LDX_MEM, BPF_EXIT_INSN, BPF_MOV64_REG, BPF_MOV64_IMM, BPF_MOV32_IMM, BPF_ALU64_IMM,
  BPF_ALU64_REG, BPF_ALU32_REG, BPF_LD_MAP_FD, BPF_LD_IMM64, BPF_JMP_IMM, BPF_JMP_REG, BPF_JMP_A, BPF_EMIT_CALL, BPF_RAW_INSN, BPF_FUNC,
  BPF_DW, BPF_W, BPF_B, BPF_ADD, BPF_DIV, BPF_JEQ, BPF_JNE, BPF_JGT, BPF_JGE, BPF_JLT, BPF_JMP, BPF_CALL,
  type VCase, R0, R1, R2, R3, R6, R7, R8, R10,
} from './harness.ts';
import { SKB } from './cases_pkt.ts';

const SOCKET_FILTER = 1, SCHED_CLS = 3, SCHED_ACT = 4, TRACEPOINT = 5, XDP = 6;
/** A bpf-to-bpf call (BPF_PSEUDO_CALL) `imm` instructions ahead. */
const CALL = (imm: number) => BPF_RAW_INSN(BPF_JMP | BPF_CALL, 0, 1, 0, imm);
const c = (progType: number, x: Omit<VCase, 'progType'>): VCase => ({ ...x, progType });
const retPkt = prog(BPF_MOV64_REG(R6, R1), CALL(8), BPF_MOV64_REG(R1, R6), BPF_LDX_MEM(BPF_W, R1, R1, SKB.data_end),
  BPF_MOV64_REG(R2, R0), BPF_ALU64_IMM(BPF_ADD, R2, 8), BPF_JMP_REG(BPF_JGT, R2, R1, 1), BPF_LDX_MEM(BPF_B, R0, R0, 0),
  BPF_MOV64_IMM(R0, 1), BPF_EXIT_INSN());
const chain = (n: number) => Array.from({ length: n }, () => [CALL(1), BPF_EXIT_INSN()]).flat();
const twoCalls = prog(CALL(1), BPF_EXIT_INSN(), BPF_MOV64_REG(R6, R1), CALL(6), BPF_MOV64_REG(R7, R0), BPF_MOV64_REG(R1, R6), CALL(3),
  BPF_ALU64_REG(BPF_ADD, R7, R0), BPF_MOV64_REG(R0, R7));

export const CALLS: VCase[] = [
  c(TRACEPOINT, { descr: 'calls: basic sanity', insns: prog(CALL(2), BPF_MOV64_IMM(R0, 1), BPF_EXIT_INSN(), BPF_MOV64_IMM(R0, 2), BPF_EXIT_INSN()), result: 'accept' }),
  c(SOCKET_FILTER, { descr: 'calls: not on unpriviledged', insns: prog(CALL(2), BPF_MOV64_IMM(R0, 1), BPF_EXIT_INSN(), BPF_MOV64_IMM(R0, 2), BPF_EXIT_INSN()), result: 'accept' }),
  c(SCHED_CLS, {
    descr: 'calls: div by 0 in subprog',
    insns: prog(retPkt, BPF_MOV32_IMM(R2, 0), BPF_MOV32_IMM(R3, 1), BPF_ALU32_REG(BPF_DIV, R3, R2), BPF_LDX_MEM(BPF_W, R0, R1, SKB.data), BPF_EXIT_INSN()),
    result: 'accept',
  }),
  c(SCHED_CLS, {
    descr: 'calls: multiple ret types in subprog 1',
    insns: prog(retPkt, BPF_LDX_MEM(BPF_W, R0, R1, SKB.data), BPF_JMP_IMM(BPF_JNE, R0, 0, 1), BPF_MOV32_IMM(R0, 42), BPF_EXIT_INSN()),
    result: 'reject', errstr: "R0 invalid mem access 'inv'",
  }),
  c(SCHED_CLS, {
    descr: 'calls: multiple ret types in subprog 2',
    insns: prog(retPkt, BPF_LDX_MEM(BPF_W, R0, R1, SKB.data), BPF_MOV64_REG(R6, R1), BPF_JMP_IMM(BPF_JNE, R0, 0, 9), BPF_ST_MEM(BPF_DW, R10, -8, 0),
      BPF_MOV64_REG(R2, R10), BPF_ALU64_IMM(BPF_ADD, R2, -8), BPF_LD_MAP_FD(R1, 0), BPF_EMIT_CALL(BPF_FUNC.map_lookup_elem),
      BPF_JMP_IMM(BPF_JNE, R0, 0, 1), BPF_LDX_MEM(BPF_W, R0, R6, SKB.data), BPF_ALU64_IMM(BPF_ADD, R0, 64), BPF_EXIT_INSN()),
    fixup: { map_hash_8b: [16] }, result: 'reject', errstr: 'R0 min value is outside of the allowed memory range',
  }),
  c(TRACEPOINT, { descr: 'calls: overlapping caller/callee', insns: prog(CALL(0), BPF_MOV64_IMM(R0, 1), BPF_EXIT_INSN()), result: 'reject', errstr: 'last insn is not an exit or jmp' }),
  c(TRACEPOINT, {
    descr: 'calls: wrong recursive calls',
    insns: prog(BPF_JMP_A(4), BPF_JMP_A(4), CALL(-2), CALL(-2), CALL(-2), BPF_MOV64_IMM(R0, 1), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'jump out of range',
  }),
  c(TRACEPOINT, { descr: 'calls: wrong src reg', insns: prog(BPF_RAW_INSN(BPF_JMP | BPF_CALL, 0, 2, 0, 0), BPF_MOV64_IMM(R0, 1), BPF_EXIT_INSN()), result: 'reject', errstr: 'BPF_CALL uses reserved fields' }),
  c(TRACEPOINT, {
    descr: 'calls: wrong off value',
    insns: prog(BPF_RAW_INSN(BPF_JMP | BPF_CALL, 0, 1, -1, 2), BPF_MOV64_IMM(R0, 1), BPF_EXIT_INSN(), BPF_MOV64_IMM(R0, 2), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'BPF_CALL uses reserved fields',
  }),
  c(TRACEPOINT, { descr: 'calls: jump back loop', insns: prog(CALL(-1), BPF_MOV64_IMM(R0, 1), BPF_EXIT_INSN()), result: 'reject', errstr: 'back-edge from insn 0 to 0' }),
  c(TRACEPOINT, {
    descr: 'calls: conditional call',
    insns: prog(BPF_LDX_MEM(BPF_W, R0, R1, SKB.mark), BPF_JMP_IMM(BPF_JEQ, R0, 0, 3), CALL(2), BPF_MOV64_IMM(R0, 1), BPF_EXIT_INSN(), BPF_MOV64_IMM(R0, 2), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'jump out of range',
  }),
  c(TRACEPOINT, {
    descr: 'calls: conditional call 2',
    insns: prog(BPF_LDX_MEM(BPF_W, R0, R1, SKB.mark), BPF_JMP_IMM(BPF_JEQ, R0, 0, 3), CALL(4), BPF_MOV64_IMM(R0, 1), BPF_EXIT_INSN(),
      BPF_MOV64_IMM(R0, 2), BPF_EXIT_INSN(), BPF_MOV64_IMM(R0, 3), BPF_EXIT_INSN()),
    result: 'accept',
  }),
  c(SOCKET_FILTER, {
    descr: 'calls: conditional call 3',
    insns: prog(BPF_LDX_MEM(BPF_W, R0, R1, SKB.mark), BPF_JMP_IMM(BPF_JEQ, R0, 0, 3), BPF_JMP_A(4), BPF_MOV64_IMM(R0, 1), BPF_EXIT_INSN(),
      BPF_MOV64_IMM(R0, 1), BPF_JMP_A(-6), BPF_MOV64_IMM(R0, 3), BPF_JMP_A(-6)),
    result: 'accept',
  }),
  c(TRACEPOINT, {
    descr: 'calls: conditional call 4',
    insns: prog(BPF_LDX_MEM(BPF_W, R0, R1, SKB.mark), BPF_JMP_IMM(BPF_JEQ, R0, 0, 3), CALL(4), BPF_MOV64_IMM(R0, 1), BPF_EXIT_INSN(),
      BPF_MOV64_IMM(R0, 1), BPF_JMP_A(-5), BPF_MOV64_IMM(R0, 3), BPF_EXIT_INSN()),
    result: 'accept',
  }),
  c(SCHED_CLS, {
    descr: 'calls: conditional call 5',
    insns: prog(BPF_LDX_MEM(BPF_W, R0, R1, SKB.mark), BPF_JMP_IMM(BPF_JEQ, R0, 0, 3), CALL(4), BPF_MOV64_IMM(R0, 1), BPF_EXIT_INSN(),
      BPF_MOV64_IMM(R0, 1), BPF_JMP_A(-6), BPF_MOV64_IMM(R0, 3), BPF_EXIT_INSN()),
    result: 'accept',
  }),
  c(SCHED_CLS, {
    descr: 'calls: conditional call 6',
    insns: prog(BPF_MOV64_REG(R6, R1), BPF_MOV64_REG(R1, R6), CALL(2), BPF_JMP_IMM(BPF_JEQ, R0, 0, -3), BPF_EXIT_INSN(),
      BPF_LDX_MEM(BPF_W, R0, R1, SKB.mark), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'infinite loop detected',
  }),
  c(TRACEPOINT, { descr: 'calls: using r0 returned by callee', insns: prog(CALL(1), BPF_EXIT_INSN(), BPF_MOV64_IMM(R0, 2), BPF_EXIT_INSN()), result: 'accept' }),
  c(TRACEPOINT, { descr: 'calls: using uninit r0 from callee', insns: prog(CALL(1), BPF_EXIT_INSN(), BPF_EXIT_INSN()), result: 'reject', errstr: '!read_ok' }),
  c(SCHED_ACT, { descr: 'calls: callee is using r1', insns: prog(CALL(1), BPF_EXIT_INSN(), BPF_LDX_MEM(BPF_W, R0, R1, SKB.len), BPF_EXIT_INSN()), result: 'accept' }),
  c(SOCKET_FILTER, { descr: 'calls: callee using args1', insns: prog(CALL(1), BPF_EXIT_INSN(), BPF_MOV64_REG(R0, R1), BPF_EXIT_INSN()), result: 'accept' }),
  c(TRACEPOINT, { descr: 'calls: callee using wrong args2', insns: prog(CALL(1), BPF_EXIT_INSN(), BPF_MOV64_REG(R0, R2), BPF_EXIT_INSN()), result: 'reject', errstr: 'R2 !read_ok' }),
  c(SOCKET_FILTER, {
    descr: 'calls: callee using two args',
    insns: prog(BPF_MOV64_REG(R6, R1), BPF_LDX_MEM(BPF_W, R1, R6, SKB.len), BPF_LDX_MEM(BPF_W, R2, R6, SKB.len), CALL(1), BPF_EXIT_INSN(),
      BPF_MOV64_REG(R0, R1), BPF_ALU64_REG(BPF_ADD, R0, R2), BPF_EXIT_INSN()),
    result: 'accept',
  }),
  c(XDP, {
    descr: 'calls: callee changing pkt pointers',
    insns: prog(BPF_LDX_MEM(BPF_W, R6, R1, 0), BPF_LDX_MEM(BPF_W, R7, R1, 4), BPF_MOV64_REG(R8, R6), BPF_ALU64_IMM(BPF_ADD, R8, 8),
      BPF_JMP_REG(BPF_JGT, R8, R7, 2), CALL(3), BPF_LDX_MEM(BPF_DW, R0, R6, 0), BPF_MOV32_IMM(R0, 0), BPF_EXIT_INSN(),
      BPF_MOV64_IMM(R2, 0), BPF_EMIT_CALL(BPF_FUNC.xdp_adjust_head), BPF_EXIT_INSN()),
    result: 'reject', errstr: "R6 invalid mem access 'inv'",
  }),
  c(SOCKET_FILTER, {
    descr: 'calls: ptr null check in subprog',
    insns: prog(BPF_ST_MEM(BPF_DW, R10, -8, 0), BPF_MOV64_REG(R2, R10), BPF_ALU64_IMM(BPF_ADD, R2, -8), BPF_LD_MAP_FD(R1, 0),
      BPF_EMIT_CALL(BPF_FUNC.map_lookup_elem), BPF_MOV64_REG(R1, R0), BPF_MOV64_REG(R6, R0), CALL(3), BPF_JMP_IMM(BPF_JEQ, R0, 0, 1),
      BPF_LDX_MEM(BPF_B, R0, R6, 0), BPF_EXIT_INSN(), BPF_MOV64_IMM(R0, 0), BPF_JMP_IMM(BPF_JEQ, R1, 0, 1), BPF_MOV64_IMM(R0, 1), BPF_EXIT_INSN()),
    fixup: { map_hash_48b: [3] }, result: 'accept',
  }),
  c(SCHED_CLS, { descr: 'calls: two calls with args', insns: prog(twoCalls, BPF_EXIT_INSN(), BPF_LDX_MEM(BPF_W, R0, R1, SKB.len), BPF_EXIT_INSN()), result: 'accept' }),
  c(SCHED_CLS, {
    descr: 'calls: calls with stack arith',
    insns: prog(BPF_MOV64_REG(R2, R10), BPF_ALU64_IMM(BPF_ADD, R2, -64), CALL(1), BPF_EXIT_INSN(), BPF_ALU64_IMM(BPF_ADD, R2, -64), CALL(1),
      BPF_EXIT_INSN(), BPF_ALU64_IMM(BPF_ADD, R2, -64), BPF_MOV64_IMM(R0, 42), BPF_STX_MEM(BPF_DW, R2, R0, 0), BPF_EXIT_INSN()),
    result: 'accept',
  }),
  c(SCHED_CLS, {
    descr: 'calls: calls with misaligned stack access',
    insns: prog(BPF_MOV64_REG(R2, R10), BPF_ALU64_IMM(BPF_ADD, R2, -63), CALL(1), BPF_EXIT_INSN(), BPF_ALU64_IMM(BPF_ADD, R2, -61), CALL(1),
      BPF_EXIT_INSN(), BPF_ALU64_IMM(BPF_ADD, R2, -63), BPF_MOV64_IMM(R0, 42), BPF_STX_MEM(BPF_DW, R2, R0, 0), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'misaligned stack access', strictAlignment: true,
  }),
  c(SCHED_CLS, {
    descr: 'calls: calls control flow, jump test',
    insns: prog(BPF_MOV64_IMM(R0, 42), BPF_JMP_A(2), BPF_MOV64_IMM(R0, 43), BPF_JMP_A(1), BPF_JMP_A(-3), BPF_EXIT_INSN()),
    result: 'accept',
  }),
  c(SCHED_CLS, {
    descr: 'calls: calls control flow, jump test 2',
    insns: prog(BPF_MOV64_IMM(R0, 42), BPF_JMP_A(2), BPF_MOV64_IMM(R0, 43), BPF_JMP_A(1), CALL(-3), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'jump out of range from insn 1 to 4',
  }),
  c(TRACEPOINT, {
    descr: 'calls: two calls with bad jump',
    insns: prog(twoCalls, BPF_EXIT_INSN(), BPF_LDX_MEM(BPF_W, R0, R1, SKB.len), BPF_JMP_IMM(BPF_JEQ, R0, 0, -3), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'jump out of range from insn 11 to 9',
  }),
  c(TRACEPOINT, { descr: 'calls: recursive call. test1', insns: prog(CALL(1), BPF_EXIT_INSN(), CALL(-1), BPF_EXIT_INSN()), result: 'reject', errstr: 'back-edge' }),
  c(TRACEPOINT, { descr: 'calls: recursive call. test2', insns: prog(CALL(1), BPF_EXIT_INSN(), CALL(-3), BPF_EXIT_INSN()), result: 'reject', errstr: 'back-edge' }),
  c(TRACEPOINT, {
    descr: 'calls: unreachable code',
    insns: prog(CALL(1), BPF_EXIT_INSN(), CALL(1), BPF_EXIT_INSN(), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN(), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'unreachable insn 6',
  }),
  c(TRACEPOINT, { descr: 'calls: invalid call', insns: prog(CALL(1), BPF_EXIT_INSN(), CALL(-4), BPF_EXIT_INSN()), result: 'reject', errstr: 'invalid destination' }),
  c(TRACEPOINT, { descr: 'calls: invalid call 2', insns: prog(CALL(1), BPF_EXIT_INSN(), CALL(0x7fffffff), BPF_EXIT_INSN()), result: 'reject', errstr: 'invalid destination' }),
  c(TRACEPOINT, {
    descr: 'calls: jumping across function bodies. test1',
    insns: prog(CALL(2), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN(), BPF_JMP_IMM(BPF_JEQ, R1, 0, -3), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'jump out of range',
  }),
  c(TRACEPOINT, {
    descr: 'calls: jumping across function bodies. test2',
    insns: prog(BPF_JMP_IMM(BPF_JEQ, R1, 0, 3), CALL(2), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN(), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'jump out of range',
  }),
  c(TRACEPOINT, {
    descr: 'calls: call without exit',
    insns: prog(CALL(1), BPF_EXIT_INSN(), CALL(1), BPF_EXIT_INSN(), BPF_MOV64_IMM(R0, 0), BPF_JMP_IMM(BPF_JEQ, R1, 0, -2)),
    result: 'reject', errstr: 'not an exit',
  }),
  c(TRACEPOINT, {
    descr: 'calls: call into middle of ld_imm64',
    insns: prog(CALL(3), CALL(3), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN(), BPF_LD_IMM64(R0, 0), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'last insn',
  }),
  c(TRACEPOINT, {
    descr: 'calls: call into middle of other call',
    insns: prog(CALL(3), CALL(3), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN(), BPF_MOV64_IMM(R0, 0), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'last insn',
  }),
  c(TRACEPOINT, {
    descr: 'calls: two calls with bad fallthrough',
    insns: prog(twoCalls, BPF_MOV64_REG(R0, R0), BPF_LDX_MEM(BPF_W, R0, R1, SKB.len), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'not an exit',
  }),
  c(XDP, {
    descr: 'calls: two calls with stack read',
    insns: prog(BPF_ST_MEM(BPF_DW, R10, -8, 0), BPF_MOV64_REG(R1, R10), BPF_ALU64_IMM(BPF_ADD, R1, -8), twoCalls, BPF_EXIT_INSN(),
      BPF_LDX_MEM(BPF_W, R0, R1, 0), BPF_EXIT_INSN()),
    result: 'accept',
  }),
  c(XDP, {
    descr: 'calls: two calls with stack write',
    insns: prog(BPF_ST_MEM(BPF_DW, R10, -8, 0), BPF_MOV64_REG(R1, R10), BPF_ALU64_IMM(BPF_ADD, R1, -8), BPF_MOV64_REG(R2, R10),
      BPF_ALU64_IMM(BPF_ADD, R2, -16), CALL(2), BPF_LDX_MEM(BPF_DW, R0, R10, -16), BPF_EXIT_INSN(),
      BPF_MOV64_REG(R6, R1), BPF_MOV64_REG(R7, R2), CALL(7), BPF_MOV64_REG(R8, R0), BPF_MOV64_REG(R1, R6), CALL(4),
      BPF_ALU64_REG(BPF_ADD, R8, R0), BPF_MOV64_REG(R0, R8), BPF_STX_MEM(BPF_DW, R7, R0, 0), BPF_EXIT_INSN(),
      BPF_LDX_MEM(BPF_W, R0, R1, 0), BPF_EXIT_INSN()),
    result: 'accept',
  }),
  c(XDP, {
    descr: 'calls: stack overflow using two frames (pre-call access)',
    insns: prog(BPF_ST_MEM(BPF_B, R10, -300, 0), CALL(1), BPF_EXIT_INSN(), BPF_ST_MEM(BPF_B, R10, -300, 0), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'combined stack size',
  }),
  c(XDP, {
    descr: 'calls: stack overflow using two frames (post-call access)',
    insns: prog(CALL(2), BPF_ST_MEM(BPF_B, R10, -300, 0), BPF_EXIT_INSN(), BPF_ST_MEM(BPF_B, R10, -300, 0), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'combined stack size',
  }),
  c(XDP, {
    descr: 'calls: stack depth check using three frames. test1',
    insns: prog(CALL(4), CALL(5), BPF_ST_MEM(BPF_B, R10, -32, 0), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN(), BPF_ST_MEM(BPF_B, R10, -256, 0),
      BPF_EXIT_INSN(), CALL(-3), BPF_ST_MEM(BPF_B, R10, -64, 0), BPF_EXIT_INSN()),
    result: 'accept',
  }),
  c(XDP, {
    descr: 'calls: stack depth check using three frames. test2',
    insns: prog(CALL(4), CALL(5), BPF_ST_MEM(BPF_B, R10, -32, 0), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN(), BPF_ST_MEM(BPF_B, R10, -64, 0),
      BPF_EXIT_INSN(), CALL(-3), BPF_ST_MEM(BPF_B, R10, -256, 0), BPF_EXIT_INSN()),
    result: 'accept',
  }),
  c(XDP, {
    descr: 'calls: stack depth check using three frames. test3',
    insns: prog(BPF_MOV64_REG(R6, R1), CALL(6), BPF_MOV64_REG(R1, R6), CALL(8), BPF_JMP_IMM(BPF_JGE, R6, 0, 1), BPF_ST_MEM(BPF_B, R10, -64, 0),
      BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN(), BPF_JMP_IMM(BPF_JLT, R1, 10, 1), BPF_EXIT_INSN(), BPF_ST_MEM(BPF_B, R10, -224, 0), BPF_JMP_A(-3),
      BPF_JMP_IMM(BPF_JGT, R1, 2, 1), CALL(-6), BPF_ST_MEM(BPF_B, R10, -256, 0), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'combined stack',
  }),
  c(XDP, {
    descr: 'calls: stack depth check using three frames. test4',
    insns: prog(BPF_MOV64_IMM(R1, 0), CALL(6), BPF_MOV64_IMM(R1, 1), CALL(4), BPF_MOV64_IMM(R1, 1), CALL(7), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN(),
      BPF_JMP_IMM(BPF_JEQ, R1, 0, 2), BPF_ST_MEM(BPF_B, R10, -300, 0), BPF_EXIT_INSN(), CALL(1), BPF_EXIT_INSN(),
      BPF_JMP_IMM(BPF_JEQ, R1, 0, 1), BPF_ST_MEM(BPF_B, R10, -300, 0), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'combined stack',
  }),
  c(XDP, { descr: 'calls: stack depth check using three frames. test5', insns: prog(chain(8), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()), result: 'reject', errstr: 'call stack' }),
  c(XDP, {
    descr: 'calls: stack depth check in dead code',
    insns: prog(BPF_MOV64_IMM(R1, 0), CALL(1), BPF_EXIT_INSN(), BPF_JMP_IMM(BPF_JEQ, R1, 0, 1), CALL(2), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN(),
      chain(6), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'call stack',
  }),
  c(XDP, {
    descr: 'calls: spill into caller stack frame',
    insns: prog(BPF_ST_MEM(BPF_DW, R10, -8, 0), BPF_MOV64_REG(R1, R10), BPF_ALU64_IMM(BPF_ADD, R1, -8), CALL(1), BPF_EXIT_INSN(),
      BPF_STX_MEM(BPF_DW, R1, R1, 0), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'cannot spill',
  }),
  c(XDP, {
    descr: 'calls: write into caller stack frame',
    insns: prog(BPF_MOV64_REG(R1, R10), BPF_ALU64_IMM(BPF_ADD, R1, -8), BPF_MOV64_REG(R6, R1), CALL(2), BPF_LDX_MEM(BPF_DW, R0, R6, 0),
      BPF_EXIT_INSN(), BPF_ST_MEM(BPF_DW, R1, 0, 42), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    result: 'accept',
  }),
  c(XDP, {
    descr: 'calls: write into callee stack frame',
    insns: prog(CALL(2), BPF_ST_MEM(BPF_DW, R0, 0, 42), BPF_EXIT_INSN(), BPF_MOV64_REG(R0, R10), BPF_ALU64_IMM(BPF_ADD, R0, -8), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'cannot return stack pointer',
  }),
  c(XDP, {
    descr: 'calls: two calls with stack write and void return',
    insns: prog(BPF_ST_MEM(BPF_DW, R10, -8, 0), BPF_MOV64_REG(R1, R10), BPF_ALU64_IMM(BPF_ADD, R1, -8), BPF_MOV64_REG(R2, R10),
      BPF_ALU64_IMM(BPF_ADD, R2, -16), CALL(2), BPF_LDX_MEM(BPF_DW, R0, R10, -16), BPF_EXIT_INSN(),
      BPF_MOV64_REG(R6, R1), BPF_MOV64_REG(R7, R2), CALL(3), BPF_MOV64_REG(R1, R7), CALL(1), BPF_EXIT_INSN(),
      BPF_ST_MEM(BPF_DW, R1, 0, 0), BPF_EXIT_INSN()),
    result: 'accept',
  }),
  c(SOCKET_FILTER, {
    descr: 'calls: ambiguous return value',
    insns: prog(BPF_MOV64_REG(R6, R1), CALL(5), BPF_MOV64_REG(R1, R0), BPF_MOV64_REG(R1, R6), CALL(2), BPF_MOV64_REG(R1, R0), BPF_EXIT_INSN(),
      BPF_JMP_IMM(BPF_JEQ, R1, 0, 1), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'R0 !read_ok',
  }),
  c(XDP, {
    descr: 'calls: two calls that return map_value',
    insns: prog(BPF_MOV64_REG(R1, R10), BPF_ALU64_IMM(BPF_ADD, R1, -8), BPF_MOV64_REG(R2, R10), BPF_ALU64_IMM(BPF_ADD, R2, -16), CALL(8),
      BPF_LDX_MEM(BPF_DW, R0, R10, -8), BPF_JMP_IMM(BPF_JEQ, R0, 0, 1), BPF_ST_MEM(BPF_DW, R0, 0, 0), BPF_LDX_MEM(BPF_DW, R0, R10, -16),
      BPF_JMP_IMM(BPF_JEQ, R0, 0, 1), BPF_ST_MEM(BPF_DW, R0, 0, 0), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN(),
      BPF_MOV64_REG(R6, R1), BPF_MOV64_REG(R7, R2), CALL(3), BPF_MOV64_REG(R1, R7), CALL(1), BPF_EXIT_INSN(),
      BPF_MOV64_REG(R6, R1), BPF_ST_MEM(BPF_DW, R10, -8, 0), BPF_MOV64_REG(R2, R10), BPF_ALU64_IMM(BPF_ADD, R2, -8), BPF_LD_MAP_FD(R1, 0),
      BPF_EMIT_CALL(BPF_FUNC.map_lookup_elem), BPF_STX_MEM(BPF_DW, R6, R0, 0), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    fixup: { map_hash_8b: [23] }, result: 'accept',
  }),
];
