/**
 * @fileoverview Loadable kernel modules (kernel/module/main.c, arch/x86/kernel/module.c): a
 * gcc-compiled relocatable object (ET_REL, built with the image's flags, so every traced
 * function starts with the 5-byte nop and is listed in its own `__mcount_loc`) is laid out in
 * the module area, its symbols resolved against kallsyms (simplify_symbols), its RELA
 * relocations applied (apply_relocate_add), its symbols added to kallsyms and its ftrace sites
 * to the site table (ftrace_module_init), then the notifier chain runs (MODULE_STATE_COMING:
 * the BPF subsystem reads the module's split BTF there, bpf/btf_module.ts) and `init_module`
 * is called when the module has one.
 *
 * Layout (layout_sections): text (SHF_EXECINSTR) r-x, rodata r--, data and bss rw-, each a
 * page-rounded allocation of the module area (kernel/execmem.ts), within ±2 GiB of the image
 * so `call rel32` and `-mcmodel=kernel`'s 32S references reach both ways.
 *
 * Nothing is half-loaded: every check that can fail (ELF, symbols, relocations, ftrace sites)
 * runs against host buffers before anything becomes visible; a notifier or init_module that
 * refuses undoes all of it (kallsyms, sites, memory). Unloading a module something holds
 * (a BPF program loaded against one of its functions takes a reference, as
 * btf_try_get_module() does since 5.11) is refused: delete_module(2) gives -EWOULDBLOCK with
 * O_NONBLOCK (try_stop_module), and kmod's rmmod checks the refcount first and gives -EBUSY
 * ("Module %s is in use") — both are offered (deleteModule(), rmmod()).
 */
import type { Kernel } from './kernel.ts';
import type { ExecRegion } from './execmem.ts';
import type { KSym } from './kallsyms.ts';
import { X86_NOP5, X86_PATCH_SIZE, type FtraceSite } from './ftrace.ts';
import { PROT_R, PROT_W } from '../emulator/memory.ts';
import { PAGE_SIZE } from './layout.ts';
import {
  ElfFile, ElfError, SHT_NOBITS, SHT_REL, SHT_RELA, SHF_ALLOC, SHF_EXECINSTR, SHF_WRITE,
  STT_FUNC, STT_OBJECT, STT_NOTYPE, STB_LOCAL, STB_WEAK, SHN_UNDEF, SHN_ABS, type ElfSection,
} from './elf.ts';

const ENOENT = 2, EAGAIN = 11, ENOEXEC = 8, EBUSY = 16, EEXIST = 17, EINVAL = 22;
/** -EWOULDBLOCK is -EAGAIN on Linux. */
export const EWOULDBLOCK = EAGAIN;
/** delete_module(2) flags (fcntl.h): rmmod always passes O_NONBLOCK. */
export const O_NONBLOCK = 0o4000, O_TRUNC = 0o1000;
const ET_REL = 1, EM_X86_64 = 62, SHN_COMMON = 0xfff2;
/** MODULE_NAME_LEN: 64 - sizeof(unsigned long). */
export const MODULE_NAME_LEN = 56;

/** x86-64 relocation types a kernel module may carry (arch/x86/kernel/module.c). */
export const R_X86_64_NONE = 0, R_X86_64_64 = 1, R_X86_64_PC32 = 2, R_X86_64_PLT32 = 4;
export const R_X86_64_32 = 10, R_X86_64_32S = 11, R_X86_64_PC64 = 24;

/** A module refused (load) or a bad request (unload): the kernel's errno and an actionable message. */
export class ModuleError extends Error {
  readonly errno: number;
  constructor(errno: number, msg: string) {
    super(msg);
    this.name = 'ModuleError';
    this.errno = -Math.abs(errno);
  }
}

export type ModuleState = 'coming' | 'live' | 'going';

