/*
 * checkguest: PVH entry, long-mode switch, AP trampoline, interrupt/exception/syscall entry points.
 * Everything here runs at CPL0, i.e. inside KVM-PVM's instruction emulator: keep it short and simple
 * (no int3/int n at CPL0, no iret in 32-bit mode, no xsave/cmpxchg16b).
 */
#include "layout.h"
#include "syscalls.h"

#define CR0_PE 0x1
#define CR0_MP 0x2
#define CR0_EM 0x4
#define CR0_TS 0x8
#define CR0_ET 0x10
#define CR0_NE 0x20
#define CR0_WP 0x10000
#define CR0_NW 0x20000000
#define CR0_CD 0x40000000
#define CR0_PG 0x80000000
#define CR0_SET (CR0_PG | CR0_WP | CR0_NE | CR0_ET | CR0_MP | CR0_PE)
#define CR0_CLEAR (CR0_EM | CR0_TS | CR0_CD | CR0_NW)
#define CR4_SET 0x620 /* PAE | OSFXSR | OSXMMEXCPT */
#define MSR_EFER 0xc0000080
#define EFER_LME 0x100
#define PTE_UPW 0x7   /* present | writable | user */
#define PDE_2M 0x87   /* present | writable | user | 2 MiB page */

/* ---------------------------------------------------------------- PVH ELF note */
        .section .note.Xen, "a", @note
        .balign 4
        .long 4                 /* namesz */
        .long 8                 /* descsz */
        .long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
        .asciz "Xen"
        .balign 4
        .quad _start32
        .balign 4

/* ---------------------------------------------------------------- BSP entry (32-bit, paging off) */
        .section .text.boot, "ax"
        .code32
        .globl _start32
_start32:
        cli
        cld
        movl %ebx, boot_start_info

        /* zero pml4 and pdpt_low (adjacent pages) */
        movl $pml4, %edi
        xorl %eax, %eax
        movl $2048, %ecx
        rep stosl
        movl $(pdpt_low + PTE_UPW), pml4

        /* pdpt_low[0..3] -> pd_low[0..3] */
        movl $pdpt_low, %edi
        movl $(pd_low + PTE_UPW), %eax
        movl $4, %ecx
1:      movl %eax, (%edi)
        addl $4096, %eax
        addl $8, %edi
        decl %ecx
        jnz 1b

        /* pd_low: 2048 x 2 MiB identity pages = 0..4 GiB */
        movl $pd_low, %edi
        movl $PDE_2M, %eax
        xorl %edx, %edx
        movl $2048, %ecx
2:      movl %eax, (%edi)
        movl %edx, 4(%edi)
        addl $0x200000, %eax
        adcl $0, %edx
        addl $8, %edi
        decl %ecx
        jnz 2b

        lgdt gdt_ptr
        jmp enter_long_mode32

/* Common 32-bit path to long mode (BSP and APs): PAE, CR3, EFER.LME, PG; then start64. */
enter_long_mode32:
        movl %cr4, %eax
        orl $CR4_SET, %eax
        movl %eax, %cr4
        movl $pml4, %eax
        movl %eax, %cr3
        movl $MSR_EFER, %ecx
        rdmsr
        orl $EFER_LME, %eax
        wrmsr
        movl %cr0, %eax
        andl $~CR0_CLEAR, %eax
        orl $CR0_SET, %eax
        movl %eax, %cr0
        ljmp $SEL_KCODE, $start64

/* AP: arrives here in 32-bit protected mode from the trampoline */
        .globl ap_entry32
ap_entry32:
        movl $SEL_KDATA, %eax
        movl %eax, %ds
        movl %eax, %es
        movl %eax, %ss
        jmp enter_long_mode32

/* ---------------------------------------------------------------- 64-bit */
        .code64
start64:
        movl $SEL_KDATA, %eax
        movl %eax, %ds
        movl %eax, %es
        movl %eax, %ss
        xorl %eax, %eax
        movl %eax, %fs
        movl %eax, %gs
        /* BSP or AP? ap_boot_cpu is 0 until the BSP starts an AP */
        movl ap_boot_cpu, %edi
        testl %edi, %edi
        jnz 1f
        movq $kstacks + KSTACK_SIZE, %rsp
        jmp 2f
1:      movq ap_boot_kstack, %rsp
2:      xorl %ebp, %ebp
        call kernel_cpu_init    /* does not return: ends in enter_user */
3:      hlt
        jmp 3b

/* enter_user(rip, rsp, arg, rflags): iretq to CPL3 */
        .globl enter_user
