import Config
import Devices
import Foundation
import Hypervisor
import StateEncoding
import TestSupport
@testable import VMM
import XCTest

/// Real component states (a vCPU of a built VM, the virtio-rng transport) through `StateCoding`: the binary
/// form round-trips, the JSON older builds wrote still decodes, damage is refused naming the component. Also
/// prints what encoding and decoding cost, JSON against binary (figures only: timings are not asserted).
final class StateCodingTests: XCTestCase {
    private final class NoControl: VMControl {
        func requestReset() {}
        func requestShutdown() {}
    }

    private func makeVm() throws -> Vm {
        try Require.kvm()
        try Require.checkguest()
        let config = VmConfig(cpus: CpusConfig(boot: 2), memory: MemoryConfig(size: 16 << 20),
                              payload: PayloadConfig(kernel: Paths.checkguest.path))
        return try Vm(config: config, kvm: try KVM(), console: nil, platform: NoControl(), logger: .init(label: "test"))
    }

    private func component<C>(_ vm: Vm, _ id: String, as: C.Type) throws -> C {
        try XCTUnwrap(vm.stateComponents(pausedClock: nil).first { $0.id == id } as? C, id)
    }

    /// The legacy payload exactly as builds before the binary encoding wrote it.
    private func legacyJSON<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(value)
    }

    func testRealStatesRoundTripAndLegacyJSONStillDecodes() throws {
        let vm = try makeVm()
        let vcpu = try component(vm, "vcpu-0", as: VcpuComponent.self)
        let vcpuState = try vcpu.capture()
        let rng = try XCTUnwrap(vm.devices.virtio.placed.first { $0.id == "__rng" }).transport
        let rngState = rng.saveState()

        let vcpuPayload = try StateCoding.encode(vcpuState)
        XCTAssertTrue(BinaryState.isBinary(vcpuPayload))
        XCTAssertEqual(try StateCoding.decode(VcpuState.self, from: vcpuPayload, component: "vcpu-0"), vcpuState)
        XCTAssertEqual(try StateCoding.decode(VcpuState.self, from: legacyJSON(vcpuState), component: "vcpu-0"), vcpuState)
        let rngPayload = try StateCoding.encode(rngState)
        XCTAssertEqual(try StateCoding.decode(type(of: rngState), from: rngPayload, component: "__rng"), rngState)
        XCTAssertEqual(try StateCoding.decode(type(of: rngState), from: legacyJSON(rngState), component: "__rng"), rngState)
        // A whole restore through the component, from the binary payload.
        try vcpu.restore(vcpuPayload, version: VcpuState.version)
        // The TSC (MSR 0x10) runs on; everything else reads back as saved.
        let restored = try vcpu.capture()
        XCTAssertEqual(restored.msrs.filter { $0.index != 0x10 }, vcpuState.msrs.filter { $0.index != 0x10 })
        XCTAssertEqual([restored.regs, restored.sregs, restored.lapic, restored.xsave, restored.events],
                       [vcpuState.regs, vcpuState.sregs, vcpuState.lapic, vcpuState.xsave, vcpuState.events])
    }

    func testDamagedPayloadsAreRefusedNamingTheComponent() throws {
        let vm = try makeVm()
        let vcpu = try component(vm, "vcpu-1", as: VcpuComponent.self)
        let payload = try vcpu.save()
        for damaged in [payload.prefix(payload.count / 2), payload.prefix(1), Data([BinaryState.marker, 0x42]), Data("{\"regs\":".utf8)] {
            XCTAssertThrowsError(try vcpu.restore(damaged, version: VcpuState.version)) { error in
                let e = error as? StateError
                XCTAssertEqual(e?.component, "vcpu-1", "\(error)")
                XCTAssertTrue(e?.reason.hasPrefix("cannot decode saved") ?? false, "\(error)")
            }
        }
    }

    func testPrintEncodingCosts() throws {
        let vm = try makeVm()
        let vcpu = try component(vm, "vcpu-0", as: VcpuComponent.self)
        let rng = try XCTUnwrap(vm.devices.virtio.placed.first { $0.id == "__rng" }).transport
        let vcpuState = try vcpu.capture()
        report("vcpu", vcpuState)
        report("virtio-rng transport", rng.saveState())
        let capture = median { _ = try? vcpu.capture() }, apply = median { try? vcpu.apply(vcpuState) }
        print("state-coding: vcpu ioctls: capture \(capture) µs, apply \(apply) µs")

        // Both vCPUs one after the other, and each on its own thread (ioctls and encoding).
        nonisolated(unsafe) let vcpus = vm.stateComponents(pausedClock: nil).filter { $0 is VcpuComponent }
        nonisolated(unsafe) let payloads = try vcpus.map { try $0.save() }
        let sequential = (save: median { for c in vcpus { _ = try? c.save() } },
                          restore: median { for (c, p) in zip(vcpus, payloads) { try? c.restore(p, version: c.version) } })
        let concurrent = (save: median { DispatchQueue.concurrentPerform(iterations: vcpus.count) { _ = try? vcpus[$0].save() } },
                          restore: median { DispatchQueue.concurrentPerform(iterations: vcpus.count) { try? vcpus[$0].restore(payloads[$0], version: 1) } })
        print("state-coding: \(vcpus.count) vcpus save+restore: sequential \(sequential.save) + \(sequential.restore) µs, "
              + "concurrent \(concurrent.save) + \(concurrent.restore) µs")
        let all = vm.stateComponents(pausedClock: nil), allPayloads = try all.map { try $0.save() }
        let whole = (save: median { for c in all { _ = try? c.save() } },
                     restore: median { for (c, p) in zip(all, allPayloads) { try? c.restore(p, version: c.version) } })
        print("state-coding: all \(all.count) components: save \(whole.save) µs, restore \(whole.restore) µs, "
              + "\(allPayloads.reduce(0) { $0 + $1.count }) bytes")
    }

    private func report<T: Codable>(_ name: String, _ state: T) {
        let json = try! legacyJSON(state), binary = try! StateCoding.encode(state)
        let figures = [
            ("JSON encode", median { _ = try? self.legacyJSON(state) }),
            ("binary encode", median { _ = try? StateCoding.encode(state) }),
            ("JSON decode", median { _ = try? JSONDecoder().decode(T.self, from: json) }),
            ("binary decode", median { _ = try? StateCoding.decode(T.self, from: binary, component: name) }),
        ]
        print("state-coding: \(name): JSON \(json.count) B, binary \(binary.count) B; "
              + figures.map { "\($0.0) \($0.1) µs" }.joined(separator: ", "))
    }

    /// Median of 101 runs, in microseconds.
    private func median(_ body: () -> Void) -> Int {
        let clock = ContinuousClock()
        let runs = (0..<101).map { _ in clock.measure(body) }.sorted()
        let d = runs[runs.count / 2].components
        return Int(d.seconds * 1_000_000 + d.attoseconds / 1_000_000_000_000)
    }
}
