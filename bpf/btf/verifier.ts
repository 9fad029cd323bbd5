/**
 * @fileoverview validateBtf(): the kernel's btf_parse() — header, string section, each kind's
 * check_meta (bpf/btf/kinds.ts), then btf_check_all_types(): every type that refers to
 * others is resolved by a depth-first walk (btf_resolve()) that proves the ids exist, finds
 * loops (a struct embedding itself, a pointer/modifier cycle) and sizes modifiers and
 * arrays; struct members are checked against their types (check_member), FUNC against its
 * FUNC_PROTO, FUNC_PROTO's return and arguments.
 *
 * The walk keeps btf.c's rules: a "sink" ends the walk for a resolve mode (a pointer only
 * needs its target to exist, so structs/arrays are sinks below a pointer; a struct needs
 * its members' sizes, so pointers are sinks below a struct), a vertex pushed twice is a loop
 * (-EEXIST), more than 32 deep is -E2BIG.
 */
import {
  BTF_KIND, BTF_MAX_TYPE, hasSize, isModifier, type BtfMember, type BtfRealKind, type BtfType,
} from './uapi.ts';
import type { ErrorArgs, BtfErrorCode } from './errors.ts';
import { Btf } from './btf.ts';
import { failBasic, failMember, failType, failVsi, validIdentifier } from './kinds.ts';
import { MAX_RESOLVE_DEPTH } from './layout.ts';

export interface ValidateOptions {
  /** The base BTF of split BTF; its ids and strings come first. */
  base?: Btf;
}

/**
 * Parses BTF with every check of the kernel's btf_parse() (as BPF_BTF_LOAD or a module's BTF
 * on top of vmlinux's); a BtfError carries the verifier's message, the code and the errno.
 */
export function validateBtf(data: Uint8Array, opts: ValidateOptions = {}): Btf {
  if (opts.base) resolvedOf(opts.base);
  const btf = new Btf(data, { base: opts.base, checkMeta: true });
  checkAllTypes(btf);
  return btf;
}

const NOT_VISITED = 0, VISITED = 1, RESOLVED = 2;
const RESOLVE_TBD = 0, RESOLVE_PTR = 1, RESOLVE_STRUCT_OR_ARRAY = 2;
const U32_MAX = 0xffffffff;

/** Per-id results of the walk (btf->resolved_ids/resolved_sizes), for this BTF's own ids. */
interface Resolved { start: number; ids: Uint32Array; sizes: Uint32Array }
const resolvedTables = new WeakMap<Btf, Resolved>();

/** A base's resolved tables; a base that was not validated is walked now (vmlinux BTF always is). */
function resolvedOf(btf: Btf): Resolved {
  const r = resolvedTables.get(btf);
  if (r) return r;
  if (btf.base) resolvedOf(btf.base);
  checkAllTypes(btf);
  return resolvedTables.get(btf)!;
}

interface Vertex { t: BtfType; id: number; nextMember: number }
type PushErr = 'E2BIG' | 'EEXIST' | undefined;

const roundupBytes = (bits: number): number => Math.ceil(bits / 8);
const isPow2 = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;
const isStruct = (t: BtfType): boolean => t.kind === BTF_KIND.STRUCT || t.kind === BTF_KIND.UNION;
const isVoid = (t: BtfType): boolean => t.kind === 0;
/** btf_type_nosize_or_null(). */
const nosizeOrNull = (t: BtfType | undefined): boolean =>
  !t || t.kind === 0 || t.kind === BTF_KIND.FWD || t.kind === BTF_KIND.FUNC || t.kind === BTF_KIND.FUNC_PROTO ||
  t.kind === BTF_KIND.DECL_TAG;
