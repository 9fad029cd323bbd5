/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ulib.h - the user programs' whole runtime: no libc, raw `syscall`s with Linux's x86-64
 * numbers and registers (rax = nr; rdi, rsi, rdx, r10, r8, r9; result or -errno in rax; rcx
 * and r11 clobbered), Linux's uAPI headers (linux-libc-dev) for every constant and struct, a
 * small printf, and bpf() wrappers. So the same binary runs in bpfemu and on a real Linux
 * kernel: the host is the oracle the tests compare against.
 *
 * Functions return the kernel's value: >= 0, or -errno (there is no errno variable).
 */
#ifndef ULIB_H
#define ULIB_H

#include <stdarg.h>
#include <stddef.h>
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/mman.h>
#include <asm/unistd.h>
#include <asm-generic/errno.h>

typedef unsigned long u64;
typedef unsigned int u32;

/* --- system calls ------------------------------------------------------------------------- */

static inline long syscall6(long nr, long a, long b, long c, long d, long e, long f)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

#define syscall3(nr, a, b, c) syscall6(nr, (long)(a), (long)(b), (long)(c), 0, 0, 0)

static inline long sys_write(int fd, const void *buf, size_t n) { return syscall3(__NR_write, fd, buf, n); }
static inline long sys_close(int fd) { return syscall3(__NR_close, fd, 0, 0); }
static inline long sys_dup(int fd) { return syscall3(__NR_dup, fd, 0, 0); }
static inline long sys_getpid(void) { return syscall3(__NR_getpid, 0, 0, 0); }
static inline long sys_getppid(void) { return syscall3(__NR_getppid, 0, 0, 0); }
static inline long sys_getuid(void) { return syscall3(__NR_getuid, 0, 0, 0); }
static inline long sys_fork(void) { return syscall3(__NR_fork, 0, 0, 0); }
static inline long sys_sched_yield(void) { return syscall3(__NR_sched_yield, 0, 0, 0); }
static inline long sys_brk(void *p) { return syscall3(__NR_brk, p, 0, 0); }
static inline long sys_wait4(int pid, int *status, int options) { return syscall6(__NR_wait4, pid, (long)status, options, 0, 0, 0); }
static inline long sys_munmap(void *addr, size_t len) { return syscall3(__NR_munmap, addr, len, 0); }
static inline long sys_mprotect(void *addr, size_t len, int prot) { return syscall3(__NR_mprotect, addr, len, prot); }
static inline long sys_mmap(void *addr, size_t len, int prot, int flags, int fd, long off)
{
	return syscall6(__NR_mmap, (long)addr, (long)len, prot, flags, fd, off);
}
static inline long sys_bpf(int cmd, union bpf_attr *attr, unsigned int size)
{
	return syscall3(__NR_bpf, cmd, attr, size);
}

__attribute__((noreturn)) static inline void sys_exit(int code)
{
	for (;;)
		syscall3(__NR_exit, code, 0, 0);
}

/* mmap's result: an address, or -errno in the last page of the address space. */
static inline int mmap_failed(long r) { return r < 0 && r > -4096; }

/* --- memory and strings (gcc may emit calls to these even when freestanding) ---------------- */

void *memset(void *s, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
long atol(const char *s);

/* --- output ----------------------------------------------------------------------------- */

/* %d %i %u %x %s %c %p %% with l/ll; width and '0' padding. Writes to fd 1. */
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int dprintf(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int vdprintf(int fd, const char *fmt, va_list ap);

/* The errno's name (EINVAL…), or its number as text. */
const char *errname(long err);

/* --- bpf() ------------------------------------------------------------------------------ */

int bpf_map_create(enum bpf_map_type type, u32 key_size, u32 value_size, u32 max_entries, u32 flags, const char *name);
int bpf_map_update(int fd, const void *key, const void *value, u64 flags);
int bpf_map_lookup(int fd, const void *key, void *value);
int bpf_map_freeze(int fd);
int bpf_map_get_fd_by_id(u32 id);
/* The map's id (BPF_OBJ_GET_INFO_BY_FD), or -errno. */
/* BPF_OBJ_GET_INFO_BY_FD into `info` (zeroed first, `len` bytes); the syscall's result. */
long bpf_obj_get_info(int fd, void *info, u32 len);
long bpf_map_id(int fd);
int bpf_prog_load(enum bpf_prog_type type, const struct bpf_insn *insns, u32 cnt, const char *license);
/* BPF_PROG_TEST_RUN on a packet of `size` zero bytes; the retval in *retval. */
int bpf_prog_test_run(int fd, u32 size, u32 *retval);

/* --- BPF instructions (as include/linux/filter.h builds them) ----------------------------- */

#define BPF_INSN(CODE, DST, SRC, OFF, IMM) \
	((struct bpf_insn){ .code = (CODE), .dst_reg = (DST), .src_reg = (SRC), .off = (OFF), .imm = (IMM) })
#define BPF_MOV64_IMM(DST, IMM) BPF_INSN(BPF_ALU64 | BPF_MOV | BPF_K, DST, 0, 0, IMM)
#define BPF_MOV64_REG(DST, SRC) BPF_INSN(BPF_ALU64 | BPF_MOV | BPF_X, DST, SRC, 0, 0)
#define BPF_ALU64_IMM(OP, DST, IMM) BPF_INSN(BPF_ALU64 | BPF_OP(OP) | BPF_K, DST, 0, 0, IMM)
#define BPF_LDX_MEM(SZ, DST, SRC, OFF) BPF_INSN(BPF_LDX | BPF_SIZE(SZ) | BPF_MEM, DST, SRC, OFF, 0)
#define BPF_STX_MEM(SZ, DST, SRC, OFF) BPF_INSN(BPF_STX | BPF_SIZE(SZ) | BPF_MEM, DST, SRC, OFF, 0)
#define BPF_ST_MEM(SZ, DST, OFF, IMM) BPF_INSN(BPF_ST | BPF_SIZE(SZ) | BPF_MEM, DST, 0, OFF, IMM)
#define BPF_JMP_IMM(OP, DST, IMM, OFF) BPF_INSN(BPF_JMP | BPF_OP(OP) | BPF_K, DST, 0, OFF, IMM)
#define BPF_LD_MAP_FD(DST, FD) \
	BPF_INSN(BPF_LD | BPF_DW | BPF_IMM, DST, BPF_PSEUDO_MAP_FD, 0, FD), BPF_INSN(0, 0, 0, 0, 0)
#define BPF_CALL_HELPER(ID) BPF_INSN(BPF_JMP | BPF_CALL, 0, 0, 0, ID)
#define BPF_EXIT_INSN() BPF_INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

/* --- checks ----------------------------------------------------------------------------- */

extern int failures;
/* Prints "ok NAME" or "FAIL NAME", counts failures. */
#define CHECK(cond, name)                                      \
	do {                                                   \
		if (cond)                                      \
			printf("ok %s\n", name);               \
		else {                                         \
			printf("FAIL %s (line %d)\n", name, __LINE__); \
			failures++;                            \
		}                                              \
	} while (0)

/* The program's entry: _start (ulib.c) calls it with the stack's argc/argv/envp. */
int main(int argc, char **argv, char **envp);

#endif
