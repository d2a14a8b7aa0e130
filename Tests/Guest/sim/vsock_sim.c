/*
 * checkguest: host-side simulation of a virtio-vsock PCI device, to test the guest's vsock driver (and the
 * virtio transport/virtqueue code under it) where no VMM can: QEMU here has no vhost-vsock.
 *
 * The guest sources (virtio.c, vsock.c, pci.c, the other drivers) are compiled for the host with
 * -DHOSTED_SIM: their MMIO accesses and syscalls (PCI configuration, HALT) come here. This file emulates
 * the PCI function (configuration space with the virtio capabilities and MSI-X), the modern common
 * configuration, the split virtqueues from the device side (event index or flags, indirect descriptors)
 * and a host peer that talks to the guest like Cloud Hypervisor's vsock backend would: connects to the
 * guest's echo port, honours and checks credit, accepts the guest's connections. Time is virtual.
 *
 * Usage: vsock-sim [--no-event-idx] [-v]; exit status 0 = every scenario passed.
 */
#include "../guest.h"
#include "../virtio.h"

/* ---- the few libc functions used (guest.h is freestanding; no system headers) ---- */
int printf(const char *fmt, ...);
int vsnprintf(char *buf, unsigned long n, const char *fmt, va_list ap);
void *aligned_alloc(unsigned long align, unsigned long size);
void exit(int status);
char *strstr(const char *h, const char *n);
char *strcpy(char *d, const char *s);

/* ---------------------------------------------------------------- harness state */
static int verbose, no_event_idx, failures;
static u64 sim_now = 1000000000ul;
static char outlog[1 << 20];
static int outlen;
static u64 out_mark; /* outlog offset where the current scenario started */

#define CHECK(cond, ...)                                                                                          \
    do {                                                                                                          \
        if (!(cond)) {                                                                                            \
            failures++;                                                                                           \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                                                \
            printf(__VA_ARGS__);                                                                                  \
            printf("\n");                                                                                         \
        }                                                                                                         \
    } while (0)

/* ---------------------------------------------------------------- what the guest needs from its kernel */
static struct cpu the_cpu;
struct cpu *this_cpu(void) { return &the_cpu; }
int ncpus_online = 1;
u64 clock_ns(void) { return sim_now += 1000; } /* every read moves time 1 µs on */
const char *cmdline_get(const char *key, char *out, int outlen) { (void)key; (void)out; (void)outlen; return NULL; }
int mmio_map(u64 addr, u64 len) { (void)addr; (void)len; return 1; }
u64 pool_alloc(u64 bytes) {
    bytes = ALIGN_UP(bytes, 4096);
    void *p = aligned_alloc(4096, bytes);
    if (p) memset(p, 0, bytes);
    return (u64)p;
}
u64 pool_free_bytes(void) { return 1ul << 30; }
int workload_count(void) { return 0; }
struct workload *workload_start(const char *spec, int cpu, char *err, int errlen) {
    (void)spec; (void)cpu; (void)err; (void)errlen;
    return NULL;
}
int str_starts(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }
int parse_u64(const char *s, const char **end, u64 *out) {
    u64 v = 0;
    int any = 0;
    for (; *s >= '0' && *s <= '9'; s++) { v = v * 10 + (u64)(*s - '0'); any = 1; }
    if (end) *end = s;
    *out = v;
    return any;
}
int vformat(char *buf, int size, const char *fmt, va_list ap) { return vsnprintf(buf, (unsigned long)size, fmt, ap); }
int format(char *buf, int size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, (unsigned long)size, fmt, ap);
    va_end(ap);
    return n < size ? n : size - 1;
}
void println(const char *fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof line - 1) n = (int)sizeof line - 1;
    if (outlen + n + 2 < (int)sizeof outlog) {
        memcpy(outlog + outlen, line, (size_t)n);
        outlen += n;
        outlog[outlen++] = '\n';
        outlog[outlen] = 0;
    }
    if (verbose) printf("guest: %s\n", line);
}
static int printed(const char *s) { return strstr(outlog + out_mark, s) != NULL; }

/* ---------------------------------------------------------------- the PCI function */
#define BAR_BASE 0x7e0000000000ul /* never dereferenced: every access comes to sim_mmio_* */
#define BAR_SIZE 0x8000ul
#define OFF_COMMON 0x0000
#define OFF_NOTIFY 0x1000
#define OFF_ISR 0x2000
#define OFF_DEVCFG 0x3000
#define OFF_MSIX 0x4000
#define OFF_PBA 0x5000
#define NOTIFY_MULT 4
#define NQUEUES 3
#define QMAX 64
#define GUEST_CID 3
static u8 cfg[256];

