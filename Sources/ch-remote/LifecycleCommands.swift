import ArgumentParser
import Foundation

// Subcommands without arguments, and `create`, which sends a JSON file (or stdin) as it is.

struct Ping: RemoteCommand {
    static let configuration = CommandConfiguration(abstract: "Ping the VMM to check for API server availability")
    @OptionGroup var global: GlobalOptions
    func request() -> APIRequest { APIRequest(method: "GET", endpoint: "vmm.ping") }
}

struct ShutdownVmm: RemoteCommand {
    static let configuration = CommandConfiguration(commandName: "shutdown-vmm", abstract: "Shutdown the VMM")
    @OptionGroup var global: GlobalOptions
    func request() -> APIRequest { APIRequest(method: "PUT", endpoint: "vmm.shutdown") }
}

struct Boot: RemoteCommand {
    static let configuration = CommandConfiguration(abstract: "Boot a created VM")
    @OptionGroup var global: GlobalOptions
    func request() -> APIRequest { APIRequest(method: "PUT", endpoint: "vm.boot") }
}

struct Delete: RemoteCommand {
    static let configuration = CommandConfiguration(abstract: "Delete a VM")
    @OptionGroup var global: GlobalOptions
    func request() -> APIRequest { APIRequest(method: "PUT", endpoint: "vm.delete") }
}

struct Info: RemoteCommand {
    static let configuration = CommandConfiguration(abstract: "Info on the VM")
    @OptionGroup var global: GlobalOptions
    func request() -> APIRequest { APIRequest(method: "GET", endpoint: "vm.info") }
}

struct Counters: RemoteCommand {
    static let configuration = CommandConfiguration(abstract: "Counters from the VM")
    @OptionGroup var global: GlobalOptions
    func request() -> APIRequest { APIRequest(method: "GET", endpoint: "vm.counters") }
}

struct Pause: RemoteCommand {
    static let configuration = CommandConfiguration(abstract: "Pause the VM")
    @OptionGroup var global: GlobalOptions
    func request() -> APIRequest { APIRequest(method: "PUT", endpoint: "vm.pause") }
}

struct Resume: RemoteCommand {
    static let configuration = CommandConfiguration(abstract: "Resume the VM")
    @OptionGroup var global: GlobalOptions
    func request() -> APIRequest { APIRequest(method: "PUT", endpoint: "vm.resume") }
}

struct Shutdown: RemoteCommand {
    static let configuration = CommandConfiguration(abstract: "Shutdown the VM")
    @OptionGroup var global: GlobalOptions
    func request() -> APIRequest { APIRequest(method: "PUT", endpoint: "vm.shutdown") }
}

struct Reboot: RemoteCommand {
    static let configuration = CommandConfiguration(abstract: "Reboot the VM")
    @OptionGroup var global: GlobalOptions
    func request() -> APIRequest { APIRequest(method: "PUT", endpoint: "vm.reboot") }
}

struct PowerButton: RemoteCommand {
    static let configuration = CommandConfiguration(commandName: "power-button", abstract: "Trigger a power button in the VM")
    @OptionGroup var global: GlobalOptions
    func request() -> APIRequest { APIRequest(method: "PUT", endpoint: "vm.power-button") }
}

struct Nmi: RemoteCommand {
    static let configuration = CommandConfiguration(abstract: "Trigger NMI")
    @OptionGroup var global: GlobalOptions
    func request() -> APIRequest { APIRequest(method: "PUT", endpoint: "vm.nmi") }
}

struct Create: RemoteCommand {
    static let configuration = CommandConfiguration(abstract: "Create VM from a JSON configuration")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "A VmConfig JSON file, or - for standard input.") var path = "-"

    /// The JSON goes out unchanged, as CH's ch-remote sends it: the VMM is the judge of its content.
    func request() throws -> APIRequest {
        let body: Data
        do {
            body = path == "-" ? FileHandle.standardInput.readDataToEndOfFile()
                : try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw CommandFailure(path == "-" ? "Error reading from stdin" : "Error reading from file",
                                 CommandFailure([(error as NSError).localizedDescription]))
        }
        return APIRequest(method: "PUT", endpoint: "vm.create", body: body)
    }
}
