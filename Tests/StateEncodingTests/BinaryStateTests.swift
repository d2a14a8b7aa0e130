import Foundation
import StateEncoding
import XCTest

/// The binary state encoding: round trips of every shape state types use, compatibility across added and
/// widened fields, and refusal (never a crash) of truncated, damaged and random input.
final class BinaryStateTests: XCTestCase {
    enum Kind: Codable, Equatable { case io, memory64(prefetchable: Bool), none }

    struct Inner: Codable, Equatable {
        var index: UInt32
        var value: UInt64
    }

    struct Sample: Codable, Equatable {
        var flag = true
        var small: UInt8 = 7
        var signed: Int16 = -300
        var word: Int = -1
        var big = UInt64.max
        var ratio = 0.25
        var single: Float = -1.5
        var name = "vcpu-0 ✓"
        var blob = Data((0..<200).map { UInt8($0 % 251) })
        var bytes: [UInt8] = [1, 2, 3]
        var registers: [UInt32] = (0..<1024).map { UInt32($0) &* 2_654_435_761 }
        var rings: [[UInt16]]? = [[1, 2], [65535, 0]]
        var none: [[UInt16]]?
        var entries = [Inner(index: 0x10, value: 1), Inner(index: 0xC000_0080, value: 0xD01)]
        var kinds: [Kind] = [.io, .memory64(prefetchable: true), .none]
        var table: [String: Int] = ["a": 1, "bb": -2]
        var nested: [[Inner]] = [[], [Inner(index: 1, value: 2)]]
        var empty = Data()
        var words: [Int64] = [-1, .min, .max]
        var optionalInner: Inner? = Inner(index: 3, value: 4)
    }

    func testRoundTripsEveryShape() throws {
        let value = Sample()
        let payload = try BinaryState.encode(value)
        XCTAssertEqual(payload.first, BinaryState.marker)
        XCTAssertTrue(BinaryState.isBinary(payload))
        XCTAssertEqual(try BinaryState.decode(Sample.self, from: payload), value)
        XCTAssertEqual(try BinaryState.encode(value), payload, "equal values give equal bytes")
    }

    func testByteArraysAndIntegerArraysAreBlocks() throws {
        // marker, tag bytes, u32 length, the bytes.
        XCTAssertEqual([UInt8](try BinaryState.encode(Data([9, 8]))), [0xB1, 0x0E, 2, 0, 0, 0, 9, 8])
        // marker, tag integers, element tag u16, u32 count, elements little-endian.
        XCTAssertEqual([UInt8](try BinaryState.encode([UInt16(0x0102), 0x0304])), [0xB1, 0x0F, 0x04, 2, 0, 0, 0, 2, 1, 4, 3])
        // A keyed container: tag, u32 body length, u32 count, key length, key, value (u32 tag, 4 bytes).
        XCTAssertEqual([UInt8](try BinaryState.encode(["k": UInt32(5)])),
                       [0xB1, 0x10, 7, 0, 0, 0, 1, 0, 0, 0, 1, UInt8(ascii: "k"), 0x05, 5, 0, 0, 0])
    }

    struct Old: Codable, Equatable { var a: UInt16; var b: String }
    struct New: Codable, Equatable { var a: UInt32; var b: String; var added: [UInt8]? }

    func testOlderPayloadsDecodeIntoGrownTypes() throws {
        let old = try BinaryState.encode(Old(a: 513, b: "x"))
        XCTAssertEqual(try BinaryState.decode(New.self, from: old), New(a: 513, b: "x", added: nil))
        // And a newer payload's extra entry is skipped by an older reader.
        let new = try BinaryState.encode(New(a: 7, b: "y", added: [1, 2]))
        XCTAssertEqual(try BinaryState.decode(Old.self, from: new), Old(a: 7, b: "y"))
    }

