/**
 * @fileoverview The x86-64 encoder under the BPF JIT and the trampolines: a growable
 * {@link CodeBuffer}, the field helpers {@link rex}/{@link modrm}/{@link sib}, a memory-operand
 * encoder, and one named emitter per instruction form, each documented with the asm it emits.
 * Modelled on arch/x86/net/bpf_jit_comp.c (EMIT1..4, add_1mod/add_2mod, emit_insn_suffix,
 * emit_mov_imm32/64, emit_ldx/ldsx/stx, emit_atomic, emit_movsx_reg, emit_call/emit_jump):
 * the forms the kernel emits come out byte for byte as the kernel emits them, so a JIT image can
 * be compared with Linux's. Not here: the BMI2 shifts (shlx/shrx/sarx, VEX; the kernel uses
 * them only when the CPU has BMI2, else `shl r, cl`), endbr64 (IBT) and retpoline thunks.
 *
 * An instruction, as emitted here:
 *
 *   [66] [F0] [REX] opcode(1-2) [ModRM] [SIB] [disp8 | disp32] [imm8 | imm16 | imm32 | imm64]
 *
 *   REX    0100WRXB      W: 64-bit operand size; R, X, B: bit 3 of ModRM.reg, SIB.index and
 *                        ModRM.rm / SIB.base / the register in the opcode (push, bswap, b8+r)
 *   ModRM  mod:2 reg:3 rm:3
 *                        mod 11: rm is a register; 00: [rm]; 01: [rm + disp8]; 10: [rm + disp32]
 *                        rm 100 with mod != 11: an SIB byte follows (how rsp/r12 are addressed)
 *                        rm 101 with mod 00: [rip + disp32], so [rbp]/[r13] need mod 01 and disp8 0
 *   SIB    scale:2 index:3 base:3       index 100 without REX.X: no index
 *
 * The kernel's choices, kept here (where GNU as would choose otherwise, the tests check the
 * bytes through objdump instead):
 *  - A memory operand gets disp8 whenever the displacement fits, even 0 (`[rdi+0x0]` is
 *    48 8b 77 00), as emit_insn_suffix(): "If off == 0 we could skip this and save one extra
 *    byte, but special case of x86 R13 which always needs an offset is not worth the hassle".
 *    Instruction sizes then depend on the displacement only. {@link mem} also offers GNU as's
 *    shortest form and a fixed disp32, for the kernel's hand-written sequences.
 *  - Register-register ALU ops and mov use the `op r/m, reg` opcodes (01 29 21 09 31 39 85 89).
 *  - ALU with an immediate: `83 /op ib` when it fits in s8, else for add/sub/and/or/xor on
 *    eax/rax the short form (05 2d 25 0d 35 id), else `81 /op id`; cmp never uses the short form
 *    (3d) and test always uses `f7 /0 id` (never a9).
 *  - A shift by 1 is `d1 /op`, other counts `c1 /op ib`.
 *  - `mov r, imm`: xor for 0, `mov r32, imm32` for what fits in u32, `mov r64, simm32` for what
 *    fits in s32, movabs otherwise (emit_mov_imm32/emit_mov_imm64).
 *  - Loads: 1 and 2 bytes with `movzx r64` (REX.W), 4 with `mov r32`, 8 with `mov r64`.
 *  - `movsx r32, r8` always carries a REX prefix (emit_movsx_reg emits 0x40 unconditionally).
 *  - `xchg` with memory is emitted with a lock prefix (implicit anyway; the kernel's bytes).
 */
import { type Reg, RAX, needsRex8 } from './regs.ts';

// --- errors and ranges ------------------------------------------------------------------------

/** ERANGE: a value does not fit its field; EINVAL: an operand combination x86-64 cannot encode. */
export type EncodeErrorCode = 'ERANGE' | 'EINVAL';

/** Thrown by the emitters; a JIT turns it into its error status (the kernel returns -ERANGE/-EFAULT). */
export class EncodeError extends Error {
  readonly code: EncodeErrorCode;
  constructor(code: EncodeErrorCode, what: string) {
    super(`x86-64 encoder: ${what}`);
    this.name = 'EncodeError';
    this.code = code;
  }
}

/** The kernel's is_imm8(): fits in a sign-extended byte. */
export const isImm8 = (v: number): boolean => Number.isInteger(v) && v >= -128 && v <= 127;
/** The kernel's is_simm32(): the 64-bit value is a sign-extended s32. */
export const isSimm32 = (v: bigint | number): boolean => {
  const b = BigInt(v);
  return b === BigInt.asIntN(32, b);
};
/** The kernel's is_uimm32(): the 64-bit value is a zero-extended u32. */
export const isUimm32 = (v: bigint | number): boolean => {
  const b = BigInt(v);
  return b === BigInt.asUintN(32, b);
};

/** Accepts a 32-bit pattern written as s32 or u32 (the kernel passes `u32 imm32` and `s32 imm32` alike). */
function imm32(v: number, what: string): number {
  if (!Number.isInteger(v) || v < -0x8000_0000 || v > 0xffff_ffff) throw new EncodeError('ERANGE', `${what} ${v} is not a 32-bit value`);
  return v | 0;
}

