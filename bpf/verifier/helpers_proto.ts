/**
 * @fileoverview Helper prototypes (struct bpf_func_proto) and which program types may call
 * which helper (each type's get_func_proto, v5.5): argument types the verifier checks each
 * register against, the return type R0 gets, GPL-only helpers, helpers that may read packet
 * memory, and helpers that move the packet (every packet pointer is invalidated after them).
 * Ids and names are those of bpf/helpers/func_ids.ts.
 */
import { BPF_FUNC as F } from '../helpers/func_ids.ts';
import {
  BPF_PROG_TYPE_SOCKET_FILTER, BPF_PROG_TYPE_KPROBE, BPF_PROG_TYPE_SCHED_CLS, BPF_PROG_TYPE_SCHED_ACT,
  BPF_PROG_TYPE_TRACEPOINT, BPF_PROG_TYPE_XDP, BPF_PROG_TYPE_PERF_EVENT, BPF_PROG_TYPE_RAW_TRACEPOINT,
  BPF_PROG_TYPE_TRACING,
} from '../prog_types.ts';

/** enum bpf_arg_type */
export const Arg = {
  DONTCARE: 0, CONST_MAP_PTR: 1, PTR_TO_MAP_KEY: 2, PTR_TO_MAP_VALUE: 3, PTR_TO_UNINIT_MAP_VALUE: 4,
  PTR_TO_MAP_VALUE_OR_NULL: 5, PTR_TO_MEM: 6, PTR_TO_MEM_OR_NULL: 7, PTR_TO_UNINIT_MEM: 8, CONST_SIZE: 9,
  CONST_SIZE_OR_ZERO: 10, PTR_TO_CTX: 11, PTR_TO_CTX_OR_NULL: 12, ANYTHING: 13, PTR_TO_INT: 14, PTR_TO_LONG: 15,
} as const;
export type ArgType = (typeof Arg)[keyof typeof Arg];

/** enum bpf_return_type */
export const Ret = { INTEGER: 0, VOID: 1, PTR_TO_MAP_VALUE: 2, PTR_TO_MAP_VALUE_OR_NULL: 3 } as const;
export type RetType = (typeof Ret)[keyof typeof Ret];

export interface FuncProto {
  readonly ret: RetType;
  readonly args: readonly ArgType[];
  readonly gplOnly?: boolean;
  /** May read packet memory through a pointer argument (meta.pkt_access). */
  readonly pktAccess?: boolean;
  /** bpf_helper_changes_pkt_data(): packet pointers are invalid after the call. */
  readonly changesPktData?: boolean;
}

const A = Arg, R = Ret;
const proto = (ret: RetType, args: ArgType[], o: Omit<FuncProto, 'ret' | 'args'> = {}): FuncProto => ({ ret, args, ...o });
const probeRead = proto(R.INTEGER, [A.PTR_TO_UNINIT_MEM, A.CONST_SIZE_OR_ZERO, A.ANYTHING], { gplOnly: true });

