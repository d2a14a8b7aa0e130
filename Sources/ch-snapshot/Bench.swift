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
    var chunkSize = "2M"

    @Option(help: "Runs per configuration (median and best are printed: other load only slows a run down).")
    var runs = 3

    @Option(help: "Where to create the temporary snapshot directories.")
    var dir = NSTemporaryDirectory()

    @Flag(inversion: .prefixedNo, help: "fsync the snapshot files (as the VMM does by default).")
    var durable = true

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
        print("threads  chunk    stat    snapshot_s  snap_MB/s  size_MiB  ratio  restore_s  rest_MB/s  verify_s")
        for chunk in chunkSizes {
            for count in threadCounts {
                var results: [Result] = []
                for run in 0..<runs { results.append(try once(source: source, compression: compression, threads: count,
                                                               chunkSize: chunk, check: run == 0)) }
                let mb = Double(total) / 1e6
                for (name, m) in [("median", Result.median(results)), ("best", Result.best(results))] {
                    print(String(format: "%-8d %-8@ %-7@ %-11.3f %-10.0f %-9.1f %-6.2f %-10.3f %-10.0f %.3f", count,
                                 bytes(UInt64(chunk)).components(separatedBy: " (").first!, name, m.snapshot,
                                 mb / m.snapshot, Double(m.size) / 1048576, Double(total) / Double(m.size), m.restore,
                                 mb / m.restore, m.verify))
                }
            }
        }
    }

    struct Result {
        var snapshot: Double, size: UInt64, restore: Double, verify: Double

        static func median(_ all: [Result]) -> Result {
            func mid(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
            return Result(snapshot: mid(all.map(\.snapshot)), size: all[0].size, restore: mid(all.map(\.restore)),
                          verify: mid(all.map(\.verify)))
        }

        static func best(_ all: [Result]) -> Result {
            Result(snapshot: all.map(\.snapshot).min()!, size: all[0].size, restore: all.map(\.restore).min()!,
                   verify: all.map(\.verify).min()!)
        }
    }

    private func once(source: Mapping, compression: MemoryCompression, threads: Int, chunkSize: Int,
                      check: Bool) throws -> Result {
        let directory = URL(fileURLWithPath: dir).appendingPathComponent("ch-snapshot-bench-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        let start = Date()
        let writer = try SnapshotWriter(directory: directory, durable: durable)
        try writer.writeConfig(Data("{}".utf8))
        try writer.addSection(id: "vm", type: "bench", version: 1, payload: Data(count: 4096))
        let stats = try writer.writeMemory(ranges: [(guestAddress: 0, bytes: UnsafeRawBufferPointer(source.buffer))],
                                           compression: compression, threads: threads, chunkSize: chunkSize)
        try writer.finish()
        let snapshot = Date().timeIntervalSince(start)

        let target = try Mapping(count: source.buffer.count)
        let restoreStart = Date()
        let reader = try SnapshotReader(directory: directory)
        try reader.restoreMemory(threads: threads) { _ in target.buffer }
        let restore = Date().timeIntervalSince(restoreStart)
        if check, memcmp(source.buffer.baseAddress!, target.buffer.baseAddress!, source.buffer.count) != 0 {
            throw ValidationError("restored memory differs from the source")
        }
        let verifyStart = Date()
        try reader.verifyAll(threads: threads)
        return Result(snapshot: snapshot, size: stats.bytesOut, restore: restore,
                      verify: Date().timeIntervalSince(verifyStart))
    }
}

/// Anonymous memory, as a VMM maps guest RAM (zero pages cost nothing until touched).
final class Mapping {
    let buffer: UnsafeMutableRawBufferPointer

    init(count: Int) throws {
        let p = mmap(nil, count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let p, p != MAP_FAILED else { throw ValidationError("mmap of \(count) bytes failed") }
        buffer = UnsafeMutableRawBufferPointer(start: p, count: count)
    }

    deinit { munmap(buffer.baseAddress, buffer.count) }
}
