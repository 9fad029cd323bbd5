/**
 * @fileoverview Memory accesses (check_mem_access and the per-type checks it dispatches to):
 * the stack within its 512 bytes, written before it is read, with spilled registers kept
 * whole; map values within value_size; packets within the range proven against pkt_end; the
 * context by the program type's rules (ctx.ts); typed kernel pointers by their BTF struct
 * (btf_access.ts). Also the memory a helper reads or writes through a pointer argument.
 */
import type { Insn } from '../isa/insn.ts';
import { tnumAdd, tnumConst, tnumIsConst, tnumIsAligned, tnumStr } from './tnum.ts';
import {
  RegState, RegType, REG_TYPE_STR, REG_LIVE_WRITTEN, REG_LIVE_READ64, copyReg, markKnown, markConstZero, markUnknown,
  markKnownZero, coerceRegToSize, registerIsNull, registerIsBounded, isSpillable, typeIsPktPointer, regTypeMayBeNull,
} from './reg.ts';
import { BPF_REG_SIZE, STACK_INVALID, STACK_MISC, STACK_SPILL, STACK_ZERO, growStack, isSpilledReg, type FuncState } from './state.ts';
import { markRegRead } from './liveness.ts';
import { markChainPrecision } from './precision.ts';
import { checkCtxAccess } from './ctx.ts';
import { checkPtrToBtfAccess } from './btf_access.ts';
import { BPF_MAX_VAR_OFF, EACCES, EINVAL, MAX_BPF_STACK, type VerifierEnv } from './env.ts';
import { funcStateStr } from './state.ts';
import { BPF_PROG_TYPE_SCHED_CLS, BPF_PROG_TYPE_SCHED_ACT, BPF_PROG_TYPE_XDP } from '../prog_types.ts';

export const BPF_READ = 1, BPF_WRITE = 2;
export const ACCESS_DIRECT = 1, ACCESS_HELPER = 2;
const BPF_F_RDONLY_PROG = 1 << 7, BPF_F_WRONLY_PROG = 1 << 8;

/** Extra facts a helper call collects about its arguments (struct bpf_call_arg_meta). */
export interface CallArgMeta {
  map?: import('./reg.ts').MapInfo;
  rawMode: boolean;
  pktAccess: boolean;
  regno: number;
  accessSize: number;
  msizeMaxValue: bigint;
  funcId: number;
}

// --- stack -------------------------------------------------------------------------------

function scrub(slot: Uint8Array, i: number): void { if (slot[i] !== STACK_INVALID) slot[i] = STACK_MISC; }

/** check_stack_write_fixed_off */
function stackWriteFixed(env: VerifierEnv, state: FuncState, off: number, size: number, valueRegno: number, insn: Insn): number {
  const slotIdx = -off - 1, spi = Math.floor(slotIdx / BPF_REG_SIZE);
  growStack(state, Math.ceil((slotIdx + 1) / BPF_REG_SIZE) * BPF_REG_SIZE);
  const slot = state.stack[spi]!;
  const cur = env.curFunc;
  const reg = valueRegno >= 0 ? cur.regs[valueRegno]! : undefined;
  const isSt = (insn.code & 0x07) === 0x02;
  const save = (src: RegState): void => {
    copyReg(slot.spilledPtr, src);
    if (size === BPF_REG_SIZE) slot.spilledPtr.live |= REG_LIVE_WRITTEN;
    let i = BPF_REG_SIZE;
    for (; i > BPF_REG_SIZE - size; i--) slot.slotType[i - 1] = STACK_SPILL;
    for (; i; i--) scrub(slot.slotType, i - 1);
  };
  if (reg && off % BPF_REG_SIZE === 0 && registerIsBounded(reg) && !registerIsNull(reg)) {
    if (insn.dst !== 10) { // backtracking only follows [fp - off] spills
      const err = markChainPrecision(env, valueRegno);
      if (err) return err;
    }
    save(reg); // a bounded scalar spilled whole: its bounds survive the fill
    if (reg.umax.toString(2).length > 8 * size && reg.umax !== 0n) slot.spilledPtr.id = 0;
  } else if (!reg && off % BPF_REG_SIZE === 0 && isSt && insn.imm !== 0) {
    const fake = new RegState();
    markKnown(fake, BigInt(insn.imm >>> 0));
    fake.type = RegType.SCALAR_VALUE;
    save(fake);
  } else if (reg && isSpillable(reg.type)) {
    if (size !== BPF_REG_SIZE) {
      env.verbose('invalid size of register spill\n');
      return -EACCES;
    }
    if (state !== cur && reg.type === RegType.PTR_TO_STACK) {
      env.verbose('cannot spill pointers to stack into stack frame of the caller\n');
      return -EINVAL;
    }
    save(reg);
  } else {
    slot.spilledPtr.type = RegType.NOT_INIT;
    if (isSpilledReg(slot)) for (let i = 0; i < BPF_REG_SIZE; i++) scrub(slot.slotType, i);
    if (size === BPF_REG_SIZE) slot.spilledPtr.live |= REG_LIVE_WRITTEN;
    const zero = (reg && registerIsNull(reg)) || (!reg && isSt && insn.imm === 0);
    if (zero) {
      const err = markChainPrecision(env, valueRegno);
      if (err) return err;
    }
    const type = zero ? STACK_ZERO : STACK_MISC;
    for (let i = 0; i < size; i++) slot.slotType[(slotIdx - i) % BPF_REG_SIZE] = type;
  }
  return 0;
}