export interface KernelModule {
  readonly name: string;
  state: ModuleState;
  /** Allocations in the module area: text r-x, rodata r--, data+bss rw- (absent when empty). */
  readonly regions: { readonly text?: ExecRegion; readonly rodata?: ExecRegion; readonly data?: ExecRegion };
  /** Each allocated section's load address (by section name). */
  readonly sectionAddrs: ReadonlyMap<string, bigint>;
  /** The symbols added to kallsyms. */
  readonly syms: readonly KSym[];
  /** Its ftrace sites (from its own __mcount_loc). */
  readonly sites: readonly FtraceSite[];
  /** The raw `.BTF` section (pahole -J --btf_base vmlinux), if any. */
  readonly btfData: Uint8Array | undefined;
  /** References held by others (try_module_get); unloading needs 0. */
  refcnt: number;
  /** The object file. */
  readonly elf: ElfFile;
}

/**
 * A module notifier (register_module_notifier): `coming` may refuse the module by throwing a
 * ModuleError (the load is undone), `going` runs before it disappears.
 */
export interface ModuleNotifier {
  readonly name: string;
  coming?(mod: KernelModule): void;
  going?(mod: KernelModule): void;
  /** References the subsystem holds on the module, counted when asked (e.g. BPF programs loaded against it). */
  holds?(mod: KernelModule): number;
}

export interface ModuleLoadOptions {
  /** The module's name (default: `.modinfo` name=, else "module"). */
  name?: string;
  /** Refuse an object without `.BTF` (its functions could not be fentry/fexit targets). */
  requireBtf?: boolean;
}

/** One group of sections laid out together (text, rodata or data). */
interface Group { key: 'text' | 'rodata' | 'data'; size: number; secs: { sec: ElfSection; off: number }[] }

const hex = (v: bigint): string => `0x${v.toString(16)}`;
/**
 * Every module has its own (module_init()'s alias names): kept in the module's symbols, not in
 * the one kallsyms namespace here, so that two modules with init functions can be loaded.
 */
const MODULE_ENTRIES = new Set(['init_module', 'cleanup_module']);

export class Modules {
  readonly kernel: Kernel;
  private mods = new Map<string, KernelModule>();
  private readonly notifiers: ModuleNotifier[] = [];

  constructor(kernel: Kernel) {
    this.kernel = kernel;
  }

  registerNotifier(n: ModuleNotifier): void {
    if (!this.notifiers.includes(n)) this.notifiers.push(n);
  }

  get(name: string): KernelModule | undefined { return this.mods.get(name); }
  list(): KernelModule[] { return [...this.mods.values()]; }

  /** __module_address(): the module whose memory holds `addr`. */
  moduleAddress(addr: bigint): KernelModule | undefined {
    for (const m of this.mods.values()) {
      for (const r of Object.values(m.regions)) if (r && addr >= r.start && addr < r.start + BigInt(r.size)) return m;
    }
    return undefined;
  }

  /** module_refcount(): references taken with tryModuleGet plus those the notifiers' subsystems hold. */
  refcount(mod: KernelModule): number {
    let n = mod.refcnt;
    for (const x of this.notifiers) n += x.holds?.(mod) ?? 0;
    return n;
  }

  /** try_module_get(): false once the module is going. */
  tryModuleGet(mod: KernelModule): boolean {
    if (mod.state !== 'live') return false;
    mod.refcnt++;
    return true;
  }
  /** module_put(). */
  modulePut(mod: KernelModule): void {
    if (mod.refcnt <= 0) throw new Error(`module_put(${mod.name}): refcount underflow`);
    mod.refcnt--;
  }

