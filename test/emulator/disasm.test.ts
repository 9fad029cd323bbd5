/**
 * @fileoverview emulator/capstone.ts: byte ↔ text cases at kernel addresses, the objdump-like line
 * format, and objdump itself as the oracle over gcc output (at 0 and linked at a kernel address).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BAD_MNEMONIC, branchTarget, formatInsn, loadDisassembler, ripTarget,
  type Disassembler, type Insn, type Syntax,
} from '../../emulator/capstone.ts';

const KTEXT = 0xffffffff81000000n; // kernel text
const MODULES = 0xffffffffa0000000n; // module area (JIT images, trampolines)

const bytes = (hex: string): Uint8Array => Uint8Array.from(hex.split(/\s+/).filter(Boolean), (b) => parseInt(b, 16));
const hexOf = (u: Uint8Array): string => Array.from(u, (b) => b.toString(16).padStart(2, '0')).join(' ');
const textOf = (i: Insn): string => (i.opStr ? `${i.mnemonic} ${i.opStr}` : i.mnemonic);

let d: Disassembler;
beforeAll(async () => {
  d = await loadDisassembler();
});

interface Case {
  descr: string;
  hex: string;
  at?: bigint; // default KTEXT
  syntax?: Syntax;
  asm: string[]; // one entry per instruction: `mnemonic opStr`
}

const cases: Case[] = [
  { descr: 'ftrace nop (gcc -mfentry -mnop-mcount)', hex: '0f 1f 44 00 00', asm: ['nop dword ptr [rax + rax]'] },
  { descr: 'frame setup', hex: '55 48 89 e5 48 83 ec 10 53', asm: ['push rbp', 'mov rbp, rsp', 'sub rsp, 0x10', 'push rbx'] },
  { descr: 'call rel32 forward in kernel text', hex: 'e8 fb 00 00 00', asm: ['call 0xffffffff81000100'] },
  { descr: 'call rel32 from the module area back to kernel text', at: MODULES, hex: 'e8 fb ff ff e0', asm: ['call 0xffffffff81000000'] },
  { descr: 'call rel32 = 0 (unrelocated)', at: KTEXT + 0x20n, hex: 'e8 00 00 00 00', asm: ['call 0xffffffff81000025'] },
  { descr: 'jmp rel8 to itself', hex: 'eb fe', asm: ['jmp 0xffffffff81000000'] },
  { descr: 'jcc rel32', hex: '0f 84 fa 00 00 00', asm: ['je 0xffffffff81000100'] },
  { descr: 'movabs rdi, imm64', hex: '48 bf 01 02 03 04 05 06 07 88', asm: ['movabs rdi, 0x8807060504030201'] },
  { descr: 'lea rdi, [rbp-0x10]', hex: '48 8d 7d f0', asm: ['lea rdi, [rbp - 0x10]'] },
  { descr: 'store dil (REX 40)', hex: '40 88 7d f8', asm: ['mov byte ptr [rbp - 8], dil'] },
  { descr: 'store r8 (REX.WR)', hex: '4c 89 45 f0', asm: ['mov qword ptr [rbp - 0x10], r8'] },
  { descr: 'rip-relative load', hex: '48 8b 05 f0 0f 00 00', asm: ['mov rax, qword ptr [rip + 0xff0]'] },
  { descr: 'gas 10/11-byte padding nops', hex: '66 2e 0f 1f 84 00 00 00 00 00 66 66 2e 0f 1f 84 00 00 00 00 00 66 90',
    asm: ['nop word ptr cs:[rax + rax]', 'nop word ptr cs:[rax + rax]', 'nop'] },
  { descr: 'leave; ret; int3', hex: 'c9 c3 cc', asm: ['leave', 'ret', 'int3'] },
  { descr: 'AT&T: ftrace nop and call', syntax: 'att', hex: '0f 1f 44 00 00 e8 f6 00 00 00',
    asm: ['nopl (%rax, %rax)', 'callq 0xffffffff81000100'] },
  { descr: 'AT&T: store dil', syntax: 'att', hex: '40 88 7d f8', asm: ['movb %dil, -8(%rbp)'] },
  { descr: 'undecodable byte becomes (bad), decoding resumes', hex: '06 90', asm: [BAD_MNEMONIC, 'nop'] },
  { descr: 'truncated call at the end: (bad) bytes', hex: '90 e8 00 00', asm: ['nop', BAD_MNEMONIC, 'add byte ptr [rax], al'] },
];

describe('disasm cases', () => {
  it.each(cases)('$descr', ({ hex, at = KTEXT, syntax, asm }) => {
    const code = bytes(hex);
    const insns = d.disasm(code, at, syntax ? { syntax } : {});
    expect(insns.map(textOf)).toEqual(asm);
    // Addresses are unsigned and contiguous; bytes are the input's.
    let addr = at;
    for (const i of insns) {
      expect(i.address).toBe(addr);
      expect(hexOf(i.bytes)).toBe(hexOf(code.subarray(Number(addr - at), Number(addr - at) + i.size)));
      addr += BigInt(i.size);
    }
    expect(addr - at).toBe(BigInt(code.length));
  });

  it('stops after `count` instructions', () => {
    const insns = d.disasm(bytes('55 48 89 e5 48 83 ec 10 53'), KTEXT, { count: 2 });
    expect(insns.map(textOf)).toEqual(['push rbp', 'mov rbp, rsp']);
    expect(d.disasm(bytes('90 90'), KTEXT, { count: 0 })).toEqual([]);
  });

  it('wraps addresses at 2^64', () => {
    const insns = d.disasm(bytes('90 90 90'), 0xfffffffffffffffen);
    expect(insns.map((i) => i.address)).toEqual([0xfffffffffffffffen, 0xffffffffffffffffn, 0n]);
  });

  it('returns copies of the bytes, also for a Buffer', () => {
    const buf = Buffer.from([0x90, 0xc3]);
    const [nop] = d.disasm(buf, KTEXT);
    buf[0] = 0xcc;
    expect(nop!.bytes).toEqual(Uint8Array.of(0x90));
  });

  it('decodes an empty buffer to nothing', () => {
    expect(d.disasm(new Uint8Array(0), KTEXT)).toEqual([]);
  });

  it.each([
    { descr: 'negative address', at: -1n, opts: {}, msg: 'cs_disasm: address -1' },
    { descr: 'address ≥ 2^64', at: 1n << 64n, opts: {}, msg: 'not an unsigned 64-bit value' },
    { descr: 'fractional count', at: KTEXT, opts: { count: 1.5 }, msg: 'cs_disasm: count 1.5' },
  ])('rejects $descr', ({ at, opts, msg }) => {
    expect(() => d.disasm(bytes('90'), at, opts)).toThrow(RangeError);
    expect(() => d.disasm(bytes('90'), at, opts)).toThrow(msg);
  });

  it('initialises once', async () => {
    expect(await loadDisassembler()).toBe(d);
  });
});

describe('branchTarget / ripTarget', () => {
  it.each([
    { hex: 'e8 fb 00 00 00', branch: 0xffffffff81000100n, rip: undefined },
    { hex: '0f 84 fa 00 00 00', branch: 0xffffffff81000100n, rip: undefined },
    { hex: 'ff d0', branch: undefined, rip: undefined }, // call rax
    { hex: 'ff 15 fa 0f 00 00', branch: undefined, rip: 0xffffffff81001000n }, // call [rip + 0xffa]
    { hex: '48 8b 05 f0 ff ff ff', branch: undefined, rip: 0xffffffff80fffff7n }, // [rip - 0x10]
    { hex: '48 8b 05 00 00 00 00', branch: undefined, rip: 0xffffffff81000007n }, // [rip]
  ])('$hex', ({ hex, branch, rip }) => {
    for (const syntax of ['intel', 'att'] as const) {
      const [insn] = d.disasm(bytes(hex), KTEXT, { syntax });
      expect(branchTarget(insn!)).toBe(branch);
      expect(ripTarget(insn!)).toBe(rip);
    }
  });
});

describe('formatInsn', () => {
  const syms: Record<string, string> = { ffffffff81000100: 'bpf_prog_run', ffffffff81001000: 'jiffies' };
  const symbolize = (a: bigint): string | undefined => syms[a.toString(16)];
  const line = (hex: string, sym?: typeof symbolize, at = KTEXT): string => formatInsn(d.disasm(bytes(hex), at)[0]!, sym);

  it.each([
    { hex: '0f 1f 44 00 00', want: 'ffffffff81000000:\t0f 1f 44 00 00       \tnop    dword ptr [rax + rax]' },
    { hex: 'c3', want: 'ffffffff81000000:\tc3                   \tret' },
    { hex: 'e8 fb 00 00 00', want: 'ffffffff81000000:\te8 fb 00 00 00       \tcall   0xffffffff81000100' },
    { hex: 'e8 fb 00 00 00', sym: symbolize, want: 'ffffffff81000000:\te8 fb 00 00 00       \tcall   0xffffffff81000100 <bpf_prog_run>' },
    { hex: '48 8b 05 f9 0f 00 00', sym: symbolize,
      want: 'ffffffff81000000:\t48 8b 05 f9 0f 00 00 \tmov    rax, qword ptr [rip + 0xff9]  # 0xffffffff81001000 <jiffies>' },
    { hex: '48 8b 05 f9 0f 00 00',
      want: 'ffffffff81000000:\t48 8b 05 f9 0f 00 00 \tmov    rax, qword ptr [rip + 0xff9]  # 0xffffffff81001000' },
    { hex: '48 bf 01 02 03 04 05 06 07 88',
      want: 'ffffffff81000000:\t48 bf 01 02 03 04 05 06 07 88 \tmovabs rdi, 0x8807060504030201' },
    { hex: '90', at: 0x401000n, want: '401000:\t90                   \tnop' },
    { hex: '06', want: 'ffffffff81000000:\t06                   \t(bad)' },
  ])('$want', ({ hex, sym, at, want }) => {
    expect(line(hex, sym, at)).toBe(want);
  });
});

// --- objdump as the oracle --------------------------------------------------------------

/** One instruction reduced to what both tools must agree on. */
interface Norm {
  address: bigint;
  size: number;
  mnemonic: string;
  operands: string;
}

