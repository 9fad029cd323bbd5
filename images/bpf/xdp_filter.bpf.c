// SPDX-License-Identifier: GPL-2.0
/* An XDP program with a subprogram, the target of xdp_trace.bpf.c: drops IPv4 UDP datagrams to
 * the discard port (9) and passes everything else, counting both. udp_dport() parses the frame
 * with direct packet access and returns the UDP destination port, or -1. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define DISCARD_PORT 9

__u64 passed = 0;
__u64 dropped = 0;

static __attribute__((noinline)) int udp_dport(void *data, void *data_end)
{
	struct ethhdr *eth = data;
	struct iphdr *iph = data + sizeof(*eth);
	struct udphdr *udp;

	if ((void *)(iph + 1) > data_end)
		return -1;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || iph->protocol != IPPROTO_UDP)
		return -1;
	udp = (void *)iph + iph->ihl * 4;
	if ((void *)(udp + 1) > data_end)
		return -1;
	return bpf_ntohs(udp->dest);
}

SEC("xdp")
int xdp_filter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (udp_dport(data, data_end) == DISCARD_PORT) {
		dropped++;
		return XDP_DROP;
	}
	passed++;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
