import Foundation
import Snapshot
import XCTest

/// What is written comes back: sections with their versions, the config, and byte-identical memory.
final class RoundTripTests: XCTestCase {
    var directories: [URL] = []

    override func tearDown() {
        directories.forEach(cleanUp)
        directories = []
    }

    private func fixture(compression: MemoryCompression = .default, threads: Int = 2,
                         ranges: [(guestAddress: UInt64, memory: GuestBuffer)]? = nil) throws -> SnapshotFixture {
        let f = try SnapshotFixture(compression: compression, threads: threads, ranges: ranges)
        directories.append(f.directory)
        return f
    }

    func testSectionsConfigAndMemoryRoundTrip() throws {
        let f = try fixture()
        let reader = try SnapshotReader(directory: f.directory)
        XCTAssertEqual(reader.formatVersion, SnapshotFormat.version)
        XCTAssertEqual(reader.config, SnapshotFixture.config)
        XCTAssertEqual(reader.sections.map(\.id), SnapshotFixture.sections.map(\.id))
        for expected in SnapshotFixture.sections {
            let section = try XCTUnwrap(reader.section(id: expected.id))
            XCTAssertEqual(section.type, expected.type)
            XCTAssertEqual(section.version, expected.version)
            XCTAssertEqual(section.payload, expected.payload)
            XCTAssertEqual(section.info.size, expected.payload.count)
        }
        XCTAssertEqual(reader.memoryRanges, f.ranges.map { MemoryRange(guestAddress: $0.guestAddress,
                                                                        size: UInt64($0.memory.buffer.count)) })
        XCTAssertEqual(reader.memoryRanges[2].guestAddress, 0x1_0000_0000)
        for threads in [1, 2, 3] {
            let restored = try f.restore(threads: threads)
            for (original, copy) in zip(f.ranges, restored) {
                XCTAssertTrue(copy.sameBytes(as: original.memory), "range at \(hex(original.guestAddress)), \(threads) threads")
            }
        }
        try reader.verifyAll()
    }

    func testStatsAndSummary() throws {
        let f = try fixture()
        let total = f.ranges.reduce(0) { $0 + $1.memory.buffer.count }
        XCTAssertEqual(f.stats.bytesIn, UInt64(total))
        XCTAssertEqual(f.stats.chunks, f.ranges.reduce(0) { $0 + ($1.memory.buffer.count + 65535) / 65536 })
        XCTAssertEqual(f.stats.pages, UInt64(f.ranges.reduce(0) { $0 + ($1.memory.buffer.count + 4095) / 4096 }))
        XCTAssertGreaterThan(f.stats.zeroPages, 0)
        let size = try FileManager.default.attributesOfItem(atPath: f.url("memory.bin").path)[.size] as! Int
        XCTAssertEqual(f.stats.bytesOut, UInt64(size))
        let reader = try SnapshotReader(directory: f.directory)
        XCTAssertEqual(reader.memorySummary.totalBytes, UInt64(total))
        XCTAssertEqual(reader.memorySummary.zeroPages, f.stats.zeroPages)
        XCTAssertEqual(reader.memorySummary.storedBytes, f.stats.storedBytes)
        XCTAssertEqual(reader.memorySummary.fileSize, UInt64(size))
        // The destinations must outlive the restore: a temporary's `.buffer` would point at freed memory.
        let targets = f.ranges.map { GuestBuffer(size: $0.memory.buffer.count) }
        let restored = try withExtendedLifetime(targets) {
            try reader.restoreMemory(into: zip(f.ranges, targets).map { ($0.0.guestAddress, $0.1.buffer) })
        }
        XCTAssertEqual(restored.zeroPages, f.stats.zeroPages)
        XCTAssertEqual(restored.chunks, f.stats.chunks)
    }

    func testEveryCompressionSetting() throws {
        for compression in [MemoryCompression.none, .zstd(level: -5), .zstd(level: 1), .zstd(level: 9)] {
            let f = try fixture(compression: compression, threads: 1)
            for (original, copy) in zip(f.ranges, try f.restore()) {
                XCTAssertTrue(copy.sameBytes(as: original.memory), "\(compression)")
            }
        }
    }

    func testRandomMemoryIsStoredRawAndRestored() throws {
        let memory = GuestBuffer(size: 512 << 10, kinds: [.random], seed: 9)
        let f = try fixture(ranges: [(0x8000_0000, memory)])
        XCTAssertGreaterThan(f.stats.rawRuns, 0)
        XCTAssertLessThan(f.stats.storedBytes, UInt64(memory.buffer.count) + 1)
        XCTAssertTrue(try f.restore()[0].sameBytes(as: memory))
    }

    func testOddSizesAndSinglePartialPage() throws {
        for size in [1, 4095, 4097, 65535, 65537, 3 * 65536 + 5] {
            let memory = GuestBuffer(size: size, kinds: [.random, .zero, .text], seed: UInt64(size))
            let f = try fixture(ranges: [(0xFFFF_F000, memory)])
            XCTAssertTrue(try f.restore()[0].sameBytes(as: memory), "size \(size)")
        }
    }

