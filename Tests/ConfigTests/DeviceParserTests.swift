import XCTest
@testable import Config

/// CH's option-string syntax for devices (`--disk`, `ch-remote add-disk`, …), option names as vmm/src/config.rs.
final class DeviceParserTests: XCTestCase {
    func testDisk() throws {
        let d = try DiskConfig.parse("path=/x,readonly=on,num_queues=2,queue_size=256,direct=true,id=disk0,serial=abc,"
                                     + "image_type=qcow2,bw_size=1000,bw_refill_time=10,queue_affinity=[0@[1,2],1@[3-4]],"
                                     + "sparse=off,lock_granularity=full,iommu=on,pci_segment=1")
        XCTAssertEqual(d.path, "/x")
        XCTAssertTrue(d.readonly)
        XCTAssertTrue(d.direct)
        XCTAssertEqual(d.num_queues, 2)
        XCTAssertEqual(d.queue_size, 256)
        XCTAssertEqual(d.id, "disk0")
        XCTAssertEqual(d.serial, "abc")
        XCTAssertEqual(d.image_type, .Qcow2)
        XCTAssertEqual(d.rate_limiter_config, RateLimiterConfig(bandwidth: TokenBucketConfig(size: 1000, one_time_burst: 0, refill_time: 10)))
        XCTAssertEqual(d.queue_affinity, [VirtQueueAffinity(queue_index: 0, host_cpus: [1, 2]),
                                          VirtQueueAffinity(queue_index: 1, host_cpus: [3, 4])])
        XCTAssertFalse(d.sparse)
        XCTAssertEqual(d.lock_granularity, .Full)
        XCTAssertTrue(d.iommu)
        XCTAssertEqual(d.pci_segment, 1)
        XCTAssertEqual(try DiskConfig.parse("path=/x"), DiskConfig(path: "/x"))
        // A bucket without a refill time does nothing, as in CH.
        XCTAssertNil(try DiskConfig.parse("path=/x,bw_size=10").rate_limiter_config)
        // vhost-user disks leave the image format to the backend.
        XCTAssertEqual(try DiskConfig.parse("vhost_user=on,socket=/s,image_type=raw").image_type, .Unknown)
    }

    func testNet() throws {
        let n = try NetConfig.parse("tap=tap0,mac=12:34:56:78:9A:bc,host_mac=02:00:00:00:00:01,ip=192.168.249.1,"
                                    + "mask=255.255.255.0,mtu=1400,num_queues=4,queue_size=512,id=net0,vhost_mode=server,offload_tso=off")
        XCTAssertEqual(n.tap, "tap0")
        XCTAssertEqual(n.mac?.bytes, [0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc])
        XCTAssertEqual(n.host_mac?.description, "02:00:00:00:00:01")
        XCTAssertEqual(n.ip, "192.168.249.1")
        XCTAssertEqual(n.mask, "255.255.255.0")
        XCTAssertEqual(n.mtu, 1400)
        XCTAssertEqual(n.num_queues, 4)
        XCTAssertEqual(n.queue_size, 512)
        XCTAssertEqual(n.vhost_mode, .Server)
        XCTAssertFalse(n.offload_tso)
        XCTAssertTrue(n.offload_csum)
        XCTAssertEqual(try NetConfig.parse("fd=[3,4]").fds, [3, 4])
        XCTAssertEqual(try NetConfig.parse("ip=fe80::0001,mask=ffff::").ip, "fe80::1")
    }

    func testBadMACs() {
        for mac in ["12:34:56:78:9a", "12:34:56:78:9a:bc:de", "1:34:56:78:9a:bc", "zz:34:56:78:9a:bc", "12-34-56-78-9a-bc"] {
            XCTAssertThrowsError(try NetConfig.parse("mac=\(mac)"), mac) { error in
                XCTAssertEqual(error as? OptionError, .invalidValue(flag: "--net", option: "mac", value: mac,
                                                                   expected: "a MAC address such as 12:34:56:78:9a:bc"))
            }
        }
        XCTAssertThrowsError(try NetConfig.parse("host_mac=x")) { XCTAssertTrue("\($0)".contains("'host_mac'")) }
        XCTAssertThrowsError(try NetConfig.parse("ip=1.2.3")) { XCTAssertTrue("\($0)".contains("'ip'")) }
    }

