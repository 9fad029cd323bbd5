/**
 * @fileoverview The verifier's rules for what a fentry/fexit program reads (v5.5):
 *  - the context (tracing_prog_is_valid_access, btf_ctx_access): an array of u64 arguments, read
 *    only, at offsets that are multiples of 8 (and of the load size), of argument i < nr_args —
 *    or, for fexit, i == nr_args, the return value; an argument must be an int, a pointer to
 *    void or a pointer to a struct;
 *  - a struct pointer read from the context is PTR_TO_BTF_ID of that kernel struct, and a read
 *    through it must hit a member with the member's own size (btf_struct_access): no casting
 *    one struct to another; a pointer member gives the next PTR_TO_BTF_ID, anything else a
 *    scalar; writes are refused ("only read is supported");
 *  - a scalar (an int argument, a pointer to void, anything in the conservative model) cannot
 *    be dereferenced: "R%d invalid mem access 'inv'" — bpf_probe_read_kernel is the way.
 *
 * For a program attached to another BPF program (bpf2bpf), the target's BTF describes the
 * arguments, and a pointer to the target's uAPI context (`struct __sk_buff *`, `struct xdp_md *`)
 * becomes a pointer to the kernel's (`struct sk_buff`, `struct xdp_buff`), which is what the
 * target really receives (btf_translate_to_vmlinux). When the target function's BTF is
 * unreliable (func_info.ts), the model is five u64 arguments plus the return value, all scalars.
 *
 * Which registers hold what is tracked along every path (reg_track.ts): copies, spills,
 * bpf-to-bpf calls.
 */
import { BTF_KIND, btfKindStr } from './btf/uapi.ts';
import type { Btf } from './btf/btf.ts';
import { BPF_CLASS, BPF_LDX, BPF_ST, BPF_STX, BPF_SIZE, SIZE_BYTES } from './isa/opcodes.ts';
import { isLdImm64, type Insn } from './isa/insn.ts';
import { BPF_TRACE_FEXIT } from './prog_types.ts';
import { MAX_BPF_FUNC_ARGS } from './btf_func_model.ts';
import { RK, btfPtr, btfPtrId, isBtfPtr, regTypeStr, trackRegs } from './reg_track.ts';
import { CTX_TYPES } from './ctx_convert.ts';

const EACCES = 13, EINVAL = 22, EFAULT = 14;
/** The conservative model's argument count (MAX_BPF_FUNC_REG_ARGS later). */
export const CONSERVATIVE_NR_ARGS = 5;

export interface CtxViolation { errno: number; log: string[] }

export interface TracingCtxOptions {
  /** The kernel's BTF, where every PTR_TO_BTF_ID points (default: `btf`, a vmlinux target). */
  vmlinux?: Btf;
  /** bpf2bpf: the target program's type, whose uAPI context pointers become the kernel's. */
  tgtProgType?: number;
  /** bpf2bpf on an unreliable function: five u64 arguments (and the return value), scalars. */
  conservative?: boolean;
}

type Access = { kind: number } | { log: string[]; errno: number };

/** btf_ctx_access: the kind argument `off/8` has, or the kernel's log lines. */
function btfCtxAccess(btf: Btf, funcId: number, off: number, fexit: boolean, opts: TracingCtxOptions): Access {
  const func = btf.type(funcId), tname = func.name;
  const deny = (...log: string[]): Access => ({ errno: EACCES, log });
  if (off % 8) return deny(`func '${tname}' offset ${off} is not multiple of 8`);
  const arg = off / 8;
  if (opts.conservative) {
    if (arg > CONSERVATIVE_NR_ARGS || (arg === CONSERVATIVE_NR_ARGS && !fexit)) return deny(`func '${tname}' doesn't have ${arg + 1}-th argument`);
    return { kind: RK.SCALAR }; // "Default prog with 5 args": no types, no pointer walking
  }
  const proto = btf.type(func.sizeOrType);
  const nrArgs = proto.params?.length ?? 0;
  if (arg > nrArgs || (arg === nrArgs && !fexit)) return deny(`func '${tname}' doesn't have ${arg + 1}-th argument`);
  const typeId = arg === nrArgs ? proto.sizeOrType : proto.params![arg]!.type;
  const t = btf.resolve(typeId);
  if (t.kind === BTF_KIND.INT) return { kind: RK.SCALAR };
  if (t.kind !== BTF_KIND.PTR) return deny(`func '${tname}' arg${arg} '${t.name}' has type ${btfKindStr(t.kind)}. Only pointer access is allowed`);
  if (t.sizeOrType === 0) return { kind: RK.SCALAR }; // a pointer to void is a scalar to the verifier
  const target = btf.resolve(t.sizeOrType);
  if (opts.tgtProgType !== undefined) {
    // btf_translate_to_vmlinux: only the target's context type has a kernel counterpart.
    if (target.kind !== BTF_KIND.STRUCT) return deny('BPF program ctx type is not a struct');
    const ct = CTX_TYPES[opts.tgtProgType];
    const kern = ct && ct.uapi === target.name ? opts.vmlinux?.findByNameKind(ct.kernel, BTF_KIND.STRUCT) : undefined;
    if (!kern) return deny();
    return { kind: btfPtr(kern.id) };
  }
  if (target.kind !== BTF_KIND.STRUCT) return deny(`func '${tname}' arg${arg} type ${btf.typeName(t.sizeOrType)} is not a struct`);
  return { kind: btfPtr(target.id) };
}