/** btf_type_is_resolve_source_only(): may refer to types, may not be referred to. */
const sourceOnly = (t: BtfType): boolean => t.kind === BTF_KIND.VAR || t.kind === BTF_KIND.DECL_TAG || t.kind === BTF_KIND.DATASEC;
/** btf_type_needs_resolve(). */
const needsResolve = (t: BtfType): boolean =>
  isModifier(t.kind) || t.kind === BTF_KIND.PTR || isStruct(t) || t.kind === BTF_KIND.ARRAY || t.kind === BTF_KIND.VAR ||
  t.kind === BTF_KIND.FUNC || t.kind === BTF_KIND.DECL_TAG || t.kind === BTF_KIND.DATASEC;
/** btf_type_int_is_regular(): a whole u8/u16/u32/u64/u128, no bit offset. */
const intIsRegular = (t: BtfType): boolean => {
  const bytes = roundupBytes(t.intBits!);
  return (t.intBits! & 7) === 0 && t.intOffset === 0 && bytes <= 16 && isPow2(bytes);
};

/** struct btf_verifier_env for the second pass. */
class Env {
  readonly btf: Btf;
  readonly start: number;
  readonly visit: Uint8Array;
  readonly ids: Uint32Array;
  readonly sizes: Uint32Array;
  readonly stack: Vertex[] = [];
  mode = RESOLVE_TBD;

  constructor(btf: Btf) {
    this.btf = btf;
    // btf->start_id: 0 for base BTF (void has a slot, never visited), the base's count for split BTF.
    this.start = btf.base ? btf.startId : 0;
    const n = btf.types.length - this.start;
    this.visit = new Uint8Array(n);
    this.ids = new Uint32Array(n);
    this.sizes = new Uint32Array(n);
  }

  byId(id: number): BtfType | undefined { return id <= BTF_MAX_TYPE ? this.btf.types[id] : undefined; }

  /** env_type_is_resolve_sink(). */
  isSink(next: BtfType): boolean {
    switch (this.mode) {
      case RESOLVE_TBD: return !needsResolve(next);
      case RESOLVE_PTR: return !isModifier(next.kind) && next.kind !== BTF_KIND.PTR;
      default: return !isModifier(next.kind) && next.kind !== BTF_KIND.ARRAY && !isStruct(next);
    }
  }

  /** env_type_is_resolved(): the base's types always are. */
  isResolved(id: number): boolean { return id < this.start || this.visit[id - this.start] === RESOLVED; }

  push(t: BtfType, id: number): PushErr {
    if (this.stack.length === MAX_RESOLVE_DEPTH) return 'E2BIG';
    if (id < this.start || this.visit[id - this.start] !== NOT_VISITED) return 'EEXIST';
    this.visit[id - this.start] = VISITED;
    this.stack.push({ t, id, nextMember: 0 });
    if (this.mode === RESOLVE_TBD) {
      if (t.kind === BTF_KIND.PTR) this.mode = RESOLVE_PTR;
      else if (isStruct(t) || t.kind === BTF_KIND.ARRAY) this.mode = RESOLVE_STRUCT_OR_ARRAY;
    }
    return undefined;
  }

  popResolved(resolvedId: number, size: number): void {
    const v = this.stack.pop()!;
    const i = v.id - this.start;
    this.ids[i] = resolvedId;
    this.sizes[i] = size;
    this.visit[i] = RESOLVED;
  }

  resolvedId(id: number): number {
    if (id < this.start) { const b = resolvedOf(this.btf.base!); return b.ids[id - b.start] ?? 0; }
    return this.ids[id - this.start]!;
  }

  resolvedSize(id: number): number {
    if (id < this.start) { const b = resolvedOf(this.btf.base!); return b.sizes[id - b.start] ?? 0; }
    return this.sizes[id - this.start]!;
  }

