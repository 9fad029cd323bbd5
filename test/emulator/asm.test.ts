/**
 * @fileoverview emulator/keystone.ts: asm text → bytes at kernel addresses, the workarounds for
 * Keystone's quirks (fixed nop sequences, radix 16, unchecked branch ranges, unbalanced brackets,
 * long input), errors naming the line, and a round trip through capstone.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { loadDisassembler, type Disassembler } from '../../emulator/capstone.ts';
import {
  FIXED_SEQUENCES, KS_ERR_ASM_EXPR_BRACKET, KS_ERR_ASM_FIXUP_INVALID, KS_ERR_ASM_INSN_UNSUPPORTED,
  KS_ERR_ASM_INVALIDOPERAND, KS_ERR_ASM_MNEMONICFAIL, KS_ERR_ASM_SYMBOL_MISSING, KS_ERR_ASM_SYMBOL_REDEFINED,
  KsError, loadAssembler, type Assembler, type AsmSyntax,
} from '../../emulator/keystone.ts';

const KTEXT = 0xffffffff81000000n; // kernel text
const MODULES = 0xffffffffa0000000n; // module area (JIT images, trampolines)

const hexOf = (u: Uint8Array): string => Array.from(u, (b) => b.toString(16).padStart(2, '0')).join(' ');

let a: Assembler;
let d: Disassembler;
beforeAll(async () => {
  [a, d] = await Promise.all([loadAssembler(), loadDisassembler()]);
});

interface Case {
  descr: string;
  asm: string;
  hex: string;
  at?: bigint; // default KTEXT
  syntax?: AsmSyntax;
  /** capstone's text of the bytes assembles back to the same bytes */
  roundTrip?: boolean;
}

const cases: Case[] = [
  // The ftrace nop: Keystone alone gives 0f 18 24 00 for all of these.
  { descr: 'ftrace nop, objdump spelling', asm: 'nop dword ptr [rax+rax*1+0x0]', hex: '0f 1f 44 00 00', roundTrip: true },
  { descr: 'ftrace nop, DESIGN.md spelling', asm: 'nop dword ptr [rax+rax*1+0]', hex: '0f 1f 44 00 00' },
  { descr: 'ftrace nop, capstone spelling', asm: 'NOP  DWORD PTR [rax + rax]', hex: '0f 1f 44 00 00' },
  { descr: 'ftrace nop, AT&T', syntax: 'att', asm: 'nopl 0x0(%rax,%rax,1)', hex: '0f 1f 44 00 00' },
  { descr: 'NOP3', asm: 'nop dword ptr [rax]', hex: '0f 1f 00', roundTrip: true },
  { descr: 'NOP4', asm: 'nop dword ptr [rax+0x0]', hex: '0f 1f 40 00' },
  { descr: 'NOP6', asm: 'nop word ptr [rax+rax*1+0x0]', hex: '66 0f 1f 44 00 00', roundTrip: true },
  { descr: 'NOP6, AT&T', syntax: 'att', asm: 'nopw 0x0(%rax,%rax,1)', hex: '66 0f 1f 44 00 00' },
  { descr: 'NOP7 (disp32)', asm: 'nop dword ptr [rax+0x00000000]', hex: '0f 1f 80 00 00 00 00' },
  { descr: 'NOP8 (disp32)', asm: 'nop dword ptr [rax+rax*1+0x00000000]', hex: '0f 1f 84 00 00 00 00 00' },
  { descr: 'gas 10-byte padding', asm: 'cs nop word ptr [rax+rax*1+0x0]', hex: '66 2e 0f 1f 84 00 00 00 00 00', roundTrip: true },
  { descr: 'one-byte and two-byte nops', asm: 'nop; xchg ax, ax', hex: '90 66 90' },
  { descr: 'frame setup, `;`-separated', asm: 'push rbp; mov rbp,rsp; sub rsp,0x10; push rbx', hex: '55 48 89 e5 48 83 ec 10 53', roundTrip: true },
  { descr: 'frame setup, lines and # comments', asm: '  push rbp   # save\n\n mov rbp, rsp\nsub rsp, 0x10 # locals\n push rbx\n',
    hex: '55 48 89 e5 48 83 ec 10 53' },
  { descr: 'call rel32 in kernel text', asm: 'call 0xffffffff81000100', hex: 'e8 fb 00 00 00', roundTrip: true },
  { descr: 'call rel32 from the module area back to kernel text', at: MODULES, asm: 'call 0xffffffff81000000', hex: 'e8 fb ff ff e0', roundTrip: true },
  { descr: 'call rel32 at the far end of the range', asm: 'call 0xffffffff01000005', hex: 'e8 00 00 00 80' },
  { descr: 'jmp to itself (rel8)', asm: 'jmp 0xffffffff81000000', hex: 'eb fe', roundTrip: true },
  { descr: 'jcc rel32', asm: 'je 0xffffffff81000100', hex: '0f 84 fa 00 00 00', roundTrip: true },
  { descr: 'movabs rdi, imm64', asm: 'movabs rdi, 0x8807060504030201', hex: '48 bf 01 02 03 04 05 06 07 88', roundTrip: true },
  { descr: 'lea rdi, [rbp-0x10]', asm: 'lea rdi,[rbp-0x10]', hex: '48 8d 7d f0', roundTrip: true },
  { descr: 'store dil (REX 40)', asm: 'mov byte ptr [rbp-8], dil', hex: '40 88 7d f8', roundTrip: true },
  { descr: 'store r8 (REX.WR)', asm: 'mov qword ptr [rbp-0x10], r8', hex: '4c 89 45 f0', roundTrip: true },
  { descr: 'rip-relative load', asm: 'mov rax, qword ptr [rip+0xff0]', hex: '48 8b 05 f0 0f 00 00', roundTrip: true },
  // Keystone reads bare numbers as hex: rewritten to decimal-as-written.
  { descr: 'decimal immediates', asm: 'sub rsp, 16; mov eax, 10; mov eax, 256', hex: '48 83 ec 10 b8 0a 00 00 00 b8 00 01 00 00' },
  { descr: 'decimal displacement and scale', asm: 'mov rax, qword ptr [rbx+rcx*8+24]', hex: '48 8b 44 cb 18' },
  { descr: 'decimal in AT&T', syntax: 'att', asm: 'mov $10, %eax; mov %dil, -8(%rbp); movq %r8, -16(%rbp)', hex: 'b8 0a 00 00 00 40 88 7d f8 4c 89 45 f0' },
  { descr: 'registers with digits are left alone', asm: 'mov r10, r11; movq xmm10, rax', hex: '4d 89 da 66 4c 0f 6e d0' },
  { descr: 'labels, backward', asm: 'again: dec rcx; jnz again', hex: '48 ff c9 75 fb' },
  { descr: 'labels, forward', asm: 'jmp out\nnop\nout: ret', hex: 'eb 01 90 c3' },
  { descr: 'a label on a fixed sequence', asm: 'entry: nop dword ptr [rax+rax*1+0x0]\njmp entry', hex: '0f 1f 44 00 00 eb f9' },
  { descr: 'AT&T frame setup', syntax: 'att', asm: 'push %rbp; mov %rsp,%rbp', hex: '55 48 89 e5' },
  { descr: 'user address', at: 0x401000n, asm: 'call 0x401100', hex: 'e8 fb 00 00 00' },
  { descr: 'empty input', asm: ' \n; ', hex: '' },
];

