/*
 * checkguest: virtio-rng driver. At boot and on `rngcheck`: four 64-byte reads → RNG ok bytes=N when no read
 * is all one byte value and no two reads are equal, else RNG bad <why>.
 */
#include "virtio.h"

#define READS 4
#define READ_BYTES 64

struct vdev *vrng_dev;
static struct vdev rng;
static u8 rbuf[READS][READ_BYTES] __attribute__((aligned(64)));
static u64 total_bytes;

/* Fills b completely (the device may return fewer bytes than asked); 0 on timeout. */
static int rng_read(u8 *b, u32 n) {
    struct virtq *q = rng.q[0];
    u32 got = 0;
    while (got < n) {
        u64 a = (u64)(b + got);
        u32 l = n - got;
        if (virtq_add(q, &a, &l, 1, 1, a) < 0) return 0;
        virtq_kick(q);
        if (!virtq_wait(q, 1000000000ul)) return 0;
        u32 len = 0;
        virtq_get_used(q, &len, NULL);
        if (len > l) len = l;
        got += len;
        total_bytes += len;
    }
    return 1;
}

static void rngcheck(void) {
    memset(rbuf, 0, sizeof rbuf);
    for (int i = 0; i < READS; i++) {
        if (!rng_read(rbuf[i], READ_BYTES)) {
            println("RNG bad timeout read=%d", i);
            return;
        }
        int same = 1;
        for (int k = 1; k < READ_BYTES; k++) same &= rbuf[i][k] == rbuf[i][0];
        if (same) {
            println("RNG bad constant read=%d byte=0x%02x", i, rbuf[i][0]);
            return;
        }
        for (int j = 0; j < i; j++)
            if (!memcmp(rbuf[i], rbuf[j], READ_BYTES)) {
                println("RNG bad repeated read=%d same_as=%d", i, j);
                return;
            }
    }
    println("RNG ok bytes=%d total=%lu", READS * READ_BYTES, total_bytes);
}

void vrng_probe(const struct pci_dev *p) {
    if (vrng_dev) {
        println("VIRTIO dev=rng bdf=%02x:%02x.%x skipped (only the first virtio-rng device is driven)", p->bus, p->dev,
                p->fn);
        return;
    }
    if (!vdev_init(&rng, p, VIRTIO_ID_RNG, 1ul << VIRTIO_F_EVENT_IDX, 1)) return;
    vrng_dev = &rng;
    rngcheck();
}

int vrng_command(char *line) {
    if (strncmp(line, "rngcheck", 9)) return 0;
    if (!vrng_dev) println("RNG bad no-device");
    else rngcheck();
    return 1;
}