  /** btf_type_id_size(): the sized type behind `id` (modifiers followed) and its size. */
  idSize(id: number): { id: number; t: BtfType; size: number } | undefined {
    let t = this.byId(id);
    if (!t || nosizeOrNull(t)) return undefined;
    const sized = (x: BtfType, xid: number): number | undefined =>
      hasSize(x.kind) ? x.sizeOrType : x.kind === BTF_KIND.ARRAY ? this.resolvedSize(xid) : x.kind === BTF_KIND.PTR ? 8 : undefined;
    let size = sized(t, id);
    if (size === undefined) {
      id = this.resolvedId(id);
      t = this.byId(id);
      if (!t || nosizeOrNull(t)) return undefined;
      size = sized(t, id);
      if (size === undefined) return undefined;
    }
    return { id, t, size };
  }
}

// --- resolve, per kind --------------------------------------------------------------------

interface ResolveOps {
  resolve(env: Env, v: Vertex): PushErr;
  checkMember(env: Env, s: BtfType, m: BtfMember, mt: BtfType): void;
  checkKflagMember(env: Env, s: BtfType, m: BtfMember, mt: BtfType): void;
}

function mfail<C extends BtfErrorCode>(env: Env, s: BtfType, m: BtfMember, code: C, ...args: ErrorArgs<C>): never {
  return failMember(env.btf, s, m, code, ...args);
}

/** The pointer/var case of a modifier resolved (in STRUCT_OR_ARRAY mode) to a pointer: go on past it. */
function pushPastModifier(env: Env, next: BtfType, nextId: number): PushErr | 'continue' {
  if (!isModifier(next.kind)) return 'continue';
  const rid = env.resolvedId(nextId);
  const rt = env.byId(rid);
  if (rt && rt.kind === BTF_KIND.PTR && !env.isSink(rt) && !env.isResolved(rid)) return env.push(rt, rid);
  return 'continue';
}

/** The target of a modifier or pointer, which may be void, a fwd or a function prototype. */
function resolveRef(env: Env, v: Vertex, isPtr: boolean): PushErr {
  const { btf } = env, t = v.t;
  let nextId = t.sizeOrType, next = env.byId(nextId);
  if (!next || sourceOnly(next)) failType(btf, t, 'INVALID_TYPE_ID');
  if (!env.isSink(next) && !env.isResolved(nextId)) return env.push(next, nextId);
  if (isPtr) {
    const r = pushPastModifier(env, next, nextId);
    if (r !== 'continue') return r;
  }
  const sized = env.idSize(nextId);
  if (sized) nextId = sized.id;
  else {
    if (env.isResolved(nextId)) { nextId = env.resolvedId(nextId); next = env.byId(nextId); }
    // "typedef void new_void", "const void", a pointer to a fwd or a function.
    if (!next || !(isVoid(next) || next.kind === BTF_KIND.FWD || next.kind === BTF_KIND.FUNC_PROTO)) failType(btf, t, 'INVALID_TYPE_ID');
  }
  env.popResolved(nextId, 0);
  return undefined;
}

const unsupported: ResolveOps = {
  resolve: (env, v) => failBasic(env.btf, v.t, 'UNSUPPORTED_RESOLVE'),
  checkMember: (env, s) => failBasic(env.btf, s, 'UNSUPPORTED_CHECK_MEMBER'),
  checkKflagMember: (env, s) => failBasic(env.btf, s, 'UNSUPPORTED_CHECK_KFLAG_MEMBER'),
};

/** btf_generic_check_kflag_member(): no bitfield, then the plain check. */
function genericKflag(env: Env, s: BtfType, m: BtfMember, mt: BtfType): void {
  if (m.bitfieldSize) mfail(env, s, m, 'INVALID_MEMBER_BITFIELD_SIZE');
  RESOLVE_OPS[mt.kind as BtfRealKind].checkMember(env, s, m, mt);
}

/** A byte-aligned member of `size` bytes inside the struct. */
function checkByteMember(env: Env, s: BtfType, m: BtfMember, size: number): void {
  if (m.offset & 7) mfail(env, s, m, 'MEMBER_NOT_BYTE_ALIGNED');
  if (((s.sizeOrType - (m.offset >>> 3)) >>> 0) < size) mfail(env, s, m, 'MEMBER_EXCEEDS_STRUCT_SIZE');
}