  /**
   * load_module(): lays out, relocates and registers a module; throws ModuleError (errno and
   * message) with nothing left behind when the object is refused.
   */
  load(bytes: Uint8Array, opts: ModuleLoadOptions = {}): KernelModule {
    let elf: ElfFile;
    try {
      elf = new ElfFile(bytes);
      elf.symbols();
    } catch (e) {
      if (e instanceof ElfError || e instanceof RangeError) throw new ModuleError(ENOEXEC, `module: ${e.message}`);
      throw e;
    }
    const name = opts.name ?? modinfo(elf).get('name') ?? 'module';
    const what = `module ${name}`;
    // elf_validity_check(): a relocatable x86-64 object with sane section headers.
    if (elf.type !== ET_REL) throw new ModuleError(ENOEXEC, `${what}: not a relocatable object (e_type ${elf.type}, want ET_REL): build with gcc -c`);
    if (elf.machine !== EM_X86_64) throw new ModuleError(ENOEXEC, `${what}: e_machine ${elf.machine} is not x86-64 (62)`);
    for (const s of elf.sections) {
      if (s.type !== SHT_NOBITS && s.size && (s.offset < 0 || s.offset + s.size > bytes.length))
        throw new ModuleError(ENOEXEC, `${what}: section ${s.name || s.index} (offset ${s.offset}, size ${s.size}) runs past the end of the file`);
    }
    if (!/^[A-Za-z0-9_-]+$/.test(name) || name.length >= MODULE_NAME_LEN)
      throw new ModuleError(EINVAL, `${what}: invalid module name (letters, digits, _ and - only, under ${MODULE_NAME_LEN} bytes)`);
    if (this.mods.has(name)) throw new ModuleError(EEXIST, `${what}: a module of that name is already loaded`);
    const btfSec = elf.section('.BTF');
    if (opts.requireBtf && (!btfSec || btfSec.size === 0))
      throw new ModuleError(EINVAL, `${what} has no .BTF section: its functions cannot be fentry/fexit targets (run pahole -J --btf_base vmlinux on the object)`);

    const groups = layoutSections(elf);
    const regions: { text?: ExecRegion; rodata?: ExecRegion; data?: ExecRegion } = {};
    const execmem = this.kernel.execmem;
    // Until the module is registered its memory is ours to free on error; after, forget() does it.
    let owned = true;
    const freeAll = (): void => { if (owned) for (const r of Object.values(regions)) if (r) execmem.free(r.start); };
    const images = new Map<string, Uint8Array>();
    const secAddr = new Map<number, bigint>();
    try {
      for (const g of groups) {
        if (!g.size) continue;
        const r = execmem.alloc(g.size, `${name} ${g.key}`);
        regions[g.key] = r;
        const img = new Uint8Array(r.size);
        for (const { sec, off } of g.secs) {
          secAddr.set(sec.index, r.start + BigInt(off));
          if (sec.type !== SHT_NOBITS) img.set(elf.sectionData(sec), off);
        }
        images.set(g.key, img);
      }
      const symAddr = this.simplifySymbols(elf, secAddr, what);
      this.applyRelocations(elf, groups, regions, images, secAddr, symAddr, what);
      const syms = this.moduleSyms(elf, secAddr, what);
      const sites = this.mcountSites(elf, groups, regions, images, secAddr, syms, what);
      // Everything checked: write the images and set the final protections (module_enable_ro/nx).
      for (const g of groups) {
        const r = regions[g.key];
        if (!r) continue;
        this.kernel.machine.mem.write(r.start, images.get(g.key)!);
        if (g.key !== 'text') this.kernel.machine.mem.protect(r.start, g.key === 'data' ? PROT_R | PROT_W : PROT_R);
      }
      const sectionAddrs = new Map<string, bigint>();
      for (const [i, a] of secAddr) sectionAddrs.set(elf.sections[i]!.name, a);
      const mod: KernelModule = {
        name, state: 'coming', regions, sectionAddrs, syms, sites, refcnt: 0, elf,
        btfData: btfSec && btfSec.size ? new Uint8Array(elf.sectionData(btfSec)) : undefined,
      };
      for (const s of syms) if (!MODULE_ENTRIES.has(s.name)) this.kernel.ksyms.add(s);
      for (const s of sites) this.kernel.ftrace.add(s);
      this.mods.set(name, mod);
      owned = false;
      const ran: ModuleNotifier[] = [];
      try {
        for (const n of this.notifiers) { n.coming?.(mod); ran.push(n); }
        const init = syms.find((s) => s.name === 'init_module' && s.type === 'T');
        if (init) {
          const ret = Number(BigInt.asIntN(32, this.kernel.call(init.address)));
          if (ret) throw new ModuleError(ret < 0 ? ret : EINVAL, `${what}: init_module returned ${ret}`);
        }
      } catch (e) {
        mod.state = 'going';
        for (const n of ran.reverse()) n.going?.(mod);
        this.forget(mod);
        throw e;
      }
      mod.state = 'live';
      return mod;
    } catch (e) {
      freeAll();
      if (e instanceof ElfError) throw new ModuleError(ENOEXEC, `${what}: ${e.message}`);
      throw e;
    }
  }

