/**
 * @fileoverview bpf/asm/assembler.ts and disassembler.ts: text ↔ exact bytes for every class
 * (expected bytes written from the uAPI encoding: code, dst | src << 4, off le16, imm le32),
 * every ISA row and alias assembled and round-tripped, the kernel's xlated text, labels,
 * errors with line/column or index, and every conformance program round-tripped.
 */
import { describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { assemble, AsmError, type AsmErrorCode } from '../../bpf/asm/assembler.ts';
import { disassemble, dumpXlated, DisasmError, type DisasmErrorCode } from '../../bpf/asm/disassembler.ts';
import { readDataFile } from '../../bpf/asm/datafile.ts';
import { ISA, OP_NAMES, ALIASES, BPF_PSEUDO_MAP_FD, type OpName, type IsaRow, type Operands } from '../../bpf/isa/opcodes.ts';
import { decode, encode, insn, opOf, type Insn } from '../../bpf/isa/insn.ts';
import { exit, ja, ldImm64, mov64Imm } from '../../bpf/isa/build.ts';

const CONFORMANCE = fileURLToPath(new URL('../../../shared/conformance/', import.meta.url));

const hexOf = (insns: readonly Insn[]): string => Array.from(encode(insns), (b) => b.toString(16).padStart(2, '0')).join(' ');
const fromHex = (hex: string): Insn[] => decode(Uint8Array.from(hex.split(/\s+/).filter(Boolean), (b) => parseInt(b, 16)));

/** asm → bytes; `canon` is the disassembler's spelling when it differs from `asm`. */
interface EncCase { asm: string; hex: string; canon?: string }

const encodings: [string, EncCase[]][] = [
  ['ALU64', [
    { asm: 'mov %r0, 1', hex: 'b7 00 00 00 01 00 00 00' },
    { asm: 'mov %r1, %r10', hex: 'bf a1 00 00 00 00 00 00' },
    { asm: 'add %r1, -8', hex: '07 01 00 00 f8 ff ff ff' },
    { asm: 'sub %r2, %r3', hex: '1f 32 00 00 00 00 00 00' },
    { asm: 'mul %r0, 7', hex: '27 00 00 00 07 00 00 00' },
    { asm: 'div %r0, %r1', hex: '3f 10 00 00 00 00 00 00' },
    { asm: 'sdiv %r0, %r1', hex: '3f 10 01 00 00 00 00 00' },
    { asm: 'sdiv %r0, -3', hex: '37 00 01 00 fd ff ff ff' },
    { asm: 'or %r0, 0x40', hex: '47 00 00 00 40 00 00 00', canon: 'or %r0, 64' },
    { asm: 'lsh %r0, 32', hex: '67 00 00 00 20 00 00 00' },
    { asm: 'arsh %r0, 1', hex: 'c7 00 00 00 01 00 00 00' },
    { asm: 'xor %r0, %r0', hex: 'af 00 00 00 00 00 00 00' },
    { asm: 'mod %r0, 10', hex: '97 00 00 00 0a 00 00 00' },
    { asm: 'neg %r0', hex: '87 00 00 00 00 00 00 00' },
    { asm: 'movsx864 %r0, %r1', hex: 'bf 10 08 00 00 00 00 00' },
    { asm: 'movsx3264 %r2, %r3', hex: 'bf 32 20 00 00 00 00 00' },
    { asm: 'mov64 %r0, 1', hex: 'b7 00 00 00 01 00 00 00', canon: 'mov %r0, 1' },
  ]],
  ['ALU', [
    { asm: 'mov32 %r0, 0xffffffff', hex: 'b4 00 00 00 ff ff ff ff', canon: 'mov32 %r0, -1' },
    { asm: 'mov32 %r0, -2147483648', hex: 'b4 00 00 00 00 00 00 80' },
    { asm: 'and32 %r0, 0xffff', hex: '54 00 00 00 ff ff 00 00', canon: 'and32 %r0, 65535' },
    { asm: 'rsh32 %r0, %r1', hex: '7c 10 00 00 00 00 00 00' },
    { asm: 'smod32 %r0, %r1', hex: '9c 10 01 00 00 00 00 00' },
    { asm: 'neg32 %r2', hex: '84 02 00 00 00 00 00 00' },
    { asm: 'movsx1632 %r0, %r1', hex: 'bc 10 10 00 00 00 00 00' },
  ]],
  ['END', [
    { asm: 'be16 %r0', hex: 'dc 00 00 00 10 00 00 00' },
    { asm: 'le64 %r1', hex: 'd4 01 00 00 40 00 00 00' },
    { asm: 'bswap64 %r2', hex: 'd7 02 00 00 40 00 00 00' },
    { asm: 'swap32 %r0', hex: 'd7 00 00 00 20 00 00 00', canon: 'bswap32 %r0' },
  ]],
  ['JMP', [
    { asm: 'jne %r0, 15, +3', hex: '55 00 03 00 0f 00 00 00' },
    { asm: 'jeq %r1, %r2, -1', hex: '1d 21 ff ff 00 00 00 00' },
    { asm: 'jset %r1, 0x80000000, +1', hex: '45 01 01 00 00 00 00 80', canon: 'jset %r1, -2147483648, +1' },
    { asm: 'ja +3', hex: '05 00 03 00 00 00 00 00' },
    { asm: 'ja -1', hex: '05 00 ff ff 00 00 00 00' },
    { asm: 'call 1', hex: '85 00 00 00 01 00 00 00' },
    { asm: 'call helper 1', hex: '85 00 00 00 01 00 00 00', canon: 'call 1' },
    { asm: 'call local +5', hex: '85 10 00 00 05 00 00 00' },
    { asm: 'call runtime 7', hex: '85 20 00 00 07 00 00 00' },
    { asm: 'call %r2', hex: '8d 02 00 00 00 00 00 00' },
    { asm: 'callx %r3', hex: '8d 03 00 00 00 00 00 00', canon: 'call %r3' },
    { asm: 'exit', hex: '95 00 00 00 00 00 00 00' },
  ]],
  ['JMP32', [
    { asm: 'jsgt32 %r1, -5, +0', hex: '66 01 00 00 fb ff ff ff' },
    { asm: 'jlt32 %r3, %r4, +7', hex: 'ae 43 07 00 00 00 00 00' },
    { asm: 'ja32 +70000', hex: '06 00 00 00 70 11 01 00' },
    { asm: 'gotol -2', hex: '06 00 00 00 fe ff ff ff', canon: 'ja32 -2' },
  ]],
  ['LD', [
    { asm: 'lddw %r0, 0x1122334455667788', hex: '18 00 00 00 88 77 66 55 00 00 00 00 44 33 22 11' },
    { asm: 'lddw %r1, -1', hex: '18 01 00 00 ff ff ff ff 00 00 00 00 ff ff ff ff', canon: 'lddw %r1, 0xffffffffffffffff' },
  ]],
  ['LDX', [
    { asm: 'ldxb %r0, [%r1]', hex: '71 10 00 00 00 00 00 00' },
    { asm: 'ldxh %r0, [%r1+2]', hex: '69 10 02 00 00 00 00 00' },
    { asm: 'ldxw %r0, [%r1+4]', hex: '61 10 04 00 00 00 00 00' },
    { asm: 'ldxdw %r0, [%r10-8]', hex: '79 a0 f8 ff 00 00 00 00' },
    { asm: 'ldxsb %r0, [%r1+1]', hex: '91 10 01 00 00 00 00 00' },
    { asm: 'ldxsh %r0, [ %r1 + 0 ]', hex: '89 10 00 00 00 00 00 00', canon: 'ldxsh %r0, [%r1]' },
    { asm: 'ldxsw %r0, [%r1-4]', hex: '81 10 fc ff 00 00 00 00' },
  ]],
  ['ST', [
    { asm: 'stb [%r10-1], 0x80', hex: '72 0a ff ff 80 00 00 00', canon: 'stb [%r10-1], 128' },
    { asm: 'sth [%r10-2], -1', hex: '6a 0a fe ff ff ff ff ff' },
    { asm: 'stw [%r1+4], 0x11223344', hex: '62 01 04 00 44 33 22 11', canon: 'stw [%r1+4], 287454020' },
    { asm: 'stdw [%r10-8], 5', hex: '7a 0a f8 ff 05 00 00 00' },
  ]],
  ['STX', [
    { asm: 'stxb [%r10-1], %r0', hex: '73 0a ff ff 00 00 00 00' },
    { asm: 'stxh [%r1+6], %r2', hex: '6b 21 06 00 00 00 00 00' },
    { asm: 'stxw [%r10-4], %r1', hex: '63 1a fc ff 00 00 00 00' },
    { asm: 'stxdw [%r10-8], %r0', hex: '7b 0a f8 ff 00 00 00 00' },
  ]],
  ['ATOMIC', [
    { asm: 'lock add [%r10-8], %r1', hex: 'db 1a f8 ff 00 00 00 00' },
    { asm: 'lock fetch add32 [%r10-4], %r1', hex: 'c3 1a fc ff 01 00 00 00' },
    { asm: 'lock or [%r10-8], %r1', hex: 'db 1a f8 ff 40 00 00 00' },
    { asm: 'lock fetch and [%r10-8], %r3', hex: 'db 3a f8 ff 51 00 00 00' },
    { asm: 'lock xor32 [%r10-4], %r1', hex: 'c3 1a fc ff a0 00 00 00' },
    { asm: 'lock xchg [%r10-8], %r1', hex: 'db 1a f8 ff e1 00 00 00' },
    { asm: 'lock cmpxchg32 [%r10-8], %r1', hex: 'c3 1a f8 ff f1 00 00 00' },
    { asm: 'lock fetch add64 [%r10-8], %r1', hex: 'db 1a f8 ff 01 00 00 00', canon: 'lock fetch add [%r10-8], %r1' },
  ]],
];

describe.each(encodings)('%s encodings', (_cls, cases) => {
  it.each(cases)('$asm', ({ asm, hex, canon }) => {
    expect(hexOf(assemble(asm))).toBe(hex);
    expect(disassemble(fromHex(hex))).toBe(`${canon ?? asm}\n`);
  });
});

/** One or more instances of each operand kind, for a row named n. */
const SAMPLES = {
  'alu': (n, row) => (row.kx ? [`${n} %r1, -5`, `${n} %r1, %r2`] : [`${n} %r1, %r2`]),
  'alu-unary': (n) => [`${n} %r3`],
  'end': (n) => [`${n} %r3`],
  'jmp': (n) => [`${n} %r1, 7, +1`, `${n} %r1, %r2, -1`],
  'ja': (n) => [`${n} +2`, `${n} -3`],
  'call': (n) => [`${n} 1`, `${n} local +1`, `${n} runtime 2`],
  'callx': (n) => [`${n} %r4`],
  'exit': (n) => [n],
  'lddw': (n) => [`${n} %r1, 0x8000000000000001`],
  'ldx': (n) => [`${n} %r1, [%r2-6]`],
  'st': (n) => [`${n} [%r10-8], 0x7f`],
  'stx': (n) => [`${n} [%r10-8], %r3`],
  'atomic': (n) => [`${n} [%r10-8], %r3`],
} satisfies Record<Operands, (n: string, row: IsaRow) => string[]>;

describe('every ISA row', () => {
  it.each(OP_NAMES)('%s assembles, decodes to its row and round-trips', (name: OpName) => {
    const row: IsaRow = ISA[name];
    for (const text of SAMPLES[row.operands](name, row)) {
      const a = assemble(text);
      expect(opOf(a[0]!), text).toBe(name);
      expect(a.length).toBe(row.operands === 'lddw' ? 2 : 1);
      const d = disassemble(a);
      expect(encode(assemble(d)), `${text} → ${d}`).toEqual(encode(a));
      expect(dumpXlated(a)).toHaveLength(1);
    }
  });

  it.each(Object.entries(ALIASES))('alias %s is %s', (alias, name) => {
    const row: IsaRow = ISA[name];
    const sample = SAMPLES[row.operands](name, row)[0]!;
    expect(encode(assemble(sample.replace(name, alias)))).toEqual(encode(assemble(sample)));
  });
});

describe('dumpXlated: kernel/bpf/disasm.c formats', () => {
  const helperName = (id: number): string | undefined => ({ 1: 'bpf_map_lookup_elem', 2: 'bpf_map_update_elem' } as Record<number, string>)[id];
  it.each([
    ['mov %r0, 1', '(b7) r0 = 1'],
    ['mov %r1, %r10', '(bf) r1 = r10'],
    ['add %r1, -8', '(07) r1 += -8'],
    ['mov32 %r0, %r1', '(bc) w0 = w1'],
    ['arsh32 %r0, 3', '(c4) w0 s>>= 3'],
    ['sdiv %r0, %r1', '(3f) r0 s/= r1'],
    ['smod32 %r0, 3', '(94) w0 s%= 3'],
    ['movsx864 %r0, %r1', '(bf) r0 = (s8)r1'],
    ['movsx1632 %r0, %r1', '(bc) w0 = (s16)w1'],
    ['neg %r0', '(87) r0 = -r0'],
    ['neg32 %r1', '(84) w1 = -w1'],
    ['be16 %r0', '(dc) r0 = be16 r0'],
    ['le32 %r0', '(d4) r0 = le32 r0'],
    ['bswap64 %r0', '(d7) r0 = bswap64 r0'],
    ['stxdw [%r10-8], %r1', '(7b) *(u64 *)(r10 -8) = r1'],
    ['ldxw %r0, [%r1+4]', '(61) r0 = *(u32 *)(r1 +4)'],
    ['ldxsb %r0, [%r1]', '(91) r0 = *(s8 *)(r1 +0)'],
    ['stb [%r10-1], 0x80', '(72) *(u8 *)(r10 -1) = 128'],
    ['sth [%r1+2], -1', '(6a) *(u16 *)(r1 +2) = -1'],
    ['lddw %r1, 0x1122334455667788', '(18) r1 = 0x1122334455667788'],
    ['call 1', '(85) call bpf_map_lookup_elem#1'],
    ['call 99', '(85) call unknown#99'],
    ['call local +5', '(85) call pc+5'],
    ['call local -3', '(85) call pc-3'],
    ['call runtime 7', '(85) call kernel-function#7'],
    ['call %r2', '(8d) callx r2'],
    ['exit', '(95) exit'],
    ['ja +2', '(05) goto pc+2'],
    ['ja32 -2', '(06) gotol pc-2'],
    ['jne %r1, 0, +2', '(55) if r1 != 0x0 goto pc+2'],
    ['jne %r1, %r2, +2', '(5d) if r1 != r2 goto pc+2'],
    ['jsgt %r1, -1, -3', '(65) if r1 s> 0xffffffff goto pc-3'],
    ['jeq32 %r1, 1, +1', '(16) if w1 == 0x1 goto pc+1'],
    ['jslt32 %r1, %r2, +0', '(ce) if w1 s< w2 goto pc+0'],
    ['lock add [%r10-8], %r1', '(db) lock *(u64 *)(r10 -8) += r1'],
    ['lock and32 [%r10-4], %r1', '(c3) lock *(u32 *)(r10 -4) &= r1'],
    ['lock fetch add [%r10-8], %r0', '(db) r0 = atomic64_fetch_add((u64 *)(r10 -8), r0)'],
    ['lock fetch xor32 [%r10-4], %r2', '(c3) r2 = atomic_fetch_xor((u32 *)(r10 -4), r2)'],
    ['lock cmpxchg [%r10-8], %r1', '(db) r0 = atomic64_cmpxchg((u64 *)(r10 -8), r0, r1)'],
    ['lock xchg [%r10-8], %r1', '(db) r1 = atomic64_xchg((u64 *)(r10 -8), r1)'],
  ])('%s → %s', (asm, text) => {
    expect(dumpXlated(assemble(asm), { helperName })).toEqual([`0: ${text}`]);
  });

  it('numbers instructions as the verifier does: an LD_IMM64 takes two indexes', () => {
    expect(dumpXlated(assemble('mov %r0, 1\nlddw %r1, 0x10\nstxdw [%r10-8], %r1\nexit'))).toEqual([
      '0: (b7) r0 = 1', '1: (18) r1 = 0x10', '3: (7b) *(u64 *)(r10 -8) = r1', '4: (95) exit',
    ]);
  });

  it('prints pseudo LD_IMM64 and odd fields the assembler syntax cannot express', () => {
    const prog = [...ldImm64(1, 5n, BPF_PSEUDO_MAP_FD), insn(0xb7, 0, 2, 0, 1)];
    expect(dumpXlated(prog)).toEqual(['0: (18) r1 = 0x5', '2: (b7) r0 = 1']);
    expect(dumpXlated(prog, { immName: (i, v) => (i.src === BPF_PSEUDO_MAP_FD ? `map[id:${v}]` : undefined) })[0]).toBe('0: (18) r1 = map[id:5]');
  });
});

describe('labels and jumps', () => {
  it('resolves labels to instruction indexes, counting LD_IMM64 as two', () => {
    const a = assemble('ja L\nlddw %r0, 1\nL: exit');
    expect(a[0]!.off).toBe(2);
    expect(assemble('L:\nmov %r0, 0\njne %r0, 0, L')[1]!.off).toBe(-2);
  });

  it('puts ja32 and local call targets in imm: callee - (pc + 1)', () => {
    const a = assemble('mov %r0, 0\nja32 t\nexit\nt:\ncall local f\nexit\nf:\nexit');
    expect(a[1]).toEqual(insn(0x06, 0, 0, 0, 1));
    expect(a[3]).toEqual(insn(0x85, 0, 1, 0, 1));
  });

  it('takes an undefined `exit` label as the first exit instruction; a defined one wins', () => {
    expect(assemble('jne %r0, 0, exit\nmov %r0, 1\nexit\nexit')[0]!.off).toBe(1);
    expect(assemble('jne %r0, 0, exit\nexit\nexit:\nexit')[0]!.off).toBe(1);
  });

  it('reads comments anywhere, blank lines, CRLF, tabs, case-insensitive mnemonics, labels before an instruction', () => {
    const a = assemble('# header\r\n\r\n\tMOV %r0, 1 # one\r\nstart: add32 %r0, -0x3#x\r\n  ja start\r\nexit');
    expect(a).toEqual([mov64Imm(0, 1), insn(0x04, 0, 0, 0, -3), ja(-2), exit()]);
  });

  it('disassembles with synthesized labels, keeping offsets that name no instruction start', () => {
    const prog = assemble('ja +1\nlddw %r0, 1\njne %r0, 0, out\nexit\nout:\ncall local +0\nexit\nja -100');
    const text = disassemble(prog, { labels: true });
    expect(text).toBe([
      'ja +1', 'lddw %r0, 0x1', 'jne %r0, 0, L5', 'exit', 'L5:', 'call local L6', 'L6:', 'exit', 'ja -100', '',
    ].join('\n'));
    expect(encode(assemble(text))).toEqual(encode(prog));
    // A jump to the end of the program gets a label after the last instruction.
    expect(disassemble(assemble('ja +1\nexit'), { labels: true })).toBe('ja L2\nexit\nL2:\n');
  });
});

interface AsmErrCase { src: string; code: AsmErrorCode; line: number; column: number; msg: string }

describe('assembler errors name line and column', () => {
  const far = `ja far\n${'exit\n'.repeat(32768)}far: exit`;
  it.each<AsmErrCase>([
    { src: 'mov %r0, 1\nmov32 %r0, %r11', code: 'UNKNOWN_REGISTER', line: 2, column: 12, msg: 'unknown register %r11' },
    { src: 'ldxw %r0, [%r12+4]', code: 'UNKNOWN_REGISTER', line: 1, column: 12, msg: 'unknown register %r12' },
    { src: '  frob %r0', code: 'UNKNOWN_MNEMONIC', line: 1, column: 3, msg: 'unknown mnemonic frob' },
    { src: 'lock frob [%r10-8], %r1', code: 'UNKNOWN_MNEMONIC', line: 1, column: 1, msg: 'unknown mnemonic lock frob' },
    { src: 'mov %r0', code: 'OPERAND_COUNT', line: 1, column: 1, msg: 'mov takes 2 operands, got 1' },
    { src: 'exit\nexit %r0', code: 'OPERAND_COUNT', line: 2, column: 1, msg: 'exit takes 0 operands, got 1' },
    { src: 'call local', code: 'OPERAND_COUNT', line: 1, column: 1, msg: 'call local takes 1 operand, got 0' },
    { src: 'mov %r0, 0\nja nowhere', code: 'UNDEFINED_LABEL', line: 2, column: 4, msg: 'undefined label nowhere' },
    { src: 'L1:\nexit\n L1:', code: 'DUPLICATE_LABEL', line: 3, column: 2, msg: 'duplicate label L1 (first defined on line 1)' },
    { src: 'ja +32768', code: 'JUMP_RANGE', line: 1, column: 4, msg: 'offset 32768 does not fit in s16' },
    { src: 'jeq %r0, 0, -32769', code: 'JUMP_RANGE', line: 1, column: 13, msg: 'offset -32769 does not fit in s16' },
    { src: far, code: 'JUMP_RANGE', line: 1, column: 4, msg: 'jump to far out of range: offset 32768 does not fit in s16' },
    { src: 'ja32 +2147483648', code: 'JUMP_RANGE', line: 1, column: 6, msg: 'does not fit in s32' },
    { src: 'mov %r0, 0x100000000', code: 'IMM_RANGE', line: 1, column: 10, msg: 'immediate 0x100000000 does not fit in 32 bits' },
    { src: 'mov32 %r0, -2147483649', code: 'IMM_RANGE', line: 1, column: 12, msg: 'does not fit in 32 bits' },
    { src: 'lddw %r0, 0x10000000000000000', code: 'IMM_RANGE', line: 1, column: 11, msg: 'does not fit in 64 bits' },
    { src: 'ldxw %r0, [%r1+32768]', code: 'OFFSET_RANGE', line: 1, column: 15, msg: 'offset +32768 does not fit in s16' },
    { src: 'ldxw %r0, %r1', code: 'EXPECTED', line: 1, column: 11, msg: 'expected a memory operand [%rN+off], got %r1' },
    { src: 'movsx864 %r0, 5', code: 'EXPECTED', line: 1, column: 15, msg: 'expected a register, got 5' },
    { src: 'mov %r0,', code: 'EXPECTED', line: 1, column: 9, msg: 'expected an operand, got nothing' },
    { src: 'ja 5', code: 'EXPECTED', line: 1, column: 4, msg: 'expected a label or a +N/-N offset, got 5' },
    { src: 'mov %r0, 12ab', code: 'BAD_NUMBER', line: 1, column: 10, msg: 'bad number 12ab' },
    { src: 'mov %r0, 1 ; x', code: 'UNEXPECTED_CHARACTER', line: 1, column: 12, msg: "unexpected character ';'" },
  ])('$code: $msg', ({ src, code, line, column, msg }) => {
    let err: unknown;
    try { assemble(src); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(AsmError);
    const e = err as AsmError;
    expect({ code: e.code, line: e.line, column: e.column }).toEqual({ code, line, column });
    expect(e.message).toMatch(new RegExp(`^line ${line}, column ${column}: `));
    expect(e.detail).toContain(msg);
  });
});

interface DisasmErrCase { descr: string; insns: Insn[]; code: DisasmErrorCode; index: number; msg: string; xlated?: boolean }

describe('disassembler errors name the instruction index', () => {
  it.each<DisasmErrCase>([
    { descr: 'unknown opcode', insns: [mov64Imm(0, 0), mov64Imm(0, 1), exit(), insn(0x8f)], code: 'UNKNOWN_OPCODE', index: 3, msg: 'insn 3: unknown opcode 0x8f', xlated: true },
    { descr: 'movsx with a K source', insns: [insn(0xb7, 0, 0, 8, 1)], code: 'UNKNOWN_OPCODE', index: 0, msg: 'insn 0: unknown opcode 0xb7 with off 8', xlated: true },
    { descr: 'byte swap of 17 bits', insns: [exit(), insn(0xd4, 0, 0, 0, 17)], code: 'UNKNOWN_OPCODE', index: 1, msg: 'insn 1: unknown opcode 0xd4 with imm 17', xlated: true },
    { descr: 'lddw without its second slot', insns: [exit(), ldImm64(0, 1n)[0]], code: 'TRUNCATED_LDDW', index: 1, msg: 'insn 1: lddw without its second slot', xlated: true },
    { descr: 'a second lddw slot with an opcode', insns: [ldImm64(0, 1n)[0], insn(0x07, 0, 0, 0, 0)], code: 'BAD_LDDW_SLOT', index: 1, msg: 'insn 1: second slot of lddw has code=7' },
    { descr: 'a field mov does not use', insns: [insn(0xb7, 0, 2, 0, 1)], code: 'NOT_EXPRESSIBLE', index: 0, msg: 'insn 0: mov with src=2 has no assembler syntax' },
    { descr: 'a pseudo LD_IMM64', insns: [exit(), ...ldImm64(1, 5n, BPF_PSEUDO_MAP_FD)], code: 'NOT_EXPRESSIBLE', index: 1, msg: 'insn 1: lddw with src=1' },
    { descr: 'exit with an imm', insns: [insn(0x95, 0, 0, 0, 1)], code: 'NOT_EXPRESSIBLE', index: 0, msg: 'exit with imm=1' },
  ])('$descr', ({ insns, code, index, msg, xlated }) => {
    const check = (f: () => unknown): void => {
      let err: unknown;
      try { f(); } catch (e) { err = e; }
      expect(err).toBeInstanceOf(DisasmError);
      expect({ code: (err as DisasmError).code, index: (err as DisasmError).index }).toEqual({ code, index });
      expect((err as DisasmError).message).toContain(msg);
    };
    check(() => disassemble(insns));
    if (xlated) check(() => dumpXlated(insns));
    else expect(() => dumpXlated(insns)).not.toThrow();
  });
});

describe('the conformance programs', () => {
  const files = readdirSync(CONFORMANCE).filter((f) => f.endsWith('.data')).sort();
  it('are all here', () => expect(files).toHaveLength(313));

  it.each(files)('%s: assemble → disassemble → assemble gives the same bytes', (f) => {
    const d = readDataFile(CONFORMANCE + f);
    const a = assemble(d.asm!);
    expect(a.length).toBeGreaterThan(0);
    expect(encode(assemble(disassemble(a)))).toEqual(encode(a));
    expect(encode(assemble(disassemble(a, { labels: true })))).toEqual(encode(a));
    expect(dumpXlated(a).length).toBeLessThanOrEqual(a.length);
  });
});
