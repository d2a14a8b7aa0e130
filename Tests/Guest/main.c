/*
 * checkguest: user-mode (CPL3) main program. The BSP discovers the platform, starts the APs, prints
 * GUEST-BOOTED, starts the workloads and then loops: TICK once a second, serial commands, workload slices.
 * APs loop over their workloads (or halt until the next timer interrupt).
 */
#include "guest.h"
#include "virtio.h"

#define SLICE_NS 5000000ul /* a workload runs at most this long before the loop looks around */

struct hvm_start_info {
    u32 magic;
    u32 version;
    u32 flags;
    u32 nr_modules;
    u64 modlist_paddr;
    u64 cmdline_paddr;
    u64 rsdp_paddr;
    u64 memmap_paddr;
    u32 memmap_entries;
    u32 reserved;
};
#define HVM_START_MAGIC 0x336ec578

u64 boot_ns;
u64 clockbound_ns = 1500000000ul;
char cmdline[CMDLINE_MAX];
static struct hvm_start_info start_info;

/* State that must survive snapshot/restore and migration: it lives in guest memory like everything else. */
static u64 tick_n;
static u64 next_tick_ns;
static char inbuf[256];
static int inlen;

const char *cmdline_get(const char *key, char *out, int outlen) {
    size_t klen = strlen(key);
    const char *p = cmdline;
    while (*p) {
        while (*p == ' ') p++;
        if (!strncmp(p, key, klen) && p[klen] == '=') {
            p += klen + 1;
            int n = 0;
            while (*p && *p != ' ' && n < outlen - 1) out[n++] = *p++;
            out[n] = 0;
            return out;
        }
        while (*p && *p != ' ') p++;
    }
    return NULL;
}

static void zero_bss(void) {
    for (u64 *p = (u64 *)__bss_start; p < (u64 *)__bss_end; p++) *p = 0;
}

static void copy_start_info(void) {
    const struct hvm_start_info *si = (const struct hvm_start_info *)(u64)boot_start_info;
    if (!si || si->magic != HVM_START_MAGIC) return;
    start_info = *si;
    if (start_info.cmdline_paddr) {
        const char *s = (const char *)start_info.cmdline_paddr;
        int n = 0;
        while (s[n] && n < CMDLINE_MAX - 1) {
            cmdline[n] = s[n];
            n++;
        }
        cmdline[n] = 0;
    }
    if (start_info.version >= 1 && start_info.memmap_paddr) {
        const struct memmap_entry *m = (const struct memmap_entry *)start_info.memmap_paddr;
        u32 n = start_info.memmap_entries;
        if (n > MAX_MEMMAP) n = MAX_MEMMAP;
        for (u32 i = 0; i < n; i++) memmap[i] = m[i];
        memmap_count = (int)n;
    }
}

/* ---------------------------------------------------------------- clock check and TICK */
static void clock_check(struct cpu *c, u64 now) {
    u64 last = c->last_clock_ns;
    c->last_clock_ns = now;
    if (!last) return;
    if (now < last) {
        println("CLOCK jump_ms=-%lu cpu=%d back_ns=%lu", (last - now + 999999) / 1000000, c->index, last - now);
    } else if (now - last > clockbound_ns) {
        println("CLOCK jump_ms=+%lu cpu=%d bound_ms=%lu", (now - last) / 1000000, c->index, clockbound_ns / 1000000);
    }
}

static int join_u64(char *buf, int len, u64 (*get)(int)) {
    int n = 0;
    for (int i = 0; i < ncpus_online && n < len; i++) n += format(buf + n, len - n, i ? ",%lu" : "%lu", get(i));
    return n;
}
static u64 get_timer_irqs(int i) { return irq_counters_of(i)->timer; }
static u64 get_nmis(int i) { return irq_counters_of(i)->nmi; }
static u64 get_counter(int i) { return cpu_struct(i)->counter; }

static void tick(u64 now) {
    char irqs[160], ctrs[400], nmis[160];
    join_u64(irqs, sizeof irqs, get_timer_irqs);
    join_u64(ctrs, sizeof ctrs, get_counter);
    join_u64(nmis, sizeof nmis, get_nmis);
    tick_n++;
    println("TICK %lu t_ms=%lu irq=%s ctr=%s uart_irq=%lu nmi=%s", tick_n, (now - boot_ns) / 1000000, irqs, ctrs,
            irq_counters_of(0)->serial, nmis);
}