  /**
   * delete_module(2): -ENOENT for no such module, -EBUSY if it is not live, -EWOULDBLOCK while
   * something holds it (with O_NONBLOCK; blocking would never return in this single-threaded
   * kernel, so it is the same here). `cleanup_module` runs, then the notifiers' going.
   */
  deleteModule(name: string, flags = O_NONBLOCK): number {
    const mod = this.mods.get(name);
    if (!mod) return -ENOENT;
    if (mod.state !== 'live') return -EBUSY;
    if (this.refcount(mod) > 0) return -EWOULDBLOCK; // forced unload (O_TRUNC, CONFIG_MODULE_FORCE_UNLOAD) is not modelled
    mod.state = 'going';
    const exit = mod.syms.find((s) => s.name === 'cleanup_module' && s.type === 'T');
    if (exit) this.kernel.call(exit.address);
    for (const n of [...this.notifiers].reverse()) n.going?.(mod);
    this.forget(mod);
    return 0;
  }

  /** rmmod (kmod): "Module %s is in use" (-EBUSY) when its refcount is not 0, else delete_module. */
  rmmod(name: string): number {
    const mod = this.mods.get(name);
    if (mod && this.refcount(mod) > 0) return -EBUSY;
    return this.deleteModule(name, O_NONBLOCK);
  }

  /** Undoes a registered module: kallsyms, sites, memory. */
  private forget(mod: KernelModule): void {
    for (const s of mod.sites) this.kernel.ftrace.remove(s.ip);
    for (const s of mod.syms) if (!MODULE_ENTRIES.has(s.name)) this.kernel.ksyms.remove(s.name);
    for (const r of Object.values(mod.regions)) if (r) this.kernel.execmem.free(r.start);
    this.mods.delete(mod.name);
  }

  /** simplify_symbols(): each symbol's final value; unknown symbols are -ENOENT. */
  private simplifySymbols(elf: ElfFile, secAddr: Map<number, bigint>, what: string): bigint[] {
    const ksyms = this.kernel.ksyms;
    return elf.symbols().map((s, i) => {
      if (i === 0) return 0n;
      if (s.shndx === SHN_COMMON) throw new ModuleError(ENOEXEC, `${what}: ${s.name}: please compile with -fno-common`);
      if (s.shndx === SHN_ABS) return s.value;
      if (s.shndx === SHN_UNDEF) {
        if (!s.name) return 0n;
        const k = ksyms.lookup(s.name);
        if (k && k.type === k.type.toUpperCase()) return k.address;
        if (s.bind === STB_WEAK) return 0n; // an unresolved weak symbol is 0
        throw new ModuleError(ENOENT, `${what}: Unknown symbol ${s.name} (err -${ENOENT})`);
      }
      const base = secAddr.get(s.shndx);
      // A symbol in a section that is not loaded (debug info …) keeps its offset; relocations
      // against it only appear in non-allocated sections, which are not applied.
      return base === undefined ? s.value : base + s.value;
    });
  }