    func testRefusesValuesThatDoNotFit() throws {
        let payload = try BinaryState.encode(New(a: 70_000, b: "", added: nil))
        XCTAssertThrowsError(try BinaryState.decode(Old.self, from: payload)) { error in
            XCTAssertTrue("\(error)".contains("does not fit UInt16"), "\(error)")
        }
        XCTAssertThrowsError(try BinaryState.decode(Old.self, from: try BinaryState.encode(["a": 1]))) { error in
            guard case .keyNotFound = error as? DecodingError else { return XCTFail("\(error)") }
        }
    }

    /// Every proper prefix, every single-byte change and random bytes: decoding throws or yields a value,
    /// and never reads outside the payload (a crash fails the whole test run).
    func testTruncatedDamagedAndRandomInputIsRefusedWithoutCrashing() throws {
        let payload = try BinaryState.encode(Sample())
        for length in 0..<payload.count {
            XCTAssertThrowsError(try BinaryState.decode(Sample.self, from: payload.prefix(length)), "prefix \(length)")
        }
        XCTAssertThrowsError(try BinaryState.decode(Sample.self, from: payload + [0]), "trailing byte")
        var generator = XorShift64(state: 0x5EED)
        var damaged = payload
        for offset in 0..<payload.count {
            let saved = damaged[offset]
            damaged[offset] = UInt8(truncatingIfNeeded: generator.next() | 1) ^ saved
            _ = try? BinaryState.decode(Sample.self, from: damaged)
            damaged[offset] = saved
        }
        for round in 0..<2000 {
            let count = Int(generator.next() % 96)
            var bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            if round % 2 == 0, !bytes.isEmpty { bytes[0] = BinaryState.marker }
            _ = try? BinaryState.decode(Sample.self, from: Data(bytes))
            _ = try? BinaryState.decode([Inner].self, from: Data(bytes))
        }
    }

    func testLengthsBeyondTheContainerAreRefusedByOffset() {
        // A blob claiming 0xFFFFFFFF bytes.
        let payload = Data([0xB1, 0x0E, 0xFF, 0xFF, 0xFF, 0xFF, 1])
        XCTAssertThrowsError(try BinaryState.decode(Data.self, from: payload)) { error in
            XCTAssertTrue("\(error)".contains("byte 1: truncated"), "\(error)")
        }
        XCTAssertThrowsError(try BinaryState.decode(Data.self, from: Data("{}".utf8))) { error in
            XCTAssertTrue("\(error)".contains("marker"), "\(error)")
        }
    }

    /// A value that writes into a container it already left is refused, not silently misencoded.
    struct Interleaved: Encodable {
        enum K: CodingKey { case a, b }
        func encode(to encoder: any Encoder) throws {
            var outer = encoder.container(keyedBy: K.self)
            var inner = outer.nestedUnkeyedContainer(forKey: .a)
            try outer.encode(1, forKey: .b)
            try inner.encode(2)
        }
    }

    /// `super` is written and found under that key even when the type's keys have no such case.
    final class Derived: Codable, Equatable {
        enum K: CodingKey { case own }
        let own: UInt16, base: Inner
        init(own: UInt16, base: Inner) { self.own = own; self.base = base }
        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: K.self)
            own = try c.decode(UInt16.self, forKey: .own)
            base = try Inner(from: c.superDecoder())
        }
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: K.self)
            try c.encode(own, forKey: .own)
            try base.encode(to: c.superEncoder())
        }
        static func == (a: Derived, b: Derived) -> Bool { a.own == b.own && a.base == b.base }
    }

    func testSuperEncoderUsesItsOwnKey() throws {
        let value = Derived(own: 9, base: Inner(index: 1, value: 2))
        XCTAssertEqual(try BinaryState.decode(Derived.self, from: BinaryState.encode(value)), value)
    }

    func testInterleavedContainersAreRefused() {
        XCTAssertThrowsError(try BinaryState.encode(Interleaved()))
    }
}

/// Deterministic random numbers (xorshift64), so that a failing input can be reproduced.
struct XorShift64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
}
