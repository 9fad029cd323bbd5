/**
 * @fileoverview The verifier's last rewrites before a program runs (do_misc_fixups in
 * kernel/bpf/verifier.c): division and modulo patched so that no input can raise a CPU
 * exception — x/0 = 0, x%0 = x, INT_MIN s/ -1 = INT_MIN, x s% -1 = 0, 32-bit forms
 * zero-extended — with the same instruction sequences the kernel inserts, and branch offsets
 * adjusted as bpf_patch_insn_data does. BPF_REG_AX is the scratch register.
 */
import {
  BPF_ALU, BPF_ALU64, BPF_JMP, BPF_JMP32, BPF_K, BPF_X, BPF_DIV, BPF_MOD, BPF_JNE, BPF_JEQ, BPF_JGT, BPF_JA,
  BPF_XOR, BPF_MOV, BPF_NEG, BPF_ADD, BPF_CALL, BPF_EXIT, BPF_CLASS, BPF_OP, BPF_SRC, BPF_REG_AX, BPF_PSEUDO_CALL,
} from './isa/opcodes.ts';
import { insn, isLdImm64, type Insn } from './isa/insn.ts';

export interface Patched {
  insns: Insn[];
  /** origToNew[i]: where original instruction i's patch starts. */
  origToNew: Int32Array;
  /** newToOrig[j]: the original instruction that new instruction j came from. */
  newToOrig: Int32Array;
}

const ja = (off: number): Insn => insn(BPF_JMP | BPF_JA, 0, 0, off);
const mov32Reg = (r: number): Insn => insn(BPF_ALU | BPF_MOV | BPF_X, r, r);

/** The kernel's patch for one div/mod, or undefined when the instruction is left alone. */
function divModPatch(i: Insn): Insn[] | undefined {
  const cls = BPF_CLASS(i.code), op = BPF_OP(i.code);
  if ((cls !== BPF_ALU && cls !== BPF_ALU64) || (op !== BPF_DIV && op !== BPF_MOD)) return undefined;
  const is64 = cls === BPF_ALU64, isdiv = op === BPF_DIV, signed = i.off === 1;
  const J = is64 ? BPF_JMP : BPF_JMP32, A = is64 ? BPF_ALU64 : BPF_ALU;
  if (BPF_SRC(i.code) === BPF_K) {
    // The kernel's verifier refuses a zero divisor constant ("division by zero"); the ISA
    // (RFC 9669) defines it as for registers, and the suite tests it: give it those semantics.
    if (i.imm === 0) return isdiv ? [insn(BPF_ALU | BPF_XOR | BPF_X, i.dst, i.dst)] : is64 ? [ja(0)] : [mov32Reg(i.dst)];
    if (signed && i.imm === -1) return isdiv ? [insn(A | BPF_NEG | BPF_K, i.dst)] : [insn(A | BPF_MOV | BPF_K, i.dst, 0, 0, 0)];
    return undefined;
  }
  const s = i.src, d = i.dst, AX = BPF_REG_AX;
  if (!signed && isdiv) return [
    insn(J | BPF_JNE | BPF_K, s, 0, 2, 0),            // if src != 0 goto div
    insn(BPF_ALU | BPF_XOR | BPF_X, d, d),           // dst = 0
    ja(1),
    i,
  ];
  if (!signed) return [
    insn(J | BPF_JEQ | BPF_K, s, 0, 1 + (is64 ? 0 : 1), 0), // if src == 0 skip (32-bit: to the zext)
    i,
    ja(1),
    mov32Reg(d),
  ];
  if (isdiv) return [
    insn(BPF_ALU64 | BPF_MOV | BPF_X, AX, s),         // AX = src
    insn(A | BPF_ADD | BPF_K, AX, 0, 0, 1),           // AX += 1: 0 for -1, 1 for 0
    insn(J | BPF_JGT | BPF_K, AX, 0, 4, 1),           // src not in {-1, 0}: divide
    insn(J | BPF_JEQ | BPF_K, AX, 0, 1, 0),           // src == -1: negate
    insn(A | BPF_MOV | BPF_K, d, 0, 0, 0),            // src == 0: dst = 0
    insn(A | BPF_NEG | BPF_K, d),                     // -INT_MIN == INT_MIN
    ja(1),
    i,
  ];
  return [
    insn(BPF_ALU64 | BPF_MOV | BPF_X, AX, s),
    insn(A | BPF_ADD | BPF_K, AX, 0, 0, 1),
    insn(J | BPF_JGT | BPF_K, AX, 0, 3, 1),           // src not in {-1, 0}: modulo
    insn(J | BPF_JEQ | BPF_K, AX, 0, 3 + (is64 ? 0 : 1), 1), // src == 0: dst unchanged (32-bit: zext)
    insn(A | BPF_MOV | BPF_K, d, 0, 0, 0),            // src == -1: dst = 0
    ja(1 + (is64 ? 0 : 1)),
    i,
    ja(1),
    mov32Reg(d),
  ];
}

const isJump = (i: Insn): boolean => {
  const cls = BPF_CLASS(i.code);
  if (cls !== BPF_JMP && cls !== BPF_JMP32) return false;
  const op = BPF_OP(i.code);
  return op !== BPF_EXIT && (op !== BPF_CALL || (i.src === BPF_PSEUDO_CALL && cls === BPF_JMP));
};

/** Applies the fixups; jumps and bpf-to-bpf calls into a patched instruction land on its patch. */
export function doMiscFixups(orig: readonly Insn[]): Patched {
  return patchInsns(orig, divModPatch);
}

/**
 * bpf_patch_insn_data over a whole program: each instruction `patch` gives a sequence for is
 * replaced by it (whose own jumps are local), and every other jump and bpf-to-bpf call is
 * re-aimed so that a jump into a patched instruction lands on the start of its patch.
 */
export function patchInsns(orig: readonly Insn[], patch: (ins: Insn, idx: number) => Insn[] | undefined): Patched {
  const pieces: Insn[][] = [];
  for (let i = 0; i < orig.length; i++) {
    const ins = orig[i]!;
    if (isLdImm64(ins)) { pieces.push([ins]); pieces.push([orig[i + 1] ?? insn(0)]); i++; continue; }
    pieces.push(patch(ins, i) ?? [ins]);
  }
  const origToNew = new Int32Array(orig.length + 1);
  let n = 0;
  pieces.forEach((p, k) => { origToNew[k] = n; n += p.length; });
  origToNew[orig.length] = n;
  const out: Insn[] = [];
  const newToOrig = new Int32Array(n);
  pieces.forEach((p, k) => {
    for (const ins of p) {
      newToOrig[out.length] = k;
      // Only the original instruction of a piece can jump outside it (patch jumps are local).
      if (ins === orig[k] && isJump(ins) && pieces[k]!.length >= 1) {
        const pos = out.length;
        const usesImm = ins.code === (BPF_JMP32 | BPF_JA) || BPF_OP(ins.code) === BPF_CALL;
        const rel = usesImm ? ins.imm : ins.off;
        const target = k + 1 + rel;
        if (target >= 0 && target <= orig.length) {
          const nrel = origToNew[target]! - (pos + 1);
          out.push(usesImm ? { ...ins, imm: nrel } : { ...ins, off: nrel });
          continue;
        }
      }
      out.push(ins);
    }
  });
  return { insns: out, origToNew, newToOrig };
}
