// SPDX-License-Identifier: GPL-2.0
/* The kernel selftest progs/modify_return.c (5.7, KP Singh): fentry, fmod_ret and fexit on
 * bpf_modify_return_test, each checking it runs in that order; fmod_ret returns input_retval,
 * which (non-zero) skips the function and becomes its return value. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char _license[] SEC("license") = "GPL";

static int sequence = 0;
__s32 input_retval = 0;

__u64 fentry_result = 0;
SEC("fentry/bpf_modify_return_test")
int BPF_PROG(fentry_test, int a, __u64 b)
{
	sequence++;
	fentry_result = (sequence == 1);
	return 0;
}

__u64 fmod_ret_result = 0;
SEC("fmod_ret/bpf_modify_return_test")
int BPF_PROG(fmod_ret_test, int a, int *b, int ret)
{
	sequence++;
	/* The first fmod_ret program: the return slot still holds 0. */
	fmod_ret_result = (sequence == 2 && ret == 0);
	return input_retval;
}

__u64 fexit_result = 0;
SEC("fexit/bpf_modify_return_test")
int BPF_PROG(fexit_test, int a, int *b, int ret)
{
	sequence++;
	/* A non-zero input_retval replaced the return value; else the body's 4 is seen. */
	if (input_retval)
		fexit_result = (sequence == 3 && ret == input_retval);
	else
		fexit_result = (sequence == 3 && ret == 4);
	return 0;
}
