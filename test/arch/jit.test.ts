import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { boot, type System } from '../../index.ts';
import { x86_64, PROLOGUE_SIZE } from '../../arch/x86_64/jit.ts';
import { BpfRuntime, BpfJitFault, BpfLoadError } from '../../bpf/prog.ts';
import * as b from '../../bpf/isa/build.ts';
import { insn, type Insn } from '../../bpf/isa/insn.ts';
import { ISA, OP_NAMES, BPF_ADD, BPF_DW, BPF_W, BPF_B, BPF_JNE, BPF_JEQ, BPF_X, BPF_K, BPF_PSEUDO_CALL } from '../../bpf/isa/opcodes.ts';

let sys: System;
let rt: BpfRuntime;
beforeAll(async () => { sys = await boot(); rt = new BpfRuntime(sys.kernel, x86_64); });
afterAll(() => sys.close());

const hex = (s: string): number[] => s.trim().split(/\s+/).map((x) => parseInt(x, 16));
/** v5.5 emit_prologue with a stack depth, and the BPF_EXIT epilogue (bpf_jit_comp.c). */
const prologue = (depth: number): number[] => [
  ...hex('0f 1f 44 00 00'),            // ideal_nops[NOP_ATOMIC5]: where a trampoline attaches
  ...hex('55 48 89 e5'),               // push rbp; mov rbp, rsp
  ...hex('48 81 ec'), depth & 0xff, (depth >> 8) & 0xff, 0, 0, // sub rsp, round_up(stack_depth, 8) (always imm32)
  ...hex('53 41 55 41 56 41 57'),      // push rbx; push r13; push r14; push r15
  ...hex('6a 00'),                     // push 0 (tail_call_cnt)
];
const epilogue = hex('5b 41 5f 41 5e 41 5d 5b c9 c3'); // pop rbx; pop r15; pop r14; pop r13; pop rbx; leave; ret

describe('JIT images against the kernel x86 JIT\'s emit rules', () => {
  // Expected bodies written from arch/x86/net/bpf_jit_comp.c's rules (v5.5 unless noted).
  const cases: { name: string; prog: Insn[]; depth: number; body: string; ret: bigint }[] = [
    { name: 'r0 = 1; r0 += 2 (emit_mov_imm32 mov eax; add imm8 83 /0)', depth: 0, ret: 3n,
      prog: [b.mov64Imm(0, 1), b.alu64Imm(BPF_ADD, 0, 2), b.exit()], body: 'b8 01 00 00 00  48 83 c0 02' },
    { name: 'r0 = -1 (sign-propagating mov: 48 c7 c0)', depth: 0, ret: 0xffffffffffffffffn,
      prog: [b.mov64Imm(0, -1), b.exit()], body: '48 c7 c0 ff ff ff ff' },
    { name: 'r0 = 0 (xor eax, eax); r0 += 0x1000 (rax short form 48 05)', depth: 0, ret: 0x1000n,
      prog: [b.mov64Imm(0, 0), b.alu64Imm(BPF_ADD, 0, 0x1000), b.exit()], body: '31 c0  48 05 00 10 00 00' },
    { name: 'lddw r0, 0x1122334455667788 (movabs)', depth: 0, ret: 0x1122334455667788n,
      prog: [...b.ldImm64(0, 0x1122334455667788n), b.exit()], body: '48 b8 88 77 66 55 44 33 22 11' },
    { name: 'stack store/load through rbp (emit_stx/emit_ldx disp8)', depth: 8, ret: 0x2an,
      prog: [b.mov64Imm(1, 42), b.stxMem(BPF_DW, 10, 1, -8), b.ldxMem(BPF_DW, 0, 10, -8), b.exit()],
      body: 'bf 2a 00 00 00  48 89 7d f8  48 8b 45 f8' },
    { name: 'byte store of R1 needs REX for dil (40 88)', depth: 8, ret: 0x7fn,
      prog: [b.mov64Imm(1, 0x17f), b.stxMem(BPF_B, 10, 1, -1), b.ldxMem(BPF_B, 0, 10, -1), b.exit()],
      body: 'bf 7f 01 00 00  40 88 7d ff  48 0f b6 45 ff' },
    { name: 'R7 (r13) and R9 (r15) need REX.B/REX.R', depth: 0, ret: 7n,
      prog: [b.mov64Imm(7, 7), b.mov64Reg(9, 7), b.mov64Reg(0, 9), b.exit()], body: '41 bd 07 00 00 00  4d 89 ef  4c 89 f8' },
    { name: 'jump over an instruction (jcc rel8 with test for imm 0)', depth: 0, ret: 1n,
      prog: [b.mov64Imm(0, 1), b.jmpImm(BPF_JNE, 0, 0, 1), b.mov64Imm(0, 2), b.exit()],
      body: 'b8 01 00 00 00  48 85 c0  75 05  b8 02 00 00 00' },
  ];
  it.each(cases)('$name', ({ prog, depth, body, ret }) => {
    const p = rt.load(prog);
    expect([...p.jit!.image.code]).toEqual([...prologue(depth), ...hex(body), ...epilogue]);
    expect(rt.runJit(p, 0n)).toBe(ret);
    rt.free(p);
  });

  it('the prologue is PROLOGUE_SIZE (25) bytes and every image starts with the 5-byte nop', () => {
    expect(prologue(0).length).toBe(PROLOGUE_SIZE);
  });
});

