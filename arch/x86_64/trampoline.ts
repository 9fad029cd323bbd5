/**
 * @fileoverview The x86-64 BPF trampoline generator: v5.5's arch_prepare_bpf_trampoline()
 * (arch/x86/net/bpf_jit_comp.c, from fec56f5890d9 "bpf: Introduce BPF trampoline", with
 * 4b3da77b72ad's X86_PATCH_SIZE), byte for byte. It converts the native calling convention of a
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
 * Where the kernel writes bytes by hand (EMIT1(0x55), EMIT4(0x48, 0x8D, 0x7D, -stack_size) …),
 * the named emitters of encoder.ts give the same bytes; each call is commented with its asm.
 */
import {
  BPF_TRAMP_F_CALL_ORIG, BPF_TRAMP_F_RESTORE_REGS, BPF_TRAMP_F_SKIP_FRAME,
  type BpfArchTrampoline, type BtfFuncModel, type TrampProg, type TrampolineInput,
} from '../../bpf/arch.ts';
import { logger } from '../../emulator/log.ts';
import {
  CodeBuffer, EncodeError, X86_PATCH_SIZE, emitAluRI, emitCall, emitLdx, emitLea, emitLeave, emitMovImm64,
  emitMovRR, emitPop, emitPush, emitRet, emitStx, mem, type MemSize,
} from './encoder.ts';
import { R8, R9, RAX, RBP, RBX, RCX, RDI, RDX, RSI, RSP, type Reg } from './regs.ts';
import { textPokeInsn } from './text_poke.ts';

const EFAULT = 14, EINVAL = 22, ENOTSUPP = 524;

/** Slack the kernel keeps at the end of an image (bpf_jit_comp.c's BPF_INSN_SAFETY). */
export const BPF_INSN_SAFETY = 64;

/** "x86-64 supports up to 6 arguments. 7+ can be added in the future" (v5.5). */
export const MAX_TRAMP_ARGS = 6;

/** The SysV argument registers: BPF_REG_1 + i for i < 5 (rdi rsi rdx rcx r8), then X86_REG_R9. */
const ARG_REGS: readonly Reg[] = [RDI, RSI, RDX, RCX, R8, R9];

/** Bytes of one program's call block: enter, mov, lea, [movabs rsi], call, movabs, mov, exit. */
export const INVOKE_BPF_SIZE = { jited: 35, interpreted: 45 } as const;

/** A negative errno raised while emitting (the kernel's `return -EINVAL` from deep inside). */
class TrampError extends Error {
  readonly errno: number;
  constructor(errno: number, msg: string) {
    super(msg);
    this.errno = errno;
  }
}

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
}

/** bytes_to_bpf_size(): the store/load width for an argument of `bytes` bytes. */
function argWidth(m: BtfFuncModel, i: number): MemSize {
  const bytes = m.argSize[i];
  if (bytes === 1 || bytes === 2 || bytes === 4 || bytes === 8) return bytes;
  // The kernel's bytes_to_bpf_size() returns -1 and emit_stx() then writes a malformed store;
  // btf_distill_func_proto() never hands it such a size, so refuse instead.
  throw new TrampError(-EINVAL, `arg${i} has size ${String(bytes)}, not 1, 2, 4 or 8`);
}

/** Arg i lives at [rbp - stack_size + 8*i]: ctx[i]. */
const argSlot = (stackSize: number, i: number) => mem(RBP, -(stackSize - i * 8));

/**
 * save_regs(): stores the argument registers into their ctx slots, each with its own width
 * (emit_stx's REX rules: sil/dil need one for a byte store, r8/r9 take REX.R):
 *   89 7d f0      mov dword ptr [rbp-0x10], edi    int
 *   40 88 7d f0   mov byte ptr [rbp-0x10], dil     char
 *   66 89 55 e0   mov word ptr [rbp-0x20], dx      short
 *   4c 89 45 f0   mov qword ptr [rbp-0x10], r8     u64 / pointer
 */
function saveRegs(buf: CodeBuffer, m: BtfFuncModel, stackSize: number): void {
  for (let i = 0; i < Math.min(m.nrArgs, MAX_TRAMP_ARGS); i++) {
    emitStx(buf, argWidth(m, i), argSlot(stackSize, i), ARG_REGS[i]!); // mov [rbp - (N - 8i)], argN
  }
}

/** restore_regs(): the loads back (movzx for 1 and 2 bytes, mov r32 for 4, mov r64 for 8). */
function restoreRegs(buf: CodeBuffer, m: BtfFuncModel, stackSize: number): void {
  for (let i = 0; i < Math.min(m.nrArgs, MAX_TRAMP_ARGS); i++) {
    emitLdx(buf, argWidth(m, i), ARG_REGS[i]!, argSlot(stackSize, i)); // mov argN, [rbp - (N - 8i)]
  }
}

