/*
 * checkguest: workloads (user mode, native speed). Memory workloads own a region of pool pages; every page
 * holds a pattern that is a function of (global page number, generation), with the generation recorded in
 * the page itself and in a per-page generation table, so each page verifies on its own.
 *
 * Page layout (512 little-endian u64 words):
 *   w[0] = PAGE_MAGIC ^ page      w[1] = generation      w[2..511] = xorshift64 stream seeded by (page, gen)
 * Generation table entry (u32): bits 0..29 generation (0 = never written), bit 30 KNOWN_BAD (reported once),
 * bit 31 BUSY (being rewritten; readers retry).
 */
#include "guest.h"
#include "virtio.h"

#define PAGE_WORDS 512
#define PAGE_MAGIC 0x434b475545535421ul /* "!TSEUGKC" */
#define GEN_MASK 0x3fffffffu
#define GEN_KNOWN_BAD 0x40000000u
#define GEN_BUSY 0x80000000u
#define MAX_WL 32
#define MAX_BAD_LINES 16 /* CHECK bad lines printed per workload (the count keeps going) */

enum { WL_IDLE, WL_COUNTER, WL_MEMCHECK, WL_DIRTY, WL_POWEROFF, WL_REBOOT, WL_BLK };
static const char *const kind_names[] = { "idle", "counter", "memcheck", "dirty", "poweroff", "reboot", "blk" };

struct workload {
    int id, kind, cpu;
    char spec[48];
    /* memory region */
    u64 base, npages, first_page;
    volatile u32 *gen;
    /* progress */
    int filled;
    u64 cursor, passes, bad, bad_lines;
    /* dirty: rate control and per-second report */
    u64 rate_bps, t0_ns, done_pages;
    u64 sec_start_ns, sec_pages, sec_n;
    u64 total_pages_written;
};

static struct workload wls[MAX_WL];
static volatile int nwls;
static u64 total_pages; /* pages handed out so far: next region's first_page */
static spinlock_t wl_lock;

int workload_count(void) { return nwls; }

/* ---------------------------------------------------------------- the pattern */
#define PAGE_SALT 1

static void fill_page(u64 *p, u64 page, u64 gen) { pattern_fill(p, PAGE_WORDS, PAGE_MAGIC, page, gen, PAGE_SALT); }

struct mismatch {
    int words;    /* how many words differ */
    int first;    /* index of the first */
    u64 expect, got;
};

static int verify_page(const volatile u64 *p, u64 page, u64 gen, struct mismatch *m) {
    int bad = 0, first = -1;
    u64 e0 = PAGE_MAGIC ^ page;
    u64 s = pattern_seed(page, gen, PAGE_SALT);
    u64 exp = e0, got = p[0];
    if (got != e0) { bad++; first = 0; }
    if (p[1] != gen) {
        if (first < 0) { first = 1; exp = gen; got = p[1]; }
        bad++;
    }
    for (int i = 2; i < PAGE_WORDS; i++) {
        s = pattern_next(s);
        u64 w = p[i];
        if (w != s) {
            if (first < 0) { first = i; exp = s; got = w; }
            bad++;
        }
    }
    if (m) {
        m->words = bad;
        m->first = first;
        m->expect = exp;
        m->got = got;
    }
    return bad;
}

static u64 *page_ptr(struct workload *w, u64 idx) { return (u64 *)(w->base + idx * 4096); }

static void report_bad(struct workload *w, u64 idx, u32 gen, const struct mismatch *m, u64 bad_pages,
                       const char *src) {
    println("CHECK bad page=%lu bad_pages=%lu wl=%d gpa=0x%lx word=%d words=%d expect=0x%016lx got=0x%016lx gen=%u src=%s",
            w->first_page + idx, bad_pages, w->id, w->base + idx * 4096, m->first, m->words, m->expect, m->got, gen,
            src);
}

/* Verifies page idx from any CPU while its owner may be rewriting it (seqlock on the generation entry).
 * Returns 1 bad, 0 good, -1 never written. */
static int check_page(struct workload *w, u64 idx, struct mismatch *m, u32 *gen_out) {
    for (int tries = 0; tries < 1000; tries++) {
        u32 g1 = w->gen[idx];
        if (g1 & GEN_BUSY) { cpu_relax(); continue; }
        if (!(g1 & GEN_MASK)) return -1;
        barrier();
        int bad = verify_page(page_ptr(w, idx), w->first_page + idx, g1 & GEN_MASK, m) != 0;
        barrier();
        if (w->gen[idx] == g1) {
            *gen_out = g1 & GEN_MASK;
            return bad;
        }
    }
    return -1;
}

