/**
 * @fileoverview The BPF interpreter: per-op case tables (K and X forms, 32/64-bit) with
 * hand-computed results, a BigInt reference model over edge and random operands, memory
 * (loads, stores, sign extension, faults, straddles, executable aliases), atomics, helpers,
 * bpf-to-bpf frames, LD_IMM64 pseudo forms and the instruction budget. A bare Machine provides
 * guest memory: a stack region, a data page and a read-only page.
 */
import { describe, it, expect, beforeAll, afterAll, beforeEach } from 'vitest';
import { Machine } from '../../emulator/machine.ts';
import { PAGE_SIZE, PROT_R, PROT_W, PROT_X } from '../../emulator/memory.ts';
import {
  ISA, OP_NAMES, type IsaRow, type OpName, BPF_K, BPF_X, BPF_B, BPF_H, BPF_W, BPF_DW, BPF_ADD, BPF_OR, BPF_AND,
  BPF_XOR, BPF_XCHG, BPF_CMPXCHG, BPF_FETCH, BPF_JMP, BPF_CALL, BPF_PSEUDO_KFUNC_CALL, BPF_PSEUDO_MAP_FD,
  BPF_PSEUDO_MAP_VALUE, MAX_BPF_STACK, MAX_CALL_FRAMES, BPF_SUB, BPF_JNE,
} from '../../bpf/isa/opcodes.ts';
import { insn, opOf, type Insn } from '../../bpf/isa/insn.ts';
import {
  alu64Imm, alu64Reg, atomicOp, callHelper, callLocal, exit, ja, jmpImm, ldImm64, ldxMem, mov64Imm, mov64Reg,
  stMem, stxMem,
} from '../../bpf/isa/build.ts';
import {
  BpfRuntimeError, HANDLERS, bpfInterpret, bpfRun, stackRegion, type BpfHelper, type InterpEnv, type InterpStack,
} from '../../bpf/interp/interpreter.ts';

const STACK = 0xffff888000100000n, STACK_SIZE = 0x10000;
const DATA = 0xffffc90000000000n;   // rw-, one page
const RODATA = 0xffffc90000010000n; // r--, one page
const CALL_STACK = 0xffff888000200000n; // for Machine.call()
const U64 = (1n << 64n) - 1n;
const u64 = (v: bigint): bigint => BigInt.asUintN(64, v);
const s64 = (v: bigint): bigint => BigInt.asIntN(64, v);
const u32 = (v: bigint): bigint => BigInt.asUintN(32, v);
const s32 = (v: bigint): bigint => BigInt.asIntN(32, v);

let m: Machine;
let env: InterpEnv;
beforeAll(() => {
  m = new Machine({ stackTop: CALL_STACK + 0x4000n });
  m.mem.map(CALL_STACK, 0x4000, PROT_R | PROT_W, { name: 'call stack' });
  m.mem.map(STACK, STACK_SIZE, PROT_R | PROT_W, { name: 'bpf stack' });
  m.mem.map(DATA, PAGE_SIZE, PROT_R | PROT_W, { name: 'data' });
  m.mem.map(RODATA, PAGE_SIZE, PROT_R, { name: 'rodata' });
  env = { mem: m.mem, stack: stackRegion(STACK, STACK_SIZE) };
});
afterAll(() => m.close());
beforeEach(() => m.mem.view(DATA, PAGE_SIZE).fill(0));

const prog = (...parts: (Insn | Insn[])[]): Insn[] => parts.flat();
const run = (insns: Insn[], args: bigint[] = [], extra: Partial<InterpEnv> = {}) => bpfRun({ insns }, args, { ...env, ...extra });
const r0 = (insns: Insn[], args: bigint[] = [], extra: Partial<InterpEnv> = {}): bigint => run(insns, args, extra).r0;
/** The error a run throws (fails the test when it does not throw one). */
const failure = (insns: Insn[], args: bigint[] = [], extra: Partial<InterpEnv> = {}): BpfRuntimeError => {
  try { run(insns, args, extra); } catch (e) { if (e instanceof BpfRuntimeError) return e; throw e; }
  throw new Error('the run did not fail');
};

/** An instruction of ISA row `name`, K or X form, with its off/imm selectors. */
const op = (name: OpName, form: 'K' | 'X', dst: number, src: number, imm = 0): Insn => {
  const row: IsaRow = ISA[name];
  return insn(row.code | (row.kx ? (form === 'X' ? BPF_X : BPF_K) : 0), dst, form === 'X' ? src : 0, row.off ?? 0, row.imm ?? imm);
};
/** Whether b is the sign extension of an s32 immediate. */
const fitsImm = (b: bigint): boolean => u64(BigInt.asIntN(32, b)) === u64(b);
const imm32 = (b: bigint): number => Number(BigInt.asIntN(32, b));

describe('handlers', () => {
  it('every ISA row has a handler and nothing else does', () => {
    expect(Object.keys(HANDLERS).sort()).toEqual([...OP_NAMES].sort());
  });
  it('the test builder encodes each row so opOf finds it', () => {
    for (const name of OP_NAMES) {
      const row: IsaRow = ISA[name];
      if (row.operands === 'lddw' || row.operands === 'call') continue;
      expect(opOf(op(name, 'X', 1, 2)), name).toBe(name);
      if (row.kx) expect(opOf(op(name, 'K', 1, 0, 5)), name).toBe(name);
    }
  });
});

