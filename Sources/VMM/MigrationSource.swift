import Config
import Foundation
import Logging
import Migration
import Synchronization

/// The source of a live migration: a worker thread that does pre-copy over one blocking connection while
/// the guest keeps running, then pauses it for the last dirty pages and the device/vCPU state.
///
/// Whatever goes wrong, the VM stays here and keeps running (resumed if this worker paused it, never left
/// throttled by auto-converge), dirty logging is switched off, and the error is logged and emitted as
/// `migration-failed`.
final class OutgoingMigration: @unchecked Sendable {
    /// Dirty passes before giving up on convergence (then `timeout_strategy` decides, as on a timeout):
    /// a guest that dirties memory faster than the link carries it would otherwise never finish.
    static let maxIterations = 30

    private let vm: Vm
    private let request: SendMigrationData
    private let url: MigrationURL
    private let events: EventMonitor
    private let logger: Logger
    private let store: MigrationProgressStore
    private let onEnd: @Sendable (OutgoingMigration, Result<MigrationProgress, MigrationError>) -> Void
    private let cancelReason = Mutex<String?>(nil)
    private let connection = Mutex<Connection?>(nil)
    private let finished = DispatchSemaphore(value: 0)
    /// Worker thread only.
    private var progress: MigrationProgress
    private var pausedAt: Date?
    private let started = ContinuousClock.now
    /// Time spent reading and re-arming the dirty log, over all passes (worker thread only): what the
    /// choice of dirty-log mechanism costs the migration thread.
    private var collection = (passes: 0, totalMs: 0.0, maxMs: 0.0)

    init(vm: Vm, request: SendMigrationData, url: MigrationURL, events: EventMonitor, logger: Logger,
         store: MigrationProgressStore,
         onEnd: @escaping @Sendable (OutgoingMigration, Result<MigrationProgress, MigrationError>) -> Void) {
        self.vm = vm
        self.request = request
        self.url = url
        self.events = events
        self.logger = logger
        self.store = store
        self.onEnd = onEnd
        progress = MigrationProgress(role: .source, phase: .connecting, url: url.description)
        progress.memory_bytes = vm.memory.size
        progress.downtime_limit_ms = request.downtime_ms
        store.set(progress)
    }

    func start() {
        let thread = Thread { [self] in
            self.run()
            self.finished.signal()
        }
        thread.name = "migration-send"
        thread.start()
    }

    /// Stops the worker and waits until it has put the VM back as it was. Call once, from the control loop.
    func cancel(_ reason: String) {
        cancelReason.withLock { if $0 == nil { $0 = reason } }
        connection.withLock { $0?.shutdown() }
        finished.wait()
    }

    private func run() {
        let wasPaused = vm.isPaused
        var pausedHere = false
        var logging = false
        var client: MigrationClient?
        events.emit("vm", "migration-started", ["destination_url": url.description,
                                                 "downtime_ms": String(request.downtime_ms),
                                                 "memory_bytes": String(vm.memory.size),
                                                 "auto_converge": String(request.auto_converge),
                                                 "compression": request.compression.rawValue,
                                                 "local": String(request.local)])
        logger.info("migration to \(url) started")
        do {
            let link = try Connection.connect(to: url)
            connection.withLock { $0 = link }
            try checkCancelled()
            let session = MigrationClient(connection: link)
            client = session
            // Made before Start, so that a context that cannot be allocated fails before the destination waits.
            let compression = request.compression == .zstd
                ? try CompressionPipeline(level: request.compression_level ?? CompressionPipeline.defaultLevel) : nil
            defer { if let compression { logCompression(compression) } }
            try session.start(flags: request.local ? .localMemory : compression != nil ? .compressedMemory : [])
            try session.sendConfig(try Self.configJSON(vm.config))
            vm.warmUpStateCapture()
            // Local: no pre-copy, the RAM itself is handed over while the guest runs (the destination maps it
            // and builds its VM around it, but writes it only after its Ok).
            var lastDirty: [[UInt64]]?
            if request.local {
                try LocalMigration.sendMemory(vm.memory, over: session)
            } else {
                try vm.setDirtyLogging(true)
                logging = true
                lastDirty = try precopy(session, compression: compression)
            }

            update { $0.phase = .completing }
            // Downtime starts with the first vCPU kicked, and ends with the destination's Ok.
            var steps = DowntimeSteps()
            pausedAt = steps.wallClockStart
            if !wasPaused {
                vm.pause()
                pausedHere = true
            }
            // Nothing left to hold back, and the throttle must not outlive the migration.
            vm.setThrottle(percent: 0)
            steps.mark("pause")
            if let lastDirty {
                let final = try takeDirtyLog()
                let merged = zip(lastDirty, final).map { zip($0, $1).map { $0 | $1 } }
                _ = try sendPass(session, dirty: merged, compression: compression)
                steps.mark("last memory")
            }
            let sections = try vm.captureState().map {
                StateSection(id: $0.id, type: $0.type, version: $0.version, payload: $0.payload)
            }
            steps.mark("state capture")
            try session.finish(state: sections, paused: wasPaused)
            steps.mark("state sent, destination finished its VM, Ok")
            let downtime = steps.totalMs
            logger.info("migration downtime \(String(format: "%.2f", downtime)) ms: \(steps)")
            update {
                $0.phase = .completed
                $0.downtime_ms = downtime
                $0.transferred_bytes = session.bytesSent
            }
            finish(.success(progress))
        } catch {
            let failure = cancelReason.withLock { $0 }.map { MigrationError.cancelled($0) }
                ?? (error as? MigrationError) ?? .failed("\(error)")
            // The guest first: it must not stay paused or throttled while we clean up or talk to the peer.
            vm.setThrottle(percent: 0)
            if pausedHere { vm.resume() }
            if logging { try? vm.setDirtyLogging(false) }
            if case .failed = failure { client?.abandon() }
            update {
                $0.phase = .failed
                $0.error = failure.description
            }
            finish(.failure(failure))
        }
    }

