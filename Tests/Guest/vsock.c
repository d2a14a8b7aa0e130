/*
 * checkguest: virtio-vsock driver (virtio 1.1+ socket device, type 19; stream sockets only).
 *
 * Queues: 0 rx, 1 tx, 2 event. Every packet is a 44-byte header (packed, little-endian) followed by `len`
 * bytes of data; we always use two descriptors (header, data), which every device accepts. The guest:
 *  - listens on port 1234 (`vsock_port=N`) and echoes every byte of every accepted connection back on it
 *    (REQUEST → RESPONSE, RW → RW with the same bytes subject to the peer's credit, CREDIT_REQUEST →
 *    CREDIT_UPDATE, SHUTDOWN → RST once everything is echoed, RST → forget);
 *  - `vsockcheck PORT` connects to the host (CID 2) on PORT, sends "ping N\n", expects the same bytes back
 *    → VSOCK ok port=P, else VSOCK bad <why> (refused = RST, timeout after 3 s, mismatch);
 *  - prints VSOCK cid=C at boot; on a TRANSPORT_RESET event (e.g. after a migration) drops every
 *    connection, re-reads the CID and prints VSOCK reset cid=C.
 * Credit: each connection has a 64 KiB echo buffer (buf_alloc); fwd_cnt counts the bytes that left it. The
 * peer's free space is peer_buf_alloc - (tx_cnt - peer_fwd_cnt); data waits in the buffer until it fits.
 */
#include "virtio.h"

#define HDR 44
#define HOST_CID 2
#define TYPE_STREAM 1
#define OP_REQUEST 1
#define OP_RESPONSE 2
#define OP_RST 3
#define OP_SHUTDOWN 4
#define OP_RW 5
#define OP_CREDIT_UPDATE 6
#define OP_CREDIT_REQUEST 7
#define SHUT_RCV 1
#define SHUT_SEND 2
#define EVENT_TRANSPORT_RESET 0

#define RX_BUFS 32
#define PKT_DATA 4096
#define CONN_BUF 65536u
#define MAX_CONNS 8
#define CHECK_TIMEOUT_NS 3000000000ul
#define CLOSE_TIMEOUT_NS 2000000000ul

struct vhdr {
    u64 src_cid, dst_cid;
    u32 src_port, dst_port;
    u32 len;
    u16 type, op;
    u32 flags, buf_alloc, fwd_cnt;
} __attribute__((packed));
_Static_assert(sizeof(struct vhdr) == HDR, "virtio_vsock_hdr is 44 bytes");

enum { C_FREE, C_CONNECTING, C_ESTABLISHED, C_CLOSING };

struct conn {
    int state;
    int is_check;              /* our vsockcheck connection (else an accepted one: echo) */
    u64 peer_cid;
    u32 peer_port, local_port;
    u32 peer_buf_alloc, peer_fwd_cnt, tx_cnt; /* what we may send */
    u32 rx_cnt, fwd_cnt;       /* bytes received, bytes that left our buffer */
    u32 peer_shutdown;
    u64 t;                     /* connect/close start */
    u8 *buf;                   /* CONN_BUF echo ring (accepted connections) */
};

struct vdev *vsock_dev;
static struct vdev vs;
static struct virtq *rxq, *txq, *evq;
static u64 my_cid;
static u32 listen_port = 1234;
static u64 rx_hdr, rx_data, tx_hdr, tx_data;
static u32 ev_buf[4][4] __attribute__((aligned(16)));
static struct conn conns[MAX_CONNS];
static u64 conn_mem;
static u64 pkts_rx, pkts_tx, bytes_echoed, tx_full, cid_mismatch;

static struct {
    int active;
    struct conn *c;
    u32 port, n;
    char msg[32];
    u32 msg_len, got;
    u64 t0;
} chk;

/* ---------------------------------------------------------------- TX */
static void tx_reclaim(void) {
    while (virtq_get_used(txq, NULL, NULL) >= 0) {}
}