enter_user:
        pushq $(SEL_UDATA | 3)
        pushq %rsi
        pushq %rcx
        pushq $(SEL_UCODE | 3)
        pushq %rdi
        movq %rdx, %rdi
        movl $(SEL_UDATA | 3), %eax
        movl %eax, %ds
        movl %eax, %es
        xorl %eax, %eax
        movl %eax, %fs
        movl %eax, %gs
        iretq

/* ---------------------------------------------------------------- interrupts (IST1) */
/* On entry (IST1) rsp = IST1 top - 40; after pushing rax the per-CPU counters are at 48(%rsp). */
#define CNT_TIMER (48 + IRQC_TIMER)
#define CNT_SERIAL (48 + IRQC_SERIAL)
#define CNT_OTHER (48 + IRQC_OTHER)
#define CNT_SPURIOUS (48 + IRQC_SPURIOUS)
#define CNT_PWRBTN (48 + IRQC_PWRBTN)
        .globl timer_isr
timer_isr:
        pushq %rax
        incq CNT_TIMER(%rsp)
        movq lapic_base, %rax
        movl $0, 0xb0(%rax)
        popq %rax
        iretq

        .globl uart_isr
uart_isr:
        pushq %rax
        incq CNT_SERIAL(%rsp)
        movq lapic_base, %rax
        movl $0, 0xb0(%rax)
        popq %rax
        iretq

        .globl other_isr
other_isr:
        pushq %rax
        incq CNT_OTHER(%rsp)
        movq lapic_base, %rax
        movl $0, 0xb0(%rax)
        popq %rax
        iretq

        .globl spurious_isr
spurious_isr:
        pushq %rax
        incq CNT_SPURIOUS(%rsp)
        popq %rax
        iretq

/* The GED's GSI (edge): the power button on a HW-reduced platform. The BSP's loop sees the count change. */
        .globl pwrbtn_isr
pwrbtn_isr:
        pushq %rax
        incq CNT_PWRBTN(%rsp)
        movq lapic_base, %rax
        movl $0, 0xb0(%rax)
        popq %rax
        iretq

/* The SCI (level): clear the PM1a status bits that are set (write 1 to clear) so the line drops, keep
 * them for the BSP's loop (PWRBTN_STS = bit 8), count, EOI. Counters at 56(%rsp) after two pushes. */
        .globl sci_isr
sci_isr:
        pushq %rax
        pushq %rdx
        movl sci_pm1_sts_port, %edx
        inw %dx, %ax
        outw %ax, %dx
        orw %ax, (56 + IRQC_SCI_STS)(%rsp)
        incq (56 + IRQC_SCI)(%rsp)
        movq lapic_base, %rax
        movl $0, 0xb0(%rax)
        popq %rdx
        popq %rax
        iretq

/* virtio MSI-X vectors (VEC_VIRTIO_BASE + n): count per vector in virtio_irq_count[n] (virtio.c; a vector
 * may be moved between CPUs, hence `lock`), EOI. User code (the drivers) looks at the rings itself. */
        .macro VIRTIO_ISR n
virtio_isr_\n:
        lock incq virtio_irq_count + 8 * \n
        incq virtio_irq_total   /* a wake-up hint for SYS_HALT_IF in the BSP's idle loop */
        pushq %rax
        movq lapic_base, %rax
        movl $0, 0xb0(%rax)
        popq %rax
        iretq
        .endm
        .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        VIRTIO_ISR \n
        .endr

/* NMI (vector 2, IST3): count and return, no EOI. The IST3 stack lies directly below this CPU's IST1
 * stack, so on entry (rsp = IST3 top - 40) the counters are at 40 + ISTACK_SIZE above rsp. */
        .globl nmi_isr
nmi_isr:
        incq (40 + ISTACK_SIZE + IRQC_NMI)(%rsp)
        iretq

/* ---------------------------------------------------------------- syscalls
 * Under KVM-PVM a user-mode `int n` (n != 3) raises #UD and `syscall` does not leave CPL3, but `int3`
 * is delivered as #BP through the IDT. So the user->kernel call is `int3` with a DPL3 gate on vector 3
 * (no IST: the CPU switches to the TSS rsp0 stack) and the handler returns with iretq.
 * ABI: rax = number, rdi/rsi/rdx = arguments, rax = result; nothing else is clobbered (SYS_CPUID
 * returns in rax/rbx/rcx/rdx). Every instruction here is emulated (~0.5 us each): keep paths short. */
        .globl syscall_isr
