import Foundation
import XCTest
@testable import Config

/// Each device config: CH's defaults when decoding a minimal body, required fields named when missing, and
/// the exact shape CH writes (vmm/src/vm_config.rs).
final class DeviceJSONTests: XCTestCase {
    func testDiskDefaultsAndShape() throws {
        let d = try decodeJSON(DiskConfig.self, #"{"path":"/d"}"#)
        XCTAssertEqual(d, DiskConfig(path: "/d"))
        assertJSON(d, equals: """
            {"pci_segment":0,"path":"/d","readonly":false,"direct":false,"num_queues":1,"queue_size":128,
             "vhost_user":false,"disable_io_uring":false,"disable_aio":false,"backing_files":false,"sparse":true,
             "image_type":"Unknown","lock_granularity":"ByteRange"}
            """)
        // No field is required: a vhost-user disk has only a socket.
        XCTAssertNil(try decodeJSON(DiskConfig.self, "{}").path)
    }

    func testDiskCarriesCommonPciFieldsFlat() throws {
        let d = try decodeJSON(DiskConfig.self, #"{"path":"/d","id":"disk0","iommu":true,"pci_segment":1,"pci_device_id":5,"image_type":"Qcow2"}"#)
        XCTAssertEqual(d.id, "disk0")
        XCTAssertTrue(d.iommu)
        XCTAssertEqual(d.pci_segment, 1)
        XCTAssertEqual(d.pci_device_id, 5)
        XCTAssertEqual(d.image_type, .Qcow2)
        let object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(d)) as? [String: Any]
        XCTAssertEqual(object?["id"] as? String, "disk0")
        XCTAssertEqual(object?["pci_device_id"] as? Int, 5)
        XCTAssertNil(object?["pci_common"])
    }

    func testRateLimiterWritesNullsAndRejectsUnknownFields() throws {
        let d = try decodeJSON(DiskConfig.self, #"{"path":"/d","rate_limiter_config":{"bandwidth":{"size":10,"refill_time":100}}}"#)
        XCTAssertEqual(d.rate_limiter_config?.bandwidth, TokenBucketConfig(size: 10, refill_time: 100))
        assertJSON(d.rate_limiter_config!, equals: #"{"bandwidth":{"size":10,"one_time_burst":null,"refill_time":100},"ops":null}"#)
        assertDecodingFails(DiskConfig.self, #"{"rate_limiter_config":{"bandwith":{}}}"#, naming: "bandwith")
        assertDecodingFails(DiskConfig.self, #"{"rate_limiter_config":{"ops":{"size":1}}}"#, naming: "refill_time")
    }

    func testNetDefaultsAndShape() throws {
        let n = try decodeJSON(NetConfig.self, "{}")
        XCTAssertEqual(n, NetConfig())
        assertJSON(n, equals: """
            {"pci_segment":0,"num_queues":2,"queue_size":256,"vhost_user":false,"vhost_mode":"Client",
             "offload_tso":true,"offload_ufo":true,"offload_csum":true}
            """)
        let full = try decodeJSON(NetConfig.self, #"{"tap":"tap0","mac":"12:34:56:78:9A:BC","ip":"192.168.1.1","mask":"255.255.255.0","vhost_mode":"Server"}"#)
        XCTAssertEqual(full.mac?.description, "12:34:56:78:9a:bc")
        XCTAssertEqual(full.vhost_mode, .Server)
        assertDecodingFails(NetConfig.self, #"{"mac":"12:34:56:78:9a"}"#, naming: "mac")
        assertDecodingFails(NetConfig.self, #"{"ip":"300.1.1.1"}"#, naming: "ip")
    }

    func testNetDescriptorsFromJSONAreNeverTrusted() throws {
        XCTAssertEqual(try decodeJSON(NetConfig.self, #"{"fds":[5,6]}"#).fds, [-1, -1])
        XCTAssertEqual(try decodeJSON(DeviceConfig.self, #"{"fd":7}"#).fd, -1)
        XCTAssertEqual(try decodeJSON(PlatformConfig.self, #"{"iommufd_fd":9}"#).iommufd_fd, -1)
    }

    func testFs() throws {
        let fs = try decodeJSON(FsConfig.self, #"{"tag":"t","socket":"/s"}"#)
        assertJSON(fs, equals: #"{"pci_segment":0,"tag":"t","socket":"/s","num_queues":1,"queue_size":1024}"#)
        assertDecodingFails(FsConfig.self, #"{"socket":"/s"}"#, naming: "tag")
        assertDecodingFails(FsConfig.self, #"{"tag":"t"}"#, naming: "socket")
    }

    func testPmem() throws {
        assertJSON(try decodeJSON(PmemConfig.self, #"{"file":"/p"}"#), equals: #"{"pci_segment":0,"file":"/p","discard_writes":false}"#)
        assertDecodingFails(PmemConfig.self, #"{"size":1}"#, naming: "file")
    }

    func testVsock() throws {
        assertJSON(try decodeJSON(VsockConfig.self, #"{"cid":3,"socket":"/v"}"#), equals: #"{"pci_segment":0,"cid":3,"socket":"/v"}"#)
        assertDecodingFails(VsockConfig.self, #"{"socket":"/v"}"#, naming: "cid")
        assertDecodingFails(VsockConfig.self, #"{"cid":3}"#, naming: "socket")
    }

    func testVdpa() throws {
        assertJSON(try decodeJSON(VdpaConfig.self, #"{"path":"/dev/vhost-vdpa-0"}"#),
                   equals: #"{"pci_segment":0,"path":"/dev/vhost-vdpa-0","num_queues":1}"#)
        assertDecodingFails(VdpaConfig.self, "{}", naming: "path")
    }

    func testDevice() throws {
        assertJSON(try decodeJSON(DeviceConfig.self, #"{"path":"/sys/x"}"#),
                   equals: #"{"pci_segment":0,"path":"/sys/x","x_exclude_mmap_bars":[]}"#)
    }

    func testUserDevice() throws {
        assertJSON(try decodeJSON(UserDeviceConfig.self, #"{"socket":"/u"}"#), equals: #"{"pci_segment":0,"socket":"/u"}"#)
        assertDecodingFails(UserDeviceConfig.self, "{}", naming: "socket")
    }

    func testGenericVhostUser() throws {
        let g = try decodeJSON(GenericVhostUserConfig.self, #"{"socket":"/g","queue_sizes":[256],"device_type":26}"#)
        assertJSON(g, equals: #"{"pci_segment":0,"socket":"/g","queue_sizes":[256],"device_type":26}"#)
        assertDecodingFails(GenericVhostUserConfig.self, #"{"socket":"/g","device_type":26}"#, naming: "queue_sizes")
    }

    func testBalloonRtcTpmLandlock() throws {
        assertJSON(try decodeJSON(BalloonConfig.self, #"{"size":1024}"#),
                   equals: #"{"pci_segment":0,"size":1024,"deflate_on_oom":false,"free_page_reporting":false}"#)
        assertDecodingFails(BalloonConfig.self, "{}", naming: "size")
        assertJSON(try decodeJSON(RtcConfig.self, "{}"), equals: #"{"pci_segment":0}"#)
        assertDecodingFails(TpmConfig.self, "{}", naming: "socket")
        assertDecodingFails(LandlockConfig.self, #"{"path":"/"}"#, naming: "access")
    }

    func testNuma() throws {
        assertJSON(try decodeJSON(NumaConfig.self, #"{"guest_numa_id":0,"cpus":[0,1]}"#), equals: #"{"guest_numa_id":0,"cpus":[0,1]}"#)
        assertDecodingFails(NumaConfig.self, #"{"cpus":[0]}"#, naming: "guest_numa_id")
        XCTAssertEqual(try decodeJSON(NumaConfig.self, #"{"guest_numa_id":1,"distances":[{}]}"#).distances,
                       [NumaDistance(destination: 0, distance: 0)])
    }

    func testPlatformDefaultsAndLegacyNames() throws {
        let p = try decodeJSON(PlatformConfig.self, #"{"serial_number":"s1","uuid":"u1"}"#)
        XCTAssertEqual(p.system_serial_number, "s1")
        XCTAssertEqual(p.system_uuid, "u1")
        assertJSON(try decodeJSON(PlatformConfig.self, "{}"), equals: """
            {"num_pci_segments":1,"iommu_address_width_bits":64,"iommufd":false,"vfio_p2p_dma":true}
            """)
    }

    func testPciSegment() throws {
        assertJSON(try decodeJSON(PciSegmentConfig.self, "{}"),
                   equals: #"{"pci_segment":0,"mmio32_aperture_weight":1,"mmio64_aperture_weight":1}"#)
    }

    func testDeviceTreeResourcesAsCH() throws {
        let json = """
            {"id":"_disk0","resources":[{"PciBar":{"index":0,"base":4096,"size":8192,"type_":"Mmio64","prefetchable":false}},
             {"MsiIrq":{"ty":"PciMsix","base":24,"size":2}},{"LegacyIrq":4},{"PioAddressRange":{"base":1016,"size":8}},
             {"MmioAddressRange":{"base":1,"size":2}},{"MacAddress":"12:34:56:78:9a:bc"},{"KvmMemSlot":3}],
             "parent":"__pci","children":[],"pci_bdf":"0000:00:04.0"}
            """
        let node = try decodeJSON(DeviceNode.self, json)
        XCTAssertEqual(node.resources.count, 7)
        XCTAssertEqual(node.resources[0], .pciBar(index: 0, base: 4096, size: 8192, type: .Mmio64, prefetchable: false))
        assertJSON(node, equals: json)
    }
}
