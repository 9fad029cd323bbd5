/**
 * @fileoverview Calls (check_helper_call, check_func_arg, check_func_call,
 * prepare_func_exit): a helper's arguments checked against its prototype — map pointers,
 * keys and values of the map's sizes, memory and size pairs, the context — then R1–R5
 * clobbered and R0 typed by the return type; a bpf-to-bpf call opens a frame of its own
 * (at most 8) with R1–R5 passed, and its exit returns R0 to the caller.
 */
import { bpfFuncName, BPF_FUNC, BPF_FUNC_MAX_ID } from '../helpers/func_ids.ts';
import type { Insn } from '../isa/insn.ts';
import { tnumIsConst } from './tnum.ts';
import {
  RegState, RegType, REG_TYPE_STR, REG_LIVE_WRITTEN, markNotInit, markUnknown, markKnownZero, registerIsNull,
  typeIsPktPointer, regIsPktPointerAny, regBoundsSync, S32_MAX, type RegTypeT,
} from './reg.ts';
import { FuncState, initFuncState, funcStateStr, allRegs } from './state.ts';
import { checkRegArg, SRC_OP, DST_OP_NO_MARK } from './liveness.ts';
import {
  checkHelperMemAccess, checkCtxReg, checkMemAccess, checkPtrAlignment, mayAccessDirectPktData, BPF_READ, BPF_WRITE,
  type CallArgMeta,
} from './mem.ts';
import { markChainPrecision } from './precision.ts';
import { Arg, Ret, getFuncProto, type ArgType, type FuncProto } from './helpers_proto.ts';
import { BPF_FUNC_get_func_ip, isTracingFunc, profileFuncName, tracingFuncProto } from '../helpers/tracing_func.ts';
import { BPF_MAX_VAR_SIZ, E2BIG, EACCES, EFAULT, EINVAL, MAX_CALL_FRAMES, type VerifierEnv } from './env.ts';

const MAX_ERRNO = 4095n;
const BPF_F_RDONLY_PROG = 1 << 7;
// enum bpf_map_type (the ones with helper restrictions)
const MAP_PROG_ARRAY = 3, MAP_PERF_EVENT_ARRAY = 4, MAP_STACK_TRACE = 7, MAP_CGROUP_ARRAY = 8, MAP_ARRAY_OF_MAPS = 12,
  MAP_HASH_OF_MAPS = 13, MAP_DEVMAP = 14, MAP_CPUMAP = 16, MAP_XSKMAP = 17, MAP_DEVMAP_HASH = 25;

const funcName = (id: number): string => bpfFuncName(id) ?? 'unknown';

/** compatible_reg_types[]: which register types each argument type takes. */
const COMPATIBLE: Partial<Record<ArgType, readonly RegTypeT[]>> = (() => {
  const T = RegType;
  const keyValue = [T.PTR_TO_STACK, T.PTR_TO_PACKET, T.PTR_TO_PACKET_META, T.PTR_TO_MAP_VALUE];
  const mem = [...keyValue, T.PTR_TO_MEM];
  return {
    [Arg.PTR_TO_MAP_KEY]: keyValue, [Arg.PTR_TO_MAP_VALUE]: keyValue, [Arg.PTR_TO_UNINIT_MAP_VALUE]: keyValue,
    [Arg.PTR_TO_MAP_VALUE_OR_NULL]: keyValue, [Arg.CONST_SIZE]: [T.SCALAR_VALUE], [Arg.CONST_SIZE_OR_ZERO]: [T.SCALAR_VALUE],
    [Arg.CONST_MAP_PTR]: [T.CONST_PTR_TO_MAP], [Arg.PTR_TO_CTX]: [T.PTR_TO_CTX], [Arg.PTR_TO_CTX_OR_NULL]: [T.PTR_TO_CTX],
    [Arg.PTR_TO_MEM]: mem, [Arg.PTR_TO_MEM_OR_NULL]: mem, [Arg.PTR_TO_UNINIT_MEM]: mem,
    [Arg.PTR_TO_INT]: keyValue, [Arg.PTR_TO_LONG]: keyValue,
  };
})();
/** The kernel's list also names rdonly_buf and rdwr_buf for memory arguments. */
const EXTRA_NAMES: Partial<Record<ArgType, string>> = {
  [Arg.PTR_TO_MEM]: ', rdonly_buf, rdwr_buf', [Arg.PTR_TO_MEM_OR_NULL]: ', rdonly_buf, rdwr_buf', [Arg.PTR_TO_UNINIT_MEM]: ', rdonly_buf, rdwr_buf',
};

