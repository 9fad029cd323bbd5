/**
 * @fileoverview arch/x86_64/trampoline.ts and text_poke.ts against v5.5's
 * arch_prepare_bpf_trampoline and bpf_arch_text_poke (KERNEL.md A.2, A.3, A.6):
 *  1. byte for byte, the ground-truth sequence for bpf_fentry_test2(int, u64);
 *  2. instruction by instruction through capstone, against asm text written from A.2's emit rules,
 *     for several function models and 0..2 fentry × 0..2 fexit programs, JITed and interpreted;
 *  3. the errors (-ENOTSUPP, -EINVAL, -EFAULT) and the half-page limit on both sides;
 *  4. for real: trampolines patched into bpf_fentry_test2/3/6 of the booted image, with natives as
 *     __bpf_prog_enter/exit and as the programs, reading the ctx array the trampoline built.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { boot, type System } from '../../index.ts';
import { loadDisassembler, type Disassembler } from '../../emulator/capstone.ts';
import {
  BPF_INSN_SAFETY, INVOKE_BPF_SIZE, archPrepareBpfTrampoline, x86_64Trampoline,
} from '../../arch/x86_64/trampoline.ts';
import { textPokeInsn } from '../../arch/x86_64/text_poke.ts';
import {
  BPF_TRAMP_F_CALL_ORIG, BPF_TRAMP_F_RESTORE_REGS, BPF_TRAMP_F_SKIP_FRAME,
  type BtfFuncModel, type TrampProg, type TrampolineInput,
} from '../../bpf/arch.ts';

const EFAULT = 14, EINVAL = 22, ENOTSUPP = 524;
const HALF_PAGE = 2048;
const NOP5 = [0x0f, 0x1f, 0x44, 0x00, 0x00]; // ideal_nops[NOP_ATOMIC5]

// Addresses shaped like the machine's (docs/ARCHITECTURE.md's layout): the image and the natives
// in the module area, the traced function in kernel text, struct bpf_prog in the direct map.
const IMAGE = 0xffffffffa0010000n;
const ENTER = 0xffffffffa0001000n; // __bpf_prog_enter
const EXIT = 0xffffffffa0001010n; //  __bpf_prog_exit
const ORIG = 0xffffffff81000610n; //  bpf_fentry_test2 (its 5-byte nop)
const INTERP = 0xffffffff81010000n; // ___bpf_prog_run's entry for interpreted progs

/** A JITed prog k: its image in the module area, its struct bpf_prog in the direct map. */
const jited = (k: number): TrampProg => ({
  bpfFunc: 0xffffffffa0020000n + BigInt(k) * 0x1000n, progAddr: 0xffff888001000000n + BigInt(k) * 0x100n,
});
/** An interpreted prog k: bpf_func is the interpreter, insnsi its instructions. */
const interpreted = (k: number): TrampProg => ({
  bpfFunc: INTERP, progAddr: 0xffff888002000000n + BigInt(k) * 0x100n, insnsi: 0xffff888002000048n + BigInt(k) * 0x100n,
});

/** trampoline.c's bpf_trampoline_update(): CALL_ORIG|SKIP_FRAME as soon as there is a fexit prog. */
const flagsFor = (fexit: number): number =>
  (fexit ? BPF_TRAMP_F_CALL_ORIG | BPF_TRAMP_F_SKIP_FRAME : BPF_TRAMP_F_RESTORE_REGS);

function input(model: BtfFuncModel, fentry: TrampProg[], fexit: TrampProg[], over: Partial<TrampolineInput> = {}): TrampolineInput {
  return {
    image: IMAGE, size: HALF_PAGE, model, flags: flagsFor(fexit.length), fentry, fexit,
    origCall: ORIG, bpfProgEnter: ENTER, bpfProgExit: EXIT, ...over,
  };
}

function prepare(inp: TrampolineInput): Uint8Array {
  const r = archPrepareBpfTrampoline(inp);
  if (typeof r === 'number') throw new Error(`arch_prepare_bpf_trampoline: ${r}`);
  return r;
}

