// SPDX-License-Identifier: GPL-2.0
/*
 * hello - the smallest user program: its argv, its ids, a line on stderr, and the exit status
 * given as its first argument (default 0). `bpfemu run-user images/build/user/hello a b 3`.
 */
#include "ulib.h"

int main(int argc, char **argv, char **envp)
{
	int i;

	(void)envp;
	printf("hello from pid %ld (uid %ld), argc=%d\n", sys_getpid(), sys_getuid(), argc);
	for (i = 0; i < argc; i++)
		printf("argv[%d]=%s\n", i, argv[i]);
	dprintf(2, "to stderr\n");
	return argc > 1 ? (int)atol(argv[argc - 1]) : 0;
}
