import Memory
import XCTest
@testable import Boot

/// The zero page as the kernel reads it.
struct ZeroPageView {
    let page: [UInt8]
    init(_ memory: GuestMemory) throws { page = try memory.read(at: GuestLayout.zeroPageStart, count: 4096) }
    func u8(_ o: Int) -> UInt8 { page[o] }
    func u16(_ o: Int) -> UInt16 { LE.read(UInt16.self, page, o) }
    func u32(_ o: Int) -> UInt32 { LE.read(UInt32.self, page, o) }
    func u64(_ o: Int) -> UInt64 { LE.read(UInt64.self, page, o) }

    var e820: [E820Entry] {
        (0..<Int(u8(0x1E8))).map { i in
            E820Entry(address: u64(0x2D0 + 20 * i), size: u64(0x2D0 + 20 * i + 8), type: u32(0x2D0 + 20 * i + 16))
        }
    }
}

final class BzImageLoaderTests: XCTestCase {
    func testZeroPageAndPayload() throws {
        let scratch = try Scratch()
        let image = SyntheticBzImage()
        let kernel = try scratch.file("bzImage", image.bytes)
        let initrd: [UInt8] = (0..<10000).map { UInt8(truncatingIfNeeded: $0 &* 17) }
        let initramfs = try scratch.file("initrd", initrd)
        let memory = try makeMemory()
        try memory.fill(0xEE, at: GuestLayout.zeroPageStart, count: 4096)   // the loader must clear it
        let rsdp = try ACPITables.build(into: memory, config: ACPIConfig(bootCPUs: 2))

        let setup = try KernelLoader.prepare(kernel: kernel, initramfs: initramfs, cmdline: "console=ttyS0",
                                             memory: memory, rsdp: rsdp)
        XCTAssertEqual(setup.entry, .linux64(entry: 0x100_0200, zeroPage: GuestLayout.zeroPageStart))
        XCTAssertEqual(setup.kernel.format, .bzImage(protocolVersion: 0x020F))
        XCTAssertEqual(setup.kernel.start, 0x100_0000)
        XCTAssertEqual(setup.kernel.end, 0x100_0000 + UInt64(image.initSize))
        XCTAssertEqual(try memory.read(at: 0x100_0000, count: image.payload.count), image.payload)

        let z = try ZeroPageView(memory)
        // The setup header is the image's...
        XCTAssertEqual(Array(z.page[0x202..<0x206]), Array("HdrS".utf8))
        XCTAssertEqual(z.u16(0x206), 0x020F)
        XCTAssertEqual(z.u8(0x1F1), image.setupSects)
        XCTAssertEqual(z.u16(0x1FE), 0xAA55)
        XCTAssertEqual(z.u64(0x258), 0x100_0000)
        XCTAssertEqual(z.u32(0x238), 2047)
        // ...nothing of the real-mode code or the sentinel comes along...
        XCTAssertEqual(z.u8(0x1EF), 0, "sentinel")
        XCTAssertEqual(Array(z.page[0x26C..<0x290]), [UInt8](repeating: 0, count: 0x24))
        var before = Array(z.page[0..<0x1E8])
        before.replaceSubrange(0x70..<0x78, with: [UInt8](repeating: 0, count: 8))   // acpi_rsdp_addr
        XCTAssertEqual(before, [UInt8](repeating: 0, count: 0x1E8), "nothing else before e820_entries")
        // ...and the boot loader's fields are filled in.
        XCTAssertEqual(z.u8(0x210), 0xFF, "type_of_loader")
        XCTAssertEqual(z.u8(0x211), 0x01 | 0x80, "LOADED_HIGH | CAN_USE_HEAP")
        XCTAssertEqual(z.u16(0x224), 0xDE00, "heap_end_ptr")
        XCTAssertEqual(z.u32(0x228), UInt32(GuestLayout.cmdlineStart))
        XCTAssertEqual(try readCString(memory, at: GuestLayout.cmdlineStart), "console=ttyS0")
        XCTAssertEqual(z.u64(0x070), GuestLayout.rsdpStart, "acpi_rsdp_addr")
        XCTAssertEqual(z.e820, E820.map(for: memory))

        let ramdisk = UInt64(z.u32(0x218))
        XCTAssertEqual(UInt64(z.u32(0x21C)), UInt64(initrd.count))
        XCTAssertEqual(ramdisk % 4096, 0)
        XCTAssertGreaterThanOrEqual(ramdisk, setup.kernel.end)
        XCTAssertLessThanOrEqual(ramdisk + UInt64(initrd.count), 256 << 20)
        XCTAssertEqual(try memory.read(at: ramdisk, count: initrd.count), initrd)

        // Identity page tables and the GDT for the 64-bit entry.
        let regs = setup.entry.registers
        XCTAssertEqual(regs.cr3, GuestLayout.pml4Start)
        XCTAssertEqual(regs.rsi, GuestLayout.zeroPageStart)
        XCTAssertEqual(regs.code.selector, 0x10, "__BOOT_CS")
        XCTAssertEqual(regs.data.selector, 0x18, "__BOOT_DS")
        XCTAssertTrue(regs.code.descriptor.long)
        XCTAssertEqual(try memory.load(UInt64.self, at: GuestLayout.bootGDTStart + 0x10), regs.code.descriptor.raw)
        XCTAssertEqual(try memory.load(UInt64.self, at: GuestLayout.pml4Start) & ~0xFFF, GuestLayout.pml4Start + 0x1000)
        XCTAssertEqual(try memory.load(UInt64.self, at: GuestLayout.pml4Start + 0x1000) & ~0xFFF,
                       GuestLayout.pml4Start + 0x2000)
        for i: UInt64 in [0, 1, 8, 511] {
            XCTAssertEqual(try memory.load(UInt64.self, at: GuestLayout.pml4Start + 0x2000 + i * 8), (i << 21) | 0x83)
        }
    }

    func testInitramfsRespectsInitrdAddrMax() throws {
        let scratch = try Scratch()
        var image = SyntheticBzImage()
        image.initrdAddrMax = 0x07FF_FFFF                  // 128 MiB
        let memory = try makeMemory()
        let setup = try KernelLoader.prepare(kernel: try scratch.file("bz", image.bytes),
                                             initramfs: try scratch.file("i", [UInt8](repeating: 7, count: 4097)),
                                             cmdline: "x", memory: memory, rsdp: 0)
        XCTAssertEqual(setup.initramfs, InitramfsPlacement(address: 0x0800_0000 - 0x2000, size: 4097))
        XCTAssertEqual(try ZeroPageView(memory).u64(0x070), 0, "no RSDP given")
    }

    func testCmdlineLimitIsTheKernels() throws {
        let scratch = try Scratch()
        var image = SyntheticBzImage()
        image.cmdlineSize = 16
        let memory = try makeMemory()
        let kernel = try scratch.file("bz", image.bytes)
        XCTAssertNoThrow(try KernelLoader.load(kernel: kernel, initramfs: nil, cmdline: String(repeating: "a", count: 16),
                                               memory: memory, rsdp: 0))
        XCTAssertThrows(try KernelLoader.load(kernel: kernel, initramfs: nil, cmdline: String(repeating: "a", count: 17),
                                              memory: memory, rsdp: 0),
                        BootError.cmdlineTooLong(length: 17, limit: 16, kernelLimit: true),
                        message: "kernel command line is 17 bytes, but the kernel accepts at most 16")
    }
}
