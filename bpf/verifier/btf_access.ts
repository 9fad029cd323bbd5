/**
 * @fileoverview Loads through a typed kernel pointer (check_ptr_to_btf_access and
 * btf_struct_access/btf_struct_walk): the offset and size must fall inside one member of the
 * BTF struct (walking nested structs, unions and arrays); a pointer-to-struct member read whole
 * gives another typed pointer, anything else a scalar. Such loads cannot fault the machine:
 * they are marked in the instruction's aux data as the kernel's BPF_PROBE_MEM loads.
 */
import { BTF_KIND, type BtfType } from '../btf/uapi.ts';
import type { Btf } from '../btf/btf.ts';
import { tnumIsConst, tnumStr } from './tnum.ts';
import { RegState, RegType, markKnownZero, markUnknown } from './reg.ts';
import { EACCES, EFAULT, EINVAL, type VerifierEnv } from './env.ts';

const BPF_READ = 1;
type Walk = { kind: 'ptr'; id: number } | { kind: 'scalar' } | { kind: 'struct'; id: number } | { kind: 'err'; errno: number };

const isModifier = (k: number): boolean => k === BTF_KIND.TYPEDEF || k === BTF_KIND.CONST || k === BTF_KIND.VOLATILE ||
  k === BTF_KIND.RESTRICT || k === BTF_KIND.TYPE_TAG;
const isStruct = (t: BtfType): boolean => t.kind === BTF_KIND.STRUCT || t.kind === BTF_KIND.UNION;

function skipMods(btf: Btf, id: number): { t: BtfType; id: number } {
  let t = btf.type(id);
  while (isModifier(t.kind)) { id = t.sizeOrType; t = btf.type(id); }
  return { t, id };
}

/** __btf_resolve_size: the member's size, and for arrays the innermost element type. */
function resolveMember(btf: Btf, id: number): { t: BtfType; id: number; size: number; elem?: { t: BtfType; id: number; size: number }; nelems: number } | undefined {
  const r = skipMods(btf, id);
  try {
    if (r.t.kind === BTF_KIND.ARRAY) {
      let nelems = 1, e = r;
      while (e.t.kind === BTF_KIND.ARRAY) { nelems *= e.t.array!.nelems; e = skipMods(btf, e.t.array!.type); }
      const esize = btf.resolveSize(e.id);
      return { t: r.t, id: r.id, size: esize * nelems, elem: { t: e.t, id: e.id, size: esize }, nelems };
    }
    return { t: r.t, id: r.id, size: btf.resolveSize(r.id), nelems: 1 };
  } catch { return undefined; }
}

function structWalk(env: VerifierEnv, btf: Btf, t: BtfType, off: number, size: number): Walk {
  for (;;) {
    const tname = t.name;
    if (!isStruct(t)) {
      env.verbose(`Type '${tname}' is not a struct\n`);
      return { kind: 'err', errno: -EINVAL };
    }
    if (off + size > t.sizeOrType) {
      env.verbose(`access beyond struct ${tname} at off ${off} size ${size}\n`);
      return { kind: 'err', errno: -EACCES };
    }
    let next: BtfType | undefined;
    for (const m of t.members ?? []) {
      const moff = Math.floor(m.offset / 8);
      if (off + size <= moff) break;
      if (m.bitfieldSize) {
        const endBit = m.offset + m.bitfieldSize;
        if (off <= moff && Math.ceil(endBit / 8) <= off + size) return { kind: 'scalar' };
        continue;
      }
      if (off < moff) break;
      const mt = resolveMember(btf, m.type);
      if (!mt) {
        env.verbose(`field ${m.name} doesn't have size\n`);
        return { kind: 'err', errno: -EFAULT };
      }
      let mEnd = moff + mt.size;
      if (off >= mEnd) continue;
      let mtype = mt.t, mid = mt.id, msize = mt.size, mstart = moff;
      if (mt.elem) {
        const idx = Math.floor((off - moff) / mt.elem.size);
        mstart = moff + idx * mt.elem.size;
        mtype = mt.elem.t; mid = mt.elem.id; msize = mt.elem.size;
        if (!isStruct(mtype)) mEnd = moff + mt.size; // an int array is scratch space up to its end
        else mEnd = mstart + msize;
      }
      if (isStruct(mtype)) {
        if (off === mstart) return { kind: 'struct', id: mid };
        off -= mstart;
        next = mtype;
        break;
      }
      if (mtype.kind === BTF_KIND.PTR) {
        if (msize !== size || off !== mstart) {
          env.verbose(`cannot access ptr member ${m.name} with moff ${mstart} in struct ${tname} with off ${off} size ${size}\n`);
          return { kind: 'err', errno: -EACCES };
        }
        const target = skipMods(btf, mtype.sizeOrType);
        if (mtype.sizeOrType !== 0 && isStruct(target.t)) return { kind: 'ptr', id: target.id };
      }
      if (off + size > mEnd) {
        env.verbose(`access beyond the end of member ${m.name} (mend:${mEnd}) in struct ${tname} with off ${off} size ${size}\n`);
        return { kind: 'err', errno: -EACCES };
      }
      return { kind: 'scalar' };
    }
    if (!next) {
      env.verbose(`struct ${tname} doesn't have field at offset ${off}\n`);
      return { kind: 'err', errno: -EINVAL };
    }
    t = next;
  }
}