/** check_stack_write_var_off: each slot in the range may be written. */
function stackWriteVar(env: VerifierEnv, state: FuncState, ptrRegno: number, off: number, size: number, valueRegno: number): number {
  const ptr = env.regs[ptrRegno]!;
  const minOff = Number(ptr.smin) + off, maxOff = Number(ptr.smax) + off + size;
  const value = valueRegno >= 0 ? env.regs[valueRegno] : undefined;
  const writingZero = !!value && registerIsNull(value);
  let zeroUsed = false;
  growStack(state, Math.ceil(-minOff / BPF_REG_SIZE) * BPF_REG_SIZE);
  for (let i = minOff; i < maxOff; i++) {
    const slotIdx = -i - 1, spi = Math.floor(slotIdx / BPF_REG_SIZE);
    const slot = state.stack[spi]!;
    slot.spilledPtr.type = RegType.NOT_INIT;
    const idx = slotIdx % BPF_REG_SIZE;
    if (writingZero && slot.slotType[idx] === STACK_ZERO) zeroUsed = true;
    else slot.slotType[idx] = STACK_MISC;
  }
  return zeroUsed ? markChainPrecision(env, valueRegno) : 0;
}

/** mark_reg_stack_read: dst gets the bytes [minOff, maxOff): zero if all are known zero. */
function markRegStackRead(env: VerifierEnv, ptrState: FuncState, minOff: number, maxOff: number, dstRegno: number): void {
  let zeros = 0;
  for (let i = minOff; i < maxOff; i++) {
    const slotIdx = -i - 1;
    if (ptrState.stack[Math.floor(slotIdx / BPF_REG_SIZE)]!.slotType[slotIdx % BPF_REG_SIZE] !== STACK_ZERO) break;
    zeros++;
  }
  const dst = env.regs[dstRegno]!;
  if (zeros === maxOff - minOff) {
    markConstZero(dst);
    dst.precise = true; // backtracking stops here: whatever made the zeros was precise
  } else {
    markUnknown(dst);
  }
  dst.live |= REG_LIVE_WRITTEN;
}

