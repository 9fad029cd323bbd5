/**
 * @fileoverview `bpftool btf dump file X format c`: BTF back to compilable C (a vmlinux.h),
 * as libbpf's btf_dump.c does it, in two passes:
 *
 *  1. order: a depth-first walk from each type queues the named definitions it needs. A
 *     struct embedded by value (or anonymous, so defined inline) is a strong dependency and
 *     is queued first; one reached through a pointer is weak and a forward declaration will
 *     do. A strong cycle cannot be written in C (an error).
 *  2. emit: each queued type is written with what it references: forward declarations for
 *     weak references not yet defined, anonymous structs/enums inline, declarators in C's
 *     inside-out order (`int (*f[4])(void)`), explicit padding (`long: 64;`) where the
 *     natural layout would differ from BTF's offsets, `__attribute__((packed))` when the
 *     offsets are not naturally aligned.
 *
 * Functions, variables, sections and tags are not written (as bpftool). Names that repeat
 * (two different `struct foo`) get `___2`, `___3` suffixes.
 */
import { BTF_KIND, isComposite, type BtfType } from './uapi.ts';
import { alignOf, resolveSize } from './layout.ts';
import { BtfError, ELOOP } from './errors.ts';
import type { Btf } from './btf.ts';

const PTR_SZ = 8;
const NOT_ORDERED = 0, ORDERING = 1, ORDERED = 2;
const NOT_EMITTED = 0, EMITTING = 1, EMITTED = 2;

interface TypeState { order: number; emit: number; fwdEmitted: boolean; referenced: boolean; nameResolved: boolean; name?: string }

const pfx = (lvl: number): string => '\t'.repeat(Math.min(lvl, 13));
const roundup = (x: number, to: number): number => Math.ceil(x / to) * to;

/** GCC's internal ARM SIMD base types, aliased to standard ones. */
const MISSING_BASE_TYPES: Readonly<Record<string, string>> = {
  __Poly8_t: 'unsigned char', __Poly16_t: 'unsigned short', __Poly64_t: 'unsigned long long', __Poly128_t: 'unsigned __int128',
};

class CDumper {
  private out = '';
  private readonly st: TypeState[];
  private readonly typeNames = new Map<string, number>();
  private readonly identNames = new Map<string, number>();
  private queue: number[] = [];
  private readonly btf: Btf;

  constructor(btf: Btf) {
    this.btf = btf;
    this.st = btf.types.map(() => ({ order: NOT_ORDERED, emit: NOT_EMITTED, fwdEmitted: false, referenced: false, nameResolved: false }));
    this.st[0]!.order = ORDERED;
    this.st[0]!.emit = EMITTED;
    for (const t of btf.types) this.markReferenced(t);
  }

  private t(id: number): BtfType { return this.btf.type(id); }
  private p(s: string): void { this.out += s; }

  /** Which types other types refer to: an anonymous enum nobody refers to is a top-level one. */
  private markReferenced(t: BtfType): void {
    const ref = (id: number): void => { if (this.st[id]) this.st[id]!.referenced = true; };
    switch (t.kind) {
      case BTF_KIND.VOLATILE: case BTF_KIND.CONST: case BTF_KIND.RESTRICT: case BTF_KIND.PTR: case BTF_KIND.TYPEDEF:
      case BTF_KIND.FUNC: case BTF_KIND.VAR: case BTF_KIND.DECL_TAG: case BTF_KIND.TYPE_TAG:
        ref(t.sizeOrType); break;
      case BTF_KIND.ARRAY: ref(t.array!.indexType); ref(t.array!.type); break;
      case BTF_KIND.STRUCT: case BTF_KIND.UNION: t.members!.forEach((m) => ref(m.type)); break;
      case BTF_KIND.FUNC_PROTO: t.params!.forEach((p) => ref(p.type)); break;
      case BTF_KIND.DATASEC: t.secinfos!.forEach((v) => ref(v.type)); break;
    }
  }

  /** Dumps one type and what it needs (btf_dump__dump_type()). */
  dumpType(id: number): void {
    this.queue = [];
    this.orderType(id, false);
    for (const q of this.queue) this.emitType(q, 0);
  }

  text(): string { return this.out; }

  // --- pass 1: order --------------------------------------------------------------------

