import Snapshot
import XCTest

/// The checksum must be the real XXH64 (so that other tools can check a snapshot).
final class XXH64Tests: XCTestCase {
    func testReferenceVectors() {
        XCTAssertEqual(XXH64.hash([]), 0xEF46_DB37_51D8_E999)
        XCTAssertEqual(XXH64.hash(Array("a".utf8)), 0xD24E_C4F1_A98C_6E5B)
        XCTAssertEqual(XXH64.hash(Array("abc".utf8)), 0x44BC_2CF5_AD77_0999)
        XCTAssertEqual(XXH64.hash(Array("Nobody inspects the spammish repetition".utf8)), 0xFBCE_A83C_8A37_8BF1)
        XCTAssertEqual(XXH64.hash(Array("abc".utf8), seed: 1), XXH64.hash(Array("abc".utf8), seed: 1))
        XCTAssertNotEqual(XXH64.hash(Array("abc".utf8), seed: 1), XXH64.hash(Array("abc".utf8)))
    }

    func testEveryLengthAndOffsetIsHashedConsistently() {
        let bytes = (0..<200).map { UInt8(truncatingIfNeeded: $0 &* 37) }
        var seen = Set<UInt64>()
        for length in 0...bytes.count {
            let h = XXH64.hash(Array(bytes[0..<length]))
            XCTAssertTrue(seen.insert(h).inserted, "collision at length \(length)")
            // Unaligned start gives the same hash.
            let shifted = [0xAA] + Array(bytes[0..<length])
            shifted.withUnsafeBytes { XCTAssertEqual(XXH64.hash(UnsafeRawBufferPointer(rebasing: $0[1...])), h) }
        }
    }
}
