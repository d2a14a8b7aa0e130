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
#define USTACK_SIZE 65536    /* user stack; struct cpu at its base; must be a power of two */
#define IRQ_COUNTERS_SIZE 64 /* reserved above the IST1 top for struct irq_counters */

/* Interrupt vectors */
#define VEC_TIMER 0x20
#define VEC_UART 0x21
#define VEC_PIC_BASE 0x30
#define VEC_SYSCALL 3 /* int3: see boot.S */
#define VEC_SPURIOUS 0xff

/* Low memory used by the guest */
#define AP_TRAMPOLINE 0x8000 /* SIPI vector 0x08 */

#endif
