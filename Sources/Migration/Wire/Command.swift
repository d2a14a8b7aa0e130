/// A request's command. 1–8 keep Cloud Hypervisor's numbers and meanings; this VMM's own commands
/// start at 0x100 so that new CH commands never collide with them.
public enum Command: UInt16, Sendable, CaseIterable, CustomStringConvertible {
    case start = 1
    case config = 2
    case state = 3
    case memory = 4
    case complete = 5
    case abandon = 6
    case memoryFd = 7
    case completePaused = 8
    /// Ranges that must read as zero on the destination (a table, no page bytes).
    case memoryZero = 0x100
    /// A range table and one zstd frame of those ranges' bytes (only after Start announced compression).
    case memoryCompressed = 0x101

    public var description: String {
        switch self {
        case .start: return "Start"
        case .config: return "Config"
        case .state: return "State"
        case .memory: return "Memory"
        case .complete: return "Complete"
        case .abandon: return "Abandon"
        case .memoryFd: return "MemoryFd"
        case .completePaused: return "CompletePaused"
        case .memoryZero: return "MemoryZero"
        case .memoryCompressed: return "MemoryCompressed"
        }
    }

    /// The lengths a request with this command may declare: anything else is refused before a byte of
    /// payload is read, so a confused peer cannot make the receiver allocate or wait for gigabytes.
    var allowedLengths: ClosedRange<UInt64> {
        switch self {
        case .start: return 0...UInt64(StartMessage.size)   // 0: a Cloud Hypervisor source (refused by name)
        case .config: return 1...Limits.maxConfigBytes
        case .state: return 4...Limits.maxStateBytes
        case .memory, .memoryZero: return UInt64(RangeTable.entrySize)...Limits.maxRangeTableBytes
        case .memoryFd: return MemoryFdTable.allowedLengths
        case .memoryCompressed: return CompressedMemoryTable.allowedLengths
        case .complete, .completePaused, .abandon: return 0...0
        }
    }
}

/// Protocol constants and bounds.
public enum Limits {
    /// This VMM's protocol version, carried in the Start header. Version 2 sends State payloads in the
    /// binary state encoding; the destination reads either encoding, so it still accepts version 1 sources.
    public static let protocolVersion: UInt16 = 2
    /// The oldest source protocol version a destination accepts.
    public static let oldestProtocolVersion: UInt16 = 1
    /// Guest pages are 4 KiB; every memory range is a whole number of pages.
    public static let pageSize: UInt64 = 4096
    /// The VmConfig JSON (the REST API accepts bodies up to 4 MiB too).
    public static let maxConfigBytes: UInt64 = 4 << 20
    /// All sections of a VM's state together.
    public static let maxStateBytes: UInt64 = 64 << 20
    /// One Memory or MemoryZero table: 65 536 ranges.
    public static let maxRangeTableBytes: UInt64 = 1 << 20
    /// The page bytes one MemoryCompressed frame may decompress to (the source batches 8 MiB): its frame,
    /// which the destination buffers whole, is smaller still.
    public static let maxCompressedBatchBytes: UInt64 = 32 << 20
    /// Memory fds in one MemoryFd message (one per RAM region; SCM_RIGHTS takes up to 253).
    public static let maxMemoryFds = 16
    /// The message of an error response.
    public static let maxErrorBytes: UInt64 = 64 << 10
}
