import Config
import Virtio

/// Builds the virtio devices a VmConfig asks for, with Cloud Hypervisor's ids and creation order:
/// console, disks, net, rng, vsock (generated ids share one counter: `_disk0`, `_net1`, …).
enum VirtioDeviceFactory {
    static func devices(for config: VmConfig, console: ConsoleIO?) throws -> [(String, any VirtioDevice)] {
        []
    }
}