const model = (...argSize: number[]): BtfFuncModel => ({ retSize: 4, nrArgs: argSize.length, argSize });
// The prototypes of net/bpf/test_run.c's targets (KERNEL.md A.6); pointers are 8 bytes.
const TEST1 = model(4); //                  int bpf_fentry_test1(int a)
const TEST2 = model(4, 8); //               int bpf_fentry_test2(int a, u64 b)
const TEST3 = model(1, 4, 8); //            int bpf_fentry_test3(char a, int b, u64 c)
const TEST4 = model(8, 1, 4, 8); //         (void *a, char b, int c, u64 d)
const TEST6 = model(8, 8, 2, 4, 8, 8); //   (u64 a, void *b, short c, int d, void *e, u64 f)
const MIXED6 = model(1, 2, 4, 8, 8, 4); //  every width, r8 8 bytes and r9 4 bytes

// --- 1. bytes ---------------------------------------------------------------------------------

const hex = (s: string): number[] => s.trim().split(/\s+/).map((x) => parseInt(x, 16));
const le = (v: bigint, n: number): number[] => Array.from({ length: n }, (_, i) => Number((BigInt.asUintN(64, v) >> BigInt(8 * i)) & 0xffn));

/** A row of expected bytes: literal hex, or `call target` (e8 rel32, from where the row lands). */
type Row = string | { call: bigint } | { movabs: 'rdi' | 'rsi'; imm: bigint };

function assemble(image: bigint, rows: readonly Row[]): number[] {
  const out: number[] = [];
  for (const r of rows) {
    if (typeof r === 'string') out.push(...hex(r));
    else if ('call' in r) out.push(0xe8, ...le(r.call - (image + BigInt(out.length) + 5n), 4));
    else out.push(0x48, r.movabs === 'rdi' ? 0xbf : 0xbe, ...le(r.imm, 8));
  }
  return out;
}

/** invoke_bpf() for one JITed prog, rows as A.2 lists them (35 bytes). */
const invokeRows = (p: TrampProg, ctx: string): Row[] => [
  { call: ENTER }, //              call __bpf_prog_enter
  '48 89 c3', //                   mov rbx, rax
  `48 8d 7d ${ctx}`, //            lea rdi, [rbp-N]
  { call: p.bpfFunc }, //          call prog->bpf_func
  { movabs: 'rdi', imm: p.progAddr }, // movabs rdi, prog
  '48 89 de', //                   mov rsi, rbx
  { call: EXIT }, //               call __bpf_prog_exit
];

