// SPDX-License-Identifier: GPL-2.0
/*
 * test_run.c - the kernel's BPF test targets (net/bpf/test_run.c) and the
 * notrace callers that BPF_PROG_TEST_RUN uses to exercise them.
 *
 * The targets are traced (fentry nop + __mcount_loc, so pahole gives them a
 * BTF FUNC) and noinline, with the prototypes and bodies the selftests
 * expect (KERNEL.md A.6). The callers are notrace: they are plumbing, and
 * nothing in the selftests attaches to them.
 */
#include "kernel.h"

noinline int bpf_fentry_test1(int a)
{
	return a + 1;
}

noinline int bpf_fentry_test2(int a, u64 b)
{
	return a + b;
}

noinline int bpf_fentry_test3(char a, int b, u64 c)
{
	return a + b + c;
}

noinline int bpf_fentry_test4(void *a, char b, int c, u64 d)
{
	return (long)a + b + c + d;
}

noinline int bpf_fentry_test5(u64 a, void *b, short c, int d, u64 e)
{
	return a + (long)b + c + d + e;
}

noinline int bpf_fentry_test6(u64 a, void *b, short c, int d, void *e, u64 f)
{
	return a + (long)b + c + d + (long)e + f;
}

struct bpf_fentry_test_t {
	struct bpf_fentry_test_t *a;
};

noinline int bpf_fentry_test7(struct bpf_fentry_test_t *arg)
{
	return (long)arg;
}

noinline int bpf_fentry_test8(struct bpf_fentry_test_t *arg)
{
	return (long)arg->a;
}

noinline u32 bpf_fentry_test9(u32 *a)
{
	return *a;
}

/* fmod_ret target (5.7): the side effect on *b shows whether the body ran. */
noinline int bpf_modify_return_test(int a, int *b)
{
	*b += 1;
	return a + *b;
}

/* fmod_ret may attach to it (net/bpf/test_run.c's ALLOW_ERROR_INJECTION). */
ALLOW_ERROR_INJECTION(bpf_modify_return_test, ERRNO);

/* 6.x variant with a 7th argument, passed on the stack. */
noinline int bpf_modify_return_test2(int a, int *b, short c, int d, void *e,
				     char f, int g)
{
	*b += 1;
	return a + *b + c + d + (long)e + f + g;
}
ALLOW_ERROR_INJECTION(bpf_modify_return_test2, ERRNO);

/*
 * v5.5 bpf_test_init(): every skb/xdp BPF_PROG_TEST_RUN calls test1..6 and
 * fails with -EFAULT if one of them returns something unexpected.
 */
notrace int bpf_test_run_fentry(void)
{
	if (bpf_fentry_test1(1) != 2 ||
	    bpf_fentry_test2(2, 3) != 5 ||
	    bpf_fentry_test3(4, 5, 6) != 15 ||
	    bpf_fentry_test4((void *)7, 8, 9, 10) != 34 ||
	    bpf_fentry_test5(11, (void *)12, 13, 14, 15) != 65 ||
	    bpf_fentry_test6(16, (void *)17, 18, 19, (void *)20, 21) != 111)
		return -EFAULT;
	return 0;
}

/* Later kernels (bpf_prog_test_run_tracing): test1..9 for FENTRY/FEXIT. */
notrace int bpfemu_test_run_tracing(void)
{
	struct bpf_fentry_test_t arg = { NULL };
	u32 zero = 0;
	int err = bpf_test_run_fentry();

	if (err)
		return err;
	if (bpf_fentry_test7(NULL) != 0 ||
	    bpf_fentry_test8(&arg) != 0 ||
	    bpf_fentry_test9(&zero) != 0)
		return -EFAULT;
	return 0;
}

/*
 * BPF_MODIFY_RETURN test run (bpf_prog_test_run_tracing): retval =
 * ((u32)side_effect << 16) | ret with both u16, side_effect counting the bodies that ran
 * (b moved off 2). 5.7 calls bpf_modify_return_test(1, &b) only; 6.x adds
 * bpf_modify_return_test2(1, &b, 3, 4, 5, 6, 7) to ret (with_test2 != 0).
 * Nothing attached: 4 and side effect 1 (0x10004); both: 4 + 29, side 2.
 */
notrace u32 bpfemu_test_run_modify_return(int with_test2)
{
	/* u16 in the kernel: a negative ret leaves the side-effect half alone. */
	u16 side_effect = 0, ret;
	int b = 2;

	ret = bpf_modify_return_test(1, &b);
	if (b != 2)
		side_effect++;
	if (with_test2) {
		b = 2;
		ret += bpf_modify_return_test2(1, &b, 3, 4, (void *)5, 6, 7);
		if (b != 2)
			side_effect++;
	}
	return ((u32)side_effect << 16) | ret;
}
