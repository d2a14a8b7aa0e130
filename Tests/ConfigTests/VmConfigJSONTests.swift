import Foundation
import TestSupport
import XCTest
@testable import Config

/// VmConfig as CH v54's serde reads and writes it (vmm/src/vm_config.rs: `skip_serializing_none` on VmConfig
/// and most nested structs, `PciDeviceCommonConfig` flattened with `iommu` written only when true).
final class VmConfigJSONTests: XCTestCase {
    let minimal = #"{"cpus":{"boot_vcpus":1,"max_vcpus":1},"memory":{"size":1073741824},"payload":{"kernel":"/k"}}"#

    func testMinimalBodyEncodesWithCHDefaultsAndNoNulls() throws {
        assertJSON(try decodeJSON(VmConfig.self, minimal), equals: """
            {"cpus":{"boot_vcpus":1,"max_vcpus":1,"kvm_hyperv":false,"max_phys_bits":46,"features":{"amx":false},
                     "nested":true,"core_scheduling":"Vm","profile":"Host"},
             "memory":{"size":1073741824,"mergeable":false,"hotplug_method":"Acpi","shared":false,"hugepages":false,
                       "prefault":false,"reserve":false,"thp":true},
             "payload":{"kernel":"/k"},
             "rng":{"src":"/dev/urandom","pci_segment":0},
             "serial":{"mode":"Null"},
             "console":{"mode":"Tty","pci_segment":0},
             "debug_console":{"mode":"Off","iobase":233},
             "pvpanic":false,"iommu":false,"watchdog":false,"landlock_enable":false}
            """)
    }

    func testEmptyBodyTakesDefaults() throws {
        let c = try decodeJSON(VmConfig.self, "{}")
        XCTAssertEqual(c, VmConfig())
        XCTAssertEqual(c.memory.size, 512 << 20)
        XCTAssertEqual(c.cpus.boot_vcpus, 1)
        XCTAssertNil(c.payload)
    }

    func testUnknownFieldsAreIgnoredEverywhere() throws {
        let json = #"{"future":1,"cpus":{"boot_vcpus":2,"max_vcpus":2,"x":[]},"memory":{"size":1073741824,"y":{}},"#
            + #""disks":[{"path":"/d","z":true}],"console":{"mode":"Off","w":1}}"#
        let c = try decodeJSON(VmConfig.self, json)
        XCTAssertEqual(c.cpus.max_vcpus, 2)
        XCTAssertEqual(c.disks?.first?.path, "/d")
        XCTAssertEqual(c.console.mode, .Off)
    }

    func testRequiredFieldsAreNamed() {
        assertDecodingFails(VmConfig.self, #"{"cpus":{"boot_vcpus":2}}"#, naming: "max_vcpus")
        assertDecodingFails(VmConfig.self, #"{"cpus":{"max_vcpus":2}}"#, naming: "boot_vcpus")
        assertDecodingFails(VmConfig.self, #"{"memory":{"shared":true}}"#, naming: "size")
        assertDecodingFails(VmConfig.self, #"{"serial":{}}"#, naming: "mode")
        assertDecodingFails(VmConfig.self, #"{"rng":{}}"#, naming: "src")
        assertDecodingFails(VmConfig.self, #"{"cpus":{"boot_vcpus":1,"max_vcpus":1,"topology":{"packages":1}}}"#,
                            naming: "threads_per_core")
        assertDecodingFails(VmConfig.self, #"{"memory":{"size":1,"zones":[{"size":1}]}}"#, naming: "id")
    }

    func testEnumsArePascalCaseAndUnknownValuesRejected() throws {
        let c = try decodeJSON(VmConfig.self, #"{"memory":{"size":1073741824,"hotplug_method":"VirtioMem"},"#
                           + #""console":{"mode":"Pty"},"serial":{"mode":"Socket","socket":"/s"}}"#)
        XCTAssertEqual(c.memory.hotplug_method, .VirtioMem)
        XCTAssertEqual(c.console.mode, .Pty)
        XCTAssertEqual(c.serial.socket, "/s")
        assertDecodingFails(VmConfig.self, #"{"console":{"mode":"tty"}}"#, naming: "console.mode")
        assertDecodingFails(VmConfig.self, #"{"memory":{"size":1,"hotplug_method":"acpi"}}"#, naming: "hotplug_method")
    }

    func testSerialIsWrittenWithoutPciFieldsButConsoleWithThem() throws {
        var c = VmConfig()
        c.serial = ConsoleConfig(mode: .File, file: "/tmp/serial")
        c.console.iommu = true
        c.console.id = "con0"
        let object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(c)) as? [String: Any]
        XCTAssertEqual(object?["serial"] as? NSDictionary, ["mode": "File", "file": "/tmp/serial"] as NSDictionary)
        XCTAssertEqual(object?["console"] as? NSDictionary,
                       ["mode": "Tty", "id": "con0", "iommu": true, "pci_segment": 0] as NSDictionary)
    }

    func testInfoOmitsUnsetFieldsAndRoundTrips() throws {
        var config = try decodeJSON(VmConfig.self, minimal)
        config.disks = [DiskConfig(path: "/d", id: "_disk0")]
        let info = VmInfo(config: config, state: .Running, memory_actual_size: 1 << 30,
                          device_tree: ["__rng": DeviceNode(id: "__rng", parent: "__pci", pci_bdf: "0000:00:03.0")])
        let text = String(decoding: try JSONEncoder().encode(info), as: UTF8.self)
        XCTAssertFalse(text.contains("null"), text)
        XCTAssertTrue(text.contains(#""state":"Running""#), text)
        XCTAssertEqual(try decodeJSON(VmInfo.self, text), info)
    }

    func testFullConfigRoundTrips() throws {
        let c = try VmConfig.everything()
        let data = try JSONEncoder().encode(c)
        XCTAssertEqual(try JSONDecoder().decode(VmConfig.self, from: data), c)
    }

    func testDecodingErrorSummaryNamesThePath() {
        XCTAssertThrowsError(try decodeJSON(VmConfig.self, #"{"net":[{"mac":"zz"}]}"#)) { error in
            let summary = (error as? DecodingError)?.summary ?? ""
            XCTAssertTrue(summary.contains("net[0].mac"), summary)
            XCTAssertTrue(summary.contains("MAC address is invalid"), summary)
        }
        XCTAssertThrowsError(try decodeJSON(VmConfig.self, "{")) { error in
            XCTAssertTrue(((error as? DecodingError)?.summary ?? "").hasPrefix("invalid JSON"))
        }
    }
}
