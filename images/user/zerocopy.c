// SPDX-License-Identifier: GPL-2.0
/*
 * zerocopy [N] - one value, three views: the process's mmap of a BPF_F_MMAPABLE array, the
 * JIT-compiled program's map_lookup_elem pointer, and (in bpfemu) the host's view of the same
 * pages. The process stores, the program returns what it loads: no copy in between. It yields
 * once with 0xfeed stored so a test can look at the pages from the host, and expects the word
 * after it to read 0xbeef afterwards if the host wrote it (it prints what it saw). Then N
 * store/test-run rounds (the benchmark's loop); with `update` as second argument the rounds
 * write the value with BPF_MAP_UPDATE_ELEM instead (a copy through bpf(), for comparison).
 */
#include "ulib.h"

int main(int argc, char **argv, char **envp)
{
	struct bpf_insn insns[] = {
		BPF_ST_MEM(BPF_W, BPF_REG_10, -4, 0),
		BPF_LD_MAP_FD(BPF_REG_1, 0),
		BPF_MOV64_REG(BPF_REG_2, BPF_REG_10),
		BPF_ALU64_IMM(BPF_ADD, BPF_REG_2, -4),
		BPF_CALL_HELPER(BPF_FUNC_map_lookup_elem),
		BPF_JMP_IMM(BPF_JEQ, BPF_REG_0, 0, 2),
		BPF_LDX_MEM(BPF_DW, BPF_REG_0, BPF_REG_0, 0),
		BPF_EXIT_INSN(),
		BPF_MOV64_IMM(BPF_REG_0, 0),
		BPF_EXIT_INSN(),
	};
	long n = argc > 1 ? atol(argv[1]) : 0, i, m;
	int update = argc > 2 && !strcmp(argv[2], "update");
	__u32 zero = 0;
	__u64 val;
	volatile __u64 *v;
	u32 retval = 0;
	int fd, prog, bad = 0;

	(void)envp;
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 512, BPF_F_MMAPABLE, "zc");
	insns[1].imm = fd;
	prog = bpf_prog_load(BPF_PROG_TYPE_XDP, insns, sizeof(insns) / sizeof(insns[0]), "GPL");
	m = sys_mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (fd < 0 || prog < 0 || mmap_failed(m)) {
		printf("setup: map %d prog %d mmap %s\n", fd, prog, errname(m));
		return 1;
	}
	v = (volatile __u64 *)m;
	v[0] = 0xfeed;
	sys_sched_yield();
	bpf_prog_test_run(prog, 64, &retval);
	printf("the program loaded 0x%x\n", retval);
	printf("the word after it reads 0x%llx\n", v[1]);
	for (i = 1; i <= n; i++) {
		if (update) {
			val = i;
			bpf_map_update(fd, &zero, &val, 0);
		} else {
			v[0] = i;
		}
		bpf_prog_test_run(prog, 64, &retval);
		bad += retval != (u32)i;
	}
	printf("%ld rounds, %d wrong\n", n, bad);
	return bad != 0;
}