/**
 * btf_struct_access: a read of `size` bytes at `off` in the kernel struct `structId`: the
 * member it hits (through nested structs), with the member's size; the kind of what it holds.
 */
export function btfStructAccess(btf: Btf, structId: number, off: number, size: number): Access {
  let t = btf.resolve(structId);
  for (;;) {
    const tname = t.name;
    if (t.kind !== BTF_KIND.STRUCT && t.kind !== BTF_KIND.UNION) return { errno: EINVAL, log: [`Type '${tname}' is not a struct`] };
    let next: typeof t | undefined;
    for (const m of t.members ?? []) {
      if (m.bitfieldSize) continue; // bitfields are not supported yet
      const moff = m.offset / 8;
      if (off + size <= moff) break; // past the access already
      if (off < moff) continue; // in a hole
      let mt = btf.resolve(m.type);
      if (mt.kind === BTF_KIND.ARRAY) continue; // array deref is not supported yet
      const isPtr = mt.kind === BTF_KIND.PTR;
      const hasSize = isPtr || mt.kind === BTF_KIND.INT || mt.kind === BTF_KIND.ENUM || mt.kind === BTF_KIND.ENUM64 ||
        mt.kind === BTF_KIND.STRUCT || mt.kind === BTF_KIND.UNION;
      if (!hasSize) return { errno: EFAULT, log: [`field ${m.name} doesn't have size`] };
      const msize = isPtr ? 8 : mt.sizeOrType;
      if (off >= moff + msize) continue; // no overlap with this member
      if (mt.kind === BTF_KIND.STRUCT || mt.kind === BTF_KIND.UNION) { next = mt; off -= moff; break; }
      if (msize !== size) return { errno: EACCES, log: [`cannot access ${size} bytes in struct ${tname} field ${m.name} that has size ${msize}`] };
      if (isPtr) {
        mt = btf.resolve(mt.sizeOrType);
        if (mt.kind === BTF_KIND.STRUCT) return { kind: btfPtr(mt.id) };
      }
      return { kind: RK.SCALAR };
    }
    if (!next) return { errno: EINVAL, log: [`struct ${tname} doesn't have field at offset ${off}`] };
    t = next;
  }
}

/**
 * Checks every memory access of a tracing program attached to FUNC `funcId` of `btf`;
 * undefined when all are allowed, else the errno and the log lines of the first refusal.
 */
export function checkTracingCtx(insns: readonly Insn[], btf: Btf, funcId: number, expectedAttachType: number, opts: TracingCtxOptions = {}): CtxViolation | undefined {
  const fexit = expectedAttachType === BPF_TRACE_FEXIT;
  const vmlinux = opts.vmlinux ?? btf;
  const o = { ...opts, vmlinux };
  const ctxArg = (off: number, size: number): Access => {
    if (off < 0 || off >= 8 * MAX_BPF_FUNC_ARGS || off % size) return { errno: EACCES, log: [] };
    return btfCtxAccess(btf, funcId, off, fexit, o);
  };
  const states = trackRegs(insns, {
    load: (base, off, size) => {
      const r = base === RK.CTX ? ctxArg(off, size) : btfStructAccess(vmlinux, btfPtrId(base), off, size);
      return 'kind' in r ? r.kind : RK.UNKNOWN;
    },
  });
  for (let pc = 0; pc < insns.length; pc++) {
    const i = insns[pc]!, st = states[pc];
    if (isLdImm64(i)) { pc++; continue; }
    if (!st) continue;
    const cls = BPF_CLASS(i.code);
    if (cls !== BPF_LDX && cls !== BPF_ST && cls !== BPF_STX) continue;
    const reg = cls === BPF_LDX ? i.src : i.dst;
    const k = st.regs[reg]!;
    const size = SIZE_BYTES[BPF_SIZE(i.code)] ?? 8;
    const invalid = `invalid bpf_context access off=${i.off} size=${size}`;
    if (k === RK.CTX) {
      if (cls !== BPF_LDX) return { errno: EACCES, log: [invalid] };
      const r = ctxArg(i.off, size);
      if ('errno' in r) return { errno: r.errno, log: [...r.log, invalid] };
    } else if (k === RK.CTX_MOD) {
      return { errno: EACCES, log: [`dereference of modified ctx ptr R${reg} off=${i.off} disallowed`] };
    } else if (isBtfPtr(k)) {
      const tname = vmlinux.type(btfPtrId(k)).name;
      if (cls !== BPF_LDX) return { errno: EACCES, log: ['only read is supported'] };
      if (i.off < 0) return { errno: EACCES, log: [`R${reg} is ptr_${tname} invalid negative access: off=${i.off}`] };
      const r = btfStructAccess(vmlinux, btfPtrId(k), i.off, size);
      if ('errno' in r) return r;
    } else if (k === RK.SCALAR) {
      return { errno: EACCES, log: [`R${reg} invalid mem access '${regTypeStr(k)}'`] };
    }
  }
  return undefined;
}