  /** btf_dump_order_type(): true when `id` is part of a strong link (must be defined first). */
  private orderType(id: number, throughPtr: boolean): boolean {
    const s = this.st[id]!, t = this.t(id);
    if (s.order === ORDERED) return true;
    if (s.order === ORDERING) {
      // A loop through a pointer to a named struct is fine: a forward declaration breaks it.
      if (isComposite(t.kind) && throughPtr && t.nameOff !== 0) return false;
      throw new BtfError(`unsatisfiable type cycle, id:[${id}]`, { errno: -ELOOP, typeId: id });
    }
    switch (t.kind) {
      case BTF_KIND.INT: case BTF_KIND.FLOAT:
        s.order = ORDERED;
        return false;
      case BTF_KIND.PTR: {
        const r = this.orderType(t.sizeOrType, true);
        s.order = ORDERED;
        return r;
      }
      case BTF_KIND.ARRAY:
        return this.orderType(t.array!.type, false);
      case BTF_KIND.STRUCT: case BTF_KIND.UNION: {
        // Strong only when embedded (no pointer on the way) or anonymous (defined inline).
        if (throughPtr && t.nameOff !== 0) return false;
        s.order = ORDERING;
        for (const m of t.members!) this.orderType(m.type, false);
        if (t.nameOff !== 0) this.queue.push(id);
        s.order = ORDERED;
        return true;
      }
      case BTF_KIND.ENUM: case BTF_KIND.ENUM64: case BTF_KIND.FWD:
        // Named or unreferenced (top-level constants) enums are definitions of their own.
        if (t.nameOff !== 0 || !s.referenced) this.queue.push(id);
        s.order = ORDERED;
        return true;
      case BTF_KIND.TYPEDEF: {
        const strong = this.orderType(t.sizeOrType, throughPtr);
        if (throughPtr && !strong) return false;
        this.queue.push(id);
        s.order = ORDERED;
        return true;
      }
      case BTF_KIND.VOLATILE: case BTF_KIND.CONST: case BTF_KIND.RESTRICT: case BTF_KIND.TYPE_TAG:
        return this.orderType(t.sizeOrType, throughPtr);
      case BTF_KIND.FUNC_PROTO: {
        let strong = this.orderType(t.sizeOrType, throughPtr);
        for (const p of t.params!) if (this.orderType(p.type, throughPtr)) strong = true;
        return strong;
      }
      default: // FUNC, VAR, DATASEC, DECL_TAG: not written
        s.order = ORDERED;
        return false;
    }
  }

  // --- pass 2: emit ---------------------------------------------------------------------

  /** btf_dump_emit_type(): `contId` is the struct being defined (0 at the top level). */
  private emitType(id: number, contId: number): void {
    const s = this.st[id]!, t = this.t(id);
    const topLevel = contId === 0;
    if (s.emit === EMITTED) return;
    if (s.emit === EMITTING) {
      // Referenced while being defined: a forward declaration, unless it is ourselves.
      if (s.fwdEmitted) return;
      if (isComposite(t.kind)) {
        if (id === contId) return;
        if (t.nameOff === 0) return; // an anonymous struct loop: nothing C can say
        this.p(`${this.structFwd(id, t)};\n\n`);
        s.fwdEmitted = true;
      } else if (t.kind === BTF_KIND.TYPEDEF) {
        if (!this.blacklisted(t)) this.p(`${this.typedefDef(id, t, 0)};\n\n`);
        s.fwdEmitted = true;
      }
      return;
    }
    switch (t.kind) {
      case BTF_KIND.INT: {
        const alias = MISSING_BASE_TYPES[this.typeName(id)];
        if (alias) this.p(`typedef ${alias} ${this.typeName(id)};\n\n`);
        s.emit = EMITTED;
        break;
      }
      case BTF_KIND.ENUM: case BTF_KIND.ENUM64:
        if (topLevel) this.p(`${this.enumDef(id, t, 0)};\n\n`);
        s.emit = EMITTED;
        break;
      case BTF_KIND.PTR: case BTF_KIND.VOLATILE: case BTF_KIND.CONST: case BTF_KIND.RESTRICT: case BTF_KIND.TYPE_TAG:
        this.emitType(t.sizeOrType, contId);
        break;
      case BTF_KIND.ARRAY:
        this.emitType(t.array!.type, contId);
        break;
      case BTF_KIND.FWD:
        this.p(`${t.kindFlag ? 'union' : 'struct'} ${this.typeName(id)};\n\n`);
        s.emit = EMITTED;
        break;
      case BTF_KIND.TYPEDEF:
        s.emit = EMITTING;
        this.emitType(t.sizeOrType, id);
        // Someone may already have needed it as a forward declaration through a pointer.
        if (!s.fwdEmitted && !this.blacklisted(t)) this.p(`${this.typedefDef(id, t, 0)};\n\n`);
        s.emit = EMITTED;
        break;
      case BTF_KIND.STRUCT: case BTF_KIND.UNION:
        s.emit = EMITTING;
        // Writing the members (top level, or inline when anonymous): declare what they use.
        if (topLevel || t.nameOff === 0) {
          const cont = t.nameOff === 0 ? contId : id;
          for (const m of t.members!) this.emitType(m.type, cont);
        } else if (!s.fwdEmitted && id !== contId) {
          this.p(`${this.structFwd(id, t)};\n\n`);
          s.fwdEmitted = true;
        }
        if (topLevel) {
          this.p(`${this.structDef(id, t, 0)};\n\n`);
          s.emit = EMITTED;
        } else {
          s.emit = NOT_EMITTED;
        }
        break;
      case BTF_KIND.FUNC_PROTO:
        this.emitType(t.sizeOrType, contId);
        for (const p of t.params!) this.emitType(p.type, contId);
        break;
    }
  }

