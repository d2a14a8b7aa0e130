import Config
import Foundation
import Hypervisor
import Logging
import Memory
import Migration
import Synchronization

/// What an incoming migration hands to the control loop: everything needed to finish the VM.
struct MigrationArrival: @unchecked Sendable {
    let config: VmConfig
    let memory: GuestMemory
    let sections: [String: StateSection]
    /// The VM built while memory arrived (nil when that build failed or never started).
    let prebuilt: Vm?

    var section: Vm.SavedSection { { id in sections[id].map { ($0.version, $0.payload) } } }

    /// The restore origin: RAM is already filled, sections come from the stream.
    var origin: Vm.Origin { .restore(ram: memory, section: section) }
}

/// The VM a destination builds as soon as it knows the config and has the RAM, on the control loop,
/// while memory keeps arriving: `complete` then only applies the state. Filled once, by the control loop.
private final class Prebuild: @unchecked Sendable {
    private let result = Mutex<Result<Vm, VmmError>?>(nil)
    private let done = DispatchSemaphore(value: 0)

    func finish(_ outcome: Result<Vm, VmmError>) {
        result.withLock { $0 = outcome }
        done.signal()
    }

    /// Waits for the build and takes its VM.
    func take() throws -> Vm {
        try waitUntilBuilt()
        return try result.withLock { $0! }.get()
    }

    /// Waits for the build; throws its error.
    func waitUntilBuilt() throws {
        done.wait()
        done.signal()
        if case let .failure(error) = result.withLock({ $0! }) { throw error }
    }
}

/// The destination of a live migration: a worker thread that accepts one connection, writes RAM straight
/// into freshly mapped guest memory (or, in a local migration, maps the source's memfds), collects the
/// state, and asks the control loop to build the VM.
///
/// The VM is built paused; it is resumed only after the source was told Ok, so a source that never hears
/// back keeps its VM and this half-built one is discarded.
final class IncomingMigration: MigrationSink, @unchecked Sendable {
    private let listener: Listener
    private let kvm: KVM
    private let logger: Logger
    private let store: MigrationProgressStore
    /// Asks the control loop to build a VM, paused and without state, around RAM that is still arriving.
    private let prepare: @Sendable (IncomingMigration, VmConfig, GuestMemory, @escaping @Sendable (Result<Vm, VmmError>) -> Void) -> Void
    /// Asks the control loop to finish the VM (state in, vCPU threads started, paused).
    private let build: @Sendable (IncomingMigration, MigrationArrival) -> Result<Vm, VmmError>
    private let onEnd: @Sendable (IncomingMigration, Result<Bool, MigrationError>) -> Void
    private let events: EventMonitor
    private let cancelReason = Mutex<String?>(nil)
    private let connection = Mutex<Connection?>(nil)
    /// Worker thread only.
    private var progress: MigrationProgress
    private var config: VmConfig?
    private var memory: GuestMemory?
    private var sections: [String: StateSection] = [:]
    private var prebuild: Prebuild?
    /// The finished VM, paused until the source has its Ok.
    private var arrived: Vm?
    private let started = ContinuousClock.now

    init(listener: Listener, kvm: KVM, logger: Logger, events: EventMonitor, store: MigrationProgressStore,
         prepare: @escaping @Sendable (IncomingMigration, VmConfig, GuestMemory, @escaping @Sendable (Result<Vm, VmmError>) -> Void) -> Void,
         build: @escaping @Sendable (IncomingMigration, MigrationArrival) -> Result<Vm, VmmError>,
         onEnd: @escaping @Sendable (IncomingMigration, Result<Bool, MigrationError>) -> Void) {
        self.listener = listener
        self.kvm = kvm
        self.logger = logger
        self.events = events
        self.store = store
        self.prepare = prepare
        self.build = build
        self.onEnd = onEnd
        progress = MigrationProgress(role: .destination, phase: .connecting, url: listener.url.description)
        store.set(progress)
    }

    func start() {
        let thread = Thread { [self] in self.run() }
        thread.name = "migration-receive"
        thread.start()
    }

    /// Wakes the worker wherever it blocks (accept, read); it then reports the failure. Does not wait.
    func cancel(_ reason: String) {
        cancelReason.withLock { if $0 == nil { $0 = reason } }
        listener.close()
        connection.withLock { $0?.shutdown() }
    }

