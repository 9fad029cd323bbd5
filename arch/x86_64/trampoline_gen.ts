/**
 * @fileoverview What changes in arch/x86/net/bpf_jit_comp.c's trampoline generator from one kernel
 * generation to the next, derived once from the profile row (kernel/profile.ts), and the two
 * pieces that depend on it most: the frame layout and the argument save/restore.
 *
 * The frame, from the top down, as each generation lays it out (offsets below rbp):
 *
 *   5.5 – 5.12   [ret]? [args] ............................... push rbx
 *   5.15         [ret]? [args] [ip]? ......................... push rbx        (7e6f3cd89f04)
 *   5.17 – 6.1   [ret]? [regs] [nr_regs] [ip]? [run_ctx 16] .. push rbx        (f92c1e183604, e384c7b7b46d)
 *   6.6          [ret]? [regs] [nr_regs] [ip]? [rbx] [run_ctx 16] [stack args for the original call]
 *
 * `ret` exists with CALL_ORIG; [args]/[regs] is the programs' ctx (R1 points at its first slot);
 * 5.19's bpf_tramp_run_ctx is {bpf_cookie at 0, saved_run_ctx at 8} (struct bpf_run_ctx is empty).
 *
 * Generator facts that are not a column of the profile table, with the row they come with:
 *  - 6.1: IP_ARG stores `func_addr` with movabs instead of `[rbp+8] - 5` (7e40781cc8b7, "bpf: Use
 *    given function address for trampoline ip arg", Sep 2022; the profile table has no 6.0 row).
 *  - 6.1: save_regs stores each register of a struct argument with BPF_DW, other arguments with
 *    their own width (a9c5ad31fbdc; 6.3 later used the argument's size, 6.6 BPF_DW for all).
 *  - 6.6: save_args/restore_regs with BPF_DW (02a6dfa8ff43), arguments 7+ copied from the
 *    caller's stack, rbx kept in a frame slot instead of `push rbx`, lea/sub with disp32/imm32
 *    when the frame outgrows imm8 (473e3150e30a).
 *  - 6.5+: emit_nops() takes x86_nops up to 11 bytes (ASM_NOP_MAX 11, "x86_64: Longer NOPs",
 *    Peter Zijlstra, May 2023), which shows in the 16-byte alignment before fexit.
 * Config assumed for every generation: no IBT (no endbr64), no RETHUNK/SLS (`ret` is c3), no
 * call-depth tracking, a CPU with NOPL (P6 nops).
 */
import { BTF_FMODEL_STRUCT_ARG, BPF_TRAMP_F_CALL_ORIG, BPF_TRAMP_F_IP_ARG, type BtfFuncModel } from '../../bpf/arch.ts';
import type { TrampolineBehaviour } from '../../kernel/profile.ts';
import { type CodeBuffer, X86_NOPS, emitLdx, emitStx, mem, type MemSize } from './encoder.ts';
import { R8, R9, RAX, RBP, RCX, RDI, RDX, RSI, type Reg } from './regs.ts';

/** v5.5's row: what the generator does when TrampolineInput.gen is absent. */
export const TRAMP_V5_5: TrampolineBehaviour = Object.freeze({
  maxProgs: 40, fmodRet: false, enterSkips: false, imagePerUpdate: false, ipArg: false,
  argsCount: false, runCtx: false, structArgs: false, maxArgs: 6,
});

/** One generation's generator, as booleans the emitters test (each named for what it emits). */
export interface TrampGen {
  /** 5.7: invoke_bpf_mod_ret, `cmp [rbp-8], 0; jne do_fexit`, restore before the call also for fmod_ret. */
  readonly fmodRet: boolean;
  /** 5.12: `mov rdi, prog` before enter, `test rax, rax; je` around the program. */
  readonly enterSkips: boolean;
  /** 5.12: __bpf_tramp_enter/exit(im), restore_regs always, the 5-byte nop at im->ip_after_call. */
  readonly imagePerUpdate: boolean;
  /** 5.15: BPF_TRAMP_F_IP_ARG is honoured. */
  readonly ipArg: boolean;
  /** 6.1: the ip is `movabs rax, func_addr` (else `mov rax, [rbp+8]; sub rax, 5`). */
  readonly ipFromFuncAddr: boolean;
  /** 5.17: the argument (register) count at [rbp - nregs_off]. */
  readonly argsCount: boolean;
  /** 5.19: struct bpf_tramp_run_ctx on the frame; enter(prog, &run_ctx), exit(prog, start, &run_ctx). */
  readonly runCtx: boolean;
  /** 6.1: struct arguments by value count by the registers they take. */
  readonly structArgs: boolean;
  /** 6.6: BPF_DW save/restore, stack arguments, rbx in a frame slot, disp32 lea/sub. */
  readonly stackArgs: boolean;
  /** Argument registers (6.1: struct-aware) a traced function may need: 6, or 12 from 6.6. */
  readonly maxRegs: number;
  /** ASM_NOP_MAX: 8, 11 from 6.5. */
  readonly nopMax: number;
}

