/* SPDX-License-Identifier: GPL-2.0 */
/*
 * net.h - the kernel-side packet structures: a cut-down net_device, sk_buff,
 * xdp_buff and the struct bpf_prog a hook calls through.
 *
 * Much smaller than Linux's, but every field a BPF program reaches has the
 * kernel's name and C type, so the BTF pahole makes from them is what the
 * verifier and BTF-typed tracing programs expect: the context rewrite
 * (__sk_buff -> sk_buff, xdp_md -> xdp_buff) and CO-RE read the offsets from
 * that BTF, never from constants.
 */
#ifndef BPFEMU_NET_H
#define BPFEMU_NET_H

#include "kernel.h"

#define ETH_ALEN 6
#define ETH_HLEN 14			/* dst MAC, src MAC, ethertype */

/* enum xdp_action (include/uapi/linux/bpf.h) */
#define XDP_ABORTED 0
#define XDP_DROP 1
#define XDP_PASS 2
#define XDP_TX 3
#define XDP_REDIRECT 4
#define XDP_ACTION_MAX 5

/* TC verdicts a cls_bpf direct-action program returns (pkt_cls.h) */
#define TC_ACT_UNSPEC (-1)
#define TC_ACT_OK 0
#define TC_ACT_RECLASSIFY 1
#define TC_ACT_SHOT 2
#define TC_ACT_PIPE 3
#define TC_ACT_STOLEN 4
#define TC_ACT_QUEUED 5
#define TC_ACT_REPEAT 6
#define TC_ACT_REDIRECT 7
#define TC_ACT_MAX 8

/* include/linux/skbuff.h: NET_SKB_PAD; include/uapi/linux/bpf.h: XDP_PACKET_HEADROOM */
#define NET_SKB_PAD 64
#define NET_IP_ALIGN 0
#define XDP_PACKET_HEADROOM 256

struct bpf_insn;

/*
 * struct bpf_prog as a hook sees it: what BPF_PROG_RUN needs. The BPF
 * subsystem (bpf/syscall) fills it; `id` stays first (the trampoline's
 * __bpf_prog_exit keys its stats on this address).
 */
struct bpf_prog {
	u32 id;
	u32 type;			/* enum bpf_prog_type */
	u32 len;			/* instructions */
	u32 jited;
	unsigned int (*bpf_func)(const void *ctx, const struct bpf_insn *insn);
	const struct bpf_insn *insnsi;	/* for the interpreter's entry */
};

/* BPF_PROG_RUN (include/linux/filter.h, v5.5): an indirect call. */
#define BPF_PROG_RUN(prog, ctx) ((prog)->bpf_func((ctx), (prog)->insnsi))

struct net_device;

/* include/net/xdp.h */
struct xdp_rxq_info {
	struct net_device *dev;
	u32 queue_index;
	u32 reg_state;
};

struct xdp_buff {
	void *data;
	void *data_end;
	void *data_meta;
	void *data_hard_start;
	unsigned long handle;
	struct xdp_rxq_info *rxq;
};

struct net_device {
	char name[16];
	int ifindex;
	unsigned int flags;
	unsigned int mtu;
	unsigned char dev_addr[ETH_ALEN];
	unsigned short type;
	unsigned long long rx_packets;
	unsigned long long rx_bytes;
	unsigned long long rx_dropped;
	struct bpf_prog *xdp_prog;	/* the driver's XDP program (native mode) */
	struct bpf_prog *tc_ingress;	/* one cls_bpf direct-action filter at ingress */
	struct xdp_rxq_info xdp_rxq;	/* queue 0 */
	/* per-verdict counters: what the host reads back */
	unsigned long long xdp_verdicts[XDP_ACTION_MAX];
	unsigned long long tc_verdicts[TC_ACT_MAX + 1];	/* [0] counts TC_ACT_UNSPEC */
};

/* include/net/sch_generic.h: the qdisc layer's view of skb->cb */
struct qdisc_skb_cb {
	unsigned int pkt_len;
	u16 slave_dev_queue_mapping;
	u16 tc_classid;
	unsigned char data[20];		/* __sk_buff.cb[0..4] */
};

/* include/linux/filter.h: where BPF keeps data_meta/data_end in skb->cb */
struct bpf_skb_data_end {
	struct qdisc_skb_cb qdisc_cb;
	void *data_meta;
	void *data_end;
};

struct sk_buff {
	unsigned char *data;
	unsigned int len;
	__be16 protocol;		/* as eth_type_trans returns it */
	unsigned char pkt_type;
	struct net_device *dev;
	int mac_header;			/* offset of the L2 header from head */
	unsigned char *head;		/* start of the buffer */
	unsigned char *tail;		/* end of the data */
	unsigned int mac_len;
	unsigned int priority;
	unsigned int mark;
	unsigned int hash;
	int skb_iif;
	__be16 vlan_proto;
	u16 vlan_tci;
	u16 queue_mapping;
	u16 tc_index;
	char cb[48] __attribute__((aligned(8)));
};

static inline struct bpf_skb_data_end *bpf_skb_cb(struct sk_buff *skb)
{
	return (struct bpf_skb_data_end *)skb->cb;
}

static inline struct qdisc_skb_cb *qdisc_skb_cb(struct sk_buff *skb)
{
	return (struct qdisc_skb_cb *)skb->cb;
}

__be16 eth_type_trans(struct sk_buff *skb, struct net_device *dev);

#endif /* BPFEMU_NET_H */
