import Config
import Foundation
import TestSupport
import XCTest

/// The built `ch-remote` executable against the stub server: CH's argument syntax becomes the right request,
/// the answer is printed as CH's ch-remote prints it, and failures give an error chain and exit status 1.
final class CHRemoteTests: XCTestCase {
    struct MissingExecutable: Error, CustomStringConvertible {
        let path: String
        var description: String { "ch-remote is not built at \(path): run `swift build --product ch-remote` first" }
    }

    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The ch-remote built next to this test bundle (whatever the scratch path), else TestSupport's location.
    static var executable: URL {
        let sibling = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("ch-remote")
        return FileManager.default.isExecutableFile(atPath: sibling.path) ? sibling : Paths.product("ch-remote")
    }

    private func chRemote(_ arguments: [String], stdin: String? = nil) throws -> Run {
        let url = Self.executable
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            throw MissingExecutable(path: url.path)
        }
        let process = Process()
        process.executableURL = url
        process.arguments = arguments
        let out = Pipe(), err = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                   stderr: String(decoding: stderr, as: UTF8.self))
    }

    /// Runs ch-remote once against a stub answering `answer`; returns the run and the request it received.
    private func exchange(_ arguments: [String], stdin: String? = nil, answer: CannedResponse = .noContent,
                          file: StaticString = #filePath, line: UInt = #line) throws -> (Run, RecordedRequest?) {
        let server = try StubCHServer { _ in answer }
        defer { server.stop() }
        let run = try chRemote(["--api-socket", server.socketPath] + arguments, stdin: stdin)
        XCTAssertLessThanOrEqual(server.requests.count, 1, file: file, line: line)
        return (run, server.requests.first)
    }

    func testSubcommandsWithoutArgumentsMapToTheirEndpoints() throws {
        let table: [(String, String, String)] = [
            ("ping", "GET", "vmm.ping"), ("shutdown-vmm", "PUT", "vmm.shutdown"), ("boot", "PUT", "vm.boot"),
            ("delete", "PUT", "vm.delete"), ("info", "GET", "vm.info"), ("counters", "GET", "vm.counters"),
            ("pause", "PUT", "vm.pause"), ("resume", "PUT", "vm.resume"), ("shutdown", "PUT", "vm.shutdown"),
            ("reboot", "PUT", "vm.reboot"), ("power-button", "PUT", "vm.power-button"), ("nmi", "PUT", "vm.nmi"),
        ]
        for (command, method, endpoint) in table {
            let (run, request) = try exchange([command])
            XCTAssertEqual(run.status, 0, "\(command): \(run.stderr)")
            XCTAssertEqual(request?.method, method, command)
            XCTAssertEqual(request?.path, "/api/v1/\(endpoint)", command)
            XCTAssertEqual(request?.body.isEmpty, true, command)
            // A 204 prints nothing.
            XCTAssertEqual(run.stdout, "", command)
        }
    }

    func testAnswersArePrintedAsReceived() throws {
        let ping = #"{"build_version":"v54.0.0","version":"54.0.0","pid":7,"features":[]}"#
        let (run, _) = try exchange(["ping"], answer: .ok(ping))
        XCTAssertEqual(run.status, 0)
        XCTAssertEqual(run.stdout, ping + "\n")
        // `--api-socket=PATH` works too (CH's integration tests spell it so).
        let server = try StubCHServer { _ in .ok(#"{"_disk0":{"read_ops":1}}"#) }
        defer { server.stop() }
        let counters = try chRemote(["--api-socket=\(server.socketPath)", "counters"])
        XCTAssertEqual(counters.stdout, #"{"_disk0":{"read_ops":1}}"# + "\n")
    }

    func testAddCommandsSendTheParsedConfig() throws {
        let cases: [(String, String, String, any Encodable)] = [
            ("add-disk", "path=/img,readonly=on,id=disk1", "vm.add-disk", try DiskConfig.parse("path=/img,readonly=on,id=disk1")),
            ("add-net", "tap=tap1,mac=12:34:56:78:9a:bc", "vm.add-net", try NetConfig.parse("tap=tap1,mac=12:34:56:78:9a:bc")),
            ("add-fs", "tag=share,socket=/fs.sock", "vm.add-fs", try FsConfig.parse("tag=share,socket=/fs.sock")),
            ("add-pmem", "file=/pmem,size=1M", "vm.add-pmem", try PmemConfig.parse("file=/pmem,size=1M")),
            ("add-vsock", "cid=3,socket=/v.sock", "vm.add-vsock", try VsockConfig.parse("cid=3,socket=/v.sock")),
            ("add-vdpa", "path=/dev/vhost-vdpa-0", "vm.add-vdpa", try VdpaConfig.parse("path=/dev/vhost-vdpa-0")),
            ("add-device", "path=/sys/bus/pci/devices/0000:01:00.0", "vm.add-device",
             try DeviceConfig.parse("path=/sys/bus/pci/devices/0000:01:00.0")),
            ("add-user-device", "socket=/u.sock", "vm.add-user-device", try UserDeviceConfig.parse("socket=/u.sock")),
            ("add-generic-vhost-user", "socket=/g,device_type=fs,queue_sizes=[1024]", "vm.add-generic-vhost-user",
             try GenericVhostUserConfig.parse("socket=/g,device_type=fs,queue_sizes=[1024]")),
        ]
        let plugged = #"{"id":"_disk0","bdf":"0000:00:06.0"}"#
        for (command, argument, endpoint, expected) in cases {
            let (run, request) = try exchange([command, argument], answer: .ok(plugged))
            XCTAssertEqual(run.status, 0, "\(command): \(run.stderr)")
            XCTAssertEqual(run.stdout, plugged + "\n", command)
            XCTAssertEqual(request?.method, "PUT", command)
            XCTAssertEqual(request?.path, "/api/v1/\(endpoint)", command)
            XCTAssertEqual(request?.headers["content-type"], "application/json", command)
            let sent = try JSONSerialization.jsonObject(with: request?.body ?? Data()) as? NSDictionary
            let wanted = try JSONSerialization.jsonObject(with: JSONEncoder().encode(expected)) as? NSDictionary
            XCTAssertEqual(sent, wanted, command)
        }
    }

    func testStateCommandBodies() throws {
        let cases: [([String], String, String)] = [
            (["resize", "--cpus", "2", "--memory", "1G"], "vm.resize",
             #"{"desired_vcpus":2,"desired_ram":1073741824,"desired_balloon":null}"#),
            (["resize", "--balloon", "512M"], "vm.resize", #"{"desired_vcpus":null,"desired_ram":null,"desired_balloon":536870912}"#),
            (["resize-zone", "--id", "mem0", "--size", "2G"], "vm.resize-zone", #"{"id":"mem0","desired_ram":2147483648}"#),
            (["resize-disk", "--disk", "disk0", "--size", "10G"], "vm.resize-disk", #"{"id":"disk0","desired_size":10737418240}"#),
            (["remove-device", "_disk0"], "vm.remove-device", #"{"id":"_disk0"}"#),
            (["snapshot", "file:///snap"], "vm.snapshot", #"{"destination_url":"file:///snap"}"#),
            (["coredump", "file:///tmp/core"], "vm.coredump", #"{"destination_url":"file:///tmp/core"}"#),
            (["restore", "source_url=file:///snap,prefault=on,resume=true"], "vm.restore",
             #"{"source_url":"file:///snap","prefault":true,"memory_restore_mode":"Copy","net_fds":null,"vfio_fds":null,"iommufd_fd":null,"resume":true,"zone_updates":[]}"#),
            (["send-migration", "destination_url=unix:/tmp/mig.sock,local=on"], "vm.send-migration",
             #"{"destination_url":"unix:/tmp/mig.sock","local":true,"preserve_source":false,"downtime_ms":300,"timeout_s":3600,"timeout_strategy":"Cancel","connections":1,"tls_dir":null,"memory_mode":"Precopy"}"#),
            (["send-migration", "--local", "unix:/tmp/mig.sock"], "vm.send-migration",
             #"{"destination_url":"unix:/tmp/mig.sock","local":true,"preserve_source":false,"downtime_ms":300,"timeout_s":3600,"timeout_strategy":"Cancel","connections":1,"tls_dir":null,"memory_mode":"Precopy"}"#),
            (["receive-migration", "receiver_url=tcp:0.0.0.0:6000"], "vm.receive-migration",
             #"{"receiver_url":"tcp:0.0.0.0:6000","tls_dir":null,"memory_mode":"Precopy","vfio_fds":null,"iommufd_fd":null,"zone_updates":[]}"#),
        ]
        for (arguments, endpoint, body) in cases {
            let (run, request) = try exchange(arguments)
            XCTAssertEqual(run.status, 0, "\(arguments): \(run.stderr)")
            XCTAssertEqual(request?.method, "PUT")
            XCTAssertEqual(request?.path, "/api/v1/\(endpoint)")
            let sent = try JSONSerialization.jsonObject(with: request?.body ?? Data()) as? NSDictionary
            let wanted = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? NSDictionary
            XCTAssertEqual(sent, wanted, "\(arguments)")
        }
    }

    func testCreateSendsTheFileOrStdinUnchanged() throws {
        let json = #"{"cpus":{"boot_vcpus":1,"max_vcpus":1},"payload":{"kernel":"/k"},"a_future_field":true}"#
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("vm-\(UUID()).json")
        try Data(json.utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        for (arguments, stdin) in [(["create", file.path], nil), (["create", "-"], json), (["create"], json)] as [([String], String?)] {
            let (run, request) = try exchange(arguments, stdin: stdin)
            XCTAssertEqual(run.status, 0, run.stderr)
            XCTAssertEqual(request?.path, "/api/v1/vm.create")
            XCTAssertEqual(request.map { String(decoding: $0.body, as: UTF8.self) }, json, "\(arguments)")
        }
        let (missing, request) = try exchange(["create", "/no/such/file.json"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertNil(request)
        XCTAssertTrue(missing.stderr.contains("Error reading from file"), missing.stderr)
    }

    func testServerErrorPrintsTheChainAndExitsOne() throws {
        let chain = ["Error from API", "The VM could not be paused", "Invalid transition: VM is Paused, cannot become Paused"]
        let (run, _) = try exchange(["pause"], answer: .error(500, chain))
        XCTAssertEqual(run.status, 1)
        XCTAssertEqual(run.stdout, "")
        XCTAssertEqual(run.stderr, """
            Error: ch-remote exited with the following chain of errors:
              0: http client error
              1: Server responded with InternalServerError (500)
              2: Error from API
              3: The VM could not be paused
              4: Invalid transition: VM is Paused, cannot become Paused

            """)
    }

    func testBadArgumentsFailBeforeAnyRequest() throws {
        let cases: [([String], String)] = [
            (["add-net", "tap=tap0,mac=12:34:56"], "'mac'"),
            (["add-disk", "path=/x,colour=red"], "unknown option 'colour'"),
            (["add-disk", "path=/x,id=__disk"], "'__'"),
            (["add-fs", "tag=t"], "'socket' is required"),
            (["resize", "--cpus", "two"], "Error parsing CPU count"),
            (["resize-disk", "--disk", "d", "--size", "big"], "Invalid disk size"),
            (["restore", "prefault=on"], "'source_url' is required"),
            (["send-migration", "destination_url=file:///x"], "tcp:<host>:<port> or unix:<path>"),
            (["add-net", "fd=[3,4]"], "passing file descriptors"),
        ]
        for (arguments, expected) in cases {
            let (run, request) = try exchange(arguments)
            XCTAssertEqual(run.status, 1, "\(arguments)")
            XCTAssertNil(request, "\(arguments) sent a request")
            XCTAssertTrue(run.stderr.hasPrefix("Error: ch-remote exited with the following"), run.stderr)
            XCTAssertTrue(run.stderr.contains(expected), "\(arguments): \(run.stderr)")
        }
    }

    func testMissingSocketNamesItAndHints() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("absent-\(UUID()).sock").path
        let run = try chRemote(["--api-socket", path, "info"])
        XCTAssertEqual(run.status, 1)
        XCTAssertTrue(run.stderr.contains("cannot connect to \(path)"), run.stderr)
        XCTAssertTrue(run.stderr.contains("is cloud-hypervisor running with --api-socket?"), run.stderr)
        let noSocket = try chRemote(["info"])
        XCTAssertEqual(noSocket.status, 1)
        XCTAssertTrue(noSocket.stderr.contains("--api-socket"), noSocket.stderr)
    }
}
