/**
 * @fileoverview The BPF assembler for the syntax of the bpf_conformance and ubpf test data:
 *
 *   mov32 %r0, 1                   ALU (…32: 32-bit), K or X source
 *   lddw %r0, 0x1122334455667788   LD_IMM64 (two slots, any 64-bit value)
 *   ldxw %r0, [%r1+4]              LDX; ldxs… sign-extending
 *   stxdw [%r10-8], %r0            STX;  stb [%r10-1], 0x80  ST
 *   lock fetch add32 [%r10-4], %r1 atomics (lock [fetch] OP[32] [dst+off], src)
 *   jne %r0, 15, failed            JMP/JMP32 to a label or a +N/-N offset
 *   ja L2 / ja +3 / ja32 target    goto (ja32: JMP32 JA, the offset in imm)
 *   call 5 / call %r2 / call local func1 / call runtime 7
 *   be16 %r0 / swap32 %r0 / movsx1632 %r0, %r1 / neg %r0 / exit
 *   name:                          a label (the index of the next instruction)
 *   # …                            a comment, anywhere on a line
 *
 * Mnemonics come from the ISA table (bpf/isa/opcodes.ts) and its ALIASES; the operand syntax
 * from each row's operand kind, one encoder per kind. As in the conformance assembler, a jump to
 * `exit` that names no label goes to the first `exit` instruction. Immediates are s32, or u32
 * written as their bit pattern (`mov32 %r0, 0xffffffff` is imm -1); lddw takes 64 bits.
 * Errors are {@link AsmError}s with a code, the 1-based line and column, and a message naming them.
 */
import {
  ISA, OP_NAMES, ALIASES, BPF_X, BPF_K, BPF_REG_FP, BPF_PSEUDO_CALL, BPF_PSEUDO_KFUNC_CALL,
  type OpName, type IsaRow, type Operands,
} from '../isa/opcodes.ts';
import { insn, type Insn } from '../isa/insn.ts';

/** Every assembler error: its code and message template. */
export const ASM_ERRORS = {
  UNEXPECTED_CHARACTER: (c: string) => `unexpected character '${c}'`,
  UNKNOWN_MNEMONIC: (m: string) => `unknown mnemonic ${m}`,
  OPERAND_COUNT: (m: string, want: number, got: number) => `${m} takes ${want} operand${want === 1 ? '' : 's'}, got ${got}`,
  EXPECTED: (what: string, got: string) => `expected ${what}, got ${got === '' ? 'nothing' : got}`,
  UNKNOWN_REGISTER: (r: string) => `unknown register ${r}`,
  BAD_NUMBER: (s: string) => `bad number ${s}`,
  IMM_RANGE: (v: string, bits: number) => `immediate ${v} does not fit in ${bits} bits`,
  OFFSET_RANGE: (v: string) => `offset ${v} does not fit in s16`,
  JUMP_RANGE: (target: string, off: bigint, bits: number) => `jump to ${target} out of range: offset ${off} does not fit in s${bits}`,
  UNDEFINED_LABEL: (l: string) => `undefined label ${l}`,
  DUPLICATE_LABEL: (l: string, first: number) => `duplicate label ${l} (first defined on line ${first})`,
} as const;
export type AsmErrorCode = keyof typeof ASM_ERRORS;

/** An assembly error at a 1-based line and column: `line 3, column 9: unknown register %r11`. */
export class AsmError extends Error {
  readonly code: AsmErrorCode;
  readonly line: number;
  readonly column: number;
  /** The message without its position. */
  readonly detail: string;
  constructor(code: AsmErrorCode, line: number, column: number, detail: string) {
    super(`line ${line}, column ${column}: ${detail}`);
    this.name = 'AsmError';
    this.code = code;
    this.line = line;
    this.column = column;
    this.detail = detail;
  }
}

interface Pos { line: number; col: number }

function fail<C extends AsmErrorCode>(code: C, at: Pos, ...args: Parameters<(typeof ASM_ERRORS)[C]>): never {
  const template = ASM_ERRORS[code] as (...a: unknown[]) => string;
  throw new AsmError(code, at.line, at.col, template(...args));
}

// --- lexer ------------------------------------------------------------------------------

interface Token extends Pos { kind: 'word' | 'reg' | 'num' | 'punct'; text: string }

