import RestmCore
import RestmTestSupport
import Testing

/// The shard state machine under a hand-driven clock: every rule of DESIGN.md's
/// Transactions section, step by step, with no I/O.
@Suite struct ShardTests {
    static let node: UInt16 = 1
    func ts(_ ms: UInt64, _ logical: UInt16 = 0) -> Timestamp { Timestamp(wallMillis: ms, logical: logical, node: Self.node) }

    /// A shard where `ptrs` are resident with no history (never written).
    func shard(absent ptrs: [String] = [], limits: Limits = Limits()) -> ShardState {
        var s = ShardState(node: Self.node, limits: limits)
        for p in ptrs {
            let installed = s.install(p, newest: nil, generationAtLoad: s.generation)
            #expect(installed)
        }
        return s
    }

    /// Commits `value` to `ptr` at about `at` through prepare and apply; answers the commit timestamp.
    @discardableResult
    func commit(_ s: inout ShardState, _ txn: String, _ ptr: String, _ value: String?, rv: Timestamp, bound: Timestamp) -> Timestamp {
        guard case .prepared(let proposal, let v) = s.prepare(
            txn: txn, rv: rv, reads: [], writes: [PreparedWrite(ptr: ptr, value: value, read: false)], bound: bound, leaseExpiryMs: .max)
        else {
            Issue.record("prepare failed")
            return .zero
        }
        let ct = max(proposal, v)
        _ = s.apply(txn: txn, ct: ct, ptrs: [ptr])
        s.checkInvariants()
        return ct
    }

    @Test func readOfANeverWrittenPointerIsAbsentAndRecordsTheRead() {
        var s = shard(absent: ["p"])
        #expect(s.read("p", at: ts(10), txn: "t1", nowMillis: 0) == .found(nil))
        #expect(s.readTimestamp(of: "p") == ts(10))
        // Ids never loaded are not resident: the node must load them first.
        #expect(s.read("q", at: ts(10), txn: "t1", nowMillis: 0) == .notResident)
    }

    @Test func writesArePushedAboveEarlierReadsOfThePointer() {
        var s = shard(absent: ["p"])
        _ = s.read("p", at: ts(50), txn: "reader", nowMillis: 0)
        // An older writer (rv 10) may not slip below the read at 50: its proposal is pushed.
        let outcome = s.prepare(
            txn: "w", rv: ts(10), reads: [], writes: [PreparedWrite(ptr: "p", value: "1", read: false)], bound: ts(20), leaseExpiryMs: .max)
        guard case .prepared(let proposal, let bound) = outcome else {
            Issue.record("expected prepared, got \(outcome)")
            return
        }
        #expect(bound == ts(20))
        #expect(proposal > ts(50))
        s.checkInvariants()
    }

    @Test func phantomOnAnAbsentPointerIsPrevented() {
        // T1 reads that "slot" is absent at 10; T2 creates it. T2's write lands above 10, so
        // T1's read (absent) stays true at T1's snapshot and T1 serializes before T2.
        var s = shard(absent: ["slot"])
        #expect(s.read("slot", at: ts(10), txn: "t1", nowMillis: 0) == .found(nil))
        let ct = commit(&s, "t2", "slot", "\"taken\"", rv: ts(5), bound: ts(6))
        #expect(ct > ts(10))
        #expect(s.read("slot", at: ts(10), txn: "t1", nowMillis: 0) == .found(nil))
        // …and T1, having read the absence, cannot then validate a read-only check of it later than T2's commit.
        let outcome = s.prepare(txn: "t1", rv: ts(10), reads: ["slot"], writes: [], bound: ct, leaseExpiryMs: .max)
        #expect(outcome == .conflict(.readNewer, ptr: "slot"))
    }