describe('every ISA row JIT-compiles and runs', () => {
  // One instance of each row, in a program that runs it on the stack and returns.
  const instance = (name: keyof typeof ISA): Insn[] => {
    const row = ISA[name] as { code: number; off?: number; imm?: number; operands: string };
    switch (row.operands) {
      case 'alu': return [b.mov64Imm(0, 5), b.mov64Imm(1, 3), insn(row.code | BPF_X, 0, 1, row.off ?? 0, 0), insn(row.code | BPF_K, 0, 0, row.off ?? 0, 2)];
      case 'alu-unary': case 'end': return [b.mov64Imm(0, 0x1234), insn(row.code, 0, 0, 0, row.imm ?? 0)];
      case 'jmp': return [b.mov64Imm(0, 1), insn(row.code | BPF_X, 0, 0, 0, 0), insn(row.code | BPF_K, 0, 0, 0, 1)];
      case 'ja': return [b.mov64Imm(0, 1), insn(row.code, 0, 0, 0, 0)];
      case 'ldx': return [b.stMem(BPF_DW, 10, -8, -2), insn(row.code, 0, 10, -8)];
      case 'st': return [insn(row.code, 10, 0, -8, 0x7f), b.ldxMem(BPF_B, 0, 10, -8)];
      case 'stx': return [b.mov64Imm(1, 9), insn(row.code, 10, 1, -8), b.ldxMem(BPF_B, 0, 10, -8)];
      case 'atomic': return [b.stMem(BPF_DW, 10, -8, 4), b.mov64Imm(0, 4), b.mov64Imm(1, 6), insn(row.code, 10, 1, -8, row.imm ?? 0), b.ldxMem(BPF_W, 0, 10, -8)];
      case 'lddw': return [...b.ldImm64(0, 0x100000000n)];
      case 'call': return [b.mov64Imm(1, 20), insn(row.code, 0, 0, 0, 1)];
      case 'callx': return [b.mov64Imm(1, 20), b.mov64Imm(2, 1), insn(row.code, 2)];
      default: return [b.mov64Imm(0, 0)];
    }
  };
  const helpers = [{ id: 1, name: 'test_helper_double', fn: (x: bigint) => x * 2n, argc: 1 }];
  it.each(OP_NAMES.filter((n) => ISA[n].operands !== 'exit'))('%s', (name) => {
    const p = rt.load([...instance(name), b.exit()], { helpers });
    expect(typeof rt.runJit(p, 0n)).toBe('bigint');
    rt.free(p);
  });
});

