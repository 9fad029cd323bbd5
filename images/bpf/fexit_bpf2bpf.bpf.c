// SPDX-License-Identifier: GPL-2.0
/* The kernel selftest progs/fexit_bpf2bpf.c (v5.5), with its values: fexit programs on
 * test_pkt_access (test_pkt_access.bpf.c) and on its two subprograms, loaded with
 * attach_prog_fd = the test_pkt_access program. Run over pkt_v6 (74 bytes), each sets its
 * result to 1.
 *
 * test_pkt_access and test_pkt_access_subprog1 have reliable BTF: the argument is a typed
 * pointer (the target's `struct __sk_buff *` becomes the kernel's `struct sk_buff *`), read
 * directly. test_pkt_access_subprog2's BTF disagrees with its code (clang dropped `val`), so the
 * model is five u64 arguments and the return value: the skb is args[0], a plain number, and its
 * len is read with bpf_probe_read_kernel. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

/* Only the field used, relocated to the kernel image's layout (CO-RE). */
struct sk_buff {
	unsigned int len;
} __attribute__((preserve_access_index));

__u64 test_result = 0;
SEC("fexit/test_pkt_access")
int BPF_PROG(test_main, struct sk_buff *skb, int ret)
{
	int len = skb->len;

	if (len != 74 || ret != 0)
		return 0;
	test_result = 1;
	return 0;
}

__u64 test_result_subprog1 = 0;
SEC("fexit/test_pkt_access_subprog1")
int BPF_PROG(test_subprog1, struct sk_buff *skb, int ret)
{
	int len = skb->len;

	if (len != 74 || ret != 148)
		return 0;
	test_result_subprog1 = 1;
	return 0;
}

/* Though test_pkt_access_subprog2() is defined in C as
 *     int test_pkt_access_subprog2(int val, volatile struct __sk_buff *skb)
 * llvm removes 'int val', and the verifier falls back to the conservative model: the tracing
 * program sees the arguments and the return value as u64. */
struct args_subprog2 {
	__u64 args[5];
	__u64 ret;
};
__u64 test_result_subprog2 = 0;
SEC("fexit/test_pkt_access_subprog2")
int test_subprog2(struct args_subprog2 *ctx)
{
	struct sk_buff *skb = (void *)ctx->args[0];
	__u64 ret;
	int len;

	bpf_probe_read_kernel(&len, sizeof(len), __builtin_preserve_access_index(&skb->len));

	ret = ctx->ret;
	/* The upper 32 bits of the return value are whatever the JIT left (w0 <<= 1 in the
	 * selftest's build, BPF_F_TEST_RND_HI32): trim them. */
	ret = (__u32)ret;
	if (len != 74 || ret != 148)
		return 0;
	test_result_subprog2 = 1;
	return 0;
}

char _license[] SEC("license") = "GPL";
