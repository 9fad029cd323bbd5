/**
 * @fileoverview A reader for ELF64 little-endian files (the kernel image, later modules and BPF
 * objects): header, program headers, section headers by name, and the symbol table.
 */

export const PT_LOAD = 1;
export const PF_X = 1, PF_W = 2, PF_R = 4;
export const SHT_SYMTAB = 2, SHT_RELA = 4, SHT_NOBITS = 8, SHT_REL = 9;
export const SHF_WRITE = 1n, SHF_ALLOC = 2n, SHF_EXECINSTR = 4n;
export const STT_NOTYPE = 0, STT_OBJECT = 1, STT_FUNC = 2, STT_SECTION = 3, STT_FILE = 4;
export const STB_LOCAL = 0, STB_GLOBAL = 1, STB_WEAK = 2;
export const SHN_UNDEF = 0, SHN_ABS = 0xfff1;

export interface ElfSegment { type: number; flags: number; offset: number; vaddr: bigint; filesz: number; memsz: number; align: bigint }
export interface ElfSection { index: number; name: string; type: number; flags: bigint; addr: bigint; offset: number; size: number; link: number; info: number; align: number; entsize: number }
export interface ElfSymbol { name: string; value: bigint; size: number; type: number; bind: number; shndx: number }
export interface ElfReloc { offset: bigint; sym: number; type: number; addend: bigint }

/** A malformed ELF file: the message names the field and the offset. */
export class ElfError extends Error {
  constructor(msg: string) { super(`ELF: ${msg}`); this.name = 'ElfError'; }
}

export class ElfFile {
  readonly bytes: Uint8Array;
  readonly type: number;
  readonly machine: number;
  readonly entry: bigint;
  readonly segments: ElfSegment[] = [];
  readonly sections: ElfSection[] = [];
  private dv: DataView;
  private symCache: ElfSymbol[] | undefined;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (bytes.length < 64 || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46)
      throw new ElfError('bad magic (not an ELF file)');
    if (bytes[4] !== 2) throw new ElfError(`EI_CLASS ${bytes[4]}: only ELF64 is supported`);
    if (bytes[5] !== 1) throw new ElfError(`EI_DATA ${bytes[5]}: only little-endian is supported`);
    this.type = this.u16(16);
    this.machine = this.u16(18);
    this.entry = this.u64(24);
    const phoff = Number(this.u64(32)), shoff = Number(this.u64(40));
    const phentsize = this.u16(54), phnum = this.u16(56), shentsize = this.u16(58), shnum = this.u16(60), shstrndx = this.u16(62);
    for (let i = 0; i < phnum; i++) {
      const o = phoff + i * phentsize;
      this.check(o, 56, `program header ${i}`);
      this.segments.push({
        type: this.u32(o), flags: this.u32(o + 4), offset: Number(this.u64(o + 8)), vaddr: this.u64(o + 16),
        filesz: Number(this.u64(o + 32)), memsz: Number(this.u64(o + 40)), align: this.u64(o + 48),
      });
    }
    const raw: Omit<ElfSection, 'name'>[] & { nameOff?: number }[] = [];
    const nameOffs: number[] = [];
    for (let i = 0; i < shnum; i++) {
      const o = shoff + i * shentsize;
      this.check(o, 64, `section header ${i}`);
      nameOffs.push(this.u32(o));
      raw.push({
        index: i, type: this.u32(o + 4), flags: this.u64(o + 8), addr: this.u64(o + 16), offset: Number(this.u64(o + 24)),
        size: Number(this.u64(o + 32)), link: this.u32(o + 40), info: this.u32(o + 44), align: Number(this.u64(o + 48)), entsize: Number(this.u64(o + 56)),
      });
    }
    const strtab = raw[shstrndx];
    for (let i = 0; i < raw.length; i++) {
      const name = strtab ? this.str(strtab.offset + nameOffs[i]!) : '';
      this.sections.push({ ...raw[i]!, name });
    }
  }

  private check(off: number, len: number, what: string): void {
    if (off < 0 || off + len > this.bytes.length) throw new ElfError(`${what} at offset ${off} runs past the end of the file`);
  }
  private u16(o: number): number { return this.dv.getUint16(o, true); }
  private u32(o: number): number { return this.dv.getUint32(o, true); }
  private u64(o: number): bigint { return this.dv.getBigUint64(o, true); }
  private str(o: number): string {
    let e = o;
    while (e < this.bytes.length && this.bytes[e] !== 0) e++;
    return Buffer.from(this.bytes.subarray(o, e)).toString('latin1');
  }

  section(name: string): ElfSection | undefined {
    return this.sections.find((s) => s.name === name);
  }

  /** The bytes of a section (empty for NOBITS). */
  sectionData(s: ElfSection | string): Uint8Array {
    const sec = typeof s === 'string' ? this.section(s) : s;
    if (!sec) throw new ElfError(`no section ${String(s)}`);
    if (sec.type === SHT_NOBITS) return new Uint8Array(0);
    this.check(sec.offset, sec.size, `section ${sec.name}`);
    return this.bytes.subarray(sec.offset, sec.offset + sec.size);
  }

  segmentData(seg: ElfSegment): Uint8Array {
    this.check(seg.offset, seg.filesz, 'segment');
    return this.bytes.subarray(seg.offset, seg.offset + seg.filesz);
  }

  /** The relocations of a SHT_REL/SHT_RELA section (sh_info names the section they apply to). */
  relocations(sec: ElfSection): ElfReloc[] {
    if (sec.type !== SHT_REL && sec.type !== SHT_RELA) throw new ElfError(`section ${sec.name} is not a relocation section`);
    const ent = sec.type === SHT_RELA ? 24 : 16;
    this.check(sec.offset, sec.size, sec.name);
    const out: ElfReloc[] = [];
    for (let o = sec.offset; o + ent <= sec.offset + sec.size; o += ent) {
      const info = this.u64(o + 8);
      out.push({ offset: this.u64(o), sym: Number(info >> 32n), type: Number(info & 0xffffffffn), addend: sec.type === SHT_RELA ? this.dv.getBigInt64(o + 16, true) : 0n });
    }
    return out;
  }

  /** Entries of .symtab (index 0, the null symbol, included so indexes match relocations). */
  symbols(): ElfSymbol[] {
    if (this.symCache) return this.symCache;
    const symtab = this.sections.find((s) => s.type === SHT_SYMTAB);
    const out: ElfSymbol[] = [];
    if (symtab) {
      const strtab = this.sections[symtab.link];
      if (!strtab) throw new ElfError('.symtab has no string table');
      this.check(symtab.offset, symtab.size, '.symtab');
      for (let o = symtab.offset; o + 24 <= symtab.offset + symtab.size; o += 24) {
        const info = this.bytes[o + 4]!;
        out.push({
          name: this.str(strtab.offset + this.u32(o)), type: info & 0xf, bind: info >> 4,
          shndx: this.u16(o + 6), value: this.u64(o + 8), size: Number(this.u64(o + 16)),
        });
      }
    }
    this.symCache = out;
    return out;
  }
}