describe('ALU: hand-computed cases', () => {
  // [op, dst, src (X) or imm sign-extended (K, when it fits s32), result]
  const INT64_MIN = 1n << 63n, M1 = U64;
  const binary: [OpName, bigint, bigint, bigint][] = [
    ['add', 1n, 2n, 3n], ['add', M1, 1n, 0n], ['add', 0xffffffffn, 1n, 0x100000000n], ['add', 5n, u64(-3n), 2n],
    ['sub', 0n, 1n, M1], ['sub', 0x100000000n, 1n, 0xffffffffn], ['sub', 5n, u64(-3n), 8n],
    ['mul', 3n, 4n, 12n], ['mul', 0xffffffffn, 0xffffffffn, 0xfffffffe00000001n], ['mul', 0x123456789n, M1, 0xfffffffedcba9877n],
    ['mul', 0x100000001n, 0x100000001n, 0x200000001n], ['mul', 0xdeadbeefcafebaben, 0x12345678n, 0x6491337804bb5d10n],
    ['div', 10n, 3n, 3n], ['div', M1, 2n, 0x7fffffffffffffffn], ['div', 0x123n, 0n, 0n], ['div', M1, u64(-10n), 1n],
    ['div', 0x100000000n, 3n, 0x55555555n],
    ['mod', 10n, 3n, 1n], ['mod', 0x123456789abcdef0n, 0n, 0x123456789abcdef0n], ['mod', M1, 0x100000000n, 0xffffffffn],
    ['sdiv', u64(-7n), 2n, u64(-3n)], ['sdiv', 7n, u64(-2n), u64(-3n)], ['sdiv', INT64_MIN, M1, INT64_MIN], ['sdiv', 7n, 0n, 0n],
    ['sdiv', u64(-0x100000000n), 3n, 0xffffffffaaaaaaabn],
    ['smod', u64(-7n), 2n, M1], ['smod', 7n, u64(-2n), 1n], ['smod', INT64_MIN, M1, 0n], ['smod', u64(-7n), 0n, u64(-7n)],
    ['smod', u64(-0x100000001n), 0x100n, M1],
    ['or', 0xf0f0000000000000n, 0x0f0fn, 0xf0f0000000000f0fn], ['and', 0xff00ff00ff00ff00n, 0xfff0n, 0xff00n],
    ['and', 0xff00ff00ff00ff00n, u64(-256n), 0xff00ff00ff00ff00n], ['xor', M1, 0x00ff00ff00ff00ffn, 0xff00ff00ff00ff00n],
    ['lsh', 1n, 63n, INT64_MIN], ['lsh', 1n, 32n, 0x100000000n], ['lsh', 0x11n, 68n, 0x110n], ['lsh', 0x5n, 0n, 0x5n],
    ['lsh', 1n, M1, INT64_MIN], ['lsh', 0x80000001n, 1n, 0x100000002n],
    ['rsh', INT64_MIN, 63n, 1n], ['rsh', M1, 32n, 0xffffffffn], ['rsh', 0x100000000n, 1n, 0x80000000n], ['rsh', 0x1234n, 64n, 0x1234n],
    ['rsh', 0x10n, u64(-60n), 1n],
    ['arsh', INT64_MIN, 63n, M1], ['arsh', u64(-16n), 2n, u64(-4n)], ['arsh', 0xfffffffe00000000n, 33n, M1],
    ['arsh', 0x7000000000000000n, 60n, 7n], ['arsh', 0x8000000100000000n, 4n, 0xf800000010000000n],
    ['mov', 0x1234n, M1, M1], ['mov', M1, 7n, 7n],
    // ALU32: operands' upper halves ignored, results zero-extended.
    ['add32', 0xffffffff00000001n, 1n, 2n], ['add32', 0xffffffffn, 1n, 0n],
    ['sub32', 0n, 1n, 0xffffffffn], ['sub32', 0x500000003n, 0x700000001n, 2n],
    ['mul32', 0x10000n, 0x10000n, 0n], ['mul32', M1, M1, 1n], ['mul32', 0x80000000n, M1, 0x80000000n],
    ['div32', 10n, 3n, 3n], ['div32', 0xffffffffn, 2n, 0x7fffffffn], ['div32', 0x123n, 0n, 0n], ['div32', 1n, 0x100000000n, 0n],
    ['div32', 0x500000006n, 3n, 2n], ['div32', 0xfffffff6n, u64(-10n), 1n],
    ['sdiv32', 0xfffffff9n, 2n, 0xfffffffdn], ['sdiv32', 0x80000000n, M1, 0x80000000n], ['sdiv32', 7n, 0n, 0n],
    ['mod32', 10n, 3n, 1n], ['mod32', 0xffffffff00000005n, 0n, 5n], ['mod32', 0xffffffffn, 0x10n, 0xfn],
    ['smod32', 0xfffffff9n, 2n, 0xffffffffn], ['smod32', 0x80000000n, M1, 0n], ['smod32', u64(-10n), 0n, 0xfffffff6n],
    ['smod32', 7n, u64(-2n), 1n],
    ['or32', 0xff00000000000001n, 2n, 3n], ['and32', M1, 0xff00ff00ff00ff00n, 0xff00ff00n], ['xor32', M1, 0xffffn, 0xffff0000n],
    ['lsh32', 1n, 31n, 0x80000000n], ['lsh32', 0x11n, 60n, 0x10000000n], ['lsh32', 0x11n, u64(-4n), 0x10000000n],
    ['lsh32', 0xffffffffn, 4n, 0xfffffff0n],
    ['rsh32', 0x80000000n, 31n, 1n], ['rsh32', 0xffffffff80000000n, 4n, 0x08000000n], ['rsh32', 0x10n, 36n, 1n],
    ['arsh32', 0x80000000n, 4n, 0xf8000000n], ['arsh32', 0xf0000000n, u64(-16n), 0xfffff000n], ['arsh32', 0x7fffffffn, 31n, 0n],
    ['mov32', 0x1234n, M1, 0xffffffffn], ['mov32', M1, 0xffffffff00000005n, 5n],
  ];
  const forms = (b: bigint, name: OpName): ('K' | 'X')[] => (name.endsWith('32') || fitsImm(b) ? ['X', 'K'] : ['X']);
  const cases = binary.flatMap(([name, a, b, want]) => forms(b, name).map((f) => [name, f, a, b, want] as const));
  it.each(cases)('%s (%s) 0x%s, 0x%s', (name, form, a, b, want) => {
    const code = form === 'X'
      ? prog(ldImm64(0, a), ldImm64(1, b), op(name, 'X', 0, 1), exit())
      : prog(ldImm64(0, a), op(name, 'K', 0, 0, imm32(b)), exit());
    expect(r0(code).toString(16)).toBe(want.toString(16));
  });

  // [op, src (dst for the in-place ops), result]
  const unary: [OpName, bigint, bigint][] = [
    ['neg', 1n, U64], ['neg', 0n, 0n], ['neg', 0x100000000n, 0xffffffff00000000n], ['neg', 1n << 63n, 1n << 63n],
    ['neg32', 1n, 0xffffffffn], ['neg32', 0x80000000n, 0x80000000n], ['neg32', 0x100000000n, 0n],
    ['movsx864', 0x80n, 0xffffffffffffff80n], ['movsx864', 0x7fn, 0x7fn], ['movsx864', 0x1234567890abcdffn, U64],
    ['movsx1664', 0x8000n, 0xffffffffffff8000n], ['movsx1664', 0xabcd1234n, 0x1234n],
    ['movsx3264', 0x80000000n, 0xffffffff80000000n], ['movsx3264', 0xffffffff7fffffffn, 0x7fffffffn],
    ['movsx832', 0xffffffff00000080n, 0xffffff80n], ['movsx1632', 0x8000n, 0xffff8000n], ['movsx1632', 0x17fffn, 0x7fffn],
    ['le16', 0x0123456789abcdefn, 0xcdefn], ['le32', 0x0123456789abcdefn, 0x89abcdefn], ['le64', 0x0123456789abcdefn, 0x0123456789abcdefn],
    ['be16', 0x0123456789abcdefn, 0xefcdn], ['be32', 0x0123456789abcdefn, 0xefcdab89n], ['be64', 0x0123456789abcdefn, 0xefcdab8967452301n],
    ['bswap16', 0x0123456789abcdefn, 0xefcdn], ['bswap32', 0x0123456789abcdefn, 0xefcdab89n],
    ['bswap64', 0x0123456789abcdefn, 0xefcdab8967452301n], ['be32', 0x80n, 0x80000000n],
  ];
  it.each(unary)('%s 0x%s', (name, a, want) => {
    const row: IsaRow = ISA[name];
    const code = name.startsWith('movsx')
      ? prog(ldImm64(0, 0xdeadbeefdeadbeefn), ldImm64(1, a), op(name, 'X', 0, 1), exit())
      : prog(ldImm64(0, a), insn(row.code, 0, 0, 0, row.imm ?? 0), exit());
    expect(r0(code).toString(16)).toBe(want.toString(16));
  });

  it('mov/add with dst = src', () => {
    expect(r0(prog(ldImm64(0, 0x80000000ffffffffn), op('add', 'X', 0, 0), exit()))).toBe(0x1fffffffen);
    expect(r0(prog(ldImm64(0, 0x80000000ffffffffn), op('mul', 'X', 0, 0), exit()))).toBe(u64(0x80000000ffffffffn ** 2n));
    expect(r0(prog(ldImm64(0, 7n), op('sub', 'X', 0, 0), exit()))).toBe(0n);
  });
});

