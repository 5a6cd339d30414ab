import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import RestmCore
import Synchronization

/// Client transactions over the HTTP API of API.md, with a pool of keep-alive connections.
/// It passes back the newest `Restm-Ts` it has seen as `Restm-After`, so a client sees its
/// own writes even across nodes.
///
///     let backend = HTTPBackend(url: "http://127.0.0.1:9000")
///     defer { try? await backend.shutdown() }
///     let memory = TransactionalMemory(backend: backend)
public final class HTTPBackend: TransactionBackend {
    public typealias Handle = String

    /// How requests travel.
    public enum Transport: String, Sendable, CaseIterable {
        /// AsyncHTTPClient's pool: any URL scheme, TLS, proxies. The default.
        case asyncHTTPClient = "ahc"
        /// A lean HTTP/1.1 client on SwiftNIO (`http://` only; others fall back to
        /// AsyncHTTPClient): about half the CPU per transfer of the bank benchmark, for load
        /// generators.
        case nio
    }

    /// Coalescing of concurrent requests into `POST /batch` (see `BatchingTransport`).
    public struct Batching: Sendable {
        /// Exchanges on the wire at once; requests beyond wait and go together in the next
        /// batch. Fewer means bigger batches: less CPU per request, a little more latency.
        public var inFlightMax: Int
        /// Requests per batch (a node takes at most 1,000).
        public var itemsMax: Int

        public init(inFlightMax: Int = 4, itemsMax: Int = 256) {
            self.inFlightMax = inFlightMax
            self.itemsMax = min(itemsMax, 1_000)
        }
    }

    let transport: any HTTPTransport
    /// Long waits (`POST /watch` for `retry()`) go through connections of their own: parked
    /// waiters must not take the connections that the requests which would wake them need
    /// (AsyncHTTPClient queues requests once its pool is full).
    let waits: any HTTPTransport
    /// The longest a watch may ask to wait: a margin under the request timeout, so that the
    /// node answers (perhaps "nothing changed") before the client gives up on the request.
    let watchMax: Duration
    let token = Mutex<String?>(nil)
    let requestCount = Atomic<Int>(0)

    /// Requests made so far, and the HTTP exchanges that carried them (fewer with batching).
    public var traffic: (requests: Int, exchanges: Int) {
        let requests = requestCount.load(ordering: .relaxed)
        return (requests, (transport as? BatchingTransport)?.exchangeCount.load(ordering: .relaxed) ?? requests)
    }

    /// - Parameters:
    ///   - url: the node's base URL, e.g. `http://127.0.0.1:9000`
    ///   - connections: keep-alive connections kept to the node
    ///   - batching: coalesce concurrent requests into `POST /batch` (off by default; worth it
    ///     when many transactions run at once, e.g. a load generator or a busy service)
    public init(
        url: String, connections: Int = 64, requestTimeout: Duration = .seconds(60), responseBytesMax: Int = 64 << 20,
        transport: Transport = .asyncHTTPClient, batching: Batching? = nil
    ) {
        let base = url.hasSuffix("/") ? String(url.dropLast()) : url
        let timeout = TimeAmount.nanoseconds(
            Int64(requestTimeout.components.seconds) * 1_000_000_000 + requestTimeout.components.attoseconds / 1_000_000_000)
        let wire: any HTTPTransport
        if transport == .nio,
            let nio = NIOTransport(url: base, connections: connections, requestTimeout: timeout, responseBytesMax: responseBytesMax),
            let parked = NIOTransport(url: base, connections: connections, requestTimeout: timeout, responseBytesMax: responseBytesMax)
        {
            // Each has at most `connections` requests in flight: waits have their own, so
            // that parked watches cannot crowd requests out.
            wire = nio
            waits = parked
        } else {
            wire = AHCTransport(base: base, connections: connections, requestTimeout: timeout, responseBytesMax: responseBytesMax)
            waits = AHCTransport(base: base, connections: connections, requestTimeout: timeout, responseBytesMax: responseBytesMax)
        }
        watchMax = requestTimeout > .seconds(4) ? requestTimeout - .seconds(2) : requestTimeout / 2
        if let batching {
            self.transport = BatchingTransport(inner: wire, inFlightMax: batching.inFlightMax, itemsMax: batching.itemsMax)
        } else {
            self.transport = wire
        }
    }

    public func shutdown() async throws {
        // Both pools, whatever the first says.
        var failure: (any Error)?
        do { try await transport.shutdown() } catch { failure = error }
        do { try await waits.shutdown() } catch { failure = failure ?? error }
        if let failure { throw failure }
    }

    /// One request; answers the parsed JSON body of a 2xx answer, throws `ClientError` otherwise.
    func call(_ method: HTTPMethod, _ path: String, body: String? = nil, after: Bool = false) async throws -> JSONValue? {
        let (status, json) = try await exchange(method, path, body: body, after: after)
        try Self.check(status, json)
        return json
    }

