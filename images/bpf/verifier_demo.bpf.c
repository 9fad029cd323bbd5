// SPDX-License-Identifier: GPL-2.0
/* Two XDP programs for the verifier's command line (bpfemu prog load OBJ --log): xdp/checked
 * compares the frame's first byte against data_end before reading it and verifies; xdp/unchecked
 * reads it without the check, which the verifier rejects ("invalid access to packet"). Loading
 * the whole object fails as libbpf's bpf_object__load does; --section xdp/checked loads only
 * the first program. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp/checked")
int xdp_checked(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	unsigned char *data_end = (void *)(long)ctx->data_end;

	if (data + 1 > data_end)
		return XDP_PASS;
	return data[0] == 0xff ? XDP_DROP : XDP_PASS;
}

SEC("xdp/unchecked")
int xdp_unchecked(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;

	return data[0] == 0xff ? XDP_DROP : XDP_PASS;
}

char _license[] SEC("license") = "GPL";
