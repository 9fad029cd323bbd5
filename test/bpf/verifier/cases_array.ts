/**
 * @fileoverview Selftests of map values indexed like arrays (constant, register and variable
 * indices, the bounds a check must establish, read-only and write-only maps) and of
 * variable-offset stack and ctx accesses (verifier/{array_access,var_off}.c).
 */
import {
  prog, BPF_ST_MEM, BPF_LDX_MEM, BPF_EXIT_INSN, BPF_MOV64_REG, BPF_MOV64_IMM, BPF_MOV32_IMM, BPF_ALU64_IMM, BPF_ALU64_REG, BPF_ALU32_IMM,
  BPF_LD_MAP_FD, BPF_JMP_IMM, BPF_JMP_REG, BPF_JMP32_IMM, BPF_EMIT_CALL, BPF_STX_MEM, BPF_FUNC,
  BPF_DW, BPF_W, BPF_ADD, BPF_SUB, BPF_AND, BPF_LSH, BPF_JEQ, BPF_JGE, BPF_JGT, BPF_JSGT,
  type VCase, type MapFixture, R0, R1, R2, R3, R4, R5, R6, R8, R10,
} from './harness.ts';

const SCHED_CLS = 3;
/** struct test_val { unsigned int index; int foo[MAX_ENTRIES]; } */
const MAX_ENTRIES = 11, FOO = 4;
/** *(u64 *)(fp - 8) = 0; r0 = map_lookup_elem(map, fp - 8) — the map's ld_imm64 at 3 */
const lookup = prog(BPF_ST_MEM(BPF_DW, R10, -8, 0), BPF_MOV64_REG(R2, R10), BPF_ALU64_IMM(BPF_ADD, R2, -8), BPF_LD_MAP_FD(R1, 0),
  BPF_EMIT_CALL(BPF_FUNC.map_lookup_elem));
/** The same after r6 = ctx (the ld_imm64 at 4). */
const lookupCtx = prog(BPF_MOV64_REG(R6, R1), lookup);
const at = (map: MapFixture, ...idx: number[]): VCase['fixup'] => ({ [map]: idx });
/** r2 = (u32)ctx->len & mask; r2 -= sub; r2 += fp */
const varFp = (reg: number, mask: number, sub: number) => prog(BPF_LDX_MEM(BPF_W, reg, R1, 0), BPF_ALU64_IMM(BPF_AND, reg, mask),
  BPF_ALU64_IMM(BPF_SUB, reg, sub), BPF_ALU64_REG(BPF_ADD, reg, R10));
const indirect = prog(BPF_LD_MAP_FD(R1, 0), BPF_EMIT_CALL(BPF_FUNC.map_lookup_elem), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN());
const LWT = 'the selftest is LWT_IN (or CGROUP_SKB), whose ctx is the same __sk_buff; bpfemu has neither program type';