  /** __builtin_va_list is the compiler's own. */
  private blacklisted(t: BtfType): boolean { return t.nameOff !== 0 && t.name === '__builtin_va_list'; }

  // --- names ------------------------------------------------------------------------------

  /** btf_dump_name_dups(): counts a name's uses. */
  private nameDups(map: Map<string, number>, name: string): number {
    const n = (map.get(name) ?? 0) + 1;
    map.set(name, n);
    return n;
  }

  /** btf_dump_resolve_name(): a type's C name, `___N` for the N-th distinct type of that name. */
  private resolveName(id: number, map: Map<string, number>): string {
    const s = this.st[id]!, t = this.t(id);
    if (t.nameOff === 0) return '';
    if (s.nameResolved) return s.name ?? t.name;
    s.nameResolved = true;
    if (t.kind === BTF_KIND.FWD || (t.kind === BTF_KIND.ENUM && t.vlen === 0)) return t.name;
    const dups = this.nameDups(map, t.name);
    if (dups > 1) s.name = `${t.name}___${dups}`;
    return s.name ?? t.name;
  }
  private typeName(id: number): string { return this.resolveName(id, this.typeNames); }
  private identName(id: number): string { return this.resolveName(id, this.identNames); }

  // --- definitions ------------------------------------------------------------------------

  private structFwd(id: number, t: BtfType): string {
    return `${t.kind === BTF_KIND.STRUCT ? 'struct' : 'union'}${t.nameOff ? ' ' : ''}${this.typeName(id)}`;
  }

  /** btf_is_struct_packed(): a non-bitfield member off its natural alignment, or an odd size. */
  private isPacked(t: BtfType): boolean {
    let max = 1;
    for (const m of t.members!) {
      const a = alignOf(this.btf, m.type);
      if (a && m.bitfieldSize === 0 && m.offset % (8 * a) !== 0) return true;
      max = Math.max(a, max);
    }
    return t.sizeOrType % max !== 0;
  }

  /**
   * btf_dump_emit_bit_padding(): explicit padding from bit `cur` to `next` with anonymous
   * bitfields (`long: 64;`), as little as the natural alignment of what follows leaves.
   */
  private bitPadding(cur: number, next: number, nextAlign: number, inBitfield: boolean, lvl: number): string {
    const pads: [string, number][] = [['long', PTR_SZ * 8], ['int', 32], ['short', 16], ['char', 8]];
    if (cur >= next) return '';
    let out = '', newOff = 0, padBits = 0, padType = '';
    for ([padType, padBits] of pads) {
      newOff = roundup(cur, padBits);
      if (newOff <= next) break;
    }
    if (newOff > cur && newOff <= next) {
      // An explicit `<type>: 0` when the next member's own alignment would not get there.
      if (inBitfield || (newOff === next && roundup(cur, nextAlign * 8) !== newOff) || (newOff !== next && next - newOff <= newOff - cur)) {
        out += `\n${pfx(lvl)}${padType}: ${inBitfield ? newOff - cur : 0};`;
      }
      cur = newOff;
    }
    while (cur !== next) {
      const bits = Math.min(next - cur, padBits);
      if (bits === padBits) {
        out += `\n${pfx(lvl)}${padType}: ${padBits};`;
        cur += bits;
        continue;
      }
      // The remainder: the smallest type that holds it.
      for (let i = pads.length - 1; i >= 0; i--) {
        const [name, size] = pads[i]!;
        if (size < bits) continue;
        out += `\n${pfx(lvl)}${name}: ${bits};`;
        cur += bits;
        break;
      }
    }
    return out;
  }

