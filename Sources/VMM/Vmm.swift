import Config
import Devices
import Foundation
import Glibc
import Hypervisor
import Logging
import Virtio
import Memory
import Snapshot

/// The single control loop that owns the VM and answers every command, one at a time, on its own thread.
///
/// vCPU threads and devices report events (guest reset, S5, failures) into the same mailbox, so the
/// VM is only ever built, paused or torn down from here. Frontends call `request` (async: the
/// continuation is resumed from the loop's thread, so Swift's cooperative pool never blocks) or `send`.
public final class Vmm: VmmCommandHandling, @unchecked Sendable {
    enum Message {
        case command(VmmCommand, reply: @Sendable (Result<VmmResponse, VmmError>) -> Void)
        case vcpu(VcpuEvent, generation: Int)
        case platformReset(generation: Int)
        case platformShutdown(generation: Int)
        case terminate(signal: Int32)
        case migration(MigrationMessage)
        case restoreVerified(Result<RestoreStats, any Error>, generation: Int)
    }

    /// Keep the process up after the guest powers off (`--no-shutdown`).
    public var keepRunningAfterGuestShutdown = false
    public let events: EventMonitor
    let mailbox = Mailbox<Message>()
    let kvm: KVM
    /// The serial port's host side, made from the VM's config at its first boot and kept across reboots.
    private var console: ConsoleIO?
    /// The virtio-console's host side; like the serial console it outlives reboots of the VM.
    private var virtioConsole: (config: ConsoleConfig, endpoint: ConsoleEndpoint)?
    let logger: Logger
    var config: VmConfig?
    var vm: Vm?
    var state: VmState = .Created
    /// Bumped whenever a VM is built or torn down, so late events of a torn-down VM are ignored.
    private(set) var generation = 0
    var exitCode: Int32?
    private let exited = DispatchSemaphore(value: 0)
    private var finalCode: Int32 = 0
    /// Live migrations in flight (loop thread only), and their progress for any thread.
    var migrations = MigrationSlots()
    let migrationProgressStore = MigrationProgressStore()
    /// The background check of an on-demand restore's mapped memory, while it runs.
    var restoreVerification: RestoreVerification?
    /// Why the VM must not run again: its memory failed the check after an on-demand restore.
    var memoryMismatch: String?

    public init(kvm: KVM, events: EventMonitor = EventMonitor(), logger: Logger) {
        self.kvm = kvm
        self.events = events
        self.logger = logger
    }

    // MARK: frontends

    /// Starts the control loop on its own thread.
    public func start() {
        events.emit("vmm", "starting")
        let thread = Thread { [self] in
            self.finalCode = self.loop()
            self.exited.signal()
        }
        thread.name = "vmm"
        thread.start()
    }

    /// Blocks until the VMM must exit; returns the process exit code.
    public func waitForExit() -> Int32 {
        exited.wait()
        return finalCode
    }

    public func request(_ command: VmmCommand) async -> Result<VmmResponse, VmmError> {
        // Ping never waits behind a long command: it needs nothing the loop owns.
        if case .ping = command { return .success(.ping(Self.ping)) }
        // Progress is read from a thread-safe store, so a long migration never delays it either.
        if case .migrationProgress = command { return progressResponse() }
        return await withCheckedContinuation { continuation in
            mailbox.post(.command(command, reply: { continuation.resume(returning: $0) }))
        }
    }

    /// Synchronous `request`, for threads that may block (the CLI's main thread).
    public func send(_ command: VmmCommand) -> Result<VmmResponse, VmmError> {
        let done = DispatchSemaphore(value: 0)
        let box = ResultBox()
        mailbox.post(.command(command, reply: { box.value = $0; done.signal() }))
        done.wait()
        return box.value!
    }

    /// Asks the VMM to stop because the process received `signal`.
    public func terminate(signal: Int32) { mailbox.post(.terminate(signal: signal)) }

    static let ping = VmmPingResponse(build_version: BuildInfo.version, version: BuildInfo.version,
                                      pid: Int64(getpid()), features: ["kvm", "dbus_api"])

    // MARK: the loop

