/**
 * @fileoverview Unicorn 2 constants (unicorn/unicorn.h, unicorn/x86.h of libunicorn-dev 2.0.1).
 * Values were read from the headers by compiling them; names keep Unicorn's spelling.
 */

export const UC_ARCH_X86 = 4;
export const UC_MODE_64 = 1 << 3;

export const UC_PROT_NONE = 0;
export const UC_PROT_READ = 1;
export const UC_PROT_WRITE = 2;
export const UC_PROT_EXEC = 4;
export const UC_PROT_ALL = 7;

export const UC_HOOK_INTR = 1 << 0;
/** UC_HOOK_INSN: one instruction (uc_hook_add's extra argument names it: UC_X86_INS_SYSCALL). */
export const UC_HOOK_INSN = 1 << 1;
export const UC_HOOK_CODE = 1 << 2;
export const UC_HOOK_BLOCK = 1 << 3;
export const UC_HOOK_MEM_READ_UNMAPPED = 1 << 4;
export const UC_HOOK_MEM_WRITE_UNMAPPED = 1 << 5;
export const UC_HOOK_MEM_FETCH_UNMAPPED = 1 << 6;
export const UC_HOOK_MEM_READ_PROT = 1 << 7;
export const UC_HOOK_MEM_WRITE_PROT = 1 << 8;
export const UC_HOOK_MEM_FETCH_PROT = 1 << 9;
export const UC_HOOK_MEM_READ = 1 << 10;
export const UC_HOOK_MEM_WRITE = 1 << 11;
export const UC_HOOK_MEM_FETCH = 1 << 12;
export const UC_HOOK_INSN_INVALID = 1 << 14;
/** All unmapped and protection faults (UC_HOOK_MEM_INVALID). */
export const UC_HOOK_MEM_INVALID = 0x3f0;

/** uc_mem_type, as passed to memory hooks. */
export const UC_MEM_READ = 16;
export const UC_MEM_WRITE = 17;
export const UC_MEM_FETCH = 18;
export const UC_MEM_READ_UNMAPPED = 19;
export const UC_MEM_WRITE_UNMAPPED = 20;
export const UC_MEM_FETCH_UNMAPPED = 21;
export const UC_MEM_WRITE_PROT = 22;
export const UC_MEM_READ_PROT = 23;
export const UC_MEM_FETCH_PROT = 24;

export const UC_ERR_OK = 0;
export const UC_ERR_READ_UNMAPPED = 6;
export const UC_ERR_WRITE_UNMAPPED = 7;
export const UC_ERR_FETCH_UNMAPPED = 8;
export const UC_ERR_INSN_INVALID = 10;
export const UC_ERR_WRITE_PROT = 12;
export const UC_ERR_READ_PROT = 13;
export const UC_ERR_FETCH_PROT = 14;
export const UC_ERR_EXCEPTION = 21;

/** UC_CTL(type, nr, rw) = type | nr << 26 | rw << 30; rw 1 = write. */
const ucCtl = (type: number, nargs: number, rw: number): number => type | (nargs << 26) | (rw << 30);
export const UC_CTL_TB_REMOVE_CACHE_W = ucCtl(9, 2, 1);
export const UC_CTL_TB_FLUSH_W = ucCtl(10, 0, 1);

/** uc_query_type: did the last uc_emu_start stop on its timeout. */
export const UC_QUERY_TIMEOUT = 4;
/** uc_x86_insn: the `syscall` instruction, for UC_HOOK_INSN. */
export const UC_X86_INS_SYSCALL = 699;
/** 128-bit and other wide x86 registers (read with regReadBytes): xmm0..xmm15 are 122..137. */
export const UC_X86_REG_XMM0 = 122, UC_X86_REG_MXCSR = 249;

/** x86 register ids (unicorn/x86.h). */
export const X86_REG = {
  rax: 35, rbx: 37, rcx: 38, rdx: 40, rsi: 43, rdi: 39, rbp: 36, rsp: 44,
  r8: 106, r9: 107, r10: 108, r11: 109, r12: 110, r13: 111, r14: 112, r15: 113,
  rip: 41, eflags: 25,
  cs: 11, ss: 49, ds: 17, es: 28, fs: 32, gs: 33,
  fs_base: 250, gs_base: 251,
  cr0: 50, cr3: 53, cr4: 54,
} as const;
export type RegName = keyof typeof X86_REG;
export const REG_NAMES = Object.keys(X86_REG) as RegName[];
