// SPDX-License-Identifier: GPL-2.0
/*
 * sysv.c - gcc-compiled callers of a function pointer, so the emulator's
 * tests can check its System V ABI code against what gcc really emits:
 * registers rdi, rsi, rdx, rcx, r8, r9, then the stack; narrow arguments
 * as gcc extends them; the result in rax.
 */
#include "kernel.h"

typedef u64 (*bpfemu_fn8_t)(u64, u64, u64, u64, u64, u64, u64, u64);
typedef u64 (*bpfemu_fn6_t)(u64, u64, u64, u64, u64, u64);
typedef int (*bpfemu_fn_narrow_t)(char, short, int, long);

/* The result is mixed so the harness sees the call returned through us. */
#define BPFEMU_MIX 0x5a5a5a5a5a5a5a5aULL

noinline u64 bpfemu_call_fn8(bpfemu_fn8_t fn)
{
	return fn(0x1111111111111111ULL, 0x2222222222222222ULL,
		  0x3333333333333333ULL, 0x4444444444444444ULL,
		  0x5555555555555555ULL, 0x6666666666666666ULL,
		  0x7777777777777777ULL, 0x8888888888888888ULL) ^ BPFEMU_MIX;
}

noinline u64 bpfemu_call_fn6(bpfemu_fn6_t fn)
{
	return fn(0x1111111111111111ULL, 0x2222222222222222ULL,
		  0x3333333333333333ULL, 0x4444444444444444ULL,
		  0x5555555555555555ULL, 0x6666666666666666ULL) ^ BPFEMU_MIX;
}

/*
 * Negative narrow values: the callee sees how gcc extended them (the ABI
 * leaves the upper bits unspecified). The int result is sign-extended.
 */
noinline u64 bpfemu_call_fn_narrow(bpfemu_fn_narrow_t fn)
{
	return (u64)(s64)fn(-2, -3, -4, -5);
}