    /// The first full pass, then dirty passes until the rest fits the downtime target, throttling the
    /// vCPUs when auto-converge says so. Returns the dirty bitmaps not yet sent (the final phase sends them
    /// with what is dirtied until the pause).
    private func precopy(_ session: MigrationClient, compression: CompressionPipeline?) throws -> [[UInt64]] {
        let convergence = Convergence(downtimeLimitMs: request.downtime_ms, maxIterations: Self.maxIterations,
                                      timeoutSeconds: request.timeout_s)
        var autoConverge = request.auto_converge ? AutoConverge() : nil
        var meter = BandwidthMeter()
        update { $0.phase = .memory }
        var lastLog = ContinuousClock.now
        var lastPass = try sendPass(session, dirty: nil, compression: compression)
        meter.record(lastPass)
        var iteration = 0
        while true {
            let dirty = try takeDirtyLog()
            let now = ContinuousClock.now
            let pending = UInt64(dirty.reduce(0) { $0 + PageScanner.count($1) }) * Limits.pageSize
            let estimate = Convergence.estimatedDowntimeMs(pendingBytes: pending, bytesPerSecond: meter.bytesPerSecond)
            update {
                $0.dirty_pages = Int(pending / Limits.pageSize)
                $0.dirty_rate_bytes_per_s = Double(pending) / max(Self.milliseconds(now - lastLog) / 1000, 1e-6)
                $0.bandwidth_bytes_per_s = meter.bytesPerSecond
                $0.estimated_downtime_ms = estimate
            }
            lastLog = now
            switch convergence.decide(pendingBytes: pending, bytesPerSecond: meter.bytesPerSecond, iteration: iteration,
                                      elapsedSeconds: Self.milliseconds(now - started) / 1000, previousBytes: lastPass.bytes) {
            case .converged:
                return dirty
            case let .exhausted(why):
                guard request.timeout_strategy == .Ignore else {
                    throw MigrationError.failed("the migration did not converge: \(why) (timeout_strategy=Cancel: the VM keeps running here)")
                }
                logger.warning("migration: \(why); timeout_strategy=Ignore: completing with a longer downtime")
                return dirty
            case .iterate:
                iteration += 1
                if let percent = autoConverge?.record(dirtiedBytes: pending, sentBytes: lastPass.bytes) {
                    vm.setThrottle(percent: percent)
                    logger.info("migration: \(pending) bytes dirtied while \(lastPass.bytes) were sent; auto-converge throttles the vCPUs to \(percent) %")
                    update { $0.throttle_percent = percent }
                }
                update { $0.phase = .iterating; $0.iteration = iteration }
                lastPass = try sendPass(session, dirty: dirty, compression: compression)
                meter.record(lastPass)
                events.emit("vm", "migration-memory-iteration", [
                    "iteration": String(iteration), "dirty_pages": String(progress.dirty_pages),
                    "bandwidth_bytes_per_s": String(Int(meter.bytesPerSecond)),
                    "estimated_downtime_ms": String(format: "%.1f", estimate),
                    "throttle_percent": String(progress.throttle_percent),
                ])
            }
        }
    }