function s32(v: number, what: string): number {
  if (!Number.isInteger(v) || v < -0x8000_0000 || v > 0x7fff_ffff) throw new EncodeError('ERANGE', `${what} ${v} does not fit in s32`);
  return v;
}

function u8(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xff) throw new EncodeError('ERANGE', `${what} ${v} does not fit in u8`);
  return v;
}

function reg(r: number): number {
  if (!Number.isInteger(r) || r < 0 || r > 15) throw new EncodeError('EINVAL', `register ${r} is not 0..15`);
  return r;
}

// --- the buffer -------------------------------------------------------------------------------

/**
 * Machine code being built: a Uint8Array that doubles when full. `emit1..emit4` write bytes as
 * the kernel's EMIT1..EMIT4 (each truncated to 8 bits); `emitU16/U32/U64` write little-endian
 * values. Branch displacements are patched by position once the target is known.
 */
export class CodeBuffer {
  private buf: Uint8Array;
  private len = 0;

  constructor(capacity = 256) {
    this.buf = new Uint8Array(Math.max(16, capacity));
  }

  /** Bytes emitted so far: the position of the next byte. */
  get length(): number {
    return this.len;
  }

  /** A copy of the code. */
  bytes(): Uint8Array {
    return this.buf.slice(0, this.len);
  }

  /** Forgets the code, keeping the storage (one buffer per JIT pass). */
  clear(): void {
    this.len = 0;
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.buf.subarray(0, this.len));
    this.buf = grown;
  }

  emit1(b1: number): void {
    this.reserve(1);
    this.buf[this.len++] = b1 & 0xff;
  }

  emit2(b1: number, b2: number): void {
    this.reserve(2);
    this.buf[this.len++] = b1 & 0xff;
    this.buf[this.len++] = b2 & 0xff;
  }

  emit3(b1: number, b2: number, b3: number): void {
    this.reserve(3);
    this.buf[this.len++] = b1 & 0xff;
    this.buf[this.len++] = b2 & 0xff;
    this.buf[this.len++] = b3 & 0xff;
  }

  emit4(b1: number, b2: number, b3: number, b4: number): void {
    this.reserve(4);
    this.buf[this.len++] = b1 & 0xff;
    this.buf[this.len++] = b2 & 0xff;
    this.buf[this.len++] = b3 & 0xff;
    this.buf[this.len++] = b4 & 0xff;
  }

  emitBytes(bytes: ArrayLike<number>): void {
    this.reserve(bytes.length);
    for (let i = 0; i < bytes.length; i++) this.buf[this.len++] = bytes[i]! & 0xff;
  }

  /** A 16-bit value, little-endian (accepts -0x8000..0xffff). */
  emitU16(v: number): void {
    if (!Number.isInteger(v) || v < -0x8000 || v > 0xffff) throw new EncodeError('ERANGE', `imm16 ${v}`);
    this.emit2(v, v >> 8);
  }

  /** A 32-bit value, little-endian (accepts s32 and u32). */
  emitU32(v: number): void {
    const x = imm32(v, 'imm32');
    this.emit4(x, x >> 8, x >> 16, x >> 24);
  }

  /** A 64-bit value, little-endian (accepts s64 and u64). */
  emitU64(v: bigint): void {
    if (v < -(1n << 63n) || v >= 1n << 64n) throw new EncodeError('ERANGE', `imm64 ${v}`);
    const x = BigInt.asUintN(64, v);
    this.emitU32(Number(x & 0xffff_ffffn));
    this.emitU32(Number(x >> 32n));
  }

  /** Overwrites one byte already emitted. */
  setU8(pos: number, v: number): void {
    this.check(pos, 1);
    this.buf[pos] = v & 0xff;
  }

  /** Overwrites 4 bytes already emitted with a 32-bit value (s32 or u32), little-endian. */
  setU32(pos: number, v: number): void {
    this.check(pos, 4);
    const x = imm32(v, 'imm32');
    this.buf[pos] = x & 0xff;
    this.buf[pos + 1] = (x >> 8) & 0xff;
    this.buf[pos + 2] = (x >> 16) & 0xff;
    this.buf[pos + 3] = (x >> 24) & 0xff;
  }

  /**
   * Points the rel8 field at `field` (as returned by the branch emitters) to the buffer position
   * `target`: the displacement counts from the end of the field, which ends the instruction.
   */
  patchRel8(field: number, target: number): void {
    const rel = target - (field + 1);
    if (!isImm8(rel)) throw new EncodeError('ERANGE', `rel8 ${rel} from ${field} to ${target}`);
    this.setU8(field, rel);
  }

  /** As {@link patchRel8}, for a rel32 field. */
  patchRel32(field: number, target: number): void {
    this.setU32(field, s32(target - (field + 4), 'rel32'));
  }

  /**
   * Re-emits at `pos` over bytes already emitted: `patchAt(p, (b) => emitJccRel8(b, 'E', rel))`
   * turns 2 bytes of nops reserved at p into a `je` (the trampoline's jmp_insn[] patching).
   */
  patchAt(pos: number, emit: (b: CodeBuffer) => void): void {
    const scratch = new CodeBuffer(16);
    emit(scratch);
    this.check(pos, scratch.length);
    this.buf.set(scratch.buf.subarray(0, scratch.len), pos);
  }

  private check(pos: number, n: number): void {
    if (!Number.isInteger(pos) || pos < 0 || pos + n > this.len) {
      throw new EncodeError('ERANGE', `patch of ${n} bytes at ${pos} outside the ${this.len} emitted`);
    }
  }
}

