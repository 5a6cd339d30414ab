import Foundation
import RestmCore
import RestmNode
import RestmStore
import RestmTestSupport
import Testing

/// Version GC: reads inside the retention window and open snapshots are untouched; memory
/// and the store stay bounded for a pointer written over and over.
@Suite struct GCTests {
    static func node(_ store: any Store, retentionMs: Int, _ configure: (inout Limits) -> Void = { _ in }) async throws -> Node {
        var c = NodeConfiguration()
        c.shardCount = 4
        c.limits.retentionMs = retentionMs
        c.limits.gcPassIntervalMs = 20
        configure(&c.limits)
        return try await Node.open(store: store, configuration: c)
    }

    static func text(_ n: Int) -> String { "{\"n\":\(n)}" }

    @Test func prunesOldVersionsButKeepsTheNewestAndTheWindow() async throws {
        let store = MemoryStore()
        let node = try await Self.node(store, retentionMs: 200)
        for i in 0..<50 { _ = try await node.put("p", value: Self.text(i)) }
        _ = try await node.put("gone", value: "1")
        _ = try await node.put("gone", value: nil)
        try await Task.sleep(for: .milliseconds(400))
        // Written inside the window: kept.
        for i in 50..<60 { _ = try await node.put("p", value: Self.text(i)) }
        try await node.gcPass()
        let versions = try store.history("p", before: nil, limit: 1_000)
        // The ten recent ones and the newest before the cut.
        #expect(versions.count == 11, "\(versions.count)")
        #expect(versions.last?.value == Self.text(49))
        // A delete older than the cut goes entirely.
        #expect(try store.history("gone", before: nil, limit: 10).isEmpty)
        #expect(try await node.get("gone")?.value == nil)
        #expect(try await node.get("p")?.value == Self.text(59))
        #expect(node.gcStatus.versionsPruned >= 51)
    }

    @Test func anOpenTransactionKeepsItsSnapshot() async throws {
        let store = MemoryStore()
        let node = try await Self.node(store, retentionMs: 100)
        _ = try await node.put("p", value: Self.text(0))
        let old = try await node.begin()
        for i in 1...50 { _ = try await node.put("p", value: Self.text(i)) }
        try await Task.sleep(for: .milliseconds(300))
        try await node.gcPass()
        // Version 0 is no longer in memory (8 versions per pointer) but kept in the store.
        #expect(try await node.read(old, "p").value == Self.text(0))
        node.abort(old)
        try await node.gcPass()
        #expect(try store.history("p", before: nil, limit: 100).count == 1)
    }

    @Test func aSnapshotOlderThanTheCutIsRefusedNotWrong() async throws {
        let store = MemoryStore()
        let node = try await Self.node(store, retentionMs: 100)
        _ = try await node.put("p", value: Self.text(0))
        // Unregistered (embedded) transactions do not hold the watermark back.
        let stale = try await node.begin(register: false)
        for i in 1...50 { _ = try await node.put("p", value: Self.text(i)) }
        try await Task.sleep(for: .milliseconds(300))
        try await node.gcPass()
        do {
            let r = try await node.read(stale, "p")
            Issue.record("read below the GC cut answered \(String(describing: r.value))")
        } catch let e as RestmError {
            #expect(e.retryable, "\(e)")
        }
        let at = Timestamp(wallMillis: node.physicalMillis - 10_000, node: 0)
        await #expect(throws: RestmError.self) { try await node.get("p", at: at) }
        await #expect(throws: RestmError.self) { try await node.history("p", before: at, limit: 10) }
    }

