// SPDX-License-Identifier: GPL-2.0
/*
 * fork - fork() and wait4(): the child gets a copy of private memory and the fds, shares
 * MAP_SHARED memory, sees its parent in getppid(); the parent reaps the children's exit codes.
 */
#include "ulib.h"

#define PAGE 4096

static int global = 1;

int main(int argc, char **argv, char **envp)
{
	long shared = sys_mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	long priv = sys_mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	long parent = sys_getpid(), pid, pid2, r;
	int status = 0, fd, i, reaped = 0;

	(void)argc, (void)argv, (void)envp;
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 4, 0, "inherited");
	((volatile int *)priv)[0] = 10;
	pid = sys_fork();
	if (pid < 0) {
		printf("fork: %s\n", errname(pid));
		return 1;
	}
	if (pid == 0) {
		__u32 k = 1;
		__u64 v = 77;

		global = 2;
		((volatile int *)priv)[0] = 20;
		((volatile int *)shared)[0] = 30;
		/* The child's fd is a copy: using and closing it leaves the parent's. */
		bpf_map_update(fd, &k, &v, 0);
		sys_close(fd);
		sys_exit(sys_getppid() == parent ? 42 : 43);
	}
	r = sys_wait4(pid, &status, 0);
	printf("wait4 returned the child: %s\n", r == pid ? "yes" : "no");
	printf("child exit status: %d (exited: %s)\n", (status >> 8) & 0xff, (status & 0x7f) == 0 ? "yes" : "no");
	printf("parent's global after the child wrote it: %d\n", global);
	printf("parent's private page: %d\n", ((volatile int *)priv)[0]);
	printf("parent's shared page: %d\n", ((volatile int *)shared)[0]);
	{
		__u32 k = 1;
		__u64 v = 0;

		r = bpf_map_lookup(fd, &k, &v);
		printf("the map through the parent's fd: %s, value %llu\n", errname(r), v);
	}

	/* Two more children, reaped in any order. */
	pid = sys_fork();
	if (pid == 0)
		sys_exit(1);
	pid2 = sys_fork();
	if (pid2 == 0)
		sys_exit(2);
	for (i = 0; i < 2; i++) {
		r = sys_wait4(-1, &status, 0);
		if (r == pid || r == pid2)
			reaped += (status >> 8) & 0xff;
	}
	printf("two children reaped, exit codes summing to %d\n", reaped);
	r = sys_wait4(-1, &status, 1 /* WNOHANG */);
	printf("wait4 with none left: %s\n", errname(r));

	/* A child killed by a signal. */
	pid = sys_fork();
	if (pid == 0) {
		*(volatile int *)0 = 1;
		sys_exit(0);
	}
	sys_wait4(pid, &status, 0);
	printf("a child that faulted: signal %d\n", status & 0x7f);
	return 0;
}
