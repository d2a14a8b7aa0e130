import Memory
import XCTest
@testable import Boot

final class EntryPointTests: XCTestCase {
    func testDescriptorsDecodeAndRoundTrip() {
        let code64 = BootGDT.code64
        XCTAssertEqual(code64.base, 0)
        XCTAssertEqual(code64.limit, 0xFFFF_FFFF)
        XCTAssertEqual(code64.type, 0xB)
        XCTAssertTrue(code64.codeOrData && code64.present && code64.long && code64.granularity)
        XCTAssertFalse(code64.defaultBig, "a 64-bit code segment must have D clear")
        XCTAssertTrue(BootGDT.code32.defaultBig)
        XCTAssertEqual(BootGDT.data.type, 0x3)
        XCTAssertEqual(BootGDT.task.type, 0xB)
        XCTAssertFalse(BootGDT.task.codeOrData)
        XCTAssertEqual(BootGDT.task.limit, 0x67)
        for raw: UInt64 in [0x00CF_9B00_0000_FFFF, 0x00AF_9B00_0000_FFFF, 0x00CF_9300_0000_FFFF, 0x0000_8B00_0000_0067,
                            0x12CF_9A34_5678_FFFF] {
            XCTAssertEqual(SegmentDescriptor(raw: raw).raw, raw)
        }
        XCTAssertEqual(BootGDT.gdt, DescriptorTable(base: 0x500, limit: 31))
        XCTAssertLessThanOrEqual(BootGDT.gdt.base + UInt64(BootGDT.gdt.limit) + 1, GuestLayout.bootIDTStart)
    }

    func testLinux64Registers() {
        let r = EntryPoint.linux64(entry: 0x100_0200, zeroPage: 0x7000).registers
        XCTAssertEqual(r.rip, 0x100_0200)
        XCTAssertEqual(r.rsi, 0x7000)
        XCTAssertEqual(r.cr0 & 0x8000_0001, 0x8000_0001, "PE and PG")
        XCTAssertEqual(r.cr4 & 0x20, 0x20, "PAE")
        XCTAssertEqual(r.efer, 0x500, "LME and LMA")
        XCTAssertEqual(r.cr3, 0x9000)
        XCTAssertEqual(r.rflags, 2)
    }
}