describe('the v5.5 sequence for bpf_fentry_test2(int, u64), byte for byte', () => {
  const P = jited(0), Q = jited(1);

  it('one fentry prog (RESTORE_REGS): KERNEL.md A.2\'s ground truth', () => {
    const expected = assemble(IMAGE, [
      '55', //          push rbp
      '48 89 e5', //    mov rbp, rsp
      '48 83 ec 10', // sub rsp, 0x10               nr_args * 8
      '53', //          push rbx
      '89 7d f0', //    mov dword ptr [rbp-0x10], edi   int a: 4-byte store
      '48 89 75 f8', // mov qword ptr [rbp-0x8], rsi    u64 b
      ...invokeRows(P, 'f0'),
      '8b 7d f0', //    mov edi, dword ptr [rbp-0x10]   restore_regs
      '48 8b 75 f8', // mov rsi, qword ptr [rbp-0x8]
      '5b', //          pop rbx
      'c9', //          leave
      'c3', //          ret                          back to bpf_fentry_test2+5
    ]);
    const code = prepare(input(TEST2, [P], []));
    expect([...code]).toEqual(expected);
    expect(code.length).toBe(9 + 7 + 35 + 7 + 3);
  });

  it('one fexit prog (CALL_ORIG|SKIP_FRAME): no restore_regs before the call, orig_call + 5', () => {
    const expected = assemble(IMAGE, [
      '55', //          push rbp
      '48 89 e5', //    mov rbp, rsp
      '48 83 ec 18', // sub rsp, 0x18               nr_args * 8 + 8 for the return value
      '53', //          push rbx
      '89 7d e8', //    mov dword ptr [rbp-0x18], edi
      '48 89 75 f0', // mov qword ptr [rbp-0x10], rsi
      { call: ORIG + 5n }, // call bpf_fentry_test2+5   (fentry_cnt == 0: registers untouched)
      '48 89 45 f8', // mov qword ptr [rbp-0x8], rax    ctx[2]
      ...invokeRows(Q, 'e8'),
      '48 8b 45 f8', // mov rax, qword ptr [rbp-0x8]
      '5b', //          pop rbx
      'c9', //          leave
      '48 83 c4 08', // add rsp, 8                   skip bpf_fentry_test2's frame
      'c3', //          ret
    ]);
    expect([...prepare(input(TEST2, [], [Q]))]).toEqual(expected);
  });

  it('one fentry and one fexit prog: the example at the top of trampoline.ts', () => {
    const expected = assemble(IMAGE, [
      '55', '48 89 e5', '48 83 ec 18', '53', // push rbp; mov rbp, rsp; sub rsp, 0x18; push rbx
      '89 7d e8', '48 89 75 f0', //             save_regs
      ...invokeRows(P, 'e8'), //                fentry
      '8b 7d e8', '48 8b 75 f0', //             restore_regs: there were fentry progs
      { call: ORIG + 5n }, '48 89 45 f8', //    call bpf_fentry_test2+5; mov [rbp-8], rax
      ...invokeRows(Q, 'e8'), //                fexit
      '48 8b 45 f8', '5b', 'c9', '48 83 c4 08', 'c3', // mov rax, [rbp-8]; pop rbx; leave; add rsp, 8; ret
    ]);
    expect([...prepare(input(TEST2, [P], [Q]))]).toEqual(expected);
  });

  it('an interpreted prog adds movabs rsi, prog->insnsi before the call (45 bytes)', () => {
    const I = interpreted(0);
    const expected = assemble(IMAGE, [
      '55', '48 89 e5', '48 83 ec 10', '53', '89 7d f0', '48 89 75 f8',
      { call: ENTER }, '48 89 c3', '48 8d 7d f0',
      { movabs: 'rsi', imm: I.insnsi! }, //    movabs rsi, prog->insnsi
      { call: INTERP }, { movabs: 'rdi', imm: I.progAddr }, '48 89 de', { call: EXIT },
      '8b 7d f0', '48 8b 75 f8', '5b', 'c9', 'c3',
    ]);
    expect([...prepare(input(TEST2, [I], []))]).toEqual(expected);
  });

  it.each([
    // emit_stx's REX rules: dil/sil need one for a byte store (else bh/dh), dl/cl do not;
    // r8/r9 take REX.R (REX.W too for 8 bytes); a 2-byte store is 66-prefixed.
    ['char in dil (test3)', TEST3, '40 88 7d e8'],
    ['char in sil (test4)', TEST4, '48 89 7d e0  40 88 75 e8'],
    ['char in dl, no REX', model(4, 4, 1), '89 7d e8  89 75 f0  88 55 f8'],
    ['short in dx, then r8 and r9 with REX.W.R (test6)', TEST6, '48 89 7d d0  48 89 75 d8  66 89 55 e0  89 4d e8  4c 89 45 f0  4c 89 4d f8'],
    ['every width; r8 8 bytes, r9 4 bytes with REX.R only', MIXED6, '40 88 7d d0  66 89 75 d8  89 55 e0  48 89 4d e8  4c 89 45 f0  44 89 4d f8'],
  ] as const)('save_regs: %s', (_what, m, first) => {
    const code = prepare(input(m, [jited(0)], []));
    expect([...code.subarray(9, 9 + hex(first).length)]).toEqual(hex(first));
  });

  it('restore_regs: 1 and 2 bytes are movzx r64 (REX.W), 4 bytes mov r32, 8 bytes mov r64', () => {
    const code = prepare(input(MIXED6, [], []));
    // 9 bytes of prologue, 23 of save_regs, then restore_regs (RESTORE_REGS, no progs), then 5b c9 c3.
    expect([...code.subarray(9 + 23)]).toEqual(hex(
      '48 0f b6 7d d0  48 0f b7 75 d8  8b 55 e0  48 8b 4d e8  4c 8b 45 f0  44 8b 4d f8  5b c9 c3'));
  });
});

// --- 2. disassembly ---------------------------------------------------------------------------

const REG = [
  { 1: 'dil', 2: 'di', 4: 'edi', 8: 'rdi' }, { 1: 'sil', 2: 'si', 4: 'esi', 8: 'rsi' },
  { 1: 'dl', 2: 'dx', 4: 'edx', 8: 'rdx' }, { 1: 'cl', 2: 'cx', 4: 'ecx', 8: 'rcx' },
  { 1: 'r8b', 2: 'r8w', 4: 'r8d', 8: 'r8' }, { 1: 'r9b', 2: 'r9w', 4: 'r9d', 8: 'r9' },
] as const;
const PTR = { 1: 'byte', 2: 'word', 4: 'dword', 8: 'qword' } as const;
type Width = 1 | 2 | 4 | 8;
/** Capstone's immediates: decimal below 10, hex from there. */
const imm = (n: number | bigint): string => (BigInt(n) < 10n ? String(n) : `0x${BigInt.asUintN(64, BigInt(n)).toString(16)}`);

