import ArgumentParser
import Config

/// `ch-remote`: Cloud Hypervisor's command-line client of its REST API, with CH's subcommands and syntax.
@main
struct CHRemote: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ch-remote",
        abstract: "Remotely control a cloud-hypervisor VMM.",
        version: BuildInfo.version,
        subcommands: [
            AddDevice.self, AddDisk.self, AddFs.self, AddGenericVhostUser.self, AddNet.self, AddPmem.self,
            AddUserDevice.self, AddVdpa.self, AddVsock.self, Boot.self, Coredump.self, Counters.self, Create.self,
            Delete.self, Info.self, Nmi.self, Pause.self, Ping.self, PowerButton.self, Reboot.self,
            ReceiveMigration.self, RemoveDevice.self, Resize.self, ResizeDisk.self, ResizeZone.self, Restore.self,
            Resume.self, SendMigration.self, Shutdown.self, ShutdownVmm.self, Snapshot.self,
        ])

    @OptionGroup var global: GlobalOptions
}

/// Options every subcommand accepts; given before the subcommand name, as in CH (`ch-remote --api-socket S ping`).
struct GlobalOptions: ParsableArguments {
    @Option(name: .customLong("api-socket"), help: "HTTP API socket path (UNIX domain socket).")
    var apiSocket: String?
}