/** The semantics in BigInt, written from the ISA document, to check the halves arithmetic. */
const REF: Partial<Record<OpName, (a: bigint, b: bigint) => bigint>> = {
  add: (a, b) => a + b, sub: (a, b) => a - b, mul: (a, b) => a * b,
  div: (a, b) => (b === 0n ? 0n : a / b), mod: (a, b) => (b === 0n ? a : a % b),
  sdiv: (a, b) => (b === 0n ? 0n : s64(a) / s64(b)), smod: (a, b) => (b === 0n ? a : s64(a) % s64(b)),
  or: (a, b) => a | b, and: (a, b) => a & b, xor: (a, b) => a ^ b, mov: (_a, b) => b,
  lsh: (a, b) => a << (b & 63n), rsh: (a, b) => a >> (b & 63n), arsh: (a, b) => s64(a) >> (b & 63n),
  add32: (a, b) => u32(a) + u32(b), sub32: (a, b) => u32(a) - u32(b), mul32: (a, b) => u32(a) * u32(b),
  div32: (a, b) => (u32(b) === 0n ? 0n : u32(a) / u32(b)), mod32: (a, b) => (u32(b) === 0n ? u32(a) : u32(a) % u32(b)),
  sdiv32: (a, b) => (u32(b) === 0n ? 0n : s32(a) / s32(b)), smod32: (a, b) => (u32(b) === 0n ? u32(a) : s32(a) % s32(b)),
  or32: (a, b) => a | b, and32: (a, b) => a & b, xor32: (a, b) => a ^ b, mov32: (_a, b) => b,
  lsh32: (a, b) => u32(a) << (b & 31n), rsh32: (a, b) => u32(a) >> (b & 31n), arsh32: (a, b) => s32(a) >> (b & 31n),
};
const JREF: Partial<Record<OpName, (a: bigint, b: bigint) => boolean>> = {
  jeq: (a, b) => a === b, jne: (a, b) => a !== b, jset: (a, b) => (a & b) !== 0n,
  jgt: (a, b) => a > b, jge: (a, b) => a >= b, jlt: (a, b) => a < b, jle: (a, b) => a <= b,
  jsgt: (a, b) => s64(a) > s64(b), jsge: (a, b) => s64(a) >= s64(b), jslt: (a, b) => s64(a) < s64(b), jsle: (a, b) => s64(a) <= s64(b),
};
for (const name of Object.keys(JREF) as OpName[]) {
  const f = JREF[name]!;
  JREF[`${name}32` as OpName] = (a, b) => (name.startsWith('js') && name !== 'jset' ? f(u64(s32(a)), u64(s32(b))) : f(u32(a), u32(b)));
}

