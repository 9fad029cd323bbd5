/**
 * @fileoverview Verifier states (struct bpf_func_state, struct bpf_verifier_state): per call
 * frame the eleven registers and the stack as 8-byte slots, each byte tagged (invalid, part of
 * a spilled register, misc data, known zero) with the spilled register's state; and the chain
 * of frames of one path with its parent checkpoint. print_verifier_state's text is here too.
 */
import {
  RegState, RegType, REG_TYPE_STR, REG_LIVE_READ, REG_LIVE_WRITTEN, REG_LIVE_DONE, S64_MIN, S64_MAX, S32_MIN, S32_MAX,
  U32_MAX, U64_MAX, cloneReg, markKnownZero, markNotInit, typeIsPktPointer, type RegTypeT,
} from './reg.ts';
import { tnumIsConst, tnumIsUnknown, tnumStr } from './tnum.ts';

export const BPF_REG_SIZE = 8;
export const MAX_BPF_REG = 11;
export const BPF_REG_FP = 10;

// enum bpf_stack_slot_type
export const STACK_INVALID = 0, STACK_SPILL = 1, STACK_MISC = 2, STACK_ZERO = 3;
const SLOT_CHAR = ['?', 'r', 'm', '0'];

export class StackSlot {
  spilledPtr = new RegState();
  /** One tag per byte; index 7 is the byte at the slot's lowest address. */
  slotType = new Uint8Array(BPF_REG_SIZE);
}

export const isSpilledReg = (s: StackSlot): boolean => s.slotType[BPF_REG_SIZE - 1] === STACK_SPILL;

export class FuncState {
  regs: RegState[] = Array.from({ length: MAX_BPF_REG }, () => new RegState());
  stack: StackSlot[] = [];
  /** Bytes of stack in use (a multiple of 8). */
  allocatedStack = 0;
  /** The call instruction that made this frame (-1 for the main program). */
  callsite = -1;
  frameno = 0;
  subprogno = 0;
}

export class VerifierState {
  frame: FuncState[] = [];
  curframe = 0;
  /** The checkpoint this path continues from (liveness and branch counting). */
  parent: VerifierState | null = null;
  /** Paths still to explore from this state (0: its liveness is final). */
  branches = 0;
  insnIdx = 0;
  firstInsnIdx = 0;
  lastInsnIdx = -1;
  activeSpinLock = 0;
  /** The jumps taken since the last checkpoint (for precision backtracking). */
  jmpHistory: { idx: number; prevIdx: number }[] = [];
}

/** init_reg_state: everything NOT_INIT but R10, a pointer to this frame's stack. */
export function initFuncState(state: FuncState, callsite: number, frameno: number, subprogno: number): void {
  state.callsite = callsite;
  state.frameno = frameno;
  state.subprogno = subprogno;
  for (const r of state.regs) { markNotInit(r); r.live = 0; r.parent = null; }
  const fp = state.regs[BPF_REG_FP]!;
  fp.type = RegType.PTR_TO_STACK;
  markKnownZero(fp);
  fp.frameno = frameno;
}

/** Grows the stack to `size` bytes (rounded up to slots); new slots are invalid. */
export function growStack(state: FuncState, size: number): void {
  const slots = Math.ceil(size / BPF_REG_SIZE);
  while (state.stack.length < slots) state.stack.push(new StackSlot());
  state.allocatedStack = Math.max(state.allocatedStack, slots * BPF_REG_SIZE);
}

export function copyFuncState(src: FuncState): FuncState {
  const f = new FuncState();
  f.regs = src.regs.map(cloneReg);
  f.stack = src.stack.map((s) => {
    const n = new StackSlot();
    n.spilledPtr = cloneReg(s.spilledPtr);
    n.slotType.set(s.slotType);
    return n;
  });
  f.allocatedStack = src.allocatedStack;
  f.callsite = src.callsite;
  f.frameno = src.frameno;
  f.subprogno = src.subprogno;
  return f;
}

/** copy_verifier_state */
export function copyVerifierState(src: VerifierState): VerifierState {
  const s = new VerifierState();
  s.frame = src.frame.slice(0, src.curframe + 1).map(copyFuncState);
  s.curframe = src.curframe;
  s.parent = src.parent;
  s.branches = src.branches;
  s.insnIdx = src.insnIdx;
  s.firstInsnIdx = src.firstInsnIdx;
  s.lastInsnIdx = src.lastInsnIdx;
  s.activeSpinLock = src.activeSpinLock;
  s.jmpHistory = src.jmpHistory.slice();
  return s;
}

