#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// On-demand restore: maps version-2 raw runs copy-on-write from `memory.bin` into guest memory instead of
/// reading them, so a restored guest can run before its incompressible memory has been read, and records
/// each mapped run so that its checksum can be verified afterwards (`OnDemandMemory.verify`).
///
/// A run is mapped only when that is possible and cheap to undo: whole pages at a page-aligned host
/// address, and within a budget of mappings (every mapping is a VMA, and a process may only have
/// `vm.max_map_count` of them). Everything else is read and verified as in a copying restore.
final class RawRunMapper: @unchecked Sendable {
    struct MappedRun: Sendable {
        let place: SnapshotPlace
        let fileOffset: UInt64
        let bytes: Int
        let checksum: UInt64
    }

    private let monitor = Monitor()
    private let populate: Bool
    private var budget: Int
    private var mapped: [MappedRun] = []

    /// `populate`: read the mapped pages in now (a restore with `prefault`).
    init(populate: Bool, budget: Int = RawRunMapper.defaultBudget) {
        self.populate = populate
        self.budget = budget
    }

    /// Half the process's VMA limit: each mapped run splits the guest's anonymous mapping, and the rest of
    /// the process (threads, allocator) needs mappings too.
    static var defaultBudget: Int {
        let text = (try? String(contentsOfFile: "/proc/sys/vm/max_map_count", encoding: .utf8)) ?? ""
        return (Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 65530) / 2
    }

    /// Maps `run` at `destination`; false when it must be read instead.
    func map(_ run: MappedRun, from file: SnapshotFileIO, into destination: UnsafeMutableRawPointer) throws -> Bool {
        let page = SnapshotFormat.pageSize
        guard run.bytes % page == 0, Int(bitPattern: destination) % page == 0, run.fileOffset % UInt64(page) == 0,
              takeFromBudget() else { return false }
        try file.mapPrivate(offset: run.fileOffset, length: run.bytes, at: destination, populate: populate)
        monitor.locked { mapped.append(run) }
        return true
    }

    private func takeFromBudget() -> Bool {
        monitor.locked {
            guard budget > 0 else { return false }
            budget -= 1
            return true
        }
    }

    /// The mapped runs in file order (so that verification reports the first damaged one).
    var runs: [MappedRun] {
        monitor.locked { mapped.sorted { $0.fileOffset < $1.fileOffset } }
    }
}