/** Edge values, then xorshift64 randoms with random halves zeroed or set. */
function operands(count: number): bigint[] {
  const edges = [0n, 1n, 2n, 3n, 31n, 32n, 63n, 64n, U64, U64 - 1n, 0x7fffffffn, 0x80000000n, 0xffffffffn, 0x100000000n,
    0xffffffff80000000n, 0x7fffffffffffffffn, 1n << 63n, 0x8000000080000000n, u64(-10n)];
  const out = [...edges];
  let x = 0x9e3779b97f4a7c15n;
  while (out.length < count) {
    x ^= u64(x << 13n); x ^= x >> 7n; x ^= u64(x << 17n);
    const k = Number(x & 7n);
    out.push(k === 0 ? x & 0xffffffffn : k === 1 ? x | 0xffffffff00000000n : k === 2 ? x >> 33n : x);
  }
  return out;
}

describe('ALU and JMP against a BigInt reference model', () => {
  const vals = operands(48);
  const pairs = vals.flatMap((a, i) => [vals[(i * 7 + 3) % vals.length]!, vals[(i * 5 + 11) % vals.length]!, a].map((b) => [a, b] as const));

  it.each(Object.keys(REF) as OpName[])('%s, K and X forms', (name) => {
    const f = REF[name]!, is32 = name.endsWith('32');
    for (const [a, b] of pairs) {
      const want = is32 ? u32(f(a, b)) : u64(f(a, b));
      expect(r0(prog(ldImm64(0, a), ldImm64(1, b), op(name, 'X', 0, 1), exit())), `${name} ${a} ${b}`).toBe(want);
      const k = is32 ? u64(s32(b)) : u64(BigInt.asIntN(32, b));
      const wantK = is32 ? u32(f(a, k)) : u64(f(a, k));
      expect(r0(prog(ldImm64(0, a), op(name, 'K', 0, 0, imm32(b)), exit())), `${name} ${a} imm ${imm32(b)}`).toBe(wantK);
    }
  });

  it.each(Object.keys(JREF) as OpName[])('%s, K and X forms', (name) => {
    const f = JREF[name]!;
    const taken = (j: Insn, a: bigint, b: bigint): boolean =>
      r0(prog(ldImm64(1, a), ldImm64(2, b), mov64Imm(0, 0), j, exit(), mov64Imm(0, 1), exit())) === 1n;
    for (const [a, b] of pairs) {
      expect(taken(insn(ISA[name].code | BPF_X, 1, 2, 1), a, b), `${name} ${a} ${b}`).toBe(f(a, b));
      expect(taken(insn(ISA[name].code, 1, 0, 1, imm32(b)), a, 0n), `${name} ${a} imm ${imm32(b)}`).toBe(f(a, u64(BigInt.asIntN(32, b))));
    }
  });
});

describe('JMP: hand-computed cases', () => {
  const M1 = U64;
  // [op, dst, src or imm, taken]
  const cases: [OpName, bigint, bigint, boolean][] = [
    ['jeq', 5n, 5n, true], ['jeq', 0x100000005n, 5n, false], ['jeq', M1, M1, true],
    ['jgt', M1, 1n, true], ['jgt', 1n, 2n, false], ['jgt', 0x100000000n, 0xffffffffn, true], ['jge', 2n, 2n, true], ['jge', 1n, 2n, false],
    ['jlt', 1n, M1, true], ['jle', 2n, 2n, true], ['jle', 3n, 2n, false],
    ['jsgt', 1n, M1, true], ['jsgt', M1, 1n, false], ['jsgt', 0x100000000n, 0xffffffffn, true], ['jsgt', M1, u64(-2n), true],
    ['jsge', M1, M1, true], ['jsge', u64(-2n), M1, false], ['jslt', M1, 1n, true], ['jsle', M1, M1, true],
    ['jset', 0x100000000n, 0x100000000n, true], ['jset', 1n, 2n, false], ['jset', 0xffffffff00000000n, 0xffffffff80000000n, true],
    ['jne', 0x100000005n, 5n, true],
    ['jeq32', 0x100000005n, 5n, true], ['jne32', 0x100000005n, 0x200000005n, false], ['jgt32', 0xffffffffn, 1n, true],
    ['jgt32', 0x100000000n, 1n, false], ['jge32', 0x1_00000001n, 1n, true], ['jlt32', 1n, 0xffffffffn, true], ['jle32', 0x200000000n, 0n, true],
    ['jsgt32', 1n, 0xffffffffn, true], ['jsge32', 0x80000000n, 0n, false], ['jslt32', 0x80000000n, 0n, true],
    ['jsle32', 0x7fffffffn, 0x80000000n, false], ['jset32', 0x100000000n, 0x100000000n, false], ['jset32', 0x80000001n, 1n, true],
  ];
  const all = cases.flatMap(([name, a, b, t]) =>
    (name.endsWith('32') || fitsImm(b) ? (['X', 'K'] as const) : (['X'] as const)).map((f) => [name, f, a, b, t] as const));
  it.each(all)('%s (%s) 0x%s 0x%s taken=%s', (name, form, a, b, t) => {
    const j = form === 'X' ? insn(ISA[name].code | BPF_X, 1, 2, 2) : insn(ISA[name].code, 1, 0, 2, imm32(b));
    // Taken skips two instructions: r0 stays 1.
    const code = prog(ldImm64(1, a), ldImm64(2, b), mov64Imm(0, 1), j, mov64Imm(0, 0), exit(), exit());
    expect(r0(code)).toBe(t ? 1n : 0n);
  });

  it('ja uses off, ja32 uses imm; backward jumps', () => {
    expect(r0(prog(mov64Imm(0, 1), ja(1), mov64Imm(0, 2), exit()))).toBe(1n);
    const ja32 = insn(ISA.ja32.code, 0, 0, 0, 1);
    expect(r0(prog(mov64Imm(0, 1), ja32, mov64Imm(0, 2), exit()))).toBe(1n);
    // for (r1 = 10, r0 = 0; r1 != 0; r1--) r0 += r1
    expect(r0(prog(mov64Imm(1, 10), mov64Imm(0, 0), alu64Reg(BPF_ADD, 0, 1), alu64Imm(BPF_SUB, 1, 1), jmpImm(BPF_JNE, 1, 0, -3), exit())))
      .toBe(55n);
  });
});