    private func run() {
        let result: Result<Bool, MigrationError>
        do {
            let link = try listener.accept()
            listener.close()
            connection.withLock { $0 = link }
            if let reason = cancelReason.withLock({ $0 }) { throw MigrationError.cancelled(reason) }
            logger.info("receiving a migration on \(listener.url)")
            update { $0.phase = .memory }
            let server = MigrationServer(connection: link, sink: self)
            server.onMessage = { [unowned self] _, bytes in self.update { $0.transferred_bytes = bytes } }
            let paused = try server.run()
            // The source has its Ok and lets go of the guest: run it here at once (the control loop, told
            // below, only records the new state; no request can touch the VM while a receive is on).
            let okAt = ContinuousClock.now
            let released = paused ? okAt : arrived?.resume() ?? okAt
            let resumedAt = Date().addingTimeInterval(-(ContinuousClock.now - released).seconds)
            let resumeMs = OutgoingMigration.milliseconds(released - okAt)
            update {
                $0.phase = .completed
                $0.transferred_bytes = server.bytesReceived
            }
            logger.info("migration received on \(listener.url): \(server.bytesReceived) bytes in \(Int(progress.elapsed_ms)) ms; resumed \(String(format: "%.2f", resumeMs)) ms after the Ok")
            events.emit("vm", "migration-received", [
                "receiver_url": listener.url.description, "total_ms": String(Int(progress.elapsed_ms)),
                "transferred_bytes": String(server.bytesReceived), "paused": String(paused),
                "resumed_after_ok_ms": String(format: "%.3f", resumeMs),
                "resumed_at_us": String(Int64(resumedAt.timeIntervalSince1970 * 1e6)),
            ])
            result = .success(paused)
        } catch {
            let failure = cancelReason.withLock { $0 }.map { MigrationError.cancelled($0) }
                ?? (error as? MigrationError) ?? .failed("\(error)")
            logger.error("receiving a migration on \(listener.url) failed: \(failure)")
            events.emit("vm", "migration-failed", ["receiver_url": listener.url.description, "error": failure.description])
            update {
                $0.phase = .failed
                $0.error = failure.description
            }
            result = .failure(failure)
        }
        // Drop the RAM we hold before reporting: a failed receive must not keep hundreds of MiB mapped.
        memory = nil
        sections = [:]
        prebuild = nil
        arrived = nil
        onEnd(self, result)
    }

    // MARK: MigrationSink

    func configure(_ json: Data, local: Bool) throws -> [MigrationRegion] {
        let received: VmConfig
        do {
            received = try JSONDecoder().decode(VmConfig.self, from: json)
        } catch {
            throw StateError(component: "Config", reason: "not a valid VmConfig: \(error)")
        }
        try received.validate(maxVCPUsSupported: UInt32(max(kvm.checkExtension(KVM_CAP_MAX_VCPUS), 1)))
        config = received
        update { $0.memory_bytes = received.memory.size }
        guard !local else {
            guard received.memory.shared else {
                throw StateError(component: "Config", reason: "a local migration needs a VM with --memory shared=on")
            }
            return []
        }
        let ram = try Vm.makeMemory(for: received)
        memory = ram
        startPrebuild()
        return ram.regions.map { MigrationRegion(guestBase: $0.guestBase, size: $0.size, host: $0.host) }
    }

    /// Maps the source's memfds as this VM's RAM: the same pages, so nothing was copied. The layout must be
    /// exactly the one the Config's memory size gives, region for region.
    func adoptMemory(_ regions: [PageRange], fds: [Int32]) throws {
        let layout = config.map { GuestLayout.ramRegions(size: $0.memory.size) } ?? []
        guard let config, regions.map({ [$0.gpa, $0.length] }) == layout.map({ [$0.base, $0.size] }) else {
            fds.forEach { close($0) }
            let sent = regions.map { "0x\(String($0.gpa, radix: 16))+0x\(String($0.length, radix: 16))" }
            let expected = layout.map { "0x\(String($0.base, radix: 16))+0x\(String($0.size, radix: 16))" }
            throw StateError(component: "MemoryFd", reason: "the memory fds describe RAM \(sent) but the configuration's is \(expected)")
        }
        memory = try GuestMemory(mapping: fds, layout: layout, hugepages: config.memory.hugepages)
        // The source pauses its guest as soon as this is answered: answer once the VM stands, so that the
        // pause only pays for the state (a failed build is refused here, before any pause).
        startPrebuild()
        try prebuild?.waitUntilBuilt()
    }

    /// Has the control loop build the VM now, around the RAM being filled (or the source's, mapped): KVM
    /// only maps it, and nothing writes it before the state is applied after the source's pause.
    private func startPrebuild() {
        guard let config, let memory else { return }
        let pending = Prebuild()
        prebuild = pending
        prepare(self, config, memory) { pending.finish($0) }
    }

    func receivedState(_ sections: [StateSection]) throws {
        self.sections = Dictionary(uniqueKeysWithValues: sections.map { ($0.id, $0) })
    }

    func complete() throws {
        guard let config, let memory else { throw StateError(component: "Complete", reason: "no VM configuration was received") }
        update { $0.phase = .completing }
        let begin = ContinuousClock.now
        let vm = try prebuild?.take()
        prebuild = nil
        arrived = try build(self, MigrationArrival(config: config, memory: memory, sections: sections, prebuilt: vm)).get()
        logger.info("migration: the VM was finished in \(String(format: "%.2f", OutgoingMigration.milliseconds(ContinuousClock.now - begin))) ms")
    }

    private func update(_ change: (inout MigrationProgress) -> Void) {
        change(&progress)
        progress.elapsed_ms = OutgoingMigration.milliseconds(ContinuousClock.now - started)
        store.set(progress)
    }
}
