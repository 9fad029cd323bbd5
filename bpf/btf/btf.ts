/**
 * @fileoverview A BTF reader (include/uapi/linux/btf.h): the header, every kind's record with
 * its trailing data, and the string section; lookups by name and kind, with modifiers and
 * typedefs resolved. Type id 0 is `void`; ids count from 1 in section order.
 */

export const BTF_MAGIC = 0xeb9f;
export const BTF_KIND = {
  UNKN: 0, INT: 1, PTR: 2, ARRAY: 3, STRUCT: 4, UNION: 5, ENUM: 6, FWD: 7, TYPEDEF: 8,
  VOLATILE: 9, CONST: 10, RESTRICT: 11, FUNC: 12, FUNC_PROTO: 13, VAR: 14, DATASEC: 15,
  FLOAT: 16, DECL_TAG: 17, TYPE_TAG: 18, ENUM64: 19,
} as const;
export type BtfKind = (typeof BTF_KIND)[keyof typeof BTF_KIND];
export const BTF_KIND_NAME: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(BTF_KIND).map(([k, v]) => [v, k]));

/** BTF_INT_ENCODING bits. */
export const BTF_INT_SIGNED = 1, BTF_INT_CHAR = 2, BTF_INT_BOOL = 4;

export interface BtfMember { name: string; type: number; offset: number /* bits */; bitfieldSize: number }
export interface BtfParam { name: string; type: number }
export interface BtfEnumValue { name: string; value: bigint }

export interface BtfType {
  id: number;
  kind: BtfKind;
  name: string;
  kindFlag: boolean;
  vlen: number;
  /** size for INT/STRUCT/UNION/ENUM/ENUM64/FLOAT/DATASEC; else the referenced type id. */
  sizeOrType: number;
  // Kind-specific data.
  intEncoding?: number; intOffset?: number; intBits?: number;
  array?: { type: number; indexType: number; nelems: number };
  members?: BtfMember[];
  params?: BtfParam[];
  enumValues?: BtfEnumValue[];
  linkage?: number;
  componentIdx?: number;
}

/** Malformed BTF: as the kernel's btf_check, -EINVAL with the type id and the problem. */
export class BtfError extends Error {
  readonly errno = -22;
  constructor(msg: string) { super(msg); this.name = 'BtfError'; }
}

const HDR_LEN = 24;

export class Btf {
  readonly types: BtfType[] = [{ id: 0, kind: 0, name: 'void', kindFlag: false, vlen: 0, sizeOrType: 0 }];
  private strings: Uint8Array;
  private byName = new Map<string, BtfType[]>();

  constructor(data: Uint8Array) {
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    if (data.length < HDR_LEN) throw new BtfError('btf header too short');
    if (dv.getUint16(0, true) !== BTF_MAGIC) throw new BtfError(`btf magic 0x${dv.getUint16(0, true).toString(16)} != 0xeb9f`);
    const hdrLen = dv.getUint32(4, true);
    const typeOff = dv.getUint32(8, true), typeLen = dv.getUint32(12, true);
    const strOff = dv.getUint32(16, true), strLen = dv.getUint32(20, true);
    const tStart = hdrLen + typeOff, sStart = hdrLen + strOff;
    if (tStart + typeLen > data.length || sStart + strLen > data.length) throw new BtfError('btf sections run past the end of the data');
    this.strings = data.subarray(sStart, sStart + strLen);
    let o = tStart;
    const end = tStart + typeLen;
    const u32 = (x: number): number => dv.getUint32(x, true);
    while (o < end) {
      const id = this.types.length;
      if (o + 12 > end) throw new BtfError(`[${id}] type record runs past the type section`);
      const info = u32(o + 4);
      const t: BtfType = {
        id, kind: ((info >>> 24) & 0x1f) as BtfKind, name: this.str(u32(o)), kindFlag: (info >>> 31) === 1,
        vlen: info & 0xffff, sizeOrType: u32(o + 8),
      };
      o += 12;
      const need = (n: number): void => { if (o + n > end) throw new BtfError(`[${id}] ${BTF_KIND_NAME[t.kind]} data runs past the type section`); };
      switch (t.kind) {
        case BTF_KIND.INT: {
          need(4);
          const v = u32(o); o += 4;
          t.intEncoding = (v >>> 24) & 0xf; t.intOffset = (v >>> 16) & 0xff; t.intBits = v & 0xff;
          break;
        }
        case BTF_KIND.ARRAY:
          need(12);
          t.array = { type: u32(o), indexType: u32(o + 4), nelems: u32(o + 8) }; o += 12;
          break;
        case BTF_KIND.STRUCT: case BTF_KIND.UNION:
          need(12 * t.vlen);
          t.members = [];
          for (let i = 0; i < t.vlen; i++, o += 12) {
            const off = u32(o + 8);
            t.members.push({
              name: this.str(u32(o)), type: u32(o + 4),
              offset: t.kindFlag ? off & 0xffffff : off, bitfieldSize: t.kindFlag ? off >>> 24 : 0,
            });
          }
          break;
        case BTF_KIND.ENUM:
          need(8 * t.vlen);
          t.enumValues = [];
          for (let i = 0; i < t.vlen; i++, o += 8)
            t.enumValues.push({ name: this.str(u32(o)), value: BigInt(t.kindFlag ? u32(o + 4) : dv.getInt32(o + 4, true)) });
          break;
        case BTF_KIND.ENUM64:
          need(12 * t.vlen);
          t.enumValues = [];
          for (let i = 0; i < t.vlen; i++, o += 12) {
            const v = (BigInt(u32(o + 8)) << 32n) | BigInt(u32(o + 4));
            t.enumValues.push({ name: this.str(u32(o)), value: t.kindFlag ? v : BigInt.asIntN(64, v) });
          }
          break;
        case BTF_KIND.FUNC_PROTO:
          need(8 * t.vlen);
          t.params = [];
          for (let i = 0; i < t.vlen; i++, o += 8) t.params.push({ name: this.str(u32(o)), type: u32(o + 4) });
          break;
        case BTF_KIND.FUNC: t.linkage = t.vlen; break;
        case BTF_KIND.VAR: need(4); t.linkage = u32(o); o += 4; break;
        case BTF_KIND.DATASEC: need(12 * t.vlen); o += 12 * t.vlen; break;
        case BTF_KIND.DECL_TAG: need(4); t.componentIdx = dv.getInt32(o, true); o += 4; break;
        case BTF_KIND.PTR: case BTF_KIND.FWD: case BTF_KIND.TYPEDEF: case BTF_KIND.VOLATILE:
        case BTF_KIND.CONST: case BTF_KIND.RESTRICT: case BTF_KIND.FLOAT: case BTF_KIND.TYPE_TAG:
          break;
        default:
          throw new BtfError(`[${id}] Invalid kind:${t.kind}`);
      }
      this.types.push(t);
      if (t.name) {
        const l = this.byName.get(t.name);
        if (l) l.push(t); else this.byName.set(t.name, [t]);
      }
    }
  }

