/**
 * @fileoverview The BPF verifier (kernel/bpf/verifier.c bpf_check/do_check), privileged mode:
 * the structural checks, the functions and control flow, then an abstract interpretation of
 * every path from the first instruction — register types and bounds, the stack, memory and
 * helper rules — with state pruning, bounded loops and the 1M-instruction complexity limit.
 * It returns the errno the kernel would (0: accepted) and the verifier log in the kernel's
 * words, ending with `processed N insns (limit 1000000) max_states_per_insn …`.
 *
 *   const r = bpfCheck(insns, { progType: BPF_PROG_TYPE_XDP, logLevel: 1 });
 *   r.errno  // 0, or 13 (EACCES) with r.log.at(-2) === 'R0 !read_ok'
 */
import type { KernelProfile } from '../../kernel/profile.ts';
import {
  BPF_ALU, BPF_ALU64, BPF_LDX, BPF_STX, BPF_ST, BPF_JMP, BPF_JMP32, BPF_LD, BPF_CLASS, BPF_OP, BPF_SRC, BPF_MODE, BPF_SIZE,
  BPF_K, BPF_CALL, BPF_JA, BPF_EXIT, BPF_END, BPF_MEM, BPF_MEMSX, BPF_ATOMIC, BPF_IMM, BPF_DW, BPF_W, BPF_FETCH, BPF_XCHG,
  BPF_CMPXCHG, BPF_ADD, BPF_AND, BPF_OR, BPF_XOR, BPF_PSEUDO_CALL, BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE,
  SIZE_BYTES,
} from '../isa/opcodes.ts';
import { isLdImm64, type Insn } from '../isa/insn.ts';
import { checkStructure } from '../check.ts';
import type { Btf } from '../btf/btf.ts';
import {
  RegType, REG_TYPE_STR, markKnown, markKnownZero, type MapInfo, type RegTypeT,
} from './reg.ts';
import { FuncState, VerifierState, initFuncState, funcStateStr } from './state.ts';
import { checkRegArg, SRC_OP, DST_OP, DST_OP_NO_MARK } from './liveness.ts';
import { checkAluOp } from './alu.ts';
import { checkCondJmpOp } from './branch.ts';
import { checkMemAccess, BPF_READ, BPF_WRITE } from './mem.ts';
import { checkHelperCall, checkFuncCall, prepareFuncExit } from './calls.ts';
import { checkSubprogs, checkCfg, checkMaxStackDepth } from './cfg.ts';
import { isStateVisited } from './prune.ts';
import { insnText } from './insn_text.ts';
import { VerifierLog, BPF_LOG_LEVEL, BPF_LOG_LEVEL2, BPF_LOG_STATS } from './log.ts';
import {
  VerifierEnv, BPF_COMPLEXITY_LIMIT_INSNS, E2BIG, EACCES, EFAULT, EINVAL, ENOSPC, type AttachTarget,
} from './env.ts';

export { RegType, type MapInfo, type AttachTarget };
export const EBADF = 9;

/** An ld_imm64's map: what BPF_PSEUDO_MAP_FD / BPF_PSEUDO_MAP_VALUE refer to. */
export interface LdImm64Map { map: MapInfo; off?: number }

export interface VerifyOptions {
  progType: number;
  expectedAttachType?: number;
  /** attr.log_level: 1 instructions and branch states, 2 every state, 4 statistics; 0 errors only. */
  logLevel?: number;
  /** attr.log_size: a log that fills it fails the load with -ENOSPC (as v5.x). */
  logSize?: number;
  /** The license is GPL-compatible (GPL-only helpers allowed). Default true. */
  gplCompatible?: boolean;
  /** BPF_F_STRICT_ALIGNMENT */
  strictAlignment?: boolean;
  /** The map behind an ld_imm64 with a pseudo source (its fd is in imm); undefined: not a map fd. */
  resolveMap?: (insn: Insn, next: Insn, idx: number) => LdImm64Map | undefined;
  /** fentry/fexit: the target function. */
  attach?: AttachTarget;
  /** vmlinux BTF, for typed kernel pointers. */
  btf?: Btf;
  /** Only these helper ids exist on this machine (others are `unknown func`). */
  implementedHelpers?: ReadonlySet<number>;
  /** BPF_F_TEST_STATE_FREQ: a checkpoint at every pruning point. */
  testStateFreq?: boolean;
  /** env->allow_ptr_leaks (default true: a privileged loader); false refuses pointer leaks. */
  allowPtrLeaks?: boolean;
  /** Accept the v4 ISA (sdiv/smod, movsx, bswap, sign-extending loads, gotol) and the fetch atomics, as later kernels do. */
  v4Isa?: boolean;
  /** The kernel generation whose rules apply (default 5.5): kernel/profile.ts's verifier row. */
  profile?: KernelProfile;
}

