import Glibc
import Boot
import Config
import Devices
import Foundation
import Hypervisor
import Logging
import Memory
import Virtio

/// Why a VM could not be built or run. Messages are shown to users verbatim.
public enum VmError: Error, CustomStringConvertible {
    case invalidConfig(ValidationError)
    case unsupportedDevices([String])
    case kvm(String)
    case boot(String)

    public var description: String {
        switch self {
        case let .invalidConfig(e): return "invalid VM configuration: \(e)"
        case let .unsupportedDevices(kinds):
            return "this VMM does not support these devices yet: \(kinds.joined(separator: ", ")) (supported: disks, net, rng, console, vsock)"
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
    private let throttle: VcpuThrottle
    public private(set) var isPaused = false

    /// Where a new VM's memory and vCPU state come from.
    public enum Origin {
        /// Load the configured kernel, write ACPI tables, set the boot registers.
        case boot
        /// `ram` already holds the guest's memory (filled from a snapshot or a migration stream before the VM
        /// exists, so that nothing of KVM has seen it yet); apply each component's saved state (`section(id)`
        /// returns the saved version and payload, or nil when the source has none).
        case restore(ram: GuestMemory, section: SavedSection)
        /// Built around `ram` like a restore, with every device, but its state comes later (`applyState`): a
        /// migration destination builds the VM while memory still arrives, so that the downtime does not
        /// include the build.
        case incoming(ram: GuestMemory)
    }

    /// Where a saved component's state comes from: its version and payload, or nil when it was not saved.
    public typealias SavedSection = (String) throws -> (version: UInt32, payload: Data)?

    /// The MSRs saved with each vCPU: KVM's list plus the MTRRs.
    private let msrIndices: [UInt32]

    /// `replacingSource`: the VM arrives by migration, and its source may still hold host resources on this
    /// host (the vsock socket path is then taken over).
    public init(config: VmConfig, kvm: KVM, console: ConsoleIO?, virtioConsole: ConsoleEndpoint? = nil,
                platform: any VMControl, origin: Origin = .boot, replacingSource: Bool = false, logger: Logger) throws {
        do {
            try config.validate(maxVCPUsSupported: UInt32(max(kvm.checkExtension(KVM_CAP_MAX_VCPUS), 1)))
        } catch let e as ValidationError {
            throw VmError.invalidConfig(e)
        }
        // A configured device that is not built would leave the guest without it, silently: refuse instead.
        let requested: [(String, Bool)] = [
            ("fs", !(config.fs ?? []).isEmpty), ("pmem", !(config.pmem ?? []).isEmpty),
            ("devices", !(config.devices ?? []).isEmpty), ("user_devices", !(config.user_devices ?? []).isEmpty),
            ("vdpa", !(config.vdpa ?? []).isEmpty),
            ("balloon", config.balloon != nil), ("generic_vhost_user", !(config.generic_vhost_user ?? []).isEmpty),
            ("tpm", config.tpm != nil),
        ]
        let unsupported = requested.filter(\.1).map(\.0)
        if !unsupported.isEmpty { throw VmError.unsupportedDevices(unsupported) }
        self.config = config
        guard let payload = config.payload, let kernel = payload.kernel else {
            throw VmError.invalidConfig(.noKernel)
        }
        switch origin {
        case .boot: memory = try Vm.makeMemory(for: config)
        case let .restore(ram, _), let .incoming(ram): memory = ram
        }
        kvmVM = try kvm.createVM()
        // Migration reads the dirty log and re-protects the pages read as two steps (Vm+DirtyLog.swift).
        try kvmVM.enableManualDirtyLogProtect()
        try kvmVM.setTSSAddress(GuestLayout.kvmTSSAddress)
        try kvmVM.setIdentityMapAddress(GuestLayout.kvmIdentityMapAddress)
        // In-kernel PIC + IOAPIC + LAPIC and PIT: interrupts and timers never leave the kernel.
        try kvmVM.createIRQChip()
        try kvmVM.createPIT2()
        try Vm.registerMemory(memory, in: kvmVM, logDirty: false)
        // A snapshot (or migration) from before virtio devices existed has none of their sections: its guest
        // never saw them, so the VM is rebuilt without them. Otherwise every device must have its section.
        var withVirtio = true
        if case let .restore(_, section) = origin {
            withVirtio = try VirtioDeviceFactory.ids(for: config, console: virtioConsole != nil).contains { try section($0) != nil }
            if !withVirtio { logger.notice("the saved VM has no virtio devices (an older snapshot): restoring it without them") }
        }
        devices = try DeviceManager(vm: kvmVM, memory: memory, config: config, console: console,
                                    virtioConsole: withVirtio ? virtioConsole : nil, withVirtio: withVirtio,
                                    replacingSource: replacingSource, control: platform, logger: logger)
        msrIndices = MSRList.toSave(kvmList: (try? kvm.msrIndexList()) ?? [])

        var entry: EntryPoint?
        if case .boot = origin {
            let rsdp = try ACPITables.build(into: memory, config: ACPIConfig(bootCPUs: Int(config.cpus.boot_vcpus),
                                                                           maxCPUs: Int(config.cpus.max_vcpus)))
            entry = try KernelLoader.load(kernel: kernel, initramfs: payload.initramfs,
                                          cmdline: payload.cmdline ?? "", memory: memory, rsdp: rsdp)
        }

        let supported = try kvm.supportedCPUID()
        let threadsPerCore = UInt32(config.cpus.topology?.threads_per_core ?? 1)
        var created: [VirtualCPU] = []
        for id in 0..<config.cpus.boot_vcpus {
            let vcpu = try kvmVM.createVCPU(id: id)
            try vcpu.setCPUID(CpuSetup.cpuid(base: supported, vcpu: id, maxVCPUs: config.cpus.max_vcpus,
                                             threadsPerCore: max(threadsPerCore, 1)))
            if let entry {
                try CpuSetup.configureMSRs(vcpu)
                try CpuSetup.configureFPU(vcpu)
                try CpuSetup.configureLAPIC(vcpu)
                // vCPU 0 is the boot processor; the others wait for INIT-SIPI in the in-kernel LAPIC.
                if id == 0 { try CpuSetup.configureBoot(vcpu, entry: entry) }
            }
            created.append(vcpu)
        }
        vcpus = created
        throttle = VcpuThrottle(control: control, vcpus: created)

        if case let .restore(_, section) = origin { try applyState(section) }
    }

    /// Puts every component's saved state in, the VM-wide state (irqchip, PIT, clock) before any vCPU's.
    /// Every component must be present: a saved state that lacks one would run a half-restored guest.
    /// Only before `start`, or after `start(paused: true)` while it has never run.
    public func applyState(_ section: SavedSection) throws {
        precondition(threads.isEmpty || isPaused, "state is applied to parked vCPUs only")
        for component in stateComponents(pausedClock: nil) {
            guard let saved = try section(component.id) else {
                throw StateError(component: component.id, reason: "missing from the saved state")
            }
            try component.restore(saved.payload, version: saved.version)
        }
        // The clock to resume with is the one just restored, not the one read when the threads started.
        if isPaused { pausedClock = try? kvmVM.getClock() }
    }

    /// Whether `start` was called (its vCPU threads exist).
    var isStarted: Bool { !threads.isEmpty }

    /// Whether `ids` (the sections a migration brought) fit this VM's devices: an old source restored from
    /// a snapshot without virtio devices sends none of theirs, and then needs a VM built without them.
    func hasDevices(for ids: Set<String>) -> Bool {
        devices.virtio.placed.allSatisfy { ids.contains($0.id) }
    }

    /// Maps the guest RAM `config` describes (zero-filled).
    static func makeMemory(for config: VmConfig) throws -> GuestMemory {
        try GuestMemory(size: config.memory.size,
                        options: MemoryOptions(shared: config.memory.shared, hugepages: config.memory.hugepages,
                                               prefault: config.memory.prefault))
    }

    /// Every component with guest-visible state, in save/restore order: the KVM VM first (clock and
    /// interrupt controllers before any vCPU state), then vCPUs, then devices.
    func stateComponents(pausedClock: kvm_clock_data?) -> [any StateComponent] {
        var list: [any StateComponent] = [KvmVmComponent(vm: kvmVM, pausedClock: pausedClock)]
        list += vcpus.map { VcpuComponent(vcpu: $0, msrIndices: msrIndices) }
        list += devices.stateComponents
        return list
    }

    /// A saved component: what the snapshot and migration containers store.
    public struct SavedState: Sendable {
        public let id: String
        public let type: String
        public let version: UInt32
        public let payload: Data
    }

    /// Captures every component's state. The VM must be paused.
    public func captureState() throws -> [SavedState] {
        precondition(isPaused, "state can only be captured while the vCPUs are parked")
        return try stateComponents(pausedClock: pausedClock).map {
            SavedState(id: $0.id, type: $0.type, version: $0.version, payload: try $0.save())
        }
    }

    /// Saves, and drops, each component that can be saved while the guest runs (the KVM VM and the devices;
    /// not the vCPUs, whose ioctls would wait for KVM_RUN to return). The first save of a state type pays for
    /// Swift's lazily built type metadata and conformance lookups — most of a small VM's capture time — which
    /// a migration should pay before the pause, not in its downtime.
    func warmUpStateCapture() {
        for component in stateComponents(pausedClock: nil) {
            _ = component.type   // device types' names are made once (`DeviceTypeNames`)
            if let vcpu = component as? VcpuComponent {
                _ = try? StateCoding.encode(vcpu.standIn)
            } else {
                _ = try? component.save()
            }
        }
    }

    /// For a migration destination's VM, built and parked before its state arrives (it never ran): puts each
    /// component's own fresh state back, so that applying the migrated state pays no first-use costs in the
    /// downtime (see `warmUpStateCapture`). `applyState` then overwrites all of it.
    func warmUpStateRestore() {
        precondition(isPaused, "only a parked VM's state can be applied")
        for component in stateComponents(pausedClock: nil) {
            guard let own = try? component.save() else { continue }
            try? component.restore(own, version: component.version)
        }
    }

    /// The serial port's input, for the console to feed (nil when the serial port is off).
    var serialInput: (@Sendable ([UInt8]) -> Int)? {
        guard let serial = devices.serial else { return nil }
        return { serial.enqueueInput($0) }
    }

    /// Starts one thread per vCPU; with `paused`, they park before their first KVM_RUN (a restored VM
    /// comes up paused unless asked to resume).
    public func start(paused: Bool = false, logger: Logger, onEvent: @escaping @Sendable (VcpuEvent) -> Void) {
        VirtualCPU.installKickSignalHandler()
        if paused {
            control.startPaused()
            pausedClock = try? kvmVM.getClock()
            isPaused = true
        }
        // Restored devices come up paused; a VM that starts running takes them along (and re-kicks them).
        if !paused { devices.virtio.resumeAll() }
        for vcpu in vcpus {
            let t = VcpuThread(vcpu: vcpu, pio: devices.pio, mmio: devices.mmio, control: control, logger: logger, onEvent: onEvent)
            threads.append(t)
            t.start()
        }
    }

    /// kvmclock when the vCPUs were parked: put back on resume so the guest does not see the pause,
    /// and saved in snapshots (CH sets it before any vCPU runs again).
    private var pausedClock: kvm_clock_data?

    /// Stops every vCPU at an instruction boundary and waits until all are parked.
    public func pause() {
        control.pause(kicking: vcpus)
        // Devices after vCPUs: a request a vCPU just queued is completed before the devices park, and
        // nothing writes guest memory from here on (snapshots and the last migration pass rely on it).
        devices.virtio.pauseAll()
        pausedClock = try? kvmVM.getClock()
        // Tells the guest's kvmclock that the stop was the host's doing (no soft-lockup warnings).
        for vcpu in vcpus { _ = try? vcpu.kvmclockCtrl() }
        isPaused = true
    }

    /// Returns the moment the vCPU threads were let go: waking them may preempt the caller on a busy host,
    /// so the return comes later than the guest's restart.
    @discardableResult
    public func resume() -> ContinuousClock.Instant {
        if var clock = pausedClock {
            clock.flags = 0
            try? kvmVM.setClock(clock)
            pausedClock = nil
        }
        devices.virtio.resumeAll()
        isPaused = false
        let released = ContinuousClock.now
        control.resume()
        return released
    }

    /// Auto-converge: holds the vCPUs for `percent` % of every `VcpuThrottle.period` (0 lifts it, and returns
    /// once they run freely again). Independent of pause/resume: a paused VM stays paused.
    func setThrottle(percent: Int) {
        throttle.set(percent)
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
        throttle.set(0)
        control.stop(kicking: vcpus)
        devices.virtio.stopAll()
    }

    deinit { stop() }
}
