/**
 * @fileoverview Byte-level emitters of the BPF JIT, named and shaped as in the kernel's
 * arch/x86/net/bpf_jit_comp.c (v5.5 for what existed then; later kernels' for the v4 ISA:
 * sdiv/smod, movsx, sign-extending loads, fetch atomics). Each emit is commented with its asm.
 *
 * BPF registers map to x86-64 as the kernel's reg2hex[] (R0=rax R1=rdi R2=rsi R3=rdx R4=rcx
 * R5=r8 R6=rbx R7=r13 R8=r14 R9=r15 R10=rbp AX=r10, AUX_REG=r11): the x86 register number's low
 * three bits go in ModRM/opcode, the fourth bit ("ereg") in a REX prefix.
 */

export const AUX_REG = 12; // BPF-side index of the JIT's own temporary (r11)
/** Low 3 bits of the x86 register of each BPF register (reg2hex). */
const REG2HEX = [0, 7, 6, 2, 1, 0, 3, 5, 6, 7, 5, 2, 3];
/** BPF registers living in r8..r15 (need REX.B/REX.R). */
const EREG = [false, false, false, false, false, true, false, true, true, true, false, true, true];
/** x86 register numbers (0..15) of each BPF register, for readers of the mapping. */
export const BPF_TO_X86 = REG2HEX.map((h, r) => h + (EREG[r] ? 8 : 0));

export const isEreg = (r: number): boolean => EREG[r]!;
/** Byte registers that need a REX prefix to be addressed as sil/dil/bpl or r8b..r15b. */
export const isEreg8l = (r: number): boolean => EREG[r]! || r === 1 || r === 2 || r === 10;
export const isImm8 = (v: number): boolean => v >= -128 && v <= 127;
export const isSimm32 = (v: number): boolean => v >= -0x80000000 && v <= 0x7fffffff;

/** REX with B set for `reg` in r/m. */
export const add1mod = (byte: number, reg: number): number => (EREG[reg] ? byte | 1 : byte);
/** REX with B for r1 (r/m) and R for r2 (reg). */
export const add2mod = (byte: number, r1: number, r2: number): number =>
  (EREG[r1] ? byte | 1 : byte) | (EREG[r2] ? 4 : 0);
export const add1reg = (byte: number, dst: number): number => byte + REG2HEX[dst]!;
/** ModRM with rm = dst, reg = src. */
export const add2reg = (byte: number, dst: number, src: number): number => byte + REG2HEX[dst]! + (REG2HEX[src]! << 3);

/** An append-only byte buffer with the kernel's EMIT helpers. */
export class Emitter {
  private buf: number[] = [];
  get length(): number { return this.buf.length; }
  emit(...bytes: number[]): void { for (const b of bytes) this.buf.push(b & 0xff); }
  emitOff32(v: number): void { this.emit(v, v >> 8, v >> 16, v >> 24); }
  emitImm(v: number, size: number): void { for (let i = 0; i < size; i++) this.buf.push((v >> (8 * i)) & 0xff); }
  bytes(): Uint8Array { return Uint8Array.from(this.buf); }
  /** Rewrites the last `n` bytes (jump displacements patched in place). */
  setAt(pos: number, b: number): void { this.buf[pos] = b & 0xff; }
}

/** mov dst, src (64-bit): EMIT_mov. */
export function emitMov(e: Emitter, dst: number, src: number): void {
  if (dst !== src) e.emit(add2mod(0x48, dst, src), 0x89, add2reg(0xc0, dst, src)); // mov dst, src
}

/** mov dst, src with the given width (32-bit moves zero-extend). */
export function emitMovReg(e: Emitter, is64: boolean, dst: number, src: number): void {
  if (is64) { emitMov(e, dst, src); return; }
  if (isEreg(dst) || isEreg(src)) e.emit(add2mod(0x40, dst, src));
  e.emit(0x89, add2reg(0xc0, dst, src)); // mov dst32, src32
}

