// SPDX-License-Identifier: GPL-2.0
/* A BPF object exercising the loader: global data (.data, .bss, .rodata), a BTF-defined hash
 * map, a subprogram in .text, and a CO-RE read of a kernel struct field. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct net_device;
struct sk_buff {
	unsigned char *data;
	unsigned int len;
} __attribute__((preserve_access_index));

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

__u64 runs = 0;                 /* .bss */
__u64 last_len = 7;             /* .data */
const volatile __u32 factor = 3; /* .rodata */

static __attribute__((noinline)) __u64 scale(__u64 x)
{
	return x * factor + 1;
}

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	__u32 key = 1;
	__u64 one = 1, *v;

	runs++;
	v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&counts, &key, &one, BPF_ANY);
	last_len = scale(ctx->data_end - ctx->data);
	return XDP_PASS;
}

SEC("kprobe/eth_type_trans")
int probe_skb(struct pt_regs *regs)
{
	struct sk_buff *skb = (struct sk_buff *)0;
	last_len = BPF_CORE_READ(skb, len);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
