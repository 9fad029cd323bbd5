/**
 * @fileoverview Kernel profiles: which kernel generation the machine models. One table says, per
 * profile, which behaviours apply; every layer (trampoline generator and manager, verifier
 * tracing rules, helpers, mmap, audit, bpf() privilege checks) reads its row from here instead
 * of comparing version numbers. The default is 5.5, the seed's kernel.
 *
 * Each field names the kernel version and the change that introduced it (../shared/spec/KERNEL.md
 * "Evolution after 5.5"). A behaviour is `true` from its version on; numeric limits carry the value
 * of that generation.
 */

export const KERNEL_VERSIONS = ['5.5', '5.7', '5.12', '5.15', '5.19', '6.1', '6.6'] as const;
export type KernelVersion = (typeof KERNEL_VERSIONS)[number];
export const DEFAULT_KERNEL: KernelVersion = '5.5';

/** The trampoline's generation (kernel/bpf/trampoline.c, arch/x86/net/bpf_jit_comp.c). */
export interface TrampolineBehaviour {
  /** BPF_MAX_TRAMP_PROGS: 40; 38 from 5.12 (e21aa341785c); BPF_MAX_TRAMP_LINKS 38 from 5.19. */
  readonly maxProgs: number;
  /** BPF_MODIFY_RETURN (fmod_ret) programs between fentry and the original call (5.7, ae24082331d9). */
  readonly fmodRet: boolean;
  /**
   * 5.12 (ca06f55b9002, 9ed9e9ba2337): `__bpf_prog_enter(prog)` returns 0 to skip the program
   * (`test rax,rax; je` after each enter), a per-program recursion guard (prog->active) counted
   * in bpf_prog_info.recursion_misses, and restore_regs before the original call always.
   */
  readonly enterSkips: boolean;
  /** 5.12 (e21aa341785c): a new bpf_tramp_image per update (percpu_ref, __bpf_tramp_enter/exit); no half-page flip. */
  readonly imagePerUpdate: boolean;
  /** 5.15: BPF_TRAMP_F_IP_ARG, the traced function's ip on the frame for bpf_get_func_ip. */
  readonly ipArg: boolean;
  /** 5.17: nr_args on the frame for bpf_get_func_arg / _ret / _arg_cnt. */
  readonly argsCount: boolean;
  /** 5.19: struct bpf_tramp_run_ctx on the frame (bpf_get_attach_cookie for fentry/fexit), bpf_tramp_links. */
  readonly runCtx: boolean;
  /** 6.1: struct arguments by value of at most 16 bytes (BTF_FMODEL_STRUCT_ARG), counted by registers. */
  readonly structArgs: boolean;
  /** Arguments a traced function may have: 6 on x86-64 until 6.5; 12 from 6.6 (473e3150e30a), the 7th on from the stack. */
  readonly maxArgs: number;
}

/** The helpers a profile knows beyond v5.5's (bpf/helpers reads this). */
export interface HelperBehaviour {
  /** bpf_get_func_ip (5.15). */
  readonly getFuncIp: boolean;
  /** bpf_get_func_arg, bpf_get_func_ret, bpf_get_func_arg_cnt (5.17). */
  readonly getFuncArgs: boolean;
  /** bpf_get_attach_cookie for tracing programs (5.19). */
  readonly tracingCookie: boolean;
  /**
   * __BPF_FUNC_MAX_ID of the generation: a helper id at or past it is "invalid func unknown#N"
   * (check_helper_call), below it but not given to the program type "unknown func bpf_x#N".
   * From the __BPF_FUNC_MAPPER order and the release each helper went into: 5.5 ends at
   * probe_read_kernel_str (115), 5.7 at sk_assign (124), 5.12 at check_mtu (163), 5.15 at
   * task_pt_regs (175), 5.19 at dynptr_data (203), 6.1 at user_ringbuf_drain (209), 6.6 at
   * cgrp_storage_delete (211). The middle releases are from memory of the merge windows.
   */
  readonly maxFuncId: number;
}

/** The verifier's version-dependent rules (bpf/verifier reads this). */
export interface VerifierBehaviour {
  /**
   * btf_ctx_access reads an enum argument as a scalar. v5.5 takes only `btf_type_is_int` and
   * refuses an enum with "... has type ENUM. Only pointer access is allowed"; later kernels take
   * `btf_type_is_small_int(t) || btf_type_is_enum(t)` (seen in the 5.7-era code with fmod_ret's
   * small-int check; the exact version of the enum addition is not checked).
   */
  readonly ctxEnumScalar: boolean;
  /**
   * btf_struct_access walks arrays and allows narrow loads inside a member (bounded by its end:
   * "access beyond the end of member"). v5.5 needs the member's whole size ("cannot access %d
   * bytes in struct %s field %s that has size %d") and skips arrays; Martin KaFai Lau's
   * narrow/array support replaced that in 5.6.
   */
  readonly btfNarrowAccess: boolean;
  /**
   * BPF_MODIFY_RETURN is a tracing attach type (5.7, ae24082331d9): check_attach_btf_id takes it,
   * btf_ctx_access gives its return slot, check_attach_modify_return limits its targets.
   * Before, the verifier's switch has no case for 26: -EINVAL without a message.
   */
  readonly fmodRet: boolean;
  /**
   * btf_distill_func_proto's argument limit: `nargs >= MAX_BPF_FUNC_ARGS` refused (5.5: at most
   * 11), relaxed to `nargs > MAX_BPF_FUNC_ARGS` (12) by Yuntao Wang's 2022 fix ("it's ok that
   * nargs is equal to MAX_BPF_FUNC_ARGS"), taken here from 5.19.
   */
  readonly modelMaxArgs: number;
  /**
   * 6.1 (Yonghong Song, "bpf: Support struct argument for trampoline base progs"): a struct by
   * value of at most 16 bytes is a function-model argument (BTF_FMODEL_STRUCT_ARG) and
   * btf_ctx_access reads it as a scalar per register slot; before, "arg%d type STRUCT is unsupported".
   */
  readonly structArgs: boolean;
  /**
   * btf_ctx_access reads a pointer to an int argument as a scalar (is_int_ptr, 5.17, Jiri Olsa's
   * "bpf: Allow access to int pointer arguments in tracing programs", with get_func_args_test);
   * before, "arg%d type INT is not a struct". Taken here from the 5.19 profile.
   */
  readonly intPtrScalar: boolean;
}

