/**
 * @fileoverview The x86-64 BPF trampoline generator: arch_prepare_bpf_trampoline()
 * (arch/x86/net/bpf_jit_comp.c) of each kernel generation, byte for byte: v5.5's (fec56f5890d9
 * "bpf: Introduce BPF trampoline", with 4b3da77b72ad's X86_PATCH_SIZE) when TrampolineInput.gen
 * is absent, later ones driven by the profile row (trampoline_gen.ts lists what changes when). It converts the native calling convention of a
 * traced kernel function into BPF's: the arguments go to an array of u64 on the trampoline's
 * stack and each program gets a pointer to it in R1 (ctx). fexit programs also see the return
 * value, at ctx[nr_args].
 *
 * Example: int bpf_fentry_test2(int a, u64 b) with one fentry and one fexit program. fexit needs
 * the original call, so bpf/trampoline.ts passes CALL_ORIG | SKIP_FRAME; the function's 5-byte
 * nop was patched to `call <this image>`. stack_size = 2 * 8 + 8 = 0x18.
 *
 *   55                      push rbp
 *   48 89 e5                mov rbp, rsp
 *   48 83 ec 18             sub rsp, 0x18                   // a, b and the return value
 *   53                      push rbx                        // holds each prog's start time
 *   89 7d e8                mov dword ptr [rbp-0x18], edi   // save_regs: a, 4 bytes (int)
 *   48 89 75 f0             mov qword ptr [rbp-0x10], rsi   //            b, 8 bytes (u64)
 *   e8 xx xx xx xx          call __bpf_prog_enter           // fentry prog: rcu_read_lock, start time
 *   48 89 c3                mov rbx, rax
 *   48 8d 7d e8             lea rdi, [rbp-0x18]             // R1 = ctx = {a, b}
 *   e8 xx xx xx xx          call fentry_prog->bpf_func      // direct call into the JIT image
 *   48 bf xx*8              movabs rdi, fentry_prog         // struct bpf_prog *
 *   48 89 de                mov rsi, rbx                    // start time
 *   e8 xx xx xx xx          call __bpf_prog_exit            // stats, rcu_read_unlock
 *   8b 7d e8                mov edi, dword ptr [rbp-0x18]   // restore_regs (there were fentry progs)
 *   48 8b 75 f0             mov rsi, qword ptr [rbp-0x10]
 *   e8 xx xx xx xx          call bpf_fentry_test2+5         // the body, past the patched call
 *   48 89 45 f8             mov qword ptr [rbp-0x8], rax    // ctx[2] = return value
 *   e8 xx xx xx xx          call __bpf_prog_enter           // fexit prog: the same 35 bytes
 *   48 89 c3                mov rbx, rax
 *   48 8d 7d e8             lea rdi, [rbp-0x18]             // R1 = ctx = {a, b, ret}
 *   e8 xx xx xx xx          call fexit_prog->bpf_func
 *   48 bf xx*8              movabs rdi, fexit_prog
 *   48 89 de                mov rsi, rbx
 *   e8 xx xx xx xx          call __bpf_prog_exit
 *   48 8b 45 f8             mov rax, qword ptr [rbp-0x8]    // the original return value
 *   5b                      pop rbx
 *   c9                      leave
 *   48 83 c4 08             add rsp, 8                      // skip bpf_fentry_test2's frame
 *   c3                      ret                             // to bpf_fentry_test2's caller
 *
 * With only fentry programs the flags are RESTORE_REGS: stack_size = 0x10, no original call,
 * restore_regs after the programs, and `ret` goes back to bpf_fentry_test2+5.
 *
 * Facts kept from v5.5 (checked against the patches on lore, see the tests):
 *  - save_regs/restore_regs use each argument's own width (emit_stx/emit_ldx with
 *    bytes_to_bpf_size(arg_size[i])): a narrower argument leaves the upper bytes of its u64 slot
 *    as they were; a 1- or 2-byte restore is movzx, a 4-byte one zero-extends.
 *  - restore_regs before the original call only `if (fentry_cnt)`: with fexit programs alone the
 *    argument registers still hold the arguments (5.7 added fmod_ret to the condition; the
 *    bpf_tramp_image rework of 5.12 made the restore unconditional).
 *  - Each program costs 35 bytes JITed, 45 interpreted (movabs rsi, prog->insnsi), as long as the
 *    addresses do not fit in u32 (emit_mov_imm64 turns a u32 into `mov r32, imm32`).
 *  - The size is checked after emitting: past half a page minus BPF_INSN_SAFETY the kernel
 *    WARNs and returns -EFAULT ("2k bytes is enough to call 40+ BPF programs directly").
 *
 * What later generations add around the same skeleton (trampoline_gen.ts has the frame):
 *  - 5.7  fmod_ret: `xor eax, eax; mov [rbp-8], rax`, then per program its call block with
 *         `mov [rbp-8], rax` after the call, `cmp qword ptr [rbp-8], 0` and a 6-byte hole that
 *         becomes `jne do_fexit` once do_fexit is known, 16-byte aligned with nops.
 *  - 5.12 `mov rdi, prog` before `call __bpf_prog_enter`, `test rax, rax; je` over the program
 *         to the exit call; with CALL_ORIG `mov rdi, im; call __bpf_tramp_enter` after the saves,
 *         a 5-byte nop after the original call (im->ip_after_call, later poked to `jmp` the
 *         epilogue) and `mov rdi, im; call __bpf_tramp_exit` at im->ip_epilogue.
 *  - 5.15 IP_ARG: `mov rax, [rbp+8]; sub rax, 5; mov [rbp-ip_off], rax`.
 *  - 5.19 `mov eax, nr_args; mov [rbp-nregs_off], rax`; per program `mov rdi, cookie;
 *         mov [rbp-run_ctx_off], rdi; … lea rsi, [rbp-run_ctx_off]` for enter and
 *         `lea rdx, [rbp-run_ctx_off]` for exit.
 *  - 6.1  struct arguments by registers, `movabs rax, func_addr` for the ip.
 *  - 6.6  up to 12 arguments (stack ones copied in and out), BPF_DW saves, rbx in a slot.
 *
 * Where the kernel writes bytes by hand (EMIT1(0x55), EMIT4(0x48, 0x8D, 0x7D, -stack_size) …),
 * the named emitters of encoder.ts give the same bytes; each call is commented with its asm.
 */