static int send_pkt(u64 dst_cid, u32 src_port, u32 dst_port, u16 op, u32 flags, u32 buf_alloc, u32 fwd_cnt,
                    const u8 *data, u32 len) {
    tx_reclaim();
    if (txq->num_free < (len ? 2 : 1)) {
        tx_full++;
        return 0;
    }
    u16 head = txq->free_head;
    struct vhdr *h = (struct vhdr *)(tx_hdr + (u64)head * 64);
    h->src_cid = my_cid;
    h->dst_cid = dst_cid;
    h->src_port = src_port;
    h->dst_port = dst_port;
    h->len = len;
    h->type = TYPE_STREAM;
    h->op = op;
    h->flags = flags;
    h->buf_alloc = buf_alloc;
    h->fwd_cnt = fwd_cnt;
    u64 addrs[2] = { (u64)h, tx_data + (u64)head * PKT_DATA };
    u32 lens[2] = { HDR, len };
    if (len) memcpy((void *)addrs[1], data, len);
    if (virtq_add(txq, addrs, lens, len ? 2 : 1, 0, 0) < 0) return 0;
    virtq_kick(txq);
    pkts_tx++;
    return 1;
}

static int conn_send(struct conn *c, u16 op, u32 flags, const u8 *data, u32 len) {
    return send_pkt(c->peer_cid, c->local_port, c->peer_port, op, flags, CONN_BUF, c->fwd_cnt, data, len);
}

/* a RST in answer to a packet that belongs to no connection (never to a RST) */
static void reply_rst(const struct vhdr *h) {
    if (h->op == OP_RST) return;
    send_pkt(h->src_cid, h->dst_port, h->src_port, OP_RST, 0, 0, 0, NULL, 0);
}

/* ---------------------------------------------------------------- connections */
static struct conn *conn_find(u64 peer_cid, u32 peer_port, u32 local_port) {
    for (int i = 0; i < MAX_CONNS; i++) {
        struct conn *c = &conns[i];
        if (c->state != C_FREE && c->peer_cid == peer_cid && c->peer_port == peer_port && c->local_port == local_port)
            return c;
    }
    return NULL;
}

static struct conn *conn_new(u64 peer_cid, u32 peer_port, u32 local_port) {
    for (int i = 0; i < MAX_CONNS; i++) {
        struct conn *c = &conns[i];
        if (c->state != C_FREE) continue;
        u8 *buf = (u8 *)(conn_mem + (u64)i * CONN_BUF);
        memset(c, 0, sizeof *c);
        c->buf = buf;
        c->peer_cid = peer_cid;
        c->peer_port = peer_port;
        c->local_port = local_port;
        c->t = clock_ns();
        return c;
    }
    return NULL;
}

static void check_result(const char *bad) {
    if (!chk.active) return;
    if (bad) println("VSOCK bad %s port=%u", bad, chk.port);
    else println("VSOCK ok port=%u bytes=%u", chk.port, chk.msg_len);
    chk.active = 0;
    chk.c = NULL;
}

static void conn_free(struct conn *c) {
    if (chk.active && chk.c == c) check_result(c->state == C_CONNECTING ? "refused" : "reset");
    c->state = C_FREE;
}

static u32 peer_credit(const struct conn *c) {
    u32 in_flight = c->tx_cnt - c->peer_fwd_cnt;
    return c->peer_buf_alloc > in_flight ? c->peer_buf_alloc - in_flight : 0;
}