/**
 * Spelling rules between objdump's Intel syntax and capstone's, each one a known difference in
 * notation, not in meaning:
 *  1. case and blanks: `QWORD PTR [rbp-0x10]` = `qword ptr [rbp - 0x10]`;
 *  2. numbers: capstone prints values below 10 in decimal (`[rbp - 8]`): all become hex;
 *  3. `*1` scale and `+0x0` displacement are objdump-only (`[rax+rax*1+0x0]` = `[rax + rax]`);
 *  4. a negative immediate is signed in capstone (`-0x80`) and two's complement at the operand
 *     width in objdump (`0xffffffffffffff80`);
 *  5. objdump's direct branch targets are bare hex plus `<sym>`, rip-relative operands get a
 *     `# addr <sym>` comment: both dropped / given `0x`;
 *  6. `cs`/`data16` prefixes: objdump prints them before the mnemonic, capstone inside the operand
 *     (`cs:[`) or not at all; both dropped (no effect on a nop in 64-bit mode);
 *  7. `66 90`: objdump `xchg ax,ax`, capstone `nop`.
 */
const DROPPED_PREFIXES = new Set(['cs', 'ds', 'es', 'ss', 'data16']);
const DIRECT_BRANCH = /^(?:call|jmp|j[a-z]{1,4}|loop(?:n?[ez])?)$/;

