/**
 * @fileoverview arch/x86_64/encoder.ts: every emitter against bytes from GNU as (binutils 2.40,
 * `as --64 -msyntax=intel -mnaked-reg`, pasted when the table was written), re-checked at test
 * time both ways in a temp dir: the asm texts assembled by `as` + `objcopy -O binary`, and the
 * expected bytes disassembled by `objdump -d -M intel`. A sweep over every register pair and base
 * goes through `as` the same way. Then the bytes bpf_jit_comp.c writes by hand (EMIT3(0x48, 0x89,
 * 0xE5) and co.), the buffer, the errors and the BPF register map.
 *
 * `asm` is objdump's text (whitespace collapsed; branch targets written `.+rel` from the start of
 * the instruction). `gas` is what to feed `as` when it differs: `{disp8}`/`{disp32}` force the
 * displacement size; `false` when no spelling makes `as` choose the kernel's encoding (cmp rax
 * with 81, test rax with f7, fixed `81 /op id`): those rows are checked through objdump only.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ASM_NOP_MAX, CodeBuffer, EncodeError, X86_CC, X86_NOPS, X86_PATCH_SIZE, emitAluMI, emitAluMR, emitAluRI,
  emitAluRImm32, emitAluRR, emitAtomic, emitBswap, emitCall, emitCallReg, emitCallRel32, emitCdq, emitCmov,
  emitCondNearJump, emitCqo, emitDiv, emitIdiv, emitImulRR, emitImulRRI, emitInt3, emitJccRel32, emitJccRel8,
  emitJmpReg, emitJmpRel32, emitJmpRel8, emitJump, emitLdsx, emitLdx, emitLea, emitLeave, emitLfence, emitMovImm32,
  emitMovImm64, emitMovRI32, emitMovRI32Sx, emitMovRR, emitMovabs, emitMovsxRR, emitMovzxRR, emitMul, emitNeg,
  emitNop5, emitNops, emitNot, emitPop, emitPush, emitPushImm, emitRet, emitShiftRCl, emitShiftRI, emitSt, emitStx, emitTestRI,
  emitTestRR, isImm8, isSimm32, isUimm32, mem, memIndex, modrm, rex, sib,
  type AluOp, type AtomicOp, type Cond, type MemSize, type RegBits, type ShiftOp,
} from '../../arch/x86_64/encoder.ts';
import {
  ALL_REGS, AUX_REG, BPF_TO_X86, R10, R11, R12, R13, R14, R15, R8, R9, RAX, RBP, RBX, RCX, RDI, RDX, RSI, RSP,
  X86_REG_R12, X86_REG_R9, isEreg, needsRex8, regName, type Reg,
} from '../../arch/x86_64/regs.ts';
import { BPF_REG_AX, BPF_REG_FP, MAX_BPF_REG } from '../../bpf/isa/opcodes.ts';

const hexOf = (u: Uint8Array): string => Array.from(u, (b) => b.toString(16).padStart(2, '0')).join(' ');
const bytesOf = (hex: string): number[] => (hex === '' ? [] : hex.split(' ').map((h) => parseInt(h, 16)));

function encode(emit: (b: CodeBuffer) => void): string {
  const b = new CodeBuffer(16);
  emit(b);
  return hexOf(b.bytes());
}

interface Case {
  emit: (b: CodeBuffer) => void;
  hex: string;
  asm: string;
  gas: string | false;
}
const c = (emit: (b: CodeBuffer) => void, hex: string, asm: string, gas: string | false = asm): Case => ({ emit, hex, asm, gas });
const KTEXT = 0xffffffff81000000n;

const CASES: Case[] = [
  // --- mov r, r ---
  c((b) => emitMovRR(b, 64, RAX, RBX), '48 89 d8', 'mov rax,rbx'),
  c((b) => emitMovRR(b, 64, RBP, RSP), '48 89 e5', 'mov rbp,rsp'),
  c((b) => emitMovRR(b, 64, R8, RAX), '49 89 c0', 'mov r8,rax'),
  c((b) => emitMovRR(b, 64, RAX, R15), '4c 89 f8', 'mov rax,r15'),
  c((b) => emitMovRR(b, 64, R11, R13), '4d 89 eb', 'mov r11,r13'),
  c((b) => emitMovRR(b, 32, RDX, RDX), '89 d2', 'mov edx,edx'),
  c((b) => emitMovRR(b, 32, R10, RAX), '41 89 c2', 'mov r10d,eax'),
  c((b) => emitMovRR(b, 32, RDI, R9), '44 89 cf', 'mov edi,r9d'),
  // --- mov r, imm: fixed forms ---
  c((b) => emitMovRI32(b, RAX, 1), 'b8 01 00 00 00', 'mov eax,0x1'),
  c((b) => emitMovRI32(b, R12, 0xffffffff), '41 bc ff ff ff ff', 'mov r12d,0xffffffff'),
  c((b) => emitMovRI32(b, RDI, -1), 'bf ff ff ff ff', 'mov edi,0xffffffff'),
  c((b) => emitMovRI32Sx(b, RAX, -1), '48 c7 c0 ff ff ff ff', 'mov rax,0xffffffffffffffff'),
  c((b) => emitMovRI32Sx(b, R11, 0x7fffffff), '49 c7 c3 ff ff ff 7f', 'mov r11,0x7fffffff'),
  c((b) => emitMovRI32Sx(b, R11, -0x80000000), '49 c7 c3 00 00 00 80', 'mov r11,0xffffffff80000000'),
  c((b) => emitMovRI32Sx(b, RSI, 0), '48 c7 c6 00 00 00 00', 'mov rsi,0x0'),
  c((b) => emitMovabs(b, RDI, 0x8807060504030201n), '48 bf 01 02 03 04 05 06 07 88', 'movabs rdi,0x8807060504030201'),
  c((b) => emitMovabs(b, R15, 1n), '49 bf 01 00 00 00 00 00 00 00', 'movabs r15,0x1'),
  c((b) => emitMovabs(b, R10, -1n), '49 ba ff ff ff ff ff ff ff ff', 'movabs r10,0xffffffffffffffff'),
  // --- emit_mov_imm32 ---
  c((b) => emitMovImm32(b, true, RAX, 0), '31 c0', 'xor eax,eax'),
  c((b) => emitMovImm32(b, false, R8, 0), '45 31 c0', 'xor r8d,r8d'),
  c((b) => emitMovImm32(b, false, RDI, -1), 'bf ff ff ff ff', 'mov edi,0xffffffff'),
  c((b) => emitMovImm32(b, true, RDI, -1), '48 c7 c7 ff ff ff ff', 'mov rdi,0xffffffffffffffff'),
  c((b) => emitMovImm32(b, true, RDI, 0xffffffff), '48 c7 c7 ff ff ff ff', 'mov rdi,0xffffffffffffffff'),
  c((b) => emitMovImm32(b, true, RSI, 0x7fffffff), 'be ff ff ff 7f', 'mov esi,0x7fffffff'),
  c((b) => emitMovImm32(b, true, R9, -0x80000000), '49 c7 c1 00 00 00 80', 'mov r9,0xffffffff80000000'),
  c((b) => emitMovImm32(b, false, R9, 0x80000000), '41 b9 00 00 00 80', 'mov r9d,0x80000000'),
  // --- emit_mov_imm64 ---
  c((b) => emitMovImm64(b, RAX, 0n), '31 c0', 'xor eax,eax'),
  c((b) => emitMovImm64(b, R13, 0x7fn), '41 bd 7f 00 00 00', 'mov r13d,0x7f'),
  c((b) => emitMovImm64(b, RBX, 0x80000000n), 'bb 00 00 00 80', 'mov ebx,0x80000000'),
  c((b) => emitMovImm64(b, RCX, 0xffffffffn), 'b9 ff ff ff ff', 'mov ecx,0xffffffff'),
  c((b) => emitMovImm64(b, RDX, 0x100000000n), '48 ba 00 00 00 00 01 00 00 00', 'movabs rdx,0x100000000'),
  c((b) => emitMovImm64(b, R10, -1n), '49 c7 c2 ff ff ff ff', 'mov r10,0xffffffffffffffff'),
  c((b) => emitMovImm64(b, R12, 0xffffffffffffffffn), '49 c7 c4 ff ff ff ff', 'mov r12,0xffffffffffffffff'),
  c((b) => emitMovImm64(b, RAX, -129n), '48 c7 c0 7f ff ff ff', 'mov rax,0xffffffffffffff7f'),
  c((b) => emitMovImm64(b, RAX, -0x80000000n), '48 c7 c0 00 00 00 80', 'mov rax,0xffffffff80000000'),
  c((b) => emitMovImm64(b, R14, -0x80000001n), '49 be ff ff ff 7f ff ff ff ff', 'movabs r14,0xffffffff7fffffff'),
  c((b) => emitMovImm64(b, RSI, 0x8000000000000000n), '48 be 00 00 00 00 00 00 00 80', 'movabs rsi,0x8000000000000000'),
  c((b) => emitMovImm64(b, RAX, -1n, { simm32: false }), '48 b8 ff ff ff ff ff ff ff ff', 'movabs rax,0xffffffffffffffff'),
  c((b) => emitMovImm64(b, R9, -0x80000000n, { simm32: false }), '49 b9 00 00 00 80 ff ff ff ff', 'movabs r9,0xffffffff80000000'),
  c((b) => emitMovImm64(b, R9, 0x80000000n, { simm32: false }), '41 b9 00 00 00 80', 'mov r9d,0x80000000'),
  c((b) => emitMovImm64(b, RDI, 0xffff888000000000n), '48 bf 00 00 00 00 80 88 ff ff', 'movabs rdi,0xffff888000000000'),
  // --- movzx / movsx r, r ---
  c((b) => emitMovzxRR(b, 8, RAX, RBX), '0f b6 c3', 'movzx eax,bl'),
  c((b) => emitMovzxRR(b, 8, RAX, RDI), '40 0f b6 c7', 'movzx eax,dil'),
  c((b) => emitMovzxRR(b, 8, R9, R10), '45 0f b6 ca', 'movzx r9d,r10b'),
  c((b) => emitMovzxRR(b, 16, RAX, RAX), '0f b7 c0', 'movzx eax,ax'),
  c((b) => emitMovzxRR(b, 16, R8, R8), '45 0f b7 c0', 'movzx r8d,r8w'),
  c((b) => emitMovsxRR(b, 8, 64, RAX, RSI), '48 0f be c6', 'movsx rax,sil'),
  c((b) => emitMovsxRR(b, 16, 64, R14, RBX), '4c 0f bf f3', 'movsx r14,bx'),
  c((b) => emitMovsxRR(b, 32, 64, RAX, RDI), '48 63 c7', 'movsxd rax,edi'),
  c((b) => emitMovsxRR(b, 32, 64, R15, R8), '4d 63 f8', 'movsxd r15,r8d'),
  c((b) => emitMovsxRR(b, 8, 32, RAX, RAX), '40 0f be c0', 'rex movsx eax,al'),
  c((b) => emitMovsxRR(b, 8, 32, RDX, RSI), '40 0f be d6', 'movsx edx,sil'),
  c((b) => emitMovsxRR(b, 8, 32, R8, RCX), '44 0f be c1', 'movsx r8d,cl'),
  c((b) => emitMovsxRR(b, 16, 32, RCX, RDX), '0f bf ca', 'movsx ecx,dx'),
  c((b) => emitMovsxRR(b, 16, 32, RCX, R13), '41 0f bf cd', 'movsx ecx,r13w'),
  // --- lea, bswap, rol/ror 16, cmov ---
  c((b) => emitLea(b, RSI, mem(RBP, -8)), '48 8d 75 f8', 'lea rsi,[rbp-0x8]'),
  c((b) => emitLea(b, RDI, mem(RBP, -0x100)), '48 8d bd 00 ff ff ff', 'lea rdi,[rbp-0x100]'),
  c((b) => emitLea(b, R11, mem(RSP, 8)), '4c 8d 5c 24 08', 'lea r11,[rsp+0x8]'),
  c((b) => emitBswap(b, 32, RAX), '0f c8', 'bswap eax'),
  c((b) => emitBswap(b, 32, R9), '41 0f c9', 'bswap r9d'),
  c((b) => emitBswap(b, 64, RBX), '48 0f cb', 'bswap rbx'),
  c((b) => emitBswap(b, 64, R15), '49 0f cf', 'bswap r15'),
  c((b) => emitShiftRI(b, 'rol', 16, RAX, 8), '66 c1 c0 08', 'rol ax,0x8'),
  c((b) => emitShiftRI(b, 'ror', 16, RDI, 8), '66 c1 cf 08', 'ror di,0x8'),
  c((b) => emitShiftRI(b, 'ror', 16, R8, 8), '66 41 c1 c8 08', 'ror r8w,0x8'),
  c((b) => emitCmov(b, 'E', 64, RAX, R11), '49 0f 44 c3', 'cmove rax,r11'),
  c((b) => emitCmov(b, 'NE', 32, RCX, R8), '41 0f 45 c8', 'cmovne ecx,r8d'),
  c((b) => emitCmov(b, 'L', 64, RDX, RSI), '48 0f 4c d6', 'cmovl rdx,rsi'),
  c((b) => emitCmov(b, 'A', 64, R12, R13), '4d 0f 47 e5', 'cmova r12,r13'),
  // --- memory operands (through mov r64, [m]): every base class and displacement size ---
  c((b) => emitLdx(b, 8, RAX, mem(RDI, 0)), '48 8b 47 00', 'mov rax,QWORD PTR [rdi+0x0]', '{disp8} mov rax,QWORD PTR [rdi+0x0]'),
  c((b) => emitLdx(b, 8, RSI, mem(RDI, 0x7f)), '48 8b 77 7f', 'mov rsi,QWORD PTR [rdi+0x7f]'),
  c((b) => emitLdx(b, 8, RSI, mem(RDI, -0x80)), '48 8b 77 80', 'mov rsi,QWORD PTR [rdi-0x80]'),
  c((b) => emitLdx(b, 8, RSI, mem(RDI, 0x80)), '48 8b b7 80 00 00 00', 'mov rsi,QWORD PTR [rdi+0x80]'),
  c((b) => emitLdx(b, 8, RSI, mem(RDI, -0x81)), '48 8b b7 7f ff ff ff', 'mov rsi,QWORD PTR [rdi-0x81]'),
  c((b) => emitLdx(b, 8, RCX, mem(RDX, 0x7fffffff)), '48 8b 8a ff ff ff 7f', 'mov rcx,QWORD PTR [rdx+0x7fffffff]'),
  c((b) => emitLdx(b, 8, RCX, mem(RDX, -0x80000000)), '48 8b 8a 00 00 00 80', 'mov rcx,QWORD PTR [rdx-0x80000000]'),
  c((b) => emitLdx(b, 8, R8, mem(R9, 8)), '4d 8b 41 08', 'mov r8,QWORD PTR [r9+0x8]'),
  c((b) => emitLdx(b, 8, RAX, mem(RSP, 0)), '48 8b 44 24 00', 'mov rax,QWORD PTR [rsp+0x0]', '{disp8} mov rax,QWORD PTR [rsp+0x0]'),
  c((b) => emitLdx(b, 8, RAX, mem(RSP, 0x100)), '48 8b 84 24 00 01 00 00', 'mov rax,QWORD PTR [rsp+0x100]'),
  c((b) => emitLdx(b, 8, R15, mem(R12, -8)), '4d 8b 7c 24 f8', 'mov r15,QWORD PTR [r12-0x8]'),
  c((b) => emitLdx(b, 8, RDI, mem(RBP, 0)), '48 8b 7d 00', 'mov rdi,QWORD PTR [rbp+0x0]'),
  c((b) => emitLdx(b, 8, RDI, mem(R13, 0)), '49 8b 7d 00', 'mov rdi,QWORD PTR [r13+0x0]'),
  c((b) => emitLdx(b, 8, RDI, mem(R13, 0x1000)), '49 8b bd 00 10 00 00', 'mov rdi,QWORD PTR [r13+0x1000]'),
  // ... GNU as's shortest form
  c((b) => emitLdx(b, 8, RAX, mem(RDI, 0, 'short')), '48 8b 07', 'mov rax,QWORD PTR [rdi]'),
  c((b) => emitLdx(b, 8, RAX, mem(RSP, 0, 'short')), '48 8b 04 24', 'mov rax,QWORD PTR [rsp]'),
  c((b) => emitLdx(b, 8, RAX, mem(R12, 0, 'short')), '49 8b 04 24', 'mov rax,QWORD PTR [r12]'),
  c((b) => emitLdx(b, 8, RAX, mem(RBP, 0, 'short')), '48 8b 45 00', 'mov rax,QWORD PTR [rbp+0x0]'),
  c((b) => emitLdx(b, 8, RAX, mem(R13, 0, 'short')), '49 8b 45 00', 'mov rax,QWORD PTR [r13+0x0]'),
  c((b) => emitLdx(b, 8, RAX, mem(RDI, 8, 'short')), '48 8b 47 08', 'mov rax,QWORD PTR [rdi+0x8]'),
  // ... fixed disp32
  c((b) => emitLdx(b, 8, RAX, mem(RBP, -8, 'disp32')), '48 8b 85 f8 ff ff ff', 'mov rax,QWORD PTR [rbp-0x8]', '{disp32} mov rax,QWORD PTR [rbp-0x8]'),
  c((b) => emitLdx(b, 8, RAX, mem(RSP, 0, 'disp32')), '48 8b 84 24 00 00 00 00', 'mov rax,QWORD PTR [rsp+0x0]', '{disp32} mov rax,QWORD PTR [rsp+0x0]'),
  // ... with an index
  c((b) => emitLdx(b, 8, RCX, memIndex(RSI, RDX, 8, 0x10, 'disp32')), '48 8b 8c d6 10 00 00 00', 'mov rcx,QWORD PTR [rsi+rdx*8+0x10]', '{disp32} mov rcx,QWORD PTR [rsi+rdx*8+0x10]'),
  c((b) => emitLdx(b, 8, RAX, memIndex(RDI, R12, 1, 8)), '4a 8b 44 27 08', 'mov rax,QWORD PTR [rdi+r12*1+0x8]'),
  c((b) => emitLdx(b, 4, R8, memIndex(R13, R12, 1, 0)), '47 8b 44 25 00', 'mov r8d,DWORD PTR [r13+r12*1+0x0]'),
  c((b) => emitLdx(b, 1, RAX, memIndex(RDI, R12, 1, 8)), '42 0f b6 44 27 08', 'movzx eax,BYTE PTR [rdi+r12*1+0x8]'),
  c((b) => emitLdx(b, 2, R9, memIndex(RSI, R12, 1, -2)), '46 0f b7 4c 26 fe', 'movzx r9d,WORD PTR [rsi+r12*1-0x2]'),
  c((b) => emitLdx(b, 8, RAX, memIndex(RSP, RBP, 2, 0, 'short')), '48 8b 04 6c', 'mov rax,QWORD PTR [rsp+rbp*2]'),
  c((b) => emitLdx(b, 8, RAX, memIndex(RBP, RAX, 4, 0, 'short')), '48 8b 44 85 00', 'mov rax,QWORD PTR [rbp+rax*4+0x0]'),
  c((b) => emitLdx(b, 8, RAX, memIndex(R13, R9, 8, 0, 'short')), '4b 8b 44 cd 00', 'mov rax,QWORD PTR [r13+r9*8+0x0]'),
  // --- emit_ldx: widths ---
  c((b) => emitLdx(b, 1, RAX, mem(RDI, 8)), '48 0f b6 47 08', 'movzx rax,BYTE PTR [rdi+0x8]'),
  c((b) => emitLdx(b, 1, R9, mem(R12, -1)), '4d 0f b6 4c 24 ff', 'movzx r9,BYTE PTR [r12-0x1]'),
  c((b) => emitLdx(b, 2, RBX, mem(R14, 0x200)), '49 0f b7 9e 00 02 00 00', 'movzx rbx,WORD PTR [r14+0x200]'),
  c((b) => emitLdx(b, 2, RSI, mem(RSP, 2)), '48 0f b7 74 24 02', 'movzx rsi,WORD PTR [rsp+0x2]'),
  c((b) => emitLdx(b, 4, RAX, mem(RDI, 0x14)), '8b 47 14', 'mov eax,DWORD PTR [rdi+0x14]'),
  c((b) => emitLdx(b, 4, R10, mem(RBP, -4)), '44 8b 55 fc', 'mov r10d,DWORD PTR [rbp-0x4]'),
  c((b) => emitLdx(b, 4, RDX, mem(R13, 0)), '41 8b 55 00', 'mov edx,DWORD PTR [r13+0x0]'),
  // --- emit_ldsx ---
  c((b) => emitLdsx(b, 1, RAX, mem(RDI, 8)), '48 0f be 47 08', 'movsx rax,BYTE PTR [rdi+0x8]'),
  c((b) => emitLdsx(b, 2, R14, mem(RSI, -2)), '4c 0f bf 76 fe', 'movsx r14,WORD PTR [rsi-0x2]'),
  c((b) => emitLdsx(b, 4, RDX, mem(R12, 0x1000)), '49 63 94 24 00 10 00 00', 'movsxd rdx,DWORD PTR [r12+0x1000]'),
  c((b) => emitLdsx(b, 4, RAX, mem(RBP, 0)), '48 63 45 00', 'movsxd rax,DWORD PTR [rbp+0x0]'),
  // --- emit_stx ---
  c((b) => emitStx(b, 1, mem(RAX, 8), RBX), '88 58 08', 'mov BYTE PTR [rax+0x8],bl'),
  c((b) => emitStx(b, 1, mem(RAX, 8), RSI), '40 88 70 08', 'mov BYTE PTR [rax+0x8],sil'),
  c((b) => emitStx(b, 1, mem(RBP, -1), RDI), '40 88 7d ff', 'mov BYTE PTR [rbp-0x1],dil'),
  c((b) => emitStx(b, 1, mem(RSP, 1), RSP), '40 88 64 24 01', 'mov BYTE PTR [rsp+0x1],spl'),
  c((b) => emitStx(b, 1, mem(R9, 0), R8), '45 88 41 00', 'mov BYTE PTR [r9+0x0],r8b', '{disp8} mov BYTE PTR [r9+0x0],r8b'),
  c((b) => emitStx(b, 2, mem(RDI, 2), RAX), '66 89 47 02', 'mov WORD PTR [rdi+0x2],ax'),
  c((b) => emitStx(b, 2, mem(R12, 2), R15), '66 45 89 7c 24 02', 'mov WORD PTR [r12+0x2],r15w'),
  c((b) => emitStx(b, 4, mem(RBP, -0x10), RCX), '89 4d f0', 'mov DWORD PTR [rbp-0x10],ecx'),
  c((b) => emitStx(b, 4, mem(R13, 0x80), RDX), '41 89 95 80 00 00 00', 'mov DWORD PTR [r13+0x80],edx'),
  c((b) => emitStx(b, 8, mem(RBP, -0x10), RDI), '48 89 7d f0', 'mov QWORD PTR [rbp-0x10],rdi'),
  c((b) => emitStx(b, 8, mem(RBP, -8), R9), '4c 89 4d f8', 'mov QWORD PTR [rbp-0x8],r9'),
  c((b) => emitStx(b, 8, mem(RSP, 0), RAX), '48 89 44 24 00', 'mov QWORD PTR [rsp+0x0],rax', '{disp8} mov QWORD PTR [rsp+0x0],rax'),
  // --- BPF_ST: store an immediate ---
  c((b) => emitSt(b, 1, mem(RDI, 8), 0x12), 'c6 47 08 12', 'mov BYTE PTR [rdi+0x8],0x12'),
  c((b) => emitSt(b, 1, mem(R8, 8), -1), '41 c6 40 08 ff', 'mov BYTE PTR [r8+0x8],0xff'),
  c((b) => emitSt(b, 1, mem(RDI, 8), 0x1234), 'c6 47 08 34', 'mov BYTE PTR [rdi+0x8],0x34'),
  c((b) => emitSt(b, 2, mem(RBP, -2), 0x1234), '66 c7 45 fe 34 12', 'mov WORD PTR [rbp-0x2],0x1234'),
  c((b) => emitSt(b, 2, mem(R12, 0), -2), '66 41 c7 44 24 00 fe ff', 'mov WORD PTR [r12+0x0],0xfffe', '{disp8} mov WORD PTR [r12+0x0],0xfffe'),
  c((b) => emitSt(b, 4, mem(RBP, -4), 0x7fffffff), 'c7 45 fc ff ff ff 7f', 'mov DWORD PTR [rbp-0x4],0x7fffffff'),
  c((b) => emitSt(b, 4, mem(RSP, 4), 0xffffffff), 'c7 44 24 04 ff ff ff ff', 'mov DWORD PTR [rsp+0x4],0xffffffff'),
  c((b) => emitSt(b, 8, mem(RBP, -8), -128), '48 c7 45 f8 80 ff ff ff', 'mov QWORD PTR [rbp-0x8],0xffffffffffffff80'),
  c((b) => emitSt(b, 8, mem(R13, 0x100), 0x7fffffff), '49 c7 85 00 01 00 00 ff ff ff 7f', 'mov QWORD PTR [r13+0x100],0x7fffffff'),
  c((b) => emitSt(b, 8, mem(RDI, 0), -0x80000000), '48 c7 47 00 00 00 00 80', 'mov QWORD PTR [rdi+0x0],0xffffffff80000000', '{disp8} mov QWORD PTR [rdi+0x0],0xffffffff80000000'),
  // --- emit_atomic ---
  c((b) => emitAtomic(b, 'add', 4, mem(RDI, 8), RSI), 'f0 01 77 08', 'lock add DWORD PTR [rdi+0x8],esi'),
  c((b) => emitAtomic(b, 'add', 8, mem(R9, -8), R10), 'f0 4d 01 51 f8', 'lock add QWORD PTR [r9-0x8],r10'),
  c((b) => emitAtomic(b, 'and', 8, mem(RBP, -8), RAX), 'f0 48 21 45 f8', 'lock and QWORD PTR [rbp-0x8],rax'),
  c((b) => emitAtomic(b, 'or', 4, mem(RSP, 0), R8), 'f0 44 09 44 24 00', 'lock or DWORD PTR [rsp+0x0],r8d', '{disp8} lock or DWORD PTR [rsp+0x0],r8d'),
  c((b) => emitAtomic(b, 'xor', 8, mem(R12, 0x100), RBX), 'f0 49 31 9c 24 00 01 00 00', 'lock xor QWORD PTR [r12+0x100],rbx'),
  c((b) => emitAtomic(b, 'xadd', 8, mem(RDI, 8), RSI), 'f0 48 0f c1 77 08', 'lock xadd QWORD PTR [rdi+0x8],rsi'),
  c((b) => emitAtomic(b, 'xadd', 4, mem(R13, 0), RAX), 'f0 41 0f c1 45 00', 'lock xadd DWORD PTR [r13+0x0],eax'),
  c((b) => emitAtomic(b, 'xchg', 8, mem(RDI, 8), RSI), 'f0 48 87 77 08', 'lock xchg QWORD PTR [rdi+0x8],rsi'),
  c((b) => emitAtomic(b, 'xchg', 4, mem(RBP, -4), R11), 'f0 44 87 5d fc', 'lock xchg DWORD PTR [rbp-0x4],r11d'),
  c((b) => emitAtomic(b, 'cmpxchg', 8, mem(R10, -0x100), R11), 'f0 4d 0f b1 9a 00 ff ff ff', 'lock cmpxchg QWORD PTR [r10-0x100],r11'),
  c((b) => emitAtomic(b, 'cmpxchg', 4, mem(RDI, 0x7f), RDX), 'f0 0f b1 57 7f', 'lock cmpxchg DWORD PTR [rdi+0x7f],edx'),
  // --- ALU r, r ---
  c((b) => emitAluRR(b, 'add', 64, RAX, RBX), '48 01 d8', 'add rax,rbx'),
  c((b) => emitAluRR(b, 'sub', 64, R8, R9), '4d 29 c8', 'sub r8,r9'),
  c((b) => emitAluRR(b, 'and', 32, RDI, R10), '44 21 d7', 'and edi,r10d'),
  c((b) => emitAluRR(b, 'or', 32, R15, RCX), '41 09 cf', 'or r15d,ecx'),
  c((b) => emitAluRR(b, 'xor', 64, R11, R11), '4d 31 db', 'xor r11,r11'),
  c((b) => emitAluRR(b, 'xor', 32, RDX, RDX), '31 d2', 'xor edx,edx'),
  c((b) => emitAluRR(b, 'cmp', 64, RSI, R13), '4c 39 ee', 'cmp rsi,r13'),
  c((b) => emitAluRR(b, 'cmp', 32, RAX, RSP), '39 e0', 'cmp eax,esp'),
  // --- ALU r, imm: s8 / s32 boundaries ---
  c((b) => emitAluRI(b, 'add', 64, RCX, 127), '48 83 c1 7f', 'add rcx,0x7f'),
  c((b) => emitAluRI(b, 'add', 64, RCX, -128), '48 83 c1 80', 'add rcx,0xffffffffffffff80'),
  c((b) => emitAluRI(b, 'add', 64, RCX, 128), '48 81 c1 80 00 00 00', 'add rcx,0x80'),
  c((b) => emitAluRI(b, 'add', 64, RCX, -129), '48 81 c1 7f ff ff ff', 'add rcx,0xffffffffffffff7f'),
  c((b) => emitAluRI(b, 'sub', 64, RSP, 8), '48 83 ec 08', 'sub rsp,0x8'),
  c((b) => emitAluRI(b, 'sub', 32, R8, 0x7fffffff), '41 81 e8 ff ff ff 7f', 'sub r8d,0x7fffffff'),
  c((b) => emitAluRI(b, 'and', 32, RDI, 0xffffffff), '83 e7 ff', 'and edi,0xffffffff'),
  c((b) => emitAluRI(b, 'and', 64, RDI, -0x80000000), '48 81 e7 00 00 00 80', 'and rdi,0xffffffff80000000'),
  c((b) => emitAluRI(b, 'or', 64, R12, 0x80000000), '49 81 cc 00 00 00 80', 'or r12,0xffffffff80000000'),
  c((b) => emitAluRI(b, 'xor', 64, R13, 0x100), '49 81 f5 00 01 00 00', 'xor r13,0x100'),
  c((b) => emitAluRI(b, 'cmp', 64, RDX, 0), '48 83 fa 00', 'cmp rdx,0x0'),
  c((b) => emitAluRI(b, 'cmp', 32, R9, -1), '41 83 f9 ff', 'cmp r9d,0xffffffff'),
  c((b) => emitAluRI(b, 'cmp', 64, R15, 0x7fffffff), '49 81 ff ff ff ff 7f', 'cmp r15,0x7fffffff'),
  // ... eax/rax: the short forms (not for cmp)
  c((b) => emitAluRI(b, 'add', 64, RAX, 1), '48 83 c0 01', 'add rax,0x1'),
  c((b) => emitAluRI(b, 'add', 64, RAX, 0x1000), '48 05 00 10 00 00', 'add rax,0x1000'),
  c((b) => emitAluRI(b, 'sub', 32, RAX, 0x80), '2d 80 00 00 00', 'sub eax,0x80'),
  c((b) => emitAluRI(b, 'and', 64, RAX, 0xffff), '48 25 ff ff 00 00', 'and rax,0xffff'),
  c((b) => emitAluRI(b, 'or', 64, RAX, -129), '48 0d 7f ff ff ff', 'or rax,0xffffffffffffff7f'),
  c((b) => emitAluRI(b, 'xor', 32, RAX, 0xffffffff), '83 f0 ff', 'xor eax,0xffffffff'),
  c((b) => emitAluRI(b, 'xor', 32, RAX, 0x80000000), '35 00 00 00 80', 'xor eax,0x80000000'),
  c((b) => emitAluRI(b, 'cmp', 64, RAX, 0x1000), '48 81 f8 00 10 00 00', 'cmp rax,0x1000', false),
  c((b) => emitAluRI(b, 'cmp', 32, RAX, -129), '81 f8 7f ff ff ff', 'cmp eax,0xffffff7f', false),
  c((b) => emitAluRI(b, 'cmp', 64, RAX, -128), '48 83 f8 80', 'cmp rax,0xffffffffffffff80'),
  // ... always 81 /op id
  c((b) => emitAluRImm32(b, 'sub', 64, RSP, 0x10), '48 81 ec 10 00 00 00', 'sub rsp,0x10', false),
  c((b) => emitAluRImm32(b, 'add', 64, R11, -8), '49 81 c3 f8 ff ff ff', 'add r11,0xfffffffffffffff8', false),
  c((b) => emitAluRImm32(b, 'add', 64, RAX, 0x1000), '48 81 c0 00 10 00 00', 'add rax,0x1000', false),
  c((b) => emitAluRImm32(b, 'cmp', 32, RCX, 0x1000), '81 f9 00 10 00 00', 'cmp ecx,0x1000'),
  // --- ALU [m], r and [m], imm ---
  c((b) => emitAluMR(b, 'cmp', 32, mem(RSI, 16), RDX), '39 56 10', 'cmp DWORD PTR [rsi+0x10],edx'),
  c((b) => emitAluMR(b, 'add', 64, mem(R8, -8), R9), '4d 01 48 f8', 'add QWORD PTR [r8-0x8],r9'),
  c((b) => emitAluMI(b, 'cmp', 64, mem(RAX, 0, 'short'), 33), '48 83 38 21', 'cmp QWORD PTR [rax],0x21'),
  c((b) => emitAluMI(b, 'add', 64, mem(RAX, 0, 'short'), 1), '48 83 00 01', 'add QWORD PTR [rax],0x1'),
  c((b) => emitAluMI(b, 'cmp', 64, mem(RBP, -8), 0), '48 83 7d f8 00', 'cmp QWORD PTR [rbp-0x8],0x0'),
  c((b) => emitAluMI(b, 'sub', 32, mem(R12, 0x100), 0x1000), '41 81 ac 24 00 01 00 00 00 10 00 00', 'sub DWORD PTR [r12+0x100],0x1000'),
  c((b) => emitAluMI(b, 'and', 64, mem(RSP, 8), -129), '48 81 64 24 08 7f ff ff ff', 'and QWORD PTR [rsp+0x8],0xffffffffffffff7f'),
  // --- test ---
  c((b) => emitTestRR(b, 64, RCX, RCX), '48 85 c9', 'test rcx,rcx'),
  c((b) => emitTestRR(b, 32, R8, RAX), '41 85 c0', 'test r8d,eax'),
  c((b) => emitTestRR(b, 64, RAX, R15), '4c 85 f8', 'test rax,r15'),
  c((b) => emitTestRI(b, 64, RDI, 1), '48 f7 c7 01 00 00 00', 'test rdi,0x1'),
  c((b) => emitTestRI(b, 32, R10, 0x80000000), '41 f7 c2 00 00 00 80', 'test r10d,0x80000000'),
  c((b) => emitTestRI(b, 64, RAX, 0x1000), '48 f7 c0 00 10 00 00', 'test rax,0x1000', false),
  c((b) => emitTestRI(b, 32, RAX, 0xff), 'f7 c0 ff 00 00 00', 'test eax,0xff', false),
  // --- imul, neg, not, mul, div, idiv, cqo, cdq ---
  c((b) => emitImulRR(b, 64, RAX, RBX), '48 0f af c3', 'imul rax,rbx'),
  c((b) => emitImulRR(b, 32, R9, RDX), '44 0f af ca', 'imul r9d,edx'),
  c((b) => emitImulRR(b, 64, RSI, R14), '49 0f af f6', 'imul rsi,r14'),
  c((b) => emitImulRRI(b, 64, RAX, RAX, 0x10), '48 6b c0 10', 'imul rax,rax,0x10'),
  c((b) => emitImulRRI(b, 64, R13, R13, -128), '4d 6b ed 80', 'imul r13,r13,0xffffffffffffff80'),
  c((b) => emitImulRRI(b, 32, RCX, RCX, 128), '69 c9 80 00 00 00', 'imul ecx,ecx,0x80'),
  c((b) => emitImulRRI(b, 64, RDX, R8, 0x7fffffff), '49 69 d0 ff ff ff 7f', 'imul rdx,r8,0x7fffffff'),
  c((b) => emitNeg(b, 64, RAX), '48 f7 d8', 'neg rax'),
  c((b) => emitNeg(b, 32, R9), '41 f7 d9', 'neg r9d'),
  c((b) => emitNot(b, 64, R15), '49 f7 d7', 'not r15'),
  c((b) => emitNot(b, 32, RSI), 'f7 d6', 'not esi'),
  c((b) => emitMul(b, 64, RCX), '48 f7 e1', 'mul rcx'),
  c((b) => emitMul(b, 32, R8), '41 f7 e0', 'mul r8d'),
  c((b) => emitDiv(b, 64, R11), '49 f7 f3', 'div r11'),
  c((b) => emitDiv(b, 32, RSI), 'f7 f6', 'div esi'),
  c((b) => emitIdiv(b, 64, R11), '49 f7 fb', 'idiv r11'),
  c((b) => emitIdiv(b, 32, RCX), 'f7 f9', 'idiv ecx'),
  c((b) => emitCqo(b), '48 99', 'cqo'),
  c((b) => emitCdq(b), '99', 'cdq'),
  // --- shifts ---
  c((b) => emitShiftRI(b, 'shl', 64, RAX, 1), '48 d1 e0', 'shl rax,1'),
  c((b) => emitShiftRI(b, 'shl', 64, RDI, 32), '48 c1 e7 20', 'shl rdi,0x20'),
  c((b) => emitShiftRI(b, 'shl', 32, RAX, 0), 'c1 e0 00', 'shl eax,0x0'),
  c((b) => emitShiftRI(b, 'shr', 32, R8, 1), '41 d1 e8', 'shr r8d,1'),
  c((b) => emitShiftRI(b, 'shr', 64, R12, 63), '49 c1 ec 3f', 'shr r12,0x3f'),
  c((b) => emitShiftRI(b, 'sar', 64, RBX, 7), '48 c1 fb 07', 'sar rbx,0x7'),
  c((b) => emitShiftRI(b, 'sar', 32, RDX, 31), 'c1 fa 1f', 'sar edx,0x1f'),
  c((b) => emitShiftRI(b, 'rol', 64, RCX, 32), '48 c1 c1 20', 'rol rcx,0x20'),
  c((b) => emitShiftRI(b, 'ror', 32, R14, 1), '41 d1 ce', 'ror r14d,1'),
  c((b) => emitShiftRCl(b, 'shl', 64, RAX), '48 d3 e0', 'shl rax,cl'),
  c((b) => emitShiftRCl(b, 'shr', 32, R11), '41 d3 eb', 'shr r11d,cl'),
  c((b) => emitShiftRCl(b, 'sar', 64, R15), '49 d3 ff', 'sar r15,cl'),
  c((b) => emitShiftRCl(b, 'sar', 32, RDI), 'd3 ff', 'sar edi,cl'),
  // --- push, pop ---
  c((b) => emitPush(b, RBP), '55', 'push rbp'),
  c((b) => emitPush(b, RBX), '53', 'push rbx'),
  c((b) => emitPush(b, R8), '41 50', 'push r8'),
  c((b) => emitPush(b, R12), '41 54', 'push r12'),
  c((b) => emitPush(b, R13), '41 55', 'push r13'),
  c((b) => emitPush(b, R15), '41 57', 'push r15'),
  c((b) => emitPushImm(b, 0), '6a 00', 'push 0x0'),
  c((b) => emitPushImm(b, -128), '6a 80', 'push 0xffffffffffffff80'),
  c((b) => emitPushImm(b, 128), '68 80 00 00 00', 'push 0x80'),
  c((b) => emitPushImm(b, -0x80000000), '68 00 00 00 80', 'push 0xffffffff80000000'),
  c((b) => emitPop(b, RAX), '58', 'pop rax'),
  c((b) => emitPop(b, RSP), '5c', 'pop rsp'),
  c((b) => emitPop(b, R9), '41 59', 'pop r9'),
  c((b) => emitPop(b, R15), '41 5f', 'pop r15'),
  // --- branches (rel from the end of the instruction; asm from its start) ---
  c((b) => emitCallRel32(b, 0x100), 'e8 00 01 00 00', 'call .+0x105'),
  c((b) => emitCallRel32(b, -0x80), 'e8 80 ff ff ff', 'call .-0x7b'),
  c((b) => emitJmpRel32(b, 0), 'e9 00 00 00 00', 'jmp .+0x5', '{disp32} jmp .+0x5'),
  c((b) => emitJmpRel32(b, 0x7fffffff), 'e9 ff ff ff 7f', 'jmp .+0x80000004'),
  c((b) => emitJmpRel32(b, -0x80000000), 'e9 00 00 00 80', 'jmp .-0x7ffffffb'),
  c((b) => emitJmpRel8(b, 127), 'eb 7f', 'jmp .+0x81'),
  c((b) => emitJmpRel8(b, -128), 'eb 80', 'jmp .-0x7e'),
  c((b) => emitJmpRel8(b, -2), 'eb fe', 'jmp .+0x0'),
  c((b) => emitJccRel8(b, 'E', 0x10), '74 10', 'je .+0x12'),
  c((b) => emitJccRel8(b, 'NE', -2), '75 fe', 'jne .+0x0'),
  c((b) => emitJccRel8(b, 'A', 127), '77 7f', 'ja .+0x81'),
  c((b) => emitJccRel8(b, 'AE', -128), '73 80', 'jae .-0x7e'),
  c((b) => emitJccRel8(b, 'B', 6), '72 06', 'jb .+0x8'),
  c((b) => emitJccRel8(b, 'BE', 0), '76 00', 'jbe .+0x2'),
  c((b) => emitJccRel8(b, 'G', 1), '7f 01', 'jg .+0x3'),
  c((b) => emitJccRel8(b, 'GE', 2), '7d 02', 'jge .+0x4'),
  c((b) => emitJccRel8(b, 'L', 3), '7c 03', 'jl .+0x5'),
  c((b) => emitJccRel8(b, 'LE', 4), '7e 04', 'jle .+0x6'),
  c((b) => emitJccRel32(b, 'E', 0x100), '0f 84 00 01 00 00', 'je .+0x106'),
  c((b) => emitJccRel32(b, 'NE', 0), '0f 85 00 00 00 00', 'jne .+0x6', '{disp32} jne .+0x6'),
  c((b) => emitJccRel32(b, 'A', -0x100), '0f 87 00 ff ff ff', 'ja .-0xfa'),
  c((b) => emitJccRel32(b, 'AE', 0x80), '0f 83 80 00 00 00', 'jae .+0x86'),
  c((b) => emitJccRel32(b, 'B', -0x86), '0f 82 7a ff ff ff', 'jb .-0x80'),
  c((b) => emitJccRel32(b, 'BE', 0x7fffffff), '0f 86 ff ff ff 7f', 'jbe .+0x80000005'),
  c((b) => emitJccRel32(b, 'G', -0x80000000), '0f 8f 00 00 00 80', 'jg .-0x7ffffffa'),
  c((b) => emitJccRel32(b, 'GE', 0x1000), '0f 8d 00 10 00 00', 'jge .+0x1006'),
  c((b) => emitJccRel32(b, 'L', 0x1000), '0f 8c 00 10 00 00', 'jl .+0x1006'),
  c((b) => emitJccRel32(b, 'LE', 0x1000), '0f 8e 00 10 00 00', 'jle .+0x1006'),
  c((b) => emitJccRel32(b, 'S', 0x1000), '0f 88 00 10 00 00', 'js .+0x1006'),
  c((b) => emitCall(b, KTEXT + 0x100n, KTEXT), 'e8 fb 00 00 00', 'call .+0x100'),
  c((b) => emitCall(b, KTEXT, 0xffffffffa0000000n), 'e8 fb ff ff e0', 'call .-0x1f000000'),
  c((b) => emitJump(b, KTEXT + 0x10n, KTEXT), 'e9 0b 00 00 00', 'jmp .+0x10', '{disp32} jmp .+0x10'),
  c((b) => emitCondNearJump(b, 'E', KTEXT + 0x10n, KTEXT), '0f 84 0a 00 00 00', 'je .+0x10', '{disp32} je .+0x10'),
  c((b) => emitCallReg(b, RAX), 'ff d0', 'call rax'),
  c((b) => emitCallReg(b, R11), '41 ff d3', 'call r11'),
  c((b) => emitJmpReg(b, RCX), 'ff e1', 'jmp rcx'),
  c((b) => emitJmpReg(b, R11), '41 ff e3', 'jmp r11'),
  // --- one-byte and fixed instructions, the kernel's nops ---
  c((b) => emitRet(b), 'c3', 'ret'),
  c((b) => emitLeave(b), 'c9', 'leave'),
  c((b) => emitInt3(b), 'cc', 'int3'),
  c((b) => emitLfence(b), '0f ae e8', 'lfence'),
  c((b) => emitNop5(b), '0f 1f 44 00 00', 'nop DWORD PTR [rax+rax*1+0x0]', '{disp8} nop DWORD PTR [rax+rax*1+0x0]'),
  c((b) => emitNops(b, 1), '90', 'nop'),
  c((b) => emitNops(b, 2), '66 90', 'xchg ax,ax'),
  c((b) => emitNops(b, 3), '0f 1f 00', 'nop DWORD PTR [rax]'),
  c((b) => emitNops(b, 4), '0f 1f 40 00', 'nop DWORD PTR [rax+0x0]', '{disp8} nop DWORD PTR [rax+0x0]'),
  c((b) => emitNops(b, 5), '0f 1f 44 00 00', 'nop DWORD PTR [rax+rax*1+0x0]', '{disp8} nop DWORD PTR [rax+rax*1+0x0]'),
  c((b) => emitNops(b, 6), '66 0f 1f 44 00 00', 'nop WORD PTR [rax+rax*1+0x0]', '{disp8} nop WORD PTR [rax+rax*1+0x0]'),
  c((b) => emitNops(b, 7), '0f 1f 80 00 00 00 00', 'nop DWORD PTR [rax+0x0]', '{disp32} nop DWORD PTR [rax+0x0]'),
  c((b) => emitNops(b, 8), '0f 1f 84 00 00 00 00 00', 'nop DWORD PTR [rax+rax*1+0x0]', '{disp32} nop DWORD PTR [rax+rax*1+0x0]'),
];

describe('each emitter gives the bytes GNU as gives', () => {
  it.each(CASES)('$asm', ({ emit, hex }) => {
    expect(encode(emit)).toBe(hex);
  });
});

// --- running binutils -----------------------------------------------------------------------

/** One instruction per 16-byte slot (`.balign 16, 0xcc`), so slot i holds row i. */
const SLOT = 16;

