import Config
import Virtio

/// Why a configured virtio device could not be built; the message names the device and its config.
struct VirtioDeviceError: Error, CustomStringConvertible {
    let id: String
    let reason: String
    var description: String { "cannot create device \(id): \(reason)" }
}

/// Builds the virtio devices a VmConfig asks for, in Cloud Hypervisor's creation order (console,
/// disks, net, rng, vsock) so that a guest finds them at the same PCI slots. Ids must already be
/// assigned (`VmConfig.withGeneratedDeviceIDs`).
enum VirtioDeviceFactory {
    /// Devices every VM has without asking (CH's default rng). A snapshot written before this VMM built them
    /// has no state for them, and its guest never saw them: a restore leaves them out (see `Vm.init`).
    static let implicitDeviceIDs = ["__rng"]

    /// `skipping`: ids not to build.
    static func devices(for config: VmConfig, console: ConsoleIO?, skipping: Set<String> = []) throws -> [(String, any VirtioDevice)] {
        var out: [(String, any VirtioDevice)] = []
        func add(_ id: String, _ make: () throws -> any VirtioDevice) throws {
            guard !skipping.contains(id) else { return }
            do { out.append((id, try make())) } catch { throw VirtioDeviceError(id: id, reason: "\(error)") }
        }
        for (i, disk) in (config.disks ?? []).enumerated() {
            let id = disk.pci_common.id ?? "_disk\(i)"
            try add(id) { try VirtioBlock(blockOptions(disk, id: id)) }
        }
        try add("__rng") { try VirtioRng(source: config.rng.src) }
        return out
    }

    private static func blockOptions(_ disk: DiskConfig, id: String) throws -> BlockDeviceOptions {
        guard !disk.vhost_user else { throw VirtioDeviceError(id: id, reason: "vhost-user disks are not supported") }
        guard let path = disk.path else { throw VirtioDeviceError(id: id, reason: "no path given (path=…)") }
        guard disk.image_type == .Raw || disk.image_type == .Unknown else {
            throw VirtioDeviceError(id: id, reason: "image_type \(disk.image_type.rawValue) is not supported: only raw images are")
        }
        return BlockDeviceOptions(path: path, readonly: disk.readonly, direct: disk.direct, numQueues: disk.num_queues,
                                  queueSize: disk.queue_size, serial: disk.serial)
    }
}