    @Test func firstCommitterWinsOnAPointerReadThenWritten() {
        var s = shard(absent: ["p"])
        _ = s.read("p", at: ts(10), txn: "t1", nowMillis: 0)
        commit(&s, "t2", "p", "2", rv: ts(11), bound: ts(12))
        let outcome = s.prepare(
            txn: "t1", rv: ts(10), reads: [], writes: [PreparedWrite(ptr: "p", value: "1", read: true)], bound: ts(20), leaseExpiryMs: .max)
        #expect(outcome == .conflict(.writeNewer, ptr: "p"))
        s.checkInvariants()
    }

    @Test func blindWritesGoAboveTheNewestVersion() {
        var s = shard(absent: ["p"])
        let c1 = commit(&s, "t1", "p", "1", rv: ts(30), bound: ts(30))
        let c2 = commit(&s, "t2", "p", "2", rv: ts(10), bound: ts(10))
        #expect(c2 > c1)
        #expect(s.read("p", at: c2, txn: "r", nowMillis: 0) == .found(Version(ts: c2, txn: "t2", value: "2")))
    }

    @Test func aForeignIntentOnAWrittenPointerIsAConflictNotAWait() {
        var s = shard(absent: ["p"])
        _ = s.prepare(txn: "t1", rv: ts(10), reads: [], writes: [PreparedWrite(ptr: "p", value: "1", read: false)], bound: ts(10), leaseExpiryMs: .max)
        let outcome = s.prepare(txn: "t2", rv: ts(11), reads: [], writes: [PreparedWrite(ptr: "p", value: "2", read: false)], bound: ts(11), leaseExpiryMs: .max)
        #expect(outcome == .conflict(.writeIntent, ptr: "p"))
        s.checkInvariants()
    }

    @Test func readsWaitOnlyForLowerIntents() {
        var s = shard(absent: ["p"])
        _ = s.prepare(txn: "w", rv: ts(10), reads: [], writes: [PreparedWrite(ptr: "p", value: "1", read: false)], bound: ts(20), leaseExpiryMs: 1_000)
        // Below the intent's proposal (20): the old state is the answer, no wait.
        #expect(s.read("p", at: ts(15), txn: "r1", nowMillis: 0) == .found(nil))
        // At or above it: wait for the intent to resolve.
        #expect(s.read("p", at: ts(25), txn: "r2", nowMillis: 0) == .wait(owner: "w", leaseExpired: false))
        // Once its lease has expired the reader is told, to resolve it.
        #expect(s.read("p", at: ts(25), txn: "r2", nowMillis: 1_000) == .wait(owner: "w", leaseExpired: true))
        // The owner itself does not wait on its own intent.
        #expect(s.read("p", at: ts(25), txn: "w", nowMillis: 0) == .found(nil))
    }

    @Test func applyWakesWaitersAndAbortWakesThemToo() {
        var s = shard(absent: ["p", "q"])
        _ = s.prepare(
            txn: "w", rv: ts(10),
            reads: [], writes: [PreparedWrite(ptr: "p", value: "1", read: false), PreparedWrite(ptr: "q", value: "2", read: false)],
            bound: ts(20), leaseExpiryMs: .max)
        s.addWaiter("p", id: 1)
        s.addWaiter("p", id: 2)
        s.addWaiter("q", id: 3)
        #expect(s.waiterCount == 3)
        let first = s.removeWaiter("p", id: 2)
        let second = s.removeWaiter("p", id: 2)
        #expect(first && !second)
        #expect(s.apply(txn: "w", ct: ts(21), ptrs: ["p"]) == [1])
        #expect(s.abort(txn: "w", ptrs: ["q"]) == [3])
        #expect(s.waiterCount == 0 && s.intentCount == 0)
        #expect(s.read("q", at: ts(30), txn: "r", nowMillis: 0) == .found(nil))
        #expect(s.read("p", at: ts(30), txn: "r", nowMillis: 0) == .found(Version(ts: ts(21), txn: "w", value: "1")))
        s.checkInvariants()
    }

