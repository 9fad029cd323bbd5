/**
 * @fileoverview A symbol-only ELF64 for gdb: code that exists only at run time (JIT images,
 * trampolines, native entry points) gets names gdb can show (`x/3i $pc`, `info symbol`, `bt`,
 * `break *bpf_trampoline_158`). The file has one PT_LOAD and one SHT_NOBITS `.text` spanning
 * the symbols, so gdb maps the names and still reads the bytes from the target, never stale ones
 * from the file. gdb loads it with `add-symbol-file FILE` (no address needed) or as a library
 * from qXfer:libraries:read (`<segment address>` = the PT_LOAD address).
 *
 *   ELF header | program header (PT_LOAD r-x, filesz 0) | .symtab | .strtab | .shstrtab | section headers
 */

export interface ElfSymbol {
  readonly name: string;
  readonly address: bigint;
  readonly size: number;
  /** Local symbols (kallsyms' lower-case letters) become STB_LOCAL. */
  readonly local?: boolean;
}

const EHDR = 64, PHDR = 56, SHDR = 64, SYM = 24, PAGE = 0x1000n;
const ET_EXEC = 2, EM_X86_64 = 62, PT_LOAD = 1, PF_R = 4, PF_X = 1;
const SHT_SYMTAB = 2, SHT_STRTAB = 3, SHT_NOBITS = 8, SHF_ALLOC = 2n, SHF_EXECINSTR = 4n;
const STB_LOCAL = 0, STB_GLOBAL = 1, STT_FUNC = 2;

class StrTab {
  private parts: string[] = [''];
  private len = 1;
  add(s: string): number {
    const off = this.len;
    this.parts.push(s);
    this.len += Buffer.byteLength(s) + 1;
    return off;
  }
  bytes(): Uint8Array { return new Uint8Array(Buffer.from(`${this.parts.join('\0')}\0`)); }
}

/** The range the file's PT_LOAD/.text covers: page-aligned around every symbol. */
export function symbolSpan(symbols: readonly ElfSymbol[]): { start: bigint; end: bigint } {
  if (symbols.length === 0) throw new RangeError('symbol file: no symbols');
  let lo = symbols[0]!.address, hi = lo;
  for (const s of symbols) {
    if (s.address < lo) lo = s.address;
    const end = s.address + BigInt(Math.max(s.size, 1));
    if (end > hi) hi = end;
  }
  return { start: lo & ~(PAGE - 1n), end: (hi + PAGE - 1n) & ~(PAGE - 1n) };
}

/** Writes the ELF; every symbol is an STT_FUNC in `.text`. */
export function writeSymbolFile(symbols: readonly ElfSymbol[]): Uint8Array {
  const { start, end } = symbolSpan(symbols);
  const ordered = [...symbols.filter((s) => s.local), ...symbols.filter((s) => !s.local)]; // locals first (ELF rule)
  const strtab = new StrTab(), shstrtab = new StrTab();
  const names = { text: shstrtab.add('.text'), symtab: shstrtab.add('.symtab'), strtab: shstrtab.add('.strtab'), shstrtab: shstrtab.add('.shstrtab') };

  const symtab = new Uint8Array(SYM * (ordered.length + 1)); // entry 0: the null symbol
  const sv = new DataView(symtab.buffer);
  ordered.forEach((s, i) => {
    const o = SYM * (i + 1);
    sv.setUint32(o, strtab.add(s.name), true);                                   // st_name
    sv.setUint8(o + 4, ((s.local ? STB_LOCAL : STB_GLOBAL) << 4) | STT_FUNC);   // st_info
    sv.setUint16(o + 6, 1, true);                                                // st_shndx: .text
    sv.setBigUint64(o + 8, s.address, true);                                     // st_value
    sv.setBigUint64(o + 16, BigInt(s.size), true);                               // st_size
  });
  const str = strtab.bytes(), shstr = shstrtab.bytes();

  const symOff = EHDR + PHDR;
  const strOff = symOff + symtab.length;
  const shstrOff = strOff + str.length;
  const shOff = (shstrOff + shstr.length + 7) & ~7;
  const out = new Uint8Array(shOff + 5 * SHDR);
  const v = new DataView(out.buffer);

  // ELF header
  out.set([0x7f, 0x45, 0x4c, 0x46, 2 /* ELFCLASS64 */, 1 /* LSB */, 1 /* EV_CURRENT */], 0);
  v.setUint16(16, ET_EXEC, true);
  v.setUint16(18, EM_X86_64, true);
  v.setUint32(20, 1, true);
  v.setBigUint64(32, BigInt(EHDR), true);   // e_phoff
  v.setBigUint64(40, BigInt(shOff), true);  // e_shoff
  v.setUint16(52, EHDR, true);
  v.setUint16(54, PHDR, true);
  v.setUint16(56, 1, true);                 // e_phnum
  v.setUint16(58, SHDR, true);
  v.setUint16(60, 5, true);                 // e_shnum
  v.setUint16(62, 4, true);                 // e_shstrndx

  // PT_LOAD r-x at the span, nothing from the file (p_offset ≡ p_vaddr mod the page size)
  v.setUint32(EHDR, PT_LOAD, true);
  v.setUint32(EHDR + 4, PF_R | PF_X, true);
  v.setBigUint64(EHDR + 8, 0n, true);                 // p_offset
  v.setBigUint64(EHDR + 16, start, true);             // p_vaddr
  v.setBigUint64(EHDR + 24, start, true);             // p_paddr
  v.setBigUint64(EHDR + 32, 0n, true);                // p_filesz
  v.setBigUint64(EHDR + 40, end - start, true);       // p_memsz
  v.setBigUint64(EHDR + 48, PAGE, true);              // p_align

  out.set(symtab, symOff);
  out.set(str, strOff);
  out.set(shstr, shstrOff);

  const shdr = (i: number, f: { name: number; type: number; flags?: bigint; addr?: bigint; off: number; size: bigint; link?: number; info?: number; align: number; entsize?: number }): void => {
    const o = shOff + i * SHDR;
    v.setUint32(o, f.name, true);
    v.setUint32(o + 4, f.type, true);
    v.setBigUint64(o + 8, f.flags ?? 0n, true);
    v.setBigUint64(o + 16, f.addr ?? 0n, true);
    v.setBigUint64(o + 24, BigInt(f.off), true);
    v.setBigUint64(o + 32, f.size, true);
    v.setUint32(o + 40, f.link ?? 0, true);
    v.setUint32(o + 44, f.info ?? 0, true);
    v.setBigUint64(o + 48, BigInt(f.align), true);
    v.setBigUint64(o + 56, BigInt(f.entsize ?? 0), true);
  };
  // [0] is the null section header (zeros)
  shdr(1, { name: names.text, type: SHT_NOBITS, flags: SHF_ALLOC | SHF_EXECINSTR, addr: start, off: symOff, size: end - start, align: 16 });
  shdr(2, { name: names.symtab, type: SHT_SYMTAB, off: symOff, size: BigInt(symtab.length), link: 3, info: 1 + ordered.filter((s) => s.local).length, align: 8, entsize: SYM });
  shdr(3, { name: names.strtab, type: SHT_STRTAB, off: strOff, size: BigInt(str.length), align: 1 });
  shdr(4, { name: names.shstrtab, type: SHT_STRTAB, off: shstrOff, size: BigInt(shstr.length), align: 1 });
  return out;
}