/** The asm A.2 describes, written out as capstone prints Intel syntax. */
function expectedAsm(inp: TrampolineInput): string[] {
  const { model: m, flags } = inp;
  const n = m.nrArgs * 8 + (flags & BPF_TRAMP_F_CALL_ORIG ? 8 : 0);
  const slot = (i: number): string => `[rbp - ${imm(n - 8 * i)}]`;
  const w = (i: number): Width => m.argSize[i] as Width;
  const save = m.argSize.map((_, i) => `mov ${PTR[w(i)]} ptr ${slot(i)}, ${REG[i]![w(i)]}`);
  const restore = m.argSize.map((_, i) => (w(i) < 4
    ? `movzx ${REG[i]![8]}, ${PTR[w(i)]} ptr ${slot(i)}`
    : `mov ${REG[i]![w(i)]}, ${PTR[w(i)]} ptr ${slot(i)}`));
  const invoke = (progs: readonly TrampProg[]): string[] => progs.flatMap((p) => [
    `call ${imm(ENTER)}`, 'mov rbx, rax', `lea rdi, [rbp - ${imm(n)}]`,
    ...(p.insnsi !== undefined ? [`movabs rsi, ${imm(p.insnsi)}`] : []),
    `call ${imm(p.bpfFunc)}`, `movabs rdi, ${imm(p.progAddr)}`, 'mov rsi, rbx', `call ${imm(EXIT)}`,
  ]);
  const origCall = inp.origCall + (flags & BPF_TRAMP_F_SKIP_FRAME ? 5n : 0n);
  return [
    'push rbp', 'mov rbp, rsp', `sub rsp, ${imm(n)}`, 'push rbx',
    ...save,
    ...invoke(inp.fentry),
    ...(flags & BPF_TRAMP_F_CALL_ORIG
      ? [...(inp.fentry.length ? restore : []), `call ${imm(origCall)}`, 'mov qword ptr [rbp - 8], rax']
      : []),
    ...invoke(inp.fexit),
    ...(flags & BPF_TRAMP_F_RESTORE_REGS ? restore : []),
    ...(flags & BPF_TRAMP_F_CALL_ORIG ? ['mov rax, qword ptr [rbp - 8]'] : []),
    'pop rbx', 'leave',
    ...(flags & BPF_TRAMP_F_SKIP_FRAME ? ['add rsp, 8'] : []),
    'ret',
  ];
}