/** invoke_bpf(): one call block per program, in the order given (the hlist: newest first). */
function invokeBpf(buf: TrampBuffer, progs: readonly TrampProg[], stackSize: number, input: TrampolineInput): void {
  for (const p of progs) {
    buf.call(input.bpfProgEnter); //                      call __bpf_prog_enter
    emitMovRR(buf, 64, RBX, RAX); //                      mov rbx, rax       ; remember the start time
    emitLea(buf, RDI, mem(RBP, -stackSize)); //           lea rdi, [rbp - stack_size]  ; arg1: ctx
    if (p.insnsi !== undefined) {
      emitMovImm64(buf, RSI, p.insnsi, { simm32: false }); // movabs rsi, prog->insnsi  ; arg2, interpreter
    }
    buf.call(p.bpfFunc); //                               call prog->bpf_func  ; JIT image or interpreter
    emitMovImm64(buf, RDI, p.progAddr, { simm32: false }); // movabs rdi, prog  ; arg1 of __bpf_prog_exit
    emitMovRR(buf, 64, RSI, RBX); //                      mov rsi, rbx       ; arg2: the start time
    buf.call(input.bpfProgExit); //                       call __bpf_prog_exit
  }
}

function prepare(input: TrampolineInput): Uint8Array {
  const { model: m, flags } = input;
  let stackSize = m.nrArgs * 8;
  let origCall = input.origCall;

  if (flags & BPF_TRAMP_F_CALL_ORIG) stackSize += 8; // room for the return value of orig_call
  // Skip the patched call instruction: orig_call then points at the actual body.
  if (flags & BPF_TRAMP_F_SKIP_FRAME) origCall += BigInt(X86_PATCH_SIZE);

  const buf = new TrampBuffer(input.image);
  emitPush(buf, RBP); //                        push rbp
  emitMovRR(buf, 64, RBP, RSP); //              mov rbp, rsp
  emitAluRI(buf, 'sub', 64, RSP, stackSize); // sub rsp, stack_size   (48 83 ec imm8: at most 56)
  emitPush(buf, RBX); //                        push rbx              ; the start time across each call

  saveRegs(buf, m, stackSize);

  if (input.fentry.length) invokeBpf(buf, input.fentry, stackSize, input);

  if (flags & BPF_TRAMP_F_CALL_ORIG) {
    if (input.fentry.length) restoreRegs(buf, m, stackSize); // the progs clobbered the argument registers
    buf.call(origCall); //                                   call orig_call
    emitStx(buf, 8, mem(RBP, -8), RAX); //                   mov qword ptr [rbp-8], rax  ; for fexit progs
  }

  if (input.fexit.length) invokeBpf(buf, input.fexit, stackSize, input);

  if (flags & BPF_TRAMP_F_RESTORE_REGS) restoreRegs(buf, m, stackSize);

  if (flags & BPF_TRAMP_F_CALL_ORIG) emitLdx(buf, 8, RAX, mem(RBP, -8)); // mov rax, qword ptr [rbp-8]

  emitPop(buf, RBX); //                         pop rbx
  emitLeave(buf); //                            leave
  // Skip our return address (into the traced function) and return to its caller.
  if (flags & BPF_TRAMP_F_SKIP_FRAME) emitAluRI(buf, 'add', 64, RSP, 8); // add rsp, 8
  emitRet(buf); //                              ret

  // One half of the page runs the live trampoline, the other receives the next one: the
  // generator must not overflow its half (checked after emitting, as the kernel).
  if (buf.length > input.size - BPF_INSN_SAFETY) {
    logger.warn({ image: `0x${input.image.toString(16)}`, len: buf.length, size: input.size },
      'arch_prepare_bpf_trampoline: image overflows its half page (WARN_ON_ONCE)');
    throw new TrampError(-EFAULT, `trampoline of ${buf.length} bytes does not fit ${input.size} - ${BPF_INSN_SAFETY}`);
  }
  return buf.bytes();
}

/**
 * arch_prepare_bpf_trampoline(): the image for `input`, to be written at `input.image`, or a
 * negative errno as v5.5 returns it:
 *  - nr_args > 6: -ENOTSUPP (524)
 *  - RESTORE_REGS together with SKIP_FRAME: -EINVAL
 *  - a call target out of rel32 range: -EINVAL (from emit_call)
 *  - longer than `size` - BPF_INSN_SAFETY: -EFAULT (the kernel WARNs)
 */
export function archPrepareBpfTrampoline(input: TrampolineInput): Uint8Array | number {
  if (input.model.nrArgs > MAX_TRAMP_ARGS) return -ENOTSUPP;
  if ((input.flags & BPF_TRAMP_F_RESTORE_REGS) && (input.flags & BPF_TRAMP_F_SKIP_FRAME)) return -EINVAL;
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