    /// Sends the selected pages of every region (all of them when `dirty` is nil); returns the page
    /// bytes sent and the pass's duration for the bandwidth estimate.
    private func sendPass(_ session: MigrationClient, dirty: [[UInt64]]?,
                          compression: CompressionPipeline?) throws(MigrationError) -> (bytes: UInt64, seconds: Double) {
        let begin = ContinuousClock.now
        let pass = MemoryPass(client: session, sendZeroRuns: dirty != nil, compression: compression)
        for (index, region) in vm.memory.regions.enumerated() {
            let target = MigrationRegion(guestBase: region.guestBase, size: region.size, host: region.host)
            try PageScanner.scan(target, dirty: dirty?[index]) { (run) throws(MigrationError) in try pass.add(run) }
            try checkCancelled()
        }
        try pass.finish()
        update {
            $0.data_pages += pass.stats.dataPages
            $0.zero_pages += pass.stats.zeroPages
            $0.transferred_bytes = session.bytesSent
        }
        return (UInt64(pass.stats.dataPages) * Limits.pageSize, Self.milliseconds(ContinuousClock.now - begin) / 1000)
    }

    private func takeDirtyLog() throws -> [[UInt64]] {
        let begin = ContinuousClock.now
        let dirty = try vm.takeDirtyLog()
        let ms = Self.milliseconds(ContinuousClock.now - begin)
        collection = (collection.passes + 1, collection.totalMs + ms, max(collection.maxMs, ms))
        return dirty
    }

    /// How well the pages compressed (the scripts and the README's figures read this line).
    private func logCompression(_ pipeline: CompressionPipeline) {
        let s = pipeline.stats
        let ratio = s.sentBytes > 0 ? Double(s.pageBytes) / Double(s.sentBytes) : 1
        logger.info("migration compression: \(s.pageBytes) page bytes sent as \(s.sentBytes) (ratio \(String(format: "%.2f", ratio))), \(s.compressedBatches) batches compressed, \(s.plainBatches) plain")
    }

    private func checkCancelled() throws(MigrationError) {
        if let reason = cancelReason.withLock({ $0 }) { throw .cancelled(reason) }
    }

    private func update(_ change: (inout MigrationProgress) -> Void) {
        change(&progress)
        progress.elapsed_ms = Self.milliseconds(ContinuousClock.now - started)
        store.set(progress)
    }

    private func finish(_ result: Result<MigrationProgress, MigrationError>) {
        update { _ in }
        switch result {
        case let .success(p):
            let line = "migration to \(url) finished: total \(Int(p.elapsed_ms)) ms, downtime \(String(format: "%.1f", p.downtime_ms ?? 0)) ms, \(p.transferred_bytes) bytes, \(p.iteration) dirty passes"
            logger.info("\(line)")
            logger.info("migration: dirty log collected \(collection.passes) times in \(String(format: "%.2f", collection.totalMs)) ms, longest \(String(format: "%.2f", collection.maxMs)) ms")
            events.emit("vm", "migration-finished", [
                "destination_url": url.description, "total_ms": String(Int(p.elapsed_ms)),
                "downtime_ms": String(format: "%.1f", p.downtime_ms ?? 0), "transferred_bytes": String(p.transferred_bytes),
                "iterations": String(p.iteration), "data_pages": String(p.data_pages), "zero_pages": String(p.zero_pages),
                "throttle_percent": String(p.throttle_percent),
                "paused_at_us": String(Int64((pausedAt?.timeIntervalSince1970 ?? 0) * 1e6)),
            ])
        case let .failure(error):
            logger.error("migration to \(url) failed: \(error)")
            events.emit("vm", "migration-failed", ["destination_url": url.description, "error": error.description])
        }
        onEnd(self, result)
    }

    static func configJSON(_ config: VmConfig) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(config)
    }

    static func milliseconds(_ d: Duration) -> Double { d.seconds * 1000 }
}

/// Where the downtime went, step by step (logged with each finished migration).
struct DowntimeSteps: CustomStringConvertible {
    /// Wall-clock time of the pause, for comparing with the destination's `resumed_at_us` (same host, or
    /// synchronized clocks).
    let wallClockStart = Date()
    private let start = ContinuousClock.now
    private var last = ContinuousClock.now
    private var steps: [(String, Double)] = []

    mutating func mark(_ step: String) {
        let now = ContinuousClock.now
        steps.append((step, OutgoingMigration.milliseconds(now - last)))
        last = now
    }

    var totalMs: Double { OutgoingMigration.milliseconds(last - start) }

    var description: String {
        steps.map { "\($0.0) \(String(format: "%.2f", $0.1))" }.joined(separator: ", ")
    }
}

extension BandwidthMeter {
    mutating func record(_ pass: (bytes: UInt64, seconds: Double)) {
        record(bytes: pass.bytes, seconds: pass.seconds)
    }
}
