// SPDX-License-Identifier: GPL-2.0
/*
 * ulib.c - the user programs' runtime (see ulib.h): _start, strings, printf, bpf() wrappers.
 * Linked into every program (images/Makefile).
 */
#include "ulib.h"

int failures;

/* The kernel enters at _start with rsp at argc (the System V ABI's initial process stack). */
__attribute__((naked, noreturn)) void _start(void)
{
	__asm__ volatile("xor %ebp, %ebp\n\t"
			 "mov %rsp, %rdi\n\t"
			 "and $-16, %rsp\n\t"
			 "call __ulib_start\n\t"
			 "hlt");
}

__attribute__((used, noreturn)) void __ulib_start(long *sp)
{
	int argc = (int)sp[0];
	char **argv = (char **)(sp + 1);

	sys_exit(main(argc, argv, argv + argc + 1));
}

void *memset(void *s, int c, size_t n)
{
	unsigned char *p = s;

	while (n--)
		*p++ = (unsigned char)c;
	return s;
}

void *memcpy(void *d, const void *s, size_t n)
{
	unsigned char *a = d;
	const unsigned char *b = s;

	while (n--)
		*a++ = *b++;
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;

	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

int strcmp(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return (unsigned char)*a - (unsigned char)*b;
}

long atol(const char *s)
{
	long v = 0, sign = 1;

	if (*s == '-')
		sign = -1, s++;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		for (s += 2;; s++) {
			int d = *s >= '0' && *s <= '9' ? *s - '0' : *s >= 'a' && *s <= 'f' ? *s - 'a' + 10 :
				*s >= 'A' && *s <= 'F' ? *s - 'A' + 10 : -1;
			if (d < 0)
				break;
			v = v * 16 + d;
		}
		return sign * v;
	}
	while (*s >= '0' && *s <= '9')
		v = v * 10 + (*s++ - '0');
	return sign * v;
}

/* --- printf --------------------------------------------------------------------------------- */

struct out {
	int fd;
	char buf[256];
	int n, total;
};

static void flush(struct out *o)
{
	if (o->n)
		sys_write(o->fd, o->buf, o->n);
	o->n = 0;
}

static void put(struct out *o, char c)
{
	if (o->n == (int)sizeof(o->buf))
		flush(o);
	o->buf[o->n++] = c;
	o->total++;
}

static void put_num(struct out *o, unsigned long long v, int base, int neg, int width, char pad)
{
	char tmp[24];
	int i = 0;

	do {
		tmp[i++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	if (neg)
		tmp[i++] = '-';
	for (; width > i; width--)
		put(o, pad);
	while (i)
		put(o, tmp[--i]);
}

int vdprintf(int fd, const char *fmt, va_list ap)
{
	struct out o = { .fd = fd };

	for (; *fmt; fmt++) {
		int lng = 0, width = 0;
		char pad = ' ';

		if (*fmt != '%') {
			put(&o, *fmt);
			continue;
		}
		fmt++;
		if (*fmt == '0')
			pad = '0', fmt++;
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l')
			lng++, fmt++;
		switch (*fmt) {
		case 'd':
		case 'i': {
			long long v = lng ? va_arg(ap, long long) : va_arg(ap, int);
			put_num(&o, v < 0 ? -(unsigned long long)v : (unsigned long long)v, 10, v < 0, width, pad);
			break;
		}
		case 'u':
		case 'x': {
			unsigned long long v = lng ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned int);
			put_num(&o, v, *fmt == 'x' ? 16 : 10, 0, width, pad);
			break;
		}
		case 'p':
			put(&o, '0');
			put(&o, 'x');
			put_num(&o, (unsigned long)va_arg(ap, void *), 16, 0, width, pad);
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			for (s = s ? s : "(null)"; *s; s++)
				put(&o, *s);
			break;
		}
		case 'c':
			put(&o, (char)va_arg(ap, int));
			break;
		default:
			put(&o, '%');
			if (*fmt)
				put(&o, *fmt);
			else
				fmt--;
		}
	}
	flush(&o);
	return o.total;
}

int dprintf(int fd, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vdprintf(fd, fmt, ap);
	va_end(ap);
	return n;
}

