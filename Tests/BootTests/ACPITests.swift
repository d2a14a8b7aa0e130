import Foundation
import Memory
import TestSupport
import XCTest
@testable import Boot

/// The tables as the guest finds them: RSDP → XSDT → tables, FADT → DSDT.
struct GuestACPI {
    var rsdp: [UInt8]
    var tables: [String: (address: UInt64, bytes: [UInt8])] = [:]

    init(memory: GuestMemory, rsdp address: UInt64) throws {
        rsdp = try memory.read(at: address, count: 36)
        func table(at address: UInt64) throws -> [UInt8] {
            let length = try memory.load(UInt32.self, at: address + 4)
            return try memory.read(at: address, count: Int(length))
        }
        let xsdtAddress = LE.read(UInt64.self, rsdp, 24)
        let xsdt = try table(at: xsdtAddress)
        tables["XSDT"] = (xsdtAddress, xsdt)
        for i in 0..<(xsdt.count - 36) / 8 {
            let address = LE.read(UInt64.self, xsdt, 36 + 8 * i)
            let bytes = try table(at: address)
            tables[String(decoding: bytes[0..<4], as: UTF8.self)] = (address, bytes)
        }
        if let fadt = tables["FACP"]?.bytes {
            let dsdtAddress = LE.read(UInt64.self, fadt, 140)
            tables["DSDT"] = (dsdtAddress, try table(at: dsdtAddress))
        }
    }

    subscript(signature: String) -> [UInt8] { tables[signature]?.bytes ?? [] }
}

final class ACPITests: XCTestCase {
    private func build(bootCPUs: Int = 2, maxCPUs: Int? = nil) throws -> (GuestMemory, GuestACPI) {
        let memory = try makeMemory()
        let config = ACPIConfig(bootCPUs: bootCPUs, maxCPUs: maxCPUs)
        let rsdp = try ACPITables.build(into: memory, config: config)
        XCTAssertEqual(rsdp, GuestLayout.rsdpStart)
        return (memory, try GuestACPI(memory: memory, rsdp: rsdp))
    }

    private func sum(_ bytes: some Collection<UInt8>) -> UInt8 { bytes.reduce(0, &+) }

    func testRSDPAndChecksums() throws {
        let (_, acpi) = try build()
        XCTAssertEqual(Array(acpi.rsdp[0..<8]), Array("RSD PTR ".utf8))
        XCTAssertEqual(acpi.rsdp[15], 2)
        XCTAssertEqual(LE.read(UInt32.self, acpi.rsdp, 20), 36)
        XCTAssertEqual(sum(acpi.rsdp[0..<20]), 0, "RSDP checksum")
        XCTAssertEqual(sum(acpi.rsdp), 0, "RSDP extended checksum")
        XCTAssertEqual(Set(acpi.tables.keys), ["XSDT", "FACP", "DSDT", "APIC", "MCFG"])
        for (signature, table) in acpi.tables {
            XCTAssertEqual(sum(table.bytes), 0, "\(signature) checksum")
            XCTAssertEqual(String(decoding: table.bytes[10..<16], as: UTF8.self), "SWIFTC")
            XCTAssertGreaterThan(table.address, GuestLayout.rsdpStart)
            XCTAssertLessThanOrEqual(table.address + UInt64(table.bytes.count), GuestLayout.acpiTablesEnd)
            XCTAssertEqual(table.address % 8, 0, "\(signature) alignment")
        }
    }

    func testFADT() throws {
        let (_, acpi) = try build()
        let f = acpi["FACP"]
        XCTAssertEqual(f.count, 276)
        XCTAssertEqual(f[8], 6, "revision")
        XCTAssertEqual(f[131], 3, "minor version")
        XCTAssertEqual(LE.read(UInt32.self, f, 112), 1 << 20 | 1 << 10 | 1 << 8)
        XCTAssertEqual(Array(f[116..<128]), [1, 8, 0, 1, 0x00, 0x06, 0, 0, 0, 0, 0, 0], "RESET_REG")
        XCTAssertEqual(f[128], 1, "RESET_VALUE")
        XCTAssertEqual(Array(f[208..<220]), [1, 32, 0, 3, 0x08, 0x06, 0, 0, 0, 0, 0, 0], "X_PM_TMR_BLK")
        XCTAssertEqual(Array(f[244..<256]), [1, 8, 0, 1, 0x00, 0x06, 0, 0, 0, 0, 0, 0], "SLEEP_CONTROL_REG")
        XCTAssertEqual(Array(f[256..<268]), [1, 8, 0, 1, 0x01, 0x06, 0, 0, 0, 0, 0, 0], "SLEEP_STATUS_REG")
        XCTAssertEqual(LE.read(UInt64.self, f, 140), acpi.tables["DSDT"]!.address)
        XCTAssertEqual(String(decoding: f[268..<276], as: UTF8.self), "SWIFTCHV")
    }

