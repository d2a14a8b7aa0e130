import Config
import Devices
import Foundation
import Synchronization
import StateEncoding

/// Why a component's saved state could not be captured or applied.
public struct StateError: Error, CustomStringConvertible, Sendable {
    public let component: String
    public let reason: String
    public var description: String { "\(component): \(reason)" }
}

/// The one protocol through which every stateful part of a VM (each vCPU, the KVM VM, each device) is
/// saved and restored, for snapshots and live migration alike. A component's state is plain versioned
/// data; `restore` receives the version it was saved with, so older snapshots keep restoring.
protocol StateComponent {
    /// Unique within a VM (`vcpu-0`, `kvm-vm`, `__serial`).
    var id: String { get }
    /// What kind of state this is, so a reader can tell a section's decoder without knowing the id.
    var type: String { get }
    var version: UInt32 { get }
    func save() throws -> Data
    func restore(_ data: Data, version: UInt32) throws
}

/// How state payloads are encoded: the binary form (`BinaryState`: fast, inside migration downtime) is
/// written; both it and the JSON of older builds (sorted keys, begins with `{`) are read, told apart by the
/// first byte (snapshots/FORMAT.md, "State payloads").
enum StateCoding {
    static func encode<T: Encodable>(_ value: T) throws -> Data {
        try BinaryState.encode(value)
    }

    static func decode<T: Decodable>(_ type: T.Type, from data: Data, component: String) throws -> T {
        let binary = BinaryState.isBinary(data)
        do {
            return binary ? try BinaryState.decode(type, from: data) : try JSONDecoder().decode(type, from: data)
        } catch let error as DecodingError {
            // `summary` calls a top-level failure "invalid JSON"; the binary decoder's text says what and where.
            var detail = error.summary
            if binary, case let .dataCorrupted(context) = error, context.codingPath.isEmpty { detail = context.debugDescription }
            throw StateError(component: component, reason: "cannot decode saved \(binary ? "binary" : "JSON") state: \(detail)")
        } catch {
            throw StateError(component: component, reason: "cannot decode saved state: \(error)")
        }
    }

    /// A kernel ABI struct (kvm_regs, kvm_lapic_state, …) as its raw bytes: the layout is fixed by the KVM API.
    static func raw<T>(_ value: T) -> Data {
        withUnsafeBytes(of: value) { Data($0) }
    }

    static func value<T>(_ data: Data, as type: T.Type, component: String, field: String) throws -> T {
        guard data.count == MemoryLayout<T>.size else {
            throw StateError(component: component,
                             reason: "\(field) has \(data.count) bytes, expected \(MemoryLayout<T>.size)")
        }
        return data.withUnsafeBytes { $0.loadUnaligned(as: T.self) }
    }
}

/// A device's `Snapshottable` state as a component (the device declares its state once; this adapts it).
struct DeviceComponent<Device: Snapshottable>: StateComponent {
    let id: String
    let device: Device
    var type: String { DeviceTypeNames.name(of: Device.self) }
    var version: UInt32 { UInt32(Device.stateVersion) }

    func save() throws -> Data { try StateCoding.encode(device.saveState()) }

    func restore(_ data: Data, version: UInt32) throws {
        guard version == self.version else {
            throw StateError(component: id, reason: "state version \(version) is not supported (this build reads \(self.version))")
        }
        let state = try StateCoding.decode(Device.State.self, from: data, component: id)
        do {
            try device.restoreState(state)
        } catch {
            throw StateError(component: id, reason: "\(error)")
        }
    }
}

/// A device's section type is its Swift type name. `String(describing:)` demangles it on every call —
/// ≈ 60 µs each here, most of a small VM's state capture inside a migration's pause — so each name is
/// made once.
enum DeviceTypeNames {
    private static let names = Mutex<[ObjectIdentifier: String]>([:])

    static func name(of type: Any.Type) -> String {
        names.withLock { names in
            if let name = names[ObjectIdentifier(type)] { return name }
            let name = String(describing: type)
            names[ObjectIdentifier(type)] = name
            return name
        }
    }
}
