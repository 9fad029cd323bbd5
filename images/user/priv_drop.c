// SPDX-License-Identifier: GPL-2.0
/*
 * priv_drop - bpf() before and after giving up privilege, one line per call, the same on bpfemu
 * and on a real kernel (test/kernel/privilege.test.ts, scripts/record-host-priv.ts).
 *
 *   priv_drop [drop]   as root: a map and a socket filter; then setresuid(1000, 1000, 1000), which
 *                      clears every capability (cap_emulate_setxuid), and the same calls again,
 *                      plus what a task may still do with the fds it kept.
 *   priv_drop bset     drops CAP_SYS_ADMIN from the bounding set and the permitted set, keeps the
 *                      other capabilities across setresuid (PR_SET_KEEPCAPS), goes back to uid 0
 *                      with setuid(0): CAP_SYS_ADMIN does not come back.
 */
#include "ulib.h"
#include <linux/capability.h>
#include <linux/prctl.h>

#define UID 1000

static void show(const char *name, long r)
{
	printf("%s: %s\n", name, r < 0 ? errname(r) : "ok");
}

static long sys3(long nr, long a, long b, long c) { return syscall6(nr, a, b, c, 0, 0, 0); }
static long prctl2(int option, long arg) { return syscall6(__NR_prctl, option, arg, 0, 0, 0, 0); }

/* capget/capset with _LINUX_CAPABILITY_VERSION_3: two u32 per set. */
static long capget3(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };

	return sys3(__NR_capget, (long)&h, (long)d, 0);
}

static long capset3(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };

	return sys3(__NR_capset, (long)&h, (long)d, 0);
}

static int has(const __u32 *set0, const __u32 *set1, int cap) { return ((cap < 32 ? *set0 : *set1) >> (cap % 32)) & 1; }

static void show_ids(const char *when)
{
	u32 r = 0, e = 0, s = 0;
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	sys3(__NR_getresuid, (long)&r, (long)&e, (long)&s);
	capget3(d);
	printf("%s: uid=%u euid=%u suid=%u CAP_SYS_ADMIN eff=%d prm=%d, CAP_SETUID eff=%d, any eff=%s\n", when, r, e, s,
	       has(&d[0].effective, &d[1].effective, CAP_SYS_ADMIN), has(&d[0].permitted, &d[1].permitted, CAP_SYS_ADMIN),
	       has(&d[0].effective, &d[1].effective, CAP_SETUID), d[0].effective | d[1].effective ? "yes" : "no");
}

static const struct bpf_insn ret0[] = { BPF_MOV64_IMM(BPF_REG_0, 0), BPF_EXIT_INSN() };

static int load(enum bpf_prog_type type) { return bpf_prog_load(type, ret0, 2, "GPL"); }

static long next_id(int cmd)
{
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.start_id = 0;
	return sys_bpf(cmd, &a, sizeof(a));
}

/* BPF_OBJ_GET_INFO_BY_FD on a program: whether the images' lengths are shown. */
static void prog_info(const char *name, int fd)
{
	struct bpf_prog_info info;
	long r = bpf_obj_get_info(fd, &info, sizeof(info));

	if (r < 0)
		show(name, r);
	else
		printf("%s: ok, type %u, jited_prog_len %s, xlated_prog_len %s, nr_map_ids %u\n", name, info.type,
		       info.jited_prog_len ? "> 0" : "0", info.xlated_prog_len ? "> 0" : "0", info.nr_map_ids);
}

static char *strcat2(char *d, const char *a, const char *b)
{
	char *p = d;

	while (*a)
		*p++ = *a++;
	while (*b)
		*p++ = *b++;
	*p = 0;
	return d;
}