// --- fields -----------------------------------------------------------------------------------

/** REX = 0100WRXB; r, x, b are register numbers (or 0), of which bit 3 is taken. */
export function rex(w: boolean, r: number, x: number, b: number): number {
  return 0x40 | (w ? 8 : 0) | (((r >> 3) & 1) << 2) | (((x >> 3) & 1) << 1) | ((b >> 3) & 1);
}

/** ModRM = mod:2 reg:3 rm:3 (`reg` is a register or an opcode extension /digit). */
export function modrm(mod: number, regOrDigit: number, rm: number): number {
  return ((mod & 3) << 6) | ((regOrDigit & 7) << 3) | (rm & 7);
}

/** Scale factors an SIB can encode. */
export type Scale = 1 | 2 | 4 | 8;
const SCALE_BITS: Readonly<Record<Scale, number>> = { 1: 0, 2: 1, 4: 2, 8: 3 };

/** SIB = scale:2 index:3 base:3. */
export function sib(scale: Scale, index: number, base: number): number {
  return (SCALE_BITS[scale] << 6) | ((index & 7) << 3) | (base & 7);
}

// --- memory operands --------------------------------------------------------------------------

/**
 * How a displacement is encoded:
 *  - 'kernel': disp8 when it fits (0 included), else disp32 (emit_insn_suffix(); the default)
 *  - 'short':  GNU as's choice: none when 0 (but rbp/r13 still need disp8 0), disp8, disp32
 *  - 'disp32': always disp32, for sequences of fixed size (the kernel's EMIT3_off32 forms)
 */
export type DispForm = 'kernel' | 'short' | 'disp32';

/** `[base + index*scale + disp]`; build with {@link mem} or {@link memIndex}. */
export interface Mem {
  readonly base: Reg;
  readonly disp: number;
  readonly index: Reg | undefined;
  readonly scale: Scale;
  readonly form: DispForm;
}

/** `[base + disp]`. */
export function mem(base: Reg, disp = 0, form: DispForm = 'kernel'): Mem {
  return { base: reg(base) as Reg, disp: s32(disp, 'displacement'), index: undefined, scale: 1, form };
}

/** `[base + index*scale + disp]`; rsp cannot be an index. */
export function memIndex(base: Reg, index: Reg, scale: Scale, disp = 0, form: DispForm = 'kernel'): Mem {
  if (reg(index) === 4) throw new EncodeError('EINVAL', 'rsp cannot be an index register');
  if (SCALE_BITS[scale] === undefined) throw new EncodeError('EINVAL', `scale ${String(scale)}`);
  return { base: reg(base) as Reg, disp: s32(disp, 'displacement'), index, scale, form };
}

/**
 * The memory-operand encoder: ModRM (with `regOrDigit` in its reg field), the SIB when there is
 * an index or the base is rsp/r12 (rm 100 means "SIB follows"), then the displacement. rbp/r13
 * as a base with mod 00 would mean rip-relative, so they always get at least disp8.
 */
export function emitModRmMem(buf: CodeBuffer, regOrDigit: number, m: Mem): void {
  const baseLow = m.base & 7;
  let mod: number;
  if (m.form === 'disp32') mod = 2;
  else if (m.form === 'short' && m.disp === 0 && baseLow !== 5) mod = 0;
  else mod = isImm8(m.disp) ? 1 : 2;

  if (m.index !== undefined || baseLow === 4) {
    buf.emit2(modrm(mod, regOrDigit, 4), sib(m.scale, m.index ?? 4, m.base));
  } else {
    buf.emit1(modrm(mod, regOrDigit, m.base));
  }
  if (mod === 1) buf.emit1(m.disp);
  else if (mod === 2) buf.emitU32(m.disp);
}

// --- internal forms ---------------------------------------------------------------------------

/** REX when W, an extended register, or `force` (byte registers spl/bpl/sil/dil) asks for one. */
function emitRex(buf: CodeBuffer, w: boolean, r: number, x: number, b: number, force = false): void {
  const byte = rex(w, r, x, b);
  if (byte !== 0x40 || force) buf.emit1(byte);
}

/** One-byte opcode, or two-byte 0f xx written as 0x0fxx. */
function emitOpcode(buf: CodeBuffer, opcode: number): void {
  if (opcode > 0xff) buf.emit2(opcode >> 8, opcode);
  else buf.emit1(opcode);
}

/** [REX] opcode ModRM(11, reg, rm) */
function opRR(buf: CodeBuffer, w: boolean, opcode: number, regOrDigit: number, rm: number, forceRex = false): void {
  emitRex(buf, w, regOrDigit, 0, reg(rm), forceRex);
  emitOpcode(buf, opcode);
  buf.emit1(modrm(3, regOrDigit, rm));
}

