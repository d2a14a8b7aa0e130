import Boot
import Config
import Devices
import Hypervisor
import Logging
import Memory
import Pci

/// Creates the platform devices of a VM and places them on its port-I/O and MMIO buses.
///
/// Device ids follow Cloud Hypervisor (`__serial`, `__rtc`, …) so that `vm.info` and `vm.counters`
/// read the same.
final class DeviceManager: @unchecked Sendable {
    struct Placed {
        let id: String
        let device: any BusDevice
        let resources: [DeviceResource]
    }

    let pio = Bus()
    let mmio = Bus()
    private(set) var serial: Serial8250?
    private(set) var placed: [Placed] = []
    /// The GED interrupt that carries the ACPI power button (see the DSDT).
    let powerButtonLine: KvmIrqLine
    /// PCI segment 0 and the virtio devices on it.
    let virtio: VirtioSlots

    /// `skipping`: virtio device ids not to build (implicit devices a restored snapshot has no state for).
    init(vm: VirtualMachine, memory: GuestMemory, config: VmConfig, console: ConsoleIO?, control: any VMControl,
         skipping: Set<String> = [], logger: Logger) throws {
        powerButtonLine = KvmIrqLine(vm: vm, gsi: ACPIConfig.defaultGEDGSI)
        let window = ACPIConfig(bootCPUs: Int(config.cpus.boot_vcpus)).pci32BitWindow
        virtio = VirtioSlots(vm: vm, memory: memory, mmio: mmio, window: (window.base, window.size), logger: logger)
        if config.serial.mode != .Off {
            let sink: any SerialSink = console ?? NullSink()
            let serial = Serial8250(interrupt: KvmIrqLine(vm: vm, gsi: UInt32(Serial8250.com1IRQ)), sink: sink)
            try add("__serial", serial, port: UInt16(Serial8250.com1Base), size: UInt16(Serial8250.portCount),
                    irq: UInt32(Serial8250.com1IRQ))
            self.serial = serial
        }
        try add("__i8042", I8042(control: control), port: 0x60, size: 5)
        let below4G = min(memory.size, GuestLayout.mmioHoleStart)
        let above4G = memory.size - below4G
        try add("__rtc", CMOS(memoryBelow4G: below4G, memoryAbove4G: above4G, control: control), port: 0x70, size: 2)
        try add("__acpi_pm", AcpiPM(control: control), port: 0x600, size: 2)
        try add("__pm_timer", AcpiPMTimer(), port: 0x608, size: 4)
        try add("__debug_port", DebugPort(), port: 0x80, size: 1)
        try pio.register(PciConfigIO(bus: virtio.bus), base: UInt64(PciConfigIO.base), size: UInt64(PciConfigIO.size))
        try mmio.register(PciConfigMMIO(bus: virtio.bus), base: GuestLayout.pciMMConfigStart, size: GuestLayout.pciMMConfigSize)
        for (id, device) in try VirtioDeviceFactory.devices(for: config, console: console, skipping: skipping) {
            try virtio.add(id: id, device: device)
        }
    }

    private func add(_ id: String, _ device: any BusDevice, port: UInt16, size: UInt16, irq: UInt32? = nil) throws {
        try pio.register(device, base: UInt64(port), size: UInt64(size))
        var resources: [DeviceResource] = [.pioAddressRange(base: port, size: size)]
        if let irq { resources.append(.legacyIrq(irq)) }
        placed.append(Placed(id: id, device: device, resources: resources))
    }

    /// `vm.info`'s device_tree.
    var deviceTree: [String: DeviceNode] {
        Dictionary(uniqueKeysWithValues: placed.map { ($0.id, DeviceNode(id: $0.id, resources: $0.resources)) })
            .merging(virtio.deviceTree) { a, _ in a }
    }

    /// Every device with guest-visible state, as snapshot components.
    var stateComponents: [any StateComponent] {
        placed.compactMap { p in
            guard let device = p.device as? any Snapshottable else { return nil }
            return Self.component(id: p.id, device)
        } + virtio.placed.map { Self.component(id: $0.id, $0.transport) }
    }

    private static func component<D: Snapshottable>(id: String, _ device: D) -> any StateComponent {
        DeviceComponent(id: id, device: device)
    }

    /// `vm.counters` for the devices that count something.
    var counters: VmCounters {
        var out: VmCounters = [:]
        if let serial { out["__serial"] = serial.counters.dictionary }
        for p in virtio.placed where !p.transport.device.counters.isEmpty { out[p.id] = p.transport.device.counters }
        return out
    }
}
