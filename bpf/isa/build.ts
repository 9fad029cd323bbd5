/**
 * @fileoverview Instruction builders, as include/linux/filter.h's BPF_ALU64_IMM() & co., shared
 * by tests, the loader and kernel code: `alu64Imm(BPF_ADD, 0, 1)`, `ldImm64(1, 0x1234n)`, `exit()`.
 */
import {
  BPF_ALU, BPF_ALU64, BPF_K, BPF_X, BPF_JMP, BPF_JMP32, BPF_EXIT, BPF_CALL, BPF_JA, BPF_LD, BPF_IMM,
  BPF_DW, BPF_LDX, BPF_ST, BPF_STX, BPF_MEM, BPF_MOV, BPF_ATOMIC, BPF_PSEUDO_CALL,
} from './opcodes.ts';
import { insn, type Insn } from './insn.ts';

export const alu64Imm = (op: number, dst: number, imm: number): Insn => insn(BPF_ALU64 | op | BPF_K, dst, 0, 0, imm);
export const alu64Reg = (op: number, dst: number, src: number): Insn => insn(BPF_ALU64 | op | BPF_X, dst, src);
export const alu32Imm = (op: number, dst: number, imm: number): Insn => insn(BPF_ALU | op | BPF_K, dst, 0, 0, imm);
export const alu32Reg = (op: number, dst: number, src: number): Insn => insn(BPF_ALU | op | BPF_X, dst, src);
export const mov64Imm = (dst: number, imm: number): Insn => alu64Imm(BPF_MOV, dst, imm);
export const mov64Reg = (dst: number, src: number): Insn => alu64Reg(BPF_MOV, dst, src);
export const mov32Imm = (dst: number, imm: number): Insn => alu32Imm(BPF_MOV, dst, imm);
export const jmpImm = (op: number, dst: number, imm: number, off: number): Insn => insn(BPF_JMP | op | BPF_K, dst, 0, off, imm);
export const jmpReg = (op: number, dst: number, src: number, off: number): Insn => insn(BPF_JMP | op | BPF_X, dst, src, off);
export const jmp32Imm = (op: number, dst: number, imm: number, off: number): Insn => insn(BPF_JMP32 | op | BPF_K, dst, 0, off, imm);
export const ja = (off: number): Insn => insn(BPF_JMP | BPF_JA, 0, 0, off);
/** Two slots: the low 32 bits in the first imm, the high 32 in the second. */
export const ldImm64 = (dst: number, v: bigint, src = 0): [Insn, Insn] => [
  insn(BPF_LD | BPF_IMM | BPF_DW, dst, src, 0, Number(BigInt.asIntN(32, v))),
  insn(0, 0, 0, 0, Number(BigInt.asIntN(32, v >> 32n))),
];
export const ldxMem = (size: number, dst: number, src: number, off: number): Insn => insn(BPF_LDX | BPF_MEM | size, dst, src, off);
export const stxMem = (size: number, dst: number, src: number, off: number): Insn => insn(BPF_STX | BPF_MEM | size, dst, src, off);
export const stMem = (size: number, dst: number, off: number, imm: number): Insn => insn(BPF_ST | BPF_MEM | size, dst, 0, off, imm);
export const atomicOp = (size: number, op: number, dst: number, src: number, off: number): Insn => insn(BPF_STX | BPF_ATOMIC | size, dst, src, off, op);
export const callHelper = (id: number): Insn => insn(BPF_JMP | BPF_CALL, 0, 0, 0, id);
/** bpf-to-bpf call: imm is the offset from the next instruction to the callee. */
export const callLocal = (rel: number): Insn => insn(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, rel);
export const exit = (): Insn => insn(BPF_JMP | BPF_EXIT);
