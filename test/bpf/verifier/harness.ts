/**
 * @fileoverview The verifier test harness: test_verifier's instruction macros (BPF_MOV64_IMM,
 * BPF_LD_MAP_FD, …, as include/linux/filter.h spells them), its map fixtures (map_hash_8b,
 * map_array_48b, …: a case names the ld_imm64 indices that load each map, as fixup_map_* does),
 * and the runner: a case is verified with bpfCheck() and its verdict, errno and message
 * compared. The cases are the kernel's verifier selftests (tools/testing/selftests/bpf/verifier/,
 * v5.10) written as this project's own tests: their names, verdicts and messages are the facts.
 */
import {
  BPF_ALU, BPF_ALU64, BPF_K, BPF_X, BPF_JMP, BPF_JMP32, BPF_EXIT, BPF_CALL, BPF_JA, BPF_LD, BPF_IMM, BPF_DW, BPF_LDX,
  BPF_ST, BPF_STX, BPF_MEM, BPF_MOV, BPF_ATOMIC, BPF_ADD, BPF_PSEUDO_CALL, BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE, BPF_END,
} from '../../../bpf/isa/opcodes.ts';
import { insn, type Insn } from '../../../bpf/isa/insn.ts';
import { bpfCheck, type MapInfo, type VerifyResult } from '../../../bpf/verifier/verifier.ts';

export * from '../../../bpf/isa/opcodes.ts';
export { BPF_FUNC } from '../../../bpf/helpers/func_ids.ts';

export const R0 = 0, R1 = 1, R2 = 2, R3 = 3, R4 = 4, R5 = 5, R6 = 6, R7 = 7, R8 = 8, R9 = 9, R10 = 10;
export const BPF_REG_0 = 0, BPF_REG_1 = 1, BPF_REG_2 = 2, BPF_REG_3 = 3, BPF_REG_4 = 4, BPF_REG_5 = 5;
export const BPF_REG_6 = 6, BPF_REG_7 = 7, BPF_REG_8 = 8, BPF_REG_9 = 9, BPF_REG_10 = 10;

type I = Insn | Insn[];
export const BPF_RAW_INSN = (code: number, dst: number, src: number, off: number, imm: number): Insn => insn(code, dst & 0xf, src & 0xf, off, imm);
export const BPF_ALU64_IMM = (op: number, dst: number, imm: number): Insn => insn(BPF_ALU64 | op | BPF_K, dst, 0, 0, imm);
export const BPF_ALU32_IMM = (op: number, dst: number, imm: number): Insn => insn(BPF_ALU | op | BPF_K, dst, 0, 0, imm);
export const BPF_ALU64_REG = (op: number, dst: number, src: number): Insn => insn(BPF_ALU64 | op | BPF_X, dst, src);
export const BPF_ALU32_REG = (op: number, dst: number, src: number): Insn => insn(BPF_ALU | op | BPF_X, dst, src);
export const BPF_MOV64_IMM = (dst: number, imm: number): Insn => BPF_ALU64_IMM(BPF_MOV, dst, imm);
export const BPF_MOV32_IMM = (dst: number, imm: number): Insn => BPF_ALU32_IMM(BPF_MOV, dst, imm);
export const BPF_MOV64_REG = (dst: number, src: number): Insn => BPF_RAW_INSN(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0);
export const BPF_MOV32_REG = (dst: number, src: number): Insn => BPF_ALU32_REG(BPF_MOV, dst, src);
export const BPF_ENDIAN = (type: number, dst: number, len: number): Insn => insn(BPF_ALU | BPF_END | type, dst, 0, 0, len);
export const BPF_LD_IMM64_RAW = (dst: number, src: number, imm: bigint): Insn[] => [
  insn(BPF_LD | BPF_DW | BPF_IMM, dst, src, 0, Number(BigInt.asIntN(32, imm))),
  insn(0, 0, 0, 0, Number(BigInt.asIntN(32, imm >> 32n))),
];
export const BPF_LD_IMM64 = (dst: number, imm: bigint | number): Insn[] => BPF_LD_IMM64_RAW(dst, 0, BigInt(imm));
export const BPF_LD_MAP_FD = (dst: number, fd: number): Insn[] => BPF_LD_IMM64_RAW(dst, BPF_PSEUDO_MAP_FD, BigInt(fd));
export const BPF_LD_MAP_VALUE = (dst: number, fd: number, off: number): Insn[] => [
  insn(BPF_LD | BPF_DW | BPF_IMM, dst, BPF_PSEUDO_MAP_VALUE, 0, fd), insn(0, 0, 0, 0, off),
];
export const BPF_LDX_MEM = (size: number, dst: number, src: number, off: number): Insn => insn(BPF_LDX | size | BPF_MEM, dst & 0xf, src & 0xf, off);
export const BPF_STX_MEM = (size: number, dst: number, src: number, off: number): Insn => insn(BPF_STX | size | BPF_MEM, dst & 0xf, src & 0xf, off);
export const BPF_ST_MEM = (size: number, dst: number, off: number, imm: number): Insn => insn(BPF_ST | size | BPF_MEM, dst & 0xf, 0, off, imm);
export const BPF_STX_XADD = (size: number, dst: number, src: number, off: number): Insn => insn(BPF_STX | size | BPF_ATOMIC, dst, src, off, BPF_ADD);
export const BPF_ATOMIC_OP = (size: number, op: number, dst: number, src: number, off: number): Insn => insn(BPF_STX | size | BPF_ATOMIC, dst, src, off, op);
export const BPF_JMP_IMM = (op: number, dst: number, imm: number, off: number): Insn => insn(BPF_JMP | op | BPF_K, dst, 0, off, imm);
export const BPF_JMP_REG = (op: number, dst: number, src: number, off: number): Insn => insn(BPF_JMP | op | BPF_X, dst, src, off);
export const BPF_JMP32_IMM = (op: number, dst: number, imm: number, off: number): Insn => insn(BPF_JMP32 | op | BPF_K, dst, 0, off, imm);
export const BPF_JMP32_REG = (op: number, dst: number, src: number, off: number): Insn => insn(BPF_JMP32 | op | BPF_X, dst, src, off);
export const BPF_JMP_A = (off: number): Insn => insn(BPF_JMP | BPF_JA, 0, 0, off);
export const BPF_EMIT_CALL = (func: number): Insn => insn(BPF_JMP | BPF_CALL, 0, 0, 0, func);
export const BPF_CALL_REL = (imm: number): Insn => insn(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, imm);
export const BPF_EXIT_INSN = (): Insn => insn(BPF_JMP | BPF_EXIT);
/** The instructions of a case, ld_imm64 pairs spread. */
export const prog = (...xs: I[]): Insn[] => xs.flat();

