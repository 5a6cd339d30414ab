import Hummingbird
@testable import RestmClient
import RestmCollections
import RestmCore
import RestmHTTP
import RestmNode
import RestmStore
import RestmTestSupport
import Synchronization
import Testing

/// `atomically`, `retry()` and `orElse` through both backends.
@Suite struct ClientTests {
    static func embedded(_ configure: (inout NodeConfiguration) -> Void = { _ in }) async throws -> TransactionalMemory<EmbeddedBackend> {
        var c = NodeConfiguration()
        c.shardCount = 8
        configure(&c)
        return TransactionalMemory(backend: EmbeddedBackend(node: try await Node.open(store: MemoryStore(), configuration: c)))
    }

    static func number(_ n: Int) -> JSONValue { .number(String(n)) }

    @Test func conflictsAreRetriedUntilEveryIncrementLands() async throws {
        let memory = try await Self.embedded()
        let conflicts = Counter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    for _ in 0..<25 {
                        let (_, report) = try await memory.atomicallyReporting { tx in
                            let n = try await tx.read("counter")?.intValue ?? 0
                            try await tx.write("counter", Self.number(n + 1))
                        }
                        conflicts.add(report.conflicts)
                    }
                }
            }
            try await group.waitForAll()
        }
        let total = try await memory.atomically { tx in try await tx.read("counter")?.intValue }
        #expect(total == 200)
    }

    @Test func retryBlocksUntilWhatItReadChanges() async throws {
        let memory = try await Self.embedded()
        let runs = Counter()
        async let taken: Int = memory.atomically { tx in
            runs.add()
            guard let v = try await tx.read("mailbox")?.intValue else { try await tx.retry() }
            try await tx.delete("mailbox")
            return v
        }
        try await Task.sleep(for: .milliseconds(100))
        #expect(runs.count == 1)  // blocked, not spinning
        try await memory.atomically { tx in try await tx.write("mailbox", Self.number(42)) }
        #expect(try await taken == 42)
        #expect(runs.count == 2)
        #expect(try await memory.atomically { tx in try await tx.read("mailbox") } == nil)
    }

    /// The example of the README, verbatim but for the backend.
    @Test func theReadmeExampleWorks() async throws {
        let memory = try await Self.embedded()
        try await memory.atomically { tx in
            try await tx.write("acct:alice", .object([("balance", .number("5"))]))
            try await tx.write("acct:bob", .object([("balance", .number("0"))]))
        }
        async let movedLater: Int = memory.atomically { tx in
            let v = try await tx.read(["acct:alice", "acct:bob"])       // one round trip
            let a = v["acct:alice"]?["balance"]?.intValue ?? 0
            guard a >= 10 else { try await tx.retry() }                  // block until alice changes
            let b = v["acct:bob"]?["balance"]?.intValue ?? 0
            try await tx.write("acct:alice", .object([("balance", .number(String(a - 10)))]))
            try await tx.write("acct:bob", .object([("balance", .number(String(b + 10)))]))
            return 10
        }
        try await Task.sleep(for: .milliseconds(50))
        try await memory.atomically { tx in try await tx.write("acct:alice", .object([("balance", .number("25"))])) }
        #expect(try await movedLater == 10)
        let v = try await memory.atomically { tx in try await tx.read(["acct:alice", "acct:bob"]) }
        #expect(v["acct:alice"]?["balance"]?.intValue == 15 && v["acct:bob"]?["balance"]?.intValue == 10)
    }

    @Test func retryHonoursTheDeadline() async throws {
        let memory = try await Self.embedded()
        var options = AtomicOptions()
        options.deadline = .milliseconds(150)
        let start = ContinuousClock.now
        await #expect(throws: ClientError.self) {
            try await memory.atomically(options) { tx in
                _ = try await tx.read("never")
                try await tx.retry()
            }
        }
        let elapsed = ContinuousClock.now - start
        #expect(elapsed >= .milliseconds(140) && elapsed < .seconds(5))
    }

    @Test func orElseDiscardsTheRetryingBranchsWritesAndRunsTheOther() async throws {
        let memory = try await Self.embedded()
        let got: String = try await memory.atomically { tx in
            try await tx.orElse({ tx in
                try await tx.write("side-effect", .string("from the first branch"))
                guard try await tx.read("left") != nil else { try await tx.retry() }
                return "left"
            }, { tx in
                try await tx.write("chosen", .string("right"))
                return "right"
            })
        }
        #expect(got == "right")
        let (side, chosen) = try await memory.atomically { tx in
            (try await tx.read("side-effect"), try await tx.read("chosen"))
        }
        #expect(side == nil)
        #expect(chosen == .string("right"))
    }

    @Test func whenEveryBranchRetriesTheBodyWaitsOnTheUnionOfTheirReads() async throws {
        let memory = try await Self.embedded()
        async let which: String = memory.atomically { tx in
            try await tx.orElse({ tx in
                guard try await tx.read("a") != nil else { try await tx.retry() }
                return "a"
            }, { tx in
                guard try await tx.read("b") != nil else { try await tx.retry() }
                return "b"
            })
        }
        try await Task.sleep(for: .milliseconds(50))
        // Only the first branch read `a`: writing it must still wake the body.
        try await memory.atomically { tx in try await tx.write("a", .bool(true)) }
        #expect(try await which == "a")
    }

    @Test func tenThousandWaitersCostNoThreads() async throws {
        let memory = try await Self.embedded()
        let node = memory.backend.node
        let woken = Counter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<10_000 {
                group.addTask {
                    try await memory.atomically { tx in
                        guard try await tx.read("go") != nil else { try await tx.retry() }
                    }
                    woken.add()
                }
            }
            // Wait until they are all parked on the watch.
            var spins = 0
            while node.watcherCount < 10_000, spins < 3_000 {
                try await Task.sleep(for: .milliseconds(10))
                spins += 1
            }
            #expect(node.watcherCount == 10_000)
            try await memory.atomically { tx in try await tx.write("go", .bool(true)) }
            try await group.waitForAll()
        }
        #expect(woken.count == 10_000)
        #expect(node.watcherCount == 0)
    }

    /// A backend that loses the answer of the first commit after it happened.
    struct LosingBackend: ForwardingBackend {
        let inner: EmbeddedBackend
        let lost = Counter()

        func commit(_ handle: Txn, writes: [(String, String?)]) async throws -> Timestamp {
            let ts = try await inner.commit(handle, writes: writes)
            if lost.count == 0 {
                lost.add()
                throw ClientError.transport("connection reset after the commit was sent")
            }
            return ts
        }
    }

    /// Counts the transactions a backend begins.
    struct CountingBackend: ForwardingBackend {
        let inner: EmbeddedBackend
        let begins = Counter()

        func begin(priority: Timestamp?, reads: [String]) async throws -> (handle: Txn, rv: Timestamp, values: [String: ReadValue]) {
            begins.add()
            return try await inner.begin(priority: priority, reads: reads)
        }
    }

    @Test func concurrentFirstReadsShareOneTransaction() async throws {
        let node = try await Node.open(store: MemoryStore())
        let backend = CountingBackend(inner: EmbeddedBackend(node: node))
        let memory = TransactionalMemory(backend: backend)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<6 {
                group.addTask {
                    for _ in 0..<20 {
                        try await memory.atomically { tx in
                            async let x = tx.read("cx")
                            async let y = tx.read("cy")
                            let (a, b) = (try await x?.intValue ?? 0, try await y?.intValue ?? 0)
                            try await tx.write("cx", Self.number(a + 1))
                            try await tx.write("cy", Self.number(b + 1))
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let (x, y) = try await memory.atomically { tx in (try await tx.read("cx")?.intValue, try await tx.read("cy")?.intValue) }
        // Two begins for one attempt would validate one read at the wrong snapshot: lost updates.
        #expect(x == 120 && y == 120)
        #expect(backend.begins.count >= 121)
    }

    @Test func aLostCommitAnswerIsResolvedNotReRun() async throws {
        let node = try await Node.open(store: MemoryStore())
        let memory = TransactionalMemory(backend: LosingBackend(inner: EmbeddedBackend(node: node)))
        let runs = Counter()
        try await memory.atomically { tx in
            runs.add()
            let n = try await tx.read("once")?.intValue ?? 0
            try await tx.write("once", Self.number(n + 1))
        }
        #expect(runs.count == 1)
        #expect(try await node.get("once")?.value == "1")
    }

    @Test func theLeanTransportParsesItsURL() async throws {
        func parse(_ url: String) -> (String, Int, String, String)? {
            NIOTransport(url: url, connections: 1, requestTimeout: .seconds(1), responseBytesMax: 1).map {
                ($0.host, $0.port, $0.hostHeader, $0.pathPrefix)
            }
        }
        #expect(parse("http://127.0.0.1:9000")! == ("127.0.0.1", 9000, "127.0.0.1:9000", ""))
        #expect(parse("http://example.org")! == ("example.org", 80, "example.org", ""))
        #expect(parse("http://[::1]:8080/restm/")! == ("::1", 8080, "[::1]:8080", "/restm"))
        #expect(parse("http://node:9000/a/b")! == ("node", 9000, "node:9000", "/a/b"))
        #expect(parse("https://node:9000") == nil)
        #expect(parse("http://node:notaport") == nil)
        #expect(parse("http://") == nil)
        // An https URL falls back to AsyncHTTPClient rather than failing.
        // Nothing a caller passes can break out of the hand-written request line.
        let lean = try #require(NIOTransport(url: "http://127.0.0.1:9", connections: 1, requestTimeout: .seconds(1), responseBytesMax: 1))
        await #expect(throws: NIOTransportError.self) { _ = try await lean.send(.GET, "/ptr/a b\r\nX: y", body: nil, restmAfter: nil) }
        let fallback = HTTPBackend(url: "https://node:9000", transport: .nio)
        #expect(fallback.transport is AHCTransport)
        try await fallback.shutdown()
    }

    /// A JSON null is a value: over HTTP it was read as absent (the answer's `"value": null`
    /// was taken for "no pointer" whatever its version), so a queue holding a null element
    /// jammed — its pop saw the list empty and waited for ever — and reads disagreed with
    /// embedded ones.
    @Test(arguments: [false, true])
    func aNullValueIsAValueOverHTTP(_ cached: Bool) async throws {
        let node = try await Node.open(store: MemoryStore())
        try await withServedNode(node) { port in
            let backend = HTTPBackend(url: "http://127.0.0.1:\(port)", connections: 4, transport: .nio)
            let memory = TransactionalMemory(backend: backend, cache: cached ? ReadCache() : nil)
            try await memory.atomically { tx in try await tx.write("nul", .null) }
            let (present, absent) = try await memory.atomically { tx in (try await tx.read("nul"), try await tx.read("never")) }
            #expect(present == .null && absent == nil)
            let queue = try TQueue("nulls")
            try await memory.atomically { tx in
                try await queue.push(tx, .null)
                try await queue.push(tx, .string("a"))
            }
            var options = AtomicOptions()
            options.deadline = .seconds(5)
            let first = try await memory.atomically(options) { tx in try await queue.pop(tx) }
            let second = try await memory.atomically(options) { tx in try await queue.pop(tx) }
            #expect(first == .null && second == .string("a"))
            try await backend.shutdown()
        }
    }

    /// Both transports (AsyncHTTPClient and the lean NIO one) run the same bodies.
    @Test(arguments: HTTPBackend.Transport.allCases)
    func theSameBodiesRunOverHTTP(_ transport: HTTPBackend.Transport) async throws {
        let node = try await Node.open(store: MemoryStore())
        try await withServedNode(node) { port in
            let backend = HTTPBackend(url: "http://127.0.0.1:\(port)", connections: 8, transport: transport)
            let memory = TransactionalMemory(backend: backend)
            #expect(try await incrementConcurrently(memory, "http-counter", clients: 4, times: 10) == 40)
            // retry() over HTTP waits with POST /watch.
            async let got: Int = memory.atomically { tx in
                guard let v = try await tx.read("http-box")?.intValue else { try await tx.retry() }
                return v
            }
            try await Task.sleep(for: .milliseconds(100))
            _ = try await memory.atomically { tx in try await tx.write("http-box", Self.number(7)) }
            #expect(try await got == 7)
            // A blind write is one round trip (POST /txn); allocation needs no round trip.
            let id = try await memory.atomically { tx in try await tx.allocate(.string("fresh")) }
            #expect(try await backend.get(id)?.value == .string("fresh"))
            try await collectionsRunUnchanged(memory)
            // More pointers than one batch read may name (1,000) are split into several.
            let many = (0..<1_500).map { "http-many-\($0)" }
            try await memory.atomically { tx in for (i, p) in many.enumerated() where i % 100 == 0 { try await tx.write(p, Self.number(i)) } }
            let seen = try await memory.atomically { tx in try await tx.read(many) }
            #expect(seen.count == 15 && seen["http-many-1400"]?.intValue == 1400)
            // Errors arrive as the JSON error of API.md, typed; the connection stays usable.
            await #expect(throws: ClientError.self) { _ = try await backend.call(.POST, "/txn/nosuch/commit", body: "{}") }
            do {
                _ = try await backend.call(.POST, "/txn/begin", body: "{not json")
                Issue.record("malformed JSON was accepted")
            } catch ClientError.server(let status, let code, _, let retryable) {
                #expect(status == 400 && code == "bad_json" && !retryable)
            }
            // HEAD answers have no body: the next answer on the connection is still read right.
            _ = try await backend.call(.HEAD, "/ptr/http-counter")
            #expect(try await backend.get("http-counter")?.value == Self.number(40))
            try await backend.shutdown()
            // A request that outlives its timeout fails as a transport error; the next works.
            let impatient = HTTPBackend(url: "http://127.0.0.1:\(port)", connections: 1, requestTimeout: .milliseconds(300), transport: transport)
            let started = ContinuousClock.now
            await #expect(throws: ClientError.self) {
                _ = try await impatient.call(.POST, "/watch", body: "{\"ptrs\":{\"http-never-written\":null},\"timeoutMs\":3000}")
            }
            #expect(ContinuousClock.now - started < .seconds(2))
            #expect(try await impatient.get("http-counter")?.value == Self.number(40))
            try await impatient.shutdown()
        }
    }
}

/// Runs `body` with `node` served over HTTP on a free loopback port, then stops the server.
func withServedNode(_ node: Node, _ body: @Sendable (Int) async throws -> Void) async throws {
    let serverPort = ServerPort()
    let app = Application(responder: RestmResponder(node: node), server: .restm(node), configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                          onServerRunning: { channel in serverPort.set(channel.localAddress?.port ?? 0) })
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await app.runService(gracefulShutdownSignals: []) }
        try await body(try await serverPort.wait())
        group.cancelAll()
    }
}