    private func loop() -> Int32 {
        while exitCode == nil {
            switch mailbox.take() {
            case let .command(.receiveMigration(request), reply):
                receiveMigration(request, reply: reply)
            case let .command(command, reply):
                reply(handle(command))
            case let .migration(message):
                handle(message)
            case let .restoreVerified(result, gen) where gen == generation:
                restoreVerified(result)
            case let .vcpu(event, gen) where gen == generation:
                handle(event)
            case let .platformReset(gen) where gen == generation:
                logger.info("guest requested a reset: rebooting")
                _ = reboot()
            case let .platformShutdown(gen) where gen == generation:
                logger.info("guest powered off")
                teardown()
                state = .Shutdown
                events.emit("vm", "shutdown")
                if !keepRunningAfterGuestShutdown { exitCode = 0 }
            case let .terminate(signal):
                logger.info("received signal \(signal): shutting down")
                teardown()
                exitCode = 0
            default:
                break   // an event from a VM that no longer exists
            }
        }
        events.emit("vmm", "shutdown")
        console?.restoreTerminal()
        virtioConsole?.endpoint.restoreTerminal()
        return exitCode ?? 0
    }

    private func handle(_ event: VcpuEvent) {
        switch event {
        case let .tripleFault(vcpu):
            logger.info("vCPU \(vcpu) triple-faulted: resetting the VM")
            _ = reboot()
        case let .failed(vcpu, message):
            logger.error("vCPU \(vcpu): \(message)")
            writeError("vCPU \(vcpu) stopped: \(message)")
            teardown()
            state = .Shutdown
            exitCode = 1
        }
    }

    private func handle(_ command: VmmCommand) -> Result<VmmResponse, VmmError> {
        if let conflict = migrationConflict(command) { return .failure(conflict) }
        switch command {
        case .ping:
            return .success(.ping(Self.ping))
        case .migrationProgress:
            return progressResponse()
        case .cancelMigration:
            return cancelOutgoingMigration()
        case let .create(newConfig):
            guard config == nil else { return .failure(VmmError(.internalError, ["The VM could not be created", "VM is already created"])) }
            config = newConfig
            state = .Created
            return .success(.none)
        case .boot:
            return boot().map { .none }
        case .pause:
            guard let vm else { return .failure(notRunning("The VM could not be paused", to: .Paused)) }
            guard state == .Running else { return .failure(.invalidTransition("The VM could not be paused", from: state, to: .Paused)) }
            events.emit("vm", "pausing")
            vm.pause()
            state = .Paused
            events.emit("vm", "paused")
            return .success(.none)
        case .resume:
            guard let vm else { return .failure(notRunning("The VM could not resume", to: .Running)) }
            guard state == .Paused else { return .failure(.invalidTransition("The VM could not resume", from: state, to: .Running)) }
            if let memoryMismatch {
                return .failure(VmmError(.internalError, ["The VM could not resume",
                                                          "Its memory does not match the snapshot it was restored from: \(memoryMismatch)"]))
            }
            events.emit("vm", "resuming")
            vm.resume()
            state = .Running
            events.emit("vm", "resumed")
            return .success(.none)
        case .shutdown:
            guard vm != nil else { return .failure(notRunning("The VM could not shut down", to: .Shutdown)) }
            teardown()
            state = .Created
            events.emit("vm", "shutdown")
            return .success(.none)
        case .reboot:
            guard vm != nil else { return .failure(notRunning("The VM could not reboot", to: .Running)) }
            return reboot().map { .none }
        case .powerButton:
            guard let vm, state == .Running else { return .failure(notRunning("Error triggering power button", to: .Running)) }
            vm.pressPowerButton()
            return .success(.none)
        case .nmi:
            guard let vm, state == .Running || state == .Paused else { return .failure(notRunning("Error triggering NMI", to: .Running)) }
            do { try vm.injectNMI() } catch { return .failure(VmmError(.internalError, ["Error triggering NMI", "\(error)"])) }
            return .success(.none)
        case .delete:
            if vm != nil { teardown(); events.emit("vm", "shutdown") }
            if config != nil { events.emit("vm", "deleted") }
            config = nil
            state = .Created
            return .success(.none)
        case .info:
            guard let config else { return .failure(.vmNotCreated("The VM information could not be retrieved")) }
            return .success(.info(VmInfo(config: config, state: state,
                                         memory_actual_size: vm?.memory.size ?? config.memory.size,
                                         device_tree: vm?.deviceTree ?? [:])))
        case .counters:
            guard config != nil else { return .failure(.vmNotCreated("The VM counters could not be retrieved")) }
            return .success(.counters(vm?.counters ?? [:]))
        case .shutdownVmm:
            teardown()
            exitCode = 0
            return .success(.none)
        case let .addDevice(device):
            return addDevice(device)
        case .removeDevice:
            guard config != nil else { return .failure(.vmNotCreated("The device could not be removed")) }
            return .failure(VmmError(.notFound, ["The device could not be removed", "No device with this id"]))
        case let .snapshot(request):
            return snapshot(request)
        case let .restore(request):
            return restore(request)
        case .coredump:
            return .failure(.notSupported("The VM could not be coredumped", "Guest coredump"))
        case let .sendMigration(request):
            return sendMigration(request)
        case .receiveMigration:
            preconditionFailure("the loop answers receive-migration itself, when the VM has arrived")
        case .resize:
            return .failure(.notSupported("The VM could not be resized", "Resizing"))
        case .resizeZone:
            return .failure(.notSupported("The memory zone could not be resized", "Memory zones"))
        case .resizeDisk:
            return .failure(.notSupported("The disk could not be resized", "Disk resizing"))
        }
    }

