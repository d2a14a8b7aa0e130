import API
import Foundation
import Glibc
import Logging
import XCTest

/// The socket file: where it goes, who may use it, and what happens to old ones.
final class SocketTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "api-socket-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func mode(_ path: String) -> mode_t? {
        var st = stat()
        return lstat(path, &st) == 0 ? st.st_mode : nil
    }

    func testSocketIsMode0600AndRemovedOnStop() throws {
        let path = directory + "/api.sock"
        let server = APIServer()
        try server.start(socket: .path(path), handler: ScriptedVmm())
        let st = try XCTUnwrap(mode(path))
        XCTAssertEqual(st & S_IFMT, S_IFSOCK)
        XCTAssertEqual(st & 0o777, 0o600)
        XCTAssertEqual(try RawHTTP(socket: path).call("GET", "vmm.ping").status, 200)
        server.stop()
        XCTAssertNil(mode(path), "the socket file is removed on stop")
        XCTAssertThrowsError(try RawHTTP(socket: path))
    }

    func testMissingDirectoriesAreCreated() throws {
        let path = directory + "/run/user/1000/cloud-hypervisor.1"
        let server = APIServer()
        try server.start(socket: .path(path), handler: ScriptedVmm())
        defer { server.stop() }
        XCTAssertEqual(try RawHTTP(socket: path).call("GET", "vmm.ping").status, 200)
        XCTAssertEqual(try XCTUnwrap(mode(directory + "/run/user/1000")) & 0o777, 0o700)
    }

    func testAStaleSocketIsReplaced() throws {
        let path = directory + "/api.sock"
        // A socket file nobody listens on, as a crashed VMM leaves behind.
        let stale = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { for (i, b) in path.utf8.enumerated() { $0[i] = b } }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(stale, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        XCTAssertEqual(bound, 0)
        close(stale)
        XCTAssertNotNil(mode(path))

        let server = APIServer()
        try server.start(socket: .path(path), handler: ScriptedVmm())
        defer { server.stop() }
        XCTAssertEqual(try RawHTTP(socket: path).call("GET", "vmm.ping").status, 200)
    }

    func testALiveServersSocketIsNotTaken() throws {
        let path = directory + "/api.sock"
        let first = APIServer()
        try first.start(socket: .path(path), handler: ScriptedVmm())
        defer { first.stop() }
        XCTAssertThrowsError(try APIServer().start(socket: .path(path), handler: ScriptedVmm())) { error in
            XCTAssertEqual(error as? APIServerError, .socketInUse(path: path))
            XCTAssertEqual("\(error)", "API socket \(path) is in use by another running server")
        }
        XCTAssertEqual(try RawHTTP(socket: path).call("GET", "vmm.ping").status, 200, "the first server still serves")
    }

    func testAFileThatIsNotASocketIsNeverDeleted() throws {
        let path = directory + "/important.txt"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data("keep".utf8)))
        XCTAssertThrowsError(try APIServer().start(socket: .path(path), handler: ScriptedVmm())) { error in
            XCTAssertEqual(error as? APIServerError, .notASocket(path: path))
        }
        XCTAssertEqual(FileManager.default.contents(atPath: path), Data("keep".utf8))
    }

    func testUnusableDirectoriesGiveAClearError() throws {
        let file = directory + "/file"
        XCTAssertTrue(FileManager.default.createFile(atPath: file, contents: nil))
        XCTAssertThrowsError(try APIServer().start(socket: .path(file + "/sub/api.sock"), handler: ScriptedVmm())) { error in
            XCTAssertEqual(error as? APIServerError, .cannotCreateDirectory(path: file + "/sub", errno: ENOTDIR))
            XCTAssertEqual("\(error)", "cannot create the API socket directory \(file)/sub: Not a directory")
        }
        XCTAssertThrowsError(try APIServer().start(socket: .path(file + "/api.sock"), handler: ScriptedVmm())) { error in
            XCTAssertEqual(error as? APIServerError, .cannotBind(path: file + "/api.sock", errno: ENOTDIR))
        }
        // Read-only no matter who we are (tests may run as root).
        XCTAssertThrowsError(try APIServer().start(socket: .path("/proc/api.sock"), handler: ScriptedVmm())) { error in
            guard case .cannotBind(path: "/proc/api.sock", _) = error as? APIServerError else {
                return XCTFail("\(error)")
            }
        }
        let long = directory + "/" + String(repeating: "x", count: 120)
        XCTAssertThrowsError(try APIServer().start(socket: .path(long), handler: ScriptedVmm())) { error in
            XCTAssertEqual(error as? APIServerError, .pathTooLong(path: long))
        }
    }

    func testAnInheritedDescriptorIsServed() throws {
        let path = directory + "/inherited.sock"
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { for (i, b) in path.utf8.enumerated() { $0[i] = b } }
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        let server = APIServer()
        try server.start(socket: .fd(fd), handler: ScriptedVmm())
        XCTAssertEqual(try RawHTTP(socket: path).call("GET", "vmm.ping").status, 200)
        server.stop()
        XCTAssertNotNil(mode(path), "a socket we did not create is not ours to remove")
    }

    func testADescriptorThatIsNotASocketIsRefused() throws {
        let fd = open("/dev/null", O_RDONLY)
        defer { close(fd) }
        XCTAssertThrowsError(try APIServer().start(socket: .fd(fd), handler: ScriptedVmm())) { error in
            XCTAssertEqual(error as? APIServerError, .invalidDescriptor(fd: fd, reason: "not a socket"))
        }
    }

    func testStartTwiceIsRefusedAndStopTwiceIsHarmless() throws {
        let server = APIServer()
        try server.start(socket: .path(directory + "/a.sock"), handler: ScriptedVmm())
        XCTAssertThrowsError(try server.start(socket: .path(directory + "/b.sock"), handler: ScriptedVmm())) { error in
            XCTAssertEqual(error as? APIServerError, .alreadyStarted)
        }
        server.stop()
        server.stop()
        try server.start(socket: .path(directory + "/a.sock"), handler: ScriptedVmm())
        server.stop()
    }
}
