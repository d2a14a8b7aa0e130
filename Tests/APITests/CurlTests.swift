import Config
import Foundation
import VMM
import XCTest

/// Cloud Hypervisor's documented `curl --unix-socket` examples (docs/api.md upstream), verbatim but for
/// the socket path, through a client we did not write.
final class CurlTests: XCTestCase {
    private struct Output {
        let status: Int
        let headers: [String: String]
        let body: String
    }

    /// Runs curl with `-i` and splits what it prints.
    private func curl(_ arguments: [String]) throws -> Output {
        let curl = "/usr/bin/curl"
        guard FileManager.default.isExecutableFile(atPath: curl) else {
            XCTFail("curl is required by these tests")
            throw CocoaError(.fileNoSuchFile)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: curl)
        process.arguments = ["-s", "-S", "-m", "10"] + arguments
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "curl \(arguments)")
        let text = String(decoding: data, as: UTF8.self)
        let parts = text.components(separatedBy: "\r\n\r\n")
        var lines = parts[0].components(separatedBy: "\r\n")
        let status = Int(lines.removeFirst().split(separator: " ")[1]) ?? 0
        var headers: [String: String] = [:]
        for line in lines {
            let pair = line.split(separator: ":", maxSplits: 1)
            if pair.count == 2 { headers[pair[0].lowercased()] = pair[1].trimmingCharacters(in: .whitespaces) }
        }
        return Output(status: status, headers: headers, body: parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    func testTheDocumentedLifecycleExamples() throws {
        let server = try TestServer()
        let sock = server.socket

        let create = try curl(["--unix-socket", sock, "-i",
                               "-X", "PUT", "http://localhost/api/v1/vm.create",
                               "-H", "Accept: application/json",
                               "-H", "Content-Type: application/json",
                               "-d", """
                               {
                                   "cpus":{"boot_vcpus": 4, "max_vcpus": 4},
                                   "payload":{"kernel":"/opt/clh/kernel/vmlinux-virtio-fs-virtio-iommu", "cmdline":"console=ttyS0 console=hvc0 root=/dev/vda1 rw"},
                                   "disks":[{"path":"/opt/clh/images/focal-server-cloudimg-amd64.raw"}],
                                   "rng":{"src":"/dev/urandom"},
                                   "net":[{"ip":"192.168.10.10", "mask":"255.255.255.0", "mac":"12:34:56:78:90:01"}]
                               }
                               """])
        XCTAssertEqual(create.status, 204)
        XCTAssertEqual(create.headers["content-type"], "application/json")
        XCTAssertEqual(create.headers["server"], "Cloud Hypervisor API")
        guard case let .create(config) = try XCTUnwrap(server.vmm.commands.last) else { return XCTFail() }
        XCTAssertEqual(config.cpus.boot_vcpus, 4)
        XCTAssertEqual(config.payload?.kernel, "/opt/clh/kernel/vmlinux-virtio-fs-virtio-iommu")
        XCTAssertEqual(config.payload?.cmdline, "console=ttyS0 console=hvc0 root=/dev/vda1 rw")
        XCTAssertEqual(config.rng.src, "/dev/urandom")

        XCTAssertEqual(try curl(["--unix-socket", sock, "-i", "-X", "PUT", "http://localhost/api/v1/vm.boot"]).status, 204)

        let info = try curl(["--unix-socket", sock, "-i", "-X", "GET", "http://localhost/api/v1/vm.info",
                             "-H", "Accept: application/json"])
        XCTAssertEqual(info.status, 200)
        let object = try JSONSerialization.jsonObject(with: Data(info.body.utf8)) as? [String: Any]
        XCTAssertEqual(object?["state"] as? String, "Created")

        XCTAssertEqual(try curl(["--unix-socket", sock, "-i", "-X", "PUT", "http://localhost/api/v1/vm.reboot"]).status, 204)
        XCTAssertEqual(try curl(["--unix-socket", sock, "-i", "-X", "PUT", "http://localhost/api/v1/vm.shutdown"]).status, 204)

        let commands = server.vmm.commands.map { "\($0)".prefix { $0 != "(" } }
        XCTAssertEqual(commands, ["create", "boot", "info", "reboot", "shutdown"])
    }

    func testPingAndAnErrorThroughCurl() throws {
        let server = try TestServer()
        let ping = try curl(["--unix-socket", server.socket, "-i", "http://localhost/api/v1/vmm.ping"])
        XCTAssertEqual(ping.status, 200)
        XCTAssertTrue(ping.body.contains("\"version\":\"v0.1.0\""), ping.body)

        server.vmm.answer { _ in .failure(.invalidTransition("The VM could not be paused", from: .Paused, to: .Paused)) }
        let pause = try curl(["--unix-socket", server.socket, "-i", "-X", "PUT", "http://localhost/api/v1/vm.pause"])
        XCTAssertEqual(pause.status, 500)
        XCTAssertEqual(pause.body, #"["Error from API","The VM could not be paused","Invalid transition: VM is Paused, cannot become Paused"]"#)
    }

    func testCurlsLargeBodyIsRefusedWithoutBeingSent() throws {
        // curl asks `Expect: 100-continue` for big bodies; the server answers 400 at once instead.
        let server = try TestServer()
        let file = NSTemporaryDirectory() + "big-\(getpid()).json"
        XCTAssertTrue(FileManager.default.createFile(atPath: file, contents: Data(repeating: UInt8(ascii: " "), count: 5 << 20)))
        defer { try? FileManager.default.removeItem(atPath: file) }
        let start = Date()
        let reply = try curl(["--unix-socket", server.socket, "-i", "-X", "PUT", "http://localhost/api/v1/vm.create",
                              "-H", "Content-Type: application/json", "--data-binary", "@" + file])
        XCTAssertEqual(reply.status, 400)
        XCTAssertLessThan(Date().timeIntervalSince(start), 2)
        XCTAssertTrue(reply.body.contains("larger than the limit of 4194304"), reply.body)
    }
}