/* echo what the buffer holds, as far as the peer's credit and our TX queue allow; close when done */
static void conn_flush(struct conn *c) {
    if (c->state != C_ESTABLISHED || c->is_check) return;
    while (c->rx_cnt != c->fwd_cnt) {
        u32 pending = c->rx_cnt - c->fwd_cnt;
        u32 off = c->fwd_cnt % CONN_BUF;
        u32 n = pending;
        if (n > CONN_BUF - off) n = CONN_BUF - off;
        if (n > PKT_DATA) n = PKT_DATA;
        u32 credit = peer_credit(c);
        if (n > credit) n = credit;
        if (!n) break; /* the peer's credit update (on any of its packets) resumes this */
        c->fwd_cnt += n; /* the header carries the count including these bytes */
        if (!conn_send(c, OP_RW, 0, c->buf + off, n)) {
            c->fwd_cnt -= n;
            break;
        }
        c->tx_cnt += n;
        bytes_echoed += n;
    }
    /* the peer will send nothing more and everything is echoed: close (a RST completes a shutdown) */
    if ((c->peer_shutdown & SHUT_SEND) && c->rx_cnt == c->fwd_cnt) {
        conn_send(c, OP_RST, 0, NULL, 0);
        conn_free(c);
    }
}

static void check_send_ping(struct conn *c) {
    if (!conn_send(c, OP_RW, 0, (const u8 *)chk.msg, chk.msg_len)) {
        check_result("tx-full");
        conn_send(c, OP_RST, 0, NULL, 0);
        conn_free(c);
        return;
    }
    c->tx_cnt += chk.msg_len;
}

static void rx_packet(const struct vhdr *h, const u8 *data, u32 dlen) {
    pkts_rx++;
    if (h->dst_cid != my_cid) cid_mismatch++; /* like Linux (sockets bound to any CID): counted, not dropped */
    if (h->type != TYPE_STREAM) {
        reply_rst(h);
        return;
    }
    struct conn *c = conn_find(h->src_cid, h->src_port, h->dst_port);
    if (c) {
        c->peer_buf_alloc = h->buf_alloc;
        c->peer_fwd_cnt = h->fwd_cnt;
    }
    switch (h->op) {
    case OP_REQUEST:
        if (c) { /* a second REQUEST for a live connection: reset it */
            conn_send(c, OP_RST, 0, NULL, 0);
            conn_free(c);
            return;
        }
        if (h->dst_port != listen_port || !(c = conn_new(h->src_cid, h->src_port, h->dst_port))) {
            reply_rst(h);
            return;
        }
        c->state = C_ESTABLISHED;
        c->peer_buf_alloc = h->buf_alloc;
        c->peer_fwd_cnt = h->fwd_cnt;
        conn_send(c, OP_RESPONSE, 0, NULL, 0);
        return;
    case OP_RESPONSE:
        if (!c || c->state != C_CONNECTING) {
            reply_rst(h);
            if (c) conn_free(c);
            return;
        }
        c->state = C_ESTABLISHED;
        if (chk.active && chk.c == c) check_send_ping(c);
        return;
    case OP_RW: {
        if (!c || c->state != C_ESTABLISHED) {
            if (!c || c->state != C_CLOSING) reply_rst(h);
            return;
        }
        u32 n = h->len < dlen ? h->len : dlen;
        if (c->is_check) {
            for (u32 i = 0; i < n; i++) {
                if (chk.got >= chk.msg_len || data[i] != (u8)chk.msg[chk.got]) {
                    check_result("mismatch");
                    conn_send(c, OP_RST, 0, NULL, 0);
                    conn_free(c);
                    return;
                }
                chk.got++;
            }
            c->rx_cnt += n;
            c->fwd_cnt += n; /* consumed right away */
            if (chk.got == chk.msg_len) {
                check_result(NULL);
                conn_send(c, OP_SHUTDOWN, SHUT_RCV | SHUT_SEND, NULL, 0);
                c->state = C_CLOSING;
                c->t = clock_ns();
            }
            return;
        }
        u32 room = CONN_BUF - (c->rx_cnt - c->fwd_cnt);
        if (n > room) { /* the peer ignored our credit: keep what fits */
            println("WARN vsock: peer %lu:%u overran its credit by %u bytes", c->peer_cid, c->peer_port, n - room);
            n = room;
        }
        for (u32 i = 0; i < n; i++) c->buf[(c->rx_cnt + i) % CONN_BUF] = data[i];
        c->rx_cnt += n;
        conn_flush(c);
        return;
    }
    case OP_CREDIT_UPDATE:
        if (!c) reply_rst(h);
        else conn_flush(c);
        return;
    case OP_CREDIT_REQUEST:
        if (!c) reply_rst(h);
        else conn_send(c, OP_CREDIT_UPDATE, 0, NULL, 0);
        return;
    case OP_SHUTDOWN:
        if (!c) {
            reply_rst(h);
            return;
        }
        c->peer_shutdown |= h->flags & (SHUT_RCV | SHUT_SEND);
        if (c->state == C_CLOSING || c->is_check || (c->peer_shutdown & SHUT_RCV)) {
            /* our side is done, or the peer reads nothing more: nothing left to echo */
            conn_send(c, OP_RST, 0, NULL, 0);
            conn_free(c);
        } else {
            conn_flush(c); /* closes once the buffer is echoed */
        }
        return;
    case OP_RST:
        if (c) conn_free(c);
        return;
    default:
        if (!c) reply_rst(h);
    }
}

