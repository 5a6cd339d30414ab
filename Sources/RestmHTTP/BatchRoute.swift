import HTTPTypes
import Hummingbird
import NIOCore
import RestmCore

/// `POST /batch` (an extension of API.md, docs/API-EXTENSIONS.md): many independent requests
/// in one HTTP request, answered in one. Each item is served exactly as it would be on its
/// own — same route, same checks, same answer — and items run concurrently, so nothing is
/// ordered between them and each succeeds or fails alone. It exists for clients that have
/// many transactions in flight (the client library coalesces their requests): the cost of an
/// HTTP exchange is paid once per batch instead of once per request.
extension RestmResponder {
    /// Routes that wait by design, or batch themselves: never inside a batch (one slow item
    /// would hold every other item's answer).
    static func batchRefuses(_ method: HTTPRequest.Method, _ path: Substring) -> Bool {
        let route = path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        if route == "/batch" || route == "/watch" || route == "/events" { return true }
        if route.hasPrefix("/task/result/") || route.hasPrefix("/sys/") { return true }
        return false
    }

    func batch(_ request: Request, context: Context) async throws -> Response {
        // Items sit three levels down ({"requests": [{"body": …}]}): each body is checked
        // against the normal depth limit when its own handler parses it.
        let body = try await RequestParsing.object(request, limit: limits.requestBytesMax, depth: limits.jsonDepthMax + 3)
        guard let list = RequestParsing.member(body, "requests"), case .array(let items) = list else {
            throw RestmError(.badRequest, "the body must be {\"requests\": [{\"method\", \"path\", \"body\"}, ...]}")
        }
        guard items.count <= limits.batchRequestsMax else {
            throw RestmError(.tooLarge, "at most \(limits.batchRequestsMax) requests per batch")
        }
        // Every item is checked before any runs: a malformed batch changes nothing.
        var subrequests: [Item] = []
        subrequests.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            guard case .object(let members) = item else { throw RestmError(.badRequest, "requests[\(i)] must be an object") }
            guard let m = RequestParsing.member(members, "method")?.stringValue else {
                throw RestmError(.badRequest, "requests[\(i)].method must be a string")
            }
            guard let path = RequestParsing.member(members, "path")?.stringValue, path.hasPrefix("/") else {
                throw RestmError(.badRequest, "requests[\(i)].path must be a string that starts with /")
            }
            // As in a request line: no spaces or control bytes (percent-encode them). They
            // would also slip past the check below ("/watch " is routed as "/watch").
            guard !path.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else {
                throw RestmError(.badRequest, "requests[\(i)].path must not contain spaces or control characters (percent-encode them)")
            }
            guard let method = HTTPRequest.Method(m.uppercased()) else {
                throw RestmError(.badRequest, "requests[\(i)].method is not an HTTP method")
            }
            guard !Self.batchRefuses(method, path[...]) else {
                throw RestmError(.badRequest, "requests[\(i)]: \(method) \(path) waits or batches and cannot be part of a batch")
            }
            let body = RequestParsing.member(members, "body")
            // The transaction requests the client library sends (one-shots, begins, reads,
            // commits) are served from the body already parsed — the same checks and answer
            // as their handler, the same metrics and log line as `respond` — without a
            // request and a response of their own. Anything unusual takes the general path.
            if method == .post, let op = Self.directOp(path) {
                switch body {
                case nil, .null?:
                    subrequests.append(.direct(op, nil))
                    continue
                case .object(let fields)?:
                    subrequests.append(.direct(op, fields))
                    continue
                default: break
                }
            }
            var fields = HTTPFields()
            fields[.accept] = "application/json"
            var buffer = ByteBuffer()
            // `"body": null` is no body, except for a PUT, whose body is the value to write:
            // there it is the JSON null, as the same PUT alone would send it.
            if let b = body, !b.isNull || method == .put {
                fields[.contentType] = "application/json"
                buffer = ByteBuffer(string: b.compactText)
            }
            let head = HTTPRequest(method: method, scheme: nil, authority: nil, path: path, headerFields: fields)
            subrequests.append(.request(Request(head: head, body: RequestBody(buffer: buffer))))
        }
        // The items' read results share one budget (items past it answer 503 `overloaded`):
        // the whole answer stays below what a client accepts.
        let answers = await BatchAnswerBudget.$current.withValue(BatchAnswerBudget(max: limits.batchAnswerBytesMax)) {
            await withTaskGroup(of: (Int, String).self) { group in
                for (i, sub) in subrequests.enumerated() {
                    switch sub {
                    case .request(let r): group.addTask { (i, await self.batchItem(r, context: context)) }
                    case .direct(let op, let body): group.addTask { (i, await self.directItem(op, body)) }
                    }
                }
                var out = [String](repeating: "", count: subrequests.count)
                for await (i, text) in group { out[i] = text }
                return out
            }
        }
        var out = "{\"responses\":["
        out.reserveCapacity(answers.reduce(16) { $0 + $1.count + 1 })
        for (i, a) in answers.enumerated() {
            if i > 0 { out += "," }
            out += a
        }
        out += "]}"
        return Reply.json(.ok, out)
    }

    enum Item: Sendable {
        case request(Request)
        /// A POST of `Op` with this body (nil: none).
        case direct(Op, [(String, JSONValue)]?)
    }

    enum Op: Sendable {
        case oneShot, begin
        case read(String), commit(String)

        var route: String {
            switch self {
            case .oneShot: return "POST /txn"
            case .begin: return "POST /txn/begin"
            case .read: return "POST /txn/{t}/read"
            case .commit: return "POST /txn/{t}/commit"
            }
        }

        var path: String {
            switch self {
            case .oneShot: return "/txn"
            case .begin: return "/txn/begin"
            case .read(let t): return "/txn/\(t)/read"
            case .commit(let t): return "/txn/\(t)/commit"
            }
        }
    }

    /// The operation of a POST to `path` served directly, if it is one: `/txn`,
    /// `/txn/begin`, `/txn/{t}/read`, `/txn/{t}/commit`, with no query and no escapes.
    static func directOp(_ path: String) -> Op? {
        // No query, no escapes, no control bytes (which a request's fields would turn into
        // spaces): those take the general path.
        guard path.hasPrefix("/txn"), !path.utf8.contains(where: { $0 == 0x3F || $0 == 0x25 || $0 < 0x20 || $0 == 0x7F }) else {
            return nil
        }
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].isEmpty, parts[1] == "txn" else { return nil }
        switch parts.count {
        case 2: return .oneShot
        case 3 where parts[2] == "begin": return .begin
        case 4 where !parts[2].isEmpty && parts[3] == "read": return .read(String(parts[2]))
        case 4 where !parts[2].isEmpty && parts[3] == "commit": return .commit(String(parts[2]))
        default: return nil
        }
    }

    /// A directly served item: what `respond` would answer for it, as `{"status", "body"}`.
    func directItem(_ op: Op, _ body: [(String, JSONValue)]?) async -> String {
        let start = ContinuousClock.now
        var route = op.route
        var status = 200
        var text: String
        do {
            if node.state != .running {
                route = "unmatched"  // as `dispatch` counts it: refused before routing
                throw RestmError(.shuttingDown, "the node is shutting down")
            }
            switch op {
            case .oneShot: text = try await oneShotAnswer(body)
            case .begin:
                text = try await beginAnswer(body)
                status = 201
            case .read(let t): text = try await readAnswer(body, t)
            case .commit(let t): text = try await commitAnswer(body, t)
            }
        } catch let e as RestmError {
            status = e.httpStatus
            text = Reply.errorText(e)
        } catch {
            node.logger.error("unexpected error", metadata: ["restm.route": "\(route)", "error": "\(error)"])
            let e = RestmError(.internal, "internal error: \(error)")
            status = e.httpStatus
            text = Reply.errorText(e)
        }
        finished(route, method: .post, path: op.path, status: status, elapsed: ContinuousClock.now - start, requestID: nil)
        return "{\"status\":\(status),\"body\":" + text + "}"
    }

    /// One item, served by the same code as a request of its own (metrics and logs
    /// included), as `{"status": code, "body": json}`; a body that is not JSON (an HTML page,
    /// the metrics text) is given as a JSON string.
    func batchItem(_ request: Request, context: Context) async -> String {
        let response: Response
        do {
            response = try await respond(to: request, context: context)
        } catch {
            response = Reply.error(RestmError(.internal, "internal error: \(error)"))
        }
        let collector = BodyCollector()
        do {
            try await response.body.write(collector)
        } catch {
            return "{\"status\":500,\"body\":{\"error\":\"internal\",\"message\":\"the answer could not be collected\",\"retryable\":false}}"
        }
        var out = "{\"status\":\(response.status.code)"
        let bytes = collector.buffer.readableBytesView
        if !bytes.isEmpty {
            out += ",\"body\":"
            let text = String(decoding: bytes, as: UTF8.self)
            if response.headers[.contentType]?.hasPrefix("application/json") == true {
                out += text
            } else {
                JSONWriter.appendString(text, to: &out)
            }
        }
        return out + "}"
    }
}

/// Gathers a response body written by Hummingbird's writer protocol.
final class BodyCollector: ResponseBodyWriter, @unchecked Sendable {
    var buffer = ByteBuffer()

    func write(_ buffer: ByteBuffer) async throws {
        var b = buffer
        self.buffer.writeBuffer(&b)
    }

    func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
