import Config
import DBusAPI
import Foundation
import TestSupport
import Synchronization
import VMM
import XCTest

/// The D-Bus frontend in this process against a stand-in VMM, driven with busctl and gdbus on a private
/// bus: every method's command, the replies, the errors, overlapping calls, signals and stopping.
final class DBusServiceTests: XCTestCase {
    private var bus: PrivateBus!
    private var client: BusClient!
    private var service: DBusService?
    private let events = EventMonitor()

    override func setUpWithError() throws {
        bus = try PrivateBus()
        client = try BusClient(bus: bus)
    }

    override func tearDown() {
        service?.stop()
        bus?.stop()
    }

    @discardableResult
    private func serve(_ vmm: StubVMM = StubVMM()) throws -> StubVMM {
        service = try DBusService.start(DBusOptions(serviceName: BusClient.service, bus: .address(bus.address)),
                                        handler: vmm, events: events)
        return vmm
    }

    /// Each method with a valid argument, and the REST endpoint whose command it must send.
    static let calls: [(method: String, argument: String?, endpoint: String)] = [
        ("VmmPing", nil, "vmm.ping"),
        ("VmmShutdown", nil, "vmm.shutdown"),
        ("VmAddDevice", #"{"path":"/sys/bus/pci/devices/0000:01:00.0"}"#, "vm.add-device"),
        ("VmAddDisk", #"{"path":"/tmp/disk.img"}"#, "vm.add-disk"),
        ("VmAddFs", #"{"tag":"fs0","socket":"/tmp/fs.sock"}"#, "vm.add-fs"),
        ("VmAddNet", #"{"tap":"tap0"}"#, "vm.add-net"),
        ("VmAddPmem", #"{"file":"/tmp/pmem"}"#, "vm.add-pmem"),
        ("VmAddUserDevice", #"{"socket":"/tmp/user.sock"}"#, "vm.add-user-device"),
        ("VmAddVdpa", #"{"path":"/dev/vhost-vdpa-0"}"#, "vm.add-vdpa"),
        ("VmAddVsock", #"{"cid":3,"socket":"/tmp/vsock"}"#, "vm.add-vsock"),
        ("VmBoot", nil, "vm.boot"),
        ("VmCoredump", #"{"destination_url":"file:///tmp/core"}"#, "vm.coredump"),
        ("VmCounters", nil, "vm.counters"),
        ("VmCreate", #"{"memory":{"size":268435456}}"#, "vm.create"),
        ("VmDelete", nil, "vm.delete"),
        ("VmInfo", nil, "vm.info"),
        ("VmNmi", nil, "vm.nmi"),
        ("VmPause", nil, "vm.pause"),
        ("VmPowerButton", nil, "vm.power-button"),
        ("VmReboot", nil, "vm.reboot"),
        ("VmReceiveMigration", #"{"receiver_url":"unix:/tmp/mig.sock"}"#, "vm.receive-migration"),
        ("VmRemoveDevice", #"{"id":"_disk0"}"#, "vm.remove-device"),
        ("VmResize", #"{"desired_vcpus":2}"#, "vm.resize"),
        ("VmResizeDisk", #"{"id":"_disk0","desired_size":1048576}"#, "vm.resize-disk"),
        ("VmResizeZone", #"{"id":"mem0","desired_ram":1073741824}"#, "vm.resize-zone"),
        ("VmRestore", #"{"source_url":"file:///tmp/snap"}"#, "vm.restore"),
        ("VmResume", nil, "vm.resume"),
        ("VmSendMigration", #"{"destination_url":"unix:/tmp/mig.sock"}"#, "vm.send-migration"),
        ("VmShutdown", nil, "vm.shutdown"),
        ("VmSnapshot", #"{"destination_url":"file:///tmp/snap"}"#, "vm.snapshot"),
    ]

    func testEveryMethodSendsItsRESTEndpointsCommand() throws {
        let vmm = try serve()
        for call in Self.calls {
            let reply = try client.call(call.method, call.argument)
            XCTAssertTrue(reply.succeeded, "\(call.method): \(reply.result.stderr)")
            XCTAssertEqual(vmm.commands.last, call.endpoint, call.method)
        }
        XCTAssertEqual(vmm.commands, Self.calls.map(\.endpoint))
    }

    func testRepliesAreTheRESTBodies() throws {
        let device = PciDeviceInfo(id: "_disk0", bdf: "0000:00:05.0")
        let booted = Atomic(false)
        try serve(StubVMM { command in
            switch command {
            case .ping: .success(.ping(VmmPingResponse(build_version: "v1", version: "1.0", pid: 42, features: ["kvm"])))
            case .counters: .success(.counters(["__serial": ["out_bytes": 7]]))
            case .addDevice: .success(.deviceAdded(booted.load(ordering: .relaxed) ? device : nil))
            default: .success(.none)
            }
        })
        let ping = try XCTUnwrap(try client.call("VmmPing").json as? [String: Any])
        XCTAssertEqual(ping["version"] as? String, "1.0")
        XCTAssertEqual(ping["pid"] as? Int, 42)
        XCTAssertEqual(ping["features"] as? [String], ["kvm"])
        XCTAssertEqual(try client.call("VmCounters").json as? [String: [String: Int]], ["__serial": ["out_bytes": 7]])

        // Before boot REST answers 204: the string is empty, as CH's Optional<String>.
        let added = try client.call("VmAddDisk", #"{"path":"/tmp/disk.img"}"#)
        XCTAssertTrue(added.succeeded)
        XCTAssertEqual(added.string, "")
        booted.store(true, ordering: .relaxed)
        let hotplugged = try client.call("VmAddDisk", #"{"path":"/tmp/disk.img"}"#)
        XCTAssertEqual(hotplugged.json as? [String: String], ["id": "_disk0", "bdf": "0000:00:05.0"])

        // Methods without a return value reply with nothing.
        let boot = try client.call("VmBoot")
        XCTAssertTrue(boot.succeeded)
        XCTAssertEqual(boot.result.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "")
    }

    func testVMMErrorsAreFailedErrorsCarryingTheRESTChain() throws {
        try serve(StubVMM { command in
            if case .pause = command {
                return .failure(VmmError(.internalError, ["The VM could not be paused", "Invalid transition: VM is Paused, cannot become Paused"]))
            }
            return .failure(.vmNotCreated("The VM information could not be retrieved"))
        })
        let pause = try client.call("VmPause")
        XCTAssertFalse(pause.succeeded)
        XCTAssertEqual(pause.errorChain, ["Error from API", "The VM could not be paused",
                                          "Invalid transition: VM is Paused, cannot become Paused"])
        XCTAssertEqual(try client.call("VmInfo").errorChain,
                       ["Error from API", "The VM information could not be retrieved", "VM is not created"])
        let gdbus = try GDBusClient(bus: bus).call("VmPause")
        XCTAssertNotEqual(gdbus.status, 0)
        XCTAssertTrue(gdbus.stderr.contains("org.freedesktop.DBus.Error.Failed"), gdbus.stderr)
    }

    func testBadJSONIsAFailedErrorNamingTheProblem() throws {
        let vmm = try serve()
        let syntax = try client.call("VmCreate", #"{"cpus":"#)
        XCTAssertEqual(syntax.errorChain?.first, "Failed to deserialize JSON", syntax.result.stderr)
        XCTAssertEqual(syntax.errorChain?.count, 2)
        let field = try client.call("VmCreate", #"{"cpus":{"boot_vcpus":1}}"#)
        XCTAssertEqual(field.errorChain?.first, "Failed to deserialize JSON")
        XCTAssertTrue(field.errorChain?.last?.contains("max_vcpus") == true, "\(field.result.stderr)")
        let missing = try client.call("VmSnapshot", "{}")
        XCTAssertTrue(missing.errorChain?.last?.contains("destination_url") == true, "\(missing.result.stderr)")
        XCTAssertTrue(try client.call("VmRestore", "").errorChain?.first == "Failed to deserialize JSON")
        XCTAssertEqual(vmm.commands, [], "nothing reaches the VMM")
        XCTAssertTrue(try client.call("VmmPing").succeeded)
    }

    func testWrongArgumentsAndUnknownMethodsAreStandardErrors() throws {
        let vmm = try serve()
        let gdbus = try GDBusClient(bus: bus)
        let noArgument = try gdbus.call("VmCreate")
        XCTAssertTrue(noArgument.stderr.contains("org.freedesktop.DBus.Error.InvalidArgs"), noArgument.stderr)
        XCTAssertTrue(noArgument.stderr.contains("VmCreate takes one JSON string"), noArgument.stderr)
        let extra = try gdbus.call("VmBoot", ["{}"])
        XCTAssertTrue(extra.stderr.contains("org.freedesktop.DBus.Error.InvalidArgs"), extra.stderr)
        XCTAssertTrue(extra.stderr.contains("VmBoot takes no arguments"), extra.stderr)
        let unknown = try gdbus.call("VmFrobnicate")
        XCTAssertTrue(unknown.stderr.contains("org.freedesktop.DBus.Error.UnknownMethod"), unknown.stderr)
        let otherInterface = try client.call("VmmPing", interface: "org.example.Nope")
        XCTAssertFalse(otherInterface.succeeded)
        XCTAssertEqual(vmm.commands, [])
    }

    func testALongCommandLeavesTheBusResponsive() throws {
        let vmm = try serve()
        vmm.hold("vm.receive-migration")
        let migration = try client.start("VmReceiveMigration", #"{"receiver_url":"unix:/tmp/mig.sock"}"#)
        defer { vmm.release() }
        for _ in 0..<3 {
            let started = Date()
            XCTAssertTrue(try client.call("VmmPing").succeeded)
            XCTAssertTrue(try client.call("VmInfo").succeeded)
            XCTAssertLessThan(Date().timeIntervalSince(started), 2)
        }
        XCTAssertTrue(migration.isRunning, "the held call is still waiting for the VMM")
        vmm.release()
        let done = migration.finish()
        XCTAssertEqual(done.status, 0, done.stderr)
        XCTAssertEqual(vmm.commands.filter { $0 == "vm.receive-migration" }.count, 1)
    }

    func testEveryEventBecomesAnEventSignalWithCHsRecord() throws {
        let recorder = try SignalRecorder(bus: bus, busctl: client.busctl)
        defer { recorder.stop() }
        let sent = Mutex<[String]>([])
        events.observe { event in sent.withLock { $0.append(event.json) } }
        try serve()
        events.emit("vm", "paused")
        events.emit("virtio-device", "activated", ["id": "_disk0"])
        try recorder.waitFor("activated")
        let received = recorder.events
        XCTAssertEqual(received.count, 2)
        for (record, json) in zip(received, sent.withLock { $0 }) {
            let expected = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? NSDictionary)
            XCTAssertEqual(record as NSDictionary, expected)
        }
        XCTAssertEqual(received.first?["source"] as? String, "vm")
        XCTAssertNotNil((received.first?["timestamp"] as? [String: Any])?["nanos"])
        XCTAssertEqual((received.last?["properties"] as? [String: String])?["id"], "_disk0")
    }

    func testStopSendsTheRepliesStillOwed() throws {
        let vmm = try serve()
        vmm.hold("vmm.shutdown")
        let shutdown = try client.start("VmmShutdown")
        while !vmm.commands.contains("vmm.shutdown") { usleep(10_000) }
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.3) { vmm.release() }
        let started = Date()
        service?.stop()
        XCTAssertLessThan(Date().timeIntervalSince(started), 2)
        let reply = shutdown.finish()
        XCTAssertEqual(reply.status, 0, "the reply was sent before the connection closed: \(reply.stderr)")
    }

    func testStopGivesUpOnACallThatNeverEnds() throws {
        let vmm = try serve()
        vmm.hold("vm.receive-migration")
        let migration = try client.start("VmReceiveMigration", #"{"receiver_url":"unix:/tmp/mig.sock"}"#)
        while !vmm.commands.contains("vm.receive-migration") { usleep(10_000) }
        let started = Date()
        service?.stop()
        XCTAssertLessThan(Date().timeIntervalSince(started), 4)
        XCTAssertNotEqual(migration.finish().status, 0, "the caller learns that no reply will come")
        vmm.release()  // the late answer finds the connection closed
        events.emit("vm", "resumed")  // and so does a late event
        XCTAssertFalse(try client.call("VmmPing").succeeded, "the name is released")
    }

    /// libdbus would `_exit` the process here by default; this test process living on is the check.
    func testTheBusGoingAwayStopsOnlyTheDBusAPI() throws {
        try serve()
        XCTAssertTrue(try client.call("VmmPing").succeeded)
        bus.stop()
        usleep(200_000)
        events.emit("vm", "paused")  // no connection: dropped
        let started = Date()
        service?.stop()
        XCTAssertLessThan(Date().timeIntervalSince(started), 1)
    }

    func testATakenNameIsRefusedAndTheOwnerKeepsIt() throws {
        try serve()
        XCTAssertThrowsError(try DBusService.start(DBusOptions(serviceName: BusClient.service, bus: .address(bus.address)),
                                                   handler: StubVMM(), events: EventMonitor())) { error in
            guard case .nameTaken? = error as? DBusServiceError else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("already owned"), "\(error)")
        }
        XCTAssertTrue(try client.call("VmmPing").succeeded)
    }

    func testNoBusIsAClearError() throws {
        XCTAssertThrowsError(try DBusService.start(DBusOptions(serviceName: BusClient.service, bus: .address("unix:path=/nonexistent/bus")),
                                                   handler: StubVMM(), events: EventMonitor())) { error in
            guard case .cannotConnect? = error as? DBusServiceError else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("/nonexistent/bus"), "\(error)")
        }
    }
}
