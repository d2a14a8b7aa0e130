import XCTest
@testable import Config

/// The device checks CH makes at boot (vmm/src/config.rs VmConfig::validate).
final class ValidationTests: XCTestCase {
    private func bootable() -> VmConfig { VmConfig(payload: PayloadConfig(kernel: "/k")) }

    private func assertInvalid(_ config: VmConfig, _ expected: ValidationError, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try config.validate(), file: file, line: line) {
            XCTAssertEqual($0 as? ValidationError, expected, file: file, line: line)
        }
    }

    func testDuplicateIdsAreAConflict() {
        var c = bootable()
        c.disks = [DiskConfig(path: "/a", id: "x")]
        c.net = [NetConfig(id: "x")]
        assertInvalid(c, .identifierNotUnique("x"))
        XCTAssertTrue(ValidationError.identifierNotUnique("x").isConflict)
        c.net = nil
        c.memory.zones = [MemoryZoneConfig(id: "x", size: 1 << 20)]
        assertInvalid(c, .identifierNotUnique("x"))
    }

    func testDuplicateDevicePathsAreAConflict() {
        var c = bootable()
        c.devices = [DeviceConfig(path: "/sys/d"), DeviceConfig(path: "/sys/d")]
        assertInvalid(c, .duplicateDevicePath("/sys/d"))
        XCTAssertTrue(ValidationError.duplicateDevicePath("/sys/d").isConflict)
    }

    func testReservedIdsAreInvalidNotConflicting() {
        var c = bootable()
        c.vsock = VsockConfig(cid: 3, socket: "/v", id: "__vsock")
        assertInvalid(c, .invalidIdentifier("__vsock"))
        XCTAssertFalse(ValidationError.invalidIdentifier("__vsock").isConflict)
    }

    func testDeviceChecks() {
        var c = bootable()
        c.fs = [FsConfig(tag: "t", socket: "/s")]
        assertInvalid(c, .vhostUserRequiresSharedMemory(device: "fs"))
        c.memory.shared = true
        XCTAssertNoThrow(try c.validate())

        c = bootable()
        c.disks = [DiskConfig(path: "/d")]
        c.disks?[0].num_queues = 2
        assertInvalid(c, .tooManyQueues(device: "disk", queues: 2, bootVCPUs: 1))
        c.disks?[0].num_queues = 1
        c.disks?[0].queue_size = 100
        assertInvalid(c, .invalidQueueSize(device: "disk", size: 100))
        c.disks?[0].queue_size = 128
        c.disks?[0].rate_limit_group = "g"
        assertInvalid(c, .unknownRateLimitGroup("g"))

        c = bootable()
        c.net = [NetConfig()]
        c.net?[0].ip = "10.0.0.1"
        assertInvalid(c, .ipAndMaskMustBePaired)
        c.net?[0].mask = "255.0.0.0"
        c.net?[0].mtu = 576
        assertInvalid(c, .mtuTooSmall(576))
        c.net?[0].mtu = nil
        c.net?[0].offload_csum = false
        assertInvalid(c, .checksumOffloadRequired)

        c = bootable()
        c.vsock = VsockConfig(cid: 2, socket: "/v")
        assertInvalid(c, .vsockSpecialCID(2))

        c = bootable()
        c.balloon = BalloonConfig(size: c.memory.size)
        assertInvalid(c, .balloonLargerThanRAM(balloon: c.memory.size, ram: c.memory.size))

        c = bootable()
        c.disks = [DiskConfig(path: "/d")]
        c.disks?[0].pci_segment = 1
        assertInvalid(c, .invalidPciSegment(1))
        c.platform = PlatformConfig(num_pci_segments: 2)
        XCTAssertNoThrow(try c.validate())
    }

    func testTopologyAndMemoryChecks() throws {
        var c = bootable()
        c.cpus = try CpusConfig.parse("boot=2,max=4,topology=1:2:1:1")
        assertInvalid(c, .cpuTopologyCount(product: 2, maxVCPUs: 4))
        c.cpus = try CpusConfig.parse("boot=2,max=4,topology=4:1:1:1")
        assertInvalid(c, .cpuTopologyThreadsPerCore(4))
        c.cpus = CpusConfig()
        c.memory.hugepage_size = 2 << 20
        assertInvalid(c, .hugePageSizeWithoutHugePages)
        c.memory.hugepages = true
        c.memory.hugepage_size = 3 << 20
        assertInvalid(c, .invalidHugePageSize(3 << 20))
        c = bootable()
        c.payload?.firmware = "/fw"
        assertInvalid(c, .firmwarePlusKernel)
    }
}
