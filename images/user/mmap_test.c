// SPDX-License-Identifier: GPL-2.0
/*
 * mmap_test - the kernel selftest prog_tests/mmap.c (v5.5, with progs/test_mmap.c) ported to a
 * raw-syscall program: the same maps, values and sequence, with the program triggered by
 * BPF_PROG_TEST_RUN (an XDP program) where the selftest attached it to raw_tp/sys_enter and
 * waited for a syscall (usleep). Each check prints "ok NAME" or "FAIL NAME"; the exit status
 * is the number of failures. Runs unchanged on a real Linux kernel (as root).
 *
 * Differences between kernel versions show in the advanced part (an offset into the map is
 * ignored by v5.5 and honoured from 5.7): it prints what it saw rather than checking.
 */
#include "ulib.h"

#define PAGE 4096
#define DATA_ENTRIES (512 * 4) /* at least 4 pages of data */
#define FAR 1500

struct bss_data {
	__u64 in_val;
	__u64 out_val;
};

struct map_data {
	__u64 val[DATA_ENTRIES];
};

/*
 * test_mmap (progs/test_mmap.c), as the BPF instructions clang makes of it, with the .bss
 * variables in a one-entry array map:
 *	out_val = in_val;
 *	bpf_map_update_elem(&data_map, &two, &in_val, 0);
 *	p = bpf_map_lookup_elem(&data_map, &zero);
 *	if (p) { val = (*p) * 2; bpf_map_update_elem(&data_map, &one, &val, 0); }
 *	val = in_val * 3;
 *	bpf_map_update_elem(&data_map, &far, &val, 0);
 * Stack: fp-4 key, fp-16 val.
 */
static int load_prog(int bss_fd, int data_fd)
{
	struct bpf_insn insns[] = {
		/* r6 = &bss (lookup of key 0) */
		BPF_ST_MEM(BPF_W, BPF_REG_10, -4, 0),
		BPF_LD_MAP_FD(BPF_REG_1, bss_fd),
		BPF_MOV64_REG(BPF_REG_2, BPF_REG_10),
		BPF_ALU64_IMM(BPF_ADD, BPF_REG_2, -4),
		BPF_CALL_HELPER(BPF_FUNC_map_lookup_elem),
		BPF_JMP_IMM(BPF_JEQ, BPF_REG_0, 0, 42), /* to out */
		BPF_MOV64_REG(BPF_REG_6, BPF_REG_0),
		/* out_val = in_val */
		BPF_LDX_MEM(BPF_DW, BPF_REG_1, BPF_REG_6, 0),
		BPF_STX_MEM(BPF_DW, BPF_REG_6, BPF_REG_1, 8),
		/* data_map[2] = in_val */
		BPF_ST_MEM(BPF_W, BPF_REG_10, -4, 2),
		BPF_LD_MAP_FD(BPF_REG_1, data_fd),
		BPF_MOV64_REG(BPF_REG_2, BPF_REG_10),
		BPF_ALU64_IMM(BPF_ADD, BPF_REG_2, -4),
		BPF_MOV64_REG(BPF_REG_3, BPF_REG_6),
		BPF_MOV64_IMM(BPF_REG_4, 0),
		BPF_CALL_HELPER(BPF_FUNC_map_update_elem),
		/* p = data_map[0]; if (p) data_map[1] = *p * 2 */
		BPF_ST_MEM(BPF_W, BPF_REG_10, -4, 0),
		BPF_LD_MAP_FD(BPF_REG_1, data_fd),
		BPF_MOV64_REG(BPF_REG_2, BPF_REG_10),
		BPF_ALU64_IMM(BPF_ADD, BPF_REG_2, -4),
		BPF_CALL_HELPER(BPF_FUNC_map_lookup_elem),
		BPF_JMP_IMM(BPF_JEQ, BPF_REG_0, 0, 12), /* past the update */
		BPF_LDX_MEM(BPF_DW, BPF_REG_1, BPF_REG_0, 0),
		BPF_ALU64_IMM(BPF_LSH, BPF_REG_1, 1),
		BPF_STX_MEM(BPF_DW, BPF_REG_10, BPF_REG_1, -16),
		BPF_ST_MEM(BPF_W, BPF_REG_10, -4, 1),
		BPF_LD_MAP_FD(BPF_REG_1, data_fd),
		BPF_MOV64_REG(BPF_REG_2, BPF_REG_10),
		BPF_ALU64_IMM(BPF_ADD, BPF_REG_2, -4),
		BPF_MOV64_REG(BPF_REG_3, BPF_REG_10),
		BPF_ALU64_IMM(BPF_ADD, BPF_REG_3, -16),
		BPF_MOV64_IMM(BPF_REG_4, 0),
		BPF_CALL_HELPER(BPF_FUNC_map_update_elem),
		/* data_map[far] = in_val * 3 */
		BPF_LDX_MEM(BPF_DW, BPF_REG_1, BPF_REG_6, 0),
		BPF_ALU64_IMM(BPF_MUL, BPF_REG_1, 3),
		BPF_STX_MEM(BPF_DW, BPF_REG_10, BPF_REG_1, -16),
		BPF_ST_MEM(BPF_W, BPF_REG_10, -4, FAR),
		BPF_LD_MAP_FD(BPF_REG_1, data_fd),
		BPF_MOV64_REG(BPF_REG_2, BPF_REG_10),
		BPF_ALU64_IMM(BPF_ADD, BPF_REG_2, -4),
		BPF_MOV64_REG(BPF_REG_3, BPF_REG_10),
		BPF_ALU64_IMM(BPF_ADD, BPF_REG_3, -16),
		BPF_MOV64_IMM(BPF_REG_4, 0),
		BPF_CALL_HELPER(BPF_FUNC_map_update_elem),
		/* out: return XDP_PASS */
		BPF_MOV64_IMM(BPF_REG_0, XDP_PASS),
		BPF_EXIT_INSN(),
	};

	return bpf_prog_load(BPF_PROG_TYPE_XDP, insns, sizeof(insns) / sizeof(insns[0]), "GPL");
}

