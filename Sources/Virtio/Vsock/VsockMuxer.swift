import CKVM
import Glibc

/// The device-thread side of virtio-vsock with a hybrid host side (Firecracker's and Cloud Hypervisor's
/// protocol): guest streams to the host CID become connections to UNIX sockets.
///
/// - Host → guest: a client of the device's socket writes `CONNECT <port>\n`; the guest gets a REQUEST
///   to that port from a new local port; on RESPONSE the client reads `OK <local port>\n`, then bytes.
/// - Guest → host port P: the device connects to `<socket>_<P>`; RST when nobody listens there.
///
/// Packets for the guest wait in `control` (REQUEST, RESPONSE, RST, SHUTDOWN, credit) or in the host
/// sockets themselves (data: read only when the guest has a buffer posted and credit left), so nothing
/// is buffered without bound: when the control backlog fills, the tx queue is left alone until the
/// guest takes rx buffers again.
final class VsockMuxer: DeviceWorker {
    typealias Key = VsockConnection.Key

    private unowned let thread: DeviceThread
    private let activation: VirtioActivation
    private let guestCid: UInt64
    private let listenFD: Int32
    private let socketPath: String
    /// A TRANSPORT_RESET event is owed to the guest (after a restore).
    private var resetPending: Bool

    private var connections: [Key: VsockConnection] = [:]
    /// Accepted host sockets still sending their `CONNECT` line, and what they sent so far.
    private var handshakes: [Int32: [UInt8]] = [:]
    private var control: [VsockHeader] = []
    /// Connections with host data to read once the guest has rx buffers (their EPOLLIN is off meanwhile).
    private var ready: [Key] = []
    private var readySet: Set<Key> = []
    private var txHalted = false
    private var nextLocalPort: UInt32 = VsockMuxer.firstLocalPort

    private static let rxQueue = 0, txQueue = 1, eventQueue = 2
    private static let controlBacklog = 256
    private static let budget = 256
    private static let maxPayload = 64 << 10
    private static let maxHandshake = 64
    /// Local ports of host-initiated connections start here, as in Firecracker.
    private static let firstLocalPort: UInt32 = 1 << 30

    init(thread: DeviceThread, activation: VirtioActivation, guestCid: UInt64, listenFD: Int32,
         socketPath: String, transportReset: Bool) throws {
        self.thread = thread
        self.activation = activation
        self.guestCid = guestCid
        self.listenFD = listenFD
        self.socketPath = socketPath
        resetPending = transportReset
        try thread.watch(listenFD) { [unowned self] _ in self.acceptHosts() }
    }

    deinit {
        connections.values.forEach { close($0.fd) }
        handshakes.keys.forEach { close($0) }
    }

    func queueNotified(_ index: Int) {
        if index == Self.eventQueue { sendTransportReset() } else { service() }
    }

    func processAll() {
        sendTransportReset()
        service()
    }

    /// Guest packets first, then packets for the guest; again while draining rx unblocked tx.
    private func service() {
        repeat {
            txHalted = false
            processTx()
            fillRx()
        } while txHalted && control.count < Self.controlBacklog
    }

    // MARK: event queue

    private func sendTransportReset() {
        guard resetPending else { return }
        let queue = activation.queues[Self.eventQueue]
        do {
            guard let chain = try queue.popValid() ?? (queue.enableNotification() ? queue.popValid() : nil) else { return }
            let written = try activation.memory.scatter(withUnsafeBytes(of: VsockEvent.transportReset.littleEndian) { Array($0) },
                                                        into: chain.writable)
            try queue.pushUsed(head: chain.head, length: UInt32(written))
            try activation.notifyIfNeeded(queue)
            resetPending = false
            // The guest drops every connection; so do we.
            connections.values.forEach(remove)
        } catch {
            // The event ring is not in guest RAM: the guest never learns of the reset.
        }
    }

    // MARK: guest → host (tx queue)

    private func processTx() {
        do {
            try activation.serveAvailable(queue: Self.txQueue, budget: Self.budget) { chain in
                guard control.count < Self.controlBacklog else {
                    txHalted = true
                    return nil
                }
                try handleGuestPacket(chain)
                return 0
            }
        } catch {
            // The tx ring is not in guest RAM: nothing to do until the driver resets the device.
        }
    }