export interface VerifierStats {
  insnProcessed: number;
  maxStatesPerInsn: number;
  totalStates: number;
  peakStates: number;
  markRead: number;
  /** Stack depth of each function. */
  stackDepth: number[];
  timeNs: bigint;
}

export interface VerifyResult {
  /** 0 when the program is accepted, else the (positive) errno the kernel returns. */
  errno: number;
  log: string[];
  stats: VerifierStats;
  /** Instructions that load through a typed kernel pointer (BPF_PROBE_MEM: a fault reads 0). */
  probeMem: number[];
  /** prog->call_get_func_ip: the program calls bpf_get_func_ip (the trampoline stores the ip). */
  callGetFuncIp?: boolean;
}

const typeMismatchOk = (t: number): boolean => t !== RegType.PTR_TO_CTX && t !== RegType.PTR_TO_SOCK_COMMON &&
  t !== RegType.PTR_TO_SOCK_COMMON_OR_NULL && t !== RegType.PTR_TO_BTF_ID && t !== RegType.PTR_TO_BTF_ID_OR_NULL;
/** reg_type_mismatch: one instruction may not use a ctx (or socket, or typed) pointer and another kind. */
const regTypeMismatch = (src: number, prev: number): boolean => src !== prev && (!typeMismatchOk(src) || !typeMismatchOk(prev));

/** check_ld_imm */
function checkLdImm(env: VerifierEnv, insn: Insn): number {
  if (BPF_SIZE(insn.code) !== BPF_DW) {
    env.verbose('invalid BPF_LD_IMM insn\n');
    return -EINVAL;
  }
  if (insn.off !== 0) {
    env.verbose('BPF_LD_IMM64 uses reserved fields\n');
    return -EINVAL;
  }
  const err = checkRegArg(env, insn.dst, DST_OP);
  if (err) return err;
  const dst = env.regs[insn.dst]!;
  if (insn.src === 0) {
    const next = env.insns[env.insnIdx + 1]!;
    dst.type = RegType.SCALAR_VALUE;
    markKnown(dst, (BigInt(next.imm >>> 0) << 32n) | BigInt(insn.imm >>> 0));
    return 0;
  }
  const aux = env.aux[env.insnIdx]!;
  markKnownZero(dst);
  dst.map = aux.map;
  if (insn.src === BPF_PSEUDO_MAP_VALUE) {
    dst.type = RegType.PTR_TO_MAP_VALUE;
    dst.off = aux.mapOff ?? 0;
  } else if (insn.src === BPF_PSEUDO_MAP_FD) {
    dst.type = RegType.CONST_PTR_TO_MAP;
  } else {
    env.verbose('bpf verifier is misconfigured\n');
    return -EINVAL;
  }
  return 0;
}

