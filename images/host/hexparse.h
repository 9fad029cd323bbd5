/* Hex byte strings for the host tools (bpfcall.c, bpfrun.c). */
#ifndef BPFEMU_HOST_HEXPARSE_H
#define BPFEMU_HOST_HEXPARSE_H

#include <stddef.h>

static int hexval(int c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

/*
 * Hex digit pairs into out (at most max bytes); -1 when malformed or too long. With `lenient`,
 * a leading 0x and spaces, tabs, newlines and colons between the bytes are skipped (bpfrun's
 * packet files); without it the string is digits only (bpfcall's tokens).
 */
static long parse_hex(const char *s, unsigned char *out, size_t max, int lenient)
{
	size_t n = 0;
	if (lenient && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	while (*s) {
		if (lenient && (*s == ' ' || *s == ':' || *s == '\n' || *s == '\t')) {
			s++;
			continue;
		}
		int hi = hexval(s[0]), lo = s[1] ? hexval(s[1]) : -1;
		if (hi < 0 || lo < 0 || n >= max)
			return -1;
		out[n++] = (unsigned char)(hi << 4 | lo);
		s += 2;
	}
	return (long)n;
}

#endif
