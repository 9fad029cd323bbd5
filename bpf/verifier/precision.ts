/**
 * @fileoverview Scalar precision (mark_chain_precision and backtrack_insn): scalars start
 * imprecise, and an imprecise scalar in an explored state matches any scalar when pruning. When
 * a scalar's exact range matters — a pointer offset, a branch the bounds decide, a helper's
 * size — the verifier walks the current path backwards (its jump history, then the parent
 * checkpoints) and marks every register and stack slot that computed it as precise, so that
 * those checkpoints only prune states whose ranges they cover. What the walk cannot follow
 * (calls, exits) falls back to marking every scalar of the parents precise.
 */
import {
  BPF_ALU, BPF_ALU64, BPF_LDX, BPF_STX, BPF_ST, BPF_JMP, BPF_JMP32, BPF_LD, BPF_CLASS, BPF_OP, BPF_SRC, BPF_MODE, BPF_X,
  BPF_MOV, BPF_CALL, BPF_EXIT, BPF_PSEUDO_CALL, BPF_IND, BPF_ABS, BPF_REG_FP,
} from '../isa/opcodes.ts';
import { RegType, REG_LIVE_READ } from './reg.ts';
import { BPF_REG_SIZE, isSpilledReg, funcStateStr, type VerifierState } from './state.ts';
import { EFAULT, ENOTSUPP, type VerifierEnv } from './env.ts';
import { BPF_LOG_LEVEL } from './log.ts';
import { insnText } from './insn_text.ts';

export interface JmpHistoryEntry { idx: number; prevIdx: number }

/** push_jmp_history: remember how the path reached this pruning point. */
export function pushJmpHistory(env: VerifierEnv, cur: VerifierState): void {
  cur.jmpHistory.push({ idx: env.insnIdx, prevIdx: env.prevInsnIdx });
}

/** backtrack_insn: which registers and stack slots needed precise values before `idx`. */
function backtrackInsn(env: VerifierEnv, idx: number, m: { reg: number; stack: bigint }): number {
  const insn = env.insns[idx]!;
  const cls = BPF_CLASS(insn.code), op = BPF_OP(insn.code);
  const dreg = 1 << insn.dst, sreg = 1 << insn.src;
  if (insn.code === 0) return 0;
  if (env.log.level & BPF_LOG_LEVEL) env.verbose(`regs=${m.reg.toString(16)} stack=${m.stack.toString(16)} before ${idx}: ${insnText(env, idx)}\n`);
  if (cls === BPF_ALU || cls === BPF_ALU64) {
    if (!(m.reg & dreg)) return 0;
    if (op === BPF_MOV) {
      m.reg &= ~dreg;
      if (BPF_SRC(insn.code) === BPF_X) m.reg |= sreg;
    } else if (BPF_SRC(insn.code) === BPF_X) {
      m.reg |= sreg;
    }
  } else if (cls === BPF_LDX) {
    if (!(m.reg & dreg)) return 0;
    m.reg &= ~dreg;
    if (insn.src !== BPF_REG_FP) return 0;
    const spi = Math.floor((-insn.off - 1) / BPF_REG_SIZE);
    if (spi >= 64 || spi < 0) return -EFAULT;
    m.stack |= 1n << BigInt(spi);
  } else if (cls === BPF_STX || cls === BPF_ST) {
    if (m.reg & dreg) return -ENOTSUPP; // a scalar used to address memory: pointer subtraction
    if (insn.dst !== BPF_REG_FP) return 0;
    const spi = Math.floor((-insn.off - 1) / BPF_REG_SIZE);
    if (spi >= 64 || spi < 0) return -EFAULT;
    const bit = 1n << BigInt(spi);
    if (!(m.stack & bit)) return 0;
    m.stack &= ~bit;
    if (cls === BPF_STX) m.reg |= sreg;
  } else if (cls === BPF_JMP || cls === BPF_JMP32) {
    if (op === BPF_CALL) {
      if (insn.src === BPF_PSEUDO_CALL) return -ENOTSUPP;
      m.reg &= ~1; // a helper sets R0
      if (m.reg & 0x3f) return -EFAULT; // R1-R5 are not defined across a helper call
    } else if (op === BPF_EXIT) {
      return -ENOTSUPP;
    } else if (BPF_SRC(insn.code) === BPF_X) {
      if (m.reg & (dreg | sreg)) m.reg |= dreg | sreg;
    }
  } else if (cls === BPF_LD) {
    if (!(m.reg & dreg)) return 0;
    m.reg &= ~dreg;
    if (BPF_MODE(insn.code) === BPF_IND || BPF_MODE(insn.code) === BPF_ABS) return -ENOTSUPP;
  }
  return 0;
}

/** mark_all_scalars_precise: the conservative fallback, for st and every parent of it. */
function markAllScalarsPrecise(st: VerifierState): void {
  for (let s: VerifierState | null = st; s; s = s.parent) {
    for (let i = 0; i <= s.curframe; i++) {
      const f = s.frame[i]!;
      for (let j = 0; j < BPF_REG_FP; j++) if (f.regs[j]!.type === RegType.SCALAR_VALUE) f.regs[j]!.precise = true;
      for (const slot of f.stack) if (isSpilledReg(slot) && slot.spilledPtr.type === RegType.SCALAR_VALUE) slot.spilledPtr.precise = true;
    }
  }
}

