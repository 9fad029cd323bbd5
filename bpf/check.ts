/**
 * @fileoverview The structural check a program passes before anything runs (the parts of the
 * kernel verifier's check_subprogs/check_cfg/do_check that need no abstract state), with the
 * kernel's messages and errnos: valid opcodes, registers in range, jumps inside the program
 * and inside their function, whole ld_imm64 pairs, no falling off the end. bpf/verifier/
 * runs it first and does the rest (register types and bounds, R10 read-only on reachable paths).
 */
import {
  BPF_JMP, BPF_JMP32, BPF_CALL, BPF_EXIT, BPF_JA, BPF_CLASS, BPF_OP, BPF_REG_FP, BPF_PSEUDO_CALL, BPF_COMPLEXITY_LIMIT_INSNS,
} from './isa/opcodes.ts';
import { opOf, isLdImm64, type Insn } from './isa/insn.ts';

export const EINVAL = 22, EACCES = 13, E2BIG = 7;

export interface CheckError { errno: number; msg: string }

const err = (errno: number, msg: string): CheckError => ({ errno, msg });

/**
 * 0 problems: undefined; else the first problem, as the kernel reports it, in the kernel's order:
 * check_subprogs (call targets, jumps inside their function, the last instruction), then
 * resolve_pseudo_ldimm64 (whole ld_imm64 pairs, known opcodes), then what later kernels' check_cfg
 * refuses up front (a jump into an ld_imm64) and registers past R10 (which the interpreter and JIT
 * cannot hold even in dead code). Writes to R10 are the verifier's to refuse, on reachable paths.
 */
export function checkStructure(insns: readonly Insn[], maxInsns = BPF_COMPLEXITY_LIMIT_INSNS): CheckError | undefined {
  if (insns.length === 0 || insns.length > maxInsns) return err(E2BIG, `program of ${insns.length} instructions (must be 1..${maxInsns})`);
  // check_subprogs: subprogram boundaries, jumps inside them, no falling into the next one.
  const starts = new Set<number>([0]);
  for (let i = 0; i < insns.length; i++) {
    const ins = insns[i]!;
    if (ins.code === (BPF_JMP | BPF_CALL) && ins.src === BPF_PSEUDO_CALL) {
      const t = i + 1 + ins.imm;
      if (t < 0 || t >= insns.length) return err(EINVAL, `call to invalid destination`);
      starts.add(t);
    }
  }
  const sorted = [...starts].sort((a, b) => a - b);
  for (let k = 0; k < sorted.length; k++) {
    const start = sorted[k]!, end = sorted[k + 1] ?? insns.length;
    for (let i = start; i < end; i++) {
      const ins = insns[i]!;
      const cls = BPF_CLASS(ins.code);
      if ((cls === BPF_JMP || cls === BPF_JMP32) && BPF_OP(ins.code) !== BPF_CALL && BPF_OP(ins.code) !== BPF_EXIT) {
        const rel = cls === BPF_JMP32 && BPF_OP(ins.code) === BPF_JA ? ins.imm : ins.off;
        const t = i + 1 + rel;
        if (t < start || t >= end) return err(EINVAL, `jump out of range from insn ${i} to ${t}`);
      }
    }
    const last = insns[end - 1]!;
    const lastOk = last.code === (BPF_JMP | BPF_EXIT) || last.code === (BPF_JMP | BPF_JA) || last.code === (BPF_JMP32 | BPF_JA);
    if (!lastOk) return err(EINVAL, 'last insn is not an exit or jmp');
  }
  // resolve_pseudo_ldimm64: whole ld_imm64 pairs, opcodes the ISA table knows.
  for (let i = 0; i < insns.length; i++) {
    const ins = insns[i]!;
    if (isLdImm64(ins)) {
      const next = insns[i + 1];
      if (!next || next.code !== 0 || next.dst !== 0 || next.src !== 0 || next.off !== 0 || starts.has(i + 1)) return err(EINVAL, 'invalid bpf_ld_imm64 insn');
      i++;
      continue;
    }
    if (!opOf(ins)) return err(EINVAL, `unknown opcode ${ins.code.toString(16).padStart(2, '0')}`);
  }
  for (let i = 0; i < insns.length; i++) {
    const ins = insns[i]!;
    if (isLdImm64(ins)) {
      if (ins.dst > BPF_REG_FP) return err(EINVAL, `R${ins.dst} is invalid`);
      i++;
      continue;
    }
    if (ins.dst > BPF_REG_FP || ins.src > BPF_REG_FP) {
      if (!(ins.code === (BPF_JMP | BPF_CALL) && ins.src <= 2)) return err(EINVAL, `R${Math.max(ins.dst, ins.src)} is invalid`);
    }
    const cls = BPF_CLASS(ins.code);
    if ((cls === BPF_JMP || cls === BPF_JMP32) && BPF_OP(ins.code) !== BPF_CALL && BPF_OP(ins.code) !== BPF_EXIT) {
      const t = i + 1 + (cls === BPF_JMP32 && BPF_OP(ins.code) === BPF_JA ? ins.imm : ins.off);
      if (t - 1 >= 0 && isLdImm64(insns[t - 1]!)) return err(EINVAL, `jump into the middle of ldimm64 insn ${t - 1}`);
    }
  }
  return undefined;
}