/** check_atomic (BPF_XADD of v5.5, and the v5.12+ atomic operations). */
function checkAtomic(env: VerifierEnv, insn: Insn): number {
  const classic = insn.imm === BPF_ADD;
  const word = classic ? 'BPF_XADD' : 'BPF_ATOMIC';
  if (!classic && !env.v4Isa) {
    env.verbose('BPF_XADD uses reserved fields\n');
    return -EINVAL;
  }
  const ok = [BPF_ADD, BPF_AND, BPF_OR, BPF_XOR].flatMap((o) => [o, o | BPF_FETCH]).concat([BPF_XCHG, BPF_CMPXCHG]);
  if (!ok.includes(insn.imm)) {
    env.verbose(`BPF_ATOMIC uses invalid atomic opcode ${(insn.imm >>> 0).toString(16).padStart(2, '0')}\n`);
    return -EINVAL;
  }
  if (BPF_SIZE(insn.code) !== BPF_W && BPF_SIZE(insn.code) !== BPF_DW) {
    env.verbose(classic ? 'BPF_XADD uses reserved fields\n' : 'invalid atomic operand size\n');
    return -EINVAL;
  }
  let err = checkRegArg(env, insn.src, SRC_OP);
  if (err) return err;
  if ((err = checkRegArg(env, insn.dst, SRC_OP))) return err;
  if (insn.imm === BPF_CMPXCHG && (err = checkRegArg(env, 0, SRC_OP))) return err;
  const dt = env.regs[insn.dst]!.type as RegTypeT;
  if (dt === RegType.PTR_TO_CTX || dt === RegType.PTR_TO_PACKET || dt === RegType.PTR_TO_PACKET_META || dt === RegType.PTR_TO_SOCK_COMMON) {
    env.verbose(`${word} stores into R${insn.dst} ${REG_TYPE_STR[dt]} is not allowed\n`);
    return -EACCES;
  }
  let loadReg = -1;
  if (insn.imm & BPF_FETCH) {
    loadReg = insn.imm === BPF_CMPXCHG ? 0 : insn.src;
    if ((err = checkRegArg(env, loadReg, DST_OP))) return err;
  }
  const size = SIZE_BYTES[BPF_SIZE(insn.code)]!;
  if ((err = checkMemAccess(env, env.insnIdx, insn.dst, insn.off, size, BPF_READ, loadReg, true))) return err;
  return checkMemAccess(env, env.insnIdx, insn.dst, insn.off, size, BPF_WRITE, -1, true);
}

function checkPtrTypeOnce(env: VerifierEnv, type: number): number {
  const aux = env.aux[env.insnIdx]!;
  if (aux.ptrType === RegType.NOT_INIT) aux.ptrType = type;
  else if (regTypeMismatch(type, aux.ptrType)) {
    env.verbose('same insn cannot be used with different pointers\n');
    return -EINVAL;
  }
  return 0;
}

/** update_branch_counts: a path ended; checkpoints with nothing left to explore are final. */
function updateBranchCounts(st: VerifierState | null): void {
  while (st) {
    if (--st.branches) break;
    st = st.parent;
  }
}

