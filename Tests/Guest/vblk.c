/*
 * checkguest: virtio-blk driver, the `blk` workload and the blkcheck/blkbench commands.
 *
 * Pattern: the disk is handled in 4 KiB blocks (8 sectors). Every 512-byte sector written holds 64
 * little-endian u64 words: w[0] = BLK_MAGIC ^ sector, w[1] = generation, w[2..63] = an xorshift64 stream
 * seeded from (sector, generation); so each sector verifies on its own. The generation of every block last
 * written (0 = never) is kept in a u32 table in guest RAM: after a snapshot/restore or a migration the table
 * says what the disk must hold.
 *
 * Requests: header (16 bytes) + data + status byte. With VIRTIO_F_INDIRECT_DESC every request is one ring
 * descriptor pointing at a 3-entry indirect table (per head id), otherwise a chain of three.
 * Locking: the device is used by one CPU at a time (the workload's CPU or the BSP for commands); whoever
 * holds the lock has the request queue's MSI-X message pointed at itself, and drains its requests before
 * releasing it.
 */
#include "virtio.h"

#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define S_OK 0

#define BLK_MAGIC 0x4b4c424b43455543ul /* "CUECKBLK" */
#define SECT_WORDS 64
#define BLOCK_SECTORS 8
#define WL_CHUNK_BLOCKS 16  /* 64 KiB per workload request */
#define WL_QD 8
#define CHECK_CHUNK_BLOCKS 32 /* 128 KiB per blkcheck request */
#define CHECK_QD 4
#define IO_TIMEOUT_NS 5000000000ul
#define MAX_BAD_LINES 16
#define GEN_MASK 0x3fffffffu

struct blk_hdr { u32 type; u32 reserved; u64 sector; };
struct blk_slot {              /* per head id: what the device reads and writes besides the data */
    struct blk_hdr hdr;
    u8 status;
    u8 pad[7];
    struct virtq_desc ind[3];
    u8 pad2[128 - 24 - 48];
};
_Static_assert(sizeof(struct blk_slot) == 128, "blk_slot");

struct vblk {
    struct vdev dev;
    struct virtq *q;
    u64 capacity;             /* sectors */
    u32 blk_size;
    int ro, flush, indirect, broken;
    struct blk_slot *slots;   /* q->size entries */
    spinlock_t lock;
    u64 inflight;
    u64 requests, flushes;
};

static struct vblk blk0;
struct vdev *vblk_dev;
static int nblk;

/* ---------------------------------------------------------------- requests */
static int blk_submit(struct vblk *b, u32 type, u64 sector, u64 buf, u32 len, u64 cookie) {
    struct virtq *q = b->q;
    int dev_writes = type == T_IN || type == T_GET_ID;
    int n = len ? 3 : 2;
    if (q->num_free < (b->indirect ? 1 : n)) return -1;
    u16 head = q->free_head;
    struct blk_slot *s = &b->slots[head];
    s->hdr.type = type;
    s->hdr.reserved = 0;
    s->hdr.sector = sector;
    s->status = 0xff;
    int r;
    if (b->indirect) {
        int k = 0;
        s->ind[k++] = (struct virtq_desc){ (u64)&s->hdr, sizeof s->hdr, VIRTQ_DESC_F_NEXT, 1 };
        if (len)
            s->ind[k++] = (struct virtq_desc){ buf, len,
                                               (u16)(VIRTQ_DESC_F_NEXT | (dev_writes ? VIRTQ_DESC_F_WRITE : 0)), 2 };
        s->ind[k++] = (struct virtq_desc){ (u64)&s->status, 1, VIRTQ_DESC_F_WRITE, 0 };
        r = virtq_add_indirect(q, (u64)s->ind, k, cookie);
    } else {
        u64 addrs[3];
        u32 lens[3];
        int k = 0;
        addrs[k] = (u64)&s->hdr; lens[k++] = sizeof s->hdr;
        if (len) { addrs[k] = buf; lens[k++] = len; }
        addrs[k] = (u64)&s->status; lens[k++] = 1;
        r = virtq_add(q, addrs, lens, k, (len && dev_writes) ? 2 : 1, cookie);
    }
    if (r >= 0) {
        b->inflight++;
        b->requests++;
    }
    return r;
}

