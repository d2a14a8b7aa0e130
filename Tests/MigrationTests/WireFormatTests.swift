import Foundation
@testable import Migration
import XCTest

/// Every field of every message is checked before anything is acted on: a confused or hostile peer gets
/// an error naming the problem, never a crash or an unbounded allocation.
final class WireFormatTests: XCTestCase {
    func testRequestHeaderLayoutIsCHs() throws {
        let bytes = RequestHeader(.memory, length: 32).bytes
        XCTAssertEqual(bytes, [4, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0, 0, 0, 0, 0, 0])
        let start = RequestHeader(.start, length: 16, version: Limits.protocolVersion).bytes
        XCTAssertEqual(Array(start.prefix(4)), [1, 0, 2, 0], "Start carries the version in bytes 2…3")
        XCTAssertEqual(try RequestHeader(decoding: bytes), RequestHeader(.memory, length: 32))
        XCTAssertEqual(ResponseHeader(.error, length: 5).bytes, [2, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0])
    }

    func testRequestHeaderRejectsWhatIsNotAllowed() {
        func header(_ command: UInt16, _ version: UInt16 = 0, reserved: UInt32 = 0, length: UInt64) -> [UInt8] {
            var b: [UInt8] = []
            b.appendLE(command); b.appendLE(version); b.appendLE(reserved); b.appendLE(length)
            return b
        }
        let cases: [([UInt8], String)] = [
            (header(0, length: 0), "unknown command 0"),
            (header(9, length: 0), "unknown command 9"),
            (header(0xffff, length: 0), "unknown command 65535"),
            (header(2, length: 0), "Config declares 0 payload bytes"),
            (header(2, length: Limits.maxConfigBytes + 1), "Config declares"),
            (header(3, length: UInt64.max), "State declares"),
            (header(4, length: 15), "Memory declares 15"),
            (header(4, length: Limits.maxRangeTableBytes + 16), "Memory declares"),
            (header(5, length: 1), "Complete declares 1"),
            (header(4, 1, length: 16), "reserved"),
            (header(4, reserved: 1, length: 16), "reserved"),
        ]
        for (bytes, reason) in cases {
            XCTAssertThrowsError(try RequestHeader(decoding: bytes)) { XCTAssertTrue("\($0)".contains(reason), "\($0)") }
        }
    }

    func testResponseHeaderBoundsTheErrorMessage() {
        var ok = ResponseHeader(.ok).bytes
        ok[8] = 1
        XCTAssertThrowsError(try ResponseHeader(decoding: ok)) { XCTAssertTrue("\($0)".contains("Ok response declares 1")) }
        var big = ResponseHeader(.error).bytes
        big.replaceSubrange(8..<16, with: withUnsafeBytes(of: (Limits.maxErrorBytes + 1).littleEndian, Array.init))
        XCTAssertThrowsError(try ResponseHeader(decoding: big))
        XCTAssertThrowsError(try ResponseHeader(decoding: [7] + [UInt8](repeating: 0, count: 15))) {
            XCTAssertTrue("\($0)".contains("unknown response status 7"))
        }
    }

    func testStartRefusesCHAndOtherVersions() throws {
        try StartMessage.check(version: Limits.protocolVersion, payload: StartMessage.encode())
        XCTAssertThrowsError(try StartMessage.check(version: 1, payload: [])) {
            XCTAssertTrue("\($0)".contains("Cloud Hypervisor"), "\($0)")
        }
        // Version 1 sources sent JSON state payloads, which this destination still reads.
        try StartMessage.check(version: 1, payload: StartMessage.encode())
        XCTAssertThrowsError(try StartMessage.check(version: 3, payload: StartMessage.encode())) {
            XCTAssertTrue("\($0)".contains("version 3 is not supported"), "\($0)")
        }
        var foreign = StartMessage.encode()
        foreign[0] = UInt8(ascii: "X")
        XCTAssertThrowsError(try StartMessage.check(version: 1, payload: foreign))
        var pages = StartMessage.encode()
        pages[9] = 0x20   // 8 KiB pages
        XCTAssertThrowsError(try StartMessage.check(version: 1, payload: pages)) { XCTAssertTrue("\($0)".contains("page size")) }
        var flags = StartMessage.encode()
        flags[12] = 4
        XCTAssertThrowsError(try StartMessage.check(version: 1, payload: flags)) { XCTAssertTrue("\($0)".contains("unknown Start flags 0x4")) }
        XCTAssertEqual(try StartMessage.check(version: 1, payload: StartMessage.encode(flags: .localMemory)), .localMemory)
        XCTAssertEqual(Array(StartMessage.encode(flags: .compressedMemory).suffix(4)), [2, 0, 0, 0], "bit 1: compressed memory")
        XCTAssertEqual(try StartMessage.check(version: 1, payload: StartMessage.encode(flags: .compressedMemory)), .compressedMemory)
        // Uncompressed migrations keep the Start they had: flags 0.
        XCTAssertEqual(Array(StartMessage.encode().suffix(4)), [0, 0, 0, 0])
    }

