// SPDX-License-Identifier: GPL-2.0-only
/*
 * bpfrun - load a raw BPF program into the HOST's kernel and test-run it.
 *
 * The host's real kernel is the project's second oracle (shared/DESIGN.md,
 * "Testing method"). This tool is the only code that talks to it: raw
 * syscall(SYS_bpf, ...) with <linux/bpf.h>, no libbpf.
 *
 *   bpfrun PROG.bin [PACKET]
 *       PROG.bin  little-endian struct bpf_insn bytes
 *       PACKET    hex bytes ("0a0b0c", spaces/colons allowed) or @FILE (raw bytes);
 *                 default: 64 zero bytes. XDP test runs need at least ETH_HLEN (14).
 *   bpfrun --probe
 *       load "r0 = 2; exit" and test-run it: says whether bpf() may be used here.
 *
 * Loads PROG.bin as BPF_PROG_TYPE_XDP (license "GPL", log_level 1, 64 KiB log),
 * and if it loaded, runs BPF_PROG_TEST_RUN once with PACKET, reads the jited and
 * xlated instructions with BPF_OBJ_GET_INFO_BY_FD (one call for the lengths, one
 * for the bytes), and prints one JSON object on stdout:
 *
 *   {"loaded":bool,"errno":N,"log":"...","retval":N,"run_errno":N,
 *    "data_out":"hex","jited":"hex","xlated":"hex","kernel":"uname -r"}
 *
 * errno is the load's (0 when it loaded); run_errno the test run's.
 * Exit status: 0 whenever the JSON was printed (also when the load failed: the
 * JSON says why), 2 on bad usage or an unreadable file, 3 when bpf() itself is
 * refused (ENOSYS, or EPERM before the verifier wrote anything), so that callers
 * can skip with a reason (printed on stderr).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>
#include "hexparse.h"
#include <linux/bpf.h>

#define LOG_SIZE (64 * 1024)
#define MAX_PACKET 4096
#define MAX_PROG (1024 * 1024 * 8)

static char logbuf[LOG_SIZE];

static long sys_bpf(int cmd, union bpf_attr *attr, unsigned int size)
{
	return syscall(SYS_bpf, cmd, attr, size);
}

static int usage(void)
{
	fprintf(stderr, "usage: bpfrun PROG.bin [HEXBYTES | @PACKETFILE]\n"
			"       bpfrun --probe\n");
	return 2;
}

static void json_str(const char *s, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c == '\n')
			fputs("\\n", stdout);
		else if (c == '\t')
			fputs("\\t", stdout);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void json_hex(const unsigned char *p, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n; i++)
		printf("%02x", p[i]);
	putchar('"');
}

/* Reads a whole file; NULL (with a message) when it cannot. */
static unsigned char *read_file(const char *path, size_t max, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "bpfrun: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	unsigned char *buf = malloc(max + 1);
	size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
	int err = ferror(f);
	fclose(f);
	if (!buf || err) {
		fprintf(stderr, "bpfrun: %s: read error\n", path);
		free(buf);
		return NULL;
	}
	if (n > max) {
		fprintf(stderr, "bpfrun: %s: larger than %zu bytes\n", path, max);
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

struct prog_info {
	unsigned char *jited, *xlated;
	__u32 jited_len, xlated_len;
};

static void get_info(int fd, struct prog_info *pi)
{
	struct bpf_prog_info info;
	union bpf_attr attr;

	memset(pi, 0, sizeof(*pi));
	memset(&info, 0, sizeof(info));
	memset(&attr, 0, sizeof(attr));
	attr.info.bpf_fd = fd;
	attr.info.info_len = sizeof(info);
	attr.info.info = (__u64)(uintptr_t)&info;
	if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr, sizeof(attr)) < 0)
		return;
	__u32 jl = info.jited_prog_len, xl = info.xlated_prog_len;
	if (jl == 0 && xl == 0)
		return;
	pi->jited = calloc(1, jl + 1);
	pi->xlated = calloc(1, xl + 1);
	if (!pi->jited || !pi->xlated)
		return;
	memset(&info, 0, sizeof(info));
	info.jited_prog_len = jl;
	info.jited_prog_insns = (__u64)(uintptr_t)pi->jited;
	info.xlated_prog_len = xl;
	info.xlated_prog_insns = (__u64)(uintptr_t)pi->xlated;
	memset(&attr, 0, sizeof(attr));
	attr.info.bpf_fd = fd;
	attr.info.info_len = sizeof(info);
	attr.info.info = (__u64)(uintptr_t)&info;
	if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr, sizeof(attr)) < 0)
		return;
	/* Zero when the caller may not dump raw kernel bytes (kptr_restrict). */
	pi->jited_len = info.jited_prog_insns ? (info.jited_prog_len < jl ? info.jited_prog_len : jl) : 0;
	pi->xlated_len = info.xlated_prog_insns ? (info.xlated_prog_len < xl ? info.xlated_prog_len : xl) : 0;
}