/** [REX] opcode ModRM [SIB] [disp] */
function opRM(buf: CodeBuffer, w: boolean, opcode: number, regOrDigit: number, m: Mem, forceRex = false): void {
  emitRex(buf, w, regOrDigit, m.index ?? 0, m.base, forceRex);
  emitOpcode(buf, opcode);
  emitModRmMem(buf, regOrDigit, m);
}

/** [REX.B] opcode+reg (push, pop, bswap, mov r32, imm32 …). */
function opPlusReg(buf: CodeBuffer, w: boolean, opcode: number, r: Reg): void {
  emitRex(buf, w, 0, 0, reg(r));
  emitOpcode(buf, opcode + (r & 7));
}

/** Operand size of a register operation. */
export type RegBits = 32 | 64;
/** Size of a memory access in bytes (BPF_B, BPF_H, BPF_W, BPF_DW). */
export type MemSize = 1 | 2 | 4 | 8;

// --- moves ------------------------------------------------------------------------------------

/** `mov dst, src` (89 /r). The kernel's EMIT_mov skips dst == src for 64 bits; that is the caller's call. */
export function emitMovRR(buf: CodeBuffer, bits: RegBits, dst: Reg, src: Reg): void {
  opRR(buf, bits === 64, 0x89, reg(src), dst);
}

/** `mov r32, imm32` (b8+r id): zero-extends into the 64-bit register. */
export function emitMovRI32(buf: CodeBuffer, dst: Reg, imm: number): void {
  opPlusReg(buf, false, 0xb8, dst);
  buf.emitU32(imm);
}

/** `mov r64, simm32` (REX.W c7 /0 id): the 32-bit pattern `imm`, sign-extended; always 7 bytes. */
export function emitMovRI32Sx(buf: CodeBuffer, dst: Reg, imm: number): void {
  opRR(buf, true, 0xc7, 0, dst);
  buf.emitU32(imm);
}

/** `movabs r64, imm64` (REX.W b8+r io); always 10 bytes. */
export function emitMovabs(buf: CodeBuffer, dst: Reg, imm: bigint): void {
  opPlusReg(buf, true, 0xb8, dst);
  buf.emitU64(imm);
}

/**
 * The kernel's emit_mov_imm32(): with `signExtend` (ALU64 MOV) a negative s32 becomes
 * `mov r64, simm32`; otherwise 0 becomes `xor r32, r32` and anything else `mov r32, imm32`.
 * Beware: the xor form clobbers the flags.
 */
export function emitMovImm32(buf: CodeBuffer, signExtend: boolean, dst: Reg, imm: number): void {
  const v = imm32(imm, 'imm32');
  if (signExtend && v < 0) emitMovRI32Sx(buf, dst, v); //  mov dst64, simm32
  else if (v === 0) emitAluRR(buf, 'xor', 32, dst, dst); // xor dst32, dst32
  else emitMovRI32(buf, dst, v); //                         mov dst32, imm32
}

/**
 * The kernel's emit_mov_imm64(): a u32 value through emit_mov_imm32 zero-extending, an s32 value
 * sign-extending, anything else movabs. The s32 step is recent (absent from v5.5 and from the
 * v6.2-era bpf-next copy read): `{ simm32: false }` gives the older bytes, where -1 is a movabs.
 */
export function emitMovImm64(buf: CodeBuffer, dst: Reg, imm: bigint, opts: { simm32?: boolean } = {}): void {
  if (imm < -(1n << 63n) || imm >= 1n << 64n) throw new EncodeError('ERANGE', `imm64 ${imm}`);
  const v = BigInt.asUintN(64, imm);
  if (isUimm32(v)) emitMovImm32(buf, false, dst, Number(v));
  else if ((opts.simm32 ?? true) && isSimm32(BigInt.asIntN(64, v))) emitMovImm32(buf, true, dst, Number(BigInt.asIntN(32, v)));
  else emitMovabs(buf, dst, v);
}

/** `movzx r32, r8` (0f b6 /r) or `movzx r32, r16` (0f b7 /r); the upper 32 bits are cleared too. */
export function emitMovzxRR(buf: CodeBuffer, fromBits: 8 | 16, dst: Reg, src: Reg): void {
  opRR(buf, false, fromBits === 8 ? 0x0fb6 : 0x0fb7, reg(dst), src, fromBits === 8 && needsRex8(src));
}

const MOVSX_OPCODE = { 8: 0x0fbe, 16: 0x0fbf, 32: 0x63 } as const;

/**
 * The kernel's emit_movsx_reg(): `movsx r64, r8/r16` (REX.W 0f be/bf), `movsxd r64, r32`
 * (REX.W 63), `movsx r32, r8` (always with REX, as the kernel) and `movsx r32, r16`.
 */
export function emitMovsxRR(buf: CodeBuffer, fromBits: 8 | 16 | 32, bits: RegBits, dst: Reg, src: Reg): void {
  if (bits === 32 && fromBits === 32) throw new EncodeError('EINVAL', 'movsx r32, r32 does not exist');
  opRR(buf, bits === 64, MOVSX_OPCODE[fromBits], reg(dst), src, bits === 32 && fromBits === 8);
}

