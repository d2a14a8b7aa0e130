import Boot
import Config
import Devices
import Hypervisor
import Logging
import Memory
import Pci
import Virtio

/// The virtio devices of a VM on its PCI bus: their transports, ids and slots, in the order Cloud
/// Hypervisor creates them (console, disks, net, rng, vsock), so the guest sees the same bdfs.
final class VirtioSlots: @unchecked Sendable {
    struct Placed {
        let id: String
        let transport: VirtioPciDevice
        let slot: Int
    }

    let bus: PciBus
    private(set) var placed: [Placed] = []
    private let vm: VirtualMachine
    private let memory: GuestMemory
    private let router: GsiRouter
    /// BAR space: the 64-bit window above RAM first (where Cloud Hypervisor puts 64-bit BARs), then the
    /// 32-bit window below 4 GiB.
    private var bars: [PciBarAllocator]
    private let logger: Logger

    init(vm: VirtualMachine, memory: GuestMemory, mmio: Devices.Bus, windows: [AddressWindow], logger: Logger) {
        self.vm = vm
        self.memory = memory
        bus = PciBus(mmio: mmio)
        router = GsiRouter(vm: vm)
        bars = windows.map { PciBarAllocator(base: $0.base, size: $0.size) }
        self.logger = logger
    }

    /// Builds the transport for `device`, places its BAR and puts it on the bus.
    func add(id: String, device: any VirtioDevice) throws {
        let logger = self.logger
        let report: @Sendable (String) -> Void = { logger.error("\(id): \($0)") }
        let vectors = try KvmMsiVectors(vm: vm, router: router, count: device.queueMaxSizes.count + 1, onError: report)
        let bar = try allocateBar(size: 0x8_0000, for: id)
        let transport = try VirtioPciDevice(name: id, device: device, memory: memory, barAddress: bar,
                                            vectors: vectors, ioEvents: KvmIoEvents(vm: vm), log: report)
        let slot = try bus.add(transport, name: id)
        transport.remap = { [weak bus, weak transport] move in
            guard let bus, let transport else { return }
            bus.remap(transport, move)
        }
        placed.append(Placed(id: id, transport: transport, slot: slot))
    }

    private func allocateBar(size: UInt64, for id: String) throws -> UInt64 {
        var lastError: Error = PciError.noBarSpace(device: id, size: size)
        for i in bars.indices {
            do { return try bars[i].allocate(size: size, for: id) } catch { lastError = error }
        }
        throw lastError
    }

    func pauseAll() { for p in placed { p.transport.pause() } }
    func resumeAll() { for p in placed { p.transport.resume() } }
    /// Stops every device thread (VM teardown); the devices cannot run again.
    func stopAll() { for p in placed { p.transport.device.reset() } }

    /// `vm.info` nodes as Cloud Hypervisor lays them out: the virtio device, and its PCI transport
    /// `_virtio-pci-<id>` holding the BAR and the bdf.
    var deviceTree: [String: DeviceNode] {
        var nodes: [String: DeviceNode] = [:]
        for p in placed {
            let transportID = "_virtio-pci-\(p.id)"
            let barNodes = p.transport.bars.map {
                DeviceResource.pciBar(index: $0.index, base: $0.address, size: $0.size,
                                      type: $0.kind == .memory64 ? .Mmio64 : .Mmio32, prefetchable: $0.prefetchable)
            }
            nodes[p.id] = DeviceNode(id: p.id, parent: transportID)
            nodes[transportID] = DeviceNode(id: transportID, resources: barNodes, children: [p.id],
                                            pci_bdf: Self.bdf(slot: p.slot))
        }
        return nodes
    }

    static func bdf(slot: Int) -> String { String(format: "0000:00:%02x.0", slot) }
}