syscall_isr:
        testb $3, 8(%rsp)       /* from CPL0? then it is a real breakpoint: panic */
        jz exc_3
        cmpq $SYS_COUNT, %rax
        jae sys_bad
        jmp *sys_table(, %rax, 8)

sys_halt:
        sti
        hlt
        cli
        iretq
sys_halt_if:                    /* halt only while the u16 at rdi still equals si (e.g. a used ring index):
                                 * an interrupt that changed it before the int3 was taken is not waited for */
        cmpw %si, (%rdi)
        jne 1f
        sti
        hlt
        cli
1:      iretq
sys_wrmsr:
        pushq %rcx
        pushq %rdx
        movl %edi, %ecx
        movq %rsi, %rax
        movq %rsi, %rdx
        shrq $32, %rdx
        wrmsr
        popq %rdx
        popq %rcx
        iretq
sys_rdmsr:
        pushq %rcx
        pushq %rdx
        movl %edi, %ecx
        rdmsr
        shlq $32, %rdx
        orq %rdx, %rax
        popq %rdx
        popq %rcx
        iretq
sys_cpuid:
        movl %edi, %eax
        movl %esi, %ecx
        cpuid
        iretq
sys_reset:
        lidt zero_idtr          /* no IDT -> #DE -> #DF -> triple fault */
        xorl %ecx, %ecx
        xorl %edx, %edx
        divl %ecx
        sti
1:      hlt
        jmp 1b
sys_halt_forever:
        cli
1:      hlt
        jmp 1b
sys_flush_tlb:
        movq %cr3, %rax
        movq %rax, %cr3
        xorl %eax, %eax
        iretq
sys_inb:
        pushq %rdx
        movl %edi, %edx
        xorl %eax, %eax
        inb %dx, %al
        popq %rdx
        iretq
sys_inw:
        pushq %rdx
        movl %edi, %edx
        xorl %eax, %eax
        inw %dx, %ax
        popq %rdx
        iretq
sys_inl:
        pushq %rdx
        movl %edi, %edx
        inl %dx, %eax
        popq %rdx
        iretq
sys_outb:
        pushq %rdx
        movl %edi, %edx
        movl %esi, %eax
        outb %al, %dx
        popq %rdx
        iretq
sys_outw:
        pushq %rdx
        movl %edi, %edx
        movl %esi, %eax
        outw %ax, %dx
        popq %rdx
        iretq
sys_outl:
        pushq %rdx
        movl %edi, %edx
        movl %esi, %eax
        outl %eax, %dx
        popq %rdx
        iretq
sys_pci_read:                   /* rdi = config address (bit 31 and low bits added/removed here) */
        pushq %rdx
        movl %edi, %eax
        andl $0xfffffffc, %eax
        orl $0x80000000, %eax
        movl $0xcf8, %edx
        outl %eax, %dx
        movl $0xcfc, %edx
        inl %dx, %eax
        popq %rdx
        iretq
sys_serial_write:               /* rdi = buffer, rsi = length: per FIFO load, wait THRE then rep outsb */
        pushq %rcx
        pushq %rdx
        pushq %rsi
        pushq %r8
        movq %rsi, %r8
        movq %rdi, %rsi
1:      testq %r8, %r8
        jz 4f
        movl $0x3fd, %edx
        movl $1000, %ecx
2:      inb %dx, %al
        testb $0x20, %al
        jnz 3f
        decl %ecx
        jnz 2b
3:      movl uart_fifo, %ecx
        cmpq %r8, %rcx
        jbe 5f
        movq %r8, %rcx
5:      subq %rcx, %r8
        movl $0x3f8, %edx
        rep outsb
        jmp 1b
4:      popq %r8
        popq %rsi
        popq %rdx
        popq %rcx
        xorl %eax, %eax
        iretq
sys_c:                          /* the rest: syscall_c(nr, a0, a1, a2) in C (slow: ~100 emulated insns) */
        pushq %rcx
        pushq %rdx
        pushq %rsi
        pushq %rdi
        pushq %r8
        pushq %r9
        pushq %r10
        pushq %r11
        subq $8, %rsp           /* rsp0 - 40 - 64 - 8: 16-byte aligned for the call */
        movq %rdx, %rcx
        movq %rsi, %rdx
        movq %rdi, %rsi
        movq %rax, %rdi
        call syscall_c
        addq $8, %rsp
        popq %r11
        popq %r10
        popq %r9
        popq %r8
        popq %rdi
        popq %rsi
        popq %rdx
        popq %rcx
        iretq
