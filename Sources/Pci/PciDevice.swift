/// A function on the PCI bus: configuration cycles and its BARs' MMIO.
///
/// Called from vCPU threads, possibly several at once: implementations lock their own state.
public protocol PciDevice: AnyObject, Sendable {
    /// Dword `register` of the configuration space (0xFFFF_FFFF beyond it).
    func readConfig(register: Int) -> UInt32
    /// A config write of 1, 2 or 4 bytes at byte `offset`; returns the BAR it moved, if any (the bus
    /// then remaps it and calls `barMoved`).
    func writeConfig(offset: Int, data: UnsafeRawBufferPointer) -> PciBarMove?
    /// The BARs as currently programmed.
    var bars: [PciBar] { get }
    func readBar(_ index: Int, offset: UInt64, data: UnsafeMutableRawBufferPointer)
    func writeBar(_ index: Int, offset: UInt64, data: UnsafeRawBufferPointer)
    /// The bus remapped a BAR (after a guest write or a restore): move what hangs off the old address
    /// (ioeventfds). Runs on the thread that caused the move.
    func barMoved(_ move: PciBarMove)
}

/// The host bridge at 00:00.0 (as Cloud Hypervisor: Intel vendor id, device 0x0d57).
public final class PciHostBridge: PciDevice, @unchecked Sendable {
    private let config = PciConfiguration(vendor: 0x8086, device: 0x0D57, classCode: 0x06, subclass: 0x00)
    public init() {}
    public func readConfig(register: Int) -> UInt32 { config.read(register: register) }
    public func writeConfig(offset: Int, data: UnsafeRawBufferPointer) -> PciBarMove? { nil }
    public var bars: [PciBar] { [] }
    public func readBar(_ index: Int, offset: UInt64, data: UnsafeMutableRawBufferPointer) {}
    public func writeBar(_ index: Int, offset: UInt64, data: UnsafeRawBufferPointer) {}
    public func barMoved(_ move: PciBarMove) {}
}