  /** apply_relocate_add() for every RELA section whose target is loaded. */
  private applyRelocations(elf: ElfFile, groups: Group[], regions: Record<string, ExecRegion | undefined>,
    images: Map<string, Uint8Array>, secAddr: Map<number, bigint>, symAddr: bigint[], what: string): void {
    const where = new Map<number, { img: Uint8Array; off: number; size: number }>();
    for (const g of groups) for (const { sec, off } of g.secs) if (regions[g.key]) where.set(sec.index, { img: images.get(g.key)!, off, size: sec.size });
    const syms = elf.symbols();
    for (const rs of elf.sections) {
      if (rs.type !== SHT_RELA && rs.type !== SHT_REL) continue;
      const target = where.get(rs.info);
      if (!target) continue; // relocations of debug sections: not loaded
      if (rs.type === SHT_REL) throw new ModuleError(ENOEXEC, `${what}: REL relocation section ${rs.name} unsupported (x86-64 modules use RELA)`);
      const tname = elf.sections[rs.info]!.name;
      const dv = new DataView(target.img.buffer, target.img.byteOffset, target.img.byteLength);
      for (const r of elf.relocations(rs)) {
        const sym = syms[r.sym];
        if (!sym) throw new ModuleError(ENOEXEC, `${what}: ${rs.name}: relocation symbol index ${r.sym} out of range`);
        const S = symAddr[r.sym]!, A = r.addend, P = secAddr.get(rs.info)! + r.offset;
        const width = r.type === R_X86_64_64 || r.type === R_X86_64_PC64 ? 8 : 4;
        if (r.type === R_X86_64_NONE) continue;
        if (r.offset < 0n || Number(r.offset) + width > target.size)
          throw new ModuleError(ENOEXEC, `${what}: ${rs.name}: relocation at offset ${hex(r.offset)} outside ${tname}`);
        const at = target.off + Number(r.offset);
        const loc = `${tname}+${hex(r.offset)} (${sym.name || `section ${elf.sections[sym.shndx]?.name ?? sym.shndx}`})`;
        // "x86/modules: Skip invalid relocation target, existing value is nonzero for type %d".
        const cur = width === 8 ? dv.getBigUint64(at, true) : BigInt(dv.getUint32(at, true));
        if (cur !== 0n) throw new ModuleError(ENOEXEC, `${what}: invalid relocation target, existing value is nonzero for type ${r.type} at ${loc}`);
        let v: bigint;
        switch (r.type) {
          case R_X86_64_64: v = BigInt.asUintN(64, S + A); break;
          case R_X86_64_PC64: v = BigInt.asUintN(64, S + A - P); break;
          case R_X86_64_32: v = BigInt.asUintN(64, S + A);
            if (v >> 32n) throw overflow(what, r.type, v, loc);
            break;
          case R_X86_64_32S: v = BigInt.asIntN(64, S + A);
            if (v !== BigInt.asIntN(32, v)) throw overflow(what, r.type, BigInt.asUintN(64, v), loc);
            break;
          case R_X86_64_PC32: case R_X86_64_PLT32: v = BigInt.asIntN(64, S + A - P);
            if (v !== BigInt.asIntN(32, v)) throw overflow(what, r.type, BigInt.asUintN(64, v), loc);
            break;
          default: throw new ModuleError(ENOEXEC, `${what}: Unknown rela relocation: ${r.type} at ${loc}`);
        }
        if (width === 8) dv.setBigUint64(at, BigInt.asUintN(64, v), true);
        else dv.setUint32(at, Number(BigInt.asUintN(32, v)), true);
      }
    }
  }

  /** The module's named symbols as kallsyms shows them; a clash with a loaded name is refused. */
  private moduleSyms(elf: ElfFile, secAddr: Map<number, bigint>, what: string): KSym[] {
    const out: KSym[] = [];
    const seen = new Set<string>();
    for (const s of elf.symbols()) {
      if (!s.name || s.shndx === SHN_UNDEF || s.shndx === SHN_ABS || s.shndx === SHN_COMMON) continue;
      if (s.type !== STT_FUNC && s.type !== STT_OBJECT && s.type !== STT_NOTYPE) continue;
      const base = secAddr.get(s.shndx);
      if (base === undefined || s.name.startsWith('.L')) continue;
      const sec = elf.sections[s.shndx]!;
      let t = sec.flags & SHF_EXECINSTR ? 'T' : sec.type === SHT_NOBITS ? 'B' : sec.flags & SHF_WRITE ? 'D' : 'R';
      if (s.bind === STB_LOCAL) t = t.toLowerCase();
      const owner = MODULE_ENTRIES.has(s.name) ? undefined : this.kernel.ksyms.lookup(s.name);
      if (owner || seen.has(s.name))
        throw new ModuleError(ENOEXEC, `${what}: symbol ${s.name} is already defined (${owner ? `by ${this.moduleAddress(owner.address)?.name ?? 'the kernel'}` : 'twice in the module'}): rename it`);
      seen.add(s.name);
      out.push({ name: s.name, address: base + s.value, size: s.size, type: t });
    }
    return out;
  }