describe('instruction by instruction, through capstone', () => {
  let dis: Disassembler;
  beforeAll(async () => { dis = await loadDisassembler(); });

  const disasm = (code: Uint8Array) => dis.disasm(code, IMAGE);
  const text = (code: Uint8Array): string[] => disasm(code).map((i) => `${i.mnemonic} ${i.opStr}`.trim());

  const models = { TEST1, TEST2, TEST3, TEST6, MIXED6 };
  const cases = Object.entries(models).flatMap(([name, m]) => [0, 1, 2].flatMap((fe) => [0, 1, 2].map((fx) =>
    [`${name} with ${fe} fentry and ${fx} fexit progs (JITed)`, { m, fe, fx }] as const)));

  it.each(cases)('%s', (_title, { m, fe, fx }) => {
    const inp = input(m, Array.from({ length: fe }, (_, k) => jited(k)), Array.from({ length: fx }, (_, k) => jited(10 + k)));
    const code = prepare(inp);
    expect(text(code)).toEqual(expectedAsm(inp));
    // Every byte decodes, and each program's block is 35 bytes from `call __bpf_prog_enter`.
    const insns = disasm(code);
    expect(insns.reduce((s, i) => s + i.size, 0)).toBe(code.length);
    const enters = insns.filter((i) => i.opStr === imm(ENTER));
    const exits = insns.filter((i) => i.opStr === imm(EXIT));
    expect(enters).toHaveLength(fe + fx);
    enters.forEach((e, k) => expect(Number(exits[k]!.address - e.address) + 5).toBe(INVOKE_BPF_SIZE.jited));
  });

  it.each([['TEST2', TEST2], ['TEST3', TEST3], ['TEST6', TEST6]] as const)('%s with 2 interpreted fentry and 1 interpreted + 1 JITed fexit', (_name, m) => {
    const inp = input(m, [interpreted(0), interpreted(1)], [interpreted(2), jited(3)]);
    const code = prepare(inp);
    expect(text(code)).toEqual(expectedAsm(inp));
    const insns = disasm(code);
    const enters = insns.filter((i) => i.opStr === imm(ENTER)), exits = insns.filter((i) => i.opStr === imm(EXIT));
    expect(enters.map((e, k) => Number(exits[k]!.address - e.address) + 5)).toEqual([45, 45, 45, 35]);
  });

  it('flags 0 (no RESTORE_REGS, no original call) and CALL_ORIG without SKIP_FRAME', () => {
    for (const flags of [0, BPF_TRAMP_F_CALL_ORIG, BPF_TRAMP_F_CALL_ORIG | BPF_TRAMP_F_RESTORE_REGS]) {
      const inp = input(TEST3, [jited(0)], [jited(1)], { flags });
      expect(text(prepare(inp))).toEqual(expectedAsm(inp));
    }
  });

  it('the rel32 calls land on their targets from anywhere in the page (the second half too)', () => {
    const image = IMAGE + 2048n;
    const inp = input(TEST6, [jited(0), interpreted(1)], [jited(2)], { image });
    const calls = dis.disasm(prepare(inp), image).filter((i) => i.mnemonic === 'call').map((i) => BigInt(i.opStr));
    expect(calls).toEqual([ENTER, jited(0).bpfFunc, EXIT, ENTER, INTERP, EXIT, ORIG + 5n, ENTER, jited(2).bpfFunc, EXIT]);
  });
});

// --- 3. errors and limits ---------------------------------------------------------------------