/* The selftest's usleep(1): one run of the program. */
static void trigger(int prog_fd)
{
	u32 retval = 0;
	int err = bpf_prog_test_run(prog_fd, 64, &retval);

	CHECK(err == 0 && retval == XDP_PASS, "trigger");
}

static void check_values(volatile struct bss_data *bss, volatile struct map_data *map, int data_fd, __u64 in, const char *tag)
{
	__u32 zero = 0, one = 1, two = 2, far = FAR;
	__u64 val = 0;

	printf("%s: in_val=%llu out_val=%llu val[0]=%llu val[1]=%llu val[2]=%llu val[far]=%llu\n", tag,
	       bss->in_val, bss->out_val, map->val[0], map->val[1], map->val[2], map->val[FAR]);
	CHECK(bss->in_val == in && bss->out_val == in, "bss values");
	CHECK(map->val[0] == 111 && map->val[1] == 222 && map->val[2] == in && map->val[FAR] == 3 * in, "mmaped values");
	CHECK(bpf_map_lookup(data_fd, &zero, &val) == 0 && val == 111, "lookup [0]");
	CHECK(bpf_map_lookup(data_fd, &one, &val) == 0 && val == 222, "lookup [1]");
	CHECK(bpf_map_lookup(data_fd, &two, &val) == 0 && val == in, "lookup [2]");
	CHECK(bpf_map_lookup(data_fd, &far, &val) == 0 && val == 3 * in, "lookup [far]");
}

