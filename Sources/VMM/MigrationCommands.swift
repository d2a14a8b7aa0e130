import Config
import Foundation
import Migration
import Synchronization
import Zstd

/// What migration workers tell the control loop, which alone builds, resumes and tears down VMs.
enum MigrationMessage {
    /// The outgoing migration ended; on success the VM now runs on the destination.
    case sent(OutgoingMigration, Result<MigrationProgress, MigrationError>)
    /// An incoming migration has everything: build the VM, paused, and answer (nil: built).
    case arrived(IncomingMigration, MigrationArrival, reply: @Sendable (VmmError?) -> Void)
    /// The incoming migration ended: resume the VM (false: the source asked to keep it paused) or discard it.
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
        let worker = IncomingMigration(listener: listener, kvm: kvm, logger: logger, store: migrationProgressStore,
            build: { worker, arrival in
                let answer = Mutex<VmmError?>(nil)
                let done = DispatchSemaphore(value: 0)
                box.post(.migration(.arrived(worker, arrival, reply: { error in
                    answer.withLock { $0 = error }
                    done.signal()
                })))
                done.wait()
                return answer.withLock { $0 }
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
        case let .arrived(worker, arrival, reply):
            guard migrations.incoming === worker, vm == nil else {
                return reply(VmmError(.internalError, ["The VM could not receive a migration", "the receive was cancelled"]))
            }
            do {
                try launch(config: arrival.config, origin: arrival.origin, paused: true, replacingSource: true)
                config = arrival.config
                reply(nil)
            } catch {
                state = .Created
                reply(VmmError(.internalError, ["The VM could not receive a migration", "\(error)"]))
            }
        case let .received(worker, result):
            guard migrations.incoming === worker else { return }
            let answer = migrations.incomingReply
            migrations.incoming = nil
            migrations.incomingReply = nil
            switch result {
            case let .success(keepPaused):
                if !keepPaused, let vm {
                    vm.resume()
                    state = .Running
                }
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
