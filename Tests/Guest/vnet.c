/*
 * checkguest: virtio-net driver with a minimal IPv4 stack: answers ARP requests and ICMP echo requests for
 * its address at any time (served from the BSP's loop; the RX queue's MSI-X interrupt wakes it), and
 * `netcheck` (also once at boot): ARP for the peer, then ICMP echo to it → NET ok rtt_us=… or NET bad ….
 * No offloads are negotiated: the 12-byte virtio_net_hdr (VERSION_1) is all zero on TX and ignored on RX.
 * Options: net_ip=A.B.C.D (default 192.168.249.2), net_peer=A.B.C.D (default 192.168.249.1).
 */
#include "virtio.h"

#define VIRTIO_NET_F_MAC 5
#define NET_HDR 12
#define BUF_SIZE 2048
#define RX_BUFS 64
#define ETH_ARP 0x0806
#define ETH_IP 0x0800
#define PING_ID 0x4347 /* "CG" */

struct vdev *vnet_dev;
static struct vdev net;
static struct virtq *rxq, *txq;
static u64 tx_mem; /* one BUF_SIZE buffer per TX head id */
static u8 mac[6], peer_mac[6];
static int peer_mac_known;
static u32 my_ip, peer_ip;  /* host byte order */
static u64 rx_frames, tx_frames, tx_dropped, arp_answered, echo_answered;

static struct {
    int state; /* 0 idle, 1 waiting for ARP, 2 waiting for the echo reply */
    int tries;
    u16 seq;
    u64 t_start, t_sent;
} nc;

static u16 be16(const u8 *p) { return (u16)(p[0] << 8 | p[1]); }
static u32 be32(const u8 *p) { return (u32)p[0] << 24 | (u32)p[1] << 16 | (u32)p[2] << 8 | p[3]; }
static void put16(u8 *p, u16 v) { p[0] = (u8)(v >> 8); p[1] = (u8)v; }
static void put32(u8 *p, u32 v) { p[0] = (u8)(v >> 24); p[1] = (u8)(v >> 16); p[2] = (u8)(v >> 8); p[3] = (u8)v; }

static u16 csum(const u8 *p, int n) {
    u32 s = 0;
    for (int i = 0; i + 1 < n; i += 2) s += (u32)(p[i] << 8 | p[i + 1]);
    if (n & 1) s += (u32)p[n - 1] << 8;
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return (u16)~s;
}

static int parse_ip(const char *s, u32 *out) {
    u32 v = 0;
    for (int i = 0; i < 4; i++) {
        u64 b;
        if (!parse_u64(s, &s, &b) || b > 255) return 0;
        v = v << 8 | (u32)b;
        if (i < 3 && *s++ != '.') return 0;
    }
    if (*s) return 0;
    *out = v;
    return 1;
}

