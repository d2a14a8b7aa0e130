import Memory

/// Where an initramfs went in guest memory.
public struct InitramfsPlacement: Sendable, Equatable {
    public var address: UInt64
    public var size: UInt64
}

enum Initramfs {
    /// Loads the file page-aligned as high as allowed: below `limit` (the kernel's initrd_addr_max + 1)
    /// and below the 32-bit hole, above `kernelEnd`. High, because the kernel decompresses and allocates
    /// upwards from its load address, and Linux boot loaders have always done so.
    static func load(path: String, limit: UInt64, kernelEnd: UInt64, into memory: GuestMemory) throws -> InitramfsPlacement {
        let file = try HostFile(path: path, role: "initramfs")
        let top = min(limit, KernelImage.lowRAMEnd(memory)).alignedDown(to: 0x1000)
        let floor = kernelEnd.alignedUp(to: 0x1000)
        guard file.size <= top, (top - file.size).alignedDown(to: 0x1000) >= floor else {
            throw BootError.initramfsTooBig(path: path, size: file.size, start: kernelEnd, end: top)
        }
        let address = (top - file.size).alignedDown(to: 0x1000)
        try file.copy(at: 0, count: file.size, to: address, in: memory)
        return InitramfsPlacement(address: address, size: file.size)
    }
}
