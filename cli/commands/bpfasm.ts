/**
 * @fileoverview `bpfemu asm FILE [-o OUT]`: BPF assembly (conformance syntax, or a `.data` file)
 * to raw little-endian instructions; and the `--bpf FILE [--xlated]` mode of `bpfemu disasm`
 * (registered in disasm.ts, run here): raw instructions (or a `.data` file) back to assembly,
 * or to the kernel's `prog dump xlated` text.
 */
import type { Command } from 'commander';
import { readFileSync, writeFileSync } from 'node:fs';
import { assemble, AsmError } from '../../bpf/asm/assembler.ts';
import { disassemble, dumpXlated, DisasmError } from '../../bpf/asm/disassembler.ts';
import { parseDataFile } from '../../bpf/asm/datafile.ts';
import { decode, encode, type Insn } from '../../bpf/isa/insn.ts';
import { emit, UsageError, type OutputOptions } from '../output.ts';

const isDataFile = (file: string): boolean => file.endsWith('.data');

function read(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

/** Assembler and disassembler errors are failed operations (exit 1), named by file. */
function named<T>(file: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof AsmError || e instanceof DisasmError || e instanceof RangeError) throw new Error(`${file}: ${e.message}`, { cause: e });
    throw e;
  }
}

/** One instruction as a `-- raw` line: the 64-bit little-endian value in hex. */
const rawLine = (bytes: Uint8Array, n: number): string =>
  `0x${Buffer.from(bytes.subarray(n * 8, n * 8 + 8)).readBigUInt64LE().toString(16).padStart(16, '0')}`;

/** The instructions of a `.data` file or an assembly text file. */
function assembleFile(file: string): Insn[] {
  const text = read(file).toString('utf8');
  if (isDataFile(file)) return parseDataFile(text, file).insns;
  return named(file, () => assemble(text));
}

/** The instructions of a `.data` file or a raw little-endian byte file. */
function loadBpf(file: string): Insn[] {
  const bytes = read(file);
  if (isDataFile(file)) return parseDataFile(bytes.toString('utf8'), file).insns;
  return named(file, () => decode(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)));
}

/** `bpfemu disasm --bpf FILE [--xlated]`. */
export function disasmBpf(file: string, xlated: boolean, opts: OutputOptions): void {
  const insns = loadBpf(file);
  const lines = named(file, () => (xlated ? dumpXlated(insns) : disassemble(insns).split('\n').slice(0, -1)));
  emit(opts, { file, insns: insns.length, lines }, () => lines.join('\n'));
}

export function register(program: Command, global: () => OutputOptions): void {
  program.command('asm')
    .description('assemble BPF (conformance syntax, or a .data file) to raw little-endian instructions')
    .argument('<file>', 'assembly text, or a .data file')
    .option('-o, --output <out>', 'write the raw bytes to OUT (else print one instruction per line, as -- raw)')
    .action((file: string, o: { output?: string }) => {
      const bytes = encode(assembleFile(file));
      const n = bytes.length / 8;
      if (o.output !== undefined) {
        try {
          writeFileSync(o.output, bytes);
        } catch (e) {
          throw new UsageError(`cannot write ${o.output}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
        }
        emit(global(), { file: o.output, insns: n, bytes: bytes.length }, () => '');
        return;
      }
      const lines = Array.from({ length: n }, (_, i) => rawLine(bytes, i));
      emit(global(), { insns: lines }, () => lines.join('\n'));
    });
}
