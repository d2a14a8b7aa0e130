import Glibc

/// The device-thread side of virtio-net: moves frames between each RX/TX queue pair and its TAP queue,
/// and serves the control queue.
///
/// RX reads a frame straight into the next posted buffer; when the driver has posted none, the TAP
/// queue is unwatched (frames wait in the kernel, nothing spins) until the driver kicks the RX queue.
final class NetWorker: DeviceWorker {
    private unowned let thread: DeviceThread
    private let activation: VirtioActivation
    private let tap: Tap
    private let counters: NetCounters
    private let control: NetControlState
    /// Pairs the driver can use: all with MQ negotiated, else the first.
    private let usablePairs: Int
    private let controlQueueIndex: Int?
    /// Pairs the driver enabled (VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET; 1 until it does).
    private var activePairs = 1
    private var tapWatched: [Bool]

    /// Frames or requests handled per wakeup, so one busy queue cannot starve the others.
    private static let budget = 256

    init(thread: DeviceThread, activation: VirtioActivation, tap: Tap, queuePairs: Int,
         counters: NetCounters, control: NetControlState) throws {
        self.thread = thread
        self.activation = activation
        self.tap = tap
        self.counters = counters
        self.control = control
        let features = activation.features
        usablePairs = features & NetFeature.mq != 0 ? queuePairs : 1
        controlQueueIndex = features & NetFeature.ctrlVq != 0 ? 2 * usablePairs : nil
        tapWatched = Array(repeating: false, count: queuePairs)

        // Restored or default: what the driver last set through the control queue.
        let saved = control.values
        let offloads = (saved.guestOffloads ?? .max) & features & NetFeature.guestOffloads
        let pairs = min(saved.activePairs, usablePairs)
        try tap.setOffload(NetFeature.tapOffload(forGuest: offloads))
        control.set(activePairs: pairs, guestOffloads: offloads)
        try setActivePairs(pairs)
        // Queues of pairs the driver cannot use stay detached: the kernel must not steer frames there.
        for pair in usablePairs..<queuePairs { try tap.setQueue(pair, attached: false) }
    }

    func queueNotified(_ index: Int) {
        if index == controlQueueIndex {
            serveControlQueue()
        } else if index / 2 < usablePairs {
            if index % 2 == 0 { receive(pair: index / 2) } else { transmit(pair: index / 2) }
        }
    }

    func processAll() {
        for pair in 0..<usablePairs {
            transmit(pair: pair)
            receive(pair: pair)
        }
        serveControlQueue()
    }

    // MARK: RX

    private func setTapWatched(_ pair: Int, _ watched: Bool) {
        guard tapWatched[pair] != watched else { return }
        tapWatched[pair] = watched
        if watched {
            try? thread.watch(tap.fds[pair]) { [unowned self] _ in self.receive(pair: pair) }
        } else {
            thread.unwatch(tap.fds[pair])
        }
    }

    private func receive(pair: Int) {
        guard pair < activePairs else { return }
        let queue = activation.queues[2 * pair]
        let memory = activation.memory
        do {
            // Watch the TAP unless the driver runs out of buffers; frames left over after the budget
            // then bring us back.
            var starved = false
            defer { setTapWatched(pair, !starved) }
            for _ in 0..<Self.budget {
                guard let chain = try queue.popValid() else {
                    // Out of buffers: wait for the driver's kick (unless it added some meanwhile).
                    if try queue.enableNotification() { continue }
                    starved = true
                    break
                }
                guard chain.writableLength >= Tap.headerSize else {
                    try queue.pushUsed(head: chain.head, length: 0)
                    continue
                }
                let iovecs = try memory.iovecs(chain.writable, limit: .max).prefix(Tap.maxIovecs)
                switch tap.read(queue: pair, into: Array(iovecs)) {
                case .empty:
                    queue.unpop()
                    try activation.notifyIfNeeded(queue)
                    return
                case .dropped:
                    queue.unpop()
                case let .frame(length):
                    memory.markDirty(chain.writable)
                    // num_buffers (header bytes 10–11): the TAP leaves it alone; without MRG_RXBUF it is 1.
                    try memory.scatter([1, 0], into: chain.writable, skip: 10)
                    try queue.pushUsed(head: chain.head, length: UInt32(length))
                    counters.rxFrames.add(1, ordering: .relaxed)
                    counters.rxBytes.add(UInt64(length - Tap.headerSize), ordering: .relaxed)
                }
            }
            try activation.notifyIfNeeded(queue)
        } catch {
            // The RX ring is not in guest RAM: stop reading for it until the driver resets the device.
            setTapWatched(pair, false)
        }
    }