/** check_stack_read_fixed_off */
function stackReadFixed(env: VerifierEnv, regState: FuncState, off: number, size: number, dstRegno: number): number {
  const slotIdx = -off - 1, spi = Math.floor(slotIdx / BPF_REG_SIZE);
  const slot = regState.stack[spi]!;
  const stype = slot.slotType, reg = slot.spilledPtr;
  const state = env.curFunc;
  if (isSpilledReg(slot)) {
    let spillSize = 1;
    for (let i = BPF_REG_SIZE - 1; i > 0 && stype[i - 1] === STACK_SPILL; i--) spillSize++;
    if (size !== BPF_REG_SIZE || spillSize !== BPF_REG_SIZE) {
      if (reg.type !== RegType.SCALAR_VALUE) {
        env.verbose('invalid size of register fill\n');
        return -EACCES;
      }
      markRegRead(env, reg, reg.parent, REG_LIVE_READ64);
      if (dstRegno < 0) return 0;
      if (off % BPF_REG_SIZE === 0 && size === spillSize) {
        copyReg(state.regs[dstRegno]!, reg);
      } else {
        for (let i = 0; i < size; i++) {
          const t = stype[(slotIdx - i) % BPF_REG_SIZE];
          if (t === STACK_SPILL || t === STACK_MISC) continue;
          env.verbose(`invalid read from stack off ${off}+${i} size ${size}\n`);
          return -EACCES;
        }
        markUnknown(state.regs[dstRegno]!);
      }
      state.regs[dstRegno]!.live |= REG_LIVE_WRITTEN;
      return 0;
    }
    if (dstRegno >= 0) {
      copyReg(state.regs[dstRegno]!, reg);
      state.regs[dstRegno]!.live |= REG_LIVE_WRITTEN;
    }
    return markRegRead(env, reg, reg.parent, REG_LIVE_READ64);
  }
  for (let i = 0; i < size; i++) {
    const t = stype[(slotIdx - i) % BPF_REG_SIZE];
    if (t === STACK_MISC || t === STACK_ZERO) continue;
    env.verbose(`invalid read from stack off ${off}+${i} size ${size}\n`);
    return -EACCES;
  }
  const err = markRegRead(env, reg, reg.parent, REG_LIVE_READ64);
  if (err) return err;
  if (dstRegno >= 0) markRegStackRead(env, regState, off, off + size, dstRegno);
  return 0;
}

/** check_stack_slot_within_bounds */
function slotWithinBounds(off: number, state: FuncState, t: number): boolean {
  const minValid = t === BPF_WRITE ? -MAX_BPF_STACK : -state.allocatedStack;
  return off >= minValid && off <= -1;
}

/** check_stack_access_within_bounds */
function checkStackAccessWithinBounds(env: VerifierEnv, regno: number, off: number, accessSize: number, src: number, type: number): number {
  const reg = env.regs[regno]!;
  const state = env.funcOf(reg);
  const extra = src === ACCESS_HELPER ? ' indirect access to' : type === BPF_READ ? ' read from' : ' write to';
  let minOff: number, maxOff: number;
  if (tnumIsConst(reg.varOff)) {
    minOff = Number(BigInt.asIntN(64, reg.varOff.value)) + off;
    maxOff = accessSize > 0 ? minOff + accessSize - 1 : minOff;
  } else {
    if (reg.smax >= BigInt(BPF_MAX_VAR_OFF) || reg.smin <= -BigInt(BPF_MAX_VAR_OFF)) {
      env.verbose(`invalid unbounded variable-offset${extra} stack R${regno}\n`);
      return -EACCES;
    }
    minOff = Number(reg.smin) + off;
    maxOff = accessSize > 0 ? Number(reg.smax) + off + accessSize - 1 : minOff;
  }
  if (slotWithinBounds(minOff, state, type) && slotWithinBounds(maxOff, state, type)) return 0;
  if (tnumIsConst(reg.varOff)) env.verbose(`invalid${extra} stack R${regno} off=${off} size=${accessSize}\n`);
  else env.verbose(`invalid variable-offset${extra} stack R${regno} var_off=${tnumStr(reg.varOff)} size=${accessSize}\n`);
  return -EACCES;
}

function updateStackDepth(env: VerifierEnv, func: FuncState, off: number): void {
  const sp = env.subprogs[func.subprogno]!;
  if (sp.stackDepth < -off) sp.stackDepth = -off;
}