function checkCopyBits(env: Env, s: BtfType, m: BtfMember, bitsOff: number, nrBits: number): void {
  const bytesOffset = Math.floor(bitsOff / 8);
  const nrCopyBits = nrBits + (bitsOff & 7);
  if (nrCopyBits > 128) mfail(env, s, m, 'NR_COPY_BITS_EXCEEDS_128');
  if (s.sizeOrType < bytesOffset || s.sizeOrType - bytesOffset < roundupBytes(nrCopyBits)) mfail(env, s, m, 'MEMBER_EXCEEDS_STRUCT_SIZE');
}

const intResolve: ResolveOps = {
  ...unsupported,
  checkMember(env, s, m, mt) {
    if (U32_MAX - m.offset < mt.intOffset!) mfail(env, s, m, 'BITS_OFFSET_EXCEEDS_U32');
    checkCopyBits(env, s, m, m.offset + mt.intOffset!, mt.intBits!);
  },
  checkKflagMember(env, s, m, mt) {
    // A kind_flag int member needs a regular int; a non-bitfield one a byte offset.
    if (!intIsRegular(mt)) mfail(env, s, m, 'INVALID_MEMBER_BASE_TYPE');
    let nrBits = m.bitfieldSize;
    if (!nrBits) {
      if (m.offset & 7) mfail(env, s, m, 'INVALID_MEMBER_OFFSET');
      nrBits = mt.intBits!;
    } else if (nrBits > mt.intBits!) mfail(env, s, m, 'INVALID_MEMBER_BITFIELD_SIZE');
    checkCopyBits(env, s, m, m.offset, nrBits);
  },
};

/** A modifier member is checked as the type it resolves to (the member's type id replaced). */
function modifierMember(kflag: boolean) {
  return (env: Env, s: BtfType, m: BtfMember): void => {
    const r = env.idSize(m.type);
    if (!r) mfail(env, s, m, 'INVALID_MEMBER');
    const rm = { ...m, type: r.id };
    const ops = RESOLVE_OPS[r.t.kind as BtfRealKind];
    if (kflag) ops.checkKflagMember(env, s, rm, r.t); else ops.checkMember(env, s, rm, r.t);
  };
}

const modifierResolve: ResolveOps = {
  resolve: (env, v) => resolveRef(env, v, false),
  checkMember: modifierMember(false),
  checkKflagMember: modifierMember(true),
};

const ptrResolve: ResolveOps = {
  resolve: (env, v) => resolveRef(env, v, true),
  checkMember: (env, s, m) => checkByteMember(env, s, m, 8),
  checkKflagMember: genericKflag,
};

const arrayResolve: ResolveOps = {
  resolve(env, v) {
    const { btf } = env, t = v.t, a = t.array!;
    const index = env.byId(a.indexType);
    if (nosizeOrNull(index) || sourceOnly(index!)) failType(btf, t, 'INVALID_INDEX');
    if (!env.isSink(index!) && !env.isResolved(a.indexType)) return env.push(index!, a.indexType);
    const ix = env.idSize(a.indexType);
    if (!ix || ix.t.kind !== BTF_KIND.INT || !intIsRegular(ix.t)) failType(btf, t, 'INVALID_INDEX');
    const elem = env.byId(a.type);
    if (nosizeOrNull(elem) || sourceOnly(elem!)) failType(btf, t, 'INVALID_ELEM');
    if (!env.isSink(elem!) && !env.isResolved(a.type)) return env.push(elem!, a.type);
    const el = env.idSize(a.type);
    if (!el) failType(btf, t, 'INVALID_ELEM');
    if (el.t.kind === BTF_KIND.INT && !intIsRegular(el.t)) failType(btf, t, 'INVALID_ARRAY_OF_INT');
    if (a.nelems && el.size > Math.floor(U32_MAX / a.nelems)) failType(btf, t, 'ARRAY_SIZE_OVERFLOW');
    env.popResolved(el.id, el.size * a.nelems);
    return undefined;
  },
  checkMember(env, s, m) { checkByteMember(env, s, m, env.idSize(m.type)?.size ?? 0); },
  checkKflagMember: genericKflag,
};

