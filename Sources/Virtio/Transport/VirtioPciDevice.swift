import Devices
import Foundation
import Hypervisor
import Memory
import Pci
import Synchronization

/// A virtio device on the PCI bus (virtio 1.2 §4.1, modern only, as Cloud Hypervisor): BAR0 holds the
/// common configuration, ISR, device configuration, notify area and the MSI-X table and PBA.
///
/// Queue notifications reach the device through per-queue eventfds that KVM signals itself
/// (ioeventfd on the notify addresses); interrupts leave through MSI-X vectors that the VMM turned into
/// irqfds. So on the data path neither direction exits to the VMM.
public final class VirtioPciDevice: PciDevice, VirtioInterrupt, @unchecked Sendable {
    public static let vendorID: UInt16 = 0x1AF4
    public let device: any VirtioDevice
    public let name: String
    /// Offered features: the device's plus what the transport and virtqueues implement.
    public let offeredFeatures: UInt64

    private let memory: GuestMemory
    let msix: MsixTable
    private let queueEvents: [EventFD]
    private let ioEvents: any IoEventRegistrar
    /// Guards the configuration space, the common configuration and `activeQueues`.
    let lock = NSLock()
    var pci: PciConfiguration
    var common: VirtioPciCommon
    var activeQueues: [Virtqueue]?
    let isr = Atomic<UInt8>(0)
    private var notifyRegistered: UInt64?
    private let logger: @Sendable (String) -> Void
    /// Moves the BAR's MMIO mapping (set by whoever placed the device on a `PciBus`); used when a
    /// restored device's BAR lies elsewhere than where it was built.
    public var remap: (@Sendable (PciBarMove) -> Void)?

    /// `barAddress`: where BAR0 starts (a 64-bit, 512 KiB BAR); `vectors`: the VMM's MSI delivery.
    public init(name: String, device: any VirtioDevice, memory: GuestMemory, barAddress: UInt64,
                vectors: any MsiVectors, ioEvents: any IoEventRegistrar,
                log: @escaping @Sendable (String) -> Void = { _ in }) throws {
        self.name = name
        self.device = device
        self.memory = memory
        self.ioEvents = ioEvents
        logger = log
        offeredFeatures = device.deviceFeatures | VirtioFeature.version1 | VirtioFeature.ringIndirectDesc
            | VirtioFeature.ringEventIdx
        let queueCount = device.queueMaxSizes.count
        common = VirtioPciCommon(queueMaxSizes: device.queueMaxSizes)
        queueEvents = try (0..<queueCount).map { _ in try EventFD() }
        msix = MsixTable(vectorCount: queueCount + 1, vectors: vectors)

        let type = device.deviceType.rawValue
        let (classCode, subclass): (UInt8, UInt8) = switch device.deviceType {
        case .net: (0x02, 0x00)
        case .block: (0x01, 0x80)
        case .console: (0x07, 0x80)
        case .rng, .vsock: (0xFF, 0x00)
        }
        pci = PciConfiguration(vendor: Self.vendorID, device: UInt16(0x1040 + type), classCode: classCode,
                               subclass: subclass, revision: 1, subsystemVendor: Self.vendorID,
                               subsystemID: UInt16(0x40 + type))
        pci.addBar(index: 0, size: VirtioPciLayout.barSize, kind: .memory64, prefetchable: false, address: barAddress)
        let cap = msix.capability(bar: 0, tableOffset: UInt32(VirtioPciLayout.msixTable),
                                  pbaOffset: UInt32(VirtioPciLayout.msixPBA))
        msixCapability = pci.addCapability(id: MsixTable.capabilityID, body: cap.body, writableMask: cap.writable)
        pci.addCapability(id: 0x09, body: VirtioPciLayout.capability(.common, VirtioPciLayout.common))
        pci.addCapability(id: 0x09, body: VirtioPciLayout.capability(.isr, VirtioPciLayout.isr))
        pci.addCapability(id: 0x09, body: VirtioPciLayout.capability(.device, VirtioPciLayout.device))
        pci.addCapability(id: 0x09, body: VirtioPciLayout.capability(.notify, VirtioPciLayout.notify))
        try registerNotify(bar: barAddress)
    }

