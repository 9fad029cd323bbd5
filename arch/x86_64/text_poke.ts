/**
 * @fileoverview The 5 bytes bpf_arch_text_poke() writes at a patch site on x86-64 (v5.5,
 * arch/x86/net/bpf_jit_comp.c after 4b3da77b72ad "bpf, x86: generalize and extend
 * bpf_arch_text_poke for direct jumps"):
 *
 *   e8 rel32            call target        BPF_MOD_CALL  (emit_call = emit_patch(.., 0xE8))
 *   e9 rel32            jmp  target        BPF_MOD_JUMP  (emit_jump = emit_patch(.., 0xE9))
 *   0f 1f 44 00 00      nop dword ptr [rax+rax*1+0x0]    no target (ideal_nops[NOP_ATOMIC5])
 *
 * rel32 counts from ip + X86_PATCH_SIZE (5); a target out of ±2 GiB is -EINVAL (v5.5's
 * emit_patch: "Target call %p is out of range"; later kernels return -ERANGE).
 *
 * Only the bytes live here. The rest of bpf_arch_text_poke (ip must be kernel or BPF text, else
 * -EINVAL; the site must hold the old instruction, else -EBUSY; text_poke_bp under text_mutex)
 * is the caller's, which knows the kernel's memory.
 */
import type { BPF_MOD } from '../../bpf/arch.ts';
import { CodeBuffer, EncodeError, X86_NOPS, X86_PATCH_SIZE, emitCall, emitJump } from './encoder.ts';

const EINVAL = 22;

export { X86_PATCH_SIZE };

/**
 * The instruction for a patch site at `ip`: `call target` / `jmp target` by `type`, or the 5-byte
 * nop when `target` is undefined (the kernel's NULL old_addr/new_addr). A negative errno (-EINVAL)
 * when the rel32 does not reach.
 */
export function textPokeInsn(ip: bigint, type: BPF_MOD, target: bigint | undefined): Uint8Array | number {
  if (target === undefined) return Uint8Array.from(X86_NOPS[X86_PATCH_SIZE]!); // nop dword ptr [rax+rax*1+0x0]
  const buf = new CodeBuffer(X86_PATCH_SIZE);
  try {
    if (type === 'call') emitCall(buf, target, ip); // call target   (e8 rel32)
    else emitJump(buf, target, ip); //                 jmp target    (e9 rel32)
  } catch (e) {
    if (e instanceof EncodeError) return -EINVAL;
    throw e;
  }
  return buf.bytes();
}
