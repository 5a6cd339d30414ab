@testable import RestmNode
import RestmCore
@testable import RestmStore
import RestmTestSupport
import Testing

/// Intents whose coordinator is gone, and the durable timestamp ceiling, driven with a
/// manual clock.
@Suite struct OrphanTests {
    func node(_ store: MemoryStore, _ clock: ManualClock) async throws -> Node {
        var c = NodeConfiguration()
        c.shardCount = 2
        c.clock = clock
        return try await Node.open(store: store, configuration: c)
    }

    /// Places an intent of a transaction no coordinator runs, as a crashed peer would leave it.
    func plantIntent(_ node: Node, txn: String, ptr: String, value: String, leaseExpiryMs: UInt64) -> Timestamp {
        let shard = node.shard(for: ptr)
        _ = shard.step { $0.install(ptr, newest: nil, generationAtLoad: $0.generation) }
        let bound = node.tick()
        let outcome = shard.step {
            $0.prepare(txn: txn, rv: bound, reads: [], writes: [PreparedWrite(ptr: ptr, value: value, read: false)], bound: bound, leaseExpiryMs: leaseExpiryMs)
        }
        guard case .prepared(let proposal, _) = outcome else {
            Issue.record("could not plant the intent: \(outcome)")
            return .zero
        }
        return proposal
    }

    /// A node on a SQLite store in `dir` (for the store's injected faults).
    func sqliteNode(_ dir: TemporaryDirectory) async throws -> (SQLiteStore, Node) {
        let store = try SQLiteStore(directory: dir.path)
        var c = NodeConfiguration()
        c.shardCount = 2
        return (store, try await Node.open(store: store, configuration: c))
    }