    /// One request; answers its status and parsed body, whatever the status.
    func exchange(
        _ method: HTTPMethod, _ path: String, body: String? = nil, after: Bool = false, via: (any HTTPTransport)? = nil
    ) async throws -> (Int, JSONValue?) {
        let answer: HTTPAnswer
        requestCount.wrappingAdd(1, ordering: .relaxed)
        do {
            answer = try await (via ?? transport).send(method, path, body: body, restmAfter: after ? token.withLock { $0 } : nil)
        } catch {
            throw ClientError.transport("\(method) \(path): \(error)")
        }
        if let ts = answer.restmTs {
            token.withLock { t in
                if t == nil || ts > t! { t = ts }
            }
        }
        return (answer.status, answer.json ?? (answer.body.readableBytes == 0 ? nil : try? JSONValue.parse(answer.body.readableBytesView)))
    }

    /// The typed error of a non-2xx answer.
    static func check(_ status: Int, _ json: JSONValue?) throws {
        guard (200..<300).contains(status) else {
            throw ClientError.server(
                status: status, code: json?["error"]?.stringValue ?? "http_\(status)",
                message: json?["message"]?.stringValue ?? "", retryable: json?["retryable"]?.boolValue ?? false)
        }
    }

    static func values(_ json: JSONValue?) -> [String: ReadValue] {
        guard case .object(let members)? = json?["values"] else { return [:] }
        var out: [String: ReadValue] = [:]
        for (p, v) in members {
            // Absent is "no version"; a JSON null with a version is a value like any other
            // (read as absent, a queue holding a null element jammed: its pop saw it empty).
            let version = v["version"]?.stringValue.flatMap { Timestamp(text: $0) }
            out[p] = ReadValue(value: version == nil ? nil : (v["value"] ?? .null), version: version)
        }
        return out
    }

    /// `{p: "version" or null, ...}`: what `expect` and `POST /watch` take.
    static func versionMap(_ versions: [(String, Timestamp?)]) -> String {
        var out = "{"
        for (i, (p, v)) in versions.enumerated() {
            if i > 0 { out += "," }
            JSONWriter.appendString(p, to: &out)
            out += ":" + (v.map { JSONWriter.quoted($0.text) } ?? "null")
        }
        return out + "}"
    }

    static func list(_ ptrs: [String]) -> String {
        "[" + ptrs.map { JSONWriter.quoted($0) }.joined(separator: ",") + "]"
    }

    public func begin(priority: Timestamp?, reads: [String]) async throws -> (handle: String, rv: Timestamp, values: [String: ReadValue]) {
        var body = "{\"reads\":" + Self.list(reads)
        if let p = priority { body += ",\"priority\":\"\(p.text)\"" }
        body += "}"
        let json = try await call(.POST, "/txn/begin", body: body, after: true)
        guard let id = json?["txn"]?.stringValue, let rv = json?["ts"]?.stringValue.flatMap({ Timestamp(text: $0) }) else {
            throw ClientError.transport("begin answered without txn and ts")
        }
        return (id, rv, Self.values(json))
    }

    public func read(_ handle: String, _ ptrs: [String]) async throws -> [String: ReadValue] {
        Self.values(try await call(.POST, "/txn/\(handle)/read", body: "{\"ptrs\":" + Self.list(ptrs) + "}"))
    }

    static func writesBody(_ writes: [(String, String?)]) -> String {
        var w = "{"
        var d: [String] = []
        var first = true
        for (p, v) in writes {
            guard let v else {
                d.append(p)
                continue
            }
            if !first { w += "," }
            first = false
            JSONWriter.appendString(p, to: &w)
            w += ":" + v
        }
        return "{\"writes\":" + w + "},\"deletes\":" + list(d) + "}"
    }

    public func commit(_ handle: String, writes: [(String, String?)]) async throws -> Timestamp {
        let json = try await call(.POST, "/txn/\(handle)/commit", body: writes.isEmpty ? nil : Self.writesBody(writes))
        return json?["ts"]?.stringValue.flatMap { Timestamp(text: $0) } ?? .zero
    }

    public func commitBlind(writes: [(String, String?)]) async throws -> Timestamp {
        let json = try await call(.POST, "/txn", body: Self.writesBody(writes), after: true)
        return json?["ts"]?.stringValue.flatMap { Timestamp(text: $0) } ?? .zero
    }

    public func snapshotRead(_ ptrs: [String]) async throws -> (ts: Timestamp, values: [String: ReadValue]) {
        let json = try await call(.POST, "/txn", body: "{\"reads\":" + Self.list(ptrs) + "}", after: true)
        guard let ts = json?["ts"]?.stringValue.flatMap({ Timestamp(text: $0) }) else {
            throw ClientError.transport("POST /txn answered without ts")
        }
        return (ts, Self.values(json))
    }