interface Tools {
  dir: string;
  /** Assembles one instruction per slot; returns the .text image. */
  assemble(lines: string[]): Uint8Array;
  /** Disassembles one byte string per slot; returns objdump's instruction at each slot start. */
  disassemble(rows: string[]): { len: number; text: string }[];
}

function binutils(): Tools {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bpfemu-encoder-'));
  const run = (cmd: string, args: string[]): string =>
    execFileSync(cmd, args, { cwd: dir, encoding: 'utf8', maxBuffer: 256 << 20 });
  const as = (name: string, lines: string[]): void => {
    fs.writeFileSync(path.join(dir, `${name}.s`), `${lines.flatMap((l) => [l, `.balign ${SLOT}, 0xcc`]).join('\n')}\n`);
    run('as', ['--64', '-msyntax=intel', '-mnaked-reg', '-o', `${name}.o`, `${name}.s`]);
  };
  return {
    dir,
    assemble(lines) {
      as('a', lines);
      run('objcopy', ['-O', 'binary', '-j', '.text', 'a.o', 'a.bin']);
      return new Uint8Array(fs.readFileSync(path.join(dir, 'a.bin')));
    },
    disassemble(rows) {
      as('d', rows.map((hex) => `.byte ${bytesOf(hex).map((x) => `0x${x.toString(16)}`).join(',')}`));
      const dump = run('objdump', ['-d', '-z', '-M', 'intel', '--insn-width=16', '-j', '.text', 'd.o']);
      const at = new Map<number, { len: number; text: string }>();
      for (const line of dump.split('\n')) {
        const m = /^\s*([0-9a-f]+):\t((?:[0-9a-f]{2} )+)\s*\t(.*)$/.exec(line);
        if (!m) continue;
        const addr = parseInt(m[1]!, 16);
        at.set(addr, { len: m[2]!.trim().split(' ').length, text: normObjdump(m[3]!, addr) });
      }
      return rows.map((_, i) => at.get(i * SLOT) ?? { len: 0, text: '(nothing at the slot)' });
    },
  };
}