/** emit_mov_imm32: the shortest load of a 32-bit immediate (sign-extended for 64-bit). */
export function emitMovImm32(e: Emitter, signPropagate: boolean, dst: number, imm: number): void {
  if (signPropagate && imm < 0) {
    e.emit(add1mod(0x48, dst), 0xc7, add1reg(0xc0, dst)); // mov dst, imm32 (sign-extended)
    e.emitOff32(imm);
    return;
  }
  if (imm === 0) {
    if (isEreg(dst)) e.emit(add2mod(0x40, dst, dst));
    e.emit(0x31, add2reg(0xc0, dst, dst)); // xor dst32, dst32
    return;
  }
  if (isEreg(dst)) e.emit(add1mod(0x40, dst));
  e.emit(add1reg(0xb8, dst)); // mov dst32, imm32
  e.emitOff32(imm);
}

/** emit_mov_imm64: a u32 as mov r32, else movabs. */
export function emitMovImm64(e: Emitter, dst: number, hi: number, lo: number): void {
  if (hi === 0) { emitMovImm32(e, false, dst, lo | 0); return; }
  e.emit(add1mod(0x48, dst), add1reg(0xb8, dst)); // movabs dst, imm64
  e.emitOff32(lo);
  e.emitOff32(hi);
}

/** The displacement of [reg + off]: disp8 when it fits, else disp32 (rbp/r13 always need one). */
function insnSuffix(e: Emitter, ptr: number, val: number, off: number): void {
  if (isImm8(off)) e.emit(add2reg(0x40, ptr, val), off);
  else { e.emit(add2reg(0x80, ptr, val)); e.emitOff32(off); }
}

/** emit_ldx: dst = *(size *)(src + off), zero-extended. */
export function emitLdx(e: Emitter, size: 1 | 2 | 4 | 8, dst: number, src: number, off: number): void {
  switch (size) {
    case 1: e.emit(add2mod(0x48, src, dst), 0x0f, 0xb6); break; // movzx dst, byte ptr [src+off]
    case 2: e.emit(add2mod(0x48, src, dst), 0x0f, 0xb7); break; // movzx dst, word ptr [src+off]
    case 4: // mov dst32, dword ptr [src+off]
      if (isEreg(dst) || isEreg(src)) e.emit(add2mod(0x40, src, dst), 0x8b); else e.emit(0x8b);
      break;
    case 8: e.emit(add2mod(0x48, src, dst), 0x8b); break; // mov dst, qword ptr [src+off]
  }
  insnSuffix(e, src, dst, off);
}

/** emit_ldsx: dst = *(s8/s16/s32 *)(src + off), sign-extended to 64 bits. */
export function emitLdsx(e: Emitter, size: 1 | 2 | 4, dst: number, src: number, off: number): void {
  switch (size) {
    case 1: e.emit(add2mod(0x48, src, dst), 0x0f, 0xbe); break; // movsx dst, byte ptr [src+off]
    case 2: e.emit(add2mod(0x48, src, dst), 0x0f, 0xbf); break; // movsx dst, word ptr [src+off]
    case 4: e.emit(add2mod(0x48, src, dst), 0x63); break;       // movsxd dst, dword ptr [src+off]
  }
  insnSuffix(e, src, dst, off);
}

/** emit_stx: *(size *)(dst + off) = src. */
export function emitStx(e: Emitter, size: 1 | 2 | 4 | 8, dst: number, src: number, off: number): void {
  switch (size) {
    case 1: // mov byte ptr [dst+off], src8 (REX for sil/dil/bpl and r8b..)
      if (isEreg(dst) || isEreg8l(src)) e.emit(add2mod(0x40, dst, src), 0x88); else e.emit(0x88);
      break;
    case 2: // mov word ptr [dst+off], src16
      if (isEreg(dst) || isEreg(src)) e.emit(0x66, add2mod(0x40, dst, src), 0x89); else e.emit(0x66, 0x89);
      break;
    case 4: // mov dword ptr [dst+off], src32
      if (isEreg(dst) || isEreg(src)) e.emit(add2mod(0x40, dst, src), 0x89); else e.emit(0x89);
      break;
    case 8: e.emit(add2mod(0x48, dst, src), 0x89); break; // mov qword ptr [dst+off], src
  }
  insnSuffix(e, dst, src, off);
}

