import Hypervisor

/// Registers the queue-notify addresses of a device with the hypervisor (KVM ioeventfd), so a
/// driver's notify write signals the queue's eventfd inside the kernel, without an exit to the VMM.
public protocol IoEventRegistrar: Sendable {
    func register(_ event: EventFD, address: UInt64, length: UInt32) throws
    func unregister(_ event: EventFD, address: UInt64, length: UInt32)
}