/* One completion if there is one: 1 (status, cookie set), 0 none. */
static int blk_reap(struct vblk *b, u8 *status, u64 *cookie) {
    int id = virtq_get_used(b->q, NULL, cookie);
    if (id < 0) return 0;
    *status = b->slots[id].status;
    b->inflight--;
    return 1;
}

/* Waits for one completion; 0 on timeout (the device is then considered broken). */
static int blk_wait(struct vblk *b) {
    if (virtq_wait(b->q, IO_TIMEOUT_NS)) return 1;
    b->broken = 1;
    println("BLK bad timeout inflight=%lu", b->inflight);
    return 0;
}

/* A single request, synchronously (nothing else may be in flight). Returns the status or -1. */
static int blk_sync(struct vblk *b, u32 type, u64 sector, u64 buf, u32 len) {
    if (b->broken) return -1;
    if (blk_submit(b, type, sector, buf, len, 0) < 0) return -1;
    virtq_kick(b->q);
    u8 st;
    u64 c;
    while (!blk_reap(b, &st, &c))
        if (!blk_wait(b)) return -1;
    return st;
}

static void blk_lock(struct vblk *b) {
    spin_lock(&b->lock);
    virtq_route(b->q, this_cpu()->apic_id);
}
static int blk_trylock(struct vblk *b) {
    if (!spin_trylock(&b->lock)) return 0;
    virtq_route(b->q, this_cpu()->apic_id);
    return 1;
}
static void blk_unlock(struct vblk *b) { spin_unlock(&b->lock); }

/* ---------------------------------------------------------------- the pattern */
#define SECT_SALT 7

static void fill_sector(u64 *p, u64 sector, u64 gen) { pattern_fill(p, SECT_WORDS, BLK_MAGIC, sector, gen, SECT_SALT); }

/* 0 if the sector holds (sector, gen); else the number of differing words */
static int verify_sector(const u64 *p, u64 sector, u64 gen) {
    int bad = (p[0] != (BLK_MAGIC ^ sector)) + (p[1] != gen);
    u64 s = pattern_seed(sector, gen, SECT_SALT);
    for (int i = 2; i < SECT_WORDS; i++) bad += p[i] != (s = pattern_next(s));
    return bad;
}

/* what generation a sector seems to hold (its header), for the report */
static long found_gen(const u64 *p, u64 sector) { return p[0] == (BLK_MAGIC ^ sector) ? (long)p[1] : -1; }

/* ---------------------------------------------------------------- the workload */
enum { PH_WRITE, PH_FLUSH, PH_VERIFY, PH_READ_RO };
static struct {
    int active, phase, cpu;
    u64 nblocks;              /* blocks covered by this run */
    u64 table_blocks;         /* blocks the generation table covers (the first run's size) */
    volatile u32 *gen;        /* per block: generation last written (completed), 0 = never */
    u32 cur_gen;
    u64 cursor;               /* next block to submit in this phase */
    u64 outstanding;          /* requests of this phase in flight */
    int flush_sent;
    u64 bufs[WL_QD];
    u32 buf_free;             /* bitmask */
    u64 written_sectors, verified_sectors, read_sectors, passes;
    u64 stop_after;           /* blk:MB:PASSES: pass count at which the workload stops (0 = never) */
    u64 bad, bad_lines, first_bad;
    u64 last_print_ns, pass_start_ns;
} wl;

static u64 check_buf; /* blkcheck: CHECK_QD buffers of CHECK_CHUNK_BLOCKS blocks */

static void report_bad(u64 sector, u64 expect_gen, const u64 *p, const char *src) {
    if (!wl.bad++) wl.first_bad = sector;
    if (wl.bad_lines++ < MAX_BAD_LINES)
        println("BLK bad sector=%lu expect_gen=%lu found_gen=%ld src=%s", sector, expect_gen, found_gen(p, sector), src);
}

