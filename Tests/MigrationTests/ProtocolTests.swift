import Foundation
@testable import Migration
import XCTest
import Zstd

/// The source and destination state machines against each other (and against a scripted peer) over a
/// socketpair, with synthetic RAM: what arrives is exactly what was sent, and every out-of-order or
/// malformed message is refused with an Error response that names it.
final class ProtocolTests: XCTestCase {
    private let layout: [(base: UInt64, pages: Int)] = [(base: 0, pages: 64), (base: 0x1_0000_0000, pages: 32)]

    func testAFullMigrationCopiesDataAndZeroesDirtiedPages() throws {
        let source = SyntheticRAM(layout)
        let destination = SyntheticRAM(layout)
        for page in stride(from: 0, to: 64, by: 3) { source.fill(region: 0, page: page, seed: UInt64(page)) }
        source.fill(region: 1, page: 31, seed: 77)
        // The destination has stale data in a page the source zeroed after the first pass.
        destination.fill(region: 0, page: 3, seed: 1234)

        let (a, b) = connectionPair()
        let sink = RecordingSink(ram: destination)
        let server = MigrationServer(connection: b, sink: sink)
        var messages: [Command] = []
        server.onMessage = { command, _ in messages.append(command) }
        let thread = ServerThread(server)

        let client = MigrationClient(connection: a)
        try client.start()
        try client.sendConfig(Data(#"{"memory":{"size":393216}}"#.utf8))
        for (index, region) in source.regions.enumerated() {
            let pass = MemoryPass(client: client, sendZeroRuns: false)
            try PageScanner.scan(region, dirty: nil) { try pass.add($0) }
            try pass.finish()
            XCTAssertEqual(pass.stats.zeroPages + pass.stats.dataPages, region.pages, "region \(index)")
        }
        source.zero(region: 0, page: 3)
        let dirtyPass = MemoryPass(client: client, sendZeroRuns: true)
        try PageScanner.scan(source.regions[0], dirty: [1 << 3]) { try dirtyPass.add($0) }
        try dirtyPass.finish()
        XCTAssertEqual(dirtyPass.stats.zeroPages, 1)
        let state = [StateSection(id: "vcpu-0", type: "vcpu", version: 1, payload: Data([9, 9]))]
        try client.finish(state: state, paused: true)

        XCTAssertEqual(thread.result(), .success(true), "CompletePaused keeps the VM paused")
        XCTAssertEqual(source.bytes(region: 0), destination.bytes(region: 0))
        XCTAssertEqual(source.bytes(region: 1), destination.bytes(region: 1))
        XCTAssertEqual(sink.sections, state)
        XCTAssertTrue(sink.completed)
        XCTAssertEqual(String(decoding: sink.config ?? Data(), as: UTF8.self), #"{"memory":{"size":393216}}"#)
        XCTAssertEqual(messages.first, .config)
        XCTAssertEqual(server.bytesReceived, client.bytesSent, "both sides count every request byte")
    }

    func testLargeRunsAreSplitIntoBoundedMessages() throws {
        let pages = Int(MemoryPass.maxBatchBytes / 4096) * 2 + 5
        let source = SyntheticRAM([(base: 0, pages: pages)])
        let destination = SyntheticRAM([(base: 0, pages: pages)])
        for page in 0..<pages { source.fill(region: 0, page: page, seed: UInt64(page)) }
        let (a, b) = connectionPair()
        let thread = ServerThread(MigrationServer(connection: b, sink: RecordingSink(ram: destination)))
        let client = MigrationClient(connection: a)
        try client.start()
        try client.sendConfig(Data("{}".utf8))
        let pass = MemoryPass(client: client, sendZeroRuns: false)
        try PageScanner.scan(source.regions[0], dirty: nil) { try pass.add($0) }
        try pass.finish()
        XCTAssertEqual(pass.stats.messages, 3)
        try client.finish(state: [], paused: false)
        XCTAssertEqual(thread.result(), .success(false))
        XCTAssertEqual(source.bytes(region: 0), destination.bytes(region: 0))
    }

    /// Compression announced in Start: compressible batches travel as MemoryCompressed, incompressible ones
    /// as plain Memory, zero runs as MemoryZero, and the destination's RAM ends up identical.
    func testACompressedMigrationCopiesEveryKindOfPage() throws {
        let source = SyntheticRAM(layout)
        let destination = SyntheticRAM(layout)
        for page in 0..<64 where page % 5 != 0 { source.fillCompressible(region: 0, page: page, seed: UInt64(page / 8)) }
        source.fillRandom(region: 1, page: 0, count: 32)
        destination.fill(region: 0, page: 5, seed: 99)

        let (a, b) = connectionPair()
        let server = MigrationServer(connection: b, sink: RecordingSink(ram: destination))
        var messages: [Command] = []
        server.onMessage = { command, _ in messages.append(command) }
        let thread = ServerThread(server)
        let client = MigrationClient(connection: a)
        let pipeline = try CompressionPipeline(level: CompressionPipeline.defaultLevel, workers: 2)
        try client.start(flags: .compressedMemory)
        try client.sendConfig(Data("{}".utf8))
        for region in source.regions {
            let pass = MemoryPass(client: client, sendZeroRuns: false, compression: pipeline)
            try PageScanner.scan(region, dirty: nil) { try pass.add($0) }
            try pass.finish()
        }
        let dirtyPass = MemoryPass(client: client, sendZeroRuns: true, compression: pipeline)
        try PageScanner.scan(source.regions[0], dirty: [1 << 5 | 1 << 6]) { try dirtyPass.add($0) }
        try dirtyPass.finish()
        try client.finish(state: [], paused: false)

        XCTAssertEqual(thread.result(), .success(false))
        XCTAssertEqual(source.bytes(region: 0), destination.bytes(region: 0))
        XCTAssertEqual(source.bytes(region: 1), destination.bytes(region: 1))
        XCTAssertTrue(messages.contains(.memoryCompressed) && messages.contains(.memory) && messages.contains(.memoryZero),
                      "\(messages)")
        let stats = pipeline.stats
        XCTAssertEqual(stats.pageBytes, UInt64(51 + 32 + 1) * 4096)
        XCTAssertEqual(stats.plainBatches, 1, "the random region is sent as it is")
        XCTAssertLessThan(stats.sentBytes, (32 + 5) * 4096, "51 low-entropy pages shrink to a few KiB")
        XCTAssertEqual(server.bytesReceived, client.bytesSent)
    }

    /// MemoryCompressed with `frame` for `ranges` (the frame length as declared unless `declared`).
    private func compressed(_ ranges: [PageRange], frame: [UInt8], declared: Int? = nil) -> [UInt8] {
        let payload = CompressedMemoryTable.encode(ranges, frameLength: declared ?? frame.count)
        return RequestHeader(.memoryCompressed, length: UInt64(payload.count)).bytes + payload + frame
    }

    /// A zstd frame of `pages` pages of low-entropy data.
    private func frame(pages: Int) throws -> [UInt8] {
        let input = [UInt8]((0..<pages * 4096).map { UInt8($0 % 7 + 1) })
        var output = [UInt8](repeating: 0, count: input.count)
        let length = try input.withUnsafeBytes { source in
            try output.withUnsafeMutableBytes { destination in
                try XCTUnwrap(ZstdCompressor().compress([source], into: destination.baseAddress!, capacity: destination.count, level: 1))
            }
        }
        return Array(output.prefix(length))
    }

    func testCompressedMemoryIsRefusedUnlessAnnouncedWholeAndExact() throws {
        let compressedStart = RequestHeader(.start, length: 16, version: 1).bytes + StartMessage.encode(flags: .compressedMemory)
        let twoPages = [PageRange(gpa: 0, length: 4096), PageRange(gpa: 0x1_0000_0000, length: 4096)]
        let good = try frame(pages: 2)
        var corrupt = good
        corrupt[0] ^= 0xff
        let cases: [([[UInt8]], String)] = [
            ([start, config, compressed(twoPages, frame: good)], "Start did not announce compressed memory"),
            ([RequestHeader(.start, length: 16, version: 1).bytes + StartMessage.encode(flags: [.localMemory, .compressedMemory])],
             "both local and compressed memory"),
            ([compressedStart, config, compressed(twoPages, frame: corrupt)], "zstd: Unknown frame descriptor"),
            ([compressedStart, config, compressed(twoPages, frame: try frame(pages: 1))], "holds 4096 bytes, expected 8192"),
            ([compressedStart, config, compressed([twoPages[0]], frame: good)], "holds more than the expected 4096 bytes"),
            ([compressedStart, config, compressed(twoPages, frame: Array(good.dropLast(3)))], "cut off"),
            ([compressedStart, config, compressed(twoPages, frame: good + [0])], "1 bytes follow the zstd frame"),
            ([compressedStart, config, compressed(twoPages, frame: [], declared: 8192)], "declares a frame of 8192 bytes for 8192"),
            ([compressedStart, config, compressed([PageRange(gpa: 64 * 4096, length: 4096)], frame: good)],
             "MemoryCompressed range 0x40000+0x1000 is not inside this VM's RAM"),
        ]
        for (requests, expected) in cases {
            let (message, error) = try refusal(requests)
            XCTAssertTrue(message?.contains(expected) == true, "expected '\(expected)', got \(message ?? "no error response")")
            XCTAssertEqual(message, error?.description)
        }
        // The same frame, announced and exact, is accepted.
        let (message, _) = try refusal([compressedStart, config, compressed(twoPages, frame: good)])
        XCTAssertNil(message)
    }

    /// A scripted source: sends raw requests and returns the destination's error message (nil: all Ok).
    private func refusal(_ requests: [[UInt8]], sink: RecordingSink? = nil,
                         file: StaticString = #filePath, line: UInt = #line) throws -> (String?, MigrationError?) {
        let (a, b) = connectionPair()
        let thread = ServerThread(MigrationServer(connection: b, sink: sink ?? RecordingSink(ram: SyntheticRAM(layout))))
        var message: String?
        for request in requests {
            try a.write(request, during: "test")
            let response = try ResponseHeader(decoding: try a.read(count: 16, during: "test"))
            if response.status == .error {
                message = String(decoding: try a.read(count: Int(response.length), during: "test"), as: UTF8.self)
                break
            }
        }
        if message == nil { a.shutdown() }
        guard case let .failure(error)? = thread.result() else {
            XCTFail("the server must stop with an error", file: file, line: line)
            return (message, nil)
        }
        return (message, error)
    }

    private let start = RequestHeader(.start, length: 16, version: 1).bytes + StartMessage.encode()
    private let config = RequestHeader(.config, length: 2).bytes + Array("{}".utf8)
    private func memory(_ ranges: [PageRange], command: Command = .memory) -> [UInt8] {
        let table = RangeTable.encode(ranges)
        return RequestHeader(command, length: UInt64(table.count)).bytes + table
    }
    private var emptyState: [UInt8] { RequestHeader(.state, length: 4).bytes + [0, 0, 0, 0] }

    func testOutOfOrderAndMalformedMessagesAreRefusedByName() throws {
        let cases: [([[UInt8]], String)] = [
            ([config], "the first message must be Start, got Config"),
            ([RequestHeader(.start, length: 0, version: 1).bytes], "Cloud Hypervisor"),
            ([start, start], "Start may only be sent once"),
            ([start, memory([PageRange(gpa: 0, length: 4096)])], "only allowed between Config and State"),
            ([start, emptyState], "State must follow Config"),
            ([start, config, config], "Config may only be sent once"),
            ([start, config, RequestHeader(.complete, length: 0).bytes], "Complete before State"),
            ([start, config, emptyState, memory([PageRange(gpa: 0, length: 4096)], command: .memoryZero)],
             "only allowed between Config and State"),
            ([start, config, memory([PageRange(gpa: 64 * 4096, length: 4096)])], "is not inside this VM's RAM"),
            ([start, config, memory([PageRange(gpa: 63 * 4096, length: 8192)])], "is not inside this VM's RAM"),
            ([start, config, memory([PageRange(gpa: 0x1_0000_0000 - 4096, length: 8192)])], "is not inside this VM's RAM"),
            ([start, config, [9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]], "unknown command 9"),
            ([start, RequestHeader(.memoryFd, length: 4).bytes + [0, 0, 0, 0]], "MemoryFd declares 4 payload bytes"),
            ([start, config, RequestHeader(.state, length: 5).bytes + [1, 0, 0, 0, 0]], "State ends inside"),
        ]
        for (requests, expected) in cases {
            let (message, error) = try refusal(requests)
            XCTAssertTrue(message?.contains(expected) == true, "expected '\(expected)', got \(message ?? "no error response")")
            XCTAssertEqual(message, error?.description, "the source is told exactly why the destination stops")
        }
    }

    func testSinkFailuresAreReportedToTheSource() throws {
        let sink = RecordingSink(ram: SyntheticRAM(layout))
        sink.refuseComplete = "vcpu-1: missing from the saved state"
        let (message, _) = try refusal([start, config, emptyState, RequestHeader(.complete, length: 0).bytes], sink: sink)
        XCTAssertEqual(message, "the VM could not be started here: vcpu-1: missing from the saved state")
    }

    func testAbandonAndAVanishedSourceStopTheReceiver() throws {
        let (_, abandoned) = try refusal([start, config, RequestHeader(.abandon, length: 0).bytes])
        XCTAssertEqual(abandoned, .cancelled("the source abandoned the migration"))
        // The source disappears after sending a Memory table but before its pages.
        let (a, b) = connectionPair()
        let thread = ServerThread(MigrationServer(connection: b, sink: RecordingSink(ram: SyntheticRAM(layout))))
        for request in [start, config] {
            try a.write(request, during: "test")
            _ = try a.read(count: 16, during: "test")
        }
        try a.write(memory([PageRange(gpa: 0, length: 8192)]) + [1, 2, 3], during: "test")
        a.shutdown()
        guard case let .failure(error)? = thread.result() else { return XCTFail("must fail") }
        XCTAssertEqual(error, .connectionLost(during: "receiving guest memory", errno: nil))
    }

    func testASilentPeerTimesOut() throws {
        let (a, b) = connectionPair(timeoutSeconds: 1)
        let thread = ServerThread(MigrationServer(connection: b, sink: RecordingSink(ram: SyntheticRAM(layout))))
        guard case let .failure(error)? = thread.result(timeout: 5) else { return XCTFail("must time out") }
        XCTAssertEqual(error, .timedOut(during: "waiting for the next message", seconds: 1))
        withExtendedLifetime(a) {}
    }

    func testTheClientReportsTheDestinationsRefusal() throws {
        let sink = try assertFinishRefused(command: "Complete", reason: "the VM could not be started here: no KVM here") {
            $0.refuseComplete = "no KVM here"
        }
        XCTAssertFalse(sink.completed)
    }

    /// State and Complete go out in one write: a refused State is what the source hears about, and the
    /// Complete behind it is never carried out.
    func testARefusedStateIsReportedAndItsCompleteIgnored() throws {
        let sink = try assertFinishRefused(command: "State",
                                           reason: "the VM state was not accepted: vcpu-0: version 9 is not supported") {
            $0.refuseState = "vcpu-0: version 9 is not supported"
        }
        XCTAssertFalse(sink.completed)
    }

    /// Start, Config, then State + Complete to a destination whose sink `refuse` set up: the client reports
    /// the refusal of `command` with `reason`, and the receive fails. Returns the sink.
    private func assertFinishRefused(command: String, reason: String, _ refuse: (RecordingSink) -> Void,
                                     file: StaticString = #filePath, line: UInt = #line) throws -> RecordingSink {
        let (a, b) = connectionPair()
        let sink = RecordingSink(ram: SyntheticRAM(layout))
        refuse(sink)
        let thread = ServerThread(MigrationServer(connection: b, sink: sink))
        let client = MigrationClient(connection: a)
        try client.start()
        try client.sendConfig(Data("{}".utf8))
        XCTAssertThrowsError(try client.finish(state: [], paused: false), file: file, line: line) {
            XCTAssertEqual($0 as? MigrationError, .refused(command: command, reason: reason), file: file, line: line)
            XCTAssertEqual("\($0)", "the destination refused \(command): \(reason)", file: file, line: line)
        }
        guard case .failure? = thread.result() else {
            XCTFail("the receive must fail", file: file, line: line)
            return sink
        }
        return sink
    }
}
