import Memory

/// The PVH boot ABI's `hvm_start_info` (xen/include/public/arch-x86/hvm/start_info.h, version 1), with
/// the memory map right after it and the module list (the initramfs) after that.
enum PVHStartInfo {
    static let magic: UInt32 = 0x336E_C578
    static let version: UInt32 = 1
    /// sizeof(struct hvm_start_info) for version 1.
    static let size = 56
    static let memmapEntrySize = 24
    static let modlistEntrySize = 32

    /// Where the memory map goes: after start_info, 64-byte aligned.
    static let memmapAddress = GuestLayout.pvhInfoStart + 0x40

    static func write(cmdline: UInt64, initramfs: InitramfsPlacement?, e820: [E820Entry], rsdp: UInt64,
                      into memory: GuestMemory) throws {
        let modlistAddress = memmapAddress + UInt64(e820.count * memmapEntrySize)
        let end = modlistAddress + UInt64(initramfs == nil ? 0 : modlistEntrySize)
        // The next boot structure (the zero page) is not used on this path, but keep to our page.
        precondition(end <= GuestLayout.zeroPageStart, "PVH start info overflows its page")

        var info = Bytes(count: size)
        info.put(magic, at: 0)
        info.put(version, at: 4)
        info.put(UInt32(0), at: 8)                                // flags
        info.put(UInt32(initramfs == nil ? 0 : 1), at: 12)        // nr_modules
        info.put(initramfs == nil ? UInt64(0) : modlistAddress, at: 16)
        info.put(cmdline, at: 24)
        info.put(rsdp, at: 32)
        info.put(memmapAddress, at: 40)
        info.put(UInt32(e820.count), at: 48)

        var map = Bytes(count: 0)
        for entry in e820 {
            map.append(entry.address)
            map.append(entry.size)
            map.append(entry.type)
            map.append(UInt32(0))
        }

        try memoryCall {
            try memory.write(info.storage, at: GuestLayout.pvhInfoStart)
            try memory.write(map.storage, at: memmapAddress)
            if let initramfs {
                var module = Bytes(count: modlistEntrySize)
                module.put(initramfs.address, at: 0)
                module.put(initramfs.size, at: 8)                 // cmdline_paddr and reserved stay 0
                try memory.write(module.storage, at: modlistAddress)
            }
        }
    }
}
