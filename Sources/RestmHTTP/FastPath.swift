import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import NIOCore
import NIOHTTPTypes
import RestmCore
import Synchronization

/// Answers the transaction routes (`POST /txn/begin`, `/txn/{t}/read`, `/txn/{t}/commit`,
/// `POST /txn`) straight from the channel pipeline, with the same `RestmResponder` code and
/// so the same answers, without Hummingbird's per-connection async machinery (an async
/// sequence of request parts, a response writer, a logger and context per request). Those
/// cost about as much CPU as the transaction itself; every other route goes to Hummingbird.
///
/// Rules, each with its why:
/// - Only a request that arrives while nothing else is in flight on its connection is taken,
///   with a `Content-Length` within the request limit and no `Expect` or `Connection` header;
///   anything else goes to Hummingbird, which then owns the connection until its answers are
///   written (so answers always leave in request order).
/// - Parts that arrive while a fast request is being answered (a pipelining client) wait here
///   and are replayed in order once its answer is written; more than 1 MiB of them closes
///   the connection.
/// - A close asked for while a fast request is in flight (graceful shutdown) waits until its
///   answer is written: a commit that was sent gets its answer.
final class FastPathHandler: ChannelDuplexHandler, RemovableChannelHandler, @unchecked Sendable {
    // @unchecked: all state is touched on the channel's event loop only.
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let responder: RestmResponder
    let serverName: String

    private enum Mode {
        case idle
        case collecting(HTTPRequest, ByteBuffer)
        case answering
        /// Hummingbird has requests whose answers have not all been written.
        case passing
    }

    private var mode = Mode.idle
    /// Requests handed to Hummingbird whose answer's end has not been written yet.
    private var passed = 0
    private var waiting: [HTTPRequestPart] = []
    private var waitingBytes = 0
    private var deferredClose: (mode: CloseMode, promise: EventLoopPromise<Void>?)?
    private let waitingBytesMax = 1 << 20

    init(responder: RestmResponder, serverName: String) {
        self.responder = responder
        self.serverName = serverName
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        handle(unwrapInboundIn(data), context: context)
    }

    private func handle(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        switch mode {
        case .answering:
            waitingBytes += Self.size(of: part)
            guard waitingBytes <= waitingBytesMax else {
                context.close(promise: nil)
                return
            }
            waiting.append(part)
        case .collecting(let head, var body):
            switch part {
            case .head:
                // Cannot happen after a complete body; be safe and hand over.
                context.close(promise: nil)
            case .body(var chunk):
                mode = .idle  // release the buffer's reference before appending (no copy)
                body.writeBuffer(&chunk)
                mode = .collecting(head, body)
            case .end:
                mode = .answering
                answer(head, body, context: context)
            }
        case .idle, .passing:
            if case .head(let head) = part, passed == 0, let length = eligible(head) {
                mode = .collecting(head, context.channel.allocator.buffer(capacity: length))
                return
            }
            if case .head = part {
                passed += 1
                mode = .passing
            }
            context.fireChannelRead(wrapInboundOut(part))
        }
    }

    /// The body length of a request this handler answers, nil for one it passes on.
    private func eligible(_ head: HTTPRequest) -> Int? {
        guard head.method == .post, let path = head.path, path.hasPrefix("/txn"),
            head.headerFields[.expect] == nil, head.headerFields[.connection] == nil,
            head.headerFields[.transferEncoding] == nil,
            let lengthText = head.headerFields[.contentLength], let length = Int(lengthText),
            length >= 0, length <= responder.limits.requestBytesMax
        else { return nil }
        // /txn, /txn/begin, /txn/{t}/read, /txn/{t}/commit — not abort or anything else.
        let query = path.firstIndex(of: "?")
        let plain = query.map { path[..<$0] } ?? Substring(path)
        guard !plain.contains("%") else { return nil }
        let segments = plain.split(separator: "/", omittingEmptySubsequences: false)
        switch segments.count {
        case 2: return segments[1] == "txn" ? length : nil
        case 3: return segments[1] == "txn" && segments[2] == "begin" ? length : nil
        case 4: return segments[1] == "txn" && (segments[3] == "read" || segments[3] == "commit") ? length : nil
        default: return nil
        }
    }