/** Whitespace | %register | word | number (validated later) | punctuation. */
const TOKEN = /(\s+)|(%[\w]*)|([A-Za-z_.$][\w.$]*)|(\d[\w.$]*)|([[\]+\-,:])/y;

function lex(src: string, line: number): Token[] {
  const out: Token[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < src.length) {
    const col = TOKEN.lastIndex + 1;
    const m = TOKEN.exec(src);
    if (!m) fail('UNEXPECTED_CHARACTER', { line, col }, src[col - 1]!);
    if (m[1]) continue;
    const kind = m[2] ? 'reg' : m[3] ? 'word' : m[4] ? 'num' : 'punct';
    out.push({ kind, text: m[0], line, col });
  }
  return out;
}

const show = (g: readonly Token[]): string => g.map((t) => t.text).join('');

// --- operands ---------------------------------------------------------------------------

/** An operand: the tokens between commas, and where it starts (for errors). */
interface Operand { toks: Token[]; at: Pos }

function reg(o: Operand): number {
  const t = o.toks[0];
  if (o.toks.length !== 1 || t?.kind !== 'reg') fail('EXPECTED', o.at, 'a register', show(o.toks));
  const m = /^%r(\d+)$/.exec(t.text);
  if (!m || Number(m[1]) > BPF_REG_FP) fail('UNKNOWN_REGISTER', t, t.text);
  return Number(m[1]);
}

const isReg = (o: Operand): boolean => o.toks[0]?.kind === 'reg';

/** [+|-]NUMBER from toks[i]: decimal or 0x hex. */
function signedNumber(toks: readonly Token[], i: number, what: string, at: Pos): bigint {
  let neg = false;
  const sign = toks[i];
  if (sign?.text === '-' || sign?.text === '+') { neg = sign.text === '-'; i++; }
  const t = toks[i];
  if (t?.kind !== 'num') fail('EXPECTED', t ?? at, what, show(toks.slice(i)));
  if (!/^(0[xX][0-9a-fA-F]+|\d+)$/.test(t.text)) fail('BAD_NUMBER', t, t.text);
  if (i !== toks.length - 1) fail('EXPECTED', toks[i + 1]!, 'end of operand', show(toks.slice(i + 1)));
  const v = BigInt(t.text);
  return neg ? -v : v;
}

/** A 32-bit immediate: s32, or u32 taken as its bit pattern. */
function imm32(o: Operand): number {
  const v = signedNumber(o.toks, 0, 'an immediate', o.at);
  if (v < -(1n << 31n) || v >= 1n << 32n) fail('IMM_RANGE', o.at, show(o.toks), 32);
  return Number(BigInt.asIntN(32, v));
}

function imm64(o: Operand): bigint {
  const v = signedNumber(o.toks, 0, 'an immediate', o.at);
  if (v < -(1n << 63n) || v >= 1n << 64n) fail('IMM_RANGE', o.at, show(o.toks), 64);
  return BigInt.asUintN(64, v);
}

/** [%rN], [%rN+OFF], [%rN-OFF]. */
function mem(o: Operand): { reg: number; off: number } {
  const t = o.toks;
  if (t[0]?.text !== '[' || t.at(-1)?.text !== ']' || t.length < 3) fail('EXPECTED', o.at, 'a memory operand [%rN+off]', show(t));
  const r = reg({ toks: [t[1]!], at: t[1]! });
  if (t.length === 3) return { reg: r, off: 0 };
  const offToks = t.slice(2, -1);
  if (offToks[0]?.text !== '+' && offToks[0]?.text !== '-') fail('EXPECTED', offToks[0]!, "'+' or '-'", show(offToks));
  const off = signedNumber(offToks, 0, 'an offset', offToks[0]!);
  if (off < -(1n << 15n) || off >= 1n << 15n) fail('OFFSET_RANGE', offToks[0]!, show(offToks));
  return { reg: r, off: Number(off) };
}

/** A jump target: a label, or +N / -N instructions from the next one. */
type Target = { label: Token } | { rel: bigint; at: Pos; text: string };

function target(o: Operand): Target {
  const t = o.toks;
  if (t.length === 1 && t[0]!.kind === 'word') return { label: t[0]! };
  if (t[0]?.text === '+' || t[0]?.text === '-') return { rel: signedNumber(t, 0, 'a jump offset', o.at), at: o.at, text: show(t) };
  fail('EXPECTED', o.at, 'a label or a +N/-N offset', show(t));
}

