import Memory

/// A kernel whose code is in guest memory, and what the rest of the boot needs to know about it.
public struct KernelImage: Sendable, Equatable {
    public enum Format: Sendable, Equatable {
        /// An ELF with a PVH entry note (e.g. vmlinux with CONFIG_PVH), loaded by its program headers.
        case pvh
        /// A Linux bzImage, its protected-mode part loaded at `start`, entered through the 64-bit protocol.
        case bzImage(protocolVersion: UInt16)
    }

    /// The Xen ELF note type whose descriptor is the 32-bit PVH entry (XEN_ELFNOTE_PHYS32_ENTRY).
    public static let pvhEntryNoteType: UInt32 = 18

    public var format: Format
    /// The guest-physical entry point: PVH 32-bit entry, or the bzImage 64-bit entry (load address + 0x200).
    public var entry: UInt64
    /// The guest memory the kernel occupies or claims while it starts: its segments (ELF), or its load
    /// address up to `init_size`, the room it decompresses itself into (bzImage). Boot data must stay out.
    public var start: UInt64
    public var end: UInt64
    /// An initramfs must end at or below this address (bzImage: initrd_addr_max + 1).
    public var initramfsLimit: UInt64
    /// The longest command line the kernel takes, without its NUL (bzImage: cmdline_size).
    public var cmdlineLimit: Int
    /// bzImage: the setup header as found in the image, from offset 0x1F1; copied into the zero page.
    public var setupHeader: [UInt8]

    /// Reads the kernel at `path`, detects its format and puts its code into `memory`.
    public static func load(path: String, into memory: GuestMemory) throws -> KernelImage {
        let file = try HostFile(path: path, role: "kernel")
        let head = try file.bytes(at: 0, count: Int(min(file.size, UInt64(SetupHeader.maxEnd))))
        if ELFImage.hasMagic(head) {
            return try loadPVH(file: file, into: memory)
        }
        if head.count >= SetupHeader.magic + 4,
           Array(head[SetupHeader.magic..<SetupHeader.magic + 4]) == SetupHeader.magicValue {
            return try loadBzImage(file: file, head: head, into: memory)
        }
        throw BootError.unknownKernelFormat(path: path)
    }

    private static func loadPVH(file: HostFile, into memory: GuestMemory) throws -> KernelImage {
        let elf = try ELFImage(file: file)
        let notes = try elf.notes(in: file)
        guard let note = notes.first(where: { $0.name == "Xen" && $0.type == pvhEntryNoteType }) else {
            throw BootError.noPVHEntryNote(path: file.path)
        }
        // Linux emits the entry as a pointer-sized value (8 bytes on x86-64); others use 4.
        let entry: UInt64
        switch note.desc.count {
        case 4: entry = UInt64(Bytes.read(UInt32.self, from: note.desc, at: 0))
        case 8: entry = Bytes.read(UInt64.self, from: note.desc, at: 0)
        default:
            throw BootError.unsupportedELF(path: file.path, detail: "PVH entry note of \(note.desc.count) bytes")
        }
        guard entry <= UInt64(UInt32.max) else { throw BootError.badPVHEntry(path: file.path, entry: entry) }

        let segments = elf.loadSegments
        guard !segments.isEmpty else { throw BootError.unsupportedELF(path: file.path, detail: "no loadable segments") }
        let ramEnd = lowRAMEnd(memory)
        for segment in segments {
            guard segment.fileSize <= segment.memorySize else {
                throw BootError.unsupportedELF(path: file.path, detail: "a segment's file size exceeds its memory size")
            }
            let start = segment.physicalAddress
            guard start >= GuestLayout.highRAMStart else {
                throw BootError.kernelBelowHighRAM(path: file.path, address: start)
            }
            let (end, overflow) = start.addingReportingOverflow(segment.memorySize)
            guard !overflow, memory.region(containing: start, count: segment.memorySize) != nil else {
                throw BootError.kernelOutsideRAM(path: file.path, start: start, end: overflow ? .max : end, ramEnd: ramEnd)
            }
        }
        for segment in segments {
            try file.copy(at: segment.offset, count: segment.fileSize, to: segment.physicalAddress, in: memory)
            let bss = segment.memorySize - segment.fileSize
            if bss > 0 { try memoryCall { try memory.fill(0, at: segment.physicalAddress + segment.fileSize, count: bss) } }
        }
        return KernelImage(
            format: .pvh, entry: entry,
            start: segments.map(\.physicalAddress).min()!,
            end: segments.map { $0.physicalAddress + $0.memorySize }.max()!,
            initramfsLimit: GuestLayout.mmioHoleStart,
            cmdlineLimit: Int(GuestLayout.cmdlineMaxSize) - 1,
            setupHeader: [])
    }