/** Every register of every frame, spilled ones included (bpf_for_each_reg_in_vstate). */
export function* allRegs(vstate: VerifierState): Generator<RegState> {
  for (let i = 0; i <= vstate.curframe; i++) {
    const f = vstate.frame[i]!;
    yield* f.regs;
    for (const s of f.stack) if (isSpilledReg(s)) yield s.spilledPtr;
  }
}

// --- printing ----------------------------------------------------------------------------

function liveness(live: number): string {
  if (!(live & (REG_LIVE_READ | REG_LIVE_WRITTEN | REG_LIVE_DONE))) return '';
  return `_${live & REG_LIVE_READ ? 'r' : ''}${live & REG_LIVE_WRITTEN ? 'w' : ''}${live & REG_LIVE_DONE ? 'D' : ''}`;
}

const isBtf = (t: RegTypeT): boolean => t === RegType.PTR_TO_BTF_ID || t === RegType.PTR_TO_BTF_ID_OR_NULL;

/** One register as print_verifier_state writes it after `R1=`. */
export function regStr(reg: RegState, typeName: (btfId: number) => string = () => ''): string {
  const t = reg.type;
  let s = REG_TYPE_STR[t];
  if ((t === RegType.SCALAR_VALUE || t === RegType.PTR_TO_STACK) && tnumIsConst(reg.varOff))
    return s + String(BigInt.asIntN(64, reg.varOff.value + BigInt(reg.off)));
  if (isBtf(t)) s += typeName(reg.btfId);
  s += `(id=${reg.id}`;
  if (t !== RegType.SCALAR_VALUE) s += `,off=${reg.off}`;
  if (typeIsPktPointer(t)) s += `,r=${reg.range}`;
  else if ((t === RegType.CONST_PTR_TO_MAP || t === RegType.PTR_TO_MAP_VALUE || t === RegType.PTR_TO_MAP_VALUE_OR_NULL) && reg.map)
    s += `,ks=${reg.map.keySize},vs=${reg.map.valueSize}`;
  if (tnumIsConst(reg.varOff)) {
    s += `,imm=${reg.varOff.value.toString(16)}`;
  } else {
    if (reg.smin !== BigInt.asIntN(64, reg.umin) && reg.smin !== S64_MIN) s += `,smin_value=${reg.smin}`;
    if (reg.smax !== BigInt.asIntN(64, reg.umax) && reg.smax !== S64_MAX) s += `,smax_value=${reg.smax}`;
    if (reg.umin !== 0n) s += `,umin_value=${reg.umin}`;
    if (reg.umax !== U64_MAX) s += `,umax_value=${reg.umax}`;
    if (!tnumIsUnknown(reg.varOff)) s += `,var_off=${tnumStr(reg.varOff)}`;
    if (BigInt(reg.s32min) !== reg.smin && reg.s32min !== S32_MIN) s += `,s32_min_value=${reg.s32min}`;
    if (BigInt(reg.s32max) !== reg.smax && reg.s32max !== S32_MAX) s += `,s32_max_value=${reg.s32max}`;
    if (BigInt(reg.u32min) !== reg.umin && reg.u32min !== 0) s += `,u32_min_value=${reg.u32min | 0}`;
    if (BigInt(reg.u32max) !== reg.umax && reg.u32max !== U32_MAX) s += `,u32_max_value=${reg.u32max | 0}`;
  }
  return `${s})`;
}

/** print_verifier_state: ` R1=ctx(id=0,off=0,imm=0) R10=fp0 fp-8=mmmmmmmm` (leading space, no newline). */
export function funcStateStr(state: FuncState, typeName?: (btfId: number) => string): string {
  let out = state.frameno ? ` frame${state.frameno}:` : '';
  state.regs.forEach((reg, i) => {
    if (reg.type === RegType.NOT_INIT) return;
    out += ` R${i}${liveness(reg.live)}=${regStr(reg, typeName)}`;
  });
  state.stack.forEach((slot, i) => {
    if (!slot.slotType.some((b) => b !== STACK_INVALID)) return;
    out += ` fp${(-i - 1) * BPF_REG_SIZE}${liveness(slot.spilledPtr.live)}`;
    if (isSpilledReg(slot)) {
      const r = slot.spilledPtr;
      out += `=${REG_TYPE_STR[r.type]}`;
      if (r.type === RegType.SCALAR_VALUE && tnumIsConst(r.varOff)) out += String(BigInt.asIntN(64, r.varOff.value + BigInt(r.off)));
    } else {
      out += `=${Array.from(slot.slotType, (b) => SLOT_CHAR[b]).join('')}`;
    }
  });
  return out;
}