static int load(const void *insns, size_t len, int *err)
{
	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	memset(logbuf, 0, sizeof(logbuf));
	attr.prog_type = BPF_PROG_TYPE_XDP;
	attr.insns = (__u64)(uintptr_t)insns;
	attr.insn_cnt = (__u32)(len / sizeof(struct bpf_insn));
	attr.license = (__u64)(uintptr_t)"GPL";
	attr.log_level = 1;
	attr.log_size = LOG_SIZE;
	attr.log_buf = (__u64)(uintptr_t)logbuf;
	int fd = (int)sys_bpf(BPF_PROG_LOAD, &attr, sizeof(attr));
	*err = fd < 0 ? errno : 0;
	return fd;
}

static int test_run(int fd, const unsigned char *pkt, size_t len, unsigned char *out,
		    __u32 *out_len, __u32 *retval)
{
	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.test.prog_fd = fd;
	attr.test.data_in = (__u64)(uintptr_t)pkt;
	attr.test.data_size_in = (__u32)len;
	attr.test.data_out = (__u64)(uintptr_t)out;
	attr.test.data_size_out = *out_len;
	attr.test.repeat = 1;
	if (sys_bpf(BPF_PROG_TEST_RUN, &attr, sizeof(attr)) < 0)
		return errno;
	*retval = attr.test.retval;
	*out_len = attr.test.data_size_out;
	return 0;
}

/* bpf() refused as such (not a verifier verdict): the caller should skip. */
static int refused(int err)
{
	return err == ENOSYS || (err == EPERM && logbuf[0] == '\0');
}

static int probe(void)
{
	/* r0 = 2 (XDP_PASS); exit */
	struct bpf_insn prog[2] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 2 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	unsigned char pkt[64] = { 0 }, out[MAX_PACKET];
	__u32 out_len = sizeof(out), retval = 0;
	int err, fd = load(prog, sizeof(prog), &err);
	if (fd < 0) {
		fprintf(stderr, "bpfrun: BPF_PROG_LOAD of an XDP program refused: %s\n", strerror(err));
		return refused(err) ? 3 : 1;
	}
	err = test_run(fd, pkt, sizeof(pkt), out, &out_len, &retval);
	close(fd);
	if (err) {
		fprintf(stderr, "bpfrun: BPF_PROG_TEST_RUN refused: %s\n", strerror(err));
		return err == EPERM || err == ENOSYS ? 3 : 1;
	}
	if (retval != 2) {
		fprintf(stderr, "bpfrun: probe program returned %u, not 2\n", retval);
		return 1;
	}
	printf("{\"ok\":true}\n");
	return 0;
}

int main(int argc, char **argv)
{
	struct utsname u;
	if (uname(&u) != 0)
		strcpy(u.release, "unknown");

	if (argc == 2 && strcmp(argv[1], "--probe") == 0)
		return probe();
	if (argc < 2 || argc > 3 || argv[1][0] == '-')
		return usage();

	size_t plen;
	unsigned char *prog = read_file(argv[1], MAX_PROG, &plen);
	if (!prog)
		return 2;
	if (plen == 0 || plen % sizeof(struct bpf_insn) != 0) {
		fprintf(stderr, "bpfrun: %s: %zu bytes is not a whole number of BPF instructions\n", argv[1], plen);
		return 2;
	}

	unsigned char pktbuf[MAX_PACKET] = { 0 };
	unsigned char *pkt = pktbuf;
	size_t pktlen = 64;
	if (argc == 3) {
		if (argv[2][0] == '@') {
			pkt = read_file(argv[2] + 1, MAX_PACKET, &pktlen);
			if (!pkt)
				return 2;
		} else {
			long n = parse_hex(argv[2], pktbuf, sizeof(pktbuf), 1);
			if (n < 0) {
				fprintf(stderr, "bpfrun: bad packet hex '%s'\n", argv[2]);
				return 2;
			}
			pktlen = (size_t)n;
		}
	}

	int err, fd = load(prog, plen, &err);
	if (fd < 0 && refused(err)) {
		fprintf(stderr, "bpfrun: BPF_PROG_LOAD refused: %s\n", strerror(err));
		return 3;
	}

	__u32 retval = 0, out_len = MAX_PACKET;
	unsigned char out[MAX_PACKET];
	int run_err = 0;
	struct prog_info pi = { 0 };
	if (fd >= 0) {
		run_err = test_run(fd, pkt, pktlen, out, &out_len, &retval);
		get_info(fd, &pi);
		close(fd);
	}

	printf("{\"loaded\":%s,\"errno\":%d,\"log\":", fd >= 0 ? "true" : "false", err);
	json_str(logbuf, strnlen(logbuf, sizeof(logbuf)));
	printf(",\"retval\":%u,\"run_errno\":%d,\"data_out\":", retval, run_err);
	json_hex(out, fd >= 0 && !run_err ? out_len : 0);
	printf(",\"jited\":");
	json_hex(pi.jited, pi.jited_len);
	printf(",\"xlated\":");
	json_hex(pi.xlated, pi.xlated_len);
	printf(",\"kernel\":");
	json_str(u.release, strlen(u.release));
	printf("}\n");
	return 0;
}
