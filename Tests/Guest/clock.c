/*
 * checkguest: time. kvmclock (pvclock areas, one per CPU, read from user mode with the version protocol +
 * rdtsc) when the hypervisor offers it; otherwise the TSC with a frequency from CPUID or the PIT.
 */
#include "guest.h"

struct pvclock {
    volatile u32 version;
    u32 pad0;
    volatile u64 tsc_timestamp;
    volatile u64 system_time;
    volatile u32 tsc_to_system_mul;
    volatile s8 tsc_shift;
    volatile u8 flags;
    u8 pad[2];
} __attribute__((packed));

int clock_is_kvmclock;
u64 clock_tsc_khz;
static u32 kvmclock_msr;
static struct pvclock pvclock_area[MAX_CPUS] __attribute__((aligned(64)));
static u64 tsc_base;
static u64 tsc_mult; /* ns per TSC tick, 32.32 fixed point */

static u32 pit_read_ch0(void) {
    outb(0x43, 0x00); /* latch channel 0 */
    u32 lo = inb(0x40);
    u32 hi = inb(0x40);
    return lo | (hi << 8);
}

/* TSC against PIT channel 0 (mode 2, full 16-bit period; its IRQ stays masked): no port 0x61 needed, so it
 * also works where there is no PC speaker port (microvm). 50 ms; every sample is a few syscalls (~40 us). */
static u64 pit_calibrate_khz(void) {
    outb(0x43, 0x34); /* channel 0, lobyte/hibyte, mode 2, binary */
    outb(0x40, 0);
    outb(0x40, 0); /* 65536 */
    u32 prev = pit_read_ch0();
    if (prev == 0xffff && pit_read_ch0() == 0xffff) return 0; /* nothing there */
    u64 t0 = rdtsc(), t1 = t0, ticks = 0;
    for (int i = 0; i < 100000 && ticks < 59659; i++) { /* 1193182 Hz * 50 ms */
        u32 cur = pit_read_ch0();
        t1 = rdtsc();
        ticks += (prev - cur) & 0xffff;
        prev = cur;
    }
    if (ticks < 59659) return 0;
    return (t1 - t0) * 1193182ul / ticks / 1000ul;
}

/* Last resort: KVM's LAPIC timer counts at 1 GHz (divide-by-1). */
static u64 lapic_calibrate_khz(void) {
    u64 base = 0xfee00000;
    mmio_write32(base + 0x3e0, 0xb);             /* divide by 1 */
    mmio_write32(base + 0x320, 0x10000 | VEC_TIMER); /* masked one-shot */
    mmio_write32(base + 0x380, 0xffffffffu);
    u64 t0 = rdtsc();
    while (0xffffffffu - mmio_read32(base + 0x390) < 50000000u) cpu_relax();
    u64 t1 = rdtsc();
    u32 n = 0xffffffffu - mmio_read32(base + 0x390);
    mmio_write32(base + 0x380, 0);
    return (t1 - t0) * 1000000ul / n;
}

void clock_init_bsp(void) {
    u32 a, b, c, d;
    sys_cpuid(0x40000000, 0, &a, &b, &c, &d);
    u32 hv_max = a;
    int is_kvm = b == 0x4b4d564b && c == 0x564b4d56 && d == 0x4d; /* "KVMKVMKVM\0\0\0" */
    if (is_kvm && hv_max >= 0x40000001) {
        sys_cpuid(0x40000001, 0, &a, &b, &c, &d);
        if (a & (1u << 3)) kvmclock_msr = 0x4b564d01;      /* KVM_FEATURE_CLOCKSOURCE2 */
        else if (a & (1u << 0)) kvmclock_msr = 0x12;       /* KVM_FEATURE_CLOCKSOURCE */
    }
    char val[16];
    if (cmdline_get("clock", val, sizeof val) && !strncmp(val, "tsc", 4)) kvmclock_msr = 0;
    if (kvmclock_msr) {
        clock_is_kvmclock = 1;
        clock_init_cpu(0);
        struct pvclock *p = &pvclock_area[0];
        /* tsc kHz from the pvclock scale: ns = tsc * mul >> (32 - shift) */
        u64 mul = p->tsc_to_system_mul;
        int shift = p->tsc_shift;
        u64 khz = (1000000ul << 32) / mul;
        clock_tsc_khz = shift >= 0 ? khz >> shift : khz << -shift;
        println("CLOCKSRC kvmclock msr=0x%x tsc_khz=%lu stable=%d", kvmclock_msr, clock_tsc_khz, p->flags & 1);
        return;
    }
    const char *how = "pit";
    if (hv_max >= 0x40000010) {
        sys_cpuid(0x40000010, 0, &a, &b, &c, &d);
        if (a) { clock_tsc_khz = a; how = "cpuid-40000010"; }
    }
    if (!clock_tsc_khz) {
        sys_cpuid(0, 0, &a, &b, &c, &d);
        u32 max = a;
        if (max >= 0x15) {
            sys_cpuid(0x15, 0, &a, &b, &c, &d);
            if (a && b && c) { clock_tsc_khz = (u64)c * b / a / 1000; how = "cpuid-15"; }
        }
        if (!clock_tsc_khz && max >= 0x16) {
            sys_cpuid(0x16, 0, &a, &b, &c, &d);
            if (a & 0xffff) { clock_tsc_khz = (u64)(a & 0xffff) * 1000; how = "cpuid-16"; }
        }
    }
    if (!clock_tsc_khz) clock_tsc_khz = pit_calibrate_khz();
    if (!clock_tsc_khz) {
        clock_tsc_khz = lapic_calibrate_khz();
        how = "lapic-1ghz";
    }
    if (!clock_tsc_khz) clock_tsc_khz = 1000000; /* nothing worked: assume 1 GHz rather than divide by 0 */
    tsc_mult = (1000000ul << 32) / clock_tsc_khz;
    tsc_base = rdtsc();
    println("CLOCKSRC tsc tsc_khz=%lu from=%s", clock_tsc_khz, how);
}

void clock_init_cpu(int cpu) {
    if (!clock_is_kvmclock) return;
    struct pvclock *p = &pvclock_area[cpu];
    sys_wrmsr(kvmclock_msr, (u64)p | 1);
    for (int i = 0; i < 1000000 && !p->version; i++) cpu_relax();
}

u64 clock_ns(void) {
    if (!clock_is_kvmclock) {
        u64 d = rdtsc() - tsc_base;
        return (u64)(((unsigned __int128)d * tsc_mult) >> 32) + 1; /* never 0: 0 means "unset" */
    }
    struct pvclock *p = &pvclock_area[this_cpu()->index];
    u32 v;
    u64 ns;
    do {
        v = p->version;
        barrier();
        u64 tsc = rdtsc();
        u64 delta = tsc - p->tsc_timestamp;
        s8 shift = p->tsc_shift;
        if (shift < 0) delta >>= -shift;
        else delta <<= shift;
        ns = p->system_time + (u64)(((unsigned __int128)delta * p->tsc_to_system_mul) >> 32);
        barrier();
    } while ((v & 1) || v != p->version);
    return ns;
}

void delay_ns(u64 ns) {
    u64 end = clock_ns() + ns;
    while (clock_ns() < end) cpu_relax();
}