describe('bpf-to-bpf calls and faults', () => {
  it('a subprogram is its own function with its own prologue and kallsyms name', () => {
    // r1 = 4; call sub; exit ; sub: r0 = r1 * 2 (r0 = r1; r0 += r1); exit
    const p = rt.load([b.mov64Imm(1, 4), insn(0x85, 0, BPF_PSEUDO_CALL, 0, 1), b.exit(), b.mov64Reg(0, 1), b.alu64Reg(BPF_ADD, 0, 1), b.exit()], { name: 'calls' });
    expect(rt.runJit(p, 0n)).toBe(8n);
    expect(p.jit!.funcAddrs).toHaveLength(2);
    expect(sys.kernel.symbolize(p.jit!.funcAddrs[1]!)).toBe(`bpf_prog_${p.tag}_calls_F1`);
    expect([...sys.kernel.machine.mem.read(p.jit!.funcAddrs[1]!, 5)]).toEqual(hex('0f 1f 44 00 00'));
    rt.free(p);
  });

  it('a faulting load reports the BPF instruction index and the guest rip; the machine goes on', () => {
    const p = rt.load([b.mov64Imm(0, 0), b.mov64Imm(2, 0x10), b.ldxMem(BPF_DW, 0, 2, 8), b.exit()], { name: 'oops' });
    let err: BpfJitFault | undefined;
    try { rt.runJit(p, 0n); } catch (e) { err = e as BpfJitFault; }
    expect(err).toBeInstanceOf(BpfJitFault);
    expect(err!.pc).toBe(2);
    expect(err!.message).toMatch(/^insn 2 \(ldxdw\): guest fault: read access to unmapped memory at 0x18/);
    expect(sys.kernel.symbolize(err!.rip!)).toMatch(new RegExp(`^bpf_prog_${p.tag}_oops\\+0x`));
    rt.free(p);
    const ok = rt.load([b.mov64Imm(0, 7), b.exit()]);
    expect(rt.runJit(ok, 0n)).toBe(7n);
    rt.free(ok);
  });

  it('bad programs are refused with the index; nothing leaks', () => {
    const pages = sys.kernel.execmem.pagesInUse, slab = sys.kernel.slab.inUse;
    expect(() => rt.load([])).toThrow(BpfLoadError);
    expect(() => rt.load([insn(0xff), b.exit()])).toThrow('insn 0: unknown opcode 0xff');
    expect(() => rt.load([b.mov64Imm(0, 1), b.ldImm64(0, 1n)[0], b.exit()])).toThrow('insn 1: invalid bpf_ld_imm64 insn');
    expect(() => rt.load([insn(0x85, 0, 0, 0, 99), b.exit()])).toThrow(/insn 0: invalid func unknown#99/);
    expect(() => rt.load([...b.ldImm64(1, 3n, 1), b.exit()])).toThrow(/insn 0: ld_imm64 with pseudo source 1/);
    expect(sys.kernel.execmem.pagesInUse).toBe(pages);
    expect(sys.kernel.slab.inUse).toBe(slab);
  });

  it('loading and freeing returns every page and symbol', () => {
    const pages = sys.kernel.execmem.pagesInUse, slab = sys.kernel.slab.inUse, syms = sys.kernel.ksyms.all().length;
    const helpers = [{ id: 1, name: 'test_helper_zero', fn: () => 0n }];
    const ps = [1, 2, 3].map((i) => rt.load([b.mov64Imm(0, i), b.jmpImm(BPF_JEQ, 0, 0, 0), b.exit()], { helpers }));
    expect(sys.kernel.execmem.pagesInUse).toBe(pages + 3);
    ps.forEach((p) => rt.free(p));
    expect(sys.kernel.execmem.pagesInUse).toBe(pages);
    expect(sys.kernel.slab.inUse).toBe(slab);
    expect(sys.kernel.ksyms.all().length).toBe(syms + 1); // the helper's native entry stays defined
  });
});
