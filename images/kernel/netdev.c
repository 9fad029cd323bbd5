// SPDX-License-Identifier: GPL-2.0
/*
 * netdev.c - the packet path: two network devices (lo and eth0), a
 * driver receive function with an XDP program slot and a TC ingress hook,
 * and the skb/xdp_buff setup BPF_PROG_TEST_RUN does (net/bpf/test_run.c).
 *
 * Receive follows Linux's order: the driver runs its XDP program on the raw
 * buffer (bpf_prog_run_xdp: an indirect call through prog->bpf_func, as
 * v5.5's BPF_PROG_RUN), builds an sk_buff on XDP_PASS, sets skb->protocol
 * with eth_type_trans(); then __netif_receive_skb_core's ingress hook runs
 * the cls_bpf direct-action program with the MAC header pushed back
 * (cls_bpf_classify) and the data pointers computed into skb->cb.
 *
 * There is no allocator here: the host hands in the buffer (headroom then
 * packet bytes, as a driver's page), the xdp_buff and sk_buff live on this
 * function's stack. The host reads the verdicts back from a result struct
 * and the per-device counters.
 */
#include "net.h"

#define IFF_UP 0x1
#define IFF_LOOPBACK 0x8
#define ARPHRD_ETHER 1
#define ARPHRD_LOOPBACK 772

/* NET_RX_SUCCESS / NET_RX_DROP (include/linux/netdevice.h) */
#define NET_RX_SUCCESS 0
#define NET_RX_DROP 1

/* What bpfemu_rx reports: which hooks ran and what they returned. */
#define BPFEMU_RX_XDP 0x1		/* an XDP program ran: xdp_act is its verdict */
#define BPFEMU_RX_TC 0x2		/* a TC program ran: tc_act is its verdict */
#define BPFEMU_RX_DELIVERED 0x4		/* reached the protocol layer */

struct bpfemu_rx_result {
	u32 flags;
	u32 xdp_act;
	int tc_act;
	unsigned int len;		/* skb->len at delivery (the L3 length) */
	__be16 protocol;
	unsigned char pkt_type;
};

/* The loopback device: BPF_PROG_TEST_RUN's skbs and xdp_buffs come from it. */
struct net_device loopback_dev = {
	.name = "lo",
	.ifindex = 1,
	.flags = IFF_UP | IFF_LOOPBACK,
	.mtu = 65536,
	.type = ARPHRD_LOOPBACK,
	.xdp_rxq = { .dev = &loopback_dev, .queue_index = 0 },
};

/* An Ethernet device whose driver supports XDP. */
struct net_device bpfemu_eth0 = {
	.name = "eth0",
	.ifindex = 2,
	.flags = IFF_UP,
	.mtu = 1500,
	.type = ARPHRD_ETHER,
	.dev_addr = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 },
	.xdp_rxq = { .dev = &bpfemu_eth0, .queue_index = 0 },
};

/* dev_base_head: every device, NULL-terminated (the host lists them from here). */
struct net_device *bpfemu_net_devices[] = { &loopback_dev, &bpfemu_eth0, NULL };

static notrace inline u32 bpf_prog_run_xdp(const struct bpf_prog *prog, struct xdp_buff *xdp)
{
	return BPF_PROG_RUN(prog, xdp);
}

static notrace inline unsigned char *__skb_push(struct sk_buff *skb, unsigned int len)
{
	skb->data -= len;
	skb->len += len;
	return skb->data;
}

static notrace inline unsigned char *__skb_pull(struct sk_buff *skb, unsigned int len)
{
	skb->len -= len;
	return skb->data += len;
}

/* include/linux/filter.h: data_meta/data_end for direct packet access, in skb->cb. */
static notrace inline void bpf_compute_data_pointers(struct sk_buff *skb)
{
	struct bpf_skb_data_end *cb = bpf_skb_cb(skb);

	cb->data_meta = skb->data;
	cb->data_end = skb->data + skb->len;
}

/* sch_handle_ingress + cls_bpf_classify in direct-action mode. */
static notrace int tc_ingress_run(const struct bpf_prog *prog, struct sk_buff *skb)
{
	int act;

	qdisc_skb_cb(skb)->pkt_len = skb->len;
	__skb_push(skb, skb->mac_len);
	bpf_compute_data_pointers(skb);
	act = BPF_PROG_RUN(prog, skb);
	__skb_pull(skb, skb->mac_len);
	return act;
}

static notrace inline void count_tc(struct net_device *dev, int act)
{
	if (act >= TC_ACT_UNSPEC && act <= TC_ACT_MAX - 1)
		dev->tc_verdicts[act + 1]++;
}

/*
 * The driver's receive: `len` packet bytes at buf + XDP_PACKET_HEADROOM.
 * Returns NET_RX_SUCCESS or NET_RX_DROP; *res says which hooks ran.
 */