    @Test func readOnlyValidationRaisesReadTimestampsOrConflicts() {
        var s = shard(absent: ["a", "b"])
        _ = s.read("a", at: ts(10), txn: "t", nowMillis: 0)
        // A foreign intent on `b` proposing at or below the bound: conflict.
        _ = s.prepare(txn: "o", rv: ts(5), reads: [], writes: [PreparedWrite(ptr: "b", value: "1", read: false)], bound: ts(15), leaseExpiryMs: .max)
        #expect(s.prepare(txn: "t", rv: ts(10), reads: ["a", "b"], writes: [], bound: ts(20), leaseExpiryMs: .max) == .conflict(.readIntent, ptr: "b"))
        // Nothing changed by the failed prepare.
        #expect(s.readTimestamp(of: "a") == ts(10))
        // Only `a`: validated up to the bound.
        #expect(s.prepare(txn: "t", rv: ts(10), reads: ["a"], writes: [], bound: ts(20), leaseExpiryMs: .max) == .prepared(proposal: ts(20), bound: ts(20)))
        #expect(s.readTimestamp(of: "a") == ts(20))
    }

    @Test func refreshSucceedsOnlyIfNothingChangedUpToTheCommitTimestamp() {
        var s = shard(absent: ["r", "w"])
        _ = s.read("r", at: ts(10), txn: "t", nowMillis: 0)
        #expect(s.refresh(txn: "t", rv: ts(10), reads: ["r"], to: ts(30)) == nil)
        #expect(s.readTimestamp(of: "r") == ts(30))
        // A foreign intent at or below the target fails a refresh.
        _ = s.prepare(txn: "o", rv: ts(31), reads: [], writes: [PreparedWrite(ptr: "r", value: "1", read: false)], bound: ts(35), leaseExpiryMs: .max)
        #expect(s.refresh(txn: "t", rv: ts(10), reads: ["r"], to: ts(40)) == .refresh)
        // One above it does not.
        #expect(s.refresh(txn: "t", rv: ts(10), reads: ["r"], to: ts(34)) == nil)
        // A committed newer version fails it.
        _ = s.apply(txn: "o", ct: ts(36), ptrs: ["r"])
        #expect(s.refresh(txn: "t", rv: ts(10), reads: ["r"], to: ts(50)) == .refresh)
        s.checkInvariants()
    }

    @Test func writeSkewIsCaughtByRefresh() {
        // Classic write skew: t1 and t2 both read x and y; t1 writes x, t2 writes y.
        var s = shard(absent: ["x", "y"])
        for t in ["t1", "t2"] {
            _ = s.read("x", at: ts(10), txn: t, nowMillis: 0)
            _ = s.read("y", at: ts(10), txn: t, nowMillis: 0)
        }
        // t1 prepares: writes x (pushed above the reads at 10), validates y up to its bound.
        guard case .prepared(let p1, let v1) = s.prepare(
            txn: "t1", rv: ts(10), reads: ["y"], writes: [PreparedWrite(ptr: "x", value: "1", read: true)], bound: ts(11), leaseExpiryMs: .max)
        else { Issue.record("t1 should prepare"); return }
        let ct1 = max(p1, v1)
        #expect(s.refresh(txn: "t1", rv: ts(10), reads: ["y"], to: ct1) == nil)
        _ = s.apply(txn: "t1", ct: ct1, ptrs: ["x"])
        // t2 now: it read x at 10, and x has a newer version: it cannot validate.
        let o2 = s.prepare(txn: "t2", rv: ts(10), reads: ["x"], writes: [PreparedWrite(ptr: "y", value: "1", read: true)], bound: ts(12), leaseExpiryMs: .max)
        guard case .conflict = o2 else {
            Issue.record("write skew allowed: \(o2)")
            return
        }
    }

