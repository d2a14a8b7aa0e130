import Foundation
import Memory
import XCTest
@testable import Virtio

final class BlockTests: XCTestCase {
    private var directory: URL!
    /// A file made immutable (root ignores permission bits); made mutable again on tear-down.
    private var immutable: String?

    private typealias Buffer = (UInt64, UInt32, Bool)
    private let headerAddress: UInt64 = 0x20_0000
    private let statusAddress: UInt64 = 0x20_1000

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("virtio-blk-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let immutable { _ = chattr("-i", immutable) }
        try FileManager.default.removeItem(at: directory)
    }

    private func makeImage(_ name: String = "disk.raw", size: Int = 1 << 20) throws -> String {
        let path = directory.appendingPathComponent(name).path
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: nil))
        XCTAssertEqual(truncate(path, off_t(size)), 0)
        return path
    }

    private func fileBytes(_ path: String, _ range: Range<Int>) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: path))[range])
    }

    private func pattern(_ count: Int, seed: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ seed) }
    }

    private func chattr(_ flag: String, _ path: String) -> Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/chattr")
        p.arguments = [flag, path]
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }

    /// Sends header + `data` + a status byte on `queue`, waits for it, returns the status and used length.
    @discardableResult
    private func request(_ h: DeviceHarness, type: UInt32, sector: UInt64, data: [Buffer] = [], queue: Int = 0,
                         file: StaticString = #filePath, line: UInt = #line) throws -> (status: UInt8, len: UInt32) {
        try h.memory.store(type, at: headerAddress)
        try h.memory.store(UInt32(0), at: headerAddress + 4)
        try h.memory.store(sector, at: headerAddress + 8)
        try h.memory.store(UInt8(0xFF), at: statusAddress)
        let before = try h.rings[queue].usedIdx()
        try h.submit([(headerAddress, 16, false)] + data + [(statusAddress, 1, true)], queue: queue)
        let used = try h.waitUsed(before &+ 1, queue: queue, file: file, line: line)
        return (try h.memory.load(UInt8.self, at: statusAddress), used.len)
    }

    private func waitFor(_ condition: () -> Bool) {
        let deadline = Date().addingTimeInterval(5)
        while !condition() && Date() < deadline { usleep(500) }
    }

    func testWritesThenReadsBackThroughMultiDescriptorAndIndirectChainsAndCountsThem() throws {
        let path = try makeImage()
        let blk = try VirtioBlock(BlockDeviceOptions(path: path))
        let h = try DeviceHarness(blk)
        let data = pattern(1536, seed: 3)
        try h.memory.write(Array(data[..<1024]), at: 0x30_0000)
        try h.memory.write(Array(data[1024...]), at: 0x31_0000)
        let w = try request(h, type: 1, sector: 8, data: [(0x30_0000, 1024, false), (0x31_0000, 512, false)])
        XCTAssertEqual(w.status, 0)
        XCTAssertEqual(w.len, 1, "a write only writes its status")
        XCTAssertEqual(try fileBytes(path, 4096..<4096 + 1536), data)
        waitFor { h.interrupt.count() == 1 }
        XCTAssertEqual(h.interrupt.count(), 1)

        // Read back through an indirect table, the status sharing the last data descriptor.
        try h.memory.store(UInt32(0), at: headerAddress)
        try h.memory.store(UInt64(8), at: headerAddress + 8)
        try h.rings[0].addIndirect([(headerAddress, 16, false), (0x40_0000, 512, true), (0x41_0000, 1025, true)], table: 0x50_0000)
        try h.events[0].write()
        let r = try h.waitUsed(2)
        XCTAssertEqual(r.len, 1537)
        XCTAssertEqual(try h.memory.load(UInt8.self, at: 0x41_0000 + 1024), 0, "status is the last writable byte")
        XCTAssertEqual(try h.memory.read(at: 0x40_0000, count: 512) + h.memory.read(at: 0x41_0000, count: 1024), data)

        XCTAssertEqual(blk.counters, ["read_bytes": 1536, "write_bytes": 1536, "read_ops": 1, "write_ops": 1])
        waitFor { h.interrupt.count() == 2 }
        XCTAssertEqual(h.interrupt.count(), 2, "one interrupt per batch")
    }

    func testFlushAndGetIDWithAGivenOrDerivedSerial() throws {
        let path = try makeImage()
        let h = try DeviceHarness(try VirtioBlock(BlockDeviceOptions(path: path, serial: "disk-serial-1")))
        XCTAssertEqual(try request(h, type: 4, sector: 0).status, 0)
        let id = try request(h, type: 8, sector: 0, data: [(0x30_0000, 20, true)])
        XCTAssertEqual(id.status, 0)
        XCTAssertEqual(id.len, 21)
        XCTAssertEqual(try h.memory.read(at: 0x30_0000, count: 20), Array("disk-serial-1".utf8) + [UInt8](repeating: 0, count: 7))

        var st = stat()
        XCTAssertEqual(stat(path, &st), 0)
        let derived = Array("\(st.st_dev)\(st.st_rdev)\(st.st_ino)".utf8.prefix(20))
        let h2 = try DeviceHarness(try VirtioBlock(BlockDeviceOptions(path: path)))
        XCTAssertEqual(try request(h2, type: 8, sector: 0, data: [(0x30_0000, 20, true)]).status, 0)
        XCTAssertEqual(try h2.memory.read(at: 0x30_0000, count: derived.count), derived)
    }

    func testReadOnlyDeviceOffersROAndRefusesWrites() throws {
        let path = try makeImage()
        let blk = try VirtioBlock(BlockDeviceOptions(path: path, readonly: true))
        XCTAssertNotEqual(blk.deviceFeatures & VirtioBlockFeature.readOnly, 0)
        XCTAssertEqual(blk.deviceFeatures & (VirtioBlockFeature.discard | VirtioBlockFeature.writeZeroes), 0)
        let h = try DeviceHarness(blk)
        try h.memory.write(pattern(512, seed: 1), at: 0x30_0000)
        XCTAssertEqual(try request(h, type: 1, sector: 0, data: [(0x30_0000, 512, false)]).status, 1)
        XCTAssertEqual(try fileBytes(path, 0..<512), [UInt8](repeating: 0, count: 512), "nothing was written")
        try h.memory.store(UInt64(0), at: 0x31_0000)
        try h.memory.store(UInt64(1), at: 0x31_0008)
        XCTAssertEqual(try request(h, type: 11, sector: 0, data: [(0x31_0000, 16, false)]).status, 2, "discard: UNSUPP")
        XCTAssertEqual(try request(h, type: 0, sector: 0, data: [(0x30_0000, 512, true)]).status, 0, "reads still work")
    }

    func testRequestsOutsideTheImageOrOfPartialSectorsAreIOErrors() throws {
        let h = try DeviceHarness(try VirtioBlock(BlockDeviceOptions(path: try makeImage(size: 1 << 20))))
        let sectors: UInt64 = 2048
        XCTAssertEqual(try request(h, type: 0, sector: sectors - 1, data: [(0x30_0000, 512, true)]).status, 0)
        XCTAssertEqual(try request(h, type: 0, sector: sectors, data: [(0x30_0000, 512, true)]).status, 1)
        XCTAssertEqual(try request(h, type: 0, sector: sectors - 1, data: [(0x30_0000, 1024, true)]).status, 1)
        XCTAssertEqual(try request(h, type: 1, sector: .max, data: [(0x30_0000, 512, false)]).status, 1)
        XCTAssertEqual(try request(h, type: 0, sector: 0, data: [(0x30_0000, 100, true)]).status, 1)
    }

    func testMalformedChainsAreConsumedAndTheQueueKeepsWorking() throws {
        let h = try DeviceHarness(try VirtioBlock(BlockDeviceOptions(path: try makeImage())))
        // A descriptor that chains to itself.
        let loop = h.rings[0].nextDesc
        try h.rings[0].writeDesc(table: h.rings[0].desc, loop, address: headerAddress, length: 16, flags: 1, next: loop)
        h.rings[0].nextDesc += 1
        try h.rings[0].publish(loop)
        try h.events[0].write()
        XCTAssertEqual(try h.waitUsed(1).len, 0)
        // A head outside the table: consumed without a used element (no id would be right).
        try h.rings[0].publish(200)
        // No writable byte: no status can be reported.
        try h.submit([(headerAddress, 16, false)])
        XCTAssertEqual(try h.waitUsed(2).len, 0)
        // A header cut short; an unknown type.
        try h.submit([(headerAddress, 8, false), (statusAddress, 1, true)])
        XCTAssertEqual(try h.waitUsed(3).len, 1)
        XCTAssertEqual(try h.memory.load(UInt8.self, at: statusAddress), 1)
        XCTAssertEqual(try request(h, type: 99, sector: 0).status, 2)
        XCTAssertEqual(try request(h, type: 0, sector: 0, data: [(0x30_0000, 512, true)]).status, 0)
    }

    func testPausedDeviceServesRequestsAfterResumeEvenWithoutANotification() throws {
        let blk = try VirtioBlock(BlockDeviceOptions(path: try makeImage()))
        let h = try DeviceHarness(blk)
        let read: [(UInt64, UInt32, Bool)] = [(headerAddress, 16, false), (0x30_0000, 512, true), (statusAddress, 1, true)]
        blk.pause()
        for _ in 0..<3 { try h.submit(read) }
        usleep(50_000)
        XCTAssertEqual(try h.rings[0].usedIdx(), 0, "nothing is served while paused")
        blk.resume()
        try h.waitUsed(3)
        usleep(20_000)
        XCTAssertEqual(h.interrupt.count(), 1, "one interrupt for the batch")
        // A chain whose notification was consumed before a snapshot: resume alone must serve it.
        blk.pause()
        try h.rings[0].add(read)
        blk.resume()
        try h.waitUsed(4)
        blk.pause()
        blk.reset()
    }

    func testEventIdxSuppressesInterruptsUntilTheDriverAsks() throws {
        let h = try DeviceHarness(try VirtioBlock(BlockDeviceOptions(path: try makeImage())), eventIdx: true)
        let ring = h.rings[0]
        let usedEvent = ring.avail + 4 + 2 * UInt64(ring.size), availEvent = ring.used + 4 + 8 * UInt64(ring.size)
        try h.memory.store(UInt16(5), at: usedEvent)
        XCTAssertEqual(try request(h, type: 4, sector: 0).status, 0)
        usleep(20_000)
        XCTAssertEqual(h.interrupt.count(), 0, "used idx 1 does not pass used_event 5")
        XCTAssertEqual(try h.memory.load(UInt16.self, at: availEvent), 1, "avail_event asks for the next chain")
        try h.memory.store(UInt16(1), at: usedEvent)
        XCTAssertEqual(try request(h, type: 4, sector: 0).status, 0)
        waitFor { h.interrupt.count() == 1 }
        XCTAssertEqual(h.interrupt.count(), 1)
        XCTAssertEqual(try h.memory.load(UInt16.self, at: availEvent), 2)
    }

    func testDiscardAndWriteZeroes() throws {
        let path = try makeImage()
        let blk = try VirtioBlock(BlockDeviceOptions(path: path))
        XCTAssertEqual(blk.deviceFeatures & (VirtioBlockFeature.discard | VirtioBlockFeature.writeZeroes),
                       VirtioBlockFeature.discard | VirtioBlockFeature.writeZeroes)
        let h = try DeviceHarness(blk)
        let data = pattern(4096, seed: 9)
        try h.memory.write(data, at: 0x30_0000)
        XCTAssertEqual(try request(h, type: 1, sector: 0, data: [(0x30_0000, 4096, false)]).status, 0)
        func segments(_ list: [(sector: UInt64, count: UInt32, flags: UInt32)]) throws -> [Buffer] {
            for (k, s) in list.enumerated() {
                try h.memory.store(s.sector, at: 0x31_0000 + 16 * UInt64(k))
                try h.memory.store(s.count, at: 0x31_0008 + 16 * UInt64(k))
                try h.memory.store(s.flags, at: 0x31_000C + 16 * UInt64(k))
            }
            return [(0x31_0000, UInt32(16 * list.count), false)]
        }
        XCTAssertEqual(try request(h, type: 13, sector: 0, data: segments([(1, 1, 0), (3, 1, 1)])).status, 0)
        XCTAssertEqual(try request(h, type: 11, sector: 0, data: segments([(5, 2, 0)])).status, 0)
        let zero = [UInt8](repeating: 0, count: 512)
        let file = try fileBytes(path, 0..<4096)
        XCTAssertEqual(Array(file[0..<512]), Array(data[0..<512]))
        XCTAssertEqual(Array(file[512..<1024]), zero)
        XCTAssertEqual(Array(file[1024..<1536]), Array(data[1024..<1536]))
        XCTAssertEqual(Array(file[1536..<2048]), zero)
        XCTAssertEqual(Array(file[2048..<2560]), Array(data[2048..<2560]))
        XCTAssertEqual(Array(file[2560..<3584]), zero + zero)
        XCTAssertEqual(Array(file[3584...]), Array(data[3584...]))
        XCTAssertEqual(try request(h, type: 11, sector: 0, data: segments([(0, 1, 1)])).status, 2, "discard with unmap: UNSUPP")
        XCTAssertEqual(try request(h, type: 13, sector: 0, data: segments([(0, 1, 2)])).status, 2, "unknown flag: UNSUPP")
        XCTAssertEqual(try request(h, type: 13, sector: 0, data: segments([(2048, 1, 0)])).status, 1, "outside the image")
        XCTAssertEqual(try request(h, type: 11, sector: 0, data: [(0x31_0000, 8, false)]).status, 1, "a partial segment")
    }

    func testConfigSpaceAndMultiQueue() throws {
        let blk = try VirtioBlock(BlockDeviceOptions(path: try makeImage(size: (1 << 20) + 100), numQueues: 2, queueSize: 64))
        XCTAssertEqual(blk.queueMaxSizes, [64, 64])
        XCTAssertEqual(blk.deviceFeatures & VirtioBlockFeature.multiQueue, VirtioBlockFeature.multiQueue)
        XCTAssertEqual(blk.deviceFeatures & VirtioBlockFeature.readOnly, 0)
        func config<T: FixedWidthInteger>(_ type: T.Type, _ offset: UInt64) -> T {
            var value = T.zero
            withUnsafeMutableBytes(of: &value) { blk.readConfig(offset: offset, data: $0) }
            return T(littleEndian: value)
        }
        XCTAssertEqual(config(UInt64.self, 0), 2048, "capacity in sectors; a partial last sector is not exposed")
        XCTAssertEqual(config(UInt32.self, 12), 62, "seg_max")
        XCTAssertEqual(config(UInt32.self, 20), 512, "blk_size")
        XCTAssertEqual(config(UInt16.self, 34), 2, "num_queues")
        XCTAssertEqual(config(UInt32.self, 40), 256, "max_discard_seg")
        XCTAssertEqual(config(UInt32.self, 58), 0, "past the fields")
        XCTAssertEqual(config(UInt64.self, 4096), 0)

        let h = try DeviceHarness(blk)
        XCTAssertEqual(try request(h, type: 0, sector: 0, data: [(0x30_0000, 512, true)], queue: 1).status, 0)
        waitFor { h.interrupt.count(queue: 1) == 1 }
        XCTAssertEqual(h.interrupt.count(queue: 1), 1)
        XCTAssertEqual(h.interrupt.count(queue: 0), 0)
    }

    func testDirectIOBouncesUnalignedGuestBuffers() throws {
        let path = try makeImage()
        let blk: VirtioBlock
        do { blk = try VirtioBlock(BlockDeviceOptions(path: path, direct: true)) } catch BlockDeviceError.directUnsupported {
            throw XCTSkip("\(directory.path) does not support O_DIRECT")
        }
        let h = try DeviceHarness(blk)
        let data = pattern(1024, seed: 5)
        try h.memory.write(data, at: 0x30_0100)
        XCTAssertEqual(try request(h, type: 1, sector: 2, data: [(0x30_0100, 1024, false)]).status, 0)
        XCTAssertEqual(try fileBytes(path, 1024..<2048), data)
        XCTAssertEqual(try request(h, type: 0, sector: 2, data: [(0x40_0000, 1024, true)]).status, 0)
        XCTAssertEqual(try h.memory.read(at: 0x40_0000, count: 1024), data, "aligned: straight into guest memory")
        XCTAssertEqual(try request(h, type: 0, sector: 2, data: [(0x41_0010, 1000, true), (0x42_0000, 24, true)]).status, 0)
        XCTAssertEqual(try h.memory.read(at: 0x41_0010, count: 1000) + h.memory.read(at: 0x42_0000, count: 24), data)
    }

    func testConstructorErrorsSayWhatToChange() throws {
        let missing = directory.appendingPathComponent("none.raw").path
        XCTAssertThrowsError(try VirtioBlock(BlockDeviceOptions(path: missing))) {
            XCTAssertEqual($0 as? BlockDeviceError, .imageMissing(path: missing))
            XCTAssertEqual("\($0)", "disk image \(missing) does not exist")
        }
        XCTAssertThrowsError(try VirtioBlock(BlockDeviceOptions(path: directory.path))) {
            XCTAssertEqual($0 as? BlockDeviceError, .notADisk(path: directory.path))
        }
        let path = try makeImage()
        XCTAssertThrowsError(try VirtioBlock(BlockDeviceOptions(path: path, queueSize: 100))) {
            XCTAssertEqual($0 as? BlockDeviceError, .invalidQueueSize(100))
        }
        XCTAssertThrowsError(try VirtioBlock(BlockDeviceOptions(path: path, numQueues: 0))) {
            XCTAssertEqual($0 as? BlockDeviceError, .invalidQueueCount(0))
        }
        XCTAssertThrowsError(try VirtioBlock(BlockDeviceOptions(path: path, serial: String(repeating: "x", count: 21))))

        XCTAssertEqual(chmod(path, 0o444), 0)
        if getuid() == 0 {
            // Root ignores permission bits; an immutable file refuses it too.
            guard chattr("+i", path) else { throw XCTSkip("cannot make \(path) immutable") }
            immutable = path
        }
        XCTAssertThrowsError(try VirtioBlock(BlockDeviceOptions(path: path))) {
            guard case .notWritable? = $0 as? BlockDeviceError else { return XCTFail("\($0)") }
            XCTAssertTrue("\($0)".hasSuffix("use readonly=on to attach it read-only"), "\($0)")
        }
        XCTAssertNoThrow(try VirtioBlock(BlockDeviceOptions(path: path, readonly: true)))
    }

    func testStateRecordsCapacityAndRefusesAnImageOfAnotherSize() throws {
        let path = try makeImage()
        let saved = try VirtioBlock(BlockDeviceOptions(path: path)).saveDeviceState()
        XCTAssertNoThrow(try VirtioBlock(BlockDeviceOptions(path: path)).restoreDeviceState(saved, version: 1))
        XCTAssertThrowsError(try VirtioBlock(BlockDeviceOptions(path: path)).restoreDeviceState(saved, version: 2))
        XCTAssertEqual(truncate(path, 2 << 20), 0)
        XCTAssertThrowsError(try VirtioBlock(BlockDeviceOptions(path: path)).restoreDeviceState(saved, version: 1)) {
            XCTAssertEqual($0 as? BlockDeviceError, .sizeChanged(path: path, savedSectors: 2048, currentSectors: 4096))
        }
    }
}