/** check_stack_range_initialized: a helper (or a variable-offset read) reads these bytes. */
export function checkStackRangeInitialized(env: VerifierEnv, regno: number, off: number, accessSize: number,
  zeroSizeAllowed: boolean, type: number, meta: CallArgMeta | undefined): number {
  const reg = env.regs[regno]!;
  const state = env.funcOf(reg);
  const extra = type === ACCESS_HELPER ? ' indirect' : '';
  if (accessSize === 0 && !zeroSizeAllowed) {
    env.verbose('invalid zero-sized read\n');
    return -EACCES;
  }
  const clobber = type === ACCESS_HELPER;
  let err = checkStackAccessWithinBounds(env, regno, off, accessSize, type, clobber ? BPF_WRITE : BPF_READ);
  if (err) return err;
  let minOff: number, maxOff: number;
  if (tnumIsConst(reg.varOff)) {
    minOff = maxOff = Number(BigInt.asIntN(64, reg.varOff.value)) + off;
  } else {
    if (meta && meta.rawMode) meta = undefined;
    minOff = Number(reg.smin) + off;
    maxOff = Number(reg.smax) + off;
  }
  if (meta && meta.rawMode) {
    meta.accessSize = accessSize;
    meta.regno = regno;
    return 0;
  }
  for (let i = minOff; i < maxOff + accessSize; i++) {
    const slotIdx = -i - 1, spi = Math.floor(slotIdx / BPF_REG_SIZE);
    let ok = false;
    if (state.allocatedStack > slotIdx) {
      const slot = state.stack[spi]!;
      const idx = slotIdx % BPF_REG_SIZE;
      const t = slot.slotType[idx];
      if (t === STACK_MISC) ok = true;
      else if (t === STACK_ZERO) { if (clobber) slot.slotType[idx] = STACK_MISC; ok = true; }
      else if (isSpilledReg(slot) && slot.spilledPtr.type === RegType.PTR_TO_BTF_ID) ok = true;
      else if (isSpilledReg(slot)) { // allow_ptr_leaks: any spilled register is readable
        if (clobber) {
          markUnknown(slot.spilledPtr);
          for (let j = 0; j < BPF_REG_SIZE; j++) scrub(slot.slotType, j);
        }
        ok = true;
      }
      if (ok) {
        err = markRegRead(env, slot.spilledPtr, slot.spilledPtr.parent, REG_LIVE_READ64);
        if (err) return err;
        continue;
      }
    }
    if (tnumIsConst(reg.varOff)) env.verbose(`invalid${extra} read from stack R${regno} off ${minOff}+${i - minOff} size ${accessSize}\n`);
    else env.verbose(`invalid${extra} read from stack R${regno} var_off ${tnumStr(reg.varOff)}+${i - minOff} size ${accessSize}\n`);
    return -EACCES;
  }
  updateStackDepth(env, state, minOff);
  return 0;
}

// --- map values, packets -------------------------------------------------------------------

function checkMapAccessType(env: VerifierEnv, regno: number, off: number, size: number, t: number): number {
  const map = env.regs[regno]!.map!;
  if (t === BPF_WRITE && map.flags & BPF_F_RDONLY_PROG) {
    env.verbose(`write into map forbidden, value_size=${map.valueSize} off=${off} size=${size}\n`);
    return -EACCES;
  }
  if (t === BPF_READ && map.flags & BPF_F_WRONLY_PROG) {
    env.verbose(`read from map forbidden, value_size=${map.valueSize} off=${off} size=${size}\n`);
    return -EACCES;
  }
  return 0;
}

/** __check_mem_access */
function checkMemAccessRange(env: VerifierEnv, regno: number, off: number, size: number, memSize: number, zeroSizeAllowed: boolean): number {
  const sizeOk = size > 0 || (size === 0 && zeroSizeAllowed);
  if (off >= 0 && sizeOk && off + size <= memSize) return 0;
  const reg = env.regs[regno]!;
  switch (reg.type) {
    case RegType.PTR_TO_MAP_VALUE:
      env.verbose(`invalid access to map value, value_size=${memSize} off=${off} size=${size}\n`);
      break;
    case RegType.PTR_TO_PACKET: case RegType.PTR_TO_PACKET_META: case RegType.PTR_TO_PACKET_END:
      env.verbose(`invalid access to packet, off=${off} size=${size}, R${regno}(id=${reg.id},off=${off},r=${memSize})\n`);
      break;
    default:
      env.verbose(`invalid access to memory, mem_size=${memSize} off=${off} size=${size}\n`);
  }
  return -EACCES;
}