/** The generator of the profile row `b` (v5.5's when absent). */
export function trampGen(b: TrampolineBehaviour = TRAMP_V5_5): TrampGen {
  const stackArgs = b.maxArgs > 6;
  return {
    fmodRet: b.fmodRet, enterSkips: b.enterSkips, imagePerUpdate: b.imagePerUpdate, ipArg: b.ipArg,
    ipFromFuncAddr: b.structArgs, argsCount: b.argsCount, runCtx: b.runCtx, structArgs: b.structArgs,
    stackArgs, maxRegs: b.maxArgs, nopMax: stackArgs ? 11 : 8,
  };
}

/** "struct bpf_tramp_run_ctx": bpf_cookie (offset 0) and saved_run_ctx (offset 8), rounded to 8. */
export const TRAMP_RUN_CTX = { size: 16, cookie: 0, savedRunCtx: 8 } as const;

/** The SysV argument registers: BPF_REG_1 + i for i < 5 (rdi rsi rdx rcx r8), then X86_REG_R9. */
export const ARG_REGS: readonly Reg[] = [RDI, RSI, RDX, RCX, R8, R9];

/** A negative errno raised while emitting (the kernel's `return -EINVAL` from deep inside). */
export class TrampError extends Error {
  readonly errno: number;
  constructor(errno: number, msg: string) {
    super(msg);
    this.errno = errno;
  }
}
export const EFAULT = 14, EINVAL = 22, ENOTSUPP = 524;

/** Registers argument `i` takes: a struct by value its 8-byte pieces (6.1+), anything else one. */
const regsOf = (g: TrampGen, m: BtfFuncModel, i: number): number =>
  (g.structArgs && ((m.argFlags?.[i] ?? 0) & BTF_FMODEL_STRUCT_ARG)) || (g.stackArgs && m.argSize[i]! > 8)
    ? Math.ceil(m.argSize[i]! / 8) : 1;

/** Offsets below rbp of each frame slot (absent: the generation or the flags have none). */
export interface TrampFrame {
  stackSize: number;
  /** ctx: the first argument slot, [rbp - regsOff]; the return value is at [rbp - 8]. */
  regsOff: number;
  nregsOff?: number;
  ipOff?: number;
  rbxOff?: number;
  runCtxOff?: number;
  /** 6.6: where the stack arguments of the original call are laid out (rsp at the call). */
  argStackOff?: number;
  /** nr_args, or 6.1+'s register count with struct pieces (what [rbp - nregsOff] holds). */
  nrRegs: number;
  /** 6.6: registers the arguments take (get_nr_used_regs); the rest go on the stack. */
  usedRegs: number;
}

/** get_nr_used_regs() (6.6): registers taken before the first argument that no longer fits. */
function usedRegsOf(g: TrampGen, m: BtfFuncModel): number {
  let used = 0;
  for (let i = 0; i < Math.min(m.nrArgs, 12); i++) {
    const n = regsOf(g, m, i);
    if (used + n <= 6) used += n;
    if (used >= 6) break;
  }
  return used;
}

