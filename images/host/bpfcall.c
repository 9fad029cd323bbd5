// SPDX-License-Identifier: GPL-2.0-only
/*
 * bpfcall - run a list of raw bpf() calls in the HOST's kernel and print what each returned.
 *
 * The host's real kernel as an oracle for the bpf() syscall surface itself (bad attrs, bad
 * fds, flags): test/bpf/syscall_cases.ts is replayed through this tool by
 * scripts/record-host-syscalls.ts. Raw syscall(SYS_bpf, ...), no libbpf, no <linux/bpf.h>
 * structures: the caller lays out every attr by offset, so the tool knows no command and no
 * field name, and pointers and fds that only exist in this process are substituted here.
 *
 * Input on stdin, one directive a line ('#' starts a comment line; blank lines are ignored):
 *
 *   buf NAME LEN [HEX]         LEN zero bytes in this process's memory, HEX copied to their
 *                              start; $NAME is their address
 *   fd NAME CMD SIZE FIELD...  a setup bpf() call that must succeed; $NAME is what it returned
 *                              (a map's or a program's fd)
 *   do CMD SIZE FIELD...       a setup bpf() call that must succeed (e.g. BPF_MAP_FREEZE)
 *   call CMD SIZE FIELD...     a call under test: prints {"ret":N,"errno":N} on its own line
 *   str NAME                   prints {"str":"..."}: the NUL-terminated text at $NAME (a buf,
 *                              e.g. a verifier log), JSON-escaped; then empties it (first byte 0)
 *
 *   FIELD = OFF:WIDTH:VALUE    WIDTH bytes (1, 2, 4 or 8, little-endian; any other width: raw
 *                              bytes) at byte OFF of the attr. VALUE: a decimal or 0x integer
 *                              (a leading '-' for two's complement), $NAME (a buf's address
 *                              or an fd's number), or xHEX (raw bytes, e.g. a char[16] name,
 *                              zero-padded to WIDTH).
 *
 * The attr passed is SIZE bytes (SIZE may exceed sizeof(union bpf_attr), up to 64 KiB), zero
 * except the FIELDs, in a fresh buffer for each call. errno is 0 when the call returned >= 0.
 * Output is line-buffered: a JSON line per `call`, in order, and nothing else on stdout.
 *
 * Exit status: 0 when every line was run, 2 on a malformed line (stderr says which), 1 when a
 * setup call failed otherwise, 3 when a setup call is refused as such (EPERM or ENOSYS: not
 * root, unprivileged bpf disabled, no bpf()), so that callers can skip with the reason printed
 * on stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "hexparse.h"

#define MAX_ATTR (64 * 1024)
#define MAX_BUF (16 * 1024 * 1024)
#define MAX_NAMES 256
#define MAX_LINE (4 * MAX_BUF)

struct name {
	char *name;
	uint64_t value;
};

static struct name names[MAX_NAMES];
static int nnames;
static unsigned long lineno;
/* Aligned like a union bpf_attr (__aligned(8)). */
static uint64_t attrbuf[MAX_ATTR / 8];

static int bad(const char *what, const char *tok)
{
	fprintf(stderr, "bpfcall: line %lu: %s%s%s\n", lineno, what, tok ? ": " : "", tok ? tok : "");
	return 2;
}

/* A whole-token unsigned integer (decimal or 0x; '-' for two's complement); 0 on success. */
static int parse_u64(const char *s, uint64_t *v)
{
	int neg = s[0] == '-';
	char *end;
	if (neg)
		s++;
	if (!*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 0);
	if (errno || *end)
		return -1;
	*v = neg ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
	return 0;
}

static struct name *lookup(const char *name)
{
	for (int i = 0; i < nnames; i++)
		if (strcmp(names[i].name, name) == 0)
			return &names[i];
	return NULL;
}

static int define(const char *name, uint64_t value)
{
	if (lookup(name))
		return bad("name defined twice", name);
	if (nnames == MAX_NAMES)
		return bad("too many names", name);
	names[nnames].name = strdup(name);
	names[nnames].value = value;
	if (!names[nnames].name)
		return bad("out of memory", NULL);
	nnames++;
	return 0;
}

/* A field's OFF or WIDTH: decimal digits up to `stop`; -1 when malformed. */
static int parse_dec(const char *s, char stop, uint64_t *v, const char **rest)
{
	char *end;
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*v = strtoull(s, &end, 10);
	if (errno || *end != stop)
		return -1;
	*rest = end + 1;
	return 0;
}