    @Test func theCutSurvivesARestartWithALongerRetention() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let node = try await Self.node(try SQLiteStore(directory: dir.path, durability: .async), retentionMs: 100)
        for i in 0..<20 { _ = try await node.put("p", value: Self.text(i)) }
        let early = node.clockNow
        try await Task.sleep(for: .milliseconds(300))
        _ = try await node.put("p", value: Self.text(99))
        try await node.gcPass()
        await node.shutdown()
        // Reopened with a ten-minute window: `early` is inside it, but its versions are gone.
        let again = try await Self.node(try SQLiteStore(directory: dir.path, durability: .async), retentionMs: 600_000)
        do {
            let v = try await again.get("p", at: early)
            Issue.record("a read below the persisted cut answered \(String(describing: v?.value))")
        } catch let e as RestmError {
            #expect(e.code == .pruned, "\(e)")
        }
        #expect(try await again.get("p")?.value == Self.text(99))
        await again.shutdown()
    }

    @Test func aPrunedRecordIsNeverReportedAsAborted() async throws {
        let node = try await Self.node(MemoryStore(), retentionMs: 100) { l in
            l.txnRecordRetentionMs = 1
            l.finishedTxnsMax = 1
        }
        let committed = try await node.begin()
        try node.write(committed, "p", value: "1")
        _ = try await node.commit(committed)
        // Push it out of the node's memory of finished transactions.
        for i in 0..<3 {
            let t = try await node.begin()
            try node.write(t, "q", value: "\(i)")
            _ = try await node.commit(t)
        }
        try await Task.sleep(for: .milliseconds(300))
        try await node.gcPass()
        do {
            let s = try await node.status(of: committed.id)
            Issue.record("a committed transaction whose record was pruned answered \(s.status)")
        } catch let e as RestmError {
            #expect(e.code == .pruned, "\(e)")
        }
        // A later transaction that never committed is still known to be aborted.
        let never = try await node.begin()
        try node.write(never, "p", value: "2")
        node.abort(never)
        for i in 0..<3 {
            let t = try await node.begin()
            try node.write(t, "q", value: "\(i)")
            _ = try await node.commit(t)
        }
        if case .committed = try await node.status(of: never.id).status { Issue.record("an aborted transaction reported committed") }
    }

    /// `GET /txn/{id}` of ids the node never saw fences each one with an aborted record; those
    /// records are pruned one retention period later, so asking about unknown ids cannot grow
    /// the store without bound — and an id asked about again is fenced again.
    @Test func fencesOfUnknownIdsArePrunedAfterTheRetention() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = try SQLiteStore(directory: dir.path)
        let node = try await Self.node(store, retentionMs: 100) { l in
            l.txnRecordRetentionMs = 1_000
            l.finishedTxnsMax = 1  // so that the store, not the node's memory, answers again
        }
        let ids = (0..<50).map { "c-unknown-\(1_000 + $0)-abcdefgh" }
        let start = ContinuousClock.now
        for id in ids {
            guard case .aborted = try await node.status(of: id).status else {
                Issue.record("an unknown id did not answer aborted")
                return
            }
        }
        let fenced = ContinuousClock.now
        #expect(try store.stats().txnRecords == 50)
        // Inside the retention: kept (checked only if this machine was fast enough to stay
        // inside it).
        try await node.gcPass()
        let kept = try store.stats().txnRecords
        if ContinuousClock.now - start < .milliseconds(900) { #expect(kept == 50) }
        try await Task.sleep(until: fenced + .milliseconds(1_200))
        try await node.gcPass()
        #expect(try store.stats().txnRecords == 0)
        #expect(try store.record(of: ids[0]) == nil)
        #expect(node.gcStatus.recordsPruned >= 50)
        if case .committed = try await node.status(of: ids[0]).status { Issue.record("a fenced id reported committed") }
        #expect(try store.record(of: ids[0]) == .aborted, "asked again: fenced again")
        await node.shutdown()
        store.close()
    }

    /// One pointer written many times (`RESTM_GC_WRITES`, default 1,000,000: the issue's million) on SQLite: the
    /// store's versions and the node's memory stay bounded while it runs.
    @Test func aPointerWrittenOverAndOverStaysBounded() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let writes = ProcessInfo.processInfo.environment["RESTM_GC_WRITES"].flatMap(Int.init) ?? 1_000_000
        let store = try SQLiteStore(directory: dir.path, durability: .async)
        let node = try await Self.node(store, retentionMs: 100)
        let gc = Task {
            while !Task.isCancelled {
                await node.gcTick()
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        defer { gc.cancel() }
        var maxVersions = 0
        var maxBytes = 0
        let value = String(repeating: "v", count: 200)
        for i in 0..<writes {
            _ = try await node.put("hot", value: "\"\(value)\(i)\"")
            if i % 2_000 == 1_999 {
                let s = try store.stats()
                maxVersions = max(maxVersions, s.versions)
                maxBytes = max(maxBytes, s.bytes)
            }
        }
        gc.cancel()
        try await node.gcPass()
        try await Task.sleep(for: .milliseconds(300))
        try await node.gcPass()
        let end = try store.stats()
        #expect(end.versions <= 2, "versions left: \(end.versions)")
        // Without GC the store would hold every version (writes × ~250 bytes).
        #expect(maxVersions < writes / 2, "peak versions \(maxVersions) of \(writes) writes")
        #expect(maxBytes < writes * 250 / 2, "peak store bytes \(maxBytes)")
        #expect(node.residentBytes < 64 * 1024)
        #expect(try await node.get("hot")?.value == "\"\(value)\(writes - 1)\"")
        await node.shutdown()
    }
}
