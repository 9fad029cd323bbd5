/**
 * @fileoverview The program's shape before any state is tracked (check_subprogs, check_cfg,
 * check_max_stack_depth): function boundaries from the bpf-to-bpf calls, a depth-first walk of
 * the control flow that refuses unreachable instructions and recursion (loops are allowed, as
 * for privileged programs since v5.3), the pruning points (jump targets and branches), and
 * after verification the combined stack of the deepest call chain.
 */
import {
  BPF_JMP, BPF_JMP32, BPF_CALL, BPF_EXIT, BPF_JA, BPF_CLASS, BPF_OP, BPF_PSEUDO_CALL, BPF_LD, BPF_MODE, BPF_ABS, BPF_IND,
} from '../isa/opcodes.ts';
import { isLdImm64 } from '../isa/insn.ts';
import { BPF_FUNC } from '../helpers/func_ids.ts';
import { E2BIG, EACCES, EINVAL, MAX_BPF_STACK, MAX_CALL_FRAMES, BPF_MAX_SUBPROGS, type VerifierEnv } from './env.ts';

/** check_subprogs: the functions, sorted by start (jump ranges are checked by checkStructure). */
export function checkSubprogs(env: VerifierEnv): number {
  const insns = env.insns;
  const starts = new Set<number>([0]);
  for (let i = 0; i < insns.length; i++) {
    const ins = insns[i]!;
    if (ins.code !== (BPF_JMP | BPF_CALL) || ins.src !== BPF_PSEUDO_CALL) continue;
    const t = i + ins.imm + 1;
    if (t < 0 || t >= insns.length) {
      env.verbose('call to invalid destination\n');
      return -EINVAL;
    }
    starts.add(t);
    if (starts.size > BPF_MAX_SUBPROGS) {
      env.verbose('too many subprograms\n');
      return -E2BIG;
    }
  }
  env.subprogs = [...starts].sort((a, b) => a - b).map((start) => ({ start, stackDepth: 0, hasTailCall: false, hasLdAbs: false }));
  if (env.log.level & 2) env.subprogs.forEach((s, i) => env.verbose(`func#${i} @${s.start}\n`));
  for (let k = 0; k < env.subprogs.length; k++) {
    const s = env.subprogs[k]!, end = env.subprogs[k + 1]?.start ?? insns.length;
    for (let i = s.start; i < end; i++) {
      const ins = insns[i]!;
      if (ins.code === (BPF_JMP | BPF_CALL) && ins.imm === BPF_FUNC.tail_call && ins.src !== BPF_PSEUDO_CALL) s.hasTailCall = true;
      if (BPF_CLASS(ins.code) === BPF_LD && (BPF_MODE(ins.code) === BPF_ABS || BPF_MODE(ins.code) === BPF_IND)) s.hasLdAbs = true;
    }
  }
  return 0;
}

const DISCOVERED = 0x10, EXPLORED = 0x20, FALLTHROUGH = 1, BRANCH = 2;