int printf(const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vdprintf(1, fmt, ap);
	va_end(ap);
	return n;
}

const char *errname(long err)
{
	static char num[24];
	static const struct { int e; const char *n; } names[] = {
		{ 0, "OK" }, { EPERM, "EPERM" }, { ENOENT, "ENOENT" }, { E2BIG, "E2BIG" }, { EBADF, "EBADF" },
		{ ENOMEM, "ENOMEM" }, { EACCES, "EACCES" }, { EFAULT, "EFAULT" }, { EBUSY, "EBUSY" },
		{ EEXIST, "EEXIST" }, { ENODEV, "ENODEV" }, { EINVAL, "EINVAL" }, { ENOSPC, "ENOSPC" },
		{ ENOSYS, "ENOSYS" }, { EOVERFLOW, "EOVERFLOW" }, { EOPNOTSUPP, "EOPNOTSUPP" },
		{ ECHILD, "ECHILD" }, { 524, "ENOTSUPP" },
	};
	unsigned int i;

	if (err < 0)
		err = -err;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].e == err)
			return names[i].n;
	{
		char tmp[24];
		int n = 0, k = 0;

		do
			tmp[n++] = '0' + err % 10;
		while (err /= 10);
		while (n)
			num[k++] = tmp[--n];
		num[k] = 0;
	}
	return num;
}

/* --- bpf() ---------------------------------------------------------------------------------- */

int bpf_map_create(enum bpf_map_type type, u32 key_size, u32 value_size, u32 max_entries, u32 flags, const char *name)
{
	union bpf_attr a;
	size_t i;

	memset(&a, 0, sizeof(a));
	a.map_type = type;
	a.key_size = key_size;
	a.value_size = value_size;
	a.max_entries = max_entries;
	a.map_flags = flags;
	for (i = 0; name && name[i] && i < sizeof(a.map_name) - 1; i++)
		a.map_name[i] = name[i];
	return sys_bpf(BPF_MAP_CREATE, &a, sizeof(a));
}

int bpf_map_update(int fd, const void *key, const void *value, u64 flags)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.map_fd = fd;
	a.key = (u64)key;
	a.value = (u64)value;
	a.flags = flags;
	return sys_bpf(BPF_MAP_UPDATE_ELEM, &a, sizeof(a));
}

int bpf_map_lookup(int fd, const void *key, void *value)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.map_fd = fd;
	a.key = (u64)key;
	a.value = (u64)value;
	return sys_bpf(BPF_MAP_LOOKUP_ELEM, &a, sizeof(a));
}

int bpf_map_freeze(int fd)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.map_fd = fd;
	return sys_bpf(BPF_MAP_FREEZE, &a, sizeof(a));
}

int bpf_map_get_fd_by_id(u32 id)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.map_id = id;
	return sys_bpf(BPF_MAP_GET_FD_BY_ID, &a, sizeof(a));
}

long bpf_obj_get_info(int fd, void *info, u32 len)
{
	union bpf_attr a;

	memset(info, 0, len);
	memset(&a, 0, sizeof(a));
	a.info.bpf_fd = fd;
	a.info.info_len = len;
	a.info.info = (u64)info;
	return sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &a, sizeof(a));
}

long bpf_map_id(int fd)
{
	struct bpf_map_info info;
	long r = bpf_obj_get_info(fd, &info, sizeof(info));

	return r < 0 ? r : info.id;
}

int bpf_prog_load(enum bpf_prog_type type, const struct bpf_insn *insns, u32 cnt, const char *license)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.prog_type = type;
	a.insns = (u64)insns;
	a.insn_cnt = cnt;
	a.license = (u64)license;
	return sys_bpf(BPF_PROG_LOAD, &a, sizeof(a));
}

int bpf_prog_test_run(int fd, u32 size, u32 *retval)
{
	static unsigned char pkt[256];
	union bpf_attr a;
	int r;

	memset(&a, 0, sizeof(a));
	a.test.prog_fd = fd;
	a.test.data_in = (u64)pkt;
	a.test.data_size_in = size;
	a.test.repeat = 1;
	r = sys_bpf(BPF_PROG_TEST_RUN, &a, sizeof(a));
	if (retval)
		*retval = a.test.retval;
	return r;
}
