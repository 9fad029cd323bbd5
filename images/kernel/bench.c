// SPDX-License-Identifier: GPL-2.0
/*
 * bench.c - workloads for the emulator's benchmarks. The loops are
 * notrace; bpfemu_bench_target is traced so a benchmark can attach to it
 * and measure the per-call cost of a trampoline.
 */
#include "kernel.h"

/* n rounds of ALU work; the asm barrier stops gcc folding the loop. */
notrace u64 bpfemu_bench_loop(u64 n)
{
	u64 x = 0x9e3779b97f4a7c15ULL;
	u64 i;

	for (i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x += i;
		OPTIMIZER_HIDE_VAR(x);
	}
	return x;
}

noinline u64 bpfemu_bench_target(u64 x)
{
	return x * 3 + 1;
}

/* n real calls to a traced function. */
notrace u64 bpfemu_bench_calls(u64 n)
{
	u64 acc = 0;
	u64 i;

	for (i = 0; i < n; i++)
		acc += bpfemu_bench_target(i);
	return acc;
}

/* n calls through a pointer: with a native entry point, n crossings into TypeScript. */
notrace u64 bpfemu_bench_native(u64 (*fn)(u64), u64 n)
{
	u64 acc = 0;
	u64 i;

	for (i = 0; i < n; i++)
		acc += fn(i);
	return acc;
}