/** check_mem_region_access: [reg + off, + size) inside [0, memSize) for every value of reg's offset. */
function checkMemRegionAccess(env: VerifierEnv, regno: number, off: number, size: number, memSize: number, zeroSizeAllowed: boolean): number {
  const reg = env.regs[regno]!;
  if (env.log.level & 3) env.verbose(`${funcStateStr(env.curFunc, (id) => env.typeName(id))}\n`);
  const lo = reg.smin + BigInt(off);
  if (reg.smin < 0n && (reg.smin === -(1n << 63n) || lo !== BigInt.asIntN(32, lo) || lo < 0n)) {
    env.verbose(`R${regno} min value is negative, either use unsigned index or do a if (index >=0) check.\n`);
    return -EACCES;
  }
  let err = checkMemAccessRange(env, regno, Number(lo), size, memSize, zeroSizeAllowed);
  if (err) {
    env.verbose(`R${regno} min value is outside of the allowed memory range\n`);
    return err;
  }
  if (reg.umax >= BigInt(BPF_MAX_VAR_OFF)) {
    env.verbose(`R${regno} unbounded memory access, make sure to bounds check any such access\n`);
    return -EACCES;
  }
  err = checkMemAccessRange(env, regno, Number(reg.umax) + off, size, memSize, zeroSizeAllowed);
  if (err) {
    env.verbose(`R${regno} max value is outside of the allowed memory range\n`);
    return err;
  }
  return 0;
}

function checkMapAccess(env: VerifierEnv, regno: number, off: number, size: number, zeroSizeAllowed: boolean): number {
  return checkMemRegionAccess(env, regno, off, size, env.regs[regno]!.map!.valueSize, zeroSizeAllowed);
}

/** may_access_direct_pkt_data */
function mayAccessDirectPktData(env: VerifierEnv, meta: CallArgMeta | undefined, t: number): boolean {
  switch (env.progType) {
    case BPF_PROG_TYPE_SCHED_CLS: case BPF_PROG_TYPE_SCHED_ACT: case BPF_PROG_TYPE_XDP:
      if (meta) return meta.pktAccess;
      if (t === BPF_WRITE) env.seenDirectWrite = true;
      return true;
    default:
      return false;
  }
}
export { mayAccessDirectPktData };

function checkPacketAccess(env: VerifierEnv, regno: number, off: number, size: number, zeroSizeAllowed: boolean): number {
  const reg = env.regs[regno]!;
  if (reg.smin < 0n) {
    env.verbose(`R${regno} min value is negative, either use unsigned index or do a if (index >=0) check.\n`);
    return -EACCES;
  }
  const err = reg.range < 0 ? -EINVAL : checkMemAccessRange(env, regno, off, size, reg.range, zeroSizeAllowed);
  if (err) {
    env.verbose(`R${regno} offset is outside of the packet\n`);
    return err;
  }
  return 0;
}

// --- alignment -----------------------------------------------------------------------------

function checkPtrAlignment(env: VerifierEnv, reg: RegState, off: number, size: number, strictOnce: boolean): number {
  let strict = env.strictAlignment || strictOnce;
  let desc = '';
  switch (reg.type) {
    case RegType.PTR_TO_PACKET: case RegType.PTR_TO_PACKET_META: {
      if (!strict || size === 1) return 0;
      const regOff = tnumAdd(reg.varOff, tnumConst(BigInt(2 + reg.off + off))); // NET_IP_ALIGN
      if (!tnumIsAligned(regOff, size)) {
        env.verbose(`misaligned packet access off 2+${tnumStr(reg.varOff)}+${reg.off}+${off} size ${size}\n`);
        return -EACCES;
      }
      return 0;
    }
    case RegType.PTR_TO_MAP_VALUE: desc = 'value '; break;
    case RegType.PTR_TO_CTX: desc = 'context '; break;
    case RegType.PTR_TO_STACK: desc = 'stack '; strict = true; break;
    case RegType.PTR_TO_SOCK_COMMON: desc = 'sock_common '; break;
  }
  if (!strict || size === 1) return 0;
  const regOff = tnumAdd(reg.varOff, tnumConst(BigInt(reg.off + off)));
  if (!tnumIsAligned(regOff, size)) {
    env.verbose(`misaligned ${desc}access off ${tnumStr(reg.varOff)}+${reg.off}+${off} size ${size}\n`);
    return -EACCES;
  }
  return 0;
}
export { checkPtrAlignment };

