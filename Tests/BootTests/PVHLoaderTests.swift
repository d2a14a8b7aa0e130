import Memory
import TestSupport
import XCTest
@testable import Boot

final class PVHLoaderTests: XCTestCase {
    /// start_info as the guest reads it.
    struct StartInfo {
        var magic, version, flags, modules: UInt32
        var modlist, cmdline, rsdp, memmap: UInt64
        var memmapEntries, reserved: UInt32

        init(_ memory: GuestMemory, at a: UInt64) throws {
            magic = try memory.load(UInt32.self, at: a)
            version = try memory.load(UInt32.self, at: a + 4)
            flags = try memory.load(UInt32.self, at: a + 8)
            modules = try memory.load(UInt32.self, at: a + 12)
            modlist = try memory.load(UInt64.self, at: a + 16)
            cmdline = try memory.load(UInt64.self, at: a + 24)
            rsdp = try memory.load(UInt64.self, at: a + 32)
            memmap = try memory.load(UInt64.self, at: a + 40)
            memmapEntries = try memory.load(UInt32.self, at: a + 48)
            reserved = try memory.load(UInt32.self, at: a + 52)
        }
    }

    func testLoadsSegmentsAndStartInfo() throws {
        let scratch = try Scratch()
        let elf = SyntheticELF()
        let kernel = try scratch.file("kernel.elf", elf.bytes)
        let initrd: [UInt8] = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let initramfs = try scratch.file("initrd.img", initrd)
        let memory = try makeMemory()
        // Dirty the bss first: the loader must clear it.
        try memory.fill(0xAA, at: elf.loadAddress, count: 0x10000)
        let rsdp = try ACPITables.build(into: memory, config: ACPIConfig(bootCPUs: 2))

        let setup = try KernelLoader.prepare(kernel: kernel, initramfs: initramfs, cmdline: "console=ttyS0 panic=-1",
                                             memory: memory, rsdp: rsdp)
        XCTAssertEqual(setup.entry, .pvh(entry: 0x20_0010, startInfo: GuestLayout.pvhInfoStart))
        XCTAssertEqual(setup.kernel.format, .pvh)
        XCTAssertEqual(setup.kernel.start, elf.loadAddress)
        XCTAssertEqual(setup.kernel.end, elf.loadAddress + UInt64(elf.code.count) + elf.bss)

        XCTAssertEqual(try memory.read(at: elf.loadAddress, count: elf.code.count), elf.code)
        XCTAssertEqual(try memory.read(at: elf.loadAddress + UInt64(elf.code.count), count: Int(elf.bss)),
                       [UInt8](repeating: 0, count: Int(elf.bss)))

        let info = try StartInfo(memory, at: GuestLayout.pvhInfoStart)
        XCTAssertEqual(info.magic, 0x336E_C578)
        XCTAssertEqual(info.version, 1)
        XCTAssertEqual(info.flags, 0)
        XCTAssertEqual(info.cmdline, GuestLayout.cmdlineStart)
        XCTAssertEqual(try readCString(memory, at: info.cmdline), "console=ttyS0 panic=-1")
        XCTAssertEqual(info.rsdp, GuestLayout.rsdpStart)
        XCTAssertEqual(info.reserved, 0)

        // The memory map follows start_info and matches E820.
        XCTAssertGreaterThanOrEqual(info.memmap, GuestLayout.pvhInfoStart + 56)
        XCTAssertEqual(Int(info.memmapEntries), 2)
        var map: [E820Entry] = []
        for i in 0..<UInt64(info.memmapEntries) {
            let e = info.memmap + i * 24
            map.append(E820Entry(address: try memory.load(UInt64.self, at: e), size: try memory.load(UInt64.self, at: e + 8),
                                 type: try memory.load(UInt32.self, at: e + 16)))
            XCTAssertEqual(try memory.load(UInt32.self, at: e + 20), 0)
        }
        XCTAssertEqual(map, E820.map(for: memory))

        // One module: the initramfs, page-aligned at the top of low RAM.
        XCTAssertEqual(info.modules, 1)
        let modAddress = try memory.load(UInt64.self, at: info.modlist)
        let modSize = try memory.load(UInt64.self, at: info.modlist + 8)
        XCTAssertEqual(try memory.load(UInt64.self, at: info.modlist + 16), 0, "module cmdline")
        XCTAssertEqual(modSize, UInt64(initrd.count))
        XCTAssertEqual(modAddress % 4096, 0)
        XCTAssertEqual(modAddress, ((256 << 20) - UInt64(initrd.count)) & ~0xFFF)
        XCTAssertEqual(try memory.read(at: modAddress, count: initrd.count), initrd)
        XCTAssertEqual(setup.initramfs, InitramfsPlacement(address: modAddress, size: UInt64(initrd.count)))

        // The boot GDT is in place for the 32-bit entry.
        let regs = setup.entry.registers
        XCTAssertEqual(regs.rbx, GuestLayout.pvhInfoStart)
        XCTAssertEqual(regs.rip, 0x20_0010)
        XCTAssertEqual(regs.cr0 & BootRegisters.cr0PG, 0, "paging off")
        XCTAssertEqual(regs.efer, 0)
        XCTAssertEqual(try memory.load(UInt64.self, at: GuestLayout.bootGDTStart + UInt64(regs.code.selector)),
                       regs.code.descriptor.raw)
        XCTAssertEqual(try memory.load(UInt64.self, at: GuestLayout.bootGDTStart + UInt64(regs.data.selector)),
                       regs.data.descriptor.raw)
        XCTAssertTrue(regs.code.descriptor.defaultBig)
        XCTAssertFalse(regs.code.descriptor.long)
    }

    func testWithoutInitramfsAndFourByteNoteAndELF32() throws {
        let scratch = try Scratch()
        var elf = SyntheticELF()
        elf.is64Bit = false
        elf.entryNoteSize = 4
        elf.machine = 3
        elf.entry = 0x20_0004
        let memory = try makeMemory()
        let entry = try KernelLoader.load(kernel: try scratch.file("k32", elf.bytes), initramfs: nil, cmdline: "",
                                          memory: memory, rsdp: 0)
        XCTAssertEqual(entry, .pvh(entry: 0x20_0004, startInfo: GuestLayout.pvhInfoStart))
        let info = try StartInfo(memory, at: GuestLayout.pvhInfoStart)
        XCTAssertEqual(info.modules, 0)
        XCTAssertEqual(info.modlist, 0)
        XCTAssertEqual(info.rsdp, 0)
        XCTAssertEqual(try readCString(memory, at: GuestLayout.cmdlineStart), "")
        XCTAssertEqual(try memory.read(at: elf.loadAddress, count: elf.code.count), elf.code)
    }

    /// The checkguest, when another developer's build has produced it.
    func testCheckguestWhenBuilt() throws {
        let path = Paths.checkguest.path
        guard FileManager.default.fileExists(atPath: path) else { throw XCTSkip("checkguest not built") }
        let memory = try makeMemory()
        let setup = try KernelLoader.prepare(kernel: path, initramfs: nil, cmdline: "check", memory: memory,
                                             rsdp: try ACPITables.build(into: memory, config: ACPIConfig(bootCPUs: 1)))
        guard case let .pvh(entry, _) = setup.entry else { return XCTFail("checkguest is not PVH: \(setup.entry)") }
        XCTAssertTrue((setup.kernel.start..<setup.kernel.end).contains(UInt64(entry)))
    }
}
