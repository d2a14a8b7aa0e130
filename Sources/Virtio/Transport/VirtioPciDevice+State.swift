import Devices
import Foundation
import Pci

/// The whole device as saved: PCI configuration space (BAR addresses included), MSI-X table and
/// pending bits, the common configuration (features, status, queue addresses and sizes), each ring's
/// position, and the device's own state.
extension VirtioPciDevice: Snapshottable {
    public struct State: Codable, Sendable, Equatable {
        var deviceType: UInt32
        var pci: PciConfiguration
        var msix: MsixTable.State
        var common: VirtioPciCommon
        var isr: UInt8
        /// (last_avail_idx, next used idx) of each queue while the device is active; nil otherwise.
        var rings: [[UInt16]]?
        var deviceStateVersion: UInt32
        var deviceState: Data
    }

    public static var stateVersion: Int { 1 }

    public func saveState() -> State {
        lock.withLock {
            State(deviceType: device.deviceType.rawValue, pci: pci, msix: msix.saveState(), common: common,
                  isr: isr.load(ordering: .acquiring),
                  rings: activeQueues?.map { [$0.lastAvailIdx, $0.nextUsedIdx] },
                  deviceStateVersion: device.deviceStateVersion,
                  deviceState: (try? device.saveDeviceState()) ?? Data())
        }
    }

    /// Puts a saved device back into this freshly built one (the VM is paused). The BAR is remapped by
    /// `remap` if the guest had moved it; an active device is started and left paused, so that the
    /// VM's resume re-kicks its queues.
    public func restoreState(_ state: State) throws(DeviceStateError) {
        func invalid(_ reason: String) -> DeviceStateError { .invalid(device: name, reason: reason) }
        guard state.deviceType == device.deviceType.rawValue else {
            throw invalid("saved as virtio device type \(state.deviceType), this is type \(device.deviceType.rawValue)")
        }
        guard state.common.queues.count == device.queueMaxSizes.count,
              state.msix.entries.count == msix.vectorCount,
              state.rings.map({ $0.count == state.common.queues.count && $0.allSatisfy { $0.count == 2 } }) ?? true
        else { throw invalid("saved with a different number of queues") }
        guard let savedBar = state.pci.bars.first(where: { $0.index == 0 }) else { throw invalid("BAR0 missing") }
        do {
            try device.restoreDeviceState(state.deviceState, version: state.deviceStateVersion)
        } catch {
            throw invalid("\(error)")
        }
        let currentBar = bars.first { $0.index == 0 }!
        lock.withLock {
            pci = state.pci
            common = state.common
            isr.store(state.isr, ordering: .releasing)
        }
        msix.restoreState(state.msix)
        if savedBar.address != currentBar.address {
            remap?(PciBarMove(index: 0, from: currentBar.address, to: savedBar.address, size: savedBar.size))
        }
        if let rings = state.rings {
            let activation = lock.withLock { makeActivation(indices: rings) }
            activate(activation)
            pause()
        }
    }
}
