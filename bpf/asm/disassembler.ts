/**
 * @fileoverview Two renderings of BPF instructions, both keyed off the ISA table:
 *
 *  - {@link disassemble}: the conformance assembler's syntax, so that
 *    `assemble(disassemble(x))` gives back exactly `x`. Jumps are `+N`/`-N` offsets, or labels
 *    `L<index>:` with `{ labels: true }`. Encodings that syntax cannot express (a nonzero field
 *    the instruction does not use, an LD_IMM64 pseudo source) raise a DisasmError.
 *  - {@link dumpXlated}: the kernel's verifier log / `bpftool prog dump xlated` text, in the
 *    formats of kernel/bpf/disasm.c print_bpf_insn():
 *
 *      0: (b7) r0 = 1                      5: (18) r1 = 0x1122334455667788   (takes 5 and 6)
 *      1: (7b) *(u64 *)(r10 -8) = r1       7: (55) if r1 != 0x0 goto pc+2
 *      2: (61) r0 = *(u32 *)(r1 +4)        8: (85) call bpf_map_lookup_elem#1
 *      3: (db) lock *(u64 *)(r10 -8) += r1 9: (bc) w0 = w1
 *
 *    Unlike disasm.c it prints any field it is given (no BUG_ lines: undecodable instructions
 *    are DisasmErrors) and shows `callx` (the conformance suite's BPF_JMP|BPF_CALL|BPF_X,
 *    which the kernel does not have) in LLVM's spelling: `(8d) callx r2`.
 *
 * An instruction no ISA row describes, or an LD_IMM64 without its second slot, raises a
 * {@link DisasmError} naming its index: `insn 3: unknown opcode 0x8f`.
 */
import {
  ISA, OP_NAMES, BPF_X, BPF_CLASS, BPF_OP, BPF_SRC, BPF_SIZE, BPF_MODE, BPF_ALU, BPF_JMP32, BPF_TO_BE,
  BPF_ALU64, BPF_MEMSX, BPF_DW, BPF_END, BPF_DIV, BPF_MOD, BPF_MOV, BPF_FETCH, BPF_XCHG, BPF_CMPXCHG, BPF_PSEUDO_CALL, BPF_PSEUDO_KFUNC_CALL,
  type OpName, type IsaRow, type Operands,
} from '../isa/opcodes.ts';
import { opOf, isLdImm64, imm64, type Insn } from '../isa/insn.ts';

/** Every disassembler error: its code and message template. */
export const DISASM_ERRORS = {
  UNKNOWN_OPCODE: (code: number, selector?: string) => `unknown opcode 0x${code.toString(16).padStart(2, '0')}${selector ? ` with ${selector}` : ''}`,
  TRUNCATED_LDDW: () => 'lddw without its second slot',
  BAD_LDDW_SLOT: (field: string, v: number) => `second slot of lddw has ${field}=${v}`,
  NOT_EXPRESSIBLE: (name: string, field: string, v: number) => `${name} with ${field}=${v} has no assembler syntax`,
} as const;
export type DisasmErrorCode = keyof typeof DISASM_ERRORS;

/** An undecodable or inexpressible instruction, by index: `insn 3: unknown opcode 0x8f`. */
export class DisasmError extends Error {
  readonly code: DisasmErrorCode;
  readonly index: number;
  readonly detail: string;
  constructor(code: DisasmErrorCode, index: number, detail: string) {
    super(`insn ${index}: ${detail}`);
    this.name = 'DisasmError';
    this.code = code;
    this.index = index;
    this.detail = detail;
  }
}

function fail<C extends DisasmErrorCode>(code: C, index: number, ...args: Parameters<(typeof DISASM_ERRORS)[C]>): never {
  const template = DISASM_ERRORS[code] as (...a: unknown[]) => string;
  throw new DisasmError(code, index, template(...args));
}

/** Opcodes some row has (so a miss is in the off/imm selector, not the opcode). */
const KNOWN_CODES = new Set(OP_NAMES.flatMap((n) => { const r: IsaRow = ISA[n]; return r.kx ? [r.code, r.code | BPF_X] : [r.code]; }));

/** One decoded instruction: an LD_IMM64 pair is one slot holding both halves. */
interface Slot { index: number; insn: Insn; name: OpName; row: IsaRow; imm64?: bigint }

