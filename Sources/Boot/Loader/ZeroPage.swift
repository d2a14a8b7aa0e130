import Memory

/// The Linux zero page (`struct boot_params`) for the 64-bit boot protocol: the image's setup header
/// plus what a boot loader fills in.
enum ZeroPage {
    static func write(image: KernelImage, cmdline: UInt64, initramfs: InitramfsPlacement?, e820: [E820Entry],
                      rsdp: UInt64, into memory: GuestMemory) throws {
        var page = Bytes(count: SetupHeader.zeroPageSize)
        page.put(image.setupHeader, at: SetupHeader.start)

        page[SetupHeader.typeOfLoader] = SetupHeader.undefinedLoader
        page[SetupHeader.loadFlags] |= SetupHeader.canUseHeap
        page.put(SetupHeader.heapEnd, at: SetupHeader.heapEndPtr)
        page.put(UInt32(truncatingIfNeeded: cmdline), at: SetupHeader.cmdLinePtr)
        page.put(UInt32(truncatingIfNeeded: cmdline >> 32), at: SetupHeader.extCmdLinePtr)
        if let initramfs {
            page.put(UInt32(truncatingIfNeeded: initramfs.address), at: SetupHeader.ramdiskImage)
            page.put(UInt32(truncatingIfNeeded: initramfs.size), at: SetupHeader.ramdiskSize)
            page.put(UInt32(truncatingIfNeeded: initramfs.address >> 32), at: SetupHeader.extRamdiskImage)
            page.put(UInt32(truncatingIfNeeded: initramfs.size >> 32), at: SetupHeader.extRamdiskSize)
        } else {
            page.put(UInt32(0), at: SetupHeader.ramdiskImage)
            page.put(UInt32(0), at: SetupHeader.ramdiskSize)
        }
        page.put(rsdp, at: SetupHeader.acpiRSDPAddr)

        precondition(e820.count <= SetupHeader.e820MaxEntries, "more E820 entries than the zero page holds")
        page[SetupHeader.e820Entries] = UInt8(e820.count)
        for (i, entry) in e820.enumerated() {
            let o = SetupHeader.e820Table + i * 20
            page.put(entry.address, at: o)
            page.put(entry.size, at: o + 8)
            page.put(entry.type, at: o + 16)
        }
        try memoryCall { try memory.write(page.storage, at: GuestLayout.zeroPageStart) }
    }
}
