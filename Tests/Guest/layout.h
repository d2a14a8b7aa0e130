/* checkguest: constants shared by assembly and C. */
#ifndef LAYOUT_H
#define LAYOUT_H

#define MAX_CPUS 32
#define MAX_WL_PER_CPU 8
#define MAX_MEMMAP 64
#define CMDLINE_MAX 1024

/* GDT selectors */
#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_KCODE32 0x18
#define SEL_UDATA 0x20 /* used with RPL 3 */
#define SEL_UCODE 0x28 /* used with RPL 3 */
#define SEL_TSS0 0x30  /* 16 bytes per CPU */
#define GDT_ENTRIES (6 + 2 * MAX_CPUS)

/* Stacks (per CPU) */
#define KSTACK_SIZE 8192     /* rsp0: syscalls */
#define ISTACK_SIZE 4096     /* IST1: timer/serial/other interrupts (irq counters at its top) */
#define XSTACK_SIZE 8192     /* IST2: exceptions (panic printing runs here) */
#define NSTACK_SIZE 512      /* IST3: NMI (just below the IST1 stack: the NMI count is in its counters) */
#define USTACK_SIZE 65536    /* user stack; struct cpu at its base; must be a power of two */
#define IRQ_COUNTERS_SIZE 128 /* reserved above the IST1 top for struct irq_counters */

/* Byte offsets in struct irq_counters (guest.h), used by the handlers in boot.S */
#define IRQC_TIMER 0
#define IRQC_SERIAL 8
#define IRQC_OTHER 16
#define IRQC_SPURIOUS 24
#define IRQC_NMI 32
#define IRQC_PWRBTN 40
#define IRQC_SCI 48
#define IRQC_SCI_STS 56

/* Interrupt vectors */
#define VEC_TIMER 0x20
#define VEC_UART 0x21
#define VEC_PWRBTN 0x22 /* the GED's GSI (power button on a HW-reduced platform) */
#define VEC_SCI 0x23    /* the ACPI SCI (fixed power button in PM1 status, q35) */
#define VEC_NMI 2
#define VEC_PIC_BASE 0x30
#define VEC_SYSCALL 3 /* int3: see boot.S */
#define VEC_SPURIOUS 0xff
#define VEC_VIRTIO_BASE 0x40 /* MSI-X vectors of the virtio devices: 0x40..0x5f, counted per vector */
#define VEC_VIRTIO_COUNT 32

/* Low memory used by the guest */
#define AP_TRAMPOLINE 0x8000 /* SIPI vector 0x08 */

#endif
