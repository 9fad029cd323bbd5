/**
 * @fileoverview State pruning (is_state_visited, states_equal, regsafe, stacksafe): at a
 * pruning point the current state is compared with the states already explored there; if one
 * of them is at least as general — every register and stack slot it read is, in the current
 * state, a value it covers — the path is safe and needs no more exploring. Otherwise the
 * current state may become a checkpoint: the parent of what follows, for liveness. A loop
 * whose state comes back unchanged is refused as infinite.
 */
import { tnumIn } from './tnum.ts';
import { RegState, RegType, REG_LIVE_READ, REG_LIVE_DONE, REG_LIVE_NONE, regEqual, rangeWithin } from './reg.ts';
import {
  BPF_REG_FP, BPF_REG_SIZE, STACK_INVALID, STACK_MISC, STACK_ZERO, copyVerifierState, isSpilledReg, type FuncState,
  type VerifierState,
} from './state.ts';
import { cleanLiveStates, propagateLiveness } from './liveness.ts';
import { markAllScalarsImprecise, propagatePrecision, pushJmpHistory } from './precision.ts';
import { EINVAL, type VerifierEnv } from './env.ts';

type IdMap = Map<number, number>;

/** check_ids: an old id must always map to the same current id. */
function checkIds(oldId: number, curId: number, idmap: IdMap): boolean {
  const seen = idmap.get(oldId);
  if (seen === undefined) { idmap.set(oldId, curId); return true; }
  return seen === curId;
}

/** regsafe: rold being safe implies rcur is. */
function regsafe(rold: RegState, rcur: RegState, idmap: IdMap): boolean {
  if (!(rold.live & REG_LIVE_READ)) return true; // never read by the explored continuation
  const equal = regEqual(rold, rcur);
  if (rold.type === RegType.PTR_TO_STACK) return equal && rold.frameno === rcur.frameno;
  if (equal) return true;
  if (rold.type === RegType.NOT_INIT) return true;
  if (rcur.type === RegType.NOT_INIT) return false;
  switch (rold.type) {
    case RegType.SCALAR_VALUE:
      if (rcur.type !== RegType.SCALAR_VALUE) return false;
      if (!rold.precise) return true;
      return rangeWithin(rold, rcur) && tnumIn(rold.varOff, rcur.varOff);
    case RegType.PTR_TO_MAP_VALUE:
      return rold.type === rcur.type && rold.off === rcur.off && rold.map === rcur.map &&
        rangeWithin(rold, rcur) && tnumIn(rold.varOff, rcur.varOff);
    case RegType.PTR_TO_MAP_VALUE_OR_NULL:
      if (rcur.type !== RegType.PTR_TO_MAP_VALUE_OR_NULL) return false;
      if (rold.off !== rcur.off || rold.map !== rcur.map) return false;
      return checkIds(rold.id, rcur.id, idmap);
    case RegType.PTR_TO_PACKET_META: case RegType.PTR_TO_PACKET:
      if (rcur.type !== rold.type) return false;
      if (rold.range > rcur.range) return false;
      if (rold.off !== rcur.off) return false;
      if (rold.id && !checkIds(rold.id, rcur.id, idmap)) return false;
      return rangeWithin(rold, rcur) && tnumIn(rold.varOff, rcur.varOff);
    default:
      return false;
  }
}

/** stacksafe */
function stacksafe(old: FuncState, cur: FuncState, idmap: IdMap): boolean {
  for (let i = 0; i < old.allocatedStack; i++) {
    const spi = Math.floor(i / BPF_REG_SIZE);
    const os = old.stack[spi]!;
    if (!(os.spilledPtr.live & REG_LIVE_READ)) { i += BPF_REG_SIZE - 1; continue; }
    const ot = os.slotType[i % BPF_REG_SIZE]!;
    if (ot === STACK_INVALID) continue;
    if (i >= cur.allocatedStack) return false;
    const cs = cur.stack[spi]!;
    const ct = cs.slotType[i % BPF_REG_SIZE]!;
    if (ot === STACK_MISC && ct === STACK_ZERO) continue;
    if (ot !== ct) return false;
    if (i % BPF_REG_SIZE !== BPF_REG_SIZE - 1) continue;
    if (!isSpilledReg(os)) continue;
    if (!regsafe(os.spilledPtr, cs.spilledPtr, idmap)) return false;
  }
  return true;
}