// --- encoders, one per operand kind -------------------------------------------------------

/** What an encoder sees: the row, its operands, and how to record a jump to resolve later. */
interface Ctx {
  row: IsaRow;
  ops: Operand[];
  /** The mode word of `call local|helper|runtime`. */
  mode?: string;
  /** Records a target for the instruction being encoded: into off (s16) or imm (s32). */
  jump(t: Target, field: 'off' | 'imm'): number;
}

interface Encoder { count: number; encode(c: Ctx): Insn | Insn[] }

/** The row's opcode with the K or X source chosen by the operand; rows without both forms keep theirs. */
function source(c: Ctx, o: Operand): { code: number; src: number; imm: number } {
  if (c.row.kx) return isReg(o) ? { code: c.row.code | BPF_X, src: reg(o), imm: 0 } : { code: c.row.code | BPF_K, src: 0, imm: imm32(o) };
  if ((c.row.code & BPF_X) === BPF_X) return { code: c.row.code, src: reg(o), imm: 0 };
  return { code: c.row.code, src: 0, imm: imm32(o) };
}

const ENCODERS = {
  'alu': { count: 2, encode: (c) => { const s = source(c, c.ops[1]!); return insn(s.code, reg(c.ops[0]!), s.src, c.row.off ?? 0, s.imm); } },
  'alu-unary': { count: 1, encode: (c) => insn(c.row.code, reg(c.ops[0]!)) },
  'end': { count: 1, encode: (c) => insn(c.row.code, reg(c.ops[0]!), 0, 0, c.row.imm ?? 0) },
  'jmp': {
    count: 3,
    encode: (c) => {
      const dst = reg(c.ops[0]!);
      const s = source(c, c.ops[1]!);
      return insn(s.code, dst, s.src, c.jump(target(c.ops[2]!), 'off'), s.imm);
    },
  },
  // JMP JA: offset in off; JMP32 JA (gotol): offset in imm.
  'ja': { count: 1, encode: (c) => (c.row.code === ISA.ja.code ? insn(c.row.code, 0, 0, c.jump(target(c.ops[0]!), 'off')) : insn(c.row.code, 0, 0, 0, c.jump(target(c.ops[0]!), 'imm'))) },
  'call': {
    count: 1,
    encode: (c) => {
      const o = c.ops[0]!;
      if (c.mode === 'local') return insn(c.row.code, 0, BPF_PSEUDO_CALL, 0, c.jump(target(o), 'imm'));
      if (c.mode === 'runtime') return insn(c.row.code, 0, BPF_PSEUDO_KFUNC_CALL, 0, imm32(o));
      if (isReg(o)) return insn(ISA.callx.code, reg(o)); // call %r2 (or call helper %r2) is callx
      return insn(c.row.code, 0, 0, 0, imm32(o));
    },
  },
  'callx': { count: 1, encode: (c) => insn(c.row.code, reg(c.ops[0]!)) },
  'exit': { count: 0, encode: (c) => insn(c.row.code) },
  'lddw': {
    count: 2,
    encode: (c) => {
      const v = imm64(c.ops[1]!);
      return [insn(c.row.code, reg(c.ops[0]!), 0, 0, Number(BigInt.asIntN(32, v))), insn(0, 0, 0, 0, Number(BigInt.asIntN(32, v >> 32n)))];
    },
  },
  'ldx': { count: 2, encode: (c) => { const m = mem(c.ops[1]!); return insn(c.row.code, reg(c.ops[0]!), m.reg, m.off); } },
  'st': { count: 2, encode: (c) => { const m = mem(c.ops[0]!); return insn(c.row.code, m.reg, 0, m.off, imm32(c.ops[1]!)); } },
  'stx': { count: 2, encode: (c) => { const m = mem(c.ops[0]!); return insn(c.row.code, m.reg, reg(c.ops[1]!), m.off); } },
  'atomic': { count: 2, encode: (c) => { const m = mem(c.ops[0]!); return insn(c.row.code, m.reg, reg(c.ops[1]!), m.off, c.row.imm ?? 0); } },
} satisfies Record<Operands, Encoder>;