describe('asm cases', () => {
  it.each(cases)('$descr', ({ asm, hex, at = KTEXT, syntax }) => {
    expect(hexOf(a.asm(asm, at, syntax ? { syntax } : {}))).toBe(hex);
  });

  it.each(cases.filter((c) => c.roundTrip))('round trip through capstone: $descr', ({ hex, at = KTEXT }) => {
    const code = a.asm(cases.find((c) => c.hex === hex)!.asm, at);
    const text = d.disasm(code, at).map((i) => `${i.mnemonic} ${i.opStr}`).join('\n');
    expect(hexOf(a.asm(text, at))).toBe(hex);
  });

  it('has one entry per fixed sequence name, each spelling assembling to its bytes', () => {
    expect(new Set(FIXED_SEQUENCES.map((f) => f.name)).size).toBe(FIXED_SEQUENCES.length);
    for (const f of FIXED_SEQUENCES) {
      for (const s of f.spellings) {
        const syntax = s.includes('%') ? 'att' : 'intel';
        expect([s, hexOf(a.asm(s, KTEXT, { syntax }))]).toEqual([s, hexOf(Uint8Array.from(f.bytes))]);
        // and capstone reads the bytes back as one nop of that length
        const [insn, ...rest] = d.disasm(Uint8Array.from(f.bytes), KTEXT);
        expect([insn!.mnemonic, insn!.size, rest.length]).toEqual(['nop', f.bytes.length, 0]);
      }
    }
  });

  it('takes input larger than the WASM stack (the wrapper would trap)', () => {
    const text = Array(4000).fill('mov rax, qword ptr [rbx+0x10]').join('\n'); // ~120 KB
    const code = a.asm(text, KTEXT);
    expect(code.length).toBe(4000 * 4);
    expect(hexOf(code.subarray(0, 4))).toBe('48 8b 43 10');
    expect(hexOf(a.asm('ret', KTEXT))).toBe('c3'); // still healthy
  });

  it('initialises once', async () => {
    expect(await loadAssembler()).toBe(a);
  });
});

