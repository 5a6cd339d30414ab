import Dispatch
@testable import RestmClient
import NIOCore
import NIOPosix
import RestmCore
import RestmNode
import RestmStore
import RestmTestSupport
import Synchronization
import Testing

/// `atomically` when requests fail: what it runs again, what it resolves, and how long it
/// may take (found by a review of the client under a fault-injecting proxy).
@Suite struct FailureTests {
    static func node(_ configure: (inout NodeConfiguration) -> Void = { _ in }) async throws -> Node {
        var c = NodeConfiguration()
        c.shardCount = 8
        configure(&c)
        return try await Node.open(store: MemoryStore(), configuration: c)
    }

    static func options(deadline: Duration) -> AtomicOptions {
        var o = AtomicOptions()
        o.deadline = deadline
        return o
    }

    /// Loses the first commit request on the way: the node never sees it.
    struct DroppingBackend: ForwardingBackend {
        let inner: EmbeddedBackend
        let dropped = Counter()

        func commit(_ handle: Txn, writes: [(String, String?)]) async throws -> Timestamp {
            if dropped.count == 0 {
                dropped.add()
                throw ClientError.transport("connection reset before the commit was sent")
            }
            return try await inner.commit(handle, writes: writes)
        }
    }

    /// A commit that never reached the node leaves its transaction active (over HTTP until
    /// the node's 30 s idle timeout; embedded, unregistered, for ever), so asking for its
    /// fate only ever heard "active" and the caller waited out its deadline. The client now
    /// aborts it first — an abort cannot undo a commit under way — and runs the body again.
    @Test func aCommitLostOnTheWayIsAbortedAndRunAgain() async throws {
        let node = try await Self.node()
        let backend = DroppingBackend(inner: EmbeddedBackend(node: node))
        let memory = TransactionalMemory(backend: backend)
        let runs = Counter()
        let start = ContinuousClock.now
        try await memory.atomically(Self.options(deadline: .seconds(20))) { tx in
            runs.add()
            let n = try await tx.read("dropped")?.intValue ?? 0
            try await tx.write("dropped", .number(String(n + 1)))
        }
        #expect(backend.dropped.count == 1)
        #expect(runs.count == 2)
        #expect(ContinuousClock.now - start < .seconds(5))
        #expect(try await node.get("dropped")?.value == "1")
    }

    /// Fails the first begin with no answer.
    struct LostBeginBackend: ForwardingBackend {
        let inner: EmbeddedBackend
        let failed = Counter()

        func begin(priority: Timestamp?, reads: [String]) async throws -> (handle: Txn, rv: Timestamp, values: [String: ReadValue]) {
            if failed.count == 0 {
                failed.add()
                throw ClientError.transport("connection reset by peer")
            }
            return try await inner.begin(priority: priority, reads: reads)
        }
    }

    /// A lost connection before the commit was sent changed nothing, yet it ended the whole
    /// call (a node restart or a stale pooled connection failed applications).
    @Test func aLostBeginIsRunAgain() async throws {
        let node = try await Self.node()
        let backend = LostBeginBackend(inner: EmbeddedBackend(node: node))
        let memory = TransactionalMemory(backend: backend)
        let (_, report) = try await memory.atomicallyReporting { tx in
            let n = try await tx.read("begun")?.intValue ?? 0
            try await tx.write("begun", .number(String(n + 1)))
        }
        #expect(backend.failed.count == 1 && report.attempts == 2)
        #expect(try await node.get("begun")?.value == "1")
    }

    /// Commits, then loses the answer; asking for the fate never answers.
    struct SilentBackend: ForwardingBackend {
        let inner: EmbeddedBackend

        func commit(_ handle: Txn, writes: [(String, String?)]) async throws -> Timestamp {
            _ = try await inner.commit(handle, writes: writes)
            throw ClientError.transport("connection reset after the commit was sent")
        }

