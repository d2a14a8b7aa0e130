/// Why a device refused a saved state (a snapshot from another build, or a corrupted one).
public enum DeviceStateError: Error, Equatable, CustomStringConvertible {
    case invalid(device: String, reason: String)

    public var description: String {
        switch self {
        case let .invalid(device, reason): return "invalid \(device) state: \(reason)"
        }
    }
}

/// A device whose guest-visible state can be captured and put back (snapshot, live migration).
///
/// `State` is plain data so that the snapshot layer can encode it however it likes; `stateVersion`
/// is bumped whenever the meaning or shape of `State` changes, so that old snapshots are recognised.
/// `restoreState` must leave the device as if the guest had driven it into that state, including
/// re-signalling an interrupt the state says is pending (edges are not part of the state).
public protocol Snapshottable: AnyObject {
    associatedtype State: Codable & Sendable & Equatable
    static var stateVersion: Int { get }
    func saveState() -> State
    func restoreState(_ state: State) throws(DeviceStateError)
}
