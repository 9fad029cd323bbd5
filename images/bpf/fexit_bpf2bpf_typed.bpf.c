// SPDX-License-Identifier: GPL-2.0
/* Refused on purpose: a typed read on test_pkt_access_subprog2, whose BTF the verifier found
 * unreliable. The conservative model gives five u64 scalars, so `skb->len` dereferences a
 * scalar: "R1 invalid mem access 'inv'" (-EACCES), as the kernel says. fexit_bpf2bpf.bpf.c
 * reads the same field with bpf_probe_read_kernel, which works. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct sk_buff {
	unsigned int len;
} __attribute__((preserve_access_index));

__u64 seen_len = 0;
SEC("fexit/test_pkt_access_subprog2")
int BPF_PROG(typed_subprog2, struct sk_buff *skb, int ret)
{
	seen_len = skb->len;
	return 0;
}

char _license[] SEC("license") = "GPL";