    private func snapshot(_ request: VmSnapshotConfig) -> Result<VmmResponse, VmmError> {
        let url = request.destination_url, durable = request.durable ?? true
        let operation = "The VM could not be snapshotted"
        guard let vm else { return .failure(notRunning(operation, to: .Paused)) }
        guard state == .Paused else {
            return .failure(VmmError(.internalError, [operation, "The VM must be paused first (it is \(state.rawValue))"]))
        }
        events.emit("vm", "snapshotting")
        do {
            let stats = try SnapshotOps.write(vm, to: url, durable: durable)
            logger.info("snapshot written to \(url)\(durable ? "" : " (not durable)"): \(stats)")
        } catch {
            return .failure(VmmError(.internalError, [operation, "\(error)"]))
        }
        events.emit("vm", "snapshotted")
        return .success(.none)
    }

    private func restore(_ request: RestoreConfig) -> Result<VmmResponse, VmmError> {
        let operation = "The VM could not be restored"
        guard config == nil, vm == nil else {
            return .failure(VmmError(.internalError, [operation, "A VM already exists: restore needs a VMM without a VM"]))
        }
        events.emit("vm", "restoring")
        do {
            let (reader, savedConfig) = try SnapshotOps.open(request.source_url)
            var config = savedConfig
            config.memory.prefault = request.prefault
            let ram = try Vm.makeMemory(for: config)
            let pending = try SnapshotOps.fillMemory(ram, from: reader, mode: request.memory_restore_mode,
                                                     prefault: request.prefault)
            try launch(config: config, origin: SnapshotOps.origin(reader, ram: ram), paused: !request.resume)
            self.config = config
            if let pending { verifyAfterRestore(pending) }
        } catch {
            teardown()
            state = .Created
            return .failure(VmmError(.internalError, [operation, "\(error)"]))
        }
        events.emit("vm", "restored")
        if request.resume { events.emit("vm", "resumed") }
        return .success(.none)
    }

    private func progressResponse() -> Result<VmmResponse, VmmError> {
        guard let progress = migrationProgress else {
            return .failure(VmmError(.notFound, ["The migration progress is not available", "No migration has run in this VMM"]))
        }
        return .success(.migrationProgress(progress))
    }

    /// The error for an operation that needs a built VM: 404 without a VM config, else a wrong-state 500.
    private func notRunning(_ operation: String, to target: VmState) -> VmmError {
        config == nil ? .vmNotCreated(operation) : .invalidTransition(operation, from: state, to: target)
    }

    /// Before boot a device is added to the config after the same checks as a boot (CH answers 204);
    /// hot-plug into a running VM is not built yet.
    private func addDevice(_ device: DeviceAddition) -> Result<VmmResponse, VmmError> {
        let operation = "The device could not be added"
        guard var updated = config else { return .failure(.vmNotCreated(operation)) }
        guard vm == nil else { return .failure(.notSupported(operation, "Device hot-plug")) }
        switch device {
        case let .disk(disk): updated.disks = (updated.disks ?? []) + [disk]
        case let .net(net): updated.net = (updated.net ?? []) + [net]
        case let .vsock(vsock):
            guard updated.vsock == nil else {
                return .failure(VmmError(.conflict, [operation, "The VM already has a vsock device"]))
            }
            updated.vsock = vsock
        default: return .failure(.notSupported(operation, "This device type"))
        }
        do {
            try updated.validate(maxVCPUsSupported: UInt32.max)
        } catch let e as ValidationError {
            return .failure(VmmError(e.isConflict ? .conflict : .badRequest, [operation, "\(e)"]))
        } catch {
            return .failure(VmmError(.badRequest, [operation, "\(error)"]))
        }
        config = updated
        return .success(.deviceAdded(nil))
    }

