/*
 * checkguest: the CPL0 part in C (compiled -mgeneral-regs-only; runs in KVM-PVM's instruction emulator).
 * Per-CPU descriptor setup, then iretq to user mode. The exception handler prints PANIC and parks the CPU.
 */
#include "guest.h"

struct idt_entry {
    u16 off0;
    u16 sel;
    u8 ist;
    u8 type;
    u16 off1;
    u32 off2;
    u32 zero;
} __attribute__((packed));

struct tss {
    u32 res0;
    u64 rsp[3];
    u64 res1;
    u64 ist[7];
    u64 res2;
    u16 res3;
    u16 iomap;
} __attribute__((packed));

/* nstack (IST3, NMIs) sits directly below stack (IST1): nmi_isr finds the counters from its own rsp. */
struct istack {
    u8 nstack[NSTACK_SIZE];
    u8 stack[ISTACK_SIZE];
    struct irq_counters counters;
    u8 pad[IRQ_COUNTERS_SIZE - sizeof(struct irq_counters)];
};

#define EARLY(name) __attribute__((section(".bss.early." name)))
u8 kstacks[MAX_CPUS][KSTACK_SIZE] __attribute__((aligned(16))) EARLY("kstacks");
static struct istack istacks[MAX_CPUS] __attribute__((aligned(16))) EARLY("istacks");
static u8 xstacks[MAX_CPUS][XSTACK_SIZE] __attribute__((aligned(16))) EARLY("xstacks");
u8 ustacks[MAX_CPUS][USTACK_SIZE] __attribute__((aligned(USTACK_SIZE))) EARLY("ustacks");
static struct tss tss[MAX_CPUS] __attribute__((aligned(16))) EARLY("tss");
static struct idt_entry idt[256] __attribute__((aligned(16))) EARLY("idt");

extern u64 gdt[];
extern const u64 exc_stub_table[32];
extern void timer_isr(void), uart_isr(void), other_isr(void), spurious_isr(void), syscall_isr(void);
extern void nmi_isr(void), pwrbtn_isr(void), sci_isr(void);
extern const u64 virtio_isr_table[VEC_VIRTIO_COUNT];

_Static_assert(__builtin_offsetof(struct irq_counters, nmi) == IRQC_NMI, "IRQC_NMI");
_Static_assert(__builtin_offsetof(struct irq_counters, pwrbtn) == IRQC_PWRBTN, "IRQC_PWRBTN");
_Static_assert(__builtin_offsetof(struct irq_counters, sci) == IRQC_SCI, "IRQC_SCI");
_Static_assert(__builtin_offsetof(struct irq_counters, sci_sts) == IRQC_SCI_STS, "IRQC_SCI_STS");
_Static_assert(__builtin_offsetof(struct irq_counters, spurious) == IRQC_SPURIOUS, "IRQC_SPURIOUS");
_Static_assert(__builtin_offsetof(struct istack, counters) == NSTACK_SIZE + ISTACK_SIZE, "istack layout");
_Static_assert(sizeof(struct istack) % 16 == 0, "istack alignment");
extern NORETURN void enter_user(u64 rip, u64 rsp, u64 arg, u64 rflags);
extern NORETURN void user_main(int cpu);

u64 lapic_base = 0xfee00000;

struct irq_counters *irq_counters_of(int cpu) { return &istacks[cpu].counters; }
struct cpu *cpu_struct(int index) { return (struct cpu *)ustacks[index]; }

static void set_gate(int v, u64 handler, int ist, int dpl) {
    struct idt_entry *e = &idt[v];
    e->off0 = (u16)handler;
    e->sel = SEL_KCODE;
    e->ist = (u8)ist;
    e->type = (u8)(0x8e | (dpl << 5)); /* present 64-bit interrupt gate */
    e->off1 = (u16)(handler >> 16);
    e->off2 = (u32)(handler >> 32);
    e->zero = 0;
}

static void build_idt(void) {
    for (int v = 0; v < 256; v++) set_gate(v, (u64)other_isr, 1, 0);
    for (int v = 0; v < 32; v++) set_gate(v, exc_stub_table[v], 2, 0);
    for (int v = VEC_PIC_BASE; v < VEC_PIC_BASE + 16; v++) set_gate(v, (u64)spurious_isr, 1, 0);
    set_gate(VEC_TIMER, (u64)timer_isr, 1, 0);
    set_gate(VEC_UART, (u64)uart_isr, 1, 0);
    set_gate(VEC_SPURIOUS, (u64)spurious_isr, 1, 0);
    set_gate(VEC_NMI, (u64)nmi_isr, 3, 0);
    set_gate(VEC_PWRBTN, (u64)pwrbtn_isr, 1, 0);
    set_gate(VEC_SCI, (u64)sci_isr, 1, 0);
    for (int i = 0; i < VEC_VIRTIO_COUNT; i++) set_gate(VEC_VIRTIO_BASE + i, virtio_isr_table[i], 1, 0);
    set_gate(VEC_SYSCALL, (u64)syscall_isr, 0, 3); /* int3 from user mode */
}