  private structDef(id: number, t: BtfType, lvl: number): string {
    const isStruct = t.kind === BTF_KIND.STRUCT;
    const align = alignOf(this.btf, id);
    const packed = isStruct && this.isPacked(t);
    let s = `${isStruct ? 'struct' : 'union'}${t.nameOff ? ' ' : ''}${this.typeName(id)} {`;
    let off = 0, prevBitfield = false;
    for (const m of t.members!) {
      const mAlign = packed ? 1 : alignOf(this.btf, m.type);
      s += this.bitPadding(off, m.offset, mAlign, prevBitfield && m.bitfieldSize !== 0, lvl + 1);
      s += `\n${pfx(lvl + 1)}${this.typeDecl(m.type, m.name, lvl + 1)}`;
      if (m.bitfieldSize) {
        s += `: ${m.bitfieldSize}`;
        off = m.offset + m.bitfieldSize;
        prevBitfield = true;
      } else {
        off = m.offset + Math.max(0, this.sizeOr0(m.type)) * 8;
        prevBitfield = false;
      }
      s += ';';
    }
    if (isStruct) s += this.bitPadding(off, t.sizeOrType * 8, align, false, lvl + 1);
    s += t.vlen || t.sizeOrType ? `\n${pfx(lvl)}}` : '}';
    if (packed) s += ' __attribute__((packed))';
    return s;
  }

  private sizeOr0(id: number): number {
    try { return resolveSize(this.btf, id); } catch { return 0; }
  }

  private enumDef(id: number, t: BtfType, lvl: number): string {
    let s = `enum${t.nameOff ? ' ' : ''}${this.typeName(id)}`;
    if (!t.vlen) return s;
    s += ' {';
    const is64 = t.kind === BTF_KIND.ENUM64;
    for (const v of t.enumValues!) {
      // Enumerators share the namespace of typedefs.
      const dups = this.nameDups(this.identNames, v.name);
      const name = dups > 1 ? `${v.name}___${dups}` : v.name;
      const val = is64
        ? `${t.kindFlag ? BigInt.asIntN(64, v.value) : BigInt.asUintN(64, v.value)}${t.kindFlag ? 'LL' : 'ULL'}`
        : `${t.kindFlag ? BigInt.asIntN(32, v.value) : BigInt.asUintN(32, v.value)}`;
      s += `\n${pfx(lvl + 1)}${name} = ${val},`;
    }
    s += `\n${pfx(lvl)}}`;
    if (t.sizeOrType === 1) s += ' __attribute__((mode(byte)))';
    else if (t.sizeOrType === 8) {
      // An 8-byte enum whose values fit 32 bits needs mode(word) to stay 8 bytes.
      const wide = is64 && t.enumValues!.some((v) => BigInt.asUintN(64, v.value) >> 32n !== 0n);
      if (!wide) s += ' __attribute__((mode(word)))';
    }
    return s;
  }

  private typedefDef(id: number, t: BtfType, lvl: number): string {
    const name = this.identName(id);
    // Old GCC: `typedef void __gnuc_va_list`.
    if (t.sizeOrType === 0 && name === '__gnuc_va_list') return 'typedef __builtin_va_list __gnuc_va_list';
    return `typedef ${this.typeDecl(t.sizeOrType, name, lvl)}`;
  }

  // --- declarators ------------------------------------------------------------------------

  /** btf_dump_emit_type_decl(): `type name` in C syntax, declarator inside out. */
  typeDecl(id: number, fname: string, lvl: number): string {
    const stack: number[] = [];
    for (;;) {
      stack.push(id);
      if (id === 0) break;
      const t = this.t(id);
      if (t.kind === BTF_KIND.PTR || t.kind === BTF_KIND.VOLATILE || t.kind === BTF_KIND.CONST || t.kind === BTF_KIND.RESTRICT ||
        t.kind === BTF_KIND.FUNC_PROTO || t.kind === BTF_KIND.TYPE_TAG) id = t.sizeOrType;
      else if (t.kind === BTF_KIND.ARRAY) id = t.array!.type;
      else break;
    }
    return this.typeChain(stack, fname, lvl);
  }

  /** Leading const/volatile/restrict of a base type (popped from the stack). */
  private mods(stack: number[]): string {
    let s = '';
    while (stack.length) {
      const k = this.t(stack.at(-1)!).kind;
      if (k === BTF_KIND.VOLATILE) s += 'volatile ';
      else if (k === BTF_KIND.CONST) s += 'const ';
      else if (k === BTF_KIND.RESTRICT) s += 'restrict ';
      else break;
      stack.pop();
    }
    return s;
  }