    func testMADT() throws {
        let (_, acpi) = try build(bootCPUs: 2, maxCPUs: 4)
        let m = acpi["APIC"]
        XCTAssertEqual(LE.read(UInt32.self, m, 36), 0xFEE0_0000)
        XCTAssertEqual(LE.read(UInt32.self, m, 40), 1, "PCAT_COMPAT")
        var o = 44
        var cpus: [(id: UInt8, flags: UInt32)] = []
        var ioapics: [(id: UInt8, address: UInt32, base: UInt32)] = []
        var overrides: [(source: UInt8, gsi: UInt32)] = []
        while o < m.count {
            switch m[o] {
            case 0: cpus.append((m[o + 3], LE.read(UInt32.self, m, o + 4)))
            case 1: ioapics.append((m[o + 2], LE.read(UInt32.self, m, o + 4), LE.read(UInt32.self, m, o + 8)))
            case 2: overrides.append((m[o + 3], LE.read(UInt32.self, m, o + 4)))
            default: XCTFail("unexpected MADT entry type \(m[o])")
            }
            o += Int(m[o + 1])
        }
        XCTAssertEqual(o, m.count)
        XCTAssertEqual(cpus.map(\.id), [0, 1, 2, 3])
        XCTAssertEqual(cpus.map(\.flags), [1, 1, 2, 2], "boot vCPUs enabled, the rest online-capable")
        XCTAssertEqual(ioapics.count, 1)
        XCTAssertEqual(ioapics.first?.id, 0)
        XCTAssertEqual(ioapics.first?.address, 0xFEC0_0000)
        XCTAssertEqual(ioapics.first?.base, 0)
        XCTAssertFalse(overrides.contains { $0.source == 0 }, "no IRQ0 override: KVM's PIT drives GSI 0")
        XCTAssertTrue(overrides.contains { $0.source == 4 && $0.gsi == 4 })
    }

    func testMCFG() throws {
        let (_, acpi) = try build()
        let m = acpi["MCFG"]
        XCTAssertEqual(m.count, 60)
        XCTAssertEqual(LE.read(UInt64.self, m, 44), GuestLayout.pciMMConfigStart)
        XCTAssertEqual(LE.read(UInt16.self, m, 52), 0)
        XCTAssertEqual(m[54], 0)
        XCTAssertEqual(m[55], 255)
    }

    func testDSDTContents() throws {
        let (_, acpi) = try build()
        let d = acpi["DSDT"]
        func contains(_ needle: [UInt8]) -> Bool {
            guard needle.count <= d.count else { return false }
            return (0...(d.count - needle.count)).contains { Array(d[$0..<$0 + needle.count]) == needle }
        }
        XCTAssertTrue(contains(AML.name("_S5_", AML.package([AML.integer(5), AML.integer(0)]))))
        XCTAssertTrue(contains(AML.name("_HID", AML.string("ACPI0013"))))
        XCTAssertTrue(contains(AMLResource.interrupt(gsis: [ACPIConfig.defaultGEDGSI], edge: true, activeLow: false,
                                                     shared: false).bytes))
        XCTAssertTrue(contains(AML.notify("\\_SB_.PWRB", 0x80)))
        XCTAssertTrue(contains(AML.eisaID("PNP0C0C")))
        XCTAssertTrue(contains(AML.eisaID("PNP0501")))
        XCTAssertTrue(contains(AMLResource.dwordMemory(min: 0xC000_0000, max: 0xE7FF_FFFF, cacheable: false).bytes))
        XCTAssertTrue(contains(AMLResource.memory32Fixed(base: 0xE800_0000, length: 0x1000_0000).bytes))
    }

