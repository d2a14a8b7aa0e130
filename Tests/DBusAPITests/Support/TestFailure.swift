/// A helper that could not do its job (a daemon that did not start, a wait that timed out), with what
/// it saw so the failing test explains itself.
struct TestFailure: Error, CustomStringConvertible {
    let description: String

    init(_ what: String, output: String = "") {
        description = output.isEmpty ? what : "\(what)\n--- output ---\n\(output)"
    }
}
