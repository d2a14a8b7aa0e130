import ArgumentParser
import Foundation
import Snapshot
#if canImport(Glibc)
import Glibc
#endif

/// Measures the format on synthetic guest memory: snapshot time and size, restore time into freshly
/// mapped memory (page faults included, as in a real restore), verify time. Medians of `--runs`.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmark snapshot write, restore and verify on synthetic guest memory.")

    @Option(help: "Guest memory size (e.g. 256M, 1G).")
    var size = "256M"

    @Option(help: "Memory contents: \(SyntheticGuestMemory.Profile.allCases.map(\.rawValue).joined(separator: ", ")).")
    var profile = "guest-like"

    @Option(help: "zstd level, or 'none' to store pages uncompressed.")
    var level = "1"

    @Option(help: "Comma-separated thread counts to measure.")
    var threads = "1,2"

    @Option(help: "Chunk sizes to measure, comma-separated (e.g. 1M,2M,4M).")
    var chunkSize = "4M"

    @Option(help: "Runs per configuration (median and best are printed: other load only slows a run down).")
    var runs = 3

    @Option(help: "Where to create the temporary snapshot directories.")
    var dir = NSTemporaryDirectory()

    @Flag(inversion: .prefixedNo, help: "fsync the snapshot files (as the VMM does by default).")
    var durable = true

    @Flag(help: "madvise(MADV_HUGEPAGE) the restore target, as a VMM may for guest RAM (fewer page faults).")
    var hugepages = false

    @Option(help: "Only write the synthetic memory to this file (to compare with e.g. `zstd -b1 FILE`).")
    var dump: String?

    func run() throws {
        guard let total = parseSize(size), total > 0 else { throw ValidationError("bad --size \(size)") }
        guard let kind = SyntheticGuestMemory.Profile(rawValue: profile) else { throw ValidationError("bad --profile") }
        let compression: MemoryCompression = level == "none" ? .none : .zstd(level: Int32(level) ?? 1)
        let threadCounts = threads.split(separator: ",").compactMap { Int($0) }
        let chunkSizes = chunkSize.split(separator: ",").compactMap { parseSize(String($0)) }

        let source = try Mapping(count: total)
        SyntheticGuestMemory.fill(source.buffer, profile: kind, seed: 42)
        if let dump {
            try Data(bytesNoCopy: source.buffer.baseAddress!, count: total, deallocator: .none)
                .write(to: URL(fileURLWithPath: dump))
            return
        }
        print("bench: \(bytes(UInt64(total))) \(kind.rawValue) memory, \(compression), "
              + (durable ? "fsync" : "no fsync") + ", median of \(runs)")
        print("threads  chunk    stat    snapshot_s  snap_MB/s  snap_cpu_s  size_MiB  ratio  restore_s  rest_MB/s  rest_cpu_s  verify_s")
        for chunk in chunkSizes {
            for count in threadCounts {
                var results: [Result] = []
                for run in 0..<runs { results.append(try once(source: source, compression: compression, threads: count,
                                                               chunkSize: chunk, check: run == 0)) }
                let mb = Double(total) / 1e6
                for (name, m) in [("median", Result.median(results)), ("best", Result.best(results))] {
                    print(String(format: "%-8d %-8@ %-7@ %-11.3f %-10.0f %-11.3f %-9.1f %-6.2f %-10.3f %-10.0f %-11.3f %.3f",
                                 count, bytes(UInt64(chunk)).components(separatedBy: " (").first!, name, m.snapshot,
                                 mb / m.snapshot, m.snapshotCPU, Double(m.size) / 1048576, Double(total) / Double(m.size),
                                 m.restore, mb / m.restore, m.restoreCPU, m.verify))
                }
            }
        }
    }

    /// Wall seconds, and CPU seconds of the whole process (all threads, user + system): the CPU figure
    /// does not depend on what else the machine is doing.
    struct Result {
        var snapshot: Double, snapshotCPU: Double, size: UInt64, restore: Double, restoreCPU: Double, verify: Double

        static func median(_ all: [Result]) -> Result { combine(all) { $0.sorted()[$0.count / 2] } }
        static func best(_ all: [Result]) -> Result { combine(all) { $0.min()! } }

        private static func combine(_ all: [Result], _ pick: ([Double]) -> Double) -> Result {
            Result(snapshot: pick(all.map(\.snapshot)), snapshotCPU: pick(all.map(\.snapshotCPU)), size: all[0].size,
                   restore: pick(all.map(\.restore)), restoreCPU: pick(all.map(\.restoreCPU)),
                   verify: pick(all.map(\.verify)))
        }
    }

    private static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    private func once(source: Mapping, compression: MemoryCompression, threads: Int, chunkSize: Int,
                      check: Bool) throws -> Result {
        let directory = URL(fileURLWithPath: dir).appendingPathComponent("ch-snapshot-bench-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        let start = Date(), startCPU = Self.cpuSeconds()
        let writer = try SnapshotWriter(directory: directory, durable: durable)
        try writer.writeConfig(Data("{}".utf8))
        try writer.addSection(id: "vm", type: "bench", version: 1, payload: Data(count: 4096))
        let stats = try writer.writeMemory(ranges: [(guestAddress: 0, bytes: UnsafeRawBufferPointer(source.buffer))],
                                           compression: compression, threads: threads, chunkSize: chunkSize)
        try writer.finish()
        let snapshot = Date().timeIntervalSince(start), snapshotCPU = Self.cpuSeconds() - startCPU

        let target = try Mapping(count: source.buffer.count, hugepages: hugepages)
        let restoreStart = Date(), restoreStartCPU = Self.cpuSeconds()
        let reader = try SnapshotReader(directory: directory)
        try reader.restoreMemory(threads: threads) { _ in target.buffer }
        let restore = Date().timeIntervalSince(restoreStart), restoreCPU = Self.cpuSeconds() - restoreStartCPU
        if check, memcmp(source.buffer.baseAddress!, target.buffer.baseAddress!, source.buffer.count) != 0 {
            throw ValidationError("restored memory differs from the source")
        }
        let verifyStart = Date()
        try reader.verifyAll(threads: threads)
        return Result(snapshot: snapshot, snapshotCPU: snapshotCPU, size: stats.bytesOut, restore: restore,
                      restoreCPU: restoreCPU, verify: Date().timeIntervalSince(verifyStart))
    }
}

/// Anonymous memory, as a VMM maps guest RAM (zero pages cost nothing until touched).
final class Mapping {
    let buffer: UnsafeMutableRawBufferPointer

    init(count: Int, hugepages: Bool = false) throws {
        let p = mmap(nil, count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let p, p != MAP_FAILED else { throw ValidationError("mmap of \(count) bytes failed") }
        if hugepages { madvise(p, count, 14 /* MADV_HUGEPAGE */) }
        buffer = UnsafeMutableRawBufferPointer(start: p, count: count)
    }

    deinit { munmap(buffer.baseAddress, buffer.count) }
}
