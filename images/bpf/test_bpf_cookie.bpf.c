// SPDX-License-Identifier: GPL-2.0
/* progs/test_bpf_cookie.c (5.19), its tracing part: each program ORs the cookie of the link
 * that attached it into its result, for calls from the test's own task. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char _license[] SEC("license") = "GPL";

int my_tid = 0;
__u64 fentry_res = 0;
__u64 fexit_res = 0;
__u64 fmod_ret_res = 0;

static void update(void *ctx, __u64 *res)
{
	if (my_tid != (__u32)bpf_get_current_pid_tgid())
		return;
	*res |= bpf_get_attach_cookie(ctx);
}

SEC("fentry/bpf_fentry_test1")
int BPF_PROG(fentry_test1, int a)
{
	update(ctx, &fentry_res);
	return 0;
}

SEC("fexit/bpf_fentry_test1")
int BPF_PROG(fexit_test1, int a, int ret)
{
	update(ctx, &fexit_res);
	return 0;
}

SEC("fmod_ret/bpf_modify_return_test")
int BPF_PROG(fmod_ret_test, int _a, int *_b, int _ret)
{
	update(ctx, &fmod_ret_res);
	return 1234;
}