/** The frame of `m` under `flags`, or a negative errno (-ENOTSUPP: too many arguments). */
export function trampFrame(g: TrampGen, m: BtfFuncModel, flags: number): TrampFrame | number {
  let nrRegs = m.nrArgs;
  if (g.structArgs) for (let i = 0; i < m.nrArgs; i++) nrRegs += regsOf(g, m, i) - 1;
  // "x86-64 supports up to 6 arguments. 7+ can be added in the future" until 6.5; 6.1 also
  // counts the extra registers of struct arguments; 6.6 takes MAX_BPF_FUNC_ARGS (12) registers.
  if (!g.stackArgs && m.nrArgs > 6) return -ENOTSUPP;
  if (nrRegs > g.maxRegs) return -ENOTSUPP;
  const callOrig = (flags & BPF_TRAMP_F_CALL_ORIG) !== 0;
  const ip = g.ipArg && (flags & BPF_TRAMP_F_IP_ARG) !== 0;
  if (!g.argsCount) {
    // 5.5: nr_args * 8 (+ 8 for the return value); 5.15 puts the ip below the arguments and
    // continues with stack_size - 8 for them ("stack will be correctly restored with leave").
    const stackSize = m.nrArgs * 8 + (callOrig ? 8 : 0) + (ip ? 8 : 0);
    return { stackSize, regsOff: stackSize - (ip ? 8 : 0), ...(ip ? { ipOff: stackSize } : {}), nrRegs, usedRegs: Math.min(nrRegs, 6) };
  }
  let s = callOrig ? 8 : 0; // save_ret: room for the return value of orig_call
  s += nrRegs * 8;
  const regsOff = s;
  s += 8; // the register count
  const nregsOff = s;
  if (ip) s += 8;
  const ipOff = s;
  let rbxOff: number | undefined;
  if (g.stackArgs) { s += 8; rbxOff = s; }
  s += TRAMP_RUN_CTX.size;
  const runCtxOff = s;
  const usedRegs = g.stackArgs ? usedRegsOf(g, m) : nrRegs;
  if (g.stackArgs && nrRegs > 6 && callOrig) {
    s += (nrRegs - usedRegs) * 8; // the stack arguments of the original call
    // rsp 16-byte aligned at that call: stack_size + rbp + two return addresses ≡ 0 (mod 16).
    s += s % 16 ? 0 : 8;
  }
  return {
    stackSize: s, regsOff, nregsOff, ...(ip ? { ipOff } : {}), ...(rbxOff !== undefined ? { rbxOff } : {}),
    ...(g.runCtx ? { runCtxOff } : {}), ...(g.stackArgs ? { argStackOff: s } : {}), nrRegs, usedRegs,
  };
}

/** bytes_to_bpf_size(): the store/load width of an argument of `bytes` bytes. */
function argWidth(m: BtfFuncModel, i: number): MemSize {
  const bytes = m.argSize[i];
  if (bytes === 1 || bytes === 2 || bytes === 4 || bytes === 8) return bytes;
  // The kernel's bytes_to_bpf_size() returns -1 and emit_stx() then writes a malformed store;
  // btf_distill_func_proto() never hands it such a size, so refuse instead.
  throw new TrampError(-EINVAL, `arg${i} has size ${String(bytes)}, not 1, 2, 4 or 8`);
}

/** One register slot: which register, its slot index in ctx, and the width it is saved with. */
interface RegSlot { reg: Reg; slot: number; width: MemSize }

/**
 * The register arguments and their ctx slots:
 *  - to 5.19: argument i in register i, its own width (save_regs with bytes_to_bpf_size);
 *  - 6.1: a struct by value takes ceil(size/8) registers, each saved as 8 bytes;
 *  - 6.6: every register saved as 8 bytes; an argument that no longer fits the 6 registers goes
 *    on the stack (and so do the following ones if they do not fit: "struct members should be
 *    all in register or all on the stack"), keeping its place in ctx.
 */
function regSlots(g: TrampGen, m: BtfFuncModel): RegSlot[] {
  const out: RegSlot[] = [];
  if (g.stackArgs) {
    let r = 0, slot = 0;
    for (let i = 0; i < Math.min(m.nrArgs, 12); i++) {
      const n = regsOf(g, m, i);
      if (r + n <= 6) for (let k = 0; k < n; k++) out.push({ reg: ARG_REGS[r++]!, slot: slot++, width: 8 });
      else slot += n;
      if (r >= 6) break;
    }
    return out;
  }
  let r = 0;
  for (let i = 0; i < Math.min(m.nrArgs, 6); i++) {
    const struct = g.structArgs && ((m.argFlags?.[i] ?? 0) & BTF_FMODEL_STRUCT_ARG) !== 0;
    const n = struct ? Math.ceil(m.argSize[i]! / 8) : 1;
    for (let k = 0; k < n && r < 6; k++, r++) out.push({ reg: ARG_REGS[r]!, slot: r, width: struct ? 8 : argWidth(m, i) });
  }
  return out;
}