import {
  BPF_TRAMP_F_CALL_ORIG, BPF_TRAMP_F_IP_ARG, BPF_TRAMP_F_RESTORE_REGS, BPF_TRAMP_F_SKIP_FRAME,
  type BpfArchTrampoline, type TrampProg, type TrampolineInput,
} from '../../bpf/arch.ts';
import { logger } from '../../emulator/log.ts';
import {
  CodeBuffer, EncodeError, X86_NOPS, X86_PATCH_SIZE, emitAluRI, emitCall, emitLdx, emitLea, emitLeave, emitMovImm32,
  emitMovImm64, emitMovRR, emitPop, emitPush, emitRet, emitStx, emitTestRR, mem,
} from './encoder.ts';
import { RAX, RBP, RBX, RDI, RDX, RSI, RSP, type Reg } from './regs.ts';
import { textPokeInsn } from './text_poke.ts';
import {
  EFAULT, EINVAL, TRAMP_RUN_CTX, TrampError, copyStackArgsForCall, emitNopsGen, restoreRegs, saveArgs, trampFrame, trampGen,
  type TrampFrame, type TrampGen,
} from './trampoline_gen.ts';

/** Slack the kernel keeps at the end of an image (bpf_jit_comp.c's BPF_INSN_SAFETY). */
export const BPF_INSN_SAFETY = 64;

/** "x86-64 supports up to 6 arguments. 7+ can be added in the future" (v5.5). */
export const MAX_TRAMP_ARGS = 6;

/** v5.5's bytes of one program's call block: enter, mov, lea, [movabs rsi], call, movabs, mov, exit. */
export const INVOKE_BPF_SIZE = { jited: 35, interpreted: 45 } as const;

/** Emits at a known guest address, so rel32 calls can be computed as they are emitted. */
class TrampBuffer extends CodeBuffer {
  readonly image: bigint;
  constructor(image: bigint) {
    super(512);
    this.image = image;
  }