function operandWidth(ops: string): number {
  const size = /\b(byte|word|dword|qword)\b/.exec(ops)?.[1];
  if (size) return { byte: 8, word: 16, dword: 32, qword: 64 }[size as 'byte' | 'word' | 'dword' | 'qword'];
  const reg = /^([a-z0-9]+)/.exec(ops)?.[1] ?? '';
  if (/^(r[a-z]x|r[sd]i|r[sb]p|r\d+|rip)$/.test(reg)) return 64;
  if (/^(e[a-z]x|e[sd]i|e[sb]p|r\d+d)$/.test(reg)) return 32;
  if (/^([a-d]x|[sd]i|[sb]p|r\d+w)$/.test(reg)) return 16;
  if (/^([a-d][lh]|[sd]il|[sb]pl|r\d+b)$/.test(reg)) return 8;
  return 64;
}

function normOperands(ops: string): string {
  let s = ops.toLowerCase().replace(/\b(?:cs|ds|es|ss):/g, ''); // rule 6
  s = s.replace(/\s+/g, ''); // rule 1
  s = s.replace(/\b(0x[0-9a-f]+|\d+)\b/g, (n) => `0x${BigInt(n).toString(16)}`); // rule 2
  s = s.replace(/\*0x1(?=[+\-\]])/g, '').replace(/[+-]0x0\]/g, ']'); // rule 3
  const width = operandWidth(s);
  // rule 4, outside brackets only (inside, a minus is a displacement sign both tools print alike)
  s = s.replace(/(^|,)-0x([0-9a-f]+)(?=,|$)/g, (_m, sep: string, h: string) =>
    `${sep}0x${BigInt.asUintN(width, -BigInt(`0x${h}`)).toString(16)}`);
  return s;
}