const argMayBeNull = (t: ArgType): boolean => t === Arg.PTR_TO_MAP_VALUE_OR_NULL || t === Arg.PTR_TO_MEM_OR_NULL || t === Arg.PTR_TO_CTX_OR_NULL;
const isMemPtr = (t: ArgType): boolean => t === Arg.PTR_TO_MEM || t === Arg.PTR_TO_MEM_OR_NULL || t === Arg.PTR_TO_UNINIT_MEM;
const isMemSize = (t: ArgType): boolean => t === Arg.CONST_SIZE || t === Arg.CONST_SIZE_OR_ZERO;

function checkRegType(env: VerifierEnv, regno: number, argType: ArgType): number {
  const reg = env.regs[regno]!;
  const compatible = COMPATIBLE[argType];
  if (!compatible) {
    env.verbose(`verifier internal error: unsupported arg type ${argType}\n`);
    return -EFAULT;
  }
  if (compatible.includes(reg.type)) return 0;
  env.verbose(`R${regno} type=${REG_TYPE_STR[reg.type]} expected=${compatible.map((t) => REG_TYPE_STR[t]).join(', ')}${EXTRA_NAMES[argType] ?? ''}\n`);
  return -EACCES;
}

/** check_func_arg */
function checkFuncArg(env: VerifierEnv, arg: number, meta: CallArgMeta, fn: FuncProto): number {
  const regno = 1 + arg;
  const regs = env.regs;
  const reg = regs[regno]!;
  const argType = (fn.args[arg] ?? Arg.DONTCARE) as ArgType;
  if (argType === Arg.DONTCARE) return 0;
  let err = checkRegArg(env, regno, SRC_OP);
  if (err) return err;
  if (argType === Arg.ANYTHING) return 0; // allow_ptr_leaks
  if (typeIsPktPointer(reg.type) && !mayAccessDirectPktData(env, meta, BPF_READ)) {
    env.verbose('helper access to the packet is not allowed\n');
    return -EACCES;
  }
  if (!(registerIsNull(reg) && argMayBeNull(argType))) {
    if ((err = checkRegType(env, regno, argType))) return err;
    if (reg.type === RegType.PTR_TO_CTX && (err = checkCtxReg(env, reg, regno)) < 0) return err;
  }
  if (argType === Arg.CONST_MAP_PTR) {
    meta.map = reg.map;
  } else if (argType === Arg.PTR_TO_MAP_KEY) {
    if (!meta.map) {
      env.verbose('invalid map_ptr to access map->key\n');
      return -EACCES;
    }
    err = checkHelperMemAccess(env, regno, meta.map.keySize, false, undefined);
  } else if (argType === Arg.PTR_TO_MAP_VALUE || (argType === Arg.PTR_TO_MAP_VALUE_OR_NULL && !registerIsNull(reg)) ||
    argType === Arg.PTR_TO_UNINIT_MAP_VALUE) {
    if (!meta.map) {
      env.verbose('invalid map_ptr to access map->value\n');
      return -EACCES;
    }
    meta.rawMode = argType === Arg.PTR_TO_UNINIT_MAP_VALUE;
    err = checkHelperMemAccess(env, regno, meta.map.valueSize, false, meta);
  } else if (isMemPtr(argType)) {
    meta.rawMode = argType === Arg.PTR_TO_UNINIT_MEM; // checked with the size argument that follows
  } else if (isMemSize(argType)) {
    const zeroSizeAllowed = argType === Arg.CONST_SIZE_OR_ZERO;
    meta.msizeMaxValue = reg.umax;
    const m = tnumIsConst(reg.varOff) ? meta : undefined;
    if (reg.smin < 0n) {
      env.verbose(`R${regno} min value is negative, either use unsigned or 'var &= const'\n`);
      return -EACCES;
    }
    if (reg.umin === 0n && (err = checkHelperMemAccess(env, regno - 1, 0, zeroSizeAllowed, m))) return err;
    if (reg.umax >= BigInt(BPF_MAX_VAR_SIZ)) {
      env.verbose(`R${regno} unbounded memory access, use 'var &= const' or 'if (var < const)'\n`);
      return -EACCES;
    }
    err = checkHelperMemAccess(env, regno - 1, Number(reg.umax), zeroSizeAllowed, m);
    if (!err) err = markChainPrecision(env, regno);
  } else if (argType === Arg.PTR_TO_INT || argType === Arg.PTR_TO_LONG) {
    const size = argType === Arg.PTR_TO_INT ? 4 : 8;
    if ((err = checkHelperMemAccess(env, regno, size, false, meta))) return err;
    err = checkPtrAlignment(env, reg, 0, size, true);
  }
  return err;
}

