/// The virtio-vsock packet header (virtio 1.2 §5.10.6), 44 bytes little-endian, in front of every
/// packet on the rx and tx queues.
struct VsockHeader: Equatable {
    var srcCid: UInt64
    var dstCid: UInt64
    var srcPort: UInt32
    var dstPort: UInt32
    var len: UInt32 = 0
    var type: UInt16 = VsockHeader.typeStream
    var op: VsockOp
    var flags: UInt32 = 0
    var bufAlloc: UInt32 = 0
    var fwdCnt: UInt32 = 0

    static let size = 44
    static let typeStream: UInt16 = 1
    static let hostCid: UInt64 = 2
    /// SHUTDOWN flags: the sender will receive (RCV) or send (SEND) no more.
    static let shutdownRcv: UInt32 = 1, shutdownSend: UInt32 = 2

    init(srcCid: UInt64, dstCid: UInt64, srcPort: UInt32, dstPort: UInt32, op: VsockOp) {
        self.srcCid = srcCid
        self.dstCid = dstCid
        self.srcPort = srcPort
        self.dstPort = dstPort
        self.op = op
    }

    /// Decodes a header; nil when too short. An unknown op decodes as `.invalid` (answered with RST).
    init?(_ b: [UInt8]) {
        guard b.count >= Self.size else { return nil }
        func le<T: FixedWidthInteger>(_ at: Int, _: T.Type) -> T {
            (0..<MemoryLayout<T>.size).reversed().reduce(T(0)) { $0 << 8 | T(b[at + $1]) }
        }
        srcCid = le(0, UInt64.self)
        dstCid = le(8, UInt64.self)
        srcPort = le(16, UInt32.self)
        dstPort = le(20, UInt32.self)
        len = le(24, UInt32.self)
        type = le(28, UInt16.self)
        op = VsockOp(rawValue: le(30, UInt16.self)) ?? .invalid
        flags = le(32, UInt32.self)
        bufAlloc = le(36, UInt32.self)
        fwdCnt = le(40, UInt32.self)
    }

    var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Self.size)
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        put(srcCid); put(dstCid); put(srcPort); put(dstPort); put(len); put(type); put(op.rawValue)
        put(flags); put(bufAlloc); put(fwdCnt)
        return out
    }

    /// The header of a reply: source and destination swapped.
    func reply(_ op: VsockOp) -> VsockHeader {
        VsockHeader(srcCid: dstCid, dstCid: srcCid, srcPort: dstPort, dstPort: srcPort, op: op)
    }
}

enum VsockOp: UInt16 {
    case invalid = 0, request = 1, response = 2, rst = 3, shutdown = 4, rw = 5, creditUpdate = 6, creditRequest = 7
}

/// virtio_vsock_event ids (event queue).
enum VsockEvent {
    static let transportReset: UInt32 = 0
}