    private func handleGuestPacket(_ chain: DescriptorChain) throws {
        let memory = activation.memory
        guard let h = VsockHeader(try memory.gather(chain.readable, limit: VsockHeader.size)),
              h.srcCid == guestCid else { return }   // malformed or spoofed: dropped
        guard h.dstCid == VsockHeader.hostCid, h.type == VsockHeader.typeStream else {
            if h.op != .rst { enqueue(h.reply(.rst)) }
            return
        }
        let key = Key(guestPort: h.srcPort, hostPort: h.dstPort)
        guard let conn = connections[key] else {
            if h.op == .request { connectToHost(h, key) } else if h.op != .rst { enqueue(h.reply(.rst)) }
            return
        }
        conn.updatePeerCredit(from: h)
        switch h.op {
        case .response:
            let line = Array("OK \(key.hostPort)\n".utf8)
            // A fresh socket always has room for one short line.
            guard conn.state == .connecting, send(conn.fd, line, line.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT)) == line.count else {
                return reset(conn)
            }
            conn.state = .established
        case .rw:
            guard conn.state == .established, conn.guestShutdown & VsockHeader.shutdownSend == 0 else { return reset(conn) }
            let length = min(Int(h.len), chain.readableLength - VsockHeader.size)
            guard try forwardToHost(conn, chain.readable, length: length) else { return }
        case .creditUpdate:
            break
        case .creditRequest:
            enqueue(conn.header(.creditUpdate, guestCid: guestCid))
        case .shutdown:
            conn.guestShutdown |= h.flags & (VsockHeader.shutdownRcv | VsockHeader.shutdownSend)
            if conn.guestShutdown & VsockHeader.shutdownRcv != 0 { unready(conn) }
            guard finishHostWrites(conn) else { return }
        case .rst:
            return remove(conn)
        case .request, .invalid:
            return reset(conn)
        }
        updateInterest(conn)
    }

    /// Guest-initiated: connect to `<socket>_<port>`, RESPONSE on success, RST when nobody listens.
    private func connectToHost(_ h: VsockHeader, _ key: Key) {
        guard let fd = try? UnixSocket.connect(to: "\(socketPath)_\(h.dstPort)") else { return enqueue(h.reply(.rst)) }
        let conn = VsockConnection(key: key, fd: fd, state: .established)
        conn.updatePeerCredit(from: h)
        connections[key] = conn
        enqueue(conn.header(.response, guestCid: guestCid))
        updateInterest(conn)
    }

    /// Sends `length` payload bytes (after the header) to the host socket, straight from guest memory;
    /// what the socket does not take now waits in the connection. False when the connection was reset.
    private func forwardToHost(_ conn: VsockConnection, _ buffers: [GuestBuffer], length: Int) throws -> Bool {
        guard length > 0 else { return true }
        let memory = activation.memory
        var sent = 0
        if conn.pendingToHost.isEmpty {
            guard let n = Self.sendNoSignal(conn.fd, try memory.iovecs(buffers, skip: VsockHeader.size, limit: length)) else {
                reset(conn)
                return false
            }
            sent = n
            conn.fwdCnt &+= UInt32(n)
        }
        if sent < length {
            conn.pendingToHost += try memory.gather(buffers, skip: VsockHeader.size + sent, limit: length - sent)
            guard conn.pendingToHost.count <= Int(VsockConnection.bufAlloc) else {
                reset(conn)   // the guest ignored our credit
                return false
            }
        }
        if conn.guestNeedsCreditUpdate { enqueue(conn.header(.creditUpdate, guestCid: guestCid)) }
        return true
    }

    /// Writes what waited for the host socket. False when the connection was reset or finished.
    private func flushToHost(_ conn: VsockConnection) -> Bool {
        if !conn.pendingToHost.isEmpty {
            let n = conn.pendingToHost.withUnsafeMutableBytes {
                Self.sendNoSignal(conn.fd, [iovec(iov_base: $0.baseAddress, iov_len: $0.count)])
            }
            guard let n else {
                reset(conn)
                return false
            }
            conn.pendingToHost.removeFirst(n)
            conn.fwdCnt &+= UInt32(n)
            if conn.guestNeedsCreditUpdate { enqueue(conn.header(.creditUpdate, guestCid: guestCid)) }
        }
        return finishHostWrites(conn)
    }

    /// Once everything the guest sent reached the host: pass its SHUTDOWN on (EOF for the host
    /// reader), or answer its full shutdown with RST. False when the connection is gone.
    private func finishHostWrites(_ conn: VsockConnection) -> Bool {
        guard conn.pendingToHost.isEmpty else { return true }
        if conn.finished {
            reset(conn)
            return false
        }
        if conn.guestShutdown & VsockHeader.shutdownSend != 0 { shutdown(conn.fd, Int32(SHUT_WR)) }
        return true
    }

    /// sendmsg without SIGPIPE; the bytes taken (0 when the socket is full), nil on error.
    private static func sendNoSignal(_ fd: Int32, _ iovecs: [iovec]) -> Int? {
        var iovecs = iovecs
        while true {
            let n = iovecs.withUnsafeMutableBufferPointer { iov -> Int in
                var msg = msghdr()
                msg.msg_iov = iov.baseAddress
                msg.msg_iovlen = iov.count
                return sendmsg(fd, &msg, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
            }
            if n >= 0 { return n }
            if errno == EINTR { continue }
            return errno == EAGAIN ? 0 : nil
        }
    }

    // MARK: host → guest (rx queue)

    private func enqueue(_ header: VsockHeader) {
        control.append(header)
    }

    private func fillRx() {
        let queue = activation.queues[Self.rxQueue]
        let memory = activation.memory
        do {
            var sent = 0
            while !control.isEmpty || !ready.isEmpty {
                if sent == Self.budget {
                    try? activation.queueEvents[Self.rxQueue].write()   // after the other fds had a turn
                    break
                }
                guard let chain = try queue.popValid() else {
                    if try queue.enableNotification() { continue }
                    break
                }
                if !control.isEmpty && chain.writableLength >= VsockHeader.size {
                    try memory.scatter(control.removeFirst().bytes, into: chain.writable)
                    try queue.pushUsed(head: chain.head, length: UInt32(VsockHeader.size))
                    sent += 1
                } else if chain.writableLength <= VsockHeader.size {
                    try queue.pushUsed(head: chain.head, length: 0)   // no room for a packet with data
                } else if let conn = connections[ready[0]], let length = try readFromHost(conn, into: chain) {
                    try queue.pushUsed(head: chain.head, length: length)
                    sent += 1
                } else {
                    queue.unpop()
                }
            }
            try activation.notifyIfNeeded(queue)
        } catch {
            // The rx ring is not in guest RAM: nothing reaches the guest until the driver resets the device.
        }
    }

    /// Reads host data into `chain` as one RW packet; nil when there was nothing to send (the
    /// connection then leaves the ready list: no data, no credit, EOF or an error).
    private func readFromHost(_ conn: VsockConnection, into chain: DescriptorChain) throws -> UInt32? {
        let room = min(chain.writableLength - VsockHeader.size, conn.peerCredit, Self.maxPayload)
        guard room > 0 else {
            unready(conn)
            requestCreditIfDataWaits(conn)
            updateInterest(conn)
            return nil
        }
        let memory = activation.memory
        let iovecs = try memory.iovecs(chain.writable, skip: VsockHeader.size, limit: room)
        var n: Int
        repeat {
            n = iovecs.withUnsafeBufferPointer { readv(conn.fd, $0.baseAddress, Int32($0.count)) }
        } while n < 0 && errno == EINTR
        if n > 0 {
            memory.markDirty(chain.writable)
            var header = conn.header(.rw, guestCid: guestCid)
            header.len = UInt32(n)
            try memory.scatter(header.bytes, into: chain.writable)
            conn.rxCnt &+= UInt32(n)
            if !conn.wantsHostData {
                unready(conn)
                requestCreditIfDataWaits(conn)
                updateInterest(conn)
            }
            return UInt32(VsockHeader.size + n)
        }
        unready(conn)
        if n == 0 {
            // The host closed its side: the guest reads EOF; it still may send until it closes too.
            conn.hostEOF = true
            var header = conn.header(.shutdown, guestCid: guestCid)
            header.flags = VsockHeader.shutdownSend
            enqueue(header)
            updateInterest(conn)
        } else if errno == EAGAIN {
            updateInterest(conn)
        } else {
            reset(conn)
        }
        return nil
    }

    /// Out of credit with host data still waiting: ask the guest how much it consumed (once, until
    /// it answers), instead of waiting for it to say so unasked.
    private func requestCreditIfDataWaits(_ conn: VsockConnection) {
        guard conn.peerCredit == 0, !conn.creditRequested else { return }
        var byte: UInt8 = 0
        guard recv(conn.fd, &byte, 1, Int32(MSG_PEEK) | Int32(MSG_DONTWAIT)) > 0 else { return }
        conn.creditRequested = true
        enqueue(conn.header(.creditRequest, guestCid: guestCid))
    }

    private func unready(_ conn: VsockConnection) {
        guard readySet.remove(conn.key) != nil else { return }
        ready.removeAll { $0 == conn.key }
    }

    // MARK: host sockets

    /// Watches a connection's socket for what it waits for: data to read (when the guest can take
    /// it and it is not already queued to be read) and room to write (when guest data is pending).
    private func updateInterest(_ conn: VsockConnection) {
        var events: UInt32 = 0
        if conn.wantsHostData && !readySet.contains(conn.key) { events |= CKVM_EPOLLIN }
        if !conn.pendingToHost.isEmpty { events |= CKVM_EPOLLOUT }
        guard events != conn.watched else { return }
        if events == 0 {
            thread.unwatch(conn.fd)
        } else if conn.watched == 0 {
            let key = conn.key
            try? thread.watch(conn.fd, events: events) { [unowned self] ready in self.hostEvent(key, ready) }
        } else {
            try? thread.modify(conn.fd, events: events)
        }
        conn.watched = events
    }

    private func hostEvent(_ key: Key, _ events: UInt32) {
        guard let conn = connections[key] else { return }
        if events & CKVM_EPOLLOUT != 0 || (events & (CKVM_EPOLLHUP | CKVM_EPOLLERR) != 0 && !conn.pendingToHost.isEmpty) {
            guard flushToHost(conn) else { return service() }
        }
        if events & (CKVM_EPOLLIN | CKVM_EPOLLHUP | CKVM_EPOLLERR) != 0 && conn.wantsHostData && readySet.insert(key).inserted {
            ready.append(key)
        }
        updateInterest(conn)
        service()
    }

    /// RST to the guest and forget the connection.
    private func reset(_ conn: VsockConnection) {
        enqueue(conn.header(.rst, guestCid: guestCid))
        remove(conn)
    }

    private func remove(_ conn: VsockConnection) {
        unready(conn)
        if conn.watched != 0 { thread.unwatch(conn.fd) }
        close(conn.fd)
        connections[conn.key] = nil
    }

    private func acceptHosts() {
        while let fd = UnixSocket.accept(listenFD) {
            handshakes[fd] = []
            do {
                try thread.watch(fd) { [unowned self] _ in self.readHandshake(fd) }
            } catch {
                handshakes[fd] = nil
                close(fd)
            }
        }
    }

    /// Reads the `CONNECT <port>\n` line byte by byte, so that no data after it is consumed.
    private func readHandshake(_ fd: Int32) {
        guard var line = handshakes[fd] else { return }
        var byte: UInt8 = 0
        while true {
            let n = read(fd, &byte, 1)
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EAGAIN {
                handshakes[fd] = line
                return
            }
            if n == 1 && byte != UInt8(ascii: "\n") && line.count < Self.maxHandshake {
                line.append(byte)
                continue
            }
            thread.unwatch(fd)
            handshakes[fd] = nil
            if n == 1 && byte == UInt8(ascii: "\n") {
                startHostConnection(fd, String(decoding: line, as: UTF8.self))
            } else {
                close(fd)   // hung up, or not a CONNECT line
            }
            return
        }
    }

    /// Host-initiated: REQUEST to the guest port from a fresh local port; the host hears back on RESPONSE.
    private func startHostConnection(_ fd: Int32, _ line: String) {
        let words = line.split(separator: " ").map { $0.hasSuffix("\r") ? $0.dropLast() : $0 }
        guard words.count == 2, words[0] == "CONNECT", let port = UInt32(words[1]) else {
            close(fd)
            return
        }
        var local = nextLocalPort
        while connections[Key(guestPort: port, hostPort: local)] != nil { local &+= 1 }
        nextLocalPort = local == .max ? Self.firstLocalPort : local + 1
        let conn = VsockConnection(key: Key(guestPort: port, hostPort: local), fd: fd, state: .connecting)
        connections[conn.key] = conn
        enqueue(conn.header(.request, guestCid: guestCid))
        service()
    }
}