/** BPF_ST: *(size *)(dst + off) = imm. */
export function emitSt(e: Emitter, size: 1 | 2 | 4 | 8, dst: number, off: number, imm: number): void {
  switch (size) {
    case 1: if (isEreg(dst)) e.emit(0x41, 0xc6); else e.emit(0xc6); break;             // mov byte ptr [dst+off], imm8
    case 2: if (isEreg(dst)) e.emit(0x66, 0x41, 0xc7); else e.emit(0x66, 0xc7); break; // mov word ptr [dst+off], imm16
    case 4: if (isEreg(dst)) e.emit(0x41, 0xc7); else e.emit(0xc7); break;             // mov dword ptr [dst+off], imm32
    case 8: e.emit(add1mod(0x48, dst), 0xc7); break;                                   // mov qword ptr [dst+off], imm32
  }
  if (isImm8(off)) e.emit(add1reg(0x40, dst), off);
  else { e.emit(add1reg(0x80, dst)); e.emitOff32(off); }
  e.emitImm(imm, size === 8 ? 4 : size);
}

/** The ALU opcodes shared by register and atomic forms (simple_alu_opcodes). */
export const SIMPLE_ALU_OPCODES: Readonly<Record<number, number>> = {
  0x00: 0x01, // add
  0x10: 0x29, // sub
  0x50: 0x21, // and
  0x40: 0x09, // or
  0xa0: 0x31, // xor
};

/** REX.W (or a REX for r8..r15) before an instruction with `dst` in r/m and `src` in reg. */
export function maybeEmitMod(e: Emitter, dst: number, src: number, is64: boolean): void {
  if (is64) e.emit(add2mod(0x48, dst, src));
  else if (isEreg(dst) || isEreg(src)) e.emit(add2mod(0x40, dst, src));
}

export function maybeEmit1mod(e: Emitter, reg: number, is64: boolean): void {
  if (is64) e.emit(add1mod(0x48, reg));
  else if (isEreg(reg)) e.emit(add1mod(0x40, reg));
}

/** emit_atomic: lock-prefixed read-modify-write of [dst + off] with src. */
export function emitAtomic(e: Emitter, op: number, dst: number, src: number, off: number, is64: boolean): void {
  e.emit(0xf0); // lock
  maybeEmitMod(e, dst, src, is64);
  switch (op) {
    case 0x00: case 0x50: case 0x40: case 0xa0: e.emit(SIMPLE_ALU_OPCODES[op]!); break; // lock add/and/or/xor [dst+off], src
    case 0x01: e.emit(0x0f, 0xc1); break; // lock xadd [dst+off], src
    case 0xe1: e.emit(0x87); break;       // (lock) xchg [dst+off], src
    case 0xf1: e.emit(0x0f, 0xb1); break; // lock cmpxchg [dst+off], src (compares rax)
    default: throw new Error(`emitAtomic: op 0x${op.toString(16)}`);
  }
  insnSuffix(e, dst, src, off);
}

/** emit_movsx_reg: dst = (s8/s16/s32)src, to 64 bits or (8/16 only) to 32 bits. */
export function emitMovsxReg(e: Emitter, bits: number, is64: boolean, dst: number, src: number): void {
  if (is64) {
    if (bits === 8) e.emit(add2mod(0x48, src, dst), 0x0f, 0xbe, add2reg(0xc0, src, dst));      // movsx dst, src8
    else if (bits === 16) e.emit(add2mod(0x48, src, dst), 0x0f, 0xbf, add2reg(0xc0, src, dst)); // movsx dst, src16
    else e.emit(add2mod(0x48, src, dst), 0x63, add2reg(0xc0, src, dst));                         // movsxd dst, src32
  } else if (bits === 8) {
    e.emit(add2mod(0x40, src, dst), 0x0f, 0xbe, add2reg(0xc0, src, dst)); // movsx dst32, src8
  } else {
    if (isEreg(dst) || isEreg(src)) e.emit(add2mod(0x40, src, dst));
    e.emit(0x0f, 0xbf, add2reg(0xc0, src, dst)); // movsx dst32, src16
  }
}

/** The 5-byte nop every JIT image starts with, so a trampoline can attach to it (5.5). */
export const NOP5 = [0x0f, 0x1f, 0x44, 0x00, 0x00];
/** x86 condition codes of the rel8 jcc forms; the rel32 form is 0f (cc + 0x10). */
export const X86_JB = 0x72, X86_JAE = 0x73, X86_JE = 0x74, X86_JNE = 0x75, X86_JBE = 0x76, X86_JA = 0x77;
export const X86_JL = 0x7c, X86_JGE = 0x7d, X86_JLE = 0x7e, X86_JG = 0x7f;
