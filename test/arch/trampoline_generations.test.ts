/**
 * @fileoverview arch_prepare_bpf_trampoline of each kernel generation against that kernel's
 * sequence, instruction by instruction (capstone, Intel syntax). The expected listings are written
 * from each version's arch/x86/net/bpf_jit_comp.c (sources named on each fragment), not from the
 * generator: addresses become names (ENTER, P0 …), branch targets become labels, runs of nops one
 * `nops` line (their bytes and the 16-byte alignment are checked apart). Data-driven: one row per
 * (profile, function, programs).
 *
 * Sources read (stored lore patches and full files of the era):
 *  - 5.7: ae24082331d9 "bpf: Introduce BPF_MODIFY_RETURN" (KP Singh; final form with
 *    `cmp QWORD PTR [rbp - 0x8], 0x0` and emit_align(&prog, 16)).
 *  - 5.12: ca06f55b9002 (per-program recursion prevention, `test rax,rax; je`), e21aa341785c
 *    "bpf: Fix fexit trampoline." (im, __bpf_tramp_enter/exit, emit_nops(&prog, 5) at ip_after_call).
 *  - 5.15: 7e6f3cd89f04-era "bpf, x86: Store caller's ip in trampoline stack" (Jiri Olsa).
 *  - 5.17/5.19: "bpf: Add get_func_[arg|ret|arg_cnt] helpers" (args_off), e384c7b7b46d (run_ctx on
 *    the frame at rbp - run_ctx_off), 2fcc82411e74 (the link's cookie).
 *  - 6.1: a9c5ad31fbdc (struct args, Yonghong Song), 7e40781cc8b7 (`movabs rax, func_addr` ip).
 *  - 6.6: 473e3150e30a "bpf, x86: allow function arguments up to 12 for TRACING" and
 *    02a6dfa8ff43 (BPF_DW saves), a full bpf_jit_comp.c of that release (rbx_off, save_args,
 *    clean_stack_garbage).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { loadDisassembler, branchTarget, type Disassembler, type Insn } from '../../emulator/capstone.ts';
import { archPrepareBpfTrampoline } from '../../arch/x86_64/trampoline.ts';
import { X86_NOPS } from '../../arch/x86_64/encoder.ts';
import {
  BPF_TRAMP_F_CALL_ORIG, BPF_TRAMP_F_IP_ARG, BPF_TRAMP_F_RESTORE_REGS, BPF_TRAMP_F_SKIP_FRAME, BTF_FMODEL_STRUCT_ARG,
  type BtfFuncModel, type TrampProg, type TrampolineInput,
} from '../../bpf/arch.ts';
import { KERNEL_PROFILES, type KernelVersion } from '../../kernel/profile.ts';

const IMAGE = 0xffffffffa0010000n;
const ENTER = 0xffffffffa0001000n, EXIT = 0xffffffffa0001040n;
const TENTER = 0xffffffffa0001080n, TEXIT = 0xffffffffa0001090n;
const IM = 0xffff888003000000n; //  struct bpf_tramp_image (kzalloc'd)
const FUNC = 0xffffffff81000610n; // the traced function's entry (its nop5)

const prog = (k: number): TrampProg => ({ bpfFunc: 0xffffffffa0020000n + BigInt(k) * 0x1000n, progAddr: 0xffff888001000000n + BigInt(k) * 0x100n });
const P = [0, 1, 2, 3].map(prog);

const NAMES = new Map<bigint, string>([
  [ENTER, 'ENTER'], [EXIT, 'EXIT'], [TENTER, 'TRAMP_ENTER'], [TEXIT, 'TRAMP_EXIT'], [IM, 'IM'],
  [FUNC, 'FUNC'], [FUNC + 5n, 'FUNC+5'],
  ...P.flatMap((p, k): [bigint, string][] => [[p.bpfFunc, `F${k}`], [p.progAddr, `P${k}`]]),
]);

const m = (...argSize: number[]): BtfFuncModel => ({ retSize: 4, nrArgs: argSize.length, argSize });
const TEST1 = m(4); //                       int bpf_fentry_test1(int a)
const TEST2 = m(4, 8); //                    int bpf_fentry_test2(int a, u64 b)
const TEST6 = m(8, 8, 2, 4, 8, 8); //        (u64 a, void *b, short c, int d, void *e, u64 f)
/** 6.1 selftests' bpf_testmod_test_struct_arg_2(struct bpf_testmod_struct_arg_1 a (int), struct …_2 b (2 longs), int c). */
const STRUCT = { ...m(4, 16, 4), argFlags: [BTF_FMODEL_STRUCT_ARG, BTF_FMODEL_STRUCT_ARG, 0] };
/** 6.6's bpf_testmod_fentry_test7(u64 a, void *b, short c, int d, void *e, char f, int g). */
const TEST7 = m(8, 8, 2, 4, 8, 1, 4);