static void cfg_w16(int o, u16 v) { cfg[o] = (u8)v; cfg[o + 1] = (u8)(v >> 8); }
static void cfg_w32(int o, u32 v) { cfg_w16(o, (u16)v); cfg_w16(o + 2, (u16)(v >> 16)); }
static u32 cfg_r32(int o) { return cfg[o] | cfg[o + 1] << 8 | cfg[o + 2] << 16 | (u32)cfg[o + 3] << 24; }

static void vcap(int at, int next, int len, u8 type, u32 off, u32 length) {
    cfg[at] = 0x09;
    cfg[at + 1] = (u8)next;
    cfg[at + 2] = (u8)len;
    cfg[at + 3] = type;
    cfg[at + 4] = 0; /* BAR 0 */
    cfg_w32(at + 8, off);
    cfg_w32(at + 12, length);
}

static void pci_setup(void) {
    memset(cfg, 0, sizeof cfg);
    cfg_w16(0x00, 0x1af4);
    cfg_w16(0x02, 0x1040 + VIRTIO_ID_VSOCK);
    cfg_w16(0x06, 0x0010);                  /* capability list */
    cfg_w32(0x08, 0x02800001);              /* class: other network controller, rev 1 */
    cfg_w32(0x10, (u32)BAR_BASE | 0x4);     /* 64-bit memory BAR */
    cfg_w32(0x14, (u32)(BAR_BASE >> 32));
    cfg_w16(0x2e, VIRTIO_ID_VSOCK);
    cfg[0x34] = 0x40;
    vcap(0x40, 0x50, 16, 1, OFF_COMMON, 0x38);
    vcap(0x50, 0x64, 20, 2, OFF_NOTIFY, 0x1000);
    cfg_w32(0x50 + 16, NOTIFY_MULT);
    vcap(0x64, 0x74, 16, 3, OFF_ISR, 4);
    vcap(0x74, 0x84, 16, 4, OFF_DEVCFG, 8);
    cfg[0x84] = 0x11;                       /* MSI-X */
    cfg[0x85] = 0;
    cfg_w16(0x86, NQUEUES);                 /* table size - 1 = 3: 4 entries */
    cfg_w32(0x88, OFF_MSIX);
    cfg_w32(0x8c, OFF_PBA);
    pci_devs[0] = (struct pci_dev){ 0, 1, 0, 0, 0x1af4, 0x1040 + VIRTIO_ID_VSOCK, 0x028000 };
    pci_ndevs = 1;
}

static int msix_enabled(void) { return (cfg[0x87] & 0x80) != 0; }

/* ---------------------------------------------------------------- device state */
struct dq {
    u16 size, msix, enable, notify_off;
    u64 desc, avail, used;
    u16 last_avail, used_idx;
};
static struct {
    u32 dfselect, gfselect;
    u64 offered, driver;
    u16 config_msix, qsel;
    u8 status;
    struct dq q[NQUEUES];
    u32 msix[NQUEUES + 1][4];
    u64 interrupts[NQUEUES + 1];
    u64 kicks[NQUEUES];
} dev;

static int event_idx(void) { return (dev.driver >> VIRTIO_F_EVENT_IDX) & 1; }

static void dev_reset(void) {
    u64 offered = dev.offered;
    memset(&dev, 0, sizeof dev);
    dev.offered = offered;
    for (int i = 0; i < NQUEUES; i++) {
        dev.q[i].size = QMAX;
        dev.q[i].msix = 0xffff;
        dev.q[i].notify_off = (u16)i;
    }
    dev.config_msix = 0xffff;
}

static void raise_msix(u16 entry) {
    if (entry == 0xffff || entry > NQUEUES) return;
    u32 *e = dev.msix[entry];
    CHECK(msix_enabled(), "interrupt with MSI-X disabled");
    CHECK((e[0] & 0xfff00000u) == 0xfee00000u, "MSI-X address 0x%x", e[0]);
    if (e[3] & 1) return; /* masked (no pending-bit emulation: the guest never masks for long) */
    u32 vec = e[2] & 0xff;
    CHECK(vec >= VEC_VIRTIO_BASE && vec < VEC_VIRTIO_BASE + VEC_VIRTIO_COUNT, "MSI-X vector 0x%x", vec);
    if (vec >= VEC_VIRTIO_BASE && vec < VEC_VIRTIO_BASE + VEC_VIRTIO_COUNT) {
        virtio_irq_count[vec - VEC_VIRTIO_BASE]++;
        virtio_irq_total++;
    }
    dev.interrupts[entry]++;
}

