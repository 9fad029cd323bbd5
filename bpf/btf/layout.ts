/**
 * @fileoverview Sizes and layout from BTF, as libbpf computes them: btf__resolve_size()
 * (through typedefs and modifiers; an array is its element's size times its elements; a
 * pointer is 8), btf__align_of() (natural alignment; a struct whose members or size break it
 * is packed: 1), and member lookup by name through anonymous struct/union members, with the
 * member's bit offset from the outer struct (kind_flag bitfields included).
 */
import { BTF_KIND, btfKindStr, isComposite, type BtfMember, type BtfType } from './uapi.ts';
import { BtfError, E2BIG } from './errors.ts';
import type { Btf } from './btf.ts';

/** MAX_RESOLVE_DEPTH: how many modifiers/arrays a size or alignment looks through. */
export const MAX_RESOLVE_DEPTH = 32;
const PTR_SIZE = 8;
const U32_MAX = 0xffffffff;

const noSize = (btf: Btf, id: number, why: string): BtfError => {
  const t = btf.types[id];
  return new BtfError(t ? `[${id}] ${btfKindStr(t.kind)} '${t.name || '(anon)'}' ${why}` : `[${id}] ${why}`, { typeId: id });
};

/** btf__resolve_size(). */
export function resolveSize(btf: Btf, typeId: number): number {
  let id = typeId, nelems = 1;
  for (let i = 0; i < MAX_RESOLVE_DEPTH; i++) {
    const t = btf.types[id];
    if (!t || t.kind === 0) throw noSize(btf, typeId, 'has no size (void)');
    switch (t.kind) {
      case BTF_KIND.INT: case BTF_KIND.STRUCT: case BTF_KIND.UNION: case BTF_KIND.ENUM: case BTF_KIND.ENUM64:
      case BTF_KIND.DATASEC: case BTF_KIND.FLOAT:
        return total(typeId, nelems, t.sizeOrType);
      case BTF_KIND.PTR:
        return total(typeId, nelems, PTR_SIZE);
      case BTF_KIND.TYPEDEF: case BTF_KIND.VOLATILE: case BTF_KIND.CONST: case BTF_KIND.RESTRICT:
      case BTF_KIND.VAR: case BTF_KIND.DECL_TAG: case BTF_KIND.TYPE_TAG:
        id = t.sizeOrType;
        break;
      case BTF_KIND.ARRAY:
        if (nelems && t.array!.nelems > Math.floor(U32_MAX / nelems)) {
          throw new BtfError(`[${typeId}] array size overflows U32_MAX`, { errno: -E2BIG, typeId });
        }
        nelems *= t.array!.nelems;
        id = t.array!.type;
        break;
      default:
        throw noSize(btf, typeId, `has no size (${btfKindStr(t.kind)})`);
    }
  }
  throw noSize(btf, typeId, `has no size (more than ${MAX_RESOLVE_DEPTH} modifiers or arrays)`);
}

function total(typeId: number, nelems: number, size: number): number {
  if (nelems && size > Math.floor(U32_MAX / nelems)) throw new BtfError(`[${typeId}] size overflows U32_MAX`, { errno: -E2BIG, typeId });
  return nelems * size;
}

/** btf__align_of(). */
export function alignOf(btf: Btf, typeId: number, depth = 0): number {
  const t = btf.types[typeId];
  if (!t || depth > MAX_RESOLVE_DEPTH) throw noSize(btf, typeId, 'has no alignment');
  switch (t.kind) {
    case BTF_KIND.INT: case BTF_KIND.ENUM: case BTF_KIND.ENUM64: case BTF_KIND.FLOAT:
      return Math.min(PTR_SIZE, t.sizeOrType);
    case BTF_KIND.PTR:
      return PTR_SIZE;
    case BTF_KIND.TYPEDEF: case BTF_KIND.VOLATILE: case BTF_KIND.CONST: case BTF_KIND.RESTRICT: case BTF_KIND.TYPE_TAG:
      return alignOf(btf, t.sizeOrType, depth + 1);
    case BTF_KIND.ARRAY:
      return alignOf(btf, t.array!.type, depth + 1);
    case BTF_KIND.STRUCT: case BTF_KIND.UNION: {
      let max = 1;
      for (const m of t.members!) {
        const a = alignOf(btf, m.type, depth + 1);
        max = Math.max(max, a);
        // A member off its natural alignment, or a size not a multiple of it: packed.
        if (m.bitfieldSize === 0 && m.offset % (8 * a) !== 0) return 1;
      }
      return t.sizeOrType % max !== 0 ? 1 : max;
    }
    default:
      throw noSize(btf, typeId, `has no alignment (${btfKindStr(t.kind)})`);
  }
}

export interface FoundMember {
  member: BtfMember;
  /** The struct/union that holds the member (an anonymous one when nested). */
  parent: BtfType;
  /** Bit offset from the start of the outer struct. */
  bitOffset: number;
  /** Bitfield size in bits; 0 for a regular member. */
  bitfieldSize: number;
  /** Member indices from the outer struct down (a CO-RE access string without its leading 0). */
  path: number[];
}

/** Skips modifiers and typedefs (libbpf's skip_mods_and_typedefs()). */
export function skipMods(btf: Btf, id: number): { id: number; t: BtfType | undefined } {
  let t = btf.types[id];
  for (let i = 0; t && (t.kind === BTF_KIND.TYPEDEF || t.kind === BTF_KIND.VOLATILE || t.kind === BTF_KIND.CONST ||
    t.kind === BTF_KIND.RESTRICT || t.kind === BTF_KIND.TYPE_TAG); i++) {
    if (i >= MAX_RESOLVE_DEPTH) return { id, t: undefined };
    id = t.sizeOrType;
    t = btf.types[id];
  }
  return { id, t };
}

/** A member by name, searching anonymous struct/union members depth-first in member order. */
export function findMember(btf: Btf, structId: number, name: string, depth = 0): FoundMember | undefined {
  const { t } = skipMods(btf, structId);
  if (!t || !isComposite(t.kind)) {
    throw new BtfError(`[${structId}] ${t ? btfKindStr(t.kind) : 'invalid type'} is not a struct or union`, { typeId: structId });
  }
  if (depth > MAX_RESOLVE_DEPTH) return undefined;
  for (let i = 0; i < t.members!.length; i++) {
    const m = t.members![i]!;
    if (m.name === name) return { member: m, parent: t, bitOffset: m.offset, bitfieldSize: m.bitfieldSize, path: [i] };
    if (m.name === '') {
      const inner = skipMods(btf, m.type).t;
      if (inner && isComposite(inner.kind)) {
        const f = findMember(btf, m.type, name, depth + 1);
        if (f) return { ...f, bitOffset: m.offset + f.bitOffset, path: [i, ...f.path] };
      }
    }
  }
  return undefined;
}
