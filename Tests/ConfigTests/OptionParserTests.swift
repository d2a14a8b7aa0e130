import XCTest
@testable import Config

final class OptionParserTests: XCTestCase {
    func testSplitsOnCommasOutsideBrackets() throws {
        let p = try OptionParser(flag: "--x", input: "a=1,b=[1,2-4],c=on", known: ["a", "b", "c"])
        XCTAssertEqual(p.string("a"), "1")
        XCTAssertEqual(try p.integerList("b"), [1, 2, 3, 4])
        XCTAssertEqual(try p.bool("c"), true)
    }

    func testUnknownOptionNamesFlagOptionAndValidOnes() {
        XCTAssertThrowsError(try MemoryConfig.parse("sise=1G")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("--memory"), text)
            XCTAssertTrue(text.contains("'sise'"), text)
            XCTAssertTrue(text.contains("size"), text)
        }
    }

    func testSizes() throws {
        XCTAssertEqual(OptionParser.parseSize("512M"), 512 << 20)
        XCTAssertEqual(OptionParser.parseSize("2G"), 2 << 30)
        XCTAssertEqual(OptionParser.parseSize("4096"), 4096)
        XCTAssertEqual(OptionParser.parseSize("1k"), 1024)
        XCTAssertNil(OptionParser.parseSize("12X"))
        XCTAssertNil(OptionParser.parseSize("M"))
        XCTAssertNil(OptionParser.parseSize("99999999999999T"))
        XCTAssertThrowsError(try MemoryConfig.parse("size=12X")) { error in
            XCTAssertTrue("\(error)".contains("'12X'"))
        }
    }

    func testBooleans() throws {
        let m = try MemoryConfig.parse("size=1G,shared=on,hugepages=false,prefault=true")
        XCTAssertEqual(m.size, 1 << 30)
        XCTAssertTrue(m.shared)
        XCTAssertFalse(m.hugepages)
        XCTAssertTrue(m.prefault)
        XCTAssertThrowsError(try MemoryConfig.parse("shared=maybe"))
    }

    func testCpus() throws {
        let c = try CpusConfig.parse("boot=2,max=4,topology=1:2:1:2")
        XCTAssertEqual(c.boot_vcpus, 2)
        XCTAssertEqual(c.max_vcpus, 4)
        XCTAssertEqual(c.topology?.cores_per_die, 2)
        XCTAssertEqual(try CpusConfig.parse("boot=3").max_vcpus, 3)
        XCTAssertThrowsError(try CpusConfig.parse("boot=two"))
        XCTAssertThrowsError(try CpusConfig.parse("topology=1:2"))
    }

    func testConsoleModes() throws {
        XCTAssertEqual(try ConsoleConfig.parse("tty", flag: "--serial").mode, .Tty)
        XCTAssertEqual(try ConsoleConfig.parse("off", flag: "--serial").mode, .Off)
        let f = try ConsoleConfig.parse("file=/tmp/x", flag: "--serial")
        XCTAssertEqual(f.mode, .File)
        XCTAssertEqual(f.file, "/tmp/x")
        XCTAssertEqual(try ConsoleConfig.parse("socket=/tmp/s", flag: "--serial").socket, "/tmp/s")
        XCTAssertThrowsError(try ConsoleConfig.parse("loud", flag: "--serial")) { error in
            XCTAssertTrue("\(error)".contains("--serial"))
        }
        XCTAssertThrowsError(try ConsoleConfig.parse("tty,bogus=1", flag: "--console"))
    }

    func testUnbalancedBrackets() {
        XCTAssertThrowsError(try OptionParser(flag: "--x", input: "a=[1,2", known: ["a"]))
        XCTAssertThrowsError(try OptionParser(flag: "--x", input: "a=1]", known: ["a"]))
    }
}

final class VmConfigTests: XCTestCase {
    func testDecodesCHBodyWithDefaultsAndIgnoresUnknownFields() throws {
        let json = #"{"cpus":{"boot_vcpus":2,"max_vcpus":2},"memory":{"size":268435456},"payload":{"kernel":"/k","cmdline":"console=ttyS0"},"something_new":{"x":1}}"#
        let config = try JSONDecoder().decode(VmConfig.self, from: Data(json.utf8))
        XCTAssertEqual(config.cpus.boot_vcpus, 2)
        XCTAssertEqual(config.memory.size, 256 << 20)
        XCTAssertFalse(config.memory.shared)
        XCTAssertTrue(config.memory.thp)
        XCTAssertEqual(config.serial.mode, .Null)
        XCTAssertEqual(config.console.mode, .Tty)
        XCTAssertEqual(config.rng.src, "/dev/urandom")
        XCTAssertEqual(config.cpus.max_phys_bits, 46)
        XCTAssertNoThrow(try config.validate())
    }

    func testCpusRequiresBothCounts() {
        let json = #"{"cpus":{"boot_vcpus":2},"payload":{"kernel":"/k"}}"#
        XCTAssertThrowsError(try JSONDecoder().decode(VmConfig.self, from: Data(json.utf8)))
    }

    func testValidation() {
        var c = VmConfig(payload: PayloadConfig(kernel: "/k"))
        XCTAssertNoThrow(try c.validate())
        c.cpus = CpusConfig(boot: 3, max: 2)
        XCTAssertThrowsError(try c.validate()) { XCTAssertEqual($0 as? ValidationError, .bootAboveMax(boot: 3, max: 2)) }
        c.cpus = CpusConfig(boot: 2)
        XCTAssertThrowsError(try c.validate(maxVCPUsSupported: 1))
        c.cpus = CpusConfig(boot: 1)
        c.memory.size = 1 << 20
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("too small")) }
        c.memory.size = (64 << 20) + 1
        XCTAssertThrowsError(try c.validate())
        c.memory.size = 64 << 20
        c.payload = nil
        XCTAssertThrowsError(try c.validate()) { XCTAssertEqual($0 as? ValidationError, .noPayload) }
    }

    func testRoundTrip() throws {
        let c = VmConfig(cpus: CpusConfig(boot: 2), memory: MemoryConfig(size: 1 << 30, shared: true),
                         payload: PayloadConfig(kernel: "/k", cmdline: "x"))
        let data = try JSONEncoder().encode(c)
        XCTAssertEqual(try JSONDecoder().decode(VmConfig.self, from: data), c)
    }
}

final class NullHandlingTests: XCTestCase {
    /// serde's `#[serde(default)]` takes the default for a missing key only: `null` is a type error.
    func testExplicitNullForNonOptionalFieldIsRejected() {
        let body = #"{"payload":{"kernel":"/k"},"landlock_enable":null}"#
        XCTAssertThrowsError(try JSONDecoder().decode(VmConfig.self, from: Data(body.utf8)))
        let ok = #"{"payload":{"kernel":"/k"}}"#
        XCTAssertNoThrow(try JSONDecoder().decode(VmConfig.self, from: Data(ok.utf8)))
        let optionalNull = #"{"payload":{"kernel":"/k","initramfs":null}}"#
        XCTAssertNoThrow(try JSONDecoder().decode(VmConfig.self, from: Data(optionalNull.utf8)))
    }
}
