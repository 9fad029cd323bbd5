/**
 * @fileoverview The tracing helpers of later kernels that read the BPF trampoline's frame
 * (kernel/trace/bpf_trace.c, kernel/bpf/verifier.c), each behind its kernel profile row:
 *
 *  - bpf_get_func_ip (5.15, #173): the traced function's address, which the trampoline stores
 *    below the arguments when BPF_TRAMP_F_IP_ARG is set (a program calling it sets
 *    prog->call_get_func_ip). do_misc_fixups inlines it as a load from the ctx: ctx-8 in 5.15,
 *    ctx-16 once 5.17 put nr_args at ctx-8.
 *  - bpf_get_func_arg / _ret / _arg_cnt (5.17, #183-185): inlined around the nr_args word at
 *    ctx-8; _ret is -EOPNOTSUPP unless the program is fexit or fmod_ret.
 *  - bpf_get_attach_cookie for tracing programs (5.19, #174): not inlined; reads the cookie out of
 *    the trampoline's struct bpf_tramp_run_ctx through current->bpf_ctx.
 *
 * Every one is "unknown func" (or "invalid func unknown#N" past the generation's last helper id)
 * under a profile that lacks it, as that kernel's check_helper_call says.
 */
import type { KernelProfile } from '../../kernel/profile.ts';
import type { Kernel } from '../../kernel/kernel.ts';
import type { HelperDef } from '../prog.ts';
import { insn, type Insn } from '../isa/insn.ts';
import { patchInsns, type Patched } from '../fixup.ts';
import {
  BPF_ALU64, BPF_JMP, BPF_JMP32, BPF_LDX, BPF_STX, BPF_MEM, BPF_DW, BPF_K, BPF_X, BPF_MOV, BPF_LSH, BPF_ADD, BPF_JGE, BPF_JA, BPF_CALL,
} from '../isa/opcodes.ts';
import { BPF_PROG_TYPE_TRACING, BPF_TRACE_FENTRY, BPF_TRACE_FEXIT, BPF_MODIFY_RETURN } from '../prog_types.ts';
import { bpfFuncName } from './func_ids.ts';
import { Arg, Ret, type FuncProto } from '../verifier/helpers_proto.ts';

export const BPF_FUNC_get_func_ip = 173;
export const BPF_FUNC_get_attach_cookie = 174;
export const BPF_FUNC_get_func_arg = 183;
export const BPF_FUNC_get_func_ret = 184;
export const BPF_FUNC_get_func_arg_cnt = 185;

const EINVAL = 22, EOPNOTSUPP = 95;

/**
 * Names past v5.5's list (__BPF_FUNC_MAPPER from tcp_send_ack = 116 on), for the verifier log
 * (`call bpf_get_func_ip#173`) under profiles that have them.
 */
const LATER_NAMES = [
  'tcp_send_ack', 'send_signal_thread', 'jiffies64', 'read_branch_records', 'get_ns_current_pid_tgid', 'xdp_output',
  'get_netns_cookie', 'get_current_ancestor_cgroup_id', 'sk_assign', 'ktime_get_boot_ns', 'seq_printf', 'seq_write',
  'sk_cgroup_id', 'sk_ancestor_cgroup_id', 'ringbuf_output', 'ringbuf_reserve', 'ringbuf_submit', 'ringbuf_discard',
  'ringbuf_query', 'csum_level', 'skc_to_tcp6_sock', 'skc_to_tcp_sock', 'skc_to_tcp_timewait_sock',
  'skc_to_tcp_request_sock', 'skc_to_udp6_sock', 'get_task_stack', 'load_hdr_opt', 'store_hdr_opt', 'reserve_hdr_opt',
  'inode_storage_get', 'inode_storage_delete', 'd_path', 'copy_from_user', 'snprintf_btf', 'seq_printf_btf',
  'skb_cgroup_classid', 'redirect_neigh', 'per_cpu_ptr', 'this_cpu_ptr', 'redirect_peer', 'task_storage_get',
  'task_storage_delete', 'get_current_task_btf', 'bprm_opts_set', 'ktime_get_coarse_ns', 'ima_inode_hash',
  'sock_from_file', 'check_mtu', 'for_each_map_elem', 'snprintf', 'sys_bpf', 'btf_find_by_name_kind', 'sys_close',
  'timer_init', 'timer_set_callback', 'timer_start', 'timer_cancel', 'get_func_ip', 'get_attach_cookie', 'task_pt_regs',
  'get_branch_snapshot', 'trace_vprintk', 'skc_to_unix_sock', 'kallsyms_lookup_name', 'find_vma', 'loop', 'strncmp',
  'get_func_arg', 'get_func_ret', 'get_func_arg_cnt', 'get_retval', 'set_retval', 'xdp_get_buff_len', 'xdp_load_bytes',
  'xdp_store_bytes', 'copy_from_user_task', 'skb_set_tstamp', 'ima_file_hash', 'kptr_xchg', 'map_lookup_percpu_elem',
  'skc_to_mptcp_sock', 'dynptr_from_mem', 'ringbuf_reserve_dynptr', 'ringbuf_submit_dynptr', 'ringbuf_discard_dynptr',
  'dynptr_read', 'dynptr_write', 'dynptr_data', 'tcp_raw_gen_syncookie_ipv4', 'tcp_raw_gen_syncookie_ipv6',
  'tcp_raw_check_syncookie_ipv4', 'tcp_raw_check_syncookie_ipv6', 'ktime_get_tai_ns', 'user_ringbuf_drain',
  'cgrp_storage_get', 'cgrp_storage_delete',
] as const;
const FIRST_LATER = 116;

