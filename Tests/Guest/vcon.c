/*
 * checkguest: virtio-console driver, single port (VIRTIO_CONSOLE_F_MULTIPORT is never acknowledged, as with
 * Cloud Hypervisor's console): port 0 = receiveq 0 + transmitq 1. At boot it writes
 * "VCON hello from checkguest\n"; `vcon TEXT` writes "TEXT\n"; whatever arrives is printed on the serial
 * port line by line as `VCON rx TEXT` (a partial line after 100 ms without more input).
 */
#include "virtio.h"

#define RX_BUFS 8
#define RX_SIZE 256
#define LINE_MAX 200

struct vdev *vcon_dev;
static struct vdev con;
static u8 rx_mem[RX_BUFS][RX_SIZE] __attribute__((aligned(64)));
static u8 tx_buf[512] __attribute__((aligned(64)));
static char line[LINE_MAX + 1];
static int line_len;
static u64 line_t;
static u64 rx_bytes, tx_bytes;

static void con_write(const char *s, int n) {
    struct virtq *q = con.q[1];
    if (n > (int)sizeof tx_buf) n = (int)sizeof tx_buf;
    while (virtq_get_used(q, NULL, NULL) >= 0) {}
    memcpy(tx_buf, s, (size_t)n);
    u64 a = (u64)tx_buf;
    u32 l = (u32)n;
    if (virtq_add(q, &a, &l, 1, 0, a) < 0) return;
    virtq_kick(q);
    if (virtq_wait(q, 200000000ul)) virtq_get_used(q, NULL, NULL); /* tx_buf is free again */
    else println("WARN vcon: transmit not completed within 200 ms");
    tx_bytes += (u64)n;
}

static void flush_line(void) {
    line[line_len] = 0;
    println("VCON rx %s", line);
    line_len = 0;
}

void vcon_poll(void) {
    if (!vcon_dev) return;
    struct virtq *q = con.q[0];
    int reposted = 0;
    u32 len;
    u64 buf;
    while (virtq_get_used(q, &len, &buf) >= 0) {
        if (len > RX_SIZE) len = RX_SIZE;
        const u8 *p = (const u8 *)buf;
        rx_bytes += len;
        for (u32 i = 0; i < len; i++) {
            u8 c = p[i];
            if (c == '\n') { flush_line(); continue; }
            if (c == '\r') continue;
            line[line_len++] = (c >= 0x20 && c < 0x7f) ? (char)c : '.';
            if (line_len == LINE_MAX) flush_line();
        }
        line_t = clock_ns();
        u32 l = RX_SIZE;
        virtq_add(q, &buf, &l, 1, 1, buf);
        reposted = 1;
    }
    if (reposted) virtq_kick(q);
    if (line_len && clock_ns() - line_t > 100000000ul) flush_line();
}

void vcon_probe(const struct pci_dev *p) {
    if (vcon_dev) {
        println("VIRTIO dev=console bdf=%02x:%02x.%x skipped (only the first virtio-console device is driven)", p->bus,
                p->dev, p->fn);
        return;
    }
    if (!vdev_init(&con, p, VIRTIO_ID_CONSOLE, 1ul << VIRTIO_F_EVENT_IDX, 2)) return;
    struct virtq *q = con.q[0];
    for (int i = 0; i < RX_BUFS && i < q->size; i++) {
        u64 a = (u64)rx_mem[i];
        u32 l = RX_SIZE;
        virtq_add(q, &a, &l, 1, 1, a);
    }
    virtq_irq(q, 1); /* input wakes the BSP's loop */
    virtq_kick(q);
    vcon_dev = &con;
    static const char hello[] = "VCON hello from checkguest\n";
    con_write(hello, (int)sizeof hello - 1);
}

int vcon_command(char *cmd) {
    if (strncmp(cmd, "vcon", 5) && !str_starts(cmd, "vcon ")) return 0;
    if (!vcon_dev) { println("ERROR vcon: no virtio-console device"); return 1; }
    char out[256];
    int n = format(out, sizeof out - 1, "%s\n", cmd[4] ? cmd + 5 : "");
    if (n > (int)sizeof out - 2) n = (int)sizeof out - 2;
    con_write(out, n);
    println("VCON sent bytes=%d", n);
    return 1;
}

int vcon_stats(char *buf, int len) {
    if (!vcon_dev) return 0;
    return format(buf, len, " vcon_rx=%lu vcon_tx=%lu", rx_bytes, tx_bytes);
}
