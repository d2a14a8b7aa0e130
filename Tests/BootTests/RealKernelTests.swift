import Memory
import TestSupport
import XCTest
@testable import Boot

/// The Debian cloud kernel fetched by scripts/fetch-linux, when it is there.
final class RealKernelTests: XCTestCase {
    static let directory = Paths.root.appendingPathComponent(".build/linux")

    private func file(_ name: String) throws -> String {
        let path = Self.directory.appendingPathComponent(name).path
        guard FileManager.default.fileExists(atPath: path) else {
            throw XCTSkip("\(path) missing: run scripts/fetch-linux")
        }
        return path
    }

    func testDebianBzImage() throws {
        let kernel = try file("bzImage")
        let scratch = try Scratch()
        let initrd = try scratch.file("initrd", [UInt8](repeating: 0x42, count: 1 << 20))
        let memory = try makeMemory()
        let rsdp = try ACPITables.build(into: memory, config: ACPIConfig(bootCPUs: 2))
        let setup = try KernelLoader.prepare(kernel: kernel, initramfs: initrd, cmdline: "console=ttyS0 quiet",
                                             memory: memory, rsdp: rsdp)
        guard case let .linux64(entry, zeroPage) = setup.entry else { return XCTFail("\(setup.entry)") }
        guard case let .bzImage(version) = setup.kernel.format else { return XCTFail("\(setup.kernel.format)") }
        XCTAssertGreaterThanOrEqual(version, 0x020C)
        XCTAssertEqual(zeroPage, GuestLayout.zeroPageStart)
        XCTAssertEqual(entry, setup.kernel.start + 0x200)
        XCTAssertLessThanOrEqual(setup.kernel.end, IdentityPageTables.mappedSize)

        let image = try [UInt8](Data(contentsOf: URL(fileURLWithPath: kernel)))
        let setupSize = (Int(image[0x1F1] == 0 ? 4 : image[0x1F1]) + 1) * 512
        XCTAssertEqual(try memory.read(at: setup.kernel.start, count: 4096), Array(image[setupSize..<setupSize + 4096]))

        let z = try ZeroPageView(memory)
        XCTAssertEqual(Array(z.page[0x202..<0x206]), Array("HdrS".utf8))
        XCTAssertEqual(z.u16(0x206), version)
        XCTAssertEqual(z.u8(0x210), 0xFF)
        XCTAssertEqual(z.u8(0x211) & 0x81, 0x81)
        XCTAssertEqual(z.u32(0x228), UInt32(GuestLayout.cmdlineStart))
        XCTAssertEqual(UInt64(z.u32(0x218)), setup.initramfs?.address)
        XCTAssertEqual(z.u32(0x21C), 1 << 20)
        XCTAssertLessThanOrEqual(UInt64(z.u32(0x218)) + (1 << 20) - 1, UInt64(z.u32(0x22C)), "below initrd_addr_max")
        XCTAssertEqual(z.u64(0x070), rsdp)
        XCTAssertEqual(z.e820, E820.map(for: memory))
    }

    func testDebianVmlinuxPVH() throws {
        let kernel = try file("vmlinux")
        let memory = try makeMemory()
        let setup = try KernelLoader.prepare(kernel: kernel, initramfs: nil, cmdline: "console=ttyS0", memory: memory,
                                             rsdp: try ACPITables.build(into: memory, config: ACPIConfig(bootCPUs: 1)))
        guard case let .pvh(entry, startInfo) = setup.entry else { return XCTFail("\(setup.entry)") }
        XCTAssertEqual(startInfo, GuestLayout.pvhInfoStart)
        XCTAssertEqual(setup.kernel.start, 0x100_0000, "vmlinux is linked at CONFIG_PHYSICAL_START")
        XCTAssertTrue((setup.kernel.start..<setup.kernel.end).contains(UInt64(entry)), "entry \(hex(entry))")
        XCTAssertEqual(try memory.load(UInt32.self, at: startInfo), 0x336E_C578)
        print("Debian vmlinux PVH entry: \(hex(entry)), occupies \(hex(setup.kernel.start))–\(hex(setup.kernel.end))")
    }
}
