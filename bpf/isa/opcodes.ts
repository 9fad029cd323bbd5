/**
 * @fileoverview The BPF instruction set (include/uapi/linux/bpf.h, bpf_common.h;
 * Documentation/bpf/standardization/instruction-set.rst, RFC 9669): uAPI constants and the
 * one ISA table every consumer keys off (interpreter, JIT, verifier, assembler, disassembler).
 *
 * An instruction is 8 bytes (struct bpf_insn); LD_IMM64 takes two:
 *
 *   msb                                                            lsb
 *   +------------------------+----------------+----+----+--------+
 *   |immediate               |offset          |src |dst |opcode  |
 *   +------------------------+----------------+----+----+--------+
 *    63                    32 31            16 15 12 11 8 7      0
 *
 * opcode = class (3 bits) | source or size (1-2 bits) | operation or mode (3-4 bits):
 *   ALU/ALU64/JMP/JMP32:  op(4) | src(1: K or X) | class(3)
 *   LD/LDX/ST/STX:        mode(3) | size(2) | class(3)
 */

// Instruction classes.
export const BPF_LD = 0x00, BPF_LDX = 0x01, BPF_ST = 0x02, BPF_STX = 0x03;
export const BPF_ALU = 0x04, BPF_JMP = 0x05, BPF_JMP32 = 0x06, BPF_ALU64 = 0x07;
// Sizes.
export const BPF_W = 0x00, BPF_H = 0x08, BPF_B = 0x10, BPF_DW = 0x18;
// Modes.
export const BPF_IMM = 0x00, BPF_ABS = 0x20, BPF_IND = 0x40, BPF_MEM = 0x60, BPF_MEMSX = 0x80, BPF_ATOMIC = 0xc0;
// ALU operations.
export const BPF_ADD = 0x00, BPF_SUB = 0x10, BPF_MUL = 0x20, BPF_DIV = 0x30, BPF_OR = 0x40, BPF_AND = 0x50;
export const BPF_LSH = 0x60, BPF_RSH = 0x70, BPF_NEG = 0x80, BPF_MOD = 0x90, BPF_XOR = 0xa0, BPF_MOV = 0xb0;
export const BPF_ARSH = 0xc0, BPF_END = 0xd0;
// Source operand.
export const BPF_K = 0x00, BPF_X = 0x08;
export const BPF_TO_LE = 0x00, BPF_TO_BE = 0x08;
// Jump operations.
export const BPF_JA = 0x00, BPF_JEQ = 0x10, BPF_JGT = 0x20, BPF_JGE = 0x30, BPF_JSET = 0x40, BPF_JNE = 0x50;
export const BPF_JSGT = 0x60, BPF_JSGE = 0x70, BPF_CALL = 0x80, BPF_EXIT = 0x90;
export const BPF_JLT = 0xa0, BPF_JLE = 0xb0, BPF_JSLT = 0xc0, BPF_JSLE = 0xd0;
// Atomic operations (in imm).
export const BPF_FETCH = 0x01, BPF_XCHG = 0xe0 | BPF_FETCH, BPF_CMPXCHG = 0xf0 | BPF_FETCH;
// Pseudo sources of LD_IMM64 (src_reg).
export const BPF_PSEUDO_MAP_FD = 1, BPF_PSEUDO_MAP_VALUE = 2, BPF_PSEUDO_BTF_ID = 3, BPF_PSEUDO_FUNC = 4;
export const BPF_PSEUDO_MAP_IDX = 5, BPF_PSEUDO_MAP_IDX_VALUE = 6;
// Pseudo sources of CALL (src_reg).
export const BPF_PSEUDO_CALL = 1, BPF_PSEUDO_KFUNC_CALL = 2;

export const BPF_CLASS = (code: number): number => code & 0x07;
export const BPF_SIZE = (code: number): number => code & 0x18;
export const BPF_MODE = (code: number): number => code & 0xe0;
export const BPF_OP = (code: number): number => code & 0xf0;
export const BPF_SRC = (code: number): number => code & 0x08;

/** Registers: R0 return, R1-R5 args, R6-R9 callee-saved, R10 read-only frame pointer. */
export const MAX_BPF_REG = 11;
export const BPF_REG_FP = 10;
/** The JIT's scratch register (BPF_REG_AX in the kernel). */
export const BPF_REG_AX = 11;
export const MAX_BPF_STACK = 512;
export const BPF_MAX_INSNS = 4096;
export const BPF_COMPLEXITY_LIMIT_INSNS = 1_000_000;
export const MAX_CALL_FRAMES = 8;
export const BPF_INSN_SIZE = 8;

