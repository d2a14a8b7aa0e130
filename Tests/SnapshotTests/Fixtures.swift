import Foundation
import Snapshot
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Guest memory for tests: page-aligned host memory filled page by page with a chosen kind of content.
final class GuestBuffer {
    enum PageKind: CaseIterable {
        case zero, random, pattern, text, halfZero
    }

    let buffer: UnsafeMutableRawBufferPointer
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(buffer) }

    init(size: Int) {
        precondition(size > 0)
        buffer = .allocate(byteCount: size, alignment: 4096)
        memset(buffer.baseAddress!, 0, size)
    }

    /// Whether every byte is `value` (memcmp: debug-build Swift loops over 32 MiB take seconds).
    func allBytes(_ value: UInt8, in range: Range<Int>? = nil) -> Bool {
        let range = range ?? 0..<buffer.count
        let pattern = [UInt8](repeating: value, count: 4096)
        var offset = range.lowerBound
        while offset < range.upperBound {
            let n = min(4096, range.upperBound - offset)
            if memcmp(buffer.baseAddress! + offset, pattern, n) != 0 { return false }
            offset += n
        }
        return true
    }

    func fill(_ value: UInt8) { memset(buffer.baseAddress!, Int32(value), buffer.count) }

    deinit { buffer.deallocate() }

    /// `size` bytes whose pages cycle through `kinds` (the last page may be partial).
    convenience init(size: Int, kinds: [PageKind], seed: UInt64) {
        self.init(size: size)
        var rng = TestRNG(seed)
        for page in 0..<((size + 4095) / 4096) {
            let start = page * 4096, count = min(4096, size - start)
            let dst = UnsafeMutableRawBufferPointer(rebasing: buffer[start..<start + count])
            switch kinds[page % kinds.count] {
            case .zero: dst.initializeMemory(as: UInt8.self, repeating: 0)
            case .random: for i in 0..<count { dst[i] = UInt8(truncatingIfNeeded: rng.next()) }
            case .pattern: for i in 0..<count { dst[i] = UInt8(truncatingIfNeeded: (i * 7 + page) % 251) }
            case .text:
                let words = Array("guest memory page snapshot restore ".utf8)
                for i in 0..<count { dst[i] = words[(i + page) % words.count] }
            case .halfZero:
                for i in 0..<count { dst[i] = i < count / 2 ? 0 : UInt8(truncatingIfNeeded: rng.next()) }
            }
        }
    }

    /// Guest-like memory from the library's synthetic generator.
    convenience init(size: Int, profile: SyntheticGuestMemory.Profile, seed: UInt64 = 7) {
        self.init(size: size)
        SyntheticGuestMemory.fill(buffer, profile: profile, seed: seed)
    }

    func sameBytes(as other: GuestBuffer) -> Bool {
        buffer.count == other.buffer.count && memcmp(buffer.baseAddress!, other.buffer.baseAddress!, buffer.count) == 0
    }
}

