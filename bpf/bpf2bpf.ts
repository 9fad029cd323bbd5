/**
 * @fileoverview fentry/fexit on another BPF program (5b92a28aae4d "bpf: Support attaching tracing
 * BPF program to other BPF programs", v5.5): PROG_LOAD with attach_prog_fd = a loaded program and
 * attach_btf_id = the BTF id, in that program's BTF, of its main function or one of its
 * subprograms. check_attach_btf_id's bpf2bpf half: the target must have BTF, the id must be one
 * of its func_info records, the target must be JIT-compiled and not itself a tracing program;
 * the function model comes from the target's BTF — or is five u64 arguments when that function's
 * BTF was found unreliable at the target's load (func_info.ts). The trampoline's key is
 * ((u64)target id << 32) | btf_id, and the site it patches is the 5-byte nop at the entry of the
 * target's JIT-compiled function (every function of a JIT image starts with one).
 */
import type { Attr } from './syscall/attr.ts';
import type { BpfProgObj } from './syscall/objects.ts';
import type { Btf } from './btf/btf.ts';
import { BTF_KIND } from './btf/btf.ts';
import type { Insn } from './isa/insn.ts';
import type { BtfFuncModel } from './arch.ts';
import { BPF_PROG_TYPE_TRACING, BPF_TRACE_FENTRY, BPF_TRACE_FEXIT, BPF_TRACE_RAW_TP } from './prog_types.ts';
import { btfDistillFuncProto, FuncModelError } from './btf_func_model.ts';
import type { TrampolineFunc } from './trampoline.ts';

const EBADF = 9, EINVAL = 22, ENOTSUPP = 524;

/** What a tracing program's load resolves its target to. */
export interface TracingTarget extends TrampolineFunc {
  /** bpf_trampoline_lookup's key. */
  key: bigint;
  /** bpf2bpf: the target program (the caller takes a reference for prog->aux->linked_prog). */
  tgt?: BpfProgObj;
  /** bpf2bpf: the target function's index among the target's functions. */
  subprog?: number;
  /** The all-u64 model (the target function's BTF is unreliable). */
  conservative?: boolean;
}

/** The conservative model: 5 arguments and the return value, each a u64. */
/** "Default prog with 5 args" (MAX_BPF_FUNC_REG_ARGS later): the all-u64 model of an unreliable subprogram. */
export const CONSERVATIVE_NR_ARGS = 5;
export const CONSERVATIVE_MODEL: BtfFuncModel = { retSize: 8, nrArgs: CONSERVATIVE_NR_ARGS, argSize: Array(CONSERVATIVE_NR_ARGS).fill(8) as number[] };

/** What the target lookup needs of the bpf() subsystem. */
export interface Bpf2bpfEnv {
  progFromFd(fd: number): BpfProgObj | undefined;
  readonly kernel: { readonly current: { readonly files: { get(fd: number): unknown } } };
  readonly vmlinuxBtf: Btf | undefined;
  readonly trampolines: unknown;
}

/** trampoline key of a BPF-program target (v5.5). */
export const bpf2bpfKey = (progId: number, btfId: number): bigint => (BigInt(progId) << 32n) | BigInt(btfId);

/**
 * bpf_prog_get(attach_prog_fd) then check_attach_btf_id for a BPF-program target. Returns the
 * target or a negative errno; `fail` writes the verifier log line and gives -errno.
 */
export function bpf2bpfTarget(env: Bpf2bpfEnv, f: Attr, insns: readonly Insn[], fail: (errno: number, msg: string) => number): TracingTarget | number {
  const fd = f.attach_prog_fd as number, btfId = f.attach_btf_id as number, eat = f.expected_attach_type as number;
  const tgt = env.progFromFd(fd);
  // bpf_prog_get: an open fd of another kind is -EINVAL, no such fd -EBADF.
  if (!tgt) return env.kernel.current.files.get(fd) ? -EINVAL : -EBADF;
  if (!env.trampolines) return fail(ENOTSUPP, 'this architecture has no BPF trampoline');
  if (!btfId) return fail(EINVAL, 'Tracing programs must provide btf_id');
  const btf = tgt.btf?.btf;
  // bpf_prog_get_target_btf: the target's own BTF (its func_info needs it).
  if (!btf || !tgt.funcInfo) return fail(EINVAL, 'FENTRY/FEXIT program can only be attached to another program annotated with BTF');
  const t = btf.types[btfId];
  if (!t || btfId <= 0) return fail(EINVAL, `attach_btf_id ${btfId} is invalid`);
  if (!t.name) return fail(EINVAL, `attach_btf_id ${btfId} doesn't have a name`);
  const subprog = tgt.funcInfo.typeIds.indexOf(btfId);
  if (subprog < 0) return fail(EINVAL, `Subprog ${t.name} doesn't exist`);
  const conservative = tgt.funcInfo.unreliable[subprog] === true;
  if (eat === BPF_TRACE_RAW_TP) return fail(EINVAL, 'Only FENTRY/FEXIT progs are attachable to another BPF prog');
  if (eat !== BPF_TRACE_FENTRY && eat !== BPF_TRACE_FEXIT) return fail(EINVAL, `Only FENTRY/FEXIT progs are attachable (expected_attach_type ${eat} is not supported)`);
  if (t.kind !== BTF_KIND.FUNC) return fail(EINVAL, `attach_btf_id ${btfId} is not a function`);
  if (btf.types[t.sizeOrType]?.kind !== BTF_KIND.FUNC_PROTO) return -EINVAL;
  let model: BtfFuncModel;
  if (conservative) model = CONSERVATIVE_MODEL;
  else {
    try { model = btfDistillFuncProto(btf, btfId); } catch (e) {
      if (e instanceof FuncModelError) return fail(EINVAL, e.message);
      throw e;
    }
  }
  if (!tgt.prog.jit) return fail(EINVAL, 'Can trace only JITed BPF progs');
  if (tgt.type === BPF_PROG_TYPE_TRACING) return fail(EINVAL, 'Cannot recursively attach');
  const addr = tgt.prog.jit.funcAddrs[subprog];
  if (addr === undefined) return fail(EINVAL, `Subprog ${t.name} doesn't exist`);
  // The ctx rules (btf_ctx_access with btf_translate_to_vmlinux) are the verifier's, as for vmlinux targets.
  return { addr, model, name: t.name, key: bpf2bpfKey(tgt.id, btfId), tgt, subprog, conservative };
}
