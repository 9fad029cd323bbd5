/**
 * @fileoverview LD_IMM64, LDX (zero- and sign-extending), ST, STX and the atomics, through the
 * run's MemCache (vm.ts): `m.at(base, off, size, access)` gives an offset into `m.dv`, a mapping's
 * host view, or traps with the address. Stores call `m.commit()` when `m.post` says so.
 * There is no concurrency in the emulator, so an atomic is a plain read-modify-write.
 */
import { BPF_SIZE, BPF_W, type OpName, BPF_ADD, BPF_AND, BPF_OR, BPF_XOR, BPF_XCHG, BPF_CMPXCHG, BPF_FETCH } from '../isa/opcodes.ts';
import type { Insn } from '../isa/insn.ts';
import { ACC_R, ACC_RW, ACC_W, VmTrap, setU64, type Compile, type Step } from './vm.ts';

const TWO32 = 0x1_0000_0000;

const operands = (i: Insn, pc: number) => ({ d: 2 * i.dst, s: 2 * i.src, off: i.off, imm: i.imm | 0, n: pc + 1 });

/** Read-modify-write of 4 or 8 bytes; `op` is the atomic's imm (BPF_ADD … BPF_CMPXCHG, ±BPF_FETCH). */
function atomic(i: Insn, pc: number): Step {
  const { d, s, off, n } = operands(i, pc);
  const size = BPF_SIZE(i.code) === BPF_W ? 4 : 8, op = i.imm & ~BPF_FETCH, fetch = (i.imm & BPF_FETCH) !== 0;
  const wide = size === 8;
  return (r, vm) => {
    const m = vm.m;
    const o = m.at(r[d], r[d + 1], off, size, ACC_RW), v = m.dv;
    const ol = v.getInt32(o, true), oh = wide ? v.getInt32(o + 4, true) : 0;
    const sl = r[s], sh = wide ? r[s + 1] : 0;
    let nl = sl, nh = sh; // xchg
    switch (i.imm) {
      case BPF_CMPXCHG: {
        // Compare with R0 (its low half for the 32-bit form); R0 gets the old value, zero-extended.
        const eq = wide ? ol === r[0] && oh === r[1] : ol === r[0];
        r[0] = ol; r[1] = oh;
        if (!eq) return n;
        break;
      }
      case BPF_XCHG: break;
      default:
        switch (op) {
          case BPF_ADD: { const lo = (ol >>> 0) + (sl >>> 0); nl = lo; nh = oh + sh + (lo >= TWO32 ? 1 : 0); break; }
          case BPF_OR: nl = ol | sl; nh = oh | sh; break;
          case BPF_AND: nl = ol & sl; nh = oh & sh; break;
          case BPF_XOR: nl = ol ^ sl; nh = oh ^ sh; break;
          default: throw new VmTrap('bad-insn', `atomic op 0x${i.imm.toString(16)}`);
        }
    }
    v.setInt32(o, nl, true);
    if (wide) v.setInt32(o + 4, nh, true);
    if (m.post !== 0) m.commit(o, size);
    if (fetch && i.imm !== BPF_CMPXCHG) { r[s] = ol; r[s + 1] = oh; } // xchg has BPF_FETCH set
    return n;
  };
}


