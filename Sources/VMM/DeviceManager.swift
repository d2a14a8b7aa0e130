import Glibc
import Config
import Devices
import Hypervisor
import Memory

/// Creates the platform devices of a VM and places them on its port-I/O and MMIO buses.
///
/// Device ids follow Cloud Hypervisor (`__serial`, `__rtc`, …) so that `vm.info` and `vm.counters`
/// read the same.
final class DeviceManager: @unchecked Sendable {
    static let serialIRQ: UInt32 = 4

    let pio = Bus()
    let mmio = Bus()
    private(set) var serial: Serial8250?
    private(set) var devices: [(id: String, device: any BusDevice)] = []

    init(vm: VirtualMachine, memory: GuestMemory, config: VmConfig, console: ConsoleIO?, control: any VMControl) throws {
        if config.serial.mode != .Off {
            let sink: any SerialSink = console ?? NullSink()
            let serial = Serial8250(interrupt: KvmIrqLine(vm: vm, gsi: Self.serialIRQ), sink: sink)
            try add("__serial", serial, pio: 0x3F8, size: 8)
            self.serial = serial
        }
        try add("__i8042", I8042(control: control), pio: 0x60, size: 5)
        let below4G = min(memory.size, GuestLayout.mmioHoleStart)
        let above4G = memory.size - below4G
        try add("__rtc", CMOS(memoryBelow4G: below4G, memoryAbove4G: above4G), pio: 0x70, size: 2)
        try add("__acpi_pm", AcpiPM(control: control), pio: 0x600, size: 2)
        try add("__pm_timer", PMTimer(), pio: 0x608, size: 4)
        try add("__debug_port", DebugPort(), pio: 0x80, size: 1)
    }

    private func add(_ id: String, _ device: any BusDevice, pio base: UInt64, size: UInt64) throws {
        try pio.register(device, base: base, size: size)
        devices.append((id, device))
    }
}