const h = (n: number | bigint): string => (BigInt(n) < 10n ? String(n) : `0x${BigInt(n).toString(16)}`);
const slot = (off: number): string => `[rbp - ${h(off)}]`;

// --- the kernel's fragments, per version -------------------------------------------------------

/** invoke_bpf_prog, v5.5 (fec56f5890d9) and 5.7 (ae24082331d9: `mod_ret` stores rax at [rbp-8]). */
const invoke55 = (k: number, ctx: number, modRet = false): string[] => [
  'call ENTER', 'mov rbx, rax', `lea rdi, ${slot(ctx)}`, `call F${k}`,
  ...(modRet ? ['mov qword ptr [rbp - 8], rax'] : []),
  `movabs rdi, P${k}`, 'mov rsi, rbx', 'call EXIT',
];
/** 5.12 (ca06f55b9002): arg1 = prog, `test rax,rax; je` past the program to the exit call. */
const invoke512 = (k: number, ctx: number, modRet = false): string[] => [
  `movabs rdi, P${k}`, 'call ENTER', 'mov rbx, rax', 'test rax, rax', `je @skip${k}`,
  `lea rdi, ${slot(ctx)}`, `call F${k}`, ...(modRet ? ['mov qword ptr [rbp - 8], rax'] : []),
  `skip${k}:`, `movabs rdi, P${k}`, 'mov rsi, rbx', 'call EXIT',
];
/** 5.19 (e384c7b7b46d, 2fcc82411e74): the cookie into run_ctx, &run_ctx in rsi / rdx. */
const invoke519 = (k: number, ctx: number, runCtx: number, modRet = false, cookie = 'xor edi, edi'): string[] => [
  cookie, `mov qword ptr ${slot(runCtx)}, rdi`, `movabs rdi, P${k}`, `lea rsi, ${slot(runCtx)}`,
  'call ENTER', 'mov rbx, rax', 'test rax, rax', `je @skip${k}`,
  `lea rdi, ${slot(ctx)}`, `call F${k}`, ...(modRet ? ['mov qword ptr [rbp - 8], rax'] : []),
  `skip${k}:`, `movabs rdi, P${k}`, 'mov rsi, rbx', `lea rdx, ${slot(runCtx)}`, 'call EXIT',
];
/** invoke_bpf_mod_ret (5.7+): 0 as the first return value, `cmp; jne do_fexit` after each. */
const modRet = (inv: string[]): string[] => ['xor eax, eax', 'mov qword ptr [rbp - 8], rax', ...inv, 'cmp qword ptr [rbp - 8], 0', 'jne @do_fexit'];
/** do_fexit, 16-byte aligned (emit_align). */
const doFexit = ['nops', 'do_fexit:'];

const save2 = (off: number): string[] => [`mov dword ptr ${slot(off)}, edi`, `mov qword ptr ${slot(off - 8)}, rsi`];
const restore2 = (off: number): string[] => [`mov edi, dword ptr ${slot(off)}`, `mov rsi, qword ptr ${slot(off - 8)}`];
const epilogue = (skip: boolean): string[] => ['pop rbx', 'leave', ...(skip ? ['add rsp, 8'] : []), 'ret'];

interface Case { v: KernelVersion; what: string; model: BtfFuncModel; fentry: number[]; fexit: number[]; fmodRet?: number[]; flags?: number; cookie?: bigint; expected: string[] }

const FLAGS_ORIG = BPF_TRAMP_F_CALL_ORIG | BPF_TRAMP_F_SKIP_FRAME;