/** Mnemonic (lower case, words separated by one space) → ISA row name. */
const MNEMONICS = new Map<string, OpName>([...OP_NAMES.map((n): [string, OpName] => [n, n]), ...Object.entries(ALIASES)]);
const CALL_MODES = new Set(['local', 'helper', 'runtime']);

interface Fixup { index: number; field: 'off' | 'imm'; label: Token }

const rangeOf = (field: 'off' | 'imm'): [bigint, bigint, number] => (field === 'off' ? [-(1n << 15n), 1n << 15n, 16] : [-(1n << 31n), 1n << 31n, 32]);

/**
 * Assembles conformance-syntax text into instructions (an LD_IMM64 is two).
 * @throws AsmError naming the line and column of the first error.
 */
export function assemble(text: string): Insn[] {
  const out: Insn[] = [];
  const labels = new Map<string, { index: number; line: number }>();
  const fixups: Fixup[] = [];
  let firstExit: number | undefined;

  text.split(/\r?\n/).forEach((raw, n) => {
    const line = n + 1;
    const hash = raw.indexOf('#');
    let toks = lex(hash < 0 ? raw : raw.slice(0, hash), line);
    while (toks.length >= 2 && toks[0]!.kind === 'word' && toks[1]!.text === ':') {
      const l = toks[0]!;
      const prev = labels.get(l.text);
      if (prev) fail('DUPLICATE_LABEL', l, l.text, prev.line);
      labels.set(l.text, { index: out.length, line });
      toks = toks.slice(2);
    }
    if (toks.length === 0) return;

    const head = toks[0]!;
    if (head.kind !== 'word') fail('EXPECTED', head, 'a mnemonic or a label', head.text);
    let i = 1;
    const words = [head.text.toLowerCase()];
    if (words[0] === 'lock') while (toks[i]?.kind === 'word') words.push(toks[i++]!.text.toLowerCase());
    let mode: string | undefined;
    if (words[0] === 'call' && toks[i]?.kind === 'word' && CALL_MODES.has(toks[i]!.text)) mode = toks[i++]!.text;
    const mnemonic = words.join(' ');
    const name = MNEMONICS.get(mnemonic);
    if (name === undefined) fail('UNKNOWN_MNEMONIC', head, mnemonic);

    // Operands: the remaining tokens split at commas.
    const ops: Operand[] = [];
    const rest = toks.slice(i);
    if (rest.length > 0) {
      let cur: Token[] = [];
      for (const t of rest) {
        if (t.text !== ',') { cur.push(t); continue; }
        if (cur.length === 0) fail('EXPECTED', t, 'an operand', ',');
        ops.push({ toks: cur, at: cur[0]! });
        cur = [];
      }
      if (cur.length === 0) fail('EXPECTED', { line, col: rest.at(-1)!.col + 1 }, 'an operand', '');
      ops.push({ toks: cur, at: cur[0]! });
    }

    const row: IsaRow = ISA[name];
    const enc: Encoder = ENCODERS[row.operands];
    if (ops.length !== enc.count) fail('OPERAND_COUNT', head, mode ? `${mnemonic} ${mode}` : mnemonic, enc.count, ops.length);
    const index = out.length;
    const jump = (t: Target, field: 'off' | 'imm'): number => {
      if ('label' in t) { fixups.push({ index, field, label: t.label }); return 0; }
      const [lo, hi, bits] = rangeOf(field);
      if (t.rel < lo || t.rel >= hi) fail('JUMP_RANGE', t.at, t.text, t.rel, bits);
      return Number(t.rel);
    };
    const r = enc.encode({ row, ops, ...(mode !== undefined ? { mode } : {}), jump });
    if (row.operands === 'exit') firstExit ??= index;
    if (Array.isArray(r)) out.push(...r); else out.push(r);
  });

  for (const f of fixups) {
    const index = labels.get(f.label.text)?.index ?? (f.label.text === 'exit' ? firstExit : undefined);
    if (index === undefined) fail('UNDEFINED_LABEL', f.label, f.label.text);
    const rel = BigInt(index - f.index - 1);
    const [lo, hi, bits] = rangeOf(f.field);
    if (rel < lo || rel >= hi) fail('JUMP_RANGE', f.label, f.label.text, rel, bits);
    out[f.index]![f.field] = Number(rel);
  }
  return out;
}
