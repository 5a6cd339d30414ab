import Hummingbird
import NIOCore
import NIOHTTP1
@testable import RestmClient
import RestmCore
import RestmHTTP
import RestmNode
import RestmStore
import RestmTestSupport
import Synchronization
import Testing

/// The read cache (optimistic one-round-trip commits), client-chosen transaction ids, and
/// the coalescing of requests into `POST /batch`.
@Suite struct CacheAndBatchTests {
    static func number(_ n: Int) -> JSONValue { .number(String(n)) }

    // MARK: read cache

    @Test func aStaleCacheEntryFailsTheCheckAndIsReadAgain() async throws {
        let node = try await Node.open(store: MemoryStore())
        let cached = TransactionalMemory(backend: EmbeddedBackend(node: node), cache: ReadCache())
        let plain = TransactionalMemory(backend: EmbeddedBackend(node: node))
        try await plain.atomically { tx in try await tx.write("x", Self.number(1)) }
        #expect(try await cached.atomically { tx in try await tx.read("x")?.intValue } == 1)
        // Written behind the cache's back: its entry for x is now stale.
        try await plain.atomically { tx in try await tx.write("x", Self.number(2)) }
        let runs = Counter()
        let (_, report) = try await cached.atomicallyReporting { tx in
            runs.add()
            let n = try await tx.read("x")?.intValue ?? 0
            try await tx.write("x", Self.number(n + 1))
        }
        // The first attempt saw 1 and was refused at commit, which answered 2: the second ran on it.
        #expect(runs.count == 2 && report.conflicts == 1)
        #expect(try await node.get("x")?.value == "3")
        // A read-only body is checked too: a stale value is never returned.
        try await plain.atomically { tx in try await tx.write("x", Self.number(10)) }
        #expect(try await cached.atomically { tx in try await tx.read("x")?.intValue } == 10)
        // An absent pointer is expected absent: a phantom written meanwhile is caught.
        #expect(try await cached.atomically { tx in try await tx.read("ghost") } == nil)
        try await plain.atomically { tx in try await tx.write("ghost", .bool(true)) }
        #expect(try await cached.atomically { tx in try await tx.read("ghost") } == .bool(true))
    }