export const MEM_HANDLERS = {
  /** Two slots: imm of the first is the low half, imm of the second the high half. src != 0: env.resolveLdImm64. */
  lddw: (i, { pc, insns }) => {
    const d = 2 * i.dst, n = pc + 2, next = insns[pc + 1];
    if (!next) throw new VmTrap('bad-insn', 'lddw is missing its second slot');
    if (i.src === 0) { const lo = i.imm, hi = next.imm; return (r) => { r[d] = lo; r[d + 1] = hi; return n; }; }
    return (r, vm) => { setU64(r, d, vm.ldImm64(i, pc, next)); return n; };
  },

  ldxb: (i, { pc }) => {
    const { d, s, off, n } = operands(i, pc);
    return (r, vm) => { const m = vm.m, o = m.at(r[s], r[s + 1], off, 1, ACC_R); r[d] = m.dv.getUint8(o); r[d + 1] = 0; return n; };
  },
  ldxh: (i, { pc }) => {
    const { d, s, off, n } = operands(i, pc);
    return (r, vm) => { const m = vm.m, o = m.at(r[s], r[s + 1], off, 2, ACC_R); r[d] = m.dv.getUint16(o, true); r[d + 1] = 0; return n; };
  },
  ldxw: (i, { pc }) => {
    const { d, s, off, n } = operands(i, pc);
    return (r, vm) => { const m = vm.m, o = m.at(r[s], r[s + 1], off, 4, ACC_R); r[d] = m.dv.getInt32(o, true); r[d + 1] = 0; return n; };
  },
  ldxdw: (i, { pc }) => {
    const { d, s, off, n } = operands(i, pc);
    return (r, vm) => {
      const m = vm.m, o = m.at(r[s], r[s + 1], off, 8, ACC_R), v = m.dv;
      r[d] = v.getInt32(o, true); r[d + 1] = v.getInt32(o + 4, true);
      return n;
    };
  },
  ldxsb: (i, { pc }) => {
    const { d, s, off, n } = operands(i, pc);
    return (r, vm) => { const m = vm.m, o = m.at(r[s], r[s + 1], off, 1, ACC_R), x = m.dv.getInt8(o); r[d] = x; r[d + 1] = x >> 31; return n; };
  },
  ldxsh: (i, { pc }) => {
    const { d, s, off, n } = operands(i, pc);
    return (r, vm) => { const m = vm.m, o = m.at(r[s], r[s + 1], off, 2, ACC_R), x = m.dv.getInt16(o, true); r[d] = x; r[d + 1] = x >> 31; return n; };
  },
  ldxsw: (i, { pc }) => {
    const { d, s, off, n } = operands(i, pc);
    return (r, vm) => { const m = vm.m, o = m.at(r[s], r[s + 1], off, 4, ACC_R), x = m.dv.getInt32(o, true); r[d] = x; r[d + 1] = x >> 31; return n; };
  },

  // ST: *(size *)(dst + off) = imm (stdw: imm sign-extended).
  stb: (i, { pc }) => {
    const { d, off, imm, n } = operands(i, pc);
    return (r, vm) => { const m = vm.m, o = m.at(r[d], r[d + 1], off, 1, ACC_W); m.dv.setUint8(o, imm & 0xff); if (m.post !== 0) m.commit(o, 1); return n; };
  },
  sth: (i, { pc }) => {
    const { d, off, imm, n } = operands(i, pc);
    return (r, vm) => { const m = vm.m, o = m.at(r[d], r[d + 1], off, 2, ACC_W); m.dv.setUint16(o, imm & 0xffff, true); if (m.post !== 0) m.commit(o, 2); return n; };
  },
  stw: (i, { pc }) => {
    const { d, off, imm, n } = operands(i, pc);
    return (r, vm) => { const m = vm.m, o = m.at(r[d], r[d + 1], off, 4, ACC_W); m.dv.setInt32(o, imm, true); if (m.post !== 0) m.commit(o, 4); return n; };
  },
  stdw: (i, { pc }) => {
    const { d, off, imm, n } = operands(i, pc), hi = imm >> 31;
    return (r, vm) => {
      const m = vm.m, o = m.at(r[d], r[d + 1], off, 8, ACC_W), v = m.dv;
      v.setInt32(o, imm, true); v.setInt32(o + 4, hi, true);
      if (m.post !== 0) m.commit(o, 8);
      return n;
    };
  },

  // STX: *(size *)(dst + off) = src.
  stxb: (i, { pc }) => {
    const { d, s, off, n } = operands(i, pc);
    return (r, vm) => { const m = vm.m, o = m.at(r[d], r[d + 1], off, 1, ACC_W); m.dv.setUint8(o, r[s] & 0xff); if (m.post !== 0) m.commit(o, 1); return n; };
  },
  stxh: (i, { pc }) => {
    const { d, s, off, n } = operands(i, pc);
    return (r, vm) => { const m = vm.m, o = m.at(r[d], r[d + 1], off, 2, ACC_W); m.dv.setUint16(o, r[s] & 0xffff, true); if (m.post !== 0) m.commit(o, 2); return n; };
  },
  stxw: (i, { pc }) => {
    const { d, s, off, n } = operands(i, pc);
    return (r, vm) => { const m = vm.m, o = m.at(r[d], r[d + 1], off, 4, ACC_W); m.dv.setInt32(o, r[s], true); if (m.post !== 0) m.commit(o, 4); return n; };
  },
  stxdw: (i, { pc }) => {
    const { d, s, off, n } = operands(i, pc);
    return (r, vm) => {
      const m = vm.m, o = m.at(r[d], r[d + 1], off, 8, ACC_W), v = m.dv;
      v.setInt32(o, r[s], true); v.setInt32(o + 4, r[s + 1], true);
      if (m.post !== 0) m.commit(o, 8);
      return n;
    };
  },

  // Atomics: fetch forms return the old value in src (zero-extended for 32 bits); xchg too;
  // cmpxchg compares R0 and returns the old value in R0.
  'lock add': (i, { pc }) => atomic(i, pc), 'lock or': (i, { pc }) => atomic(i, pc),
  'lock and': (i, { pc }) => atomic(i, pc), 'lock xor': (i, { pc }) => atomic(i, pc),
  'lock fetch add': (i, { pc }) => atomic(i, pc), 'lock fetch or': (i, { pc }) => atomic(i, pc),
  'lock fetch and': (i, { pc }) => atomic(i, pc), 'lock fetch xor': (i, { pc }) => atomic(i, pc),
  'lock xchg': (i, { pc }) => atomic(i, pc), 'lock cmpxchg': (i, { pc }) => atomic(i, pc),
  'lock add32': (i, { pc }) => atomic(i, pc), 'lock or32': (i, { pc }) => atomic(i, pc),
  'lock and32': (i, { pc }) => atomic(i, pc), 'lock xor32': (i, { pc }) => atomic(i, pc),
  'lock fetch add32': (i, { pc }) => atomic(i, pc), 'lock fetch or32': (i, { pc }) => atomic(i, pc),
  'lock fetch and32': (i, { pc }) => atomic(i, pc), 'lock fetch xor32': (i, { pc }) => atomic(i, pc),
  'lock xchg32': (i, { pc }) => atomic(i, pc), 'lock cmpxchg32': (i, { pc }) => atomic(i, pc),
} satisfies Partial<Record<OpName, Compile>>;