/** func_id_name() of the profile's kernel: `bpf_<name>` below its __BPF_FUNC_MAX_ID, else undefined. */
export function profileFuncName(profile: KernelProfile, id: number): string | undefined {
  if (id < 0 || id >= profile.helpers.maxFuncId) return undefined;
  if (id < FIRST_LATER) return bpfFuncName(id);
  const n = LATER_NAMES[id - FIRST_LATER];
  return n && `bpf_${n}`;
}

/** bpf_prog_has_trampoline(): a tracing program that runs from a trampoline. */
export const progHasTrampoline = (progType: number, eat: number): boolean =>
  progType === BPF_PROG_TYPE_TRACING && (eat === BPF_TRACE_FENTRY || eat === BPF_TRACE_FEXIT || eat === BPF_MODIFY_RETURN);

/** A helper inlined by do_misc_fixups needs no native entry point on this machine. */
export interface TracingFuncProto extends FuncProto { readonly inlined: boolean }

const A = Arg, R = Ret;
/** The bpf_func_protos (bpf_trace.c): all GPL-only but the cookie's. */
const PROTOS: Readonly<Record<number, TracingFuncProto>> = {
  [BPF_FUNC_get_func_ip]: { ret: R.INTEGER, args: [A.PTR_TO_CTX], gplOnly: true, inlined: true },
  [BPF_FUNC_get_func_arg]: { ret: R.INTEGER, args: [A.PTR_TO_CTX, A.ANYTHING, A.PTR_TO_LONG], gplOnly: true, inlined: true },
  [BPF_FUNC_get_func_ret]: { ret: R.INTEGER, args: [A.PTR_TO_CTX, A.PTR_TO_LONG], gplOnly: true, inlined: true },
  [BPF_FUNC_get_func_arg_cnt]: { ret: R.INTEGER, args: [A.PTR_TO_CTX], gplOnly: true, inlined: true },
  [BPF_FUNC_get_attach_cookie]: { ret: R.INTEGER, args: [A.PTR_TO_CTX], inlined: false },
};

/**
 * tracing_prog_func_proto's cases for these helpers under `profile`: the prototype when the
 * program may call it, undefined when this kernel does not give it (or the id is another helper).
 */
export function tracingFuncProto(profile: KernelProfile, progType: number, eat: number, funcId: number): TracingFuncProto | undefined {
  if (progType !== BPF_PROG_TYPE_TRACING) return undefined;
  const h = profile.helpers, tramp = progHasTrampoline(progType, eat);
  switch (funcId) {
    case BPF_FUNC_get_func_ip: return h.getFuncIp ? PROTOS[funcId] : undefined;
    case BPF_FUNC_get_func_arg: case BPF_FUNC_get_func_ret: case BPF_FUNC_get_func_arg_cnt:
      return h.getFuncArgs && tramp ? PROTOS[funcId] : undefined;
    case BPF_FUNC_get_attach_cookie: return h.tracingCookie && tramp ? PROTOS[funcId] : undefined;
    default: return undefined;
  }
}

/** Whether `funcId` is one of this file's helpers (the verifier asks tracingFuncProto for it). */
export const isTracingFunc = (funcId: number): boolean => funcId in PROTOS;

/** This file's helper ids, ascending. */
export const TRACING_FUNC_IDS: readonly number[] = Object.keys(PROTOS).map(Number).sort((a, b) => a - b);

const ldxDw = (dst: number, src: number, off: number): Insn => insn(BPF_LDX | BPF_MEM | BPF_DW, dst, src, off);
const stxDw = (dst: number, src: number, off: number): Insn => insn(BPF_STX | BPF_MEM | BPF_DW, dst, src, off);
const movImm = (dst: number, imm: number): Insn => insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm);

/**
 * do_misc_fixups for these helpers: the instructions a `call` of one becomes (R1 = ctx, the
 * trampoline's u64 argument array), or undefined to leave the call alone.
 */