/** check_map_func_compatibility: maps that only some helpers take, and helpers that take only some maps. */
function checkMapFuncCompatibility(env: VerifierEnv, meta: CallArgMeta, funcId: number): number {
  const map = meta.map;
  if (!map) return 0;
  const t = map.type;
  const bad = (): number => {
    env.verbose(`cannot pass map_type ${t} into func ${funcName(funcId)}#${funcId}\n`);
    return -EINVAL;
  };
  const F = BPF_FUNC;
  const byMap: Record<number, number[]> = {
    [MAP_PROG_ARRAY]: [F.tail_call],
    [MAP_PERF_EVENT_ARRAY]: [F.perf_event_read, F.perf_event_output, F.skb_output, F.perf_event_read_value],
    [MAP_STACK_TRACE]: [F.get_stackid],
    [MAP_CGROUP_ARRAY]: [F.skb_under_cgroup, F.current_task_under_cgroup],
    [MAP_DEVMAP]: [F.redirect_map, F.map_lookup_elem], [MAP_DEVMAP_HASH]: [F.redirect_map, F.map_lookup_elem],
    [MAP_CPUMAP]: [F.redirect_map], [MAP_XSKMAP]: [F.redirect_map, F.map_lookup_elem],
    [MAP_ARRAY_OF_MAPS]: [F.map_lookup_elem], [MAP_HASH_OF_MAPS]: [F.map_lookup_elem],
  };
  if (byMap[t] && !byMap[t]!.includes(funcId)) return bad();
  const byFunc: Record<number, number[]> = {
    [F.tail_call]: [MAP_PROG_ARRAY],
    [F.perf_event_read]: [MAP_PERF_EVENT_ARRAY], [F.perf_event_output]: [MAP_PERF_EVENT_ARRAY],
    [F.perf_event_read_value]: [MAP_PERF_EVENT_ARRAY], [F.skb_output]: [MAP_PERF_EVENT_ARRAY],
    [F.get_stackid]: [MAP_STACK_TRACE],
    [F.current_task_under_cgroup]: [MAP_CGROUP_ARRAY], [F.skb_under_cgroup]: [MAP_CGROUP_ARRAY],
    [F.redirect_map]: [MAP_DEVMAP, MAP_DEVMAP_HASH, MAP_CPUMAP, MAP_XSKMAP],
  };
  if (byFunc[funcId] && !byFunc[funcId]!.includes(t)) return bad();
  if (funcId === F.tail_call && env.subprogs.length > 1) {
    env.verbose('tail_calls are not allowed in programs with bpf-to-bpf calls\n');
    return -EINVAL;
  }
  return 0;
}

/** check_helper_call */
export function checkHelperCall(env: VerifierEnv, funcId: number, insnIdx: number): number {
  // __BPF_FUNC_MAX_ID and func_id_str[] are the profile's generation's.
  const name = profileFuncName(env.profile, funcId) ?? 'unknown';
  if (funcId < 0 || funcId >= Math.max(BPF_FUNC_MAX_ID, env.profile.helpers.maxFuncId)) {
    env.verbose(`invalid func ${name}#${funcId}\n`);
    return -EINVAL;
  }
  // The trampoline-frame helpers of later kernels (tracing_func.ts) come with the load path.
  const later = isTracingFunc(funcId) ? tracingFuncProto(env.profile, env.progType, env.expectedAttachType, funcId) : undefined;
  const fn = isTracingFunc(funcId) ? later : getFuncProto(env.progType, funcId);
  if (!fn || (!later && env.implementedHelpers && !env.implementedHelpers.has(funcId))) {
    env.verbose(`unknown func ${name}#${funcId}\n`);
    return -EINVAL;
  }
  if (!env.gplCompatible && fn.gplOnly) {
    env.verbose('cannot call GPL-restricted function from non-GPL compatible program\n');
    return -EINVAL;
  }
  const meta: CallArgMeta = { rawMode: false, pktAccess: !!fn.pktAccess, regno: 0, accessSize: 0, msizeMaxValue: 0n, funcId };
  for (let i = 0; i < 5; i++) {
    const err = checkFuncArg(env, i, meta, fn);
    if (err) return err;
  }
  const F = BPF_FUNC;
  if ((funcId === F.map_lookup_elem || funcId === F.map_update_elem || funcId === F.map_delete_elem || funcId === F.tail_call) && !meta.map) {
    env.verbose('kernel subsystem misconfigured verifier\n');
    return -EINVAL;
  }
  if (meta.map && meta.map.flags & BPF_F_RDONLY_PROG && (funcId === F.map_delete_elem || funcId === F.map_update_elem)) {
    env.verbose('write into map forbidden\n');
    return -EACCES;
  }
  // Raw mode: the helper writes these stack bytes, which become initialised.
  for (let i = 0; i < meta.accessSize; i++) {
    const err = checkMemAccess(env, insnIdx, meta.regno, i, 1, BPF_WRITE, -1, false);
    if (err) return err;
  }
  const regs = env.regs;
  for (let i = 0; i <= 5; i++) {
    markNotInit(regs[i]!);
    checkRegArg(env, i, DST_OP_NO_MARK);
  }
  const r0 = regs[0]!;
  switch (fn.ret) {
    case Ret.INTEGER: markUnknown(r0); break;
    case Ret.VOID: r0.type = RegType.NOT_INIT; break;
    case Ret.PTR_TO_MAP_VALUE: case Ret.PTR_TO_MAP_VALUE_OR_NULL:
      markKnownZero(r0);
      if (!meta.map) {
        env.verbose('kernel subsystem misconfigured verifier\n');
        return -EINVAL;
      }
      r0.map = meta.map;
      r0.type = fn.ret === Ret.PTR_TO_MAP_VALUE ? RegType.PTR_TO_MAP_VALUE : RegType.PTR_TO_MAP_VALUE_OR_NULL;
      if (r0.type === RegType.PTR_TO_MAP_VALUE_OR_NULL) r0.id = ++env.idGen;
      break;
    default:
      env.verbose(`unknown return type ${fn.ret} of func ${funcName(funcId)}#${funcId}\n`);
      return -EINVAL;
  }
  // do_refine_retval_range: string and stack helpers return at most the size they were given.
  if (fn.ret === Ret.INTEGER && (funcId === F.get_stack || funcId === F.probe_read_str || funcId === F.probe_read_kernel_str ||
    funcId === F.probe_read_user_str)) {
    r0.smax = meta.msizeMaxValue;
    r0.s32max = meta.msizeMaxValue > BigInt(S32_MAX) ? S32_MAX : Number(meta.msizeMaxValue);
    r0.smin = -MAX_ERRNO;
    r0.s32min = -Number(MAX_ERRNO);
    regBoundsSync(r0);
  }
  const err = checkMapFuncCompatibility(env, meta, funcId);
  if (err) return err;
  // check_get_func_ip passed (a trampoline program): the trampoline must store the ip (5.15).
  if (funcId === BPF_FUNC_get_func_ip && later) env.callGetFuncIp = true;
  if (fn.changesPktData) for (const reg of allRegs(env.cur)) if (regIsPktPointerAny(reg)) markUnknown(reg);
  return 0;
}