/** objdump's text with whitespace collapsed and branch targets made relative: `jmp .+0x5`. */
function normObjdump(text: string, addr: number): string {
  const t = text.replace(/\s*<[^>]*>$/, '').replace(/\s+/g, ' ').trim();
  const br = /^(call|jmp|j[a-z]+) 0x([0-9a-f]+)$/.exec(t);
  if (!br) return t;
  const rel = BigInt.asIntN(64, BigInt(`0x${br[2]!}`) - BigInt(addr));
  return `${br[1]!} .${rel < 0n ? '-' : '+'}0x${(rel < 0n ? -rel : rel).toString(16)}`;
}

describe('the table agrees with GNU as and objdump (checked now, in a temp dir)', () => {
  let tools: Tools;
  let image: Uint8Array;
  let dis: { len: number; text: string }[];
  beforeAll(() => {
    tools = binutils();
    // rows as cannot spell get their own bytes, to keep the slots in step
    image = tools.assemble(CASES.map((k) => (k.gas === false ? `.byte ${bytesOf(k.hex).join(',')}` : k.gas)));
    dis = tools.disassemble(CASES.map((k) => k.hex));
  });
  afterAll(() => {
    if (tools) fs.rmSync(tools.dir, { recursive: true, force: true });
  });

  const slot = (i: number): string => hexOf(image.subarray(i * SLOT, (i + 1) * SLOT));
  const padded = (hex: string): string => hexOf(Uint8Array.from([...bytesOf(hex), ...Array<number>(SLOT).fill(0xcc)].slice(0, SLOT)));
  const rows = CASES.map((k, i) => ({ ...k, i }));

  it('every row is one instruction shorter than a slot', () => {
    for (const k of CASES) expect(bytesOf(k.hex).length, k.asm).toBeLessThan(SLOT);
    expect(image.length).toBe(CASES.length * SLOT);
  });
  it.each(rows.filter((k) => k.gas !== false))('as: $gas', ({ hex, i }) => {
    expect(slot(i)).toBe(padded(hex));
  });
  it.each(rows)('objdump: $hex', ({ hex, asm, i }) => {
    expect(dis[i]).toEqual({ len: bytesOf(hex).length, text: asm.replace(/\s+/g, ' ') });
  });
});

