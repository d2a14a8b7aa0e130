import Glibc
import Config
import Devices
import Foundation
import Hypervisor
import Logging

/// The VM's lifecycle state as Cloud Hypervisor reports it in `vm.info`.
public enum VmState: String, Sendable, Codable {
    case Created, Running, Shutdown, Paused
}

/// A request to the VMM, from any frontend (CLI now; REST and D-Bus use the same commands).
public enum VmmCommand: Sendable {
    case create(VmConfig)
    case boot
    case pause
    case resume
    case shutdown
    case reboot
    case delete
    case info
    case shutdownVmm
}

public enum VmmResponse: Sendable {
    case none
    case info(config: VmConfig, state: VmState, memoryActualSize: UInt64)
}

/// Why a command was refused; the chain reads from the operation down to the cause, as CH's error bodies.
public enum VmmError: Error, CustomStringConvertible, Sendable {
    case vmNotCreated
    case vmAlreadyCreated
    case invalidTransition(operation: String, from: VmState)
    case bootFailed(String)

    public var description: String {
        switch self {
        case .vmNotCreated: return "VM is not created"
        case .vmAlreadyCreated: return "VM is already created"
        case let .invalidTransition(op, from): return "cannot \(op) the VM: it is \(from.rawValue)"
        case let .bootFailed(m): return m
        }
    }
}

/// The single control loop that owns the VM and answers every command, one at a time, on its own thread.
///
/// vCPU threads and devices report events (guest reset, S5, failures) into the same mailbox, so the
/// VM is only ever built, paused or torn down from here.
public final class Vmm: @unchecked Sendable {
    enum Message {
        case command(VmmCommand, reply: @Sendable (Result<VmmResponse, VmmError>) -> Void)
        case vcpu(VcpuEvent, generation: Int)
        case platformReset(generation: Int)
        case platformShutdown(generation: Int)
        case terminate(signal: Int32)
    }

    /// Keep the process up after the guest powers off (`--no-shutdown`).
    public var keepRunningAfterGuestShutdown = false
    private let mailbox = Mailbox<Message>()
    private let kvm: KVM
    private let console: ConsoleIO?
    private let logger: Logger
    private var config: VmConfig?
    private var vm: Vm?
    private var state: VmState = .Created
    /// Bumped whenever a VM is built, so late events of a torn-down VM are ignored.
    private var generation = 0
    private var exitCode: Int32?

    public init(kvm: KVM, console: ConsoleIO?, logger: Logger) {
        self.kvm = kvm
        self.console = console
        self.logger = logger
    }

    /// Sends a command and waits for the answer (from any thread but the control loop's; `start()` first).
    public func send(_ command: VmmCommand) -> Result<VmmResponse, VmmError> {
        let done = DispatchSemaphore(value: 0)
        let result = ResultBox()
        mailbox.post(.command(command, reply: { r in result.value = r; done.signal() }))
        done.wait()
        return result.value!
    }

    /// Asks the VMM to stop because the process received `signal`.
    public func terminate(signal: Int32) { mailbox.post(.terminate(signal: signal)) }

    private let exited = DispatchSemaphore(value: 0)

    /// Starts the control loop on its own thread.
    public func start() {
        let thread = Thread { [self] in
            let code = self.loop()
            self.finalCode = code
            self.exited.signal()
        }
        thread.name = "vmm"
        thread.start()
    }

    private var finalCode: Int32 = 0

    /// Blocks until the VMM must exit; returns the process exit code.
    public func waitForExit() -> Int32 {
        exited.wait()
        return finalCode
    }

    private func loop() -> Int32 {
        while exitCode == nil {
            switch mailbox.take() {
            case let .command(command, reply):
                reply(handle(command))
            case let .vcpu(event, gen) where gen == generation:
                handle(event)
            case let .platformReset(gen) where gen == generation:
                logger.info("guest requested a reset: rebooting")
                reboot()
            case let .platformShutdown(gen) where gen == generation:
                logger.info("guest powered off")
                teardown()
                state = .Shutdown
                if !keepRunningAfterGuestShutdown { exitCode = 0 }
            case let .terminate(signal):
                logger.info("received signal \(signal): shutting down")
                teardown()
                exitCode = 0
            default:
                break   // an event from a VM that no longer exists
            }
        }
        console?.restoreTerminal()
        return exitCode ?? 0
    }

