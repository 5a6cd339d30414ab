import HTTPTypes
import Hummingbird
import HummingbirdCore
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import RestmCore
import RestmNode

/// Gives a request the HTTP parser rejects (an unknown method, a request line or headers past
/// the decoder's limits, a broken chunked body…) the answer API.md promises every error: a
/// JSON body `{"error": "bad_request", …}` and `Restm-Ts`, instead of the empty 400 the HTTP
/// layer writes by itself.
///
/// Hummingbird answers a parser error with a 400 head carrying only `Connection: close` and
/// `Content-Length: 0`, once it has answered every request before it on the connection. This
/// handler sits between the HTTP codec and Hummingbird: it sees the parser error pass inbound
/// and, from then on, turns that bare head (which no route of ours writes: every answer of
/// ours has a body) into the JSON error. Everything else passes through untouched.
public final class MalformedRequestHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPRequestPart
    public typealias InboundOut = HTTPRequestPart
    public typealias OutboundIn = HTTPResponsePart
    public typealias OutboundOut = HTTPResponsePart

    private let clock: @Sendable () -> String
    /// The parser's error, once it has reported one (the connection closes after it).
    private var parserError: HTTPParserError?

    /// `clock` gives the node's clock as a `Restm-Ts` token.
    public init(clock: @escaping @Sendable () -> String) {
        self.clock = clock
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let e = error as? HTTPParserError, parserError == nil { parserError = e }
        context.fireErrorCaught(error)
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard let error = parserError, case .head(let head) = unwrapOutboundIn(data), Self.isBareBadRequest(head) else {
            context.write(data, promise: promise)
            return
        }
        let body = Reply.errorText(Self.error(error))
        var fields = HTTPFields()
        fields[.contentType] = "application/json"
        fields[.contentLength] = String(body.utf8.count)
        fields[.connection] = "close"
        fields[.restmTs] = clock()
        context.write(wrapOutboundOut(.head(HTTPResponse(status: .badRequest, headerFields: fields))), promise: nil)
        context.write(wrapOutboundOut(.body(context.channel.allocator.buffer(string: body))), promise: promise)
    }

    /// The answer to a request the parser refused; the connection closes after it.
    static func error(_ e: HTTPParserError) -> RestmError {
        var error = RestmError(.badRequest, "malformed HTTP request: \(describe(e))")
        error.closesConnection = true
        return error
    }

    /// The head Hummingbird writes for a parser error: 400 with an empty body and no type.
    static func isBareBadRequest(_ head: HTTPResponse) -> Bool {
        head.status == .badRequest && head.headerFields[.contentLength] == "0" && head.headerFields[.contentType] == nil
    }

    /// What was wrong, in words a person sending the request can act on.
    static func describe(_ e: HTTPParserError) -> String {
        switch e {
        case .invalidMethod: return "unknown method"
        case .invalidURL: return "invalid request target"
        case .invalidVersion: return "unsupported HTTP version"
        case .headerOverflow: return "request line or headers too large"
        case .invalidHeaderToken, .invalidConstant, .lfExpected, .invalidCharactersUsed, .strictModeAssertion:
            return "invalid request line or header"
        case .invalidContentLength, .unexpectedContentLength: return "invalid Content-Length"
        case .invalidChunkSize: return "invalid chunked body"
        case .invalidEOFState: return "request ended early"
        default: return "\(e)"
        }
    }
}

@available(*, unavailable)
extension MalformedRequestHandler: Sendable {}

extension HTTPServerBuilder {
    /// HTTP/1.1 as a reSTM node serves it: requests the HTTP parser rejects get API.md's JSON
    /// error (`MalformedRequestHandler`), long waits end when their client leaves
    /// (`ClientGoneHandler`), and `Expect: 100-continue` is answered (`ExpectContinueHandler`).
    public static func restm(_ node: Node) -> HTTPServerBuilder {
        .http1(configuration: .init(additionalChannelHandlers: [
            MalformedRequestHandler(clock: { node.clockNow.text }), ClientGoneHandler(), ExpectContinueHandler(),
        ]))
    }
}

/// Answers `Expect: 100-continue` with the interim `100 Continue` as soon as the request's
/// head arrives. curl sends it before any body over 1 KiB and then waits a second for an
/// answer before sending the body anyway; nothing else here answers it, so every large
/// `PUT` from curl took a second more. (The final status follows as usual; a request the
/// node refuses is refused after its body, which the client then sends for nothing — an
/// allowed, simpler order.)
public final class ExpectContinueHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPRequestPart
    public typealias InboundOut = HTTPRequestPart
    public typealias OutboundOut = HTTPResponsePart

    public init() {}

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data),
            let expect = head.headerFields[.expect], expect.lowercased() == "100-continue"
        {
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
        }
        context.fireChannelRead(data)
    }
}

@available(*, unavailable)
extension ExpectContinueHandler: Sendable {}