describe('loads and stores', () => {
  beforeEach(() => m.mem.writeU64(DATA + 16n, 0x0123456789abcdefn));

  it.each([
    ['ldxb', BPF_B, 0xefn], ['ldxh', BPF_H, 0xcdefn], ['ldxw', BPF_W, 0x89abcdefn], ['ldxdw', BPF_DW, 0x0123456789abcdefn],
  ] as const)('%s zero-extends', (_n, size, want) => {
    expect(r0(prog(ldImm64(0, U64), ldxMem(size, 0, 1, 16), exit()), [DATA])).toBe(want);
    expect(r0(prog(alu64Imm(BPF_ADD, 1, 24), ldxMem(size, 0, 1, -8), exit()), [DATA])).toBe(want); // negative off
  });

  it.each([
    ['ldxsb', 0x80n, 0xffffffffffffff80n], ['ldxsb', 0x7fn, 0x7fn], ['ldxsh', 0x8001n, 0xffffffffffff8001n],
    ['ldxsw', 0x80000000n, 0xffffffff80000000n], ['ldxsw', 0x7fffffffn, 0x7fffffffn],
  ] as const)('%s of 0x%s sign-extends', (name, v, want) => {
    m.mem.writeU64(DATA, v);
    expect(r0(prog(insn(ISA[name].code, 0, 1, 0), exit()), [DATA])).toBe(want);
  });

  it('ST writes the low bytes of imm (stdw sign-extends), neighbours unchanged', () => {
    const at = (o: number): bigint => m.mem.readU64(DATA + BigInt(o));
    m.mem.writeU64(DATA, U64);
    run(prog(stMem(BPF_B, 1, 0, 0x1234), exit()), [DATA]);
    expect(at(0)).toBe(0xffffffffffffff34n);
    run(prog(stMem(BPF_H, 1, 2, -2), stMem(BPF_W, 1, 8, -2), stMem(BPF_DW, 1, 16, -2), stMem(BPF_DW, 1, 24, 0x7fffffff), exit()), [DATA]);
    expect(at(0)).toBe(0xfffffffffffeff34n);
    expect([at(8), at(16), at(24)]).toEqual([0xfffffffen, u64(-2n), 0x7fffffffn]);
  });

  it('STX writes 1/2/4/8 bytes of src', () => {
    run(prog(ldImm64(2, 0x1122334455667788n), stxMem(BPF_B, 1, 2, 0), stxMem(BPF_H, 1, 2, 8), stxMem(BPF_W, 1, 2, 32), stxMem(BPF_DW, 1, 2, 40), exit()), [DATA]);
    expect([0, 8, 32, 40].map((o) => m.mem.readU64(DATA + BigInt(o)))).toEqual([0x88n, 0x7788n, 0x55667788n, 0x1122334455667788n]);
  });

  it('an access straddling two adjacent mappings goes through both', () => {
    const A = 0xffffc90000100000n;
    m.mem.map(A, PAGE_SIZE, PROT_R | PROT_W, { name: 'lo' });
    m.mem.map(A + BigInt(PAGE_SIZE), PAGE_SIZE, PROT_R | PROT_W, { name: 'hi' });
    try {
      const edge = A + BigInt(PAGE_SIZE) - 4n;
      expect(r0(prog(ldImm64(2, 0x1122334455667788n), stxMem(BPF_DW, 1, 2, 0), ldxMem(BPF_DW, 0, 1, 0), exit()), [edge])).toBe(0x1122334455667788n);
      expect(m.mem.readU32(edge)).toBe(0x55667788);
      expect(m.mem.readU32(A + BigInt(PAGE_SIZE))).toBe(0x11223344);
      run(prog(mov64Imm(2, 1), atomicOp(BPF_DW, BPF_ADD, 1, 2, 0), exit()), [edge]);
      expect([m.mem.readU32(edge), m.mem.readU32(edge + 4n)]).toEqual([0x55667789, 0x11223344]);
    } finally {
      m.mem.unmap(A + BigInt(PAGE_SIZE));
      m.mem.unmap(A);
    }
  });

  it('a store into memory that an executable alias shows drops the translated code', () => {
    const W = 0xffffc90000200000n, X = 0xffffffffa0100000n;
    const rw = m.mem.map(W, PAGE_SIZE, PROT_R | PROT_W, { name: 'image rw' });
    m.mem.map(X, PAGE_SIZE, PROT_R | PROT_X, { name: 'image rx', region: rw.region });
    try {
      // mov eax, imm32; ret
      m.mem.write(W, Uint8Array.of(0xb8, 1, 0, 0, 0, 0xc3));
      expect(m.call(X, [])).toBe(1n);
      run(prog(stMem(BPF_W, 1, 1, 2), exit()), [W]);
      expect(m.call(X, [])).toBe(2n);
      run(prog(mov64Imm(2, 3), stxMem(BPF_W, 1, 2, 1), exit()), [W]);
      expect(m.call(X, [])).toBe(3n);
    } finally {
      m.mem.unmap(X);
      m.mem.unmap(W);
    }
  });
});