/* ---------------------------------------------------------------- queues */
static void rx_post(int i) {
    u64 addrs[2] = { rx_hdr + (u64)i * 64, rx_data + (u64)i * PKT_DATA };
    u32 lens[2] = { HDR, PKT_DATA };
    virtq_add(rxq, addrs, lens, 2, 2, (u64)i);
}

static void ev_post(int i) {
    u64 a = (u64)ev_buf[i];
    u32 l = sizeof ev_buf[i];
    virtq_add(evq, &a, &l, 1, 1, (u64)i);
}

static void read_cid(void) { my_cid = vdev_cfg64(&vs, 0); }

void vsock_poll(void) {
    if (!vsock_dev) return;
    u32 len;
    u64 ck;
    int reposted = 0;
    for (int budget = 0; budget < 128 && virtq_get_used(rxq, &len, &ck) >= 0; budget++) {
        int i = (int)ck;
        const struct vhdr *h = (const struct vhdr *)(rx_hdr + (u64)i * 64);
        if (len >= HDR) {
            u32 dlen = len - HDR;
            if (dlen > PKT_DATA) dlen = PKT_DATA;
            rx_packet(h, (const u8 *)(rx_data + (u64)i * PKT_DATA), dlen);
        }
        rx_post(i);
        reposted = 1;
    }
    if (reposted) virtq_kick(rxq);
    reposted = 0;
    while (virtq_get_used(evq, &len, &ck) >= 0) {
        if (len >= 4 && ev_buf[ck][0] == EVENT_TRANSPORT_RESET) {
            for (int i = 0; i < MAX_CONNS; i++)
                if (conns[i].state != C_FREE) conn_free(&conns[i]);
            read_cid();
            println("VSOCK reset cid=%lu", my_cid);
        }
        ev_post((int)ck);
        reposted = 1;
    }
    if (reposted) virtq_kick(evq);
    tx_reclaim();
    u64 now = clock_ns();
    for (int i = 0; i < MAX_CONNS; i++) {
        struct conn *c = &conns[i];
        if (c->state == C_ESTABLISHED && c->rx_cnt != c->fwd_cnt) conn_flush(c);
        if (c->state == C_CLOSING && now - c->t > CLOSE_TIMEOUT_NS) {
            conn_send(c, OP_RST, 0, NULL, 0);
            conn_free(c);
        }
    }
    if (chk.active && now - chk.t0 > CHECK_TIMEOUT_NS) {
        struct conn *c = chk.c;
        const char *why = !c ? "timeout" : c->state == C_CONNECTING ? "timeout-connecting" : "timeout-echo";
        check_result(why);
        if (c) {
            conn_send(c, OP_RST, 0, NULL, 0);
            conn_free(c);
        }
    }
}

