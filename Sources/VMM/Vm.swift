import Glibc
import Boot
import Config
import Devices
import Foundation
import Hypervisor
import Logging
import Memory

/// Why a VM could not be built or run. Messages are shown to users verbatim.
public enum VmError: Error, CustomStringConvertible {
    case invalidConfig(ValidationError)
    case kvm(String)
    case boot(String)

    public var description: String {
        switch self {
        case let .invalidConfig(e): return "invalid VM configuration: \(e)"
        case let .kvm(m): return m
        case let .boot(m): return m
        }
    }
}

/// One built virtual machine: KVM VM, guest RAM, devices and vCPUs, from a VmConfig.
///
/// A reboot builds a new `Vm` from the same config (as Cloud Hypervisor does), so nothing of the old
/// machine leaks into the new one.
public final class Vm: @unchecked Sendable {
    public let config: VmConfig
    public let memory: GuestMemory
    let kvmVM: VirtualMachine
    let devices: DeviceManager
    private let vcpus: [VirtualCPU]
    private var threads: [VcpuThread] = []
    private let control = RunControl()
    public private(set) var isPaused = false

    public init(config: VmConfig, kvm: KVM, console: ConsoleIO?, platform: any VMControl) throws {
        do {
            try config.validate(maxVCPUsSupported: UInt32(max(kvm.checkExtension(KVM_CAP_MAX_VCPUS), 1)))
        } catch let e as ValidationError {
            throw VmError.invalidConfig(e)
        }
        self.config = config
        guard let payload = config.payload, let kernel = payload.kernel else {
            throw VmError.invalidConfig(.noKernel)
        }
        memory = try GuestMemory(size: config.memory.size,
                                 options: MemoryOptions(shared: config.memory.shared,
                                                        hugepages: config.memory.hugepages,
                                                        prefault: config.memory.prefault))
        kvmVM = try kvm.createVM()
        try kvmVM.setTSSAddress(GuestLayout.kvmTSSAddress)
        try kvmVM.setIdentityMapAddress(GuestLayout.kvmIdentityMapAddress)
        // In-kernel PIC + IOAPIC + LAPIC and PIT: interrupts and timers never leave the kernel.
        try kvmVM.createIRQChip()
        try kvmVM.createPIT2()
        for (slot, region) in memory.regions.enumerated() {
            try kvmVM.setUserMemoryRegion(slot: UInt32(slot), guestAddress: region.guestBase,
                                          size: region.size, host: region.host)
        }
        devices = try DeviceManager(vm: kvmVM, memory: memory, config: config, console: console, control: platform)

        let rsdp = try ACPITables.build(into: memory, config: ACPIConfig(bootCPUs: Int(config.cpus.boot_vcpus),
                                                                       maxCPUs: Int(config.cpus.max_vcpus)))
        let entry = try KernelLoader.load(kernel: kernel, initramfs: payload.initramfs,
                                          cmdline: payload.cmdline ?? "", memory: memory, rsdp: rsdp)

        let supported = try kvm.supportedCPUID()
        let threadsPerCore = UInt32(config.cpus.topology?.threads_per_core ?? 1)
        var created: [VirtualCPU] = []
        for id in 0..<config.cpus.boot_vcpus {
            let vcpu = try kvmVM.createVCPU(id: id)
            try vcpu.setCPUID(CpuSetup.cpuid(base: supported, vcpu: id, maxVCPUs: config.cpus.max_vcpus,
                                             threadsPerCore: max(threadsPerCore, 1)))
            try CpuSetup.configureMSRs(vcpu)
            try CpuSetup.configureFPU(vcpu)
            try CpuSetup.configureLAPIC(vcpu)
            // vCPU 0 is the boot processor; the others wait for INIT-SIPI in the in-kernel LAPIC.
            if id == 0 { try CpuSetup.configureBoot(vcpu, entry: entry) }
            created.append(vcpu)
        }
        vcpus = created
    }

    /// The serial port's input, for the console to feed (nil when the serial port is off).
    var serialInput: (@Sendable ([UInt8]) -> Int)? {
        guard let serial = devices.serial else { return nil }
        return { serial.enqueueInput($0) }
    }

    /// Starts one thread per vCPU.
    public func start(logger: Logger, onEvent: @escaping @Sendable (VcpuEvent) -> Void) {
        VirtualCPU.installKickSignalHandler()
        for vcpu in vcpus {
            let t = VcpuThread(vcpu: vcpu, pio: devices.pio, mmio: devices.mmio, control: control, logger: logger, onEvent: onEvent)
            threads.append(t)
            t.start()
        }
    }

    /// Stops every vCPU at an instruction boundary and waits until all are parked.
    public func pause() {
        control.pause(kicking: vcpus)
        isPaused = true
    }

    public func resume() {
        control.resume(vcpus)
        isPaused = false
    }

    /// Presses the ACPI power button: an edge on the GED interrupt, whose `_EVT` notifies `\_SB.PWRB`.
    public func pressPowerButton() {
        devices.powerButtonLine.pulse()
    }

    /// Delivers an NMI to every vCPU through the LAPICs (an MSI with NMI delivery mode), which unlike
    /// KVM_NMI does not wait for each vCPU to leave KVM_RUN.
    public func injectNMI() throws {
        for vcpu in vcpus {
            try kvmVM.signalMSI(address: GuestLayout.lapicStart | (UInt64(vcpu.id) << 12), data: 4 << 8)
        }
    }

    var deviceTree: [String: DeviceNode] { devices.deviceTree }
    var counters: VmCounters { devices.counters }

    /// Stops and joins all vCPU threads. The VM cannot run again afterwards.
    public func stop() {
        control.stop(kicking: vcpus)
    }

    deinit { stop() }
}