function checkMember(env: Env, s: BtfType, m: BtfMember, mt: BtfType): void {
  const ops = RESOLVE_OPS[mt.kind as BtfRealKind];
  if (s.kindFlag) ops.checkKflagMember(env, s, m, mt); else ops.checkMember(env, s, m, mt);
}

const structResolve: ResolveOps = {
  resolve(env, v) {
    const { btf } = env, members = v.t.members!;
    // Back from resolving the last member's type: check that member now.
    if (v.nextMember) {
      const last = members[v.nextMember - 1]!;
      checkMember(env, v.t, last, env.byId(last.type)!);
    }
    for (let i = v.nextMember; i < members.length; i++) {
      const m = members[i]!, mt = env.byId(m.type);
      if (nosizeOrNull(mt) || sourceOnly(mt!)) failMember(btf, v.t, m, 'INVALID_MEMBER');
      if (!env.isSink(mt!) && !env.isResolved(m.type)) {
        v.nextMember = i + 1;
        return env.push(mt!, m.type);
      }
      checkMember(env, v.t, m, mt!);
    }
    env.popResolved(0, 0);
    return undefined;
  },
  checkMember: (env, s, m, mt) => checkByteMember(env, s, m, mt.sizeOrType),
  checkKflagMember: genericKflag,
};

const enumResolve: ResolveOps = {
  ...unsupported,
  checkMember: (env, s, m, mt) => checkByteMember(env, s, m, mt.sizeOrType),
  checkKflagMember(env, s, m) {
    let nrBits = m.bitfieldSize;
    if (!nrBits) {
      if (m.offset & 7) mfail(env, s, m, 'MEMBER_NOT_BYTE_ALIGNED');
      nrBits = 32; // sizeof(int) * BITS_PER_BYTE, whatever the enum's size
    } else if (nrBits > 32) mfail(env, s, m, 'INVALID_MEMBER_BITFIELD_SIZE');
    if (s.sizeOrType < roundupBytes(m.offset + nrBits)) mfail(env, s, m, 'MEMBER_EXCEEDS_STRUCT_SIZE');
  },
};

const floatResolve: ResolveOps = {
  ...unsupported,
  checkMember(env, s, m, mt) {
    // Only the reasonable minimum alignment: min(pointer size, float size).
    const alignBits = Math.min(8, mt.sizeOrType) * 8;
    if (m.offset % alignBits) mfail(env, s, m, 'MEMBER_NOT_PROPERLY_ALIGNED');
    if (Math.floor(m.offset / 8) + mt.sizeOrType > s.sizeOrType) mfail(env, s, m, 'MEMBER_EXCEEDS_STRUCT_SIZE');
  },
  checkKflagMember: genericKflag,
};

const varResolve: ResolveOps = {
  ...unsupported,
  resolve(env, v) {
    const { btf } = env, t = v.t;
    const nextId = t.sizeOrType, next = env.byId(nextId);
    if (!next || sourceOnly(next)) failType(btf, t, 'INVALID_TYPE_ID');
    if (!env.isSink(next) && !env.isResolved(nextId)) return env.push(next, nextId);
    const r = pushPastModifier(env, next, nextId);
    if (r !== 'continue') return r;
    // A variable must have a size: no fwd, no void.
    const sized = env.idSize(nextId);
    if (!sized) failType(btf, t, 'INVALID_TYPE_ID');
    env.popResolved(sized.id, 0);
    return undefined;
  },
};

