import Foundation
import Glibc
import Zstd

/// What the destination does with a migration stream: where RAM goes, and how the VM is built.
public protocol MigrationSink: AnyObject {
    /// The source's VmConfig (JSON). Returns the zero-filled RAM that memory messages are written into; in a
    /// local migration (`local`) RAM comes as memory fds instead, so nothing is mapped and this returns [].
    func configure(_ config: Data, local: Bool) throws -> [MigrationRegion]
    /// Local migration: maps the source's RAM from `fds` (fd i backs `regions[i]`), after checking the
    /// layout against the Config. Owns the fds from the call on, whether it throws or not.
    func adoptMemory(_ regions: [PageRange], fds: [Int32]) throws
    /// Every component's saved state; kept until `complete`.
    func receivedState(_ sections: [StateSection]) throws
    /// Builds the VM (left paused). Throwing refuses Complete, so the source keeps running its VM.
    func complete() throws
}

/// The destination's side of the protocol: a state machine that checks every message before acting on
/// it. Any violation is answered with an Error response naming it, then the connection is dropped.
///
/// Order: Start → Config → (Memory | MemoryZero | MemoryCompressed)* → State → Complete | CompletePaused; Abandon at any
/// point. Memory is read straight into guest RAM after its ranges were checked against the layout (and
/// MemoryCompressed decompressed straight into it, when Start announced compression). A
/// local migration (announced in Start) has exactly one MemoryFd instead of the memory messages.
public final class MigrationServer {
    private let connection: Connection
    private let sink: MigrationSink
    private var regions: [MigrationRegion]?
    private var haveState = false
    /// Start announced a local migration: RAM comes as memory fds, once, and never as pages.
    private var local = false
    private var adoptedMemory = false
    /// Start announced compression: MemoryCompressed is allowed.
    private var compressed = false
    /// Made at the first MemoryCompressed, reused for the rest.
    private var decompressor: ZstdDecompressor?
    /// Holds one MemoryCompressed frame while it is decompressed into guest RAM; grows to the largest frame.
    private var frame: UnsafeMutableRawBufferPointer?
    /// Every byte read so far.
    public private(set) var bytesReceived: UInt64 = 0
    /// Called after each message that moved the migration on (for progress reporting).
    public var onMessage: ((Command, UInt64) -> Void)?

    public init(connection: Connection, sink: MigrationSink) {
        self.connection = connection
        self.sink = sink
    }

    deinit { frame?.deallocate() }

    /// Runs the protocol to its end. Returns whether the source asked for the VM to stay paused; the
    /// VM must only be resumed by the caller after this returns (the Ok for Complete was delivered).
    public func run() throws(MigrationError) -> Bool {
        do throws(MigrationError) {
            let first = try readHeader()
            guard first.command == .start else {
                throw MigrationError.protocolViolation("the first message must be Start, got \(first.command)")
            }
            let flags = try StartMessage.check(version: first.version, payload: try readPayload(first))
            local = flags.contains(.localMemory)
            compressed = flags.contains(.compressedMemory)
            try respondOk()
            while true {
                let header = try readHeader()
                if let paused = try handle(header) { return paused }
                onMessage?(header.command, bytesReceived)
            }
        } catch {
            respondError(error)
            throw error
        }
    }

    /// Carries out one message after Start; returns the paused flag once the migration is complete.
    private func handle(_ header: RequestHeader) throws(MigrationError) -> Bool? {
        switch header.command {
        case .start:
            throw .protocolViolation("Start may only be sent once")
        case .config:
            guard regions == nil else { throw .protocolViolation("Config may only be sent once") }
            let json = try readPayload(header)
            regions = try sinkCall("the VM configuration was not accepted") { try sink.configure(Data(json), local: local) }
        case .memoryCompressed:
            guard compressed else {
                throw .protocolViolation("MemoryCompressed in a migration whose Start did not announce compressed memory")
            }
            let (ranges, frameLength) = try CompressedMemoryTable.decode(try readPayload(header))
            try receiveCompressed(into: try memoryTargets(header.command, ranges), frameLength: frameLength)
        case .memory, .memoryZero:
            let targets = try memoryTargets(header.command, try RangeTable.decode(try readPayload(header)))
            for target in targets {
                if header.command == .memory {
                    try connection.read(into: target, during: "receiving guest memory")
                    bytesReceived += UInt64(target.count)
                } else {
                    Self.zero(target)
                }
            }
        case .state:
            guard regions != nil, !haveState else { throw .protocolViolation("State must follow Config, once") }
            guard !local || adoptedMemory else { throw .protocolViolation("State before MemoryFd in a local migration") }
            let sections = try StatePayload.decode(try readPayload(header))
            try sinkCall("the VM state was not accepted") { try sink.receivedState(sections) }
            haveState = true
        case .complete, .completePaused:
            guard haveState else { throw .protocolViolation("\(header.command) before State") }
            try sinkCall("the VM could not be started here") { try sink.complete() }
            try respondOk()
            return header.command == .completePaused
        case .abandon:
            try respondOk()
            throw .cancelled("the source abandoned the migration")
        case .memoryFd:
            guard local else {
                throw .protocolViolation("MemoryFd in a migration whose Start did not announce local memory")
            }
            guard regions != nil, !adoptedMemory, !haveState else {
                throw .protocolViolation("MemoryFd is only allowed once, between Config and State")
            }
            try adoptMemory(header)
        }
        try respondOk()
        return nil
    }

