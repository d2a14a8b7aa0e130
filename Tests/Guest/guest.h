/* checkguest: shared declarations. See docs/checkguest.md. */
#ifndef GUEST_H
#define GUEST_H

#include "layout.h"

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long u64;
typedef signed char s8;
typedef int s32;
typedef long s64;
typedef unsigned long size_t;
typedef __builtin_va_list va_list;
#define va_start(v, l) __builtin_va_start(v, l)
#define va_end(v) __builtin_va_end(v)
#define va_arg(v, t) __builtin_va_arg(v, t)

#define NULL ((void *)0)
#define barrier() __asm__ __volatile__("" ::: "memory")
#define READ_ONCE(x) (*(volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))
#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((u64)(a) - 1))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define NORETURN __attribute__((noreturn))

/* ---- port I/O: raw instructions work at CPL0 only (KVM-PVM ignores IOPL for guest user mode) ---- */
static inline void raw_outb(u16 port, u8 v) { __asm__ __volatile__("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline void raw_outw(u16 port, u16 v) { __asm__ __volatile__("outw %0, %1" ::"a"(v), "Nd"(port)); }
static inline void raw_outl(u16 port, u32 v) { __asm__ __volatile__("outl %0, %1" ::"a"(v), "Nd"(port)); }
static inline u8 raw_inb(u16 port) { u8 v; __asm__ __volatile__("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u16 raw_inw(u16 port) { u16 v; __asm__ __volatile__("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u32 raw_inl(u16 port) { u32 v; __asm__ __volatile__("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline int at_cpl0(void) { u16 cs; __asm__("mov %%cs, %0" : "=r"(cs)); return (cs & 3) == 0; }
/* A pointer to a physical (= virtual) address, hidden from gcc's constant-address array-bounds checks. */
static inline void *phys(u64 a) {
    void *p;
    __asm__("" : "=r"(p) : "0"(a));
    return p;
}
#ifndef HOSTED_SIM
static inline u8 mmio_read8(u64 addr) { return *(volatile u8 *)phys(addr); }
static inline u16 mmio_read16(u64 addr) { return *(volatile u16 *)phys(addr); }
static inline u32 mmio_read32(u64 addr) { return *(volatile u32 *)phys(addr); }
static inline void mmio_write8(u64 addr, u8 v) { *(volatile u8 *)phys(addr) = v; }
static inline void mmio_write16(u64 addr, u16 v) { *(volatile u16 *)phys(addr) = v; }
static inline void mmio_write32(u64 addr, u32 v) { *(volatile u32 *)phys(addr) = v; }
#else /* the host-side simulation (sim/): device registers are emulated by the harness */
u64 sim_mmio_read(u64 addr, int size);
void sim_mmio_write(u64 addr, int size, u64 v);
static inline u8 mmio_read8(u64 addr) { return (u8)sim_mmio_read(addr, 1); }
static inline u16 mmio_read16(u64 addr) { return (u16)sim_mmio_read(addr, 2); }
static inline u32 mmio_read32(u64 addr) { return (u32)sim_mmio_read(addr, 4); }
static inline void mmio_write8(u64 addr, u8 v) { sim_mmio_write(addr, 1, v); }
static inline void mmio_write16(u64 addr, u16 v) { sim_mmio_write(addr, 2, v); }
static inline void mmio_write32(u64 addr, u32 v) { sim_mmio_write(addr, 4, v); }
#endif
static inline void cpu_relax(void) { __asm__ __volatile__("pause" ::: "memory"); }

/* ---- spinlock (user mode; also used by the CPL0 panic path with a bounded wait) ---- */
typedef struct { volatile u32 v; } spinlock_t;
static inline int spin_trylock(spinlock_t *l) { return __atomic_exchange_n(&l->v, 1, __ATOMIC_ACQUIRE) == 0; }
static inline void spin_lock(spinlock_t *l) {
    while (!spin_trylock(l))
        while (l->v) cpu_relax();
}
static inline void spin_unlock(spinlock_t *l) { __atomic_store_n(&l->v, 0, __ATOMIC_RELEASE); }

/* ---- lib.c (compiled general-regs-only: safe at CPL0 and CPL3) ---- */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strncmp(const char *a, const char *b, size_t n);
int str_starts(const char *s, const char *prefix);
int parse_u64(const char *s, const char **end, u64 *out); /* decimal or 0x hex; returns 1 if a number */
int vformat(char *buf, int size, const char *fmt, va_list ap);
int format(char *buf, int size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void serial_init(void);
void serial_write(const char *s, int n);
void serial_write_direct(const char *s, int n);
/* Prints one whole line (fmt without the trailing newline) atomically with respect to other CPUs. */
void println(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void println_locked_bounded(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
extern spinlock_t print_lock;
extern int serial_crlf;

/* ---- assembly / kernel (boot.S, kernel.c) ---- */
extern char __image_start[], __image_end[], __bss_start[], __bss_end[];
extern char ap_tramp_start[], ap_tramp_end[];
extern volatile u32 ap_boot_cpu;      /* cpu index the next AP takes */
extern volatile u64 ap_boot_kstack;   /* its kernel stack top */
extern volatile u32 boot_start_info;  /* ebx at the PVH entry */
extern u64 lapic_base;                /* used by the interrupt handlers for EOI */
extern u32 sci_pm1_sts_port;          /* PM1a status port the SCI handler reads and clears */
extern u64 pml4[512];
extern u64 pdpt_low[512];
extern u64 pd_low[4][512];

/* Per-CPU interrupt counters: the handlers (CPL0, IST1/IST3) increment these; user code reads them.
 * Offsets are IRQC_* in layout.h (boot.S addresses them relative to the interrupt stack). */
struct irq_counters {
    volatile u64 timer;
    volatile u64 serial;
    volatile u64 other;
    volatile u64 spurious;
    volatile u64 nmi;           /* vector 2 (IST3) */
    volatile u64 pwrbtn;        /* the GED's interrupt (BSP only) */
    volatile u64 sci;           /* SCIs (BSP only) */
    volatile u64 sci_sts;       /* OR of the PM1a status bits each SCI found (and cleared) */
};
struct irq_counters *irq_counters_of(int cpu);

/* ---- syscalls (`int3` from user mode; see boot.S) ---- */
#include "syscalls.h"

#ifndef HOSTED_SIM
static inline u64 syscall3(u64 nr, u64 a0, u64 a1, u64 a2) {
    __asm__ __volatile__("int3" : "+a"(nr) : "D"(a0), "S"(a1), "d"(a2) : "memory");
    return nr;
}
#else
u64 sim_syscall3(u64 nr, u64 a0, u64 a1, u64 a2);
static inline u64 syscall3(u64 nr, u64 a0, u64 a1, u64 a2) { return sim_syscall3(nr, a0, a1, a2); }
#endif
static inline void sys_halt(void) { syscall3(SYS_HALT, 0, 0, 0); }
static inline void sys_wrmsr(u32 msr, u64 v) { syscall3(SYS_WRMSR, msr, v, 0); }
static inline u64 sys_rdmsr(u32 msr) { return syscall3(SYS_RDMSR, msr, 0, 0); }
static inline void sys_cpuid(u32 leaf, u32 sub, u32 *a, u32 *b, u32 *c, u32 *d) {
    u64 ra = SYS_CPUID, rb, rc, rd;
    __asm__ __volatile__("int3" : "+a"(ra), "=b"(rb), "=c"(rc), "=d"(rd) : "D"((u64)leaf), "S"((u64)sub) : "memory");
    *a = (u32)ra; *b = (u32)rb; *c = (u32)rc; *d = (u32)rd;
}
static inline NORETURN void sys_reset(void) {
    syscall3(SYS_RESET, 0, 0, 0);
    __builtin_unreachable();
}
static inline NORETURN void sys_halt_forever(void) {
    syscall3(SYS_HALT_FOREVER, 0, 0, 0);
    __builtin_unreachable();
}
static inline void sys_flush_tlb(void) { syscall3(SYS_FLUSH_TLB, 0, 0, 0); }

/* Port I/O from user mode (one syscall each; every access is a VM exit anyway). */
static inline u32 inb(u16 port) { return (u8)syscall3(SYS_INB, port, 0, 0); }

/* The verifiable pattern of workload pages and disk sectors: w[0] = magic ^ index, w[1] = generation,
 * then an xorshift64 stream seeded by (index, generation + salt) — one generator for both, each with its
 * own magic and salt so that a page can never pass for a sector. */
static inline u64 pattern_seed(u64 index, u64 gen, u64 salt) {
    u64 x = index * 0x9e3779b97f4a7c15ul ^ (gen + salt) * 0xd1b54a32d192ed03ul;
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ul;
    x ^= x >> 29;
    return x | 1;
}
static inline u64 pattern_next(u64 s) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
}
static inline void pattern_fill(u64 *p, int words, u64 magic, u64 index, u64 gen, u64 salt) {
    p[0] = magic ^ index;
    p[1] = gen;
    u64 s = pattern_seed(index, gen, salt);
    for (int i = 2; i < words; i++) p[i] = s = pattern_next(s);
}
static inline u32 inw(u16 port) { return (u16)syscall3(SYS_INW, port, 0, 0); }
static inline u32 inl(u16 port) { return (u32)syscall3(SYS_INL, port, 0, 0); }
static inline void outb(u16 port, u8 v) { syscall3(SYS_OUTB, port, v, 0); }
static inline void outw(u16 port, u16 v) { syscall3(SYS_OUTW, port, v, 0); }
static inline void outl(u16 port, u32 v) { syscall3(SYS_OUTL, port, v, 0); }

/* ---- per-CPU user-mode state: lives at the base of the CPU's user stack (this_cpu() masks rsp) ---- */
struct workload;
struct cpu {
    int index;
    u32 apic_id;
    volatile int online;
    u64 last_clock_ns;          /* for the CLOCK jump check */
    volatile u64 counter;       /* the `counter` workload */
    struct workload *volatile wl[MAX_WL_PER_CPU];
    volatile int nwl;
    int next_wl;
    volatile int no_halt;       /* its LAPIC timer never fired: poll instead of halting */
};
#ifndef HOSTED_SIM
static inline struct cpu *this_cpu(void) {
    u64 sp;
    __asm__("mov %%rsp, %0" : "=r"(sp));
    return (struct cpu *)(sp & ~(u64)(USTACK_SIZE - 1));
}
#else
struct cpu *this_cpu(void);
#endif
struct cpu *cpu_struct(int index);

/* ---- clock.c ---- */
extern int clock_is_kvmclock;
extern u64 clock_tsc_khz;
void clock_init_bsp(void);
void clock_init_cpu(int cpu);
u64 clock_ns(void);
void delay_ns(u64 ns);
static inline u64 rdtsc(void) {
    u32 lo, hi;
    __asm__ __volatile__("lfence; rdtsc" : "=a"(lo), "=d"(hi)::"memory");
    return ((u64)hi << 32) | lo;
}

/* ---- acpi.c ---- */
struct acpi_info {
    u64 rsdp;
    int ncpus_madt;             /* enabled LAPIC + x2APIC entries */
    u32 apic_ids[MAX_CPUS];     /* xAPIC ids of the enabled entries, in MADT order (first MAX_CPUS) */
    u64 lapic_addr;
    u64 ioapic_addr;
    u32 ioapic_gsi_base;
    u32 uart_gsi;               /* IRQ 4 after interrupt source overrides */
    u16 uart_gsi_flags;         /* MPS INTI flags from the override (0 = bus default) */
    u32 fadt_flags;
    int hw_reduced;
    int s5_typ;                 /* -1 if no _S5_ */
    /* power button: a GED (HW-reduced: ACPI0013 in the DSDT, its Extended Interrupt GSI) or the fixed
     * PM1 power button (SCI) */
    int ged_found;              /* 1 = from the DSDT, 0 = absent (ged_gsi is then the fallback 5 or -1) */
    s32 ged_gsi;                /* -1 = none */
    u8 ged_flags;               /* Extended Interrupt descriptor flags: bit 1 edge, bit 2 active low */
    u16 sci_int;                /* FADT SCI_INT (ISA IRQ) */
    u32 pm1a_evt;               /* PM1a_EVT_BLK port (status; enable at +pm1_evt_len/2) */
    u8 pm1_evt_len;
    u32 smi_cmd;
    u8 acpi_enable;
};
/* ISA IRQ -> GSI and MPS INTI flags after the MADT's interrupt source overrides (flags 0 = bus default). */
u32 acpi_isa_gsi(u32 irq, u16 *flags);
/* The IOAPIC serving a GSI: 1 and its MMIO base and first GSI, or 0. */
int acpi_ioapic_for(u32 gsi, u64 *addr, u32 *gsi_base);
void acpi_power_button_init(u32 dest_apic_id);
void acpi_power_button_poll(void); /* BSP loop: on a press prints POWER-BUTTON and powers off */
extern struct acpi_info acpi;
void acpi_init(u64 rsdp_hint);
NORETURN void acpi_poweroff(void);
NORETURN void acpi_reboot(void);

/* ---- apic.c ---- */
void pic_disable(void);
void lapic_init_cpu(int cpu);
void lapic_calibrate(void);
void ioapic_route_uart(u32 dest_apic_id);
int ioapic_route(u32 gsi, u32 lo, u32 dest_apic_id); /* lo = vector | trigger/polarity bits; 0 = no IOAPIC */
int smp_boot_aps(void);       /* returns the number of CPUs online */
u32 lapic_id(void);
extern int ncpus_online;

/* ---- mem.c ---- */
struct memmap_entry { u64 addr, size; u32 type, reserved; };
extern struct memmap_entry memmap[MAX_MEMMAP];
extern int memmap_count;
extern u64 mem_kib;
void mem_init(void);
u64 pool_alloc(u64 bytes);    /* physical (= virtual) address, 0 if none; page aligned */
u64 pool_free_bytes(void);
int mmio_map(u64 addr, u64 len); /* identity-map device MMIO uncached (any address below 2^47); 0 = failed */

/* ---- pci.c ---- */
void pci_enumerate(void);

/* ---- workload.c ---- */
void workloads_start_from_cmdline(const char *spec);
struct workload *workload_start(const char *spec, int cpu, char *err, int errlen);
int workload_step(struct cpu *c, u64 slice_ns);
void workloads_check(void);
void workloads_sum(void);
void workloads_corrupt(u64 page);
void workloads_stats(char *buf, int len);
int workload_count(void);

/* ---- main.c ---- */
extern u64 boot_ns;
extern u64 clockbound_ns;
extern char cmdline[CMDLINE_MAX];
const char *cmdline_get(const char *key, char *out, int outlen);

#endif