/** What an instruction's operands are. */
export type Operands =
  | 'alu'        // dst op= src|imm
  | 'alu-unary'  // dst = op dst (neg)
  | 'end'        // dst = byte-swap(dst), width in imm
  | 'jmp'        // if (dst cmp src|imm) goto pc+off
  | 'ja'         // goto pc+off (JMP32: pc+imm)
  | 'call'       // helper imm | bpf-to-bpf (src=1) | kfunc (src=2)
  | 'callx'      // call the helper whose id is in dst (ubpf/conformance extension)
  | 'exit'
  | 'lddw'       // dst = imm64 (two slots), src = pseudo kind
  | 'ldx'        // dst = *(size *)(src + off)
  | 'st'         // *(size *)(dst + off) = imm
  | 'stx'        // *(size *)(dst + off) = src
  | 'atomic';    // atomic op on *(size *)(dst + off) with src

export interface IsaRow {
  readonly code: number;
  /** Instructions sharing `code` are told apart by off (sdiv, movsx) or imm (end, atomics). */
  readonly off?: number;
  readonly imm?: number;
  readonly operands: Operands;
  /** Whether both K and X forms exist (ALU, JMP). */
  readonly kx?: boolean;
  /** ISA version that introduced it (v1..v4), as bpf_conformance's cpu_version. */
  readonly isa: 1 | 2 | 3 | 4;
}

/** MOVSX (mov with off 8/16/32) exists only with a register source (RFC 9669 4.1; the verifier
 * rejects BPF_MOV|BPF_K with a nonzero off), so its row is the X form alone. */
const alu = (cls: number, op: number, isa: 1 | 2 | 3 | 4 = 1, off?: number): IsaRow => {
  const movsx = op === BPF_MOV && off !== undefined;
  return { code: cls | op | (movsx ? BPF_X : BPF_K), operands: op === BPF_NEG ? 'alu-unary' : 'alu', kx: op !== BPF_NEG && !movsx, isa, ...(off !== undefined ? { off } : {}) };
};
const jmp = (cls: number, op: number, isa: 1 | 2 | 3 | 4): IsaRow => ({ code: cls | op, operands: 'jmp', kx: true, isa });
const end = (cls: number, src: number, imm: number, isa: 1 | 4 = 1): IsaRow => ({ code: cls | BPF_END | src, imm, operands: 'end', isa });
const mem = (cls: number, mode: number, size: number, operands: Operands, isa: 1 | 4 = 1): IsaRow => ({ code: cls | mode | size, operands, isa });
const atomic = (size: number, imm: number): IsaRow => ({ code: BPF_STX | BPF_ATOMIC | size, imm, operands: 'atomic', isa: 3 });

/**
 * The ISA table, keyed by the assembler's mnemonic (bpf_conformance/ubpf syntax; 32-bit forms
 * end in 32). Handlers elsewhere are typed `Record<OpName, …>` so each consumer covers every row.
 */