    /// Where `ranges` of a memory message are in guest RAM, once the message is allowed here and every range
    /// lies inside one RAM region.
    private func memoryTargets(_ command: Command, _ ranges: [PageRange]) throws(MigrationError) -> [UnsafeMutableRawBufferPointer] {
        guard !local else {
            throw .protocolViolation("\(command) in a local migration: Start announced the RAM as memory fds")
        }
        guard let regions, !haveState else {
            throw .protocolViolation("\(command) is only allowed between Config and State")
        }
        return try ranges.map { (range) throws(MigrationError) in
            guard let bytes = regions.hostBytes(for: range) else {
                throw .protocolViolation("\(command) range 0x\(String(range.gpa, radix: 16))+0x\(String(range.length, radix: 16)) is not inside this VM's RAM")
            }
            return bytes
        }
    }

    /// Reads one zstd frame and decompresses it straight into `targets`; a frame that is corrupt or does not
    /// fill them exactly is refused (the pages it did write are discarded with the rest of the VM).
    private func receiveCompressed(into targets: [UnsafeMutableRawBufferPointer], frameLength: Int) throws(MigrationError) {
        if (frame?.count ?? 0) < frameLength {
            frame?.deallocate()
            frame = .allocate(byteCount: frameLength, alignment: 64)
        }
        let buffer = UnsafeMutableRawBufferPointer(rebasing: frame![0..<frameLength])
        try connection.read(into: buffer, during: "receiving compressed guest memory")
        bytesReceived += UInt64(frameLength)
        if decompressor == nil {
            do { decompressor = try ZstdDecompressor() } catch { throw .failed("\(error)") }
        }
        if let problem = decompressor!.decompress(UnsafeRawBufferPointer(buffer), into: targets) {
            let pages = targets.reduce(0) { $0 + $1.count }
            throw .protocolViolation("MemoryCompressed frame of \(frameLength) bytes for \(pages) bytes of pages: \(problem)")
        }
    }

    /// Receives the memory fds and hands them to the sink, once their table is well-formed and there is
    /// exactly one fd per region; any fd not handed over is closed here.
    private func adoptMemory(_ header: RequestHeader) throws(MigrationError) {
        let (payload, fds) = try connection.read(count: Int(header.length), receivingUpTo: Limits.maxMemoryFds,
                                                 during: "receiving \(header.command)")
        bytesReceived += header.length
        let ranges: [PageRange]
        do throws(MigrationError) {
            ranges = try MemoryFdTable.decode(payload)
            guard fds.count == ranges.count else {
                throw .protocolViolation("MemoryFd announces \(ranges.count) regions but \(fds.count) file descriptors came with it")
            }
        } catch {
            fds.forEach { close($0) }
            throw error
        }
        try sinkCall("the memory fds were not accepted") { try sink.adoptMemory(ranges, fds: fds) }
        adoptedMemory = true
    }

    /// Makes a range read as zero, writing only pages that are not zero already (fresh RAM stays unpopulated).
    private static func zero(_ target: UnsafeMutableRawBufferPointer) {
        let page = Int(Limits.pageSize)
        for offset in stride(from: 0, to: target.count, by: page) where !isZeroPage(target.baseAddress! + offset) {
            memset(target.baseAddress! + offset, 0, page)
        }
    }

    private func sinkCall<T>(_ what: String, _ body: () throws -> T) throws(MigrationError) -> T {
        do {
            return try body()
        } catch {
            throw .failed("\(what): \(error)")
        }
    }

    private func readHeader() throws(MigrationError) -> RequestHeader {
        let raw = try connection.read(count: RequestHeader.size, during: "waiting for the next message")
        bytesReceived += UInt64(RequestHeader.size)
        return try RequestHeader(decoding: raw)
    }

    private func readPayload(_ header: RequestHeader) throws(MigrationError) -> [UInt8] {
        let payload = try connection.read(count: Int(header.length), during: "receiving \(header.command)")
        bytesReceived += header.length
        return payload
    }

    private func respondOk() throws(MigrationError) {
        try connection.write(ResponseHeader(.ok).bytes, during: "acknowledging")
    }

    /// Tells the source why we stop (best effort: the connection may already be gone).
    private func respondError(_ error: MigrationError) {
        if case .connectionLost = error { return }
        if case .timedOut = error { return }
        if case .cancelled = error { return }
        let message = Array(error.description.utf8.prefix(Int(Limits.maxErrorBytes)))
        try? connection.write(ResponseHeader(.error, length: UInt64(message.count)).bytes + message, during: "reporting an error")
    }
}