describe('atomics', () => {
  const word = (): bigint => m.mem.readU64(DATA);
  // r1 = DATA, r2 = operand; returns r0 = the fetched src (r2) after the op.
  const atomic = (size: number, imm: number, init: bigint, src: bigint, r0init = 0n) => {
    m.mem.writeU64(DATA, init);
    const got = run(prog(ldImm64(2, src), ldImm64(0, r0init), atomicOp(size, imm, 1, 2, 0), mov64Reg(3, 0), mov64Reg(0, 2), exit()), [DATA]);
    return { mem: word(), src: got.r0 };
  };
  it.each([
    // [name, size, imm, memory before, src, memory after, src after]
    ['lock add', BPF_DW, BPF_ADD, 0xffffffffn, 1n, 0x100000000n, 1n],
    ['lock fetch add', BPF_DW, BPF_ADD | BPF_FETCH, 0xffffffffn, 1n, 0x100000000n, 0xffffffffn],
    ['lock add32', BPF_W, BPF_ADD, 0x12345678ffffffffn, 2n, 0x1234567800000001n, 2n],
    ['lock fetch add32', BPF_W, BPF_ADD | BPF_FETCH, 0x12345678ffffffffn, 0xaaaaaaaa00000002n, 0x1234567800000001n, 0xffffffffn],
    ['lock or', BPF_DW, BPF_OR, 0xf0n, 0x0f00000000000000n, 0x0f000000000000f0n, 0x0f00000000000000n],
    ['lock fetch or', BPF_DW, BPF_OR | BPF_FETCH, 0xf0n, 0x0fn, 0xffn, 0xf0n],
    ['lock and', BPF_DW, BPF_AND, 0xff00ff00ff00ff00n, 0xffff0000ffff0000n, 0xff000000ff000000n, 0xffff0000ffff0000n],
    ['lock fetch and32', BPF_W, BPF_AND | BPF_FETCH, 0x11111111ffff00ffn, 0x0ff0n, 0x11111111000000f0n, 0xffff00ffn],
    ['lock xor', BPF_DW, BPF_XOR, U64, 0xffn, U64 - 0xffn, 0xffn],
    ['lock fetch xor32', BPF_W, BPF_XOR | BPF_FETCH, 0x5555555500000001n, 3n, 0x5555555500000002n, 1n],
    ['lock xchg', BPF_DW, BPF_XCHG, 0xaaaan, 0xbbbbn, 0xbbbbn, 0xaaaan],
    ['lock xchg32', BPF_W, BPF_XCHG, 0x77777777aaaaaaaan, 0x99999999bbbbbbbbn, 0x77777777bbbbbbbbn, 0xaaaaaaaan],
  ] as const)('%s', (_n, size, imm, init, src, mem, srcAfter) => {
    expect(atomic(size, imm, init, src)).toEqual({ mem, src: srcAfter });
  });

  it('cmpxchg compares R0 and returns the old value in R0 (32-bit: low half, zero-extended)', () => {
    const cmpx = (size: number, init: bigint, r0v: bigint, src: bigint) => {
      m.mem.writeU64(DATA, init);
      const r = run(prog(ldImm64(0, r0v), ldImm64(2, src), atomicOp(size, BPF_CMPXCHG, 1, 2, 0), exit()), [DATA]);
      return [r.r0, word()];
    };
    expect(cmpx(BPF_DW, 5n, 5n, 9n)).toEqual([5n, 9n]);
    expect(cmpx(BPF_DW, 5n, 0x100000005n, 9n)).toEqual([5n, 5n]);
    expect(cmpx(BPF_W, 0x1111111100000005n, 0xffffffff00000005n, 9n)).toEqual([5n, 0x1111111100000009n]);
    expect(cmpx(BPF_W, 0x1111111180000005n, 0xffffffff00000005n, 9n)).toEqual([0x80000005n, 0x1111111180000005n]);
  });
});

