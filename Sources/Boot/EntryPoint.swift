import Memory

/// How the boot vCPU must start to run a loaded kernel.
public enum EntryPoint: Sendable, Equatable {
    /// PVH: 32-bit protected mode, paging off, EBX = guest address of `hvm_start_info`.
    case pvh(entry: UInt32, startInfo: UInt64)
    /// Linux 64-bit boot protocol: long mode, RSI = guest address of the zero page (`boot_params`);
    /// CR3 = `IdentityPageTables.pml4` (first 1 GiB identity-mapped), GDT at `GuestLayout.bootGDTStart`.
    case linux64(entry: UInt64, zeroPage: UInt64)

    /// The boot vCPU's registers for this entry; everything else (FPU, MSRs, other vCPUs) is the VMM's.
    public var registers: BootRegisters {
        switch self {
        case let .pvh(entry, startInfo):
            return BootRegisters(
                rip: UInt64(entry), rsp: GuestLayout.bootStackPointer, rbp: 0, rsi: 0, rbx: startInfo,
                cr0: BootRegisters.cr0PE | BootRegisters.cr0ET, cr3: 0, cr4: 0, efer: 0,
                code: SegmentRegister(selector: BootGDT.code32Selector, descriptor: BootGDT.code32))
        case let .linux64(entry, zeroPage):
            return BootRegisters(
                rip: entry, rsp: GuestLayout.bootStackPointer, rbp: GuestLayout.bootStackPointer,
                rsi: zeroPage, rbx: 0,
                cr0: BootRegisters.cr0PE | BootRegisters.cr0ET | BootRegisters.cr0PG,
                cr3: IdentityPageTables.pml4, cr4: BootRegisters.cr4PAE,
                efer: BootRegisters.eferLME | BootRegisters.eferLMA,
                code: SegmentRegister(selector: BootGDT.code64Selector, descriptor: BootGDT.code64))
        }
    }
}

/// The architectural state a kernel entry expects, as plain numbers (no hypervisor types).
public struct BootRegisters: Sendable, Equatable {
    public static let cr0PE: UInt64 = 1
    public static let cr0ET: UInt64 = 1 << 4
    public static let cr0PG: UInt64 = 1 << 31
    public static let cr4PAE: UInt64 = 1 << 5
    public static let eferLME: UInt64 = 1 << 8
    public static let eferLMA: UInt64 = 1 << 10

    public var rip: UInt64
    public var rsp: UInt64
    public var rbp: UInt64
    public var rsi: UInt64
    public var rbx: UInt64
    /// Bit 1 is reserved-set; interrupts off.
    public var rflags: UInt64 = 0x2
    public var cr0: UInt64
    public var cr3: UInt64
    public var cr4: UInt64
    public var efer: UInt64
    /// CS.
    public var code: SegmentRegister
    /// DS, ES, FS, GS and SS.
    public var data = SegmentRegister(selector: BootGDT.dataSelector, descriptor: BootGDT.data)
    /// TR (VM entry requires a usable busy TSS).
    public var task = SegmentRegister(selector: 0, descriptor: BootGDT.task)
    public var gdt = BootGDT.gdt
    public var idt = BootGDT.idt

    init(rip: UInt64, rsp: UInt64, rbp: UInt64, rsi: UInt64, rbx: UInt64,
         cr0: UInt64, cr3: UInt64, cr4: UInt64, efer: UInt64, code: SegmentRegister) {
        self.rip = rip
        self.rsp = rsp
        self.rbp = rbp
        self.rsi = rsi
        self.rbx = rbx
        self.cr0 = cr0
        self.cr3 = cr3
        self.cr4 = cr4
        self.efer = efer
        self.code = code
    }
}
