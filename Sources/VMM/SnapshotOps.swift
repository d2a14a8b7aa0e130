import Config
import Foundation
import Memory
import Snapshot

/// `vm.snapshot` and `vm.restore`: a VM's config, every component's versioned state and its guest RAM
/// in the snapshot container (snapshots/FORMAT.md).
enum SnapshotOps {
    /// zstd level for guest memory: level 1 is ≈ 1.5 GB/s per core here, and higher levels cost far more
    /// time than they save in size on guest memory.
    static let compressionLevel: Int32 = 1

    /// `file:///dir` → the directory (the only scheme CH accepts for snapshots).
    static func directory(from url: String) throws -> URL {
        guard let parsed = URL(string: url), parsed.scheme == "file", !parsed.path.isEmpty else {
            throw StateError(component: "destination_url", reason: "'\(url)' is not a file:///path URL")
        }
        return URL(fileURLWithPath: parsed.path, isDirectory: true)
    }

    /// Writes a paused VM. `durable`: when this returns, the snapshot survives a host crash. Nothing is left
    /// under a final file name if any step fails.
    static func write(_ vm: Vm, to url: String, durable: Bool) throws -> MemoryStats {
        let dir = try directory(from: url)
        let writer = try SnapshotWriter(directory: dir, durable: durable)
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try writer.writeConfig(try encoder.encode(vm.config))
            for state in try vm.captureState() {
                try writer.addSection(id: state.id, type: state.type, version: state.version, payload: state.payload)
            }
            let ranges = vm.memory.regions.map {
                (guestAddress: $0.guestBase, bytes: UnsafeRawBufferPointer(start: $0.host, count: Int($0.size)))
            }
            let stats = try writer.writeMemory(ranges: ranges, compression: .zstd(level: compressionLevel))
            try writer.finish()
            return stats
        } catch {
            writer.abandon()
            throw error
        }
    }

    /// Opens a snapshot and checks it against its own config before anything is built.
    static func open(_ url: String) throws -> (SnapshotReader, VmConfig) {
        let reader = try SnapshotReader(directory: try directory(from: url))
        let config: VmConfig
        do {
            config = try JSONDecoder().decode(VmConfig.self, from: reader.config)
        } catch {
            throw StateError(component: SnapshotFormat.configFileName, reason: "not a valid VmConfig: \(error)")
        }
        let vcpuSections = reader.sections.filter { $0.type == VcpuComponent.sectionType }.map(\.id)
        let expected = (0..<config.cpus.boot_vcpus).map { "vcpu-\($0)" }
        if Set(vcpuSections) != Set(expected) {
            throw StateError(component: SnapshotFormat.stateFileName,
                             reason: "has vCPU sections [\(vcpuSections.sorted().joined(separator: ", "))] but \(SnapshotFormat.configFileName) has boot_vcpus=\(config.cpus.boot_vcpus)")
        }
        let total = reader.memoryRanges.reduce(0) { $0 + $1.size }
        if total != config.memory.size {
            throw StateError(component: SnapshotFormat.memoryFileName,
                             reason: "holds \(total) bytes of RAM but \(SnapshotFormat.configFileName) has memory.size=\(config.memory.size)")
        }
        return (reader, config)
    }

    /// Fills freshly mapped guest RAM from the snapshot, before any VM exists. `copy` reads and verifies
    /// everything now; `ondemand` maps the incompressible runs of a version-2 snapshot instead of reading
    /// them and returns what must still be verified once the guest runs (nil when nothing was mapped).
    static func fillMemory(_ memory: GuestMemory, from reader: SnapshotReader, mode: MemoryRestoreMode,
                           prefault: Bool) throws -> OnDemandMemory? {
        let ranges = memory.regions.map {
            (guestAddress: $0.guestBase, bytes: UnsafeMutableRawBufferPointer(start: $0.host, count: Int($0.size)))
        }
        switch mode {
        case .Copy:
            try reader.restoreMemory(into: ranges)
            return nil
        case .OnDemand:
            guard !memory.options.shared, !memory.options.hugepages else {
                throw StateError(component: "memory_restore_mode", reason:
                    "ondemand maps snapshot pages copy-on-write into private guest memory; this VM has shared=on or hugepages=on memory: restore it with memory_restore_mode=copy")
            }
            let restored = try reader.restoreMemoryOnDemand(into: ranges, populate: prefault)
            return restored.stats.mappedRuns > 0 ? restored : nil
        }
    }

    /// The restore origin for `Vm`: RAM already filled, sections from the state file.
    static func origin(_ reader: SnapshotReader, ram: GuestMemory) -> Vm.Origin {
        .restore(ram: ram, section: { id in reader.section(id: id).map { ($0.version, $0.payload) } })
    }
}