const datasecResolve: ResolveOps = {
  ...unsupported,
  resolve(env, v) {
    const { btf } = env, secinfos = v.t.secinfos!;
    env.mode = RESOLVE_TBD;
    for (let i = v.nextMember; i < secinfos.length; i++) {
      const vsi = secinfos[i]!, vt = env.byId(vsi.type);
      if (!vt || vt.kind !== BTF_KIND.VAR) failVsi(btf, v.t, vsi, 'NOT_A_VAR');
      if (!env.isSink(vt) && !env.isResolved(vsi.type)) {
        v.nextMember = i + 1;
        return env.push(vt, vsi.type);
      }
      const sized = env.idSize(vt.sizeOrType);
      if (!sized) failVsi(btf, v.t, vsi, 'INVALID_TYPE');
      if (vsi.size < sized.size) failVsi(btf, v.t, vsi, 'INVALID_SIZE');
    }
    env.popResolved(0, 0);
    return undefined;
  },
};

/** btf_func_check(): a FUNC names a FUNC_PROTO whose arguments all have names. */
function funcCheck(env: Env, t: BtfType): void {
  const proto = env.byId(t.sizeOrType);
  if (!proto || proto.kind !== BTF_KIND.FUNC_PROTO) failType(env.btf, t, 'INVALID_TYPE_ID');
  proto.params!.forEach((p, i) => { if (!p.nameOff && p.type) failType(env.btf, t, 'INVALID_ARG', i + 1); });
}

const funcResolve: ResolveOps = {
  ...unsupported,
  resolve(env, v) {
    funcCheck(env, v.t);
    env.popResolved(v.t.sizeOrType, 0);
    return undefined;
  },
};

const declTagResolve: ResolveOps = {
  ...unsupported,
  resolve(env, v) {
    const { btf } = env, t = v.t;
    const nextId = t.sizeOrType;
    let next = env.byId(nextId);
    // A tag goes on a function, a struct/union, a variable or a typedef.
    if (!next || !(next.kind === BTF_KIND.FUNC || isStruct(next) || next.kind === BTF_KIND.VAR || next.kind === BTF_KIND.TYPEDEF)) {
      failType(btf, t, 'INVALID_TYPE_ID');
    }
    if (!env.isSink(next) && !env.isResolved(nextId)) return env.push(next, nextId);
    const idx = t.componentIdx!;
    if (idx !== -1) {
      if (next.kind === BTF_KIND.VAR || next.kind === BTF_KIND.TYPEDEF) failType(btf, t, 'INVALID_COMPONENT_IDX');
      // A member of the struct, or an argument of the function.
      if (!isStruct(next)) next = env.byId(next.sizeOrType);
      if (idx >= (next?.vlen ?? 0)) failType(btf, t, 'INVALID_COMPONENT_IDX');
    }
    env.popResolved(nextId, 0);
    return undefined;
  },
};

/** The resolve/check_member half of kind_ops[]. */
const RESOLVE_OPS = {
  [BTF_KIND.INT]: intResolve,
  [BTF_KIND.PTR]: ptrResolve,
  [BTF_KIND.ARRAY]: arrayResolve,
  [BTF_KIND.STRUCT]: structResolve,
  [BTF_KIND.UNION]: structResolve,
  [BTF_KIND.ENUM]: enumResolve,
  [BTF_KIND.FWD]: unsupported,
  [BTF_KIND.TYPEDEF]: modifierResolve,
  [BTF_KIND.VOLATILE]: modifierResolve,
  [BTF_KIND.CONST]: modifierResolve,
  [BTF_KIND.RESTRICT]: modifierResolve,
  [BTF_KIND.FUNC]: funcResolve,
  [BTF_KIND.FUNC_PROTO]: unsupported,
  [BTF_KIND.VAR]: varResolve,
  [BTF_KIND.DATASEC]: datasecResolve,
  [BTF_KIND.FLOAT]: floatResolve,
  [BTF_KIND.DECL_TAG]: declTagResolve,
  [BTF_KIND.TYPE_TAG]: modifierResolve,
  [BTF_KIND.ENUM64]: enumResolve,
} satisfies Record<BtfRealKind, ResolveOps>;