// --- every register, every base ---------------------------------------------------------------

interface Sweep {
  gas: string;
  emit: (b: CodeBuffer) => void;
}

const n64 = (r: Reg): string => regName(r, 64);
const hx = (v: number): string => (v < 0 ? `-0x${(-v).toString(16)}` : `+0x${v.toString(16)}`);
const PTR: Readonly<Record<MemSize, string>> = { 1: 'BYTE PTR', 2: 'WORD PTR', 4: 'DWORD PTR', 8: 'QWORD PTR' };
const ALU_OPS: readonly AluOp[] = ['add', 'or', 'and', 'sub', 'xor', 'cmp'];
const ATOMIC_OPS: readonly AtomicOp[] = ['add', 'and', 'or', 'xor', 'xadd', 'xchg', 'cmpxchg'];
const SHIFT_OPS: readonly ShiftOp[] = ['rol', 'ror', 'shl', 'shr', 'sar'];
const BITS: readonly RegBits[] = [32, 64];

function sweep(): Sweep[] {
  const out: Sweep[] = [];
  const add = (gas: string, emit: (b: CodeBuffer) => void): void => {
    out.push({ gas, emit });
  };
  for (const bits of BITS) {
    const n = (r: Reg): string => regName(r, bits);
    for (const d of ALL_REGS) {
      for (const s of ALL_REGS) {
        add(`mov ${n(d)},${n(s)}`, (b) => emitMovRR(b, bits, d, s));
        for (const op of ALU_OPS) add(`${op} ${n(d)},${n(s)}`, (b) => emitAluRR(b, op, bits, d, s));
        add(`test ${n(d)},${n(s)}`, (b) => emitTestRR(b, bits, d, s));
        add(`imul ${n(d)},${n(s)}`, (b) => emitImulRR(b, bits, d, s));
        add(`imul ${n(d)},${n(s)},0x7f`, (b) => emitImulRRI(b, bits, d, s, 0x7f));
        add(`imul ${n(d)},${n(s)},0x1000`, (b) => emitImulRRI(b, bits, d, s, 0x1000));
        add(`cmovbe ${n(d)},${n(s)}`, (b) => emitCmov(b, 'BE', bits, d, s));
        if (bits === 32) add(`movzx ${n(d)},${regName(s, 8)}`, (b) => emitMovzxRR(b, 8, d, s));
        if (bits === 32) add(`movzx ${n(d)},${regName(s, 16)}`, (b) => emitMovzxRR(b, 16, d, s));
        add(bits === 64 ? `movsx ${n(d)},${regName(s, 8)}` : `{rex} movsx ${n(d)},${regName(s, 8)}`, (b) => emitMovsxRR(b, 8, bits, d, s));
        add(`movsx ${n(d)},${regName(s, 16)}`, (b) => emitMovsxRR(b, 16, bits, d, s));
      }
      for (const imm of [1, -128, 0x1000, -0x1000]) {
        for (const op of ALU_OPS) {
          if (d === RAX && op === 'cmp' && !isImm8(imm)) continue; // as would take 3d; the table checks 81
          add(`${op} ${n(d)},${imm}`, (b) => emitAluRI(b, op, bits, d, imm));
        }
      }
      if (d !== RAX) add(`test ${n(d)},0x1000`, (b) => emitTestRI(b, bits, d, 0x1000));
      add(`neg ${n(d)}`, (b) => emitNeg(b, bits, d));
      add(`not ${n(d)}`, (b) => emitNot(b, bits, d));
      add(`mul ${n(d)}`, (b) => emitMul(b, bits, d));
      add(`div ${n(d)}`, (b) => emitDiv(b, bits, d));
      add(`idiv ${n(d)}`, (b) => emitIdiv(b, bits, d));
      add(`bswap ${n(d)}`, (b) => emitBswap(b, bits, d));
      for (const op of SHIFT_OPS) {
        add(`${op} ${n(d)},1`, (b) => emitShiftRI(b, op, bits, d, 1));
        add(`${op} ${n(d)},0x1f`, (b) => emitShiftRI(b, op, bits, d, 31));
        add(`${op} ${n(d)},cl`, (b) => emitShiftRCl(b, op, bits, d));
      }
    }
  }
  for (const d of ALL_REGS) {
    const d32 = regName(d, 32);
    add(`movsxd ${n64(d)},${regName(d === RAX ? R9 : RAX, 32)}`, (b) => emitMovsxRR(b, 32, 64, d, d === RAX ? R9 : RAX));
    add(`xor ${d32},${d32}`, (b) => emitMovImm64(b, d, 0n));
    add(`mov ${d32},0x12345678`, (b) => emitMovImm64(b, d, 0x12345678n));
    add(`mov ${n64(d)},-2`, (b) => emitMovImm64(b, d, -2n));
    add(`movabs ${n64(d)},0x123456789`, (b) => emitMovImm64(b, d, 0x123456789n));
    add(`push ${n64(d)}`, (b) => emitPush(b, d));
    add(`pop ${n64(d)}`, (b) => emitPop(b, d));
    add(`call ${n64(d)}`, (b) => emitCallReg(b, d));
    add(`jmp ${n64(d)}`, (b) => emitJmpReg(b, d));
    add(`rol ${regName(d, 16)},0x8`, (b) => emitShiftRI(b, 'rol', 16, d, 8));
  }
  // memory operands: every base with every register, at the kernel's displacement sizes
  for (const base of ALL_REGS) {
    for (const disp of [0, 0x7f, -0x80, 0x1000]) {
      const m = mem(base, disp);
      const pre = disp === 0 ? '{disp8} ' : '';
      const at = (size: MemSize): string => `${PTR[size]} [${n64(base)}${hx(disp)}]`;
      for (const r of ALL_REGS) {
        add(`${pre}movzx ${n64(r)},${at(1)}`, (b) => emitLdx(b, 1, r, m));
        add(`${pre}movzx ${n64(r)},${at(2)}`, (b) => emitLdx(b, 2, r, m));
        add(`${pre}mov ${regName(r, 32)},${at(4)}`, (b) => emitLdx(b, 4, r, m));
        add(`${pre}mov ${n64(r)},${at(8)}`, (b) => emitLdx(b, 8, r, m));
        add(`${pre}movsx ${n64(r)},${at(1)}`, (b) => emitLdsx(b, 1, r, m));
        add(`${pre}movsx ${n64(r)},${at(2)}`, (b) => emitLdsx(b, 2, r, m));
        add(`${pre}movsxd ${n64(r)},${at(4)}`, (b) => emitLdsx(b, 4, r, m));
        add(`${pre}mov ${at(1)},${regName(r, 8)}`, (b) => emitStx(b, 1, m, r));
        add(`${pre}mov ${at(2)},${regName(r, 16)}`, (b) => emitStx(b, 2, m, r));
        add(`${pre}mov ${at(4)},${regName(r, 32)}`, (b) => emitStx(b, 4, m, r));
        add(`${pre}mov ${at(8)},${n64(r)}`, (b) => emitStx(b, 8, m, r));
        add(`${pre}lea ${n64(r)},[${n64(base)}${hx(disp)}]`, (b) => emitLea(b, r, m));
        for (const size of [4, 8] as const) {
          for (const op of ATOMIC_OPS) {
            add(`${pre}lock ${op} ${at(size)},${regName(r, size * 8 as 32 | 64)}`, (b) => emitAtomic(b, op, size, m, r));
          }
          add(`${pre}cmp ${at(size)},${regName(r, size * 8 as 32 | 64)}`, (b) => emitAluMR(b, 'cmp', size * 8 as RegBits, m, r));
        }
      }
      add(`${pre}mov ${at(1)},0x7f`, (b) => emitSt(b, 1, m, 0x7f));
      add(`${pre}mov ${at(2)},0x7fff`, (b) => emitSt(b, 2, m, 0x7fff));
      add(`${pre}mov ${at(4)},0x12345678`, (b) => emitSt(b, 4, m, 0x12345678));
      add(`${pre}mov ${at(8)},-2`, (b) => emitSt(b, 8, m, -2));
      add(`${pre}add ${at(8)},0x1`, (b) => emitAluMI(b, 'add', 64, m, 1));
      add(`${pre}sub ${at(4)},0x1000`, (b) => emitAluMI(b, 'sub', 32, m, 0x1000));
    }
    // GNU as's shortest form and the fixed disp32
    add(`mov rax,QWORD PTR [${n64(base)}]`, (b) => emitLdx(b, 8, RAX, mem(base, 0, 'short')));
    add(`mov rax,QWORD PTR [${n64(base)}+0x10]`, (b) => emitLdx(b, 8, RAX, mem(base, 0x10, 'short')));
    add(`{disp32} mov rax,QWORD PTR [${n64(base)}+0x10]`, (b) => emitLdx(b, 8, RAX, mem(base, 0x10, 'disp32')));
    // every index with every base and scale
    for (const index of ALL_REGS) {
      if (index === RSP) continue;
      for (const scale of [1, 2, 4, 8] as const) {
        add(`mov r9,QWORD PTR [${n64(base)}+${n64(index)}*${scale}]`, (b) => emitLdx(b, 8, R9, memIndex(base, index, scale, 0, 'short')));
        add(`mov rcx,QWORD PTR [${n64(base)}+${n64(index)}*${scale}-0x8]`, (b) => emitLdx(b, 8, RCX, memIndex(base, index, scale, -8)));
        add(`{disp32} mov rcx,QWORD PTR [${n64(base)}+${n64(index)}*${scale}+0x10]`, (b) => emitLdx(b, 8, RCX, memIndex(base, index, scale, 0x10, 'disp32')));
      }
    }
  }
  return out;
}