    /// Config-space offset of the MSI-X capability (its message control is at +2).
    private let msixCapability: Int

    deinit {
        device.reset()
        if let bar = notifyRegistered { unregisterNotify(bar: bar) }
    }

    // MARK: PCI

    public func readConfig(register: Int) -> UInt32 { lock.withLock { pci.read(register: register) } }

    public func writeConfig(offset: Int, data: UnsafeRawBufferPointer) -> PciBarMove? {
        let (move, control) = lock.withLock { () -> (PciBarMove?, UInt16?) in
            let move = pci.write(offset: offset, data: data)
            let touchesControl = offset <= msixCapability + 3 && offset + data.count > msixCapability + 2
            return (move, touchesControl ? UInt16(pci.read(register: msixCapability / 4) >> 16) : nil)
        }
        if let control { msix.setControl(control) }
        return move
    }

    public var bars: [PciBar] { lock.withLock { pci.bars } }

    public func barMoved(_ move: PciBarMove) {
        if let old = notifyRegistered { unregisterNotify(bar: old) }
        do { try registerNotify(bar: move.to) } catch {
            logger("\(name): queue notifications at 0x\(String(move.to, radix: 16)) go through the VMM: \(error)")
        }
    }

    private func notifyAddress(bar: UInt64, queue: Int) -> UInt64 {
        bar + VirtioPciLayout.notify.lowerBound + UInt64(queue) * UInt64(VirtioPciLayout.notifyMultiplier)
    }

    private func registerNotify(bar: UInt64) throws {
        for (q, event) in queueEvents.enumerated() {
            try ioEvents.register(event, address: notifyAddress(bar: bar, queue: q), length: 2)
        }
        notifyRegistered = bar
    }

    private func unregisterNotify(bar: UInt64) {
        for (q, event) in queueEvents.enumerated() {
            ioEvents.unregister(event, address: notifyAddress(bar: bar, queue: q), length: 2)
        }
        notifyRegistered = nil
    }

    // MARK: BAR0