export const ARRAY: VCase[] = [
  // array_access.c
  { descr: 'valid map access into an array with a constant', insns: prog(lookup, BPF_JMP_IMM(BPF_JEQ, R0, 0, 1), BPF_ST_MEM(BPF_DW, R0, 0, FOO), BPF_EXIT_INSN()), fixup: at('map_hash_48b', 3), result: 'accept' },
  {
    descr: 'valid map access into an array with a register',
    insns: prog(lookup, BPF_JMP_IMM(BPF_JEQ, R0, 0, 4), BPF_MOV64_IMM(R1, 4), BPF_ALU64_IMM(BPF_LSH, R1, 2), BPF_ALU64_REG(BPF_ADD, R0, R1),
      BPF_ST_MEM(BPF_DW, R0, 0, FOO), BPF_EXIT_INSN()),
    fixup: at('map_hash_48b', 3), result: 'accept',
  },
  {
    descr: 'valid map access into an array with a variable',
    insns: prog(lookup, BPF_JMP_IMM(BPF_JEQ, R0, 0, 5), BPF_LDX_MEM(BPF_W, R1, R0, 0), BPF_JMP_IMM(BPF_JGE, R1, MAX_ENTRIES, 3),
      BPF_ALU64_IMM(BPF_LSH, R1, 2), BPF_ALU64_REG(BPF_ADD, R0, R1), BPF_ST_MEM(BPF_DW, R0, 0, FOO), BPF_EXIT_INSN()),
    fixup: at('map_hash_48b', 3), result: 'accept',
  },
  {
    descr: 'valid map access into an array with a signed variable',
    insns: prog(lookup, BPF_JMP_IMM(BPF_JEQ, R0, 0, 9), BPF_LDX_MEM(BPF_W, R1, R0, 0), BPF_JMP32_IMM(BPF_JSGT, R1, 0xffffffff, 1),
      BPF_MOV32_IMM(R1, 0), BPF_MOV32_IMM(R2, MAX_ENTRIES), BPF_JMP_REG(BPF_JSGT, R2, R1, 1), BPF_MOV32_IMM(R1, 0),
      BPF_ALU32_IMM(BPF_LSH, R1, 2), BPF_ALU64_REG(BPF_ADD, R0, R1), BPF_ST_MEM(BPF_DW, R0, 0, FOO), BPF_EXIT_INSN()),
    fixup: at('map_hash_48b', 3), result: 'accept',
  },
  {
    descr: 'invalid map access into an array with a constant',
    insns: prog(lookup, BPF_JMP_IMM(BPF_JEQ, R0, 0, 1), BPF_ST_MEM(BPF_DW, R0, (MAX_ENTRIES + 1) << 2, FOO), BPF_EXIT_INSN()),
    fixup: at('map_hash_48b', 3), result: 'reject', errstr: 'invalid access to map value, value_size=48 off=48 size=8',
  },
  {
    descr: 'invalid map access into an array with a register',
    insns: prog(lookup, BPF_JMP_IMM(BPF_JEQ, R0, 0, 4), BPF_MOV64_IMM(R1, MAX_ENTRIES + 1), BPF_ALU64_IMM(BPF_LSH, R1, 2),
      BPF_ALU64_REG(BPF_ADD, R0, R1), BPF_ST_MEM(BPF_DW, R0, 0, FOO), BPF_EXIT_INSN()),
    fixup: at('map_hash_48b', 3), result: 'reject', errstr: 'R0 min value is outside of the allowed memory range',
  },
  {
    descr: 'invalid map access into an array with a variable',
    insns: prog(lookup, BPF_JMP_IMM(BPF_JEQ, R0, 0, 4), BPF_LDX_MEM(BPF_W, R1, R0, 0), BPF_ALU64_IMM(BPF_LSH, R1, 2),
      BPF_ALU64_REG(BPF_ADD, R0, R1), BPF_ST_MEM(BPF_DW, R0, 0, FOO), BPF_EXIT_INSN()),
    fixup: at('map_hash_48b', 3), result: 'reject', errstr: 'R0 unbounded memory access, make sure to bounds check any such access',
  },
  {
    descr: 'invalid map access into an array with no floor check',
    insns: prog(lookup, BPF_JMP_IMM(BPF_JEQ, R0, 0, 7), BPF_LDX_MEM(BPF_DW, R1, R0, 0), BPF_MOV32_IMM(R2, MAX_ENTRIES),
      BPF_JMP_REG(BPF_JSGT, R2, R1, 1), BPF_MOV32_IMM(R1, 0), BPF_ALU32_IMM(BPF_LSH, R1, 2), BPF_ALU64_REG(BPF_ADD, R0, R1),
      BPF_ST_MEM(BPF_DW, R0, 0, FOO), BPF_EXIT_INSN()),
    fixup: at('map_hash_48b', 3), result: 'reject', errstr: 'R0 unbounded memory access',
  },
  {
    descr: 'invalid map access into an array with a invalid max check',
    insns: prog(lookup, BPF_JMP_IMM(BPF_JEQ, R0, 0, 7), BPF_LDX_MEM(BPF_W, R1, R0, 0), BPF_MOV32_IMM(R2, MAX_ENTRIES + 1),
      BPF_JMP_REG(BPF_JGT, R2, R1, 1), BPF_MOV32_IMM(R1, 0), BPF_ALU32_IMM(BPF_LSH, R1, 2), BPF_ALU64_REG(BPF_ADD, R0, R1),
      BPF_ST_MEM(BPF_DW, R0, 0, FOO), BPF_EXIT_INSN()),
    fixup: at('map_hash_48b', 3), result: 'reject', errstr: 'invalid access to map value, value_size=48 off=44 size=8',
  },
  {
    descr: 'invalid map access into an array with a invalid max check (pointer += pointer)',
    insns: prog(lookup, BPF_JMP_IMM(BPF_JEQ, R0, 0, 10), BPF_MOV64_REG(R8, R0), lookup, BPF_JMP_IMM(BPF_JEQ, R0, 0, 2),
      BPF_ALU64_REG(BPF_ADD, R0, R8), BPF_LDX_MEM(BPF_W, R0, R0, FOO), BPF_EXIT_INSN()),
    fixup: at('map_hash_48b', 3, 11), result: 'reject', errstr: 'R0 pointer += pointer',
  },
  { descr: 'valid read map access into a read-only array 1', insns: prog(lookup, BPF_JMP_IMM(BPF_JEQ, R0, 0, 1), BPF_LDX_MEM(BPF_W, R0, R0, 0), BPF_EXIT_INSN()), fixup: at('map_array_ro', 3), result: 'accept' },
  {
    descr: 'valid read map access into a read-only array 2',
    insns: prog(lookup, BPF_JMP_IMM(BPF_JEQ, R0, 0, 6), BPF_MOV64_REG(R1, R0), BPF_MOV64_IMM(R2, 4), BPF_MOV64_IMM(R3, 0), BPF_MOV64_IMM(R4, 0),
      BPF_MOV64_IMM(R5, 0), BPF_EMIT_CALL(BPF_FUNC.csum_diff), BPF_ALU64_IMM(BPF_AND, R0, 0xffff), BPF_EXIT_INSN()),
    progType: SCHED_CLS, fixup: at('map_array_ro', 3), result: 'accept',
  },
  { descr: 'invalid write map access into a read-only array 1', insns: prog(lookup, BPF_JMP_IMM(BPF_JEQ, R0, 0, 1), BPF_ST_MEM(BPF_DW, R0, 0, 42), BPF_EXIT_INSN()), fixup: at('map_array_ro', 3), result: 'reject', errstr: 'write into map forbidden' },
  {
    descr: 'invalid write map access into a read-only array 2',
    insns: prog(lookupCtx, BPF_JMP_IMM(BPF_JEQ, R0, 0, 5), BPF_MOV64_REG(R1, R6), BPF_MOV64_IMM(R2, 0), BPF_MOV64_REG(R3, R0), BPF_MOV64_IMM(R4, 8),
      BPF_EMIT_CALL(BPF_FUNC.skb_load_bytes), BPF_EXIT_INSN()),
    progType: SCHED_CLS, fixup: at('map_array_ro', 4), result: 'reject', errstr: 'write into map forbidden',
  },
  {
    descr: 'valid write map access into a write-only array 1',
    insns: prog(lookup, BPF_JMP_IMM(BPF_JEQ, R0, 0, 1), BPF_ST_MEM(BPF_DW, R0, 0, 42), BPF_MOV64_IMM(R0, 1), BPF_EXIT_INSN()),
    fixup: at('map_array_wo', 3), result: 'accept',
  },
  {
    descr: 'valid write map access into a write-only array 2',
    insns: prog(lookupCtx, BPF_JMP_IMM(BPF_JEQ, R0, 0, 5), BPF_MOV64_REG(R1, R6), BPF_MOV64_IMM(R2, 0), BPF_MOV64_REG(R3, R0), BPF_MOV64_IMM(R4, 8),
      BPF_EMIT_CALL(BPF_FUNC.skb_load_bytes), BPF_EXIT_INSN()),
    progType: SCHED_CLS, fixup: at('map_array_wo', 4), result: 'accept',
  },
  { descr: 'invalid read map access into a write-only array 1', insns: prog(lookup, BPF_JMP_IMM(BPF_JEQ, R0, 0, 1), BPF_LDX_MEM(BPF_DW, R0, R0, 0), BPF_EXIT_INSN()), fixup: at('map_array_wo', 3), result: 'reject', errstr: 'read from map forbidden' },
  {
    descr: 'invalid read map access into a write-only array 2',
    insns: prog(lookup, BPF_JMP_IMM(BPF_JEQ, R0, 0, 6), BPF_MOV64_REG(R1, R0), BPF_MOV64_IMM(R2, 4), BPF_MOV64_IMM(R3, 0), BPF_MOV64_IMM(R4, 0),
      BPF_MOV64_IMM(R5, 0), BPF_EMIT_CALL(BPF_FUNC.csum_diff), BPF_EXIT_INSN()),
    progType: SCHED_CLS, fixup: at('map_array_wo', 3), result: 'reject', errstr: 'read from map forbidden',
  },

  // var_off.c
  {
    descr: 'variable-offset ctx access',
    insns: prog(BPF_LDX_MEM(BPF_W, R2, R1, 0), BPF_ALU64_IMM(BPF_AND, R2, 4), BPF_ALU64_REG(BPF_ADD, R1, R2), BPF_LDX_MEM(BPF_W, R0, R1, 0), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'variable ctx access var_off=(0x0; 0x4)', note: LWT,
  },
  {
    descr: 'variable-offset stack read, priv vs unpriv',
    insns: prog(BPF_ST_MEM(BPF_DW, R10, -8, 0), varFp(R2, 4, 8), BPF_LDX_MEM(BPF_W, R0, R2, 0), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    result: 'accept', note: LWT,
  },
  {
    descr: 'variable-offset stack read, uninitialized',
    insns: prog(varFp(R2, 4, 8), BPF_LDX_MEM(BPF_W, R0, R2, 0), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    result: 'reject', errstr: 'invalid variable-offset read from stack R2', note: LWT,
  },
  {
    descr: 'variable-offset stack write, priv vs unpriv',
    insns: prog(varFp(R2, 8, 16), BPF_ST_MEM(BPF_DW, R2, 0, 0), BPF_LDX_MEM(BPF_DW, R3, R2, 0), BPF_MOV64_IMM(R0, 0), BPF_EXIT_INSN()),
    result: 'accept',
  },
  {
    descr: 'variable-offset stack write clobbers spilled regs',
    insns: prog(BPF_MOV64_IMM(R6, 0), BPF_LD_MAP_FD(R0, 0), varFp(R2, 8, 16), BPF_STX_MEM(BPF_DW, R10, R0, -8), BPF_ST_MEM(BPF_DW, R2, 0, 0),
      BPF_LDX_MEM(BPF_DW, R2, R10, -8), BPF_LDX_MEM(BPF_DW, R0, R2, 8), BPF_EXIT_INSN()),
    fixup: at('map_hash_8b', 1), result: 'reject', errstr: "R2 invalid mem access 'inv'",
  },
  {
    descr: 'indirect variable-offset stack access, max out of bound',
    insns: prog(BPF_ST_MEM(BPF_DW, R10, -8, 0), varFp(R2, 4, 8), indirect), fixup: at('map_hash_8b', 5),
    result: 'reject', errstr: 'invalid variable-offset indirect access to stack R2', note: LWT,
  },
  {
    descr: 'indirect variable-offset stack access, min out of bound',
    insns: prog(BPF_ST_MEM(BPF_DW, R10, -8, 0), varFp(R2, 4, 516), indirect), fixup: at('map_hash_8b', 5),
    result: 'reject', errstr: 'invalid variable-offset indirect access to stack R2', note: LWT,
  },
  {
    descr: 'indirect variable-offset stack access, max_off+size > max_initialized',
    insns: prog(BPF_ST_MEM(BPF_DW, R10, -16, 0), varFp(R2, 4, 16), indirect), fixup: at('map_hash_8b', 5),
    result: 'reject', errstr: 'invalid indirect read from stack R2 var_off', note: LWT,
  },
  {
    descr: 'indirect variable-offset stack access, min_off < min_initialized',
    insns: prog(BPF_ST_MEM(BPF_DW, R10, -8, 0), varFp(R2, 4, 16), indirect), fixup: at('map_hash_8b', 5),
    result: 'reject', errstr: 'invalid indirect read from stack R2 var_off', note: LWT,
  },
  {
    descr: 'indirect variable-offset stack access, priv vs unpriv',
    insns: prog(BPF_ST_MEM(BPF_DW, R10, -16, 0), BPF_ST_MEM(BPF_DW, R10, -8, 0), varFp(R2, 4, 16), indirect), fixup: at('map_hash_8b', 6),
    result: 'accept', note: LWT,
  },
  {
    descr: 'indirect variable-offset stack access, ok',
    insns: prog(BPF_ST_MEM(BPF_DW, R10, -16, 0), BPF_ST_MEM(BPF_DW, R10, -8, 0), varFp(R2, 4, 16), indirect), fixup: at('map_hash_8b', 6),
    result: 'accept', note: LWT,
  },
];