  private str(off: number): string {
    if (off >= this.strings.length) throw new BtfError(`Invalid name_offset:${off}`);
    let e = off;
    while (e < this.strings.length && this.strings[e] !== 0) e++;
    return Buffer.from(this.strings.subarray(off, e)).toString('utf8');
  }

  type(id: number): BtfType {
    const t = this.types[id];
    if (!t) throw new BtfError(`type id ${id} is invalid (max ${this.types.length - 1})`);
    return t;
  }

  /** btf_find_by_name_kind(). */
  findByNameKind(name: string, kind: BtfKind): BtfType | undefined {
    return this.byName.get(name)?.find((t) => t.kind === kind);
  }

  /** Skips typedefs and modifiers (const, volatile, restrict, type tags). */
  resolve(id: number): BtfType {
    let t = this.type(id);
    for (let guard = 0; guard < 64; guard++) {
      if (t.kind !== BTF_KIND.TYPEDEF && t.kind !== BTF_KIND.VOLATILE && t.kind !== BTF_KIND.CONST &&
        t.kind !== BTF_KIND.RESTRICT && t.kind !== BTF_KIND.TYPE_TAG) return t;
      t = this.type(t.sizeOrType);
    }
    throw new BtfError(`[${id}] modifier chain too long (a loop?)`);
  }

  /** The FUNC_PROTO of a FUNC named `name`, or undefined. */
  funcProto(name: string): BtfType | undefined {
    const f = this.findByNameKind(name, BTF_KIND.FUNC);
    return f ? this.type(f.sizeOrType) : undefined;
  }

  /** C-like spelling of a type, e.g. `const struct sk_buff *`, `u64`. */
  typeName(id: number): string {
    const t = this.type(id);
    switch (t.kind) {
      case 0: return 'void';
      case BTF_KIND.PTR: return `${this.typeName(t.sizeOrType)} *`;
      case BTF_KIND.CONST: return `const ${this.typeName(t.sizeOrType)}`;
      case BTF_KIND.VOLATILE: return `volatile ${this.typeName(t.sizeOrType)}`;
      case BTF_KIND.RESTRICT: return `${this.typeName(t.sizeOrType)} restrict`;
      case BTF_KIND.STRUCT: return `struct ${t.name || '(anon)'}`;
      case BTF_KIND.UNION: return `union ${t.name || '(anon)'}`;
      case BTF_KIND.ENUM: case BTF_KIND.ENUM64: return `enum ${t.name || '(anon)'}`;
      case BTF_KIND.FWD: return `${t.kindFlag ? 'union' : 'struct'} ${t.name}`;
      case BTF_KIND.ARRAY: return `${this.typeName(t.array!.type)}[${t.array!.nelems}]`;
      case BTF_KIND.FUNC_PROTO: return `${this.typeName(t.sizeOrType)} (*)(${(t.params ?? []).map((p) => this.typeName(p.type)).join(', ')})`;
      default: return t.name || `(anon ${BTF_KIND_NAME[t.kind]})`;
    }
  }
}