struct TestRNG {
    var state: UInt64
    init(_ seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
    mutating func next() -> UInt64 {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return state
    }
}

/// A fresh directory under the system temporary directory, removed by the test case's teardown.
func makeTemporaryDirectory(_ name: String = "snap") -> URL {
    let url = URL(fileURLWithPath: NSTemporaryDirectory())
        .appendingPathComponent("SnapshotTests-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

struct TestSection {
    var id: String
    var type: String
    var version: UInt32
    var payload: Data
}

/// A small but complete snapshot: four sections and three memory ranges (one above 4 GiB, odd sizes),
/// 64 KiB chunks so that a few MiB give many chunks.
struct SnapshotFixture {
    static let sections = [
        TestSection(id: "vm", type: "kvm-vm", version: 2, payload: Data(#"{"clock":123456789,"irqchip":[1,2,3]}"#.utf8)),
        TestSection(id: "vcpu-0", type: "vcpu", version: 3, payload: Data(#"{"regs":{"rip":4096},"msrs":[]}"#.utf8)),
        TestSection(id: "vcpu-1", type: "vcpu", version: 3, payload: Data(#"{"regs":{"rip":8192},"msrs":[1,2]}"#.utf8)),
        TestSection(id: "__serial", type: "serial8250", version: 1, payload: Data(repeating: 0x41, count: 300)),
        TestSection(id: "empty", type: "marker", version: 0, payload: Data()),
    ]
    static let config = Data(#"{"cpus":{"boot_vcpus":2},"memory":{"size":1073741824}}"#.utf8)
    static let chunkSize = 64 << 10

    let directory: URL
    let ranges: [(guestAddress: UInt64, memory: GuestBuffer)]
    let stats: MemoryStats

    init(directory: URL = makeTemporaryDirectory(), compression: MemoryCompression = .default, threads: Int = 2,
         chunkSize: Int = SnapshotFixture.chunkSize, durable: Bool = false,
         ranges: [(guestAddress: UInt64, memory: GuestBuffer)]? = nil) throws {
        self.directory = directory
        self.ranges = ranges ?? [
            (0, GuestBuffer(size: 640 << 10, kinds: [.random, .zero, .pattern, .text, .zero, .zero, .halfZero], seed: 1)),
            (0x10_0000, GuestBuffer(size: (1 << 20) + 123, kinds: [.text, .text, .random, .zero], seed: 2)),
            (0x1_0000_0000, GuestBuffer(size: 768 << 10,
                                        kinds: Array(repeating: .zero, count: 20) + [.pattern, .random], seed: 3)),
        ]
        let writer = try SnapshotWriter(directory: directory, durable: durable)
        try writer.writeConfig(Self.config)
        for s in Self.sections { try writer.addSection(id: s.id, type: s.type, version: s.version, payload: s.payload) }
        stats = try writer.writeMemory(ranges: self.ranges.map { ($0.guestAddress, $0.memory.bytes) },
                                       compression: compression, threads: threads, chunkSize: chunkSize)
        try writer.finish()
    }

    func url(_ name: String) -> URL { directory.appendingPathComponent(name) }

    func contents(_ name: String) -> [UInt8] { Array(try! Data(contentsOf: url(name))) }

    func replace(_ name: String, with bytes: [UInt8]) { try! Data(bytes).write(to: url(name)) }

    /// Shortens a file in place (cheaper than rewriting it for every offset).
    func truncate(_ name: String, to length: Int) { XCTAssertEqual(Glibc.truncate(url(name).path, off_t(length)), 0) }

    /// XORs one byte of a file in place; calling it again undoes it.
    func flip(_ name: String, at offset: Int, mask: UInt8) {
        let fd = open(url(name).path, O_RDWR)
        defer { close(fd) }
        var byte: UInt8 = 0
        XCTAssertEqual(pread(fd, &byte, 1, off_t(offset)), 1)
        byte ^= mask
        XCTAssertEqual(pwrite(fd, &byte, 1, off_t(offset)), 1)
    }

    /// Restores into fresh buffers and returns them.
    func restore(threads: Int = 2, zeroFill: Bool = false) throws -> [GuestBuffer] {
        let reader = try SnapshotReader(directory: directory)
        let targets = ranges.map { GuestBuffer(size: $0.memory.buffer.count) }
        try reader.restoreMemory(into: zip(ranges, targets).map { ($0.0.guestAddress, $0.1.buffer) },
                                 threads: threads, zeroFill: zeroFill)
        return targets
    }
}

/// Runs `body` and returns the `SnapshotError` it throws; fails the test if it succeeds or throws
/// anything else.
@discardableResult
func expectSnapshotError(_ what: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line,
                         _ body: () throws -> Void) -> SnapshotError? {
    do {
        try body()
        XCTFail("expected a SnapshotError, got success \(what())", file: file, line: line)
    } catch let error as SnapshotError {
        return error
    } catch {
        XCTFail("expected a SnapshotError, got \(error) \(what())", file: file, line: line)
    }
    return nil
}

func openAndVerify(_ directory: URL) throws {
    let reader = try SnapshotReader(directory: directory)
    try reader.verifyAll(threads: 2)
}

func cleanUp(_ directory: URL) { try? FileManager.default.removeItem(at: directory) }
