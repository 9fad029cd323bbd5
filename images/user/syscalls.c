// SPDX-License-Identifier: GPL-2.0
/*
 * syscalls - the system call layer's edges, one line each: unknown numbers, kernel and unmapped
 * pointers (-EFAULT: access_ok), bad fds, brk, anonymous memory, sleeping and waiting. The
 * lines are the same on a real kernel (the tests compare them with the host's).
 */
#include "ulib.h"

#define PAGE 4096
#define KERNEL_PTR ((void *)0xffffffff81000000UL)

static void show(const char *name, long r)
{
	printf("%s: %s\n", name, r < 0 ? errname(r) : "ok");
}

int main(int argc, char **argv, char **envp)
{
	union bpf_attr a;
	struct { long sec, nsec; } ts = { 0, 1000 }, bad = { 0, 1000000000 };
	__u32 key = 0;
	__u64 val = 0;
	long r, cur, m;
	int fd;

	(void)argc, (void)argv, (void)envp;
	show("unknown syscall 999", syscall6(999, 0, 0, 0, 0, 0, 0));
	show("write from a kernel pointer", sys_write(1, KERNEL_PTR, 8));
	show("write from an unmapped pointer", sys_write(1, (void *)0x10000, 8));
	show("write to a bad fd", sys_write(99, "x", 1));
	show("bpf attr at a kernel address", sys_bpf(BPF_MAP_CREATE, KERNEL_PTR, sizeof(a)));
	show("bpf attr unmapped", sys_bpf(BPF_MAP_CREATE, (void *)0x10000, sizeof(a)));
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 4, 0, "m");
	show("bpf map create", fd);
	show("bpf lookup, key in the kernel", bpf_map_lookup(fd, KERNEL_PTR, &val));
	show("bpf lookup, value to the kernel", bpf_map_lookup(fd, &key, KERNEL_PTR));
	show("bpf lookup, value unmapped", bpf_map_lookup(fd, &key, (void *)0x10000));
	show("bpf lookup", bpf_map_lookup(fd, &key, &val));
	memset(&a, 0, sizeof(a));
	show("bpf with size 0 (an empty attr)", sys_bpf(BPF_MAP_CREATE, &a, 0));
	show("write to a map fd", sys_write(fd, "x", 1));
	show("close", sys_close(fd));
	show("close it again", sys_close(fd));
	r = sys_dup(1);
	printf("dup(1) gives the lowest free fd: %s\n", r == fd ? "yes" : "no");
	sys_close(r);
	printf("getppid is a pid: %s\n", sys_getppid() > 0 ? "yes" : "no");
	printf("getuid: %ld\n", sys_getuid());

	cur = sys_brk(0);
	printf("brk(0) is page-aligned or past the image: %s\n", cur > 0 ? "yes" : "no");
	r = sys_brk((void *)(cur + 2 * PAGE));
	printf("brk grows by 2 pages: %s\n", r == cur + 2 * PAGE ? "yes" : "no");
	((volatile char *)cur)[2 * PAGE - 1] = 7;
	printf("the heap is usable: %s\n", ((volatile char *)cur)[2 * PAGE - 1] == 7 ? "yes" : "no");
	r = sys_brk((void *)cur);
	printf("brk shrinks back: %s\n", r == cur ? "yes" : "no");
	r = sys_brk((void *)0x1000);
	printf("brk below the start is refused (returns the break): %s\n", r == cur ? "yes" : "no");

	m = sys_mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	show("anonymous mmap", m);
	printf("it is zeroed: %s\n", ((volatile long *)m)[100] == 0 ? "yes" : "no");
	((volatile long *)m)[PAGE / 8] = 42;
	show("mprotect the middle page R/O", sys_mprotect((void *)(m + PAGE), PAGE, PROT_READ));
	printf("still reads 42: %s\n", ((volatile long *)m)[PAGE / 8] == 42 ? "yes" : "no");
	show("munmap the middle page", sys_munmap((void *)(m + PAGE), PAGE));
	show("mprotect across the hole", sys_mprotect((void *)m, 3 * PAGE, PROT_READ));
	show("munmap the rest", sys_munmap((void *)m, 3 * PAGE));

	show("nanosleep 1us", syscall6(__NR_nanosleep, (long)&ts, 0, 0, 0, 0, 0));
	show("nanosleep with nsec 1e9", syscall6(__NR_nanosleep, (long)&bad, 0, 0, 0, 0, 0));
	show("nanosleep from a kernel pointer", syscall6(__NR_nanosleep, (long)KERNEL_PTR, 0, 0, 0, 0, 0));
	show("sched_yield", sys_sched_yield());
	show("wait4 with no children", sys_wait4(-1, NULL, 0));
	show("wait4 with bad options", sys_wait4(-1, NULL, 0x10000));
	return 0;
}