    private func boot() -> Result<Void, VmmError> {
        let operation = "The VM could not be booted"
        guard let created = config else { return .failure(.vmNotCreated(operation)) }
        guard vm == nil, state == .Created || state == .Shutdown else {
            return .failure(.invalidTransition(operation, from: state, to: .Running))
        }
        events.emit("vm", "booting")
        // As CH: generated device ids become part of the config (vm.info shows them; reboots keep them).
        let config = created.withGeneratedDeviceIdentities()
        self.config = config
        do {
            try launch(config: config, origin: .boot, paused: false)
            events.emit("vm", "booted")
            return .success(())
        } catch let error as VmError {
            state = .Created
            switch error {
            case let .invalidConfig(e):
                return .failure(VmmError(e.isConflict ? .conflict : .badRequest, [operation, "\(e)"]))
            case .unsupportedDevices:
                return .failure(VmmError(.badRequest, [operation, "\(error)"]))
            default:
                break
            }
            return .failure(VmmError(.internalError, [operation, "\(error)"]))
        } catch {
            state = .Created
            return .failure(VmmError(.internalError, [operation, "\(error)"]))
        }
    }

    /// Builds a VM from `config` (booting or restoring), attaches the console and starts its vCPUs.
    /// `replacingSource`: the VM arrives by live migration (see `Vm.init`).
    func launch(config: VmConfig, origin: Vm.Origin, paused: Bool, replacingSource: Bool = false) throws {
        run(try build(config: config, origin: origin, replacingSource: replacingSource), paused: paused)
    }

    /// Builds a VM from `config` with the console endpoints it needs, without starting it.
    func build(config: VmConfig, origin: Vm.Origin, replacingSource: Bool = false) throws -> Vm {
        generation += 1
        let gen = generation
        if console == nil || console?.mode != config.serial.mode {
            console = config.serial.mode == .Off ? nil : try ConsoleIO(config: config.serial)
            if let path = console?.path, config.serial.mode == .Pty { logger.notice("serial pty: \(path)") }
        }
        if config.console.mode == .Off {
            virtioConsole = nil
        } else if virtioConsole?.config != config.console {
            virtioConsole = (config.console, try ConsoleEndpoint(ConsoleIO.backend(config.console)))
            if let path = virtioConsole?.endpoint.path, config.console.mode == .Pty { logger.notice("virtio-console pty: \(path)") }
        }
        return try Vm(config: config, kvm: kvm, console: console, virtioConsole: virtioConsole?.endpoint,
                      platform: PlatformEvents(mailbox: mailbox, generation: gen), origin: origin,
                      replacingSource: replacingSource, logger: logger)
    }

    /// Attaches the console to `vm` (the latest built) and starts its vCPUs unless they were started
    /// already; it becomes this VMM's VM.
    func run(_ vm: Vm, paused: Bool) {
        console?.attach(vm.serialInput)
        startThreads(vm, paused: paused)
        self.vm = vm
        state = paused ? .Paused : .Running
    }

    /// Starts the vCPU threads of `vm` (the latest built), once; `paused`: they park before their first run.
    func startThreads(_ vm: Vm, paused: Bool) {
        guard !vm.isStarted else { return }
        let gen = generation
        let box = mailbox
        vm.start(paused: paused, logger: logger) { event in box.post(.vcpu(event, generation: gen)) }
    }

    private func reboot() -> Result<Void, VmmError> {
        events.emit("vm", "rebooting")
        teardown()
        state = .Created
        let result = boot()
        switch result {
        case .success: events.emit("vm", "rebooted")
        case let .failure(e):
            logger.error("reboot failed: \(e)")
            writeError("reboot failed: \(e)")
            exitCode = 1
        }
        return result
    }

    func teardown() {
        cancelMigrations()
        restoreVerification?.cancel()
        restoreVerification = nil
        memoryMismatch = nil
        console?.attach(nil)
        vm?.stop()
        vm = nil
        generation += 1
    }

    func writeError(_ text: String) {
        let line = "Error: \(text)\n"
        _ = line.withCString { Glibc.write(2, $0, strlen($0)) }
    }
}

private final class ResultBox: @unchecked Sendable {
    var value: Result<VmmResponse, VmmError>?
}

/// Routes a device's reset/shutdown request into the control loop, tagged with the VM it came from.
private final class PlatformEvents: VMControl, @unchecked Sendable {
    private let mailbox: Mailbox<Vmm.Message>
    private let generation: Int

    init(mailbox: Mailbox<Vmm.Message>, generation: Int) {
        self.mailbox = mailbox
        self.generation = generation
    }

    func requestReset() { mailbox.post(.platformReset(generation: generation)) }
    func requestShutdown() { mailbox.post(.platformShutdown(generation: generation)) }
}