    @Test func cachedTransfersKeepTheBankTotal() async throws {
        var random = SeededRandom.fromEnvironment()
        print("cachedTransfersKeepTheBankTotal seed \(random.seed)")
        let node = try await Node.open(store: MemoryStore())
        let cache = ReadCache(capacity: 16)
        let cached = TransactionalMemory(backend: EmbeddedBackend(node: node), cache: cache)
        let plain = TransactionalMemory(backend: EmbeddedBackend(node: node))
        let accounts = 6
        try await plain.atomically { tx in for a in 0..<accounts { try await tx.write("acct:\(a)", Self.number(100)) } }
        let seeds = (0..<8).map { _ in random.next() }
        let conflicts = Counter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (c, seed) in seeds.enumerated() {
                group.addTask {
                    var r = SeededRandom(seed: seed)
                    // Half the clients go through the cache, half around it (staling it).
                    let memory = c % 2 == 0 ? cached : plain
                    for _ in 0..<40 {
                        let from = Int(r.next() % UInt64(accounts))
                        let to = (from + 1 + Int(r.next() % UInt64(accounts - 1))) % accounts
                        let amount = 1 + Int(r.next() % 10)
                        let (_, report) = try await memory.atomicallyReporting { tx in
                            let a = try await tx.read("acct:\(from)")?.intValue ?? 0
                            let b = try await tx.read("acct:\(to)")?.intValue ?? 0
                            guard a >= amount else { return }
                            try await tx.write("acct:\(from)", Self.number(a - amount))
                            try await tx.write("acct:\(to)", Self.number(b + amount))
                        }
                        conflicts.add(report.conflicts)
                    }
                }
            }
            try await group.waitForAll()
        }
        let total = try await plain.atomically { tx in
            try await tx.read((0..<accounts).map { "acct:\($0)" }).values.reduce(0) { $0 + ($1.intValue ?? 0) }
        }
        #expect(total == 100 * accounts, "seed \(random.seed)")
        #expect(cache.count <= 16)
    }

    @Test func retryInACachedBodyWaitsForAFreshChange() async throws {
        let node = try await Node.open(store: MemoryStore())
        let cached = TransactionalMemory(backend: EmbeddedBackend(node: node), cache: ReadCache())
        let plain = TransactionalMemory(backend: EmbeddedBackend(node: node))
        // The cache learns "box is empty"; the box is then filled behind its back.
        #expect(try await cached.atomically { tx in try await tx.read("box") } == nil)
        try await plain.atomically { tx in try await tx.write("box", Self.number(5)) }
        let runs = Counter()
        let got: Int = try await cached.atomically { tx in
            runs.add()
            guard let v = try await tx.read("box")?.intValue else { try await tx.retry() }
            return v
        }
        // The stale "empty" made the first run retry; the cache entry was dropped, not watched forever.
        #expect(got == 5 && runs.count == 2)
        // And a real wait: nothing there, then a write wakes it.
        async let later: Int = cached.atomically { tx in
            guard let v = try await tx.read("later")?.intValue else { try await tx.retry() }
            return v
        }
        try await Task.sleep(for: .milliseconds(100))
        try await plain.atomically { tx in try await tx.write("later", Self.number(9)) }
        #expect(try await later == 9)
    }

    /// Loses the answer of the first optimistic commit, after it happened.
    struct LosingOptimisticBackend: ForwardingBackend {
        let inner: EmbeddedBackend
        var failure: ClientError = .transport("connection reset after the commit was sent")
        let lost = Counter()
        let resolved = Counter()

        func commitExpecting(id: String, expect: [(String, Timestamp?)], writes: [(String, String?)]) async throws -> ExpectingOutcome {
            let outcome = try await inner.commitExpecting(id: id, expect: expect, writes: writes)
            if lost.count == 0 {
                lost.add()
                throw failure
            }
            return outcome
        }
        func resolve(id: String) async throws -> Timestamp? {
            resolved.add()
            return try await inner.resolve(id: id)
        }
    }

    /// A lost answer, or an answer that does not say what happened (a 500, a proxy's 502).
    @Test(arguments: [
        ClientError.transport("connection reset after the commit was sent"),
        ClientError.server(status: 500, code: "internal", message: "internal error", retryable: false),
        ClientError.server(status: 502, code: "http_502", message: "", retryable: false),
    ])
    func aLostOptimisticCommitIsResolvedByItsIDNotReRun(_ failure: ClientError) async throws {
        let node = try await Node.open(store: MemoryStore())
        let backend = LosingOptimisticBackend(inner: EmbeddedBackend(node: node), failure: failure)
        let memory = TransactionalMemory(backend: backend, cache: ReadCache())
        let runs = Counter()
        try await memory.atomically { tx in
            runs.add()
            let n = try await tx.read("once")?.intValue ?? 0
            try await tx.write("once", Self.number(n + 1))
        }
        #expect(runs.count == 1 && backend.resolved.count == 1)
        #expect(try await node.get("once")?.value == "1")
    }

    /// A write-only body (no read cache) commits in one round trip under a client id too: a
    /// lost answer is resolved by that id, not written again, and not thrown at the caller
    /// as if nothing had been sent.
    @Test(arguments: [
        ClientError.transport("connection reset after the commit was sent"),
        ClientError.server(status: 502, code: "http_502", message: "", retryable: false),
    ])
    func aLostBlindCommitIsResolvedByItsIDNotReRun(_ failure: ClientError) async throws {
        let node = try await Node.open(store: MemoryStore())
        let backend = LosingOptimisticBackend(inner: EmbeddedBackend(node: node), failure: failure)
        let memory = TransactionalMemory(backend: backend)
        let runs = Counter()
        try await memory.atomically { tx in
            runs.add()
            try await tx.write("blind", Self.number(runs.count))
        }
        #expect(runs.count == 1 && backend.lost.count == 1 && backend.resolved.count == 1)
        #expect(try await node.get("blind")?.value == "1")
    }

    /// Answers every optimistic commit as if the node had retried it `attempts` times.
    struct RetriedOnTheNodeBackend: ForwardingBackend {
        let inner: EmbeddedBackend
        let attempts: Int

        func commitExpecting(id: String, expect: [(String, Timestamp?)], writes: [(String, String?)]) async throws -> ExpectingOutcome {
            guard case .committed(let ts, _) = try await inner.commitExpecting(id: id, expect: expect, writes: writes) else {
                Issue.record("the commit did not go through")
                throw ClientError.transport("unexpected")
            }
            return .committed(ts, attempts: attempts)
        }
    }

    /// Conflicts the node retried inside an optimistic commit are the transaction's own: a
    /// benchmark that counted only what the client saw would under-report them.
    @Test func conflictsTheNodeRetriedCountAsTheTransactions() async throws {
        let node = try await Node.open(store: MemoryStore())
        let memory = TransactionalMemory(backend: RetriedOnTheNodeBackend(inner: EmbeddedBackend(node: node), attempts: 3), cache: ReadCache())
        let (_, report) = try await memory.atomicallyReporting { tx in
            let n = try await tx.read("n")?.intValue ?? 0
            try await tx.write("n", Self.number(n + 1))
        }
        #expect(report.attempts == 3 && report.conflicts == 2)
        let (_, once) = try await TransactionalMemory(backend: EmbeddedBackend(node: node), cache: ReadCache()).atomicallyReporting { tx in
            try await tx.write("n", Self.number(0))
        }
        #expect(once.attempts == 1 && once.conflicts == 0)
    }

    /// Blind one-shots racing on one pointer: the node retries the ones that collide and
    /// says how many times it ran each, which adds up to the conflicts it counted.
    @Test func theNodeSaysHowOftenItRanAOneShot() async throws {
        let node = try await Node.open(store: MemoryStore())
        final class Seen: Sendable {
            let attempts = Mutex<[Int]>([])
            /// One-shots that gave up (a retryable conflict past the node's retry deadline,
            /// which a loaded machine running other suites at once can reach).
            let gaveUp = Counter()
        }
        func conflicts() -> Int { node.metrics.snapshot().counters.filter { $0.key.hasPrefix("conflict_") }.values.reduce(0, +) }
        // Collisions are likely but not certain in one round: race until some were retried.
        for round in 1...20 {
            let before = conflicts()
            let seen = Seen()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for c in 0..<16 {
                    group.addTask {
                        for i in 0..<50 {
                            do {
                                let r = try await node.oneShot(OneShotRequest(writes: [("hot", "\(c * 1000 + i)")], txn: ClientTxnID.make()))
                                seen.attempts.withLock { $0.append(r.attempts) }
                            } catch let e as RestmError where e.code == .conflict {
                                seen.gaveUp.add()
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            let attempts = seen.attempts.withLock { $0 }
            #expect(attempts.count + seen.gaveUp.count == 800 && attempts.allSatisfy { $0 >= 1 })
            let retried = attempts.reduce(0) { $0 + $1 - 1 }
            if seen.gaveUp.count == 0 {
                #expect(retried == conflicts() - before, "each retry is one conflict the node counted")
            } else {
                // The runs of those that gave up were conflicts too, counted but not answered.
                #expect(retried < conflicts() - before, "each retry is one conflict the node counted")
            }
            if attempts.contains(where: { $0 > 1 }) { return }
            print("round \(round): no one-shot was retried; racing again")
        }
        Issue.record("800 racing one-shots on one pointer, 20 times, and the node never retried one")
    }

    // MARK: client-chosen ids on the node

    @Test func aClientIDRunsOnceAndAnIDAskedAboutFirstNeverRuns() async throws {
        let node = try await Node.open(store: MemoryStore())
        let id = ClientTxnID.make()
        #expect(ClientTxnID.isValid(id) && id.count == 27)
        #expect(!ClientTxnID.isValid("t1.1.1") && !ClientTxnID.isValid("c-short") && !ClientTxnID.isValid("c" + String(repeating: "a", count: 65)))
        let first = try await node.oneShot(OneShotRequest(writes: [("k", "1")], txn: id))
        // The same id again answers the first outcome and writes nothing.
        let again = try await node.oneShot(OneShotRequest(writes: [("k", "2")], txn: id))
        #expect(again.ts == first.ts)
        #expect(try await node.get("k")?.value == "1")
        #expect(try await node.status(of: id).status == .committed(first.ts))
        // Asked about before it arrived: fenced, and refused when it does arrive.
        let late = ClientTxnID.make()
        guard case .aborted = try await node.status(of: late).status else {
            Issue.record("an unknown client id was not reported aborted")
            return
        }
        await #expect(throws: RestmError.self) { _ = try await node.oneShot(OneShotRequest(writes: [("k", "3")], txn: late)) }
        #expect(try await node.get("k")?.value == "1")
        // A failed expectation is final for its id too.
        let failed = ClientTxnID.make()
        await #expect(throws: RestmError.self) {
            _ = try await node.oneShot(OneShotRequest(expect: [("k", nil)], writes: [("k", "4")], txn: failed))
        }
        guard case .aborted = try await node.status(of: failed).status else {
            Issue.record("a failed expectation did not abort its id")
            return
        }
        // Ids sort by creation time (records are appended, not scattered).
        let stamps = (0..<50).map { _ in ClientTxnID.make().prefix(12) }
        #expect(stamps == stamps.sorted())
        // Random parts from the pool, across several refills and from concurrent tasks:
        // no two alike, and not constant.
        let many = await withTaskGroup(of: [Substring].self) { group in
            for _ in 0..<4 { group.addTask { (0..<500).map { _ in ClientTxnID.make().dropFirst(12) } } }
            return await group.reduce(into: []) { $0 += $1 }
        }
        #expect(Set(many).count == 2_000)
        #expect(Set(many.map { $0.prefix(1) }).count > 16, "the first random digit takes many values")
    }

    // MARK: coalescing

    /// An inner transport that answers after a delay, and answers a batch item by item with
    /// the item's path, or 404 to `/batch` when told to (an older node).
    final class FakeWire: HTTPTransport {
        let delay: Duration
        let noBatch: Bool
        let exchanges = Mutex<[String]>([])
        let itemsSeen = Counter()

        init(delay: Duration, noBatch: Bool = false) {
            self.delay = delay
            self.noBatch = noBatch
        }

        func send(_ method: HTTPMethod, _ path: String, body: String?, restmAfter: String?) async throws -> HTTPAnswer {
            exchanges.withLock { $0.append(path) }
            try await Task.sleep(for: delay)
            if path == "/batch" {
                if noBatch { return HTTPAnswer(status: 404, restmTs: nil, body: ByteBuffer(string: #"{"error":"no_such_route"}"#)) }
                let json = try JSONValue.parse(Array(body!.utf8))
                guard case .array(let items)? = json["requests"] else { throw ClientError.transport("bad batch") }
                itemsSeen.add(items.count)
                let answers = items.map { item in
                    "{\"status\":200,\"body\":{\"path\":" + JSONWriter.quoted(item["path"]?.stringValue ?? "") + "}}"
                }
                return HTTPAnswer(status: 200, restmTs: "ts", body: ByteBuffer(string: "{\"responses\":[" + answers.joined(separator: ",") + "]}"))
            }
            itemsSeen.add()
            return HTTPAnswer(status: 200, restmTs: "ts", body: ByteBuffer(string: "{\"path\":" + JSONWriter.quoted(path) + "}"))
        }

        func shutdown() async throws {}
    }

    static func answers(_ t: BatchingTransport, _ paths: [String]) async throws -> [String: String] {
        try await withThrowingTaskGroup(of: (String, String).self) { group in
            for p in paths {
                group.addTask {
                    let a = try await t.send(.POST, p, body: "{}", restmAfter: nil)
                    let json = try a.json ?? JSONValue.parse(a.body.readableBytesView)
                    return (p, json["path"]?.stringValue ?? "")
                }
            }
            var out: [String: String] = [:]
            for try await (p, answered) in group { out[p] = answered }
            return out
        }
    }

    @Test func concurrentRequestsShareExchangesAndEachGetsItsOwnAnswer() async throws {
        let wire = FakeWire(delay: .milliseconds(50))
        let t = BatchingTransport(inner: wire, inFlightMax: 1, itemsMax: 8)
        let paths = (0..<30).map { "/txn/t\($0)/read" }
        let got = try await Self.answers(t, paths)
        #expect(got == Dictionary(uniqueKeysWithValues: paths.map { ($0, $0) }))
        let exchanges = wire.exchanges.withLock { $0 }
        // One went alone, the rest waited and went in batches of at most 8.
        #expect(exchanges.count >= 1 + 29 / 8 && exchanges.count < 30)
        #expect(exchanges.filter { $0 == "/batch" }.count >= 3)
        #expect(wire.itemsSeen.count == 30)
        // Waiting routes always travel alone.
        _ = try await t.send(.POST, "/watch", body: "{}", restmAfter: nil)
        #expect(wire.exchanges.withLock { $0.last } == "/watch")
    }

    @Test func aNodeWithoutBatchGetsEveryRequestAlone() async throws {
        let wire = FakeWire(delay: .milliseconds(30), noBatch: true)
        let t = BatchingTransport(inner: wire, inFlightMax: 1, itemsMax: 8)
        let paths = (0..<12).map { "/ptr/p\($0)" }
        let got = try await Self.answers(t, paths)
        #expect(got == Dictionary(uniqueKeysWithValues: paths.map { ($0, $0) }))
        #expect(wire.exchanges.withLock { $0 }.filter { $0 == "/batch" }.count == 1)
        // From then on nothing is batched.
        let more = try await Self.answers(t, (0..<6).map { "/ptr/q\($0)" })
        #expect(more.count == 6)
        #expect(wire.exchanges.withLock { $0 }.filter { $0 == "/batch" }.count == 1)
    }

    /// A node bounds the read results of one answer (`answerBytesMax`): a body reading more
    /// than that at once still gets every value, because the client reads in halves when an
    /// answer would be too large (begin, read and snapshot read alike).
    @Test(arguments: [false, true])
    func readsPastTheNodesAnswerLimitAreSplit(_ cached: Bool) async throws {
        var c = NodeConfiguration()
        c.limits.answerBytesMax = 4_096
        let node = try await Node.open(store: MemoryStore(), configuration: c)
        try await withServedNode(node) { port in
            let backend = HTTPBackend(url: "http://127.0.0.1:\(port)", connections: 4, transport: .nio)
            // Written through another memory, so that a cached reader misses and reads.
            let writer = TransactionalMemory(backend: backend)
            let memory = TransactionalMemory(backend: backend, cache: cached ? ReadCache() : nil)
            let ptrs = (0..<40).map { "large:\($0)" }
            let text = String(repeating: "v", count: 1_000)
            try await writer.atomically { tx in
                for (i, p) in ptrs.enumerated() { try await tx.write(p, .string("\(i) \(text)")) }
            }
            let read = try await memory.atomically { tx in
                let values = try await tx.read(ptrs)
                let more = try await tx.read(ptrs.map { $0 + ":absent" } + ["large:0"])
                try await tx.write("large:sum", .number(String(values.count + more.count)))
                return values
            }
            #expect(read.count == 40)
            for (i, p) in ptrs.enumerated() { #expect(read[p]?.stringValue == "\(i) \(text)") }
            let sum = try await memory.atomically { tx in try await tx.read("large:sum")?.intValue }
            #expect(sum == 41)
            try await backend.shutdown()
        }
    }

    /// A batch the node refuses whole (here: one item's body is not JSON, so neither is the
    /// batch) ran nothing: its items are sent again alone, and only the bad one fails. Before,
    /// the refusal was every item's answer.
    @Test func oneBadItemFailsAloneNotItsBatch() async throws {
        let node = try await Node.open(store: MemoryStore())
        try await withServedNode(node) { port in
            let wire = try #require(NIOTransport(url: "http://127.0.0.1:\(port)", connections: 4, requestTimeout: .seconds(10), responseBytesMax: 1 << 20))
            let t = BatchingTransport(inner: wire, inFlightMax: 1, itemsMax: 16)
            for round in 0..<5 {
                let answers = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
                    for i in 0..<12 {
                        group.addTask {
                            let a = try await t.send(.PUT, "/ptr/alone.\(round).\(i)", body: i == 5 ? "{oops" : "\(i)", restmAfter: nil)
                            return (i, a.status)
                        }
                    }
                    var out: [Int: Int] = [:]
                    for try await (i, status) in group { out[i] = status }
                    return out
                }
                #expect(answers[5] == 400, "round \(round)")
                #expect((0..<12).filter { $0 != 5 }.allSatisfy { answers[$0] == 200 }, "round \(round): \(answers)")
                for i in 0..<12 where i != 5 { #expect(try await node.get("alone.\(round).\(i)")?.value == "\(i)") }
            }
            #expect(t.exchangeCount.load(ordering: .relaxed) < 5 * 12 * 2, "some went in batches")
            try await t.shutdown()
        }
    }

    /// Over real HTTP: batched and cached, the bodies of the other tests run unchanged, and
    /// the node did see batches.
    @Test(arguments: [false, true])
    func bodiesRunBatchedOverHTTP(_ cached: Bool) async throws {
        let node = try await Node.open(store: MemoryStore())
        try await withServedNode(node) { port in
            let backend = HTTPBackend(url: "http://127.0.0.1:\(port)", connections: 4, transport: .nio, batching: .init(inFlightMax: 1))
            let memory = TransactionalMemory(backend: backend, cache: cached ? ReadCache() : nil)
            #expect(try await incrementConcurrently(memory, "b-counter", clients: 8, times: 10) == 80)
            try await collectionsRunUnchanged(memory)
            let metrics = try await backend.call(.GET, "/sys/metrics")
            let batches = metrics?["code"]?["http"]?["POST /batch"]?["invocations"]?.intValue ?? 0
            #expect(batches > 0)
            try await backend.shutdown()
        }
    }
}

/// The contention manager: in-process turns for transactions that collided.
@Suite struct ContentionTests {
    final class Inside: Sendable {
        let held = Mutex<Set<String>>([])
        func withLock<R>(_ body: (inout Set<String>) -> R) -> R { held.withLock { body(&$0) } }
    }

    @Test func locksAreHandedOverInOrderAndNeverDeadlock() async throws {
        var random = SeededRandom.fromEnvironment()
        print("locksAreHandedOverInOrderAndNeverDeadlock seed \(random.seed)")
        let locks = LocalLocks()
        let inside = Inside()
        let overlaps = Counter()
        let sets: [[String]] = (0..<64).map { _ in
            Set((0..<3).map { _ in "p\(random.next() % 6)" }).sorted()
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for set in sets {
                group.addTask {
                    await locks.acquire(set)
                    // Nobody else holds any of these while this task does.
                    let clash = inside.withLock { s -> Bool in
                        let c = !s.isDisjoint(with: set)
                        s.formUnion(set)
                        return c
                    }
                    if clash { overlaps.add() }
                    try await Task.sleep(for: .microseconds(200))
                    inside.withLock { $0.subtract(set) }
                    locks.release(set)
                }
            }
            try await group.waitForAll()
        }
        #expect(overlaps.count == 0, "seed \(random.seed)")
        #expect(locks.heldCount == 0)
    }

    /// A waiter for {a, b} while b is held holds nothing (a stays free: no convoy behind a
    /// half-locked set), and a later waiter on a does not overtake it.
    @Test func aWaiterHoldsNothingAndIsNotOvertaken() async throws {
        let locks = LocalLocks()
        await locks.acquire(["b"])
        let both = Task { await locks.acquire(["a", "b"]) }
        try await Self.until { locks.waitingCount == 1 }
        #expect(!locks.anyHeld(["a"]))
        let justA = Task { await locks.acquire(["a"]) }
        try await Self.until { locks.waitingCount == 2 }
        #expect(!locks.anyHeld(["a"]))
        locks.release(["b"])
        await both.value
        #expect(locks.anyHeld(["a"]) && locks.anyHeld(["b"]) && locks.waitingCount == 1)
        locks.release(["a", "b"])
        await justA.value
        #expect(locks.anyHeld(["a"]) && !locks.anyHeld(["b"]))
        locks.release(["a"])
        #expect(locks.heldCount == 0 && locks.waitingCount == 0)
    }

    /// The node's line of retries must be bounded: a waiter gives up at its deadline, when
    /// cancelled, or at once when the line is full, and leaves nothing behind.
    @Test func aWaiterGivesUpAtItsDeadlineWhenCancelledOrWhenTheLineIsFull() async throws {
        let locks = LocalLocks()
        await locks.acquire(["a"])
        let start = ContinuousClock.now
        #expect(await locks.acquire(["a"], until: .now + .milliseconds(100), waitersMax: 10) == false)
        #expect(ContinuousClock.now - start >= .milliseconds(100) && ContinuousClock.now - start < .seconds(3))
        #expect(locks.waitingCount == 0)
        let parked = Task { await locks.acquire(["a"], until: .now + .seconds(60), waitersMax: 10) }
        try await Self.until { locks.waitingCount == 1 }
        #expect(await locks.acquire(["a"], until: .now + .seconds(60), waitersMax: 1) == false, "a full line answers at once")
        parked.cancel()
        #expect(await parked.value == false)
        #expect(locks.waitingCount == 0)
        let granted = Task { await locks.acquire(["a", "b"], until: .now + .seconds(60), waitersMax: 10) }
        try await Self.until { locks.waitingCount == 1 }
        locks.release(["a"])
        #expect(await granted.value == true)
        locks.release(["a", "b"])
        #expect(locks.heldCount == 0 && locks.waitingCount == 0)
    }

    static func until(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(5)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw ClientError.transport("condition not reached in 5 s") }
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    /// Fails the first commit with a conflict, whatever it is.
    struct ConflictOnceBackend: ForwardingBackend {
        let inner: EmbeddedBackend
        let failed = Counter()

        func commit(_ handle: Txn, writes: [(String, String?)]) async throws -> Timestamp {
            if failed.count == 0 {
                failed.add()
                await inner.abort(handle)
                throw ClientError.server(status: 409, code: "conflict", message: "made up", retryable: true)
            }
            return try await inner.commit(handle, writes: writes)
        }
    }

    /// Its first begin sleeps (honouring cancellation) until cancelled; later begins pass.
    struct SlowFirstBeginBackend: ForwardingBackend {
        let inner: EmbeddedBackend
        let begins = Counter()

        func begin(priority: Timestamp?, reads: [String]) async throws -> (handle: Txn, rv: Timestamp, values: [String: ReadValue]) {
            begins.add()
            if begins.count == 1 { try await Task.sleep(for: .seconds(30)) }
            return try await inner.begin(priority: priority, reads: reads)
        }
    }

    /// The begin runs in the first reader's task: cancelling that reader must not fail the
    /// other reads of the transaction that wait for the same begin; one of them begins again.
    @Test func aCancelledFirstReadDoesNotFailTheOthers() async throws {
        let node = try await Node.open(store: MemoryStore())
        let embedded = EmbeddedBackend(node: node)
        try await TransactionalMemory(backend: embedded).atomically { tx in try await tx.write("x", .number("7")) }
        let backend = SlowFirstBeginBackend(inner: embedded)
        let tx = ClientTransaction(backend: backend, priority: nil)
        let first = Task { try await tx.read(["x"]) }
        try await ContentionTests.until { backend.begins.count == 1 }
        let second = Task { try await tx.read(["x"]) }
        try await ContentionTests.until { tx.begin.withLock { if case .running(let w) = $0 { return w.count == 1 }; return false } }
        first.cancel()
        await #expect(throws: CancellationError.self) { try await first.value }
        let read = try await second.value
        #expect(read["x"] == .number("7"))
        #expect(backend.begins.count == 2)
        await tx.abandon()
        await node.shutdown()
    }

    @Test func aTurnIsNotHeldWhileWaitingInRetry() async throws {
        let node = try await Node.open(store: MemoryStore())
        let memory = TransactionalMemory(backend: ConflictOnceBackend(inner: EmbeddedBackend(node: node)))
        let runs = Counter()
        // First attempt: conflicts (made up), so the second queues on what it touched (q, w)
        // and holds that turn; it then finds q empty and waits in retry().
        async let got: Int = memory.atomically { tx in
            runs.add()
            if runs.count == 1 {
                _ = try await tx.read("q")
                try await tx.write("w", .number("1"))
                return 0
            }
            guard let v = try await tx.read("q")?.intValue else { try await tx.retry() }
            return v
        }
        var spins = 0
        while runs.count < 2, spins < 500 {
            try await Task.sleep(for: .milliseconds(10))
            spins += 1
        }
        try await Task.sleep(for: .milliseconds(50))
        // A writer of q must not wait for that turn: it would never come.
        let started = ContinuousClock.now
        try await memory.atomically { tx in
            _ = try await tx.read("q")
            try await tx.write("q", .number("9"))
        }
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(try await got == 9)
        #expect(memory.contention.heldCount == 0)
    }
}
