/**
 * @fileoverview BtfBuilder: raw BTF from calls, as libbpf's btf__add_*() writes it (header,
 * then the type section, then the strings; names deduplicated, "" at offset 0). Each add
 * returns the builder; `lastId` is the id it got (ids count from 1, or from the base's type
 * count for split BTF). `raw()` writes any record, and `build({ hdr })` any header, so tests
 * can make the malformed BTF the verifier must reject.
 *
 *   const b = new BtfBuilder().int('int', 4, BTF_INT_SIGNED).ptr(1);
 *   const data = b.build();   // [1] INT 'int' size=4 ..., [2] PTR '(anon)' type_id=1
 */
import {
  BTF_FUNC_GLOBAL, BTF_HDR_LEN, BTF_KIND, BTF_MAGIC, BTF_VAR_GLOBAL_ALLOCATED, BTF_VERSION,
  type BtfHeader, type BtfKind,
} from './uapi.ts';
import type { Btf } from './btf.ts';

/** A name: a string (added to the strings) or a raw offset (to point anywhere). */
export type BtfName = string | { off: number };

export interface RawType {
  name?: BtfName;
  kind: BtfKind | number;
  vlen?: number;
  kindFlag?: boolean;
  /** size or type. */
  sizeOrType?: number;
  /** The u32 words after the btf_type. */
  data?: readonly number[];
}

export interface MemberSpec { name?: BtfName; type: number; bitsOffset: number; bitfieldSize?: number }

export class BtfBuilder {
  private readonly typeWords: number[] = [];
  private readonly strs: number[] = [0];
  private readonly strIndex = new Map<string, number>([['', 0]]);
  private readonly firstId: number;
  private readonly strBase: number;
  private count = 0;

  constructor(opts: { base?: Btf } = {}) {
    this.firstId = opts.base ? opts.base.typeCount : 1;
    this.strBase = opts.base ? opts.base.startStrOff + opts.base.hdr.strLen : 0;
    // Split BTF's strings need not start with '\0' (offset 0 is the base's).
    if (opts.base) { this.strs.length = 0; this.strIndex.clear(); this.strIndex.set('', 0); }
  }

  /** The id of the last type added. */
  get lastId(): number { return this.firstId + this.count - 1; }
  /** The id the next type gets. */
  get nextId(): number { return this.firstId + this.count; }

  /** A string's offset (added once). */
  str(s: string): number {
    const have = this.strIndex.get(s);
    if (have !== undefined) return have;
    const off = this.strBase + this.strs.length;
    this.strs.push(...Buffer.from(s, 'utf8'), 0);
    this.strIndex.set(s, off);
    return off;
  }

  private nameOff(n: BtfName | undefined): number {
    return n === undefined ? 0 : typeof n === 'string' ? this.str(n) : n.off;
  }

  /** Any record: `data` are the u32 words that follow it. */
  raw(r: RawType): this {
    const info = ((r.kindFlag ? 1 : 0) << 31) | ((r.kind & 0x1f) << 24) | ((r.vlen ?? 0) & 0xffff);
    this.typeWords.push(this.nameOff(r.name), info >>> 0, (r.sizeOrType ?? 0) >>> 0, ...(r.data ?? []).map((w) => w >>> 0));
    this.count++;
    return this;
  }

  /** Raw u32 words appended to the type section (no type counted): a truncated record. */
  words(...w: number[]): this {
    this.typeWords.push(...w.map((x) => x >>> 0));
    return this;
  }

  int(name: BtfName, size: number, encoding = 0, bits = size * 8, offset = 0): this {
    return this.raw({ name, kind: BTF_KIND.INT, sizeOrType: size, data: [(encoding << 24) | (offset << 16) | bits] });
  }
  ptr(type: number): this { return this.raw({ kind: BTF_KIND.PTR, sizeOrType: type }); }
  const(type: number): this { return this.raw({ kind: BTF_KIND.CONST, sizeOrType: type }); }
  volatile(type: number): this { return this.raw({ kind: BTF_KIND.VOLATILE, sizeOrType: type }); }
  restrict(type: number): this { return this.raw({ kind: BTF_KIND.RESTRICT, sizeOrType: type }); }
  typedef(name: BtfName, type: number): this { return this.raw({ name, kind: BTF_KIND.TYPEDEF, sizeOrType: type }); }
  typeTag(value: BtfName, type: number): this { return this.raw({ name: value, kind: BTF_KIND.TYPE_TAG, sizeOrType: type }); }
  fwd(name: BtfName, union = false): this { return this.raw({ name, kind: BTF_KIND.FWD, kindFlag: union }); }
  float(name: BtfName, size: number): this { return this.raw({ name, kind: BTF_KIND.FLOAT, sizeOrType: size }); }