/* ---- device side of a split virtqueue ---- */
static struct virtq_desc *D(struct dq *q) { return (struct virtq_desc *)q->desc; }
static volatile u16 *avail_idx(struct dq *q) { return (volatile u16 *)(q->avail + 2); }
static volatile u16 *avail_ring(struct dq *q) { return (volatile u16 *)(q->avail + 4); }
static volatile u16 *used_event(struct dq *q) { return avail_ring(q) + q->size; }
static volatile u16 *used_idx(struct dq *q) { return (volatile u16 *)(q->used + 2); }
static struct virtq_used_elem *used_ring(struct dq *q) { return (struct virtq_used_elem *)(q->used + 4); }
static volatile u16 *avail_event(struct dq *q) { return (volatile u16 *)(used_ring(q) + q->size); }

struct seg { u64 addr; u32 len; int write; };

/* Pops the next available chain into segs (following indirect tables); returns its head or -1. */
static int pop(struct dq *q, struct seg *segs, int *nseg) {
    if (!q->enable) return -1;
    if (*avail_idx(q) == q->last_avail) return -1;
    u16 head = avail_ring(q)[q->last_avail % q->size];
    q->last_avail++;
    if (event_idx()) *avail_event(q) = q->last_avail; /* kick us for the next one */
    CHECK(head < q->size, "head %u out of range", head);
    struct virtq_desc *table = D(q);
    u16 i = head, limit = q->size;
    int n = 0;
    if (table[i].flags & VIRTQ_DESC_F_INDIRECT) {
        CHECK(table[i].len % 16 == 0 && table[i].len, "indirect table length %u", table[i].len);
        limit = (u16)(table[i].len / 16);
        table = (struct virtq_desc *)table[i].addr;
        i = 0;
    }
    for (int guard = 0; guard < limit; guard++) {
        CHECK(!(table[i].flags & VIRTQ_DESC_F_INDIRECT) || table != D(q) || guard == 0, "nested indirect");
        segs[n].addr = table[i].addr;
        segs[n].len = table[i].len;
        segs[n].write = (table[i].flags & VIRTQ_DESC_F_WRITE) != 0;
        n++;
        if (!(table[i].flags & VIRTQ_DESC_F_NEXT)) break;
        i = table[i].next;
        CHECK(i < limit, "next %u out of range", i);
        if (n >= 8) break;
    }
    *nseg = n;
    return head;
}

static void push(struct dq *q, int qi, u16 head, u32 len) {
    u16 old = q->used_idx;
    struct virtq_used_elem *e = &used_ring(q)[q->used_idx % q->size];
    e->id = head;
    e->len = len;
    __atomic_thread_fence(__ATOMIC_RELEASE);
    q->used_idx++;
    *used_idx(q) = q->used_idx;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    int need;
    if (event_idx()) {
        u16 ev = *used_event(q);
        need = (u16)(q->used_idx - ev - 1) < (u16)(q->used_idx - old);
    } else {
        need = !(*(volatile u16 *)q->avail & VIRTQ_AVAIL_F_NO_INTERRUPT);
    }
    if (need) raise_msix(q->msix);
    (void)qi;
}

/* ---------------------------------------------------------------- the host peer (like CH's backend) */
#define HOST_CID 2
#define HOST_BUF 8192u /* small, so the guest has to wait for credit */
struct pkt { struct vhdr_s { u64 src_cid, dst_cid; u32 src_port, dst_port, len; u16 type, op; u32 flags, buf_alloc, fwd_cnt; } __attribute__((packed)) h; u8 data[4096]; };
#define OP_REQUEST 1
#define OP_RESPONSE 2
#define OP_RST 3
#define OP_SHUTDOWN 4
#define OP_RW 5
#define OP_CREDIT_UPDATE 6
#define OP_CREDIT_REQUEST 7

static struct pkt to_guest[256];
static int tg_head, tg_tail; /* ring of packets waiting for RX buffers */
static struct pkt from_guest[1024];
static int fg_n;             /* packets the guest sent, not yet looked at by the scenario */
static int events_pending;

static void host_send(u32 src_port, u32 dst_port, u16 op, u32 flags, u32 buf_alloc, u32 fwd_cnt, const u8 *data,
                      u32 len) {
    struct pkt *p = &to_guest[tg_tail++ % 256];
    CHECK(tg_tail - tg_head <= 256, "host send queue overflow");
    p->h = (struct vhdr_s){ HOST_CID, GUEST_CID, src_port, dst_port, len, 1, op, flags, buf_alloc, fwd_cnt };
    if (len) memcpy(p->data, data, len);
}

