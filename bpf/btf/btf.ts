/**
 * @fileoverview The BTF reader (include/uapi/linux/btf.h): the header and its sections checked
 * as the kernel's btf_parse_hdr()/btf_parse_str_sec() do, every kind's record with its
 * trailing data (bpf/btf/kinds.ts), the string section; lookups by name and kind, with
 * modifiers and typedefs resolved; sizes, alignment and member lookup (bpf/btf/layout.ts).
 *
 * Type id 0 is `void`; ids count from 1 in section order. Split BTF (a module's, on top of
 * vmlinux's) continues the base's ids and string offsets: its first id is the base's type
 * count and its string offsets start at the base's string section length.
 *
 * `new Btf(data)` reads and checks the structure (what libbpf/bpftool need to dump it);
 * `validateBtf()` (bpf/btf/verifier.ts) adds every check of the kernel's btf_parse().
 */
import {
  BTF_HDR_LEN, BTF_KIND, BTF_KIND_MAX, BTF_KIND_NAME, BTF_MAGIC, BTF_MAX_NAME_OFFSET, BTF_MAX_TYPE, BTF_TYPE_LEN, BTF_VERSION,
  isModifier, type BtfHeader, type BtfKind, type BtfRealKind, type BtfType,
} from './uapi.ts';
import { BtfError, btfFail } from './errors.ts';
import { KIND_OPS, failBasic, type DataReader } from './kinds.ts';
import { alignOf, findMember, resolveSize, type FoundMember } from './layout.ts';

export {
  BTF_MAGIC, BTF_KIND, BTF_KIND_NAME, BTF_INT_SIGNED, BTF_INT_CHAR, BTF_INT_BOOL,
  type BtfKind, type BtfType, type BtfMember, type BtfParam, type BtfEnumValue, type BtfHeader,
} from './uapi.ts';
export { BtfError } from './errors.ts';

export interface BtfOptions {
  /** The base BTF of split BTF (a module's BTF on top of vmlinux's). */
  base?: Btf;
  /** Run each kind's check_meta as the record is read (validateBtf() sets it). */
  checkMeta?: boolean;
}

const u8str = (b: Uint8Array): string => Buffer.from(b).toString('utf8');

export class Btf {
  /** Every type by id, the base's included (index 0 is void). */
  readonly types: BtfType[];
  readonly base: Btf | undefined;
  /** The first id of this BTF's own types (1, or the base's type count for split BTF). */
  readonly startId: number;
  /** The first string offset of this BTF's own strings (0, or the base's string length). */
  readonly startStrOff: number;
  readonly hdr: BtfHeader;
  /** The raw bytes, header included. */
  readonly data: Uint8Array;
  private readonly strings: Uint8Array;
  private readonly byName = new Map<string, BtfType[]>();

  constructor(data: Uint8Array, opts: BtfOptions = {}) {
    this.data = data;
    this.base = opts.base;
    this.startId = opts.base ? opts.base.types.length : 1;
    this.startStrOff = opts.base ? opts.base.startStrOff + opts.base.hdr.strLen : 0;
    this.types = opts.base ? opts.base.types.slice() : [{ id: 0, kind: 0, name: 'void', nameOff: 0, kindFlag: false, vlen: 0, sizeOrType: 0 }];
    this.hdr = this.parseHdr();
    const nohdr = this.hdr.hdrLen;
    this.strings = data.subarray(nohdr + this.hdr.strOff, nohdr + this.hdr.strOff + this.hdr.strLen);
    this.checkStrSec();
    this.parseTypeSec(opts.checkMeta ?? false);
  }

