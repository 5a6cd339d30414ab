import HTTPTypes
import Hummingbird
import NIOCore
import RestmCore
import RestmNode
import RestmTasks
import Synchronization
import Logging

/// The HTTP API of API.md. Routing is done by hand over path segments: it is the hot path
/// of every request, and one `switch` keeps every route, its metric name and its errors in
/// one place. Every error, thrown from any layer, becomes the JSON error of API.md here.
public struct RestmResponder: HTTPResponder {
    public typealias Context = RestmRequestContext

    public let node: Node
    /// Tasks and their workers (started by `restm serve` or `POST /sys/init`).
    public let tasks: TaskService
    /// Starts the graceful shutdown of the whole process (set by `restm serve`).
    let requestShutdown: @Sendable () -> Void

    public init(node: Node, tasks: TaskService? = nil, requestShutdown: @escaping @Sendable () -> Void = {}) {
        self.node = node
        self.tasks = tasks ?? TaskService(node: node, kinds: TaskKinds(SortDemo.kinds))
        self.requestShutdown = requestShutdown
    }

    var limits: Limits { node.limits }

    public func respond(to request: Request, context: Context) async throws -> Response {
        let start = ContinuousClock.now
        var route = "unmatched"
        var response: Response
        do {
            if let after = request.headers[.restmAfter] {
                let token = after.trimmingCharacters(in: "\" ")
                guard let ts = Timestamp(text: token) else {
                    throw RestmError(.badTimestamp, "Restm-After must be a token from a Restm-Ts header")
                }
                try node.observeClientToken(ts)
            }
            if AnswerLease.current == nil {
                // A request of its own (a batch's items share the batch's lease): what its
                // answer holds of read results counts against the node's answers in flight
                // until the answer has been sent.
                let lease = AnswerLease(pool: node.answerPool)
                response = try await AnswerLease.$current.withValue(lease) {
                    try await dispatch(request, context: context, route: &route)
                }
                if lease.holding > 0 { response.body = Self.holding(response.body, lease) }
            } else {
                response = try await dispatch(request, context: context, route: &route)
            }
        } catch let e as RestmError {
            response = Reply.error(e)
        } catch {
            if let mapped = RestmError(client: error) {
                // A task route's embedded transaction refused (413, 503…): that refusal.
                response = Reply.error(mapped)
            } else {
                node.logger.error("unexpected error", metadata: ["restm.route": "\(route)", "error": "\(error)"])
                response = Reply.error(RestmError(.internal, "internal error: \(error)"))
            }
        }
        response.headers[.restmTs] = node.clockNow.text
        let elapsed = ContinuousClock.now - start
        // A request id: the client's `X-Request-Id` (echoed back), else a node-local number.
        let given = request.headers[.xRequestID]
        if let given { response.headers[.xRequestID] = given }
        finished(route, method: request.method, path: request.uri.path, status: response.status.code, elapsed: elapsed, requestID: given)
        return response
    }

    /// 405 unless `method` is `a` or `b`, which the answer's `Allow` header lists (no
    /// allocation on the way through: every request passes here).
    static func only(_ method: HTTPRequest.Method, _ a: HTTPRequest.Method, _ b: HTTPRequest.Method? = nil, _ path: String) throws {
        guard method == a || method == b else { throw notAllowed(method, b.map { [a, $0] } ?? [a], path) }
    }

    static func notAllowed(_ method: HTTPRequest.Method, _ allowed: [HTTPRequest.Method], _ path: String) -> RestmError {
        var e = RestmError(.methodNotAllowed, "\(method) is not allowed on \(path)")
        e.allow = allowed.map(\.rawValue)
        return e
    }

    /// `body`, keeping `lease` (and the bytes it holds) until it has been written or dropped.
    /// Written in slices, so that a slow reader's backpressure keeps the lease until all but
    /// the last slice have left (a single write returns once the channel has queued it).
    static func holding(_ body: ResponseBody, _ lease: AnswerLease) -> ResponseBody {
        ResponseBody(contentLength: body.contentLength) { writer in
            try await body.write(SlicingWriter(inner: writer))
            withExtendedLifetime(lease) {}
        }
    }

    struct SlicingWriter: ResponseBodyWriter {
        static let sliceBytes = 256 << 10
        var inner: any ResponseBodyWriter

