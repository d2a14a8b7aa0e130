import Memory
import Migration

/// Local migration (`local=true`, CH's `send-migration --local`): the guest's RAM is handed to the
/// destination VMM on the same host as its memfds over the UNIX socket (SCM_RIGHTS) instead of being
/// copied, so the only downtime is pausing, sending the vCPU/device state and resuming.
enum LocalMigration {
    /// Why `local=true` cannot be used for this VM and URL, for the API's error (nil: it can).
    static func refusal(url: MigrationURL, memory: GuestMemory) -> String? {
        guard case .unix = url else {
            return "local option is only supported with UNIX sockets (the memory fds travel over SCM_RIGHTS): use a unix: URL"
        }
        guard memory.regions.allSatisfy({ $0.fd != nil }) else {
            return "local migration needs --memory shared=on (this VM's RAM is private to its VMM and cannot be handed over)"
        }
        return nil
    }

    /// Sends the memfd of every RAM region with its guest range. This side keeps its fds and mappings:
    /// if the migration fails before the destination's Ok, the guest goes on here on the same RAM.
    static func sendMemory(_ memory: GuestMemory, over session: MigrationClient) throws(MigrationError) {
        let fds = memory.regions.compactMap(\.fd)
        guard fds.count == memory.regions.count else {
            throw .failed("local migration needs --memory shared=on")
        }
        try session.sendMemoryFds(memory.regions.map { PageRange(gpa: $0.guestBase, length: $0.size) }, fds: fds)
    }
}
