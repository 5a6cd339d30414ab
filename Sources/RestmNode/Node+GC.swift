import RestmCore
import RestmStore
import Synchronization

/// Progress of version GC, for metrics and `/sys/info`.
public struct GCStatus: Sendable {
    /// The cut of the pass in progress or the last one: reads below it are refused.
    public var cut: Timestamp = .zero
    /// Where the pass in progress stands (nil: between passes).
    public var cursor: String?
    public var passing = false
    public var passes = 0
    public var versionsPruned = 0
    public var recordsPruned = 0
    public var lastPassEndMillis: UInt64 = 0
}

extension Node {
    /// The GC cut now: the retention window (less a margin, so a `?at=` read admitted just
    /// inside the window is never raced) and the snapshot of the oldest open transaction.
    func gcCutNow() -> Timestamp {
        let now = physicalMillis
        let retention = UInt64(limits.retentionMs)
        let margin = min(60_000, retention / 2)
        var cut = Timestamp(wallMillis: now > retention + margin ? now - retention - margin : 0, node: 0)
        for t in registry.allActive() where t.rv < cut { cut = t.rv }
        return Timestamp(raw: cut.raw, node: 0)
    }

    /// Reads below the published GC cut may miss pruned versions: called after every read,
    /// so a read that raced a prune (which publishes its cut first) is refused, never wrong.
    func checkNotPruned(_ rv: Timestamp, txn: String) throws {
        guard rv.raw < gcCutRaw.load(ordering: .sequentiallyConsistent) else { return }
        if txn == "-" {
            throw RestmError(.pruned, "\(rv.text) is older than the oldest version kept (retention \(limits.retentionMs / 1000) s)")
        }
        metrics.count("conflict_snapshot_too_old")
        throw RestmError.conflict("the transaction's snapshot is older than what version GC keeps; run it again")
    }

    public var gcStatus: GCStatus { gc.withLock { $0 } }

    /// One step of version GC (called by the sweeper): starts a pass when the last one ended
    /// `gcPassIntervalMs` ago, then prunes the next `gcPointersPerStep` pointers. Answers
    /// true when a pass completed.
    @discardableResult
    public func gcStep() async throws -> Bool {
        let now = physicalMillis
        let start: (cut: Timestamp, cursor: String?)? = gc.withLock { g in
            if !g.passing {
                guard now >= g.lastPassEndMillis + UInt64(limits.gcPassIntervalMs) else { return nil }
                let c = gcCutNow()
                // Publish before deleting anything (reads check it after reading).
                if c > g.cut { g.cut = c }
                gcCutRaw.store(g.cut.raw, ordering: .sequentiallyConsistent)
                g.passing = true
                g.cursor = nil
            }
            return (g.cut, g.cursor)
        }
        guard let (cut, cursor) = start else { return false }
        let limit = limits.gcPointersPerStep
        let step = try await storeCall("prune") { try self.store.prune(after: cursor, limit: limit, cut: cut) }
        var records = 0
        let done = step.visited < limit
        if done {
            let keep = UInt64(limits.txnRecordRetentionMs)
            let recordCut = min(cut, Timestamp(wallMillis: now > keep ? now - keep : 0, node: 0))
            records = try await storeCall("prune_records") { try self.store.pruneRecords(before: recordCut, limit: 100_000) }
        }
        gc.withLock { g in
            g.versionsPruned += step.deleted
            g.recordsPruned += records
            g.cursor = step.last
            if done {
                g.passing = false
                g.cursor = nil
                g.passes += 1
                g.lastPassEndMillis = physicalMillis
            }
        }
        if step.deleted > 0 { metrics.count("gc_versions_pruned", by: step.deleted) }
        if records > 0 { metrics.count("gc_records_pruned", by: records) }
        if done { metrics.count("gc_passes") }
        return done
    }

    /// Runs GC steps until a whole pass that started after this call has completed (for tests
    /// and tools).
    public func gcPass() async throws {
        let target = gc.withLock { $0.passes + ($0.passing ? 2 : 1) }
        while gc.withLock({ $0.passes }) < target {
            gc.withLock { if !$0.passing { $0.lastPassEndMillis = 0 } }
            try await gcStep()
        }
    }

    /// The GC loop's body: a step while the node runs; errors are logged.
    public func gcTick() async {
        guard state == .running else { return }
        do {
            try await gcStep()
        } catch {
            logger.error("version GC failed", metadata: ["error": "\(error)"])
        }
    }
}
