/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kernel.h - the few types and attributes the bpfemu kernel image needs.
 *
 * The image is freestanding: no libc, no Linux headers. Type names follow
 * the kernel's so that the DWARF (and so the BTF pahole makes from it)
 * names the same types a BPF program expects (u64, __be16, ...).
 */
#ifndef BPFEMU_KERNEL_H
#define BPFEMU_KERNEL_H

typedef unsigned char u8;
typedef signed char s8;
typedef unsigned short u16;
typedef signed short s16;
typedef unsigned int u32;
typedef signed int s32;
typedef unsigned long long u64;
typedef signed long long s64;

typedef _Bool bool;
#define true 1
#define false 0

typedef unsigned long size_t;

/* Big-endian on the wire; the value is kept as the raw 16 bits. */
typedef unsigned short __be16;

#define NULL ((void *)0)

/*
 * notrace: gcc emits no fentry nop and no __mcount_loc entry, so the
 * function is neither in the ftrace table nor (pahole filters on that
 * table) a BTF FUNC. Same spelling as Linux.
 */
#define notrace __attribute__((__no_instrument_function__))

/* A traced target must stay a real call with its own entry point. */
#define noinline __attribute__((__noinline__))

/* Compiler barriers: keep a value in a register / keep memory accesses. */
#define OPTIMIZER_HIDE_VAR(v) __asm__ volatile("" : "+r"(v))
#define barrier() __asm__ volatile("" ::: "memory")

#define READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))

/* Byte order (x86-64 is little-endian). */
#define htons(x) ((__be16)__builtin_bswap16((u16)(x)))
#define ntohs(x) ((u16)__builtin_bswap16((u16)(x)))

#define EFAULT 14

/*
 * ALLOW_ERROR_INJECTION(func, ERRNO): an entry in _error_injection_whitelist,
 * the table within_error_injection_list() searches (include/asm-generic/
 * error-injection.h). BPF_MODIFY_RETURN may attach only to these functions
 * (and security_* hooks): the 5.7 verifier's check_attach_modify_return.
 */
struct error_injection_entry {
	unsigned long addr;
	int etype;
};
#define EI_ETYPE_ERRNO 2
#define ALLOW_ERROR_INJECTION(fname, _etype)				\
	static const struct error_injection_entry __attribute__((__used__, \
		__section__("_error_injection_whitelist"), __aligned__(8)))	\
	_eil_addr_##fname = {						\
		.addr = (unsigned long)fname,				\
		.etype = EI_ETYPE_##_etype,				\
	}

/* lib.c */
void *memset(void *s, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);

#endif /* BPFEMU_KERNEL_H */