// --- the walk -----------------------------------------------------------------------------

/** btf_resolve_valid(): the final sanity check of a resolved type. */
function resolveValid(env: Env, t: BtfType, id: number): boolean {
  if (!env.isResolved(id)) return false;
  if (isStruct(t) || t.kind === BTF_KIND.DATASEC) return !env.resolvedId(id) && !env.resolvedSize(id);
  if (t.kind === BTF_KIND.DECL_TAG || t.kind === BTF_KIND.FUNC) return !!env.resolvedId(id) && !env.resolvedSize(id);
  if (isModifier(t.kind) || t.kind === BTF_KIND.PTR || t.kind === BTF_KIND.VAR) {
    const r = env.byId(env.resolvedId(id));
    return !!r && !isModifier(r.kind) && r.kind !== BTF_KIND.VAR && r.kind !== BTF_KIND.DATASEC;
  }
  if (t.kind === BTF_KIND.ARRAY) {
    const el = env.idSize(t.array!.type);
    return !!el && !isModifier(el.t.kind) && t.array!.nelems * el.size === env.resolvedSize(id);
  }
  return false;
}

/** btf_resolve(): walks from `t` until every vertex it reached is resolved. */
function resolve(env: Env, t: BtfType, id: number): void {
  env.mode = RESOLVE_TBD;
  env.push(t, id);
  let err: PushErr;
  for (let v = env.stack.at(-1); !err && v; v = env.stack.at(-1)) err = RESOLVE_OPS[v.t.kind as BtfRealKind].resolve(env, v);
  if (err === 'E2BIG') failType(env.btf, t, 'MAX_RESOLVE_DEPTH', MAX_RESOLVE_DEPTH);
  if (err === 'EEXIST') failType(env.btf, t, 'LOOP_DETECTED');
  if (!resolveValid(env, t, id)) failType(env.btf, t, 'INVALID_RESOLVE_STATE');
}

/** btf_func_proto_check(): a sized (or void) return, named-or-anonymous sized arguments, a vararg only last. */
function funcProtoCheck(env: Env, t: BtfType): void {
  const { btf } = env;
  if (t.sizeOrType) {
    const retId = t.sizeOrType, ret = env.byId(retId);
    if (!ret || sourceOnly(ret)) failType(btf, t, 'INVALID_RETURN_TYPE');
    if (needsResolve(ret) && !env.isResolved(retId)) resolve(env, ret, retId);
    if (!env.idSize(retId)) failType(btf, t, 'INVALID_RETURN_TYPE');
  }
  const params = t.params!;
  let n = params.length;
  if (!n) return;
  // The last argument may be void: the vararg, anonymous.
  if (!params[n - 1]!.type) {
    if (params[n - 1]!.nameOff) failType(btf, t, 'INVALID_ARG', n);
    n--;
  }
  for (let i = 0; i < n; i++) {
    const p = params[i]!, at = env.byId(p.type);
    if (!at || sourceOnly(at)) failType(btf, t, 'INVALID_ARG', i + 1);
    if (p.nameOff && (!btf.nameOffsetValid(p.nameOff) || !validIdentifier(btf, p.nameOff))) failType(btf, t, 'INVALID_ARG', i + 1);
    if (needsResolve(at) && !env.isResolved(p.type)) resolve(env, at, p.type);
    if (!env.idSize(p.type)) failType(btf, t, 'INVALID_ARG', i + 1);
  }
}

/** btf_check_all_types(). */
function checkAllTypes(btf: Btf): void {
  const env = new Env(btf);
  for (let id = btf.startId; id < btf.types.length; id++) {
    const t = btf.types[id]!;
    if (needsResolve(t) && !env.isResolved(id)) resolve(env, t, id);
    if (t.kind === BTF_KIND.FUNC_PROTO) funcProtoCheck(env, t);
  }
  resolvedTables.set(btf, { start: env.start, ids: env.ids, sizes: env.sizes });
}
