import Foundation
import XCTest
@testable import Virtio

final class RngTests: XCTestCase {
    func testFillsWritableBuffersFromTheSource() throws {
        let source = FileManager.default.temporaryDirectory.appendingPathComponent("rng-\(UUID().uuidString)").path
        let bytes = (0..<40).map { UInt8($0 * 3) }
        XCTAssertTrue(FileManager.default.createFile(atPath: source, contents: Data(bytes)))
        defer { unlink(source) }
        let h = try DeviceHarness(try VirtioRng(source: source))
        try h.submit([(0x20_0000, 16, true), (0x20_1000, 16, true)])
        XCTAssertEqual(try h.waitUsed(1).len, 32)
        XCTAssertEqual(try h.memory.read(at: 0x20_0000, count: 16) + h.memory.read(at: 0x20_1000, count: 16), Array(bytes[..<32]))
        try h.submit([(0x20_2000, 16, true)])
        XCTAssertEqual(try h.waitUsed(2).len, 8, "the source ran out")
        XCTAssertEqual(try h.memory.read(at: 0x20_2000, count: 8), Array(bytes[32...]))
    }

    func testDefaultSourceIsURandom() throws {
        let rng = try VirtioRng()
        XCTAssertEqual(rng.source, "/dev/urandom")
        XCTAssertEqual(rng.deviceType, .rng)
        let h = try DeviceHarness(rng)
        try h.submit([(0x20_0000, 64, true)])
        XCTAssertEqual(try h.waitUsed(1).len, 64)
        XCTAssertNotEqual(try h.memory.read(at: 0x20_0000, count: 64), [UInt8](repeating: 0, count: 64))
    }

    func testUnopenableSourceIsAClearError() {
        XCTAssertThrowsError(try VirtioRng(source: "/nonexistent/entropy")) {
            XCTAssertEqual("\($0)", "cannot open entropy source /nonexistent/entropy: No such file or directory; "
                + "set --rng src= to a readable file or device")
        }
        XCTAssertThrowsError(try VirtioRng(source: "/tmp")) { XCTAssertEqual($0 as? RngError, .notReadable(path: "/tmp")) }
    }
}
