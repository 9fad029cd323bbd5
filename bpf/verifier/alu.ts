/**
 * @fileoverview ALU instructions (check_alu_op, adjust_reg_min_max_vals,
 * adjust_ptr_min_max_vals): reserved fields, division by a zero immediate, shift ranges, and
 * the result's abstract value — scalar math (scalar.ts), or pointer ± scalar where the kernel
 * allows it (a known amount moves the fixed offset, an unknown one the variable offset), with
 * the kernel's messages for everything else. Programs are loaded by a privileged user
 * (allow_ptr_leaks): pointer − pointer gives a scalar, leaks through moves are not refused.
 * v4 instructions (movsx, sdiv/smod, bswap) are accepted as later kernels do, with unknown results.
 */
import {
  BPF_ALU64, BPF_CLASS, BPF_OP, BPF_SRC, BPF_X, BPF_K, BPF_END, BPF_NEG, BPF_MOV, BPF_ADD, BPF_SUB, BPF_DIV, BPF_MOD,
  BPF_LSH, BPF_RSH, BPF_ARSH, BPF_AND, BPF_OR, BPF_XOR,
} from '../isa/opcodes.ts';
import type { Insn } from '../isa/insn.ts';
import { tnumAdd, tnumSub, tnumIsConst, tnumSubregIsConst } from './tnum.ts';
import {
  RegState, RegType, REG_TYPE_STR, REG_LIVE_WRITTEN, S64_MIN, S64_MAX, U64_MAX, copyReg, markKnown, markUnknown,
  mark32Unbounded, regBoundsSync, zext32To64, typeIsPktPointer, regTypeMayBeNull, type RegTypeT,
} from './reg.ts';
import { adjustScalarMinMaxVals } from './scalar.ts';
import { checkRegArg, SRC_OP, DST_OP, DST_OP_NO_MARK } from './liveness.ts';
import { markChainPrecision } from './precision.ts';
import { BPF_MAX_VAR_OFF, EACCES, EINVAL, type VerifierEnv } from './env.ts';

/** bpf_alu_string[] */
export const ALU_STR = ['+=', '-=', '*=', '/=', '|=', '&=', '<<=', '>>=', 'neg', '%=', '^=', '=', 's>>=', 'endian'];
const aluStr = (op: number): string => ALU_STR[op >> 4] ?? '?';

/** check_reg_sane_offset: a pointer's offsets stay far from overflow. */
function checkRegSaneOffset(env: VerifierEnv, reg: RegState, type: RegTypeT): boolean {
  const known = tnumIsConst(reg.varOff);
  const val = BigInt.asIntN(64, reg.varOff.value);
  const lim = BigInt(BPF_MAX_VAR_OFF);
  if (known && (val >= lim || val <= -lim)) {
    env.verbose(`math between ${REG_TYPE_STR[type]} pointer and ${val} is not allowed\n`);
    return false;
  }
  if (reg.off >= BPF_MAX_VAR_OFF || reg.off <= -BPF_MAX_VAR_OFF) {
    env.verbose(`${REG_TYPE_STR[type]} pointer offset ${reg.off} is not allowed\n`);
    return false;
  }
  if (reg.smin === S64_MIN) {
    env.verbose(`math between ${REG_TYPE_STR[type]} pointer and register with unbounded min value is not allowed\n`);
    return false;
  }
  if (reg.smin >= lim || reg.smin <= -lim) {
    env.verbose(`value ${reg.smin} makes ${REG_TYPE_STR[type]} pointer be out of bounds\n`);
    return false;
  }
  return true;
}

const fitsS32 = (v: bigint): boolean => v === BigInt.asIntN(32, v);

