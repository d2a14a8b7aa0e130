import ArgumentParser

/// `ch-snapshot`: look inside a snapshot directory, verify it, or benchmark the format.
struct CHSnapshot: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ch-snapshot",
        abstract: "Inspect, verify and benchmark cloud-hypervisor snapshots.",
        subcommands: [Inspect.self, Verify.self, Bench.self])
}

CHSnapshot.main()