/**
 * v5.5's btf_struct_access (9e15db66136a, "bpf: Implement accurate raw_tp context access via
 * BTF"): bitfields and arrays are skipped, a nested struct is entered, and the load must be the
 * member's whole size ("cannot access %d bytes in struct %s field %s that has size %d"); there is
 * no bound on the offset inside the member. 5.6's narrow/array support (the walker above)
 * replaced it.
 */
function structWalkV55(env: VerifierEnv, btf: Btf, t: BtfType, off: number, size: number): Walk {
  const tname = t.name;
  if (!isStruct(t)) {
    env.verbose(`Type '${tname}' is not a struct`); // (sic: no newline in v5.5)
    return { kind: 'err', errno: -EINVAL };
  }
  for (const m of t.members ?? []) {
    if (m.bitfieldSize) continue; // "bitfields are not supported yet"
    const moff = Math.floor(m.offset / 8);
    if (off + size <= moff) break;
    const mt = skipMods(btf, m.type);
    if (mt.t.kind === BTF_KIND.ARRAY) continue; // "array deref is not supported yet"
    let msize: number;
    if (mt.t.kind === BTF_KIND.PTR) msize = 8;
    else {
      const sized = mt.t.kind === BTF_KIND.INT || mt.t.kind === BTF_KIND.ENUM || isStruct(mt.t);
      if (!sized) {
        env.verbose(`field ${m.name} doesn't have size\n`);
        return { kind: 'err', errno: -EFAULT };
      }
      msize = mt.t.sizeOrType;
    }
    if (off >= moff + msize) continue;
    if (isStruct(mt.t)) return off === moff ? { kind: 'struct', id: mt.id } : structWalkV55(env, btf, mt.t, off - moff, size);
    if (msize !== size) {
      env.verbose(`cannot access ${size} bytes in struct ${tname} field ${m.name} that has size ${msize}\n`);
      return { kind: 'err', errno: -EACCES };
    }
    if (mt.t.kind === BTF_KIND.PTR) {
      const target = skipMods(btf, mt.t.sizeOrType);
      if (mt.t.sizeOrType !== 0 && isStruct(target.t)) return { kind: 'ptr', id: target.id };
    }
    return { kind: 'scalar' };
  }
  env.verbose(`struct ${tname} doesn't have field at offset ${off}\n`);
  return { kind: 'err', errno: -EINVAL };
}

/** btf_struct_access: SCALAR_VALUE, or PTR_TO_BTF_ID with the pointed-to struct's id. */
function btfStructAccess(env: VerifierEnv, btf: Btf, t: BtfType, off: number, size: number): { type: 'scalar' } | { type: 'ptr'; id: number } | number {
  const walk = env.profile.verifier.btfNarrowAccess ? structWalk : structWalkV55;
  for (;;) {
    const w = walk(env, btf, t, off, size);
    if (w.kind === 'ptr') return { type: 'ptr', id: w.id };
    if (w.kind === 'scalar') return { type: 'scalar' };
    if (w.kind === 'err') return w.errno;
    t = btf.type(w.id);
    off = 0;
  }
}

/** The BTF typed pointers refer to: the attach target's (a module's includes vmlinux's) or vmlinux's. */
export const typeBtf = (env: VerifierEnv): Btf | undefined => env.attach?.ptrBtf ?? env.attach?.btf ?? env.btf;

/** check_ptr_to_btf_access */
export function checkPtrToBtfAccess(env: VerifierEnv, regs: RegState[], regno: number, off: number, size: number, t: number, valueRegno: number): number {
  const reg = regs[regno]!;
  const btf = typeBtf(env);
  if (!btf) {
    env.verbose(`R${regno} invalid mem access 'ptr_'\n`);
    return -EACCES;
  }
  const st = btf.type(reg.btfId);
  const tname = st.name;
  if (off < 0) {
    env.verbose(`R${regno} is ptr_${tname} invalid negative access: off=${off}\n`);
    return -EACCES;
  }
  if (!tnumIsConst(reg.varOff) || reg.varOff.value) {
    env.verbose(`R${regno} is ptr_${tname} invalid variable offset: off=${off}, var_off=${tnumStr(reg.varOff)}\n`);
    return -EACCES;
  }
  if (t !== BPF_READ) {
    env.verbose('only read is supported\n');
    return -EACCES;
  }
  const r = btfStructAccess(env, btf, st, off, size);
  if (typeof r === 'number') return r;
  env.aux[env.insnIdx]!.probeMem = true;
  if (valueRegno >= 0) {
    const dst = regs[valueRegno]!;
    if (r.type === 'scalar') markUnknown(dst);
    else {
      markKnownZero(dst);
      dst.type = RegType.PTR_TO_BTF_ID;
      dst.btfId = r.id;
    }
  }
  return 0;
}