describe('every register pair, base and index, against GNU as (checked now)', () => {
  const SWEEP = sweep();
  let tools: Tools;
  beforeAll(() => {
    tools = binutils();
  });
  afterAll(() => {
    if (tools) fs.rmSync(tools.dir, { recursive: true, force: true });
  });

  it(`${SWEEP.length} instructions`, () => {
    expect(SWEEP.length).toBeGreaterThan(30_000);
    const image = tools.assemble(SWEEP.map((s) => s.gas));
    expect(image.length).toBe(SWEEP.length * SLOT);
    const wrong: string[] = [];
    SWEEP.forEach((s, i) => {
      const ours = encode(s.emit);
      const theirs = hexOf(image.subarray(i * SLOT, i * SLOT + bytesOf(ours).length));
      const next = image[i * SLOT + bytesOf(ours).length];
      if (ours !== theirs || (bytesOf(ours).length < SLOT && next !== 0xcc)) wrong.push(`${s.gas}: ours ${ours}, as ${hexOf(image.subarray(i * SLOT, (i + 1) * SLOT))}`);
    });
    expect(wrong.slice(0, 20)).toEqual([]);
  });
});

// --- the kernel's hand-written bytes ------------------------------------------------------------

/**
 * Bytes that arch/x86/net/bpf_jit_comp.c writes with EMITn, and our emitter for each: the kernel
 * as a second reference, independent of GNU as's choices.
 */