/* NMIs (counted per CPU by nmi_isr): one line per NMI, at most 16 lines per loop pass. */
static u64 nmi_seen[MAX_CPUS];
static void nmi_poll(void) {
    int budget = 16;
    for (int i = 0; i < ncpus_online; i++) {
        u64 n = irq_counters_of(i)->nmi;
        while (nmi_seen[i] < n && budget > 0) {
            budget--;
            println("NMI cpu=%d count=%lu", i, ++nmi_seen[i]);
        }
    }
}

/* ---------------------------------------------------------------- serial commands */
static void command(char *line) {
    while (*line == ' ') line++;
    int n = (int)strlen(line);
    while (n && line[n - 1] == ' ') line[--n] = 0;
    if (!n) return;
    if (!strncmp(line, "check", 6)) {
        workloads_check();
    } else if (!strncmp(line, "sum", 4)) {
        workloads_sum();
    } else if (!strncmp(line, "run ", 4)) {
        char err[120];
        int cpu = workload_count() % ncpus_online;
        if (!workload_start(line + 4, cpu, err, sizeof err)) println("ERROR run %s: %s", line + 4, err);
    } else if (!strncmp(line, "corrupt ", 8)) {
        u64 page;
        if (parse_u64(line + 8, NULL, &page)) workloads_corrupt(page);
        else println("ERROR corrupt: expected a page number");
    } else if (!strncmp(line, "poweroff", 9)) {
        println("POWEROFF by=command");
        acpi_poweroff();
    } else if (!strncmp(line, "reboot", 7)) {
        println("REBOOT by=command");
        acpi_reboot();
    } else if (!strncmp(line, "stats", 6)) {
        char buf[400], vbuf[400];
        workloads_stats(buf, sizeof buf);
        virtio_stats(vbuf, sizeof vbuf);
        struct irq_counters *ic = irq_counters_of(0);
        char nmis[160];
        join_u64(nmis, sizeof nmis, get_nmis);
        println("STATS cpus=%d t_ms=%lu ticks=%lu clock=%s pool_free_kib=%lu uart_irq=%lu other_irq=%lu spurious=%lu "
                "nmi=%s pwrbtn_irq=%lu sci_irq=%lu %s %s",
                ncpus_online, (clock_ns() - boot_ns) / 1000000, tick_n, clock_is_kvmclock ? "kvmclock" : "tsc",
                pool_free_bytes() / 1024, ic->serial, ic->other, ic->spurious, nmis, ic->pwrbtn, ic->sci, buf, vbuf);
    } else if (!strncmp(line, "fault", 6)) {
        println("FAULT reading 0x%lx", 0x7f0000000000ul);
        (void)*(volatile u64 *)phys(0x7f0000000000ul); /* not mapped: #PF -> PANIC */
    } else if (virtio_command(line)) {
        /* blk, blk:MB, blkcheck, blkbench, netcheck, rngcheck, vcon TEXT, vsockcheck PORT */
    } else {
        println("ERROR unknown command: %s", line);
    }
}

static void poll_serial(void) {
    u32 lsr;
    for (int i = 0; i < 64 && ((lsr = inb(0x3fd)) & 1); i++) {
        char ch = (char)inb(0x3f8);
        if (ch == 0) {
            /* Never part of a command: the LSR said "data ready" for an empty FIFO. Seen right after a
             * migration or restore, on this KVM-PVM host with our VMM and QEMU alike, with lsr = 7 = SYS_INB:
             * the IN's result never reached AL. Reported, and kept out of the line (it would swallow it). */
            println("WARN serial NUL lsr=0x%x i=%d inlen=%d lsr_now=0x%x", lsr, i, inlen, inb(0x3fd));
            continue;
        }
        if (ch == '\r' || ch == '\n') {
            inbuf[inlen] = 0;
            inlen = 0;
            command(inbuf);
        } else if (inlen < (int)sizeof inbuf - 1) {
            inbuf[inlen++] = ch;
        }
    }
}