/** check_func_call: enter a bpf-to-bpf callee in a new frame. */
export function checkFuncCall(env: VerifierEnv, insn: Insn): number {
  const state = env.cur;
  if (state.curframe + 1 >= MAX_CALL_FRAMES) {
    env.verbose(`the call stack of ${state.curframe + 2} frames is too deep\n`);
    return -E2BIG;
  }
  const target = env.insnIdx + insn.imm;
  const subprog = env.subprogs.findIndex((s) => s.start === target + 1);
  if (subprog < 0) {
    env.verbose(`verifier bug. No program starts at insn ${target + 1}\n`);
    return -EFAULT;
  }
  const caller = state.frame[state.curframe]!;
  const callee = new FuncState();
  initFuncState(callee, env.insnIdx, state.curframe + 1, subprog);
  state.frame[state.curframe + 1] = callee;
  // R1-R5 are passed with their parents (the liveness chain continues into the callee).
  for (let i = 1; i <= 5; i++) {
    const src = caller.regs[i]!;
    const r = new RegState();
    Object.assign(r, src);
    callee.regs[i] = r;
  }
  for (let i = 0; i <= 5; i++) {
    markNotInit(caller.regs[i]!);
    caller.regs[i]!.live |= REG_LIVE_WRITTEN;
  }
  state.curframe++;
  env.insnIdx = target;
  if (env.log.level & 3) {
    env.verbose('caller:\n');
    env.verbose(`${funcStateStr(caller, (id) => env.typeName(id))}\n`);
    env.verbose('callee:\n');
    env.verbose(`${funcStateStr(callee, (id) => env.typeName(id))}\n`);
  }
  return 0;
}

/** prepare_func_exit: back to the caller with the callee's R0. */
export function prepareFuncExit(env: VerifierEnv): number {
  const state = env.cur;
  const callee = state.frame[state.curframe]!;
  const r0 = callee.regs[0]!;
  if (r0.type === RegType.PTR_TO_STACK) {
    env.verbose('cannot return stack pointer to the caller\n');
    return -EINVAL;
  }
  state.curframe--;
  const caller = state.frame[state.curframe]!;
  const ret = new RegState();
  Object.assign(ret, r0);
  caller.regs[0] = ret;
  env.insnIdx = callee.callsite + 1;
  if (env.log.level & 3) {
    env.verbose('returning from callee:\n');
    env.verbose(`${funcStateStr(callee, (id) => env.typeName(id))}\n`);
    env.verbose(`to caller at ${env.insnIdx}:\n`);
    env.verbose(`${funcStateStr(caller, (id) => env.typeName(id))}\n`);
  }
  state.frame.length = state.curframe + 1;
  return 0;
}

export { DST_OP_NO_MARK, EACCES };
