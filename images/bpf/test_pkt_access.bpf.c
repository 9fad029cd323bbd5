// SPDX-License-Identifier: GPL-2.0
/* The kernel selftest progs/test_pkt_access.c (v5.5, with the subprograms of "selftests/bpf:
 * Extend test_pkt_access test", 14 Nov 2019): a tc classifier that parses Ethernet, IPv4/IPv6
 * and TCP with direct packet access, and calls two static subprograms.
 *
 * clang compiles both subprograms to the same three instructions:
 *     r0 = *(u32 *)(r1 + 0)     ; skb->len
 *     r0 <<= 1
 *     exit
 * test_pkt_access_subprog2(int val, skb) is called with the constant 2: clang drops `val` and
 * passes skb in R1, but the BTF still says (int val, struct __sk_buff *skb). The verifier sees
 * R1 holding the context where BTF says int, marks the function unreliable, and fentry/fexit
 * programs attached to it get five u64 arguments (fexit_bpf2bpf.bpf.c). */
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* The selftests build with -Wno-compare-distinct-pointer-types: `eth + 1 > data_end`. */
#pragma clang diagnostic ignored "-Wcompare-distinct-pointer-types"

int _version SEC("version") = 1;

static __attribute__ ((noinline))
int test_pkt_access_subprog1(volatile struct __sk_buff *skb)
{
	return skb->len * 2;
}

static __attribute__ ((noinline))
int test_pkt_access_subprog2(int val, volatile struct __sk_buff *skb)
{
	return skb->len * val;
}

SEC("classifier/test_pkt_access")
int test_pkt_access(struct __sk_buff *skb)
{
	void *data_end = (void *)(long)skb->data_end;
	void *data = (void *)(long)skb->data;
	struct ethhdr *eth = (struct ethhdr *)(data);
	struct tcphdr *tcp = NULL;
	__u8 proto = 255;
	__u64 ihl_len;

	if (eth + 1 > data_end)
		return TC_ACT_SHOT;

	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = (struct iphdr *)(eth + 1);

		if (iph + 1 > data_end)
			return TC_ACT_SHOT;
		ihl_len = iph->ihl * 4;
		proto = iph->protocol;
		tcp = (struct tcphdr *)((void *)(iph) + ihl_len);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6h = (struct ipv6hdr *)(eth + 1);

		if (ip6h + 1 > data_end)
			return TC_ACT_SHOT;
		ihl_len = sizeof(*ip6h);
		proto = ip6h->nexthdr;
		tcp = (struct tcphdr *)((void *)(ip6h) + ihl_len);
	}

	if (test_pkt_access_subprog1(skb) != skb->len * 2)
		return TC_ACT_SHOT;
	if (test_pkt_access_subprog2(2, skb) != skb->len * 2)
		return TC_ACT_SHOT;
	if (tcp) {
		if (((void *)(tcp) + 20) > data_end || proto != 6)
			return TC_ACT_SHOT;
		barrier(); /* to force ordering of checks */
		if (((void *)(tcp) + 18) > data_end)
			return TC_ACT_SHOT;
		if (tcp->urg_ptr == 123)
			return TC_ACT_OK;
	}

	return TC_ACT_UNSPEC;
}

char _license[] SEC("license") = "GPL";