/* TX queue: everything the guest sent goes to from_guest[] */
static void dev_tx(void) {
    struct dq *q = &dev.q[1];
    struct seg s[8];
    int n, head;
    while ((head = pop(q, s, &n)) >= 0) {
        struct pkt p;
        memset(&p, 0, sizeof p);
        u32 got = 0, total = 0;
        for (int i = 0; i < n; i++) {
            CHECK(!s[i].write, "device-writable descriptor in a TX chain");
            for (u32 k = 0; k < s[i].len; k++, total++) {
                if (total < sizeof p.h) ((u8 *)&p.h)[total] = ((u8 *)s[i].addr)[k];
                else if (total - sizeof p.h < sizeof p.data) p.data[total - sizeof p.h] = ((u8 *)s[i].addr)[k], got++;
            }
        }
        CHECK(total >= sizeof p.h, "TX packet shorter than its header (%u)", total);
        CHECK(p.h.len == got, "TX header len %u but %u data bytes", p.h.len, got);
        CHECK(p.h.type == 1, "TX type %u", p.h.type);
        CHECK(p.h.src_cid == GUEST_CID, "TX src_cid %lu", p.h.src_cid);
        CHECK(p.h.dst_cid == HOST_CID, "TX dst_cid %lu", p.h.dst_cid);
        if (fg_n < 1024) from_guest[fg_n++] = p;
        push(q, 1, (u16)head, 0);
    }
}

/* RX queue: deliver waiting host packets into the guest's buffers */
static void dev_rx(void) {
    struct dq *q = &dev.q[0];
    while (tg_head != tg_tail) {
        struct seg s[8];
        int n;
        int head = pop(q, s, &n);
        if (head < 0) return;
        struct pkt *p = &to_guest[tg_head++ % 256];
        const u8 *src = (const u8 *)p;
        u32 left = (u32)sizeof p->h + p->h.len, off = 0;
        CHECK(s[0].len >= sizeof p->h, "RX header buffer of %u bytes", s[0].len);
        for (int i = 0; i < n && left; i++) {
            CHECK(s[i].write, "device-readable descriptor in an RX chain");
            u32 c = s[i].len < left ? s[i].len : left;
            memcpy((void *)s[i].addr, src + off, c);
            off += c;
            left -= c;
        }
        CHECK(!left, "RX packet of %u bytes did not fit", off + left);
        push(q, 0, (u16)head, off);
    }
}

static void dev_events(void) {
    struct dq *q = &dev.q[2];
    while (events_pending) {
        struct seg s[8];
        int n;
        int head = pop(q, s, &n);
        if (head < 0) return;
        CHECK(s[0].write && s[0].len >= 4, "event buffer");
        *(u32 *)s[0].addr = 0; /* VIRTIO_VSOCK_EVENT_TRANSPORT_RESET */
        push(q, 2, (u16)head, 4);
        events_pending--;
    }
}

static void dev_step(void) {
    if (!(dev.status & 4)) return;
    dev_rx();
    dev_events();
}

/* ---------------------------------------------------------------- MMIO and syscalls from the guest code */
u64 sim_mmio_read(u64 addr, int size) {
    CHECK(addr >= BAR_BASE && addr + (u64)size <= BAR_BASE + BAR_SIZE, "MMIO read outside BAR0: 0x%lx", addr);
    u64 o = addr - BAR_BASE;
    if (o >= OFF_DEVCFG && o < OFF_DEVCFG + 8) {
        u64 cid = GUEST_CID;
        u64 v = 0;
        for (int i = 0; i < size; i++) v |= ((cid >> (8 * (o - OFF_DEVCFG + (u64)i))) & 0xff) << (8 * i);
        return v;
    }
    if (o >= OFF_MSIX && o < OFF_MSIX + 16 * (NQUEUES + 1)) return dev.msix[(o - OFF_MSIX) / 16][(o % 16) / 4];
    if (o == OFF_ISR) return 0;
    struct dq *q = dev.qsel < NQUEUES ? &dev.q[dev.qsel] : NULL;
    switch (o) {
    case 0x00: return dev.dfselect;
    case 0x04: return dev.dfselect == 0 ? (u32)dev.offered : dev.dfselect == 1 ? (u32)(dev.offered >> 32) : 0;
    case 0x08: return dev.gfselect;
    case 0x0c: return dev.gfselect == 0 ? (u32)dev.driver : (u32)(dev.driver >> 32);
    case 0x10: return dev.config_msix;
    case 0x12: return NQUEUES;
    case 0x14: return dev.status;
    case 0x15: return 0;
    case 0x16: return dev.qsel;
    case 0x18: return q ? q->size : 0;
    case 0x1a: return q ? q->msix : 0xffff;
    case 0x1c: return q ? q->enable : 0;
    case 0x1e: return q ? q->notify_off : 0;
    }
    CHECK(0, "unexpected MMIO read at 0x%lx size %d", o, size);
    return 0;
}

