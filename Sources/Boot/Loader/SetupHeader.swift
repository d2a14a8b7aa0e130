/// Offsets of the Linux x86 boot protocol's setup header, which sits at the same place in a bzImage
/// and in the zero page (`struct boot_params`), and of the zero-page fields around it
/// (Documentation/arch/x86/boot.rst, arch/x86/include/uapi/asm/bootparam.h).
enum SetupHeader {
    /// First byte of the setup header (setup_sects).
    static let start = 0x1F1
    /// The header is at most this long: `edd_mbr_sig_buffer` follows in the zero page.
    static let maxEnd = 0x290

    static let setupSects = 0x1F1
    static let bootFlag = 0x1FE          // u16 0xAA55
    static let jump = 0x200              // the byte at 0x201 + 0x202 = end of the header
    static let magic = 0x202             // "HdrS"
    static let version = 0x206           // u16
    static let typeOfLoader = 0x210      // u8
    static let loadFlags = 0x211         // u8
    static let ramdiskImage = 0x218      // u32
    static let ramdiskSize = 0x21C       // u32
    static let heapEndPtr = 0x224        // u16
    static let cmdLinePtr = 0x228        // u32
    static let initrdAddrMax = 0x22C     // u32
    static let kernelAlignment = 0x230   // u32
    static let relocatableKernel = 0x234 // u8
    static let xloadflags = 0x236        // u16
    static let cmdlineSize = 0x238       // u32
    static let prefAddress = 0x258       // u64
    static let initSize = 0x260          // u32

    static let magicValue: [UInt8] = Array("HdrS".utf8)

    // loadflags
    static let loadedHigh: UInt8 = 0x01
    static let canUseHeap: UInt8 = 0x80
    // xloadflags
    static let kernel64: UInt16 = 0x01

    /// "Undefined" boot loader: we have no ID assigned (boot.rst, type_of_loader).
    static let undefinedLoader: UInt8 = 0xFF
    /// Where the real-mode heap ends, relative to the setup segment, as boot.rst's sample loader sets it.
    /// Only the 16-bit setup code uses it, which our 64-bit entry skips; set anyway as a proper loader does.
    static let heapEnd: UInt16 = 0xE000 - 0x200

    /// Protocol 2.12 (Linux 3.8) introduced xloadflags and with it the documented 64-bit entry.
    static let minimumVersion: UInt16 = 0x020C
    /// The 64-bit entry point is this far into the protected-mode kernel.
    static let entry64Offset: UInt64 = 0x200
    /// Where a kernel without pref_address is loaded (the x86-64 default CONFIG_PHYSICAL_START).
    static let defaultLoadAddress: UInt64 = 0x100_0000

    // Zero-page fields outside the setup header.
    static let acpiRSDPAddr = 0x070      // u64
    static let extRamdiskImage = 0x0C0   // u32
    static let extRamdiskSize = 0x0C4    // u32
    static let extCmdLinePtr = 0x0C8     // u32
    static let e820Entries = 0x1E8       // u8
    static let e820Table = 0x2D0         // 128 × {u64 addr, u64 size, u32 type}
    static let e820MaxEntries = 128
    static let zeroPageSize = 0x1000
}
