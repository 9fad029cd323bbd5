/**
 * @fileoverview The BPF conformance `.data` format (bpf_conformance tests/, ubpf tests/):
 *
 *   # comment
 *   -- asm        assembly (bpf/asm/assembler.ts)
 *   -- raw        one 64-bit instruction per line, hex (0x…) or decimal, as a little-endian
 *                 struct bpf_insn: 0x1122334400000018 is code 0x18, imm 0x11223344; replaces asm
 *   -- mem        hex bytes separated by spaces and newlines (passed in r1, its length in r2)
 *   -- result     the expected r0 at exit, 0x hex or decimal
 *   -- error      the expected error text
 *   -- c          the C source (ignored)
 *   -- no register offset   a marker (ignored, with any lines under it)
 *
 * Errors are {@link DataFileError}s naming the file and line (and column, for assembly).
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { ISA } from '../isa/opcodes.ts';
import { opOf, isLdImm64, type Insn } from '../isa/insn.ts';
import { assemble, AsmError } from './assembler.ts';

export interface DataFile {
  /** The file name without its directory and `.data`. */
  name: string;
  /** The program: from `-- raw` when present, else assembled from `-- asm`. */
  insns: Insn[];
  /** The `-- asm` text (lines as in the file, comments kept), when present. */
  asm?: string;
  mem: Uint8Array;
  result?: bigint;
  error?: string;
  /** The ISA version the program needs: the highest of its instructions' rows (v1 when none). */
  isa: 1 | 2 | 3 | 4;
}

/** A malformed data file: `add.data: line 7, column 9: unknown register %r11`. */
export class DataFileError extends Error {
  readonly file: string;
  readonly line: number;
  readonly column: number | undefined;
  readonly detail: string;
  constructor(file: string, line: number, detail: string, column?: number, cause?: unknown) {
    super(`${file}: line ${line}${column !== undefined ? `, column ${column}` : ''}: ${detail}`, cause !== undefined ? { cause } : undefined);
    this.name = 'DataFileError';
    this.file = file;
    this.line = line;
    this.column = column;
    this.detail = detail;
  }
}

const SECTIONS = ['asm', 'raw', 'mem', 'result', 'error', 'c', 'no register offset'] as const;
type Section = (typeof SECTIONS)[number];

interface Line { n: number; text: string }

const stripComment = (s: string): string => { const h = s.indexOf('#'); return (h < 0 ? s : s.slice(0, h)).trim(); };

/** The highest ISA version among the program's rows (second LD_IMM64 slots and unknown opcodes skipped). */
export function isaVersion(insns: readonly Insn[]): 1 | 2 | 3 | 4 {
  let v: 1 | 2 | 3 | 4 = 1;
  for (let i = 0; i < insns.length; i++) {
    const name = opOf(insns[i]!);
    if (name !== undefined && ISA[name].isa > v) v = ISA[name].isa;
    if (isLdImm64(insns[i]!)) i++;
  }
  return v;
}

/**
 * Parses a data file's text; `file` names it in errors (and gives `name`).
 * @throws DataFileError for an unknown section, a malformed value, or an assembly error.
 */
export function parseDataFile(text: string, file: string): DataFile {
  const sections = new Map<Section, Line[]>();
  let cur: Line[] | undefined;
  text.split(/\r?\n/).forEach((t, i) => {
    const n = i + 1;
    const head = /^--\s*(.*?)\s*$/.exec(t);
    if (head) {
      const s = SECTIONS.find((x) => x === head[1]);
      if (s === undefined) throw new DataFileError(file, n, `unknown section '-- ${head[1]}'`);
      if (sections.has(s)) throw new DataFileError(file, n, `second '-- ${s}' section`);
      sections.set(s, cur = []);
      return;
    }
    if (cur) cur.push({ n, text: t });
    else if (stripComment(t) !== '') throw new DataFileError(file, n, 'text before the first section');
  });

  const out: DataFile = { name: basename(file).replace(/\.data$/, ''), insns: [], mem: new Uint8Array(0), isa: 1 };
  const asm = sections.get('asm');
  if (asm) out.asm = asm.map((l) => l.text).join('\n');

  const raw = sections.get('raw');
  if (raw) {
    for (const l of raw) {
      for (const tok of stripComment(l.text).split(/\s+/).filter(Boolean)) {
        if (!/^(0x[0-9a-f]{1,16}|\d+)$/i.test(tok) || BigInt(tok) >= 1n << 64n) throw new DataFileError(file, l.n, `bad raw instruction '${tok}'`);
        const v = BigInt(tok);
        out.insns.push({
          code: Number(v & 0xffn), dst: Number((v >> 8n) & 0xfn), src: Number((v >> 12n) & 0xfn),
          off: Number(BigInt.asIntN(16, v >> 16n)), imm: Number(BigInt.asIntN(32, v >> 32n)),
        });
      }
    }
  } else if (asm && asm.length > 0) {
    try {
      out.insns = assemble(out.asm!);
    } catch (e) {
      if (!(e instanceof AsmError)) throw e;
      throw new DataFileError(file, asm[0]!.n + e.line - 1, e.detail, e.column, e);
    }
  }

  const bytes: number[] = [];
  for (const l of sections.get('mem') ?? []) {
    for (const tok of stripComment(l.text).split(/\s+/).filter(Boolean)) {
      if (!/^(0x)?[0-9a-f]{1,2}$/i.test(tok)) throw new DataFileError(file, l.n, `bad memory byte '${tok}'`);
      bytes.push(parseInt(tok.replace(/^0x/i, ''), 16));
    }
  }
  out.mem = Uint8Array.from(bytes);

  const result = (sections.get('result') ?? []).filter((l) => stripComment(l.text) !== '');
  if (result.length > 1) throw new DataFileError(file, result[1]!.n, 'more than one result');
  if (result.length === 1) {
    const l = result[0]!;
    const s = stripComment(l.text);
    const m = /^(-?)(0x[0-9a-f]+|\d+)$/i.exec(s);
    const v = m ? (m[1] === '-' ? -BigInt(m[2]!) : BigInt(m[2]!)) : undefined;
    if (v === undefined || v < -(1n << 63n) || v >= 1n << 64n) throw new DataFileError(file, l.n, `bad result '${s}'`);
    out.result = BigInt.asUintN(64, v);
  }

  const error = (sections.get('error') ?? []).map((l) => l.text.trim()).filter((t) => t !== '' && !t.startsWith('#'));
  if (error.length > 0) out.error = error.join('\n');

  out.isa = isaVersion(out.insns);
  return out;
}

/** Reads and parses a `.data` file. */
export function readDataFile(path: string): DataFile {
  return parseDataFile(readFileSync(path, 'utf8'), path);
}