/* Lays out the FIELD tokens into attrbuf (zeroed first); 0 or an exit status. */
static int layout(char **tok, int ntok, size_t size)
{
	unsigned char *attr = (unsigned char *)attrbuf;
	memset(attrbuf, 0, sizeof(attrbuf));
	for (int i = 0; i < ntok; i++) {
		const char *t = tok[i], *w, *val;
		uint64_t off, width, v = 0;
		if (parse_dec(t, ':', &off, &w) || parse_dec(w, ':', &width, &val))
			return bad("a field is OFF:WIDTH:VALUE", t);
		if (width == 0 || off > size || width > size - off)
			return bad("zero width, or the field ends past SIZE", t);
		if (val[0] == 'x') {
			if (parse_hex(val + 1, attr + off, width, 0) < 0)
				return bad("bad hex value (or longer than WIDTH)", t);
			continue;
		}
		if (val[0] == '$') {
			struct name *n = lookup(val + 1);
			if (!n)
				return bad("undefined name", t);
			v = n->value;
		} else if (parse_u64(val, &v)) {
			return bad("bad value", t);
		}
		if (width != 1 && width != 2 && width != 4 && width != 8)
			return bad("an integer needs WIDTH 1, 2, 4 or 8", t);
		for (uint64_t b = 0; b < width; b++)
			attr[off + b] = (unsigned char)(v >> (8 * b));
	}
	return 0;
}

/* bpf(CMD, attr, SIZE) from "CMD SIZE FIELD..."; 0 or an exit status. */
static int run(char **tok, int ntok, long *ret, int *err)
{
	uint64_t cmd, size;
	if (ntok < 2 || parse_u64(tok[0], &cmd) || parse_u64(tok[1], &size) || cmd > INT32_MAX)
		return bad("expected CMD SIZE FIELD...", ntok ? tok[0] : NULL);
	if (size > MAX_ATTR)
		return bad("SIZE over 64 KiB", tok[1]);
	int st = layout(tok + 2, ntok - 2, (size_t)size);
	if (st)
		return st;
	errno = 0;
	*ret = syscall(SYS_bpf, (int)cmd, attrbuf, (unsigned int)size);
	*err = *ret < 0 ? errno : 0;
	return 0;
}

static int setup_failed(const char *line, int err)
{
	fprintf(stderr, "bpfcall: line %lu: setup call failed: %s: %s\n", lineno, strerror(err), line);
	return err == EPERM || err == ENOSYS ? 3 : 1;
}

int main(int argc, char **argv)
{
	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "usage: bpfcall < CALLS   (the format: images/host/bpfcall.c)\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);

	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	static char *tok[4096];
	while ((len = getline(&line, &cap, stdin)) >= 0) {
		lineno++;
		if (len > MAX_LINE)
			return bad("line too long", NULL);
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		char *copy = strdup(line), *save = NULL;
		if (!copy)
			return bad("out of memory", NULL);
		int ntok = 0;
		for (char *t = strtok_r(line, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
			if (ntok == (int)(sizeof(tok) / sizeof(tok[0])))
				return bad("too many fields", NULL);
			tok[ntok++] = t;
		}
		if (ntok == 0 || tok[0][0] == '#') {
			free(copy);
			continue;
		}

		int st = 0;
		long ret = 0;
		int err = 0;
		if (strcmp(tok[0], "buf") == 0) {
			uint64_t n;
			if (ntok < 3 || ntok > 4 || parse_u64(tok[2], &n) || n > MAX_BUF)
				return bad("expected buf NAME LEN [HEX] (LEN at most 16 MiB)", copy);
			/* One spare zero byte: a LEN-0 buffer still has an address of its own. */
			unsigned char *p = calloc(1, n + 1);
			if (!p)
				return bad("out of memory", NULL);
			if (ntok == 4 && parse_hex(tok[3], p, n, 0) < 0)
				return bad("bad hex (or longer than LEN)", tok[3]);
			st = define(tok[1], (uint64_t)(uintptr_t)p);
		} else if (strcmp(tok[0], "fd") == 0) {
			if (ntok < 2)
				return bad("expected fd NAME CMD SIZE FIELD...", copy);
			st = run(tok + 2, ntok - 2, &ret, &err);
			if (!st && ret < 0)
				return setup_failed(copy, err);
			if (!st)
				st = define(tok[1], (uint64_t)ret);
		} else if (strcmp(tok[0], "do") == 0) {
			st = run(tok + 1, ntok - 1, &ret, &err);
			if (!st && ret < 0)
				return setup_failed(copy, err);
		} else if (strcmp(tok[0], "call") == 0) {
			st = run(tok + 1, ntok - 1, &ret, &err);
			if (!st)
				printf("{\"ret\":%ld,\"errno\":%d}\n", ret, err);
		} else if (strcmp(tok[0], "str") == 0) {
			struct name *n = ntok == 2 ? lookup(tok[1]) : NULL;
			if (!n)
				return bad("expected str NAME (a defined buf)", copy);
			unsigned char *c = (unsigned char *)(uintptr_t)n->value;
			fputs("{\"str\":\"", stdout);
			for (unsigned char *q = c; *q; q++) {
				if (*q == '"' || *q == '\\')
					printf("\\%c", *q);
				else if (*q < 0x20 || *q >= 0x7f)
					printf("\\u%04x", *q);
				else
					putchar(*q);
			}
			puts("\"}");
			c[0] = 0;
		} else {
			return bad("unknown directive (buf, fd, do, call, str)", tok[0]);
		}
		free(copy);
		if (st)
			return st;
	}
	free(line);
	return 0;
}