/** check_ctx_reg: the ctx pointer must be unmodified. */
export function checkCtxReg(env: VerifierEnv, reg: RegState, regno: number): number {
  if (reg.off) {
    env.verbose(`dereference of modified ctx ptr R${regno} off=${reg.off} disallowed\n`);
    return -EACCES;
  }
  if (!tnumIsConst(reg.varOff) || reg.varOff.value) {
    env.verbose(`variable ctx access var_off=${tnumStr(reg.varOff)} disallowed\n`);
    return -EACCES;
  }
  return 0;
}

// --- check_mem_access --------------------------------------------------------------------

/**
 * check_mem_access: (regno + off) read (into valueRegno) or written (from valueRegno; -1: an
 * unknown value) with `size` bytes; 0 or -errno with the log written.
 */
export function checkMemAccess(env: VerifierEnv, insnIdx: number, regno: number, off: number, size: number,
  t: number, valueRegno: number, strictAlignmentOnce: boolean, signExtend = false): number {
  const regs = env.regs;
  const reg = regs[regno]!;
  let err = checkPtrAlignment(env, reg, off, size, strictAlignmentOnce);
  if (err) return err;
  off += reg.off;
  // is_pointer_value(env, value_regno) when writing: an unprivileged program may not leak an address.
  const leak = t === BPF_WRITE && valueRegno >= 0 && !env.allowPtrLeaks && regs[valueRegno]!.type !== RegType.SCALAR_VALUE;
  switch (reg.type) {
    case RegType.PTR_TO_MAP_VALUE: {
      if (leak) { env.verbose(`R${valueRegno} leaks addr into map\n`); return -EACCES; }
      err = checkMapAccessType(env, regno, off, size, t);
      if (err) return err;
      err = checkMapAccess(env, regno, off, size, false);
      if (!err && t === BPF_READ && valueRegno >= 0) {
        const map = reg.map!;
        const v = tnumIsConst(reg.varOff) && map.flags & BPF_F_RDONLY_PROG && map.frozen && map.readValue
          ? map.readValue(off + Number(reg.varOff.value), size) : undefined;
        if (v !== undefined) {
          regs[valueRegno]!.type = RegType.SCALAR_VALUE;
          markKnown(regs[valueRegno]!, v);
        } else {
          markUnknown(regs[valueRegno]!);
        }
      }
      break;
    }
    case RegType.PTR_TO_MEM:
      err = checkMemRegionAccess(env, regno, off, size, reg.memSize, false);
      if (!err && t === BPF_READ && valueRegno >= 0) markUnknown(regs[valueRegno]!);
      break;
    case RegType.PTR_TO_CTX: {
      if (leak) { env.verbose(`R${valueRegno} leaks addr into ctx\n`); return -EACCES; }
      err = checkCtxReg(env, reg, regno);
      if (err < 0) return err;
      const res = checkCtxAccess(env, insnIdx, off, size, t);
      if (typeof res === 'number') return res;
      if (t === BPF_READ && valueRegno >= 0) {
        const dst = regs[valueRegno]!;
        if (res.regType === RegType.SCALAR_VALUE) {
          markUnknown(dst);
        } else {
          markKnownZero(dst);
          if (regTypeMayBeNull(res.regType)) dst.id = ++env.idGen;
          dst.btfId = res.btfId ?? 0;
        }
        dst.type = res.regType;
      }
      break;
    }
    case RegType.PTR_TO_STACK: {
      err = checkStackAccessWithinBounds(env, regno, off, size, ACCESS_DIRECT, t);
      if (err) return err;
      const state = env.funcOf(reg);
      updateStackDepth(env, state, off);
      if (t === BPF_READ) {
        if (valueRegno < 0 && !tnumIsConst(reg.varOff)) {
          env.verbose(`variable offset stack pointer cannot be passed into helper function; var_off=${tnumStr(reg.varOff)} off=${off} size=${size}\n`);
          return -EACCES;
        }
        if (tnumIsConst(reg.varOff)) {
          err = stackReadFixed(env, state, off + Number(BigInt.asIntN(64, reg.varOff.value)), size, valueRegno);
        } else {
          err = checkStackRangeInitialized(env, regno, off, size, false, ACCESS_DIRECT, undefined);
          if (!err) markRegStackRead(env, state, Number(reg.smin) + off, Number(reg.smax) + off + size, valueRegno);
        }
      } else if (tnumIsConst(reg.varOff)) {
        err = stackWriteFixed(env, state, off + Number(BigInt.asIntN(64, reg.varOff.value)), size, valueRegno, env.insns[insnIdx]!);
      } else {
        err = stackWriteVar(env, state, regno, off, size, valueRegno);
      }
      break;
    }
    case RegType.PTR_TO_PACKET: case RegType.PTR_TO_PACKET_META:
      if (t === BPF_WRITE && !mayAccessDirectPktData(env, undefined, t)) {
        env.verbose('cannot write into packet\n');
        return -EACCES;
      }
      err = checkPacketAccess(env, regno, off, size, false);
      if (!err && t === BPF_READ && valueRegno >= 0) markUnknown(regs[valueRegno]!);
      break;
    case RegType.PTR_TO_SOCK_COMMON:
      if (t === BPF_WRITE) {
        env.verbose(`R${regno} cannot write into ${REG_TYPE_STR[reg.type]}\n`);
        return -EACCES;
      }
      env.verbose(`R${regno} invalid ${REG_TYPE_STR[reg.type]} access off=${off} size=${size}\n`);
      return -EACCES;
    case RegType.PTR_TO_BTF_ID:
      err = checkPtrToBtfAccess(env, regs, regno, off, size, t, valueRegno);
      break;
    case RegType.CONST_PTR_TO_MAP:
      env.verbose(`map_ptr access not supported for map type ${reg.map?.type ?? 0}\n`);
      return -524;
    default:
      env.verbose(`R${regno} invalid mem access '${REG_TYPE_STR[reg.type]}'\n`);
      return -EACCES;
  }
  if (!err && size < BPF_REG_SIZE && valueRegno >= 0 && t === BPF_READ && regs[valueRegno]!.type === RegType.SCALAR_VALUE) {
    if (signExtend) markUnknown(regs[valueRegno]!);
    else coerceRegToSize(regs[valueRegno]!, size);
  }
  return err;
}