    public func commitExpecting(id: String, expect: [(String, Timestamp?)], writes: [(String, String?)]) async throws -> ExpectingOutcome {
        var body = "{\"txn\":"
        JSONWriter.appendString(id, to: &body)
        body += ",\"expect\":" + Self.versionMap(expect) + ","
        body += Self.writesBody(writes).dropFirst()
        let (status, json) = try await exchange(.POST, "/txn", body: body, after: true)
        if status == 412, json?["error"]?.stringValue == "expectation_failed" {
            // `values` holds the current values (an extension; empty from a node without it,
            // and then the client forgets what it read instead).
            return .stale(Self.values(json))
        }
        try Self.check(status, json)
        return .committed(json?["ts"]?.stringValue.flatMap { Timestamp(text: $0) } ?? .zero, attempts: max(1, json?["attempts"]?.intValue ?? 1))
    }

    public func resolve(id: String) async throws -> Timestamp? {
        try await resolve(id)
    }

    public func abort(_ handle: String) async {
        _ = try? await call(.POST, "/txn/\(handle)/abort")
    }

    public func resolve(_ handle: String) async throws -> Timestamp? {
        let json = try await call(.GET, "/txn/\(handle)")
        switch json?["status"]?.stringValue {
        case "committed": return json?["ts"]?.stringValue.flatMap { Timestamp(text: $0) } ?? .zero
        case "aborted": return nil
        default: throw ClientError.outcomeUnknown(txn: handle)
        }
    }

    public func watch(_ versions: [(String, Timestamp?)], timeout: Duration) async throws -> Bool {
        let wait = min(timeout, watchMax)
        let ms = Int(wait.components.seconds * 1000 + wait.components.attoseconds / 1_000_000_000_000_000)
        // Versions only: `retry()` needs to know that something changed, not the values.
        let body = "{\"ptrs\":" + Self.versionMap(versions) + ",\"timeoutMs\":\(ms),\"values\":false}"
        // The wait, with a margin, bounds the request and its wait for a connection: behind
        // parked watches, one that cannot start in time ends (`retry()` then runs its body
        // again, and waits again if nothing it read changed).
        let (status, json) = try await RequestDeadline.$current.withValue(.now + wait + .seconds(2)) {
            try await exchange(.POST, "/watch", body: body, via: waits)
        }
        try Self.check(status, json)
        if case .object(let changed)? = json?["changed"] { return !changed.isEmpty }
        return false
    }

    /// `GET /sys/health`: throws unless the node answers 200.
    public func health() async throws {
        _ = try await call(.GET, "/sys/health")
    }

    /// Plain reads and writes outside transactions, for tools.
    public func get(_ ptr: String) async throws -> ReadValue? {
        do {
            let json = try await call(.GET, "/ptr/\(ptr)", after: true)
            return ReadValue(value: json?["value"], version: json?["version"]?.stringValue.flatMap { Timestamp(text: $0) })
        } catch ClientError.server(404, _, _, _) {
            return nil
        }
    }
}

/// Requests through AsyncHTTPClient's connection pool.
final class AHCTransport: HTTPTransport {
    let client: HTTPClient
    let base: String
    let requestTimeout: TimeAmount
    let responseBytesMax: Int

    init(base: String, connections: Int, requestTimeout: TimeAmount, responseBytesMax: Int) {
        var pool = HTTPClient.Configuration.ConnectionPool()
        pool.concurrentHTTP1ConnectionsPerHostSoftLimit = connections
        pool.idleTimeout = .seconds(60)
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: HTTPClient.Configuration(connectionPool: pool))
        self.base = base
        self.requestTimeout = requestTimeout
        self.responseBytesMax = responseBytesMax
    }

    func shutdown() async throws {
        try await client.shutdown()
    }

    func send(_ method: HTTPMethod, _ path: String, body: String?, restmAfter: String?) async throws -> HTTPAnswer {
        var req = HTTPClientRequest(url: base + path)
        req.method = method
        req.headers.add(name: "Accept", value: "application/json")
        if let body {
            req.headers.add(name: "Content-Type", value: "application/json")
            req.body = .bytes(ByteBuffer(string: body))
        }
        if let t = restmAfter { req.headers.add(name: "Restm-After", value: t) }
        let response = try await client.execute(req, timeout: .nanoseconds(RequestDeadline.bound(nanoseconds: requestTimeout.nanoseconds)))
        let bytes = try await response.body.collect(upTo: responseBytesMax)
        return HTTPAnswer(status: Int(response.status.code), restmTs: response.headers.first(name: "Restm-Ts"), body: bytes)
    }
}