const KERNEL: { kernel: string; hex: string; emit: (b: CodeBuffer) => void }[] = [
  { kernel: 'EMIT1(0x55); /* push rbp */', hex: '55', emit: (b) => emitPush(b, RBP) },
  { kernel: 'EMIT3(0x48, 0x89, 0xE5); /* mov rbp, rsp */', hex: '48 89 e5', emit: (b) => emitMovRR(b, 64, RBP, RSP) },
  { kernel: 'EMIT3_off32(0x48, 0x81, 0xEC, round_up(stack_depth, 8)); /* sub rsp, rounded_stack_depth */', hex: '48 81 ec 08 00 00 00', emit: (b) => emitAluRImm32(b, 'sub', 64, RSP, 8) },
  { kernel: 'EMIT2(0x41, 0x55); /* push r13 */', hex: '41 55', emit: (b) => emitPush(b, R13) },
  { kernel: 'EMIT2(0x41, 0x5F); /* pop r15 */', hex: '41 5f', emit: (b) => emitPop(b, R15) },
  { kernel: 'EMIT1(0xC9); /* leave */', hex: 'c9', emit: emitLeave },
  { kernel: 'EMIT2(0x31, 0xC0); /* xor eax, eax */', hex: '31 c0', emit: (b) => emitMovImm32(b, false, RAX, 0) },
  { kernel: 'EMIT3(0x48, 0x31, 0xC0); /* xor rax, rax */', hex: '48 31 c0', emit: (b) => emitAluRR(b, 'xor', 64, RAX, RAX) },
  { kernel: 'EMIT2(0x89, 0xD2); /* mov edx, edx */', hex: '89 d2', emit: (b) => emitMovRR(b, 32, RDX, RDX) },
  { kernel: 'EMIT3(0x39, 0x56, offsetof(struct bpf_array, map.max_entries)); /* cmp dword ptr [rsi + 16], edx */', hex: '39 56 10', emit: (b) => emitAluMR(b, 'cmp', 32, mem(RSI, 16), RDX) },
  { kernel: 'EMIT3_off32(0x48, 0x8B, 0x85, tcc_ptr_off); /* mov rax, qword ptr [rbp - tcc_ptr_off] */', hex: '48 8b 85 f0 ff ff ff', emit: (b) => emitLdx(b, 8, RAX, mem(RBP, -16, 'disp32')) },
  { kernel: 'EMIT4(0x48, 0x83, 0x38, MAX_TAIL_CALL_CNT); /* cmp qword ptr [rax], MAX_TAIL_CALL_CNT */', hex: '48 83 38 21', emit: (b) => emitAluMI(b, 'cmp', 64, mem(RAX, 0, 'short'), 33) },
  { kernel: 'EMIT4_off32(0x48, 0x8B, 0x8C, 0xD6, offsetof(struct bpf_array, ptrs)); /* mov rcx, [rsi + rdx * 8 + offsetof(...)] */', hex: '48 8b 8c d6 10 01 00 00', emit: (b) => emitLdx(b, 8, RCX, memIndex(RSI, RDX, 8, 0x110, 'disp32')) },
  { kernel: 'EMIT3(0x48, 0x85, 0xC9); /* test rcx,rcx */', hex: '48 85 c9', emit: (b) => emitTestRR(b, 64, RCX, RCX) },
  { kernel: 'EMIT4(0x48, 0x83, 0x00, 0x01); /* add qword ptr [rax], 1 */', hex: '48 83 00 01', emit: (b) => emitAluMI(b, 'add', 64, mem(RAX, 0, 'short'), 1) },
  { kernel: 'EMIT4(0x48, 0x8B, 0x49, offsetof(struct bpf_prog, bpf_func)); /* mov rcx, qword ptr [rcx + 32] */', hex: '48 8b 49 30', emit: (b) => emitLdx(b, 8, RCX, mem(RCX, 0x30)) },
  { kernel: 'EMIT4(0x48, 0x83, 0xC1, X86_TAIL_CALL_OFFSET); /* add rcx, X86_TAIL_CALL_OFFSET */', hex: '48 83 c1 0c', emit: (b) => emitAluRI(b, 'add', 64, RCX, 12) },
  { kernel: 'EMIT2(0xFF, 0xE0 + reg); /* jmp *%\\reg */', hex: 'ff e1', emit: (b) => emitJmpReg(b, RCX) },
  { kernel: 'EMIT3_off32(0x49, 0xC7, 0xC3, imm32); /* mov r11, imm32 */', hex: '49 c7 c3 07 00 00 00', emit: (b) => emitMovRI32Sx(b, AUX_REG, 7) },
  { kernel: 'EMIT2(0x31, 0xd2); /* xor edx, edx */', hex: '31 d2', emit: (b) => emitAluRR(b, 'xor', 32, RDX, RDX) },
  { kernel: 'EMIT2(0xF7, add_1reg(0xF0, src_reg)); /* div r11 (after maybe_emit_1mod) */', hex: '49 f7 f3', emit: (b) => emitDiv(b, 64, AUX_REG) },
  { kernel: 'EMIT2(0x48, 0x99); /* cqo */', hex: '48 99', emit: emitCqo },
  { kernel: 'EMIT2(0xF7, add_1reg(0xF8, src_reg)); /* idiv ecx */', hex: 'f7 f9', emit: (b) => emitIdiv(b, 32, RCX) },
  { kernel: 'EMIT2(0x6a, 0x00); /* v5.5 emit_prologue: zero init tail_call_cnt */', hex: '6a 00', emit: (b) => emitPushImm(b, 0) },
  { kernel: 'v5.5 emit_mov_imm64 (no simm32 step): movabsq rax, imm64', hex: '48 b8 ff ff ff ff ff ff ff ff', emit: (b) => emitMovImm64(b, RAX, -1n, { simm32: false }) },
  { kernel: 'EMIT1(0x50); /* push rax */', hex: '50', emit: (b) => emitPush(b, RAX) },
  { kernel: 'EMIT1(0x5A); /* pop rdx */', hex: '5a', emit: (b) => emitPop(b, RDX) },
  { kernel: 'EMIT1(0x66); EMIT1(0x41); EMIT3(0xC1, add_1reg(0xC8, dst_reg), 8); /* ror r13w, 8 */', hex: '66 41 c1 cd 08', emit: (b) => emitShiftRI(b, 'ror', 16, R13, 8) },
  { kernel: 'EMIT3(0x45, 0x0F, 0xB7); EMIT1(add_2reg(0xC0, dst_reg, dst_reg)); /* movzwl r13d, r13w */', hex: '45 0f b7 ed', emit: (b) => emitMovzxRR(b, 16, R13, R13) },
  { kernel: 'EMIT2(0x41, 0x0F); EMIT1(add_1reg(0xC8, dst_reg)); /* bswap r14d */', hex: '41 0f ce', emit: (b) => emitBswap(b, 32, R14) },
  { kernel: 'EMIT1(0x45); EMIT2(0x89, add_2reg(0xC0, dst_reg, dst_reg)); /* mov r15d, r15d */', hex: '45 89 ff', emit: (b) => emitMovRR(b, 32, R15, R15) },
  { kernel: 'EMIT3(0x0F, 0xAE, 0xE8); /* lfence */', hex: '0f ae e8', emit: emitLfence },
  { kernel: 'EMIT2(0x41, 0xC6); EMIT2(add_1reg(0x40, dst_reg), insn->off); EMIT(imm32, 1); /* mov byte ptr [r14 - 1], 5 */', hex: '41 c6 46 ff 05', emit: (b) => emitSt(b, 1, mem(R14, -1), 5) },
  { kernel: 'EMIT3(0x66, 0x41, 0xC7); ... /* mov word ptr [r13 + 0], 0x1234 */', hex: '66 41 c7 45 00 34 12', emit: (b) => emitSt(b, 2, mem(R13, 0), 0x1234) },
  { kernel: 'EMIT2(add_1mod(0x48, dst_reg), 0xC7); ... /* mov qword ptr [rbp - 0x200], -1 */', hex: '48 c7 85 00 fe ff ff ff ff ff ff', emit: (b) => emitSt(b, 8, mem(RBP, -0x200), -1) },
  { kernel: 'movabsq r11, limit: EMIT2(add_1mod(0x48, AUX_REG), add_1reg(0xB8, AUX_REG)); EMIT(lo, 4); EMIT(hi, 4);', hex: '49 bb 00 10 00 00 00 80 00 00', emit: (b) => emitMovabs(b, AUX_REG, 0x800000001000n) },
  { kernel: 'maybe_emit_mod(&prog, src_reg, AUX_REG, true); EMIT2(0x39, add_2reg(0xC0, src_reg, AUX_REG)); /* cmp rdi, r11 */', hex: '4c 39 df', emit: (b) => emitAluRR(b, 'cmp', 64, RDI, AUX_REG) },
  { kernel: 'EMIT2(X86_JB, 0); /* jb, patched later */', hex: '72 00', emit: (b) => emitJccRel8(b, 'B', 0) },
  { kernel: 'EMIT2(0x73 /* JNC */, 0);', hex: '73 00', emit: (b) => emitJccRel8(b, 'AE', 0) },
  { kernel: 'EMIT2(0xEB, 0); /* jmp byte_after_ldx */', hex: 'eb 00', emit: (b) => emitJmpRel8(b, 0) },
  { kernel: 'EMIT2_off32(0x81, add_1reg(0xC0, AUX_REG), insn->off); /* add r11, off (after maybe_emit_1mod) */', hex: '49 81 c3 08 00 00 00', emit: (b) => emitAluRImm32(b, 'add', 64, AUX_REG, 8) },
  { kernel: 'EMIT2_off32(0x0F, jmp_cond + 0x10, offset); /* emit_cond_near_jump: jne */', hex: '0f 85 00 01 00 00', emit: (b) => emitJccRel32(b, 'NE', 0x100) },
  { kernel: 'EMIT4(0x48, 0x8D, 0x75, -run_ctx_off); /* lea rsi, [rbp - run_ctx_off] */', hex: '48 8d 75 d0', emit: (b) => emitLea(b, RSI, mem(RBP, -0x30)) },
  { kernel: 'EMIT4(0x48, 0x8D, 0x7D, -stack_size); /* lea rdi, [rbp - stack_size] */', hex: '48 8d 7d e8', emit: (b) => emitLea(b, RDI, mem(RBP, -0x18)) },
  { kernel: 'EMIT3(0x48, 0x85, 0xC0); /* test rax,rax */', hex: '48 85 c0', emit: (b) => emitTestRR(b, 64, RAX, RAX) },
  { kernel: 'EMIT2(0xff, 0xd0); /* call *rax */', hex: 'ff d0', emit: (b) => emitCallReg(b, RAX) },
  { kernel: 'EMIT4(0x48, 0x83, 0x7d, 0xf8); EMIT1(0x00); /* cmp QWORD PTR [rbp - 0x8], 0x0 */', hex: '48 83 7d f8 00', emit: (b) => emitAluMI(b, 'cmp', 64, mem(RBP, -8), 0) },
  { kernel: 'EMIT4(0x48, 0x83, 0xEC, stack_size); /* sub rsp, stack_size */', hex: '48 83 ec 30', emit: (b) => emitAluRI(b, 'sub', 64, RSP, 0x30) },
  { kernel: 'emit_stx(prog, BPF_DW, BPF_REG_FP, X86_REG_R9, -(stack_size - 5 * 8)); /* mov qword ptr [rbp-0x8], r9 */', hex: '4c 89 4d f8', emit: (b) => emitStx(b, 8, mem(RBP, -8), X86_REG_R9) },
  { kernel: 'emit_ldx(prog, BPF_W, BPF_REG_1 + 1, BPF_REG_FP, -0x10); /* mov esi, dword ptr [rbp-0x10] */', hex: '8b 75 f0', emit: (b) => emitLdx(b, 4, RSI, mem(RBP, -0x10)) },
  { kernel: 'EMIT3(0x4D, 0x31, 0xDB); /* xor r11, r11 */', hex: '4d 31 db', emit: (b) => emitAluRR(b, 'xor', 64, AUX_REG, AUX_REG) },
  { kernel: 'EMIT3(0x0F, 0x44, add_2reg(0xC0, AUX_REG, dst_reg)); /* cmove dst_reg, r11 (rex 4c for r13) */', hex: '4d 0f 44 eb', emit: (b) => emitCmov(b, 'E', 64, R13, AUX_REG) },
  { kernel: 'EMIT3(0xC1, add_1reg(0xC0, dst_reg), 32); /* rol dst_reg, 32 */', hex: '48 c1 c7 20', emit: (b) => emitShiftRI(b, 'rol', 64, RDI, 32) },
  { kernel: 'EMIT1_off32(0x0D, user_vm_start >> 32); /* or rax, imm32 */', hex: '48 0d 00 00 00 10', emit: (b) => emitAluRI(b, 'or', 64, RAX, 0x10000000) },
  { kernel: 'emit_ldx_r12(BPF_B): EMIT3(add_3mod(0x40, src, dst, X86_REG_R12), 0x0F, 0xB6); /* movzx eax, byte ptr [rdi + r12 + 8] */', hex: '42 0f b6 44 27 08', emit: (b) => emitLdx(b, 1, RAX, memIndex(RDI, X86_REG_R12, 1, 8)) },
  { kernel: 'emit_stx_r12(BPF_DW): /* mov qword ptr [rsi + r12 - 8], rax */', hex: '4a 89 44 26 f8', emit: (b) => emitStx(b, 8, memIndex(RSI, X86_REG_R12, 1, -8), RAX) },
];