/** do_check: walk every path from the current state. */
function doCheck(env: VerifierEnv): number {
  const popLog = !(env.log.level & BPF_LOG_LEVEL2);
  const insns = env.insns;
  const level = env.log.level;
  let doPrintState = false;
  let prevInsnIdx = -1;
  const stateLine = (): string => `${funcStateStr(env.curFunc, (id) => env.typeName(id))}\n`;
  for (;;) {
    env.prevInsnIdx = prevInsnIdx;
    if (env.insnIdx >= insns.length) {
      env.verbose(`invalid insn idx ${env.insnIdx} insn_cnt ${insns.length}\n`);
      return -EFAULT;
    }
    const insn = insns[env.insnIdx]!;
    const cls = BPF_CLASS(insn.code);
    if (++env.insnProcessed > BPF_COMPLEXITY_LIMIT_INSNS) {
      env.verbose(`BPF program is too large. Processed ${env.insnProcessed} insn\n`);
      return -E2BIG;
    }
    let err = isStateVisited(env, env.insnIdx);
    if (err < 0) return err;
    let exit = err === 1;
    if (exit) {
      if (level & BPF_LOG_LEVEL) env.verbose(doPrintState ? `\nfrom ${env.prevInsnIdx} to ${env.insnIdx}: safe\n` : `${env.insnIdx}: safe\n`);
    } else {
      if (level & BPF_LOG_LEVEL2 || (level & BPF_LOG_LEVEL && doPrintState)) {
        env.verbose(level & BPF_LOG_LEVEL2 ? `${env.insnIdx}:` : `\nfrom ${env.prevInsnIdx} to ${env.insnIdx}:`);
        env.verbose(stateLine());
        doPrintState = false;
      }
      if (level & BPF_LOG_LEVEL) env.verbose(`${env.insnIdx}: ${insnText(env, env.insnIdx)}\n`);
      env.aux[env.insnIdx]!.seen = true;
      prevInsnIdx = env.insnIdx;
      const regs = env.regs;

      if (cls === BPF_ALU || cls === BPF_ALU64) {
        if ((err = checkAluOp(env, insn))) return err;
      } else if (cls === BPF_LDX) {
        const mode = BPF_MODE(insn.code);
        if ((mode !== BPF_MEM && mode !== BPF_MEMSX) || insn.imm !== 0) {
          env.verbose('BPF_LDX uses reserved fields\n');
          return -EINVAL;
        }
        if ((err = checkRegArg(env, insn.src, SRC_OP))) return err;
        if ((err = checkRegArg(env, insn.dst, DST_OP_NO_MARK))) return err;
        const srcType = regs[insn.src]!.type;
        if ((err = checkMemAccess(env, env.insnIdx, insn.src, insn.off, SIZE_BYTES[BPF_SIZE(insn.code)]!, BPF_READ, insn.dst, false, mode === BPF_MEMSX))) return err;
        if ((err = checkPtrTypeOnce(env, srcType))) return err;
      } else if (cls === BPF_STX) {
        const mode = BPF_MODE(insn.code);
        if (mode === BPF_ATOMIC) {
          if ((err = checkAtomic(env, insn))) return err;
          env.insnIdx++;
          continue;
        }
        if (mode !== BPF_MEM || insn.imm !== 0) {
          env.verbose('BPF_STX uses reserved fields\n');
          return -EINVAL;
        }
        if ((err = checkRegArg(env, insn.src, SRC_OP))) return err;
        if ((err = checkRegArg(env, insn.dst, SRC_OP))) return err;
        const dstType = regs[insn.dst]!.type;
        if ((err = checkMemAccess(env, env.insnIdx, insn.dst, insn.off, SIZE_BYTES[BPF_SIZE(insn.code)]!, BPF_WRITE, insn.src, false))) return err;
        if ((err = checkPtrTypeOnce(env, dstType))) return err;
      } else if (cls === BPF_ST) {
        if (BPF_MODE(insn.code) !== BPF_MEM || insn.src !== 0) {
          env.verbose('BPF_ST uses reserved fields\n');
          return -EINVAL;
        }
        if ((err = checkRegArg(env, insn.dst, SRC_OP))) return err;
        if (regs[insn.dst]!.type === RegType.PTR_TO_CTX) {
          env.verbose(`BPF_ST stores into R${insn.dst} ctx is not allowed\n`);
          return -EACCES;
        }
        if ((err = checkMemAccess(env, env.insnIdx, insn.dst, insn.off, SIZE_BYTES[BPF_SIZE(insn.code)]!, BPF_WRITE, -1, false))) return err;
      } else if (cls === BPF_JMP || cls === BPF_JMP32) {
        const op = BPF_OP(insn.code);
        env.jmpsProcessed++;
        if (op === BPF_CALL) {
          if (BPF_SRC(insn.code) !== BPF_K || insn.off !== 0 || (insn.src !== 0 && insn.src !== BPF_PSEUDO_CALL) ||
            insn.dst !== 0 || cls === BPF_JMP32) {
            env.verbose('BPF_CALL uses reserved fields\n');
            return -EINVAL;
          }
          if (env.cur.activeSpinLock) {
            env.verbose('function calls are not allowed while holding a lock\n');
            return -EINVAL;
          }
          err = insn.src === BPF_PSEUDO_CALL ? checkFuncCall(env, insn) : checkHelperCall(env, insn.imm, env.insnIdx);
          if (err) return err;
        } else if (op === BPF_JA) {
          const gotol = cls === BPF_JMP32;
          if (BPF_SRC(insn.code) !== BPF_K || insn.src !== 0 || insn.dst !== 0 || (gotol ? insn.off !== 0 : insn.imm !== 0)) {
            env.verbose('BPF_JA uses reserved fields\n');
            return -EINVAL;
          }
          env.insnIdx += (gotol ? insn.imm : insn.off) + 1;
          continue;
        } else if (op === BPF_EXIT) {
          if (BPF_SRC(insn.code) !== BPF_K || insn.imm !== 0 || insn.src !== 0 || insn.dst !== 0 || cls === BPF_JMP32) {
            env.verbose('BPF_EXIT uses reserved fields\n');
            return -EINVAL;
          }
          if (env.cur.activeSpinLock) {
            env.verbose('bpf_spin_unlock is missing\n');
            return -EINVAL;
          }
          if (env.cur.curframe) {
            if ((err = prepareFuncExit(env))) return err;
            doPrintState = true;
            continue;
          }
          if ((err = checkRegArg(env, 0, SRC_OP))) return err; // check_return_code
          if (!env.allowPtrLeaks && env.regs[0]!.type !== RegType.SCALAR_VALUE) { // is_pointer_value
            env.verbose('R0 leaks addr as return value\n');
            return -EACCES;
          }
          exit = true;
        } else {
          if ((err = checkCondJmpOp(env, insn))) return err;
        }
      } else if (cls === BPF_LD) {
        const mode = BPF_MODE(insn.code);
        if (mode !== BPF_IMM) {
          env.verbose('BPF_LD_[ABS|IND] instructions not allowed for this program type\n');
          return -EINVAL;
        }
        if ((err = checkLdImm(env, insn))) return err;
        env.insnIdx++;
      } else {
        env.verbose(`unknown insn class ${cls}\n`);
        return -EINVAL;
      }
    }
    if (exit) {
      updateBranchCounts(env.cur);
      if (!env.popStack(popLog)) break;
      prevInsnIdx = env.prevInsnIdx;
      doPrintState = true;
      continue;
    }
    env.insnIdx++;
  }
  return 0;
}