/**
 * save_regs() / 6.6's save_args(for_call_origin = false): each argument register into its ctx
 * slot [rbp - regsOff + 8 * slot] (`mov [rbp-0x10], edi`, `mov [rbp-0x8], rsi` …); 6.6 then
 * copies the stack arguments (`mov rax, [rbp + 0x18 + 8k]; mov [rbp - off], rax`) into theirs.
 */
export function saveArgs(buf: CodeBuffer, g: TrampGen, m: BtfFuncModel, f: TrampFrame): void {
  if (!g.stackArgs) {
    for (const s of regSlots(g, m)) emitStx(buf, s.width, mem(RBP, -(f.regsOff - s.slot * 8)), s.reg); // mov [rbp-N], argreg
    return;
  }
  copyArgs(buf, g, m, f.regsOff, false);
}

/** 6.6's save_args(): interleaves register stores and stack copies in argument order. */
function copyArgs(buf: CodeBuffer, g: TrampGen, m: BtfFuncModel, stackSize: number, forCallOrigin: boolean): void {
  let r = 0, stackSlots = 0, firstOff = 0, off = stackSize;
  for (let i = 0; i < Math.min(m.nrArgs, 12); i++) {
    const n = regsOf(g, m, i);
    if (r + n > 6) {
      for (let k = 0; k < n; k++) {
        // The caller's stack arguments: rbp + 8 (push rbp) + 8 (into the traced function) + 8 (its caller).
        emitLdx(buf, 8, RAX, mem(RBP, stackSlots * 8 + 0x18)); // mov rax, qword ptr [rbp + 0x18 + 8k]
        emitStx(buf, 8, mem(RBP, -off), RAX); //                  mov qword ptr [rbp - off], rax
        if (!stackSlots) firstOff = off;
        off -= 8;
        stackSlots++;
      }
    } else if (forCallOrigin) {
      r += n; // the registers are reloaded by restore_regs; only the stack part is rebuilt
    } else {
      for (let k = 0; k < n; k++) { emitStx(buf, 8, mem(RBP, -off), ARG_REGS[r++]!); off -= 8; } // mov [rbp - off], argreg
    }
  }
  // clean_stack_garbage(): one stack slot of at most 4 bytes may carry garbage in its upper half
  // (a compiler may reserve only 4 bytes for it): `mov dword ptr [rbp - (first_off - 4)], 0`.
  if (stackSlots === 1 && m.argSize[m.nrArgs - 1]! <= 4) {
    buf.emit1(0xc7); // mov dword ptr [rbp + off], 0: c7 45 disp8 / c7 85 disp32, imm32 0
    const d = -(firstOff - 4);
    if (d >= -128) buf.emit2(0x45, d & 0xff);
    else { buf.emit1(0x85); buf.emitU32(d); }
    buf.emitU32(0);
  }
}

/** restore_regs(): the argument registers back from their slots (movzx for 1/2 bytes). */
export function restoreRegs(buf: CodeBuffer, g: TrampGen, m: BtfFuncModel, f: TrampFrame): void {
  for (const s of regSlots(g, m)) emitLdx(buf, s.width, s.reg, mem(RBP, -(f.regsOff - s.slot * 8))); // mov argreg, [rbp-N]
}

/** 6.6's save_args(arg_stack_off, for_call_origin = true): the stack arguments for the original call. */
export function copyStackArgsForCall(buf: CodeBuffer, g: TrampGen, m: BtfFuncModel, f: TrampFrame): void {
  if (g.stackArgs && f.argStackOff !== undefined) copyArgs(buf, g, m, f.argStackOff, true);
}

/** x86_nops[9..11] (6.5+, 64-bit): cs-prefixed and 66-prefixed NOPL 8. */
const LONG_NOPS: readonly (readonly number[])[] = [
  [0x2e, ...X86_NOPS[8]!], [0x66, 0x2e, ...X86_NOPS[8]!], [0x66, 0x66, 0x2e, ...X86_NOPS[8]!],
];

/** emit_nops(): `len` bytes, at most ASM_NOP_MAX (8, or 11 from 6.5) per nop. */
export function emitNopsGen(buf: CodeBuffer, g: TrampGen, len: number): void {
  for (let left = len; left > 0;) {
    const n = Math.min(left, g.nopMax);
    buf.emitBytes(n <= 8 ? X86_NOPS[n]! : LONG_NOPS[n - 9]!);
    left -= n;
  }
}