/** adjust_ptr_min_max_vals: dst = ptr op off for a pointer and a scalar. */
function adjustPtrMinMaxVals(env: VerifierEnv, insn: Insn, ptr: RegState, offReg: RegState): number {
  const dst = env.regs[insn.dst]!;
  const op = BPF_OP(insn.code);
  const known = tnumIsConst(offReg.varOff);
  const { smin: sminVal, smax: smaxVal, umin: uminVal, umax: umaxVal } = offReg;
  const { smin: sminPtr, smax: smaxPtr, umin: uminPtr, umax: umaxPtr } = ptr;

  if ((known && (sminVal !== smaxVal || uminVal !== umaxVal)) || sminVal > smaxVal || uminVal > umaxVal) {
    markUnknown(dst); // bounds from a dead branch
    return 0;
  }
  if (BPF_CLASS(insn.code) !== BPF_ALU64) {
    if (op === BPF_SUB) { markUnknown(dst); return 0; } // allow_ptr_leaks: a meaningless scalar
    env.verbose(`R${insn.dst} 32-bit pointer arithmetic prohibited\n`);
    return -EACCES;
  }
  const reject = (): number => {
    env.verbose(`R${insn.dst} pointer arithmetic on ${REG_TYPE_STR[ptr.type]} prohibited\n`);
    return -EACCES;
  };
  switch (ptr.type) {
    case RegType.PTR_TO_MAP_VALUE_OR_NULL:
      env.verbose(`R${insn.dst} pointer arithmetic on ${REG_TYPE_STR[ptr.type]} prohibited, null-check it first\n`);
      return -EACCES;
    case RegType.CONST_PTR_TO_MAP:
      if (known && sminVal === 0n && op === BPF_ADD) break;
      return reject();
    case RegType.PTR_TO_PACKET_END: case RegType.PTR_TO_SOCK_COMMON:
      return reject();
    default:
      if (regTypeMayBeNull(ptr.type)) return reject();
  }
  const ptrCopy = new RegState();
  copyReg(ptrCopy, ptr);
  dst.type = ptr.type;
  dst.id = ptr.id;
  if (!checkRegSaneOffset(env, offReg, ptr.type) || !checkRegSaneOffset(env, ptrCopy, ptr.type)) return -EINVAL;
  mark32Unbounded(dst); // pointers carry no 32-bit bounds
  const keepPtr = (): void => {
    dst.smin = sminPtr; dst.smax = smaxPtr; dst.umin = uminPtr; dst.umax = umaxPtr;
    dst.varOff = ptrCopy.varOff; dst.range = ptrCopy.range; dst.map = ptrCopy.map; dst.btfId = ptrCopy.btfId;
    dst.memSize = ptrCopy.memSize; dst.frameno = ptrCopy.frameno;
  };
  switch (op) {
    case BPF_ADD:
      if (known && fitsS32(BigInt(ptrCopy.off) + sminVal)) { // pointer += K: into the fixed offset
        keepPtr();
        dst.off = ptrCopy.off + Number(sminVal);
        break;
      }
      if (BigInt.asIntN(64, sminPtr + sminVal) !== sminPtr + sminVal || BigInt.asIntN(64, smaxPtr + smaxVal) !== smaxPtr + smaxVal) {
        dst.smin = S64_MIN; dst.smax = S64_MAX;
      } else { dst.smin = sminPtr + sminVal; dst.smax = smaxPtr + smaxVal; }
      if (uminPtr + uminVal > U64_MAX || umaxPtr + umaxVal > U64_MAX) { dst.umin = 0n; dst.umax = U64_MAX; }
      else { dst.umin = uminPtr + uminVal; dst.umax = umaxPtr + umaxVal; }
      dst.varOff = tnumAdd(ptrCopy.varOff, offReg.varOff);
      dst.off = ptrCopy.off;
      dst.range = ptrCopy.range; dst.map = ptrCopy.map; dst.btfId = ptrCopy.btfId; dst.memSize = ptrCopy.memSize; dst.frameno = ptrCopy.frameno;
      if (typeIsPktPointer(ptrCopy.type)) { dst.id = ++env.idGen; dst.range = 0; }
      break;
    case BPF_SUB:
      if (dst === offReg) {
        env.verbose(`R${insn.dst} tried to subtract pointer from scalar\n`);
        return -EACCES;
      }
      if (ptrCopy.type === RegType.PTR_TO_STACK) {
        env.verbose(`R${insn.dst} subtraction from stack pointer prohibited\n`);
        return -EACCES;
      }
      if (known && fitsS32(BigInt(ptrCopy.off) - sminVal)) {
        keepPtr();
        dst.id = ptrCopy.id;
        dst.off = ptrCopy.off - Number(sminVal);
        break;
      }
      if (BigInt.asIntN(64, sminPtr - smaxVal) !== sminPtr - smaxVal || BigInt.asIntN(64, smaxPtr - sminVal) !== smaxPtr - sminVal) {
        dst.smin = S64_MIN; dst.smax = S64_MAX;
      } else { dst.smin = sminPtr - smaxVal; dst.smax = smaxPtr - sminVal; }
      if (uminPtr < umaxVal) { dst.umin = 0n; dst.umax = U64_MAX; }
      else { dst.umin = uminPtr - umaxVal; dst.umax = umaxPtr - uminVal; }
      dst.varOff = tnumSub(ptrCopy.varOff, offReg.varOff);
      dst.off = ptrCopy.off;
      dst.range = ptrCopy.range; dst.map = ptrCopy.map; dst.btfId = ptrCopy.btfId; dst.memSize = ptrCopy.memSize; dst.frameno = ptrCopy.frameno;
      if (typeIsPktPointer(ptrCopy.type)) {
        dst.id = ++env.idGen;
        if (sminVal < 0n) dst.range = 0;
      }
      break;
    case BPF_AND: case BPF_OR: case BPF_XOR:
      env.verbose(`R${insn.dst} bitwise operator ${aluStr(op)} on pointer prohibited\n`);
      return -EACCES;
    default:
      env.verbose(`R${insn.dst} pointer arithmetic with ${aluStr(op)} operator prohibited\n`);
      return -EACCES;
  }
  if (!checkRegSaneOffset(env, dst, ptrCopy.type)) return -EINVAL;
  regBoundsSync(dst);
  return 0;
}

