import XCTest
@testable import Boot

/// Encodings checked against what iasl produces for the same ASL.
final class AMLTests: XCTestCase {
    func testNames() {
        XCTAssertEqual(AML.nameString("_HID"), Array("_HID".utf8))
        XCTAssertEqual(AML.nameString("GED"), Array("GED_".utf8))
        XCTAssertEqual(AML.nameString("\\_SB_"), [0x5C] + Array("_SB_".utf8))
        XCTAssertEqual(AML.nameString("\\_SB_.PWRB"), [0x5C, 0x2E] + Array("_SB_PWRB".utf8))
        XCTAssertEqual(AML.nameString("\\_SB.PCI0.COM1"), [0x5C, 0x2F, 3] + Array("_SB_PCI0COM1".utf8))
        XCTAssertEqual(AML.nameString("^PWRB"), [0x5E] + Array("PWRB".utf8))
    }

    func testIntegers() {
        XCTAssertEqual(AML.integer(0), [0x00])
        XCTAssertEqual(AML.integer(1), [0x01])
        XCTAssertEqual(AML.integer(5), [0x0A, 5])
        XCTAssertEqual(AML.integer(0x3F8), [0x0B, 0xF8, 0x03])
        XCTAssertEqual(AML.integer(0xE800_0000), [0x0C, 0x00, 0x00, 0x00, 0xE8])
        XCTAssertEqual(AML.integer(0x1_0000_0000), [0x0E, 0, 0, 0, 0, 1, 0, 0, 0])
    }

    func testPkgLength() {
        XCTAssertEqual(AML.pkgLength(0), [0x01])
        XCTAssertEqual(AML.pkgLength(62), [0x3F])
        XCTAssertEqual(AML.pkgLength(63), [0x41, 0x04])            // 65 = 0x41: nibble 1, then 0x04
        XCTAssertEqual(AML.pkgLength(0xFFD), [0x40 | 0xF, 0xFF])   // 0xFFF total, the 2-byte maximum
        XCTAssertEqual(AML.pkgLength(0xFFE), [0x80 | 0x1, 0x00, 0x01])
    }

    func testEISAID() {
        XCTAssertEqual(AML.eisaID("PNP0A03"), [0x0C, 0x41, 0xD0, 0x0A, 0x03])
        XCTAssertEqual(AML.eisaID("PNP0C0C"), [0x0C, 0x41, 0xD0, 0x0C, 0x0C])
    }

    func testNameWithPackage() {
        // Name (_S5_, Package (0x02) { 0x05, Zero })
        XCTAssertEqual(AML.name("_S5_", AML.package([AML.integer(5), AML.integer(0)])),
                       [0x08, 0x5F, 0x53, 0x35, 0x5F, 0x12, 0x05, 0x02, 0x0A, 0x05, 0x00])
    }

    func testMethodAndNotify() {
        // Method (_EVT, 1, Serialized) { Notify (\_SB.PWRB, 0x80) }
        XCTAssertEqual(AML.method("_EVT", arguments: 1, serialized: true, [AML.notify("\\_SB_.PWRB", 0x80)]),
                       [0x14, 0x13] + Array("_EVT".utf8) + [0x09, 0x86, 0x5C, 0x2E] + Array("_SB_PWRB".utf8)
                       + [0x0A, 0x80])
    }

    func testResourceTemplate() {
        // ResourceTemplate () { IO (Decode16, 0x03F8, 0x03F8, 0x01, 0x08) IRQNoFlags () {4} }
        XCTAssertEqual(AML.resourceTemplate([.io(min: 0x3F8, max: 0x3F8, alignment: 1, length: 8), .irq([4])]),
                       [0x11, 0x10, 0x0A, 0x0D, 0x47, 0x01, 0xF8, 0x03, 0xF8, 0x03, 0x01, 0x08,
                        0x22, 0x10, 0x00, 0x79, 0x00])
        // Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { 5 }
        XCTAssertEqual(AMLResource.interrupt(gsis: [5], edge: true, activeLow: false, shared: false).bytes,
                       [0x89, 0x06, 0x00, 0x03, 0x01, 0x05, 0x00, 0x00, 0x00])
        XCTAssertEqual(AMLResource.wordBusNumber(min: 0, max: 0xFF).bytes,
                       [0x88, 0x0D, 0x00, 0x02, 0x0C, 0x00, 0, 0, 0, 0, 0xFF, 0, 0, 0, 0, 1])
        XCTAssertEqual(AMLResource.memory32Fixed(base: 0xE800_0000, length: 0x1000_0000).bytes,
                       [0x86, 0x09, 0x00, 0x01, 0, 0, 0, 0xE8, 0, 0, 0, 0x10])
    }
}
