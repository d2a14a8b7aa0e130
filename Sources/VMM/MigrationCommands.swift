import Config
import Foundation
import Memory
import Migration
import Synchronization
import Zstd

/// What migration workers tell the control loop, which alone builds, resumes and tears down VMs.
enum MigrationMessage {
    /// The outgoing migration ended; on success the VM now runs on the destination.
    case sent(OutgoingMigration, Result<MigrationProgress, MigrationError>)
    /// An incoming migration knows the config and has the RAM: build the VM (without state, not started).
    case prepare(IncomingMigration, VmConfig, GuestMemory, reply: @Sendable (Result<Vm, VmmError>) -> Void)
    /// An incoming migration has everything: finish the VM (state in, paused), and answer with it.
    case arrived(IncomingMigration, MigrationArrival, reply: @Sendable (Result<Vm, VmmError>) -> Void)
    /// The incoming migration ended: the worker has resumed the VM (false: the source asked to keep it
    /// paused), or it failed and the VM is discarded.
    case received(IncomingMigration, Result<Bool, MigrationError>)
}

/// The control loop's migration bookkeeping (loop thread only).
struct MigrationSlots {
    var outgoing: OutgoingMigration?
    var incoming: IncomingMigration?
    /// The pending `vm.receive-migration` request: CH answers it only once the VM has arrived.
    var incomingReply: (@Sendable (Result<VmmResponse, VmmError>) -> Void)?

    var busy: Bool { outgoing != nil || incoming != nil }
}

extension Vmm {
    /// `vm.send-migration`: starts the worker and answers at once (CH v53+); the outcome comes as events.
    func sendMigration(_ request: SendMigrationData) -> Result<VmmResponse, VmmError> {
        let operation = "The VM could not be migrated"
        guard let vm, state == .Running || state == .Paused else {
            return .failure(config == nil ? .vmNotCreated(operation)
                                          : VmmError(.internalError, [operation, "The VM is not running (it is \(state.rawValue))"]))
        }
        if request.memory_mode == .Postcopy { return .failure(.notSupported(operation, "Post-copy migration")) }
        if request.tls_dir != nil { return .failure(.notSupported(operation, "Migration over TLS")) }
        let url: MigrationURL
        do {
            url = try MigrationURL(request.destination_url)
        } catch {
            return .failure(VmmError(.badRequest, [operation, "\(error)"]))
        }
        if let why = request.compressionConflict { return .failure(VmmError(.badRequest, [operation, why])) }
        if request.local, let why = LocalMigration.refusal(url: url, memory: vm.memory) {
            return .failure(VmmError(.badRequest, [operation, why]))
        }
        if let level = request.compression_level, !Zstd.levels.contains(level) {
            return .failure(VmmError(.badRequest, [operation, "compression_level \(level) is outside zstd's \(Zstd.levels.lowerBound)…\(Zstd.levels.upperBound)"]))
        }
        if request.connections > 1 {
            logger.notice("send-migration: connections=\(request.connections) requested; this VMM migrates over one connection")
        }
        let box = mailbox
        let worker = OutgoingMigration(vm: vm, request: request, url: url, events: events, logger: logger,
                                       store: migrationProgressStore) { worker, result in
            box.post(.migration(.sent(worker, result)))
        }
        migrations.outgoing = worker
        worker.start()
        return .success(.none)
    }

    /// `vm.receive-migration`: listens now (so a bad URL fails at once) and answers `reply` when the VM has
    /// arrived and runs, or the receive failed; the loop keeps serving other requests meanwhile.
    func receiveMigration(_ request: ReceiveMigrationData, reply: @escaping @Sendable (Result<VmmResponse, VmmError>) -> Void) {
        let operation = "The VM could not receive a migration"
        if let conflict = migrationConflict(.receiveMigration(request)) { return reply(.failure(conflict)) }
        guard vm == nil, config == nil else {
            return reply(.failure(VmmError(.internalError, [operation, "A VM already exists: receiving a migration needs a VMM without a VM"])))
        }
        if request.memory_mode == .Postcopy { return reply(.failure(.notSupported(operation, "Post-copy migration"))) }
        if request.tls_dir != nil { return reply(.failure(.notSupported(operation, "Migration over TLS"))) }
        let listener: Listener
        do {
            listener = try Listener(try MigrationURL(request.receiver_url))
        } catch {
            return reply(.failure(VmmError(.internalError, [operation, "\(error)"])))
        }
        let box = mailbox
        let worker = IncomingMigration(listener: listener, kvm: kvm, logger: logger, events: events, store: migrationProgressStore,
            prepare: { worker, config, memory, reply in box.post(.migration(.prepare(worker, config, memory, reply: reply))) },
            build: { worker, arrival in
                let answer = Mutex<Result<Vm, VmmError>?>(nil)
                let done = DispatchSemaphore(value: 0)
                box.post(.migration(.arrived(worker, arrival, reply: { result in
                    answer.withLock { $0 = result }
                    done.signal()
                })))
                done.wait()
                return answer.withLock { $0! }
            },
            onEnd: { worker, result in box.post(.migration(.received(worker, result))) })
        migrations.incoming = worker
        migrations.incomingReply = reply
        worker.start()
    }

