import CSQLite
import RestmCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The default store: one SQLite database in WAL mode inside the data directory, laid out
/// as an append-only log of versions (prevalence-style) so that a group commit writes a few
/// pages at the end of one B-tree instead of one page per written pointer.
///
/// Layout (see docs/ARCHITECTURE.md, "The SQLite store"):
/// - `log(seq, ptr, ts, txn, value, prev)`: one row per version, `seq` increasing in commit
///   order and never reused; `prev` is the `seq` of the pointer's previous version, so a
///   pointer's versions form a chain from its newest back (a missing row ends it: pruned).
/// - `latest(ptr, seq, live)`: each pointer's newest version, written lazily: the newest
///   versions of recent commits live in memory (`overlay`) and are written to `latest` in
///   chunks, oldest first, inside later group commits. `meta.latest_upto` says up to which
///   `seq` the table is complete; on open, the log above it rebuilds the overlay.
/// - `txns(id, status, ts)`: transaction records (`status` 1 committed at `ts`; 0 aborted,
///   `ts` the time the record was made, so record GC can prune it; each kind has a partial
///   index on `ts`); `meta`: incarnation, ceiling, GC state.
///   A committed transaction's record is written lazily: until then its log rows (which
///   carry its id and timestamp) are the durable record, and `tail` holds it in memory.
///   Records are copied to `txns` in chunks of `recordFlushAt`, sorted by id, inside a later
///   group commit; `meta.records_upto` says up to which `seq` they all are in `txns`, and on
///   open the log above it rebuilds `tail`. (Inserting 16 records per group commit into the
///   two B-trees of `txns` dirtied ~6.7 of its ~10.6 pages; a chunk of 256 dirties ~10.)
///   Version GC never deletes a row above `records_upto`: it flushes the tail first.
///
/// Concurrency rules, each with its why:
/// - One writer connection, used under `writer`'s lock: SQLite allows one writer at a time,
///   and the node funnels every commit through one group-commit thread anyway. The next
///   `seq` lives under the same lock.
/// - Reader connections come from a pool, each used by one thread at a time: WAL lets
///   readers run beside the writer and see only committed transactions. A reader looks in the
///   overlay before the database; the writer adds to the overlay only after its transaction
///   committed and removes from it only after the rows it flushed committed, so a reader
///   never misses a version that was acknowledged.
/// - The data directory is locked with `flock` for the life of the store, so two processes
///   cannot run one node's data (they would reuse its incarnation and timestamps).
/// - `sync` durability sets `synchronous=FULL`: in WAL mode that fsyncs the log on every
///   commit, so a commit that returned survives `kill -9` and power loss. `async` sets
///   `NORMAL`: the write still happens before the commit is acknowledged, only the fsync is
///   deferred to checkpoints.
public final class SQLiteStore: Store, @unchecked Sendable {
    // @unchecked: the connections are classes used only under the locks below.
    public let location: String
    public let durability: Durability
    private let writer: Mutex<Writer>
    private let readers = Mutex<[SQLiteConnection]>([])
    private let readersIdleMax = 8
    private let lockFD: Int32
    /// Newest versions not yet in `latest`: pointer → (seq, live).
    private let overlay: Mutex<Overlay>
    /// The overlay is written to `latest`, oldest first and `flushChunk` pointers per group
    /// commit, while it holds more than `overlayFlushAt` pointers or the log holds more than
    /// `replayRowsMax` rows above `latest_upto` (what an open must read again).
    let overlayFlushAt: Int
    let flushChunk: Int
    let replayRowsMax: Int64
    /// Records of committed transactions whose log rows are above `records_upto`: id → the
    /// commit timestamp's text. Changed only by the writer, under `writer`'s lock.
    private let tail: Mutex<[String: String]>
    /// The tail is copied to `txns` once it would hold this many records.
    let recordFlushAt: Int
    /// Ids remembered by `Writer.resolved`; past it, every commit looks on disk again.
    let resolvedMax: Int

    struct Newest: Sendable {
        var seq: Int64
        var live: Bool
    }

    /// The newest versions not yet in `latest`, and the order they were written in.
    struct Overlay: Sendable {
        private(set) var newest: [String: Newest] = [:]
        /// (ptr, seq) in increasing `seq` from `head`; an item whose seq is no longer its
        /// pointer's newest is stale and skipped.
        private var order: [(ptr: String, seq: Int64)] = []
        private var head = 0

        subscript(ptr: String) -> Newest? { newest[ptr] }
        var count: Int { newest.count }

        mutating func add(_ ptr: String, _ n: Newest) {
            newest[ptr] = n
            order.append((ptr, n.seq))
        }

        /// The oldest live entries, at most `limit` of them among at most `scanMax` items;
        /// `end` is where a `drop(through:)` resumes and `upto` the last seq looked at.
        func oldest(_ limit: Int, scanMax: Int) -> (entries: [(ptr: String, n: Newest)], end: Int, upto: Int64?) {
            var out: [(ptr: String, n: Newest)] = []
            var i = head
            var upto: Int64?
            while i < order.count, out.count < limit, i - head < scanMax {
                let it = order[i]
                if let n = newest[it.ptr], n.seq == it.seq { out.append((it.ptr, n)) }
                upto = it.seq
                i += 1
            }
            return (out, i, upto)
        }