  /** ftrace_module_init(): the module's __mcount_loc entries, each a function entry holding the nop. */
  private mcountSites(elf: ElfFile, groups: Group[], regions: Record<string, ExecRegion | undefined>,
    images: Map<string, Uint8Array>, secAddr: Map<number, bigint>, syms: KSym[], what: string): FtraceSite[] {
    const sec = elf.section('__mcount_loc');
    if (!sec) return [];
    const addr = secAddr.get(sec.index);
    if (addr === undefined) throw new ModuleError(ENOEXEC, `${what}: __mcount_loc is not an allocated section`);
    const bytesAt = (a: bigint, len: number): Uint8Array | undefined => {
      for (const g of groups) {
        const r = regions[g.key];
        if (r && a >= r.start && a + BigInt(len) <= r.start + BigInt(r.size)) {
          const o = Number(a - r.start);
          return images.get(g.key)!.subarray(o, o + len);
        }
      }
      return undefined;
    };
    const table = bytesAt(addr, sec.size)!;
    const dv = new DataView(table.buffer, table.byteOffset, table.byteLength);
    const byAddr = new Map(syms.filter((s) => s.type.toUpperCase() === 'T').map((s) => [s.address, s]));
    const sites: FtraceSite[] = [];
    for (let o = 0; o + 8 <= table.length; o += 8) {
      const ip = dv.getBigUint64(o, true);
      const fn = byAddr.get(ip);
      if (!fn) throw new ModuleError(EINVAL, `${what}: __mcount_loc site ${hex(ip)} is not a function entry`);
      const b = bytesAt(ip, X86_PATCH_SIZE);
      if (!b || !b.every((x, i) => x === X86_NOP5[i]))
        throw new ModuleError(EINVAL, `${what}: ${fn.name} does not begin with the 5-byte nop (built without -mnop-mcount?)`);
      sites.push({ ip, func: fn.name });
    }
    return sites;
  }
}

function overflow(what: string, type: number, v: bigint, loc: string): ModuleError {
  return new ModuleError(ENOEXEC, `${what}: overflow in relocation type ${type} val ${hex(v)} at ${loc} (-mcmodel=kernel is needed)`);
}

/** layout_sections(): allocated sections in three groups, each section at its alignment. */
function layoutSections(elf: ElfFile): Group[] {
  const groups: Group[] = [{ key: 'text', size: 0, secs: [] }, { key: 'rodata', size: 0, secs: [] }, { key: 'data', size: 0, secs: [] }];
  for (const s of elf.sections) {
    if (!(s.flags & SHF_ALLOC) || s.size === 0) continue;
    const g = groups[s.flags & SHF_EXECINSTR ? 0 : s.flags & SHF_WRITE ? 2 : 1]!;
    const align = Math.max(1, s.align);
    const off = Math.ceil(g.size / align) * align;
    g.secs.push({ sec: s, off });
    g.size = off + s.size;
  }
  for (const g of groups) if (g.size) g.size = Math.ceil(g.size / PAGE_SIZE) * PAGE_SIZE;
  return groups;
}

/** `.modinfo`: NUL-separated key=value strings (MODULE_INFO). */
function modinfo(elf: ElfFile): Map<string, string> {
  const out = new Map<string, string>();
  const s = elf.section('.modinfo');
  if (!s) return out;
  for (const kv of Buffer.from(elf.sectionData(s)).toString('latin1').split('\0')) {
    const i = kv.indexOf('=');
    if (i > 0) out.set(kv.slice(0, i), kv.slice(i + 1));
  }
  return out;
}

/** One module table per kernel (the kernel's `modules` list), made on first use. */
const tables = new WeakMap<Kernel, Modules>();
export function modulesOf(kernel: Kernel): Modules {
  let m = tables.get(kernel);
  if (!m) { m = new Modules(kernel); tables.set(kernel, m); }
  return m;
}
