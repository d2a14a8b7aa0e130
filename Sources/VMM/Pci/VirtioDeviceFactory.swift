import Config
import Logging
import Virtio

/// Why a configured virtio device could not be built; the message names the device and its config.
struct VirtioDeviceError: Error, CustomStringConvertible {
    let id: String
    let reason: String
    var description: String { "cannot create device \(id): \(reason)" }
}

/// Builds the virtio devices a VmConfig asks for, in Cloud Hypervisor's creation order (console,
/// disks, net, rng, vsock) so that a guest finds them at the same PCI slots. Ids must already be
/// assigned (`VmConfig.withGeneratedDeviceIdentities`).
enum VirtioDeviceFactory {
    /// `console`: the virtio-console's host side (nil when `--console off`). `replacingSource`: the VM
    /// arrives by migration and its source (maybe on this host) still holds the vsock socket path.
    static func devices(for config: VmConfig, console: ConsoleEndpoint?, replacingSource: Bool,
                        logger: Logger) throws -> [(String, any VirtioDevice)] {
        var out: [(String, any VirtioDevice)] = []
        func add(_ id: String, _ make: () throws -> any VirtioDevice) throws {
            do { out.append((id, try make())) } catch { throw VirtioDeviceError(id: id, reason: "\(error)") }
        }
        if let console { try add("__console") { VirtioConsole(endpoint: console) } }
        for (i, disk) in (config.disks ?? []).enumerated() {
            let id = diskID(disk, i)
            try add(id) { try VirtioBlock(blockOptions(disk, id: id)) }
        }
        for (i, net) in (config.net ?? []).enumerated() {
            let id = netID(net, i)
            try add(id) {
                let device = try VirtioNet(netOptions(net, id: id))
                logger.info("\(id): TAP \(device.tapName), guest MAC \(MACAddress.format(device.mac))")
                return device
            }
        }
        try add("__rng") { try VirtioRng(source: config.rng.src) }
        if let vsock = config.vsock {
            let id = vsockID(vsock)
            try add(id) { try VirtioVsock(cid: UInt64(vsock.cid), socketPath: vsock.socket, takeOver: replacingSource) }
        }
        return out
    }

    /// The ids `devices` gives, in the same order, without opening anything.
    static func ids(for config: VmConfig, console: Bool) -> [String] {
        var ids = console ? ["__console"] : []
        ids += (config.disks ?? []).enumerated().map { diskID($1, $0) }
        ids += (config.net ?? []).enumerated().map { netID($1, $0) }
        ids.append("__rng")
        if let vsock = config.vsock { ids.append(vsockID(vsock)) }
        return ids
    }

    // Ids are normally assigned before (VmConfig.withGeneratedDeviceIdentities); these are fallbacks.
    private static func diskID(_ disk: DiskConfig, _ index: Int) -> String { disk.pci_common.id ?? "_disk\(index)" }
    private static func netID(_ net: NetConfig, _ index: Int) -> String { net.pci_common.id ?? "_net\(index)" }
    private static func vsockID(_ vsock: VsockConfig) -> String { vsock.pci_common.id ?? "_vsock0" }

    private static func blockOptions(_ disk: DiskConfig, id: String) throws -> BlockDeviceOptions {
        guard !disk.vhost_user else { throw VirtioDeviceError(id: id, reason: "vhost-user disks are not supported") }
        guard let path = disk.path else { throw VirtioDeviceError(id: id, reason: "no path given (path=…)") }
        guard disk.image_type == .Raw || disk.image_type == .Unknown else {
            throw VirtioDeviceError(id: id, reason: "image_type \(disk.image_type.rawValue) is not supported: only raw images are")
        }
        return BlockDeviceOptions(path: path, readonly: disk.readonly, direct: disk.direct, numQueues: disk.num_queues,
                                  queueSize: disk.queue_size, serial: disk.serial)
    }

    private static func netOptions(_ net: NetConfig, id: String) throws -> NetDeviceOptions {
        guard !net.vhost_user else { throw VirtioDeviceError(id: id, reason: "vhost-user networking is not supported") }
        guard net.fds == nil else {
            throw VirtioDeviceError(id: id, reason: "TAP file descriptors (fds=) are not supported yet: give tap=<name>")
        }
        return NetDeviceOptions(tap: net.tap, ip: net.ip, mask: net.mask, mac: net.mac?.bytes, hostMac: net.host_mac?.bytes,
                                mtu: net.mtu, numQueues: net.num_queues, queueSize: net.queue_size,
                                offloadCsum: net.offload_csum, offloadTso: net.offload_tso, offloadUfo: net.offload_ufo)
    }
}
