/**
 * @fileoverview The context rules per program type (the is_valid_access of each
 * bpf_verifier_ops, v5.5 layouts): which bytes of the ctx a program may read or write, with
 * what sizes, and what a read gives — a scalar, or a packet pointer for xdp_md/__sk_buff's
 * data fields, or a typed kernel pointer for a tracing program's struct pointer argument
 * (btf_ctx_access). A refused access logs `invalid bpf_context access off=%d size=%d`.
 */
import { BTF_KIND, btfKindStr } from '../btf/uapi.ts';
import { MAX_BPF_FUNC_ARGS } from '../btf_func_model.ts';
import {
  BPF_PROG_TYPE_SOCKET_FILTER, BPF_PROG_TYPE_KPROBE, BPF_PROG_TYPE_SCHED_CLS, BPF_PROG_TYPE_SCHED_ACT,
  BPF_PROG_TYPE_TRACEPOINT, BPF_PROG_TYPE_XDP, BPF_PROG_TYPE_PERF_EVENT, BPF_PROG_TYPE_RAW_TRACEPOINT,
  BPF_PROG_TYPE_TRACING, BPF_TRACE_FEXIT, BPF_MODIFY_RETURN,
} from '../prog_types.ts';
import { RegType, type RegTypeT } from './reg.ts';
import { EACCES, type VerifierEnv } from './env.ts';

const BPF_READ = 1, BPF_WRITE = 2;

export interface CtxAccess { regType: RegTypeT; btfId?: number }
type Check = (env: VerifierEnv, off: number, size: number, t: number) => CtxAccess | false;

const scalar: CtxAccess = { regType: RegType.SCALAR_VALUE };
/** bpf_ctx_narrow_access_ok */
const narrowOk = (size: number, sizeDefault: number): boolean => size <= sizeDefault && (size & (size - 1)) === 0;

// struct __sk_buff (v5.5: sizeof 176)
const SKB = {
  len: 0, pkt_type: 4, mark: 8, queue_mapping: 12, protocol: 16, vlan_present: 20, vlan_tci: 24, vlan_proto: 28,
  priority: 32, ingress_ifindex: 36, ifindex: 40, tc_index: 44, cb: 48, hash: 68, tc_classid: 72, data: 76,
  data_end: 80, napi_id: 84, family: 88, remote_ip4: 92, local_ip4: 96, remote_ip6: 100, local_ip6: 116,
  remote_port: 132, local_port: 136, data_meta: 140, flow_keys: 144, tstamp: 152, wire_len: 160, gso_segs: 164, sk: 168,
  SIZE: 176,
} as const;
/** The u32 field [at, at+4) (bpf_ctx_range). */
const inField = (off: number, at: number, size = 4): boolean => off >= at && off < at + size;

/** bpf_skb_is_valid_access */
function skbValid(off: number, size: number, t: number): CtxAccess | false {
  if (off < 0 || off >= SKB.SIZE || off % size !== 0) return false;
  if (off >= SKB.cb && off < SKB.cb + 20) {
    if (off + size > SKB.cb + 20) return false;
  } else if (inField(off, SKB.remote_ip6, 16) || inField(off, SKB.local_ip6, 16) || inField(off, SKB.remote_ip4) ||
    inField(off, SKB.local_ip4) || inField(off, SKB.data) || inField(off, SKB.data_meta) || inField(off, SKB.data_end)) {
    if (size !== 4) return false;
  } else if (inField(off, SKB.flow_keys, 8)) {
    return false;
  } else if (inField(off, SKB.tstamp, 8)) {
    if (size !== 8) return false;
  } else if (off === SKB.sk) {
    if (t === BPF_WRITE || size !== 8) return false;
    return { regType: RegType.PTR_TO_SOCK_COMMON_OR_NULL };
  } else if (t === BPF_WRITE) {
    if (size !== 4) return false;
  } else if (!narrowOk(size, 4)) {
    return false;
  }
  return scalar;
}