/** check_helper_mem_access: a helper reads or writes accessSize bytes at regno. */
export function checkHelperMemAccess(env: VerifierEnv, regno: number, accessSize: number, zeroSizeAllowed: boolean, meta: CallArgMeta | undefined): number {
  const reg = env.regs[regno]!;
  switch (reg.type) {
    case RegType.PTR_TO_PACKET: case RegType.PTR_TO_PACKET_META:
      return checkPacketAccess(env, regno, reg.off, accessSize, zeroSizeAllowed);
    case RegType.PTR_TO_MAP_VALUE:
      if (checkMapAccessType(env, regno, reg.off, accessSize, meta && meta.rawMode ? BPF_WRITE : BPF_READ)) return -EACCES;
      return checkMapAccess(env, regno, reg.off, accessSize, zeroSizeAllowed);
    case RegType.PTR_TO_MEM:
      return checkMemRegionAccess(env, regno, reg.off, accessSize, reg.memSize, zeroSizeAllowed);
    case RegType.PTR_TO_STACK:
      return checkStackRangeInitialized(env, regno, reg.off, accessSize, zeroSizeAllowed, ACCESS_HELPER, meta);
    default:
      if (zeroSizeAllowed && accessSize === 0 && registerIsNull(reg)) return 0;
      env.verbose(`R${regno} type=${REG_TYPE_STR[reg.type]} expected=${REG_TYPE_STR[RegType.PTR_TO_STACK]}\n`);
      return -EACCES;
  }
}

export { typeIsPktPointer };