/** `lea r64, [m]` (REX.W 8d /r). */
export function emitLea(buf: CodeBuffer, dst: Reg, m: Mem): void {
  opRM(buf, true, 0x8d, reg(dst), m);
}

/** `bswap r32` (0f c8+r) or `bswap r64` (REX.W 0f c8+r). */
export function emitBswap(buf: CodeBuffer, bits: RegBits, r: Reg): void {
  opPlusReg(buf, bits === 64, 0x0fc8, r);
}

/**
 * Condition codes (the low nibble of jcc/cmovcc/setcc). The kernel's X86_JB..X86_JG are the
 * short-jump opcodes 0x70 | cc; "Add 0x10 (and an extra 0x0f) to generate far jumps".
 * Unsigned: B < , BE <=, A >, AE >=; signed: L, LE, G, GE.
 */
export const X86_CC = {
  O: 0x0, NO: 0x1, B: 0x2, AE: 0x3, E: 0x4, NE: 0x5, BE: 0x6, A: 0x7,
  S: 0x8, NS: 0x9, P: 0xa, NP: 0xb, L: 0xc, GE: 0xd, LE: 0xe, G: 0xf,
} as const;
export type Cond = keyof typeof X86_CC;

/** `cmovcc dst, src` (0f 40+cc /r; reg is dst: "Intel swapped src/dst register encoding in CMOVcc"). */
export function emitCmov(buf: CodeBuffer, cond: Cond, bits: RegBits, dst: Reg, src: Reg): void {
  opRR(buf, bits === 64, 0x0f40 | X86_CC[cond], reg(dst), src);
}

// --- loads and stores -------------------------------------------------------------------------

/**
 * The kernel's emit_ldx(): `dst = *(u8/u16/u32/u64 *)m`, zero-extended to 64 bits:
 *   1: movzx r64, byte ptr [m]   (REX.W 0f b6)     2: movzx r64, word ptr [m]  (REX.W 0f b7)
 *   4: mov r32, dword ptr [m]    (8b)              8: mov r64, qword ptr [m]   (REX.W 8b)
 * With an index (the arena's PROBE_MEM32, emit_ldx_index), 1 and 2 use `movzx r32` without
 * REX.W but with a REX always (add_3mod(0x40, …)), as the kernel does there; both forms
 * zero-extend to 64 bits.
 */
export function emitLdx(buf: CodeBuffer, size: MemSize, dst: Reg, m: Mem): void {
  switch (size) {
    case 1: opRM(buf, m.index === undefined, 0x0fb6, reg(dst), m, true); break;
    case 2: opRM(buf, m.index === undefined, 0x0fb7, reg(dst), m, true); break;
    case 4: opRM(buf, false, 0x8b, reg(dst), m); break;
    case 8: opRM(buf, true, 0x8b, reg(dst), m); break;
    default: throw new EncodeError('EINVAL', `load size ${String(size)}`);
  }
}

/**
 * The kernel's emit_ldsx(): `dst = *(s8/s16/s32 *)m`, sign-extended to 64 bits:
 *   1: movsx r64, byte ptr [m] (REX.W 0f be)   2: movsx r64, word ptr [m] (REX.W 0f bf)
 *   4: movsxd r64, dword ptr [m] (REX.W 63)
 */
export function emitLdsx(buf: CodeBuffer, size: 1 | 2 | 4, dst: Reg, m: Mem): void {
  const opcode = MOVSX_OPCODE[(size * 8) as 8 | 16 | 32];
  if (opcode === undefined) throw new EncodeError('EINVAL', `sign-extending load size ${String(size)}`);
  opRM(buf, true, opcode, reg(dst), m);
}

/**
 * The kernel's emit_stx(): `*(u8/u16/u32/u64 *)m = src`:
 *   1: mov byte ptr [m], r8 (88; REX for spl/bpl/sil/dil)   2: mov word ptr [m], r16 (66 89)
 *   4: mov dword ptr [m], r32 (89)                          8: mov qword ptr [m], r64 (REX.W 89)
 */
export function emitStx(buf: CodeBuffer, size: MemSize, m: Mem, src: Reg): void {
  switch (size) {
    case 1: opRM(buf, false, 0x88, reg(src), m, needsRex8(src)); break;
    case 2: buf.emit1(0x66); opRM(buf, false, 0x89, reg(src), m); break;
    case 4: opRM(buf, false, 0x89, reg(src), m); break;
    case 8: opRM(buf, true, 0x89, reg(src), m); break;
    default: throw new EncodeError('EINVAL', `store size ${String(size)}`);
  }
}

/**
 * The kernel's BPF_ST: `*(u8/u16/u32/u64 *)m = imm`, storing the low `size` bytes of `imm` as
 * the kernel does (an 8-byte store takes the 32-bit pattern sign-extended):
 *   1: mov byte ptr [m], imm8 (c6 /0)     2: mov word ptr [m], imm16 (66 c7 /0)
 *   4: mov dword ptr [m], imm32 (c7 /0)   8: mov qword ptr [m], simm32 (REX.W c7 /0)
 */
