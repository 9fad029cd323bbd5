// SPDX-License-Identifier: GPL-2.0
/* A BPF object exercising the loader: global data (.data, .bss, .rodata), a BTF-defined hash
 * map, a subprogram in .text, and a CO-RE read of a kernel struct field. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

/* Only the fields this program reads, at other offsets than the kernel's: CO-RE relocates
 * them to the kernel image's layout (len at 8, protocol at 12). */
struct sk_buff {
	unsigned int len;
	unsigned short protocol;
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
	bpf_printk("xdp_count: run %llu, len %u", runs, (__u32)(ctx->data_end - ctx->data));
	return XDP_PASS;
}

/* Reads skb->len and skb->protocol of the sk_buff whose address user space left in skb_addr. */
__u64 skb_addr = 0;
__u32 seen_proto = 0;

SEC("kprobe/eth_type_trans")
int probe_skb(struct pt_regs *regs)
{
	struct sk_buff *skb = (struct sk_buff *)skb_addr;

	last_len = BPF_CORE_READ(skb, len);
	seen_proto = BPF_CORE_READ(skb, protocol);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