    func testBadConfigs() throws {
        let memory = try makeMemory()
        XCTAssertThrows(try ACPITables.build(into: memory, config: ACPIConfig(bootCPUs: 3, maxCPUs: 2)),
                        ACPIError.badCPUCount(boot: 3, max: 2))
        XCTAssertThrows(try ACPITables.build(into: memory, config: ACPIConfig(bootCPUs: 1, maxCPUs: 300)),
                        ACPIError.tooManyCPUs(max: 300, limit: 255))
        var overlapping = ACPIConfig(bootCPUs: 1)
        overlapping.pci64BitWindow = AddressWindow(base: 0x8000_0000, size: 1 << 30)
        XCTAssertThrowsError(try ACPITables.build(into: memory, config: overlapping))
    }

    func testMaximumCPUsFit() throws {
        let (_, acpi) = try build(bootCPUs: 1, maxCPUs: 255)
        XCTAssertEqual(acpi["APIC"].count, 44 + 255 * 8 + 12 + 10)
    }

    /// iasl must disassemble every table without errors, and compile each disassembly back.
    func testIASLDisassemblesEveryTable() throws {
        guard let iasl = Paths.which("iasl") else {
            if ProcessInfo.processInfo.environment["CI"] != nil {
                XCTFail("iasl is missing (apt-get install acpica-tools)")
                return
            }
            throw XCTSkip("iasl is missing (apt-get install acpica-tools)")
        }
        let memory = try makeMemory()
        var config = ACPIConfig(bootCPUs: 2)
        config.pciINTxGSIs = [16, 17]
        let acpi = try GuestACPI(memory: memory, rsdp: try ACPITables.build(into: memory, config: config))
        let scratch = try Scratch()
        // ACPI_DUMP_DIR=/some/dir keeps the tables and their disassembly for a look.
        let keep = ProcessInfo.processInfo.environment["ACPI_DUMP_DIR"]
        for (signature, table) in acpi.tables.sorted(by: { $0.key < $1.key }) {
            let dat = try scratch.file("\(signature.lowercased()).dat", table.bytes)
            defer {
                if let keep {
                    try? FileManager.default.createDirectory(atPath: keep, withIntermediateDirectories: true)
                    for ext in [".dat", ".dsl"] {
                        let from = String(dat.dropLast(4)) + ext, to = keep + "/" + signature.lowercased() + ext
                        try? FileManager.default.removeItem(atPath: to)
                        try? FileManager.default.copyItem(atPath: from, toPath: to)
                    }
                }
            }
            let disassembly = try HostCommand.run(iasl, ["-d", dat], in: scratch.directory)
            XCTAssertEqual(disassembly.status, 0, "iasl -d \(signature):\n\(disassembly.output)")
            XCTAssertFalse(disassembly.output.range(of: #"\b[1-9][0-9]* Errors?\b|\bError\b"#,
                                                    options: .regularExpression) != nil,
                           "iasl -d \(signature) reported errors:\n\(disassembly.output)")
            let dsl = String(dat.dropLast(4)) + ".dsl"
            let source = (try? String(contentsOfFile: dsl, encoding: .utf8)) ?? ""
            XCTAssertFalse(source.isEmpty, "no disassembly of \(signature)")
            XCTAssertFalse(source.contains("**** Unknown") || source.contains("Invalid"),
                           "\(signature) disassembly flags problems:\n\(source)")
            let compile = try HostCommand.run(iasl, ["-p", scratch.directory.appendingPathComponent("re-\(signature)").path, dsl],
                                  in: scratch.directory)
            XCTAssertEqual(compile.status, 0, "iasl could not recompile \(signature):\n\(compile.output)")
            XCTAssertTrue(compile.output.contains(" 0 Errors"), "recompiling \(signature):\n\(compile.output)")
            // A data table compiled back from its disassembly is byte for byte ours, but for the checksum
            // and the creator fields iasl puts its own name in. (The DSDT differs: iasl shortens paths.)
            if signature != "DSDT" {
                let again = try [UInt8](Data(contentsOf: scratch.directory.appendingPathComponent("re-\(signature).aml")))
                func masked(_ b: [UInt8]) -> [UInt8] {
                    var b = b
                    guard b.count >= 36 else { return b }
                    b[9] = 0
                    for i in 28..<36 { b[i] = 0 }
                    return b
                }
                XCTAssertEqual(masked(again), masked(table.bytes), "\(signature) does not survive iasl's round trip")
            }
        }
    }
}