const CASES: Case[] = [
  // 5.7: fmod_ret between fentry and the call; restore because fmod_ret ran (`fentry || fmod_ret`).
  { v: '5.7', what: 'test2: fentry P0, fmod_ret P2, fexit P1', model: TEST2, fentry: [0], fmodRet: [2], fexit: [1], expected: [
    'push rbp', 'mov rbp, rsp', 'sub rsp, 0x18', 'push rbx', ...save2(0x18),
    ...invoke55(0, 0x18), ...modRet(invoke55(2, 0x18, true)),
    ...restore2(0x18), 'call FUNC+5', 'mov qword ptr [rbp - 8], rax', ...doFexit,
    ...invoke55(1, 0x18), 'mov rax, qword ptr [rbp - 8]', ...epilogue(true)] },
  { v: '5.7', what: 'test2: fmod_ret P2 alone', model: TEST2, fentry: [], fmodRet: [2], fexit: [], expected: [
    'push rbp', 'mov rbp, rsp', 'sub rsp, 0x18', 'push rbx', ...save2(0x18), ...modRet(invoke55(2, 0x18, true)),
    ...restore2(0x18), 'call FUNC+5', 'mov qword ptr [rbp - 8], rax', ...doFexit,
    'mov rax, qword ptr [rbp - 8]', ...epilogue(true)] },
  // 5.12: im around the original call, restore always, nop5 at ip_after_call.
  { v: '5.12', what: 'test1: fentry P0 (RESTORE_REGS)', model: TEST1, fentry: [0], fexit: [], expected: [
    'push rbp', 'mov rbp, rsp', 'sub rsp, 8', 'push rbx', 'mov dword ptr [rbp - 8], edi',
    ...invoke512(0, 8), 'mov edi, dword ptr [rbp - 8]', ...epilogue(false)] },
  { v: '5.12', what: 'test2: fexit P1 alone (restore_regs now unconditional)', model: TEST2, fentry: [], fexit: [1], expected: [
    'push rbp', 'mov rbp, rsp', 'sub rsp, 0x18', 'push rbx', ...save2(0x18),
    'movabs rdi, IM', 'call TRAMP_ENTER', ...restore2(0x18), 'call FUNC+5', 'mov qword ptr [rbp - 8], rax', 'nop dword ptr [rax + rax]',
    ...invoke512(1, 0x18), 'movabs rdi, IM', 'call TRAMP_EXIT', 'mov rax, qword ptr [rbp - 8]', ...epilogue(true)] },
  { v: '5.12', what: 'test2: fentry P0, fmod_ret P2, fexit P1', model: TEST2, fentry: [0], fmodRet: [2], fexit: [1], expected: [
    'push rbp', 'mov rbp, rsp', 'sub rsp, 0x18', 'push rbx', ...save2(0x18), 'movabs rdi, IM', 'call TRAMP_ENTER',
    ...invoke512(0, 0x18), ...modRet(invoke512(2, 0x18, true)),
    ...restore2(0x18), 'call FUNC+5', 'mov qword ptr [rbp - 8], rax', 'nop dword ptr [rax + rax]', ...doFexit,
    ...invoke512(1, 0x18), 'movabs rdi, IM', 'call TRAMP_EXIT', 'mov rax, qword ptr [rbp - 8]', ...epilogue(true)] },
  // 5.15: IP_ARG: [rbp - stack_size] = ip, the args one slot up.
  { v: '5.15', what: 'test1: fentry P0 with IP_ARG', model: TEST1, fentry: [0], fexit: [], flags: BPF_TRAMP_F_RESTORE_REGS | BPF_TRAMP_F_IP_ARG, expected: [
    'push rbp', 'mov rbp, rsp', 'sub rsp, 0x10', 'push rbx',
    'mov rax, qword ptr [rbp + 8]', 'sub rax, 5', 'mov qword ptr [rbp - 0x10], rax', 'mov dword ptr [rbp - 8], edi',
    ...invoke512(0, 8), 'mov edi, dword ptr [rbp - 8]', ...epilogue(false)] },
  { v: '5.15', what: 'test2: fexit P1 with IP_ARG', model: TEST2, fentry: [], fexit: [1], flags: FLAGS_ORIG | BPF_TRAMP_F_IP_ARG, expected: [
    'push rbp', 'mov rbp, rsp', 'sub rsp, 0x20', 'push rbx',
    'mov rax, qword ptr [rbp + 8]', 'sub rax, 5', 'mov qword ptr [rbp - 0x20], rax', ...save2(0x18),
    'movabs rdi, IM', 'call TRAMP_ENTER', ...restore2(0x18), 'call FUNC+5', 'mov qword ptr [rbp - 8], rax', 'nop dword ptr [rax + rax]',
    ...invoke512(1, 0x18), 'movabs rdi, IM', 'call TRAMP_EXIT', 'mov rax, qword ptr [rbp - 8]', ...epilogue(true)] },
  // 5.19: nr_args at [rbp - args_off], run_ctx 16 bytes below the ip slot.
  { v: '5.19', what: 'test1: fentry P0', model: TEST1, fentry: [0], fexit: [], expected: [
    'push rbp', 'mov rbp, rsp', 'sub rsp, 0x20', 'push rbx', 'mov eax, 1', 'mov qword ptr [rbp - 0x10], rax',
    'mov dword ptr [rbp - 8], edi', ...invoke519(0, 8, 0x20), 'mov edi, dword ptr [rbp - 8]', ...epilogue(false)] },
  { v: '5.19', what: 'test2: fentry P0 (cookie 0x42), fexit P1, IP_ARG', model: TEST2, fentry: [0], fexit: [1], cookie: 0x42n,
    flags: FLAGS_ORIG | BPF_TRAMP_F_IP_ARG, expected: [
      'push rbp', 'mov rbp, rsp', 'sub rsp, 0x38', 'push rbx', 'mov eax, 2', 'mov qword ptr [rbp - 0x20], rax',
      'mov rax, qword ptr [rbp + 8]', 'sub rax, 5', 'mov qword ptr [rbp - 0x28], rax', ...save2(0x18),
      'movabs rdi, IM', 'call TRAMP_ENTER', ...invoke519(0, 0x18, 0x38, false, 'mov edi, 0x42'),
      ...restore2(0x18), 'call FUNC+5', 'mov qword ptr [rbp - 8], rax', 'nop dword ptr [rax + rax]',
      ...invoke519(1, 0x18, 0x38, false, 'mov edi, 0x42'), 'movabs rdi, IM', 'call TRAMP_EXIT', 'mov rax, qword ptr [rbp - 8]', ...epilogue(true)] },
  // 6.1: struct args by registers (the struct's pieces stored as 8 bytes), ip from func_addr.
  { v: '6.1', what: 'struct_arg_2(int-struct a, 16-byte struct b, int c): fentry P0, IP_ARG', model: STRUCT, fentry: [0], fexit: [],
    flags: BPF_TRAMP_F_RESTORE_REGS | BPF_TRAMP_F_IP_ARG, expected: [
      'push rbp', 'mov rbp, rsp', 'sub rsp, 0x40', 'push rbx', 'mov eax, 4', 'mov qword ptr [rbp - 0x28], rax',
      'movabs rax, FUNC', 'mov qword ptr [rbp - 0x30], rax',
      'mov qword ptr [rbp - 0x20], rdi', 'mov qword ptr [rbp - 0x18], rsi', 'mov qword ptr [rbp - 0x10], rdx', 'mov dword ptr [rbp - 8], ecx',
      ...invoke519(0, 0x20, 0x40),
      'mov rdi, qword ptr [rbp - 0x20]', 'mov rsi, qword ptr [rbp - 0x18]', 'mov rdx, qword ptr [rbp - 0x10]', 'mov ecx, dword ptr [rbp - 8]',
      ...epilogue(false)] },
  { v: '6.1', what: 'test2: fmod_ret P2, fexit P1', model: TEST2, fentry: [], fmodRet: [2], fexit: [1], expected: [
    'push rbp', 'mov rbp, rsp', 'sub rsp, 0x30', 'push rbx', 'mov eax, 2', 'mov qword ptr [rbp - 0x20], rax', ...save2(0x18),
    'movabs rdi, IM', 'call TRAMP_ENTER', ...modRet(invoke519(2, 0x18, 0x30, true)),
    ...restore2(0x18), 'call FUNC+5', 'mov qword ptr [rbp - 8], rax', 'nop dword ptr [rax + rax]', ...doFexit,
    ...invoke519(1, 0x18, 0x30), 'movabs rdi, IM', 'call TRAMP_EXIT', 'mov rax, qword ptr [rbp - 8]', ...epilogue(true)] },
  // 6.6: rbx in a slot, BPF_DW saves, the 7th argument from the caller's stack.
  { v: '6.6', what: 'test2: fentry P0', model: TEST2, fentry: [0], fexit: [], expected: [
    'push rbp', 'mov rbp, rsp', 'sub rsp, 0x30', 'mov qword ptr [rbp - 0x20], rbx', 'mov eax, 2', 'mov qword ptr [rbp - 0x18], rax',
    'mov qword ptr [rbp - 0x10], rdi', 'mov qword ptr [rbp - 8], rsi', ...invoke519(0, 0x10, 0x30),
    'mov rdi, qword ptr [rbp - 0x10]', 'mov rsi, qword ptr [rbp - 8]', 'mov rbx, qword ptr [rbp - 0x20]', 'leave', 'ret'] },
  { v: '6.6', what: 'fentry_test7 (7 args, g on the stack): fexit P1', model: TEST7, fentry: [], fexit: [1], expected: [
    'push rbp', 'mov rbp, rsp', 'sub rsp, 0x68', 'mov qword ptr [rbp - 0x50], rbx', 'mov eax, 7', 'mov qword ptr [rbp - 0x48], rax',
    // save_args(regs_off = 0x40): six registers, then g from rbp + 0x18, its upper half cleared
    'mov qword ptr [rbp - 0x40], rdi', 'mov qword ptr [rbp - 0x38], rsi', 'mov qword ptr [rbp - 0x30], rdx',
    'mov qword ptr [rbp - 0x28], rcx', 'mov qword ptr [rbp - 0x20], r8', 'mov qword ptr [rbp - 0x18], r9',
    'mov rax, qword ptr [rbp + 0x18]', 'mov qword ptr [rbp - 0x10], rax', 'mov dword ptr [rbp - 0xc], 0',
    'movabs rdi, IM', 'call TRAMP_ENTER',
    'mov rdi, qword ptr [rbp - 0x40]', 'mov rsi, qword ptr [rbp - 0x38]', 'mov rdx, qword ptr [rbp - 0x30]',
    'mov rcx, qword ptr [rbp - 0x28]', 'mov r8, qword ptr [rbp - 0x20]', 'mov r9, qword ptr [rbp - 0x18]',
    // save_args(arg_stack_off = 0x68, for_call_origin): g at rsp for the call
    'mov rax, qword ptr [rbp + 0x18]', 'mov qword ptr [rbp - 0x68], rax', 'mov dword ptr [rbp - 0x64], 0',
    'call FUNC+5', 'mov qword ptr [rbp - 8], rax', 'nop dword ptr [rax + rax]',
    ...invoke519(1, 0x40, 0x60), 'movabs rdi, IM', 'call TRAMP_EXIT', 'mov rax, qword ptr [rbp - 8]',
    'mov rbx, qword ptr [rbp - 0x50]', 'leave', 'add rsp, 8', 'ret'] },
];

