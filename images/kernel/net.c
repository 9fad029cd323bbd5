// SPDX-License-Identifier: GPL-2.0
/*
 * net.c - eth_type_trans() and small skb/dev helpers over the cut-down
 * net_device / sk_buff of net.h.
 *
 * The structs are much smaller than Linux's, but the fields a tracing
 * program reads have the kernel's names and C types, so BTF-typed access
 * (skb->len, skb->dev->ifindex, ...) works the same way.
 */
#include "net.h"

#define ETH_P_802_3 0x0001		/* raw 802.3 (Novell), see below */
#define ETH_P_802_2 0x0004		/* 802.2 LLC */
#define ETH_P_802_3_MIN 0x0600		/* smaller values are lengths */

#define PACKET_HOST 0
#define PACKET_BROADCAST 1
#define PACKET_MULTICAST 2
#define PACKET_OTHERHOST 3

struct ethhdr {
	unsigned char h_dest[ETH_ALEN];
	unsigned char h_source[ETH_ALEN];
	__be16 h_proto;
} __attribute__((packed));

/* notrace helpers: inlined in practice, but keep them out of ftrace anyway. */
static notrace inline bool ether_addr_equal(const u8 *a, const u8 *b)
{
	int i;

	for (i = 0; i < ETH_ALEN; i++)
		if (a[i] != b[i])
			return false;
	return true;
}

static notrace inline bool is_broadcast_ether_addr(const u8 *a)
{
	return (a[0] & a[1] & a[2] & a[3] & a[4] & a[5]) == 0xff;
}

/*
 * Linux semantics: take the skb for dev, mark the MAC header, pull the
 * 14-byte Ethernet header, classify the destination, return the protocol
 * in network byte order. pkt_type is only written for the non-host cases
 * (as in Linux): a fresh skb has pkt_type 0 = PACKET_HOST.
 */
noinline __be16 eth_type_trans(struct sk_buff *skb, struct net_device *dev)
{
	const struct ethhdr *eth = (const struct ethhdr *)skb->data;

	skb->dev = dev;
	skb->mac_header = (int)(skb->data - skb->head);
	skb->data += ETH_HLEN;
	skb->len -= ETH_HLEN;

	if (eth->h_dest[0] & 1) {	/* group bit: multicast or broadcast */
		if (is_broadcast_ether_addr(eth->h_dest))
			skb->pkt_type = PACKET_BROADCAST;
		else
			skb->pkt_type = PACKET_MULTICAST;
	} else if (!ether_addr_equal(eth->h_dest, dev->dev_addr)) {
		skb->pkt_type = PACKET_OTHERHOST;
	}

	if (ntohs(eth->h_proto) >= ETH_P_802_3_MIN)
		return eth->h_proto;

	/*
	 * A length field: 802.3. Raw 802.3 frames (old Novell IPX) start
	 * their payload with 0xFFFF where 802.2 would have the LLC header.
	 */
	if (skb->len >= 2 && skb->data[0] == 0xff && skb->data[1] == 0xff)
		return htons(ETH_P_802_3);
	return htons(ETH_P_802_2);
}

/* The receive path's use of it: skb->protocol = eth_type_trans(...). */
noinline int bpfemu_netif_receive(struct sk_buff *skb, struct net_device *dev)
{
	skb->protocol = eth_type_trans(skb, dev);
	dev->rx_packets++;
	return skb->pkt_type;
}

/* void return, writes through a pointer. */
noinline void bpfemu_set_flag(struct net_device *dev, unsigned int flag)
{
	dev->flags |= flag;
}

/* Pointer to struct in, one field out. */
noinline int bpfemu_dev_ifindex(const struct net_device *dev)
{
	return dev->ifindex;
}

noinline unsigned int bpfemu_skb_len(const struct sk_buff *skb)
{
	return skb->len;
}