describe('errors as v5.5 returns them', () => {
  it('more than 6 arguments: -ENOTSUPP (checked first)', () => {
    expect(archPrepareBpfTrampoline(input(model(8, 8, 8, 8, 8, 8, 8), [jited(0)], []))).toBe(-ENOTSUPP);
    expect(archPrepareBpfTrampoline(input(model(8, 8, 8, 8, 8, 8, 8), [jited(0)], [],
      { flags: BPF_TRAMP_F_RESTORE_REGS | BPF_TRAMP_F_SKIP_FRAME }))).toBe(-ENOTSUPP);
    expect(archPrepareBpfTrampoline(input(TEST6, [jited(0)], []))).toBeInstanceOf(Uint8Array);
  });

  it('RESTORE_REGS together with SKIP_FRAME: -EINVAL', () => {
    expect(archPrepareBpfTrampoline(input(TEST2, [jited(0)], [],
      { flags: BPF_TRAMP_F_RESTORE_REGS | BPF_TRAMP_F_SKIP_FRAME }))).toBe(-EINVAL);
    expect(archPrepareBpfTrampoline(input(TEST2, [jited(0)], [],
      { flags: BPF_TRAMP_F_RESTORE_REGS | BPF_TRAMP_F_SKIP_FRAME | BPF_TRAMP_F_CALL_ORIG }))).toBe(-EINVAL);
  });

  it('a call target out of rel32 range: -EINVAL, at the edge of the range fine', () => {
    // The first call (__bpf_prog_enter) sits after 9 bytes of prologue and 7 of save_regs.
    const end = IMAGE + 9n + 7n + 5n;
    const at = (enter: bigint) => archPrepareBpfTrampoline(input(TEST2, [jited(0)], [], { bpfProgEnter: enter }));
    expect(at(end + 0x7fffffffn)).toBeInstanceOf(Uint8Array);
    expect(at(end + 0x80000000n)).toBe(-EINVAL);
    expect(at(end - 0x80000000n)).toBeInstanceOf(Uint8Array);
    expect(at(end - 0x80000001n)).toBe(-EINVAL);
    // A far program, a far __bpf_prog_exit, a far traced function.
    expect(archPrepareBpfTrampoline(input(TEST2, [{ ...jited(0), bpfFunc: 0xffff888000000000n }], []))).toBe(-EINVAL);
    expect(archPrepareBpfTrampoline(input(TEST2, [], [jited(0)], { bpfProgExit: 0x400000n }))).toBe(-EINVAL);
    expect(archPrepareBpfTrampoline(input(TEST2, [], [jited(0)], { origCall: 0x400000n }))).toBe(-EINVAL);
  });

  it('an argument size that is not 1, 2, 4 or 8: -EINVAL (the kernel never gets one)', () => {
    expect(archPrepareBpfTrampoline(input(model(4, 16), [jited(0)], []))).toBe(-EINVAL);
  });

  // fexit_stress (v5.5): "x86-64 fits 55 JITed and 43 interpreted progs into half page", for
  // fexit on bpf_fentry_test1: 32 bytes around the calls + 35 or 45 per prog <= 2048 - 64.
  const progs = (n: number, mk: (k: number) => TrampProg) => Array.from({ length: n }, (_, k) => mk(k));
  it.each([
    ['JITed', 55, 35, jited],
    ['interpreted', 43, 45, interpreted],
  ] as const)('%s: half a page holds %i fexit progs on bpf_fentry_test1, one more is -EFAULT', (_kind, fits, each, mk) => {
    const ok = archPrepareBpfTrampoline(input(TEST1, [], progs(fits, mk)));
    expect(ok).toBeInstanceOf(Uint8Array);
    expect((ok as Uint8Array).length).toBe(32 + each * fits);
    expect((ok as Uint8Array).length).toBeLessThanOrEqual(HALF_PAGE - BPF_INSN_SAFETY);
    expect(archPrepareBpfTrampoline(input(TEST1, [], progs(fits + 1, mk)))).toBe(-EFAULT);
  });

  it('the limit is exact: 1984 bytes (PAGE_SIZE/2 - BPF_INSN_SAFETY) fit, 1985 do not', () => {
    // fexit on (int, int, u64): 39 bytes around the calls + 53 * 35 + 2 * 45 = 1984.
    const exact = input(model(4, 4, 8), [], [...progs(53, jited), ...progs(2, interpreted)]);
    expect((archPrepareBpfTrampoline(exact) as Uint8Array).length).toBe(1984);
    // fexit on (int, int): 35 + 48 * 35 + 6 * 45 = 1985, fine in a bigger buffer only.
    const over = input(model(4, 4), [], [...progs(48, jited), ...progs(6, interpreted)]);
    expect(archPrepareBpfTrampoline(over)).toBe(-EFAULT);
    expect((archPrepareBpfTrampoline({ ...over, size: 4096 }) as Uint8Array).length).toBe(1985);
  });

  it('BPF_MAX_TRAMP_PROGS (40) JITed progs fit with any model', () => {
    expect(archPrepareBpfTrampoline(input(MIXED6, progs(20, jited), progs(20, (k) => jited(20 + k))))).toBeInstanceOf(Uint8Array);
  });
});

describe('textPokeInsn: the 5 bytes bpf_arch_text_poke writes', () => {
  const ip = 0xffffffff81000610n;

  it('call / jmp rel32 from ip + 5, the nop without a target', () => {
    expect([...textPokeInsn(ip, 'call', IMAGE) as Uint8Array]).toEqual([0xe8, ...le(IMAGE - (ip + 5n), 4)]);
    expect([...textPokeInsn(ip, 'jump', IMAGE) as Uint8Array]).toEqual([0xe9, ...le(IMAGE - (ip + 5n), 4)]);
    expect([...textPokeInsn(ip, 'call', ip - 0x100n) as Uint8Array]).toEqual([0xe8, ...le(-0x105n, 4)]);
    expect([...textPokeInsn(ip, 'call', undefined) as Uint8Array]).toEqual(NOP5);
    expect([...textPokeInsn(ip, 'jump', undefined) as Uint8Array]).toEqual(NOP5);
  });

  it('out of rel32 range: -EINVAL (v5.5 emit_patch)', () => {
    expect(textPokeInsn(ip, 'call', ip + 5n + 0x7fffffffn)).toBeInstanceOf(Uint8Array);
    expect(textPokeInsn(ip, 'call', ip + 5n + 0x80000000n)).toBe(-EINVAL);
    expect(textPokeInsn(ip, 'jump', ip + 5n - 0x80000000n)).toBeInstanceOf(Uint8Array);
    expect(textPokeInsn(ip, 'jump', ip + 5n - 0x80000001n)).toBe(-EINVAL);
    expect(textPokeInsn(ip, 'call', 0x400000n)).toBe(-EINVAL);
  });

  it('x86_64Trampoline is the BpfArchTrampoline made of the two', () => {
    expect(x86_64Trampoline.archPrepareBpfTrampoline).toBe(archPrepareBpfTrampoline);
    expect(x86_64Trampoline.textPokeInsn).toBe(textPokeInsn);
  });
});

