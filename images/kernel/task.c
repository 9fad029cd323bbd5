// SPDX-License-Identifier: GPL-2.0
/*
 * task.c - just enough of a task for __set_task_comm(), the function the
 * trampoline_count and test_overhead selftests attach to.
 */
#include "kernel.h"

#define TASK_COMM_LEN 16

struct task_struct {
	int pid;
	char comm[TASK_COMM_LEN];
};

struct task_struct bpfemu_init_task = {
	.pid = 1,
	.comm = "swapper",
};

/* Copy at most TASK_COMM_LEN-1 bytes and always NUL-terminate. */
noinline void __set_task_comm(struct task_struct *tsk, const char *buf,
			      bool exec)
{
	int i;

	(void)exec;		/* Linux uses it for perf; nothing here */
	for (i = 0; i < TASK_COMM_LEN - 1 && buf[i]; i++)
		tsk->comm[i] = buf[i];
	for (; i < TASK_COMM_LEN; i++)
		tsk->comm[i] = 0;
}