describe('helpers and calls', () => {
  const sum: BpfHelper = (a, b, c, d, e) => a + b + c + d + e;
  it('call imm: R0 = helper(R1..R5) as u64; R1-R5 keep their values', () => {
    const seen: bigint[][] = [];
    const helpers = new Map<number, BpfHelper>([
      [1, (...a) => { seen.push(a); return u64(sum(...a)); }],
    ]);
    const code = prog(mov64Imm(1, -1), mov64Imm(2, 2), mov64Imm(3, 3), mov64Imm(4, 4), mov64Imm(5, 5), callHelper(1),
      alu64Reg(BPF_ADD, 0, 1), exit());
    expect(r0(code, [], { helpers })).toBe(13n - 1n); // (-1+2+3+4+5) + R1 (-1, kept)
    expect(seen).toEqual([[U64, 2n, 3n, 4n, 5n]]);
  });

  it('callx calls the helper whose id is in dst; kfunc calls use env.kfuncs', () => {
    const helpers = new Map<number, BpfHelper>([[5, (r1) => r1]]);
    expect(r0(prog(mov64Imm(1, 42), mov64Imm(2, 5), insn(ISA.callx.code, 2), exit()), [], { helpers })).toBe(42n);
    const kfuncs = new Map<number, BpfHelper>([[1234, (r1) => r1 * 2n]]);
    expect(r0(prog(mov64Imm(1, 21), insn(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_KFUNC_CALL, 0, 1234), exit()), [], { kfuncs })).toBe(42n);
  });

  it('unknown helpers, and helpers that throw, name the instruction', () => {
    const e = failure(prog(mov64Imm(0, 0), callHelper(77), exit()));
    expect([e.kind, e.pc, e.op]).toEqual(['unknown-helper', 1, 'call']);
    expect(e.message).toBe('insn 1 (call): unknown helper 77');
    const boom = new Error('boom');
    const t = failure(prog(callHelper(1), exit()), [], { helpers: new Map([[1, () => { throw boom; }]]) });
    expect([t.kind, t.pc, t.cause]).toEqual(['helper', 0, boom]);
    expect(t.message).toContain('helper 1 threw: boom');
    const x = failure(prog(ldImm64(2, 0x100000005n), insn(ISA.callx.code, 2), exit()), [], { helpers: new Map([[5, () => 0n]]) });
    expect([x.kind, x.pc]).toEqual(['unknown-helper', 2]);
  });

  it('a helper may run another program (frames nest on the same stack)', () => {
    const inner = prog(alu64Imm(BPF_ADD, 1, 1), stxMem(BPF_DW, 10, 1, -8), ldxMem(BPF_DW, 0, 10, -8), exit());
    const helpers = new Map<number, BpfHelper>([[1, (r1) => bpfInterpret({ insns: inner }, r1, env)]]);
    const outer = prog(stMem(BPF_DW, 10, -8, 7), mov64Imm(1, 40), callHelper(1), ldxMem(BPF_DW, 1, 10, -8), alu64Reg(BPF_ADD, 0, 1), exit());
    expect(r0(outer, [], { helpers })).toBe(48n);
  });
});

describe('bpf-to-bpf calls', () => {
  /** A stack that records frames, to see their addresses and that each is freed. */
  const tracking = (): InterpStack & { live: bigint[]; all: bigint[] } => {
    const inner = stackRegion(STACK, STACK_SIZE);
    const s = {
      live: [] as bigint[], all: [] as bigint[],
      alloc: (n: number) => { const a = inner.alloc(n); s.live.push(a); s.all.push(a); return a; },
      free: (a: bigint) => { inner.free(a); s.live.splice(s.live.indexOf(a), 1); },
    };
    return s;
  };

  it('R1-R5 passed, R0 returned, R6-R9 preserved, each frame its own stack', () => {
    const code = prog(
      mov64Imm(6, 6), mov64Imm(7, 7), mov64Imm(8, 8), mov64Imm(9, 9),
      stMem(BPF_DW, 10, -8, 100),                       // caller's [r10-8] = 100
      mov64Imm(1, 10), mov64Imm(2, 20), mov64Reg(3, 10),
      callLocal(7),                                     // → func
      ldxMem(BPF_DW, 1, 10, -8), alu64Reg(BPF_ADD, 0, 1), // + 100, still there
      alu64Reg(BPF_ADD, 0, 6), alu64Reg(BPF_ADD, 0, 7), alu64Reg(BPF_ADD, 0, 8), alu64Reg(BPF_ADD, 0, 9), // + 30
      exit(),
      // func: r0 = r1 + r2 + (caller's fp - own fp); clobbers r6-r9 and its own [r10-8]
      mov64Reg(0, 1), alu64Reg(BPF_ADD, 0, 2), stMem(BPF_DW, 10, -8, 5), mov64Imm(6, 0), mov64Imm(7, 0), mov64Imm(8, 0), mov64Imm(9, 0),
      alu64Reg(BPF_SUB, 3, 10), alu64Reg(BPF_ADD, 0, 3), exit(),
    );
    const stack = tracking();
    expect(r0(code, [], { stack })).toBe(30n + BigInt(MAX_BPF_STACK) + 100n + 30n);
    expect(stack.all).toHaveLength(2);
    expect(stack.all[0]! - stack.all[1]!).toBe(BigInt(MAX_BPF_STACK));
    expect(stack.live).toEqual([]);
  });

  it('R10 is the top of a zeroed MAX_BPF_STACK-byte frame', () => {
    const stack = tracking();
    expect(r0(prog(mov64Reg(0, 10), exit()), [], { stack })).toBe(stack.all[0]! + BigInt(MAX_BPF_STACK));
    m.mem.view(STACK, STACK_SIZE).fill(0xaa);
    expect(r0(prog(ldxMem(BPF_DW, 0, 10, -MAX_BPF_STACK), ldxMem(BPF_DW, 1, 10, -8), alu64Reg(BPF_OR, 0, 1), exit()), [], { stack })).toBe(0n);
  });

  /** main calls f(depth), f(n) calls f(n - 1) down to f(0): depth + 2 frames; returns depth. */
  const recursion = (depth: number): Insn[] => prog(
    mov64Imm(1, depth), callLocal(1), exit(),
    // f: if (r1 == 0) return 0; r1--; return f(r1) + 1
    jmpImm(BPF_JNE, 1, 0, 2), mov64Imm(0, 0), exit(), alu64Imm(BPF_SUB, 1, 1), callLocal(-5), alu64Imm(BPF_ADD, 0, 1), exit(),
  );
  it(`${MAX_CALL_FRAMES} frames run, one more is an error at the call`, () => {
    const stack = tracking();
    expect(r0(recursion(MAX_CALL_FRAMES - 2), [], { stack })).toBe(BigInt(MAX_CALL_FRAMES - 2));
    expect(Math.max(...stack.all.map((a) => Number(stack.all[0]! - a))) / MAX_BPF_STACK).toBe(MAX_CALL_FRAMES - 1);
    const e = failure(recursion(MAX_CALL_FRAMES - 1), [], { stack });
    expect([e.kind, e.pc, e.op]).toEqual(['call-depth', 7, 'call']);
    expect(e.message).toContain('MAX_CALL_FRAMES 8');
    expect(stack.live).toEqual([]); // every frame freed on the error path too
  });
});