    /// A one-shot under a client id whose commit ended `outcome_unknown` (its COMMIT wrote,
    /// then failed, and the store stopped) settles in the background with its intents held.
    /// A resend under the same id is not run meanwhile, and no failure of it is remembered as
    /// the id's outcome: the first run did commit, so "aborted" would be a wrong answer.
    @Test func aResendWhileTheFirstRunSettlesIsNotRunNorRememberedAborted() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (store, node) = try await sqliteNode(dir)
        defer { store.close() }
        let id = ClientTxnID.make()
        store.faults.withLock { $0.commitFailsAfterWriting = true; $0.rebuildFails = true }
        for value in ["1", "2"] {
            do {
                _ = try await node.oneShot(OneShotRequest(writes: [("x", value)], txn: id))
                Issue.record("the one-shot writing \(value) committed while the store had stopped")
            } catch let e as RestmError {
                #expect(e.code == .outcomeUnknown, "writing \(value): \(e)")
            }
        }
        do {
            let s = try await node.status(of: id)
            if case .aborted = s.status { Issue.record("\(id) is reported aborted, but its first run committed") }
        } catch let e as RestmError {
            #expect(e.code == .storeFailure, "\(e)")
        }
        await node.shutdown()
    }

    /// A one-shot under a client id that fails (here a stale expectation) while the store
    /// cannot be asked whether an earlier request under that id committed: no final answer,
    /// and nothing remembered as the id's outcome.
    @Test func aFailureTheStoreCannotCheckIsNotFinal() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let (store, node) = try await sqliteNode(dir)
        defer { store.close() }
        _ = try await node.oneShot(OneShotRequest(reads: ["x"], writes: [("x", "1")]))
        // Another transaction's commit stops the store (its outcome could not be read back).
        store.faults.withLock { $0.commitFailsAfterWriting = true; $0.rebuildFails = true }
        await #expect(throws: RestmError.self) { _ = try await node.oneShot(OneShotRequest(writes: [("y", "1")], txn: ClientTxnID.make())) }
        #expect(store.failure != nil)
        // A stale expectation on "x" (in memory: no store read needed) fails the request; the
        // store cannot say whether this id committed before.
        let id = ClientTxnID.make()
        do {
            _ = try await node.oneShot(OneShotRequest(expect: [("x", Timestamp(raw: 1, node: 1))], writes: [("x", "2")], txn: id))
            Issue.record("a stale expectation committed")
        } catch let e as RestmError {
            #expect(e.code == .outcomeUnknown, "\(e)")
        }
        #expect(node.registry.finished(id) == nil, "the failure was remembered as the id's outcome")
        await node.shutdown()
    }

    /// A client id claimed twice while the first is still running: no final answer for the
    /// second (the first may yet commit), 503 `outcome_unknown`, not 409.
    @Test func aClientIDStillRunningIsNotAnsweredAsFailed() throws {
        let registry = TxnRegistry(limits: Limits())
        let id = ClientTxnID.make()
        func claim() -> Txn { Txn(id: id, rv: .zero, priority: nil, readOnly: false, nowMillis: 0, idleTimeoutMillis: 1_000, registered: true) }
        #expect(try registry.claim(claim()) == nil)
        #expect {
            _ = try registry.claim(claim())
        } throws: { e in
            (e as? RestmError)?.code == .outcomeUnknown
        }
    }

    /// An id the client library made longer ago than the record retention (plus a margin for
    /// its clock) with no record may have committed and had its record pruned: the node says
    /// 410 `pruned` instead of fencing it and answering "aborted". A fresh unknown id is still
    /// fenced aborted.
    @Test func aClientIDOlderThanTheRecordRetentionIsNotAnsweredAborted() async throws {
        let store = MemoryStore()
        let node = try await Node.open(store: store)
        let fresh = ClientTxnID.make()
        let made = try #require(ClientTxnID.madeAtMillis(fresh))
        let now = SystemPhysicalClock().nowMillis()
        #expect(made <= now && made + 5_000 > now, "decoded \(made), now \(now)")
        #expect(fresh.hasPrefix("c0") && fresh.count == 27)
        #expect(ClientTxnID.madeAtMillis("c" + String(repeating: "a", count: 20)) == nil)
        #expect(ClientTxnID.madeAtMillis("c" + String(repeating: "a", count: 26)) == nil, "another client's id of the same length")
        // The same format, its clock digits set to two hours ago.
        let digits = Array("234567abcdefghijklmnopqrstuvwxyz")
        let micros = (now - 2 * 3_600_000) * 1_000
        let old = "c0" + String((0..<11).reversed().map { digits[Int((micros >> (UInt64($0) * 5)) & 31)] }) + fresh.suffix(14)
        #expect(ClientTxnID.madeAtMillis(old) == micros / 1_000)
        await #expect {
            _ = try await node.status(of: old)
        } throws: { e in
            (e as? RestmError)?.code == .pruned
        }
        #expect(try store.record(of: old) == nil, "the old id was fenced")
        guard case .aborted = try await node.status(of: fresh).status else {
            Issue.record("a fresh unknown id was not fenced aborted")
            return
        }
        #expect(try store.record(of: fresh) == .aborted)
        // An old id that did commit (its record kept) still answers committed.
        let r = try await node.oneShot(OneShotRequest(writes: [("k", "1")], txn: old))
        guard case .committed(let ts) = try await node.status(of: old).status else {
            Issue.record("an old id with a record did not answer committed")
            return
        }
        #expect(ts == r.ts)
    }

    @Test func anExpiredOrphanWithNoRecordIsResolvedAborted() async throws {
        let store = MemoryStore()
        let clock = ManualClock()
        let node = try await node(store, clock)
        _ = plantIntent(node, txn: "t9.9.1", ptr: "p", value: "1", leaseExpiryMs: clock.nowMillis() + 100)
        clock.advance(200)
        // The read meets the expired intent, resolves it through the store, and reads on.
        #expect(try await node.get("p") == nil)
        #expect(try store.record(of: "t9.9.1") == .aborted)
        #expect(node.shardTotals.intents == 0)
        // A late commit of the orphan now loses.
        let late = try store.commit([CommitRecord(txn: "t9.9.1", ts: node.tick(), writes: [("p", "1")])], ceiling: nil)
        #expect(late == [.alreadyAborted])
    }

    @Test func anExpiredOrphanWhoseRecordCommittedIsApplied() async throws {
        let store = MemoryStore()
        let clock = ManualClock()
        let node = try await node(store, clock)
        let proposal = plantIntent(node, txn: "t9.9.2", ptr: "q", value: "\"done\"", leaseExpiryMs: clock.nowMillis() + 100)
        // Its coordinator wrote the commit record before dying.
        _ = try store.commit([CommitRecord(txn: "t9.9.2", ts: proposal, writes: [("q", "\"done\"")])], ceiling: nil)
        clock.advance(200)
        let v = try await node.get("q")
        #expect(v?.value == "\"done\"" && v?.ts == proposal)
        #expect(node.shardTotals.intents == 0)
    }

    @Test func aLiveIntentMakesReadersWaitThenTimeOutRetryably() async throws {
        let store = MemoryStore()
        let clock = ManualClock()
        var c = NodeConfiguration()
        c.clock = clock
        c.limits.intentWaitMs = 50
        let node = try await Node.open(store: store, configuration: c)
        _ = plantIntent(node, txn: "t9.9.3", ptr: "r", value: "1", leaseExpiryMs: .max)
        let start = ContinuousClock.now
        await #expect { _ = try await node.get("r") } throws: { ($0 as? RestmError)?.code == .conflict }
        #expect(ContinuousClock.now - start >= .milliseconds(40))
    }

    @Test func theCeilingStaysAheadOfAClockPushedByClients() async throws {
        let store = MemoryStore()
        let clock = ManualClock()
        let node = try await node(store, clock)
        let before = node.durableCeiling
        #expect(before > node.clockNow)
        // A client token 400 ms ahead (inside the offset bound) pushes the clock.
        let token = Timestamp(wallMillis: clock.nowMillis() + 400, node: 2)
        try node.observeClientToken(token)
        // A token beyond the bound is refused.
        #expect(throws: RestmError.self) { try node.observeClientToken(Timestamp(wallMillis: clock.nowMillis() + 5_000, node: 2)) }
        clock.advance(3_000)
        let t = try await node.begin()
        #expect(t.rv < node.durableCeiling)
        #expect(try store.startIncarnation().ceiling == node.durableCeiling)
    }

    /// A node restarted soon after a crash starts its clock at the durable ceiling, up to
    /// `ceilingLeadMs` (2 s) ahead of the machine's: the `Restm-Ts` tokens it hands out then
    /// were refused as "further ahead of this node's clock than 500 ms" when clients sent
    /// them back, and `atomically` failed with a 400.
    @Test func aRestartedNodeTakesBackTheTokensItHandsOut() async throws {
        let store = MemoryStore()
        let clock = ManualClock()
        var c = NodeConfiguration()
        c.clock = clock
        let first = try await Node.open(store: store, configuration: c)
        _ = try await first.begin()
        let ceiling = first.durableCeiling
        // Restart at once: the clock resumes from the ceiling, ahead of the machine's.
        let node = try await Node.open(store: store, configuration: c)
        let token = node.clockNow
        #expect(token >= ceiling && token.wallMillis > clock.nowMillis() + UInt64(c.limits.clockOffsetMaxMs), "the test needs a clock ahead")
        try node.observeClientToken(token)
        try node.observeClientToken(Timestamp(wallMillis: token.wallMillis - 1, node: 2))
        // Past the clock, the bound holds as before: a client cannot walk it forward.
        #expect(throws: RestmError.self) { try node.observeClientToken(Timestamp(wallMillis: token.wallMillis + 1, node: 2)) }
    }
}
