/* checkguest: syscall numbers (user mode -> CPL0 through `int3`; see boot.S). */
#ifndef SYSCALLS_H
#define SYSCALLS_H
#define SYS_HALT 0          /* sti; hlt: wait for the next interrupt */
#define SYS_WRMSR 1         /* rdi = msr, rsi = value */
#define SYS_RDMSR 2         /* rdi = msr -> rax */
#define SYS_CPUID 3         /* rdi = leaf, rsi = subleaf -> eax, ebx, ecx, edx */
#define SYS_RESET 4         /* triple fault */
#define SYS_HALT_FOREVER 5  /* cli; hlt */
#define SYS_FLUSH_TLB 6     /* reload cr3 */
#define SYS_INB 7           /* rdi = port -> value */
#define SYS_INW 8
#define SYS_INL 9
#define SYS_OUTB 10         /* rdi = port, rsi = value */
#define SYS_OUTW 11
#define SYS_OUTL 12
#define SYS_PCI_READ 13     /* rdi = config address (bus<<16 | dev<<11 | fn<<8 | offset) -> dword */
#define SYS_SERIAL_WRITE 14 /* rdi = buffer, rsi = length */
#define SYS_PCI_WRITE 15    /* rdi = config address, rsi = value, rdx = size (1/2/4); C path */
#define SYS_HALT_IF 16      /* rdi = address of a u16, rsi = value: sti; hlt only while *rdi == rsi */
#define SYS_COUNT 17
#endif