export function emitSt(buf: CodeBuffer, size: MemSize, m: Mem, imm: number): void {
  const v = imm32(imm, 'store immediate');
  switch (size) {
    case 1: opRM(buf, false, 0xc6, 0, m); buf.emit1(v); break;
    case 2: buf.emit1(0x66); opRM(buf, false, 0xc7, 0, m); buf.emit2(v, v >> 8); break;
    case 4: opRM(buf, false, 0xc7, 0, m); buf.emitU32(v); break;
    case 8: opRM(buf, true, 0xc7, 0, m); buf.emitU32(v); break;
    default: throw new EncodeError('EINVAL', `store size ${String(size)}`);
  }
}

/** Atomic read-modify-writes on memory (the kernel's emit_atomic()). */
export type AtomicOp = 'add' | 'and' | 'or' | 'xor' | 'xadd' | 'xchg' | 'cmpxchg';

const ATOMIC_OPCODE: Readonly<Record<AtomicOp, number>> = {
  add: 0x01, and: 0x21, or: 0x09, xor: 0x31, // lock op [m], src
  xadd: 0x0fc1, // lock xadd [m], src        (BPF_ADD | BPF_FETCH)
  xchg: 0x87, //   lock xchg [m], src        (BPF_XCHG)
  cmpxchg: 0x0fb1, // lock cmpxchg [m], src  (BPF_CMPXCHG; compares with eax/rax)
};

/** `lock <op> dword/qword ptr [m], src` (f0 [REX] opcode /r). */
export function emitAtomic(buf: CodeBuffer, op: AtomicOp, size: 4 | 8, m: Mem, src: Reg): void {
  if (size !== 4 && size !== 8) throw new EncodeError('EINVAL', `atomic size ${String(size)}`);
  buf.emit1(0xf0); // lock
  opRM(buf, size === 8, ATOMIC_OPCODE[op], reg(src), m);
}

// --- arithmetic -------------------------------------------------------------------------------

/** The ALU group-1 operations with their /digit (the `81`/`83` opcode extension). */
const ALU_DIGIT = { add: 0, or: 1, and: 4, sub: 5, xor: 6, cmp: 7 } as const;
export type AluOp = keyof typeof ALU_DIGIT;

/** `op dst, src` (01 09 21 29 31 39 /r: the `op r/m, reg` forms). */
export function emitAluRR(buf: CodeBuffer, op: AluOp, bits: RegBits, dst: Reg, src: Reg): void {
  opRR(buf, bits === 64, (ALU_DIGIT[op] << 3) | 0x01, reg(src), dst);
}

/**
 * `op dst, imm` as the kernel chooses: `83 /op ib` when imm fits in s8; else for add/sub/and/
 * or/xor on eax/rax the short form (`05 2d 25 0d 35 id`); else `81 /op id`. For 64 bits the
 * 32-bit pattern is sign-extended.
 */
export function emitAluRI(buf: CodeBuffer, op: AluOp, bits: RegBits, dst: Reg, imm: number): void {
  const v = imm32(imm, `${op} immediate`);
  if (isImm8(v)) {
    opRR(buf, bits === 64, 0x83, ALU_DIGIT[op], dst);
    buf.emit1(v);
  } else if (dst === RAX && op !== 'cmp') {
    emitRex(buf, bits === 64, 0, 0, 0);
    buf.emit1((ALU_DIGIT[op] << 3) | 0x05);
    buf.emitU32(v);
  } else {
    emitAluRImm32(buf, op, bits, dst, v);
  }
}

/** `op dst, imm32` always as `81 /op id` (fixed size: the prologue's `sub rsp, stack_depth`). */
export function emitAluRImm32(buf: CodeBuffer, op: AluOp, bits: RegBits, dst: Reg, imm: number): void {
  opRR(buf, bits === 64, 0x81, ALU_DIGIT[op], dst);
  buf.emitU32(imm);
}

/** `op dword/qword ptr [m], src` (01 09 21 29 31 39 /r), e.g. the tail call's `cmp [rsi+16], edx`. */
export function emitAluMR(buf: CodeBuffer, op: AluOp, bits: RegBits, m: Mem, src: Reg): void {
  opRM(buf, bits === 64, (ALU_DIGIT[op] << 3) | 0x01, reg(src), m);
}

/** `op dword/qword ptr [m], imm`: `83 /op ib` when imm fits in s8, else `81 /op id`. */
export function emitAluMI(buf: CodeBuffer, op: AluOp, bits: RegBits, m: Mem, imm: number): void {
  const v = imm32(imm, `${op} immediate`);
  opRM(buf, bits === 64, isImm8(v) ? 0x83 : 0x81, ALU_DIGIT[op], m);
  if (isImm8(v)) buf.emit1(v);
  else buf.emitU32(v);
}

/** `test dst, src` (85 /r). */
export function emitTestRR(buf: CodeBuffer, bits: RegBits, dst: Reg, src: Reg): void {
  opRR(buf, bits === 64, 0x85, reg(src), dst);
}

/** `test dst, imm32` (f7 /0 id; the kernel never uses the eax/rax short form a9). */
export function emitTestRI(buf: CodeBuffer, bits: RegBits, dst: Reg, imm: number): void {
  opRR(buf, bits === 64, 0xf7, 0, dst);
  buf.emitU32(imm);
}