        /// Forgets the items before `end` (written to `latest`).
        mutating func drop(through end: Int) {
            for i in head..<end {
                let it = order[i]
                if newest[it.ptr]?.seq == it.seq { newest[it.ptr] = nil }
            }
            head = end
            if head > 4_096, head * 2 > order.count {
                order.removeFirst(head)
                head = 0
            }
        }

        /// Forgets `ptr` if `seq` is still its newest (GC pruned it).
        mutating func remove(_ ptr: String, seq: Int64) {
            if newest[ptr]?.seq == seq { newest[ptr] = nil }
        }
    }

    struct Writer: @unchecked Sendable {
        let db: SQLiteConnection
        /// The last `seq` used (rows may since have been pruned; never reused).
        var lastSeq: Int64 = 0
        /// `latest` holds every pointer's newest version among rows up to this seq.
        var latestUpto: Int64 = 0
        /// `txns` holds the record of every transaction with log rows up to this seq.
        var recordsUpto: Int64 = 0
        /// Ids `resolve` was asked about since the store opened (up to `resolvedMax`; past
        /// it, `resolvedOverflow`): a record issued since the open and not among them has no
        /// record on disk, and its commit skips looking (one query per group commit).
        var resolved: Set<String> = []
        var resolvedOverflow = false
        /// Look-ups of records in `txns` made by commits (for tests).
        var recordLookups = 0
    }


    public var kind: String { "sqlite" }

    /// The layout this build writes: 2 = the log with lazy transaction records. A store
    /// marked with a higher number was written by a newer build and is refused (a build
    /// without the lazy records would not see records that live only in the log). Builds
    /// before this mark existed do not check it.
    static let formatVersion = 2

    /// Up to which seq `latest` is complete (for tests).
    var latestUpto: Int64 { writer.withLock { $0.latestUpto } }

    /// Records held only in the log and in memory (for tests).
    var tailCount: Int { tail.withLock { $0.count } }

    /// Look-ups of records in `txns` made by commits (for tests).
    var recordLookups: Int { writer.withLock { $0.recordLookups } }

    /// Set when a COMMIT failed with an unknown outcome and the store could not read back
    /// what the database holds: its overlay and tail may then miss a commit that did reach
    /// the log, and answering from them could call a committed transaction aborted. The
    /// store refuses everything from then on; a restart rebuilds both from the log.
    private let lostTrack = Atomic<Bool>(false)
    /// Set by `close()` under the writer's lock: from then on every call is refused, so no
    /// write can land after the directory lock is released (another store may own it then).
    private let closed = Atomic<Bool>(false)

    /// Failures injected by tests: a COMMIT that reaches the log and still reports an
    /// error, and a rebuild after it that cannot read the database.
    struct Faults {
        var commitFailsAfterWriting = false
        var rebuildFails = false
    }
    let faults = Mutex(Faults())

    private func checkTrack() throws {
        if closed.load(ordering: .acquiring) { throw StoreError.refused("the store is closed") }
        if let failure { throw StoreError.failed(failure) }
    }

    public var failure: String? {
        lostTrack.load(ordering: .acquiring) ? "the store lost track of a commit whose outcome is unknown; restart the node" : nil
    }

    private func withWriter<T>(_ body: (inout Writer) throws -> T) throws -> T {
        try checkTrack()
        return try writer.withLock { w in
            try checkTrack()
            return try body(&w)
        }
    }