/** adjust_reg_min_max_vals: every two-operand op but mov. */
function adjustRegMinMaxVals(env: VerifierEnv, insn: Insn): number {
  const regs = env.regs;
  const dst = regs[insn.dst]!;
  const op = BPF_OP(insn.code);
  let ptr: RegState | undefined;
  if (dst.type !== RegType.SCALAR_VALUE) ptr = dst;
  else dst.id = 0;
  let src: RegState;
  if (BPF_SRC(insn.code) === BPF_X) {
    src = regs[insn.src]!;
    if (src.type !== RegType.SCALAR_VALUE) {
      if (dst.type !== RegType.SCALAR_VALUE) {
        if (op === BPF_SUB) { markUnknown(dst); return 0; } // pointer - pointer: a scalar (privileged)
        env.verbose(`R${insn.dst} pointer ${aluStr(op)} pointer prohibited\n`);
        return -EACCES;
      }
      const err = markChainPrecision(env, insn.dst); // scalar += pointer
      if (err) return err;
      return adjustPtrMinMaxVals(env, insn, src, dst);
    }
    if (ptr) {
      const err = markChainPrecision(env, insn.src);
      if (err) return err;
      return adjustPtrMinMaxVals(env, insn, ptr, src);
    }
    if (dst.precise) {
      const err = markChainPrecision(env, insn.src);
      if (err) return err;
    }
  } else {
    src = new RegState();
    src.type = RegType.SCALAR_VALUE;
    markKnown(src, BigInt(insn.imm));
    if (ptr) return adjustPtrMinMaxVals(env, insn, ptr, src);
  }
  const srcCopy = new RegState();
  copyReg(srcCopy, src);
  adjustScalarMinMaxVals(insn, dst, srcCopy);
  return 0;
}