interface ErrCase {
  descr: string;
  asm: string;
  at?: bigint;
  syntax?: AsmSyntax;
  code: number;
  line?: number;
  statement?: string;
  msg: string; // a stable substring of the message
}

const errors: ErrCase[] = [
  { descr: 'unknown mnemonic', asm: 'nop\nbogus rax', code: KS_ERR_ASM_MNEMONICFAIL, line: 2, statement: 'bogus rax', msg: 'Invalid mnemonic' },
  { descr: 'bad operands, third statement on a line', asm: 'nop; nop; mov rax, rbx, rcx', code: KS_ERR_ASM_INVALIDOPERAND, line: 1,
    statement: 'mov rax, rbx, rcx', msg: 'Invalid operand' },
  { descr: 'nopl is no Intel mnemonic', asm: 'nopl', code: KS_ERR_ASM_MNEMONICFAIL, line: 1, msg: 'KS_ERR_ASM_MNEMONICFAIL' },
  // Keystone accepts these silently with wrong bytes; caught here.
  { descr: 'unclosed bracket', asm: 'mov rax, [', code: KS_ERR_ASM_EXPR_BRACKET, line: 1, msg: 'unbalanced brackets' },
  { descr: 'unclosed bracket, second line', asm: 'nop\nlea rdi, [rbp-0x10', code: KS_ERR_ASM_EXPR_BRACKET, line: 2, msg: 'unbalanced' },
  { descr: 'nop with a register', asm: 'nop eax', code: KS_ERR_ASM_INSN_UNSUPPORTED, line: 1, msg: 'mis-encodes nop' },
  { descr: 'nop with another memory operand', asm: 'nop dword ptr [rbx]', code: KS_ERR_ASM_INSN_UNSUPPORTED, line: 1, msg: 'known forms' },
  { descr: 'nopl with another memory operand (AT&T)', syntax: 'att', asm: 'nopl 8(%rbx)', code: KS_ERR_ASM_INSN_UNSUPPORTED, line: 1, msg: 'mis-encodes nop' },
  { descr: 'jcc beyond rel32 (Keystone truncates it)', asm: 'je 0x7fffffff', code: KS_ERR_ASM_FIXUP_INVALID, line: 1,
    msg: 'branch target 0x7fffffff is out of rel32 range of 0xffffffff81000000' },
  { descr: 'jmp one byte beyond rel32', at: 0n, asm: 'jmp 0x80000005', code: KS_ERR_ASM_FIXUP_INVALID, line: 1, msg: 'out of rel32 range' },
  { descr: 'jrcxz beyond rel8 (Keystone truncates it)', asm: 'nop\njrcxz 0xffffffff81000100', code: KS_ERR_ASM_FIXUP_INVALID, line: 2, msg: 'out of rel8 range' },
  { descr: 'call beyond rel32 (Keystone refuses this one)', asm: 'call 0x100000000', code: KS_ERR_ASM_FIXUP_INVALID, line: 1, msg: 'Invalid fixup' },
  { descr: 'undefined label', asm: 'jmp done\nnop\njmp nowhere\ndone: ret', code: KS_ERR_ASM_SYMBOL_MISSING, line: 3,
    statement: 'jmp nowhere', msg: 'Cannot find a symbol' },
  { descr: 'label defined twice', asm: 'x: nop\nx: nop', code: KS_ERR_ASM_SYMBOL_REDEFINED, line: 2, msg: 'label x defined twice' },
];

describe('asm errors', () => {
  it.each(errors)('$descr', ({ asm, at = KTEXT, syntax, code, line, statement, msg }) => {
    let err: unknown;
    try {
      a.asm(asm, at, syntax ? { syntax } : {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KsError);
    const e = err as KsError;
    expect({ call: e.call, code: e.code, line: e.line }).toEqual({ call: 'ks_asm', code, line });
    if (statement !== undefined) expect(e.statement).toBe(statement);
    expect(e.message).toContain(msg);
    expect(e.message).toMatch(/^ks_asm: line \d+ ".*": /);
  });

  it('rejects addresses outside u64', () => {
    expect(() => a.asm('nop', -1n)).toThrow(RangeError);
    expect(() => a.asm('nop', 1n << 64n)).toThrow('ks_asm: address');
  });

  it('is still usable after errors', () => {
    expect(() => a.asm('bogus', KTEXT)).toThrow(KsError);
    expect(hexOf(a.asm('int3', KTEXT))).toBe('cc');
  });
});
