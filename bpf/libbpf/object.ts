/**
 * @fileoverview Opening a clang-compiled BPF object the way libbpf does (bpf_object__open):
 * programs from their SEC() names, subprograms in .text linked into each program that calls
 * them, maps from BTF-defined `.maps` and the global data sections (.data, .bss, .rodata as
 * one-element arrays), and the relocations each program needs once the maps exist.
 */
import { ElfFile, ElfError, SHF_EXECINSTR, STT_FUNC, STT_SECTION, SHN_UNDEF, type ElfSection } from '../../kernel/elf.ts';
import { decode, isLdImm64, type Insn } from '../isa/insn.ts';
import { BPF_JMP, BPF_CALL, BPF_PSEUDO_CALL, BPF_INSN_SIZE } from '../isa/opcodes.ts';
import { Btf, BTF_KIND } from '../btf/btf.ts';
import { btfDataLen } from '../btf/kinds.ts';
import { BPF_MAP_TYPE_ARRAY, BPF_F_MMAPABLE, BPF_F_RDONLY_PROG, BPF_OBJ_NAME_LEN } from '../maps/map.ts';
import { findSecDef, type SecDef } from './sections.ts';

/** R_BPF_64_64 (ld_imm64 of a map or a global) and R_BPF_64_32 (call of a subprogram). */
export const R_BPF_64_64 = 1, R_BPF_64_32 = 10;

export interface MapSpec {
  name: string;
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  mapFlags: number;
  btfKeyTypeId: number;
  btfValueTypeId: number;
  /** A global data section's map: its initial contents, and whether it is read-only. */
  internal?: { section: string; data: Uint8Array; readonly: boolean };
}

/** An ld_imm64 to patch once maps have fds: the map, and for a global the value offset. */
export interface MapReloc { insn: number; map: string; valueOff?: number }

export interface FuncInfoRec { insnOff: number; typeId: number }
export interface LineInfoRec { insnOff: number; fileNameOff: number; lineOff: number; lineCol: number }
export interface CoreReloRec { insnOff: number; typeId: number; accessStrOff: number; kind: number }

export interface ProgramSpec {
  /** The function's name (what libbpf calls the program). */
  name: string;
  secName: string;
  def: SecDef;
  /** The attach target in the section name (`fentry/bpf_fentry_test1` → bpf_fentry_test1). */
  target: string | undefined;
  insns: Insn[];
  mapRelocs: MapReloc[];
  /** Records of .BTF.ext, insn offsets in instructions of this program (subprograms appended). */
  funcInfo: FuncInfoRec[];
  lineInfo: LineInfoRec[];
  coreRelos: CoreReloRec[];
}

export interface ObjectSpec {
  name: string;
  license: string;
  kernVersion: number;
  btf: Btf | undefined;
  /** The .BTF bytes as libbpf would send them (DATASEC sizes and offsets fixed up). */
  btfData: Uint8Array | undefined;
  maps: MapSpec[];
  programs: ProgramSpec[];
}

/** A malformed object: libbpf's -LIBBPF_ERRNO__FORMAT/-EINVAL, with what and where. */
export class ObjectError extends Error {
  readonly errno: number;
  constructor(msg: string, errno = -22) { super(msg); this.name = 'ObjectError'; this.errno = errno; }
}

const DATA_SECS = ['.data', '.bss', '.rodata'];

/** .BTF.ext per-section records, parsed by the caller's BTF.ext reader. */
export interface BtfExtSections {
  funcInfo: Map<string, FuncInfoRec[]>; // insn offsets in bytes from the section start
  lineInfo: Map<string, LineInfoRec[]>;
  coreRelos: Map<string, CoreReloRec[]>;
}

