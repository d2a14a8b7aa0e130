import Foundation
import Glibc
@testable import Virtio

/// Wraps an image so a test can hold its I/O in flight: while closed, every operation waits at the gate
/// (before touching the image). Records when operations start and end, and how many waited at once.
final class GatedDisk: BlockBackend, @unchecked Sendable {
    private let disk: any BlockBackend
    private let cond = NSCondition()
    private var isOpen: Bool
    private var waitingNow = 0
    private var events: [String] = []

    init(_ disk: any BlockBackend, open: Bool = false) {
        self.disk = disk
        isOpen = open
    }

    func open() { cond.withLock { isOpen = true; cond.broadcast() } }
    func close() { cond.withLock { isOpen = false } }

    /// "read", "write", "flush", … as each started, and "… done" as each ended.
    var log: [String] { cond.withLock { events } }

    /// Waits (up to 5 s) until `count` operations wait at the gate at once.
    func waitHeld(_ count: Int) -> Bool {
        let deadline = Date().addingTimeInterval(5)
        cond.lock()
        defer { cond.unlock() }
        while waitingNow < count { guard cond.wait(until: deadline) else { return waitingNow >= count } }
        return true
    }

    private func gated(_ name: String, _ operation: () throws(DiskIOError) -> Void) throws(DiskIOError) {
        cond.lock()
        events.append(name)
        waitingNow += 1
        cond.broadcast()
        while !isOpen { cond.wait() }
        waitingNow -= 1
        cond.unlock()
        defer { cond.withLock { events.append("\(name) done") } }
        try operation()
    }

    func read(into iovecs: [iovec], at offset: UInt64) throws(DiskIOError) {
        try gated("read") { () throws(DiskIOError) in try disk.read(into: iovecs, at: offset) }
    }

    func write(from iovecs: [iovec], at offset: UInt64) throws(DiskIOError) {
        try gated("write") { () throws(DiskIOError) in try disk.write(from: iovecs, at: offset) }
    }

    func flush() throws(DiskIOError) {
        try gated("flush") { () throws(DiskIOError) in try disk.flush() }
    }

    func discard(offset: UInt64, length: UInt64) throws(DiskIOError) {
        try gated("discard") { () throws(DiskIOError) in try disk.discard(offset: offset, length: length) }
    }

    func writeZeroes(offset: UInt64, length: UInt64, unmap: Bool) throws(DiskIOError) {
        try gated("writeZeroes") { () throws(DiskIOError) in try disk.writeZeroes(offset: offset, length: length, unmap: unmap) }
    }
}