  /** btf_parse_hdr() and btf_check_sec_info(). */
  private parseHdr(): BtfHeader {
    const d = this.data, size = d.length;
    const dv = new DataView(d.buffer, d.byteOffset, d.byteLength);
    if (size < 8) btfFail('HDR_LEN_NOT_FOUND', {});
    const hdrLen = dv.getUint32(4, true);
    if (size < hdrLen) btfFail('HDR_NOT_FOUND', {});
    // A longer header than this kernel knows must be zero past what it knows.
    for (let i = BTF_HDR_LEN; i < hdrLen; i++) if (d[i]) btfFail('UNSUPPORTED_HDR', {});
    const field = (off: number): number => (off + 4 <= hdrLen ? dv.getUint32(off, true) : 0);
    const hdr: BtfHeader = {
      magic: dv.getUint16(0, true), version: d[2]!, flags: d[3]!, hdrLen,
      typeOff: field(8), typeLen: field(12), strOff: field(16), strLen: field(20),
    };
    if (hdr.magic !== BTF_MAGIC) btfFail('INVALID_MAGIC', {});
    if (hdr.version !== BTF_VERSION) btfFail('UNSUPPORTED_VERSION', {});
    if (hdr.flags) btfFail('UNSUPPORTED_FLAGS', {});
    if (!this.base && size === hdrLen) btfFail('NO_DATA', {});
    // The sections, by offset, must tile the data after the header: no gap, no overlap.
    const secs = [{ off: hdr.typeOff, len: hdr.typeLen }, { off: hdr.strOff, len: hdr.strLen }]
      .sort((a, b) => a.off - b.off || a.len - b.len);
    const expectedTotal = size - hdrLen;
    let total = 0;
    for (const s of secs) {
      if (expectedTotal < s.off) btfFail('INVALID_SECTION_OFFSET', {});
      if (total < s.off) btfFail('UNSUPPORTED_SECTION', {});
      if (total > s.off) btfFail('SECTION_OVERLAP', {});
      if (expectedTotal - total < s.len) btfFail('SECTION_TOO_LONG', {});
      total += s.len;
    }
    if (expectedTotal !== total) btfFail('UNSUPPORTED_SECTION', {});
    return hdr;
  }

  /** btf_parse_str_sec(): last in the data, '\0' first (base BTF) and last. */
  private checkStrSec(): void {
    const { hdrLen, strOff, strLen } = this.hdr;
    if (hdrLen + strOff + strLen !== this.data.length) btfFail('STR_NOT_AT_END', {});
    if (this.base && !strLen) return;
    if (!strLen || strLen - 1 > BTF_MAX_NAME_OFFSET || this.strings[strLen - 1] !== 0) btfFail('INVALID_STR_SECTION', {});
    if (!this.base && this.strings[0] !== 0) btfFail('INVALID_STR_SECTION', {});
  }

  /** btf_parse_type_sec() and btf_check_all_metas(). */
  private parseTypeSec(checkMeta: boolean): void {
    const { hdrLen, typeOff, typeLen } = this.hdr;
    if (typeOff & 3) btfFail('UNALIGNED_TYPE_OFF', {});
    if (!this.base && !typeLen) btfFail('NO_TYPE', {});
    const d = this.data;
    const dv = new DataView(d.buffer, d.byteOffset, d.byteLength);
    let o = hdrLen + typeOff;
    const end = o + typeLen;
    for (let id = this.startId; o < end; id++) {
      const left = end - o;
      if (left < BTF_TYPE_LEN) btfFail('META_LEFT', { typeId: id, line: (r) => `[${id}] ${r}` }, left, BTF_TYPE_LEN);
      if (id > BTF_MAX_TYPE) btfFail('EXCEEDED_MAX_TYPES', {});
      const nameOff = dv.getUint32(o, true), info = dv.getUint32(o + 4, true);
      const kind = (info >>> 24) & 0x1f;
      if (kind > BTF_KIND_MAX || kind === 0) btfFail('INVALID_KIND', { typeId: id, line: (r) => `[${id}] ${r}` }, kind);
      if (!this.nameOffsetValid(nameOff)) btfFail('INVALID_NAME_OFFSET', { typeId: id, line: (r) => `[${id}] ${r}` }, nameOff);
      const t: BtfType = {
        id, kind: kind as BtfKind, name: this.strAt(nameOff) ?? '', nameOff, kindFlag: (info >>> 31) === 1,
        vlen: info & 0xffff, sizeOrType: dv.getUint32(o + 8, true),
      };
      const ops = KIND_OPS[kind as BtfRealKind];
      const need = ops.dataLen(t.vlen);
      if (left - BTF_TYPE_LEN < need) failBasic(this, t, 'META_LEFT', left - BTF_TYPE_LEN, need);
      const at = o + BTF_TYPE_LEN;
      const r: DataReader = { u32: (x) => dv.getUint32(at + x, true), s32: (x) => dv.getInt32(at + x, true) };
      ops.decode(this, t, r);
      if (checkMeta) ops.checkMeta(this, t);
      this.types.push(t);
      if (t.name) {
        const l = this.byName.get(t.name);
        if (l) l.push(t); else this.byName.set(t.name, [t]);
      }
      o = at + need;
    }
  }