function decodeSlots(insns: readonly Insn[]): Slot[] {
  const out: Slot[] = [];
  for (let index = 0; index < insns.length; index++) {
    const i = insns[index]!;
    const name = opOf(i);
    if (name === undefined) {
      const selector = !KNOWN_CODES.has(i.code) ? undefined
        : [BPF_ALU, BPF_ALU64].includes(BPF_CLASS(i.code)) && BPF_OP(i.code) !== BPF_END ? `off ${i.off}` : `imm ${i.imm}`;
      fail('UNKNOWN_OPCODE', index, i.code, selector);
    }
    if (isLdImm64(i)) {
      const hi = insns[index + 1];
      if (hi === undefined) fail('TRUNCATED_LDDW', index);
      out.push({ index, insn: i, name, row: ISA[name], imm64: imm64(i, hi) });
      index++;
    } else {
      out.push({ index, insn: i, name, row: ISA[name] });
    }
  }
  return out;
}

const isX = (i: Insn): boolean => BPF_SRC(i.code) === BPF_X;

// --- conformance syntax -------------------------------------------------------------------

type Field = 'dst' | 'src' | 'off' | 'imm';

/** The fields each operand kind writes in the assembler syntax (others must be zero). */
const USES = {
  'alu': (i) => ['dst', isX(i) ? 'src' : 'imm'],
  'alu-unary': () => ['dst'],
  'end': () => ['dst'],
  'jmp': (i) => ['dst', isX(i) ? 'src' : 'imm', 'off'],
  'ja': (i) => [BPF_CLASS(i.code) === BPF_JMP32 ? 'imm' : 'off'],
  'call': (i) => ['imm', ...(i.src <= BPF_PSEUDO_KFUNC_CALL ? ['src' as const] : [])],
  'callx': () => ['dst'],
  'exit': () => [],
  'lddw': () => ['dst', 'imm'],
  'ldx': () => ['dst', 'src', 'off'],
  'st': () => ['dst', 'off', 'imm'],
  'stx': () => ['dst', 'src', 'off'],
  'atomic': () => ['dst', 'src', 'off'],
} satisfies Record<Operands, (i: Insn) => Field[]>;

/** Checks that `assemble` can give this slot back exactly. */
function checkExpressible(s: Slot, insns: readonly Insn[]): void {
  const used = new Set<Field>(USES[s.row.operands](s.insn));
  if (s.row.off !== undefined) used.add('off');
  if (s.row.imm !== undefined) used.add('imm');
  for (const f of ['dst', 'src', 'off', 'imm'] as const) {
    if (!used.has(f) && s.insn[f] !== 0) fail('NOT_EXPRESSIBLE', s.index, s.name, f, s.insn[f]);
  }
  if (s.imm64 !== undefined) {
    const hi = insns[s.index + 1]!;
    for (const f of ['code', 'dst', 'src', 'off'] as const) if (hi[f] !== 0) fail('BAD_LDDW_SLOT', s.index + 1, f, hi[f]);
  }
}

const R = (n: number): string => `%r${n}`;
const memRef = (reg: number, off: number): string => (off === 0 ? `[${R(reg)}]` : `[${R(reg)}${off < 0 ? '-' : '+'}${Math.abs(off)}]`);

/** Renders one slot; `to(rel)` renders a jump of rel instructions from the next one. */
const ASM = {
  'alu': (s) => `${s.name} ${R(s.insn.dst)}, ${isX(s.insn) ? R(s.insn.src) : s.insn.imm}`,
  'alu-unary': (s) => `${s.name} ${R(s.insn.dst)}`,
  'end': (s) => `${s.name} ${R(s.insn.dst)}`,
  'jmp': (s, to) => `${s.name} ${R(s.insn.dst)}, ${isX(s.insn) ? R(s.insn.src) : s.insn.imm}, ${to(s.insn.off)}`,
  'ja': (s, to) => (s.name === 'ja' ? `ja ${to(s.insn.off)}` : `${s.name} ${to(s.insn.imm)}`),
  'call': (s, to) => (s.insn.src === BPF_PSEUDO_CALL ? `call local ${to(s.insn.imm)}`
    : s.insn.src === BPF_PSEUDO_KFUNC_CALL ? `call runtime ${s.insn.imm}` : `call ${s.insn.imm}`),
  'callx': (s) => `call ${R(s.insn.dst)}`,
  'exit': () => 'exit',
  'lddw': (s) => `lddw ${R(s.insn.dst)}, 0x${s.imm64!.toString(16)}`,
  'ldx': (s) => `${s.name} ${R(s.insn.dst)}, ${memRef(s.insn.src, s.insn.off)}`,
  'st': (s) => `${s.name} ${memRef(s.insn.dst, s.insn.off)}, ${s.insn.imm}`,
  'stx': (s) => `${s.name} ${memRef(s.insn.dst, s.insn.off)}, ${R(s.insn.src)}`,
  'atomic': (s) => `${s.name} ${memRef(s.insn.dst, s.insn.off)}, ${R(s.insn.src)}`,
} satisfies Record<Operands, (s: Slot, to: (rel: number) => string) => string>;

