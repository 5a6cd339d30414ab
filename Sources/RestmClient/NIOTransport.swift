import NIOCore
import NIOHTTP1
import NIOPosix
import RestmCore
import Synchronization

/// What one HTTP exchange answers.
struct HTTPAnswer: Sendable {
    var status: Int
    var restmTs: String?
    var body: ByteBuffer
    /// The body already parsed (an item of a batch), or nil: parse `body`.
    var json: JSONValue?

    init(status: Int, restmTs: String?, body: ByteBuffer, json: JSONValue? = nil) {
        self.status = status
        self.restmTs = restmTs
        self.body = body
        self.json = json
    }
}

enum NIOTransportError: Error, CustomStringConvertible {
    case timedOut(TimeAmount)
    /// No connection slot came free before the request's deadline.
    case noSlotInTime
    case responseTooLarge(Int)
    case unsafeRequest(String)

    var description: String {
        switch self {
        case .timedOut(let t): return "no answer within \(t.nanoseconds / 1_000_000) ms"
        case .noSlotInTime: return "no connection came free before the request's deadline"
        case .responseTooLarge(let n): return "the response is larger than \(n) bytes"
        case .unsafeRequest(let what): return "\(what) holds spaces or control characters"
        }
    }
}

/// Sends one request and answers its response; `HTTPBackend` builds on it.
protocol HTTPTransport: Sendable {
    func send(_ method: HTTPMethod, _ path: String, body: String?, restmAfter: String?) async throws -> HTTPAnswer
    func shutdown() async throws
}

/// A lean HTTP/1.1 transport straight on SwiftNIO, for load generators: a pool of keep-alive
/// connections, one request at a time on each and at most `connections` requests in flight,
/// no redirects, no TLS (`http://` only), no per-request allocation beyond the request's
/// bytes and the response's body. It exists so
/// that `restm bench` spends less of the machine's CPU than the node it measures
/// (AsyncHTTPClient costs about as much per request as the server does).
final class NIOTransport: HTTPTransport {
    let host: String
    let port: Int
    let hostHeader: String
    /// The URL's path, if any (a node behind a prefix): put before every request's path.
    let pathPrefix: String
    let connectionsMax: Int
    let requestTimeout: TimeAmount
    let responseBytesMax: Int
    private let idle = Mutex<[Connection]>([])
    /// Requests in flight at most (`connections`): one more waits for a slot, in order.
    private let slots: Slots
    private let group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton

    /// Parses `http://host[:port]`; nil for any other scheme.
    init?(url: String, connections: Int, requestTimeout: TimeAmount, responseBytesMax: Int) {
        guard url.hasPrefix("http://") else { return nil }
        var rest = url.dropFirst("http://".count)
        var prefix = ""
        if let slash = rest.firstIndex(of: "/") {
            prefix = String(rest[slash...])
            while prefix.hasSuffix("/") { prefix.removeLast() }
            rest = rest[..<slash]
        }
        pathPrefix = prefix
        guard !rest.isEmpty else { return nil }
        if let colon = rest.lastIndex(of: ":"), !rest.hasSuffix("]") {
            guard let p = Int(rest[rest.index(after: colon)...]), p > 0, p < 65536 else { return nil }
            host = String(rest[..<colon].filter { $0 != "[" && $0 != "]" })
            port = p
        } else {
            host = String(rest.filter { $0 != "[" && $0 != "]" })
            port = 80
        }
        hostHeader = String(rest)
        connectionsMax = max(1, connections)
        slots = Slots(max(1, connections))
        self.requestTimeout = requestTimeout
        self.responseBytesMax = responseBytesMax
    }

    func shutdown() async throws {
        let all = idle.withLock { pool in
            defer { pool.removeAll() }
            return pool
        }
        for c in all { try? await c.channel.close() }
    }