/** `imul dst, src` (0f af /r). */
export function emitImulRR(buf: CodeBuffer, bits: RegBits, dst: Reg, src: Reg): void {
  opRR(buf, bits === 64, 0x0faf, reg(dst), src);
}

/** `imul dst, src, imm` (6b /r ib when imm fits in s8, else 69 /r id); the kernel uses dst == src. */
export function emitImulRRI(buf: CodeBuffer, bits: RegBits, dst: Reg, src: Reg, imm: number): void {
  const v = imm32(imm, 'imul immediate');
  opRR(buf, bits === 64, isImm8(v) ? 0x6b : 0x69, reg(dst), src);
  if (isImm8(v)) buf.emit1(v);
  else buf.emitU32(v);
}

/** The f7 group: not /2, neg /3, mul /4, div /6, idiv /7 (one register operand). */
function groupF7(buf: CodeBuffer, digit: number, bits: RegBits, r: Reg): void {
  opRR(buf, bits === 64, 0xf7, digit, r);
}

/** `neg r` (f7 /3). */
export const emitNeg = (buf: CodeBuffer, bits: RegBits, r: Reg): void => groupF7(buf, 3, bits, r);
/** `not r` (f7 /2). */
export const emitNot = (buf: CodeBuffer, bits: RegBits, r: Reg): void => groupF7(buf, 2, bits, r);
/** `mul src` (f7 /4): rdx:rax = rax * src, unsigned. */
export const emitMul = (buf: CodeBuffer, bits: RegBits, src: Reg): void => groupF7(buf, 4, bits, src);
/** `div src` (f7 /6): rax = rdx:rax / src, rdx = remainder, unsigned. */
export const emitDiv = (buf: CodeBuffer, bits: RegBits, src: Reg): void => groupF7(buf, 6, bits, src);
/** `idiv src` (f7 /7): as div, signed; set rdx with cqo/cdq first. */
export const emitIdiv = (buf: CodeBuffer, bits: RegBits, src: Reg): void => groupF7(buf, 7, bits, src);

/** `cqo` (48 99): rdx = sign of rax. */
export function emitCqo(buf: CodeBuffer): void {
  buf.emit2(0x48, 0x99);
}

/** `cdq` (99): edx = sign of eax. */
export function emitCdq(buf: CodeBuffer): void {
  buf.emit1(0x99);
}

/** Shifts and rotates with their /digit (the kernel's simple_alu_opcodes[] LSH/RSH/ARSH: e0 e8 f8). */
const SHIFT_DIGIT = { rol: 0, ror: 1, shl: 4, shr: 5, sar: 7 } as const;
export type ShiftOp = keyof typeof SHIFT_DIGIT;

/**
 * `op r, imm8`: `d1 /op` for a count of 1 (as the kernel), else `c1 /op ib`. 16 bits adds the
 * 66 prefix: BPF_END's `ror ax, 8` (66 c1 c8 08) swaps the two low bytes.
 */
export function emitShiftRI(buf: CodeBuffer, op: ShiftOp, bits: 16 | RegBits, r: Reg, count: number): void {
  u8(count, 'shift count');
  if (bits === 16) buf.emit1(0x66);
  opRR(buf, bits === 64, count === 1 ? 0xd1 : 0xc1, SHIFT_DIGIT[op], r);
  if (count !== 1) buf.emit1(count);
}

/** `op r, cl` (d3 /op). */
export function emitShiftRCl(buf: CodeBuffer, op: ShiftOp, bits: 16 | RegBits, r: Reg): void {
  if (bits === 16) buf.emit1(0x66);
  opRR(buf, bits === 64, 0xd3, SHIFT_DIGIT[op], r);
}

// --- stack and control flow -------------------------------------------------------------------

/** `push r64` (50+r, REX.B for r8..r15). */
export function emitPush(buf: CodeBuffer, r: Reg): void {
  opPlusReg(buf, false, 0x50, r);
}

/** `push imm`: 6a ib when imm fits in s8 (v5.5's `push 0` for tail_call_cnt), else 68 id; sign-extended to 64 bits. */
export function emitPushImm(buf: CodeBuffer, imm: number): void {
  const v = imm32(imm, 'push immediate');
  if (isImm8(v)) buf.emit2(0x6a, v);
  else {
    buf.emit1(0x68);
    buf.emitU32(v);
  }
}

/** `pop r64` (58+r, REX.B for r8..r15). */
export function emitPop(buf: CodeBuffer, r: Reg): void {
  opPlusReg(buf, false, 0x58, r);
}

/**
 * Branches with a displacement take `rel`, counted from the end of the instruction (the kernel's
 * jmp_offset), and return the position of their displacement field for
 * {@link CodeBuffer.patchRel8} / {@link CodeBuffer.patchRel32}.
 */
function rel32Branch(buf: CodeBuffer, rel: number): number {
  const field = buf.length;
  buf.emitU32(s32(rel, 'rel32'));
  return field;
}

function rel8Branch(buf: CodeBuffer, rel: number): number {
  if (!isImm8(rel)) throw new EncodeError('ERANGE', `rel8 ${rel}`);
  const field = buf.length;
  buf.emit1(rel);
  return field;
}