/** mark_all_scalars_imprecise: a new checkpoint forgets the precision it inherited. */
export function markAllScalarsImprecise(st: VerifierState): void {
  for (let i = 0; i <= st.curframe; i++) {
    const f = st.frame[i]!;
    for (let j = 0; j < BPF_REG_FP; j++) if (f.regs[j]!.type === RegType.SCALAR_VALUE) f.regs[j]!.precise = false;
    for (const slot of f.stack) if (isSpilledReg(slot) && slot.spilledPtr.type === RegType.SCALAR_VALUE) slot.spilledPtr.precise = false;
  }
}

/** __mark_chain_precision: register `regno` (or stack slot `spi`) of `frame` needs its exact value. */
export function markChainPrecisionFrame(env: VerifierEnv, frame: number, regno: number, spi: number): number {
  let st: VerifierState | null = env.cur;
  let firstIdx = st.firstInsnIdx, lastIdx = env.insnIdx;
  const m = { reg: regno >= 0 ? 1 << regno : 0, stack: spi >= 0 ? 1n << BigInt(spi) : 0n };
  let func = st.frame[frame];
  if (!func) return 0;
  let newMarks = false;
  if (regno >= 0) {
    if (func.regs[regno]!.type !== RegType.SCALAR_VALUE) return -EFAULT;
    newMarks = true;
  }
  if (spi >= 0) {
    const slot = func.stack[spi];
    if (!slot || !isSpilledReg(slot) || slot.spilledPtr.type !== RegType.SCALAR_VALUE) m.stack = 0n;
    else newMarks = true;
  }
  if (!newMarks || (!m.reg && !m.stack)) return 0;
  let skipFirst = true;
  for (;;) {
    let history = st.jmpHistory.length;
    if (env.log.level & BPF_LOG_LEVEL) env.verbose(`last_idx ${lastIdx} first_idx ${firstIdx}\n`);
    if (lastIdx < 0) return 0;
    for (let i = lastIdx; ;) {
      let err = 0;
      if (skipFirst) skipFirst = false;
      else err = backtrackInsn(env, i, m);
      if (err === -ENOTSUPP) { markAllScalarsPrecise(st); return 0; }
      if (err) { markAllScalarsPrecise(st); return 0; }
      if (!m.reg && !m.stack) return 0;
      if (i === firstIdx) break;
      if (history && st.jmpHistory[history - 1]!.idx === i) i = st.jmpHistory[--history]!.prevIdx;
      else i--;
      if (i < 0 || i >= env.insns.length) { markAllScalarsPrecise(st); return 0; }
    }
    st = st.parent;
    if (!st) break;
    newMarks = false;
    func = st.frame[frame];
    if (!func) { markAllScalarsPrecise(env.cur); return 0; }
    for (let i = 0; i < BPF_REG_FP; i++) {
      if (!(m.reg & (1 << i))) continue;
      const reg = func.regs[i]!;
      if (reg.type !== RegType.SCALAR_VALUE) { m.reg &= ~(1 << i); continue; }
      if (!reg.precise) newMarks = true;
      reg.precise = true;
    }
    for (let i = 0; i < 64; i++) {
      const bit = 1n << BigInt(i);
      if (!(m.stack & bit)) continue;
      if (i >= func.stack.length) { markAllScalarsPrecise(st); return 0; }
      const slot = func.stack[i]!;
      if (!isSpilledReg(slot) || slot.spilledPtr.type !== RegType.SCALAR_VALUE) { m.stack &= ~bit; continue; }
      if (!slot.spilledPtr.precise) newMarks = true;
      slot.spilledPtr.precise = true;
    }
    if (env.log.level & BPF_LOG_LEVEL) {
      env.verbose(`${funcStateStr(func, (id) => env.typeName(id))}\n`);
      env.verbose(`parent ${newMarks ? "didn't have" : 'already had'} regs=${m.reg.toString(16)} stack=${m.stack.toString(16)} marks\n`);
    }
    if (!m.reg && !m.stack) break;
    if (!newMarks) break;
    lastIdx = st.lastInsnIdx;
    firstIdx = st.firstInsnIdx;
  }
  return 0;
}

/** mark_chain_precision: a register of the current frame. */
export const markChainPrecision = (env: VerifierEnv, regno: number): number =>
  regno < 0 ? 0 : markChainPrecisionFrame(env, env.cur.curframe, regno, -1);

/** propagate_precision: what the matching explored state needed precise, this path needs too. */
export function propagatePrecision(env: VerifierEnv, old: VerifierState): number {
  for (let fr = old.curframe; fr >= 0; fr--) {
    const state = old.frame[fr]!;
    for (let i = 0; i < BPF_REG_FP; i++) {
      const r = state.regs[i]!;
      if (r.type !== RegType.SCALAR_VALUE || !r.precise || !(r.live & REG_LIVE_READ)) continue;
      const err = markChainPrecisionFrame(env, fr, i, -1);
      if (err < 0) return err;
    }
    for (let i = 0; i < state.stack.length; i++) {
      const slot = state.stack[i]!;
      if (!isSpilledReg(slot)) continue;
      const r = slot.spilledPtr;
      if (r.type !== RegType.SCALAR_VALUE || !r.precise || !(r.live & REG_LIVE_READ)) continue;
      const err = markChainPrecisionFrame(env, fr, -1, i);
      if (err < 0) return err;
    }
  }
  return 0;
}