    /// Opens (creating if needed) the store in directory `directory`.
    public init(
        directory: String, durability: Durability = .sync,
        overlayFlushAt: Int = 65_536, flushChunk: Int = 4_096, replayRowsMax: Int = 262_144,
        recordFlushAt: Int = 256, resolvedMax: Int = 100_000
    ) throws {
        try Self.makeDirectory(directory)
        let path = directory.hasSuffix("/") ? directory + "restm.sqlite" : directory + "/restm.sqlite"
        let lockPath = directory + "/LOCK"
        let fd = open(lockPath, O_RDWR | O_CREAT, 0o644)
        guard fd >= 0 else { throw StoreError.failed("cannot open \(lockPath): errno \(errno)") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            Glibc.close(fd)
            throw StoreError.locked("the data directory \(directory) is in use by another restm process")
        }
        self.lockFD = fd
        self.location = path
        self.durability = durability
        self.overlayFlushAt = max(1, overlayFlushAt)
        self.flushChunk = max(1, min(flushChunk, overlayFlushAt))
        self.replayRowsMax = Int64(max(1, replayRowsMax))
        self.recordFlushAt = max(1, recordFlushAt)
        self.resolvedMax = max(0, resolvedMax)
        do {
            let conn = try SQLiteConnection(path: path, readOnly: false)
            try conn.exec("PRAGMA journal_mode=WAL")
            try conn.exec(durability == .sync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL")
            try conn.exec("PRAGMA wal_autocheckpoint=4000")
            // A 64 MiB page cache: the `latest` index and chain walks otherwise re-read pages.
            try conn.exec("PRAGMA cache_size=-65536")
            try conn.exec("""
                CREATE TABLE IF NOT EXISTS log (
                    seq INTEGER PRIMARY KEY, ptr TEXT NOT NULL, ts TEXT NOT NULL, txn TEXT NOT NULL,
                    value TEXT, prev INTEGER);
                CREATE TABLE IF NOT EXISTS latest (
                    ptr TEXT PRIMARY KEY, seq INTEGER NOT NULL, live INTEGER NOT NULL) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS txns (
                    id TEXT PRIMARY KEY, status INTEGER NOT NULL, ts TEXT) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
                CREATE INDEX IF NOT EXISTS txns_by_ts ON txns (ts) WHERE status = 1;
                """)
            let format = try Self.metaInt(conn, "format")
            guard format <= Self.formatVersion else {
                throw StoreError.failed(
                    "the data directory \(directory) was written by a newer restm (store format \(format); this build reads up to \(Self.formatVersion))")
            }
            // Aborted records made before they carried a time (by builds before this one;
            // the format did not change, older builds read these rows as before) are
            // stamped with the time of this open, so that record GC prunes them one
            // retention period from now (through this index: no scan). After the format
            // check: a store this build refuses is not touched.
            try conn.exec("CREATE INDEX IF NOT EXISTS txns_aborted_by_ts ON txns (ts) WHERE status = 0")
            try conn.run(
                "UPDATE txns SET ts = ? WHERE status = 0 AND ts IS NULL",
                [.text(Timestamp(wallMillis: Self.wallMillis(), node: 0).text)])
            try Self.migrateVersionsTable(conn)
            let (entries, top, upto) = try Self.overlayFromLog(conn)
            let (records, recordsUpto) = try Self.tailFromLog(conn, lastSeq: top)
            if format < Self.formatVersion { try Self.setMeta(conn, "format", String(Self.formatVersion)) }
            overlay = Mutex(entries)
            tail = Mutex(records)
            // `records_upto` may lie above the log's end (seqs taken by a batch whose COMMIT
            // failed): those seqs must never be used, or their rows would count as copied.
            let lastSeq = max(top, recordsUpto)
            writer = Mutex(Writer(db: conn, lastSeq: lastSeq, latestUpto: upto, recordsUpto: recordsUpto))
        } catch {
            flock(fd, LOCK_UN)
            Glibc.close(fd)
            throw error
        }
    }

    deinit {
        Glibc.close(lockFD)
    }

    static func makeDirectory(_ path: String) throws {
        var isDir = stat()
        if stat(path, &isDir) == 0 { return }
        // mkdir -p
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if stat(current, &isDir) != 0, mkdir(current, 0o755) != 0, errno != EEXIST {
                throw StoreError.failed("cannot create \(current): errno \(errno)")
            }
        }
    }

