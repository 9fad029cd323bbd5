/**
 * @fileoverview kallsyms: the image's symbols by name and by address, as /proc/kallsyms shows
 * them (address, type letter, name), plus names the runtime adds (native entry points).
 */
import { type ElfFile, type ElfSection, STT_FUNC, STT_OBJECT, STT_NOTYPE, STB_LOCAL, STB_WEAK, SHN_UNDEF, SHN_ABS } from './elf.ts';

export interface KSym {
  readonly name: string;
  readonly address: bigint;
  readonly size: number;
  /** /proc/kallsyms letter: T/t text, R/r rodata, D/d data, B/b bss, A absolute. */
  readonly type: string;
}

export class Kallsyms {
  private byName = new Map<string, KSym>();
  private sorted: KSym[] = [];
  private dirty = false;

  /** Adds every named function, object and section-relative label of an ELF symbol table. */
  addElf(elf: ElfFile): void {
    for (const s of elf.symbols()) {
      if (!s.name || s.shndx === SHN_UNDEF) continue;
      if (s.type !== STT_FUNC && s.type !== STT_OBJECT && s.type !== STT_NOTYPE) continue;
      const sec = s.shndx === SHN_ABS ? undefined : elf.sections[s.shndx];
      let t = letterOf(sec);
      if (s.bind === STB_LOCAL) t = t.toLowerCase();
      else if (s.bind === STB_WEAK && t === 'T') t = 'W';
      this.add({ name: s.name, address: s.value, size: s.size, type: t });
    }
  }

  add(sym: KSym): void {
    if (!this.byName.has(sym.name) || sym.type === sym.type.toUpperCase()) this.byName.set(sym.name, sym);
    this.sorted.push(sym);
    this.dirty = true;
  }

  private ordered(): KSym[] {
    if (this.dirty) {
      this.sorted.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
      this.dirty = false;
    }
    return this.sorted;
  }

  /** Drops a symbol (a freed program or module). */
  remove(name: string): boolean {
    const sym = this.byName.get(name);
    if (!sym) return false;
    this.byName.delete(name);
    this.sorted = this.sorted.filter((s) => s !== sym);
    return true;
  }

  lookup(name: string): KSym | undefined { return this.byName.get(name); }

  /** The symbol containing `addr`: the last one at or below it, within its size when it has one. */
  find(addr: bigint): KSym | undefined {
    const sorted = this.ordered();
    let lo = 0, hi = sorted.length - 1, best: KSym | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = sorted[mid]!;
      if (s.address <= addr) { best = s; lo = mid + 1; } else hi = mid - 1;
    }
    // Prefer a sized symbol covering addr among those at the same address.
    if (best && best.size > 0 && addr >= best.address + BigInt(best.size)) return undefined;
    return best;
  }

  /** `name+0xoff` (or `name`), as the kernel's %pS prints. */
  symbolize(addr: bigint): string | undefined {
    const s = this.find(addr);
    if (!s) return undefined;
    const off = addr - s.address;
    return off === 0n ? s.name : `${s.name}+0x${off.toString(16)}`;
  }

  all(): readonly KSym[] { return this.ordered(); }
}

const SHF_WRITE = 1n, SHF_EXECINSTR = 4n;
function letterOf(sec: ElfSection | undefined): string {
  if (!sec) return 'A';
  if (sec.flags & SHF_EXECINSTR) return 'T';
  if (sec.type === 8 /* NOBITS */) return 'B';
  if (sec.flags & SHF_WRITE) return 'D';
  return 'R';
}