  private dropMods(stack: number[]): void {
    while (stack.length) {
      const k = this.t(stack.at(-1)!).kind;
      if (k !== BTF_KIND.VOLATILE && k !== BTF_KIND.CONST && k !== BTF_KIND.RESTRICT && k !== BTF_KIND.TYPE_TAG) return;
      stack.pop();
    }
  }

  private static name(fname: string, lastWasPtr: boolean): string {
    return `${fname && !lastWasPtr ? ' ' : ''}${fname}`;
  }

  /** btf_dump_emit_type_chain(): pops the stack from the base type outwards. */
  private typeChain(stack: number[], fname: string, lvl: number): string {
    let s = '', lastWasPtr = true;
    while (stack.length) {
      const id = stack.pop()!;
      if (id === 0) {
        s += `${this.mods(stack)}void`;
        lastWasPtr = false;
        continue;
      }
      const t = this.t(id);
      switch (t.kind) {
        case BTF_KIND.INT: case BTF_KIND.FLOAT:
          s += `${this.mods(stack)}${t.name}`;
          break;
        case BTF_KIND.STRUCT: case BTF_KIND.UNION:
          s += this.mods(stack) + (t.nameOff === 0 ? this.structDef(id, t, lvl) : this.structFwd(id, t));
          break;
        case BTF_KIND.ENUM: case BTF_KIND.ENUM64:
          s += this.mods(stack) + (t.nameOff === 0 ? this.enumDef(id, t, lvl) : `enum ${this.typeName(id)}`);
          break;
        case BTF_KIND.FWD:
          s += `${this.mods(stack)}${t.kindFlag ? 'union' : 'struct'} ${this.typeName(id)}`;
          break;
        case BTF_KIND.TYPEDEF:
          s += `${this.mods(stack)}${this.identName(id)}`;
          break;
        case BTF_KIND.PTR:
          s += lastWasPtr ? '*' : ' *';
          break;
        case BTF_KIND.VOLATILE: s += ' volatile'; break;
        case BTF_KIND.CONST: s += ' const'; break;
        case BTF_KIND.RESTRICT: s += ' restrict'; break;
        case BTF_KIND.TYPE_TAG:
          s += this.mods(stack) + (t.kindFlag ? ` __attribute__((${t.name}))` : ` __attribute__((btf_type_tag("${t.name}")))`);
          break;
        case BTF_KIND.ARRAY: {
          // const/volatile on an array (a GCC quirk) mean nothing in C: dropped.
          this.dropMods(stack);
          if (!stack.length) return `${s}${CDumper.name(fname, lastWasPtr)}[${t.array!.nelems}]`;
          const multidim = this.t(stack.at(-1)!).kind === BTF_KIND.ARRAY;
          if (fname && !lastWasPtr) s += ' ';
          const inner = this.typeChain(stack, fname, lvl);
          return `${s}${multidim ? inner : `(${inner})`}[${t.array!.nelems}]`;
        }
        case BTF_KIND.FUNC_PROTO: {
          this.dropMods(stack);
          s += stack.length ? ` (${this.typeChain(stack, fname, lvl)})` : CDumper.name(fname, lastWasPtr);
          const ps = t.params!;
          // No parameters, or clang's single void one: (void). A void last one is the vararg.
          if (ps.length === 0 || (ps.length === 1 && ps[0]!.type === 0)) return `${s}(void)`;
          const args = ps.map((p, i) => (i === ps.length - 1 && p.type === 0 ? '...' : this.typeDecl(p.type, p.name, lvl)));
          return `${s}(${args.join(', ')})`;
        }
      }
      lastWasPtr = t.kind === BTF_KIND.PTR;
    }
    return s + CDumper.name(fname, lastWasPtr);
  }
}

/** `bpftool btf dump file X format c`: a vmlinux.h of the BTF's own types. */
export function dumpBtfC(btf: Btf): string {
  const d = new CDumper(btf);
  for (let id = btf.startId; id < btf.typeCount; id++) d.dumpType(id);
  return '#ifndef __VMLINUX_H__\n#define __VMLINUX_H__\n\n' +
    '#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n' +
    '#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)\n#endif\n\n' +
    d.text() +
    '#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n#pragma clang attribute pop\n#endif\n\n' +
    '#endif /* __VMLINUX_H__ */\n';
}