    private func handle(_ event: VcpuEvent) {
        switch event {
        case let .tripleFault(vcpu):
            logger.info("vCPU \(vcpu) triple-faulted: resetting the VM")
            reboot()
        case let .failed(vcpu, message):
            logger.error("vCPU \(vcpu): \(message)")
            writeError("vCPU \(vcpu) stopped: \(message)")
            teardown()
            state = .Shutdown
            exitCode = 1
        }
    }

    private func handle(_ command: VmmCommand) -> Result<VmmResponse, VmmError> {
        switch command {
        case let .create(newConfig):
            guard config == nil else { return .failure(.vmAlreadyCreated) }
            config = newConfig
            state = .Created
            return .success(.none)
        case .boot:
            guard config != nil else { return .failure(.vmNotCreated) }
            guard state == .Created || state == .Shutdown else {
                return .failure(.invalidTransition(operation: "boot", from: state))
            }
            return boot().map { .none }
        case .pause:
            guard let vm else { return .failure(config == nil ? .vmNotCreated : .invalidTransition(operation: "pause", from: state)) }
            guard state == .Running else { return .failure(.invalidTransition(operation: "pause", from: state)) }
            vm.pause()
            state = .Paused
            return .success(.none)
        case .resume:
            guard let vm, state == .Paused else {
                return .failure(config == nil ? .vmNotCreated : .invalidTransition(operation: "resume", from: state))
            }
            vm.resume()
            state = .Running
            return .success(.none)
        case .shutdown:
            guard vm != nil else {
                return .failure(config == nil ? .vmNotCreated : .invalidTransition(operation: "shut down", from: state))
            }
            teardown()
            state = .Created
            return .success(.none)
        case .reboot:
            guard vm != nil else {
                return .failure(config == nil ? .vmNotCreated : .invalidTransition(operation: "reboot", from: state))
            }
            return reboot().map { .none }
        case .delete:
            teardown()
            config = nil
            state = .Created
            return .success(.none)
        case .info:
            guard let config else { return .failure(.vmNotCreated) }
            return .success(.info(config: config, state: state, memoryActualSize: vm?.memory.size ?? config.memory.size))
        case .shutdownVmm:
            teardown()
            exitCode = 0
            return .success(.none)
        }
    }

    @discardableResult
    private func boot() -> Result<Void, VmmError> {
        guard let config else { return .failure(.vmNotCreated) }
        generation += 1
        let gen = generation
        let platform = PlatformEvents(mailbox: mailbox, generation: gen)
        do {
            let vm = try Vm(config: config, kvm: kvm, console: console, platform: platform)
            console?.attach(vm.serialInput)
            let box = mailbox
            vm.start(logger: logger) { event in box.post(.vcpu(event, generation: gen)) }
            self.vm = vm
            state = .Running
            return .success(())
        } catch {
            state = .Created
            return .failure(.bootFailed("\(error)"))
        }
    }

    @discardableResult
    private func reboot() -> Result<Void, VmmError> {
        teardown()
        let result = boot()
        if case let .failure(e) = result {
            logger.error("reboot failed: \(e)")
            writeError("reboot failed: \(e)")
            exitCode = 1
        }
        return result
    }

    private func teardown() {
        console?.attach(nil)
        vm?.stop()
        vm = nil
        generation += 1
    }

    private func writeError(_ text: String) {
        let line = "Error: \(text)\n"
        _ = line.withCString { Glibc.write(2, $0, strlen($0)) }
    }
}

private final class ResultBox: @unchecked Sendable {
    var value: Result<VmmResponse, VmmError>?
}

/// Routes a device's reset/shutdown request into the control loop, tagged with the VM it came from.
private final class PlatformEvents: VMControl, @unchecked Sendable {
    private let mailbox: Mailbox<Vmm.Message>
    private let generation: Int

    init(mailbox: Mailbox<Vmm.Message>, generation: Int) {
        self.mailbox = mailbox
        self.generation = generation
    }

    func requestReset() { mailbox.post(.platformReset(generation: generation)) }
    func requestShutdown() { mailbox.post(.platformShutdown(generation: generation)) }
}
