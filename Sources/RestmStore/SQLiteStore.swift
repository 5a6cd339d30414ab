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

/// The default store: one SQLite database in WAL mode inside the data directory.
///
/// Concurrency rules, each with its why:
/// - One writer connection, used under `writer`'s lock: SQLite allows one writer at a time,
///   and the node funnels every commit through one group-commit thread anyway.
/// - Reader connections come from a pool, each used by one thread at a time: WAL lets
///   readers run beside the writer and see only committed transactions.
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
    private let writer: Mutex<SQLiteConnection>
    private let readers = Mutex<[SQLiteConnection]>([])
    private let readersIdleMax = 8
    private let lockFD: Int32

    public var kind: String { "sqlite" }

    /// Opens (creating if needed) the store in directory `directory`.
    public init(directory: String, durability: Durability = .sync) throws {
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
        let conn = try SQLiteConnection(path: path, readOnly: false)
        try conn.exec("PRAGMA journal_mode=WAL")
        try conn.exec(durability == .sync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL")
        try conn.exec("PRAGMA wal_autocheckpoint=4000")
        // A 64 MiB page cache: inserts into the version index otherwise re-read pages.
        try conn.exec("PRAGMA cache_size=-65536")
        try conn.exec("""
            CREATE TABLE IF NOT EXISTS versions (
                ptr TEXT NOT NULL, ts TEXT NOT NULL, txn TEXT NOT NULL, value TEXT,
                PRIMARY KEY (ptr, ts)) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS txns (
                id TEXT PRIMARY KEY, status INTEGER NOT NULL, ts TEXT) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS txns_by_ts ON txns (ts) WHERE status = 1;
            """)
        writer = Mutex(conn)
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

    private func withReader<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        let conn = try readers.withLock { $0.popLast() } ?? SQLiteConnection(path: location, readOnly: true)
        defer {
            readers.withLock { pool in
                if pool.count < readersIdleMax { pool.append(conn) }
            }
        }
        return try body(conn)
    }

    public func commit(_ records: [CommitRecord], ceiling: Timestamp?) throws -> [CommitOutcome] {
        try writer.withLock { db in
            try db.exec("BEGIN IMMEDIATE")
            var outcomes: [CommitOutcome] = []
            outcomes.reserveCapacity(records.count)
            do {
                for r in records {
                    let ts = r.ts.text
                    let inserted = try db.run("INSERT OR IGNORE INTO txns (id, status, ts) VALUES (?, 1, ?)", [.text(r.txn), .text(ts)])
                    guard inserted == 1 else {
                        outcomes.append(.alreadyAborted)
                        continue
                    }
                    for w in r.writes {
                        try db.run(
                            "INSERT INTO versions (ptr, ts, txn, value) VALUES (?, ?, ?, ?)",
                            [.text(w.ptr), .text(ts), .text(r.txn), w.value.map { .text($0) } ?? .null])
                    }
                    outcomes.append(.committed)
                }
                if let c = ceiling {
                    try db.run(
                        "INSERT INTO meta (key, value) VALUES ('ceiling', ?) ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)",
                        [.text(c.text)])
                }
            } catch {
                try? db.exec("ROLLBACK")
                throw error
            }
            do {
                try db.exec("COMMIT")
            } catch let e as StoreError {
                // A failed COMMIT may or may not have reached the log: say so.
                try? db.exec("ROLLBACK")
                if case .failed(let m) = e { throw StoreError.uncertain(m) }
                throw e
            }
            return outcomes
        }
    }

    private static func version(_ row: SQLiteRow) -> Version? {
        guard let tsText = row.text(0), let ts = Timestamp(text: tsText) else { return nil }
        return Version(ts: ts, txn: row.text(1) ?? "", value: row.text(2))
    }

    public func newest(_ ptr: String) throws -> Version? {
        try withReader { db in
            try db.query("SELECT ts, txn, value FROM versions WHERE ptr = ? ORDER BY ts DESC LIMIT 1", [.text(ptr)], row: Self.version).first ?? nil
        }
    }

    public func version(_ ptr: String, atOrBefore ts: Timestamp) throws -> Version? {
        try withReader { db in
            try db.query(
                "SELECT ts, txn, value FROM versions WHERE ptr = ? AND ts <= ? ORDER BY ts DESC LIMIT 1",
                [.text(ptr), .text(ts.text)], row: Self.version
            ).first ?? nil
        }
    }

    public func history(_ ptr: String, before: Timestamp?, limit: Int) throws -> [Version] {
        try withReader { db in
            try db.query(
                "SELECT ts, txn, value FROM versions WHERE ptr = ? AND ts < ? ORDER BY ts DESC LIMIT ?",
                [.text(ptr), .text(before?.text ?? "~"), .int(Int64(limit))], row: Self.version
            ).compactMap { $0 }
        }
    }

    public func list(prefix: String, after: String?, limit: Int) throws -> [String] {
        // Pointer ids are ASCII below 0x7f, so prefix + DEL bounds the range.
        try withReader { db in
            try db.query(
                """
                SELECT v.ptr FROM versions v
                WHERE v.ptr >= ?1 AND v.ptr < ?2 AND v.ptr > ?3
                  AND v.ts = (SELECT max(w.ts) FROM versions w WHERE w.ptr = v.ptr)
                  AND v.value IS NOT NULL
                ORDER BY v.ptr LIMIT ?4
                """,
                [.text(prefix), .text(prefix + "\u{7f}"), .text(after ?? ""), .int(Int64(limit))]
            ) { $0.text(0) ?? "" }
        }
    }

    private static func status(_ row: SQLiteRow) -> TxnRecordStatus {
        if row.int(0) == 1, let t = row.text(1).flatMap({ Timestamp(text: $0) }) { return .committed(t) }
        return .aborted
    }

    public func record(of txn: String) throws -> TxnRecordStatus? {
        try withReader { db in
            try db.query("SELECT status, ts FROM txns WHERE id = ?", [.text(txn)], row: Self.status).first
        }
    }

    public func resolve(_ txn: String) throws -> TxnRecordStatus {
        try writer.withLock { db in
            try db.run("INSERT OR IGNORE INTO txns (id, status, ts) VALUES (?, 0, NULL)", [.text(txn)])
            return try db.query("SELECT status, ts FROM txns WHERE id = ?", [.text(txn)], row: Self.status).first ?? .aborted
        }
    }

    public func startIncarnation() throws -> (incarnation: UInt64, ceiling: Timestamp) {
        try writer.withLock { db in
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
        try writer.withLock { db in
            try db.run(
                "INSERT INTO meta (key, value) VALUES ('ceiling', ?) ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)",
                [.text(ts.text)])
        }
    }

    public func prune(after: String?, limit: Int, cut: Timestamp) throws -> PruneStep {
        try writer.withLock { db in
            try db.exec("BEGIN IMMEDIATE")
            do {
                var visited = 0
                var deleted = 0
                var last = after
                let c = SQLiteBind.text(cut.text)
                while visited < limit {
                    // The next pointer id: an index seek, however many versions each has.
                    let next: String?
                    if let l = last {
                        next = try db.query("SELECT ptr FROM versions WHERE ptr > ? ORDER BY ptr LIMIT 1", [.text(l)]) { $0.text(0) }.first ?? nil
                    } else {
                        next = try db.query("SELECT ptr FROM versions ORDER BY ptr LIMIT 1") { $0.text(0) }.first ?? nil
                    }
                    guard let p = next else { break }
                    visited += 1
                    last = p
                    deleted += try db.run(
                        "DELETE FROM versions WHERE ptr = ?1 AND ts < (SELECT max(ts) FROM versions WHERE ptr = ?1 AND ts <= ?2)",
                        [.text(p), c])
                    deleted += try db.run(
                        "DELETE FROM versions WHERE ptr = ?1 AND ts <= ?2 AND value IS NULL AND ts = (SELECT max(ts) FROM versions WHERE ptr = ?1)",
                        [.text(p), c])
                }
                try db.run(
                    "INSERT INTO meta (key, value) VALUES ('gc_cut', ?) ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)",
                    [c])
                try db.exec("COMMIT")
                return PruneStep(visited: visited, last: last, deleted: deleted)
            } catch {
                try? db.exec("ROLLBACK")
                throw error
            }
        }
    }

    public func prunedCut() throws -> Timestamp {
        try withReader { db in
            let text = try db.query("SELECT value FROM meta WHERE key = 'gc_cut'") { $0.text(0) }.first ?? nil
            return text.flatMap { Timestamp(text: $0) } ?? .zero
        }
    }

    public func pruneRecords(before cut: Timestamp, limit: Int) throws -> Int {
        try writer.withLock { db in
            try db.exec("BEGIN IMMEDIATE")
            do {
                let ids = try db.query(
                    "SELECT id FROM txns WHERE status = 1 AND ts < ? ORDER BY ts LIMIT ?",
                    [.text(cut.text), .int(Int64(limit))]
                ) { $0.text(0) }.compactMap { $0 }
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
            let versions = try db.query("SELECT count(*) FROM versions") { $0.int(0) }.first ?? 0
            let txns = try db.query("SELECT count(*) FROM txns") { $0.int(0) }.first ?? 0
            let pages = try db.query("PRAGMA page_count") { $0.int(0) }.first ?? 0
            let pageSize = try db.query("PRAGMA page_size") { $0.int(0) }.first ?? 0
            return StoreStats(versions: Int(versions), txnRecords: Int(txns), bytes: Int(pages * pageSize))
        }
    }

    /// Checkpoints the log and releases the directory lock, so another store (a restarted
    /// node in the same process, or another process) may open the directory.
    public func close() {
        writer.withLock { db in try? db.exec("PRAGMA wal_checkpoint(TRUNCATE)") }
        readers.withLock { $0.removeAll() }
        flock(lockFD, LOCK_UN)
    }
}