static void verify_chunk(u64 buf, u64 block, u64 n, const char *src, u64 *verified, u64 *bad) {
    for (u64 k = 0; k < n; k++) {
        u32 g = wl.gen[block + k] & GEN_MASK;
        if (!g) continue;
        for (int s = 0; s < BLOCK_SECTORS; s++) {
            u64 sector = (block + k) * BLOCK_SECTORS + (u64)s;
            const u64 *p = (const u64 *)(buf + (k * BLOCK_SECTORS + (u64)s) * 512);
            if (verify_sector(p, sector, g)) {
                (*bad)++;
                report_bad(sector, g, p, src);
            }
            (*verified)++;
        }
    }
}

#define COOKIE(buf, block, n) ((u64)(buf) | (u64)(n) << 8 | (u64)(block) << 16)
#define COOKIE_BUF(c) ((int)((c) & 0xff))
#define COOKIE_N(c) ((u64)(((c) >> 8) & 0xff))
#define COOKIE_BLOCK(c) ((c) >> 16)

static void wl_complete(struct vblk *b, u8 st, u64 c) {
    int bi = COOKIE_BUF(c);
    u64 block = COOKIE_BLOCK(c), n = COOKIE_N(c);
    wl.outstanding--;
    if (bi != 0xff) wl.buf_free |= 1u << bi;
    if (st != S_OK) {
        wl.bad++;
        if (wl.bad_lines++ < MAX_BAD_LINES)
            println("BLK bad sector=%lu status=%u op=%s", block * BLOCK_SECTORS, st,
                    wl.phase == PH_WRITE ? "write" : wl.phase == PH_FLUSH ? "flush" : "read");
        return;
    }
    switch (wl.phase) {
    case PH_WRITE:
        for (u64 k = 0; k < n; k++) wl.gen[block + k] = wl.cur_gen;
        wl.written_sectors += n * BLOCK_SECTORS;
        break;
    case PH_VERIFY: {
        u64 bad = 0;
        verify_chunk(wl.bufs[bi], block, n, "workload", &wl.verified_sectors, &bad);
        break;
    }
    case PH_READ_RO:
        wl.read_sectors += n * BLOCK_SECTORS;
        break;
    }
    (void)b;
}

static void wl_report(int force) {
    u64 now = clock_ns();
    if (!force && now - wl.last_print_ns < 1000000000ul) return;
    wl.last_print_ns = now;
    if (wl.phase == PH_READ_RO) {
        println("BLK ro read=%lu pass=%lu", wl.read_sectors, wl.passes);
    } else if (!wl.bad) {
        println("BLK ok written=%lu gen=%u verified=%lu pass=%lu blocks=%lu", wl.written_sectors, wl.cur_gen,
                wl.verified_sectors, wl.passes, wl.nblocks);
    } else {
        println("BLK bad sector=%lu bad=%lu written=%lu gen=%u pass=%lu", wl.first_bad, wl.bad, wl.written_sectors,
                wl.cur_gen, wl.passes);
    }
}

/* all requests of the current phase in flight are submitted and the phase is not over */
static void wl_submit(struct vblk *b) {
    if (wl.phase == PH_FLUSH) {
        if (!wl.flush_sent && blk_submit(b, T_FLUSH, 0, 0, 0, COOKIE(0xff, 0, 0)) >= 0) {
            wl.flush_sent = 1;
            wl.outstanding++;
            b->flushes++;
        }
        return;
    }
    while (wl.buf_free && wl.cursor < wl.nblocks) {
        int bi = __builtin_ctz(wl.buf_free);
        u64 n = wl.nblocks - wl.cursor < WL_CHUNK_BLOCKS ? wl.nblocks - wl.cursor : WL_CHUNK_BLOCKS;
        u64 buf = wl.bufs[bi], block = wl.cursor;
        u32 type = T_IN;
        if (wl.phase == PH_WRITE) {
            type = T_OUT;
            for (u64 k = 0; k < n * BLOCK_SECTORS; k++)
                fill_sector((u64 *)(buf + k * 512), block * BLOCK_SECTORS + k, wl.cur_gen);
        }
        if (blk_submit(b, type, block * BLOCK_SECTORS, buf, (u32)(n * 4096), COOKIE(bi, block, n)) < 0) break;
        wl.buf_free &= ~(1u << bi);
        wl.cursor += n;
        wl.outstanding++;
    }
}

