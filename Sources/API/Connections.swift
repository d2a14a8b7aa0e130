import NIOCore

/// The open connections of one server, so `stop()` can drain them. Touched only on their event loop.
final class Connections: Sendable {
    let eventLoop: any EventLoop
    private let channels: NIOLoopBoundBox<[ObjectIdentifier: any Channel]>

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
        self.channels = .makeBoxSendingValue([:], eventLoop: eventLoop)
    }

    func insert(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        channels.value[id] = channel
        channel.closeFuture.whenComplete { [channels] _ in channels.value[id] = nil }
    }

    /// Asks every connection to close once its current response is written (NIO's pipelining handler
    /// does that on `ChannelShouldQuiesceEvent`); closes the stragglers after `timeout`.
    func quiesce(forcingAfter timeout: TimeAmount) -> EventLoopFuture<Void> {
        let open = Array(channels.value.values)
        for channel in open {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
        let deadline = eventLoop.scheduleTask(in: timeout) {
            for channel in open { channel.close(promise: nil) }
        }
        let closed = EventLoopFuture.andAllComplete(open.map(\.closeFuture), on: eventLoop)
        closed.whenComplete { _ in deadline.cancel() }
        return closed
    }
}
