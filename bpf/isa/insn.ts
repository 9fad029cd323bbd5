/**
 * @fileoverview struct bpf_insn: encode/decode of the 8-byte format, and which ISA row an
 * instruction is (opOf). Decoding never throws; opOf returns undefined for an instruction no
 * row describes, and validate() names its index.
 */
import {
  ISA, OP_NAMES, type OpName, type IsaRow, BPF_LD, BPF_IMM, BPF_DW, BPF_X, BPF_INSN_SIZE,
  BPF_CLASS, BPF_ALU, BPF_ALU64, BPF_MOV, BPF_DIV, BPF_MOD, BPF_OP, BPF_END, BPF_STX, BPF_ATOMIC, BPF_MODE,
} from './opcodes.ts';

export interface Insn {
  code: number;  // u8
  dst: number;   // 4 bits
  src: number;   // 4 bits
  off: number;   // s16
  imm: number;   // s32
}

export const insn = (code: number, dst = 0, src = 0, off = 0, imm = 0): Insn => ({ code, dst, src, off, imm });

export function encode(insns: readonly Insn[]): Uint8Array {
  const out = new Uint8Array(insns.length * BPF_INSN_SIZE);
  const dv = new DataView(out.buffer);
  insns.forEach((i, n) => {
    const o = n * BPF_INSN_SIZE;
    dv.setUint8(o, i.code & 0xff);
    dv.setUint8(o + 1, (i.dst & 0xf) | ((i.src & 0xf) << 4));
    dv.setInt16(o + 2, i.off, true);
    dv.setInt32(o + 4, i.imm | 0, true);
  });
  return out;
}

/** Bytes to instructions; a length that is not a multiple of 8 is an error naming it. */
export function decode(bytes: Uint8Array): Insn[] {
  if (bytes.length % BPF_INSN_SIZE !== 0) throw new RangeError(`BPF program length ${bytes.length} is not a multiple of ${BPF_INSN_SIZE}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Insn[] = [];
  for (let o = 0; o < bytes.length; o += BPF_INSN_SIZE) {
    const regs = dv.getUint8(o + 1);
    out.push({ code: dv.getUint8(o), dst: regs & 0xf, src: regs >> 4, off: dv.getInt16(o + 2, true), imm: dv.getInt32(o + 4, true) });
  }
  return out;
}

/** Rows sharing an opcode, told apart by off or imm. */
const BY_CODE = new Map<number, [OpName, IsaRow][]>();
for (const name of OP_NAMES) {
  const row: IsaRow = ISA[name];
  for (const code of row.kx ? [row.code, row.code | BPF_X] : [row.code]) {
    const l = BY_CODE.get(code) ?? [];
    l.push([name, row]);
    BY_CODE.set(code, l);
  }
}

/** Whether `off` is part of the opcode (sdiv/smod, movsx) rather than a memory/jump offset. */
const offSelects = (code: number): boolean => {
  const cls = BPF_CLASS(code);
  return (cls === BPF_ALU || cls === BPF_ALU64) && (BPF_OP(code) === BPF_DIV || BPF_OP(code) === BPF_MOD || BPF_OP(code) === BPF_MOV);
};
const immSelects = (code: number): boolean =>
  ((BPF_CLASS(code) === BPF_ALU || BPF_CLASS(code) === BPF_ALU64) && BPF_OP(code) === BPF_END) ||
  (BPF_CLASS(code) === BPF_STX && BPF_MODE(code) === BPF_ATOMIC);

/** The ISA row of an instruction, or undefined when none describes it. */
export function opOf(i: Insn): OpName | undefined {
  const rows = BY_CODE.get(i.code);
  if (!rows) return undefined;
  for (const [name, row] of rows) {
    if (offSelects(i.code) && (row.off ?? 0) !== i.off) continue;
    if (immSelects(i.code) && row.imm !== i.imm) continue;
    return name;
  }
  return undefined;
}

/** LD_IMM64 spans two slots: the second holds the upper 32 bits in imm. */
export const isLdImm64 = (i: Insn): boolean => i.code === (BPF_LD | BPF_IMM | BPF_DW);

/** The 64-bit immediate of an LD_IMM64 pair. */
export const imm64 = (lo: Insn, hi: Insn): bigint => (BigInt(hi.imm >>> 0) << 32n) | BigInt(lo.imm >>> 0);

/** The ALU64 class check used by interpreter and JIT alike. */
export const is64 = (code: number): boolean => BPF_CLASS(code) === BPF_ALU64;
export { BPF_END };