/** Labels (`name:`) out, `@name` → `@index` of the instruction after it. */
function resolve(lines: string[]): string[] {
  const out: string[] = [], at = new Map<string, number>();
  for (const l of lines) if (l.endsWith(':')) at.set(l.slice(0, -1), out.length); else out.push(l);
  return out.map((l) => l.replace(/@(\w+)/, (_, n: string) => `@${at.get(n) ?? `?${n}`}`));
}

function input(c: Case): TrampolineInput {
  const withCookie = (p: TrampProg): TrampProg => (c.cookie ? { ...p, cookie: c.cookie } : p);
  const orig = c.fexit.length || c.fmodRet?.length;
  return {
    image: IMAGE, size: 4096, model: c.model, flags: c.flags ?? (orig ? FLAGS_ORIG : BPF_TRAMP_F_RESTORE_REGS),
    fentry: c.fentry.map((k) => withCookie(P[k]!)), fexit: c.fexit.map((k) => withCookie(P[k]!)), fmodRet: (c.fmodRet ?? []).map((k) => withCookie(P[k]!)),
    origCall: FUNC, bpfProgEnter: ENTER, bpfProgExit: EXIT, gen: KERNEL_PROFILES[c.v].trampoline,
    trampImage: { im: IM, enter: TENTER, exit: TEXIT },
  };
}