    func handle(_ message: MigrationMessage) {
        switch message {
        case let .sent(worker, result):
            guard migrations.outgoing === worker else { return }
            migrations.outgoing = nil
            guard case .success = result else { return }
            // As CH: the VM now runs on the destination, and this VMM exits.
            teardown()
            state = .Shutdown
            exitCode = 0
        case let .prepare(worker, config, memory, reply):
            guard migrations.incoming === worker, vm == nil else {
                return reply(.failure(VmmError(.internalError, ["The VM could not receive a migration", "the receive was cancelled"])))
            }
            do {
                // The vCPU threads too: they park before their first run, and cost nothing in the pause then.
                let vm = try build(config: config, origin: .incoming(ram: memory), replacingSource: true)
                startThreads(vm, paused: true)
                vm.warmUpStateRestore()
                reply(.success(vm))
            } catch {
                reply(.failure(VmmError(.internalError, ["The VM could not receive a migration", "\(error)"])))
            }
        case let .arrived(worker, arrival, reply):
            guard migrations.incoming === worker, vm == nil else {
                return reply(.failure(VmmError(.internalError, ["The VM could not receive a migration", "the receive was cancelled"])))
            }
            do {
                let built: Vm
                if let prebuilt = arrival.prebuilt, prebuilt.hasDevices(for: Set(arrival.sections.keys)) {
                    try prebuilt.applyState(arrival.section)
                    built = prebuilt
                } else {
                    built = try build(config: arrival.config, origin: arrival.origin, replacingSource: true)
                }
                run(built, paused: true)
                config = arrival.config
                reply(.success(built))
            } catch {
                state = .Created
                reply(.failure(VmmError(.internalError, ["The VM could not receive a migration", "\(error)"])))
            }
        case let .received(worker, result):
            guard migrations.incoming === worker else { return }
            let answer = migrations.incomingReply
            migrations.incoming = nil
            migrations.incomingReply = nil
            switch result {
            case let .success(keepPaused):
                if !keepPaused, vm != nil { state = .Running }
                answer?(.success(.none))
            case let .failure(error):
                if vm != nil { teardown() }
                config = nil
                state = .Created
                answer?(.failure(VmmError(.internalError, ["The VM could not receive a migration", error.description])))
            }
        }
    }

    /// While a migration runs, only requests that cannot disturb it are served (CH refuses the rest too).
    func migrationConflict(_ command: VmmCommand) -> VmmError? {
        guard migrations.busy else { return nil }
        switch command {
        case .ping, .info, .counters, .nmi, .powerButton, .shutdownVmm, .migrationProgress, .cancelMigration:
            return nil
        default:
            let what = migrations.outgoing != nil ? "The VM is being migrated" : "A migration is being received"
            return VmmError(.internalError, ["The request could not be carried out", "\(what): wait until it has finished or failed"])
        }
    }

    /// `vm.cancel-migration`: makes the outgoing worker give up and waits for it. The worker's outcome still
    /// arrives through the mailbox: if the migration completed before the cancel took effect, that success
    /// is handled as usual (the VM has moved and this VMM exits), so the guest never runs on both sides.
    func cancelOutgoingMigration() -> Result<VmmResponse, VmmError> {
        guard let worker = migrations.outgoing else {
            return .failure(VmmError(.internalError, ["The migration could not be cancelled", "No outgoing migration is in progress"]))
        }
        worker.cancel("cancelled by vm.cancel-migration")
        return .success(.none)
    }

    /// Stops any migration before the VM goes away (a guest reset or power-off, a vCPU failure, VMM shutdown).
    /// An outgoing migration has put the VM back as it was when this returns.
    func cancelMigrations() {
        if let worker = migrations.outgoing {
            migrations.outgoing = nil
            worker.cancel("the VM is being torn down (guest reset or power-off, vCPU failure or VMM shutdown)")
        }
        if let worker = migrations.incoming {
            migrations.incoming = nil
            worker.cancel("the VMM is shutting down")
            migrations.incomingReply?(.failure(VmmError(.internalError, ["The VM could not receive a migration", "the VMM is shutting down"])))
            migrations.incomingReply = nil
        }
    }
}
