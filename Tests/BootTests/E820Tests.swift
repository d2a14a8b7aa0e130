import Memory
import XCTest
@testable import Boot

final class E820Tests: XCTestCase {
    func testSmallGuest() throws {
        let memory = try makeMemory(256 << 20)
        XCTAssertEqual(E820.map(for: memory), [
            E820Entry(address: 0, size: 0xA_0000, type: 1),
            E820Entry(address: 0x10_0000, size: (256 << 20) - 0x10_0000, type: 1),
        ])
    }

    func testGuestAbove4GiB() throws {
        // Only the mappings' layout matters; MAP_NORESERVE keeps this cheap.
        let memory = try makeMemory(4 << 30)
        XCTAssertEqual(E820.map(for: memory), [
            E820Entry(address: 0, size: 0xA_0000, type: 1),
            E820Entry(address: 0x10_0000, size: 0xC000_0000 - 0x10_0000, type: 1),
            E820Entry(address: 0x1_0000_0000, size: 1 << 30, type: 1),
        ])
    }
}
