/*
 * checkguest: virtio-PCI (modern) transport, split virtqueues, MSI-X, and the device drivers built on them
 * (vblk.c, vnet.c, vrng.c, vcon.c, vsock.c). Everything here runs in user mode; the only CPL0 parts are
 * the per-vector interrupt counters (boot.S) and SYS_HALT_IF. See docs/checkguest.md ("virtio").
 */
#ifndef VIRTIO_H
#define VIRTIO_H
#include "pci.h"

/* ---- split virtqueue ---- */
struct virtq_desc { u64 addr; u32 len; u16 flags; u16 next; };
struct virtq_avail { u16 flags; u16 idx; u16 ring[]; };   /* + used_event after ring[size] */
struct virtq_used_elem { u32 id; u32 len; };
struct virtq_used { u16 flags; u16 idx; struct virtq_used_elem ring[]; }; /* + avail_event */
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1

/* feature bits (transport) */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

/* device types (PCI device id 0x1040 + type) */
#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG 4
#define VIRTIO_ID_VSOCK 19

#define VQ_MAX_SIZE 256 /* queues larger than this are set up with this size */

struct virtq {
    u16 size, index;
    u16 free_head, num_free;
    u16 last_used;          /* next used ring slot to look at */
    u16 kicked_avail;       /* avail->idx at the last notification decision */
    u8 event_idx;           /* VIRTIO_F_EVENT_IDX negotiated */
    u8 irq_on;              /* we want interrupts (used_event kept at last_used / NO_INTERRUPT clear) */
    u8 vector;              /* IDT vector of its MSI-X entry, 0 = none (poll) */
    u16 msix_entry;         /* its MSI-X table entry */
    struct virtq_desc *desc;
    struct virtq_avail *avail;
    struct virtq_used *used;
    volatile u16 *used_event;  /* &avail->ring[size] */
    volatile u16 *avail_event; /* (u16 *)&used->ring[size] */
    u64 notify;             /* its notify address (0 = none) */
    u64 *cookie;            /* per head: what the driver passed to virtq_add */
    struct vdev *dev;
    u64 kicks, completions;
};

/* ---- a virtio-PCI device ---- */
struct vdev {
    const struct pci_dev *pci;
    int type;
    const char *name;        /* blk, net, console, rng, vsock */
    u64 common, notify, isr, device;
    u32 notify_mult;
    u32 msix_cap;            /* config-space offset of the MSI-X capability, 0 = none */
    u64 msix_table;          /* address of the MSI-X table */
    u16 msix_size;           /* table entries */
    u8 msix_on;
    u8 vec_base;             /* first IDT vector (config change); queue i uses its queue's vector */
    u8 nvec;
    u32 dest_apic;           /* where its MSI-X messages go */
    u64 features;            /* negotiated */
    u16 nqueues;             /* number of queues the device has (num_queues) */
    u16 nq;                  /* queues set up */
    struct virtq *q[4];
};

static inline int vdev_has(const struct vdev *d, int bit) { return (int)((d->features >> bit) & 1); }

/* Transport: find the capabilities, map the BAR ranges, reset, negotiate (`wanted` is ANDed with what the
 * device offers; VERSION_1 is required), set up `nq` queues (with MSI-X vectors when possible) and set
 * DRIVER_OK. Returns 0 on failure (printed as `VIRTIO dev=… bad …`). */
int vdev_init(struct vdev *d, const struct pci_dev *pci, int type, u64 wanted, int nq);
void vdev_print(const struct vdev *d);
u8 vdev_cfg8(const struct vdev *d, u32 off);
u16 vdev_cfg16(const struct vdev *d, u32 off);
u32 vdev_cfg32(const struct vdev *d, u32 off);
u64 vdev_cfg64(const struct vdev *d, u32 off);
u8 vdev_config_generation(const struct vdev *d);
/* Points queue i's MSI-X message at another CPU (mask, rewrite, unmask); a no-op if it already does. */
void virtq_route(struct virtq *q, u32 apic_id);
u64 vdev_irqs(const struct vdev *d); /* interrupts counted on its vectors */

/* Virtqueue operations (not locked: one user at a time). */
int virtq_add(struct virtq *q, const u64 *addrs, const u32 *lens, int n, int n_writable, u64 cookie);
/* One descriptor with VIRTQ_DESC_F_INDIRECT pointing at a table of n descriptors (already filled). */
int virtq_add_indirect(struct virtq *q, u64 table, int n, u64 cookie);
void virtq_kick(struct virtq *q); /* notifies the device unless it said it does not need it */
int virtq_has_used(struct virtq *q);
/* Returns the head id of the next used chain (frees its descriptors) or -1; len and cookie if not NULL. */
int virtq_get_used(struct virtq *q, u32 *len, u64 *cookie);
void virtq_irq(struct virtq *q, int on);
/* Waits (spin briefly, then halt with the interrupt armed) until a used entry is there or timeout_ns
 * passed. Returns 1 if there is one. */
int virtq_wait(struct virtq *q, u64 timeout_ns);

extern volatile u64 virtio_irq_count[VEC_VIRTIO_COUNT];
extern volatile u64 virtio_irq_total;

/* ---- the drivers ---- */
void virtio_init(void);          /* probe every virtio device at boot (prints VIRTIO … per device) */
void virtio_poll(void);          /* BSP loop: net RX/TX, console RX, vsock, pending checks */
int virtio_command(char *line);  /* serial commands; returns 1 if it was one */
int virtio_stats(char *buf, int len); /* ` virtio_irqs=blk:N,net:N,…` and per-driver counters */

/* vblk.c */
void vblk_probe(const struct pci_dev *pci);
int vblk_command(char *line);
struct workload;
int vblk_workload_start(const char *arg, char *err, int errlen); /* `blk` / `blk:MB` */
int vblk_workload_step(u64 deadline);
extern struct vdev *vblk_dev;
/* vnet.c */
void vnet_probe(const struct pci_dev *pci);
void vnet_poll(void);
int vnet_command(char *line);
extern struct vdev *vnet_dev;
int vnet_stats(char *buf, int len);
/* vrng.c */
void vrng_probe(const struct pci_dev *pci);
int vrng_command(char *line);
extern struct vdev *vrng_dev;
/* vcon.c */
void vcon_probe(const struct pci_dev *pci);
void vcon_poll(void);
int vcon_command(char *line);
extern struct vdev *vcon_dev;
int vcon_stats(char *buf, int len);
/* vsock.c */
void vsock_probe(const struct pci_dev *pci);
void vsock_poll(void);
int vsock_command(char *line);
extern struct vdev *vsock_dev;
int vsock_stats(char *buf, int len);
#endif