    func testUnknownOptionsNameFlagAndOption() {
        let cases: [(String, () throws -> Any)] = [
            ("--disk", { try DiskConfig.parse("path=/x,colour=red") }),
            ("--net", { try NetConfig.parse("colour=red") }),
            ("--fs", { try FsConfig.parse("tag=t,socket=/s,colour=red") }),
            ("--pmem", { try PmemConfig.parse("file=/p,colour=red") }),
            ("--vsock", { try VsockConfig.parse("cid=3,socket=/s,colour=red") }),
            ("--vdpa", { try VdpaConfig.parse("path=/v,colour=red") }),
            ("--device", { try DeviceConfig.parse("path=/d,colour=red") }),
            ("--user-device", { try UserDeviceConfig.parse("socket=/u,colour=red") }),
            ("--numa", { try NumaConfig.parse("guest_numa_id=0,colour=red") }),
            ("--balloon", { try BalloonConfig.parse("size=1M,colour=red") }),
            ("--platform", { try PlatformConfig.parse("colour=red") }),
            ("--restore", { try RestoreConfig.parse("source_url=file:///d,colour=red") }),
        ]
        for (flag, parse) in cases {
            XCTAssertThrowsError(try parse(), flag) { error in
                guard case let .unknownOption(f, option, valid)? = error as? OptionError else {
                    return XCTFail("\(flag): \(error)")
                }
                XCTAssertEqual(f, flag)
                XCTAssertEqual(option, "colour")
                XCTAssertFalse(valid.isEmpty)
            }
        }
    }

    func testReservedIdsAreRejected() {
        for parse in [{ try DiskConfig.parse("path=/x,id=__disk") }, { try NetConfig.parse("id=__net") } as () throws -> Any,
                      { try FsConfig.parse("tag=t,socket=/s,id=__fs") }, { try VsockConfig.parse("cid=3,socket=/s,id=__v") }] {
            XCTAssertThrowsError(try parse()) { error in
                XCTAssertTrue("\(error)".contains("'id'"), "\(error)")
                XCTAssertTrue("\(error)".contains("__"), "\(error)")
            }
        }
        XCTAssertEqual(try DiskConfig.parse("path=/x,id=_disk0").id, "_disk0")
    }

    func testRequiredOptions() {
        XCTAssertThrowsError(try FsConfig.parse("socket=/s")) { XCTAssertEqual($0 as? OptionError, .missingOption(flag: "--fs", option: "tag")) }
        XCTAssertThrowsError(try FsConfig.parse("tag=t")) { XCTAssertEqual($0 as? OptionError, .missingOption(flag: "--fs", option: "socket")) }
        XCTAssertThrowsError(try VsockConfig.parse("socket=/s")) { XCTAssertEqual($0 as? OptionError, .missingOption(flag: "--vsock", option: "cid")) }
        XCTAssertThrowsError(try PmemConfig.parse("size=1M")) { XCTAssertEqual($0 as? OptionError, .missingOption(flag: "--pmem", option: "file")) }
        XCTAssertThrowsError(try VdpaConfig.parse("num_queues=2")) { XCTAssertEqual($0 as? OptionError, .missingOption(flag: "--vdpa", option: "path")) }
        XCTAssertThrowsError(try UserDeviceConfig.parse("id=u")) { XCTAssertEqual($0 as? OptionError, .missingOption(flag: "--user-device", option: "socket")) }
        XCTAssertThrowsError(try NumaConfig.parse("cpus=[0]")) { XCTAssertEqual($0 as? OptionError, .missingOption(flag: "--numa", option: "guest_numa_id")) }
        XCTAssertThrowsError(try RestoreConfig.parse("prefault=on")) { XCTAssertEqual($0 as? OptionError, .missingOption(flag: "--restore", option: "source_url")) }
        XCTAssertThrowsError(try FsConfig.parse("tag=\(String(repeating: "t", count: 37)),socket=/s"))
    }

