/**
 * @fileoverview Random valid BPF programs for differential testing (interpreter vs JIT), seeded
 * and reproducible. Every program terminates (jumps go forward only), touches only memory it
 * owns — a 256-byte buffer at R1 (kept in R6) and 64 bytes of stack it zeroes first — and ends
 * by storing R0..R9 into the buffer, so comparing R0 and the buffer compares all state.
 */
import { ISA, OP_NAMES, BPF_DW, BPF_W, BPF_H, BPF_B, BPF_X, BPF_K, BPF_JMP, BPF_CALL, type OpName } from '../../bpf/isa/opcodes.ts';
import { insn, type Insn } from '../../bpf/isa/insn.ts';
import * as b from '../../bpf/isa/build.ts';

export const BUF_SIZE = 256;
const STACK_USED = 64;
const SIZES = [BPF_B, BPF_H, BPF_W, BPF_DW];
const SIZE_BYTES: Record<number, number> = { [BPF_B]: 1, [BPF_H]: 2, [BPF_W]: 4, [BPF_DW]: 8 };
/** Registers a random instruction may write (not R6, the buffer; not R10). */
const DST = [0, 1, 2, 3, 4, 5, 7, 8, 9];
const SRC = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
const INTERESTING = [0, 1, -1, 2, 7, 31, 32, 63, 64, 0x7f, 0x80, 0xff, 0x7fff, -0x8000, 0x7fffffff, -0x80000000, 0x12345678];

/** xorshift32: small, seedable, reproducible. */
export class Rng {
  private s: number;
  constructor(seed: number) { this.s = (seed >>> 0) || 0x9e3779b9; }
  next(): number { let x = this.s; x ^= x << 13; x ^= x >>> 17; x ^= x << 5; this.s = x >>> 0; return this.s; }
  int(n: number): number { return this.next() % n; }
  pick<T>(xs: readonly T[]): T { return xs[this.int(xs.length)]!; }
  imm(): number { return this.int(3) === 0 ? this.pick(INTERESTING) : this.int(2) ? (this.next() | 0) : this.int(64) - 8; }
}

const ALU_OPS = OP_NAMES.filter((n) => ISA[n].operands === 'alu' || ISA[n].operands === 'alu-unary' || ISA[n].operands === 'end');
const JMP_OPS = OP_NAMES.filter((n) => ISA[n].operands === 'jmp');
const ATOMIC_OPS = OP_NAMES.filter((n) => ISA[n].operands === 'atomic');
const LDX_OPS = OP_NAMES.filter((n) => ISA[n].operands === 'ldx');

/** A memory operand the program owns: the buffer through R6, or the zeroed stack through R10. */
function memRef(r: Rng, size: number): { base: number; off: number } {
  if (r.int(2)) return { base: 6, off: r.int(BUF_SIZE / size) * size };
  return { base: 10, off: -(1 + r.int(STACK_USED / size)) * size };
}

function randomInsn(r: Rng, remaining: number, helperId: number): Insn[] {
  const kind = r.int(20);
  if (kind < 9) {
    const name: OpName = r.pick(ALU_OPS);
    const row = ISA[name] as { code: number; off?: number; imm?: number; operands: string };
    const dst = r.pick(DST);
    if (row.operands === 'end') return [insn(row.code, dst, 0, 0, row.imm!)];
    if (row.operands === 'alu-unary') return [insn(row.code, dst)];
    if (r.int(2)) return [insn(row.code | BPF_X, dst, r.pick(SRC), row.off ?? 0, 0)];
    // movsx has no K form; the others take an immediate.
    if ((row.off ?? 0) > 1) return [insn(row.code | BPF_X, dst, r.pick(SRC), row.off!, 0)];
    return [insn(row.code | BPF_K, dst, 0, row.off ?? 0, r.imm())];
  }
  if (kind < 12 && remaining > 1) {
    const row = ISA[r.pick(JMP_OPS)];
    const off = r.int(Math.min(remaining, 12));
    return [r.int(2) ? insn(row.code | BPF_X, r.pick(SRC), r.pick(SRC), off) : insn(row.code | BPF_K, r.pick(SRC), 0, off, r.imm())];
  }
  if (kind < 14) {
    const row = ISA[r.pick(LDX_OPS)];
    const size = SIZE_BYTES[row.code & 0x18]!;
    const m = memRef(r, size);
    return [insn(row.code, r.pick(DST), m.base, m.off)];
  }
  if (kind < 16) {
    const size = r.pick(SIZES);
    const m = memRef(r, SIZE_BYTES[size]!);
    return [r.int(2) ? b.stxMem(size, m.base, r.pick(SRC), m.off) : b.stMem(size, m.base, m.off, r.imm())];
  }
  if (kind < 18) {
    const row = ISA[r.pick(ATOMIC_OPS)] as { code: number; imm: number };
    const m = memRef(r, row.code & 0x18 ? 8 : 4);
    return [insn(row.code, m.base, r.pick(DST), m.off, row.imm)];
  }
  if (kind < 19) return [...b.ldImm64(r.pick(DST), (BigInt(r.next()) << 32n) | BigInt(r.next()))];
  // A helper call clobbers R1-R5 (as in the kernel): give them fresh values after it.
  return [insn(BPF_JMP | BPF_CALL, 0, 0, 0, helperId), ...[1, 2, 3, 4, 5].map((x) => b.mov64Imm(x, r.imm()))];
}

/** A program of about `n` random instructions. */
export function randomProgram(seed: number, n: number, helperId = 1): Insn[] {
  const r = new Rng(seed);
  const out: Insn[] = [b.mov64Reg(6, 1)];
  for (let o = -STACK_USED; o < 0; o += 8) out.push(b.stMem(BPF_DW, 10, o, 0));
  for (const x of [0, 1, 2, 3, 4, 5, 7, 8, 9]) out.push(b.mov64Imm(x, r.imm()));
  const body: Insn[][] = [];
  for (let i = 0; i < n; i++) body.push(randomInsn(r, n - i, helperId));
  // Jump offsets were chosen in units of body entries: convert them to instruction counts.
  const lens = body.map((x) => x.length);
  body.forEach((chunk, i) => {
    const j = chunk[0]!;
    if (((j.code & 7) === 5 || (j.code & 7) === 6) && (j.code & 0xf0) !== 0x80 && chunk.length === 1) {
      let insns = 0;
      for (let k = i + 1; k <= i + j.off && k < lens.length; k++) insns += lens[k]!;
      j.off = insns;
    }
    out.push(...chunk);
  });
  for (let x = 0; x <= 9; x++) out.push(b.stxMem(BPF_DW, 6, x, 8 * x));
  out.push(b.exit());
  return out;
}