export const ISA = {
  // ALU64
  add: alu(BPF_ALU64, BPF_ADD), sub: alu(BPF_ALU64, BPF_SUB), mul: alu(BPF_ALU64, BPF_MUL),
  div: alu(BPF_ALU64, BPF_DIV), sdiv: alu(BPF_ALU64, BPF_DIV, 4, 1),
  or: alu(BPF_ALU64, BPF_OR), and: alu(BPF_ALU64, BPF_AND), lsh: alu(BPF_ALU64, BPF_LSH), rsh: alu(BPF_ALU64, BPF_RSH),
  neg: alu(BPF_ALU64, BPF_NEG), mod: alu(BPF_ALU64, BPF_MOD), smod: alu(BPF_ALU64, BPF_MOD, 4, 1),
  xor: alu(BPF_ALU64, BPF_XOR), mov: alu(BPF_ALU64, BPF_MOV), arsh: alu(BPF_ALU64, BPF_ARSH),
  movsx864: alu(BPF_ALU64, BPF_MOV, 4, 8), movsx1664: alu(BPF_ALU64, BPF_MOV, 4, 16), movsx3264: alu(BPF_ALU64, BPF_MOV, 4, 32),
  // ALU (32-bit: results zero-extended into the 64-bit register)
  add32: alu(BPF_ALU, BPF_ADD), sub32: alu(BPF_ALU, BPF_SUB), mul32: alu(BPF_ALU, BPF_MUL),
  div32: alu(BPF_ALU, BPF_DIV), sdiv32: alu(BPF_ALU, BPF_DIV, 4, 1),
  or32: alu(BPF_ALU, BPF_OR), and32: alu(BPF_ALU, BPF_AND), lsh32: alu(BPF_ALU, BPF_LSH), rsh32: alu(BPF_ALU, BPF_RSH),
  neg32: alu(BPF_ALU, BPF_NEG), mod32: alu(BPF_ALU, BPF_MOD), smod32: alu(BPF_ALU, BPF_MOD, 4, 1),
  xor32: alu(BPF_ALU, BPF_XOR), mov32: alu(BPF_ALU, BPF_MOV), arsh32: alu(BPF_ALU, BPF_ARSH),
  movsx832: alu(BPF_ALU, BPF_MOV, 4, 8), movsx1632: alu(BPF_ALU, BPF_MOV, 4, 16),
  // Byte swaps: ALU|END to/from LE or BE; ALU64|END (TO_LE) is the unconditional bswap.
  le16: end(BPF_ALU, BPF_TO_LE, 16), le32: end(BPF_ALU, BPF_TO_LE, 32), le64: end(BPF_ALU, BPF_TO_LE, 64),
  be16: end(BPF_ALU, BPF_TO_BE, 16), be32: end(BPF_ALU, BPF_TO_BE, 32), be64: end(BPF_ALU, BPF_TO_BE, 64),
  bswap16: end(BPF_ALU64, BPF_TO_LE, 16, 4), bswap32: end(BPF_ALU64, BPF_TO_LE, 32, 4), bswap64: end(BPF_ALU64, BPF_TO_LE, 64, 4),
  // JMP
  ja: { code: BPF_JMP | BPF_JA, operands: 'ja', isa: 1 },
  jeq: jmp(BPF_JMP, BPF_JEQ, 1), jgt: jmp(BPF_JMP, BPF_JGT, 1), jge: jmp(BPF_JMP, BPF_JGE, 1), jset: jmp(BPF_JMP, BPF_JSET, 1),
  jne: jmp(BPF_JMP, BPF_JNE, 1), jsgt: jmp(BPF_JMP, BPF_JSGT, 1), jsge: jmp(BPF_JMP, BPF_JSGE, 1),
  jlt: jmp(BPF_JMP, BPF_JLT, 2), jle: jmp(BPF_JMP, BPF_JLE, 2), jslt: jmp(BPF_JMP, BPF_JSLT, 2), jsle: jmp(BPF_JMP, BPF_JSLE, 2),
  call: { code: BPF_JMP | BPF_CALL, operands: 'call', isa: 1 },
  callx: { code: BPF_JMP | BPF_CALL | BPF_X, operands: 'callx', isa: 1 },
  exit: { code: BPF_JMP | BPF_EXIT, operands: 'exit', isa: 1 },
  // JMP32
  ja32: { code: BPF_JMP32 | BPF_JA, operands: 'ja', isa: 4 },
  jeq32: jmp(BPF_JMP32, BPF_JEQ, 3), jgt32: jmp(BPF_JMP32, BPF_JGT, 3), jge32: jmp(BPF_JMP32, BPF_JGE, 3), jset32: jmp(BPF_JMP32, BPF_JSET, 3),
  jne32: jmp(BPF_JMP32, BPF_JNE, 3), jsgt32: jmp(BPF_JMP32, BPF_JSGT, 3), jsge32: jmp(BPF_JMP32, BPF_JSGE, 3),
  jlt32: jmp(BPF_JMP32, BPF_JLT, 3), jle32: jmp(BPF_JMP32, BPF_JLE, 3), jslt32: jmp(BPF_JMP32, BPF_JSLT, 3), jsle32: jmp(BPF_JMP32, BPF_JSLE, 3),
  // Loads and stores
  lddw: { code: BPF_LD | BPF_IMM | BPF_DW, operands: 'lddw', isa: 1 },
  ldxb: mem(BPF_LDX, BPF_MEM, BPF_B, 'ldx'), ldxh: mem(BPF_LDX, BPF_MEM, BPF_H, 'ldx'),
  ldxw: mem(BPF_LDX, BPF_MEM, BPF_W, 'ldx'), ldxdw: mem(BPF_LDX, BPF_MEM, BPF_DW, 'ldx'),
  ldxsb: mem(BPF_LDX, BPF_MEMSX, BPF_B, 'ldx', 4), ldxsh: mem(BPF_LDX, BPF_MEMSX, BPF_H, 'ldx', 4), ldxsw: mem(BPF_LDX, BPF_MEMSX, BPF_W, 'ldx', 4),
  stb: mem(BPF_ST, BPF_MEM, BPF_B, 'st'), sth: mem(BPF_ST, BPF_MEM, BPF_H, 'st'),
  stw: mem(BPF_ST, BPF_MEM, BPF_W, 'st'), stdw: mem(BPF_ST, BPF_MEM, BPF_DW, 'st'),
  stxb: mem(BPF_STX, BPF_MEM, BPF_B, 'stx'), stxh: mem(BPF_STX, BPF_MEM, BPF_H, 'stx'),
  stxw: mem(BPF_STX, BPF_MEM, BPF_W, 'stx'), stxdw: mem(BPF_STX, BPF_MEM, BPF_DW, 'stx'),
  // Atomics (`lock add [dst+off], src` …; 32-bit forms end in 32)
  'lock add': atomic(BPF_DW, BPF_ADD), 'lock or': atomic(BPF_DW, BPF_OR), 'lock and': atomic(BPF_DW, BPF_AND), 'lock xor': atomic(BPF_DW, BPF_XOR),
  'lock fetch add': atomic(BPF_DW, BPF_ADD | BPF_FETCH), 'lock fetch or': atomic(BPF_DW, BPF_OR | BPF_FETCH),
  'lock fetch and': atomic(BPF_DW, BPF_AND | BPF_FETCH), 'lock fetch xor': atomic(BPF_DW, BPF_XOR | BPF_FETCH),
  'lock xchg': atomic(BPF_DW, BPF_XCHG), 'lock cmpxchg': atomic(BPF_DW, BPF_CMPXCHG),
  'lock add32': atomic(BPF_W, BPF_ADD), 'lock or32': atomic(BPF_W, BPF_OR), 'lock and32': atomic(BPF_W, BPF_AND), 'lock xor32': atomic(BPF_W, BPF_XOR),
  'lock fetch add32': atomic(BPF_W, BPF_ADD | BPF_FETCH), 'lock fetch or32': atomic(BPF_W, BPF_OR | BPF_FETCH),
  'lock fetch and32': atomic(BPF_W, BPF_AND | BPF_FETCH), 'lock fetch xor32': atomic(BPF_W, BPF_XOR | BPF_FETCH),
  'lock xchg32': atomic(BPF_W, BPF_XCHG), 'lock cmpxchg32': atomic(BPF_W, BPF_CMPXCHG),
} as const satisfies Record<string, IsaRow>;