    func send(_ method: HTTPMethod, _ path: String, body: String?, restmAfter: String?) async throws -> HTTPAnswer {
        // The request line and headers are written by hand: nothing may break out of them.
        func unsafe(_ s: String) -> Bool { s.utf8.contains { $0 <= 0x20 || $0 == 0x7f } }
        guard !unsafe(path) else { throw NIOTransportError.unsafeRequest("the path") }
        if let a = restmAfter, unsafe(a) { throw NIOTransportError.unsafeRequest("the Restm-After token") }
        // A request that cannot get a slot by its deadline (`RequestDeadline`) fails as
        // timed out, as it would on the wire.
        try await slots.acquire(until: RequestDeadline.current)
        defer { slots.release() }
        try Task.checkCancellation()  // cancelled while its slot was being handed over
        let conn: Connection
        if let c = idle.withLock({ $0.popLast() }), c.channel.isActive {
            conn = c
        } else {
            conn = try await connect()
        }
        // The request's bytes, written by hand: one buffer, no encoder on the way out.
        let bodyBytes = body?.utf8.count ?? 0
        var buffer = conn.channel.allocator.buffer(capacity: 160 + path.utf8.count + bodyBytes)
        buffer.writeString(method.rawValue)
        buffer.writeStaticString(" ")
        buffer.writeString(pathPrefix)
        buffer.writeString(path)
        buffer.writeStaticString(" HTTP/1.1\r\nHost: ")
        buffer.writeString(hostHeader)
        buffer.writeStaticString("\r\nAccept: application/json\r\n")
        if let a = restmAfter {
            buffer.writeStaticString("Restm-After: ")
            buffer.writeString(a)
            buffer.writeStaticString("\r\n")
        }
        if body != nil { buffer.writeStaticString("Content-Type: application/json\r\n") }
        if body != nil || method == .POST || method == .PUT {
            buffer.writeStaticString("Content-Length: ")
            buffer.writeString(String(bodyBytes))
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("\r\n")
        if let body { buffer.writeString(body) }
        let promise = conn.channel.eventLoop.makePromise(of: HTTPAnswer.self)
        // A write that fails (the connection closed under us) fails the exchange at once; a
        // second completion of the promise is ignored.
        let written = conn.channel.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenFailure { promise.fail($0) }
        let timeout = TimeAmount.nanoseconds(RequestDeadline.bound(nanoseconds: requestTimeout.nanoseconds))
        conn.channel.writeAndFlush(Exchange(method: method, bytes: buffer, promise: promise, timeout: timeout), promise: written)
        let answer: HTTPAnswer
        do {
            // A cancelled caller stops waiting at once (the connection is closed below:
            // an answer may still be on its way); otherwise the wait ends with the answer,
            // or the handler's request timeout.
            answer = try await withTaskCancellationHandler {
                try await promise.futureResult.get()
            } onCancel: {
                promise.fail(CancellationError())
            }
        } catch {
            conn.channel.close(promise: nil)
            throw error
        }
        if conn.reusable {
            idle.withLock { pool in
                if pool.count < connectionsMax { pool.append(conn) } else { conn.channel.close(promise: nil) }
            }
        } else {
            conn.channel.close(promise: nil)
        }
        return answer
    }

    private func connect() async throws -> Connection {
        let handler = ExchangeHandler(responseBytesMax: responseBytesMax, timeout: requestTimeout)
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RawRequestWriter())
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes)))
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: host, port: port)
            .get()
        return Connection(channel: channel, handler: handler)
    }

    /// A counting semaphore for requests in flight: waiters are served in arrival order, and
    /// a cancelled waiter leaves the line.
    final class Slots: Sendable {
        struct State {
            var free: Int
            var nextTicket: UInt64 = 0
            var waiting: [(ticket: UInt64, resume: CheckedContinuation<Void, any Error>)] = []
        }
        private let state: Mutex<State>

        init(_ count: Int) { state = Mutex(State(free: count)) }

        /// Takes a slot, waiting in line; throws `CancellationError` when cancelled and
        /// `noSlotInTime` at `deadline`.
        func acquire(until deadline: ContinuousClock.Instant? = nil) async throws {
            let now: Bool = state.withLock { s in
                guard s.free > 0, s.waiting.isEmpty else { return false }
                s.free -= 1
                return true
            }
            if now { return }
            let ticket = state.withLock { s in
                defer { s.nextTicket += 1 }
                return s.nextTicket
            }
            let timer = deadline.map { end in
                Task { [weak self] in
                    try? await Task.sleep(until: end)
                    self?.leave(ticket, NIOTransportError.noSlotInTime)
                }
            }
            defer { timer?.cancel() }
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
                    let outcome: (any Error)?? = state.withLock { s in
                        // Checked under the lock: a cancellation or a timer that came before
                        // this waiter was in line found nothing to take out.
                        if Task.isCancelled { return .some(CancellationError()) }
                        if let deadline, ContinuousClock.now >= deadline { return .some(NIOTransportError.noSlotInTime) }
                        if s.free > 0, s.waiting.isEmpty {
                            s.free -= 1
                            return .some(nil)
                        }
                        s.waiting.append((ticket, c))
                        return .none
                    }
                    switch outcome {
                    case .some(nil): c.resume()
                    case .some(let e?): c.resume(throwing: e)
                    case .none: break
                    }
                }
            } onCancel: {
                leave(ticket, CancellationError())
            }
        }

        /// Takes waiter `ticket` out of the line, if it is still there, failing it with `error`.
        private func leave(_ ticket: UInt64, _ error: any Error) {
            let c: CheckedContinuation<Void, any Error>? = state.withLock { s in
                guard let i = s.waiting.firstIndex(where: { $0.ticket == ticket }) else { return nil }
                return s.waiting.remove(at: i).resume
            }
            c?.resume(throwing: error)
        }

        func release() {
            let next: CheckedContinuation<Void, any Error>? = state.withLock { s in
                if s.waiting.isEmpty {
                    s.free += 1
                    return nil
                }
                return s.waiting.removeFirst().resume  // the slot passes to it
            }
            next?.resume()
        }
    }

    /// A pooled connection. `reusable` is read after the exchange completed (the handler
    /// sets it on the event loop before it fulfils the promise).
    final class Connection: @unchecked Sendable {
        let channel: any Channel
        let handler: ExchangeHandler
        init(channel: any Channel, handler: ExchangeHandler) {
            self.channel = channel
            self.handler = handler
        }
        var reusable: Bool { handler.keepAlive.load(ordering: .acquiring) }
    }

    struct Exchange {
        var method: HTTPMethod
        var bytes: ByteBuffer
        var promise: EventLoopPromise<HTTPAnswer>
        /// The request timeout, or less (`RequestDeadline`).
        var timeout: TimeAmount
    }

    /// Writes requests encoded by hand: the response decoder sees a bare head (it needs the
    /// method, to know that an answer to HEAD has no body), and only the body part, which
    /// carries the whole request's bytes, reaches the socket.
    final class RawRequestWriter: ChannelOutboundHandler, Sendable {
        typealias OutboundIn = HTTPClientRequestPart
        typealias OutboundOut = ByteBuffer

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            if case .body(.byteBuffer(let bytes)) = unwrapOutboundIn(data) {
                context.write(wrapOutboundOut(bytes), promise: promise)
            } else {
                promise?.succeed(())
            }
        }
    }

    /// One exchange at a time: takes the request and its promise on the way out, collects the
    /// response and fulfils the promise. Fails it if the connection drops, errs or times out.
    final class ExchangeHandler: ChannelDuplexHandler, @unchecked Sendable {
        // @unchecked: every field but `keepAlive` is touched only on the channel's event loop.
        typealias InboundIn = HTTPClientResponsePart
        typealias OutboundIn = Exchange
        typealias OutboundOut = HTTPClientRequestPart

        let responseBytesMax: Int
        let timeout: TimeAmount
        let keepAlive = Atomic<Bool>(true)
        private var promise: EventLoopPromise<HTTPAnswer>?
        private var status = 0
        private var restmTs: String?
        private var body: ByteBuffer?
        private var timer: Scheduled<Void>?

        init(responseBytesMax: Int, timeout: TimeAmount) {
            self.responseBytesMax = responseBytesMax
            self.timeout = timeout
        }

        func write(context: ChannelHandlerContext, data: NIOAny, promise writePromise: EventLoopPromise<Void>?) {
            let x = unwrapOutboundIn(data)
            guard self.promise == nil else {
                x.promise.fail(ChannelError.inappropriateOperationForState)
                return
            }
            self.promise = x.promise
            status = 0
            restmTs = nil
            body = nil
            let ctx = NIOLoopBound(context, eventLoop: context.eventLoop)
            let timeout = x.timeout
            timer = context.eventLoop.scheduleTask(in: timeout) { [weak self] in
                guard let self else { return }
                self.fail(ctx.value, NIOTransportError.timedOut(timeout))
            }
            context.write(wrapOutboundOut(.head(HTTPRequestHead(version: .http1_1, method: x.method, uri: ""))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(x.bytes))), promise: writePromise)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let h):
                status = Int(h.status.code)
                restmTs = h.headers.first(name: "Restm-Ts")
                keepAlive.store(h.isKeepAlive, ordering: .releasing)
            case .body(var part):
                if (body?.readableBytes ?? 0) + part.readableBytes > responseBytesMax {
                    fail(context, NIOTransportError.responseTooLarge(responseBytesMax))
                    return
                }
                if body == nil { body = part } else { body!.writeBuffer(&part) }
            case .end:
                timer?.cancel()
                timer = nil
                let p = promise
                promise = nil
                p?.succeed(HTTPAnswer(status: status, restmTs: restmTs, body: body ?? ByteBuffer()))
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            fail(context, ChannelError.ioOnClosedChannel)
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            fail(context, error)
        }

        private func fail(_ context: ChannelHandlerContext, _ error: any Error) {
            keepAlive.store(false, ordering: .releasing)
            timer?.cancel()
            timer = nil
            if let p = promise {
                promise = nil
                p.fail(error)
            }
            context.close(promise: nil)
        }
    }
}