/* The legacy 8259s: move their vectors off the exception range and mask every line (we use the IOAPIC). */
static void pic_remap_and_mask(void) {
    raw_outb(0x20, 0x11);
    raw_outb(0xa0, 0x11);
    raw_outb(0x21, VEC_PIC_BASE);
    raw_outb(0xa1, VEC_PIC_BASE + 8);
    raw_outb(0x21, 4);
    raw_outb(0xa1, 2);
    raw_outb(0x21, 1);
    raw_outb(0xa1, 1);
    raw_outb(0x21, 0xff);
    raw_outb(0xa1, 0xff);
}

/* Called on every CPU from boot.S in 64-bit mode at CPL0; ends by entering user mode (IF=0, IOPL=3). */
NORETURN void kernel_cpu_init(int cpu) {
    if (cpu == 0) {
        build_idt();
        pic_remap_and_mask();
    }

    struct tss *t = &tss[cpu];
    t->rsp[0] = (u64)&kstacks[cpu][KSTACK_SIZE];
    t->ist[0] = (u64)istacks[cpu].stack + ISTACK_SIZE;
    t->ist[1] = (u64)&xstacks[cpu][XSTACK_SIZE];
    t->ist[2] = (u64)istacks[cpu].nstack + NSTACK_SIZE;
    t->iomap = sizeof(struct tss); /* no I/O bitmap: IOPL=3 governs port access */

    u64 base = (u64)t;
    gdt[6 + 2 * cpu] = (sizeof(struct tss) - 1) | ((base & 0xffffff) << 16) | ((u64)0x89 << 40) |
                       (((base >> 24) & 0xff) << 56);
    gdt[7 + 2 * cpu] = base >> 32;

    struct { u16 limit; u64 base; } __attribute__((packed)) idtr = { sizeof(idt) - 1, (u64)idt };
    __asm__ __volatile__("lidt %0" ::"m"(idtr));
    __asm__ __volatile__("ltr %w0" ::"r"((u16)(SEL_TSS0 + 16 * cpu)));

    /* user stack: struct cpu at the base (zeroed by user code), start just below the top */
    u64 usp = (u64)&ustacks[cpu][USTACK_SIZE] - 8;
    enter_user((u64)user_main, usp, (u64)cpu, 0x202 /* IF=1 */);
}

struct exc_frame {
    u64 r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
    u64 vector, err;
    u64 rip, cs, rflags, rsp, ss;
};

static const char *const exc_names[32] = {
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS", "#NP", "#SS", "#GP", "#PF", "RSV",
    "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "RSV", "RSV", "RSV", "RSV", "RSV", "RSV", "#HV", "#VC", "#SX", "RSV",
};

NORETURN void exception_handler(struct exc_frame *f) {
    u64 cr2;
    __asm__ __volatile__("mov %%cr2, %0" : "=r"(cr2));
    long cpu = ((u64)f - (u64)xstacks) / XSTACK_SIZE;
    println_locked_bounded("PANIC vec=%lu %s rip=0x%lx err=0x%lx cr2=0x%lx cs=0x%lx rsp=0x%lx rflags=0x%lx cpu=%ld",
                           f->vector, exc_names[f->vector & 31], f->rip, f->err, cr2, f->cs, f->rsp, f->rflags, cpu);
    println_locked_bounded("PANIC-REGS rax=0x%lx rbx=0x%lx rcx=0x%lx rdx=0x%lx rsi=0x%lx rdi=0x%lx rbp=0x%lx cpu=%ld",
                           f->rax, f->rbx, f->rcx, f->rdx, f->rsi, f->rdi, f->rbp, cpu);
    for (;;) __asm__ __volatile__("cli; hlt");
}

/* Syscalls without an assembly fast path in boot.S. */
u64 syscall_c(u64 nr, u64 a0, u64 a1, u64 a2) {
    if (nr == SYS_PCI_WRITE) {
        raw_outl(0xcf8, (u32)(a0 & ~3ul) | 0x80000000u);
        u16 port = (u16)(0xcfc + (a0 & 3));
        if (a2 == 1) raw_outb(port, (u8)a1);
        else if (a2 == 2) raw_outw(port, (u16)a1);
        else raw_outl(port, (u32)a1);
        return 0;
    }
    return ~0ul;
}