static void write_page(struct workload *w, u64 idx, u32 gen) {
    w->gen[idx] = gen | GEN_BUSY;
    barrier();
    fill_page(page_ptr(w, idx), w->first_page + idx, gen);
    barrier();
    w->gen[idx] = gen;
    w->total_pages_written++;
}

static u64 region_sum(struct workload *w) {
    u64 sum = 0;
    for (u64 i = 0; i < w->npages; i++) {
        const u64 *p = page_ptr(w, i);
        for (int k = 0; k < PAGE_WORDS; k++) sum += p[k];
    }
    return sum;
}

/* Fills pages (generation 1) until the deadline; returns 1 when the region is complete. */
static int fill_step(struct workload *w, u64 deadline) {
    while (w->cursor < w->npages) {
        for (int k = 0; k < 64 && w->cursor < w->npages; k++, w->cursor++) write_page(w, w->cursor, 1);
        if (clock_ns() >= deadline) break;
    }
    if (w->cursor < w->npages) return 0;
    w->cursor = 0;
    w->filled = 1;
    return 1;
}

/* ---------------------------------------------------------------- workload kinds */
static int step_memcheck(struct workload *w, u64 deadline) {
    if (!w->filled) {
        if (fill_step(w, deadline)) {
            println("MEMSUM pages=%lu sum=0x%016lx wl=%d first_page=%lu", w->npages, region_sum(w), w->id,
                    w->first_page);
            w->sec_start_ns = clock_ns();
        }
        return 1;
    }
    for (;;) {
        for (int k = 0; k < 64; k++) {
            u64 idx = w->cursor;
            u32 g = w->gen[idx];
            struct mismatch m;
            if (verify_page(page_ptr(w, idx), w->first_page + idx, g & GEN_MASK, &m) && !(g & GEN_KNOWN_BAD)) {
                w->gen[idx] = g | GEN_KNOWN_BAD;
                w->bad++;
                if (w->bad_lines++ < MAX_BAD_LINES) report_bad(w, idx, g & GEN_MASK, &m, w->bad, "memcheck");
            }
            if (++w->cursor == w->npages) {
                w->cursor = 0;
                w->passes++;
            }
        }
        u64 now = clock_ns();
        if (now - w->sec_start_ns >= 1000000000ul) {
            w->sec_n++;
            println("MEMCHECK sec=%lu passes=%lu bad=%lu pages=%lu wl=%d", w->sec_n, w->passes, w->bad, w->npages,
                    w->id);
            w->sec_start_ns += 1000000000ul;
            if (now - w->sec_start_ns >= 1000000000ul) w->sec_start_ns = now;
        }
        if (now >= deadline) return 1;
    }
}

static void dirty_report(struct workload *w, u64 now) {
    u64 el = now - w->sec_start_ns;
    if (el < 1000000000ul) return;
    /* MiB/s with one decimal: pages * 4096 * 10 / 2^20 / seconds */
    u64 tenths = w->sec_pages * 4096ul * 10ul * 1000000ul / (el / 1000ul) / (1ul << 20);
    w->sec_n++;
    println("DIRTY sec=%lu rate=%lu.%lu bad=%lu pages=%lu written=%lu wl=%d", w->sec_n, tenths / 10, tenths % 10, w->bad,
            w->npages, w->total_pages_written, w->id);
    w->sec_pages = 0;
    w->sec_start_ns = now;
}