void sim_mmio_write(u64 addr, int size, u64 v) {
    CHECK(addr >= BAR_BASE && addr + (u64)size <= BAR_BASE + BAR_SIZE, "MMIO write outside BAR0: 0x%lx", addr);
    u64 o = addr - BAR_BASE;
    if (o >= OFF_NOTIFY && o < OFF_NOTIFY + 0x1000) {
        u64 qi = (o - OFF_NOTIFY) / NOTIFY_MULT;
        CHECK(size == 2 && v == qi, "notify at 0x%lx value %lu size %d", o, v, size);
        if (qi < NQUEUES) {
            dev.kicks[qi]++;
            if (qi == 1) dev_tx();
            dev_step();
        }
        return;
    }
    if (o >= OFF_MSIX && o < OFF_MSIX + 16 * (NQUEUES + 1)) {
        CHECK(size == 4, "MSI-X table write size %d", size);
        dev.msix[(o - OFF_MSIX) / 16][(o % 16) / 4] = (u32)v;
        return;
    }
    struct dq *q = dev.qsel < NQUEUES ? &dev.q[dev.qsel] : NULL;
    if (q && q->enable && o >= 0x18 && o < 0x38 && o != 0x1a)
        CHECK(0, "queue %u reconfigured while enabled (0x%lx)", dev.qsel, o);
    switch (o) {
    case 0x00: dev.dfselect = (u32)v; return;
    case 0x08: dev.gfselect = (u32)v; return;
    case 0x0c:
        if (dev.gfselect == 0) dev.driver = (dev.driver & ~0xfffffffful) | (u32)v;
        else if (dev.gfselect == 1) dev.driver = (dev.driver & 0xfffffffful) | (v << 32);
        return;
    case 0x10: dev.config_msix = (u16)v; return;
    case 0x14:
        if (!v) { dev_reset(); return; }
        if ((v & 8) && !(dev.status & 8)) { /* FEATURES_OK: only what was offered, VERSION_1 required */
            if ((dev.driver & ~dev.offered) || !((dev.driver >> 32) & 1)) v &= ~8ul;
        }
        dev.status = (u8)v;
        return;
    case 0x16: dev.qsel = (u16)v; return;
    case 0x18:
        if (q) {
            CHECK(v && v <= QMAX && !(v & (v - 1)), "queue size %lu", v);
            q->size = (u16)v;
        }
        return;
    case 0x1a: if (q) q->msix = (u16)v; return;
    case 0x1c: if (q) { CHECK(q->desc && q->avail && q->used, "queue enabled without rings"); q->enable = (u16)v; } return;
    case 0x20: if (q) q->desc = (q->desc & ~0xfffffffful) | (u32)v; return;
    case 0x24: if (q) q->desc = (q->desc & 0xfffffffful) | (v << 32); return;
    case 0x28: if (q) q->avail = (q->avail & ~0xfffffffful) | (u32)v; return;
    case 0x2c: if (q) q->avail = (q->avail & 0xfffffffful) | (v << 32); return;
    case 0x30: if (q) q->used = (q->used & ~0xfffffffful) | (u32)v; return;
    case 0x34: if (q) q->used = (q->used & 0xfffffffful) | (v << 32); return;
    }
    CHECK(0, "unexpected MMIO write at 0x%lx size %d value 0x%lx", o, size, v);
}

u64 sim_syscall3(u64 nr, u64 a0, u64 a1, u64 a2) {
    switch (nr) {
    case SYS_PCI_READ: {
        u32 bus = (u32)(a0 >> 16) & 0xff, d = (u32)(a0 >> 11) & 31, fn = (u32)(a0 >> 8) & 7, off = (u32)a0 & 0xfc;
        if (bus || d != 1 || fn) return 0xffffffffu;
        return cfg_r32((int)off);
    }
    case SYS_PCI_WRITE: {
        u32 off = (u32)a0 & 0xff;
        if (((a0 >> 8) & 0xffff) != (1 << 3)) return 0;
        for (u32 i = 0; i < a2; i++) {
            u32 at = off + i;
            if (at == 0x87) { cfg[at] = (u8)((a1 >> (8 * i)) & 0xc0); continue; } /* MSI-X enable/mask */
            if (at == 0x86) continue;                                          /* table size: read-only */
            if (at == 0x04 || at == 0x05) { cfg[at] = (u8)(a1 >> (8 * i)); continue; }
            CHECK(0, "config write at 0x%x", at);
        }
        return 0;
    }
    case SYS_HALT:
    case SYS_HALT_IF:
        sim_now += 1000000;
        dev_step();
        return 0;
    case SYS_FLUSH_TLB: return 0;
    }
    CHECK(0, "unexpected syscall %lu", nr);
    return ~0ul;
}

