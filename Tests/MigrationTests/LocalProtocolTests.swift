import Foundation
import Glibc
@testable import Migration
import XCTest

/// Local migration on the wire: the memfds travel with MemoryFd (SCM_RIGHTS) and arrive as the same memory,
/// and a source that sends a malformed or out-of-place MemoryFd is refused by name, with every fd it sent
/// closed again.
final class LocalProtocolTests: XCTestCase {
    private let layout = [PageRange(gpa: 0, length: 16 * 4096), PageRange(gpa: 0x1_0000_0000, length: 8 * 4096)]

    /// An unlinked shared-memory file of `length` bytes (as a memfd is), mapped here; both go with the test process.
    private func memfd(_ length: UInt64) throws -> (fd: Int32, host: UnsafeMutableRawPointer) {
        var template = Array("/dev/shm/local-test-XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        XCTAssertGreaterThanOrEqual(fd, 0)
        unlink(String(cString: template))
        XCTAssertEqual(ftruncate(fd, off_t(length)), 0)
        let host = try XCTUnwrap(mmap(nil, Int(length), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0))
        return (fd, host)
    }

    private var openFds: Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1 }

    func testTheMemoryFdsArriveAsTheSameMemory() throws {
        let files = try layout.map { try memfd($0.length) }
        files[1].host.storeBytes(of: 0xC0FFEE, toByteOffset: 4096, as: UInt32.self)
        let (a, b) = connectionPair()
        let sink = RecordingSink(ram: SyntheticRAM([]))
        let server = MigrationServer(connection: b, sink: sink)
        let thread = ServerThread(server)
        let client = MigrationClient(connection: a)
        try client.start(flags: .localMemory)
        try client.sendConfig(Data("{}".utf8))
        try client.sendMemoryFds(layout, fds: files.map(\.fd))
        try client.finish(state: [], paused: false)
        XCTAssertEqual(thread.result(), .success(false))

        let adopted = try XCTUnwrap(sink.adopted)
        XCTAssertEqual(adopted.regions, layout)
        XCTAssertEqual(adopted.fds.count, 2)
        XCTAssertFalse(adopted.fds.contains { files.map(\.fd).contains($0) }, "the destination has its own fds")
        // The same pages: what the source wrote is there, and a write on one side shows on the other.
        let mapped = try XCTUnwrap(mmap(nil, 8 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, adopted.fds[1], 0))
        defer { munmap(mapped, 8 * 4096) }
        XCTAssertEqual(mapped.load(fromByteOffset: 4096, as: UInt32.self), 0xC0FFEE)
        mapped.storeBytes(of: 7, toByteOffset: 0, as: UInt8.self)
        XCTAssertEqual(files[1].host.load(as: UInt8.self), 7)
        XCTAssertLessThan(client.bytesSent, 256, "no page travels: \(client.bytesSent) bytes")
        XCTAssertEqual(server.bytesReceived, client.bytesSent)
    }

    /// A raw source: sends Start (with `flags`) and Config, then `header` and `payload` with `fds` attached;
    /// returns the destination's error message. Every fd it received must be closed again.
    private func refusal(flags: StartFlags, header: RequestHeader, payload: [UInt8],
                         fds: [Int32], file: StaticString = #filePath, line: UInt = #line) throws -> String? {
        let (a, b) = connectionPair()
        let fdsBefore = openFds
        var thread: ServerThread? = ServerThread(MigrationServer(connection: b, sink: RecordingSink(ram: SyntheticRAM(
            layout.map { (base: $0.gpa, pages: Int($0.length / 4096)) }))))
        let client = MigrationClient(connection: a)
        try client.start(flags: flags)
        try client.sendConfig(Data("{}".utf8))
        try a.write(header.bytes, during: "test")
        if fds.isEmpty { try a.write(payload, during: "test") } else { try a.write(payload, passing: fds, during: "test") }
        let response = try ResponseHeader(decoding: try a.read(count: 16, during: "test"))
        XCTAssertEqual(response.status, .error, file: file, line: line)
        let message = String(decoding: try a.read(count: Int(response.length), during: "test"), as: UTF8.self)
        guard case .failure? = thread?.result() else {
            XCTFail("the server must stop with an error", file: file, line: line)
            return message
        }
        thread = nil
        // At most as many: earlier tests' child-process pipes may still be closing meanwhile.
        XCTAssertLessThanOrEqual(openFds, fdsBefore, "every received fd is closed: \(message)", file: file, line: line)
        return message
    }

    func testMalformedOrMisplacedMemoryFdsAreRefused() throws {
        let file = try memfd(16 * 4096)
        let one = [PageRange(gpa: 0, length: 16 * 4096)]
        let table = MemoryFdTable.encode(one)
        let header = RequestHeader(.memoryFd, length: UInt64(table.count))
        var badVersion = table
        badVersion[0] = 2
        let cases: [(StartFlags, RequestHeader, [UInt8], [Int32], String)] = [
            ([], header, table, [file.fd], "MemoryFd in a migration whose Start did not announce local memory"),
            (.localMemory, header, table, [], "MemoryFd announces 1 regions but 0 file descriptors came with it"),
            (.localMemory, header, table, [file.fd, file.fd], "MemoryFd announces 1 regions but 2 file descriptors"),
            (.localMemory, header, badVersion, [file.fd], "MemoryFd format version 2 is not supported"),
            (.localMemory, RequestHeader(.memoryFd, length: 4), [0, 0, 0, 0], [file.fd], "MemoryFd declares 4 payload bytes"),
            (.localMemory, RequestHeader(.state, length: 4), [0, 0, 0, 0], [], "State before MemoryFd in a local migration"),
            (.localMemory, RequestHeader(.memory, length: 16), RangeTable.encode([PageRange(gpa: 0, length: 4096)]), [],
             "Memory in a local migration"),
        ]
        for (flags, header, payload, fds, expected) in cases {
            let message = try refusal(flags: flags, header: header, payload: payload, fds: fds)
            XCTAssertTrue(message?.contains(expected) == true, "expected '\(expected)', got \(message ?? "no error")")
        }
    }

    func testMemoryFdIsAcceptedOnlyOnce() throws {
        let file = try memfd(16 * 4096)
        let (a, b) = connectionPair()
        let thread = ServerThread(MigrationServer(connection: b, sink: RecordingSink(ram: SyntheticRAM([]))))
        let client = MigrationClient(connection: a)
        try client.start(flags: .localMemory)
        try client.sendConfig(Data("{}".utf8))
        try client.sendMemoryFds([PageRange(gpa: 0, length: 16 * 4096)], fds: [file.fd])
        XCTAssertThrowsError(try client.sendMemoryFds([PageRange(gpa: 0, length: 16 * 4096)], fds: [file.fd])) {
            XCTAssertTrue("\($0)".contains("MemoryFd is only allowed once"), "\($0)")
        }
        _ = thread.result()
    }
}