sys_bad:
        movq $-1, %rax
        iretq

        .section .rodata
        .balign 8
sys_table:
        .quad sys_halt, sys_wrmsr, sys_rdmsr, sys_cpuid, sys_reset, sys_halt_forever, sys_flush_tlb
        .quad sys_inb, sys_inw, sys_inl, sys_outb, sys_outw, sys_outl, sys_pci_read, sys_serial_write
        .quad sys_c, sys_halt_if

        .balign 8
        .globl virtio_isr_table
virtio_isr_table:
        .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        .quad virtio_isr_\n
        .endr
        .text

/* ---------------------------------------------------------------- exceptions (IST2) */
        .macro EXC_NOERR n
exc_\n: pushq $0
        pushq $\n
        jmp exc_common
        .endm
        .macro EXC_ERR n
exc_\n: pushq $\n
        jmp exc_common
        .endm

EXC_NOERR 0
EXC_NOERR 1
EXC_NOERR 2
EXC_NOERR 3
EXC_NOERR 4
EXC_NOERR 5
EXC_NOERR 6
EXC_NOERR 7
EXC_ERR 8
EXC_NOERR 9
EXC_ERR 10
EXC_ERR 11
EXC_ERR 12
EXC_ERR 13
EXC_ERR 14
EXC_NOERR 15
EXC_NOERR 16
EXC_ERR 17
EXC_NOERR 18
EXC_NOERR 19
EXC_NOERR 20
EXC_ERR 21
EXC_NOERR 22
EXC_NOERR 23
EXC_NOERR 24
EXC_NOERR 25
EXC_NOERR 26
EXC_NOERR 27
EXC_NOERR 28
EXC_ERR 29
EXC_ERR 30
EXC_NOERR 31

exc_common:
        pushq %rax
        pushq %rbx
        pushq %rcx
        pushq %rdx
        pushq %rsi
        pushq %rdi
        pushq %rbp
        pushq %r8
        pushq %r9
        pushq %r10
        pushq %r11
        pushq %r12
        pushq %r13
        pushq %r14
        pushq %r15
        movq %rsp, %rdi
        call exception_handler  /* does not return */
1:      cli
        hlt
        jmp 1b

        .section .rodata
        .balign 8
        .globl exc_stub_table
exc_stub_table:
        .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        .quad exc_\n
        .endr

/* ---------------------------------------------------------------- AP trampoline (copied to 0x8000) */
        .section .text.boot, "ax"
        .code16
        .globl ap_tramp_start, ap_tramp_end
ap_tramp_start:
        cli
        cld
        movw %cs, %ax
        movw %ax, %ds
        lgdtl (tramp_gdtr - ap_tramp_start)
        movl %cr0, %eax
        orl $CR0_PE, %eax
        movl %eax, %cr0
        ljmpl $SEL_KCODE32, $ap_entry32
        .balign 4
tramp_gdtr:
        .word gdt_end - gdt - 1
        .long gdt
ap_tramp_end:
        .code64

/* ---------------------------------------------------------------- data */
        .section .data
        .balign 16
        .globl gdt, gdt_end
gdt:
        .quad 0
        .quad 0x00af9a000000ffff        /* 0x08 kernel code 64 */
        .quad 0x00cf92000000ffff        /* 0x10 kernel data */
        .quad 0x00cf9a000000ffff        /* 0x18 kernel code 32 (AP trampoline) */
        .quad 0x00cff2000000ffff        /* 0x20 user data */
        .quad 0x00affa000000ffff        /* 0x28 user code 64 */
        .fill 2 * MAX_CPUS, 8, 0        /* 0x30 TSS descriptors, filled per CPU */
gdt_end:
        .balign 8
        .globl gdt_ptr
gdt_ptr:
        .word gdt_end - gdt - 1
        .quad gdt
zero_idtr:
        .word 0
        .quad 0
        .balign 4
        .globl sci_pm1_sts_port
sci_pm1_sts_port: .long 0
        .globl boot_start_info, ap_boot_cpu, ap_boot_kstack
boot_start_info: .long 0
ap_boot_cpu:     .long 0
        .balign 8
ap_boot_kstack:  .quad 0

/* Page tables: identity map of 0..4 GiB with 2 MiB user pages; mem.c extends it above 4 GiB. */
        .section .bss.early.pt, "aw", @nobits
        .balign 4096
        .globl pml4, pdpt_low, pd_low
pml4:     .skip 4096
pdpt_low: .skip 4096
pd_low:   .skip 4 * 4096

        .section .note.GNU-stack, "", @progbits
