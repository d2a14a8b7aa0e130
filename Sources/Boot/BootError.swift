import Memory

/// Why a kernel, its initramfs or its command line could not be put into guest memory.
///
/// The messages are shown to the user as they are, so each names the file and what to do about it.
public enum BootError: Error, CustomStringConvertible, Equatable {
    /// `role` is "kernel" or "initramfs"; `reason` is the system's (strerror) text.
    case cannotRead(role: String, path: String, reason: String)
    case emptyFile(role: String, path: String)
    case unknownKernelFormat(path: String)
    case truncatedELF(path: String, detail: String)
    case unsupportedELF(path: String, detail: String)
    case noPVHEntryNote(path: String)
    case badPVHEntry(path: String, entry: UInt64)
    case kernelBelowHighRAM(path: String, address: UInt64)
    case kernelOutsideRAM(path: String, start: UInt64, end: UInt64, ramEnd: UInt64)
    case truncatedBzImage(path: String)
    case bzImageTooOld(path: String, version: UInt16)
    case bzImageNot64Bit(path: String)
    case cmdlineTooLong(length: Int, limit: Int, kernelLimit: Bool)
    case initramfsTooBig(path: String, size: UInt64, start: UInt64, end: UInt64)
    case memory(MemoryError)

    public var description: String {
        switch self {
        case let .cannotRead(role, path, reason):
            return "\(role) file \(path): \(reason)"
        case let .emptyFile(role, path):
            return "\(role) file \(path) is empty"
        case let .unknownKernelFormat(path):
            return "kernel \(path) is neither an ELF with a PVH entry note nor a bzImage"
        case let .truncatedELF(path, detail):
            return "kernel \(path) is a truncated ELF (\(detail)); was the copy or download cut short?"
        case let .unsupportedELF(path, detail):
            return "kernel \(path) is an ELF this VMM cannot boot: \(detail)"
        case let .noPVHEntryNote(path):
            return "kernel \(path) is an ELF without a PVH entry note (Xen note XEN_ELFNOTE_PHYS32_ENTRY): "
                + "build it with CONFIG_PVH=y, or boot its bzImage instead"
        case let .badPVHEntry(path, entry):
            return "kernel \(path) has a PVH entry point at \(hex(entry)), which a 32-bit entry cannot reach"
        case let .kernelBelowHighRAM(path, address):
            return "kernel \(path) wants to be loaded at \(hex(address)), below 1 MiB where the boot data lives; "
                + "link it at 1 MiB or above"
        case let .kernelOutsideRAM(path, start, end, ramEnd):
            return "kernel \(path) needs guest memory \(hex(start))–\(hex(end)) but RAM below the 32-bit hole "
                + "ends at \(hex(ramEnd)): give the VM more memory"
        case let .truncatedBzImage(path):
            return "kernel \(path) is a truncated bzImage (shorter than its setup header says); "
                + "was the copy or download cut short?"
        case let .bzImageTooOld(path, version):
            return "kernel \(path) speaks boot protocol \(version >> 8).\(String(format2: version & 0xff)); "
                + "the 64-bit entry needs 2.12 or later (Linux 3.8+)"
        case let .bzImageNot64Bit(path):
            return "kernel \(path) is a bzImage without a 64-bit entry point (XLF_KERNEL_64): "
                + "an x86-64 kernel is needed"
        case let .cmdlineTooLong(length, limit, kernelLimit):
            let limitText = kernelLimit ? "the kernel accepts at most \(limit)" : "at most \(limit) fit in guest memory"
            return "kernel command line is \(length) bytes, but \(limitText)"
        case let .initramfsTooBig(path, size, start, end):
            return "initramfs \(path) (\(humanSize(size))) does not fit below \(hex(end)) "
                + "above the kernel (which ends at \(hex(start))): give the VM more memory"
        case let .memory(error):
            return error.description
        }
    }
}

/// Why the ACPI tables could not be built.
public enum ACPIError: Error, CustomStringConvertible, Equatable {
    case badCPUCount(boot: Int, max: Int)
    case tooManyCPUs(max: Int, limit: Int)
    case tablesTooLarge(end: UInt64, limit: UInt64)
    case badWindow(what: String, detail: String)
    case memory(MemoryError)

    public var description: String {
        switch self {
        case let .badCPUCount(boot, max):
            return "cannot describe \(boot) boot vCPUs out of \(max): need 1 ≤ boot ≤ max"
        case let .tooManyCPUs(max, limit):
            return "cannot describe \(max) vCPUs in the ACPI MADT: at most \(limit) are supported"
        case let .tablesTooLarge(end, limit):
            return "the ACPI tables would end at \(hex(end)), past their area's end at \(hex(limit))"
        case let .badWindow(what, detail):
            return "the \(what) is unusable: \(detail)"
        case let .memory(error):
            return error.description
        }
    }
}

extension String {
    /// Two decimal digits, as boot protocol minor versions are written ("2.05").
    init<T: BinaryInteger>(format2 value: T) {
        let s = String(value)
        self = s.count < 2 ? "0" + s : s
    }
}