    func testCompressedMemoryTable() throws {
        let ranges = [PageRange(gpa: 0x1000, length: 0x2000), PageRange(gpa: 0x1_0000_0000, length: 0x1000)]
        let payload = CompressedMemoryTable.encode(ranges, frameLength: 0x1234)
        XCTAssertEqual(payload.count, 8 + 32)
        XCTAssertEqual(Array(payload.prefix(8)), [0x34, 0x12, 0, 0, 0, 0, 0, 0], "u64 frame length")
        XCTAssertEqual(Array(payload.suffix(32)), RangeTable.encode(ranges))
        let decoded = try CompressedMemoryTable.decode(payload)
        XCTAssertEqual(decoded.ranges, ranges)
        XCTAssertEqual(decoded.frameLength, 0x1234)
        for (bad, expected) in [
            (CompressedMemoryTable.encode(ranges, frameLength: 0), "declares a frame of 0 bytes for 12288"),
            (CompressedMemoryTable.encode(ranges, frameLength: 0x3000), "declares a frame of 12288 bytes"),
            (CompressedMemoryTable.encode([PageRange(gpa: 0, length: 0x200_0000), PageRange(gpa: 0x200_0000, length: 0x1000)],
                                          frameLength: 1), "hold more than 33554432 bytes"),
            (CompressedMemoryTable.encode([PageRange(gpa: 0, length: 0x1000), PageRange(gpa: 0x1000, length: UInt64.max - 0xfff)],
                                          frameLength: 1), "not a non-empty run"),
            (CompressedMemoryTable.encode([PageRange(gpa: 0, length: 0x1000), PageRange(gpa: 0x1000, length: 1 << 63)],
                                          frameLength: 1), "hold more than"),
        ] {
            XCTAssertThrowsError(try CompressedMemoryTable.decode(bad)) { XCTAssertTrue("\($0)".contains(expected), "\($0)") }
        }
        XCTAssertEqual(Command.memoryCompressed.rawValue, 0x101)
        XCTAssertThrowsError(try RequestHeader(decoding: RequestHeader(.memoryCompressed, length: 16).bytes)) {
            XCTAssertTrue("\($0)".contains("MemoryCompressed declares 16 payload bytes"), "\($0)")
        }
    }

    func testMemoryFdTable() throws {
        let regions = [PageRange(gpa: 0, length: 0xC000_0000), PageRange(gpa: 0x1_0000_0000, length: 0x4000_0000)]
        let payload = MemoryFdTable.encode(regions)
        XCTAssertEqual(payload.count, 8 + 32)
        XCTAssertEqual(Array(payload.prefix(8)), [1, 0, 0, 0, 0, 0, 0, 0], "u32 version 1, u32 flags 0")
        XCTAssertEqual(try MemoryFdTable.decode(payload), regions)
        XCTAssertThrowsError(try MemoryFdTable.decode(MemoryFdTable.encode([PageRange(gpa: 0, length: 100)]))) {
            XCTAssertTrue("\($0)".contains("whole 4096-byte pages"), "\($0)")
        }
        var flagged = payload
        flagged[4] = 1
        XCTAssertThrowsError(try MemoryFdTable.decode(flagged)) { XCTAssertTrue("\($0)".contains("unknown MemoryFd flags")) }
        XCTAssertEqual(Command.memoryFd.allowedLengths, 24...(8 + 16 * UInt64(Limits.maxMemoryFds)))
    }

    func testRangeTable() throws {
        let ranges = [PageRange(gpa: 0, length: 4096), PageRange(gpa: 0x10_0000, length: 0x20_0000)]
        XCTAssertEqual(try RangeTable.decode(RangeTable.encode(ranges)), ranges)
        for bad in [PageRange(gpa: 1, length: 4096), PageRange(gpa: 0, length: 100), PageRange(gpa: 0, length: 0),
                    PageRange(gpa: UInt64.max - 4095, length: 8192)] {
            XCTAssertThrowsError(try RangeTable.decode(RangeTable.encode([bad]))) {
                XCTAssertTrue("\($0)".contains("whole 4096-byte pages"), "\($0)")
            }
        }
        XCTAssertThrowsError(try RangeTable.decode([UInt8](repeating: 0, count: 17)))
    }

    func testStatePayloadRoundTripsAndEveryTruncationIsAnError() throws {
        let sections = [StateSection(id: "kvm-vm", type: "kvm-vm-x86_64", version: 1, payload: Data("{}".utf8)),
                        StateSection(id: "vcpu-0", type: "vcpu-x86_64", version: 3, payload: Data([1, 2, 3])),
                        StateSection(id: "__serial", type: "Serial8250", version: 1, payload: Data())]
        let bytes = try StatePayload.encode(sections)
        XCTAssertEqual(try StatePayload.decode(bytes), sections)
        for cut in 0..<bytes.count {
            XCTAssertThrowsError(try StatePayload.decode(Array(bytes.prefix(cut))), "cut at \(cut)")
        }
        XCTAssertThrowsError(try StatePayload.decode(bytes + [0])) { XCTAssertTrue("\($0)".contains("after its last section")) }
        let twice = try StatePayload.encode([sections[0], sections[0]])
        XCTAssertThrowsError(try StatePayload.decode(twice)) { XCTAssertTrue("\($0)".contains("twice")) }
        var many: [UInt8] = []
        many.appendLE(UInt32.max)
        XCTAssertThrowsError(try StatePayload.decode(many)) { XCTAssertTrue("\($0)".contains("sections")) }
        var badName: [UInt8] = []
        badName.appendLE(UInt32(1)); badName.appendLE(UInt16(2)); badName += [0xff, 0xfe]
        XCTAssertThrowsError(try StatePayload.decode(badName)) { XCTAssertTrue("\($0)".contains("UTF-8")) }
        XCTAssertThrowsError(try StatePayload.encode([StateSection(id: "", type: "t", version: 1, payload: Data())]))
    }
}
