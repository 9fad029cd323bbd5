// SPDX-License-Identifier: GPL-2.0
/*
 * fault CASE - does one forbidden thing and should be killed for it (the shell shows 128 +
 * the signal). `fault list` prints the cases. Kernel addresses are those of x86-64 Linux (and
 * bpfemu): the kernel text and the vmalloc area.
 */
#include "ulib.h"

static const char rodata[16] = "read only";

/* Keeps the compiler from folding the accesses away. */
static volatile unsigned long sink;

static void do_case(const char *c, int map_fd)
{
	if (!strcmp(c, "read-kernel"))
		sink = *(volatile unsigned long *)0xffffffff81000000UL;
	else if (!strcmp(c, "write-kernel"))
		*(volatile unsigned long *)0xffffffff81000000UL = 1;
	else if (!strcmp(c, "read-vmalloc"))
		sink = *(volatile unsigned long *)0xffffc90000000000UL;
	else if (!strcmp(c, "exec-kernel"))
		((void (*)(void))0xffffffff81000000UL)();
	else if (!strcmp(c, "read-null"))
		sink = *(volatile unsigned long *)0;
	else if (!strcmp(c, "noncanonical"))
		sink = *(volatile unsigned long *)0x8000000000000000UL;
	else if (!strcmp(c, "write-rodata"))
		*(volatile char *)&rodata[0] = 'X';
	else if (!strcmp(c, "write-ro-map")) {
		long m = sys_mmap(NULL, 4096, PROT_READ, MAP_SHARED, map_fd, 0);

		printf("mapped %s\n", mmap_failed(m) ? errname(m) : "ok");
		*(volatile __u64 *)m = 1;
	} else if (!strcmp(c, "ud2"))
		__asm__ volatile("ud2");
	else if (!strcmp(c, "hlt"))
		__asm__ volatile("hlt");
	else if (!strcmp(c, "int3"))
		__asm__ volatile("int3");
	else if (!strcmp(c, "div0"))
		__asm__ volatile("xor %%ecx, %%ecx\n\tmov $1, %%eax\n\tcltd\n\tidivl %%ecx" ::: "eax", "ecx", "edx");
	else if (!strcmp(c, "spin"))
		for (;;)
			sink++;
	else if (!strcmp(c, "stack-overflow")) {
		volatile char big[1 << 16];

		big[0] = 1;
		do_case(c, map_fd + (int)big[0]);
	} else {
		printf("unknown case %s\n", c);
		sys_exit(2);
	}
}

int main(int argc, char **argv, char **envp)
{
	static const char *cases[] = {
		"read-kernel", "write-kernel", "read-vmalloc", "exec-kernel", "read-null", "noncanonical",
		"write-rodata", "write-ro-map", "ud2", "hlt", "int3", "div0",
	};
	int map_fd = -1;
	unsigned int i;

	(void)envp;
	if (argc < 2 || !strcmp(argv[1], "list")) {
		for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
			printf("%s\n", cases[i]);
		return argc < 2;
	}
	if (!strcmp(argv[1], "write-ro-map"))
		map_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 512, BPF_F_MMAPABLE, "ro");
	printf("pid %ld: %s\n", sys_getpid(), argv[1]);
	do_case(argv[1], map_fd);
	printf("survived %s\n", argv[1]);
	return 0;
}