/** The prototypes, by helper id. */
export const PROTOS: Readonly<Record<number, FuncProto>> = {
  [F.map_lookup_elem]: proto(R.PTR_TO_MAP_VALUE_OR_NULL, [A.CONST_MAP_PTR, A.PTR_TO_MAP_KEY], { pktAccess: true }),
  [F.map_update_elem]: proto(R.INTEGER, [A.CONST_MAP_PTR, A.PTR_TO_MAP_KEY, A.PTR_TO_MAP_VALUE, A.ANYTHING], { pktAccess: true }),
  [F.map_delete_elem]: proto(R.INTEGER, [A.CONST_MAP_PTR, A.PTR_TO_MAP_KEY], { pktAccess: true }),
  [F.probe_read]: probeRead,
  [F.ktime_get_ns]: proto(R.INTEGER, []),
  [F.trace_printk]: proto(R.INTEGER, [A.PTR_TO_MEM, A.CONST_SIZE], { gplOnly: true }),
  [F.get_prandom_u32]: proto(R.INTEGER, []),
  [F.get_smp_processor_id]: proto(R.INTEGER, []),
  [F.skb_store_bytes]: proto(R.INTEGER, [A.PTR_TO_CTX, A.ANYTHING, A.PTR_TO_MEM, A.CONST_SIZE, A.ANYTHING], { changesPktData: true }),
  [F.l3_csum_replace]: proto(R.INTEGER, [A.PTR_TO_CTX, A.ANYTHING, A.ANYTHING, A.ANYTHING, A.ANYTHING], { changesPktData: true }),
  [F.l4_csum_replace]: proto(R.INTEGER, [A.PTR_TO_CTX, A.ANYTHING, A.ANYTHING, A.ANYTHING, A.ANYTHING], { changesPktData: true }),
  [F.tail_call]: proto(R.VOID, [A.PTR_TO_CTX, A.CONST_MAP_PTR, A.ANYTHING]),
  [F.get_current_pid_tgid]: proto(R.INTEGER, []),
  [F.get_current_uid_gid]: proto(R.INTEGER, []),
  [F.get_current_comm]: proto(R.INTEGER, [A.PTR_TO_UNINIT_MEM, A.CONST_SIZE]),
  [F.get_cgroup_classid]: proto(R.INTEGER, [A.PTR_TO_CTX]),
  [F.perf_event_read]: proto(R.INTEGER, [A.CONST_MAP_PTR, A.ANYTHING], { gplOnly: true }),
  [F.redirect]: proto(R.INTEGER, [A.ANYTHING, A.ANYTHING]),
  [F.perf_event_output]: proto(R.INTEGER, [A.PTR_TO_CTX, A.CONST_MAP_PTR, A.ANYTHING, A.PTR_TO_MEM, A.CONST_SIZE_OR_ZERO], { gplOnly: true }),
  [F.skb_load_bytes]: proto(R.INTEGER, [A.PTR_TO_CTX, A.ANYTHING, A.PTR_TO_UNINIT_MEM, A.CONST_SIZE]),
  [F.get_stackid]: proto(R.INTEGER, [A.PTR_TO_CTX, A.CONST_MAP_PTR, A.ANYTHING], { gplOnly: true }),
  [F.csum_diff]: proto(R.INTEGER, [A.PTR_TO_MEM_OR_NULL, A.CONST_SIZE_OR_ZERO, A.PTR_TO_MEM_OR_NULL, A.CONST_SIZE_OR_ZERO, A.ANYTHING], { pktAccess: true }),
  [F.skb_change_proto]: proto(R.INTEGER, [A.PTR_TO_CTX, A.ANYTHING, A.ANYTHING], { changesPktData: true }),
  [F.skb_change_type]: proto(R.INTEGER, [A.PTR_TO_CTX, A.ANYTHING]),
  [F.get_hash_recalc]: proto(R.INTEGER, [A.PTR_TO_CTX]),
  [F.get_current_task]: proto(R.INTEGER, [], { gplOnly: true }),
  [F.probe_write_user]: proto(R.INTEGER, [A.ANYTHING, A.PTR_TO_MEM, A.CONST_SIZE], { gplOnly: true }),
  [F.skb_change_tail]: proto(R.INTEGER, [A.PTR_TO_CTX, A.ANYTHING, A.ANYTHING], { changesPktData: true }),
  [F.skb_pull_data]: proto(R.INTEGER, [A.PTR_TO_CTX, A.ANYTHING], { changesPktData: true }),
  [F.get_numa_node_id]: proto(R.INTEGER, []),
  [F.skb_change_head]: proto(R.INTEGER, [A.PTR_TO_CTX, A.ANYTHING, A.ANYTHING], { changesPktData: true }),
  [F.xdp_adjust_head]: proto(R.INTEGER, [A.PTR_TO_CTX, A.ANYTHING], { changesPktData: true }),
  [F.probe_read_str]: probeRead,
  [F.get_socket_cookie]: proto(R.INTEGER, [A.PTR_TO_CTX]),
  [F.get_socket_uid]: proto(R.INTEGER, [A.PTR_TO_CTX]),
  [F.redirect_map]: proto(R.INTEGER, [A.CONST_MAP_PTR, A.ANYTHING, A.ANYTHING]),
  [F.xdp_adjust_meta]: proto(R.INTEGER, [A.PTR_TO_CTX, A.ANYTHING], { changesPktData: true }),
  [F.xdp_adjust_tail]: proto(R.INTEGER, [A.PTR_TO_CTX, A.ANYTHING], { changesPktData: true }),
  [F.get_stack]: proto(R.INTEGER, [A.PTR_TO_CTX, A.PTR_TO_UNINIT_MEM, A.CONST_SIZE_OR_ZERO, A.ANYTHING], { gplOnly: true }),
  [F.skb_load_bytes_relative]: proto(R.INTEGER, [A.PTR_TO_CTX, A.ANYTHING, A.PTR_TO_UNINIT_MEM, A.CONST_SIZE, A.ANYTHING]),
  [F.get_current_cgroup_id]: proto(R.INTEGER, []),
  [F.strtol]: proto(R.INTEGER, [A.PTR_TO_MEM, A.CONST_SIZE, A.ANYTHING, A.PTR_TO_LONG]),
  [F.strtoul]: proto(R.INTEGER, [A.PTR_TO_MEM, A.CONST_SIZE, A.ANYTHING, A.PTR_TO_LONG]),
  [F.send_signal]: proto(R.INTEGER, [A.ANYTHING]),
  [F.probe_read_user]: probeRead,
  [F.probe_read_kernel]: probeRead,
  [F.probe_read_user_str]: probeRead,
  [F.probe_read_kernel_str]: probeRead,
};