/// `clients` tasks each increment `key` `times` times (read, then write one more); answers
/// the final count, which is `clients * times` unless an update was lost.
func incrementConcurrently<B: TransactionBackend>(_ memory: TransactionalMemory<B>, _ key: String, clients: Int, times: Int) async throws -> Int? {
    try await withThrowingTaskGroup(of: Void.self) { group in
        for _ in 0..<clients {
            group.addTask {
                for _ in 0..<times {
                    try await memory.atomically { tx in
                        let n = try await tx.read(key)?.intValue ?? 0
                        try await tx.write(key, .number(String(n + 1)))
                    }
                }
            }
        }
        try await group.waitForAll()
    }
    return try await memory.atomically { tx in try await tx.read(key)?.intValue }
}

/// The collections, written against `Transaction`, over HTTP exactly as embedded.
func collectionsRunUnchanged<B: TransactionBackend>(_ memory: TransactionalMemory<B>) async throws {
    let map = try TMap("http-map", leafEntriesMax: 4)
    let sorted = try TSortedMap("http-sorted", leafEntriesMax: 4, childrenMax: 4)
    let queue = try TQueue("http-queue")
    let counter = try TCounter("http-counter-striped")
    try await withThrowingTaskGroup(of: Void.self) { clients in
        for c in 0..<4 {
            clients.addTask {
                for i in 0..<25 {
                    let key = "k\(c)-\(i)"
                    try await memory.atomically { tx in
                        try await map.put(tx, key, .number(String(i)))
                        try await sorted.put(tx, key, .number(String(i)))
                        try await counter.add(tx, 1)
                        try await queue.push(tx, .string(key))
                    }
                }
            }
        }
        try await clients.waitForAll()
    }
    let (entries, count, range, total, length) = try await memory.atomically { tx in
        (try await map.entries(tx).count, try await map.count(tx), try await sorted.range(tx).map(\.0),
         try await counter.value(tx), try await queue.count(tx))
    }
    #expect(entries == 100 && count == 100 && total == 100 && length == 100)
    #expect(range == range.sorted(by: codePointLess) && range.count == 100)
    // A blocking pop over HTTP: drain, then wait for one more push.
    for _ in 0..<100 { _ = try await memory.atomically { tx in try await queue.pop(tx) } }
    async let late: JSONValue = memory.atomically { tx in try await queue.pop(tx) }
    try await Task.sleep(for: .milliseconds(100))
    try await memory.atomically { tx in try await queue.push(tx, .string("late")) }
    #expect(try await late == .string("late"))
}