/** The bpf() commands a profile has (include/uapi/linux/bpf.h's enum bpf_cmd as of that version). */
export interface BpfCmdBehaviour {
  /**
   * The highest command number __sys_bpf knows; above it the switch's default: -EINVAL.
   * 5.5: BPF_BTF_GET_NEXT_ID (23). 5.7: BPF_LINK_UPDATE (29; the map batch ops 24–27 of 5.6,
   * BPF_LINK_CREATE 28). 5.12: BPF_PROG_BIND_MAP (35; 5.8's LINK_GET_FD_BY_ID 30, LINK_GET_NEXT_ID
   * 31, ENABLE_STATS 32, ITER_CREATE 33; 5.9's LINK_DETACH 34). 6.1 and 6.6 add nothing bpfemu
   * models (BPF_TOKEN_CREATE is 6.9).
   */
  readonly maxCmd: number;
  /** BPF_LINK_CREATE takes tracing programs (5.10, with freplace's multi-attach); 5.7's knows cgroup ones only. */
  readonly tracingLinkCreate: boolean;
}

export interface KernelProfile {
  readonly version: KernelVersion;
  readonly bpf: BpfCmdBehaviour;
  readonly trampoline: TrampolineBehaviour;
  readonly helpers: HelperBehaviour;
  readonly verifier: VerifierBehaviour;
  /**
   * AUDIT_BPF's text (kernel/audit.ts): the seed's (the patch as posted in Nov 2019: `event=`, the
   * task's fields on LOAD) for 5.5, the one that shipped in 5.6 (bae141f54be8: `op=`) from 5.7.
   */
  readonly audit: { readonly bpfFormat: 'seed' | 'v5.6' };
  /** mmap of BPF arrays: 'v5.5', or 'v6' with 5.7's fixes (bpf/syscall/mmap.ts MMAP_PROFILES). */
  readonly mmap: 'v5.5' | 'v6';
}

/** Whether `version` is `since` or later. */
export function atLeast(version: KernelVersion, since: KernelVersion): boolean {
  const n = (v: string): number => { const [a, b] = v.split('.').map(Number); return a! * 1000 + b!; };
  return n(version) >= n(since);
}

function makeProfile(v: KernelVersion): KernelProfile {
  const from = (since: KernelVersion): boolean => atLeast(v, since);
  return Object.freeze({
    version: v,
    bpf: Object.freeze({ maxCmd: from('5.12') ? 35 : from('5.7') ? 29 : 23, tracingLinkCreate: from('5.12') }),
    trampoline: Object.freeze({
      maxProgs: from('5.12') ? 38 : 40,
      fmodRet: from('5.7'),
      enterSkips: from('5.12'),
      imagePerUpdate: from('5.12'),
      ipArg: from('5.15'),
      argsCount: from('5.19'),
      runCtx: from('5.19'),
      structArgs: from('6.1'),
      maxArgs: from('6.6') ? 12 : 6,
    }),
    helpers: Object.freeze({
      getFuncIp: from('5.15'), getFuncArgs: from('5.19'), tracingCookie: from('5.19'),
      maxFuncId: from('6.6') ? 212 : from('6.1') ? 210 : from('5.19') ? 204 : from('5.15') ? 176 : from('5.12') ? 164 : from('5.7') ? 125 : 116,
    }),
    verifier: Object.freeze({
      ctxEnumScalar: from('5.7'), btfNarrowAccess: from('5.7'), fmodRet: from('5.7'), modelMaxArgs: from('5.19') ? 12 : 11, structArgs: from('6.1'),
      intPtrScalar: from('5.19'),
    }),
    audit: Object.freeze({ bpfFormat: from('5.7') ? 'v5.6' : 'seed' }),
    mmap: from('5.7') ? 'v6' : 'v5.5',
  });
}

/** The table: one row per profile. */
export const KERNEL_PROFILES: Readonly<Record<KernelVersion, KernelProfile>> = Object.freeze(
  Object.fromEntries(KERNEL_VERSIONS.map((v) => [v, makeProfile(v)])) as Record<KernelVersion, KernelProfile>,
);

/** The profile named `name` ('5.5', 'v5.5', '6.6' …), or an error listing the known ones. */
export function kernelProfile(name: string = DEFAULT_KERNEL): KernelProfile {
  const v = name.replace(/^v/, '');
  if (!(KERNEL_VERSIONS as readonly string[]).includes(v)) {
    throw new Error(`unknown kernel profile '${name}' (known: ${KERNEL_VERSIONS.join(', ')})`);
  }
  return KERNEL_PROFILES[v as KernelVersion];
}