        mutating func write(_ buffer: ByteBuffer) async throws {
            var rest = buffer
            while rest.readableBytes > Self.sliceBytes, let slice = rest.readSlice(length: Self.sliceBytes) {
                try await inner.write(slice)
            }
            try await inner.write(rest)
        }

        consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
            try await inner.finish(trailingHeaders)
        }
    }

    /// The metrics and the log line of every request (and of every batch item).
    func finished(_ route: String, method: HTTPRequest.Method, path: String, status: Int, elapsed: Duration, requestID given: String?) {
        node.metrics.record("http", route, success: status < 400, duration: elapsed)
        let slow = elapsed > .seconds(2) && !Self.blockingRoutes.contains(route)
        if status >= 500 || slow || node.logger.logLevel <= .debug {
            let id = given ?? "r\(Self.requests.add(1, ordering: .relaxed).newValue)"
            var meta: Logger.Metadata = [
                "restm.request": "\(id)", "restm.route": "\(route)", "http.method": "\(method)",
                "http.status": "\(status)", "restm.ms": "\(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)",
            ]
            // Ids only, never values: the transaction of /txn/{t}/… routes.
            let parts = path.split(separator: "/")
            if parts.count >= 2, parts[0] == "txn", parts[1] != "begin" { meta["restm.txn"] = "\(parts[1])" }
            if status >= 500 {
                node.logger.warning("request failed", metadata: meta)
            } else if slow {
                node.logger.info("slow request", metadata: meta)
            } else {
                node.logger.debug("request", metadata: meta)
            }
        }
    }

    /// Routes that block by design (long-polls, streams, waits for results): never "slow".
    static let blockingRoutes: Set<String> = ["POST /watch", "GET /events", "GET /task/result/{id}"]
    static let requests = Atomic<UInt64>(0)

    func dispatch(_ request: Request, context: Context, route: inout String) async throws -> Response {
        let path = request.uri.path
        var segments = path.split(separator: "/", omittingEmptySubsequences: false)
        if segments.first == "" { segments.removeFirst() }
        let method = request.method
        func only(_ a: HTTPRequest.Method, _ b: HTTPRequest.Method? = nil) throws {
            try Self.only(method, a, b, path)
        }
        func decoded(_ s: Substring) throws -> String {
            guard let d = RequestParsing.percentDecode(s) else { throw RestmError(.badPointer, "malformed percent-encoding in the path") }
            return d
        }

        let top = segments.first ?? ""
        if node.state != .running, top != "sys", top != "metrics" {
            throw RestmError(.shuttingDown, "the node is shutting down")
        }
        switch (top, segments.count) {
        case ("", 1), ("", 0):
            route = "GET /"
            try only(.get, .head)
            return try await Explorer(node: node, tasks: tasks).home(request)

        case ("ptr", 1):
            route = "POST /ptr"
            try only(.post)
            return try await allocate(request)

        case ("ptr", 2):
            let p = try decoded(segments[1])
            switch method {
            case .get, .head:
                route = "GET /ptr/{p}"
                return try await getPointer(request, p)
            case .put:
                route = "PUT /ptr/{p}"
                return try await putPointer(request, p)
            case .delete:
                route = "DELETE /ptr/{p}"
                return try await deletePointer(request, p)
            default: throw Self.notAllowed(method, [.get, .head, .put, .delete], path)
            }

        case ("ptr", 3) where segments[2] == "history":
            route = "GET /ptr/{p}/history"
            try only(.get, .head)
            return try await history(request, try decoded(segments[1]))

        case ("ptrs", 1):
            route = "GET /ptrs"
            try only(.get, .head)
            return try await listPointers(request)

        case ("batch", 1):
            route = "POST /batch"
            try only(.post)
            return try await batch(request, context: context)

        case ("txn", 1):
            route = "POST /txn"
            try only(.post)
            return try await oneShot(request)

        case ("txn", 2) where segments[1] == "begin":
            route = "POST /txn/begin"
            try only(.post)
            return try await begin(request)

        case ("txn", 2):
            route = "GET /txn/{t}"
            try only(.get, .head)
            return try await txnStatus(request, try decoded(segments[1]))

        case ("txn", 3) where segments[2] == "read" || segments[2] == "commit" || segments[2] == "abort":
            let t = try decoded(segments[1])
            try only(.post)
            switch segments[2] {
            case "read":
                route = "POST /txn/{t}/read"
                return try await batchRead(request, t)
            case "commit":
                route = "POST /txn/{t}/commit"
                return try await commit(request, t)
            case "abort":
                route = "POST /txn/{t}/abort"
                return try await abort(request, t)
            default: break
            }

        case ("watch", 1):
            route = "POST /watch"
            try only(.post)
            return try await watch(request, context: context)

        case ("events", 1):
            route = "GET /events"
            try only(.get)
            return try await events(request, context: context)

        case ("sys", 2):
            return try await system(request, String(segments[1]), route: &route)

        case ("openapi.json", 1):
            route = "GET /openapi.json"
            try only(.get, .head)
            return Reply.json(.ok, OpenAPIDocument.json)

        case ("metrics", 1):
            route = "GET /metrics"
            try only(.get, .head)
            return Reply.text(MetricsReport(node: node, tasks: tasks).prometheus(), contentType: "text/plain; version=0.0.4")

        case ("task", _), ("demo", _):
            if let r = try await tasksRoute(request, segments, route: &route) { return r }

        default:
            break
        }
        throw RestmError(.routeNotFound, "no route \(method) \(path)")
    }

    // MARK: transactions

    func begin(_ request: Request) async throws -> Response {
        let body = try await RequestParsing.object(request, limit: limits.requestBytesMax, depth: limits.jsonDepthMax)
        return Reply.json(.created, try await beginAnswer(body))
    }

    /// `POST /txn/begin` from its parsed body: the answer's JSON text (201; errors thrown).
    func beginAnswer(_ body: [(String, JSONValue)]?) async throws -> String {
        var readOnly = false
        var timeout: Int?
        var priority: Timestamp?
        if let v = RequestParsing.member(body, "readOnly"), !v.isNull {
            guard let b = v.boolValue else { throw RestmError(.badRequest, "readOnly must be a boolean") }
            readOnly = b
        }
        if let v = RequestParsing.member(body, "timeoutMs"), !v.isNull {
            guard let n = v.intValue else { throw RestmError(.badRequest, "timeoutMs must be an integer") }
            timeout = n
        }
        if let v = RequestParsing.member(body, "priority"), !v.isNull {
            guard let s = v.stringValue else { throw RestmError(.badRequest, "priority must be a timestamp string") }
            priority = try RequestParsing.version(s)
        }
        // Extension of API.md: `"reads": [p]` reads those pointers at the new snapshot in
        // the same round trip (answered as `values`, like POST /txn/{t}/read).
        let reads = try RequestParsing.pointerList(RequestParsing.member(body, "reads"), field: "reads")
        guard reads.count <= limits.batchReadMax else { throw RestmError(.tooLarge, "at most \(limits.batchReadMax) pointers per batch read") }
        let t = try await node.begin(readOnly: readOnly, idleTimeoutMs: timeout, priority: priority)
        var o = JSONObject()
        o.string("txn", t.id)
        o.string("ts", t.rv.text)
        if RequestParsing.member(body, "reads") != nil {
            do {
                o.raw("values", try await readValues(t, reads))
            } catch {
                node.abort(t, reason: "its first reads failed")
                throw error
            }
        }
        return o.text
    }

    /// `{p: {"value", "version"}, ...}` of `ptrs` (each once) read in `t`, within one
    /// answer's budget; what it took from the shared budgets goes back if a read fails.
    func readValues(_ t: Txn, _ ptrs: [String]) async throws -> String {
        var out = "{"
        var seen = Set<String>()
        var budget = AnswerBudget(max: limits.answerBytesMax)
        do {
            for p in ptrs where seen.insert(p).inserted {
                let r = try await node.read(t, p)
                try budget.charge(p, r.value)
                if seen.count > 1 { out += "," }
                JSONWriter.appendString(p, to: &out)
                out += ":" + readResult(p, r)
            }
        } catch {
            budget.refund()
            throw error
        }
        return out + "}"
    }

    func readResult(_ p: String, _ r: ReadResult) -> String {
        var o = JSONObject()
        o.raw("value", r.value)
        o.string("version", r.version?.text)
        return o.text
    }

    func batchRead(_ request: Request, _ id: String) async throws -> Response {
        let body = try await RequestParsing.object(request, limit: limits.requestBytesMax, depth: limits.jsonDepthMax)
        return Reply.json(.ok, try await readAnswer(body, id))
    }

    /// `POST /txn/{t}/read` from its parsed body: the answer's JSON text (errors thrown).
    func readAnswer(_ body: [(String, JSONValue)]?, _ id: String) async throws -> String {
        guard let list = RequestParsing.member(body, "ptrs") else { throw RestmError(.badRequest, "the body must be {\"ptrs\": [ids]}") }
        let ptrs = try RequestParsing.pointerList(list, field: "ptrs")
        guard ptrs.count <= limits.batchReadMax else { throw RestmError(.tooLarge, "at most \(limits.batchReadMax) pointers per batch read") }
        let t = try node.activeTxn(id)
        return "{\"values\":" + (try await readValues(t, ptrs)) + "}"
    }

    func commit(_ request: Request, _ id: String) async throws -> Response {
        let body = try await RequestParsing.object(request, limit: limits.requestBytesMax, depth: limits.jsonDepthMax)
        return Reply.json(.ok, try await commitAnswer(body, id))
    }

    /// `POST /txn/{t}/commit` from its parsed body: the answer's JSON text (errors thrown).
    func commitAnswer(_ body: [(String, JSONValue)]?, _ id: String) async throws -> String {
        var writes = try RequestParsing.writeMap(RequestParsing.member(body, "writes"), field: "writes", valueMax: limits.valueBytesMax)
        for p in try RequestParsing.pointerList(RequestParsing.member(body, "deletes"), field: "deletes") { writes.append((p, nil)) }
        let ts: Timestamp
        if let t = node.registry(active: id) {
            ts = try await node.commit(t, adding: writes)
        } else if let s = node.finishedSummary(id) {
            guard case .committed(let cts) = s.status else { throw RestmError(.txnNotActive, "transaction \(id) was aborted") }
            ts = cts
        } else {
            throw RestmError(.txnNotFound, "no transaction \(id) on this node")
        }
        var o = JSONObject()
        o.string("txn", id)
        o.string("status", "committed")
        o.string("ts", ts.text)
        return o.text
    }

    func abort(_ request: Request, _ id: String) async throws -> Response {
        _ = try await RequestParsing.body(request, limit: limits.requestBytesMax)
        // API.md: any operation but commit on a finished transaction is 409 txn_not_active,
        // so aborting twice is refused too (a client may ignore that answer).
        let t = try node.activeTxn(id)
        guard node.abort(t) else { throw RestmError(.txnNotActive, "transaction \(id) is not active") }
        var o = JSONObject()
        o.string("txn", id)
        o.string("status", "aborted")
        return Reply.json(.ok, o.text)
    }

    func txnStatus(_ request: Request, _ id: String) async throws -> Response {
        let s = try await node.status(of: id)
        var o = JSONObject()
        o.string("txn", s.id)
        var phase: String?
        switch s.status {
        case .active:
            o.string("ts", s.rv.text)
            o.string("status", "active")
        case .committing:
            o.string("ts", s.rv.text)
            o.string("status", "active")
            phase = "committing"
        case .unknown:
            o.string("ts", s.rv.text)
            o.string("status", "active")
            phase = "outcome_unknown"
        case .committed(let ts):
            o.string("ts", ts.text)
            o.string("status", "committed")
        case .aborted(let why):
            o.string("ts", s.rv == .zero ? nil : s.rv.text)
            o.string("status", "aborted")
            o.string("reason", why)
        }
        o.int("reads", s.reads)
        o.int("writes", s.writes)
        if let phase { o.string("phase", phase) }
        if RequestParsing.wantsHTML(request) { return Explorer(node: node).page(title: "Transaction \(id)", json: o.text) }
        return Reply.json(.ok, o.text)
    }

    func oneShot(_ request: Request) async throws -> Response {
        let body = try await RequestParsing.object(request, limit: limits.requestBytesMax, depth: limits.jsonDepthMax)
        return Reply.json(.ok, try await oneShotAnswer(body))
    }

    /// `POST /txn` from its parsed body: the answer's JSON text (errors are thrown).
    func oneShotAnswer(_ body: [(String, JSONValue)]?) async throws -> String {
        var req = OneShotRequest()
        req.reads = try RequestParsing.pointerList(RequestParsing.member(body, "reads"), field: "reads")
        if let e = RequestParsing.member(body, "expect"), !e.isNull {
            guard case .object(let members) = e else { throw RestmError(.badRequest, "expect must be an object of pointer id to version or null") }
            for (p, v) in members {
                try PointerID.validate(p)
                switch v {
                case .null: req.expect.append((p, nil))
                case .string(let s):
                    // A version this server never issued can never match.
                    req.expect.append((p, Timestamp(text: s) ?? Timestamp(raw: .max, node: .max)))
                default: throw RestmError(.badRequest, "expect must map pointer ids to a version string or null")
                }
            }
        }
        req.writes = try RequestParsing.writeMap(RequestParsing.member(body, "writes"), field: "writes", valueMax: limits.valueBytesMax)
        for p in try RequestParsing.pointerList(RequestParsing.member(body, "deletes"), field: "deletes") { req.writes.append((p, nil)) }
        // Extension: a client-chosen id, to resolve a lost answer with GET /txn/{id}.
        if let v = RequestParsing.member(body, "txn"), !v.isNull {
            guard let id = v.stringValue else { throw RestmError(.badRequest, "txn must be a string") }
            req.txn = id
        }
        let r = try await node.oneShot(req)
        var values = "{"
        for (i, (p, v)) in r.values.enumerated() {
            if i > 0 { values += "," }
            JSONWriter.appendString(p, to: &values)
            values += ":" + readResult(p, v)
        }
        values += "}"
        var o = JSONObject()
        if let id = req.txn { o.string("txn", id) }
        o.string("status", "committed")
        o.string("ts", r.ts.text)
        o.raw("values", values)
        // Extension: the node retried conflicts itself (API.md's single-request retries).
        if r.attempts > 1 { o.int("attempts", r.attempts) }
        return o.text
    }

    // MARK: pointers

    func txnParameter(_ request: Request) throws -> Txn? {
        guard let id = request.uri.queryParameters.get("txn") else { return nil }
        return try node.activeTxn(id)
    }

    func getPointer(_ request: Request, _ p: String) async throws -> Response {
        try PointerID.validate(p)
        if let t = try txnParameter(request) {
            let r = try await node.read(t, p)
            try AnswerBytes.charge(p.utf8.count + (r.value?.utf8.count ?? 4) + 48)
            var o = JSONObject()
            o.string("ptr", p)
            o.raw("value", r.value)
            o.string("version", r.version?.text)
            return Reply.json(.ok, o.text)
        }
        let at = try request.uri.queryParameters.get("at").map { try RequestParsing.instant(String($0)) }
        if RequestParsing.wantsHTML(request) { return try await Explorer(node: node).pointer(p, at: at) }
        guard let v = try await node.get(p, at: at), let value = v.value else {
            throw RestmError(.notFound, "pointer \(p) does not exist\(at == nil ? "" : " at that time")")
        }
        try AnswerBytes.charge(p.utf8.count + value.utf8.count + 48)
        var o = JSONObject()
        o.string("ptr", p)
        o.raw("value", value)
        o.string("version", v.ts.text)
        return Reply.json(.ok, o.text, headers: [.eTag: "\"\(v.ts.text)\""])
    }

    func value(_ request: Request) async throws -> String {
        guard let v = try await RequestParsing.json(request, limit: limits.requestBytesMax, depth: limits.jsonDepthMax) else {
            throw RestmError(.badJSON, "the body must be a JSON value")
        }
        let text = v.compactText
        guard text.utf8.count <= limits.valueBytesMax else {
            throw RestmError(.tooLarge, "a value may be at most \(limits.valueBytesMax) bytes (this one is \(text.utf8.count))")
        }
        return text
    }

    /// The request's `If-Match` (RFC 9110: `*`, or a list of entity tags compared strongly,
    /// so a weak tag `W/"…"` never matches; a tag this server never issued never matches
    /// either). Only writes without a transaction take it: inside one, a condition belongs in
    /// the transaction (read the pointer, or `POST /txn`'s `expect`), so a request with both
    /// is refused rather than written unconditionally.
    func ifMatch(_ request: Request, inTxn: Bool) throws -> VersionCondition? {
        let values = request.headers[values: .ifMatch]
        guard !values.isEmpty else { return nil }
        guard !inTxn else {
            throw RestmError(.badRequest, "If-Match applies to a write without a transaction; inside one, read the pointer, or use POST /txn with expect")
        }
        var tags: [Timestamp] = []
        for field in values {
            for item in field.split(separator: ",") {
                let tag = String(item).trimmingCharacters(in: " \t")
                if tag == "*" { return .exists }
                guard !tag.hasPrefix("W/") else { continue }
                guard tag.count >= 2, tag.hasPrefix("\""), tag.hasSuffix("\"") else {
                    throw RestmError(.badRequest, "If-Match takes * or quoted versions, as ETag gives them: \"<version>\"")
                }
                if let ts = Timestamp(text: tag.dropFirst().dropLast()) { tags.append(ts) }
            }
        }
        return .versionIn(tags)
    }

    func putPointer(_ request: Request, _ p: String) async throws -> Response {
        try PointerID.validate(p)
        let text = try await value(request)
        let t = try txnParameter(request)
        let condition = try ifMatch(request, inTxn: t != nil)
        if let t {
            try node.write(t, p, value: text)
            return Reply.noContent()
        }
        let ts = try await node.put(p, value: text, when: condition)
        var o = JSONObject()
        o.string("ptr", p)
        o.string("version", ts.text)
        return Reply.json(.ok, o.text, headers: [.eTag: "\"\(ts.text)\""])
    }

    func deletePointer(_ request: Request, _ p: String) async throws -> Response {
        try PointerID.validate(p)
        let t = try txnParameter(request)
        let condition = try ifMatch(request, inTxn: t != nil)
        if let t {
            try node.write(t, p, value: nil)
            return Reply.noContent()
        }
        let ts = try await node.put(p, value: nil, when: condition)
        var o = JSONObject()
        o.string("ptr", p)
        o.string("version", ts.text)
        return Reply.json(.ok, o.text)
    }

    func allocate(_ request: Request) async throws -> Response {
        let initial = try await RequestParsing.json(request, limit: limits.requestBytesMax, depth: limits.jsonDepthMax)?.compactText
        let t = try txnParameter(request)
        let id = try await node.allocate(value: initial, in: t)
        var o = JSONObject()
        o.string("ptr", id)
        return Reply.json(.created, o.text)
    }

    func history(_ request: Request, _ p: String) async throws -> Response {
        try PointerID.validate(p)
        let limit = try RequestParsing.limitQuery(request)
        let before = try request.uri.queryParameters.get("before").map { try RequestParsing.instant(String($0)) }
        let (versions, next) = try await node.historyPage(p, before: before, limit: limit)
        var out = "{\"ptr\":" + JSONWriter.quoted(p) + ",\"versions\":["
        for (i, v) in versions.enumerated() {
            if i > 0 { out += "," }
            var o = JSONObject()
            o.string("version", v.ts.text)
            o.string("txn", v.txn)
            o.raw("value", v.value)
            if v.value == nil { o.bool("deleted", true) }
            out += o.text
        }
        out += "],\"next\":" + (next.map { JSONWriter.quoted($0.text) } ?? "null") + "}"
        // The page is bounded on its own (`answerBytesMax`); it also counts against a
        // batch's budget and the node's answers in flight.
        try AnswerBytes.charge(out.utf8.count)
        return Reply.json(.ok, out)
    }

    func listPointers(_ request: Request) async throws -> Response {
        let prefix = request.uri.queryParameters.get("prefix").map { String($0) } ?? ""
        if !prefix.isEmpty, !PointerID.isValid(prefix) { throw RestmError(.badPointer, "a prefix uses the characters of pointer ids") }
        let after = request.uri.queryParameters.get("after").map { String($0) }
        if let a = after { try PointerID.validate(a) }
        let limit = try RequestParsing.limitQuery(request)
        let page = try await node.list(prefix: prefix, after: after, limit: limit)
        var out = "{\"ptrs\":["
        for (i, p) in page.ptrs.enumerated() {
            if i > 0 { out += "," }
            JSONWriter.appendString(p, to: &out)
        }
        out += "],\"next\":" + (page.next.map { JSONWriter.quoted($0) } ?? "null") + "}"
        return Reply.json(.ok, out)
    }

    // MARK: watching

    func watch(_ request: Request, context: Context) async throws -> Response {
        let body = try await RequestParsing.object(request, limit: limits.requestBytesMax, depth: limits.jsonDepthMax)
        guard let ptrs = RequestParsing.member(body, "ptrs"), case .object(let members) = ptrs else {
            throw RestmError(.badRequest, "the body must be {\"ptrs\": {id: version or null}, \"timeoutMs\": n}")
        }
        guard !members.isEmpty else { throw RestmError(.badRequest, "ptrs must name at least one pointer") }
        var expected: [(String, Timestamp?)] = []
        for (p, v) in members {
            try PointerID.validate(p)
            switch v {
            case .null: expected.append((p, nil))
            case .string(let s): expected.append((p, Timestamp(text: s) ?? Timestamp(raw: .max, node: .max)))
            default: throw RestmError(.badRequest, "ptrs must map pointer ids to a version string or null")
            }
        }
        var timeout = 30_000
        if let t = RequestParsing.member(body, "timeoutMs"), !t.isNull {
            guard let n = t.intValue, n >= 0 else { throw RestmError(.badRequest, "timeoutMs must be a non-negative integer") }
            timeout = min(n, limits.watchTimeoutMsMax)
        }
        // `"values": false`: versions only (a client that only needs to know, as `retry()`).
        var values = true
        if let v = RequestParsing.member(body, "values"), !v.isNull {
            guard case .bool(let b) = v else { throw RestmError(.badRequest, "values must be true or false") }
            values = b
        }
        let node = self.node
        let (watching, wait) = (expected, Duration.milliseconds(timeout))
        let changed = try await context.presence().until { try await node.watch(watching, timeout: wait) }
        // The values are read results like any other: bounded per answer and counted in
        // the node's answers in flight.
        var budget = AnswerBudget(max: limits.answerBytesMax)
        var out = "{\"changed\":{"
        for (i, (p, r)) in changed.enumerated() {
            if i > 0 { out += "," }
            JSONWriter.appendString(p, to: &out)
            if values {
                if let e = Self.charge(&budget, p, r.value) {
                    throw e.code == .tooLarge ? RestmError(.tooLarge, "\(e.message), or watch with \"values\": false") : e
                }
                out += ":" + readResult(p, r)
            } else {
                out += ":{\"version\":" + (r.version.map { JSONWriter.quoted($0.text) } ?? "null") + "}"
            }
        }
        out += "}}"
        return Reply.json(.ok, out)
    }

    /// Pointers one event stream may name (they travel in its URL, whose request line is
    /// bounded anyway; a watch names up to `watchPointersMax` in its body).
    static let eventPointersMax = 1_000

    /// What charging `budget` for a result refused, if it did.
    static func charge(_ budget: inout AnswerBudget, _ p: String, _ value: String?) -> RestmError? {
        do {
            try budget.charge(p, value)
            return nil
        } catch {
            return error
        }
    }

    /// Server-sent events: one `change` event per committed change of the named pointers
    /// (read back from the pointers' history when several commits came between two looks),
    /// a comment every 15 s to keep the connection alive. Ends when the node shuts down or
    /// the client leaves.
    func events(_ request: Request, context: Context) async throws -> Response {
        let named = request.uri.queryParameters.getAll("ptr").map { String($0) }
        guard !named.isEmpty else { throw RestmError(.badRequest, "name pointers with ?ptr=a&ptr=b") }
        for p in named { try PointerID.validate(p) }
        // A pointer named twice is watched once (two entries for it could never agree with
        // the one version the watch reports, and the stream would spin).
        let ptrs = Node.distinct(named.map { ($0, ()) }).map(\.0)
        let most = min(limits.watchPointersMax, Self.eventPointersMax)
        guard ptrs.count <= most else { throw RestmError(.tooLarge, "at most \(most) pointers per event stream") }
        // Refuse now, while an error can still be an answer, rather than end the stream
        // at its first wait.
        try node.checkWatcherRoom(ptrs)
        let start = try await node.eventStart(ptrs)
        // A client that reconnects names the last event it had (SSE's `Last-Event-ID`, an
        // event's version): the changes from that commit on come first. An id that is not a
        // version, or not older than the stream's start, asks for nothing.
        let resume = request.headers[Self.lastEventID].flatMap { Timestamp(text: $0.trimmingCharacters(in: .whitespaces)) }
            .flatMap { $0 < start.at ? $0 : nil }
        let node = self.node
        let presence = context.presence()
        let body = ResponseBody { writer in
            var seen = start.versions
            // Per pointer, the last commit reported (or the stream's start).
            var since = [String: Timestamp](uniqueKeysWithValues: ptrs.map { ($0, start.at) })
            try await writer.write(ByteBuffer(string: ": watching \(ptrs.count) pointer(s)\n\n"))
            if let resume {
                let missed = try await Self.changes(node, since: resume, upTo: start.versions)
                if !missed.isEmpty { try await writer.write(ByteBuffer(string: missed)) }
            }
            while node.state == .running {
                let watching = seen
                let changed: [(String, ReadResult)]
                do {
                    changed = try await presence.until { try await node.watch(watching, timeout: .seconds(15), countingDeletes: true) }
                } catch let e as RestmError where e.code == .overloaded {
                    // No room to watch again just now (the hub is full): the stream goes on,
                    // and the changes meanwhile are read back from history at the next look.
                    try await writer.write(ByteBuffer(string: ": the node is busy; watching again shortly\n\n"))
                    try await Task.sleep(for: .seconds(1))
                    continue
                }
                if presence.hasLeft { break }
                if changed.isEmpty {
                    try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                    continue
                }
                // The events of one look, in commit order across the pointers (a client that
                // resumes from an event's id must not have been sent a later commit first),
                // written whenever they pass `answerBytesMax` (memory stays bounded; order
                // then holds within each part).
                var notes = ""
                var events: [(String, Version)] = []
                var bytes = 0
                for (p, r) in changed {
                    // `r.version` is the newest version, a delete's included (nil: none kept,
                    // as when GC has removed a delete: no change to report).
                    if let i = seen.firstIndex(where: { $0.0 == p }) { seen[i].1 = r.version }
                    guard let upTo = r.version else { continue }
                    let from = since[p] ?? start.at
                    let found = try await node.versions(of: p, after: from, upTo: upTo, limit: 64)
                    if !found.complete { notes += ": earlier changes of \(p) are left out\n" }
                    events += found.versions.map { (p, $0) }
                    since[p] = max(from, upTo)
                    bytes += found.versions.reduce(0) { $0 + ($1.value?.utf8.count ?? 4) + p.utf8.count + 96 }
                    if bytes > node.limits.answerBytesMax {
                        try await writer.write(ByteBuffer(string: Self.eventText(notes, events)))
                        (notes, events, bytes) = ("", [], 0)
                    }
                }
                let out = Self.eventText(notes, events)
                if !out.isEmpty { try await writer.write(ByteBuffer(string: out)) }
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }

    static let lastEventID = HTTPField.Name("Last-Event-ID")!

    /// One `change` event of `GET /events`.
    static func event(_ p: String, _ v: Version) -> String {
        var o = JSONObject()
        o.string("ptr", p)
        o.raw("value", v.value)
        o.string("version", v.value == nil ? nil : v.ts.text)
        return "event: change\nid: \(v.ts.text)\ndata: \(o.text)\n\n"
    }

    /// `notes` then the events, in commit order (ties, the changes of one commit, by pointer).
    static func eventText(_ notes: String, _ events: [(String, Version)]) -> String {
        var out = notes
        for (p, v) in events.sorted(by: { ($0.1.ts, $0.0) < ($1.1.ts, $1.0) }) { out += event(p, v) }
        return out
    }

    /// The events of the commits from `since` (included: the other changes of the commit a
    /// client named may not have reached it, so it may get that event again) up to each
    /// pointer's version in `upTo`, in commit order across the pointers: what a reconnecting
    /// stream missed. At most 64 per pointer and `answerBytesMax` in all (comment lines say
    /// what was left out), and only what history still holds (the retention window).
    static func changes(_ node: Node, since: Timestamp, upTo: [(String, Timestamp?)]) async throws -> String {
        var found: [(String, Version)] = []
        var notes = ""
        var bytes = 0
        let oldest = node.physicalMillis > UInt64(node.limits.retentionMs) ? node.physicalMillis - UInt64(node.limits.retentionMs) : 0
        if since.wallMillis < oldest { notes += ": changes older than the retention window are left out\n" }
        // Just below `since`: `versions(of:after:)` is exclusive.
        let after = since.node > 0 ? Timestamp(raw: since.raw, node: since.node - 1) : Timestamp(raw: since.raw &- 1, node: .max)
        for (p, current) in upTo {
            guard let current, current >= since else { continue }
            let page = try await node.versions(of: p, after: after, upTo: current, limit: 64)
            if !page.complete { notes += ": earlier changes of \(p) are left out\n" }
            let size = page.versions.reduce(0) { $0 + ($1.value?.utf8.count ?? 4) + p.utf8.count + 96 }
            guard bytes + size <= node.limits.answerBytesMax else {
                notes += ": changes of \(p) are left out (too many bytes to resend)\n"
                continue
            }
            bytes += size
            found += page.versions.map { (p, $0) }
        }
        return eventText(notes, found)
    }
}