  /** btf_name_offset_valid(): within this BTF's strings or its base's. */
  nameOffsetValid(off: number): boolean {
    if (off > BTF_MAX_NAME_OFFSET) return false;
    if (off < this.startStrOff) return this.base!.nameOffsetValid(off);
    return off - this.startStrOff < this.hdr.strLen;
  }

  /** The bytes of the string at `off` (no terminator), or undefined past the strings. */
  rawStrAt(off: number): Uint8Array | undefined {
    if (off < this.startStrOff) return this.base!.rawStrAt(off);
    const o = off - this.startStrOff;
    if (o >= this.strings.length) return undefined;
    let e = o;
    while (e < this.strings.length && this.strings[e] !== 0) e++;
    return this.strings.subarray(o, e);
  }

  /** btf_str_by_offset(): the string at `off`, or undefined past the strings. */
  strAt(off: number): string | undefined {
    const b = this.rawStrAt(off);
    return b && u8str(b);
  }

  /** btf__type_cnt(): the number of ids, void and the base's included. */
  get typeCount(): number { return this.types.length; }

  type(id: number): BtfType {
    const t = this.types[id];
    if (!t) throw new BtfError(`type id ${id} is invalid (max ${this.types.length - 1})`);
    return t;
  }

  /** btf_find_by_name_kind(): the base first, then this BTF's own types. */
  findByNameKind(name: string, kind: BtfKind): BtfType | undefined {
    return this.base?.findByNameKind(name, kind) ?? this.byName.get(name)?.find((t) => t.kind === kind);
  }

  /** btf_type_skip_modifiers(): skips typedefs and modifiers (const, volatile, restrict, type tags). */
  resolve(id: number): BtfType {
    let t = this.type(id);
    for (let guard = 0; isModifier(t.kind); guard++) {
      if (guard >= 64) throw new BtfError(`[${id}] modifier chain too long (a loop?)`);
      t = this.type(t.sizeOrType);
    }
    return t;
  }

  /** The FUNC_PROTO of a FUNC named `name`, or undefined. */
  funcProto(name: string): BtfType | undefined {
    const f = this.findByNameKind(name, BTF_KIND.FUNC);
    return f ? this.type(f.sizeOrType) : undefined;
  }

  /** btf__resolve_size(): the size of a type in bytes; a BtfError for void, functions, fwds. */
  resolveSize(id: number): number { return resolveSize(this, id); }

  /** btf__align_of(): the natural alignment of a type (1 for a packed struct). */
  alignOf(id: number): number { return alignOf(this, id); }

  /**
   * A member of a struct/union by name, looking into anonymous struct/union members as C
   * does: its bit offset from the start of `structId`, bitfield size and index path.
   */
  findMember(structId: number, name: string): FoundMember | undefined { return findMember(this, structId, name); }

  /** C-like spelling of a type, e.g. `const struct sk_buff *`, `u64`. */
  typeName(id: number): string {
    const t = this.type(id);
    switch (t.kind) {
      case 0: return 'void';
      case BTF_KIND.PTR: return `${this.typeName(t.sizeOrType)} *`;
      case BTF_KIND.CONST: return `const ${this.typeName(t.sizeOrType)}`;
      case BTF_KIND.VOLATILE: return `volatile ${this.typeName(t.sizeOrType)}`;
      case BTF_KIND.RESTRICT: return `${this.typeName(t.sizeOrType)} restrict`;
      case BTF_KIND.TYPE_TAG: return this.typeName(t.sizeOrType);
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