int main(int argc, char **argv, char **envp)
{
	const long bss_sz = PAGE, map_sz = DATA_ENTRIES * 8;
	volatile struct bss_data *bss_data;
	volatile struct map_data *map_data;
	long bss_mmaped, map_mmaped, tmp1, tmp2, err;
	int bss_fd, data_fd, prog_fd, i;
	__u32 zero = 0;
	__u64 val;

	(void)argc, (void)argv, (void)envp;
	bss_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, 4, sizeof(struct bss_data), 1, BPF_F_MMAPABLE, "test_mma.bss");
	data_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, 4, 8, DATA_ENTRIES, BPF_F_MMAPABLE, "data_map");
	CHECK(bss_fd >= 0 && data_fd >= 0, "maps");
	prog_fd = load_prog(bss_fd, data_fd);
	CHECK(prog_fd >= 0, "prog load");
	if (bss_fd < 0 || data_fd < 0 || prog_fd < 0) {
		printf("create: bss %d data %d prog %d (%s)\n", bss_fd, data_fd, prog_fd, errname(prog_fd));
		return 100;
	}

	bss_mmaped = sys_mmap(NULL, bss_sz, PROT_READ | PROT_WRITE, MAP_SHARED, bss_fd, 0);
	CHECK(!mmap_failed(bss_mmaped), "bss_mmap");
	/* map as R/W first */
	map_mmaped = sys_mmap(NULL, map_sz, PROT_READ | PROT_WRITE, MAP_SHARED, data_fd, 0);
	CHECK(!mmap_failed(map_mmaped), "data_mmap");
	if (mmap_failed(bss_mmaped) || mmap_failed(map_mmaped))
		return 100;
	bss_data = (void *)bss_mmaped;
	map_data = (void *)map_mmaped;

	CHECK(!bss_data->in_val && !bss_data->out_val && !map_data->val[0] && !map_data->val[1] &&
	      !map_data->val[2] && !map_data->val[FAR], "fresh mappings are zero");

	bss_data->in_val = 123;
	val = 111;
	CHECK(bpf_map_update(data_fd, &zero, &val, 0) == 0, "update [0]");
	trigger(prog_fd);
	check_values(bss_data, map_data, data_fd, 123, "after 123");

	/* data_map freeze should fail due to R/W mmap() */
	err = bpf_map_freeze(data_fd);
	printf("freeze with a R/W mapping: %s\n", errname(err));
	CHECK(err == -EBUSY, "no_freeze");

	/* unmap R/W mapping */
	CHECK(sys_munmap((void *)map_mmaped, map_sz) == 0, "data_unmap");
	/* re-map as R/O now */
	map_mmaped = sys_mmap(NULL, map_sz, PROT_READ, MAP_SHARED, data_fd, 0);
	CHECK(!mmap_failed(map_mmaped), "data_mmap R/O");
	map_data = (void *)map_mmaped;

	/* map/unmap in a loop to test ref counting */
	for (i = 0; i < 10; i++) {
		int flags = i % 2 ? PROT_READ : PROT_WRITE;
		long p = sys_mmap(NULL, map_sz, flags, MAP_SHARED, data_fd, 0);

		if (mmap_failed(p) || sys_munmap((void *)p, map_sz)) {
			CHECK(0, "mmap/munmap loop");
			break;
		}
	}
	CHECK(i == 10, "mmap/munmap loop");

	/* data_map freeze should now succeed due to no R/W mapping */
	err = bpf_map_freeze(data_fd);
	printf("freeze without R/W mappings: %s\n", errname(err));
	CHECK(err == 0, "freeze");

	/* mapping as R/W now should fail */
	tmp1 = sys_mmap(NULL, map_sz, PROT_READ | PROT_WRITE, MAP_SHARED, data_fd, 0);
	printf("R/W mmap of a frozen map: %s\n", mmap_failed(tmp1) ? errname(tmp1) : "mapped");
	CHECK(tmp1 == -EPERM, "data_mmap after freeze");
	if (!mmap_failed(tmp1))
		sys_munmap((void *)tmp1, map_sz);

	bss_data->in_val = 321;
	trigger(prog_fd);
	check_values(bss_data, map_data, data_fd, 321, "after 321");

	/* check some more advanced mmap() manipulations */
	/* map all but last page: pages 1-3 mapped */
	tmp1 = sys_mmap(NULL, 3 * PAGE, PROT_READ, MAP_SHARED, data_fd, 0);
	CHECK(!mmap_failed(tmp1), "adv_mmap1");
	/* unmap second page: pages 1, 3 mapped */
	CHECK(sys_munmap((void *)(tmp1 + PAGE), PAGE) == 0, "adv_mmap2");
	/* map page 2 back (from file offset PAGE: honoured from 5.7, ignored by v5.5) */
	tmp2 = sys_mmap((void *)(tmp1 + PAGE), PAGE, PROT_READ, MAP_SHARED | MAP_FIXED, data_fd, PAGE);
	CHECK(tmp2 == tmp1 + PAGE, "adv_mmap3");
	printf("page 2 from offset PAGE shows val[512]=%llu val[0 of page 1]=%s\n",
	       ((volatile __u64 *)tmp2)[0], ((volatile __u64 *)tmp2)[0] == 111 ? "page 0 (offset ignored)" : "page 1");
	/* re-map all 4 pages */
	tmp2 = sys_mmap((void *)tmp1, 4 * PAGE, PROT_READ, MAP_SHARED | MAP_FIXED, data_fd, 0);
	CHECK(tmp2 == tmp1, "adv_mmap4");
	map_data = (void *)tmp2;
	check_values(bss_data, map_data, data_fd, 321, "after remap");
	CHECK(sys_munmap((void *)tmp2, 4 * PAGE) == 0, "adv_mmap5");

	/* mapping past the end of the values fails */
	tmp1 = sys_mmap(NULL, 5 * PAGE, PROT_READ, MAP_SHARED, data_fd, 0);
	printf("5-page mmap of a 4-page map: %s\n", mmap_failed(tmp1) ? errname(tmp1) : "mapped");
	CHECK(tmp1 == -EINVAL, "mmap past the end");

	/*
	 * The map survives its fd's close while mapped; the last munmap frees it. A map of its own:
	 * a program's references would outlive it on a real kernel (freed after an RCU grace period).
	 */
	{
		int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 512, BPF_F_MMAPABLE, "survivor");
		long id = fd >= 0 ? bpf_map_id(fd) : fd, fd2, m;
		__u32 k = 7;

		val = 4242;
		CHECK(fd >= 0 && bpf_map_update(fd, &k, &val, 0) == 0, "survivor map");
		m = sys_mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0);
		CHECK(!mmap_failed(m), "survivor mmap");
		CHECK(sys_close(fd) == 0, "close its fd");
		fd2 = bpf_map_get_fd_by_id(id);
		printf("map by id with its fd closed, still mapped: %s\n", fd2 >= 0 ? "found" : errname(fd2));
		CHECK(fd2 >= 0, "mapped map lives");
		CHECK(!mmap_failed(m) && ((volatile __u64 *)m)[7] == 4242, "mapping still reads");
		if (fd2 >= 0)
			sys_close(fd2);
		CHECK(sys_munmap((void *)m, PAGE) == 0, "last munmap");
		fd2 = bpf_map_get_fd_by_id(id);
		printf("map by id after the last munmap: %s\n", fd2 >= 0 ? "found" : errname(fd2));
		CHECK(fd2 == -ENOENT, "unmapped map freed");
	}
	sys_munmap((void *)map_mmaped, map_sz);
	sys_close(prog_fd);
	sys_close(data_fd);
	sys_munmap((void *)bss_mmaped, bss_sz);
	sys_close(bss_fd);
	printf("failures: %d\n", failures);
	return failures;
}