/* ---------------------------------------------------------------- main loops */
static NORETURN void cpu_loop(struct cpu *c) {
    for (;;) {
        /* a virtio interrupt after this point (an RX frame for virtio_poll) must not be slept through */
        u16 virtio_seen = (u16)virtio_irq_total;
        u64 now = clock_ns();
        clock_check(c, now);
        if (c->index == 0) {
            poll_serial();
            nmi_poll();
            acpi_power_button_poll();
            virtio_poll();
            if (now >= next_tick_ns) {
                tick(now);
                next_tick_ns += 1000000000ul;
                if (now >= next_tick_ns) next_tick_ns = now + 1000000000ul; /* after a long stall: no burst */
            }
        }
        if (!workload_step(c, SLICE_NS) && !c->no_halt) { /* idle: sleep until the next interrupt */
            if (c->index == 0) syscall3(SYS_HALT_IF, (u64)&virtio_irq_total, virtio_seen, 0);
            else sys_halt();
        }
    }
}

static NORETURN void bsp_main(void) {
    zero_bss();
    struct cpu *c = this_cpu();
    memset(c, 0, sizeof *c);
    c->online = 1;
    for (int i = 0; i < MAX_CPUS; i++) memset(irq_counters_of(i), 0, sizeof(struct irq_counters));
    copy_start_info();

    serial_init();
    for (const char *p = cmdline; *p;) { /* the bare word `crlf` */
        while (*p == ' ') p++;
        if (!strncmp(p, "crlf", 4) && (p[4] == ' ' || !p[4])) serial_crlf = 1;
        while (*p && *p != ' ') p++;
    }
    println("CHECKGUEST start pvh_version=%u cmdline=\"%s\"", start_info.version, cmdline);
    if (start_info.magic != HVM_START_MAGIC) println("WARN no hvm_start_info (ebx=0x%x)", boot_start_info);

    char val[64];
    u64 v;
    if (cmdline_get("clockbound_ms", val, sizeof val) && parse_u64(val, NULL, &v) && v) clockbound_ns = v * 1000000;

    clock_init_bsp();
    boot_ns = clock_ns();
    acpi_init(start_info.rsdp_paddr);
    mem_init();

    lapic_base = acpi.lapic_addr ? acpi.lapic_addr : 0xfee00000;
    c->apic_id = lapic_id();
    lapic_calibrate();
    lapic_init_cpu(0);
    ioapic_route_uart(c->apic_id);
    outb(0x3f9, 0x01); /* UART: interrupt on received data */
    acpi_power_button_init(c->apic_id);

    pci_enumerate();
    virtio_init();
    int n = smp_boot_aps();
    if (n != acpi.ncpus_madt) println("WARN cpus_online=%d madt_cpus=%d", n, acpi.ncpus_madt);
    /* every CPU's timer must tick (first after ~10 ms): a CPU without one would sleep forever when idle */
    u64 t0 = clock_ns();
    for (int i = 0; i < n; i++) {
        while (!irq_counters_of(i)->timer && clock_ns() - t0 < 300000000ul) cpu_relax();
        if (!irq_counters_of(i)->timer) {
            cpu_struct(i)->no_halt = 1;
            println("WARN timer cpu=%d no LAPIC timer interrupt within 300 ms: this CPU polls instead of halting", i);
        }
    }
    u64 now = clock_ns();
    println("GUEST-BOOTED cpus=%d mem_kib=%lu madt_cpus=%d clock=%s boot_ms=%lu clock_ms=%lu", n, mem_kib,
            acpi.ncpus_madt, clock_is_kvmclock ? "kvmclock" : "tsc", (now - boot_ns) / 1000000, now / 1000000);

    next_tick_ns = now + 1000000000ul;
    static char spec[CMDLINE_MAX];
    if (cmdline_get("workload", spec, sizeof spec)) workloads_start_from_cmdline(spec);
    cpu_loop(c);
}

static NORETURN void ap_main(int cpu) {
    struct cpu *c = this_cpu();
    clock_init_cpu(cpu);
    lapic_init_cpu(cpu);
    __atomic_store_n(&c->online, 1, __ATOMIC_RELEASE);
    cpu_loop(c);
}

NORETURN void user_main(int cpu) {
    if (cpu == 0) bsp_main();
    ap_main(cpu);
}