/** sk_filter_is_valid_access: socket filters see no packet pointers and write only cb[]. */
const skFilter: Check = (_env, off, size, t) => {
  if (inField(off, SKB.tc_classid) || inField(off, SKB.data) || inField(off, SKB.data_meta) || inField(off, SKB.data_end) ||
    (off >= SKB.family && off < SKB.local_port + 4) || inField(off, SKB.tstamp, 8) || inField(off, SKB.wire_len)) return false;
  if (t === BPF_WRITE && !(off >= SKB.cb && off < SKB.cb + 20)) return false;
  return skbValid(off, size, t);
};

/** tc_cls_act_is_valid_access: tc programs get packet pointers and write a few fields. */
const tcClsAct: Check = (_env, off, size, t) => {
  if (t === BPF_WRITE && !(inField(off, SKB.mark) || inField(off, SKB.tc_index) || inField(off, SKB.priority) ||
    inField(off, SKB.tc_classid) || (off >= SKB.cb && off < SKB.cb + 20) || inField(off, SKB.tstamp, 8) ||
    inField(off, SKB.queue_mapping))) return false;
  if (off >= SKB.family && off < SKB.local_port + 4) return false;
  const r = skbValid(off, size, t);
  if (!r) return false;
  if (inField(off, SKB.data)) return { regType: RegType.PTR_TO_PACKET };
  if (inField(off, SKB.data_meta)) return { regType: RegType.PTR_TO_PACKET_META };
  if (inField(off, SKB.data_end)) return { regType: RegType.PTR_TO_PACKET_END };
  return r;
};

// struct xdp_md (v5.5): data, data_end, data_meta, ingress_ifindex, rx_queue_index.
const XDP_MD_SIZE = 20;
/** xdp_is_valid_access */
const xdp: Check = (_env, off, size, t) => {
  if (t === BPF_WRITE) return false;
  if (off < 0 || off >= XDP_MD_SIZE || off % size !== 0 || size !== 4) return false;
  if (off === 0) return { regType: RegType.PTR_TO_PACKET };
  if (off === 4) return { regType: RegType.PTR_TO_PACKET_END };
  if (off === 8) return { regType: RegType.PTR_TO_PACKET_META };
  return scalar;
};

const PT_REGS_SIZE = 21 * 8;
/** kprobe_prog_is_valid_access: struct pt_regs, read only. */
const kprobe: Check = (_env, off, size, t) =>
  off >= 0 && off < PT_REGS_SIZE && t === BPF_READ && off % size === 0 && off + size <= PT_REGS_SIZE ? scalar : false;

const PERF_MAX_TRACE_SIZE = 2048;
/** tp_prog_is_valid_access: the tracepoint's record past its 8-byte header. */
const tracepoint: Check = (_env, off, size, t) =>
  off >= 8 && off < PERF_MAX_TRACE_SIZE && t === BPF_READ && off % size === 0 ? scalar : false;

/** raw_tp_prog_is_valid_access: u64 args[12]. */
const rawTracepoint: Check = (_env, off, size, t) =>
  off >= 0 && off < 8 * MAX_BPF_FUNC_ARGS && t === BPF_READ && off % size === 0 ? scalar : false;

/** pe_prog_is_valid_access: struct bpf_perf_event_data { pt_regs regs; u64 sample_period, addr; }. */
const perfEvent: Check = (_env, off, size, t) => {
  if (off < 0 || off >= PT_REGS_SIZE + 16 || t !== BPF_READ || off % size !== 0) return false;
  if (off >= PT_REGS_SIZE) return narrowOk(size, 8) ? scalar : false;
  return size === 8 ? scalar : false;
};

