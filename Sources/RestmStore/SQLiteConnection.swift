import CSQLite

/// A value bound to a statement parameter.
enum SQLiteBind {
    case text(String)
    case int(Int64)
    case null
}

/// One row of a result, read by column index.
struct SQLiteRow {
    let stmt: OpaquePointer

    func text(_ i: Int32) -> String? {
        guard sqlite3_column_type(stmt, i) != SQLITE_NULL, let p = sqlite3_column_text(stmt, i) else { return nil }
        let n = Int(sqlite3_column_bytes(stmt, i))
        return String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
    }

    func int(_ i: Int32) -> Int64 { sqlite3_column_int64(stmt, i) }

    func isNull(_ i: Int32) -> Bool { sqlite3_column_type(stmt, i) == SQLITE_NULL }
}

/// The statements of the commit path: found by index, not by hashing their text on every call.
enum HotStatement: Int, CaseIterable {
    case latestSeq, upsertLatest, raiseCeiling, begin, commit

    var sql: String {
        switch self {
        // A group commit's own: prepared once rather than parsed by `exec` every time.
        case .begin: return "BEGIN IMMEDIATE"
        case .commit: return "COMMIT"
        case .latestSeq: return "SELECT seq FROM latest WHERE ptr = ?"
        case .upsertLatest:
            return "INSERT INTO latest (ptr, seq, live) VALUES (?, ?, ?) ON CONFLICT(ptr) DO UPDATE SET seq = excluded.seq, live = excluded.live"
        case .raiseCeiling:
            return "INSERT INTO meta (key, value) VALUES ('ceiling', ?) ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)"
        }
    }
}

/// Multi-row inserts of the commit path: `rows` tuples in one statement, prepared once per
/// row count (one statement instead of one per row is most of the writer's saving).
enum BatchStatement: Int, CaseIterable {
    case insertTxns, insertLog, findTxns

    static let rowsMax = 64

    var parameters: Int {
        switch self {
        case .insertTxns: return 2
        case .insertLog: return 6
        case .findTxns: return 1
        }
    }

    func sql(rows: Int) -> String {
        switch self {
        case .insertTxns:
            return "INSERT OR IGNORE INTO txns (id, status, ts) VALUES " + Array(repeating: "(?, 1, ?)", count: rows).joined(separator: ", ")
        case .insertLog:
            return "INSERT INTO log (seq, ptr, ts, txn, value, prev) VALUES "
                + Array(repeating: "(?, ?, ?, ?, ?, ?)", count: rows).joined(separator: ", ")
        case .findTxns:
            return "SELECT id FROM txns WHERE id IN (" + Array(repeating: "?", count: rows).joined(separator: ", ") + ")"
        }
    }
}