/** The relative jump of a slot (off, or imm for JMP32 JA and local calls), if it has one. */
function jumpOf(s: Slot): number | undefined {
  switch (s.row.operands) {
    case 'jmp': return s.insn.off;
    case 'ja': return s.name === 'ja' ? s.insn.off : s.insn.imm;
    case 'call': return s.insn.src === BPF_PSEUDO_CALL ? s.insn.imm : undefined;
    default: return undefined;
  }
}

export interface DisassembleOptions {
  /** Jumps to labels `L<index>` instead of `+N`/`-N` (targets outside the program stay offsets). */
  labels?: boolean;
}

/**
 * Instructions in the conformance assembler's syntax, one per line (an LD_IMM64 pair is one
 * line), ending with a newline; `assemble()` of it gives back the same instructions.
 * @throws DisasmError for an undecodable instruction or one the syntax cannot express.
 */
export function disassemble(insns: readonly Insn[], opts: DisassembleOptions = {}): string {
  const slots = decodeSlots(insns);
  slots.forEach((s) => checkExpressible(s, insns));
  const rel = (n: number): string => (n < 0 ? `${n}` : `+${n}`);
  // Label targets: slot starts and the end of the program.
  const targets = new Set<number>();
  if (opts.labels) {
    const starts = new Set([...slots.map((s) => s.index), insns.length]);
    for (const s of slots) {
      const j = jumpOf(s);
      if (j !== undefined && starts.has(s.index + 1 + j)) targets.add(s.index + 1 + j);
    }
  }
  const lines: string[] = [];
  for (const s of slots) {
    if (targets.has(s.index)) lines.push(`L${s.index}:`);
    const to = (n: number): string => (targets.has(s.index + 1 + n) ? `L${s.index + 1 + n}` : rel(n));
    lines.push(ASM[s.row.operands](s, to));
  }
  if (targets.has(insns.length)) lines.push(`L${insns.length}:`);
  return lines.map((l) => `${l}\n`).join('');
}

// --- kernel verifier / bpftool xlated -----------------------------------------------------

export interface XlatedOptions {
  /** The name of helper `id` (kernel: func_id_str[], e.g. 1 → bpf_map_lookup_elem); default `unknown`. */
  helperName?: (id: number) => string | undefined;
  /** The text of an LD_IMM64 value (bpftool: `map[id:3]`); default `0x` hex of the 64 bits. */
  immName?: (insn: Insn, imm: bigint) => string | undefined;
}

/** disasm.c bpf_alu_string[], bpf_jmp_string[], by BPF_OP >> 4. */
const ALU_OP = ['+=', '-=', '*=', '/=', '|=', '&=', '<<=', '>>=', 'neg', '%=', '^=', '=', 's>>=', 'endian'];
const JMP_OP = ['jmp', '==', '>', '>=', '&', '!=', 's>', 's>=', 'call', 'exit', '<', '<=', 's<', 's<='];
const SIZE = { 0x00: 'u32', 0x08: 'u16', 0x10: 'u8', 0x18: 'u64' } as Record<number, string>;
const SIZE_SX = { 0x00: 's32', 0x08: 's16', 0x10: 's8' } as Record<number, string>;
const ATOMIC_OP = { 0x00: 'add', 0x40: 'or', 0x50: 'and', 0xa0: 'xor' } as Record<number, string>;

const pcRel = (n: number): string => (n < 0 ? `${n}` : `+${n}`);
/** `(r10 -8)`: disasm.c's "(r%d %+d)". */
const ptr = (reg: number, off: number): string => `(r${reg} ${pcRel(off)})`;

function aluOp(i: Insn): string {
  const op = BPF_OP(i.code);
  if (i.off === 1 && (op === BPF_DIV || op === BPF_MOD)) return op === BPF_DIV ? 's/=' : 's%='; // sdiv, smod
  return ALU_OP[op >> 4]!;
}

