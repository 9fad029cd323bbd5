// SPDX-License-Identifier: GPL-2.0
/*
 * shapes.c - traced functions of many argument/return shapes, for the
 * BTF function model (arg sizes, signedness, enums, stack arguments) and
 * for what a trampoline must save and restore.
 *
 * Every result depends on every argument, in an order-sensitive way, so a
 * swapped, truncated or wrongly extended argument shows in the result.
 */
#include "kernel.h"

/* Narrow arguments and return: the result wraps to 16 bits, signed. */
noinline s16 bpfemu_shapes_narrow(u8 a, s8 b, u16 c, s16 d)
{
	return (s16)(a * 3 + b * 5 + c * 7 + d * 11);
}

/* One function per narrow return type; each wraps at its own width. */
noinline u8 bpfemu_shapes_u8(u8 a, u8 b)
{
	return a + b;
}

noinline s8 bpfemu_shapes_s8(s8 a, s8 b)
{
	return a - b;
}

noinline u16 bpfemu_shapes_u16(u16 a, u16 b)
{
	return a * b;
}

noinline s16 bpfemu_shapes_s16(s16 a, s16 b)
{
	return a - b;
}

noinline u32 bpfemu_shapes_u32(u32 a, u32 b)
{
	return a * 2 + b;
}

/* s32 in, s64 out: a negative a must arrive sign-extended in the result. */
noinline s64 bpfemu_shapes_s32(s32 a, u32 b)
{
	return (s64)a * 3 + b;
}

enum bpfemu_color {
	BPFEMU_RED,
	BPFEMU_GREEN = 5,
	BPFEMU_BLUE = -1,		/* makes the enum signed in BTF */
};

/* Enum in, enum out: RED -> GREEN -> BLUE -> RED. */
noinline enum bpfemu_color bpfemu_next_color(enum bpfemu_color c)
{
	switch (c) {
	case BPFEMU_RED:
		return BPFEMU_GREEN;
	case BPFEMU_GREEN:
		return BPFEMU_BLUE;
	default:
		return BPFEMU_RED;
	}
}

/* Six register arguments of mixed widths, each weighted by position. */
noinline s64 bpfemu_mix6(s8 a, u16 b, s32 c, u64 d, void *e, s16 f)
{
	return a * 1 + b * 2 + (s64)c * 3 + (s64)d * 4 + (long)e * 5 + f * 6;
}

/* Eight u64 arguments: g and h go on the stack. */
noinline u64 bpfemu_sum8(u64 a, u64 b, u64 c, u64 d, u64 e, u64 f, u64 g,
			 u64 h)
{
	return a * 1 + b * 2 + c * 3 + d * 4 + e * 5 + f * 6 + g * 7 + h * 8;
}

/* bool argument (BTF INT, size 1, encoding BOOL). */
noinline int bpfemu_bool_select(bool pick_a, int a, int b)
{
	return pick_a ? a : b;
}

/* Not traceable: no fentry nop, not in __mcount_loc, no BTF FUNC. */
notrace noinline int bpfemu_notrace_add(int a, int b)
{
	return a + b;
}

/* Shapes the BPF trampoline refuses (btf_distill_func_proto): a struct passed by value and a
 * variadic function. Traced, so only the function model stands in the way. */
struct bpfemu_pair {
	long a;
	long b;
};

noinline long bpfemu_struct_by_value(struct bpfemu_pair p)
{
	return p.a + p.b;
}

noinline long bpfemu_varargs(int n, ...)
{
	return n;
}

/* Profile limits (kernel/profile.ts): a struct by value past 16 bytes, which even 6.1's
 * function model refuses, and 12 and 13 u64 arguments — 12 is "Too many" while the check was
 * `nargs >= MAX_BPF_FUNC_ARGS`, 13 always. */
struct bpfemu_triple {
	long a;
	long b;
	long c;
};

noinline long bpfemu_struct_too_big(struct bpfemu_triple t)
{
	return t.a + t.b + t.c;
}

noinline u64 bpfemu_sum12(u64 a, u64 b, u64 c, u64 d, u64 e, u64 f, u64 g,
			  u64 h, u64 i, u64 j, u64 k, u64 l)
{
	return a + b + c + d + e + f + g + h + i + j + k + l;
}

noinline u64 bpfemu_sum13(u64 a, u64 b, u64 c, u64 d, u64 e, u64 f, u64 g,
			  u64 h, u64 i, u64 j, u64 k, u64 l, u64 m)
{
	return a + b + c + d + e + f + g + h + i + j + k + l + m;
}
