/**
 * @fileoverview JMP and JMP32: conditional jumps (K operands sign-extended to 64 bits for JMP,
 * the low 32 bits compared for JMP32), ja (off) and ja32 (imm, "gotol"), helper calls, callx
 * (helper id in dst: a ubpf/bpf_conformance extension), bpf-to-bpf calls and exit.
 * Targets are checked when the program is prepared; a bad one traps when it is reached.
 */
import { BPF_X, BPF_PSEUDO_CALL, BPF_PSEUDO_KFUNC_CALL, type OpName } from '../isa/opcodes.ts';
import type { Insn } from '../isa/insn.ts';
import { VmTrap, getU64, type Compile, type Site } from './vm.ts';

/** pc + 1 + rel, which must be an instruction of the program. */
export function target(site: Site, rel: number, what = 'jump'): number {
  const t = site.pc + 1 + rel;
  if (t < 0 || t >= site.insns.length) throw new VmTrap('bad-jump', `${what} to ${t} is outside the program (0..${site.insns.length - 1})`);
  return t;
}

/** dst/src half indexes; imm as the two halves of its 64-bit sign extension; taken/next pcs. */
const operands = (i: Insn, site: Site) => ({
  d: 2 * i.dst, s: 2 * i.src, kl: i.imm | 0, kh: i.imm >> 31, ku: i.imm >>> 0,
  t: target(site, i.off), n: site.pc + 1, x: (i.code & BPF_X) !== 0,
});

/** a > b unsigned, 64-bit, from halves. */
const gtu = (al: number, ah: number, bl: number, bh: number): boolean =>
  (ah >>> 0) > (bh >>> 0) || (ah === bh && (al >>> 0) > (bl >>> 0));
/** a > b signed, 64-bit, from halves (the low halves compare unsigned). */
const gts = (al: number, ah: number, bl: number, bh: number): boolean =>
  ah > bh || (ah === bh && (al >>> 0) > (bl >>> 0));