static int step_dirty(struct workload *w, u64 deadline) {
    if (!w->filled) {
        if (fill_step(w, deadline)) {
            u64 now = clock_ns();
            w->t0_ns = now;
            w->done_pages = 0;
            w->sec_start_ns = now;
            w->sec_pages = 0;
            println("DIRTY-START pages=%lu rate_mib=%lu wl=%d", w->npages, w->rate_bps >> 20, w->id);
        }
        return 1;
    }
    int busy = 0;
    for (;;) {
        u64 now = clock_ns();
        dirty_report(w, now);
        u64 allowed = ~0ul;
        if (w->rate_bps) {
            u64 el = now - w->t0_ns;
            allowed = (u64)(((unsigned __int128)el * w->rate_bps) / 1000000000ul / 4096ul);
            u64 slack = w->rate_bps / 4096 + 16; /* more than a second behind (a pause): forget the backlog */
            if (allowed > w->done_pages + slack) {
                w->done_pages = allowed - slack / 4;
            }
        }
        if (w->done_pages >= allowed || now >= deadline) return busy;
        busy = 1;
        for (int k = 0; k < 16 && w->done_pages < allowed; k++) {
            u64 idx = w->cursor;
            u32 g = w->gen[idx] & GEN_MASK;
            struct mismatch m;
            if (verify_page(page_ptr(w, idx), w->first_page + idx, g, &m)) {
                w->bad++;
                if (w->bad_lines++ < MAX_BAD_LINES) report_bad(w, idx, g, &m, w->bad, "dirty");
            }
            u32 ng = (g + 1) & GEN_MASK;
            write_page(w, idx, ng ? ng : 1);
            if (++w->cursor == w->npages) w->cursor = 0;
            w->done_pages++;
            w->sec_pages++;
        }
    }
}

static int step_counter(struct cpu *c, u64 deadline) {
    do {
        for (int i = 0; i < (1 << 20); i++) c->counter++;
    } while (clock_ns() < deadline);
    return 1;
}

/* Runs one workload of this CPU for at most slice_ns; returns 0 when none had anything to do. */
int workload_step(struct cpu *c, u64 slice_ns) {
    int n = __atomic_load_n(&c->nwl, __ATOMIC_ACQUIRE);
    if (!n) return 0;
    int busy = 0;
    for (int tries = 0; tries < n && !busy; tries++) {
        struct workload *w = c->wl[c->next_wl % n];
        c->next_wl = (c->next_wl + 1) % n;
        u64 deadline = clock_ns() + slice_ns;
        switch (w->kind) {
        case WL_COUNTER: busy = step_counter(c, deadline); break;
        case WL_MEMCHECK: busy = step_memcheck(w, deadline); break;
        case WL_DIRTY: busy = step_dirty(w, deadline); break;
        case WL_BLK: busy = vblk_workload_step(deadline); break;
        case WL_POWEROFF:
            println("POWEROFF by=workload");
            acpi_poweroff();
        case WL_REBOOT:
            println("REBOOT by=workload");
            acpi_reboot();
        default: break;
        }
    }
    return busy;
}

/* ---------------------------------------------------------------- starting workloads */
static int parse_mb(const char **p, u64 *out) {
    if (**p != ':') return 0;
    (*p)++;
    return parse_u64(*p, p, out);
}

struct workload *workload_start(const char *spec, int cpu, char *err, int errlen) {
    int kind;
    u64 mb = 0, rate = 0;
    const char *p = spec;
    if (str_starts(p, "idle") || str_starts(p, "ctl")) { kind = WL_IDLE; p += p[0] == 'i' ? 4 : 3; }
    else if (str_starts(p, "counter")) { kind = WL_COUNTER; p += 7; }
    else if (str_starts(p, "memcheck")) {
        kind = WL_MEMCHECK;
        p += 8;
        if (!parse_mb(&p, &mb) || !mb) { format(err, errlen, "memcheck:MB needs a size"); return NULL; }
    } else if (str_starts(p, "dirty")) {
        kind = WL_DIRTY;
        p += 5;
        if (!parse_mb(&p, &mb) || !mb) { format(err, errlen, "dirty:MB:RATE needs a size"); return NULL; }
        if (*p == ':' && !parse_mb(&p, &rate)) { format(err, errlen, "dirty:MB:RATE: bad rate"); return NULL; }
    } else if (str_starts(p, "poweroff")) { kind = WL_POWEROFF; p += 8; }
    else if (str_starts(p, "reboot")) { kind = WL_REBOOT; p += 6; }
    else if (str_starts(p, "blk") && (p[3] == ':' || !p[3])) { kind = WL_BLK; p += 3; }
    else { format(err, errlen, "unknown workload"); return NULL; }
    if (kind == WL_BLK) { /* blk or blk:MB: checked (and its state set up) by the driver */
        if (!vblk_workload_start(p, err, errlen)) return NULL;
        p += strlen(p);
    }
    if (*p) { format(err, errlen, "trailing characters"); return NULL; }
    if (cpu < 0 || cpu >= ncpus_online) cpu = 0;
    struct cpu *c = cpu_struct(cpu);

