// SPDX-License-Identifier: GPL-2.0
/*
 * mmap_errors - every invalid mmap/munmap/mprotect of BPF maps (and plain memory) and what the
 * kernel answers: one line per case, "name: ERRNO" (or "ok" when it succeeded, then undone).
 * The tests compare the lines with the host kernel's and count mappings, references and
 * pages before and after: a refused call must leave nothing behind.
 */
#include "ulib.h"

#define PAGE 4096

static void show(const char *name, long r)
{
	printf("%s: %s\n", name, mmap_failed(r) ? errname(r) : "ok");
}

/* mmap, report, and undo a success. */
static void try_mmap(const char *name, void *addr, long len, int prot, int flags, int fd, long off)
{
	long r = sys_mmap(addr, len, prot, flags, fd, off);

	show(name, r);
	if (!mmap_failed(r))
		sys_munmap((void *)r, len);
}

int main(int argc, char **argv, char **envp)
{
	int arr, plain, hash, percpu, rdonly, wronly, rdonly_prog, prog;
	long m, fixed;
	struct bpf_insn ret0[] = { BPF_MOV64_IMM(BPF_REG_0, 0), BPF_EXIT_INSN() };

	(void)argc, (void)argv, (void)envp;
	arr = bpf_map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 1024, BPF_F_MMAPABLE, "arr");      /* 2 pages */
	plain = bpf_map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 1024, 0, "plain");
	hash = bpf_map_create(BPF_MAP_TYPE_HASH, 4, 8, 16, 0, "hash");
	percpu = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, 4, 8, 16, 0, "percpu");
	rdonly = bpf_map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 512, BPF_F_MMAPABLE | BPF_F_RDONLY, "rdonly");
	wronly = bpf_map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 512, BPF_F_MMAPABLE | BPF_F_WRONLY, "wronly");
	rdonly_prog = bpf_map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 512, BPF_F_MMAPABLE | BPF_F_RDONLY_PROG, "rdonly_prog");
	prog = bpf_prog_load(BPF_PROG_TYPE_SOCKET_FILTER, ret0, 2, "GPL");
	if (arr < 0 || plain < 0 || hash < 0 || percpu < 0 || rdonly < 0 || wronly < 0 || rdonly_prog < 0 || prog < 0) {
		printf("setup: %d %d %d %d %d %d %d %d\n", arr, plain, hash, percpu, rdonly, wronly, rdonly_prog, prog);
		return 100;
	}

	/* Map creation: BPF_F_MMAPABLE is for BPF_MAP_TYPE_ARRAY only. */
	show("create hash with BPF_F_MMAPABLE", bpf_map_create(BPF_MAP_TYPE_HASH, 4, 8, 16, BPF_F_MMAPABLE, "h"));
	show("create percpu array with BPF_F_MMAPABLE", bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, 4, 8, 16, BPF_F_MMAPABLE, "p"));

	/* The map's own checks. */
	try_mmap("array without BPF_F_MMAPABLE", NULL, PAGE, PROT_READ, MAP_SHARED, plain, 0);
	try_mmap("hash map", NULL, PAGE, PROT_READ, MAP_SHARED, hash, 0);
	try_mmap("percpu array", NULL, PAGE, PROT_READ, MAP_SHARED, percpu, 0);
	try_mmap("MAP_PRIVATE", NULL, PAGE, PROT_READ, MAP_PRIVATE, arr, 0);
	try_mmap("MAP_PRIVATE writable", NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, arr, 0);
	try_mmap("3 pages of a 2-page map", NULL, 3 * PAGE, PROT_READ, MAP_SHARED, arr, 0);
	try_mmap("offset past the values", NULL, PAGE, PROT_READ, MAP_SHARED, arr, 2 * PAGE);
	try_mmap("offset + length past the values", NULL, 2 * PAGE, PROT_READ, MAP_SHARED, arr, PAGE);
	try_mmap("second page by offset", NULL, PAGE, PROT_READ, MAP_SHARED, arr, PAGE);
	try_mmap("R/W of a BPF_F_RDONLY_PROG map", NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, rdonly_prog, 0);
	try_mmap("R/O of a BPF_F_RDONLY_PROG map", NULL, PAGE, PROT_READ, MAP_SHARED, rdonly_prog, 0);

	/* The fd's open mode (BPF_F_RDONLY/WRONLY maps get O_RDONLY/O_WRONLY fds). */
	try_mmap("R/W of a BPF_F_RDONLY map", NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, rdonly, 0);
	try_mmap("R/O of a BPF_F_RDONLY map", NULL, PAGE, PROT_READ, MAP_SHARED, rdonly, 0);
	try_mmap("R/O of a BPF_F_WRONLY map", NULL, PAGE, PROT_READ, MAP_SHARED, wronly, 0);

	/* mmap()'s own checks, before the file's. */
	try_mmap("length 0", NULL, 0, PROT_READ, MAP_SHARED, arr, 0);
	try_mmap("unaligned offset", NULL, PAGE, PROT_READ, MAP_SHARED, arr, 1);
	try_mmap("bad fd", NULL, PAGE, PROT_READ, MAP_SHARED, 999, 0);
	try_mmap("negative fd", NULL, PAGE, PROT_READ, MAP_SHARED, -1, 0);
	try_mmap("prog fd (no mmap)", NULL, PAGE, PROT_READ, MAP_SHARED, prog, 0);
	try_mmap("no map type", NULL, PAGE, PROT_READ, 0, arr, 0);
	try_mmap("map type 0xf", NULL, PAGE, PROT_READ, 0xf, arr, 0);
	try_mmap("MAP_SHARED_VALIDATE with MAP_SYNC", NULL, PAGE, PROT_READ, MAP_SHARED_VALIDATE | MAP_SYNC, arr, 0);
	try_mmap("MAP_SHARED with MAP_SYNC (ignored)", NULL, PAGE, PROT_READ, MAP_SHARED | MAP_SYNC, arr, 0);
	try_mmap("MAP_SHARED_VALIDATE", NULL, PAGE, PROT_READ, MAP_SHARED_VALIDATE, arr, 0);
	try_mmap("length past the address space", NULL, 0x7ffffffff000L, PROT_READ, MAP_SHARED, arr, 0);
	try_mmap("anonymous MAP_SHARED_VALIDATE", NULL, PAGE, PROT_READ, MAP_SHARED_VALIDATE | MAP_ANONYMOUS, -1, 0);
	try_mmap("anonymous with no map type", NULL, PAGE, PROT_READ, MAP_ANONYMOUS, -1, 0);

	/* MAP_FIXED. */
	m = sys_mmap(NULL, 4 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	fixed = m + PAGE;
	try_mmap("MAP_FIXED unaligned", (void *)(fixed + 1), PAGE, PROT_READ, MAP_SHARED | MAP_FIXED, arr, 0);
	try_mmap("MAP_FIXED_NOREPLACE over a mapping", (void *)fixed, PAGE, PROT_READ, MAP_SHARED | MAP_FIXED_NOREPLACE, arr, 0);
	try_mmap("MAP_FIXED past the address space", (void *)0x7ffffffff000L, 2 * PAGE, PROT_READ, MAP_SHARED | MAP_FIXED, arr, 0);
	try_mmap("MAP_FIXED over a mapping", (void *)fixed, PAGE, PROT_READ, MAP_SHARED | MAP_FIXED, arr, 0);

	/* munmap. */
	show("munmap unaligned", sys_munmap((void *)(m + 1), PAGE));
	show("munmap length 0", sys_munmap((void *)m, 0));
	show("munmap a hole", sys_munmap((void *)(m + 2 * PAGE), PAGE));
	show("munmap it again", sys_munmap((void *)(m + 2 * PAGE), PAGE));
	show("munmap past the address space", sys_munmap((void *)0x7ffffffff000L, 2 * PAGE));

	/* mprotect. */
	show("mprotect unaligned", sys_mprotect((void *)(m + 1), PAGE, PROT_READ));
	show("mprotect length 0", sys_mprotect((void *)m, 0, PROT_READ));
	show("mprotect unknown prot bit", sys_mprotect((void *)m, PAGE, 0x10));
	show("mprotect over a hole", sys_mprotect((void *)m, 4 * PAGE, PROT_READ | PROT_WRITE));
	show("mprotect unmapped", sys_mprotect((void *)(m + 2 * PAGE), PAGE, PROT_READ));
	show("mprotect GROWSDOWN|GROWSUP", sys_mprotect((void *)m, PAGE, PROT_READ | PROT_GROWSDOWN | PROT_GROWSUP));
	sys_munmap((void *)m, 4 * PAGE);
	m = sys_mmap(NULL, PAGE, PROT_READ, MAP_SHARED, arr, 0);
	show("mprotect a R/O map mapping to R/W", sys_mprotect((void *)m, PAGE, PROT_READ | PROT_WRITE));
	show("mprotect a map mapping to PROT_EXEC", sys_mprotect((void *)m, PAGE, PROT_READ | PROT_EXEC));
	sys_munmap((void *)m, PAGE);
	m = sys_mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, arr, 0);
	show("mprotect a R/W map mapping to R/O", sys_mprotect((void *)m, PAGE, PROT_READ));
	show("mprotect it back to R/W", sys_mprotect((void *)m, PAGE, PROT_READ | PROT_WRITE));
	sys_munmap((void *)m, PAGE);

	/* Freezing with a R/W mapping, then mapping the frozen map. */
	m = sys_mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, arr, 0);
	show("freeze with a R/W mapping", bpf_map_freeze(arr));
	sys_munmap((void *)m, PAGE);
	show("freeze", bpf_map_freeze(arr));
	show("freeze again", bpf_map_freeze(arr));
	try_mmap("R/W of a frozen map", NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, arr, 0);
	try_mmap("write-only of a frozen map", NULL, PAGE, PROT_WRITE, MAP_SHARED, arr, 0);
	try_mmap("R/O of a frozen map", NULL, PAGE, PROT_READ, MAP_SHARED, arr, 0);
	return 0;
}
