import Devices
import Foundation
import XCTest

final class SerialSinkTests: XCTestCase {
    func testFileDescriptorSinkWritesEverythingThroughEAGAIN() throws {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        let (readEnd, writeEnd) = (fds[0], fds[1])
        defer { close(readEnd) }
        // Non-blocking write end: a full pipe answers EAGAIN, which the sink must wait out.
        XCTAssertEqual(fcntl(writeEnd, F_SETFL, fcntl(writeEnd, F_GETFL) | O_NONBLOCK), 0)
        let sink = FileDescriptorSink(fd: writeEnd, closeOnDeinit: true)
        let payload = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 % 251) }

        let received = ReceivedBytes()
        let reader = Thread {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                usleep(100)   // a slow reader, so the pipe fills up
                let n = read(readEnd, &buffer, buffer.count)
                if n <= 0 { break }
                received.append(buffer[0..<n])
            }
            received.finish()
        }
        reader.start()
        payload.withUnsafeBytes { sink.write($0) }
        XCTAssertNil(sink.lastError)
        close(writeEnd)
        XCTAssertTrue(received.waitFinished(seconds: 20))
        XCTAssertEqual(received.bytes.count, payload.count)
        XCTAssertEqual(received.bytes, payload)
    }

    func testFileDescriptorSinkRecordsFailureAndDoesNotBlock() {
        signal(SIGPIPE, SIG_IGN)
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        close(fds[0])
        let sink = FileDescriptorSink(fd: fds[1], closeOnDeinit: true)
        [UInt8]("lost".utf8).withUnsafeBytes { sink.write($0) }
        XCTAssertEqual(sink.lastError, .writeFailed(errno: EPIPE))
    }

    func testMemoryAndNullSinks() {
        let memory = MemorySink()
        [UInt8]("ab".utf8).withUnsafeBytes { memory.write($0) }
        [UInt8]("c".utf8).withUnsafeBytes { memory.write($0) }
        XCTAssertEqual(memory.text, "abc")
        memory.clear()
        XCTAssertEqual(memory.bytes, [])
        [UInt8]("x".utf8).withUnsafeBytes { NullSink().write($0) }
    }
}

private final class ReceivedBytes: @unchecked Sendable {
    private let lock = NSCondition()
    private var data: [UInt8] = []
    private var done = false

    func append(_ bytes: ArraySlice<UInt8>) { lock.lock(); data.append(contentsOf: bytes); lock.unlock() }
    func finish() { lock.lock(); done = true; lock.broadcast(); lock.unlock() }
    var bytes: [UInt8] { lock.lock(); defer { lock.unlock() }; return data }
    func waitFinished(seconds: Double) -> Bool {
        lock.lock(); defer { lock.unlock() }
        let deadline = Date().addingTimeInterval(seconds)
        while !done { if !lock.wait(until: deadline) { return false } }
        return true
    }
}