describe("the bytes bpf_jit_comp.c writes by hand", () => {
  it.each(KERNEL)('$kernel', ({ hex, emit }) => {
    expect(encode(emit)).toBe(hex);
  });
});

// --- the buffer -------------------------------------------------------------------------------

describe('CodeBuffer', () => {
  it('grows past its capacity and hands out copies', () => {
    const b = new CodeBuffer(1);
    for (let i = 0; i < 1000; i++) b.emit1(i);
    expect(b.length).toBe(1000);
    const out = b.bytes();
    expect(out[999]).toBe(999 & 0xff);
    out[0] = 0x55;
    expect(b.bytes()[0]).toBe(0);
    b.clear();
    expect(b.length).toBe(0);
    b.emit4(1, 2, 3, 4);
    expect(hexOf(b.bytes())).toBe('01 02 03 04');
  });

  it('writes values little-endian and bytes truncated like EMIT', () => {
    const b = new CodeBuffer();
    b.emit2(0x1ff, -1);
    b.emit3(0xe8, 0, 0);
    b.emitU16(-2);
    b.emitU32(-0x80000000);
    b.emitU32(0xdeadbeef);
    b.emitU64(-2n);
    b.emitU64(0x0123456789abcdefn);
    b.emitBytes([0x90, 0x66, 0x90]);
    expect(hexOf(b.bytes())).toBe(
      'ff ff e8 00 00 fe ff 00 00 00 80 ef be ad de fe ff ff ff ff ff ff ff ef cd ab 89 67 45 23 01 90 66 90');
    expect(() => b.emitU32(0x100000000)).toThrow(EncodeError);
    expect(() => b.emitU32(1.5)).toThrow(EncodeError);
    expect(() => b.emitU64(1n << 64n)).toThrow(EncodeError);
    expect(() => b.emitU16(0x10000)).toThrow(EncodeError);
  });

  it('patches forward and backward branches by position', () => {
    const b = new CodeBuffer();
    const top = b.length;
    const jne = emitJccRel8(b, 'NE', 0); // jne out
    const jmp = emitJmpRel32(b, 0); //      jmp out
    emitInt3(b);
    const call = emitCallRel32(b, 0); //    call top
    const out = b.length;
    emitRet(b);
    b.patchRel8(jne, out);
    b.patchRel32(jmp, out);
    b.patchRel32(call, top);
    // jne +0x0b (2 + 0x0b = 0x0d); jmp +6 (7 + 6 = 0x0d); call -0x0d (0x0d - 0x0d = 0)
    expect(hexOf(b.bytes())).toBe('75 0b e9 06 00 00 00 cc e8 f3 ff ff ff c3');
    expect(() => b.patchRel8(jne, jne + 1 + 128)).toThrow(expect.objectContaining({ code: 'ERANGE' }));
    expect(() => b.patchRel32(b.length - 2, 0)).toThrow(expect.objectContaining({ code: 'ERANGE' }));
  });

  it('re-emits over reserved bytes (the trampoline turns 2 nops into je)', () => {
    const b = new CodeBuffer();
    emitTestRR(b, 64, RAX, RAX);
    const at = b.length;
    emitNops(b, 2);
    emitLea(b, RDI, mem(RBP, -0x18));
    b.patchAt(at, (p) => emitJccRel8(p, 'E', b.length - at - 2));
    expect(hexOf(b.bytes())).toBe('48 85 c0 74 04 48 8d 7d e8');
    b.setU8(0, 0x4c);
    b.setU32(5, -1);
    expect(hexOf(b.bytes())).toBe('4c 85 c0 74 04 ff ff ff ff');
    expect(() => b.patchAt(b.length - 1, (p) => emitNops(p, 2))).toThrow(expect.objectContaining({ code: 'ERANGE' }));
    expect(() => b.setU8(b.length, 0)).toThrow(EncodeError);
  });
});

