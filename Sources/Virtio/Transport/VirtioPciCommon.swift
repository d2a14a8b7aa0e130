/// The driver-visible state of the common configuration structure (virtio 1.2 §4.1.4.3): feature
/// negotiation, device status and each queue's configuration. Plain data, saved with the device.
struct VirtioPciCommon: Codable, Equatable, Sendable {
    static let noVector: UInt16 = 0xFFFF

    struct Queue: Codable, Equatable, Sendable {
        var size: UInt16
        var enabled = false
        var vector = VirtioPciCommon.noVector
        var desc: UInt64 = 0
        var avail: UInt64 = 0
        var used: UInt64 = 0
    }

    var deviceFeatureSelect: UInt32 = 0
    var driverFeatureSelect: UInt32 = 0
    var driverFeatures: UInt64 = 0
    var status: UInt8 = 0
    var configGeneration: UInt8 = 0
    var queueSelect: UInt16 = 0
    var configVector = VirtioPciCommon.noVector
    var queues: [Queue]

    init(queueMaxSizes: [UInt16]) {
        queues = queueMaxSizes.map { Queue(size: $0) }
    }

    /// Field offsets within the structure.
    enum Field {
        static let deviceFeatureSelect: UInt64 = 0x00, deviceFeature: UInt64 = 0x04
        static let driverFeatureSelect: UInt64 = 0x08, driverFeature: UInt64 = 0x0C
        static let configVector: UInt64 = 0x10, numQueues: UInt64 = 0x12
        static let status: UInt64 = 0x14, configGeneration: UInt64 = 0x15
        static let queueSelect: UInt64 = 0x16, queueSize: UInt64 = 0x18, queueVector: UInt64 = 0x1A
        static let queueEnable: UInt64 = 0x1C, queueNotifyOff: UInt64 = 0x1E
        static let queueDesc: UInt64 = 0x20, queueAvail: UInt64 = 0x28, queueUsed: UInt64 = 0x30
    }

    /// Reads a field (`offered`: all feature bits the device offers).
    func read(_ offset: UInt64, size: Int, offered: UInt64) -> UInt64 {
        let q = Int(queueSelect) < queues.count ? queues[Int(queueSelect)] : nil
        switch (offset, size) {
        case (Field.deviceFeatureSelect, 4): return UInt64(deviceFeatureSelect)
        case (Field.deviceFeature, 4): return deviceFeatureSelect < 2 ? (offered >> (32 * UInt64(deviceFeatureSelect))) & 0xFFFF_FFFF : 0
        case (Field.driverFeatureSelect, 4): return UInt64(driverFeatureSelect)
        case (Field.driverFeature, 4): return driverFeatureSelect < 2 ? (driverFeatures >> (32 * UInt64(driverFeatureSelect))) & 0xFFFF_FFFF : 0
        case (Field.configVector, 2): return UInt64(configVector)
        case (Field.numQueues, 2): return UInt64(queues.count)
        case (Field.status, 1): return UInt64(status)
        case (Field.configGeneration, 1): return UInt64(configGeneration)
        case (Field.queueSelect, 2): return UInt64(queueSelect)
        case (Field.queueSize, 2): return UInt64(q?.size ?? 0)
        case (Field.queueVector, 2): return UInt64(q?.vector ?? Self.noVector)
        case (Field.queueEnable, 2): return q?.enabled == true ? 1 : 0
        case (Field.queueNotifyOff, 2): return UInt64(queueSelect)
        case (Field.queueDesc, 4), (Field.queueDesc, 8): return q?.desc ?? 0
        case (Field.queueDesc + 4, 4): return (q?.desc ?? 0) >> 32
        case (Field.queueAvail, 4), (Field.queueAvail, 8): return q?.avail ?? 0
        case (Field.queueAvail + 4, 4): return (q?.avail ?? 0) >> 32
        case (Field.queueUsed, 4), (Field.queueUsed, 8): return q?.used ?? 0
        case (Field.queueUsed + 4, 4): return (q?.used ?? 0) >> 32
        default: return 0
        }
    }

    /// Applies a write to anything but `status` (the transport handles that: it has side effects).
    /// `maxSizes`: each queue's maximum; `vectors`: the MSI-X table size (larger vectors read back as
    /// NO_VECTOR, which is how a driver learns that an assignment failed).
    mutating func write(_ offset: UInt64, size: Int, value: UInt64, maxSizes: [UInt16], vectors: Int) {
        let qi = Int(queueSelect)
        let hasQueue = qi < queues.count
        func vector(_ v: UInt64) -> UInt16 { v < UInt64(vectors) ? UInt16(v) : Self.noVector }
        func setLow(_ old: UInt64) -> UInt64 { old & ~0xFFFF_FFFF | value & 0xFFFF_FFFF }
        func setHigh(_ old: UInt64) -> UInt64 { old & 0xFFFF_FFFF | (value & 0xFFFF_FFFF) << 32 }
        switch (offset, size) {
        case (Field.deviceFeatureSelect, 4): deviceFeatureSelect = UInt32(truncatingIfNeeded: value)
        case (Field.driverFeatureSelect, 4): driverFeatureSelect = UInt32(truncatingIfNeeded: value)
        case (Field.driverFeature, 4):
            if driverFeatureSelect == 0 { driverFeatures = setLow(driverFeatures) }
            if driverFeatureSelect == 1 { driverFeatures = setHigh(driverFeatures) }
        case (Field.configVector, 2): configVector = vector(value)
        case (Field.queueSelect, 2): queueSelect = UInt16(truncatingIfNeeded: value)
        case (Field.queueSize, 2) where hasQueue:
            // A driver may shrink a queue, never grow it past the device's maximum.
            if value > 0 && value <= UInt64(maxSizes[qi]) { queues[qi].size = UInt16(value) }
        case (Field.queueVector, 2) where hasQueue: queues[qi].vector = vector(value)
        case (Field.queueEnable, 2) where hasQueue: queues[qi].enabled = value & 1 == 1
        case (Field.queueDesc, 8) where hasQueue: queues[qi].desc = value
        case (Field.queueDesc, 4) where hasQueue: queues[qi].desc = setLow(queues[qi].desc)
        case (Field.queueDesc + 4, 4) where hasQueue: queues[qi].desc = setHigh(queues[qi].desc)
        case (Field.queueAvail, 8) where hasQueue: queues[qi].avail = value
        case (Field.queueAvail, 4) where hasQueue: queues[qi].avail = setLow(queues[qi].avail)
        case (Field.queueAvail + 4, 4) where hasQueue: queues[qi].avail = setHigh(queues[qi].avail)
        case (Field.queueUsed, 8) where hasQueue: queues[qi].used = value
        case (Field.queueUsed, 4) where hasQueue: queues[qi].used = setLow(queues[qi].used)
        case (Field.queueUsed + 4, 4) where hasQueue: queues[qi].used = setHigh(queues[qi].used)
        default: break // read-only fields and malformed accesses are ignored
        }
    }
}
