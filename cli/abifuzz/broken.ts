/**
 * @fileoverview Deliberately wrong trampolines, to prove the harness fails when the conversion
 * from the native calling convention is wrong. Each wraps the real generator
 * (arch/x86_64/trampoline.ts) and patches its output:
 *  - `wrong-arg-reg`: save_regs stores argument 0 from rsi instead of rdi
 *    (`48 89 7d f0` mov [rbp-0x10], rdi  →  `48 89 75 f0` mov [rbp-0x10], rsi);
 *  - `clobber-callee-saved`: the epilogue's `pop rbx` becomes a `nop` (`leave` still restores
 *    rsp), so the caller's rbx comes back as the last program's start time.
 */
import type { System } from '../../index.ts';
import type { BpfArchTrampoline, TrampolineInput } from '../../bpf/arch.ts';

export const TRAMPOLINE_VARIANTS = ['wrong-arg-reg', 'clobber-callee-saved'] as const;
export type TrampolineVariant = (typeof TRAMPOLINE_VARIANTS)[number];

/** push rbp; mov rbp, rsp; sub rsp, imm8; push rbx: save_regs starts 9 bytes in. */
const SAVE_REGS_AT = 9;
const POP_RBX = 0x5b, LEAVE = 0xc9;

/** Patches the first save_regs store (arg 0 from rdi) to read rsi: ModRM.reg 7 → 6. */
function wrongArgReg(code: Uint8Array): Uint8Array {
  let i = SAVE_REGS_AT;
  if (code[i] === 0x66) i++; //                           operand-size prefix (2-byte store)
  if (code[i]! >= 0x40 && code[i]! <= 0x4f) i++; //      REX
  if (code[i] !== 0x88 && code[i] !== 0x89) return code; // no argument to save
  const modrm = code[i + 1]!;
  if (((modrm >> 3) & 7) !== 7) return code;
  const out = code.slice();
  out[i + 1] = (modrm & ~0x38) | (6 << 3);
  return out;
}

/** `pop rbx; leave` (5b c9) → `nop; leave`: rbx keeps what the trampoline put there. */
function clobberCalleeSaved(code: Uint8Array): Uint8Array {
  for (let i = code.length - 2; i >= 0; i--) {
    if (code[i] === POP_RBX && code[i + 1] === LEAVE) {
      const out = code.slice();
      out[i] = 0x90; // nop: rbx is not restored
      return out;
    }
  }
  return code;
}

const PATCH: Record<TrampolineVariant, (code: Uint8Array) => Uint8Array> = {
  'wrong-arg-reg': wrongArgReg,
  'clobber-callee-saved': clobberCalleeSaved,
};

/**
 * Makes `sys`'s trampoline generator the variant (the architecture object is shared by the
 * trampoline manager); returns the undo.
 */
export function installTrampolineVariant(sys: System, variant: TrampolineVariant): () => void {
  const arch = sys.bpfSys.rt.arch.trampoline as BpfArchTrampoline | undefined;
  if (!arch) throw new Error('this architecture has no trampoline');
  const orig = arch.archPrepareBpfTrampoline;
  const patch = PATCH[variant];
  arch.archPrepareBpfTrampoline = (input: TrampolineInput) => {
    const code = orig(input);
    return typeof code === 'number' ? code : patch(code);
  };
  return () => { arch.archPrepareBpfTrampoline = orig; };
}