    public func readBar(_ index: Int, offset: UInt64, data: UnsafeMutableRawBufferPointer) {
        for k in 0..<data.count { data[k] = 0 }
        switch offset {
        case VirtioPciLayout.common:
            let value = lock.withLock { common.read(offset, size: data.count, offered: offeredFeatures) }
            for k in 0..<min(data.count, 8) { data[k] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(k))) }
        case VirtioPciLayout.isr:
            // Reading the ISR acknowledges it (and would lower INTx; this device only uses MSI-X).
            if data.count > 0 { data[0] = isr.exchange(0, ordering: .acquiringAndReleasing) }
        case VirtioPciLayout.device:
            device.readConfig(offset: offset - VirtioPciLayout.device.lowerBound, data: data)
        case VirtioPciLayout.msixTable..<VirtioPciLayout.msixTable + msix.tableSize:
            msix.readTable(offset: offset - VirtioPciLayout.msixTable, data: data)
        case VirtioPciLayout.msixPBA..<VirtioPciLayout.msixPBA + msix.pbaSize:
            msix.readPBA(offset: offset - VirtioPciLayout.msixPBA, data: data)
        default: break
        }
    }

    public func writeBar(_ index: Int, offset: UInt64, data: UnsafeRawBufferPointer) {
        var value: UInt64 = 0
        for (k, b) in data.prefix(8).enumerated() { value |= UInt64(b) << (8 * UInt64(k)) }
        switch offset {
        case VirtioCommonStatus.offset where data.count == 1:
            setStatus(UInt8(truncatingIfNeeded: value))
        case VirtioPciLayout.common:
            lock.withLock {
                common.write(offset, size: data.count, value: value, maxSizes: device.queueMaxSizes, vectors: msix.vectorCount)
            }
        case VirtioPciLayout.device:
            device.writeConfig(offset: offset - VirtioPciLayout.device.lowerBound, data: data)
        case VirtioPciLayout.notify:
            // Only reached when the ioeventfd is missing or the access size differs from its registration.
            let queue = Int((offset - VirtioPciLayout.notify.lowerBound) / UInt64(VirtioPciLayout.notifyMultiplier))
            if queue < queueEvents.count { try? queueEvents[queue].write() }
        case VirtioPciLayout.msixTable..<VirtioPciLayout.msixTable + msix.tableSize:
            msix.writeTable(offset: offset - VirtioPciLayout.msixTable, data: data)
        default: break
        }
    }

    // MARK: Status and activation

    private func setStatus(_ new: UInt8) {
        if new == 0 {
            device.reset()
            lock.withLock {
                activeQueues = nil
                common = VirtioPciCommon(queueMaxSizes: device.queueMaxSizes)
            }
            isr.store(0, ordering: .releasing)
            return
        }
        let activation: VirtioActivation? = lock.withLock {
            var status = new
            let old = common.status
            if status & VirtioStatus.featuresOK != 0 && old & VirtioStatus.featuresOK == 0 {
                // FEATURES_OK only sticks if the driver asked for nothing we did not offer, and for VERSION_1.
                let acceptable = common.driverFeatures & ~offeredFeatures == 0
                    && common.driverFeatures & VirtioFeature.version1 != 0
                if !acceptable { status &= ~VirtioStatus.featuresOK }
            }
            common.status = status
            let starting = status & VirtioStatus.driverOK != 0 && old & VirtioStatus.driverOK == 0
                && status & VirtioStatus.featuresOK != 0 && activeQueues == nil
            return starting ? makeActivation(indices: nil) : nil
        }
        if let activation { activate(activation) }
    }

    /// Queues from the common configuration (with saved ring indices on restore).
    func makeActivation(indices: [[UInt16]]?) -> VirtioActivation {
        let features = common.driverFeatures
        let queues = common.queues.enumerated().map { i, q in
            Virtqueue(index: i, size: q.size, descTable: q.desc, availRing: q.avail, usedRing: q.used,
                      isReady: q.enabled, eventIdx: features & VirtioFeature.ringEventIdx != 0,
                      indirect: features & VirtioFeature.ringIndirectDesc != 0, memory: memory,
                      lastAvailIdx: indices?[i][0] ?? 0, nextUsedIdx: indices?[i][1] ?? 0)
        }
        activeQueues = queues
        return VirtioActivation(memory: memory, features: features, queues: queues, queueEvents: queueEvents,
                                interrupt: self)
    }

    func activate(_ activation: VirtioActivation) {
        do {
            for q in activation.queues { try q.validate() }
            try device.activate(activation)
        } catch {
            logger("\(name): cannot start the device: \(error)")
            lock.withLock {
                activeQueues = nil
                common.status |= VirtioStatus.needsReset
            }
            signalConfigChange()
        }
    }

    // MARK: Interrupts (VirtioInterrupt)

    public func signalQueue(_ index: Int) {
        isr.bitwiseOr(1, ordering: .releasing)
        let vector = lock.withLock { index < common.queues.count ? common.queues[index].vector : VirtioPciCommon.noVector }
        if vector != VirtioPciCommon.noVector { msix.signal(vector: Int(vector)) }
    }

    public func signalConfigChange() {
        isr.bitwiseOr(2, ordering: .releasing)
        let vector = lock.withLock { () -> UInt16 in
            common.configGeneration &+= 1
            return common.configVector
        }
        if vector != VirtioPciCommon.noVector { msix.signal(vector: Int(vector)) }
    }

    // MARK: Pause (vm.pause, snapshots, migration)

    public var isActive: Bool { lock.withLock { activeQueues != nil } }

    /// Quiesces the device: after this, it does not touch guest memory until `resume`.
    public func pause() { if isActive { device.pause() } }
    public func resume() { if isActive { device.resume() } }
}

/// The status byte's offset in the common configuration.
private enum VirtioCommonStatus {
    static let offset = VirtioPciCommon.Field.status
}