function funcStatesEqual(old: FuncState, cur: FuncState): boolean {
  const idmap: IdMap = new Map();
  for (let i = 0; i < old.regs.length; i++) if (!regsafe(old.regs[i]!, cur.regs[i]!, idmap)) return false;
  return stacksafe(old, cur, idmap);
}

function statesEqual(old: VerifierState, cur: VerifierState): boolean {
  if (old.curframe !== cur.curframe) return false;
  if (old.activeSpinLock !== cur.activeSpinLock) return false;
  for (let i = 0; i <= old.curframe; i++) {
    if (old.frame[i]!.callsite !== cur.frame[i]!.callsite) return false;
    if (!funcStatesEqual(old.frame[i]!, cur.frame[i]!)) return false;
  }
  return true;
}

/** states_maybe_looping: the current frame's registers are exactly the old ones. */
function statesMaybeLooping(old: VerifierState, cur: VerifierState): boolean {
  const fr = cur.curframe;
  if (old.curframe !== fr) return false;
  const a = old.frame[fr]!, b = cur.frame[fr]!;
  for (let i = 0; i < a.regs.length; i++) if (!regEqual(a.regs[i]!, b.regs[i]!)) return false;
  return true;
}

/**
 * is_state_visited: 1 when an explored state covers the current one (prune), 0 to continue
 * (possibly after making the current state a checkpoint), <0 on error.
 */
export function isStateVisited(env: VerifierEnv, insnIdx: number): number {
  const cur = env.cur;
  cur.lastInsnIdx = env.prevInsnIdx;
  if (!env.aux[insnIdx]!.prunePoint) return 0;
  let addNewState = env.testStateFreq || env.jmpsProcessed - env.prevJmpsProcessed >= 2 && env.insnProcessed - env.prevInsnProcessed >= 8;
  cleanLiveStates(env, insnIdx, cur);
  let list = env.explored.get(insnIdx);
  if (!list) { list = []; env.explored.set(insnIdx, list); }
  let statesCnt = 0;
  for (let k = 0; k < list.length; k++) {
    const sl = list[k]!;
    statesCnt++;
    if (sl.state.branches) {
      if (statesMaybeLooping(sl.state, cur) && statesEqual(sl.state, cur)) {
        env.verbose(`infinite loop detected at insn ${insnIdx}\n`);
        return -EINVAL;
      }
      // Inside a loop: add a state only now and then (distinct iterations rarely prune).
      if (env.jmpsProcessed - env.prevJmpsProcessed < 20 && env.insnProcessed - env.prevInsnProcessed < 100) addNewState = false;
    } else if (statesEqual(sl.state, cur)) {
      sl.hitCnt++;
      let err = propagateLiveness(env, sl.state, cur);
      if (!err) { pushJmpHistory(env, cur); err = propagatePrecision(env, sl.state); }
      if (err) return err;
      return 1;
    }
    if (addNewState) sl.missCnt++;
    if (sl.missCnt > sl.hitCnt * 3 + 3) { // rarely useful: forget it
      list.splice(k--, 1);
      if (sl.state.frame[0]!.regs[0]!.live & REG_LIVE_DONE) env.peakStates--;
    }
  }
  if (env.maxStatesPerInsn < statesCnt) env.maxStatesPerInsn = statesCnt;
  if (!addNewState) { pushJmpHistory(env, cur); return 0; }
  env.totalStates++;
  env.peakStates++;
  env.prevJmpsProcessed = env.jmpsProcessed;
  env.prevInsnProcessed = env.insnProcessed;
  markAllScalarsImprecise(cur);
  const nw = copyVerifierState(cur);
  nw.insnIdx = insnIdx;
  cur.parent = nw;
  cur.firstInsnIdx = insnIdx;
  cur.jmpHistory = [];
  list.unshift({ state: nw, hitCnt: 0, missCnt: 0 });
  // Connect the current state to the new checkpoint: its registers' reads now mark nw's.
  for (let j = 0; j <= cur.curframe; j++) {
    const f = cur.frame[j]!, nf = nw.frame[j]!;
    for (let i = j < cur.curframe ? 6 : 0; i < BPF_REG_FP; i++) f.regs[i]!.parent = nf.regs[i]!;
    for (let i = 0; i < BPF_REG_FP; i++) f.regs[i]!.live = REG_LIVE_NONE;
    for (let i = 0; i < f.stack.length; i++) {
      f.stack[i]!.spilledPtr.live = REG_LIVE_NONE;
      f.stack[i]!.spilledPtr.parent = nf.stack[i]!.spilledPtr;
    }
  }
  return 0;
}
