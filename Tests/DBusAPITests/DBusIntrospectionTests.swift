import DBusAPI
import Foundation
import FoundationXML
import TestSupport
import VMM
import XCTest

/// What D-Bus tools and generated proxies see: CH's method names and signatures, the Event signal, the
/// standard interfaces.
final class DBusIntrospectionTests: XCTestCase {
    private var bus: PrivateBus!
    private var service: DBusService?

    /// CH's org.cloudhypervisor.DBusApi1 (vmm/src/api/dbus/mod.rs) without VmAddGenericVhostUser (no such
    /// REST endpoint here), plus VmNmi and VmResizeDisk (REST endpoints CH does not offer over D-Bus) and
    /// VmMigrationProgress and VmCancelMigration (beyond CH):
    /// name → (in signature, out signature).
    static let methods: [String: (in: String, out: String)] = {
        var methods: [String: (in: String, out: String)] = [:]
        for name in ["VmmShutdown", "VmBoot", "VmCancelMigration", "VmDelete", "VmNmi", "VmPause", "VmPowerButton", "VmReboot",
                     "VmResume", "VmShutdown"] { methods[name] = ("", "") }
        for name in ["VmmPing", "VmCounters", "VmInfo", "VmMigrationProgress"] { methods[name] = ("", "s") }
        for name in ["VmAddDevice", "VmAddDisk", "VmAddFs", "VmAddNet", "VmAddPmem", "VmAddUserDevice",
                     "VmAddVdpa", "VmAddVsock"] { methods[name] = ("s", "s") }
        for name in ["VmCoredump", "VmCreate", "VmReceiveMigration", "VmRemoveDevice", "VmResize",
                     "VmResizeDisk", "VmResizeZone", "VmRestore", "VmSendMigration", "VmSnapshot"] { methods[name] = ("s", "") }
        return methods
    }()

    override func setUpWithError() throws {
        bus = try PrivateBus()
        service = try DBusService.start(DBusOptions(serviceName: BusClient.service, bus: .address(bus.address)),
                                        handler: StubVMM(), events: EventMonitor())
    }

    override func tearDown() {
        service?.stop()
        bus?.stop()
    }

    func testGDBusSeesEveryMethodWithCHsSignaturesAndTheEventSignal() throws {
        let reply = try GDBusClient(bus: bus).introspectXML()
        XCTAssertEqual(reply.status, 0, reply.stderr)
        let node = try IntrospectedNode(xml: reply.stdout)
        let api = try XCTUnwrap(node.interfaces[BusClient.interface])
        XCTAssertEqual(Set(api.methods.keys), Set(Self.methods.keys))
        for (name, expected) in Self.methods {
            XCTAssertEqual(api.methods[name]?.in, expected.in, name)
            XCTAssertEqual(api.methods[name]?.out, expected.out, name)
        }
        XCTAssertEqual(api.signals, ["Event": "s"])
        XCTAssertEqual(node.interfaces["org.freedesktop.DBus.Introspectable"]?.methods["Introspect"]?.out, "s")
        XCTAssertEqual(node.interfaces["org.freedesktop.DBus.Peer"]?.methods.keys.sorted(), ["GetMachineId", "Ping"])
    }

    func testBusctlIntrospectListsTheAPI() throws {
        let table = try BusClient(bus: bus).introspect()
        XCTAssertEqual(table.status, 0, table.stderr)
        let rows = table.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        for (name, signature) in Self.methods {
            let row = rows.first { $0.first == ".\(name)" }
            XCTAssertEqual(row?[1], "method", name)
            XCTAssertEqual(row?[2], signature.in.isEmpty ? "-" : signature.in, name)
            XCTAssertEqual(row?[3], signature.out.isEmpty ? "-" : signature.out, name)
        }
        XCTAssertTrue(rows.contains { $0.prefix(3) == [".Event", "signal", "s"] }, table.stdout)
    }

    func testPeerAndTheObjectTreeAnswer() throws {
        let client = try BusClient(bus: bus)
        XCTAssertTrue(try client.call("Ping", interface: "org.freedesktop.DBus.Peer").succeeded)
        let id = try client.call("GetMachineId", interface: "org.freedesktop.DBus.Peer")
        XCTAssertEqual(id.string?.count, 32, id.result.stderr)
        let tree = try RunningCommand(client.busctl, ["--address=\(bus.address)", "tree", BusClient.service]).finish()
        XCTAssertTrue(tree.stdout.contains(BusClient.path), tree.stdout + tree.stderr)
    }
}

/// The interfaces of one introspected node: methods with their in/out signatures, signals with theirs.
private struct IntrospectedNode {
    struct Interface {
        var methods: [String: (in: String, out: String)] = [:]
        var signals: [String: String] = [:]
    }

    var interfaces: [String: Interface] = [:]

    init(xml: String) throws {
        let reader = Reader()
        let parser = XMLParser(data: Data(xml.utf8))
        parser.delegate = reader
        guard parser.parse() else { throw parser.parserError ?? TestFailure("invalid XML", output: xml) }
        interfaces = reader.interfaces
    }

    private final class Reader: NSObject, XMLParserDelegate {
        var interfaces: [String: Interface] = [:]
        private var interface: String?
        private var method: String?
        private var signal: String?

        func parser(_ parser: XMLParser, didStartElement element: String, namespaceURI: String?,
                    qualifiedName: String?, attributes: [String: String] = [:]) {
            let name = attributes["name"] ?? ""
            switch element {
            case "interface":
                interface = name
                interfaces[name] = Interface()
            case "method":
                method = name
                interfaces[interface!]!.methods[name] = ("", "")
            case "signal":
                signal = name
                interfaces[interface!]!.signals[name] = ""
            case "arg":
                let type = attributes["type"] ?? "?"
                if let method {
                    if attributes["direction"] == "out" { interfaces[interface!]!.methods[method]!.out += type }
                    else { interfaces[interface!]!.methods[method]!.in += type }
                } else if let signal {
                    interfaces[interface!]!.signals[signal]! += type
                }
            default:
                break
            }
        }

        func parser(_ parser: XMLParser, didEndElement element: String, namespaceURI: String?, qualifiedName: String?) {
            switch element {
            case "method": method = nil
            case "signal": signal = nil
            case "interface": interface = nil
            default: break
            }
        }
    }
}