static void fmt_mac(char *buf, const u8 *m) {
    format(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

/* ---------------------------------------------------------------- TX */
static void tx_reclaim(void) {
    while (virtq_get_used(txq, NULL, NULL) >= 0) {}
}

/* frame = Ethernet header onwards */
static int net_send(const u8 *frame, int len) {
    tx_reclaim();
    if (!txq->num_free || len > BUF_SIZE - NET_HDR) {
        tx_dropped++;
        return 0;
    }
    u8 *buf = (u8 *)(tx_mem + (u64)txq->free_head * BUF_SIZE);
    memset(buf, 0, NET_HDR);
    memcpy(buf + NET_HDR, frame, (size_t)len);
    if (len < 60) { /* pad to the Ethernet minimum */
        memset(buf + NET_HDR + len, 0, (size_t)(60 - len));
        len = 60;
    }
    u64 a = (u64)buf;
    u32 l = (u32)(NET_HDR + len);
    if (virtq_add(txq, &a, &l, 1, 0, a) < 0) {
        tx_dropped++;
        return 0;
    }
    virtq_kick(txq);
    tx_frames++;
    return 1;
}

static void eth_header(u8 *f, const u8 *dst, u16 type) {
    memcpy(f, dst, 6);
    memcpy(f + 6, mac, 6);
    put16(f + 12, type);
}

static void send_arp(u16 op, const u8 *dst_mac, u32 dst_ip) {
    static const u8 bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    u8 f[42];
    eth_header(f, op == 1 ? bcast : dst_mac, ETH_ARP);
    u8 *a = f + 14;
    put16(a, 1);          /* Ethernet */
    put16(a + 2, ETH_IP);
    a[4] = 6;
    a[5] = 4;
    put16(a + 6, op);
    memcpy(a + 8, mac, 6);
    put32(a + 14, my_ip);
    if (op == 1) memset(a + 18, 0, 6);
    else memcpy(a + 18, dst_mac, 6);
    put32(a + 24, dst_ip);
    net_send(f, 42);
}

/* An IPv4 packet with an ICMP message (icmp = type, code, 0, 0, then the rest; checksum filled here). */
static void send_icmp(const u8 *dst_mac, u32 dst_ip, u8 *icmp, int icmp_len) {
    static u16 ip_id;
    u8 f[1514];
    if (icmp_len > (int)sizeof f - 34) return;
    eth_header(f, dst_mac, ETH_IP);
    u8 *ip = f + 14;
    ip[0] = 0x45;
    ip[1] = 0;
    put16(ip + 2, (u16)(20 + icmp_len));
    put16(ip + 4, ++ip_id);
    put16(ip + 6, 0x4000); /* DF */
    ip[8] = 64;
    ip[9] = 1;
    put16(ip + 10, 0);
    put32(ip + 12, my_ip);
    put32(ip + 16, dst_ip);
    put16(ip + 10, csum(ip, 20));
    put16(icmp + 2, 0);
    put16(icmp + 2, csum(icmp, icmp_len));
    memcpy(ip + 20, icmp, (size_t)icmp_len);
    net_send(f, 34 + icmp_len);
}

static void send_ping(void) {
    u8 icmp[8 + 32];
    icmp[0] = 8;
    icmp[1] = 0;
    put16(icmp + 4, PING_ID);
    put16(icmp + 6, ++nc.seq);
    for (int i = 0; i < 32; i++) icmp[8 + i] = (u8)('a' + i % 26);
    nc.t_sent = clock_ns();
    send_icmp(peer_mac, peer_ip, icmp, (int)sizeof icmp);
}

/* ---------------------------------------------------------------- RX */
static void netcheck_result(const char *bad) {
    char m[18], pm[18];
    fmt_mac(m, mac);
    fmt_mac(pm, peer_mac);
    if (bad)
        println("NET bad %s mac=%s tries=%d", bad, m, nc.tries);
    else
        println("NET ok rtt_us=%lu mac=%s ip=%u.%u.%u.%u peer=%u.%u.%u.%u peer_mac=%s", (clock_ns() - nc.t_sent) / 1000,
                m, my_ip >> 24, (my_ip >> 16) & 255, (my_ip >> 8) & 255, my_ip & 255, peer_ip >> 24,
                (peer_ip >> 16) & 255, (peer_ip >> 8) & 255, peer_ip & 255, pm);
    nc.state = 0;
}

static void rx_arp(const u8 *f, int len) {
    if (len < 42) return;
    const u8 *a = f + 14;
    if (be16(a) != 1 || be16(a + 2) != ETH_IP || a[4] != 6 || a[5] != 4) return;
    u16 op = be16(a + 6);
    u32 sip = be32(a + 14), tip = be32(a + 24);
    if (sip == peer_ip && sip) {
        memcpy(peer_mac, a + 8, 6);
        peer_mac_known = 1;
    }
    if (op == 1 && tip == my_ip) {
        send_arp(2, a + 8, sip);
        arp_answered++;
    }
}

static void rx_ip(const u8 *f, int len) {
    if (len < 34) return;
    const u8 *ip = f + 14;
    int ihl = (ip[0] & 15) * 4;
    int tot = be16(ip + 2);
    if ((ip[0] >> 4) != 4 || ihl < 20 || tot < ihl || 14 + tot > len) return;
    if (be32(ip + 16) != my_ip || ip[9] != 1) return;
    if (be16(ip + 6) & 0x3fff) return; /* fragments: not for us */
    const u8 *icmp = ip + ihl;
    int ilen = tot - ihl;
    if (ilen < 8 || csum(icmp, ilen) != 0) return;
    u32 src = be32(ip + 12);
    if (icmp[0] == 8 && icmp[1] == 0) { /* echo request: answer to whoever sent it, on its MAC */
        static u8 reply[1480];
        if (ilen > (int)sizeof reply) return;
        memcpy(reply, icmp, (size_t)ilen);
        reply[0] = 0;
        send_icmp(f + 6, src, reply, ilen);
        echo_answered++;
    } else if (icmp[0] == 0 && nc.state == 2 && src == peer_ip && be16(icmp + 4) == PING_ID &&
               be16(icmp + 6) == nc.seq) {
        netcheck_result(NULL);
    }
}

static void rx_frame(const u8 *f, int len) {
    if (len < 14) return;
    rx_frames++;
    u16 type = be16(f + 12);
    if (type == ETH_ARP) rx_arp(f, len);
    else if (type == ETH_IP) rx_ip(f, len);
}

static void rx_post(u64 buf) {
    u32 l = BUF_SIZE;
    virtq_add(rxq, &buf, &l, 1, 1, buf);
}

/* ---------------------------------------------------------------- netcheck state machine */
static void netcheck_start(void) {
    nc.state = 1;
    nc.tries = 1;
    nc.t_start = nc.t_sent = clock_ns();
    peer_mac_known = 0;
    send_arp(1, NULL, peer_ip);
}

static void netcheck_poll(void) {
    u64 now = clock_ns();
    if (nc.state == 1) {
        if (peer_mac_known) {
            nc.state = 2;
            nc.tries = 1;
            send_ping();
        } else if (now - nc.t_sent > 250000000ul) {
            if (nc.tries >= 8) return netcheck_result("no-arp-reply");
            nc.tries++;
            nc.t_sent = now;
            send_arp(1, NULL, peer_ip);
        }
    } else if (nc.state == 2 && now - nc.t_sent > 500000000ul) {
        if (nc.tries >= 4) return netcheck_result("no-echo-reply");
        nc.tries++;
        send_ping();
    }
}

void vnet_poll(void) {
    if (!vnet_dev) return;
    int reposted = 0;
    for (int budget = 0; budget < 256; budget++) {
        u32 len;
        u64 buf;
        if (virtq_get_used(rxq, &len, &buf) < 0) break;
        if (len > NET_HDR && len <= BUF_SIZE) rx_frame((const u8 *)buf + NET_HDR, (int)(len - NET_HDR));
        rx_post(buf);
        reposted = 1;
    }
    if (reposted) virtq_kick(rxq);
    if (nc.state) netcheck_poll();
}

void vnet_probe(const struct pci_dev *p) {
    if (vnet_dev) {
        println("VIRTIO dev=net bdf=%02x:%02x.%x skipped (only the first virtio-net device is driven)", p->bus, p->dev,
                p->fn);
        return;
    }
    char val[32];
    my_ip = 0xc0a8f902;   /* 192.168.249.2 */
    peer_ip = 0xc0a8f901; /* 192.168.249.1 */
    if (cmdline_get("net_ip", val, sizeof val) && !parse_ip(val, &my_ip)) println("WARN net_ip=%s: not an IPv4 address", val);
    if (cmdline_get("net_peer", val, sizeof val) && !parse_ip(val, &peer_ip))
        println("WARN net_peer=%s: not an IPv4 address", val);
    u64 want = (1ul << VIRTIO_NET_F_MAC) | (1ul << VIRTIO_F_EVENT_IDX);
    if (!vdev_init(&net, p, VIRTIO_ID_NET, want, 2)) return;
    rxq = net.q[0];
    txq = net.q[1];
    u64 rx_mem = pool_alloc((u64)RX_BUFS * BUF_SIZE);
    tx_mem = pool_alloc((u64)txq->size * BUF_SIZE);
    if (!rx_mem || !tx_mem) { println("VIRTIO dev=net bad out-of-memory"); return; }
    if (vdev_has(&net, VIRTIO_NET_F_MAC)) {
        for (int i = 0; i < 6; i++) mac[i] = vdev_cfg8(&net, (u32)i);
    } else {
        static const u8 fallback[6] = { 0x52, 0x54, 0x00, 0xc4, 0xec, 0x01 };
        memcpy(mac, fallback, 6);
    }
    int n = RX_BUFS < rxq->size ? RX_BUFS : rxq->size;
    for (int i = 0; i < n; i++) rx_post(rx_mem + (u64)i * BUF_SIZE);
    virtq_irq(rxq, 1); /* an arriving frame wakes the BSP's loop */
    virtq_kick(rxq);
    vnet_dev = &net;
    netcheck_start();
}

int vnet_command(char *line) {
    if (strncmp(line, "netcheck", 9)) return 0;
    if (!vnet_dev) println("NET bad no-device");
    else netcheck_start();
    return 1;
}

int vnet_stats(char *buf, int len) {
    if (!vnet_dev) return 0;
    return format(buf, len, " net_rx=%lu net_tx=%lu net_arp_answered=%lu net_echo_answered=%lu", rx_frames, tx_frames,
                  arp_answered, echo_answered);
}