/** do_check_common for the main program: R1 = ctx, R10 = frame pointer. */
function doCheckMain(env: VerifierEnv): number {
  const state = new VerifierState();
  state.branches = 1;
  const f0 = new FuncState();
  initFuncState(f0, -1, 0, 0);
  state.frame = [f0];
  state.firstInsnIdx = 0;
  env.cur = state;
  const r1 = f0.regs[1]!;
  r1.type = RegType.PTR_TO_CTX;
  markKnownZero(r1);
  env.insnIdx = 0;
  const ret = doCheck(env);
  env.head = [];
  if (!ret && !(env.log.level & BPF_LOG_LEVEL2)) env.log.reset(0);
  return ret;
}

/** The opcodes v5.5's bpf_opcode_in_insntable() does not know, and its LDX mode check. */
function checkIsaLevel(env: VerifierEnv): number {
  for (const ins of env.insns) {
    if (ins.code === (BPF_ALU64 | BPF_END) || ins.code === (BPF_JMP32 | BPF_JA)) {
      env.verbose(`unknown opcode ${ins.code.toString(16).padStart(2, '0')}\n`);
      return -EINVAL;
    }
    if (BPF_CLASS(ins.code) === BPF_LDX && BPF_MODE(ins.code) === BPF_MEMSX) {
      env.verbose('BPF_LDX uses reserved fields\n');
      return -EINVAL;
    }
  }
  return 0;
}

