/*
 * checkguest: virtio-PCI modern transport (capabilities, feature negotiation, MSI-X) and split virtqueues
 * (event index, indirect descriptors). All user mode: BAR MMIO through the identity map (mmio_map maps
 * wherever a BAR is, uncached), PCI configuration through syscalls. See virtio.h and docs/checkguest.md.
 */
#include "virtio.h"

/* common configuration structure (virtio 1.x, 4.1.4.3) */
#define CC_DFSELECT 0x00
#define CC_DF 0x04
#define CC_GFSELECT 0x08
#define CC_GF 0x0c
#define CC_MSIX 0x10
#define CC_NUMQ 0x12
#define CC_STATUS 0x14
#define CC_CFGGEN 0x15
#define CC_Q_SELECT 0x16
#define CC_Q_SIZE 0x18
#define CC_Q_MSIX 0x1a
#define CC_Q_ENABLE 0x1c
#define CC_Q_NOFF 0x1e
#define CC_Q_DESCLO 0x20
#define CC_Q_DESCHI 0x24
#define CC_Q_AVAILLO 0x28
#define CC_Q_AVAILHI 0x2c
#define CC_Q_USEDLO 0x30
#define CC_Q_USEDHI 0x34

#define ST_ACK 1
#define ST_DRIVER 2
#define ST_DRIVER_OK 4
#define ST_FEATURES_OK 8
#define ST_FAILED 0x80
#define NO_VECTOR 0xffff

volatile u64 virtio_irq_count[VEC_VIRTIO_COUNT]; /* incremented by virtio_isr_N (boot.S) */
volatile u64 virtio_irq_total;                   /* all of them (not atomically: a hint to stop halting) */
static int next_vec;                             /* IDT vectors handed out so far */
static struct virtq vqs[24];
static int nvqs;

