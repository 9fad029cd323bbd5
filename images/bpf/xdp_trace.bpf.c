// SPDX-License-Identifier: GPL-2.0
/* fentry/fexit on the XDP program xdp_filter (xdp_filter.bpf.c) and on its subprogram, loaded
 * with attach_prog_fd = that program: fentry reads the frame's length through the typed
 * `struct xdp_buff *` (the kernel structure behind the program's `struct xdp_md *`), fexit sees
 * the verdict as the return value; fexit on udp_dport sees its arguments and the port. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

/* The fields used, relocated to the kernel image's layout (CO-RE). */
struct xdp_buff {
	void *data;
	void *data_end;
} __attribute__((preserve_access_index));

__u64 entry_calls = 0;
__u64 entry_len = 0;
SEC("fentry/xdp_filter")
int BPF_PROG(trace_entry, struct xdp_buff *xdp)
{
	entry_calls++;
	entry_len = xdp->data_end - xdp->data;
	return 0;
}

__u64 verdicts[5] = {};
__s64 last_verdict = -1;
__u64 exit_len = 0;
SEC("fexit/xdp_filter")
int BPF_PROG(trace_exit, struct xdp_buff *xdp, int ret)
{
	if (ret >= 0 && ret < 5)
		verdicts[ret]++;
	last_verdict = ret;
	exit_len = xdp->data_end - xdp->data;
	return 0;
}

__s64 last_dport = 0;
__u64 dport_span = 0;
SEC("fexit/udp_dport")
int BPF_PROG(trace_dport, void *data, void *data_end, int ret)
{
	last_dport = ret;
	dport_span = (long)data_end - (long)data;
	return 0;
}

char _license[] SEC("license") = "GPL";