  /** The kernel's emit_call(&prog, func, prog): `call func` from the current position. */
  call(func: bigint): void {
    emitCall(this, func, this.image + BigInt(this.length));
  }

  /** The guest address of the current position (what PTR_ALIGN sees: the image is written in place). */
  get ip(): bigint { return this.image + BigInt(this.length); }
}

/** movabs (or mov r32 when it fits u32): the kernel's emit_mov_imm64, which has no simm32 form. */
const movImm64 = (buf: CodeBuffer, r: Reg, v: bigint): void => emitMovImm64(buf, r, v, { simm32: false });

/**
 * invoke_bpf_prog(): one program's call block. `saveRet` stores its return value at [rbp-8]
 * (fmod_ret: the next program and the skip test read it). 5.12+ skips the program when
 * __bpf_prog_enter returns 0 (recursion), still calling __bpf_prog_exit.
 */
function invokeBpfProg(buf: TrampBuffer, g: TrampGen, f: TrampFrame, p: TrampProg, input: TrampolineInput, saveRet: boolean): void {
  const runCtx = f.runCtxOff !== undefined;
  if (runCtx) {
    movImm64(buf, RDI, p.cookie ?? 0n); //                        mov rdi, cookie       (xor edi, edi for 0)
    emitStx(buf, 8, mem(RBP, -f.runCtxOff! + TRAMP_RUN_CTX.cookie), RDI); // mov [rbp - run_ctx_off], rdi  ; run_ctx.bpf_cookie
  }
  if (g.enterSkips) movImm64(buf, RDI, p.progAddr); //           mov rdi, prog         ; arg1
  if (runCtx) emitLea(buf, RSI, mem(RBP, -f.runCtxOff!)); //     lea rsi, [rbp - run_ctx_off]  ; arg2: &run_ctx
  buf.call(input.bpfProgEnter); //                               call __bpf_prog_enter
  emitMovRR(buf, 64, RBX, RAX); //                               mov rbx, rax          ; the start time
  let jeAt = -1;
  if (g.enterSkips) {
    emitTestRR(buf, 64, RAX, RAX); //                            test rax, rax         ; 0: recursion, skip
    jeAt = buf.length;
    emitNopsGen(buf, g, 2); //                                   2 nops, become `je skip` below
  }
  emitLea(buf, RDI, mem(RBP, -f.regsOff)); //                    lea rdi, [rbp - regs_off]  ; arg1: ctx
  if (p.insnsi !== undefined) movImm64(buf, RSI, p.insnsi); //   movabs rsi, prog->insnsi   ; interpreter's arg2
  buf.call(p.bpfFunc); //                                        call prog->bpf_func
  if (saveRet) emitStx(buf, 8, mem(RBP, -8), RAX); //            mov qword ptr [rbp-8], rax ; fmod_ret's return value
  if (jeAt >= 0) {
    buf.setU8(jeAt, 0x74); //                                    je skip_exec_of_prog (rel8 to the exit call)
    buf.setU8(jeAt + 1, buf.length - jeAt - 2);
  }
  movImm64(buf, RDI, p.progAddr); //                             movabs rdi, prog      ; arg1 of __bpf_prog_exit
  emitMovRR(buf, 64, RSI, RBX); //                               mov rsi, rbx          ; arg2: the start time
  if (runCtx) emitLea(buf, RDX, mem(RBP, -f.runCtxOff!)); //     lea rdx, [rbp - run_ctx_off]  ; arg3
  buf.call(input.bpfProgExit); //                                call __bpf_prog_exit
}

/**
 * invoke_bpf_mod_ret(): the first fmod_ret program sees 0 as the return value; after each,
 * `cmp qword ptr [rbp-8], 0` and a 6-byte hole for `jne do_fexit`. Returns the holes.
 */