export function openObject(bytes: Uint8Array, objName: string, ext?: (btfExt: Uint8Array, btf: Btf) => BtfExtSections): ObjectSpec {
  let elf: ElfFile;
  try { elf = new ElfFile(bytes); } catch (e) { throw new ObjectError(`${objName}: ${(e as Error).message}`); }
  if (elf.machine !== 247) throw new ObjectError(`${objName}: not a BPF object (e_machine ${elf.machine}, expected EM_BPF 247)`);
  const name = objName.replace(/\.(bpf\.)?o$/, '').replace(/.*\//, '');
  const licSec = elf.section('license');
  const license = licSec ? Buffer.from(elf.sectionData(licSec)).toString('latin1').replace(/\0.*$/s, '') : '';
  const verSec = elf.section('version');
  const kernVersion = verSec && verSec.size >= 4 ? new DataView(elf.sectionData(verSec).buffer, elf.sectionData(verSec).byteOffset).getUint32(0, true) : 0;
  const syms = elf.symbols();

  let btf: Btf | undefined, btfData: Uint8Array | undefined;
  const btfSec = elf.section('.BTF');
  if (btfSec) {
    btfData = fixupDatasecs(elf.sectionData(btfSec).slice(), elf);
    try { btf = new Btf(btfData); } catch (e) { throw new ObjectError(`${objName}: .BTF: ${(e as Error).message}`); }
  }
  const extSec = elf.section('.BTF.ext');
  const extRecs = extSec && btf && ext ? ext(elf.sectionData(extSec), btf) : undefined;

  // Maps: BTF-defined ones in .maps, then one per global data section.
  const maps: MapSpec[] = [];
  const mapsSec = elf.section('.maps');
  if (mapsSec) {
    if (!btf) throw new ObjectError(`${objName}: .maps needs BTF (compile with -g)`);
    const ds = btf.findByNameKind('.maps', BTF_KIND.DATASEC);
    if (!ds) throw new ObjectError(`${objName}: no DATASEC .maps in BTF`);
    for (const vsi of datasecVars(btf, ds.id)) maps.push(mapFromBtf(btf, vsi.varId, objName));
  }
  for (const sec of DATA_SECS) {
    const s = elf.section(sec);
    if (!s || s.size === 0) continue;
    const ds = btf?.findByNameKind(sec, BTF_KIND.DATASEC);
    maps.push({
      name: internalMapName(name, sec), type: BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: s.size, maxEntries: 1,
      // libbpf (5.5's, 7fe74b436236) makes them mmap()-able: skel->bss/data/rodata are mappings.
      mapFlags: (sec === '.rodata' ? BPF_F_RDONLY_PROG : 0) | BPF_F_MMAPABLE, btfKeyTypeId: 0, btfValueTypeId: ds?.id ?? 0,
      internal: { section: sec, data: sec === '.bss' ? new Uint8Array(s.size) : elf.sectionData(s).slice(), readonly: sec === '.rodata' },
    });
  }
  const mapOfSym = (shndx: number, symName: string): { map: string; off: number } | undefined => {
    const sec = elf.sections[shndx];
    if (!sec) return undefined;
    if (sec.name === '.maps') return { map: symName, off: -1 };
    if (DATA_SECS.includes(sec.name)) return { map: internalMapName(name, sec.name), off: 0 };
    return undefined;
  };

  // Code sections and their relocations.
  const relocsOf = (sec: ElfSection) => {
    const rel = elf.sections.find((r) => (r.type === 9 || r.type === 4) && r.info === sec.index);
    return rel ? elf.relocations(rel) : [];
  };
  const text = elf.section('.text');
  const textInsns = text && text.size ? decode(elf.sectionData(text)) : [];

  const programs: ProgramSpec[] = [];
  for (const sec of elf.sections) {
    if (!(sec.flags & SHF_EXECINSTR) || sec.name === '.text' || sec.size === 0) continue;
    const found = findSecDef(sec.name);
    if (!found) throw new ObjectError(`${objName}: section '${sec.name}': unrecognized program type`);
    const code = decode(elf.sectionData(sec));
    const funcs = syms.filter((s) => s.shndx === sec.index && s.type === STT_FUNC).sort((a, b) => Number(a.value - b.value));
    if (funcs.length === 0) throw new ObjectError(`${objName}: section '${sec.name}' has no function symbol`);
    for (const fn of funcs) {
      const start = Number(fn.value) / BPF_INSN_SIZE, len = (fn.size || sec.size - Number(fn.value)) / BPF_INSN_SIZE;
      const insns = code.slice(start, start + len).map((i) => ({ ...i }));
      const prog: ProgramSpec = { name: fn.name, secName: sec.name, def: found.def, target: found.target, insns, mapRelocs: [], funcInfo: [], lineInfo: [], coreRelos: [] };
      let textBase = -1;
      const applyRelocs = (relocs: ReturnType<typeof relocsOf>, secStart: number, secLen: number, base: number, secName: string): void => {
        for (const r of relocs) {
          const idx = Number(r.offset) / BPF_INSN_SIZE - secStart;
          if (idx < 0 || idx >= secLen) continue;
          const at = base + idx;
          const ins = prog.insns[at]!;
          const sym = syms[r.sym];
          if (!sym) throw new ObjectError(`${objName}: ${secName}: relocation against symbol #${r.sym}, which does not exist`);
          if (r.type === R_BPF_64_64 && isLdImm64(ins)) {
            const m = mapOfSym(sym.shndx, sym.name);
            if (!m) throw new ObjectError(`${objName}: ${secName}: insn ${idx}: relocation against '${sym.name}' in an unsupported section`);
            prog.mapRelocs.push(m.off < 0 ? { insn: at, map: m.map } : { insn: at, map: m.map, valueOff: ins.imm + Number(sym.type === STT_SECTION ? 0n : sym.value) });
          } else if (r.type === R_BPF_64_32 && ins.code === (BPF_JMP | BPF_CALL) && ins.src === BPF_PSEUDO_CALL) {
            const target = elf.sections[sym.shndx];
            if (!target || target.name !== '.text') throw new ObjectError(`${objName}: ${secName}: call to '${sym.name}' outside .text`);
            if (textBase < 0) textBase = linkText();
            const sub = Number(sym.value) / BPF_INSN_SIZE + ins.imm + 1;
            ins.imm = textBase + sub - (at + 1);
          } else if (sym.shndx === SHN_UNDEF) {
            throw new ObjectError(`${objName}: ${secName}: insn ${idx}: relocation against undefined '${sym.name}' (extern) is not supported`, -95);
          } else if (r.type !== R_BPF_64_32 && r.type !== R_BPF_64_64) {
            throw new ObjectError(`${objName}: ${secName}: insn ${idx}: relocation type ${r.type} not supported`);
          }
        }
      };
      // .text appended once: its own relocations (globals, calls between subprograms) applied at its base.
      const linkText = (): number => {
        const base = prog.insns.length;
        prog.insns.push(...textInsns.map((i) => ({ ...i })));
        applyRelocs(relocsOf(text!), 0, textInsns.length, base, '.text');
        addExt(prog, extRecs, '.text', 0, textInsns.length, base);
        return base;
      };
      applyRelocs(relocsOf(sec), start, len, 0, sec.name);
      addExt(prog, extRecs, sec.name, start, len, 0);
      // The kernel wants func/line info in increasing instruction order.
      prog.funcInfo.sort((a, b) => a.insnOff - b.insnOff);
      prog.lineInfo.sort((a, b) => a.insnOff - b.insnOff);
      programs.push(prog);
    }
  }
  return { name, license, kernVersion, btf, btfData, maps, programs };
}

/** .BTF.ext records of [start, start+len) of a section, moved to `base` in the program. */
function addExt(prog: ProgramSpec, ext: BtfExtSections | undefined, sec: string, start: number, len: number, base: number): void {
  if (!ext) return;
  const inRange = (off: number): number | undefined => {
    const i = off / BPF_INSN_SIZE - start;
    return i >= 0 && i < len ? base + i : undefined;
  };
  for (const r of ext.funcInfo.get(sec) ?? []) { const i = inRange(r.insnOff); if (i !== undefined) prog.funcInfo.push({ ...r, insnOff: i }); }
  for (const r of ext.lineInfo.get(sec) ?? []) { const i = inRange(r.insnOff); if (i !== undefined) prog.lineInfo.push({ ...r, insnOff: i }); }
  for (const r of ext.coreRelos.get(sec) ?? []) { const i = inRange(r.insnOff); if (i !== undefined) prog.coreRelos.push({ ...r, insnOff: i }); }
}

/** libbpf's internal map name: as much of the object's name as fits, then the section name. */
export function internalMapName(objName: string, sec: string): string {
  const pfx = Math.min(BPF_OBJ_NAME_LEN - 1 - sec.length, objName.length);
  return `${objName.slice(0, Math.max(0, pfx))}${sec}`.slice(0, BPF_OBJ_NAME_LEN - 1);
}

/** The variables of a DATASEC (BTF_KIND_DATASEC's btf_var_secinfo records). */
function datasecVars(btf: Btf, id: number): { varId: number; offset: number; size: number }[] {
  return (btf.type(id).secinfos ?? []).map((v) => ({ varId: v.type, offset: v.offset, size: v.size }));
}

/** A BTF-defined map: `struct { __uint(type, …); __type(key, …); … } name SEC(".maps")`. */
function mapFromBtf(btf: Btf, varId: number, objName: string): MapSpec {
  const v = btf.type(varId);
  const def = btf.resolve(v.sizeOrType);
  if (def.kind !== BTF_KIND.STRUCT) throw new ObjectError(`${objName}: map '${v.name}': not a struct`);
  const spec: MapSpec = { name: v.name, type: 0, keySize: 0, valueSize: 0, maxEntries: 0, mapFlags: 0, btfKeyTypeId: 0, btfValueTypeId: 0 };
  /** __uint(name, N) is `int (*name)[N]`: the value is the array's length. */
  const uintOf = (typeId: number, member: string): number => {
    const p = btf.resolve(typeId);
    const arr = p.kind === BTF_KIND.PTR ? btf.resolve(p.sizeOrType) : undefined;
    if (!arr || arr.kind !== BTF_KIND.ARRAY) throw new ObjectError(`${objName}: map '${v.name}': '${member}' is not __uint()`);
    return arr.array!.nelems;
  };
  /** __type(name, T) is `T *name`. */
  const typeOf = (typeId: number, member: string): number => {
    const p = btf.resolve(typeId);
    if (p.kind !== BTF_KIND.PTR) throw new ObjectError(`${objName}: map '${v.name}': '${member}' is not __type()`);
    return p.sizeOrType;
  };
  for (const m of def.members ?? []) {
    switch (m.name) {
      case 'type': spec.type = uintOf(m.type, m.name); break;
      case 'max_entries': spec.maxEntries = uintOf(m.type, m.name); break;
      case 'map_flags': spec.mapFlags = uintOf(m.type, m.name); break;
      case 'key_size': spec.keySize = uintOf(m.type, m.name); break;
      case 'value_size': spec.valueSize = uintOf(m.type, m.name); break;
      case 'key': spec.btfKeyTypeId = typeOf(m.type, m.name); spec.keySize = btf.resolveSize(spec.btfKeyTypeId); break;
      case 'value': spec.btfValueTypeId = typeOf(m.type, m.name); spec.valueSize = btf.resolveSize(spec.btfValueTypeId); break;
      case 'pinning': case 'numa_node': break;
      default: throw new ObjectError(`${objName}: map '${v.name}': unknown field '${m.name}'`);
    }
  }
  return spec;
}

/**
 * btf_fixup_datasec: clang leaves DATASEC sizes and variable offsets 0; libbpf sets them from
 * the ELF section and symbol table before the kernel sees the BTF.
 */
function fixupDatasecs(data: Uint8Array, elf: ElfFile): Uint8Array {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const hdrLen = dv.getUint32(4, true), typeOff = dv.getUint32(8, true), typeLen = dv.getUint32(12, true), strOff = dv.getUint32(16, true);
  const str = (o: number): string => {
    const s = hdrLen + strOff + o;
    let e = s;
    while (data[e] !== 0 && e < data.length) e++;
    return Buffer.from(data.subarray(s, e)).toString('latin1');
  };
  const varNames = new Map<number, string>();
  const syms = elf.symbols();
  let o = hdrLen + typeOff, id = 1;
  const end = o + typeLen;
  while (o < end) {
    const info = dv.getUint32(o + 4, true), kind = (info >>> 24) & 0x1f, vlen = info & 0xffff;
    const nameOff = dv.getUint32(o, true);
    const rec = o;
    o += 12;
    if (kind === BTF_KIND.VAR) varNames.set(id, str(nameOff));
    if (kind === BTF_KIND.DATASEC) {
      const sec = elf.section(str(nameOff));
      if (sec) dv.setUint32(rec + 8, sec.size, true);
      for (let k = 0; k < vlen; k++) {
        const vo = o + 12 * k;
        const varName = varNames.get(dv.getUint32(vo, true));
        const sym = syms.find((s) => s.name === varName && sec && s.shndx === sec.index);
        if (sym) dv.setUint32(vo + 4, Number(sym.value), true);
      }
    }
    o += btfDataLen(kind, vlen);
    id++;
  }
  return data;
}

export { ElfError };
