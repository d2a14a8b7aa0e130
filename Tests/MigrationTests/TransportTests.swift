import Foundation
import Migration
import TestSupport
import XCTest

/// Listening and connecting over real UNIX and TCP sockets (IPv4 and IPv6 loopback).
final class TransportTests: XCTestCase {
    private func roundTrip(_ url: MigrationURL) throws {
        let listener = try Listener(url)
        let accepted = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var server: Connection?
        Thread {
            server = try? listener.accept()
            accepted.signal()
        }.start()
        let client = try Connection.connect(to: url)
        XCTAssertEqual(accepted.wait(timeout: .now() + 5), .success)
        let peer = try XCTUnwrap(server)
        let payload = (0..<100_000).map { UInt8(truncatingIfNeeded: $0) }
        try client.write(Array(payload.prefix(10)), then: payload.dropFirst(10).withUnsafeBytes { [UnsafeRawBufferPointer($0)] }, during: "test")
        XCTAssertEqual(try peer.read(count: payload.count, during: "test"), payload)
    }

    func testUnixSocketIsReplacedWhenStaleAndRemovedAfterAccept() throws {
        let dir = try ScratchDirectory()
        let path = dir.file("mig.sock")
        // A stale socket file from an earlier run does not stop a new listener.
        _ = try Listener(.unix(path: path))
        try roundTrip(.unix(path: path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: path), "the socket file is removed once the source connected")
        // A regular file in the way is not deleted.
        _ = FileManager.default.createFile(atPath: path, contents: Data("keep".utf8))
        XCTAssertThrowsError(try Listener(.unix(path: path)))
        XCTAssertEqual(FileManager.default.contents(atPath: path), Data("keep".utf8))
    }

    func testTCPOverIPv4AndIPv6Loopback() throws {
        try roundTrip(.tcp(host: "127.0.0.1", port: try freePort()))
        if (try? Listener(.tcp(host: "::1", port: 0))) != nil {
            try roundTrip(.tcp(host: "::1", port: try freePort()))
        }
    }

    func testConnectErrorsSayWhatToCheck() throws {
        let dir = try ScratchDirectory()
        XCTAssertThrowsError(try Connection.connect(to: .unix(path: dir.file("none.sock")))) {
            XCTAssertTrue("\($0)".contains("vm.receive-migration"), "\($0)")
        }
        XCTAssertThrowsError(try Connection.connect(to: .tcp(host: "127.0.0.1", port: try freePort()))) {
            XCTAssertTrue("\($0)".contains("Connection refused"), "\($0)")
        }
    }

    func testCloseWakesABlockedAccept() throws {
        let listener = try Listener(.tcp(host: "127.0.0.1", port: 0))
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var failure: Error?
        Thread {
            do { _ = try listener.accept() } catch { failure = error }
            done.signal()
        }.start()
        usleep(100_000)
        listener.close()
        XCTAssertEqual(done.wait(timeout: .now() + 5), .success)
        XCTAssertEqual(failure as? MigrationError, .cancelled("the listener on tcp:127.0.0.1:0 was closed"))
    }
}
