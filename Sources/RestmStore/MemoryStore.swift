import RestmCore
import Synchronization

/// A store in memory, for unit tests only: it forgets everything when the process ends.
public final class MemoryStore: Store {
    struct State {
        var versions: [String: [Version]] = [:]  // newest first
        var records: [String: TxnRecordStatus] = [:]
        /// When each aborted record was made (`resolve`), for record GC.
        var abortedAt: [String: Timestamp] = [:]
        var incarnation: UInt64 = 0
        var ceiling = Timestamp.zero
        var prunedCut = Timestamp.zero
        var recordsPruned: [String: UInt64] = [:]
        /// When set, `commit` throws this without writing (fault injection for tests).
        var failNextCommit: StoreError?
        /// When set, `commit` writes, then throws this: the write happened, the answer was lost.
        var failAfterNextCommit: StoreError?
    }

    let state = Mutex(State())

    public init() {}

    public var kind: String { "memory" }
    public var location: String { "memory" }

    /// Makes the next `commit` throw `error` (tests of unknown outcomes).
    public func failNextCommit(with error: StoreError) {
        state.withLock { $0.failNextCommit = error }
    }

    /// Makes the next `commit` write and then throw `error` (a lost acknowledgement).
    public func failAfterNextCommit(with error: StoreError) {
        state.withLock { $0.failAfterNextCommit = error }
    }

    public func commit(_ records: [CommitRecord], ceiling: Timestamp?) throws -> [CommitOutcome] {
        try state.withLock { s in
            if let e = s.failNextCommit {
                s.failNextCommit = nil
                throw e
            }
            defer {
                if s.failAfterNextCommit != nil { s.failAfterNextCommit = nil }
            }
            if let e = s.failAfterNextCommit {
                _ = try commitLocked(&s, records, ceiling)
                throw e
            }
            return try commitLocked(&s, records, ceiling)
        }
    }

    private func commitLocked(_ s: inout State, _ records: [CommitRecord], _ ceiling: Timestamp?) throws -> [CommitOutcome] {
        var outcomes: [CommitOutcome] = []
        for r in records {
            if s.records[r.txn] != nil {
                outcomes.append(.alreadyAborted)
                continue
            }
            s.records[r.txn] = .committed(r.ts)
            for w in r.writes {
                s.versions[w.ptr, default: []].append(Version(ts: r.ts, txn: r.txn, value: w.value))
                s.versions[w.ptr]!.sort { $0.ts > $1.ts }
            }
            outcomes.append(.committed)
        }
        if let c = ceiling, c > s.ceiling { s.ceiling = c }
        return outcomes
    }

    public func newest(_ ptr: String) throws -> Version? {
        state.withLock { $0.versions[ptr]?.first }
    }

    public func version(_ ptr: String, atOrBefore ts: Timestamp) throws -> Version? {
        state.withLock { $0.versions[ptr]?.first(where: { $0.ts <= ts }) }
    }

    public func history(_ ptr: String, before: Timestamp?, limit: Int) throws -> [Version] {
        state.withLock { s in
            let all = s.versions[ptr] ?? []
            return Array(all.filter { before == nil || $0.ts < before! }.prefix(limit))
        }
    }

    public func list(prefix: String, after: String?, limit: Int) throws -> [String] {
        state.withLock { s in
            let keys = s.versions.compactMap { (k, v) -> String? in
                guard k.hasPrefix(prefix), after.map({ k > $0 }) ?? true, v.first?.value != nil else { return nil }
                return k
            }
            return Array(keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }.prefix(limit))
        }
    }

    public func record(of txn: String) throws -> TxnRecordStatus? {
        state.withLock { $0.records[txn] }
    }

    public func resolve(_ txn: String, at now: Timestamp) throws -> TxnRecordStatus {
        state.withLock { s in
            if let r = s.records[txn] { return r }
            s.records[txn] = .aborted
            s.abortedAt[txn] = now
            return .aborted
        }
    }

    public func startIncarnation() throws -> (incarnation: UInt64, ceiling: Timestamp) {
        state.withLock { s in
            s.incarnation += 1
            return (s.incarnation, s.ceiling)
        }
    }

    public func raiseCeiling(_ ts: Timestamp) throws {
        state.withLock { s in if ts > s.ceiling { s.ceiling = ts } }
    }

    public func prune(after: String?, limit: Int, cut: Timestamp) throws -> PruneStep {
        state.withLock { s in
            let ptrs = s.versions.keys.filter { after == nil || $0 > after! }.sorted().prefix(limit)
            var deleted = 0
            if cut > s.prunedCut { s.prunedCut = cut }
            for p in ptrs {
                guard var vs = s.versions[p], let keep = vs.firstIndex(where: { $0.ts <= cut }) else { continue }
                deleted += vs.count - keep - 1
                vs.removeLast(vs.count - keep - 1)
                if keep == 0, vs[0].value == nil {
                    vs.removeAll()
                    deleted += 1
                }
                s.versions[p] = vs.isEmpty ? nil : vs
            }
            return PruneStep(visited: ptrs.count, last: ptrs.last ?? after, deleted: deleted)
        }
    }

    public func prunedCut() throws -> Timestamp {
        state.withLock { $0.prunedCut }
    }

    public func pruneRecords(before cut: Timestamp, limit: Int) throws -> Int {
        state.withLock { s in
            // As the SQLite store does: aborted records, then committed ones, oldest first.
            var committed: [(Timestamp, String)] = []
            var aborted: [(Timestamp, String)] = []
            for (id, r) in s.records {
                switch r {
                case .committed(let ts): if ts < cut { committed.append((ts, id)) }
                case .aborted: if let at = s.abortedAt[id], at < cut { aborted.append((at, id)) }
                }
            }
            let ids = (aborted.sorted { $0.0 < $1.0 } + committed.sorted { $0.0 < $1.0 }).prefix(max(0, limit)).map(\.1)
            for id in ids {
                s.records.removeValue(forKey: id)
                s.abortedAt.removeValue(forKey: id)
                if let (prefix, seq) = splitTxnID(id) { s.recordsPruned[prefix] = max(s.recordsPruned[prefix] ?? 0, seq) }
            }
            return ids.count
        }
    }

    public func recordsPruned(prefix: String) throws -> UInt64 {
        state.withLock { $0.recordsPruned[prefix] ?? 0 }
    }

    public func stats() throws -> StoreStats {
        state.withLock { s in
            StoreStats(versions: s.versions.values.reduce(0) { $0 + $1.count }, txnRecords: s.records.count, bytes: 0)
        }
    }

    public func close() {}
}
