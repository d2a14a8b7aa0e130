import Synchronization

/// Per-disk I/O counters, as CH's vm.counters reports them. Written by the I/O threads, read from
/// any thread.
final class BlockCounters: Sendable {
    private let readBytes = Atomic<UInt64>(0)
    private let writeBytes = Atomic<UInt64>(0)
    private let readOps = Atomic<UInt64>(0)
    private let writeOps = Atomic<UInt64>(0)

    func countRead(_ bytes: Int) {
        readBytes.wrappingAdd(UInt64(bytes), ordering: .relaxed)
        readOps.wrappingAdd(1, ordering: .relaxed)
    }

    func countWrite(_ bytes: Int) {
        writeBytes.wrappingAdd(UInt64(bytes), ordering: .relaxed)
        writeOps.wrappingAdd(1, ordering: .relaxed)
    }

    var snapshot: [String: UInt64] {
        ["read_bytes": readBytes.load(ordering: .relaxed), "write_bytes": writeBytes.load(ordering: .relaxed),
         "read_ops": readOps.load(ordering: .relaxed), "write_ops": writeOps.load(ordering: .relaxed)]
    }
}