describe('fields, nops and ranges', () => {
  it('rex/modrm/sib compose the bytes of `mov r13, [r12 + r9*8 + 0x10]`', () => {
    const b = new CodeBuffer();
    b.emit4(rex(true, R13, R9, R12), 0x8b, modrm(1, R13, 4), sib(8, R9, R12));
    b.emit1(0x10);
    expect(hexOf(b.bytes())).toBe('4f 8b 6c cc 10');
    expect(encode((p) => emitLdx(p, 8, R13, memIndex(R12, R9, 8, 0x10)))).toBe('4f 8b 6c cc 10');
    expect(rex(false, 0, 0, 0)).toBe(0x40);
  });

  it('emitNops splits as the kernel: at most ASM_NOP_MAX bytes each', () => {
    for (let len = 0; len <= 20; len++) {
      const want: number[] = [];
      for (let left = len; left > 0; left -= Math.min(left, ASM_NOP_MAX)) want.push(...X86_NOPS[Math.min(left, ASM_NOP_MAX)]!);
      expect(encode((b) => emitNops(b, len))).toBe(hexOf(Uint8Array.from(want)));
    }
    expect(encode((b) => emitNops(b, 19))).toBe(`${'0f 1f 84 00 00 00 00 00 '.repeat(2)}0f 1f 00`);
    expect(X86_NOPS.map((n) => n.length)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(encode(emitNop5).split(' ').length).toBe(X86_PATCH_SIZE);
  });

  it('is_imm8 / is_simm32 / is_uimm32 at their boundaries', () => {
    expect([-129, -128, 127, 128].map(isImm8)).toEqual([false, true, true, false]);
    expect([-0x80000001n, -0x80000000n, 0x7fffffffn, 0x80000000n].map(isSimm32)).toEqual([false, true, true, false]);
    expect([-1n, 0n, 0xffffffffn, 0x100000000n].map(isUimm32)).toEqual([false, true, true, false]);
  });

  it('condition codes are the low nibble of the kernel\'s X86_J* short opcodes', () => {
    const kernel: Record<string, number> = { JB: 0x72, JAE: 0x73, JE: 0x74, JNE: 0x75, JBE: 0x76, JA: 0x77, JL: 0x7c, JGE: 0x7d, JLE: 0x7e, JG: 0x7f };
    for (const [name, op] of Object.entries(kernel)) expect(0x70 | X86_CC[name.slice(1) as Cond], name).toBe(op);
  });
});

describe('errors', () => {
  const code = (f: () => void): string | undefined => {
    try {
      f();
    } catch (e) {
      if (e instanceof EncodeError) return e.code;
      throw e;
    }
    return undefined;
  };

  it('values that do not fit are ERANGE', () => {
    const b = new CodeBuffer();
    expect(code(() => emitJmpRel8(b, 128))).toBe('ERANGE');
    expect(code(() => emitJccRel8(b, 'E', -129))).toBe('ERANGE');
    expect(code(() => emitJmpRel32(b, 0x80000000))).toBe('ERANGE');
    expect(code(() => mem(RAX, 0x80000000))).toBe('ERANGE');
    expect(code(() => emitAluRI(b, 'add', 64, RAX, 0x100000000))).toBe('ERANGE');
    expect(code(() => emitAluRI(b, 'add', 64, RAX, -0x80000001))).toBe('ERANGE');
    expect(code(() => emitMovImm64(b, RAX, 1n << 64n))).toBe('ERANGE');
    expect(code(() => emitShiftRI(b, 'shl', 64, RAX, 256))).toBe('ERANGE');
    expect(code(() => emitNops(b, -1))).toBe('ERANGE');
    // emit_call() from a JIT image to a target more than 2 GiB away (the kernel's -ERANGE)
    expect(code(() => emitCall(b, 0xffffffff81000000n, 0xffffc90000000000n))).toBe('ERANGE');
    expect(code(() => emitJump(b, 0x1000n, KTEXT))).toBe('ERANGE');
    expect(code(() => emitCondNearJump(b, 'E', KTEXT + 0x80000006n, KTEXT))).toBe('ERANGE');
    expect(encode((p) => emitCall(p, KTEXT + 0x80000004n, KTEXT))).toBe('e8 ff ff ff 7f');
  });

  it('operands x86-64 cannot encode are EINVAL', () => {
    const b = new CodeBuffer();
    expect(code(() => memIndex(RAX, RSP, 1))).toBe('EINVAL');
    expect(code(() => emitMovsxRR(b, 32, 32, RAX, RCX))).toBe('EINVAL');
    expect(code(() => emitMovRR(b, 64, 16 as Reg, RAX))).toBe('EINVAL');
    expect(code(() => emitMovRR(b, 64, RAX, BPF_TO_X86[12]!))).toBe('EINVAL');
    expect(code(() => emitLdx(b, 3 as MemSize, RAX, mem(RDI)))).toBe('EINVAL');
    expect(code(() => emitAtomic(b, 'add', 2 as 4, mem(RDI), RAX))).toBe('EINVAL');
    expect(b.length).toBe(0);
  });
});

// --- registers --------------------------------------------------------------------------------

describe('regs', () => {
  it("BPF_TO_X86 is the kernel's reg2hex[] + is_ereg()", () => {
    // [BPF_REG_0] = 0 RAX, [1] = 7 RDI, [2] = 6 RSI, [3] = 2 RDX, [4] = 1 RCX, [5] = 0 R8 (ereg),
    // [6] = 3 RBX, [7] = 5 R13 (ereg), [8] = 6 R14 (ereg), [9] = 7 R15 (ereg), [FP] = 5 RBP,
    // [AX] = 2 R10 (ereg)
    const reg2hex = [0, 7, 6, 2, 1, 0, 3, 5, 6, 7, 5, 2];
    const ereg = [5, 7, 8, 9, BPF_REG_AX];
    expect(BPF_TO_X86.length).toBe(MAX_BPF_REG + 1);
    BPF_TO_X86.forEach((x, bpf) => {
      expect(x & 7, `R${bpf}`).toBe(reg2hex[bpf]);
      expect(isEreg(x), `R${bpf}`).toBe(ereg.includes(bpf));
    });
    expect(BPF_TO_X86.map((r) => regName(r, 64))).toEqual(
      ['rax', 'rdi', 'rsi', 'rdx', 'rcx', 'r8', 'rbx', 'r13', 'r14', 'r15', 'rbp', 'r10']);
    expect(BPF_TO_X86[BPF_REG_FP]).toBe(RBP);
    // AUX_REG = 3 + ereg, X86_REG_R9 = 1 + ereg, X86_REG_R12 = 4 + ereg; none is a BPF register
    expect([AUX_REG, X86_REG_R9, X86_REG_R12]).toEqual([R11, R9, R12]);
    for (const r of [AUX_REG, X86_REG_R9, X86_REG_R12, RSP]) expect(BPF_TO_X86).not.toContain(r);
  });

  it('names and byte-register REX needs', () => {
    expect(ALL_REGS.map((r) => regName(r, 8))).toEqual(
      ['al', 'cl', 'dl', 'bl', 'spl', 'bpl', 'sil', 'dil', 'r8b', 'r9b', 'r10b', 'r11b', 'r12b', 'r13b', 'r14b', 'r15b']);
    expect([regName(RSP, 16), regName(R9, 16), regName(RBP, 32), regName(R14, 32)]).toEqual(['sp', 'r9w', 'ebp', 'r14d']);
    expect(ALL_REGS.filter(needsRex8)).toEqual(ALL_REGS.slice(4));
    expect(ALL_REGS.filter(isEreg)).toEqual([R8, R9, R10, R11, R12, R13, R14, R15]);
  });
});