    func testZeroPagesCostNothingAndAreNotTouched() throws {
        let memory = GuestBuffer(size: 32 << 20)
        let f = try fixture(ranges: [(0, memory), (0x2_0000_0000, GuestBuffer(size: 8 << 20))])
        XCTAssertEqual(f.stats.zeroPages, UInt64((40 << 20) / 4096))
        XCTAssertEqual(f.stats.storedBytes, 0)
        XCTAssertLessThan(f.stats.bytesOut, 64 << 10, "40 MiB of zero pages must cost only chunk headers")

        // Restore leaves zero pages alone (the caller's memory is fresh) unless asked to zero them.
        let reader = try SnapshotReader(directory: f.directory)
        let dirty = GuestBuffer(size: 32 << 20)
        dirty.fill(0xAA)
        let other = GuestBuffer(size: 8 << 20)
        try reader.restoreMemory(into: [(0, dirty.buffer), (0x2_0000_0000, other.buffer)])
        XCTAssertTrue(dirty.allBytes(0xAA))
        try reader.restoreMemory(into: [(0, dirty.buffer), (0x2_0000_0000, other.buffer)], zeroFill: true)
        XCTAssertTrue(dirty.sameBytes(as: memory))
    }

    func testShortZeroGapsAreStoredLongOnesSkipped() throws {
        // 4 zero pages between data pages are cheaper inside one zstd frame; 32 are skipped.
        let kinds: [GuestBuffer.PageKind] = [.text] + Array(repeating: .zero, count: 4) + [.text]
            + Array(repeating: .zero, count: 32) + [.text]
        let memory = GuestBuffer(size: kinds.count * 4096, kinds: kinds, seed: 4)
        let f = try fixture(ranges: [(0, memory)])
        XCTAssertEqual(f.stats.zeroPages, 32)
        XCTAssertTrue(try f.restore()[0].sameBytes(as: memory))
    }

    func testSnapshotWithoutMemory() throws {
        let directory = makeTemporaryDirectory()
        directories.append(directory)
        let writer = try SnapshotWriter(directory: directory, durable: false)
        try writer.writeConfig(Data("{}".utf8))
        try writer.addSection(id: "vm", type: "kvm-vm", version: 1, payload: Data([1, 2, 3]))
        try writer.finish()
        let reader = try SnapshotReader(directory: directory)
        XCTAssertEqual(reader.memoryRanges, [])
        XCTAssertEqual(try reader.restoreMemory(into: []).chunks, 0)
        XCTAssertEqual(try reader.section(id: "vm", type: "kvm-vm").payload, Data([1, 2, 3]))
        XCTAssertEqual(try reader.verifyAll().chunks, 0)
    }

    func testSectionLookupErrors() throws {
        let f = try fixture()
        let reader = try SnapshotReader(directory: f.directory)
        XCTAssertNil(reader.section(id: "vcpu-7"))
        XCTAssertEqual(expectSnapshotError { _ = try reader.section(id: "vcpu-7", type: "vcpu") }, .sectionMissing(id: "vcpu-7"))
        let wrongType = expectSnapshotError { _ = try reader.section(id: "vcpu-0", type: "serial8250") }
        XCTAssertEqual(wrongType, .sectionType(id: "vcpu-0", expected: "serial8250", found: "vcpu"))
        XCTAssertEqual(wrongType?.description, "state.bin: section 'vcpu-0' has type vcpu, expected serial8250")
    }

    func testLayoutMismatchIsRefused() throws {
        let f = try fixture()
        let reader = try SnapshotReader(directory: f.directory)
        let sizes = f.ranges.map { $0.memory.buffer.count }
        let buffers = sizes.map { GuestBuffer(size: $0) }

        // A range of another size.
        let small = GuestBuffer(size: sizes[1] - 4096)
        let e1 = expectSnapshotError {
            try reader.restoreMemory(into: [(0, buffers[0].buffer), (0x10_0000, small.buffer), (0x1_0000_0000, buffers[2].buffer)])
        }
        guard case .layoutMismatch(place: .range(index: 1, guestAddress: 0x10_0000, size: _), _)? = e1 else {
            return XCTFail("\(String(describing: e1))")
        }
        // A missing range, an extra one.
        XCTAssertNotNil(expectSnapshotError { try reader.restoreMemory(into: [(0, buffers[0].buffer)]) })
        let extra = GuestBuffer(size: 4096)
        XCTAssertNotNil(expectSnapshotError {
            try reader.restoreMemory(into: zip(f.ranges, buffers).map { ($0.0.guestAddress, $0.1.buffer) } + [(0x9000_0000, extra.buffer)])
        })
        // The closure form: the destination must be exactly the range.
        let e2 = expectSnapshotError {
            try reader.restoreMemory { range in
                range.guestAddress == 0x1_0000_0000 ? small.buffer : buffers[range.guestAddress == 0 ? 0 : 1].buffer
            }
        }
        XCTAssertTrue(e2?.description.hasPrefix("memory layout: range 2 (guest 0x100000000, 0xc0000 bytes): destination has") ?? false,
                      "\(String(describing: e2))")
    }
}

func hex<T: BinaryInteger>(_ v: T) -> String { "0x" + String(v, radix: 16) }
