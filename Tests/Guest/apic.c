/*
 * checkguest: local APIC (timer, AP start-up through the ICR), IOAPIC routing of the UART. All MMIO from
 * user mode through the identity map (register bases, never 32-bit absolute displacements).
 */
#include "guest.h"

#define LAPIC_ID 0x20
#define LAPIC_TPR 0x80
#define LAPIC_SVR 0xf0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_LVT_LINT1 0x360
#define LAPIC_LVT_ERROR 0x370
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_CUR 0x390
#define LAPIC_TIMER_DIV 0x3e0
#define LVT_MASKED 0x10000
#define LVT_PERIODIC 0x20000

#define TIMER_HZ 100

int ncpus_online = 1;
static u32 timer_count; /* initial count for TIMER_HZ with divide-by-16 */

static u32 lapic_read(u32 reg) { return mmio_read32(lapic_base + reg); }
static void lapic_write(u32 reg, u32 v) { mmio_write32(lapic_base + reg, v); }

u32 lapic_id(void) { return lapic_read(LAPIC_ID) >> 24; }

void lapic_calibrate(void) {
    lapic_write(LAPIC_SVR, 0x100 | VEC_SPURIOUS);
    lapic_write(LAPIC_TIMER_DIV, 0x3);
    lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | VEC_TIMER);
    u64 t0 = clock_ns();
    lapic_write(LAPIC_TIMER_INIT, 0xffffffffu);
    while (clock_ns() - t0 < 20000000ul) cpu_relax();
    u32 cur = lapic_read(LAPIC_TIMER_CUR);
    u64 t1 = clock_ns();
    lapic_write(LAPIC_TIMER_INIT, 0);
    u64 ticks = 0xffffffffu - cur;
    u64 per_sec = ticks * 1000000000ul / (t1 - t0);
    timer_count = (u32)(per_sec / TIMER_HZ);
    if (timer_count < 1000) timer_count = 1000;
    println("LAPIC id=%u timer_hz=%d count=%u bus_khz=%lu", lapic_id(), TIMER_HZ, timer_count, per_sec * 16 / 1000);
}

void lapic_init_cpu(int cpu) {
    (void)cpu;
    lapic_write(LAPIC_SVR, 0x100 | VEC_SPURIOUS);
    lapic_write(LAPIC_TPR, 0);
    lapic_write(LAPIC_LVT_LINT0, LVT_MASKED);
    lapic_write(LAPIC_LVT_LINT1, 0x400); /* NMI delivery, unmasked, on every CPU (QEMU's `nmi` comes this way) */
    lapic_write(LAPIC_LVT_ERROR, LVT_MASKED);
    lapic_write(LAPIC_TIMER_DIV, 0x3);
    lapic_write(LAPIC_LVT_TIMER, LVT_PERIODIC | VEC_TIMER);
    lapic_write(LAPIC_TIMER_INIT, timer_count);
}

/* ---------------------------------------------------------------- IOAPIC */
static void ioapic_write(u32 reg, u32 v) {
    mmio_write32(acpi.ioapic_addr, reg);
    mmio_write32(acpi.ioapic_addr + 0x10, v);
}

void ioapic_route_uart(u32 dest) {
    if (!acpi.ioapic_addr) {
        println("WARN no IOAPIC: serial input is polled only");
        return;
    }
    u32 pin = acpi.uart_gsi - acpi.ioapic_gsi_base;
    u32 lo = VEC_UART; /* fixed, physical, edge, active high (ISA default) */
    u16 f = acpi.uart_gsi_flags;
    if ((f & 3) == 3) lo |= 1u << 13;        /* active low */
    if (((f >> 2) & 3) == 3) lo |= 1u << 15; /* level */
    ioapic_write(0x10 + 2 * pin + 1, dest << 24);
    ioapic_write(0x10 + 2 * pin, lo);
}

/* Any GSI on any IOAPIC of the MADT: lo = vector | (1 << 13 active low) | (1 << 15 level); unmasked,
 * fixed delivery, physical destination. Returns 0 if no IOAPIC serves the GSI. */
int ioapic_route(u32 gsi, u32 lo, u32 dest) {
    u64 addr;
    u32 base;
    if (!acpi_ioapic_for(gsi, &addr, &base)) return 0;
    u32 pin = gsi - base;
    mmio_write32(addr, 0x10 + 2 * pin + 1);
    mmio_write32(addr + 0x10, dest << 24);
    mmio_write32(addr, 0x10 + 2 * pin);
    mmio_write32(addr + 0x10, lo);
    return 1;
}

/* ---------------------------------------------------------------- AP start-up */
extern u8 kstacks[MAX_CPUS][KSTACK_SIZE];

static int icr_idle(void) {
    for (int i = 0; i < 100000; i++)
        if (!(lapic_read(LAPIC_ICR_LO) & (1u << 12))) return 1;
    return 0;
}

static void send_ipi(u32 apic_id, u32 lo) {
    lapic_write(LAPIC_ICR_HI, apic_id << 24);
    lapic_write(LAPIC_ICR_LO, lo);
    icr_idle();
}

static int wait_online(struct cpu *c, u64 ns) {
    u64 t0 = clock_ns();
    while (!__atomic_load_n(&c->online, __ATOMIC_ACQUIRE)) {
        if (clock_ns() - t0 > ns) return 0;
        cpu_relax();
    }
    return 1;
}

int smp_boot_aps(void) {
    memcpy((void *)AP_TRAMPOLINE, ap_tramp_start, (size_t)(ap_tramp_end - ap_tramp_start));
    u32 bsp = lapic_id();
    int n = acpi.ncpus_madt < MAX_CPUS ? acpi.ncpus_madt : MAX_CPUS;
    u64 t_start = clock_ns();
    for (int i = 0; i < n; i++) {
        u32 id = acpi.apic_ids[i];
        if (id == bsp) continue;
        if (id > 0xfe) {
            println("WARN cpu apic_id=%u needs x2APIC: not started", id);
            continue;
        }
        int idx = ncpus_online;
        struct cpu *c = cpu_struct(idx);
        memset(c, 0, sizeof *c);
        c->index = idx;
        c->apic_id = id;
        ap_boot_kstack = (u64)&kstacks[idx][KSTACK_SIZE];
        __atomic_store_n(&ap_boot_cpu, (u32)idx, __ATOMIC_RELEASE);

        send_ipi(id, 0x4500);          /* INIT, assert */
        delay_ns(10000000ul);
        send_ipi(id, 0x4600 | (AP_TRAMPOLINE >> 12)); /* SIPI */
        if (!wait_online(c, 10000000ul)) {
            send_ipi(id, 0x4600 | (AP_TRAMPOLINE >> 12));
            wait_online(c, 1000000000ul);
        }
        if (c->online) ncpus_online++;
        else println("WARN cpu apic_id=%u did not come online", id);
    }
    __atomic_store_n(&ap_boot_cpu, 0, __ATOMIC_RELEASE);
    println("SMP online=%d madt=%d bsp_apic_id=%u start_ms=%lu", ncpus_online, acpi.ncpus_madt, bsp,
            (clock_ns() - t_start) / 1000000);
    return ncpus_online;
}
