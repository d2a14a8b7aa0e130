import Glibc

/// File descriptors over a UNIX connection (SCM_RIGHTS), for local migration's memory fds.
///
/// The fds ride on the first byte of a payload sent by its own `sendmsg`, after the header went out by
/// itself: a UNIX stream socket never merges separate sends into one read across an fd boundary, so
/// the receiver's plain read of the header cannot swallow them.
extension Connection {
    /// Writes `payload` with `fds` attached (the caller keeps its fds: the peer gets duplicates).
    public func write(_ payload: [UInt8], passing fds: [Int32], during: @autoclosure () -> String) throws(MigrationError) {
        precondition(!payload.isEmpty && !fds.isEmpty && fds.count <= Limits.maxMemoryFds)
        var control = [UInt8](repeating: 0, count: Self.controlSpace(fds: fds.count))
        let written = payload.withUnsafeBytes { bytes in
            control.withUnsafeMutableBytes { space -> Int in
                var vector = iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress), iov_len: bytes.count)
                var message = msghdr()
                message.msg_control = space.baseAddress
                message.msg_controllen = space.count
                let header = space.baseAddress!.assumingMemoryBound(to: cmsghdr.self)
                header.pointee.cmsg_level = SOL_SOCKET
                header.pointee.cmsg_type = Int32(SCM_RIGHTS)
                header.pointee.cmsg_len = Self.controlLength(fds: fds.count)
                fds.withUnsafeBytes { (space.baseAddress! + Self.headerSpace).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                return withUnsafeMutablePointer(to: &vector) { vector in
                    message.msg_iov = vector
                    message.msg_iovlen = 1
                    while true {
                        let n = sendmsg(fd, &message, Int32(MSG_NOSIGNAL))
                        if n >= 0 || errno != EINTR { return n }
                    }
                }
            }
        }
        if written < 0 { throw error(.errno(errno), during: during()) }
        // The fds went with the first byte; whatever did not fit goes on as plain bytes.
        if written < payload.count, let failure = Array(payload[written...]).withUnsafeBytes({ sendAll([$0]) }) {
            throw error(failure, during: during())
        }
    }

    /// Reads exactly `count` bytes and the fds that came with them (close-on-exec), at most `maxFds`: with
    /// more, the kernel drops the rest, so every received fd is closed and the message refused.
    public func read(count: Int, receivingUpTo maxFds: Int,
                     during: @autoclosure () -> String) throws(MigrationError) -> (bytes: [UInt8], fds: [Int32]) {
        var bytes = [UInt8](repeating: 0, count: count)
        var fds: [Int32] = []
        var control = [UInt8](repeating: 0, count: Self.controlSpace(fds: maxFds))
        var offset = 0
        var truncated = false
        while offset < count {
            let n = bytes.withUnsafeMutableBytes { buffer in
                control.withUnsafeMutableBytes { space -> Int in
                    var vector = iovec(iov_base: buffer.baseAddress! + offset, iov_len: count - offset)
                    return withUnsafeMutablePointer(to: &vector) { vector in
                        var message = msghdr()
                        message.msg_iov = vector
                        message.msg_iovlen = 1
                        message.msg_control = space.baseAddress
                        message.msg_controllen = space.count
                        let n = recvmsg(fd, &message, Int32(MSG_CMSG_CLOEXEC))
                        if n > 0 {
                            fds += Self.receivedFds(message)
                            truncated = truncated || message.msg_flags & Int32(MSG_CTRUNC) != 0
                        }
                        return n
                    }
                }
            }
            if n == 0 || (n < 0 && errno != EINTR) {
                let failure: Failure = n == 0 ? .endOfStream : .errno(errno)
                fds.forEach { close($0) }
                throw error(failure, during: during())
            }
            if n > 0 { offset += n }
        }
        if truncated {
            fds.forEach { close($0) }
            throw .protocolViolation("more than \(maxFds) file descriptors came with \(during())")
        }
        return (bytes, fds)
    }

    /// The SCM_RIGHTS fds in a received message's control data.
    private static func receivedFds(_ message: msghdr) -> [Int32] {
        guard let base = message.msg_control, message.msg_controllen >= headerSpace else { return [] }
        var fds: [Int32] = []
        var offset = 0
        while offset + headerSpace <= message.msg_controllen {
            let header = (base + offset).assumingMemoryBound(to: cmsghdr.self).pointee
            guard header.cmsg_len >= headerSpace, offset + Int(header.cmsg_len) <= message.msg_controllen else { break }
            if header.cmsg_level == SOL_SOCKET && header.cmsg_type == Int32(SCM_RIGHTS) {
                let count = (Int(header.cmsg_len) - headerSpace) / MemoryLayout<Int32>.size
                fds += (0..<count).map { (base + offset + headerSpace).loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self) }
            }
            offset += align(Int(header.cmsg_len))
        }
        return fds
    }

    /// CMSG_ALIGN, CMSG_SPACE and CMSG_LEN, which Swift does not import (they are macros).
    private static func align(_ length: Int) -> Int { (length + MemoryLayout<Int>.size - 1) & ~(MemoryLayout<Int>.size - 1) }
    private static var headerSpace: Int { align(MemoryLayout<cmsghdr>.size) }
    private static func controlSpace(fds: Int) -> Int { headerSpace + align(fds * MemoryLayout<Int32>.size) }
    private static func controlLength(fds: Int) -> Int { headerSpace + fds * MemoryLayout<Int32>.size }
}
