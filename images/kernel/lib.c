// SPDX-License-Identifier: GPL-2.0
/*
 * lib.c - entry point, a few globals, and the mem* functions gcc may call
 * on its own (struct copies, zeroing) even in a freestanding build.
 */
#include "kernel.h"

/* .bss: zero at start; written by bpfemu_counter_inc. */
u64 bpfemu_counter;

/* .data: an initialised word the emulator can read back from the image. */
u64 bpfemu_data_word = 0x0123456789abcdefULL;

/* .rodata: must be readable but not writable. */
const char bpfemu_banner[] = "bpfemu kernel image (gcc, -pg -mfentry)";

/* Entry: the image runs no init of its own; the emulator calls functions. */
notrace int start_kernel(void)
{
	return 0;
}

/* Writes .data/.bss: returns the new count. */
noinline u64 bpfemu_counter_inc(void)
{
	return ++bpfemu_counter;
}

/* Writes .rodata on purpose: the emulator must fault on the second store, after
 * the first (to .bss) already happened in the same translation block. */
notrace void bpfemu_poke_rodata(void)
{
	WRITE_ONCE(bpfemu_counter, bpfemu_counter + 1);
	*(volatile char *)bpfemu_banner = 'B';
}

/* notrace, and byte-at-a-time: simple, and short of what gcc turns into
 * a call to itself (the build also passes -fno-tree-loop-distribute-patterns). */
notrace void *memset(void *s, int c, size_t n)
{
	u8 *p = s;

	while (n--)
		*p++ = (u8)c;
	return s;
}

notrace void *memcpy(void *dst, const void *src, size_t n)
{
	u8 *d = dst;
	const u8 *s = src;

	while (n--)
		*d++ = *s++;
	return dst;
}

notrace void *memmove(void *dst, const void *src, size_t n)
{
	u8 *d = dst;
	const u8 *s = src;

	if (d <= s || d >= s + n)
		return memcpy(dst, src, n);
	while (n--)
		d[n] = s[n];
	return dst;
}

notrace int memcmp(const void *a, const void *b, size_t n)
{
	const u8 *x = a, *y = b;

	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}
