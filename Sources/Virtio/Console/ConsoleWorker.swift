import Glibc

/// The device-thread side of virtio-console: backend input into receiveq buffers, transmitq output
/// to the backend, and (socket backend) accepting the next client when one leaves.
final class ConsoleWorker: DeviceWorker {
    private unowned let thread: DeviceThread
    private let activation: VirtioActivation
    private let endpoint: ConsoleEndpoint
    private let input: ConsoleInputBuffer
    /// The input fd being watched, or -1.
    private var watchedInput: Int32 = -1
    private var listenerWatched = false
    /// stdin reached EOF (or cannot be polled): no more input from it.
    private var inputEnded = false

    private static let receiveQueue = 0, transmitQueue = 1

    init(thread: DeviceThread, activation: VirtioActivation, endpoint: ConsoleEndpoint, input: ConsoleInputBuffer) {
        self.thread = thread
        self.activation = activation
        self.endpoint = endpoint
        self.input = input
        updateWatches()
    }

    func queueNotified(_ index: Int) {
        switch index {
        case Self.receiveQueue: deliverInput()
        case Self.transmitQueue: transmit()
        default: break
        }
    }

    func processAll() {
        transmit()
        deliverInput()
    }

    /// Watches the input while there is room for it, and the listener while no client is connected.
    private func updateWatches() {
        let fd = endpoint.inputFD
        let wanted: Int32 = fd >= 0 && !inputEnded && input.room > 0 ? fd : -1
        if watchedInput != wanted {
            if watchedInput >= 0 { thread.unwatch(watchedInput) }
            watchedInput = -1
            if wanted >= 0 {
                do {
                    try thread.watch(wanted) { [unowned self] _ in self.readInput() }
                    watchedInput = wanted
                } catch {
                    inputEnded = true   // e.g. stdin redirected from a regular file or /dev/null: epoll refuses it
                }
            }
        }
        let listen = endpoint.listenFD >= 0 && fd < 0
        if listen != listenerWatched {
            if listen {
                try? thread.watch(endpoint.listenFD) { [unowned self] _ in
                    _ = self.endpoint.acceptClient()
                    self.updateWatches()
                }
            } else {
                thread.unwatch(endpoint.listenFD)
            }
            listenerWatched = listen
        }
    }

    private func readInput() {
        var buffer = [UInt8](repeating: 0, count: min(4096, input.room))
        let result = buffer.withUnsafeMutableBytes { endpoint.read(into: $0) }
        switch result {
        case let .data(n):
            input.append(buffer[0..<n])
            deliverInput()
        case .wouldBlock:
            break
        case .closed:
            // stdin at EOF ends input; a socket client leaving makes room for the next one.
            if endpoint.listenFD < 0 { inputEnded = true }
        }
        updateWatches()
    }

    private func deliverInput() {
        let queue = activation.queues[Self.receiveQueue]
        do {
            while !input.isEmpty {
                guard let chain = try queue.popValid() else {
                    if try queue.enableNotification() { continue }
                    break
                }
                try input.drain { bytes in
                    let n = try activation.memory.scatter(bytes, into: chain.writable)
                    try queue.pushUsed(head: chain.head, length: UInt32(n))
                    return n
                }
            }
            try activation.notifyIfNeeded(queue)
        } catch {
            // The receive ring is not in guest RAM: input stays queued until the driver resets the device.
        }
        updateWatches()
    }

    private func transmit() {
        let memory = activation.memory
        do {
            try activation.serveAvailable(queue: Self.transmitQueue) { chain in
                let bytes = try memory.gather(chain.readable)
                bytes.withUnsafeBytes { endpoint.write($0) }
                return 0
            }
        } catch {
            // The transmit ring is not in guest RAM: nothing to send until the driver resets the device.
        }
    }
}