/** bpf_base_func_proto (CAP_SYS_ADMIN): what every program type may call. */
const BASE = [F.map_lookup_elem, F.map_update_elem, F.map_delete_elem, F.get_prandom_u32, F.get_smp_processor_id,
  F.get_numa_node_id, F.tail_call, F.ktime_get_ns, F.trace_printk];
/** bpf_tracing_func_proto */
const TRACING = [F.map_lookup_elem, F.map_update_elem, F.map_delete_elem, F.ktime_get_ns, F.tail_call, F.get_current_pid_tgid,
  F.get_current_task, F.get_current_uid_gid, F.get_current_comm, F.trace_printk, F.get_smp_processor_id, F.get_numa_node_id,
  F.perf_event_read, F.probe_write_user, F.get_prandom_u32, F.probe_read_user, F.probe_read_kernel, F.probe_read,
  F.probe_read_user_str, F.probe_read_kernel_str, F.probe_read_str, F.get_current_cgroup_id, F.send_signal];
const SK_FILTER = [F.skb_load_bytes, F.skb_load_bytes_relative, F.get_socket_cookie, F.get_socket_uid, F.perf_event_output, ...BASE];
const TC = [F.skb_store_bytes, F.skb_load_bytes, F.skb_load_bytes_relative, F.skb_pull_data, F.csum_diff, F.skb_change_proto,
  F.skb_change_type, F.skb_change_tail, F.skb_change_head, F.l3_csum_replace, F.l4_csum_replace, F.get_cgroup_classid,
  F.redirect, F.get_hash_recalc, F.perf_event_output, F.get_smp_processor_id, F.get_socket_cookie, F.get_socket_uid, ...BASE];
const XDP = [F.perf_event_output, F.get_smp_processor_id, F.csum_diff, F.xdp_adjust_head, F.xdp_adjust_meta, F.redirect,
  F.redirect_map, F.xdp_adjust_tail, ...BASE];
const KPROBE = [F.perf_event_output, F.get_stackid, F.get_stack, ...TRACING];

/** Which helpers each program type's get_func_proto gives. */
export const FUNCS_OF: Readonly<Record<number, ReadonlySet<number>>> = {
  [BPF_PROG_TYPE_SOCKET_FILTER]: new Set(SK_FILTER),
  [BPF_PROG_TYPE_SCHED_CLS]: new Set(TC),
  [BPF_PROG_TYPE_SCHED_ACT]: new Set(TC),
  [BPF_PROG_TYPE_XDP]: new Set(XDP),
  [BPF_PROG_TYPE_KPROBE]: new Set(KPROBE),
  [BPF_PROG_TYPE_TRACEPOINT]: new Set(KPROBE),
  [BPF_PROG_TYPE_PERF_EVENT]: new Set(KPROBE),
  [BPF_PROG_TYPE_RAW_TRACEPOINT]: new Set(KPROBE),
  [BPF_PROG_TYPE_TRACING]: new Set(KPROBE),
};

/** get_func_proto: the prototype, when this program type may call the helper. */
export function getFuncProto(progType: number, funcId: number): FuncProto | undefined {
  return FUNCS_OF[progType]?.has(funcId) ? PROTOS[funcId] : undefined;
}
