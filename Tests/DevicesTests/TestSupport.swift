import Devices
import Synchronization
import XCTest

/// An interrupt line that records what devices do to it.
final class RecordingLine: InterruptLine {
    private let state = Mutex((pulses: 0, level: false))

    var pulses: Int { state.withLock { $0.pulses } }
    var level: Bool { state.withLock { $0.level } }

    func setLevel(_ high: Bool) { state.withLock { $0.level = high } }
    func pulse() { state.withLock { $0.pulses += 1 } }

    /// Pulses since the last call.
    private let seen = Mutex(0)
    func takePulses() -> Int {
        let now = pulses
        return seen.withLock { last in
            defer { last = now }
            return now - last
        }
    }
}

/// A VM that records reset and shutdown requests.
final class RecordingControl: VMControl {
    private let state = Mutex((resets: 0, shutdowns: 0))

    var resets: Int { state.withLock { $0.resets } }
    var shutdowns: Int { state.withLock { $0.shutdowns } }

    func requestReset() { state.withLock { $0.resets += 1 } }
    func requestShutdown() { state.withLock { $0.shutdowns += 1 } }
}

/// A settable host clock.
final class FakeClock: Sendable {
    private let now = Mutex((mono: UInt64(1_000_000_000), wall: WallTime(seconds: 0, nanoseconds: 0)))

    func set(wall: WallTime) { now.withLock { $0.wall = wall } }
    func set(epoch: Int64, nanoseconds: Int64 = 0) { set(wall: WallTime(seconds: epoch, nanoseconds: nanoseconds)) }
    func advance(nanoseconds: UInt64) {
        now.withLock {
            $0.mono += nanoseconds
            let total = $0.wall.nanoseconds + Int64(nanoseconds)
            $0.wall = WallTime(seconds: $0.wall.seconds + total / 1_000_000_000, nanoseconds: total % 1_000_000_000)
        }
    }

    var hostClock: HostClock {
        HostClock(monotonicNanoseconds: { self.now.withLock { $0.mono } },
                  realtime: { self.now.withLock { $0.wall } })
    }
}

/// Guest-style port access: `outb`/`inb` relative to the device's base.
func outb(_ device: any BusDevice, _ offset: UInt64, _ value: UInt8) {
    withUnsafeBytes(of: value) { device.write(offset: offset, data: $0) }
}

func inb(_ device: any BusDevice, _ offset: UInt64) -> UInt8 {
    var value: UInt8 = 0
    withUnsafeMutableBytes(of: &value) { device.read(offset: offset, data: $0) }
    return value
}

func outw(_ device: any BusDevice, _ offset: UInt64, _ value: UInt16) {
    withUnsafeBytes(of: value.littleEndian) { device.write(offset: offset, data: $0) }
}

func inl(_ device: any BusDevice, _ offset: UInt64) -> UInt32 {
    var value: UInt32 = 0
    withUnsafeMutableBytes(of: &value) { device.read(offset: offset, data: $0) }
    return UInt32(littleEndian: value)
}

/// Encodes and decodes a state, as a snapshot would.
func roundTrip<S: Codable>(_ state: S) throws -> S {
    try JSONDecoder().decode(S.self, from: JSONEncoder().encode(state))
}
