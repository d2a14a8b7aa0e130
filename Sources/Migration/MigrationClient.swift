import Foundation

/// The source's side of the protocol: each request is written whole, then its response is awaited, so
/// a destination that refuses anything stops the migration at that message.
public final class MigrationClient {
    private let connection: Connection
    /// Every byte written so far (headers, tables, pages, state).
    public private(set) var bytesSent: UInt64 = 0

    public init(connection: Connection) {
        self.connection = connection
    }

    public func start(flags: StartFlags = []) throws(MigrationError) {
        let payload = StartMessage.encode(flags: flags)
        try request(RequestHeader(.start, length: UInt64(payload.count), version: Limits.protocolVersion), payload)
    }

    /// The VmConfig as JSON.
    public func sendConfig(_ json: Data) throws(MigrationError) {
        try request(RequestHeader(.config, length: UInt64(json.count)), Array(json))
    }

    /// Page bytes for `ranges`, taken from `pages` (one buffer per range, same order and lengths).
    public func sendMemory(_ ranges: [PageRange], pages: [UnsafeRawBufferPointer]) throws(MigrationError) {
        let table = RangeTable.encode(ranges)
        try request(RequestHeader(.memory, length: UInt64(table.count)), table, pages: pages)
    }

    /// One zstd `frame` holding the bytes of `ranges`, in order (Start must have announced compression).
    public func sendCompressedMemory(_ ranges: [PageRange], frame: UnsafeRawBufferPointer) throws(MigrationError) {
        let payload = CompressedMemoryTable.encode(ranges, frameLength: frame.count)
        try request(RequestHeader(.memoryCompressed, length: UInt64(payload.count)), payload, pages: [frame])
    }

    public func sendZero(_ ranges: [PageRange]) throws(MigrationError) {
        let table = RangeTable.encode(ranges)
        try request(RequestHeader(.memoryZero, length: UInt64(table.count)), table)
    }

    /// Local migration: hands the destination `fds` (one per region, same order) instead of the pages.
    /// The fds stay open here: the destination gets duplicates, and this side's RAM stays mapped.
    public func sendMemoryFds(_ regions: [PageRange], fds: [Int32]) throws(MigrationError) {
        precondition(regions.count == fds.count)
        let payload = MemoryFdTable.encode(regions)
        let header = RequestHeader(.memoryFd, length: UInt64(payload.count))
        try connection.write(header.bytes, during: "sending \(header.command)")
        try connection.write(payload, passing: fds, during: "sending \(header.command)")
        bytesSent += UInt64(RequestHeader.size + payload.count)
        try awaitResponse(header.command)
    }

    /// Sends the state and asks the destination to start the VM (or keep it paused): both messages in one
    /// write, then both answers, so that the pause does not wait for a round trip in between. The Ok for
    /// Complete means the VM now lives there; a refused State is reported as such (the destination stops
    /// reading after an error, so its Complete is never acted on).
    public func finish(state sections: [StateSection], paused: Bool) throws(MigrationError) {
        let payload = try StatePayload.encode(sections)
        let state = RequestHeader(.state, length: UInt64(payload.count))
        let complete = RequestHeader(paused ? .completePaused : .complete, length: 0)
        do throws(MigrationError) {
            try connection.write(state.bytes + payload + complete.bytes, during: "sending \(state.command)")
        } catch {
            // A destination that refused the state and hung up may still have said why.
            try awaitResponse(state.command)
            throw error
        }
        bytesSent += UInt64(2 * RequestHeader.size + payload.count)
        try awaitResponse(state.command)
        try awaitResponse(complete.command)
    }

    /// Tells the destination to discard what it received. Best effort: the connection may be gone.
    public func abandon() {
        try? request(RequestHeader(.abandon, length: 0), [])
    }

    private func request(_ header: RequestHeader, _ payload: [UInt8],
                         pages: [UnsafeRawBufferPointer] = []) throws(MigrationError) {
        let command = header.command
        try connection.write(header.bytes + payload, then: pages, during: "sending \(command)")
        bytesSent += UInt64(RequestHeader.size + payload.count) + pages.reduce(0) { $0 + UInt64($1.count) }
        try awaitResponse(command)
    }

    /// Reads the answer to `command`; an Error response becomes `.refused` with the destination's reason.
    private func awaitResponse(_ command: Command) throws(MigrationError) {
        let response = try ResponseHeader(decoding: try connection.read(count: ResponseHeader.size,
                                                                         during: "waiting for the answer to \(command)"))
        guard response.status == .error else { return }
        let message = try connection.read(count: Int(response.length), during: "reading the destination's error for \(command)")
        throw .refused(command: command.description, reason: String(decoding: message, as: UTF8.self))
    }
}