/** btf_ctx_access: a tracing program's ctx is the target's arguments (and return value for fexit and fmod_ret) as u64s. */
const tracing: Check = (env, off, size, t) => {
  if (off < 0 || off >= 8 * MAX_BPF_FUNC_ARGS || t !== BPF_READ || off % size !== 0) return false;
  const at = env.attach;
  if (!at) return scalar;
  const btf = at.btf;
  const func = btf.type(at.funcId), tname = func.name;
  const proto = btf.type(func.sizeOrType);
  if (off % 8) {
    env.verbose(`func '${tname}' offset ${off} is not multiple of 8\n`);
    return false;
  }
  const eat = env.expectedAttachType;
  // fexit, and fmod_ret where the profile knows it, read the return value after the arguments.
  const hasRet = eat === BPF_TRACE_FEXIT || (eat === BPF_MODIFY_RETURN && env.profile.verifier.fmodRet);
  if (at.conservative) { // "Default prog with 5 args"
    const arg = off / 8;
    if (arg > 5 || (arg === 5 && !hasRet)) {
      env.verbose(`func '${tname}' doesn't have ${arg + 1}-th argument\n`);
      return false;
    }
    return scalar;
  }
  const params = proto.params ?? [];
  const nrArgs = params.length;
  // 6.1: struct arguments take as many u64 slots as their size rounds up to (get_ctx_arg_idx).
  const arg = env.profile.verifier.structArgs ? ctxArgIdx(btf, proto.sizeOrType, params.map((p) => p.type), off) : off / 8;
  if (arg > nrArgs || (arg === nrArgs && !hasRet)) {
    env.verbose(`func '${tname}' doesn't have ${arg + 1}-th argument\n`);
    return false;
  }
  if (arg === nrArgs && eat === BPF_MODIFY_RETURN) {
    // Only functions returning an int can have their return modified (5.7).
    const rt = proto.sizeOrType === 0 ? undefined : btf.resolve(proto.sizeOrType);
    if (!rt || rt.kind !== BTF_KIND.INT || rt.sizeOrType > 8) {
      env.verbose(`ret type ${btfKindStr(rt?.kind ?? 0)} not allowed for fmod_ret\n`);
      return false;
    }
    return scalar;
  }
  const typeId = arg === nrArgs ? proto.sizeOrType : params[arg]!.type;
  const tt = btf.resolve(typeId);
  if (tt.kind === BTF_KIND.INT || (tt.kind === BTF_KIND.ENUM && env.profile.verifier.ctxEnumScalar)) return scalar;
  // 6.1: a struct argument by value is read slot by slot as scalars.
  if ((tt.kind === BTF_KIND.STRUCT || tt.kind === BTF_KIND.UNION) && env.profile.verifier.structArgs) return scalar;
  if (tt.kind !== BTF_KIND.PTR) {
    // The kernel prints the argument's (resolved) type: its name and kind, e.g. 'e' has type ENUM.
    env.verbose(`func '${tname}' arg${arg} '${tt.name}' has type ${btfKindStr(tt.kind)}. Only pointer access is allowed\n`);
    return false;
  }
  if (tt.sizeOrType === 0) return scalar; // void *: a scalar, no walking further
  if (at.tgtProgType !== undefined) return translateToVmlinux(env, btf, tt.sizeOrType, at.tgtProgType, arg);
  let btfId = tt.sizeOrType;
  let target = btf.type(btfId);
  while (target.kind === BTF_KIND.TYPEDEF || target.kind === BTF_KIND.CONST || target.kind === BTF_KIND.VOLATILE ||
    target.kind === BTF_KIND.RESTRICT || target.kind === BTF_KIND.TYPE_TAG) {
    btfId = target.sizeOrType;
    target = btf.type(btfId);
  }
  // 5.17: a pointer to an int is a scalar too (is_int_ptr).
  if (target.kind === BTF_KIND.INT && env.profile.verifier.intPtrScalar) return scalar;
  if (target.kind !== BTF_KIND.STRUCT) {
    env.verbose(`func '${tname}' arg${arg} type ${btfKindStr(target.kind)} is not a struct\n`);
    return false;
  }
  env.verbose(`func '${tname}' arg${arg} has btf_id ${btfId} type STRUCT '${target.name}'\n`);
  return { regType: RegType.PTR_TO_BTF_ID, btfId };
};