  array(elem: number, index: number, nelems: number): this {
    return this.raw({ kind: BTF_KIND.ARRAY, data: [elem, index, nelems] });
  }

  /** A struct; kind_flag (bitfield sizes in the offsets) when any member has a bitfield size. */
  struct(name: BtfName | undefined, size: number, members: readonly MemberSpec[], union = false): this {
    const kflag = members.some((m) => m.bitfieldSize);
    return this.raw({
      name, kind: union ? BTF_KIND.UNION : BTF_KIND.STRUCT, vlen: members.length, kindFlag: kflag, sizeOrType: size,
      data: members.flatMap((m) => [this.nameOff(m.name), m.type, kflag ? ((m.bitfieldSize ?? 0) << 24) | m.bitsOffset : m.bitsOffset]),
    });
  }
  union(name: BtfName | undefined, size: number, members: readonly MemberSpec[]): this { return this.struct(name, size, members, true); }

  enum(name: BtfName | undefined, size: number, values: readonly [BtfName, number][], signed = false): this {
    return this.raw({
      name, kind: BTF_KIND.ENUM, vlen: values.length, kindFlag: signed, sizeOrType: size,
      data: values.flatMap(([n, v]) => [this.nameOff(n), v | 0]),
    });
  }

  enum64(name: BtfName | undefined, size: number, values: readonly [BtfName, bigint][], signed = false): this {
    return this.raw({
      name, kind: BTF_KIND.ENUM64, vlen: values.length, kindFlag: signed, sizeOrType: size,
      data: values.flatMap(([n, v]) => {
        const u = BigInt.asUintN(64, v);
        return [this.nameOff(n), Number(u & 0xffffffffn), Number(u >> 32n)];
      }),
    });
  }

  /** A FUNC_PROTO; a param of type 0 last is the vararg. */
  funcProto(ret: number, params: readonly [BtfName | undefined, number][]): this {
    return this.raw({
      kind: BTF_KIND.FUNC_PROTO, vlen: params.length, sizeOrType: ret,
      data: params.flatMap(([n, t]) => [this.nameOff(n), t]),
    });
  }
  func(name: BtfName, proto: number, linkage = BTF_FUNC_GLOBAL): this {
    return this.raw({ name, kind: BTF_KIND.FUNC, vlen: linkage, sizeOrType: proto });
  }
  var(name: BtfName, type: number, linkage = BTF_VAR_GLOBAL_ALLOCATED): this {
    return this.raw({ name, kind: BTF_KIND.VAR, sizeOrType: type, data: [linkage] });
  }
  datasec(name: BtfName, size: number, vars: readonly { type: number; offset: number; size: number }[]): this {
    return this.raw({
      name, kind: BTF_KIND.DATASEC, vlen: vars.length, sizeOrType: size,
      data: vars.flatMap((v) => [v.type, v.offset, v.size]),
    });
  }
  declTag(value: BtfName, type: number, componentIdx = -1): this {
    return this.raw({ name: value, kind: BTF_KIND.DECL_TAG, sizeOrType: type, data: [componentIdx] });
  }

  /**
   * The raw BTF: a 24-byte header, the types, the strings. `hdr` overrides header fields
   * (after they were computed), `strings` replaces the string section's bytes, `tail` adds
   * bytes after it.
   */
  build(opts: { hdr?: Partial<BtfHeader>; strings?: Uint8Array; tail?: Uint8Array } = {}): Uint8Array {
    const typeLen = this.typeWords.length * 4;
    const strings = opts.strings ?? Uint8Array.from(this.strs);
    const tail = opts.tail ?? new Uint8Array(0);
    const hdr: BtfHeader = {
      magic: BTF_MAGIC, version: BTF_VERSION, flags: 0, hdrLen: BTF_HDR_LEN,
      typeOff: 0, typeLen, strOff: typeLen, strLen: strings.length, ...opts.hdr,
    };
    const out = new Uint8Array(BTF_HDR_LEN + typeLen + strings.length + tail.length);
    const dv = new DataView(out.buffer);
    dv.setUint16(0, hdr.magic, true);
    out[2] = hdr.version;
    out[3] = hdr.flags;
    dv.setUint32(4, hdr.hdrLen, true);
    dv.setUint32(8, hdr.typeOff, true);
    dv.setUint32(12, hdr.typeLen, true);
    dv.setUint32(16, hdr.strOff, true);
    dv.setUint32(20, hdr.strLen, true);
    this.typeWords.forEach((w, i) => dv.setUint32(BTF_HDR_LEN + 4 * i, w, true));
    out.set(strings, BTF_HDR_LEN + typeLen);
    out.set(tail, BTF_HDR_LEN + typeLen + strings.length);
    return out;
  }
}
