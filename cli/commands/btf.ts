/**
 * @fileoverview `bpfemu btf dump [FILE] [--format raw|c]`, as `bpftool btf dump file FILE
 * [format c]`: the kernel image's BTF (the booted machine's, as /sys/kernel/btf/vmlinux), or
 * FILE's: raw BTF, or the .BTF section of an ELF file. `-j` prints bpftool's JSON
 * (`{"types":[...]}`). Raw BTF and executables are checked as the kernel's btf_parse() does;
 * a relocatable object's .BTF only structurally (libbpf fixes its DATASECs up before the
 * kernel sees it). Exit 2 for a missing file or bad usage, 1 for bad BTF with the verifier's
 * message.
 */
import { session, release } from '../session.ts';
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { Btf, BtfError, BTF_MAGIC } from '../../bpf/btf/btf.ts';
import { validateBtf } from '../../bpf/btf/verifier.ts';
import { dumpBtfJson, dumpBtfRaw } from '../../bpf/btf/dump.ts';
import { dumpBtfC } from '../../bpf/btf/dump_c.ts';
import { ElfError, ElfFile } from '../../kernel/elf.ts';
import { emit, UsageError, type OutputOptions } from '../output.ts';

const ET_REL = 1;
const FORMATS = ['raw', 'c'] as const;
type Format = (typeof FORMATS)[number];

/** The BTF of a file: raw BTF (by its magic) or an ELF file's .BTF section. */
export function loadBtfFile(file: string): Btf {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(file));
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  try {
    if (bytes.length >= 2 && (bytes[0]! | (bytes[1]! << 8)) === BTF_MAGIC) return validateBtf(bytes);
    const elf = new ElfFile(bytes);
    if (!elf.section('.BTF')) throw new Error(`${file}: no .BTF section`);
    const data = elf.sectionData('.BTF');
    return elf.type === ET_REL ? new Btf(data) : validateBtf(data);
  } catch (e) {
    // The verifier's lines on one line: the type, then (for a member) the member and the reason.
    if (e instanceof BtfError) throw new Error(`${file}: ${e.log.map((l) => l.trim()).join(' ')}`, { cause: e });
    if (e instanceof ElfError) throw new Error(`${file}: not raw BTF, and ${e.message}`, { cause: e });
    throw e;
  }
}

async function kernelBtf(): Promise<Btf> {
  const sys = await session();
  try {
    return sys.btf;
  } finally {
    release(sys);
  }
}

export function register(program: Command, global: () => OutputOptions): void {
  const btf = program.command('btf').description('BTF of the kernel image or of a file');
  btf.command('dump')
    .description("print BTF types as bpftool's btf dump does (raw, or C)")
    .argument('[file]', "raw BTF, or an ELF file with a .BTF section (default: the kernel image's BTF)")
    .option('--format <format>', 'raw (one line per type) or c (a vmlinux.h)', 'raw')
    .action(async (file: string | undefined, o: { format: string }) => {
      if (!FORMATS.includes(o.format as Format)) throw new UsageError(`unrecognized format specifier: '${o.format}', possible values: raw, c`);
      const opts = global();
      if (o.format === 'c' && (opts.json || opts.pretty)) throw new UsageError('JSON output for C-syntax dump is not supported');
      const b = file === undefined ? await kernelBtf() : loadBtfFile(file);
      if (o.format === 'c') process.stdout.write(dumpBtfC(b));
      else emit(opts, dumpBtfJson(b), () => dumpBtfRaw(b));
    });
}