/**
 * get_ctx_arg_idx (6.1): the argument a ctx offset falls in when struct arguments take
 * roundup(size, 8) bytes and everything else 8; nr_args for the return value, nr_args + 1 past it.
 */
function ctxArgIdx(btf: import('../btf/btf.ts').Btf, retType: number, argTypes: readonly number[], off: number): number {
  const slot = (id: number): number => {
    if (id === 0) return 8;
    const t = btf.resolve(id);
    return t.kind === BTF_KIND.PTR ? 8 : Math.ceil(t.sizeOrType / 8) * 8;
  };
  let end = 0;
  for (let i = 0; i < argTypes.length; i++) {
    end += slot(argTypes[i]!);
    if (off < end) return i;
  }
  end += slot(retType);
  return off < end ? argTypes.length : argTypes.length + 1;
}

/** bpf_ctx_convert: a program type's uAPI context and the kernel struct behind it. */
const CTX_CONVERT: Readonly<Record<number, [string, string]>> = {
  [BPF_PROG_TYPE_SOCKET_FILTER]: ['__sk_buff', 'sk_buff'], [BPF_PROG_TYPE_SCHED_CLS]: ['__sk_buff', 'sk_buff'],
  [BPF_PROG_TYPE_SCHED_ACT]: ['__sk_buff', 'sk_buff'], [BPF_PROG_TYPE_XDP]: ['xdp_md', 'xdp_buff'],
};

/**
 * btf_translate_to_vmlinux: in a bpf2bpf program, only a pointer to the target type's uAPI
 * context is typed — as the kernel struct the target really receives.
 */
function translateToVmlinux(env: VerifierEnv, btf: import('../btf/btf.ts').Btf, targetId: number, progType: number, arg: number): CtxAccess | false {
  const t = btf.resolve(targetId);
  const conv = CTX_CONVERT[progType];
  if (t.kind !== BTF_KIND.STRUCT) {
    env.verbose(`arg#${arg} type is not a struct\n`);
    return false;
  }
  if (!conv || t.name !== conv[0]) {
    env.verbose(`arg#${arg} type is not a struct\n`);
    return false;
  }
  const k = env.attach?.ptrBtf?.findByNameKind(conv[1], BTF_KIND.STRUCT);
  if (!k) return false;
  return { regType: RegType.PTR_TO_BTF_ID, btfId: k.id };
}

/** The is_valid_access of each program type bpfemu loads. */
export const CTX_RULES: Readonly<Record<number, Check>> = {
  [BPF_PROG_TYPE_SOCKET_FILTER]: skFilter,
  [BPF_PROG_TYPE_KPROBE]: kprobe,
  [BPF_PROG_TYPE_SCHED_CLS]: tcClsAct,
  [BPF_PROG_TYPE_SCHED_ACT]: tcClsAct,
  [BPF_PROG_TYPE_TRACEPOINT]: tracepoint,
  [BPF_PROG_TYPE_XDP]: xdp,
  [BPF_PROG_TYPE_PERF_EVENT]: perfEvent,
  [BPF_PROG_TYPE_RAW_TRACEPOINT]: rawTracepoint,
  [BPF_PROG_TYPE_TRACING]: tracing,
};

/** check_ctx_access: what the read gives, or -EACCES with the log written. */
export function checkCtxAccess(env: VerifierEnv, _insnIdx: number, off: number, size: number, t: number): CtxAccess | number {
  const rule = CTX_RULES[env.progType];
  const r = rule ? rule(env, off, size, t) : false;
  if (r) {
    if (env.maxCtxOffset < off + size) env.maxCtxOffset = off + size;
    return r;
  }
  env.verbose(`invalid bpf_context access off=${off} size=${size}\n`);
  return -EACCES;
}