function invokeBpfModRet(buf: TrampBuffer, g: TrampGen, f: TrampFrame, progs: readonly TrampProg[], input: TrampolineInput): number[] {
  emitMovImm32(buf, false, RAX, 0); //                 xor eax, eax
  emitStx(buf, 8, mem(RBP, -8), RAX); //               mov qword ptr [rbp-8], rax
  const branches: number[] = [];
  for (const p of progs) {
    invokeBpfProg(buf, g, f, p, input, true);
    buf.emitBytes([0x48, 0x83, 0x7d, 0xf8, 0x00]); //  cmp qword ptr [rbp-8], 0x0  (EMIT4 + EMIT1 in the kernel)
    branches.push(buf.length);
    emitNopsGen(buf, g, 4 + 2); //                     the hole for `jne do_fexit` (0f 85 rel32)
  }
  return branches;
}

function prepare(input: TrampolineInput): Uint8Array {
  const g = trampGen(input.gen);
  const m = input.model;
  const flags = input.flags & ~(g.ipArg ? 0 : BPF_TRAMP_F_IP_ARG); // unknown before 5.15
  const fmodRet = input.fmodRet ?? [];
  if (fmodRet.length && !g.fmodRet) throw new TrampError(-EINVAL, 'fmod_ret programs before 5.7');
  const f = trampFrame(g, m, flags); // the argument count is checked first, as every generation does
  if (typeof f === 'number') throw new TrampError(f, `${m.nrArgs} arguments`);
  if ((flags & BPF_TRAMP_F_RESTORE_REGS) && (flags & BPF_TRAMP_F_SKIP_FRAME)) throw new TrampError(-EINVAL, 'RESTORE_REGS with SKIP_FRAME');
  const callOrig = (flags & BPF_TRAMP_F_CALL_ORIG) !== 0;
  const im = callOrig && g.imagePerUpdate ? input.trampImage : undefined;
  if (callOrig && g.imagePerUpdate && !im) throw new TrampError(-EINVAL, 'CALL_ORIG needs a bpf_tramp_image from 5.12');
  // Skip the patched call instruction: orig_call then points at the actual body.
  const origCall = input.origCall + ((flags & BPF_TRAMP_F_SKIP_FRAME) ? BigInt(X86_PATCH_SIZE) : 0n);

  const buf = new TrampBuffer(input.image);
  emitPush(buf, RBP); //                          push rbp
  emitMovRR(buf, 64, RBP, RSP); //                mov rbp, rsp
  emitAluRI(buf, 'sub', 64, RSP, f.stackSize); // sub rsp, stack_size   (48 83 ec ib; 6.6: 48 81 ec id past 127)
  if (f.rbxOff !== undefined) emitStx(buf, 8, mem(RBP, -f.rbxOff), RBX); // mov [rbp - rbx_off], rbx  (6.6)
  else emitPush(buf, RBX); //                     push rbx              ; the start time across each call

  if (f.nregsOff !== undefined) {
    movImm64(buf, RAX, BigInt(f.nrRegs)); //      mov eax, nr_regs
    emitStx(buf, 8, mem(RBP, -f.nregsOff), RAX); // mov qword ptr [rbp - nregs_off], rax
  }
  if (f.ipOff !== undefined) {
    if (g.ipFromFuncAddr) {
      movImm64(buf, RAX, input.origCall); //      movabs rax, func_addr
    } else {
      emitLdx(buf, 8, RAX, mem(RBP, 8)); //       mov rax, qword ptr [rbp+8]   ; return address into the function
      emitAluRI(buf, 'sub', 64, RAX, X86_PATCH_SIZE); // sub rax, 5          ; back over the patched call
    }
    emitStx(buf, 8, mem(RBP, -f.ipOff), RAX); //  mov qword ptr [rbp - ip_off], rax
  }

  saveArgs(buf, g, m, f);

  if (im) {
    movImm64(buf, RDI, im.im); //                 mov rdi, im
    buf.call(im.enter); //                        call __bpf_tramp_enter   ; percpu_ref_get
  }

  for (const p of input.fentry) invokeBpfProg(buf, g, f, p, input, false);

  const branches = fmodRet.length ? invokeBpfModRet(buf, g, f, fmodRet, input) : [];

  if (callOrig) {
    // The programs clobbered the argument registers: v5.5 reloads them after fentry programs,
    // 5.7 also after fmod_ret ones, 5.12 always.
    if (g.imagePerUpdate || input.fentry.length || fmodRet.length) restoreRegs(buf, g, m, f);
    copyStackArgsForCall(buf, g, m, f); //        6.6: the stack arguments at rsp
    buf.call(origCall); //                        call orig_call
    emitStx(buf, 8, mem(RBP, -8), RAX); //        mov qword ptr [rbp-8], rax  ; for fexit programs
    if (im) {
      im.ipAfterCall = buf.ip; //                 im->ip_after_call: poked to `jmp ip_epilogue` when the image goes
      buf.emitBytes(X86_NOPS[5]!); //             nop5
    }
  }

  if (fmodRet.length) {
    // "All branch targets should be 16-byte aligned": do_fexit at the next multiple of 16 of
    // the guest address (the kernel emits into the image itself, so PTR_ALIGN sees it).
    emitNopsGen(buf, g, Number((16n - (buf.ip % 16n)) % 16n));
    for (const at of branches) { //               jne do_fexit   (emit_cond_near_jump over the hole)
      buf.setU8(at, 0x0f);
      buf.setU8(at + 1, 0x85);
      buf.setU32(at + 2, buf.length - (at + 6));
    }
  }

  for (const p of input.fexit) invokeBpfProg(buf, g, f, p, input, false);

  if (flags & BPF_TRAMP_F_RESTORE_REGS) restoreRegs(buf, g, m, f);

  if (im) {
    im.ipEpilogue = buf.ip; //                    im->ip_epilogue
    movImm64(buf, RDI, im.im); //                 mov rdi, im
    buf.call(im.exit); //                         call __bpf_tramp_exit    ; percpu_ref_put
  }
  if (callOrig) emitLdx(buf, 8, RAX, mem(RBP, -8)); // mov rax, qword ptr [rbp-8]  ; the (possibly fmod_ret's) return value

  if (f.rbxOff !== undefined) emitLdx(buf, 8, RBX, mem(RBP, -f.rbxOff)); // mov rbx, [rbp - rbx_off]  (6.6)
  else emitPop(buf, RBX); //                      pop rbx
  emitLeave(buf); //                              leave
  // Skip our return address (into the traced function) and return to its caller.
  if (flags & BPF_TRAMP_F_SKIP_FRAME) emitAluRI(buf, 'add', 64, RSP, 8); // add rsp, 8
  emitRet(buf); //                                ret

  // Checked after emitting, as the kernel: the image (half a page to 5.11, a page from 5.12)
  // minus BPF_INSN_SAFETY.
  if (buf.length > input.size - BPF_INSN_SAFETY) {
    logger.warn({ image: `0x${input.image.toString(16)}`, len: buf.length, size: input.size },
      'arch_prepare_bpf_trampoline: image overflows (WARN_ON_ONCE)');
    throw new TrampError(-EFAULT, `trampoline of ${buf.length} bytes does not fit ${input.size} - ${BPF_INSN_SAFETY}`);
  }
  return buf.bytes();
}

/**
 * arch_prepare_bpf_trampoline(): the image for `input`, to be written at `input.image`, or a
 * negative errno as the generation returns it:
 *  - more arguments (registers) than the generation takes: -ENOTSUPP (524)
 *  - RESTORE_REGS together with SKIP_FRAME: -EINVAL
 *  - a call target out of rel32 range: -EINVAL (from emit_call)
 *  - longer than `size` - BPF_INSN_SAFETY: -EFAULT (the kernel WARNs)
 * From 5.12 with CALL_ORIG it also sets `input.trampImage.ipAfterCall/ipEpilogue`, as the kernel
 * fills im->ip_after_call and im->ip_epilogue.
 */
export function archPrepareBpfTrampoline(input: TrampolineInput): Uint8Array | number {
  try {
    return prepare(input);
  } catch (e) {
    if (e instanceof TrampError) return e.errno;
    if (e instanceof EncodeError) return -EINVAL; // emit_call: "Target call %p is out of range"
    throw e;
  }
}

export { textPokeInsn };

/** bpf/arch.ts's BpfArchTrampoline for x86-64. */
export const x86_64Trampoline: BpfArchTrampoline = { archPrepareBpfTrampoline, textPokeInsn };
