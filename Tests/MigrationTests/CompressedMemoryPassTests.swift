import Foundation
@testable import Migration
import TestSupport
import XCTest

/// The engine's first pass over synthetic memory that does compress (the checkguest's pages do not, by
/// design): three of every four 256 KiB stretches hold a 16-word cycle, the fourth random bytes. Plain and
/// zstd, over TCP loopback and over a link paced at 1 Gbit/s: the destination gets every byte either way,
/// and compressed, what crosses the link is well under half. Prints seconds and bytes (debug build: the
/// times mean little; the README's figures come from the 256 MiB version of this pass, `pages` raised).
final class CompressedMemoryPassTests: XCTestCase {
    private static let pages = 16384

    func testLowEntropyMemoryShrinksOnTheWire() throws {
        let source = SyntheticRAM([(base: 0, pages: Self.pages)])
        for stretch in stride(from: 0, to: Self.pages, by: 64) {
            if stretch / 64 % 4 == 3 {
                source.fillRandom(region: 0, page: stretch, count: 64)
            } else {
                for page in stretch..<stretch + 64 { source.fillCompressible(region: 0, page: page, seed: UInt64(stretch)) }
            }
        }
        let dir = try ScratchDirectory("zstd-pass")
        for link in ["tcp", "1gbit"] {
            var sent: [Bool: UInt64] = [:]
            for compressed in [false, true] {
                let destination = SyntheticRAM([(base: 0, pages: Self.pages)])
                let (seconds, bytes) = try firstPass(source, into: destination, compressed: compressed,
                                                     link: link, dir: dir, tag: "\(link)\(compressed)")
                XCTAssertEqual(source.bytes(region: 0), destination.bytes(region: 0), "\(link) compressed=\(compressed)")
                sent[compressed] = bytes
                print(String(format: "first pass over %@, %@: %.3f s, %.1f MB sent (%.2f of the page bytes)",
                             link, compressed ? "zstd" : "plain", seconds, Double(bytes) / 1e6,
                             Double(bytes) / Double(Self.pages * 4096)))
            }
            XCTAssertGreaterThan(sent[false] ?? 0, UInt64(Self.pages * 4096), "plain sends every page and its headers")
            XCTAssertLessThan(sent[true] ?? .max, (sent[false] ?? 0) / 2, "three quarters of the memory compress")
        }
    }

    /// Start, Config and one first pass, timed from Start to the last Ok.
    private func firstPass(_ source: SyntheticRAM, into destination: SyntheticRAM, compressed: Bool, link: String,
                           dir: ScratchDirectory, tag: String) throws -> (Double, UInt64) {
        let (destinationPath, slowPath) = (dir.file("d\(tag)"), dir.file("s\(tag)"))
        let listenURL: MigrationURL = link == "tcp" ? .tcp(host: "127.0.0.1", port: try freePort()) : .unix(path: destinationPath)
        let listener = try Listener(listenURL)
        var proxy: ThrottledProxy?
        if link != "tcp" { proxy = try ThrottledProxy(listen: slowPath, forwardTo: destinationPath, bytesPerSecond: 125_000_000) }
        let accepted = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var server: ServerThread?
        let sink = RecordingSink(ram: destination)
        Thread {
            if let connection = try? listener.accept() {
                server = ServerThread(MigrationServer(connection: connection, sink: sink))
            }
            accepted.signal()
        }.start()
        let begin = ContinuousClock.now
        let client = MigrationClient(connection: try Connection.connect(to: proxy == nil ? listenURL : .unix(path: slowPath)))
        let pipeline = compressed ? try CompressionPipeline(level: CompressionPipeline.defaultLevel) : nil
        try client.start(flags: compressed ? .compressedMemory : [])
        try client.sendConfig(Data("{}".utf8))
        let pass = MemoryPass(client: client, sendZeroRuns: false, compression: pipeline)
        try PageScanner.scan(source.regions[0], dirty: nil) { try pass.add($0) }
        try pass.finish()
        let elapsed = (ContinuousClock.now - begin).components
        let seconds = Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
        try client.finish(state: [], paused: false)
        XCTAssertEqual(accepted.wait(timeout: .now() + 10), .success)
        XCTAssertEqual(server?.result(), .success(false))
        withExtendedLifetime(proxy) {}
        return (seconds, client.bytesSent)
    }
}
