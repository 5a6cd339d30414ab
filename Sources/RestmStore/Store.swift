import RestmCore

/// What one committed transaction writes: its record and its new versions, atomically.
public struct CommitRecord: Sendable {
    public let txn: String
    public let ts: Timestamp
    /// `ts.text`, formatted by the committing task rather than by the store's one writer.
    public let tsText: String
    /// Pointer and compact JSON value (nil deletes).
    public let writes: [(ptr: String, value: String?)]
    /// The id was issued by the committing node since this store was opened (a server id
    /// of the current incarnation), so the only record it can already have is one this
    /// store's `resolve` made since it opened: a store may then skip looking for one on
    /// disk. False (look) for ids chosen by clients, which may have been fenced before.
    public let issuedSinceOpen: Bool

    public init(txn: String, ts: Timestamp, writes: [(ptr: String, value: String?)], issuedSinceOpen: Bool = false) {
        self.txn = txn
        self.ts = ts
        self.tsText = ts.text
        self.writes = writes
        self.issuedSinceOpen = issuedSinceOpen
    }
}

/// The outcome of one record inside a group commit: a resolver may have recorded the
/// transaction `aborted` first, and then that one record loses without sinking the batch.
public enum CommitOutcome: Sendable, Equatable {
    case committed
    case alreadyAborted
}

/// A transaction record's status in the store.
public enum TxnRecordStatus: Sendable, Equatable {
    case committed(Timestamp)
    case aborted
}

/// Store failures. `uncertain` means a commit may or may not have reached the disk.
public enum StoreError: Error, Sendable, CustomStringConvertible {
    case failed(String)
    case uncertain(String)
    case locked(String)
    /// Not attempted: the commit queue is full or closed (retryable).
    case refused(String)

    public var description: String {
        switch self {
        case .failed(let m): return "store failed: \(m)"
        case .uncertain(let m): return "store outcome unknown: \(m)"
        case .locked(let m): return m
        case .refused(let m): return "not attempted: \(m)"
        }
    }
}

/// Durable storage of versions, transaction records and node metadata (DESIGN.md,
/// Durability and the store). Calls block: the node runs them off Swift's cooperative pool
/// (one writer thread, a pool of readers), as GRDB does with its serial executors.
///
/// Rules every implementation keeps (tested by the conformance suite):
/// - `commit` is atomic per batch and durable when it returns (in `sync` mode);
/// - a record inserted as committed never changes; `resolve` inserts `aborted` only if
///   no record exists, so a commit and a resolver can never both win;
/// - version timestamps are unique per pointer.
public protocol Store: AnyObject, Sendable {
    /// "sqlite", "memory", …
    var kind: String { get }
    /// Where the data lives, for `/sys/info`.
    var location: String { get }

    /// Writes the records in one store transaction, with an outcome per record, and raises
    /// the durable timestamp ceiling to `ceiling` if given.
    func commit(_ records: [CommitRecord], ceiling: Timestamp?) throws -> [CommitOutcome]
    /// The newest version of `ptr` (a delete included), nil if it was never written.
    func newest(_ ptr: String) throws -> Version?
    /// The newest version of `ptr` at or below `ts`.
    func version(_ ptr: String, atOrBefore ts: Timestamp) throws -> Version?
    /// Versions newest first, strictly below `before` if given.
    func history(_ ptr: String, before: Timestamp?, limit: Int) throws -> [Version]
    /// Pointer ids whose newest version is not a delete, in id order, starting with
    /// `prefix`, strictly after `after`.
    func list(prefix: String, after: String?, limit: Int) throws -> [String]
    /// The transaction's record, if any.
    func record(of txn: String) throws -> TxnRecordStatus?
    /// Records `aborted` unless a record exists, and answers the record. An aborted record
    /// is stamped `now`, so that record GC can prune it like a committed one (DESIGN.md:
    /// records outlive every intent and commit deadline, and are pruned by GC well after).
    func resolve(_ txn: String, at now: Timestamp) throws -> TxnRecordStatus
    /// Begins a new incarnation of the node on this store: answers its number (one more
    /// than the last) and the durable timestamp ceiling.
    func startIncarnation() throws -> (incarnation: UInt64, ceiling: Timestamp)
    /// Raises the durable timestamp ceiling.
    func raiseCeiling(_ ts: Timestamp) throws
    /// Version GC, one step: visits up to `limit` pointers in id order after `after` (nil:
    /// from the first) and deletes, for each, every version older than its newest version at
    /// or below `cut` — and that one too when it is a delete and nothing newer exists. So every
    /// read at or after `cut` answers as before. Answers the pointers visited (fewer than
    /// `limit`: the pass is complete), the last one (the next cursor) and versions deleted.
    func prune(after: String?, limit: Int, cut: Timestamp) throws -> PruneStep
    /// The highest cut any `prune` used (zero if none): reads below it are refused, across
    /// restarts too.
    func prunedCut() throws -> Timestamp
    /// Deletes up to `limit` records of transactions committed before `cut`, or recorded
    /// aborted before it (by `resolve`); answers how many.
    /// Remembers, per `t<node>.<incarnation>` prefix of the ids, the highest sequence number
    /// pruned, so that a missing record can later be told from a pruned one.
    func pruneRecords(before cut: Timestamp, limit: Int) throws -> Int
    /// The highest sequence number of a pruned record among ids `<prefix>.<sequence>`
    /// (0: none was pruned).
    func recordsPruned(prefix: String) throws -> UInt64
    /// Counts for `/sys/info` and metrics.
    func stats() throws -> StoreStats
    func close()
    /// Why the store refuses every call until it is reopened, if it does (`GET /sys/health`
    /// reports it).
    var failure: String? { get }
}

extension Store {
    public var failure: String? { nil }
}

/// Splits a transaction id `t<node>.<incarnation>.<sequence>` into its prefix and sequence.
public func splitTxnID(_ id: String) -> (prefix: String, sequence: UInt64)? {
    guard let dot = id.lastIndex(of: "."), let seq = UInt64(id[id.index(after: dot)...]) else { return nil }
    return (String(id[..<dot]), seq)
}

public struct PruneStep: Sendable, Equatable {
    public var visited: Int
    public var last: String?
    public var deleted: Int

    public init(visited: Int, last: String?, deleted: Int) {
        self.visited = visited
        self.last = last
        self.deleted = deleted
    }
}

public struct StoreStats: Sendable {
    public var versions: Int
    public var txnRecords: Int
    public var bytes: Int

    public init(versions: Int, txnRecords: Int, bytes: Int) {
        self.versions = versions
        self.txnRecords = txnRecords
        self.bytes = bytes
    }
}

/// `sync`: acknowledged after fsync. `async`: the same write, fsync relaxed.
public enum Durability: String, Sendable, CaseIterable {
    case sync
    case async
}