    // MARK: TX

    private func transmit(pair: Int) {
        let memory = activation.memory
        do {
            try activation.serveAvailable(queue: 2 * pair + 1, budget: Self.budget) { chain in
                let length = chain.readableLength
                if length > Tap.headerSize, chain.readable.count <= Tap.maxIovecs,
                   tap.write(queue: pair, from: try memory.iovecs(chain.readable)) {
                    counters.txFrames.add(1, ordering: .relaxed)
                    counters.txBytes.add(UInt64(length - Tap.headerSize), ordering: .relaxed)
                }
                return 0
            }
        } catch {
            // The TX ring is not in guest RAM: nothing to send until the driver resets the device.
        }
    }

    // MARK: control queue (§5.1.6.5)

    private static let ackOK: UInt8 = 0, ackError: UInt8 = 1
    private static let classMQ: UInt8 = 4, mqVQPairsSet: UInt8 = 0
    private static let classGuestOffloads: UInt8 = 5, guestOffloadsSet: UInt8 = 0

    private func serveControlQueue() {
        guard let index = controlQueueIndex else { return }
        let memory = activation.memory
        do {
            try activation.serveAvailable(queue: index) { chain in
                let request = try memory.gather(chain.readable, limit: 16)
                let ack = request.count >= 2 ? handleControl(request[0], request[1], Array(request.dropFirst(2))) : Self.ackError
                return UInt32(try memory.scatter([ack], into: chain.writable))
            }
        } catch {
            // The control ring is not in guest RAM: the driver will time out on its command.
        }
    }

    private func handleControl(_ cls: UInt8, _ command: UInt8, _ data: [UInt8]) -> UInt8 {
        switch (cls, command) {
        case (Self.classMQ, Self.mqVQPairsSet):
            guard activation.features & NetFeature.mq != 0, data.count >= 2 else { return Self.ackError }
            let pairs = Int(data[0]) | Int(data[1]) << 8
            guard (1...usablePairs).contains(pairs), (try? setActivePairs(pairs)) != nil else { return Self.ackError }
            control.set(activePairs: pairs, guestOffloads: control.values.guestOffloads)
            return Self.ackOK
        case (Self.classGuestOffloads, Self.guestOffloadsSet):
            guard activation.features & NetFeature.ctrlGuestOffloads != 0, data.count >= 8 else { return Self.ackError }
            let offloads = data[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            // Only offloads negotiated at feature time may be switched on.
            guard offloads & ~(activation.features & NetFeature.guestOffloads) == 0,
                  (try? tap.setOffload(NetFeature.tapOffload(forGuest: offloads))) != nil else { return Self.ackError }
            control.set(activePairs: activePairs, guestOffloads: offloads)
            return Self.ackOK
        default:
            return Self.ackError
        }
    }

    /// Serves RX for the first `count` pairs only: the other TAP queues are detached and unwatched.
    private func setActivePairs(_ count: Int) throws {
        for pair in 0..<usablePairs {
            let active = pair < count
            try tap.setQueue(pair, attached: active)
            setTapWatched(pair, active)
        }
        activePairs = count
    }
}
