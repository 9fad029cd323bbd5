/**
 * @fileoverview `bpfemu btf dump [FILE] [--format raw|c]`, as `bpftool btf dump file FILE
 * [format c]`: the kernel image's BTF (the booted machine's, as /sys/kernel/btf/vmlinux), or
 * FILE's: raw BTF, or the .BTF section of an ELF file. `-j` prints bpftool's JSON
 * (`{"types":[...]}`). Raw BTF and executables are checked as the kernel's btf_parse() does;
 * a relocatable object's .BTF only structurally (libbpf fixes its DATASECs up before the
 * kernel sees it). Exit 2 for a missing file or bad usage, 1 for bad BTF with the verifier's
 * message. `bpfemu btf show [id N]` lists the kernel's BTF objects as bpftool's btf show does
 * (BTF_GET_NEXT_ID, BTF_GET_FD_BY_ID, OBJ_GET_INFO_BY_FD): id, name (`[vmlinux]`/`[module]` for
 * kernel BTF, else `<anon>`), size, and the programs and maps that use each.
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
import { BPF_BTF_GET_FD_BY_ID, BPF_BTF_GET_NEXT_ID, BPF_OBJ_GET_INFO_BY_FD } from '../../bpf/syscall/attr.ts';
import { BTF_INFO_SIZE } from '../../bpf/syscall/info.ts';
import { modulesOf } from '../../kernel/module.ts';
import { closeFd, strerror } from './map_elem.ts';
import { parseIdWords } from './attach.ts';
import type { System } from '../../index.ts';

export interface BtfShown { id: number; size: number; prog_ids: number[]; map_ids: number[]; kernel: boolean; name?: string }

/**
 * What bpftool's btf show prints of each BTF object (or of `only`). The kernel's own BTF is
 * named by what it is: vmlinux's (an object from 5.11, btf_vmlinux) or a module's split BTF.
 */
export function showBtf(sys: System, only?: number): BtfShown[] {
  const b = sys.bpfSys, mem = sys.kernel.machine.mem;
  const ids: number[] = [];
  if (only !== undefined) ids.push(only);
  else for (let id = 0; ;) {
    const r = b.call(BPF_BTF_GET_NEXT_ID, { start_id: id });
    if (r.ret < 0) break;
    ids.push((id = r.attr.next_id as number));
  }
  const mods = modulesOf(sys.kernel).list();
  const buf = b.stage(new Uint8Array(BTF_INFO_SIZE));
  try {
    return ids.map((id) => {
      const fd = b.call(BPF_BTF_GET_FD_BY_ID, { start_id: id }).ret;
      if (fd < 0) throw new Error(`get btf by id (${id}): ${strerror(fd)}`);
      try {
        mem.write(buf, new Uint8Array(BTF_INFO_SIZE));
        const r = b.call(BPF_OBJ_GET_INFO_BY_FD, { bpf_fd: fd, info_len: BTF_INFO_SIZE, info: buf });
        if (r.ret < 0) throw new Error(`can't get BTF object info: ${strerror(r.ret)}`);
        const dv = new DataView(mem.read(buf, BTF_INFO_SIZE).buffer);
        const obj = b.btfFromFd(fd)!;
        const name = obj.btf === sys.btf ? 'vmlinux' : obj.btf.base === sys.btf ? mods.find((m) => m.btfData === obj.data)?.name : undefined;
        return {
          id: dv.getUint32(12, true), size: dv.getUint32(8, true),
          prog_ids: [...b.progs.values()].filter((p) => p.btf?.id === id).map((p) => p.id).sort((x, y) => x - y),
          map_ids: [...b.maps.values()].filter((m) => m.btfId === id).map((m) => m.id).sort((x, y) => x - y),
          kernel: name !== undefined, ...(name !== undefined ? { name } : {}),
        };
      } finally { closeFd(sys, fd); }
    });
  } finally { b.unstage(buf); }
}

/** show_btf_plain. */
export const btfText = (s: BtfShown): string =>
  `${s.id}: name ${s.kernel ? `[${s.name}]` : s.name ?? '<anon>'}  size ${s.size}B${s.prog_ids.length ? `  prog_ids ${s.prog_ids.join(',')}` : ''}${s.map_ids.length ? `  map_ids ${s.map_ids.join(',')}` : ''}`;

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
  btf.command('show').alias('list')
    .description('show the BTF objects of this machine (all, or `id N`), as bpftool btf show')
    .argument('[sel...]', 'id N')
    .action(async (sel: string[]) => {
      const id = sel.length ? parseIdWords(sel, 'btf show') : undefined;
      if (id?.rest.length) throw new UsageError(`what is '${id.rest[0]}'?`);
      const sys = await session();
      try {
        const shown = showBtf(sys, id?.id);
        emit(global(), id ? shown[0] : shown, () => shown.map(btfText).join('\n'));
      } finally { release(sys); }
    });
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