/* ---------------------------------------------------------------- scenario helpers */
/* one pass of the BSP loop: the driver looks at its queues, then the device delivers what waits */
static void run(int passes) {
    for (int i = 0; i < passes; i++) {
        dev_step();
        vsock_poll();
        dev_step();
        sim_now += 1000000; /* 1 ms */
    }
}

static int take(struct pkt *out, u16 op, u32 guest_port, u32 host_port) {
    for (int i = 0; i < fg_n; i++) {
        struct pkt *p = &from_guest[i];
        if (p->h.op == op && p->h.src_port == guest_port && p->h.dst_port == host_port) {
            if (out) *out = *p;
            for (int k = i + 1; k < fg_n; k++) from_guest[k - 1] = from_guest[k];
            fg_n--;
            return 1;
        }
    }
    return 0;
}

static void begin(const char *name) {
    out_mark = (u64)outlen;
    fg_n = 0;
    if (verbose) printf("--- %s\n", name);
}

static u8 stream_byte(u64 i) { return (u8)((i * 2654435761u) >> 13); }

/* A host connection to the guest's echo port: sends `total` bytes (in packets of varying size, within the
 * guest's credit), reads the echo back (at most `host_buf` bytes outstanding: the guest must respect the
 * host's credit), then closes with `shutdown_flags` (3 = both, 2 = send only right after the data). */
static void echo_session(u32 host_port, u64 total, u32 shutdown_flags, int credit_requests) {
    u32 guest_buf = 0, guest_fwd = 0; /* guest's credit as last seen */
    u64 sent = 0, echoed = 0;
    u32 host_fwd = 0, host_fwd_told = 0, host_rx_buffered = 0;
    struct pkt p;
    host_send(host_port, 1234, OP_REQUEST, 0, HOST_BUF, 0, NULL, 0);
    int ok = 0;
    for (int i = 0; i < 20 && !ok; i++) {
        run(1);
        ok = take(&p, OP_RESPONSE, 1234, host_port);
    }
    CHECK(ok, "no RESPONSE to the host's REQUEST (port %u)", host_port);
    if (!ok) return;
    guest_buf = p.h.buf_alloc;
    guest_fwd = p.h.fwd_cnt;
    CHECK(guest_buf == 65536, "guest buf_alloc %u", guest_buf);
    int shut_sent = 0, rst = 0, stall = 0;
    for (int iter = 0; iter < 200000 && !rst; iter++) {
        /* send within the guest's credit */
        u32 credit = guest_buf - (u32)(sent - guest_fwd);
        if (sent < total && credit) {
            u32 n = (u32)(1 + (sent * 7 + 13) % 4096);
            if (n > credit) n = credit;
            if (n > total - sent) n = (u32)(total - sent);
            u8 buf[4096];
            for (u32 k = 0; k < n; k++) buf[k] = stream_byte(sent + k);
            host_send(host_port, 1234, OP_RW, 0, HOST_BUF, host_fwd, buf, n);
            sent += n;
        }
        if (sent == total && !shut_sent && shutdown_flags == 2) {
            host_send(host_port, 1234, OP_SHUTDOWN, 2, HOST_BUF, host_fwd, NULL, 0);
            shut_sent = 1;
        }
        if (credit_requests && iter % 97 == 5) host_send(host_port, 1234, OP_CREDIT_REQUEST, 0, HOST_BUF, host_fwd, NULL, 0);
        run(1);
        /* what came back */
        int progress = 0;
        for (int i = 0; i < fg_n;) {
            struct pkt *g = &from_guest[i];
            if (g->h.src_port != 1234 || g->h.dst_port != host_port) { i++; continue; }
            guest_buf = g->h.buf_alloc;
            guest_fwd = g->h.fwd_cnt;
            CHECK(guest_fwd <= sent, "guest fwd_cnt %u beyond what was sent (%lu)", guest_fwd, sent);
            if (g->h.op == OP_RW) {
                for (u32 k = 0; k < g->h.len; k++)
                    if (g->data[k] != stream_byte(echoed + k)) {
                        CHECK(0, "echo byte %lu: 0x%02x, expected 0x%02x", echoed + k, g->data[k], stream_byte(echoed + k));
                        break;
                    }
                echoed += g->h.len;
                host_rx_buffered += g->h.len;
                CHECK(host_rx_buffered <= HOST_BUF, "guest exceeded the host's credit: %u bytes buffered", host_rx_buffered);
                progress = 1;
            } else if (g->h.op == OP_RST) {
                rst = 1;
            } else if (g->h.op == OP_CREDIT_UPDATE) {
                CHECK(credit_requests, "unsolicited CREDIT_UPDATE");
            } else {
                CHECK(0, "unexpected op %u from the guest", g->h.op);
            }
            for (int k = i + 1; k < fg_n; k++) from_guest[k - 1] = from_guest[k];
            fg_n--;
        }
        /* the host application reads slowly: at most 3000 bytes per pass, credit update every 4 KiB read */
        u32 r = host_rx_buffered < 3000 ? host_rx_buffered : 3000;
        host_rx_buffered -= r;
        host_fwd += r;
        if (host_fwd - host_fwd_told >= 4096 || (r && host_rx_buffered == 0)) {
            host_send(host_port, 1234, OP_CREDIT_UPDATE, 0, HOST_BUF, host_fwd, NULL, 0);
            host_fwd_told = host_fwd;
        }
        if (echoed == total && !shut_sent) {
            host_send(host_port, 1234, OP_SHUTDOWN, shutdown_flags, HOST_BUF, host_fwd, NULL, 0);
            shut_sent = 1;
        }
        stall = progress || sent < total ? 0 : stall + 1;
        if (stall > 2000) break;
    }
    CHECK(echoed == total, "echoed %lu of %lu bytes (port %u)", echoed, total, host_port);
    CHECK(rst, "no RST after the host's SHUTDOWN (port %u)", host_port);
}

