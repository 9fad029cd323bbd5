// SPDX-License-Identifier: GPL-2.0
/*
 * bench MODE N - system call loops for the benchmarks: `getpid N` (the cheapest call: the cost of
 * entering the kernel), `lookup N` (bpf(BPF_MAP_LOOKUP_ELEM): the attr and the key read from the
 * process's memory, the value written back).
 */
#include "ulib.h"

int main(int argc, char **argv, char **envp)
{
	long n = argc > 2 ? atol(argv[2]) : 0, i, sum = 0;

	(void)envp;
	if (argc < 3) {
		printf("usage: bench getpid|lookup N\n");
		return 2;
	}
	if (!strcmp(argv[1], "getpid")) {
		for (i = 0; i < n; i++)
			sum += sys_getpid();
	} else if (!strcmp(argv[1], "lookup")) {
		int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 4, 0, "bench");
		__u32 k = 1;
		__u64 v = 0;

		for (i = 0; i < n; i++)
			sum += bpf_map_lookup(fd, &k, &v);
	} else {
		printf("unknown mode %s\n", argv[1]);
		return 2;
	}
	return sum == 0 || sum == n * sys_getpid() ? 0 : 1;
}
