import Memory

/// Everything the boot put into guest memory, for the VMM's log and for tests.
public struct BootSetup: Sendable, Equatable {
    public var kernel: KernelImage
    public var initramfs: InitramfsPlacement?
    public var e820: [E820Entry]
    public var entry: EntryPoint
}

public enum KernelLoader {
    /// Detects the format (ELF with XEN_ELFNOTE_PHYS32_ENTRY note type 18, else bzImage "HdrS" at 0x202),
    /// loads it, writes the command line, the initramfs, the PVH `hvm_start_info` or the bzImage zero page,
    /// the boot GDT and (64-bit entry) the identity page tables. `rsdp` is the ACPI RSDP's address (0: none).
    public static func load(kernel: String, initramfs: String?, cmdline: String, memory: GuestMemory,
                            rsdp: UInt64) throws -> EntryPoint {
        try prepare(kernel: kernel, initramfs: initramfs, cmdline: cmdline, memory: memory, rsdp: rsdp).entry
    }

    /// `load`, returning what went where.
    public static func prepare(kernel: String, initramfs: String?, cmdline: String, memory: GuestMemory,
                               rsdp: UInt64) throws -> BootSetup {
        let image = try KernelImage.load(path: kernel, into: memory)
        try KernelCommandLine.write(cmdline, kernelLimit: image.cmdlineLimit, into: memory)
        let placement = try initramfs.map {
            try Initramfs.load(path: $0, limit: image.initramfsLimit, kernelEnd: image.end, into: memory)
        }
        let e820 = E820.map(for: memory)
        try memoryCall { try BootGDT.write(into: memory) }

        let entry: EntryPoint
        switch image.format {
        case .pvh:
            try PVHStartInfo.write(cmdline: GuestLayout.cmdlineStart, initramfs: placement, e820: e820, rsdp: rsdp,
                                   into: memory)
            entry = .pvh(entry: UInt32(image.entry), startInfo: GuestLayout.pvhInfoStart)
        case .bzImage:
            try ZeroPage.write(image: image, cmdline: GuestLayout.cmdlineStart, initramfs: placement, e820: e820,
                               rsdp: rsdp, into: memory)
            try memoryCall { try IdentityPageTables.write(into: memory) }
            entry = .linux64(entry: image.entry, zeroPage: GuestLayout.zeroPageStart)
        }
        return BootSetup(kernel: image, initramfs: placement, e820: e820, entry: entry)
    }
}