describe('each generation\'s sequence, instruction by instruction', () => {
  let dis: Disassembler;
  beforeAll(async () => { dis = await loadDisassembler(); });

  /** Names for addresses, `@index` for branch targets inside the image, one `nops` per run (5.12+'s nop5 at ip_after_call kept). */
  function normalise(code: Uint8Array, ipAfterCall: boolean): { text: string[]; insns: Insn[] } {
    const insns = dis.disasm(code, IMAGE);
    const index = new Map(insns.map((i, k) => [i.address, k]));
    const text: string[] = [];
    const idx: number[] = [];
    insns.forEach((i, k) => {
      const t = branchTarget(i);
      let s = `${i.mnemonic} ${i.opStr}`.trim();
      if (t !== undefined && index.has(t) && !NAMES.has(t)) s = `${i.mnemonic} @${index.get(t)!}`;
      s = s.replace(/0x[0-9a-f]{9,}/g, (x) => NAMES.get(BigInt(x)) ?? x);
      const isPad = i.mnemonic === 'nop' && !(ipAfterCall && i.size === 5 && insns[k - 1]?.mnemonic === 'mov' && insns[k - 1]!.opStr.startsWith('qword ptr [rbp - 8], rax'));
      idx.push(text.length);
      if (isPad && (text[text.length - 1] === 'nops')) return;
      text.push(isPad ? 'nops' : s);
    });
    // Branch targets counted in instructions: re-number them in the collapsed listing.
    return { text: text.map((l) => l.replace(/@(\d+)/, (_, n: string) => `@${idx[Number(n)]!}`)), insns };
  }

  it.each(CASES.map((c) => [`${c.v} ${c.what}`, c] as const))('%s', (_t, c) => {
    const inp = input(c);
    const code = archPrepareBpfTrampoline(inp);
    if (typeof code === 'number') throw new Error(`errno ${code}`);
    const { text, insns } = normalise(code, KERNEL_PROFILES[c.v].trampoline.imagePerUpdate);
    expect(text).toEqual(resolve(c.expected));
    expect(insns.reduce((s, i) => s + i.size, 0)).toBe(code.length); // every byte decodes
    if (c.fmodRet?.length) {
      // do_fexit is 16-byte aligned, reached by `0f 85 rel32` from every fmod_ret program.
      const jne = insns.filter((i) => i.mnemonic === 'jne');
      const target = branchTarget(jne[0]!)!;
      expect(target % 16n).toBe(0n);
      expect(jne.every((i) => i.size === 6 && i.bytes[0] === 0x0f && i.bytes[1] === 0x85 && branchTarget(i) === target)).toBe(true);
    }
  });

  it('the alignment nops are x86_nops[min(len, ASM_NOP_MAX)]: 8 to 6.5, 11 in 6.6', () => {
    // fmod_ret P2 on test1 (5.12 and 6.6 frames): whatever the pad, its bytes are the kernel's nops.
    const pads = (['5.12', '6.6'] as const).map((v) => {
      const c: Case = { v, what: '', model: TEST1, fentry: [], fmodRet: [2], fexit: [], expected: [] };
      const code = archPrepareBpfTrampoline(input(c)) as Uint8Array;
      const insns = dis.disasm(code, IMAGE);
      const jne = insns.find((i) => i.mnemonic === 'jne')!;
      const target = branchTarget(jne)!;
      const retNop = insns.findIndex((i) => i.mnemonic === 'nop' && i.size === 5);
      const pad = insns.slice(retNop + 1).filter((i) => i.address < target);
      return { v, pad, len: Number(target - pad[0]!.address) };
    });
    for (const { v, pad, len } of pads) {
      const max = v === '6.6' ? 11 : 8;
      const long = (n: number): number[] => (n <= 8 ? [...X86_NOPS[n]!] : [...Array<number>(n - 9).fill(0x66), 0x2e, ...X86_NOPS[8]!]);
      const want: number[] = [];
      for (let l = len; l > 0; l -= Math.min(l, max)) want.push(...long(Math.min(l, max)));
      expect(pad.flatMap((i) => [...i.bytes])).toEqual(want);
    }
  });
});