const XLATED = {
  'alu': (s) => {
    const i = s.insn;
    const w = BPF_CLASS(i.code) === BPF_ALU ? 'w' : 'r';
    if (!isX(i)) return `${w}${i.dst} ${aluOp(i)} ${i.imm}`;
    const sx = s.row.off !== undefined && BPF_OP(i.code) === BPF_MOV ? `(s${i.off})` : ''; // movsx
    return `${w}${i.dst} ${aluOp(i)} ${sx}${w}${i.src}`;
  },
  'alu-unary': (s) => { const w = BPF_CLASS(s.insn.code) === BPF_ALU ? 'w' : 'r'; return `${w}${s.insn.dst} = -${w}${s.insn.dst}`; },
  'end': (s) => {
    const i = s.insn;
    const kind = BPF_CLASS(i.code) === BPF_ALU64 ? 'bswap' : BPF_SRC(i.code) === BPF_TO_BE ? 'be' : 'le';
    return `r${i.dst} = ${kind}${i.imm} r${i.dst}`;
  },
  'jmp': (s) => {
    const i = s.insn;
    const w = BPF_CLASS(i.code) === BPF_JMP32 ? 'w' : 'r';
    const rhs = isX(i) ? `${w}${i.src}` : `0x${(i.imm >>> 0).toString(16)}`;
    return `if ${w}${i.dst} ${JMP_OP[BPF_OP(i.code) >> 4]} ${rhs} goto pc${pcRel(i.off)}`;
  },
  'ja': (s) => (s.name === 'ja' ? `goto pc${pcRel(s.insn.off)}` : `gotol pc${pcRel(s.insn.imm)}`),
  'call': (s, o) => {
    const i = s.insn;
    if (i.src === BPF_PSEUDO_CALL) return `call pc${pcRel(i.imm)}`;
    const name = i.src === BPF_PSEUDO_KFUNC_CALL ? 'kernel-function' : (i.src === 0 ? o.helperName?.(i.imm) : undefined) ?? 'unknown';
    return `call ${name}#${i.imm}`;
  },
  'callx': (s) => `callx r${s.insn.dst}`,
  'exit': () => 'exit',
  'lddw': (s, o) => `r${s.insn.dst} = ${o.immName?.(s.insn, s.imm64!) ?? `0x${s.imm64!.toString(16)}`}`,
  'ldx': (s) => {
    const i = s.insn;
    const t = BPF_MODE(i.code) === BPF_MEMSX ? SIZE_SX[BPF_SIZE(i.code)] : SIZE[BPF_SIZE(i.code)];
    return `r${i.dst} = *(${t} *)${ptr(i.src, i.off)}`;
  },
  'st': (s) => `*(${SIZE[BPF_SIZE(s.insn.code)]} *)${ptr(s.insn.dst, s.insn.off)} = ${s.insn.imm}`,
  'stx': (s) => `*(${SIZE[BPF_SIZE(s.insn.code)]} *)${ptr(s.insn.dst, s.insn.off)} = r${s.insn.src}`,
  'atomic': (s) => {
    const i = s.insn;
    const t = SIZE[BPF_SIZE(i.code)]!;
    const a = BPF_SIZE(i.code) === BPF_DW ? 'atomic64' : 'atomic';
    const at = `(${t} *)${ptr(i.dst, i.off)}`;
    if (i.imm === BPF_CMPXCHG) return `r0 = ${a}_cmpxchg(${at}, r0, r${i.src})`;
    if (i.imm === BPF_XCHG) return `r${i.src} = ${a}_xchg(${at}, r${i.src})`;
    if (i.imm & BPF_FETCH) return `r${i.src} = ${a}_fetch_${ATOMIC_OP[i.imm & ~BPF_FETCH]}(${at}, r${i.src})`;
    return `lock *${at} ${ALU_OP[i.imm >> 4]} r${i.src}`;
  },
} satisfies Record<Operands, (s: Slot, o: XlatedOptions) => string>;

/**
 * The program as the verifier log and `bpftool prog dump xlated` print it, one string per
 * instruction (`2: (07) r1 += -8`); the second slot of an LD_IMM64 gets no line.
 * @throws DisasmError for an undecodable instruction.
 */
export function dumpXlated(insns: readonly Insn[], opts: XlatedOptions = {}): string[] {
  return decodeSlots(insns).map((s) => `${s.index}: (${s.insn.code.toString(16).padStart(2, '0')}) ${XLATED[s.row.operands](s, opts)}`);
}