/** check_cfg: every instruction reachable, no recursion; marks the pruning points. */
export function checkCfg(env: VerifierEnv): number {
  const insns = env.insns, n = insns.length;
  const state = new Int32Array(n);
  const stack: number[] = [0];
  state[0] = DISCOVERED;
  const mark = (i: number): void => { if (i < n) env.aux[i]!.prunePoint = true; };
  /** push_insn: 1 when w was pushed, 0 when the edge is done, <0 on error. */
  const push = (t: number, w: number, e: number, loopOk: boolean): number => {
    if (e === FALLTHROUGH && state[t]! >= (DISCOVERED | FALLTHROUGH)) return 0;
    if (e === BRANCH && state[t]! >= (DISCOVERED | BRANCH)) return 0;
    if (w < 0 || w >= n) {
      env.verbose(`jump out of range from insn ${t} to ${w}\n`);
      return -EINVAL;
    }
    if (e === BRANCH) mark(w);
    if (state[w] === 0) {
      state[t] = DISCOVERED | e;
      state[w] = DISCOVERED;
      stack.push(w);
      return 1;
    }
    if ((state[w]! & 0xf0) === DISCOVERED) {
      if (loopOk) return 0;
      env.verbose(`back-edge from insn ${t} to ${w}\n`);
      return -EINVAL;
    }
    state[t] = DISCOVERED | e;
    return 0;
  };
  while (stack.length) {
    const t = stack.at(-1)!;
    const ins = insns[t]!;
    const cls = BPF_CLASS(ins.code);
    let ret = 0;
    let done = false;
    const step = (r: number): boolean => { ret = r; return r !== 0; };
    if (cls === BPF_JMP || cls === BPF_JMP32) {
      const op = BPF_OP(ins.code);
      if (op === BPF_EXIT) {
        done = true;
      } else if (op === BPF_CALL) {
        if (step(push(t, t + 1, FALLTHROUGH, false))) { if (ret < 0) return ret; continue; }
        mark(t + 1);
        if (ins.src === BPF_PSEUDO_CALL) {
          mark(t);
          if (step(push(t, t + ins.imm + 1, BRANCH, false))) { if (ret < 0) return ret; continue; }
        }
        done = true;
      } else if (op === BPF_JA) {
        const off = cls === BPF_JMP32 ? ins.imm : ins.off;
        if (step(push(t, t + off + 1, FALLTHROUGH, true))) { if (ret < 0) return ret; continue; }
        mark(t + off + 1);
        mark(t + 1);
        done = true;
      } else {
        mark(t);
        if (step(push(t, t + 1, FALLTHROUGH, true))) { if (ret < 0) return ret; continue; }
        if (step(push(t, t + ins.off + 1, BRANCH, true))) { if (ret < 0) return ret; continue; }
        done = true;
      }
    } else {
      const next = isLdImm64(ins) ? t + 2 : t + 1;
      if (step(push(t, next, FALLTHROUGH, false))) { if (ret < 0) return ret; continue; }
      done = true;
    }
    if (done) {
      state[t] = EXPLORED;
      stack.pop();
    }
  }
  for (let i = 0; i < n; i++) {
    if (state[i] === EXPLORED) continue;
    if (i > 0 && isLdImm64(insns[i - 1]!) && state[i - 1] === EXPLORED) continue; // second half of ld_imm64
    env.verbose(`unreachable insn ${i}\n`);
    return -EINVAL;
  }
  return 0;
}

/** check_max_stack_depth: the deepest call chain's stack, each frame rounded up to 32 bytes. */
export function checkMaxStackDepth(env: VerifierEnv): number {
  const insns = env.insns, subprogs = env.subprogs;
  const idxOf = (start: number): number => subprogs.findIndex((s) => s.start === start);
  const walk = (idx: number, frame: number, depth: number, tailCallSeen: boolean): number => {
    const sp = subprogs[idx]!;
    if (idx && sp.hasTailCall && depth >= 256) {
      env.verbose(`tail_calls are not allowed when call stack of previous frames is ${depth} bytes. Too large\n`);
      return -EACCES;
    }
    depth += Math.ceil(Math.max(sp.stackDepth, 1) / 32) * 32;
    if (depth > MAX_BPF_STACK) {
      env.verbose(`combined stack size of ${frame + 1} calls is ${depth}. Too large\n`);
      return -EACCES;
    }
    const end = subprogs[idx + 1]?.start ?? insns.length;
    for (let i = sp.start; i < end; i++) {
      const ins = insns[i]!;
      if (ins.code !== (BPF_JMP | BPF_CALL) || ins.src !== BPF_PSEUDO_CALL) continue;
      if (frame + 1 >= MAX_CALL_FRAMES) {
        env.verbose(`the call stack of ${frame + 1} frames is too deep !\n`);
        return -E2BIG;
      }
      const err = walk(idxOf(i + ins.imm + 1), frame + 1, depth, tailCallSeen);
      if (err) return err;
    }
    return 0;
  };
  return walk(0, 0, 0, false);
}
