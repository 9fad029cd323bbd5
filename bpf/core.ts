/**
 * @fileoverview What kernel/bpf/core.c does for a program that passed the verifier: its tag
 * (bpf_prog_calc_tag), its functions (main program and bpf-to-bpf subprograms, as jit_subprogs
 * splits them), each function's stack depth, and its kallsyms name (bpf_get_prog_name).
 */
import { createHash } from 'node:crypto';
import {
  BPF_JMP, BPF_CALL, BPF_PSEUDO_CALL, BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE, BPF_CLASS, BPF_LDX, BPF_ST,
  BPF_STX, BPF_REG_FP, MAX_BPF_STACK, BPF_ALU, BPF_ALU64, BPF_X, BPF_SRC,
} from './isa/opcodes.ts';
import { encode, isLdImm64, type Insn } from './isa/insn.ts';

export const BPF_TAG_SIZE = 8;

/** bpf_prog_calc_tag: SHA-1 of the instructions with map-fd immediates zeroed; 8 bytes, hex. */
export function bpfProgCalcTag(insns: readonly Insn[]): string {
  const copy = insns.map((i) => ({ ...i }));
  for (let i = 0; i + 1 < copy.length; i++) {
    const ins = copy[i]!;
    if (isLdImm64(ins) && (ins.src === BPF_PSEUDO_MAP_FD || ins.src === BPF_PSEUDO_MAP_VALUE)) {
      ins.imm = 0;
      copy[i + 1]!.imm = 0;
      i++;
    }
  }
  return createHash('sha1').update(encode(copy)).digest().subarray(0, BPF_TAG_SIZE).toString('hex');
}

export interface BpfFunc {
  start: number;
  end: number; // exclusive
  stackDepth: number;
}

/** Function boundaries: instruction 0 and every bpf-to-bpf call target. */
export function splitFuncs(insns: readonly Insn[]): number[] {
  const starts = new Set<number>([0]);
  insns.forEach((ins, i) => {
    if (ins.code === (BPF_JMP | BPF_CALL) && ins.src === BPF_PSEUDO_CALL) starts.add(i + 1 + ins.imm);
  });
  return [...starts].sort((a, b) => a - b);
}

/**
 * A stack depth for each function. Until the verifier tracks it, a safe bound: when R10 is only
 * used directly as the base of loads and stores, the deepest such offset; when it is copied
 * anywhere (so the stack may be reached through another register), MAX_BPF_STACK.
 */
export function stackDepths(insns: readonly Insn[], starts: readonly number[]): BpfFunc[] {
  return starts.map((start, k) => {
    const end = starts[k + 1] ?? insns.length;
    let depth = 0;
    for (let i = start; i < end; i++) {
      const ins = insns[i]!;
      const cls = BPF_CLASS(ins.code);
      if (isLdImm64(ins)) { i++; continue; }
      if ((cls === BPF_ALU || cls === BPF_ALU64) && BPF_SRC(ins.code) === BPF_X && ins.src === BPF_REG_FP) depth = MAX_BPF_STACK;
      else if (cls === BPF_STX && ins.src === BPF_REG_FP) depth = MAX_BPF_STACK;
      const base = cls === BPF_LDX ? ins.src : cls === BPF_ST || cls === BPF_STX ? ins.dst : -1;
      if (base === BPF_REG_FP && ins.off < 0) depth = Math.max(depth, -ins.off);
    }
    return { start, end, stackDepth: Math.min(MAX_BPF_STACK, (depth + 7) & ~7) };
  });
}

/** bpf_get_prog_name: `bpf_prog_<tag>` then `_<name>` when the program has one. */
export function bpfProgName(tag: string, name: string): string {
  return name ? `bpf_prog_${tag}_${name}` : `bpf_prog_${tag}`;
}