    spin_lock(&wl_lock);
    if (nwls >= MAX_WL || c->nwl >= MAX_WL_PER_CPU) {
        spin_unlock(&wl_lock);
        format(err, errlen, "too many workloads");
        return NULL;
    }
    struct workload *w = &wls[nwls];
    memset(w, 0, sizeof *w);
    w->id = nwls;
    w->kind = kind;
    w->cpu = cpu;
    int k = 0;
    for (; spec[k] && k < (int)sizeof w->spec - 1; k++) w->spec[k] = spec[k];
    w->spec[k] = 0;
    if (kind == WL_MEMCHECK || kind == WL_DIRTY) {
        u64 npages = mb * 256;
        u64 gen_bytes = ALIGN_UP(npages * 4, 4096);
        u64 gen = pool_alloc(gen_bytes);
        u64 base = gen ? pool_alloc(npages * 4096) : 0;
        if (!base) {
            spin_unlock(&wl_lock);
            format(err, errlen, "out of memory (%lu KiB free)", pool_free_bytes() / 1024);
            return NULL;
        }
        memset((void *)gen, 0, gen_bytes);
        w->gen = (volatile u32 *)gen;
        w->base = base;
        w->npages = npages;
        w->first_page = total_pages;
        total_pages += npages;
        w->rate_bps = rate << 20;
    }
    nwls++;
    spin_unlock(&wl_lock);

    println("WORKLOAD id=%d name=%s cpu=%d first_page=%lu pages=%lu base=0x%lx", w->id, w->spec, cpu, w->first_page,
            w->npages, w->base);
    int slot = c->nwl;
    c->wl[slot] = w;
    __atomic_store_n(&c->nwl, slot + 1, __ATOMIC_RELEASE);
    return w;
}

void workloads_start_from_cmdline(const char *spec) {
    char one[64];
    const char *p = spec;
    while (*p) {
        int n = 0;
        while (*p && *p != ',') {
            if (n < (int)sizeof one - 1) one[n++] = *p;
            p++;
        }
        one[n] = 0;
        if (*p == ',') p++;
        if (!n) continue;
        char err[100];
        int cpu = nwls % ncpus_online;
        if (!workload_start(one, cpu, err, sizeof err)) println("ERROR workload %s: %s", one, err);
    }
}

/* ---------------------------------------------------------------- commands */
void workloads_check(void) {
    u64 pages = 0, bad_pages = 0;
    struct workload *fw = NULL;
    u64 fidx = 0;
    u32 fgen = 0;
    struct mismatch fm = { 0, 0, 0, 0 };
    for (int i = 0; i < nwls; i++) {
        struct workload *w = &wls[i];
        for (u64 idx = 0; idx < w->npages; idx++) {
            struct mismatch m;
            u32 g;
            int r = check_page(w, idx, &m, &g);
            if (r < 0) continue;
            pages++;
            if (r) {
                if (!bad_pages) { fw = w; fidx = idx; fgen = g; fm = m; }
                bad_pages++;
            }
        }
    }
    if (!bad_pages) println("CHECK ok pages=%lu", pages);
    else report_bad(fw, fidx, fgen, &fm, bad_pages, "cmd");
}

void workloads_sum(void) {
    u64 pages = 0, sum = 0;
    for (int i = 0; i < nwls; i++) {
        pages += wls[i].npages;
        sum += region_sum(&wls[i]);
    }
    println("MEMSUM pages=%lu sum=0x%016lx wl=all", pages, sum);
}

void workloads_corrupt(u64 page) {
    for (int i = 0; i < nwls; i++) {
        struct workload *w = &wls[i];
        if (w->npages && page >= w->first_page && page < w->first_page + w->npages) {
            u64 idx = page - w->first_page;
            volatile u8 *b = (volatile u8 *)page_ptr(w, idx) + 2048;
            *b ^= 0x5a;
            println("CORRUPT page=%lu gpa=0x%lx offset=2048 wl=%d", page, w->base + idx * 4096, w->id);
            return;
        }
    }
    println("ERROR corrupt: no workload page %lu", page);
}

void workloads_stats(char *buf, int len) {
    int n = format(buf, len, "workloads=%d", nwls);
    for (int i = 0; i < nwls && n < len; i++) {
        struct workload *w = &wls[i];
        n += format(buf + n, len - n, " wl%d=%s@%d:%s:bad=%lu", w->id, kind_names[w->kind], w->cpu,
                    w->npages ? (w->filled ? "run" : "fill") : "-", w->bad);
    }
}