static inline void mb(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
static u8 cc_r8(const struct vdev *d, u32 o) { return mmio_read8(d->common + o); }
static u16 cc_r16(const struct vdev *d, u32 o) { return mmio_read16(d->common + o); }
static u32 cc_r32(const struct vdev *d, u32 o) { return mmio_read32(d->common + o); }
static void cc_w8(const struct vdev *d, u32 o, u8 v) { mmio_write8(d->common + o, v); }
static void cc_w16(const struct vdev *d, u32 o, u16 v) { mmio_write16(d->common + o, v); }
static void cc_w32(const struct vdev *d, u32 o, u32 v) { mmio_write32(d->common + o, v); }
static void cc_w64(const struct vdev *d, u32 o, u64 v) {
    cc_w32(d, o, (u32)v);
    cc_w32(d, o + 4, (u32)(v >> 32));
}

u8 vdev_cfg8(const struct vdev *d, u32 off) { return mmio_read8(d->device + off); }
u16 vdev_cfg16(const struct vdev *d, u32 off) { return mmio_read16(d->device + off); }
u32 vdev_cfg32(const struct vdev *d, u32 off) { return mmio_read32(d->device + off); }
u8 vdev_config_generation(const struct vdev *d) { return cc_r8(d, CC_CFGGEN); }
u64 vdev_cfg64(const struct vdev *d, u32 off) {
    for (;;) { /* two 32-bit reads, consistent by the configuration generation */
        u8 g = vdev_config_generation(d);
        u64 v = vdev_cfg32(d, off) | (u64)vdev_cfg32(d, off + 4) << 32;
        if (vdev_config_generation(d) == g) return v;
    }
}

static const char *type_name(int type) {
    switch (type) {
    case VIRTIO_ID_NET: return "net";
    case VIRTIO_ID_BLK: return "blk";
    case VIRTIO_ID_CONSOLE: return "console";
    case VIRTIO_ID_RNG: return "rng";
    case VIRTIO_ID_VSOCK: return "vsock";
    default: return "other";
    }
}

/* ---------------------------------------------------------------- BAR relocation (test option)
 * `pci_bar64=ADDR` moves every 64-bit memory BAR of the virtio devices to ADDR and up (each aligned to its
 * size), so the guest's mapping of BARs above 4 GiB can be tested under a VMM whose firmware placed them
 * low (QEMU q35 + SeaBIOS). Memory decoding is off while a BAR is sized and moved. */
static u64 bar64_next;

static void relocate_bars(const struct pci_dev *p) {
    u16 cmd = pci_read16(p, 0x04);
    for (int i = 0; i < 5; i++) {
        u32 off = 0x10 + 4 * (u32)i;
        u32 lo = pci_read32(p, off);
        if ((lo & 1) || ((lo >> 1) & 3) != 2) continue; /* not a 64-bit memory BAR */
        u32 hi = pci_read32(p, off + 4);
        pci_write(p, 0x04, cmd & ~2u, 2);
        pci_write(p, off, 0xffffffffu, 4);
        pci_write(p, off + 4, 0xffffffffu, 4);
        u64 mask = ((u64)pci_read32(p, off + 4) << 32) | (pci_read32(p, off) & ~0xful);
        u64 size = ~mask + 1;
        if (!mask || (size & (size - 1))) { /* not sizeable: put it back */
            pci_write(p, off, lo, 4);
            pci_write(p, off + 4, hi, 4);
        } else {
            u64 a = ALIGN_UP(bar64_next, size);
            bar64_next = a + size;
            pci_write(p, off, (u32)a | (lo & 0xf), 4);
            pci_write(p, off + 4, (u32)(a >> 32), 4);
        }
        pci_write(p, 0x04, cmd, 2);
        i++; /* the upper half */
    }
}

/* ---------------------------------------------------------------- MSI-X */
static void msix_entry_write(struct vdev *d, u16 entry, u32 apic_id, u8 vector, int masked) {
    u64 e = d->msix_table + 16ul * entry;
    mmio_write32(e + 12, 1);                            /* mask while changing */
    mmio_write32(e + 0, 0xfee00000u | (apic_id << 12)); /* fixed, physical destination */
    mmio_write32(e + 4, 0);
    mmio_write32(e + 8, vector);                        /* edge, fixed delivery */
    if (!masked) mmio_write32(e + 12, 0);
}

void virtq_route(struct virtq *q, u32 apic_id) {
    struct vdev *d = q->dev;
    if (!q->vector || !d->msix_on) return;
    if (d->dest_apic == apic_id) return;
    msix_entry_write(d, q->msix_entry, apic_id, q->vector, 0);
    d->dest_apic = apic_id; /* one destination per device: its queues are used by one CPU at a time */
    for (int i = 0; i < d->nq; i++)
        if (d->q[i] != q && d->q[i]->vector) msix_entry_write(d, d->q[i]->msix_entry, apic_id, d->q[i]->vector, 0);
}

u64 vdev_irqs(const struct vdev *d) {
    u64 n = 0;
    for (int i = 0; i < d->nvec; i++) n += virtio_irq_count[d->vec_base - VEC_VIRTIO_BASE + i];
    return n;
}

/* ---------------------------------------------------------------- virtqueues */
static struct virtq *virtq_new(struct vdev *d, u16 index, u16 size) {
    if (nvqs >= (int)ARRAY_SIZE(vqs)) return NULL;
    u64 desc_bytes = 16ul * size, avail_bytes = 6ul + 2ul * size, used_bytes = 6ul + 8ul * size;
    u64 a1 = ALIGN_UP(desc_bytes + avail_bytes, 4096), a2 = ALIGN_UP(used_bytes, 4096);
    u64 a3 = ALIGN_UP(8ul * size, 4096);
    u64 mem = pool_alloc(a1 + a2 + a3);
    if (!mem) return NULL;
    memset((void *)mem, 0, a1 + a2 + a3);
    struct virtq *q = &vqs[nvqs++];
    memset(q, 0, sizeof *q);
    q->dev = d;
    q->size = size;
    q->index = index;
    q->desc = (struct virtq_desc *)mem;
    q->avail = (struct virtq_avail *)(mem + desc_bytes);
    q->used = (struct virtq_used *)(mem + a1);
    q->cookie = (u64 *)(mem + a1 + a2);
    q->used_event = &q->avail->ring[size];
    q->avail_event = (volatile u16 *)&q->used->ring[size];
    for (u16 i = 0; i < size; i++) q->desc[i].next = (u16)(i + 1);
    q->num_free = size;
    q->event_idx = (u8)vdev_has(d, VIRTIO_F_EVENT_IDX);
    return q;
}

int virtq_add(struct virtq *q, const u64 *addrs, const u32 *lens, int n, int n_writable, u64 cookie) {
    if (n <= 0 || q->num_free < n) return -1;
    u16 head = q->free_head, i = head, last = head;
    for (int k = 0; k < n; k++) {
        struct virtq_desc *dsc = &q->desc[i];
        dsc->addr = addrs[k];
        dsc->len = lens[k];
        dsc->flags = (u16)((k < n - 1 ? VIRTQ_DESC_F_NEXT : 0) | (k >= n - n_writable ? VIRTQ_DESC_F_WRITE : 0));
        last = i;
        i = dsc->next;
    }
    q->free_head = q->desc[last].next;
    q->num_free = (u16)(q->num_free - n);
    q->cookie[head] = cookie;
    q->avail->ring[q->avail->idx % q->size] = head;
    __atomic_thread_fence(__ATOMIC_RELEASE);
    WRITE_ONCE(q->avail->idx, (u16)(q->avail->idx + 1));
    return head;
}

int virtq_add_indirect(struct virtq *q, u64 table, int n, u64 cookie) {
    if (n <= 0 || !q->num_free) return -1;
    u16 head = q->free_head;
    struct virtq_desc *dsc = &q->desc[head];
    dsc->addr = table;
    dsc->len = (u32)(16 * n);
    dsc->flags = VIRTQ_DESC_F_INDIRECT;
    q->free_head = dsc->next;
    q->num_free--;
    q->cookie[head] = cookie;
    q->avail->ring[q->avail->idx % q->size] = head;
    __atomic_thread_fence(__ATOMIC_RELEASE);
    WRITE_ONCE(q->avail->idx, (u16)(q->avail->idx + 1));
    return head;
}

void virtq_kick(struct virtq *q) {
    u16 new_idx = q->avail->idx, old = q->kicked_avail;
    if (new_idx == old) return;
    q->kicked_avail = new_idx;
    mb(); /* the avail index store before the load of avail_event / used flags */
    int need;
    if (q->event_idx) {
        u16 ev = *q->avail_event;
        need = (u16)(new_idx - ev - 1) < (u16)(new_idx - old);
    } else {
        need = !(READ_ONCE(q->used->flags) & VIRTQ_USED_F_NO_NOTIFY);
    }
    if (need && q->notify) {
        mmio_write16(q->notify, q->index);
        q->kicks++;
    }
}

int virtq_has_used(struct virtq *q) { return READ_ONCE(q->used->idx) != q->last_used; }

static void set_used_event(struct virtq *q) {
    if (q->event_idx) *q->used_event = q->irq_on ? q->last_used : (u16)(q->last_used - 1);
    else WRITE_ONCE(q->avail->flags, q->irq_on ? 0 : VIRTQ_AVAIL_F_NO_INTERRUPT);
}

void virtq_irq(struct virtq *q, int on) {
    q->irq_on = (u8)(on != 0);
    set_used_event(q);
    mb(); /* before the caller looks at the used index again */
}

int virtq_get_used(struct virtq *q, u32 *len, u64 *cookie) {
    if (READ_ONCE(q->used->idx) == q->last_used) return -1;
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    struct virtq_used_elem *e = &q->used->ring[q->last_used % q->size];
    u32 id32 = e->id, l = e->len;
    q->last_used++;
    if (q->event_idx && q->irq_on) *q->used_event = q->last_used;
    if (id32 >= q->size) return -1; /* a broken device: do not follow it */
    u16 id = (u16)id32, i = id;
    int n = 1;
    while ((q->desc[i].flags & VIRTQ_DESC_F_NEXT) && n < q->size) {
        i = q->desc[i].next;
        n++;
    }
    q->desc[i].next = q->free_head;
    q->free_head = id;
    q->num_free = (u16)(q->num_free + n);
    q->completions++;
    if (len) *len = l;
    if (cookie) *cookie = q->cookie[id];
    return id;
}

int virtq_wait(struct virtq *q, u64 timeout_ns) {
    if (virtq_has_used(q)) return 1;
    u64 t0 = clock_ns(), now = t0;
    while (now - t0 < 20000) { /* completions often come within a few tens of microseconds */
        for (int i = 0; i < 64; i++) {
            if (virtq_has_used(q)) return 1;
            cpu_relax();
        }
        now = clock_ns();
    }
    int was_on = q->irq_on, got = 0;
    /* halt only if this CPU gets the queue's interrupt (else the timer tick would be the only wake-up) */
    int can_halt = q->vector && q->dev->msix_on && q->dev->dest_apic == this_cpu()->apic_id && !this_cpu()->no_halt;
    if (can_halt) virtq_irq(q, 1);
    for (;;) {
        if (virtq_has_used(q)) { got = 1; break; }
        if (clock_ns() - t0 >= timeout_ns) break;
        if (can_halt) syscall3(SYS_HALT_IF, (u64)&q->used->idx, q->last_used, 0);
        else for (int i = 0; i < 256; i++) cpu_relax();
    }
    if (can_halt && !was_on) virtq_irq(q, 0);
    return got || virtq_has_used(q);
}

/* ---------------------------------------------------------------- device initialisation */
static int fail(struct vdev *d, const char *why) {
    const struct pci_dev *p = d->pci;
    println("VIRTIO dev=%s bdf=%02x:%02x.%x bad %s", d->name, p->bus, p->dev, p->fn, why);
    if (d->common) cc_w8(d, CC_STATUS, ST_FAILED);
    return 0;
}

int vdev_init(struct vdev *d, const struct pci_dev *p, int type, u64 wanted, int nq) {
    memset(d, 0, sizeof *d);
    d->pci = p;
    d->type = type;
    d->name = type_name(type);
    if (nq > (int)ARRAY_SIZE(d->q)) return fail(d, "too-many-queues");
    char val[24];
    u64 v;
    if (cmdline_get("pci_bar64", val, sizeof val) && parse_u64(val, NULL, &v) && v) {
        if (!bar64_next) bar64_next = v;
        relocate_bars(p);
    }

    /* capabilities: vendor-specific (virtio structures) and MSI-X */
    for (u32 cap = pci_find_cap(p, 0x09, 0); cap; cap = pci_find_cap(p, 0x09, cap)) {
        u8 cfg_type = pci_read8(p, cap + 3);
        u8 bar = pci_read8(p, cap + 4);
        u32 off = pci_read32(p, cap + 8), len = pci_read32(p, cap + 12);
        if (cfg_type < 1 || cfg_type > 4 || bar > 5) continue;
        u64 base = pci_bar_addr(p, bar);
        if (!base) return fail(d, "bar-unassigned");
        if (!mmio_map(base + off, len)) return fail(d, "bar-unmappable");
        switch (cfg_type) {
        case 1: if (!d->common) d->common = base + off; break;
        case 2:
            if (!d->notify) { d->notify = base + off; d->notify_mult = pci_read32(p, cap + 16); }
            break;
        case 3: if (!d->isr) d->isr = base + off; break;
        case 4: if (!d->device) d->device = base + off; break;
        }
    }
    if (!d->common || !d->notify) return fail(d, "no-modern-capabilities");
    u32 mx = pci_find_cap(p, 0x11, 0);
    if (mx) {
        u16 ctrl = pci_read16(p, mx + 2);
        u32 tbl = pci_read32(p, mx + 4);
        u64 base = pci_bar_addr(p, (int)(tbl & 7));
        d->msix_size = (u16)((ctrl & 0x7ff) + 1);
        if (base && mmio_map(base + (tbl & ~7u), 16ul * d->msix_size)) {
            d->msix_cap = mx;
            d->msix_table = base + (tbl & ~7u);
        }
    }
    pci_enable(p); /* memory decoding + bus mastering */

    /* reset, acknowledge, negotiate */
    cc_w8(d, CC_STATUS, 0);
    u64 t0 = clock_ns();
    while (cc_r8(d, CC_STATUS) != 0)
        if (clock_ns() - t0 > 1000000000ul) return fail(d, "reset-timeout");
    cc_w8(d, CC_STATUS, ST_ACK);
    cc_w8(d, CC_STATUS, ST_ACK | ST_DRIVER);
    cc_w32(d, CC_DFSELECT, 0);
    u64 offered = cc_r32(d, CC_DF);
    cc_w32(d, CC_DFSELECT, 1);
    offered |= (u64)cc_r32(d, CC_DF) << 32;
    if (!((offered >> VIRTIO_F_VERSION_1) & 1)) return fail(d, "no-version-1");
    d->features = offered & (wanted | (1ul << VIRTIO_F_VERSION_1));
    cc_w32(d, CC_GFSELECT, 0);
    cc_w32(d, CC_GF, (u32)d->features);
    cc_w32(d, CC_GFSELECT, 1);
    cc_w32(d, CC_GF, (u32)(d->features >> 32));
    cc_w8(d, CC_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK);
    if (!(cc_r8(d, CC_STATUS) & ST_FEATURES_OK)) return fail(d, "features-not-accepted");
    d->nqueues = cc_r16(d, CC_NUMQ);
    if (d->nqueues < nq) return fail(d, "too-few-queues");

    /* MSI-X: entry 0 = configuration changes, entry 1 + i = queue i, all to this CPU. A table with fewer
     * entries: the queues share the last one (and with a single entry, configuration changes get none). */
    d->dest_apic = this_cpu()->apic_id;
    int nent = d->msix_size < 1 + nq ? d->msix_size : 1 + nq;
    if (d->msix_cap && nent >= 1 && next_vec + nent <= VEC_VIRTIO_COUNT) {
        d->vec_base = (u8)(VEC_VIRTIO_BASE + next_vec);
        d->nvec = (u8)nent;
        next_vec += nent;
        u16 ctrl = pci_read16(d->pci, d->msix_cap + 2);
        pci_write(d->pci, d->msix_cap + 2, (ctrl | 0x8000u) & ~0x4000u, 2); /* enable, function unmasked */
        for (int i = 0; i < nent; i++) msix_entry_write(d, (u16)i, d->dest_apic, (u8)(d->vec_base + i), 0);
        if (nent >= 2) {
            cc_w16(d, CC_MSIX, 0);
            d->msix_on = cc_r16(d, CC_MSIX) == 0;
        } else {
            cc_w16(d, CC_MSIX, NO_VECTOR);
            d->msix_on = 1;
        }
        if (!d->msix_on) {
            pci_write(d->pci, d->msix_cap + 2, ctrl & ~0x8000u, 2);
            cc_w16(d, CC_MSIX, NO_VECTOR);
        }
    }

    for (int i = 0; i < nq; i++) {
        cc_w16(d, CC_Q_SELECT, (u16)i);
        u16 max = cc_r16(d, CC_Q_SIZE);
        if (!max) return fail(d, "queue-size-0");
        u16 size = max > VQ_MAX_SIZE ? VQ_MAX_SIZE : max;
        while (size & (size - 1)) size &= (u16)(size - 1); /* split rings: a power of two */
        if (size != max) cc_w16(d, CC_Q_SIZE, size);
        struct virtq *q = virtq_new(d, (u16)i, size);
        if (!q) return fail(d, "out-of-memory");
        d->q[i] = q;
        if (d->msix_on) {
            u16 e = (u16)(d->nvec >= 2 ? (1 + i < d->nvec ? 1 + i : d->nvec - 1) : 0);
            cc_w16(d, CC_Q_MSIX, e);
            if (cc_r16(d, CC_Q_MSIX) == e) {
                q->vector = (u8)(d->vec_base + e);
                q->msix_entry = e;
            }
        }
        cc_w64(d, CC_Q_DESCLO, (u64)q->desc);
        cc_w64(d, CC_Q_AVAILLO, (u64)q->avail);
        cc_w64(d, CC_Q_USEDLO, (u64)q->used);
        q->notify = d->notify + (u64)cc_r16(d, CC_Q_NOFF) * d->notify_mult;
        virtq_irq(q, 0);
        cc_w16(d, CC_Q_ENABLE, 1);
    }
    d->nq = (u16)nq;
    cc_w8(d, CC_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK);
    vdev_print(d);
    return 1;
}

void vdev_print(const struct vdev *d) {
    const struct pci_dev *p = d->pci;
    char vec[40] = "none";
    if (d->msix_on) format(vec, sizeof vec, "0x%x-0x%x", d->vec_base, d->vec_base + d->nvec - 1);
    else if (d->msix_cap) format(vec, sizeof vec, "none(table=%u)", d->msix_size);
    println("VIRTIO dev=%s bdf=%02x:%02x.%x features=0x%lx queues=%d msix=%s common=0x%lx vectors=%s qsize=%u",
            d->name, p->bus, p->dev, p->fn, d->features, d->nq, d->msix_on ? "on" : "off", d->common, vec,
            d->nq ? d->q[0]->size : 0);
}

/* ---------------------------------------------------------------- all devices */
void virtio_init(void) {
    char val[8];
    if (cmdline_get("virtio", val, sizeof val) && !strncmp(val, "off", 4)) return;
    for (int i = 0; i < pci_ndevs; i++) {
        const struct pci_dev *p = &pci_devs[i];
        if (p->vendor != 0x1af4) continue;
        int type;
        if (p->device >= 0x1040 && p->device <= 0x107f) type = p->device - 0x1040;
        else if (p->device >= 0x1000 && p->device <= 0x103f) type = pci_read16(p, 0x2e); /* transitional */
        else continue;
        switch (type) {
        case VIRTIO_ID_BLK: vblk_probe(p); break;
        case VIRTIO_ID_NET: vnet_probe(p); break;
        case VIRTIO_ID_RNG: vrng_probe(p); break;
        case VIRTIO_ID_CONSOLE: vcon_probe(p); break;
        case VIRTIO_ID_VSOCK: vsock_probe(p); break;
        default:
            println("VIRTIO dev=type%d bdf=%02x:%02x.%x skipped", type, p->bus, p->dev, p->fn);
        }
    }
}

void virtio_poll(void) {
    vnet_poll();
    vcon_poll();
    vsock_poll();
}

int virtio_command(char *line) {
    return vblk_command(line) || vnet_command(line) || vrng_command(line) || vcon_command(line) ||
           vsock_command(line);
}

int virtio_stats(char *buf, int len) {
    struct vdev *devs[] = { vblk_dev, vnet_dev, vrng_dev, vcon_dev, vsock_dev };
    int n = format(buf, len, "virtio_irqs=");
    int any = 0;
    for (int i = 0; i < (int)ARRAY_SIZE(devs) && n < len; i++) {
        if (!devs[i]) continue;
        n += format(buf + n, len - n, "%s%s:%lu", any ? "," : "", devs[i]->name, vdev_irqs(devs[i]));
        any = 1;
    }
    if (!any && n < len) n += format(buf + n, len - n, "none");
    if (n < len) n += vnet_stats(buf + n, len - n);
    if (n < len) n += vcon_stats(buf + n, len - n);
    if (n < len) n += vsock_stats(buf + n, len - n);
    return n;
}