/// A thin wrapper of one SQLite connection with a cache of prepared statements.
/// Not thread-safe: its owner serializes every use (see `SQLiteStore`).
// @unchecked Sendable: handed between threads only through a lock (the writer mutex or the
// reader pool), and used by one thread at a time.
final class SQLiteConnection: @unchecked Sendable {
    let db: OpaquePointer
    private var statements: [String: OpaquePointer] = [:]
    private var hot = [OpaquePointer?](repeating: nil, count: HotStatement.allCases.count)
    private var batch = [OpaquePointer?](repeating: nil, count: BatchStatement.allCases.count * (BatchStatement.rowsMax + 1))
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    init(path: String, readOnly: Bool) throws(StoreError) {
        var handle: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)) | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &handle, flags, nil)
        guard rc == SQLITE_OK, let h = handle else {
            let msg = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "code \(rc)"
            if let h = handle { sqlite3_close_v2(h) }
            throw .failed("cannot open \(path): \(msg)")
        }
        db = h
        sqlite3_busy_timeout(db, 10_000)
        sqlite3_extended_result_codes(db, 1)
    }

    deinit {
        for (_, s) in statements { sqlite3_finalize(s) }
        // (`hot` statements are also in `statements`.)
        for s in batch { if let s { sqlite3_finalize(s) } }
        sqlite3_close_v2(db)
    }

    var lastError: String { String(cString: sqlite3_errmsg(db)) }

    func exec(_ sql: String) throws(StoreError) {
        var err: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &err)
        if rc != SQLITE_OK {
            let msg = err.map { String(cString: $0) } ?? "code \(rc)"
            sqlite3_free(err)
            throw Self.error(rc, "\(msg) in \(sql.prefix(80))")
        }
    }

    /// Errors that mean the disk state is in doubt (I/O, full disk, corruption) are
    /// `uncertain`; others are plain failures.
    static func error(_ rc: Int32, _ message: String) -> StoreError {
        switch rc & 0xff {
        case SQLITE_IOERR, SQLITE_FULL, SQLITE_CORRUPT, SQLITE_NOTADB, SQLITE_CANTOPEN:
            return .uncertain(message)
        default:
            return .failed(message)
        }
    }

    private func prepared(_ sql: String) throws(StoreError) -> OpaquePointer {
        if let s = statements[sql] { return s }
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil)
        guard rc == SQLITE_OK, let s = stmt else { throw Self.error(rc, "\(lastError) preparing \(sql.prefix(80))") }
        statements[sql] = s
        return s
    }

    private func bind(_ stmt: OpaquePointer, _ binds: [SQLiteBind]) throws(StoreError) {
        for (i, b) in binds.enumerated() {
            let idx = Int32(i + 1)
            let rc: Int32
            switch b {
            case .text(let s): rc = sqlite3_bind_text(stmt, idx, s, -1, Self.transient)
            case .int(let v): rc = sqlite3_bind_int64(stmt, idx, v)
            case .null: rc = sqlite3_bind_null(stmt, idx)
            }
            guard rc == SQLITE_OK else { throw Self.error(rc, "bind: \(lastError)") }
        }
    }

    /// The statement `h`, prepared on first use and then found by index.
    private func prepared(_ h: HotStatement) throws(StoreError) -> OpaquePointer {
        if let s = hot[h.rawValue] { return s }
        let s = try prepared(h.sql)
        hot[h.rawValue] = s
        return s
    }

    /// Runs a statement and collects one value per row.
    func query<T>(_ sql: String, _ binds: [SQLiteBind] = [], row: (SQLiteRow) -> T) throws(StoreError) -> [T] {
        try query(try prepared(sql), sql, binds, row: row)
    }

    func query<T>(_ h: HotStatement, _ binds: [SQLiteBind] = [], row: (SQLiteRow) -> T) throws(StoreError) -> [T] {
        try query(try prepared(h), h.sql, binds, row: row)
    }

    @discardableResult
    func run(_ h: HotStatement, _ binds: [SQLiteBind] = []) throws(StoreError) -> Int {
        try run(try prepared(h), h.sql, binds)
    }

    /// Runs `kind` for `rows` rows (1…`BatchStatement.rowsMax`); answers the rows changed.
    @discardableResult
    func run(_ kind: BatchStatement, rows: Int, _ binds: [SQLiteBind]) throws(StoreError) -> Int {
        try run(try prepared(kind, rows: rows, binds), "batch \(kind) x\(rows)", binds)
    }

    /// Runs `kind` for `rows` rows and collects one value per result row.
    func query<T>(_ kind: BatchStatement, rows: Int, _ binds: [SQLiteBind], row: (SQLiteRow) -> T) throws(StoreError) -> [T] {
        try query(try prepared(kind, rows: rows, binds), "batch \(kind) x\(rows)", binds, row: row)
    }

    private func prepared(_ kind: BatchStatement, rows: Int, _ binds: [SQLiteBind]) throws(StoreError) -> OpaquePointer {
        precondition(rows >= 1 && rows <= BatchStatement.rowsMax && binds.count == rows * kind.parameters)
        let slot = kind.rawValue * (BatchStatement.rowsMax + 1) + rows
        if let s = batch[slot] { return s }
        var made: OpaquePointer?
        let sql = kind.sql(rows: rows)
        let rc = sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &made, nil)
        guard rc == SQLITE_OK, let m = made else { throw Self.error(rc, "\(lastError) preparing \(sql.prefix(80))") }
        batch[slot] = m
        return m
    }

    private func query<T>(_ stmt: OpaquePointer, _ sql: String, _ binds: [SQLiteBind], row: (SQLiteRow) -> T) throws(StoreError) -> [T] {
        defer {
            sqlite3_reset(stmt)
            sqlite3_clear_bindings(stmt)
        }
        try bind(stmt, binds)
        var out: [T] = []
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_ROW {
                out.append(row(SQLiteRow(stmt: stmt)))
            } else if rc == SQLITE_DONE {
                return out
            } else {
                throw Self.error(rc, "\(lastError) in \(sql.prefix(80))")
            }
        }
    }

    /// Runs a statement that returns no rows; answers the number of rows changed.
    @discardableResult
    func run(_ sql: String, _ binds: [SQLiteBind] = []) throws(StoreError) -> Int {
        try run(try prepared(sql), sql, binds)
    }

    private func run(_ stmt: OpaquePointer, _ sql: String, _ binds: [SQLiteBind]) throws(StoreError) -> Int {
        defer {
            sqlite3_reset(stmt)
            sqlite3_clear_bindings(stmt)
        }
        try bind(stmt, binds)
        let rc = sqlite3_step(stmt)
        guard rc == SQLITE_DONE || rc == SQLITE_ROW else { throw Self.error(rc, "\(lastError) in \(sql.prefix(80))") }
        return Int(sqlite3_changes(db))
    }
}
