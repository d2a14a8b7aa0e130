import Glibc
import API
import ArgumentParser
import Config
import DBusAPI
import Foundation
import Hypervisor
import Logging
import VMM

/// `cloud-hypervisor`: Cloud Hypervisor's command line, driving the VMM's control loop.
@main
struct CloudHypervisor: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cloud-hypervisor",
        abstract: "Launch a virtual machine (a Cloud Hypervisor-compatible VMM written in Swift).",
        version: "\(BuildInfo.name) \(BuildInfo.version)")

    @Option(help: "Kernel to boot: a PVH ELF (e.g. vmlinux) or a bzImage.") var kernel: String?
    @Option(help: "Initramfs to load.") var initramfs: String?
    @Option(help: "Kernel command line.") var cmdline: String?
    @Option(help: "Firmware to boot (not supported: boot a kernel directly).") var firmware: String?
    @Option(help: "boot=<boot_vcpus>,max=<max_vcpus>,topology=<threads:cores:dies:packages>,...") var cpus: String = "boot=1"
    @Option(help: "size=<guest memory size>,shared=on|off,hugepages=on|off,prefault=on|off,...") var memory: String = "size=512M"
    @Option(help: "off|null|pty|tty|file=<path>|socket=<path> (default null).") var serial: String = "null"
    @Option(help: "off|null|pty|tty|file=<path> (virtio-console; default tty).") var console: String = "tty"
    @Option(help: "src=<entropy source> (default /dev/urandom).") var rng: String = "src=/dev/urandom"
    @Option(parsing: .upToNextOption, help: "path=<raw image>,readonly=on|off,direct=on|off,num_queues=<n>,queue_size=<n>,serial=<id>,id=<id>,... (one or more disks)")
    var disk: [String] = []
    @Option(parsing: .upToNextOption, help: "tap=<if>,ip=<addr>,mask=<netmask>,mac=<mac>,host_mac=<mac>,mtu=<n>,num_queues=<n>,queue_size=<n>,id=<id>,... (one or more)")
    var net: [String] = []
    @Option(help: "cid=<guest cid>,socket=<host UNIX socket>,id=<id>: virtio-vsock (hybrid, as Cloud Hypervisor).")
    var vsock: String?
    @Option(parsing: .upToNextOption, help: "tag=<tag>,socket=<vhost-user socket>,... (not supported yet)") var fs: [String] = []
    @Option(parsing: .upToNextOption, help: "file=<backing file>,size=<size>,... (not supported yet)") var pmem: [String] = []
    @Flag(name: .short, help: "Log more (repeat for more detail).") var verbose: Int
    @Option(name: .customLong("log-file"), help: "Write the log to this file instead of stderr.") var logFile: String?
    @Flag(name: .customLong("no-shutdown"), help: "Keep the VMM running after the guest powers off.") var noShutdown = false
    @Option(name: .customLong("api-socket"), help: "path=<socket path>|fd=<fd> (default /run/user/<uid>/cloud-hypervisor.<pid>).") var apiSocket: String?
    @Option(name: .customLong("event-monitor"), help: "path=<file>|fd=<fd>: write lifecycle events as JSON.") var eventMonitor: String?
    @Option(help: "source_url=file:///<snapshot dir>,prefault=on|off,memory_restore_mode=copy|ondemand,resume=true|false: restore a snapshot.") var restore: String?
    @Option(name: .customLong("dbus-service-name"), help: "Well-known name to own on D-Bus: serves the D-Bus API (org.cloudhypervisor.DBusApi1).") var dbusServiceName: String?
    @Option(name: .customLong("dbus-object-path"), help: "Object path of the D-Bus API (default \(DBusOptions.defaultObjectPath)).") var dbusObjectPath: String?
    @Flag(name: .customLong("dbus-system-bus"), help: "Serve the D-Bus API on the system bus instead of the session bus.") var dbusSystemBus = false

    func run() throws {
        FDLogHandler.markProcessStart()
        let logger = makeLogger()
        let config: VmConfig
        do {
            config = try vmConfig()
        } catch {
            fail("\(error)")
        }
        let kvm: KVM
        do {
            kvm = try KVM()
        } catch {
            fail("\(error)")
        }
        let socket: APISocket
        let events: EventMonitor
        let restoreConfig: RestoreConfig?
        let dbusOptions: DBusOptions?
        do {
            socket = try apiSocket.map(APISocket.parse) ?? .default
            events = try eventMonitor.map(Self.openEventMonitor) ?? EventMonitor()
            restoreConfig = try restore.map(RestoreConfig.parse)
            dbusOptions = try DBusOptions.commandLine(serviceName: dbusServiceName, objectPath: dbusObjectPath,
                                                      systemBus: dbusSystemBus)
        } catch {
            fail("\(error)")
        }
        if restoreConfig != nil && config.payload != nil {
            fail("--restore cannot be combined with a payload (--kernel/--firmware): the snapshot brings its own")
        }
        let vmm = Vmm(kvm: kvm, events: events, logger: logger)
        vmm.keepRunningAfterGuestShutdown = noShutdown
        SignalHandling.forward([SIGTERM, SIGINT], to: vmm)
        signal(SIGPIPE, SIG_IGN)
        // Before the VMM starts, so its first event ("starting") is relayed too.
        let dbus: DBusService?
        do {
            dbus = try dbusOptions.map { try DBusService.start($0, handler: vmm, events: events, logger: logger) }
        } catch {
            fail("\(error)")
        }
        defer { dbus?.stop() }
        vmm.start()
        let server = APIServer(logger: logger)
        do {
            try server.start(socket: socket, handler: vmm)
        } catch {
            fail("\(error)")
        }
        defer { server.stop() }
        if config.payload != nil {
            _ = vmm.send(.create(config))
            if case let .failure(error) = vmm.send(.boot) {
                server.stop()
                fail("\(error)")
            }
        } else if let restoreConfig {
            if case let .failure(error) = vmm.send(.restore(restoreConfig)) {
                server.stop()
                fail("\(error)")
            }
        }
        let code = vmm.waitForExit()
        if code != 0 { throw ExitCode(code) }
    }

    /// The VmConfig this command line describes (the same type `vm.create` decodes).
    func vmConfig() throws -> VmConfig {
        var config = VmConfig()
        config.cpus = try CpusConfig.parse(cpus)
        config.memory = try MemoryConfig.parse(memory)
        config.serial = try ConsoleConfig.parse(serial, flag: "--serial")
        config.console = try ConsoleConfig.parse(console, flag: "--console")
        config.rng = try RngConfig.parse(rng)
        if !disk.isEmpty { config.disks = try disk.map(DiskConfig.parse) }
        if !net.isEmpty { config.net = try net.map(NetConfig.parse) }
        config.vsock = try vsock.map(VsockConfig.parse)
        if !fs.isEmpty { config.fs = try fs.map(FsConfig.parse) }
        if !pmem.isEmpty { config.pmem = try pmem.map(PmemConfig.parse) }
        if kernel != nil || firmware != nil {
            config.payload = PayloadConfig(kernel: kernel, cmdline: cmdline, initramfs: initramfs, firmware: firmware)
        } else if initramfs != nil || cmdline != nil {
            throw ValidationError.noKernel
        }
        if config.payload != nil { try config.validate() }
        return config
    }

    /// `path=…` or `fd=…` (a bare value is a path), as CH's `--event-monitor`.
    static func openEventMonitor(_ input: String) throws -> EventMonitor {
        let p = try OptionParser(flag: "--event-monitor", input: input, known: ["path", "fd"], bareKey: "path")
        if let fd = try p.integer("fd", as: Int32.self) { return EventMonitor(fd: fd) }
        return try EventMonitor.open(path: try p.requiredString("path"))
    }

    func makeLogger() -> Logger {
        let level: Logger.Level = [.warning, .info, .debug, .trace][min(verbose, 3)]
        var fd: Int32 = 2
        if let logFile {
            fd = open(logFile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            if fd < 0 { fail("cannot open log file \(logFile): \(String(cString: strerror(errno)))") }
        }
        let handlerFD = fd
        return Logger(label: "cloud-hypervisor") { FDLogHandler(label: $0, fd: handlerFD, level: level) }
    }

    /// One clear line on stderr and a non-zero exit.
    func fail(_ message: String) -> Never {
        let line = "Error: \(message)\n"
        _ = line.withCString { Glibc.write(2, $0, strlen($0)) }
        Foundation.exit(1)
    }
}