/* The host side of the guest's `vsockcheck PORT`: mode 0 accept + echo, 1 refuse (RST), 2 ignore,
 * 3 echo wrong bytes. */
static void check_session(u32 port, int mode, const char *expect) {
    char cmd[32];
    format(cmd, sizeof cmd, "vsockcheck %u", port);
    vsock_command(cmd);
    u32 guest_port = 0, echoed = 0;
    int closed = 0;
    for (int iter = 0; iter < 5000 && !printed(expect); iter++) {
        run(1);
        for (int i = 0; i < fg_n;) {
            struct pkt *g = &from_guest[i];
            if (g->h.dst_port != port) { i++; continue; }
            if (g->h.op == OP_REQUEST) {
                guest_port = g->h.src_port;
                CHECK(g->h.buf_alloc > 0, "REQUEST without buf_alloc");
                if (mode == 0 || mode == 3) host_send(port, guest_port, OP_RESPONSE, 0, HOST_BUF, 0, NULL, 0);
                else if (mode == 1) host_send(port, guest_port, OP_RST, 0, 0, 0, NULL, 0);
            } else if (g->h.op == OP_RW) {
                u8 data[4096];
                memcpy(data, g->data, g->h.len);
                if (mode == 3) data[0] ^= 1;
                host_send(port, guest_port, OP_RW, 0, HOST_BUF, g->h.len, data, g->h.len);
                echoed += g->h.len;
            } else if (g->h.op == OP_SHUTDOWN) {
                CHECK(g->h.fwd_cnt == echoed, "guest fwd_cnt %u after receiving %u bytes", g->h.fwd_cnt, echoed);
                host_send(port, guest_port, OP_RST, 0, 0, 0, NULL, 0);
                closed = 1;
            } else if (g->h.op == OP_RST) {
                closed = 1;
            }
            for (int k = i + 1; k < fg_n; k++) from_guest[k - 1] = from_guest[k];
            fg_n--;
        }
    }
    CHECK(printed(expect), "'%s' not printed after vsockcheck %u; guest printed: %s", expect, port, outlog + out_mark);
    run(50);
    if (mode == 0) CHECK(closed, "the guest did not close its vsockcheck connection");
}