export function tracingInlinePatch(i: Insn, profile: KernelProfile, progType: number, eat: number): Insn[] | undefined {
  if (i.code !== (BPF_JMP | BPF_CALL) || i.src !== 0 || progType !== BPF_PROG_TYPE_TRACING) return undefined;
  const p = tracingFuncProto(profile, progType, eat, i.imm);
  if (!p?.inlined) return undefined;
  switch (i.imm) {
    case BPF_FUNC_get_func_ip:
      // 5.15: the ip right below the args (ctx - 8); from 5.17 nr_args is there and the ip below it.
      return [ldxDw(0, 1, profile.trampoline.argsCount ? -16 : -8)];
    case BPF_FUNC_get_func_arg: return [
      ldxDw(0, 1, -8),                                  // r0 = nr_args
      insn(BPF_JMP32 | BPF_JGE | BPF_X, 2, 0, 6),        // if w2 >= w0 goto einval
      insn(BPF_ALU64 | BPF_LSH | BPF_K, 2, 0, 0, 3),     // r2 <<= 3
      insn(BPF_ALU64 | BPF_ADD | BPF_X, 2, 1),           // r2 += r1
      ldxDw(0, 2, 0),                                    // r0 = ctx[n]
      stxDw(3, 0, 0),                                    // *value = r0
      movImm(0, 0),
      insn(BPF_JMP | BPF_JA, 0, 0, 1),
      movImm(0, -EINVAL),                                // einval:
    ];
    case BPF_FUNC_get_func_ret:
      if (eat !== BPF_TRACE_FEXIT && eat !== BPF_MODIFY_RETURN) return [movImm(0, -EOPNOTSUPP)];
      return [
        ldxDw(0, 1, -8),                                 // r0 = nr_args
        insn(BPF_ALU64 | BPF_LSH | BPF_K, 0, 0, 0, 3),   // r0 <<= 3
        insn(BPF_ALU64 | BPF_ADD | BPF_X, 0, 1),         // r0 += r1: the return value follows the args
        ldxDw(3, 0, 0),
        stxDw(2, 3, 0),                                  // *value = ctx[nr_args]
        movImm(0, 0),
      ];
    case BPF_FUNC_get_func_arg_cnt: return [ldxDw(0, 1, -8)];
    default: return undefined;
  }
}

/**
 * current->bpf_ctx for the emulated CPU: an 8-byte guest word, named `bpfemu_current_bpf_ctx` in
 * kallsyms. A 5.19+ __bpf_prog_enter stores `&run_ctx->run_ctx` there (bpf_set_run_ctx) and
 * __bpf_prog_exit restores the saved one; bpf_get_attach_cookie reads through it.
 */
const bpfCtxSlots = new WeakMap<Kernel, bigint>();
export const CURRENT_BPF_CTX_SYM = 'bpfemu_current_bpf_ctx';
export function currentBpfCtxSlot(k: Kernel): bigint {
  let a = bpfCtxSlots.get(k);
  if (a === undefined) {
    a = k.slab.kzalloc(8);
    if (a === undefined) throw new Error('bpf: no memory for current->bpf_ctx');
    k.ksyms.add({ name: CURRENT_BPF_CTX_SYM, address: a, size: 8, type: 'D' });
    bpfCtxSlots.set(k, a);
  }
  return a;
}

/**
 * struct bpf_tramp_run_ctx { struct bpf_run_ctx run_ctx (empty); u64 bpf_cookie; struct
 * bpf_run_ctx *saved_run_ctx; }: the cookie is at offset 0 of what current->bpf_ctx points to.
 */
export const TRAMP_RUN_CTX = { bpfCookie: 0, savedRunCtx: 8, size: 16 } as const;

const defs = new WeakMap<Kernel, readonly HelperDef[]>();
/**
 * The natives of the helpers that are not inlined — bpf_get_attach_cookie_tracing: the running
 * program's link cookie (0 outside a trampoline) — made once per kernel (one kallsyms entry).
 */
export function tracingFuncHelpers(k: Kernel): readonly HelperDef[] {
  let d = defs.get(k);
  if (!d) {
    d = [{
      id: BPF_FUNC_get_attach_cookie, name: 'bpf_get_attach_cookie_tracing', argc: 1,
      fn: () => {
        const mem = k.machine.mem;
        const runCtx = mem.readU64(currentBpfCtxSlot(k));
        return runCtx === 0n ? 0n : mem.readU64(runCtx + BigInt(TRAMP_RUN_CTX.bpfCookie));
      },
    }];
    defs.set(k, d);
  }
  return d;
}

/**
 * do_misc_fixups' part for these helpers over a verified program: the rewritten instructions
 * (and the index maps), or undefined when it calls none of them. Both engines run the result.
 */
export function inlineTracingHelpers(insns: readonly Insn[], profile: KernelProfile, progType: number, eat: number): Patched | undefined {
  if (progType !== BPF_PROG_TYPE_TRACING) return undefined;
  let changed = false;
  const p = patchInsns(insns, (i) => {
    const r = tracingInlinePatch(i, profile, progType, eat);
    if (r) changed = true;
    return r;
  });
  return changed ? p : undefined;
}
