/**
 * @fileoverview Register liveness (mark_reg_read, check_reg_arg, propagate_liveness,
 * clean_live_states): a read marks the register's parent — the same register in the last
 * checkpoint — as read, walking up the chain of checkpoints until a write on the way screens
 * it. Once all paths from a checkpoint are explored, its unread registers and stack slots are
 * cleared, so that pruning compares only what the rest of the program can read.
 */
import {
  RegState, RegType, REG_LIVE_READ, REG_LIVE_READ32, REG_LIVE_READ64, REG_LIVE_WRITTEN, REG_LIVE_DONE, REG_TYPE_STR,
  markNotInit, markUnknown,
} from './reg.ts';
import { BPF_REG_FP, MAX_BPF_REG, STACK_INVALID, type VerifierState } from './state.ts';
import { EACCES, EFAULT, EINVAL, type VerifierEnv } from './env.ts';

export const SRC_OP = 0, DST_OP = 1, DST_OP_NO_MARK = 2;

/** mark_reg_read: `state` (whose parent is `parent`) was read; 0 or -EFAULT. */
export function markRegRead(env: VerifierEnv, state: RegState, parent: RegState | null, flag: number): number {
  let writes = parent === state.parent;
  let cnt = 0;
  while (parent) {
    if (writes && state.live & REG_LIVE_WRITTEN) break;
    if (parent.live & REG_LIVE_DONE) {
      env.verbose(`verifier BUG type ${REG_TYPE_STR[parent.type]} var_off ${BigInt.asIntN(64, parent.varOff.value)} off ${parent.off}\n`);
      return -EFAULT;
    }
    if ((parent.live & REG_LIVE_READ) === flag || parent.live & REG_LIVE_READ64) break;
    parent.live |= flag;
    if (flag === REG_LIVE_READ64) parent.live &= ~REG_LIVE_READ32;
    state = parent;
    parent = state.parent;
    writes = true;
    cnt++;
  }
  if (env.longestMarkReadWalk < cnt) env.longestMarkReadWalk = cnt;
  return 0;
}

/** check_reg_arg: a register used as source (must be initialised) or destination (not R10). */
export function checkRegArg(env: VerifierEnv, regno: number, t: number): number {
  if (regno >= MAX_BPF_REG) {
    env.verbose(`R${regno} is invalid\n`);
    return -EINVAL;
  }
  const reg = env.regs[regno]!;
  if (t === SRC_OP) {
    if (reg.type === RegType.NOT_INIT) {
      env.verbose(`R${regno} !read_ok\n`);
      return -EACCES;
    }
    if (regno === BPF_REG_FP) return 0;
    return markRegRead(env, reg, reg.parent, REG_LIVE_READ64);
  }
  if (regno === BPF_REG_FP) {
    env.verbose('frame pointer is read only\n');
    return -EACCES;
  }
  reg.live |= REG_LIVE_WRITTEN;
  if (t === DST_OP) markUnknown(reg);
  return 0;
}

function propagateLivenessReg(env: VerifierEnv, reg: RegState, parentReg: RegState): number {
  const parentFlag = parentReg.live & REG_LIVE_READ, flag = reg.live & REG_LIVE_READ;
  if (parentFlag === REG_LIVE_READ64 || !flag || parentFlag === flag) return 0;
  return markRegRead(env, reg, parentReg, flag);
}

/** propagate_liveness: what the explored state `vstate` read, `vparent` (the pruned path) reads too. */
export function propagateLiveness(env: VerifierEnv, vstate: VerifierState, vparent: VerifierState): number {
  if (vparent.curframe !== vstate.curframe) return -EFAULT;
  for (let frame = 0; frame <= vstate.curframe; frame++) {
    const parent = vparent.frame[frame]!, state = vstate.frame[frame]!;
    for (let i = frame < vstate.curframe ? 6 : 0; i < BPF_REG_FP; i++) {
      const err = propagateLivenessReg(env, state.regs[i]!, parent.regs[i]!);
      if (err < 0) return err;
    }
    const n = Math.min(state.stack.length, parent.stack.length);
    for (let i = 0; i < n; i++) {
      const err = propagateLivenessReg(env, state.stack[i]!.spilledPtr, parent.stack[i]!.spilledPtr);
      if (err < 0) return err;
    }
  }
  return 0;
}

/** clean_verifier_state: final liveness; forget what was never read. */
function cleanVerifierState(st: VerifierState): void {
  if (st.frame[0]!.regs[0]!.live & REG_LIVE_DONE) return;
  for (let f = 0; f <= st.curframe; f++) {
    const fs = st.frame[f]!;
    for (let i = 0; i < BPF_REG_FP; i++) {
      const r = fs.regs[i]!;
      const live = r.live;
      r.live |= REG_LIVE_DONE;
      if (!(live & REG_LIVE_READ)) markNotInit(r);
    }
    for (const slot of fs.stack) {
      const live = slot.spilledPtr.live;
      slot.spilledPtr.live |= REG_LIVE_DONE;
      if (!(live & REG_LIVE_READ)) {
        markNotInit(slot.spilledPtr);
        slot.slotType.fill(STACK_INVALID);
      }
    }
  }
}

/** clean_live_states: every explored state at `insn` with no path left to explore is final. */
export function cleanLiveStates(env: VerifierEnv, insn: number, cur: VerifierState): void {
  for (const sl of env.explored.get(insn) ?? []) {
    if (sl.state.branches) continue;
    if (sl.state.insnIdx !== insn || sl.state.curframe !== cur.curframe) continue;
    let same = true;
    for (let i = 0; i <= cur.curframe; i++) if (sl.state.frame[i]!.callsite !== cur.frame[i]!.callsite) same = false;
    if (same) cleanVerifierState(sl.state);
  }
}