/* the phase is complete: go to the next one */
static void wl_advance(struct vblk *b) {
    switch (wl.phase) {
    case PH_WRITE:
        wl.phase = b->flush ? PH_FLUSH : PH_VERIFY;
        wl.flush_sent = 0;
        break;
    case PH_FLUSH:
        wl.phase = PH_VERIFY;
        break;
    case PH_VERIFY:
        wl.passes++;
        wl_report(wl.passes == 1 || wl.passes == wl.stop_after);
        wl.cur_gen = (wl.cur_gen + 1) & GEN_MASK;
        if (!wl.cur_gen) wl.cur_gen = 1;
        wl.phase = PH_WRITE;
        break;
    case PH_READ_RO:
        wl.passes++;
        wl_report(wl.passes == 1 || wl.passes == wl.stop_after);
        break;
    }
    wl.cursor = 0;
    if (wl.stop_after && wl.passes >= wl.stop_after) {
        println("BLK done passes=%lu written=%lu gen=%u bad=%lu", wl.passes, wl.written_sectors,
                wl.phase == PH_READ_RO ? 0 : (wl.cur_gen - 1) & GEN_MASK, wl.bad);
        wl.active = 0;
    }
}

int vblk_workload_step(u64 deadline) {
    struct vblk *b = &blk0;
    if (!wl.active || b->broken) return 0;
    if (!blk_trylock(b)) return 0;
    for (;;) {
        wl_submit(b);
        virtq_kick(b->q);
        if (!wl.outstanding) {
            if (wl.phase == PH_FLUSH || wl.cursor >= wl.nblocks) wl_advance(b);
            if (!wl.active || clock_ns() >= deadline) break;
            continue;
        }
        if (clock_ns() >= deadline) break;
        u8 st;
        u64 c;
        if (!blk_reap(b, &st, &c)) {
            if (!blk_wait(b)) break;
            continue;
        }
        wl_complete(b, st, c);
    }
    /* drain: nothing of ours stays in flight while another CPU may take the device */
    while (wl.outstanding && !b->broken) {
        u8 st;
        u64 c;
        if (blk_reap(b, &st, &c)) wl_complete(b, st, c);
        else blk_wait(b);
    }
    if (wl.active && !wl.outstanding && wl.phase != PH_FLUSH && wl.cursor >= wl.nblocks) wl_advance(b);
    blk_unlock(b);
    if (b->broken) wl.active = 0;
    return 1;
}