export type OpName = keyof typeof ISA;
export const OP_NAMES = Object.keys(ISA) as OpName[];

/** Alternative spellings the assembler accepts. */
export const ALIASES: Readonly<Record<string, OpName>> = {
  swap16: 'bswap16', swap32: 'bswap32', swap64: 'bswap64', mov64: 'mov', add64: 'add', sub64: 'sub',
  mul64: 'mul', div64: 'div', or64: 'or', and64: 'and', lsh64: 'lsh', rsh64: 'rsh', neg64: 'neg',
  mod64: 'mod', xor64: 'xor', arsh64: 'arsh', sdiv64: 'sdiv', smod64: 'smod', gotol: 'ja32',
  'lock add64': 'lock add', 'lock or64': 'lock or', 'lock and64': 'lock and', 'lock xor64': 'lock xor',
  'lock fetch add64': 'lock fetch add', 'lock fetch or64': 'lock fetch or', 'lock fetch and64': 'lock fetch and',
  'lock fetch xor64': 'lock fetch xor', 'lock xchg64': 'lock xchg', 'lock cmpxchg64': 'lock cmpxchg',
};

/** Memory access width in bytes of a size field. */
export const SIZE_BYTES: Readonly<Record<number, 1 | 2 | 4 | 8>> = { [BPF_B]: 1, [BPF_H]: 2, [BPF_W]: 4, [BPF_DW]: 8 };