function splitMnemonic(words: string[]): { mnemonic: string; rest: string } {
  const prefixes: string[] = [];
  let i = 0;
  // prefix words come before the mnemonic; the operand text follows it
  while (i < words.length - 1 && /^(?:rep|repz|repnz|repe|repne|lock|bnd|notrack|data16|cs|ds|es|ss)$/.test(words[i]!)) {
    prefixes.push(words[i]!);
    i++;
  }
  const kept = prefixes.filter((p) => !DROPPED_PREFIXES.has(p)); // rule 6
  return { mnemonic: [...kept, words[i] ?? ''].join(' '), rest: words.slice(i + 1).join(' ') };
}

function normObjdump(dump: string, textEnd: bigint): Norm[] {
  const rows: { address: bigint; text: string }[] = [];
  for (const l of dump.split('\n')) {
    const m = /^\s*([0-9a-f]+):\t(.*)$/.exec(l);
    if (m) rows.push({ address: BigInt(`0x${m[1]}`), text: m[2]!.trim() });
  }
  return rows.map((r, k) => {
    const text = r.text.replace(/\s+#.*$/, '').replace(/\s*<[^>]*>/g, ''); // rule 5
    let { mnemonic, rest } = splitMnemonic(text.toLowerCase().split(/\s+/));
    if (DIRECT_BRANCH.test(mnemonic.split(' ').pop()!) && /^[0-9a-f]+$/.test(rest)) rest = `0x${rest}`; // rule 5
    if (mnemonic === 'xchg' && rest === 'ax,ax') [mnemonic, rest] = ['nop', '']; // rule 7
    const next = k + 1 < rows.length ? rows[k + 1]!.address : textEnd;
    return { address: r.address, size: Number(next - r.address), mnemonic, operands: normOperands(rest) };
  });
}

function normCapstone(insns: Insn[]): Norm[] {
  return insns.map((i) => {
    const { mnemonic } = splitMnemonic(i.mnemonic.split(' '));
    return { address: i.address, size: i.size, mnemonic, operands: normOperands(i.opStr) };
  });
}

describe('objdump agrees (gcc output)', () => {
  let dir: string;
  const run = (cmd: string, args: string[]): string => execFileSync(cmd, args, { cwd: dir, encoding: 'utf8' });

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bpfemu-disasm-'));
  });
  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Disassembles `file`'s .text with objdump and with us, and compares instruction by instruction. */
  function compare(file: string, base: bigint): { ours: Norm[]; theirs: Norm[]; raw: Insn[] } {
    run('objcopy', ['-O', 'binary', '--only-section=.text', file, `${file}.text`]);
    const text = new Uint8Array(fs.readFileSync(path.join(dir, `${file}.text`)));
    const dump = run('objdump', ['-d', '-z', '-M', 'intel', '--no-show-raw-insn', '-j', '.text', file]);
    const theirs = normObjdump(dump, base + BigInt(text.length));
    const raw = d.disasm(text, base);
    const ours = normCapstone(raw);
    expect(text.length).toBeGreaterThan(0);
    expect(ours.length).toBe(theirs.length);
    for (let k = 0; k < ours.length; k++) {
      // one at a time, so a failure names the first instruction that differs
      expect({ k, ...ours[k] }).toEqual({ k, ...theirs[k] });
    }
    return { ours, theirs, raw };
  }

  it('a C file compiled with gcc -O2 -c, at address 0', () => {
    fs.writeFileSync(path.join(dir, 'u.c'), `
      struct rec { long a; int b; char c; short d; };
      static volatile long counter;
      extern long ext(long);
      long sum(const long *p, int n) { long s = 0; for (int i = 0; i < n; i++) s += p[i]; return s; }
      int fill(struct rec *r, long v, char c) { r->a = v; r->b = (int)v * 3; r->c = c; r->d = (short)v; return r->b >> 2; }
      unsigned long mix(unsigned long a, unsigned long b) { return (a * 0x9e3779b97f4a7c15ull) ^ (b >> 7) ^ (a << 13); }
      int cmp(int a, int b) { return a < b ? -1 : a > b; }
      double fp(double a, double b) { return a * b + 1.5; }
      long callit(long x) { return ext(x + 1) + ext(x - 0x80); }
      long bump(void) { return ++counter; }
      int sw(int k) { switch (k) { case 0: return 11; case 1: return 22; case 2: return 37; case 3: return 41; case 4: return 55; default: return -1; } }
      long andm(long x) { return (x & -16) + (x | 0x7f) - (x ^ -128); }
      void zero(char *p, unsigned long n) { for (unsigned long i = 0; i < n; i++) p[i] = (char)i; }
      void add128(long *p) { *p += 128; }
    `);
    run('gcc', ['-O2', '-c', '-fno-asynchronous-unwind-tables', '-o', 'u.o', 'u.c']);
    const { ours, raw } = compare('u.o', 0n);
    // the cases the spelling rules exist for did occur
    expect(raw.some((i) => /, -0x80$/.test(i.opStr))).toBe(true); // rule 4: sub qword ptr [rdi], -0x80
    expect(raw.some((i) => i.opStr.includes('cs:['))).toBe(true); // rule 6
    expect(ours.some((i) => i.mnemonic === 'movabs')).toBe(true);
    expect(ours.some((i) => i.operands.includes('[rip]'))).toBe(true);
    expect(ours.some((i) => i.mnemonic === 'call')).toBe(true);
  });

  it('two functions linked at 0xffffffff81000000 (kernel flags, ftrace nops, call between them)', () => {
    fs.writeFileSync(path.join(dir, 'k.c'), `
      __attribute__((noinline)) long callee(long x) { return x * 3 + 1; }
      long caller(long x) { return callee(x) + callee(x ^ 0x55) - 1; }
      __attribute__((noinline, no_instrument_function)) long leaf(long x) { return x - 0x80; }
      long tail(long x) { return leaf(x + 2); }
    `);
    run('gcc', [
      '-O2', '-c', '-fno-pic', '-mcmodel=kernel', '-mno-red-zone', '-ffreestanding', '-nostdlib',
      '-fno-stack-protector', '-fno-asynchronous-unwind-tables', '-pg', '-mfentry', '-mnop-mcount',
      '-o', 'k.o', 'k.c',
    ]);
    run('ld', ['-static', '-nostdlib', '-Ttext=0xffffffff81000000', '-e', 'caller', '-o', 'k.elf', 'k.o']);
    const { ours, theirs } = compare('k.elf', KTEXT);
    expect(theirs[0]!.address).toBe(KTEXT);
    // relative calls and the tail-call jmp resolve to kernel addresses, as objdump says
    const branches = ours.filter((i) => i.mnemonic === 'call' || i.mnemonic === 'jmp');
    expect(branches.map((i) => i.mnemonic).sort()).toEqual(['call', 'call', 'jmp']);
    for (const b of branches) expect(BigInt(b.operands) >> 32n).toBe(0xffffffffn);
    // the ftrace nop opens the instrumented functions
    expect(ours[0]).toMatchObject({ mnemonic: 'nop', operands: 'dwordptr[rax+rax]', size: 5 });
  });
});