/** check_alu_op */
export function checkAluOp(env: VerifierEnv, insn: Insn): number {
  const regs = env.regs;
  const op = BPF_OP(insn.code);
  const alu64 = BPF_CLASS(insn.code) === BPF_ALU64;
  let err: number;
  if (op === BPF_END || op === BPF_NEG) {
    if (op === BPF_NEG) {
      if (BPF_SRC(insn.code) !== 0 || insn.src !== 0 || insn.off !== 0 || insn.imm !== 0) {
        env.verbose('BPF_NEG uses reserved fields\n');
        return -EINVAL;
      }
    } else if (insn.src !== 0 || insn.off !== 0 || (insn.imm !== 16 && insn.imm !== 32 && insn.imm !== 64) ||
      (alu64 && (BPF_SRC(insn.code) !== BPF_K || !env.v4Isa))) {
      env.verbose('BPF_END uses reserved fields\n');
      return -EINVAL;
    }
    if ((err = checkRegArg(env, insn.dst, SRC_OP))) return err;
    return checkRegArg(env, insn.dst, DST_OP);
  }
  if (op === BPF_MOV) {
    const movsx = BPF_SRC(insn.code) === BPF_X && insn.off !== 0;
    if (BPF_SRC(insn.code) === BPF_X) {
      if (insn.imm !== 0 || (insn.off !== 0 && (!env.v4Isa || !(insn.off === 8 || insn.off === 16 || (insn.off === 32 && alu64))))) {
        env.verbose('BPF_MOV uses reserved fields\n');
        return -EINVAL;
      }
      if ((err = checkRegArg(env, insn.src, SRC_OP))) return err;
    } else if (insn.src !== 0 || insn.off !== 0) {
      env.verbose('BPF_MOV uses reserved fields\n');
      return -EINVAL;
    }
    if ((err = checkRegArg(env, insn.dst, DST_OP_NO_MARK))) return err;
    const dst = regs[insn.dst]!;
    if (BPF_SRC(insn.code) === BPF_X) {
      const src = regs[insn.src]!;
      if (movsx) {
        markUnknown(dst); // sign-extending move (v4): an unknown scalar
        if (!alu64) zext32To64(dst);
        regBoundsSync(dst);
      } else if (alu64) {
        if (src.type === RegType.SCALAR_VALUE && !src.id) src.id = ++env.idGen; // find_equal_scalars
        copyReg(dst, src);
        dst.live |= REG_LIVE_WRITTEN;
      } else {
        if (src.type === RegType.SCALAR_VALUE) {
          copyReg(dst, src);
          dst.id = 0;
          dst.live |= REG_LIVE_WRITTEN;
        } else {
          markUnknown(dst); // a pointer's low half: a scalar (privileged)
        }
        zext32To64(dst);
        regBoundsSync(dst);
      }
    } else {
      markUnknown(dst);
      markKnown(dst, alu64 ? BigInt(insn.imm) : BigInt(insn.imm >>> 0));
    }
    return 0;
  }
  if (op > BPF_END) {
    env.verbose(`invalid BPF_ALU opcode ${(op >> 4).toString(16)}\n`);
    return -EINVAL;
  }
  const signedDivMod = (op === BPF_DIV || op === BPF_MOD) && insn.off === 1 && env.v4Isa;
  if (BPF_SRC(insn.code) === BPF_X) {
    if (insn.imm !== 0 || (insn.off !== 0 && !signedDivMod)) {
      env.verbose('BPF_ALU uses reserved fields\n');
      return -EINVAL;
    }
    if ((err = checkRegArg(env, insn.src, SRC_OP))) return err;
  } else if (insn.src !== 0 || (insn.off !== 0 && !signedDivMod)) {
    env.verbose('BPF_ALU uses reserved fields\n');
    return -EINVAL;
  }
  if ((err = checkRegArg(env, insn.dst, SRC_OP))) return err;
  if ((op === BPF_MOD || op === BPF_DIV) && BPF_SRC(insn.code) === BPF_K && insn.imm === 0) {
    env.verbose('div by zero\n');
    return -EINVAL;
  }
  if ((op === BPF_LSH || op === BPF_RSH || op === BPF_ARSH) && BPF_SRC(insn.code) === BPF_K) {
    const size = alu64 ? 64 : 32;
    if (insn.imm < 0 || insn.imm >= size) {
      env.verbose(`invalid shift ${insn.imm}\n`);
      return -EINVAL;
    }
  }
  if ((err = checkRegArg(env, insn.dst, DST_OP_NO_MARK))) return err;
  if (signedDivMod) {
    const dst = regs[insn.dst]!;
    if (dst.type !== RegType.SCALAR_VALUE) {
      env.verbose(`R${insn.dst} pointer arithmetic with ${aluStr(op)} operator prohibited\n`);
      return -EACCES;
    }
    markUnknown(dst);
    if (!alu64) zext32To64(dst);
    regBoundsSync(dst);
    return 0;
  }
  return adjustRegMinMaxVals(env, insn);
}

export { tnumSubregIsConst };