noinline int bpfemu_rx(struct net_device *dev, unsigned char *buf, unsigned int len,
		       struct bpfemu_rx_result *res)
{
	unsigned char *data = buf + XDP_PACKET_HEADROOM;
	const struct bpf_prog *prog;
	struct xdp_buff xdp;
	struct sk_buff skb;
	u32 act;
	int tc;

	memset(res, 0, sizeof(*res));
	dev->rx_packets++;
	dev->rx_bytes += len;

	prog = READ_ONCE(dev->xdp_prog);
	if (prog) {
		xdp.data_hard_start = buf;
		xdp.data = data;
		xdp.data_meta = data;
		xdp.data_end = data + len;
		xdp.handle = 0;
		xdp.rxq = &dev->xdp_rxq;
		act = bpf_prog_run_xdp(prog, &xdp);
		res->flags |= BPFEMU_RX_XDP;
		res->xdp_act = act;
		if (act < XDP_ACTION_MAX)
			dev->xdp_verdicts[act]++;
		switch (act) {
		case XDP_PASS:
			/* the program may have moved the start or the end */
			data = xdp.data;
			len = (unsigned int)((unsigned char *)xdp.data_end - data);
			break;
		case XDP_TX:
		case XDP_REDIRECT:
			/* consumed by XDP: transmit and redirect are not modelled */
			return NET_RX_SUCCESS;
		default:
			/* XDP_DROP, XDP_ABORTED, and unknown actions (bpf_warn_invalid_xdp_action) */
			dev->rx_dropped++;
			return NET_RX_DROP;
		}
	}

	/* build_skb() over the same buffer */
	memset(&skb, 0, sizeof(skb));
	skb.head = buf;
	skb.data = data;
	skb.len = len;
	skb.tail = data + len;
	skb.protocol = eth_type_trans(&skb, dev);
	/* __netif_receive_skb_core */
	skb.skb_iif = dev->ifindex;
	skb.mac_len = ETH_HLEN;		/* skb_reset_mac_len */

	prog = READ_ONCE(dev->tc_ingress);
	if (prog) {
		tc = tc_ingress_run(prog, &skb);
		res->flags |= BPFEMU_RX_TC;
		res->tc_act = tc;
		count_tc(dev, tc);
		switch (tc) {
		case TC_ACT_SHOT:
			dev->rx_dropped++;
			return NET_RX_DROP;
		case TC_ACT_STOLEN:
		case TC_ACT_QUEUED:
		case TC_ACT_REDIRECT:
			/* consumed (redirect is not modelled) */
			return NET_RX_SUCCESS;
		default:
			break;
		}
	}

	res->flags |= BPFEMU_RX_DELIVERED;
	res->len = skb.len;
	res->protocol = skb.protocol;
	res->pkt_type = skb.pkt_type;
	return NET_RX_SUCCESS;
}

/*
 * BPF_PROG_TEST_RUN of an skb program (bpf_prog_test_run_skb, v5.5): the
 * caller copied `size` bytes of data_in to buf + NET_SKB_PAD + NET_IP_ALIGN.
 * The skb comes from the loopback device; L2 programs (tc) see the MAC
 * header, the others start at the network header.
 */
notrace void bpfemu_test_skb_init(struct sk_buff *skb, unsigned char *buf, unsigned int size, bool is_l2)
{
	unsigned char *data = buf + NET_SKB_PAD + NET_IP_ALIGN;

	memset(skb, 0, sizeof(*skb));
	skb->head = buf;
	skb->data = data;
	skb->len = size;
	skb->tail = data + size;
	skb->protocol = eth_type_trans(skb, &loopback_dev);
	skb->mac_len = ETH_HLEN;
	if (is_l2)
		__skb_push(skb, ETH_HLEN);
	bpf_compute_data_pointers(skb);
}

/* After the run: non-L2 programs get a zeroed MAC header in data_out, as v5.5 does. */
notrace void bpfemu_test_skb_finish(struct sk_buff *skb, bool is_l2)
{
	if (!is_l2)
		memset(__skb_push(skb, ETH_HLEN), 0, ETH_HLEN);
}

/* BPF_PROG_TEST_RUN of an XDP program (bpf_prog_test_run_xdp, v5.5). */
notrace void bpfemu_test_xdp_init(struct xdp_buff *xdp, unsigned char *buf, unsigned int size)
{
	xdp->data_hard_start = buf;
	xdp->data = buf + XDP_PACKET_HEADROOM + NET_IP_ALIGN;
	xdp->data_meta = xdp->data;
	xdp->data_end = (unsigned char *)xdp->data + size;
	xdp->handle = 0;
	xdp->rxq = &loopback_dev.xdp_rxq;
}