    func testOtherDevices() throws {
        let fs = try FsConfig.parse("tag=share,socket=/fs.sock,num_queues=2,queue_size=512,id=fs0")
        XCTAssertEqual(fs, FsConfig(tag: "share", socket: "/fs.sock", num_queues: 2, queue_size: 512, id: "fs0"))
        XCTAssertEqual(try PmemConfig.parse("file=/p,size=2M,discard_writes=on"), PmemConfig(file: "/p", size: 2 << 20, discard_writes: true))
        XCTAssertEqual(try VsockConfig.parse("cid=3,socket=/v"), VsockConfig(cid: 3, socket: "/v"))
        XCTAssertEqual(try VdpaConfig.parse("path=/dev/vhost-vdpa-0,num_queues=2").num_queues, 2)
        let dev = try DeviceConfig.parse("path=/sys/bus/pci/devices/0000:01:00.0,x_exclude_mmap_bars=[0,2]")
        XCTAssertEqual(dev.x_exclude_mmap_bars, [0, 2])
        XCTAssertEqual(try UserDeviceConfig.parse("socket=/u,id=u0").id, "u0")
        let g = try GenericVhostUserConfig.parse("socket=/g,virtio_id=block,queue_sizes=[128,128]")
        XCTAssertEqual(g.device_type, 2)
        XCTAssertEqual(g.queue_sizes, [128, 128])
        XCTAssertEqual(try GenericVhostUserConfig.parse("socket=/g,device_type=26,queue_sizes=[1]").device_type, 26)
        XCTAssertThrowsError(try GenericVhostUserConfig.parse("socket=/g,device_type=iommu,queue_sizes=[1]"))
        XCTAssertThrowsError(try GenericVhostUserConfig.parse("socket=/g,device_type=026,queue_sizes=[1]"))
        XCTAssertEqual(try BalloonConfig.parse("size=64M,free_page_reporting=on").size, 64 << 20)
        let numa = try NumaConfig.parse("guest_numa_id=1,cpus=[0-2,5],distances=[0@20,2@30],memory_zones=[a,b],pci_segments=[1]")
        XCTAssertEqual(numa.cpus, [0, 1, 2, 5])
        XCTAssertEqual(numa.distances, [NumaDistance(destination: 0, distance: 20), NumaDistance(destination: 2, distance: 30)])
        XCTAssertEqual(numa.memory_zones, ["a", "b"])
        XCTAssertThrowsError(try NumaConfig.parse("guest_numa_id=1,device_id=d,cpus=[0]"))
        let platform = try PlatformConfig.parse("num_pci_segments=2,iommu_segments=[1],iommufd_fd=5,serial_number=s")
        XCTAssertEqual(platform.iommu_segments, [1])
        XCTAssertTrue(platform.iommufd)
        XCTAssertEqual(platform.system_serial_number, "s")
        XCTAssertEqual(try RngConfig.parse("/dev/random").src, "/dev/random")
        XCTAssertEqual(try CpusConfig.parse("boot=2,core_scheduling=vcpu").core_scheduling, .Vcpu)
        XCTAssertThrowsError(try CpusConfig.parse("features=[avx]"))
        XCTAssertEqual(try MemoryConfig.parse("size=1G,hotplug_method=virtio-mem").hotplug_method, .VirtioMem)
        XCTAssertEqual(try DebugConsoleConfig.parse("tty").mode, .Tty)
        XCTAssertThrowsError(try DebugConsoleConfig.parse("tty,iobase=402"))
    }

    func testConsoleAcceptsPciOptionsButSerialDoesNot() throws {
        let console = try ConsoleConfig.parse("pty,iommu=on,id=con0", flag: "--console")
        XCTAssertEqual(console.mode, .Pty)
        XCTAssertTrue(console.iommu)
        XCTAssertEqual(console.id, "con0")
        XCTAssertThrowsError(try ConsoleConfig.parse("tty,iommu=on", flag: "--serial"))
    }
}