/** `call rel32` (e8 cd). */
export function emitCallRel32(buf: CodeBuffer, rel: number): number {
  buf.emit1(0xe8);
  return rel32Branch(buf, rel);
}

/** `jmp rel32` (e9 cd). */
export function emitJmpRel32(buf: CodeBuffer, rel: number): number {
  buf.emit1(0xe9);
  return rel32Branch(buf, rel);
}

/** `jmp rel8` (eb cb). */
export function emitJmpRel8(buf: CodeBuffer, rel: number): number {
  buf.emit1(0xeb);
  return rel8Branch(buf, rel);
}

/** `jcc rel32` (0f 80+cc cd). */
export function emitJccRel32(buf: CodeBuffer, cond: Cond, rel: number): number {
  buf.emit2(0x0f, 0x80 | X86_CC[cond]);
  return rel32Branch(buf, rel);
}

/** `jcc rel8` (70+cc cb). */
export function emitJccRel8(buf: CodeBuffer, cond: Cond, rel: number): number {
  buf.emit1(0x70 | X86_CC[cond]);
  return rel8Branch(buf, rel);
}

/** Size of `call/jmp rel32` and of the 5-byte nop they replace (the kernel's X86_PATCH_SIZE). */
export const X86_PATCH_SIZE = 5;

function relTo(target: bigint, end: bigint): number {
  const rel = target - end;
  if (!isSimm32(rel)) throw new EncodeError('ERANGE', `target 0x${BigInt.asUintN(64, target).toString(16)} is out of rel32 range`);
  return Number(rel);
}

/** The kernel's emit_call(): `call target` from an instruction at guest address `ip`. */
export function emitCall(buf: CodeBuffer, target: bigint, ip: bigint): void {
  emitCallRel32(buf, relTo(target, ip + BigInt(X86_PATCH_SIZE)));
}

/** The kernel's emit_jump(): `jmp target` (rel32) from an instruction at guest address `ip`. */
export function emitJump(buf: CodeBuffer, target: bigint, ip: bigint): void {
  emitJmpRel32(buf, relTo(target, ip + BigInt(X86_PATCH_SIZE)));
}

/** The kernel's emit_cond_near_jump(): `jcc target` (rel32) from an instruction at `ip`. */
export function emitCondNearJump(buf: CodeBuffer, cond: Cond, target: bigint, ip: bigint): void {
  emitJccRel32(buf, cond, relTo(target, ip + 6n));
}

/** `call r64` (ff /2). */
export function emitCallReg(buf: CodeBuffer, r: Reg): void {
  opRR(buf, false, 0xff, 2, r);
}

/** `jmp r64` (ff /4). */
export function emitJmpReg(buf: CodeBuffer, r: Reg): void {
  opRR(buf, false, 0xff, 4, r);
}

/** `ret` (c3). */
export function emitRet(buf: CodeBuffer): void {
  buf.emit1(0xc3);
}

/** `leave` (c9): mov rsp, rbp; pop rbp. */
export function emitLeave(buf: CodeBuffer): void {
  buf.emit1(0xc9);
}

/** `int3` (cc): also the kernel's filler for JIT holes (jit_fill_hole). */
export function emitInt3(buf: CodeBuffer): void {
  buf.emit1(0xcc);
}

/** `lfence` (0f ae e8): BPF_ST | BPF_NOSPEC's speculation barrier. */
export function emitLfence(buf: CodeBuffer): void {
  buf.emit3(0x0f, 0xae, 0xe8);
}

/**
 * The kernel's x86_nops[1..8] for 64-bit (arch/x86/include/asm/nops.h, BYTES_NOP1..8):
 * nop; xchg ax,ax; nop dword [rax]; nop dword [rax+0]; nop dword [rax+rax+0]; its 66 form;
 * nop dword [rax+disp32 0]; nop dword [rax+rax+disp32 0].
 */
export const X86_NOPS: readonly (readonly number[])[] = [
  [],
  [0x90],
  [0x66, 0x90],
  [0x0f, 0x1f, 0x00],
  [0x0f, 0x1f, 0x40, 0x00],
  [0x0f, 0x1f, 0x44, 0x00, 0x00],
  [0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00],
  [0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00],
  [0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00],
];
/** The longest single nop (the kernel's ASM_NOP_MAX). */
export const ASM_NOP_MAX = 8;

/** `nop dword ptr [rax+rax*1+0x0]` (0f 1f 44 00 00): the ftrace/JIT-entry patch site. */
export function emitNop5(buf: CodeBuffer): void {
  buf.emitBytes(X86_NOPS[5]!);
}

/** The kernel's emit_nops(): `len` bytes of nops, at most ASM_NOP_MAX per instruction. */
export function emitNops(buf: CodeBuffer, len: number): void {
  if (!Number.isInteger(len) || len < 0) throw new EncodeError('ERANGE', `nop length ${len}`);
  for (let left = len; left > 0; left -= Math.min(left, ASM_NOP_MAX)) {
    buf.emitBytes(X86_NOPS[Math.min(left, ASM_NOP_MAX)]!);
  }
}