int vblk_workload_start(const char *arg, char *err, int errlen) {
    struct vblk *b = &blk0;
    if (!vblk_dev) { format(err, errlen, "no virtio-blk device"); return 0; }
    if (b->broken) { format(err, errlen, "virtio-blk device broken"); return 0; }
    if (wl.active) { format(err, errlen, "a blk workload is already running"); return 0; }
    u64 mb = 0, passes = 0;
    if (*arg == ':') {
        arg++;
        if (!parse_u64(arg, &arg, &mb) || !mb) { format(err, errlen, "blk:MB[:PASSES] needs a size"); return 0; }
        if (*arg == ':' && (!parse_u64(arg + 1, &arg, &passes) || !passes)) {
            format(err, errlen, "blk:MB:PASSES needs a number of passes");
            return 0;
        }
    }
    if (*arg) { format(err, errlen, "trailing characters"); return 0; }
    u64 nblocks = b->capacity / BLOCK_SECTORS;
    if (mb && mb * 256 < nblocks) nblocks = mb * 256;
    if (!nblocks) { format(err, errlen, "disk smaller than 4 KiB"); return 0; }
    if (!wl.gen) { /* first start (a restart after a reboot starts from scratch anyway) */
        u64 gen = pool_alloc(ALIGN_UP(nblocks * 4, 4096));
        u64 bufs = gen ? pool_alloc((u64)WL_QD * WL_CHUNK_BLOCKS * 4096) : 0;
        if (!bufs) { format(err, errlen, "out of memory for %lu blocks", nblocks); return 0; }
        memset((void *)gen, 0, ALIGN_UP(nblocks * 4, 4096));
        wl.gen = (volatile u32 *)gen;
        for (int i = 0; i < WL_QD; i++) wl.bufs[i] = bufs + (u64)i * WL_CHUNK_BLOCKS * 4096;
        wl.table_blocks = nblocks;
    } else if (nblocks > wl.table_blocks) {
        format(err, errlen, "a restarted blk workload may not grow (%lu blocks)", wl.table_blocks);
        return 0;
    }
    wl.nblocks = nblocks;
    wl.stop_after = passes ? wl.passes + passes : 0;
    wl.buf_free = (1u << WL_QD) - 1;
    wl.cur_gen = wl.cur_gen ? wl.cur_gen : 1;
    wl.phase = b->ro ? PH_READ_RO : PH_WRITE;
    wl.cursor = 0;
    wl.outstanding = 0;
    wl.last_print_ns = clock_ns();
    __atomic_store_n(&wl.active, 1, __ATOMIC_RELEASE);
    if (b->ro) println("BLK ro sectors=%lu", nblocks * BLOCK_SECTORS); /* a read-only device: reads only */
    return 1;
}

/* ---------------------------------------------------------------- blkcheck */
static void blkcheck(struct vblk *b) {
    if (b->ro) { println("BLK ro"); return; }
    if (!wl.gen) { println("BLK ok verified=0"); return; }
    if (!check_buf && !(check_buf = pool_alloc((u64)CHECK_QD * CHECK_CHUNK_BLOCKS * 4096))) {
        println("ERROR blkcheck: out of memory");
        return;
    }
    blk_lock(b);
    u64 verified = 0, bad = 0, block = 0, outstanding = 0;
    u32 free_bufs = (1u << CHECK_QD) - 1;
    u64 bad_before = wl.bad, first_bad_before = wl.first_bad;
    wl.bad = 0; /* report_bad records the first bad sector of this check */
    while (!b->broken) {
        while (free_bufs && block < wl.table_blocks) {
            /* the next run of written blocks */
            while (block < wl.table_blocks && !(wl.gen[block] & GEN_MASK)) block++;
            if (block >= wl.table_blocks) break;
            u64 n = 1;
            while (n < CHECK_CHUNK_BLOCKS && block + n < wl.table_blocks && (wl.gen[block + n] & GEN_MASK)) n++;
            int bi = __builtin_ctz(free_bufs);
            u64 buf = check_buf + (u64)bi * CHECK_CHUNK_BLOCKS * 4096;
            if (blk_submit(b, T_IN, block * BLOCK_SECTORS, buf, (u32)(n * 4096), COOKIE(bi, block, n)) < 0) break;
            free_bufs &= ~(1u << bi);
            block += n;
            outstanding++;
        }
        virtq_kick(b->q);
        if (!outstanding) break;
        u8 st;
        u64 c;
        if (!blk_reap(b, &st, &c)) {
            blk_wait(b);
            continue;
        }
        outstanding--;
        int bi = COOKIE_BUF(c);
        free_bufs |= 1u << bi;
        if (st != S_OK) {
            println("BLK bad sector=%lu status=%u op=read src=blkcheck", COOKIE_BLOCK(c) * BLOCK_SECTORS, st);
            bad++;
            continue;
        }
        verify_chunk(check_buf + (u64)bi * CHECK_CHUNK_BLOCKS * 4096, COOKIE_BLOCK(c), COOKIE_N(c), "blkcheck",
                     &verified, &bad);
    }
    u64 first = wl.first_bad;
    wl.bad += bad_before;
    if (bad_before) wl.first_bad = first_bad_before;
    blk_unlock(b);
    if (b->broken) println("BLK bad sector=%lu why=timeout src=blkcheck", block * BLOCK_SECTORS);
    else if (bad) println("BLK bad sector=%lu bad_sectors=%lu verified=%lu src=blkcheck", first, bad, verified);
    else println("BLK ok verified=%lu", verified);
}

