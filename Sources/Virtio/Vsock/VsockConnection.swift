/// One stream between a guest port and a host UNIX socket, with its credit accounting (virtio 1.2
/// §5.10.6.3): each side advertises how much it can buffer (buf_alloc) and how much it has consumed
/// (fwd_cnt); a sender keeps what is in flight within the peer's buffer.
final class VsockConnection {
    struct Key: Hashable {
        let guestPort: UInt32
        let hostPort: UInt32
    }

    enum State {
        /// Host-initiated: REQUEST sent to the guest, waiting for RESPONSE.
        case connecting
        case established
    }

    let key: Key
    let fd: Int32
    var state: State
    /// epoll events currently watched on `fd` (0: not watched).
    var watched: UInt32 = 0

    // Guest → host: bytes the host socket did not take yet; fwd_cnt counts bytes it took.
    var pendingToHost: [UInt8] = []
    var fwdCnt: UInt32 = 0
    /// fwd_cnt as the guest last heard it (every packet to the guest carries it).
    var fwdCntSent: UInt32 = 0

    // Host → guest: the guest's buffer and consumption, and what we sent into it.
    var peerBufAlloc: UInt32 = 0
    var peerFwdCnt: UInt32 = 0
    var rxCnt: UInt32 = 0
    var creditRequested = false

    /// The host closed its side for writing (read returned 0).
    var hostEOF = false
    /// SHUTDOWN flags the guest sent.
    var guestShutdown: UInt32 = 0

    /// How much the device buffers per connection for the guest's data (its buf_alloc).
    static let bufAlloc: UInt32 = 256 << 10

    init(key: Key, fd: Int32, state: State) {
        self.key = key
        self.fd = fd
        self.state = state
    }

    /// Bytes the guest can still take.
    var peerCredit: Int {
        max(0, Int(peerBufAlloc) - Int(rxCnt &- peerFwdCnt))
    }

    /// Whether host data should be read now.
    var wantsHostData: Bool {
        state == .established && !hostEOF && guestShutdown & VsockHeader.shutdownRcv == 0 && peerCredit > 0
    }

    /// The guest sent SHUTDOWN with both flags and everything it sent reached the host: time for RST.
    var finished: Bool {
        guestShutdown == VsockHeader.shutdownRcv | VsockHeader.shutdownSend && pendingToHost.isEmpty
    }

    /// Should a CREDIT_UPDATE go out unasked? Once half the buffer was consumed unannounced — the guest
    /// may be waiting for credit (it stalls at zero only if all of it was consumed unannounced).
    var guestNeedsCreditUpdate: Bool {
        fwdCnt &- fwdCntSent >= Self.bufAlloc / 2
    }

    func updatePeerCredit(from header: VsockHeader) {
        peerBufAlloc = header.bufAlloc
        peerFwdCnt = header.fwdCnt
        if peerCredit > 0 { creditRequested = false }
    }

    /// A header from the host end to the guest end, carrying our credit.
    func header(_ op: VsockOp, guestCid: UInt64) -> VsockHeader {
        var h = VsockHeader(srcCid: VsockHeader.hostCid, dstCid: guestCid, srcPort: key.hostPort, dstPort: key.guestPort, op: op)
        h.bufAlloc = Self.bufAlloc
        h.fwdCnt = fwdCnt
        fwdCntSent = fwdCnt
        return h
    }
}
