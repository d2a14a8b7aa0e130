/// Why a virtio-vsock device could not be created.
public enum VsockError: Error, CustomStringConvertible, Equatable {
    case invalidCID(UInt64)
    case socket(UnixSocketError)

    public var description: String {
        switch self {
        case let .invalidCID(cid):
            return "vsock cid \(cid) is invalid: 0, 1 and 2 are reserved (hypervisor, local, host) and \(UInt32.max) means any; use 3 or more"
        case let .socket(e):
            return "vsock \(e)"
        }
    }
}