/* ---------------------------------------------------------------- blkbench */
#define BENCH_SEQ_REQ (128u * 1024)
#define BENCH_SEQ_QD 8
#define BENCH_RAND_REQ 4096u
#define BENCH_RAND_QD 32
#define BENCH_NS 2000000000ul
static u64 bench_buf;

/* Runs one access pattern for BENCH_NS; returns completed requests (elapsed time in *ns). */
static u64 bench_run(struct vblk *b, u32 type, int random, u32 req, int qd, u64 region_sectors, u64 *ns,
                     int *errors) {
    u64 t0 = clock_ns(), now = t0, done = 0, inflight = 0, pos = 0;
    u64 rnd = 0x2545f4914f6cdd1dul ^ t0;
    u64 units = region_sectors / (req / 512);
    while (!b->broken) {
        while (inflight < (u64)qd && now - t0 < BENCH_NS) {
            u64 unit;
            if (random) {
                rnd ^= rnd << 13;
                rnd ^= rnd >> 7;
                rnd ^= rnd << 17;
                unit = rnd % units;
            } else {
                unit = pos++ % units;
            }
            u64 slot = inflight; /* buffers are not checked: any of the qd buffers will do */
            if (blk_submit(b, type, unit * (req / 512), bench_buf + (slot % (u64)qd) * req, req, 0) < 0) break;
            inflight++;
        }
        virtq_kick(b->q);
        if (!inflight) break;
        u8 st;
        u64 c;
        if (!blk_reap(b, &st, &c)) {
            blk_wait(b);
            now = clock_ns();
            continue;
        }
        inflight--;
        done++;
        if (st != S_OK) (*errors)++;
        now = clock_ns();
    }
    *ns = clock_ns() - t0;
    return done;
}

static void blkbench(struct vblk *b) {
    if (!bench_buf && !(bench_buf = pool_alloc((u64)BENCH_SEQ_QD * BENCH_SEQ_REQ))) {
        println("ERROR blkbench: out of memory");
        return;
    }
    u64 region = b->capacity < (64ul << 11) ? b->capacity : (64ul << 11); /* sectors */
    region &= ~(u64)(BENCH_SEQ_REQ / 512 - 1);
    if (region < BENCH_SEQ_REQ / 512) { println("ERROR blkbench: disk too small"); return; }
    blk_lock(b);
    int errors = 0;
    u64 ns, n;
    u64 sw = 0, sr = 0, rw = 0, rr = 0; /* MB/s in tenths (bytes per microsecond = MB/s), IOPS */
    if (!b->ro) {
        n = bench_run(b, T_OUT, 0, BENCH_SEQ_REQ, BENCH_SEQ_QD, region, &ns, &errors);
        sw = n * BENCH_SEQ_REQ * 10ul / (ns / 1000ul + 1);
        if (b->flush) blk_sync(b, T_FLUSH, 0, 0, 0);
    }
    n = bench_run(b, T_IN, 0, BENCH_SEQ_REQ, BENCH_SEQ_QD, region, &ns, &errors);
    sr = n * BENCH_SEQ_REQ * 10ul / (ns / 1000ul + 1);
    if (!b->ro) {
        n = bench_run(b, T_OUT, 1, BENCH_RAND_REQ, BENCH_RAND_QD, region, &ns, &errors);
        rw = n * 1000000000ul / (ns + 1);
        if (b->flush) blk_sync(b, T_FLUSH, 0, 0, 0);
    }
    n = bench_run(b, T_IN, 1, BENCH_RAND_REQ, BENCH_RAND_QD, region, &ns, &errors);
    rr = n * 1000000000ul / (ns + 1);
    /* the pattern in the bench region is gone: forget those blocks (the workload rewrites them) */
    if (!b->ro && wl.gen)
        for (u64 k = 0; k < region / BLOCK_SECTORS && k < wl.table_blocks; k++) wl.gen[k] = 0;
    blk_unlock(b);
    println("BLKBENCH seq_write_mbps=%lu.%lu seq_read_mbps=%lu.%lu rand_write_iops=%lu rand_read_iops=%lu "
            "region_mib=%lu seq_qd=%d rand_qd=%d errors=%d ro=%d",
            sw / 10, sw % 10, sr / 10, sr % 10, rw, rr, region >> 11, BENCH_SEQ_QD, BENCH_RAND_QD, errors, b->ro);
}

