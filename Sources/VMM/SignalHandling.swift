import Glibc
import Dispatch
import Foundation

/// Turns SIGTERM/SIGINT into a clean VMM shutdown request (handled on a dispatch queue, not in a signal handler).
public enum SignalHandling {
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []

    public static func forward(_ signals: [Int32], to vmm: Vmm) {
        for sig in signals {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { vmm.terminate(signal: sig) }
            source.resume()
            sources.append(source)
        }
    }
}