        func resolve(_ handle: Txn) async throws -> Timestamp? {
            // A stalled node: no answer before the request timeout, and cancellation ignored,
            // as a transport may. (Not a loop of `try? Task.sleep`: cancelled, that spins and
            // holds a thread of the shared pool, stalling every other test.)
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                DispatchQueue.global().asyncAfter(deadline: .now() + 30) { c.resume() }
            }
            return try await inner.resolve(handle)
        }
    }

    /// Each ask for a lost commit's fate could take a whole request timeout past the
    /// deadline (a call with a 60 s deadline ended after 120 s).
    @Test func resolvingALostCommitEndsAtTheDeadline() async throws {
        let node = try await Self.node()
        let memory = TransactionalMemory(backend: SilentBackend(inner: EmbeddedBackend(node: node)))
        let start = ContinuousClock.now
        await #expect {
            try await memory.atomically(Self.options(deadline: .seconds(1))) { tx in
                try await tx.write("silent", .number("1"))
                _ = try await tx.read("other")
            }
        } throws: { error in
            guard case ClientError.outcomeUnknown = error else { return false }
            return true
        }
        // The deadline, and the two seconds one ask is always allowed.
        #expect(ContinuousClock.now - start < .seconds(5))
    }

    /// A caller cancelled while its lost commit was being resolved got `CancellationError`,
    /// which a caller may take for "not done" and run again: a transfer twice.
    @Test func cancellingWhileResolvingSaysTheOutcomeIsUnknown() async throws {
        let node = try await Self.node()
        let memory = TransactionalMemory(backend: SilentBackend(inner: EmbeddedBackend(node: node)))
        let call = Task {
            try await memory.atomically { tx in
                try await tx.write("cancelled", .number("1"))
                _ = try await tx.read("other")
            }
        }
        try await Task.sleep(for: .milliseconds(300))
        let start = ContinuousClock.now
        call.cancel()
        let result = await call.result
        guard case .failure(let error) = result, case ClientError.outcomeUnknown = error else {
            Issue.record("expected outcomeUnknown, got \(result)")
            return
        }
        #expect(ContinuousClock.now - start < .seconds(2))
    }

    /// `retry()` waits through a watch; a watch the node refuses (its watcher table full, or
    /// it is restarting) ended the whole call. Now the body runs again after a pause, and
    /// still blocks until what it read changes.
    @Test func retrySurvivesAWatchTheNodeRefuses() async throws {
        let node = try await Self.node { $0.limits.watchersMax = 0 }
        let memory = TransactionalMemory(backend: EmbeddedBackend(node: node))
        let runs = Counter()
        async let taken: Int = memory.atomically(Self.options(deadline: .seconds(20))) { tx in
            runs.add()
            guard let v = try await tx.read("refused-mailbox")?.intValue else { try await tx.retry() }
            return v
        }
        try await Task.sleep(for: .milliseconds(300))
        try await memory.atomically { tx in try await tx.write("refused-mailbox", .number("7")) }
        #expect(try await taken == 7)
        // It ran again after each refused wait, with a growing pause: not a busy loop.
        #expect(runs.count >= 2 && runs.count < 60, "\(runs.count) runs")
    }

    /// A body that read more pointers than a watch used to take (1,000) got a 413 from
    /// `retry()` instead of blocking.
    @Test func retryWaitsOnALargeReadSet() async throws {
        let node = try await Self.node()
        let memory = TransactionalMemory(backend: EmbeddedBackend(node: node))
        let ptrs = (0..<1_500).map { "wide.\($0)" }
        async let found: String = memory.atomically(Self.options(deadline: .seconds(20))) { tx in
            let values = try await tx.read(ptrs)
            guard let hit = values.first(where: { !$0.value.isNull })?.key else { try await tx.retry() }
            return hit
        }
        try await Task.sleep(for: .milliseconds(300))
        try await memory.atomically { tx in try await tx.write("wide.1234", .bool(true)) }
        #expect(try await found == "wide.1234")
    }

    /// A value an application builds with a number that is not JSON was written as it was:
    /// in a batch it broke the other items' requests, or added requests of its own.
    @Test func aMalformedNumberIsRefusedBeforeAnythingIsSent() async throws {
        let node = try await Self.node()
        let memory = TransactionalMemory(backend: EmbeddedBackend(node: node))
        for bad in ["NaN", "1}}},{\"method\":\"POST\"", "", "01", "1.", "-", "1e", "+1", " 1"] {
            await #expect(throws: ClientError.self, "\(bad.debugDescription)") {
                try await memory.atomically { tx in try await tx.write("num", .array([.number(bad)])) }
            }
        }
        for good in ["0", "-0", "12.5e-3", "1E+9", "-12"] {
            try await memory.atomically { tx in try await tx.write("num", .number(good)) }
            #expect(try await node.get("num")?.value == good)
        }
        #expect(JSONValue.isNumber("123") && !JSONValue.isNumber("12a"))
    }

    /// The lean NIO transport ignored a caller's cancellation once its request was sent: a
    /// cancelled `retry()` stayed parked on its watch until the node answered (up to 30 s).
    @Test func theLeanTransportStopsWaitingWhenCancelled() async throws {
        // A server that accepts and never answers.
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(server.localAddress?.port)
        let lean = try #require(NIOTransport(url: "http://127.0.0.1:\(port)", connections: 1, requestTimeout: .seconds(30), responseBytesMax: 1 << 20))
        let call = Task { try await lean.send(.POST, "/watch", body: "{}", restmAfter: nil) }
        try await Task.sleep(for: .milliseconds(200))
        let start = ContinuousClock.now
        call.cancel()
        await #expect(throws: CancellationError.self) { _ = try await call.value }
        #expect(ContinuousClock.now - start < .seconds(2))
        try await lean.shutdown()
        try await server.close()
    }

    /// The deadline of `atomically` bounded the asks about a lost commit but not the commit
    /// request itself: against a node that stopped answering, a 1 s deadline took the whole
    /// 30 s request timeout. Requests now end at the deadline (then the outcome is asked,
    /// with its own two seconds), with either transport, batched or not.
    @Test func aStalledRequestEndsAtTheDeadline() async throws {
        // A server that accepts and never answers.
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(server.localAddress?.port)
        let setups: [(HTTPBackend.Transport, HTTPBackend.Batching?)] = [(.nio, nil), (.asyncHTTPClient, nil), (.nio, HTTPBackend.Batching())]
        for (transport, batching) in setups {
            let backend = HTTPBackend(url: "http://127.0.0.1:\(port)", requestTimeout: .seconds(30), transport: transport, batching: batching)
            let memory = TransactionalMemory(backend: backend)
            let start = ContinuousClock.now
            await #expect(throws: ClientError.self) {
                try await memory.atomically(Self.options(deadline: .seconds(1))) { tx in try await tx.write("x", .number("1")) }
            }
            let took = ContinuousClock.now - start
            #expect(took < .seconds(8), "\(transport) \(batching == nil ? "alone" : "batched"): \(took) for a 1 s deadline")
            try await backend.shutdown()
        }
        try await server.close()
    }

    /// The lean transport opened a connection for every request in flight beyond its idle
    /// pool: a thousand concurrent requests were a thousand sockets. It now keeps at most
    /// `connections` in flight; the others wait their turn (and leave the line if cancelled).
    @Test func theLeanTransportKeepsItsConnectionsBounded() async throws {
        let accepted = Counter()
        // A server that accepts and never answers.
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                accepted.add()
                return channel.eventLoop.makeSucceededVoidFuture()
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(server.localAddress?.port)
        let lean = try #require(NIOTransport(url: "http://127.0.0.1:\(port)", connections: 2, requestTimeout: .seconds(30), responseBytesMax: 1 << 20))
        let calls = (0..<8).map { _ in Task { try await lean.send(.GET, "/sys/health", body: nil, restmAfter: nil) } }
        try await Task.sleep(for: .milliseconds(500))
        #expect(accepted.count == 2, "\(accepted.count) connections for 8 requests in flight and a limit of 2")
        let start = ContinuousClock.now
        for c in calls { c.cancel() }
        for c in calls { await #expect(throws: CancellationError.self) { _ = try await c.value } }
        #expect(ContinuousClock.now - start < .seconds(2))
        #expect(accepted.count <= 4, "cancelled waiters must not connect")
        try await lean.shutdown()
        // A request waiting for a slot ends at its deadline (a `retry()` watch behind parked
        // ones), as it would on the wire.
        let lone = try #require(NIOTransport(url: "http://127.0.0.1:\(port)", connections: 1, requestTimeout: .seconds(30), responseBytesMax: 1 << 20))
        let parked = Task { try await lone.send(.GET, "/sys/health", body: nil, restmAfter: nil) }
        try await Task.sleep(for: .milliseconds(200))
        let waited = ContinuousClock.now
        await #expect(throws: NIOTransportError.self) {
            try await RequestDeadline.$current.withValue(.now + .milliseconds(300)) {
                _ = try await lone.send(.GET, "/sys/health", body: nil, restmAfter: nil)
            }
        }
        #expect(ContinuousClock.now - waited < .seconds(2))
        parked.cancel()
        _ = try? await parked.value
        try await lone.shutdown()
        try await server.close()
    }

    /// Watches have a node-wide byte budget besides their count: many watches of long ids
    /// could otherwise hold the node's memory until their timeouts.
    @Test func watchersAreBoundedByTheBytesTheyName() async throws {
        let node = try await Self.node { $0.limits.watcherBytesMax = 64 * 1024 }
        let ids = (0..<100).map { "watched.\(String(repeating: "x", count: 200)).\($0)" }
        let first = Task { try await node.watch(ids.map { ($0, nil) }, timeout: .seconds(5)) }
        for _ in 0..<200 where node.watcherCount == 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(node.watcherCount == 1 && node.watcherBytes > 40_000)
        await #expect {
            _ = try await node.watch(ids.map { ($0, nil) }, timeout: .seconds(5))
        } throws: { ($0 as? RestmError)?.code == .overloaded }
        first.cancel()
        _ = try await first.value
        #expect(node.watcherCount == 0 && node.watcherBytes == 0)
        // A watch names at least one pointer.
        await #expect { _ = try await node.watch([], timeout: .seconds(1)) } throws: { ($0 as? RestmError)?.code == .badRequest }
    }
}
