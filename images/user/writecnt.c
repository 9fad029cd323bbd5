// SPDX-License-Identifier: GPL-2.0
/*
 * writecnt - how BPF_MAP_FREEZE follows the writable mappings of a map (fc9702273e2e: writecnt
 * counts the first VMA in mmap, every copy in vm_ops.open, every VMA that goes in close) through
 * fork, partial munmap and mprotect. Each case has a map of its own (a freeze is for good) and
 * prints one line per step: the step and what the kernel answered. Later kernels answer some
 * steps differently from v5.5 (read-only mappings lose VM_MAYWRITE from 5.7): the lines say
 * what they saw, the tests compare them with the kernel they model.
 */
#include "ulib.h"

#define PAGE 4096

static int new_map(const char *name)
{
	int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 4 * PAGE / 8, BPF_F_MMAPABLE, name);

	if (fd < 0) {
		printf("map %s: %s\n", name, errname(fd));
		sys_exit(100);
	}
	return fd;
}

static long map(int fd, long pages, int prot)
{
	long m = sys_mmap(NULL, pages * PAGE, prot, MAP_SHARED, fd, 0);

	if (mmap_failed(m)) {
		printf("mmap: %s\n", errname(m));
		sys_exit(101);
	}
	return m;
}

static void step(const char *what, long ret)
{
	printf("  %s: %s\n", what, errname(ret < 0 ? ret : 0));
}

static void fork_case(void)
{
	int fd = new_map("fork");
	long m = map(fd, 1, PROT_READ | PROT_WRITE);
	/* A flag in MAP_SHARED memory: the child waits for it, so the order is the same everywhere. */
	long flag = sys_mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	__u32 k = 5;
	__u64 v = 0;
	long pid;
	int status = 0;

	printf("fork:\n");
	pid = sys_fork();
	if (pid == 0) {
		/* The child's copy of the mapping shows the same pages: its store is the parent's too. */
		((volatile __u64 *)m)[5] = 555;
		while (!*(volatile int *)flag)
			sys_sched_yield();
		sys_exit(7);
	}
	step("munmap the parent's R/W mapping", sys_munmap((void *)m, PAGE));
	step("freeze while the child's copy exists", bpf_map_freeze(fd));
	*(volatile int *)flag = 1;
	pid = sys_wait4(pid, &status, 0);
	printf("  child exited with %d\n", (status >> 8) & 0xff);
	bpf_map_lookup(fd, &k, &v);
	printf("  value the child stored: %llu\n", v);
	step("freeze after the child exited", bpf_map_freeze(fd));
	sys_close(fd);
}

static void partial_munmap_case(void)
{
	int fd = new_map("split");
	long m = map(fd, 4, PROT_READ | PROT_WRITE);

	printf("partial munmap:\n");
	step("munmap page 1 of 4 (a split)", sys_munmap((void *)(m + PAGE), PAGE));
	step("freeze", bpf_map_freeze(fd));
	step("munmap page 0", sys_munmap((void *)m, PAGE));
	step("freeze", bpf_map_freeze(fd));
	step("munmap pages 2-3", sys_munmap((void *)(m + 2 * PAGE), 2 * PAGE));
	step("freeze with no mapping left", bpf_map_freeze(fd));
	sys_close(fd);
}

static void mprotect_frozen_case(void)
{
	int fd = new_map("mprot_frozen");
	long m = map(fd, 1, PROT_READ);
	long r;
	__u32 k = 0;
	__u64 v = 0;

	printf("mprotect a R/O mapping of a frozen map:\n");
	step("freeze with a R/O mapping", bpf_map_freeze(fd));
	r = sys_mprotect((void *)m, PAGE, PROT_READ | PROT_WRITE);
	step("mprotect to R/W", r);
	if (r == 0) {
		/* v5.5: the frozen map is writable from user space. */
		((volatile __u64 *)m)[0] = 99;
		bpf_map_lookup(fd, &k, &v);
		printf("  the frozen map's value after a user store: %llu\n", v);
	}
	step("munmap", sys_munmap((void *)m, PAGE));
	sys_close(fd);
}

static void mprotect_downgrade_case(void)
{
	int fd = new_map("mprot_ro");
	long m = map(fd, 1, PROT_READ | PROT_WRITE);

	printf("mprotect a R/W mapping to R/O:\n");
	step("mprotect to R/O", sys_mprotect((void *)m, PAGE, PROT_READ));
	step("freeze", bpf_map_freeze(fd));
	step("munmap", sys_munmap((void *)m, PAGE));
	step("freeze with no mapping left", bpf_map_freeze(fd));
	sys_close(fd);
}

static void mprotect_split_case(void)
{
	int fd = new_map("mprot_split");
	long m = map(fd, 2, PROT_READ | PROT_WRITE);

	printf("mprotect half of a R/W mapping:\n");
	step("mprotect page 0 to R/O (a split)", sys_mprotect((void *)m, PAGE, PROT_READ));
	step("freeze", bpf_map_freeze(fd));
	step("munmap both pages", sys_munmap((void *)m, 2 * PAGE));
	step("freeze with no mapping left", bpf_map_freeze(fd));
	sys_close(fd);
}

int main(int argc, char **argv, char **envp)
{
	(void)argc, (void)argv, (void)envp;
	fork_case();
	partial_munmap_case();
	mprotect_frozen_case();
	mprotect_downgrade_case();
	mprotect_split_case();
	return 0;
}