/* ---------------------------------------------------------------- probe and commands */
void vblk_probe(const struct pci_dev *p) {
    if (nblk++) { /* one device is driven; the others are listed */
        println("VIRTIO dev=blk bdf=%02x:%02x.%x skipped (only the first virtio-blk device is driven)", p->bus, p->dev,
                p->fn);
        return;
    }
    struct vblk *b = &blk0;
    u64 want = (1ul << VIRTIO_BLK_F_RO) | (1ul << VIRTIO_BLK_F_FLUSH) | (1ul << VIRTIO_BLK_F_BLK_SIZE) |
               (1ul << VIRTIO_BLK_F_SEG_MAX) | (1ul << VIRTIO_F_INDIRECT_DESC) | (1ul << VIRTIO_F_EVENT_IDX);
    if (!vdev_init(&b->dev, p, VIRTIO_ID_BLK, want, 1)) return;
    b->q = b->dev.q[0];
    b->slots = (struct blk_slot *)pool_alloc((u64)b->q->size * sizeof(struct blk_slot));
    if (!b->slots) { println("VIRTIO dev=blk bad out-of-memory"); return; }
    b->capacity = vdev_cfg64(&b->dev, 0);
    b->blk_size = vdev_has(&b->dev, VIRTIO_BLK_F_BLK_SIZE) ? vdev_cfg32(&b->dev, 20) : 512;
    b->ro = vdev_has(&b->dev, VIRTIO_BLK_F_RO);
    b->flush = vdev_has(&b->dev, VIRTIO_BLK_F_FLUSH);
    b->indirect = vdev_has(&b->dev, VIRTIO_F_INDIRECT_DESC);
    vblk_dev = &b->dev;
    println("BLK capacity=%lu ro=%d flush=%d blk_size=%u indirect=%d event_idx=%d", b->capacity, b->ro, b->flush,
            b->blk_size, b->indirect, vdev_has(&b->dev, VIRTIO_F_EVENT_IDX));
    static char id[24] __attribute__((aligned(64)));
    memset(id, 0, sizeof id);
    int st = blk_sync(b, T_GET_ID, 0, (u64)id, 20);
    if (st == S_OK) {
        for (int i = 0; i < 20; i++)
            if (id[i] && (id[i] < 0x21 || id[i] > 0x7e)) id[i] = '_';
        println("BLK id=%s", id);
    }
}

int vblk_command(char *line) {
    int is_wl = !strncmp(line, "blk", 4) || str_starts(line, "blk:");
    if (!is_wl && strncmp(line, "blkcheck", 9) && strncmp(line, "blkbench", 9)) return 0;
    if (!vblk_dev) { println("ERROR %s: no virtio-blk device", line); return 1; }
    if (blk0.broken) { println("BLK bad device-broken"); return 1; }
    if (is_wl) {
        char err[100];
        int cpu = workload_count() % ncpus_online;
        if (!workload_start(line, cpu, err, sizeof err)) println("ERROR run %s: %s", line, err);
    } else if (line[3] == 'c') {
        blkcheck(&blk0);
    } else {
        blkbench(&blk0);
    }
    return 1;
}