// --- 4. on the machine ------------------------------------------------------------------------

describe('trampolines patched into the booted kernel\'s bpf_fentry_test functions', () => {
  let sys: System;
  let image: bigint;
  let half = 0;
  /** What the natives saw, in order. */
  let events: { what: string; ctx?: bigint[]; rsi?: bigint; prog?: bigint; start?: bigint }[] = [];
  let startTime = 0n;
  let nrCtx = 0;
  let enter: bigint, exit: bigint;
  const progs: Record<string, TrampProg> = {};

  const readCtx = (ctx: bigint): bigint[] =>
    Array.from({ length: nrCtx }, (_, i) => sys.kernel.machine.mem.readU64(ctx + BigInt(8 * i)));

  beforeAll(async () => {
    sys = await boot();
    image = sys.kernel.execmem.alloc(4096, 'bpf_trampoline_test').start;
    // __bpf_prog_enter returns the start time (0: stats off), __bpf_prog_exit gets it back.
    enter = sys.kernel.defineNative('test_tramp_prog_enter', () => { events.push({ what: 'enter' }); return startTime; }, 0).address;
    exit = sys.kernel.defineNative('test_tramp_prog_exit', (prog, start) => { events.push({ what: 'exit', prog, start }); }, 2).address;
    // The "programs": natives that record the ctx array (and rsi, the interpreter's insnsi).
    for (const [k, name] of ['fentry_a', 'fentry_b', 'fexit_a', 'fexit_b', 'interp'].entries()) {
      const f = sys.kernel.defineNative(`test_tramp_${name}`, (ctx, rsi) => {
        events.push({ what: name, ctx: readCtx(ctx), rsi });
        return 0;
      }, 2);
      progs[name] = { bpfFunc: f.address, progAddr: 0xffff888001000000n + BigInt(k) * 0x100n };
    }
    progs.interp = { ...progs.interp!, insnsi: 0xffff888001000448n };
  });
  afterAll(() => sys?.close());

  /** Generates into the next half (as the kernel's selector), pokes the call, runs, un-pokes. */
  function attachAndCall(func: string, m: BtfFuncModel, fentry: TrampProg[], fexit: TrampProg[], args: bigint[]): bigint {
    const ip = sys.kernel.addressOf(func);
    const at = image + BigInt((half++ & 1) * HALF_PAGE);
    const code = prepare({
      image: at, size: HALF_PAGE, model: m, flags: flagsFor(fexit.length), fentry, fexit,
      origCall: ip, bpfProgEnter: enter, bpfProgExit: exit,
    });
    sys.kernel.execmem.write(at, code);
    expect([...sys.kernel.machine.mem.read(ip, 5)]).toEqual(NOP5); // bpf_arch_text_poke's old insn
    sys.kernel.machine.writeCode(ip, textPokeInsn(ip, 'call', at) as Uint8Array);
    nrCtx = m.nrArgs + (fexit.length ? 1 : 0);
    events = [];
    try {
      return sys.kernel.call(func, args);
    } finally {
      sys.kernel.machine.writeCode(ip, textPokeInsn(ip, 'call', undefined) as Uint8Array);
    }
  }

  const low32 = (v: bigint): bigint => v & 0xffffffffn;

  it('fentry on bpf_fentry_test2(2, 3): ctx = [2, 3], the function still returns 5', () => {
    expect(attachAndCall('bpf_fentry_test2', TEST2, [progs.fentry_a!], [], [2n, 3n])).toBe(5n);
    expect(events.map((e) => e.what)).toEqual(['enter', 'fentry_a', 'exit']);
    const ctx = events[1]!.ctx!;
    expect(low32(ctx[0]!)).toBe(2n); // int a: only its 4 bytes are stored (the rest is stale stack)
    expect(ctx[1]).toBe(3n);
    expect(events[2]).toMatchObject({ prog: progs.fentry_a!.progAddr, start: 0n });
  });

  it('fexit on bpf_fentry_test2(2, 3): ctx = [2, 3, 5], and the return value is 5', () => {
    expect(attachAndCall('bpf_fentry_test2', TEST2, [], [progs.fexit_a!], [2n, 3n])).toBe(5n);
    expect(events.map((e) => e.what)).toEqual(['enter', 'fexit_a', 'exit']);
    const ctx = events[1]!.ctx!;
    expect([low32(ctx[0]!), ctx[1], ctx[2]]).toEqual([2n, 3n, 5n]);
  });

  it('two fentry and two fexit progs, in the order given, around the original call', () => {
    const r = attachAndCall('bpf_fentry_test2', TEST2, [progs.fentry_b!, progs.fentry_a!],
      [progs.fexit_b!, progs.fexit_a!], [2n, 3n]);
    expect(r).toBe(5n);
    expect(events.filter((e) => e.ctx).map((e) => e.what)).toEqual(['fentry_b', 'fentry_a', 'fexit_b', 'fexit_a']);
    for (const e of events.filter((x) => x.ctx)) expect([low32(e.ctx![0]!), e.ctx![1]]).toEqual([2n, 3n]);
    expect(events.filter((e) => e.what.startsWith('fexit')).map((e) => e.ctx![2])).toEqual([5n, 5n]);
    expect(events.filter((e) => e.what === 'exit').map((e) => e.prog))
      .toEqual([progs.fentry_b!, progs.fentry_a!, progs.fexit_b!, progs.fexit_a!].map((p) => p.progAddr));
  });

  it('the start time from __bpf_prog_enter reaches __bpf_prog_exit through rbx', () => {
    startTime = 0x1234_5678_9abcn;
    try {
      attachAndCall('bpf_fentry_test2', TEST2, [progs.fentry_a!], [progs.fexit_a!], [2n, 3n]);
    } finally {
      startTime = 0n;
    }
    expect(events.filter((e) => e.what === 'exit').map((e) => e.start)).toEqual([0x1234_5678_9abcn, 0x1234_5678_9abcn]);
  });

  it('an interpreted prog gets ctx in rdi and prog->insnsi in rsi', () => {
    expect(attachAndCall('bpf_fentry_test2', TEST2, [progs.interp!], [progs.interp!], [2n, 3n])).toBe(5n);
    const runs = events.filter((e) => e.what === 'interp');
    expect(runs.map((e) => e.rsi)).toEqual([progs.interp!.insnsi, progs.interp!.insnsi]);
    expect(runs.map((e) => e.ctx!.length)).toEqual([3, 3]);
    expect(runs[1]!.ctx![2]).toBe(5n);
  });

  it('bpf_fentry_test3(4, 5, 6): a char, an int and a u64, fentry and fexit (returns 15)', () => {
    expect(attachAndCall('bpf_fentry_test3', TEST3, [progs.fentry_a!], [progs.fexit_a!], [4n, 5n, 6n])).toBe(15n);
    for (const e of events.filter((x) => x.ctx)) {
      expect([e.ctx![0]! & 0xffn, low32(e.ctx![1]!), e.ctx![2]]).toEqual([4n, 5n, 6n]);
    }
    expect(events.find((e) => e.what === 'fexit_a')!.ctx![3]).toBe(15n);
  });

  it('bpf_fentry_test6(16, 17, 18, 19, 20, 21): six arguments through r8 and r9 (returns 111)', () => {
    const r = attachAndCall('bpf_fentry_test6', TEST6, [progs.fentry_a!], [progs.fexit_a!], [16n, 17n, 18n, 19n, 20n, 21n]);
    expect(r).toBe(111n);
    for (const e of events.filter((x) => x.ctx)) {
      const c = e.ctx!;
      expect([c[0], c[1], c[2]! & 0xffffn, low32(c[3]!), c[4], c[5]]).toEqual([16n, 17n, 18n, 19n, 20n, 21n]);
    }
    expect(events.find((e) => e.what === 'fexit_a')!.ctx![6]).toBe(111n);
  });

  it('after the nop is back, the function runs untraced', () => {
    events = [];
    expect(sys.kernel.call('bpf_fentry_test2', [2n, 3n])).toBe(5n);
    expect(events).toEqual([]);
    expect([...sys.kernel.machine.mem.read(sys.kernel.addressOf('bpf_fentry_test2'), 5)]).toEqual(NOP5);
  });
});
