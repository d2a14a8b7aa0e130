/*
 * checkguest: memory map (from hvm_start_info), RAM size, identity map above 4 GiB, and the pool that
 * workload regions are carved from (RAM above the kernel image, never low memory).
 */
#include "guest.h"

#define MAX_HIGH_GIB 60 /* RAM mapped up to 64 GiB */

struct memmap_entry memmap[MAX_MEMMAP];
int memmap_count;
u64 mem_kib;

struct range {
    u64 start, end;
};
static struct range pool[MAX_MEMMAP];
static int npool;
static u64 pd_high[MAX_HIGH_GIB][512] __attribute__((aligned(4096)));
static int n_pd_high;

static void map_gib(u64 gib) {
    if (gib >= 512 || pdpt_low[gib]) return;
    if (n_pd_high >= MAX_HIGH_GIB) return;
    u64 *pd = pd_high[n_pd_high++];
    for (u64 i = 0; i < 512; i++) pd[i] = ((gib << 30) + (i << 21)) | 0x87;
    __atomic_store_n(&pdpt_low[gib], (u64)pd | 7, __ATOMIC_RELEASE);
}

static void pool_add(u64 start, u64 end) {
    start = ALIGN_UP(start, 4096);
    end &= ~4095ul;
    if (end <= start || npool >= MAX_MEMMAP) return;
    pool[npool].start = start;
    pool[npool].end = end;
    npool++;
}

void mem_init(void) {
    if (!memmap_count) {
        println("WARN no memory map: using 1 MiB..64 MiB");
        memmap[0] = (struct memmap_entry){ 0x100000, 63ul << 20, 1, 0 };
        memmap_count = 1;
    }
    u64 ram = 0, total = 0, low_end = 0;
    int high_ram = 0;
    for (int i = 0; i < memmap_count; i++) {
        struct memmap_entry *e = &memmap[i];
        if (!e->size) continue;
        println("E820 0x%016lx-0x%016lx type=%u", e->addr, e->addr + e->size - 1, e->type);
        if (e->type != 1) continue;
        ram += e->size;
        /* firmware carves its tables out of the top of a RAM range and marks them reserved right after it
         * (SeaBIOS under q35: 128 KiB below the end of low RAM): those ranges are RAM the user configured */
        u64 end = e->addr + e->size;
        for (int again = 1; again;) {
            again = 0;
            for (int j = 0; j < memmap_count; j++) {
                struct memmap_entry *f = &memmap[j];
                if (f->size && f->addr == end && f->type >= 2 && f->type <= 4 && end < (4ul << 30)) {
                    end += f->size;
                    again = 1;
                }
            }
        }
        total += end - e->addr;
        if (e->addr < 0x100000 && end > low_end) low_end = end;
        if (end > 0x100000) high_ram = 1;
    }
    /* the legacy hole 640K..1M counts as RAM when RAM lies on both sides (so -m 256 reads 262144 KiB) */
    if (low_end && low_end < 0x100000 && high_ram) total += 0x100000 - low_end;
    mem_kib = total / 1024;
    /* identity-map RAM above 4 GiB (the boot code mapped 0..4 GiB) */
    for (int i = 0; i < memmap_count; i++) {
        struct memmap_entry *e = &memmap[i];
        if (e->type != 1) continue;
        u64 end = e->addr + e->size;
        for (u64 g = e->addr >> 30; (g << 30) < end; g++)
            if (g >= 4) map_gib(g);
    }
    if (n_pd_high) sys_flush_tlb();

    /* the pool: RAM above the image (2 MiB aligned), only where it is mapped */
    u64 floor = ALIGN_UP((u64)__image_end, 0x200000);
    u64 ceil = (4ul + MAX_HIGH_GIB) << 30;
    for (int i = 0; i < memmap_count; i++) {
        struct memmap_entry *e = &memmap[i];
        if (e->type != 1) continue;
        u64 s = e->addr, t = e->addr + e->size;
        if (s < floor) s = floor;
        if (t > ceil) t = ceil;
        pool_add(s, t);
    }
    println("MEM mem_kib=%lu ram_kib=%lu pool_kib=%lu image_end=0x%lx high_gib_mapped=%d", mem_kib, ram / 1024,
            pool_free_bytes() / 1024, (u64)__image_end, n_pd_high);
}

/* ---------------------------------------------------------------- device MMIO (PCI BARs)
 * Maps [addr, addr + len) uncached (PWT|PCD, 2 MiB user pages) wherever it is: in the 32-bit hole the boot
 * map's write-back PDEs are replaced, above 4 GiB page-directory pages (and page-directory-pointer pages
 * above 512 GiB) are taken from a small static set. Called before the APs start (they load CR3 afresh). */
#define MMIO_PT_PAGES 24
#define PDE_MMIO 0x9ful /* present | writable | user | PWT | PCD | 2 MiB */
#define PT_ADDR(e) ((e) & 0x000ffffffffff000ul)
static u64 mmio_pt[MMIO_PT_PAGES][512] __attribute__((aligned(4096)));
static int n_mmio_pt;

static u64 *mmio_pt_alloc(void) {
    if (n_mmio_pt >= MMIO_PT_PAGES) return NULL;
    u64 *p = mmio_pt[n_mmio_pt++];
    memset(p, 0, 4096);
    return p;
}

int mmio_map(u64 addr, u64 len) {
    if (!len) return 1;
    u64 end = addr + len;
    if (end < addr || end > (1ul << 47)) return 0; /* identity mapping: lower canonical half only */
    for (u64 a = addr & ~0x1ffffful; a < end; a += 0x200000) {
        u64 *pdpt;
        u64 i4 = a >> 39, i3 = (a >> 30) & 511, i2 = (a >> 21) & 511;
        if (!(pml4[i4] & 1)) {
            u64 *n = mmio_pt_alloc();
            if (!n) return 0;
            __atomic_store_n(&pml4[i4], (u64)n | 7, __ATOMIC_RELEASE);
        }
        pdpt = (u64 *)PT_ADDR(pml4[i4]);
        if (!(pdpt[i3] & 1)) {
            u64 *n = mmio_pt_alloc();
            if (!n) return 0;
            __atomic_store_n(&pdpt[i3], (u64)n | 7, __ATOMIC_RELEASE);
        }
        u64 *pd = (u64 *)PT_ADDR(pdpt[i3]);
        pd[i2] = a | PDE_MMIO;
    }
    sys_flush_tlb();
    return 1;
}

static spinlock_t pool_lock;

u64 pool_alloc(u64 bytes) {
    bytes = ALIGN_UP(bytes, 4096);
    u64 r = 0;
    spin_lock(&pool_lock);
    for (int i = 0; i < npool; i++) {
        if (pool[i].end - pool[i].start >= bytes) {
            r = pool[i].start;
            pool[i].start += bytes;
            break;
        }
    }
    spin_unlock(&pool_lock);
    return r;
}

u64 pool_free_bytes(void) {
    u64 n = 0;
    for (int i = 0; i < npool; i++) n += pool[i].end - pool[i].start;
    return n;
}
