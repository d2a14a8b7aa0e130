import Glibc
import Memory

/// A piece of guest memory a descriptor points at.
public struct GuestBuffer: Sendable, Equatable {
    public let address: UInt64
    public let length: UInt32
    public init(address: UInt64, length: UInt32) {
        self.address = address
        self.length = length
    }
}

/// One request of the driver: the buffers of a descriptor chain (indirect tables already followed),
/// split into the device-readable part and the device-writable part that follows it.
public struct DescriptorChain: Sendable, Equatable {
    /// The head index, which `Virtqueue.pushUsed` returns to the driver.
    public let head: UInt16
    public let readable: [GuestBuffer]
    public let writable: [GuestBuffer]

    public init(head: UInt16, readable: [GuestBuffer], writable: [GuestBuffer]) {
        self.head = head
        self.readable = readable
        self.writable = writable
    }

    public var readableLength: Int { readable.reduce(0) { $0 + Int($1.length) } }
    public var writableLength: Int { writable.reduce(0) { $0 + Int($1.length) } }
}

extension GuestMemory {
    /// Copies up to `destination.count` device-readable bytes, starting `skip` bytes into the buffers.
    /// Returns how many were copied.
    public func gather(_ buffers: [GuestBuffer], skip: Int = 0, into destination: UnsafeMutableRawBufferPointer) throws -> Int {
        var toSkip = skip, copied = 0
        for buffer in buffers where copied < destination.count {
            let length = Int(buffer.length)
            if toSkip >= length { toSkip -= length; continue }
            let n = min(length - toSkip, destination.count - copied)
            let src = try pointer(at: buffer.address + UInt64(toSkip), count: UInt64(n))
            (destination.baseAddress! + copied).copyMemory(from: src, byteCount: n)
            copied += n
            toSkip = 0
        }
        return copied
    }

    /// All device-readable bytes of `buffers` after `skip`, as an array.
    public func gather(_ buffers: [GuestBuffer], skip: Int = 0, limit: Int = .max) throws -> [UInt8] {
        let total = max(0, min(buffers.reduce(0) { $0 + Int($1.length) } - skip, limit))
        var out = [UInt8](repeating: 0, count: total)
        _ = try out.withUnsafeMutableBytes { try gather(buffers, skip: skip, into: $0) }
        return out
    }

    /// Copies `source` into the device-writable `buffers`, starting `skip` bytes in; marks the pages
    /// dirty (KVM's log does not see writes made by the VMM). Returns how many bytes fit.
    @discardableResult
    public func scatter(_ source: UnsafeRawBufferPointer, into buffers: [GuestBuffer], skip: Int = 0) throws -> Int {
        var toSkip = skip, copied = 0
        for buffer in buffers where copied < source.count {
            let length = Int(buffer.length)
            if toSkip >= length { toSkip -= length; continue }
            let n = min(length - toSkip, source.count - copied)
            let address = buffer.address + UInt64(toSkip)
            let dst = try pointer(at: address, count: UInt64(n))
            dst.copyMemory(from: source.baseAddress! + copied, byteCount: n)
            markDirty(address, count: UInt64(n))
            copied += n
            toSkip = 0
        }
        return copied
    }

    @discardableResult
    public func scatter(_ source: [UInt8], into buffers: [GuestBuffer], skip: Int = 0) throws -> Int {
        try source.withUnsafeBytes { try scatter($0, into: buffers, skip: skip) }
    }

    /// Host iovecs for `buffers` (for readv/writev/preadv straight into or out of guest RAM), covering
    /// at most `limit` bytes after `skip`. Callers that let the host write through them must call
    /// `markDirty(buffers:)` afterwards.
    public func iovecs(_ buffers: [GuestBuffer], skip: Int = 0, limit: Int = .max) throws -> [iovec] {
        var out: [iovec] = []
        var toSkip = skip, left = limit
        for buffer in buffers where left > 0 {
            let length = Int(buffer.length)
            if toSkip >= length { toSkip -= length; continue }
            let n = min(length - toSkip, left)
            let p = try pointer(at: buffer.address + UInt64(toSkip), count: UInt64(n))
            out.append(iovec(iov_base: p, iov_len: n))
            left -= n
            toSkip = 0
        }
        return out
    }

    /// Marks every byte of `buffers` dirty (after the host wrote into them through iovecs).
    public func markDirty(_ buffers: [GuestBuffer]) {
        for b in buffers { markDirty(b.address, count: UInt64(b.length)) }
    }
}