    @Test func trimmedHistoryIsReadFromTheStore() {
        var limits = Limits()
        limits.versionsInMemoryPerPointerMax = 2
        var s = shard(absent: ["p"], limits: limits)
        var cts: [Timestamp] = []
        for i in 0..<4 { cts.append(commit(&s, "t\(i)", "p", "\(i)", rv: ts(UInt64(10 * (i + 1))), bound: ts(UInt64(10 * (i + 1))))) }
        #expect(s.read("p", at: cts[3], txn: "r", nowMillis: 0) == .found(Version(ts: cts[3], txn: "t3", value: "3")))
        #expect(s.read("p", at: cts[2], txn: "r", nowMillis: 0) == .found(Version(ts: cts[2], txn: "t2", value: "2")))
        #expect(s.read("p", at: cts[1], txn: "r", nowMillis: 0) == .olderThanMemory)
    }

    @Test func installIsRefusedAfterARacingEviction() {
        var limits = Limits()
        limits.pointersInMemoryPerShardMax = 4
        var s = ShardState(node: 1, limits: limits)
        let g = s.generation
        for i in 0..<5 {
            _ = s.install("p\(i)", newest: nil, generationAtLoad: s.generation)
            s.evictIfNeeded()
        }
        #expect(s.generation != g)
        #expect(s.residentCount <= 5)
        let stale = s.install("late", newest: nil, generationAtLoad: g)
        let fresh = s.install("late", newest: nil, generationAtLoad: s.generation)
        #expect(!stale && fresh)
    }

    @Test func largeValuesAreEvictedToStayWithinTheByteBudget() {
        var limits = Limits()
        limits.valueBytesInMemoryPerShardMax = 100_000
        var s = ShardState(node: 1, limits: limits)
        let big = String(repeating: "x", count: 10_000)
        for i in 0..<100 {
            _ = s.install("p\(i)", newest: Version(ts: ts(UInt64(i + 1)), txn: "t", value: big), generationAtLoad: s.generation)
            s.evictIfNeeded()
            #expect(s.residentBytes <= 100_000)
        }
        #expect(s.residentCount < 100)
        s.checkInvariants()
    }

    @Test func evictionNeverDropsPinnedPointers() {
        var limits = Limits()
        limits.pointersInMemoryPerShardMax = 8
        var s = ShardState(node: 1, limits: limits)
        _ = s.install("held", newest: nil, generationAtLoad: s.generation)
        _ = s.prepare(txn: "w", rv: ts(1), reads: [], writes: [PreparedWrite(ptr: "held", value: "1", read: false)], bound: ts(2), leaseExpiryMs: .max)
        for i in 0..<100 {
            _ = s.install("p\(i)", newest: nil, generationAtLoad: s.generation)
            s.evictIfNeeded()
        }
        #expect(s.isResident("held"))
        #expect(s.residentCount <= 9)
        s.checkInvariants()
    }

    @Test func timestampCacheEvictionNeverForgetsDownward() {
        var rng = SeededRandom.fromEnvironment()
        var limits = Limits()
        limits.timestampCacheEntriesPerShardMax = 64
        var s = ShardState(node: 1, limits: limits)
        var model: [String: Timestamp] = [:]
        for _ in 0..<5_000 {
            let p = "p\(rng.next() % 500)"
            let t = ts(1 + rng.next() % 10_000)
            if !s.isResident(p) { _ = s.install(p, newest: nil, generationAtLoad: s.generation) }
            _ = s.read(p, at: t, txn: "r", nowMillis: 0)
            model[p] = max(model[p] ?? .zero, t)
            #expect(s.timestampCacheCount <= 64, "seed \(rng.seed)")
        }
        for (p, t) in model {
            #expect(s.readTimestamp(of: p) >= t, "seed \(rng.seed): \(p) forgot its read at \(t)")
        }
    }

    @Test func floorAfterRestartKeepsWritesAboveOldReads() {
        // After a restart the floor is the old durable ceiling: no write may land below it.
        var s = ShardState(node: 1, floor: ts(1_000), limits: Limits())
        _ = s.install("p", newest: nil, generationAtLoad: s.generation)
        let ct = commit(&s, "w", "p", "1", rv: ts(10), bound: ts(10))
        #expect(ct > ts(1_000))
    }
}