/** 5 arguments, 7 registers: two 16-byte structs and three longs. */
const SEVEN_REGS: BtfFuncModel = { ...m(16, 16, 8, 8, 8), argFlags: [BTF_FMODEL_STRUCT_ARG, BTF_FMODEL_STRUCT_ARG, 0, 0, 0] };

describe('errors per generation', () => {
  const E = { ENOTSUPP: -524, EINVAL: -22 };
  const base = (v: KernelVersion, model: BtfFuncModel, extra: Partial<TrampolineInput> = {}): TrampolineInput =>
    ({ ...input({ v, what: '', model, fentry: [0], fexit: [], expected: [] }), ...extra });
  it.each([
    ['5.5', m(8, 8, 8, 8, 8, 8, 8), E.ENOTSUPP], ['6.1', m(8, 8, 8, 8, 8, 8, 8), E.ENOTSUPP],
    ['6.6', TEST7, 0], ['6.6', m(...Array<number>(12).fill(8)), 0], ['6.6', m(...Array<number>(13).fill(8)), E.ENOTSUPP],
    // 6.1: 5 arguments but 7 registers → -ENOTSUPP
    ['6.1', SEVEN_REGS, E.ENOTSUPP],
    ['6.1', STRUCT, 0], ['5.19', STRUCT, E.EINVAL], // a 16-byte argument before 6.1 has no width
  ] as const)('%s: model %#', (v, model, want) => {
    const r = archPrepareBpfTrampoline(base(v as KernelVersion, model));
    if (want === 0) expect(r).toBeInstanceOf(Uint8Array); else expect(r).toBe(want);
  });

  it('fmod_ret programs before 5.7: -EINVAL; CALL_ORIG from 5.12 without an image: -EINVAL', () => {
    expect(archPrepareBpfTrampoline({ ...base('5.5', TEST2), fmodRet: [P[2]!], flags: FLAGS_ORIG })).toBe(E.EINVAL);
    expect(archPrepareBpfTrampoline({ ...base('5.7', TEST2), fmodRet: [P[2]!], flags: FLAGS_ORIG })).toBeInstanceOf(Uint8Array);
    const { trampImage: _, ...noIm } = base('5.12', TEST2);
    expect(archPrepareBpfTrampoline({ ...noIm, fexit: [P[1]!], flags: FLAGS_ORIG })).toBe(E.EINVAL);
  });

  it('IP_ARG is ignored before 5.15 (the bit meant nothing to those generators)', () => {
    const a = archPrepareBpfTrampoline(base('5.12', TEST1, { flags: BPF_TRAMP_F_RESTORE_REGS | BPF_TRAMP_F_IP_ARG }));
    const b = archPrepareBpfTrampoline(base('5.12', TEST1, { flags: BPF_TRAMP_F_RESTORE_REGS }));
    expect(a).toEqual(b);
  });

  it('5.12+ fills im->ip_after_call (the nop5) and im->ip_epilogue (mov rdi, im; call __bpf_tramp_exit)', () => {
    const inp = input({ v: '5.12', what: '', model: TEST2, fentry: [], fexit: [1], expected: [] });
    const code = archPrepareBpfTrampoline(inp) as Uint8Array;
    const im = inp.trampImage!;
    const at = (a: bigint, n: number): number[] => [...code.subarray(Number(a - IMAGE), Number(a - IMAGE) + n)];
    expect(at(im.ipAfterCall!, 5)).toEqual([0x0f, 0x1f, 0x44, 0x00, 0x00]);
    expect(at(im.ipEpilogue!, 2)).toEqual([0x48, 0xbf]); // movabs rdi, im
  });
});