static int open_conns(void) {
    char buf[256];
    vsock_stats(buf, sizeof buf);
    const char *p = strstr(buf, "vsock_conns=");
    return p ? p[12] - '0' : -1;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "--no-event-idx", 15)) no_event_idx = 1;
        else if (!strncmp(argv[i], "-v", 3)) verbose = 1;
    }
    the_cpu.apic_id = 0;
    pci_setup();
    dev.offered = (1ul << VIRTIO_F_VERSION_1) | (no_event_idx ? 0 : 1ul << VIRTIO_F_EVENT_IDX) | (1ul << 28);
    dev_reset();

    begin("probe");
    virtio_init();
    CHECK(dev.status == 0xf, "device status 0x%x after probe", dev.status);
    CHECK(dev.driver == (dev.offered & ~(1ul << 28)), "negotiated 0x%lx of 0x%lx", dev.driver, dev.offered);
    CHECK(printed("VIRTIO dev=vsock bdf=00:01.0 features=0x") && printed(" queues=3 msix=on "), "%s", outlog);
    CHECK(printed("VSOCK cid=3 listen_port=1234"), "%s", outlog);
    for (int i = 0; i < NQUEUES; i++) CHECK(dev.q[i].enable && dev.q[i].msix == i + 1, "queue %d", i);
    CHECK(dev.config_msix == 0, "config vector %u", dev.config_msix);

    begin("echo 300000 bytes, host credit 8 KiB, credit requests, full shutdown");
    echo_session(40000, 300000, 3, 1);
    CHECK(open_conns() == 0, "connections left: %d", open_conns());

    begin("echo, host half-closes right after its data");
    echo_session(40001, 10000, 2, 0);
    CHECK(open_conns() == 0, "connections left: %d", open_conns());

    begin("eight connections at once, a ninth is refused");
    {
        for (u32 i = 0; i < 8; i++) host_send(41000 + i, 1234, OP_REQUEST, 0, HOST_BUF, 0, NULL, 0);
        host_send(41008, 1234, OP_REQUEST, 0, HOST_BUF, 0, NULL, 0);
        run(10);
        for (u32 i = 0; i < 8; i++) CHECK(take(NULL, OP_RESPONSE, 1234, 41000 + i), "no RESPONSE for %u", 41000 + i);
        CHECK(take(NULL, OP_RST, 1234, 41008), "the ninth connection was not refused");
        u8 msg[100];
        for (u32 i = 0; i < 8; i++) {
            for (int k = 0; k < 100; k++) msg[k] = (u8)(i + (u32)k);
            host_send(41000 + i, 1234, OP_RW, 0, HOST_BUF, 0, msg, 100);
        }
        run(10);
        for (u32 i = 0; i < 8; i++) {
            struct pkt p;
            int ok = take(&p, OP_RW, 1234, 41000 + i);
            CHECK(ok && p.h.len == 100 && p.data[99] == (u8)(i + 99) && p.h.fwd_cnt == 100, "echo on %u", 41000 + i);
            host_send(41000 + i, 1234, OP_CREDIT_REQUEST, 0, HOST_BUF, 100, NULL, 0);
        }
        run(10);
        for (u32 i = 0; i < 8; i++) {
            struct pkt p;
            int ok = take(&p, OP_CREDIT_UPDATE, 1234, 41000 + i);
            CHECK(ok && p.h.buf_alloc == 65536 && p.h.fwd_cnt == 100, "CREDIT_UPDATE on %u", 41000 + i);
        }
        CHECK(open_conns() == 8, "open connections %d", open_conns());
    }

    begin("transport reset drops every connection");
    events_pending = 1;
    run(5);
    CHECK(printed("VSOCK reset cid=3"), "%s", outlog + out_mark);
    CHECK(open_conns() == 0, "connections left after the reset: %d", open_conns());
    CHECK(fg_n == 0, "the guest sent %d packets on a transport reset", fg_n);

    begin("unknown port, unknown connection, a RST is never answered");
    host_send(42000, 999, OP_REQUEST, 0, HOST_BUF, 0, NULL, 0);
    host_send(42001, 1234, OP_RW, 0, HOST_BUF, 0, (const u8 *)"x", 1);
    host_send(42002, 1234, OP_RST, 0, 0, 0, NULL, 0);
    run(5);
    CHECK(take(NULL, OP_RST, 999, 42000), "no RST for a REQUEST to a port nobody listens on");
    CHECK(take(NULL, OP_RST, 1234, 42001), "no RST for data on an unknown connection");
    CHECK(fg_n == 0, "%d unexpected packets", fg_n);

    begin("vsockcheck: accepted and echoed");
    check_session(5555, 0, "VSOCK ok port=5555");
    begin("vsockcheck: refused");
    check_session(6666, 1, "VSOCK bad refused port=6666");
    begin("vsockcheck: nobody answers");
    check_session(7777, 2, "VSOCK bad timeout-connecting port=7777");
    begin("vsockcheck: echo differs");
    check_session(8888, 3, "VSOCK bad mismatch port=8888");
    begin("vsockcheck: again after all that");
    check_session(5556, 0, "VSOCK ok port=5556");
    CHECK(open_conns() == 0, "connections left: %d", open_conns());

    u64 irqs = vdev_irqs(vsock_dev);
    CHECK(irqs > 0, "no interrupts");
    printf("vsock-sim%s: %s (interrupts rx=%lu tx=%lu ev=%lu, kicks rx=%lu tx=%lu ev=%lu)\n",
           no_event_idx ? " --no-event-idx" : "", failures ? "FAILED" : "ok", dev.interrupts[1], dev.interrupts[2],
           dev.interrupts[3], dev.kicks[0], dev.kicks[1], dev.kicks[2]);
    return failures ? 1 : 0;
}