    private static func loadBzImage(file: HostFile, head: [UInt8], into memory: GuestMemory) throws -> KernelImage {
        let path = file.path
        guard head.count >= SetupHeader.initSize + 4 else { throw BootError.truncatedBzImage(path: path) }
        func u8(_ o: Int) -> UInt8 { head[o] }
        func u16(_ o: Int) -> UInt16 { Bytes.read(UInt16.self, from: head, at: o) }
        func u32(_ o: Int) -> UInt32 { Bytes.read(UInt32.self, from: head, at: o) }
        func u64(_ o: Int) -> UInt64 { Bytes.read(UInt64.self, from: head, at: o) }

        let version = u16(SetupHeader.version)
        guard version >= SetupHeader.minimumVersion else { throw BootError.bzImageTooOld(path: path, version: version) }
        guard u16(SetupHeader.xloadflags) & SetupHeader.kernel64 != 0 else { throw BootError.bzImageNot64Bit(path: path) }

        let sects = u8(SetupHeader.setupSects) == 0 ? 4 : UInt64(u8(SetupHeader.setupSects))
        let setupSize = (sects + 1) * 512
        guard setupSize < file.size else { throw BootError.truncatedBzImage(path: path) }
        let payloadSize = file.size - setupSize

        let pref = u64(SetupHeader.prefAddress)
        let load = pref != 0 ? pref : SetupHeader.defaultLoadAddress
        let span = max(UInt64(u32(SetupHeader.initSize)), payloadSize)
        guard load >= GuestLayout.highRAMStart else { throw BootError.kernelBelowHighRAM(path: path, address: load) }
        guard memory.region(containing: load, count: span) != nil else {
            let (end, overflow) = load.addingReportingOverflow(span)
            throw BootError.kernelOutsideRAM(path: path, start: load, end: overflow ? .max : end, ramEnd: lowRAMEnd(memory))
        }
        try file.copy(at: setupSize, count: payloadSize, to: load, in: memory)

        let headerEnd = min(SetupHeader.magic + Int(u8(SetupHeader.jump + 1)), SetupHeader.maxEnd, head.count)
        let cmdlineSize = Int(u32(SetupHeader.cmdlineSize))
        return KernelImage(
            format: .bzImage(protocolVersion: version),
            entry: load + SetupHeader.entry64Offset,
            start: load, end: load + span,
            initramfsLimit: UInt64(u32(SetupHeader.initrdAddrMax)) + 1,
            cmdlineLimit: cmdlineSize > 0 ? cmdlineSize : 255,
            setupHeader: Array(head[SetupHeader.start..<max(headerEnd, SetupHeader.initSize + 4)]))
    }

    /// End of the RAM below the 32-bit hole (the region at address 0).
    static func lowRAMEnd(_ memory: GuestMemory) -> UInt64 {
        min(memory.region(containing: 0)?.guestEnd ?? 0, GuestLayout.mmioHoleStart)
    }
}

/// Runs a GuestMemory access, reporting its failure as a BootError.
func memoryCall<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let error as MemoryError { throw BootError.memory(error) }
}
