/**
 * @fileoverview x86-64 register numbers and the BPF → x86-64 register mapping of the kernel's
 * JIT (arch/x86/net/bpf_jit_comp.c, `reg2hex[]` and `is_ereg()`).
 *
 * A register number is the 4-bit value the encodings use: the low 3 bits go in ModRM.reg,
 * ModRM.rm, SIB.base/index or the opcode (`push`, `bswap`, `mov r32, imm32`), the high bit in
 * REX.R/X/B. The kernel keeps the two halves apart (`reg2hex[]` holds the low 3 bits, `is_ereg()`
 * says whether REX is needed); here one number carries both, so `is_ereg(r)` is `r >= 8`.
 *
 * Facts taken from arch/x86/net/bpf_jit_comp.c, read in two copies: LorenzoBianconi/bpf-next at
 * 97de62fc (v6.2 era: emit_ldx/stx, emit_atomic, no sign-extending loads) and a recent mainline
 * copy (X86_REG_R12 for arenas, emit_ldsx, emit_movsx_reg, sdiv with cqo/cdq + idiv):
 *  - reg2hex[]: R0=rax(0) R1=rdi(7) R2=rsi(6) R3=rdx(2) R4=rcx(1) R5=r8(0+ereg) R6=rbx(3)
 *    R7=r13(5+ereg) R8=r14(6+ereg) R9=r15(7+ereg) R10(FP)=rbp(5) BPF_REG_AX=r10(2+ereg),
 *    AUX_REG=r11(3+ereg), X86_REG_R9=r9(1+ereg), X86_REG_R12=r12(4+ereg, newer kernels).
 *  - "x86-64 register R12 is unused, since if used as base address register in load/store
 *    instructions, it always needs an extra byte of encoding and is callee saved." (newer kernels
 *    use it for the arena base, `X86_REG_R12`, addressed as an SIB index.)
 *  - "x86-64 register R9 is not used by BPF programs, but can be used by BPF trampoline.
 *    x86-64 register R10 is used for blinding (if enabled)."
 *  - AUX_REG (r11) is the JIT's own temporary: the divisor of `div`/`mod` by an immediate or by
 *    rax/rdx (`mov r11, imm32` = 49 c7 c3 imm32), dst saved across a shift by cl when dst is rcx,
 *    the PROBE_MEM address checks, the result of the fetch-and-op cmpxchg loop.
 *  - R6..R9 (rbx, r13, r14, r15) are callee-saved: the prologue pushes them (53, 41 55, 41 56,
 *    41 57), all four in v5.5, only those the program uses in later kernels (push_callee_regs).
 *  - The byte-sized registers of rsp/rbp/rsi/rdi (spl, bpl, sil, dil) need a REX prefix, else the
 *    same encoding means ah/ch/dh/bh (`is_ereg_8l()`: R1, R2, FP and every ereg).
 */

/** An x86-64 general-purpose register number, as encoded (0 = rax … 15 = r15). */
export type Reg = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10 | 11 | 12 | 13 | 14 | 15;

export const RAX = 0, RCX = 1, RDX = 2, RBX = 3, RSP = 4, RBP = 5, RSI = 6, RDI = 7;
export const R8 = 8, R9 = 9, R10 = 10, R11 = 11, R12 = 12, R13 = 13, R14 = 14, R15 = 15;

/** The JIT's private temporary (the kernel's AUX_REG): r11, caller-saved and no BPF register. */
export const AUX_REG = R11;
/** r9, the 6th SysV argument: not a BPF register, used by the trampoline (kernel X86_REG_R9). */
export const X86_REG_R9 = R9;
/** r12, callee-saved and no BPF register; the arena base in newer kernels (X86_REG_R12). */
export const X86_REG_R12 = R12;

/**
 * BPF register → x86-64 register, indexed by BPF register number (BPF_REG_0 … BPF_REG_FP, then
 * BPF_REG_AX = 11), as bpf_jit_comp.c's `reg2hex[]` + `is_ereg()`.
 */
export const BPF_TO_X86: readonly Reg[] = [
  RAX, // R0: return value
  RDI, // R1: arg 1 / ctx
  RSI, // R2: arg 2
  RDX, // R3: arg 3
  RCX, // R4: arg 4
  R8, //  R5: arg 5
  RBX, // R6: callee saved
  R13, // R7: callee saved
  R14, // R8: callee saved
  R15, // R9: callee saved
  RBP, // R10 (BPF_REG_FP): read-only frame pointer
  R10, // BPF_REG_AX: constant blinding and the JIT's scratch
];

/** True when the register needs a REX.R/X/B bit (r8..r15): the kernel's `is_ereg()`. */
export const isEreg = (r: Reg): boolean => r >= 8;

/**
 * True when the register's low byte needs a REX prefix: r8b..r15b and spl/bpl/sil/dil, which
 * without REX encode ah/ch/dh/bh (the kernel's `is_ereg_8l()`).
 */
export const needsRex8 = (r: Reg): boolean => r >= 4;

const NAMES64 = ['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi'] as const;
const NAMES32 = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi'] as const;
const NAMES16 = ['ax', 'cx', 'dx', 'bx', 'sp', 'bp', 'si', 'di'] as const;
const NAMES8 = ['al', 'cl', 'dl', 'bl', 'spl', 'bpl', 'sil', 'dil'] as const;
const SUFFIX = { 64: '', 32: 'd', 16: 'w', 8: 'b' } as const;
const LOW: Readonly<Record<8 | 16 | 32 | 64, readonly string[]>> = { 64: NAMES64, 32: NAMES32, 16: NAMES16, 8: NAMES8 };

/** The register's name at a width, as objdump prints it: `regName(R8, 32)` is `r8d`. */
export function regName(r: Reg, bits: 8 | 16 | 32 | 64): string {
  return r < 8 ? LOW[bits][r]! : `r${r}${SUFFIX[bits]}`;
}

/** Every register, in encoding order (for tables and tests). */
export const ALL_REGS: readonly Reg[] = [RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15];