describe('LD_IMM64', () => {
  it('plain: the 64-bit value from both slots', () => {
    expect(r0(prog(ldImm64(0, 0xfedcba9876543210n), exit()))).toBe(0xfedcba9876543210n);
    expect(r0(prog(ldImm64(0, 0x80000000n), exit()))).toBe(0x80000000n);
  });
  it('pseudo forms go to env.resolveLdImm64 with both slots; without it, an error', () => {
    const seen: [number, number, number, number][] = [];
    const resolveLdImm64 = (i: Insn, pc: number, next: Insn): bigint => { seen.push([i.src, i.imm, next.imm, pc]); return DATA + BigInt(next.imm); };
    m.mem.writeU64(DATA + 8n, 77n);
    const code = prog(mov64Imm(0, 0), ldImm64(1, (8n << 32n) | 3n, BPF_PSEUDO_MAP_VALUE), ldxMem(BPF_DW, 0, 1, 0), exit());
    expect(r0(code, [], { resolveLdImm64 })).toBe(77n);
    expect(seen).toEqual([[BPF_PSEUDO_MAP_VALUE, 3, 8, 1]]);
    const e = failure(prog(ldImm64(1, 3n, BPF_PSEUDO_MAP_FD), exit()));
    expect([e.kind, e.pc, e.op]).toEqual(['ld-imm64', 0, 'lddw']);
  });
});

describe('runtime errors', () => {
  it('a load from unmapped memory names the instruction and the address', () => {
    const e = failure(prog(mov64Imm(0, 0), mov64Imm(1, 0x10), ldxMem(BPF_DW, 0, 1, 0), exit()));
    expect(e).toBeInstanceOf(BpfRuntimeError);
    expect([e.kind, e.pc, e.op]).toEqual(['fault', 2, 'ldxdw']);
    expect(e.message).toBe('insn 2 (ldxdw): read of 8 bytes at 0x10 faults: not mapped');
  });
  it('stores need a writable mapping, loads a readable one', () => {
    const e = failure(prog(stMem(BPF_W, 1, 4, 1), exit()), [RODATA]);
    expect(e.message).toBe(`insn 0 (stw): write of 4 bytes at 0x${(RODATA + 4n).toString(16)} faults: rodata is r--`);
    expect(r0(prog(ldxMem(BPF_W, 0, 1, 0), exit()), [RODATA])).toBe(0n);
    const a = failure(prog(mov64Imm(2, 1), atomicOp(BPF_DW, BPF_ADD, 1, 2, 0), exit()), [RODATA]);
    expect(a.message).toContain('(lock add): read-modify-write of 8 bytes');
    // One byte past the end of the data page (nothing is mapped right after it).
    expect(failure(prog(ldxMem(BPF_H, 0, 1, PAGE_SIZE - 1), exit()), [DATA]).kind).toBe('fault');
  });
  it('the instruction budget stops endless loops, naming env.maxInsns', () => {
    const e = failure(prog(mov64Imm(0, 0), ja(-1), exit()), [], { maxInsns: 1000 });
    expect([e.kind, e.pc, e.op]).toEqual(['budget', 1, 'ja']);
    expect(e.message).toContain('1000 executed (env.maxInsns)');
  });
  it('executed instructions are counted (lddw once)', () => {
    expect(run(prog(ldImm64(0, 1n), exit())).insns).toBe(2);
    expect(run(prog(mov64Imm(1, 10), alu64Imm(BPF_SUB, 1, 1), jmpImm(BPF_JNE, 1, 0, -2), exit())).insns).toBe(1 + 2 * 10 + 1);
    expect(run(prog(mov64Imm(0, 0), exit()), [], { maxInsns: 2 }).r0).toBe(0n);
  });
  it('bad instructions and jumps trap when reached, not before', () => {
    expect(r0(prog(mov64Imm(0, 1), exit(), insn(0xff)))).toBe(1n);
    const bad = failure(prog(mov64Imm(0, 1), insn(0xff), exit()));
    expect([bad.kind, bad.pc, bad.op]).toEqual(['bad-insn', 1, '0xff']);
    expect(failure(prog(ja(5), exit())).kind).toBe('bad-jump');
    expect(failure(prog(mov64Imm(0, 1))).message).toBe('insn 1 (end): fell off the end of the program');
    expect(failure(prog(ja(1), ldImm64(0, 1n), exit())).message).toContain('second slot of lddw');
  });
  it('R11 (AX, the verifier rewrites\' scratch) is a register; r12-r15 are not', () => {
    expect(r0(prog(mov64Imm(11, 5), mov64Reg(0, 11), exit()))).toBe(5n);
    const e = failure(prog(mov64Imm(0, 1), mov64Reg(0, 12), exit()));
    expect([e.kind, e.pc, e.message]).toEqual(['bad-insn', 1, 'insn 1 (mov): register r12 does not exist']);
  });
  it('a helper error leaves no frame allocated', () => {
    const frames: bigint[] = [];
    const inner = stackRegion(STACK, STACK_SIZE);
    const stack: InterpStack = { alloc: (n) => { const a = inner.alloc(n); frames.push(a); return a; }, free: (a) => { inner.free(a); frames.pop(); } };
    failure(prog(callLocal(1), exit(), callHelper(9), exit()), [], { stack });
    expect(frames).toEqual([]);
  });
});
