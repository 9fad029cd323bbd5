// SPDX-License-Identifier: GPL-2.0
/* progs/get_func_ip_test.c (5.15), its fentry/fexit/fmod_ret parts. The selftest compares
 * bpf_get_func_ip() with `&bpf_fentry_test1` through __ksym externs; here each program keeps
 * the ip it got and the test compares it with the function's kallsyms address. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char _license[] SEC("license") = "GPL";

__u64 test1_ip = 0;
SEC("fentry/bpf_fentry_test1")
int test1(void *ctx)
{
	test1_ip = bpf_get_func_ip(ctx);
	return 0;
}

__u64 test2_ip = 0;
SEC("fexit/bpf_fentry_test2")
int test2(void *ctx)
{
	test2_ip = bpf_get_func_ip(ctx);
	return 0;
}

__u64 test5_ip = 0;
SEC("fmod_ret/bpf_modify_return_test")
int BPF_PROG(test5, int a, int *b, int ret)
{
	test5_ip = bpf_get_func_ip(ctx);
	return ret;
}
