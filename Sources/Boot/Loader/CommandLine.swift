import Memory

/// The kernel command line, NUL-terminated at `GuestLayout.cmdlineStart`.
enum KernelCommandLine {
    /// Writes `cmdline`; `kernelLimit` is the longest the kernel itself takes (without the NUL).
    static func write(_ cmdline: String, kernelLimit: Int, into memory: GuestMemory) throws {
        let bytes = Array(cmdline.utf8)
        let areaLimit = Int(GuestLayout.cmdlineMaxSize) - 1
        if bytes.count > areaLimit || bytes.count > kernelLimit {
            let byKernel = kernelLimit < areaLimit
            throw BootError.cmdlineTooLong(length: bytes.count, limit: min(areaLimit, kernelLimit), kernelLimit: byKernel)
        }
        try memoryCall { try memory.write(bytes + [0], at: GuestLayout.cmdlineStart) }
    }
}