    /// Wall-clock milliseconds (only to stamp aborted records of older stores on open).
    static func wallMillis() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
    }

    private static func metaInt(_ db: SQLiteConnection, _ key: String) throws -> Int64 {
        let text = try db.query("SELECT value FROM meta WHERE key = ?", [.text(key)]) { $0.text(0) }.first ?? nil
        return text.flatMap { Int64($0) } ?? 0
    }

    /// Stores of the first layout kept versions in `versions(ptr, ts, …)`: move them into the
    /// log (in timestamp order, chained per pointer) and `latest`, in one transaction.
    static func migrateVersionsTable(_ db: SQLiteConnection) throws {
        let exists = try db.query("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'versions'") { $0.int(0) }.first ?? 0
        guard exists > 0 else { return }
        try db.exec("BEGIN IMMEDIATE")
        do {
            var seq = try db.query("SELECT coalesce(max(seq), 0) FROM log") { $0.int(0) }.first ?? 0
            var newest: [String: Newest] = [:]
            let rows = try db.query("SELECT ptr, ts, txn, value FROM versions ORDER BY ts, ptr") { r in
                (r.text(0) ?? "", r.text(1) ?? "", r.text(2) ?? "", r.text(3))
            }
            for (ptr, ts, txn, value) in rows {
                seq += 1
                try db.run(
                    "INSERT INTO log (seq, ptr, ts, txn, value, prev) VALUES (?, ?, ?, ?, ?, ?)",
                    [.int(seq), .text(ptr), .text(ts), .text(txn), value.map { .text($0) } ?? .null,
                     newest[ptr].map { .int($0.seq) } ?? .null])
                newest[ptr] = Newest(seq: seq, live: value != nil)
            }
            for (ptr, n) in newest {
                try db.run(.upsertLatest, [.text(ptr), .int(n.seq), .int(n.live ? 1 : 0)])
            }
            try Self.setMeta(db, "latest_upto", String(seq))
            try db.exec("DROP TABLE versions")
            try db.exec("COMMIT")
        } catch {
            try? db.exec("ROLLBACK")
            throw error
        }
    }

    /// The overlay as the log above `latest_upto` says, the last `seq` used, and `latest_upto`.
    private static func overlayFromLog(_ db: SQLiteConnection) throws -> (Overlay, Int64, Int64) {
        let upto = try metaInt(db, "latest_upto")
        var entries = Overlay()
        let rows = try db.query("SELECT seq, ptr, value IS NOT NULL FROM log WHERE seq > ? ORDER BY seq", [.int(upto)]) { r in
            (r.int(0), r.text(1) ?? "", r.int(2) != 0)
        }
        for (seq, ptr, live) in rows { entries.add(ptr, Newest(seq: seq, live: live)) }
        let top = try db.query("SELECT coalesce(max(seq), 0) FROM log") { $0.int(0) }.first ?? 0
        return (entries, max(top, upto, try metaInt(db, "gc_seq")), upto)
    }

    /// The records of the log above `records_upto`, and `records_upto`. A store written
    /// before records were lazy has every record in `txns`: its `records_upto` starts at the
    /// log's end.
    private static func tailFromLog(_ db: SQLiteConnection, lastSeq: Int64) throws -> ([String: String], Int64) {
        let known = try db.query("SELECT value FROM meta WHERE key = 'records_upto'") { $0.text(0) }.first ?? nil
        guard let upto = known.flatMap({ Int64($0) }) else {
            try setMeta(db, "records_upto", String(lastSeq))
            return ([:], lastSeq)
        }
        var records: [String: String] = [:]
        let rows = try db.query("SELECT txn, ts FROM log WHERE seq > ?", [.int(upto)]) { r in (r.text(0) ?? "", r.text(1) ?? "") }
        for (txn, ts) in rows { records[txn] = ts }
        return (records, upto)
    }

    /// Copies the tail's records, and `more`, to `txns` in the current transaction and sets
    /// `records_upto` to `upto`; the caller empties the tail once the transaction committed.
    private func flushRecords(_ db: SQLiteConnection, more: [(id: String, ts: String)] = [], upto: Int64) throws {
        var all = tail.withLock { t in t.map { (id: $0.key, ts: $0.value) } }
        all.append(contentsOf: more)
        // In id order: neighbouring ids share pages.
        all.sort { $0.id < $1.id }
        try insertRecords(all, db)
        try Self.setMeta(db, "records_upto", String(upto))
    }

    /// After a committed flush of the whole tail (to `w.lastSeq`).
    private func emptyTail(_ w: inout Writer) {
        tail.withLock { $0.removeAll(keepingCapacity: true) }
        w.recordsUpto = w.lastSeq
    }

    private static func setMeta(_ db: SQLiteConnection, _ key: String, _ value: String) throws {
        try db.run(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [.text(key), .text(value)])
    }

    private func withReader<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        try checkTrack()
        let conn = try readers.withLock { $0.popLast() } ?? SQLiteConnection(path: location, readOnly: true)
        defer {
            readers.withLock { pool in
                if pool.count < readersIdleMax { pool.append(conn) }
            }
        }
        return try body(conn)
    }

    /// The `seq` of `ptr`'s newest version: the overlay first, then `latest`.
    private func newestSeq(_ ptr: String, _ db: SQLiteConnection) throws -> Int64? {
        if let n = overlay.withLock({ $0[ptr] }) { return n.seq }
        return try db.query(.latestSeq, [.text(ptr)]) { $0.int(0) }.first
    }

    private struct LogRow {
        var version: Version
        var prev: Int64?
    }

    /// The log row `seq` if it exists and belongs to `ptr`.
    private func row(_ seq: Int64, of ptr: String, _ db: SQLiteConnection) throws -> LogRow? {
        try db.query("SELECT ptr, ts, txn, value, prev FROM log WHERE seq = ?", [.int(seq)]) { r -> LogRow? in
            guard r.text(0) == ptr, let ts = r.text(1).flatMap({ Timestamp(text: $0) }) else { return nil }
            return LogRow(
                version: Version(ts: ts, txn: r.text(2) ?? "", value: r.text(3)),
                prev: r.isNull(4) ? nil : r.int(4))
        }.first ?? nil
    }

    /// Walks `ptr`'s chain from its newest version back; `visit` answers false to stop.
    private func walk(_ ptr: String, _ db: SQLiteConnection, _ visit: (Version) -> Bool) throws {
        var next = try newestSeq(ptr, db)
        while let s = next, let r = try row(s, of: ptr, db) {
            guard visit(r.version) else { return }
            next = r.prev
        }
    }

    public func commit(_ records: [CommitRecord], ceiling: Timestamp?) throws -> [CommitOutcome] {
        try withWriter { w in
            let db = w.db
            try db.run(.begin)
            var outcomes: [CommitOutcome] = []
            outcomes.reserveCapacity(records.count)
            let writeCount = records.reduce(0) { $0 + $1.writes.count }
            var added: [String: Newest] = [:]
            added.reserveCapacity(writeCount)
            // The same in seq order, for the overlay.
            var addedInOrder: [(ptr: String, n: Newest)] = []
            addedInOrder.reserveCapacity(writeCount)
            // Records of this batch that go to the tail (they have log rows).
            var lazy: [(id: String, ts: String)] = []
            lazy.reserveCapacity(records.count)
            var seq = w.lastSeq
            var flush: (end: Int, upto: Int64)?
            var flushedRecords = false
            do {
                let isNew = try newRecords(records, &w)
                // Each write's pointer's newest seq in the overlay, in write order, under one
                // lock for the batch.
                let inOverlay: [Int64?] = overlay.withLock { o in
                    var out: [Int64?] = []
                    out.reserveCapacity(writeCount)
                    for r in records {
                        for wr in r.writes { out.append(o[wr.ptr]?.seq) }
                    }
                    return out
                }
                var k = 0
                var rows = RowBatch(db: db)
                var eager: [(id: String, ts: String)] = []
                for (i, r) in records.enumerated() {
                    guard isNew[i] else {
                        outcomes.append(.alreadyAborted)
                        k += r.writes.count
                        continue
                    }
                    guard Self.distinctPointers(r.writes) else {
                        throw StoreError.failed("transaction \(r.txn) writes a pointer twice")
                    }
                    // No log row would carry a record without writes: it goes to `txns` now.
                    if r.writes.isEmpty { eager.append((r.txn, r.tsText)) } else { lazy.append((r.txn, r.tsText)) }
                    for wr in r.writes {
                        let prev: Int64?
                        if let a = added[wr.ptr] { prev = a.seq } else if let o = inOverlay[k] { prev = o } else {
                            prev = try db.query(.latestSeq, [.text(wr.ptr)]) { $0.int(0) }.first
                        }
                        k += 1
                        seq += 1
                        try rows.add(seq: seq, ptr: wr.ptr, ts: r.tsText, txn: r.txn, value: wr.value, prev: prev)
                        let n = Newest(seq: seq, live: wr.value != nil)
                        added[wr.ptr] = n
                        addedInOrder.append((wr.ptr, n))
                    }
                    outcomes.append(.committed)
                }
                try rows.finish()
                if !eager.isEmpty { try insertRecords(eager, db) }
                if tail.withLock({ $0.count }) + lazy.count >= recordFlushAt {
                    try flushRecords(db, more: lazy, upto: seq)
                    flushedRecords = true
                }
                if let c = ceiling { try db.run(.raiseCeiling, [.text(c.text)]) }
                flush = try flushOldest(db, w, adding: added.count)
            } catch {
                try? db.exec("ROLLBACK")
                throw error
            }
            do {
                try db.run(.commit)
                if faults.withLock({ $0.commitFailsAfterWriting }) { throw StoreError.failed("injected: COMMIT reported a failure") }
            } catch let e as StoreError {
                // A failed COMMIT may or may not have reached the log: say so, and take the
                // overlay, the tail and the next seq from what the database now holds.
                try? db.exec("ROLLBACK")
                let rebuildFails = faults.withLock { $0.rebuildFails }
                if !rebuildFails, let (entries, last, upto) = try? Self.overlayFromLog(db),
                    let (records, recordsUpto) = try? Self.tailFromLog(db, lastSeq: last)
                {
                    overlay.withLock { $0 = entries }
                    tail.withLock { $0 = records }
                    w.lastSeq = max(w.lastSeq, last, seq, recordsUpto)
                    w.latestUpto = upto
                    w.recordsUpto = recordsUpto
                } else {
                    w.lastSeq = max(w.lastSeq, seq)
                    lostTrack.store(true, ordering: .releasing)
                }
                if case .failed(let m) = e { throw StoreError.uncertain(m) }
                throw e
            }
            w.lastSeq = seq
            if let f = flush { w.latestUpto = f.upto }
            if flushedRecords {
                emptyTail(&w)
            } else if !lazy.isEmpty {
                tail.withLock { t in for r in lazy { t[r.id] = r.ts } }
            }
            overlay.withLock { o in
                if let f = flush { o.drop(through: f.end) }
                // In seq order, so that the overlay's order stays increasing (a pointer written
                // twice in the batch leaves a stale first item, which the overlay skips).
                for (p, n) in addedInOrder { o.add(p, n) }
            }
            return outcomes
        }
    }

    /// Per record, whether it may commit: not named earlier in the batch, and with no record
    /// yet (a resolver may have recorded the transaction `aborted` first).
    private func newRecords(_ records: [CommitRecord], _ w: inout Writer) throws -> [Bool] {
        var isNew = [Bool](repeating: true, count: records.count)
        var seen: Set<String> = []
        seen.reserveCapacity(records.count)
        tail.withLock { t in
            for (i, r) in records.enumerated() where !seen.insert(r.txn).inserted || t[r.txn] != nil { isNew[i] = false }
        }
        // Only ids that may have a record on disk are looked for there: not those issued
        // since the open that `resolve` has not seen (under the writer's lock, as `resolve`).
        let look = records.indices.filter { i in
            isNew[i]
                && !(records[i].issuedSinceOpen && !records[i].txn.hasPrefix("c") && !w.resolvedOverflow && !w.resolved.contains(records[i].txn))
        }
        var start = 0
        while start < look.count {
            let end = min(look.count, start + BatchStatement.rowsMax)
            var binds: [SQLiteBind] = []
            binds.reserveCapacity(end - start)
            for k in start..<end { binds.append(.text(records[look[k]].txn)) }
            w.recordLookups += 1
            let found = try w.db.query(.findTxns, rows: end - start, binds) { $0.text(0) }
            if !found.isEmpty {
                let taken = Set(found.compactMap { $0 })
                for k in start..<end where taken.contains(records[look[k]].txn) { isNew[look[k]] = false }
            }
            start = end
        }
        return isNew
    }

    /// Inserts records as committed, `BatchStatement.rowsMax` per statement (the caller has
    /// checked that none exists).
    private func insertRecords(_ records: [(id: String, ts: String)], _ db: SQLiteConnection) throws {
        var start = 0
        while start < records.count {
            let end = min(records.count, start + BatchStatement.rowsMax)
            var binds: [SQLiteBind] = []
            binds.reserveCapacity((end - start) * 2)
            for i in start..<end {
                binds.append(.text(records[i].id))
                binds.append(.text(records[i].ts))
            }
            try db.run(.insertTxns, rows: end - start, binds)
            start = end
        }
    }

    /// Log rows gathered into multi-row inserts.
    private struct RowBatch {
        let db: SQLiteConnection
        var binds: [SQLiteBind] = []
        var rows = 0

        init(db: SQLiteConnection) {
            self.db = db
            binds.reserveCapacity(BatchStatement.rowsMax * BatchStatement.insertLog.parameters)
        }

        mutating func add(seq: Int64, ptr: String, ts: String, txn: String, value: String?, prev: Int64?) throws {
            binds.append(.int(seq))
            binds.append(.text(ptr))
            binds.append(.text(ts))
            binds.append(.text(txn))
            binds.append(value.map { .text($0) } ?? .null)
            binds.append(prev.map { .int($0) } ?? .null)
            rows += 1
            if rows == BatchStatement.rowsMax { try finish() }
        }

        mutating func finish() throws {
            guard rows > 0 else { return }
            try db.run(.insertLog, rows: rows, binds)
            binds.removeAll(keepingCapacity: true)
            rows = 0
        }
    }

    /// Version timestamps are unique per pointer: one record writes a pointer at most once.
    static func distinctPointers(_ writes: [(ptr: String, value: String?)]) -> Bool {
        if writes.count <= 16 {
            for i in writes.indices.dropFirst() where writes[..<i].contains(where: { $0.ptr == writes[i].ptr }) { return false }
            return true
        }
        return Set(writes.map(\.ptr)).count == writes.count
    }

    /// When the overlay would grow past `overlayFlushAt` or the log above `latest_upto` past
    /// `replayRowsMax`, writes the overlay's oldest `flushChunk` entries to `latest` in the
    /// current transaction and raises `latest_upto`; answers where the overlay is to be cut
    /// once the transaction has committed.
    private func flushOldest(_ db: SQLiteConnection, _ w: Writer, adding: Int) throws -> (end: Int, upto: Int64)? {
        let plan = overlay.withLock { o -> (entries: [(ptr: String, n: Newest)], end: Int, upto: Int64?)? in
            guard o.count + adding > overlayFlushAt || w.lastSeq - w.latestUpto > replayRowsMax else { return nil }
            return o.oldest(flushChunk, scanMax: 16 * flushChunk)
        }
        guard let plan, let upto = plan.upto else { return nil }
        // In pointer order: neighbouring keys share pages.
        for e in plan.entries.sorted(by: { $0.ptr < $1.ptr }) {
            try db.run(.upsertLatest, [.text(e.ptr), .int(e.n.seq), .int(e.n.live ? 1 : 0)])
        }
        try Self.setMeta(db, "latest_upto", String(upto))
        return (plan.end, upto)
    }

    public func newest(_ ptr: String) throws -> Version? {
        try withReader { db in
            var found: Version?
            try walk(ptr, db) { v in
                found = v
                return false
            }
            return found
        }
    }

    public func version(_ ptr: String, atOrBefore ts: Timestamp) throws -> Version? {
        try withReader { db in
            var found: Version?
            try walk(ptr, db) { v in
                if v.ts <= ts {
                    found = v
                    return false
                }
                return true
            }
            return found
        }
    }

    public func history(_ ptr: String, before: Timestamp?, limit: Int) throws -> [Version] {
        try withReader { db in
            var out: [Version] = []
            guard limit > 0 else { return out }
            try walk(ptr, db) { v in
                if before.map({ v.ts < $0 }) ?? true { out.append(v) }
                return out.count < limit
            }
            return out
        }
    }

    public func list(prefix: String, after: String?, limit: Int) throws -> [String] {
        // Pointer ids are ASCII below 0x7f, so prefix + DEL bounds the range.
        let upper = prefix + "\u{7f}"
        let low = after ?? ""
        func inRange(_ p: String) -> Bool { p >= prefix && p < upper && p > low }
        return try withReader { db in
            // The overlay first (see the type's rules), then `latest`: asked for as many more
            // rows as the overlay may remove, so that a full page stays full.
            let recent = overlay.withLock { o in o.newest.filter { inRange($0.key) } }
            let dead = recent.values.filter { !$0.live }.count
            let stored = try db.query(
                "SELECT ptr FROM latest WHERE ptr >= ?1 AND ptr < ?2 AND ptr > ?3 AND live = 1 ORDER BY ptr LIMIT ?4",
                [.text(prefix), .text(upper), .text(low), .int(Int64(limit + dead))]
            ) { $0.text(0) ?? "" }
            var ids = Set(stored)
            for (p, n) in recent {
                if n.live { ids.insert(p) } else { ids.remove(p) }
            }
            var out = ids.sorted()
            // A full page from `latest` ends where its last id ends.
            if stored.count == limit + dead, let last = stored.last { out = out.filter { $0 <= last } }
            return Array(out.prefix(limit))
        }
    }

    private static func status(_ row: SQLiteRow) -> TxnRecordStatus {
        if row.int(0) == 1, let t = row.text(1).flatMap({ Timestamp(text: $0) }) { return .committed(t) }
        return .aborted
    }

    public func record(of txn: String) throws -> TxnRecordStatus? {
        try checkTrack()
        // The tail first: a flush empties it only after its rows are in `txns`.
        if let t = tail.withLock({ $0[txn] }) { return Timestamp(text: t).map { .committed($0) } ?? .aborted }
        return try withReader { db in
            try db.query("SELECT status, ts FROM txns WHERE id = ?", [.text(txn)], row: Self.status).first
        }
    }

    public func resolve(_ txn: String, at now: Timestamp) throws -> TxnRecordStatus {
        try withWriter { w in
            // Remembered before anything is written: a commit of this id looks on disk. Client
            // ids (`c…`) always look, so they need no place here (nor can they fill it).
            if !txn.hasPrefix("c") {
                if w.resolved.count < resolvedMax { w.resolved.insert(txn) } else if !w.resolved.contains(txn) { w.resolvedOverflow = true }
            }
            if let t = tail.withLock({ $0[txn] }) { return Timestamp(text: t).map { .committed($0) } ?? .aborted }
            try w.db.run("INSERT OR IGNORE INTO txns (id, status, ts) VALUES (?, 0, ?)", [.text(txn), .text(now.text)])
            return try w.db.query("SELECT status, ts FROM txns WHERE id = ?", [.text(txn)], row: Self.status).first ?? .aborted
        }
    }

    public func startIncarnation() throws -> (incarnation: UInt64, ceiling: Timestamp) {
        try withWriter { w in
            let db = w.db
            try db.exec("BEGIN IMMEDIATE")
            do {
                let lastText = try db.query("SELECT value FROM meta WHERE key = 'incarnation'") { $0.text(0) }.first ?? nil
                let last = lastText.flatMap { UInt64($0) } ?? 0
                let next = last + 1
                try db.run(
                    "INSERT INTO meta (key, value) VALUES ('incarnation', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    [.text(String(next))])
                let ceilingText = try db.query("SELECT value FROM meta WHERE key = 'ceiling'") { $0.text(0) }.first ?? nil
                let ceiling = ceilingText.flatMap { Timestamp(text: $0) } ?? .zero
                try db.exec("COMMIT")
                return (next, ceiling)
            } catch {
                try? db.exec("ROLLBACK")
                throw error
            }
        }
    }

    public func raiseCeiling(_ ts: Timestamp) throws {
        try withWriter { w in
            _ = try w.db.run(.raiseCeiling, [.text(ts.text)])
        }
    }

    /// Version GC walks the log in `seq` order (about commit order), from where the last step
    /// stopped (`meta.gc_seq`), so each version is looked at once however many pointers there
    /// are. A version whose successor is at or below `cut` is deleted when the successor is
    /// visited; a delete at or below `cut` that is still its pointer's newest version is
    /// deleted with its `latest` entry. A step stops at `limit` rows or at the first row above
    /// `cut`; the cursor it answers is opaque (`after` nil starts from the saved one).
    public func prune(after: String?, limit: Int, cut: Timestamp) throws -> PruneStep {
        try withWriter { w in
            let db = w.db
            try db.exec("BEGIN IMMEDIATE")
            var dropped: [(ptr: String, seq: Int64)] = []
            var cursor: Int64 = 0
            var visited = 0
            var deleted = 0
            var flushedRecords = false
            do {
                cursor = try after.flatMap { Int64($0) } ?? Self.metaInt(db, "gc_seq")
                let rows = try db.query(
                    "SELECT seq, ptr, ts, value IS NULL, prev FROM log WHERE seq > ? ORDER BY seq LIMIT ?",
                    [.int(cursor), .int(Int64(limit))]
                ) { r in
                    (seq: r.int(0), ptr: r.text(1) ?? "", ts: r.text(2).flatMap { Timestamp(text: $0) } ?? .zero,
                     isDelete: r.int(3) != 0, prev: r.isNull(4) ? nil : Optional(r.int(4)))
                }
                // Rows above `records_upto` may hold the only record of their transaction:
                // put the tail in `txns` before deleting any of them.
                if let reach = rows.prefix(while: { $0.ts <= cut }).last?.seq, reach > w.recordsUpto {
                    try flushRecords(db, upto: w.lastSeq)
                    flushedRecords = true
                }
                for r in rows {
                    // Rows come in about commit order: the first above the cut ends the pass.
                    guard r.ts <= cut else { break }
                    visited += 1
                    cursor = r.seq
                    // A dangling `prev` ends the chain: seqs are never reused.
                    if let p = r.prev { deleted += try db.run("DELETE FROM log WHERE seq = ?", [.int(p)]) }
                    if r.isDelete, try newestSeq(r.ptr, db) == r.seq {
                        deleted += try db.run("DELETE FROM log WHERE seq = ?", [.int(r.seq)])
                        try db.run("DELETE FROM latest WHERE ptr = ?", [.text(r.ptr)])
                        dropped.append((r.ptr, r.seq))
                    }
                }
                try Self.setMeta(db, "gc_seq", String(cursor))
                try db.run(
                    "INSERT INTO meta (key, value) VALUES ('gc_cut', ?) ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)",
                    [.text(cut.text)])
                try db.exec("COMMIT")
            } catch {
                try? db.exec("ROLLBACK")
                throw error
            }
            if flushedRecords { emptyTail(&w) }
            if !dropped.isEmpty {
                overlay.withLock { o in
                    for d in dropped { o.remove(d.ptr, seq: d.seq) }
                }
            }
            // Fewer than `limit` visited: the pass is complete (the cut or the log's end).
            return PruneStep(visited: visited, last: String(cursor), deleted: deleted)
        }
    }

    public func prunedCut() throws -> Timestamp {
        try withReader { db in
            let text = try db.query("SELECT value FROM meta WHERE key = 'gc_cut'") { $0.text(0) }.first ?? nil
            return text.flatMap { Timestamp(text: $0) } ?? .zero
        }
    }

    public func pruneRecords(before cut: Timestamp, limit: Int) throws -> Int {
        try withWriter { w in
            let db = w.db
            try db.exec("BEGIN IMMEDIATE")
            do {
                // The tail's records too (a short retention may already reach them).
                let flushedRecords = tail.withLock { !$0.isEmpty }
                if flushedRecords { try flushRecords(db, upto: w.lastSeq) }
                // Aborted records (rare), then committed ones, each through its own partial
                // index: a backlog of committed records never holds the aborted ones back.
                var ids = try db.query(
                    "SELECT id FROM txns WHERE status = 0 AND ts < ? ORDER BY ts LIMIT ?",
                    [.text(cut.text), .int(Int64(limit))]
                ) { $0.text(0) }.compactMap { $0 }
                if ids.count < limit {
                    ids += try db.query(
                        "SELECT id FROM txns WHERE status = 1 AND ts < ? ORDER BY ts LIMIT ?",
                        [.text(cut.text), .int(Int64(limit - ids.count))]
                    ) { $0.text(0) }.compactMap { $0 }
                }
                var highest: [String: UInt64] = [:]
                for id in ids {
                    if let (prefix, seq) = splitTxnID(id) { highest[prefix] = max(highest[prefix] ?? 0, seq) }
                    _ = try db.run("DELETE FROM txns WHERE id = ?", [.text(id)])
                }
                for (prefix, seq) in highest {
                    // Sequences are 64-bit; stored as zero-padded text so that max() compares them.
                    let padded = String(repeating: "0", count: max(0, 20 - String(seq).count)) + String(seq)
                    _ = try db.run(
                        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)",
                        [.text("records_pruned:" + prefix), .text(padded)])
                }
                try db.exec("COMMIT")
                if flushedRecords { emptyTail(&w) }
                return ids.count
            } catch {
                try? db.exec("ROLLBACK")
                throw error
            }
        }
    }

    public func recordsPruned(prefix: String) throws -> UInt64 {
        try withReader { db in
            let text = try db.query("SELECT value FROM meta WHERE key = ?", [.text("records_pruned:" + prefix)]) { $0.text(0) }.first ?? nil
            return text.flatMap { UInt64($0) } ?? 0
        }
    }

    public func stats() throws -> StoreStats {
        try withReader { db in
            let versions = try db.query("SELECT count(*) FROM log") { $0.int(0) }.first ?? 0
            let txns = (try db.query("SELECT count(*) FROM txns") { $0.int(0) }.first ?? 0) + Int64(tailCount)
            let pages = try db.query("PRAGMA page_count") { $0.int(0) }.first ?? 0
            let pageSize = try db.query("PRAGMA page_size") { $0.int(0) }.first ?? 0
            return StoreStats(versions: Int(versions), txnRecords: Int(txns), bytes: Int(pages * pageSize))
        }
    }

    /// Checkpoints the log and releases the directory lock, so another store (a restarted
    /// node in the same process, or another process) may open the directory. A write in
    /// progress finishes first; every call after it is refused (`StoreError.refused`: not
    /// attempted), so nothing this store acknowledges can be written after another store
    /// has opened the directory.
    public func close() {
        writer.withLock { w in
            guard !closed.load(ordering: .acquiring) else { return }
            closed.store(true, ordering: .releasing)
            try? w.db.exec("PRAGMA wal_checkpoint(TRUNCATE)")
        }
        readers.withLock { $0.removeAll() }
        flock(lockFD, LOCK_UN)
    }
}