export const JMP_HANDLERS = {
  ja: (i, site) => { const t = target(site, i.off); return () => t; },
  ja32: (i, site) => { const t = target(site, i.imm); return () => t; },

  // JMP: 64-bit compares.
  jeq: (i, site) => {
    const { d, s, kl, kh, t, n, x } = operands(i, site);
    return x ? (r) => (r[d] === r[s] && r[d + 1] === r[s + 1] ? t : n) : (r) => (r[d] === kl && r[d + 1] === kh ? t : n);
  },
  jne: (i, site) => {
    const { d, s, kl, kh, t, n, x } = operands(i, site);
    return x ? (r) => (r[d] !== r[s] || r[d + 1] !== r[s + 1] ? t : n) : (r) => (r[d] !== kl || r[d + 1] !== kh ? t : n);
  },
  jset: (i, site) => {
    const { d, s, kl, kh, t, n, x } = operands(i, site);
    return x ? (r) => ((r[d] & r[s]) !== 0 || (r[d + 1] & r[s + 1]) !== 0 ? t : n) : (r) => ((r[d] & kl) !== 0 || (r[d + 1] & kh) !== 0 ? t : n);
  },
  jgt: (i, site) => {
    const { d, s, kl, kh, t, n, x } = operands(i, site);
    return x ? (r) => (gtu(r[d], r[d + 1], r[s], r[s + 1]) ? t : n) : (r) => (gtu(r[d], r[d + 1], kl, kh) ? t : n);
  },
  jge: (i, site) => {
    const { d, s, kl, kh, t, n, x } = operands(i, site);
    return x ? (r) => (gtu(r[s], r[s + 1], r[d], r[d + 1]) ? n : t) : (r) => (gtu(kl, kh, r[d], r[d + 1]) ? n : t);
  },
  jlt: (i, site) => {
    const { d, s, kl, kh, t, n, x } = operands(i, site);
    return x ? (r) => (gtu(r[s], r[s + 1], r[d], r[d + 1]) ? t : n) : (r) => (gtu(kl, kh, r[d], r[d + 1]) ? t : n);
  },
  jle: (i, site) => {
    const { d, s, kl, kh, t, n, x } = operands(i, site);
    return x ? (r) => (gtu(r[d], r[d + 1], r[s], r[s + 1]) ? n : t) : (r) => (gtu(r[d], r[d + 1], kl, kh) ? n : t);
  },
  jsgt: (i, site) => {
    const { d, s, kl, kh, t, n, x } = operands(i, site);
    return x ? (r) => (gts(r[d], r[d + 1], r[s], r[s + 1]) ? t : n) : (r) => (gts(r[d], r[d + 1], kl, kh) ? t : n);
  },
  jsge: (i, site) => {
    const { d, s, kl, kh, t, n, x } = operands(i, site);
    return x ? (r) => (gts(r[s], r[s + 1], r[d], r[d + 1]) ? n : t) : (r) => (gts(kl, kh, r[d], r[d + 1]) ? n : t);
  },
  jslt: (i, site) => {
    const { d, s, kl, kh, t, n, x } = operands(i, site);
    return x ? (r) => (gts(r[s], r[s + 1], r[d], r[d + 1]) ? t : n) : (r) => (gts(kl, kh, r[d], r[d + 1]) ? t : n);
  },
  jsle: (i, site) => {
    const { d, s, kl, kh, t, n, x } = operands(i, site);
    return x ? (r) => (gts(r[d], r[d + 1], r[s], r[s + 1]) ? n : t) : (r) => (gts(r[d], r[d + 1], kl, kh) ? n : t);
  },

  // JMP32: the low halves; unsigned compares through >>> 0, signed ones as int32.
  jeq32: (i, site) => {
    const { d, s, kl, t, n, x } = operands(i, site);
    return x ? (r) => (r[d] === r[s] ? t : n) : (r) => (r[d] === kl ? t : n);
  },
  jne32: (i, site) => {
    const { d, s, kl, t, n, x } = operands(i, site);
    return x ? (r) => (r[d] !== r[s] ? t : n) : (r) => (r[d] !== kl ? t : n);
  },
  jset32: (i, site) => {
    const { d, s, kl, t, n, x } = operands(i, site);
    return x ? (r) => ((r[d] & r[s]) !== 0 ? t : n) : (r) => ((r[d] & kl) !== 0 ? t : n);
  },
  jgt32: (i, site) => {
    const { d, s, ku, t, n, x } = operands(i, site);
    return x ? (r) => ((r[d] >>> 0) > (r[s] >>> 0) ? t : n) : (r) => ((r[d] >>> 0) > ku ? t : n);
  },
  jge32: (i, site) => {
    const { d, s, ku, t, n, x } = operands(i, site);
    return x ? (r) => ((r[d] >>> 0) >= (r[s] >>> 0) ? t : n) : (r) => ((r[d] >>> 0) >= ku ? t : n);
  },
  jlt32: (i, site) => {
    const { d, s, ku, t, n, x } = operands(i, site);
    return x ? (r) => ((r[d] >>> 0) < (r[s] >>> 0) ? t : n) : (r) => ((r[d] >>> 0) < ku ? t : n);
  },
  jle32: (i, site) => {
    const { d, s, ku, t, n, x } = operands(i, site);
    return x ? (r) => ((r[d] >>> 0) <= (r[s] >>> 0) ? t : n) : (r) => ((r[d] >>> 0) <= ku ? t : n);
  },
  jsgt32: (i, site) => {
    const { d, s, kl, t, n, x } = operands(i, site);
    return x ? (r) => (r[d] > r[s] ? t : n) : (r) => (r[d] > kl ? t : n);
  },
  jsge32: (i, site) => {
    const { d, s, kl, t, n, x } = operands(i, site);
    return x ? (r) => (r[d] >= r[s] ? t : n) : (r) => (r[d] >= kl ? t : n);
  },
  jslt32: (i, site) => {
    const { d, s, kl, t, n, x } = operands(i, site);
    return x ? (r) => (r[d] < r[s] ? t : n) : (r) => (r[d] < kl ? t : n);
  },
  jsle32: (i, site) => {
    const { d, s, kl, t, n, x } = operands(i, site);
    return x ? (r) => (r[d] <= r[s] ? t : n) : (r) => (r[d] <= kl ? t : n);
  },

  /** src 0: helper imm; BPF_PSEUDO_CALL: the subprogram at pc+1+imm; BPF_PSEUDO_KFUNC_CALL: env.kfuncs. */
  call: (i, site) => {
    const n = site.pc + 1, id = i.imm;
    switch (i.src) {
      case 0: return (r, vm) => { vm.callHelper(r, id); return n; };
      case BPF_PSEUDO_CALL: { const t = target(site, i.imm, 'call'); return (r, vm) => vm.enter(r, t, n); }
      case BPF_PSEUDO_KFUNC_CALL: return (r, vm) => { vm.callHelper(r, id, 'kfunc'); return n; };
      default: throw new VmTrap('bad-insn', `call with src=${i.src} is not a helper, subprogram or kfunc call`);
    }
  },
  /** The helper whose id is in dst. */
  callx: (i, site) => {
    const n = site.pc + 1, d = 2 * i.dst;
    return (r, vm) => {
      if (r[d + 1] !== 0 || r[d] < 0) throw new VmTrap('unknown-helper', `unknown helper 0x${getU64(r, d).toString(16)} (callx r${i.dst})`);
      vm.callHelper(r, r[d]);
      return n;
    };
  },
  /** Back to the caller's frame, or -1: the main frame is done and R0 is the result. */
  exit: () => (r, vm) => (vm.depth === 0 ? -1 : vm.leave(r)),
} satisfies Partial<Record<OpName, Compile>>;