/** resolve_pseudo_ldimm64: each map ld_imm64's map (and offset into its value). */
function resolveLdImm64(env: VerifierEnv, resolve: VerifyOptions['resolveMap']): number {
  const insns = env.insns;
  for (let i = 0; i < insns.length; i++) {
    const ins = insns[i]!;
    if (!isLdImm64(ins)) continue;
    const next = insns[i + 1]!;
    if (ins.src === 0) { i++; continue; }
    if ((ins.src !== BPF_PSEUDO_MAP_FD && ins.src !== BPF_PSEUDO_MAP_VALUE) || (ins.src === BPF_PSEUDO_MAP_FD && next.imm !== 0)) {
      env.verbose('unrecognized bpf_ld_imm64 insn\n');
      return -EINVAL;
    }
    const r = resolve?.(ins, next, i);
    if (!r) {
      env.verbose(`fd ${ins.imm} is not pointing to valid bpf_map\n`);
      return -EBADF;
    }
    if (ins.src === BPF_PSEUDO_MAP_VALUE) {
      const off = next.imm >>> 0;
      if (off >= 1 << 29) {
        env.verbose(`direct value offset of ${off} is not allowed\n`);
        return -EINVAL;
      }
      if (r.map.type !== 2) {
        env.verbose('no direct value access support for this map type\n');
        return -EINVAL;
      }
      if (off >= r.map.valueSize) {
        env.verbose(`invalid access to map value pointer, value_size=${r.map.valueSize} off=${off}\n`);
        return -EACCES;
      }
      env.aux[i]!.mapOff = off;
    }
    env.aux[i]!.map = r.map;
    i++;
  }
  return 0;
}

/** bpf_check: verify a program as PROG_LOAD does. */
export function bpfCheck(insns: readonly Insn[], opts: VerifyOptions): VerifyResult {
  const t0 = process.hrtime.bigint();
  const level = opts.logLevel ?? 0;
  const log = new VerifierLog(level);
  const env = new VerifierEnv({
    insns: insns.slice(), progType: opts.progType, expectedAttachType: opts.expectedAttachType ?? 0,
    gplCompatible: opts.gplCompatible ?? true, strictAlignment: opts.strictAlignment ?? false,
    attach: opts.attach, btf: opts.btf, log, implementedHelpers: opts.implementedHelpers, v4Isa: opts.v4Isa,
    profile: opts.profile,
  });
  env.testStateFreq = opts.testStateFreq ?? false;
  env.allowPtrLeaks = opts.allowPtrLeaks ?? true;
  let ret: number;
  const bad = checkStructure(env.insns);
  if (bad) {
    log.write(`${bad.msg}\n`);
    ret = -bad.errno;
  } else {
    ret = checkSubprogs(env);
    if (!ret && !env.v4Isa) ret = checkIsaLevel(env);
    if (!ret) ret = resolveLdImm64(env, opts.resolveMap);
    if (!ret) ret = checkCfg(env);
    if (!ret) ret = doCheckMain(env);
    if (!ret) ret = checkMaxStackDepth(env);
  }
  const timeNs = process.hrtime.bigint() - t0;
  if (level & BPF_LOG_STATS) {
    log.write(`verification time ${timeNs / 1000n} usec\n`);
    log.write(`stack depth ${env.subprogs.map((s) => s.stackDepth).join('+')}\n`);
  }
  log.write(`processed ${env.insnProcessed} insns (limit ${BPF_COMPLEXITY_LIMIT_INSNS}) max_states_per_insn ${env.maxStatesPerInsn} ` +
    `total_states ${env.totalStates} peak_states ${env.peakStates} mark_read ${env.longestMarkReadWalk}\n`);
  if (level && opts.logSize !== undefined && Buffer.byteLength(log.text()) >= opts.logSize - 1) ret = -ENOSPC;
  return {
    errno: ret === 0 ? 0 : -ret,
    log: log.lines(),
    stats: {
      insnProcessed: env.insnProcessed, maxStatesPerInsn: env.maxStatesPerInsn, totalStates: env.totalStates,
      peakStates: env.peakStates, markRead: env.longestMarkReadWalk, stackDepth: env.subprogs.map((s) => s.stackDepth), timeNs,
    },
    probeMem: env.aux.flatMap((a, i) => (a.probeMem ? [i] : [])),
    ...(env.callGetFuncIp ? { callGetFuncIp: true } : {}),
  };
}
