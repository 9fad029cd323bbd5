/**
 * @fileoverview A loaded object's global data as a libbpf skeleton shows it (`skel->bss->runs`):
 * the .bss/.data/.rodata map's value, typed by the section's BTF DATASEC, read and written in
 * place. libbpf mmap()s these BPF_F_MMAPABLE maps into the process; here the host's view of the
 * map's own pages plays that part, so a store from TypeScript is what the next run of a program
 * (interpreted or JIT-compiled) loads, and a program's store is what TypeScript reads next, with
 * no bpf() call and no copy. .rodata is frozen after load: as libbpf maps it PROT_READ, its
 * variables refuse writes.
 */
import type { BpfSubsystem } from '../syscall/bpf.ts';
import type { BpfObject, LoadedMap } from './load.ts';
import { BTF_KIND, BTF_INT_SIGNED } from '../btf/btf.ts';
import { ArrayMap } from '../maps/array.ts';

export type DataSection = '.bss' | '.data' | '.rodata';

/** One variable of the section: where it is and how it reads. */
export interface GlobalVar {
  name: string;
  offset: number;
  size: number;
  /** Integers (and enums, pointers) read as number (up to 4 bytes) or bigint (8); the rest as bytes. */
  kind: 'int' | 'bytes';
  signed: boolean;
}

export interface GlobalData {
  readonly section: DataSection;
  readonly map: LoadedMap;
  /** The map's value bytes: a view of its pages, not a copy. */
  readonly bytes: Uint8Array;
  readonly layout: readonly GlobalVar[];
  /** Variables by name (getters and setters over `bytes`). */
  readonly vars: Record<string, number | bigint | Uint8Array>;
}

/** The typed, zero-copy view of `obj`'s `section` (the object loaded through `sub`). */
export function globalData(obj: BpfObject, sub: BpfSubsystem, section: DataSection): GlobalData {
  const spec = obj.spec.maps.find((m) => m.internal?.section === section);
  const loaded = spec && obj.findMap(spec.name);
  if (!spec || !loaded) throw new Error(`${obj.spec.name}: no ${section} map (the object has no such section, or is not loaded)`);
  const map = sub.maps.find(loaded.id);
  if (!map || !(map.impl instanceof ArrayMap)) throw new Error(`${spec.name}: the map is gone`);
  const arr = map.impl;
  if (!arr.mmapable) throw new Error(`${spec.name}: not BPF_F_MMAPABLE`);
  const bytes = sub.kernel.machine.mem.view(arr.values, map.valueSize);
  const layout: GlobalVar[] = [];
  const btf = obj.spec.btf;
  const ds = btf?.findByNameKind(section, BTF_KIND.DATASEC);
  for (const si of ds?.secinfos ?? []) {
    const v = btf!.type(si.type);
    const t = btf!.resolve(v.sizeOrType);
    const isInt = (t.kind === BTF_KIND.INT || t.kind === BTF_KIND.ENUM || t.kind === BTF_KIND.PTR) && [1, 2, 4, 8].includes(si.size);
    layout.push({
      name: v.name, offset: si.offset, size: si.size, kind: isInt ? 'int' : 'bytes',
      signed: t.kind === BTF_KIND.INT && ((t.intEncoding ?? 0) & BTF_INT_SIGNED) !== 0,
    });
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const vars: Record<string, number | bigint | Uint8Array> = {};
  for (const g of layout) {
    Object.defineProperty(vars, g.name, {
      enumerable: true,
      get: () => (g.kind === 'bytes' ? bytes.subarray(g.offset, g.offset + g.size) : readInt(dv, g)),
      set: (x: number | bigint | Uint8Array) => {
        if (map.frozen) throw new TypeError(`${spec.name}: ${g.name} is read-only (the map is frozen, as libbpf maps ${section} PROT_READ)`);
        if (g.kind === 'bytes') {
          if (!(x instanceof Uint8Array) || x.length !== g.size) throw new TypeError(`${g.name}: ${g.size} bytes expected`);
          bytes.set(x, g.offset);
        } else writeInt(dv, g, x instanceof Uint8Array ? 0n : BigInt(x));
      },
    });
  }
  return { section, map: loaded, bytes, layout, vars };
}

function readInt(dv: DataView, g: GlobalVar): number | bigint {
  const o = g.offset;
  switch (g.size) {
    case 1: return g.signed ? dv.getInt8(o) : dv.getUint8(o);
    case 2: return g.signed ? dv.getInt16(o, true) : dv.getUint16(o, true);
    case 4: return g.signed ? dv.getInt32(o, true) : dv.getUint32(o, true);
    default: return g.signed ? dv.getBigInt64(o, true) : dv.getBigUint64(o, true);
  }
}

function writeInt(dv: DataView, g: GlobalVar, v: bigint): void {
  const o = g.offset;
  const u = BigInt.asUintN(g.size * 8, v);
  switch (g.size) {
    case 1: dv.setUint8(o, Number(u)); break;
    case 2: dv.setUint16(o, Number(u), true); break;
    case 4: dv.setUint32(o, Number(u), true); break;
    default: dv.setBigUint64(o, u, true);
  }
}