// struct test_val { unsigned int index; int foo[MAX_ENTRIES=11]; } = 48 bytes; struct other_val = 16 bytes.
const BPF_F_RDONLY_PROG = 1 << 7, BPF_F_WRONLY_PROG = 1 << 8;
const m = (type: number, keySize: number, valueSize: number, maxEntries: number, name: string, flags = 0): MapInfo =>
  ({ type, keySize, valueSize, maxEntries, flags, name, kaddr: 0xffff888000100000n });

/** test_verifier's map fixtures: each has a pseudo fd (the imm of its ld_imm64). */
export const MAPS = {
  map_hash_8b: { fd: 101, info: m(1, 8, 8, 1, 'hash_8b') },
  map_hash_48b: { fd: 102, info: m(1, 8, 48, 1, 'hash_48b') },
  map_hash_16b: { fd: 103, info: m(1, 8, 16, 1, 'hash_16b') },
  map_array_48b: { fd: 104, info: m(2, 4, 48, 1, 'array_48b') },
  map_array_ro: { fd: 105, info: m(2, 4, 48, 1, 'array_ro', BPF_F_RDONLY_PROG) },
  map_array_wo: { fd: 106, info: m(2, 4, 48, 1, 'array_wo', BPF_F_WRONLY_PROG) },
  map_array_small: { fd: 107, info: m(2, 4, 1, 1, 'array_small') },
  prog1: { fd: 108, info: m(3, 4, 4, 4, 'prog_array') },
  map_stacktrace: { fd: 109, info: m(7, 4, 8, 1, 'stacktrace') },
  map_event_output: { fd: 110, info: m(4, 4, 4, 1, 'event_output') },
  map_percpu_array: { fd: 111, info: m(6, 4, 8, 1, 'percpu_array') },
} as const;
export type MapFixture = keyof typeof MAPS;

export interface VCase {
  /** The selftest's name (the `descr` of its struct bpf_test). */
  descr: string;
  insns: Insn[];
  /** enum bpf_prog_type; default BPF_PROG_TYPE_SOCKET_FILTER as test_verifier. */
  progType?: number;
  /** fixup_map_*: ld_imm64 indices that load each map. */
  fixup?: Partial<Record<MapFixture, number[]>>;
  result: 'accept' | 'reject';
  /** A substring of the log, the kernel's message (errstr). */
  errstr?: string;
  /** The errno of a rejection when it is not EACCES/EINVAL's usual one (checked when given). */
  errno?: number;
  strictAlignment?: boolean;
  expectedAttachType?: number;
  /** Why bpfemu's expectation is not the v5.10 selftest's (a later kernel's wording or rule). */
  note?: string;
  /** BPF_F_TEST_STATE_FREQ: a checkpoint at every pruning point. */
  testStateFreq?: boolean;
  /**
   * VERBOSE_ACCEPT and the selftests' tab-separated errstr: these lines, in this order, in the
   * log at level 2 (cmp_str_seq), as test_verifier loads VERBOSE_ACCEPT programs.
   */
  logSeq?: string[];
  /** Expect at least/exactly this many processed instructions. */
  insnProcessed?: number;
}

/** Verifies a case as test_verifier does (privileged, log level 4: errors and statistics). */
export function runCase(c: VCase, logLevel = c.logSeq ? 2 : 4): VerifyResult {
  // As the bytes bpf() reads: imm an s32, off an s16 (`BPF_MOV64_IMM(r, 0xffffffff)` is imm -1).
  const insns = c.insns.map((i) => ({ ...i, imm: i.imm | 0, off: (i.off << 16) >> 16 }));
  const byFd = new Map<number, MapInfo>(Object.values(MAPS).map((x) => [x.fd, x.info]));
  for (const [name, idxs] of Object.entries(c.fixup ?? {})) for (const i of idxs!) insns[i]!.imm = MAPS[name as MapFixture].fd;
  return bpfCheck(insns, {
    progType: c.progType ?? 1, expectedAttachType: c.expectedAttachType, logLevel, strictAlignment: c.strictAlignment, testStateFreq: c.testStateFreq,
    resolveMap: (ins) => { const info = byFd.get(ins.imm); return info && { map: info }; },
  });
}
