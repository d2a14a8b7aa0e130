/*
 * checkguest: building blocks for virtio-PCI (modern) drivers: capability discovery and a split virtqueue.
 * No driver uses them yet; the virtio work plugs drivers in here (see docs/checkguest.md).
 */
#ifndef VIRTIO_H
#define VIRTIO_H
#include "pci.h"

struct virtq_desc { u64 addr; u32 len; u16 flags; u16 next; };
struct virtq_avail { u16 flags; u16 idx; u16 ring[]; };
struct virtq_used_elem { u32 id; u32 len; };
struct virtq_used { u16 flags; u16 idx; struct virtq_used_elem ring[]; };
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2

struct virtq {
    u16 size, free_head, num_free, last_used;
    struct virtq_desc *desc;
    struct virtq_avail *avail;
    struct virtq_used *used;
    volatile u16 *notify;    /* this queue's notify address (modern: notify base + off * multiplier) */
    u16 index;
};

/* virtio-pci modern: where the structures of a device are (addresses in BAR space, 0 if absent) */
struct virtio_pci {
    const struct pci_dev *pci;
    u64 common, notify, isr, device;
    u32 notify_mult;
};

int virtio_pci_probe(const struct pci_dev *d, struct virtio_pci *out);
/* Allocates the rings from the pool (size must be a power of two). */
int virtq_init(struct virtq *q, u16 index, u16 size);
/* Adds a chain of n buffers (the last `n_writable` device-writable); returns the head id or -1. */
int virtq_add(struct virtq *q, const u64 *addrs, const u32 *lens, int n, int n_writable);
void virtq_kick(struct virtq *q);
/* Returns the id of the next used chain (and its length) or -1 if none yet. */
int virtq_get_used(struct virtq *q, u32 *len);
#endif