/* The calls of one round: creating objects, and using the ones root made. */
static void round_of(const char *who, int map, int prog)
{
	char name[64];
	__u32 key = 0, retval = 0;
	__u64 val = 0;
	long r;

#define NAME(s) strcat2(name, who, s)
	r = bpf_map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 4, 0, "m");
	show(NAME(" map create (array)"), r);
	if (r >= 0)
		sys_close(r);
	r = bpf_map_create(BPF_MAP_TYPE_HASH, 4, 8, 4, 0, "h");
	show(NAME(" map create (hash)"), r);
	if (r >= 0)
		sys_close(r);
	r = load(BPF_PROG_TYPE_SOCKET_FILTER);
	show(NAME(" prog load (socket filter)"), r);
	if (r >= 0)
		sys_close(r);
	r = load(BPF_PROG_TYPE_XDP);
	show(NAME(" prog load (xdp)"), r);
	if (r >= 0)
		sys_close(r);
	show(NAME(" lookup in root's map"), bpf_map_lookup(map, &key, &val));
	show(NAME(" update of root's map"), bpf_map_update(map, &key, &val, 0));
	show(NAME(" map get next id"), next_id(BPF_MAP_GET_NEXT_ID));
	show(NAME(" prog get next id"), next_id(BPF_PROG_GET_NEXT_ID));
	prog_info(NAME(" info of root's prog"), prog);
	r = bpf_prog_test_run(prog, 64, &retval);
	show(NAME(" test run of root's prog"), r);
#undef NAME
}

static int drop(void)
{
	int map, prog;

	show_ids("start");
	map = bpf_map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 4, 0, "root_map");
	show("root map create", map);
	prog = load(BPF_PROG_TYPE_SOCKET_FILTER);
	show("root prog load", prog);
	if (map < 0 || prog < 0)
		return 1;
	round_of("root", map, prog);
	show("setresuid(1000, 1000, 1000)", sys3(__NR_setresuid, UID, UID, UID));
	show_ids("dropped");
	round_of("user", map, prog);
	show("user map freeze of root's map", bpf_map_freeze(map));
	show("user setuid(0)", sys3(__NR_setuid, 0, 0, 0));
	show_ids("end");
	return 0;
}

static int bset(void)
{
	struct __user_cap_data_struct d[2];
	long r;

	show_ids("start");
	printf("bounding set has CAP_SYS_ADMIN: %ld\n", prctl2(PR_CAPBSET_READ, CAP_SYS_ADMIN));
	show("PR_CAPBSET_DROP CAP_SYS_ADMIN", prctl2(PR_CAPBSET_DROP, CAP_SYS_ADMIN));
	printf("bounding set has CAP_SYS_ADMIN: %ld\n", prctl2(PR_CAPBSET_READ, CAP_SYS_ADMIN));
	show_ids("the bounding set only limits exec");
	memset(d, 0, sizeof(d));
	capget3(d);
	d[0].effective &= ~(1u << CAP_SYS_ADMIN);
	d[0].permitted &= ~(1u << CAP_SYS_ADMIN);
	show("capset without CAP_SYS_ADMIN", capset3(d));
	show("PR_SET_KEEPCAPS 1", prctl2(PR_SET_KEEPCAPS, 1));
	show("setresuid(1000, 1000, 1000)", sys3(__NR_setresuid, UID, UID, UID));
	show_ids("keep-caps");
	capget3(d);
	d[0].effective = d[0].permitted;
	d[1].effective = d[1].permitted;
	show("capset effective = permitted", capset3(d));
	show("setuid(0)", sys3(__NR_setuid, 0, 0, 0));
	show_ids("back to uid 0");
	capget3(d);
	d[0].effective |= 1u << CAP_SYS_ADMIN;
	d[0].permitted |= 1u << CAP_SYS_ADMIN;
	show("capset with CAP_SYS_ADMIN again", capset3(d));
	printf("bounding set has CAP_SYS_ADMIN: %ld\n", prctl2(PR_CAPBSET_READ, CAP_SYS_ADMIN));
	r = bpf_map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 4, 0, "m");
	show("uid 0 without CAP_SYS_ADMIN: map create (array)", r);
	if (r >= 0)
		sys_close(r);
	r = load(BPF_PROG_TYPE_XDP);
	show("uid 0 without CAP_SYS_ADMIN: prog load (xdp)", r);
	if (r >= 0)
		sys_close(r);
	show("uid 0 without CAP_SYS_ADMIN: map get next id", next_id(BPF_MAP_GET_NEXT_ID));
	return 0;
}

int main(int argc, char **argv, char **envp)
{
	(void)envp;
	if (argc > 1 && !strcmp(argv[1], "bset"))
		return bset();
	if (argc > 1 && strcmp(argv[1], "drop")) {
		printf("usage: priv_drop [drop|bset]\n");
		return 2;
	}
	return drop();
}