    private func answer(_ head: HTTPRequest, _ body: ByteBuffer, context: ChannelHandlerContext) {
        let responder = self.responder
        let serverName = self.serverName
        let loop = context.eventLoop
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: loop)
        responder.node.metrics.count("http_fast_path")
        Task {
            var response = await responder.respond(Request(head: head, body: RequestBody(buffer: body)))
            var bytes = ByteBuffer()
            do {
                bytes = try await Self.collect(response.body)
            } catch {
                response = Reply.error(RestmError(.internal, "internal error: \(error)"))
                bytes = (try? await Self.collect(response.body)) ?? ByteBuffer()
            }
            response.headers[.server] = serverName
            response.headers[.date] = HTTPDate.now()
            response.headers[.contentLength] = String(bytes.readableBytes)
            let head = response.head
            loop.execute {
                bound.value.handler.finish(head, bytes, context: bound.value.context)
            }
        }
    }

    private func finish(_ head: HTTPResponse, _ bytes: ByteBuffer, context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if bytes.readableBytes > 0 { context.write(wrapOutboundOut(.body(bytes)), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        mode = .idle
        if let c = deferredClose {
            deferredClose = nil
            context.close(mode: c.mode, promise: c.promise)
            return
        }
        // Replay what arrived meanwhile, in order, until another fast request takes over;
        // Hummingbird's side takes what it was handed at the end of a read.
        guard !waiting.isEmpty else { return }
        while !waiting.isEmpty {
            if case .answering = mode { break }
            let part = waiting.removeFirst()
            waitingBytes -= Self.size(of: part)
            handle(part, context: context)
        }
        context.fireChannelReadComplete()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data), passed > 0 {
            passed -= 1
            if passed == 0, case .passing = mode { mode = .idle }
        }
        context.write(data, promise: promise)
    }

    func close(context: ChannelHandlerContext, mode closeMode: CloseMode, promise: EventLoopPromise<Void>?) {
        switch mode {
        case .collecting, .answering:
            if let earlier = deferredClose {
                // Keep the widest close; complete both promises with it.
                let m: CloseMode = earlier.mode == .all || closeMode == .all ? .all : closeMode
                if let p = earlier.promise, let q = promise { p.futureResult.cascade(to: q) }
                deferredClose = (m, earlier.promise ?? promise)
            } else {
                deferredClose = (closeMode, promise)
            }
        case .idle, .passing:
            context.close(mode: closeMode, promise: promise)
        }
    }

    private static func size(of part: HTTPRequestPart) -> Int {
        if case .body(let b) = part { return b.readableBytes }
        return 256
    }

    /// A response body's bytes (the transaction routes answer small, fixed bodies).
    static func collect(_ body: ResponseBody) async throws -> ByteBuffer {
        let sink = Sink()
        try await body.write(Collector(sink: sink))
        return sink.bytes
    }

    final class Sink: @unchecked Sendable {
        // @unchecked: used by one task, in sequence.
        var bytes = ByteBuffer()
    }

    struct Collector: ResponseBodyWriter {
        let sink: Sink

        mutating func write(_ buffer: ByteBuffer) async throws {
            var b = buffer
            sink.bytes.writeBuffer(&b)
        }

        consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
    }
}

extension RestmResponder {
    /// The HTTP/1.1 server for this responder: Hummingbird's, with the transaction routes
    /// answered from the channel pipeline (`FastPathHandler`) unless `fastPath` is false.
    public func server(fastPath: Bool = true, serverName: String = "restm") -> HTTPServerBuilder {
        guard fastPath else { return .http1() }
        let responder = self
        return .http1(configuration: .init(additionalChannelHandlers: [FastPathHandler(responder: responder, serverName: serverName)]))
    }
}

/// The `Date` header's text, made at most once a second.
enum HTTPDate {
    private static let cache = Mutex<(second: Int, text: String)>((-1, ""))

    static func now() -> String {
        var t = timespec()
        clock_gettime(CLOCK_REALTIME, &t)
        let second = t.tv_sec
        if let hit = cache.withLock({ $0.second == second ? $0.text : nil }) { return hit }
        var tm = tm()
        var s = second
        gmtime_r(&s, &tm)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let text = "\(days[Int(tm.tm_wday)]), \(two(tm.tm_mday)) \(months[Int(tm.tm_mon)]) \(1900 + tm.tm_year) \(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec)) GMT"
        cache.withLock { $0 = (second, text) }
        return text
    }
}