static void vsockcheck(u32 port) {
    static u32 next_port, count;
    if (chk.active) {
        println("VSOCK bad busy port=%u", port);
        return;
    }
    struct conn *c = NULL;
    for (int tries = 0; tries < 64 && !c; tries++) {
        u32 local = 49152 + (next_port++ % 16384);
        if (!conn_find(HOST_CID, port, local)) c = conn_new(HOST_CID, port, local);
    }
    if (!c) {
        println("VSOCK bad no-free-connection port=%u", port);
        return;
    }
    c->is_check = 1;
    c->state = C_CONNECTING;
    chk.active = 1;
    chk.c = c;
    chk.port = port;
    chk.n = ++count;
    chk.msg_len = (u32)format(chk.msg, sizeof chk.msg, "ping %u\n", chk.n);
    chk.got = 0;
    chk.t0 = clock_ns();
    if (!conn_send(c, OP_REQUEST, 0, NULL, 0)) {
        check_result("tx-full");
        conn_free(c);
    }
}

void vsock_probe(const struct pci_dev *p) {
    if (vsock_dev) {
        println("VIRTIO dev=vsock bdf=%02x:%02x.%x skipped (only the first virtio-vsock device is driven)", p->bus,
                p->dev, p->fn);
        return;
    }
    char val[16];
    u64 v;
    if (cmdline_get("vsock_port", val, sizeof val) && parse_u64(val, NULL, &v) && v) listen_port = (u32)v;
    if (!vdev_init(&vs, p, VIRTIO_ID_VSOCK, 1ul << VIRTIO_F_EVENT_IDX, 3)) return;
    rxq = vs.q[0];
    txq = vs.q[1];
    evq = vs.q[2];
    rx_hdr = pool_alloc(RX_BUFS * 64ul);
    rx_data = pool_alloc((u64)RX_BUFS * PKT_DATA);
    tx_hdr = pool_alloc((u64)txq->size * 64);
    tx_data = pool_alloc((u64)txq->size * PKT_DATA);
    conn_mem = pool_alloc((u64)MAX_CONNS * CONN_BUF);
    if (!rx_hdr || !rx_data || !tx_hdr || !tx_data || !conn_mem) {
        println("VIRTIO dev=vsock bad out-of-memory");
        return;
    }
    read_cid();
    for (int i = 0; i < RX_BUFS && 2 * (i + 1) <= rxq->size; i++) rx_post(i);
    for (int i = 0; i < 4 && i < evq->size; i++) ev_post(i);
    virtq_irq(rxq, 1); /* packets and events wake the BSP's loop */
    virtq_irq(evq, 1);
    virtq_kick(rxq);
    virtq_kick(evq);
    vsock_dev = &vs;
    println("VSOCK cid=%lu listen_port=%u", my_cid, listen_port);
}

int vsock_command(char *line) {
    if (!str_starts(line, "vsockcheck")) return 0;
    u64 port;
    const char *p = line + 10;
    while (*p == ' ') p++;
    if (!parse_u64(p, NULL, &port) || !port || port > 0xffffffffu) {
        println("ERROR vsockcheck: expected a port number");
        return 1;
    }
    if (!vsock_dev) println("VSOCK bad no-device port=%lu", port);
    else vsockcheck((u32)port);
    return 1;
}

int vsock_stats(char *buf, int len) {
    if (!vsock_dev) return 0;
    int open = 0;
    for (int i = 0; i < MAX_CONNS; i++) open += conns[i].state != C_FREE;
    return format(buf, len, " vsock_rx=%lu vsock_tx=%lu vsock_echoed=%lu vsock_conns=%d vsock_cid_mismatch=%lu",
                  pkts_rx, pkts_tx, bytes_echoed, open, cid_mismatch);
}