/// A test backend: everything goes to an embedded backend unless the type says otherwise.
protocol ForwardingBackend: TransactionBackend where Handle == Txn {
    var inner: EmbeddedBackend { get }
}

extension ForwardingBackend {
    func begin(priority: Timestamp?, reads: [String]) async throws -> (handle: Txn, rv: Timestamp, values: [String: ReadValue]) {
        try await inner.begin(priority: priority, reads: reads)
    }
    func read(_ handle: Txn, _ ptrs: [String]) async throws -> [String: ReadValue] { try await inner.read(handle, ptrs) }
    func commit(_ handle: Txn, writes: [(String, String?)]) async throws -> Timestamp { try await inner.commit(handle, writes: writes) }
    func commitBlind(writes: [(String, String?)]) async throws -> Timestamp { try await inner.commitBlind(writes: writes) }
    func abort(_ handle: Txn) async { await inner.abort(handle) }
    func resolve(_ handle: Txn) async throws -> Timestamp? { try await inner.resolve(handle) }
    func watch(_ versions: [(String, Timestamp?)], timeout: Duration) async throws -> Bool { try await inner.watch(versions, timeout: timeout) }
    func snapshotRead(_ ptrs: [String]) async throws -> (ts: Timestamp, values: [String: ReadValue]) { try await inner.snapshotRead(ptrs) }
    func commitExpecting(id: String, expect: [(String, Timestamp?)], writes: [(String, String?)]) async throws -> ExpectingOutcome {
        try await inner.commitExpecting(id: id, expect: expect, writes: writes)
    }
    func resolve(id: String) async throws -> Timestamp? { try await inner.resolve(id: id) }
}

/// Hands the port a test server bound to (port 0) to the test.
final class ServerPort: Sendable {
    let port = Mutex<Int>(0)

    func set(_ p: Int) { port.withLock { $0 = p } }

    func wait() async throws -> Int {
        for _ in 0..<500 {
            let p = port.withLock { v in
                defer { v = 0 }
                return v
            }
            if p != 0 { return p }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw ClientError.transport("the test server did not start")
    }
}
