import Hummingbird
import HummingbirdCore
import NIOCore
import NIOHTTPTypes
import Synchronization

/// The request context of a node: Hummingbird's basic one, plus the request's connection, so
/// that a long wait (`POST /watch`, `GET /events`) ends when its client goes away instead of
/// holding a watcher until its timeout.
public struct RestmRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The connection the request came on.
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }

    /// Follows this request's client: it has left once it has closed its side of the
    /// connection (a half-close: the server allows them, so the connection itself stays open
    /// until the answer is written) or the connection is gone. Needs `ClientGoneHandler` in
    /// the pipeline, which `HTTPServerBuilder.restm` puts there; without it (an in-process
    /// test client) the client never leaves.
    public func presence() -> ClientPresence {
        let presence = ClientPresence()
        let channel = self.channel
        channel.eventLoop.execute {
            if let handler = try? channel.pipeline.syncOperations.handler(type: ClientGoneHandler.self) {
                handler.follow(presence)
            } else {
                // No handler: none was installed, or the connection is already gone (a reset
                // before this ran removes the handlers). Then its close is the sign.
                channel.closeFuture.whenComplete { _ in presence.leave() }
            }
        }
        return presence
    }
}

/// Whether a request's client is still there (`RestmRequestContext.presence()`).
public final class ClientPresence: Sendable {
    private struct State {
        var left = false
        var nextID = 0
        var onLeave: [Int: @Sendable () -> Void] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    public var hasLeft: Bool { state.withLock { $0.left } }

    /// Marks the client gone and runs what waited for it (once).
    public func leave() {
        let callbacks: [@Sendable () -> Void] = state.withLock { s in
            guard !s.left else { return [] }
            s.left = true
            defer { s.onLeave = [:] }
            return Array(s.onLeave.values)
        }
        for f in callbacks { f() }
    }

    /// Runs `operation`, cancelled when the client leaves (at once if it has already left).
    public func until<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        let task = Task { try await operation() }
        let id: Int? = state.withLock { s in
            guard !s.left else { return nil }
            let id = s.nextID
            s.nextID += 1
            s.onLeave[id] = { task.cancel() }
            return id
        }
        if id == nil { task.cancel() }
        defer { if let id { _ = state.withLock { $0.onLeave.removeValue(forKey: id) } } }
        return try await withTaskCancellationHandler {
            try await task.value
        } onCancel: {
            task.cancel()
        }
    }
}

/// Notices that a client has closed its side of the connection (a half-close, which
/// Hummingbird allows, or the whole connection) while its request is still being answered:
/// NIO reports it as an inbound event that nothing else here acts on until the answer is
/// written.
public final class ClientGoneHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPRequestPart
    public typealias InboundOut = HTTPRequestPart

    private var gone = false
    /// The presence of the request being answered: requests on one HTTP/1 connection are
    /// answered one at a time, so a new one replaces the last (nothing accumulates over a
    /// long-lived connection).
    private var current: ClientPresence?

    public init() {}

    /// Tells `presence` when the client goes (now, if it has). On the channel's event loop.
    func follow(_ presence: ClientPresence) {
        if gone { presence.leave() } else { current = presence }
    }

    private func markGone() {
        gone = true
        current?.leave()
        current = nil
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { markGone() }
        context.fireUserInboundEventTriggered(event)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        markGone()
        context.fireChannelInactive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        markGone()
    }
}

@available(*, unavailable)
extension ClientGoneHandler: Sendable {}
