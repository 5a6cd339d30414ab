import Foundation
import RestmCore
@testable import RestmStore
import RestmTestSupport
import Testing

/// The SQLite store's log layout: the newest versions held in memory (the overlay) and
/// written to `latest` in chunks must never lose an acknowledged version, whatever moment a
/// crash picks; GC on the log keeps exactly what reads at or after the cut need; stores of
/// the first layout are migrated.
@Suite struct SQLiteLogTests {
    func ts(_ ms: UInt64) -> Timestamp { Timestamp(wallMillis: ms, node: 1) }

    /// What a `kill -9` leaves: the database and its WAL as they are on disk now (the store
    /// stays open, so nothing is checkpointed or flushed on the way out).
    func crashCopy(of dir: TemporaryDirectory) throws -> TemporaryDirectory {
        let copy = TemporaryDirectory()
        for name in ["restm.sqlite", "restm.sqlite-wal"] where FileManager.default.fileExists(atPath: dir.path + "/" + name) {
            try FileManager.default.copyItem(atPath: dir.path + "/" + name, toPath: copy.path + "/" + name)
        }
        return copy
    }

    /// Every pointer's history, newest first, and the live listing, as the model says.
    func expectMatches(_ store: SQLiteStore, _ model: [String: [Version]], seed: UInt64, _ when: String) throws {
        for (p, versions) in model {
            let h = try store.history(p, before: nil, limit: 10_000)
            #expect(h == versions, "seed \(seed), \(when): history of \(p)")
            #expect(try store.newest(p) == versions.first, "seed \(seed), \(when): newest of \(p)")
            if versions.count > 1 {
                let mid = versions[versions.count / 2]
                #expect(try store.version(p, atOrBefore: mid.ts) == mid, "seed \(seed), \(when): \(p) at \(mid.ts.text)")
            }
        }
        let live = model.filter { $0.value.first?.value != nil }.keys.sorted()
        #expect(try store.list(prefix: "", after: nil, limit: 100_000) == live, "seed \(seed), \(when): listing")
        // Paged listing: pages of 7 add up to the same.
        var paged: [String] = []
        var after: String?
        while true {
            let page = try store.list(prefix: "", after: after, limit: 7)
            paged += page
            guard page.count == 7 else { break }
            after = page.last
        }
        #expect(paged == live, "seed \(seed), \(when): paged listing")
    }

    /// (overlayFlushAt, flushChunk, replayRowsMax, recordFlushAt): a tiny overlay (flushed for
    /// its size) and records copied to `txns` every few commits, and a large overlay flushed
    /// because the log to replay grew, with records copied at the default threshold.
    static let overlayShapes = [(12, 5, 1_000_000, 7), (1_000, 5, 30, 256)]

    @Test(arguments: overlayShapes)
    func aCrashAtAnyPointKeepsEveryCommittedVersion(_ shape: (Int, Int, Int, Int)) throws {
        var rng = SeededRandom.fromEnvironment()
        let seed = rng.seed
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        func open(_ path: String) throws -> SQLiteStore {
            try SQLiteStore(
                directory: path, durability: .async, overlayFlushAt: shape.0, flushChunk: shape.1, replayRowsMax: shape.2,
                recordFlushAt: shape.3)
        }
        // Every committed transaction's record, as the store must answer it.
        var recorded: [String: Timestamp] = [:]
        func expectRecords(_ store: SQLiteStore, _ when: String) throws {
            for (id, t) in recorded { #expect(try store.record(of: id) == .committed(t), "seed \(seed), \(when): record of \(id)") }
        }
        let store = try open(dir.path)
        defer { store.close() }
        var model: [String: [Version]] = [:]
        var clock: UInt64 = 1_000
        for round in 1...400 {
            var records: [CommitRecord] = []
            for _ in 0..<Int(rng.next() % 3 + 1) {
                clock += 1 + rng.next() % 5
                var writes: [(ptr: String, value: String?)] = []
                var used: Set<String> = []
                for _ in 0..<Int(rng.next() % 4 + 1) {
                    let p = "p\(rng.next() % 40)"
                    guard used.insert(p).inserted else { continue }
                    writes.append((p, rng.next() % 5 == 0 ? nil : "\(rng.next() % 1000)"))
                }
                // Now and then a transaction with no writes: its record has no log row.
                if rng.next() % 10 == 0 { writes = [] }
                records.append(CommitRecord(txn: "t\(round).\(records.count)", ts: ts(clock), writes: writes))
            }
            #expect(try store.commit(records, ceiling: nil).allSatisfy { $0 == .committed })
            for r in records { recorded[r.txn] = r.ts }
            for r in records {
                for w in r.writes { model[w.ptr, default: []].insert(Version(ts: r.ts, txn: r.txn, value: w.value), at: 0) }
            }
            if round % 80 == 0 {
                #expect(store.latestUpto > 0, "the overlay was written to `latest` at least once")
                try expectMatches(store, model, seed: seed, "live store after round \(round)")
                try expectRecords(store, "live store after round \(round)")
                let copy = try crashCopy(of: dir)
                defer { copy.remove() }
                let reopened = try open(copy.path)
                try expectMatches(reopened, model, seed: seed, "reopened after a crash at round \(round)")
                try expectRecords(reopened, "reopened after a crash at round \(round)")
                // The reopened store goes on from there: a new version chains onto the old.
                _ = try reopened.commit([CommitRecord(txn: "after", ts: ts(clock + 1), writes: [("p0", "\"again\"")])], ceiling: nil)
                #expect(try reopened.history("p0", before: nil, limit: 10_000).dropFirst().elementsEqual(model["p0"] ?? []),
                        "seed \(seed): p0's chain after a new commit")
                reopened.close()
            }
        }
    }

    @Test func gcOnTheLogKeepsWhatReadsAtOrAfterTheCutNeed() throws {
        for kind in ["memory", "sqlite"] {
            let dir = TemporaryDirectory()
            defer { dir.remove() }
            let store: any Store = kind == "memory" ? MemoryStore() : try SQLiteStore(directory: dir.path, overlayFlushAt: 2, flushChunk: 1)
            defer { store.close() }
            _ = try store.commit([
                CommitRecord(txn: "a", ts: ts(10), writes: [("a", "1"), ("b", "1"), ("c", "1")]),
                CommitRecord(txn: "b", ts: ts(20), writes: [("a", "2"), ("b", nil)]),
                CommitRecord(txn: "c", ts: ts(30), writes: [("a", "3")]),
                CommitRecord(txn: "d", ts: ts(40), writes: [("c", "4"), ("d", nil)]),
            ], ceiling: nil)
            // As the node does: a pass in steps of 2 until one visits fewer.
            var cursor: String?
            var deleted = 0
            while true {
                let step = try store.prune(after: cursor, limit: 2, cut: ts(25))
                deleted += step.deleted
                cursor = step.last
                if step.visited < 2 { break }
            }
            #expect(deleted == 3, "\(kind): a@10, b@10 and the delete b@20")
            #expect(try store.history("a", before: nil, limit: 10).map(\.ts) == [ts(30), ts(20)], "\(kind)")
            #expect(try store.version("a", atOrBefore: ts(25))?.value == "2", "\(kind)")
            #expect(try store.history("b", before: nil, limit: 10).isEmpty, "\(kind)")
            #expect(try store.newest("b") == nil, "\(kind)")
            #expect(try store.history("c", before: nil, limit: 10).map(\.ts) == [ts(40), ts(10)], "\(kind): c@10 is what a read at 25 sees")
            #expect(try store.newest("d") == Version(ts: ts(40), txn: "d", value: nil), "\(kind): a delete above the cut stays")
            #expect(try store.prunedCut() == ts(25))
            // A later pass with a higher cut finishes the job.
            cursor = nil
            while true {
                let step = try store.prune(after: cursor, limit: 2, cut: ts(100))
                cursor = step.last
                if step.visited < 2 { break }
            }
            #expect(try store.history("a", before: nil, limit: 10).map(\.ts) == [ts(30)], "\(kind)")
            #expect(try store.history("c", before: nil, limit: 10).map(\.ts) == [ts(40)], "\(kind)")
            #expect(try store.newest("d") == nil, "\(kind)")
            #expect(try store.list(prefix: "", after: nil, limit: 10) == ["a", "c"], "\(kind)")
            // Pruned pointers can be written again.
            _ = try store.commit([CommitRecord(txn: "e", ts: ts(110), writes: [("b", "5"), ("a", "6")])], ceiling: nil)
            #expect(try store.history("b", before: nil, limit: 10).map(\.value) == ["5"], "\(kind)")
            #expect(try store.history("a", before: nil, limit: 10).map(\.value) == ["6", "3"], "\(kind)")
        }
    }

    /// Records of committed transactions live in the log (and in memory) until they are
    /// copied to `txns`: they decide like stored ones, survive a crash, and outlive the
    /// versions GC deletes.
    @Test func recordsInTheTailDecideLikeStoredOnesAndSurviveACrash() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = try SQLiteStore(directory: dir.path, recordFlushAt: 4)
        defer { store.close() }
        let out = try store.commit([
            CommitRecord(txn: "a", ts: ts(10), writes: [("x", "1")]),
            CommitRecord(txn: "b", ts: ts(11), writes: [("y", "1")]),
            CommitRecord(txn: "c", ts: ts(12), writes: []),
        ], ceiling: nil)
        #expect(out == [.committed, .committed, .committed])
        #expect(store.tailCount == 2, "a and b are only in the log; c has no log row and went to `txns`")
        #expect(try store.record(of: "a") == .committed(ts(10)))
        #expect(try store.record(of: "c") == .committed(ts(12)))
        #expect(try store.resolve("b", at: ts(2_000)) == .committed(ts(11)))
        // The same id again: refused, and nothing changes.
        #expect(try store.commit([CommitRecord(txn: "a", ts: ts(20), writes: [("x", "2")])], ceiling: nil) == [.alreadyAborted])
        #expect(try store.newest("x")?.value == "1")

        // A crash: the log above `records_upto` rebuilds the tail.
        let copy = try crashCopy(of: dir)
        defer { copy.remove() }
        let reopened = try SQLiteStore(directory: copy.path, recordFlushAt: 4)
        defer { reopened.close() }
        #expect(reopened.tailCount == 2)
        #expect(try reopened.record(of: "a") == .committed(ts(10)))
        #expect(try reopened.resolve("b", at: ts(2_000)) == .committed(ts(11)))
        #expect(try reopened.resolve("never", at: ts(2_000)) == .aborted)
        #expect(try reopened.commit([CommitRecord(txn: "b", ts: ts(21), writes: [("y", "2")])], ceiling: nil) == [.alreadyAborted])

        // Reaching the threshold copies the tail to `txns`.
        _ = try reopened.commit([
            CommitRecord(txn: "d", ts: ts(30), writes: [("x", "3")]),
            CommitRecord(txn: "e", ts: ts(31), writes: [("z", "3")]),
        ], ceiling: nil)
        #expect(reopened.tailCount == 0)
        #expect(try reopened.stats().txnRecords == 6, "a to e committed, and the aborted record of `never`")

        // GC deletes f's version of x once g's is below the cut; f's record was only in the
        // log, so the step copies the tail to `txns` first.
        _ = try reopened.commit([CommitRecord(txn: "f", ts: ts(40), writes: [("x", "4")])], ceiling: nil)
        _ = try reopened.commit([CommitRecord(txn: "g", ts: ts(41), writes: [("x", "5")])], ceiling: nil)
        #expect(reopened.tailCount == 2)
        var cursor: String?
        while true {
            let step = try reopened.prune(after: cursor, limit: 2, cut: ts(100))
            cursor = step.last
            if step.visited < 2 { break }
        }
        #expect(try reopened.history("x", before: nil, limit: 10).map(\.value) == ["5"])
        #expect(reopened.tailCount == 0)
        let second = try crashCopy(of: copy)
        defer { second.remove() }
        let again = try SQLiteStore(directory: second.path, recordFlushAt: 4)
        defer { again.close() }
        for (id, t) in [("a", 10), ("b", 11), ("c", 12), ("d", 30), ("e", 31), ("f", 40), ("g", 41)] as [(String, UInt64)] {
            #expect(try again.record(of: id) == .committed(ts(t)), "record of \(id) after GC and a crash")
        }

        // Record GC reaches the tail too.
        _ = try again.commit([CommitRecord(txn: "h", ts: ts(50), writes: [("w", "1")])], ceiling: nil)
        #expect(again.tailCount == 1)
        #expect(try again.pruneRecords(before: ts(1_000), limit: 100) == 8)
        #expect(try again.record(of: "h") == nil)
        #expect(try again.stats().txnRecords == 1, "only the aborted record of `never` is left")
    }

    /// A batch whose COMMIT failed took seqs that no row holds, and a later copy of the tail
    /// may have set `records_upto` above the log's end: a reopened store must not hand those
    /// seqs out again, or their rows would count as copied and their records be lost.
    @Test func seqsAtOrBelowRecordsUptoAreNeverReused() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        do {
            let store = try SQLiteStore(directory: dir.path, recordFlushAt: 4)
            _ = try store.commit([CommitRecord(txn: "a", ts: ts(10), writes: [("x", "1")])], ceiling: nil)
            store.close()
            let db = try SQLiteConnection(path: dir.path + "/restm.sqlite", readOnly: false)
            try db.exec("UPDATE meta SET value = '50' WHERE key = 'records_upto'")
            try db.exec("INSERT INTO txns (id, status, ts) VALUES ('a', 1, '\(ts(10).text)')")
        }
        let store = try SQLiteStore(directory: dir.path, recordFlushAt: 4)
        defer { store.close() }
        _ = try store.commit([CommitRecord(txn: "b", ts: ts(20), writes: [("x", "2")])], ceiling: nil)
        #expect(store.tailCount == 1)
        let copy = try crashCopy(of: dir)
        defer { copy.remove() }
        let reopened = try SQLiteStore(directory: copy.path, recordFlushAt: 4)
        defer { reopened.close() }
        #expect(try reopened.record(of: "b") == .committed(ts(20)), "b's rows lie above records_upto")
        #expect(try reopened.history("x", before: nil, limit: 10).map(\.value) == ["2", "1"])
    }

    /// A store written by a newer build is refused with a message that says so.
    @Test func aStoreOfANewerFormatIsRefused() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        try SQLiteStore(directory: dir.path).close()
        do {
            let db = try SQLiteConnection(path: dir.path + "/restm.sqlite", readOnly: false)
            #expect(try db.query("SELECT value FROM meta WHERE key = 'format'") { $0.text(0) }.first == "\(SQLiteStore.formatVersion)")
            try db.exec("UPDATE meta SET value = '99' WHERE key = 'format'")
        }
        #expect { try SQLiteStore(directory: dir.path) } throws: { error in
            "\(error)".contains("newer restm (store format 99")
        }
        // The refusal released the directory: a reader of the right build could open it.
        do {
            let db = try SQLiteConnection(path: dir.path + "/restm.sqlite", readOnly: false)
            try db.exec("UPDATE meta SET value = '2' WHERE key = 'format'")
        }
        try SQLiteStore(directory: dir.path).close()
    }

    /// Aborted records of stores from before they carried a time (a NULL `ts`) are stamped
    /// when the store opens, so record GC prunes them one retention period later.
    @Test func abortedRecordsWithoutATimeAreStampedOnOpen() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        do {
            let store = try SQLiteStore(directory: dir.path)
            _ = try store.commit([CommitRecord(txn: "a", ts: ts(10), writes: [])], ceiling: nil)
            store.close()
            let db = try SQLiteConnection(path: dir.path + "/restm.sqlite", readOnly: false)
            try db.exec("INSERT INTO txns (id, status, ts) VALUES ('old-fence', 0, NULL)")
        }
        let before = SQLiteStore.wallMillis()
        let store = try SQLiteStore(directory: dir.path)
        defer { store.close() }
        let after = SQLiteStore.wallMillis()
        #expect(try store.record(of: "old-fence") == .aborted)
        // Not before the time of the open…
        #expect(try store.pruneRecords(before: Timestamp(wallMillis: before, node: 0), limit: 10) == 1, "only a's record")
        #expect(try store.record(of: "old-fence") == .aborted)
        // …and after it.
        #expect(try store.pruneRecords(before: Timestamp(wallMillis: after + 1, node: 0), limit: 10) == 1)
        #expect(try store.record(of: "old-fence") == nil)
        #expect(try store.stats().txnRecords == 0)
    }

    /// The checks a group makes before it commits, past the first `IN` query of 64 ids.
    @Test func aLargeGroupRefusesIdsTakenEarlierInItOrAlready() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = try SQLiteStore(directory: dir.path, recordFlushAt: 4)
        defer { store.close() }
        // "old" goes to `txns` (a record without writes), "tail" stays in the tail.
        _ = try store.commit([
            CommitRecord(txn: "old", ts: ts(1), writes: []),
            CommitRecord(txn: "tail", ts: ts(2), writes: [("t", "1")]),
        ], ceiling: nil)
        #expect(store.tailCount == 1)
        var batch = (0..<70).map { CommitRecord(txn: "n\($0)", ts: ts(10 + UInt64($0)), writes: [("p\($0)", "\($0)")]) }
        batch[66] = CommitRecord(txn: "old", ts: ts(80), writes: [("q", "1")])
        batch[67] = CommitRecord(txn: "tail", ts: ts(81), writes: [("q", "2")])
        batch[68] = CommitRecord(txn: "n3", ts: ts(82), writes: [("q", "3")])
        let out = try store.commit(batch, ceiling: nil)
        #expect(out.enumerated().filter { $0.element == .alreadyAborted }.map(\.offset) == [66, 67, 68])
        #expect(try store.newest("q") == nil)
        #expect(try store.record(of: "n69") == .committed(ts(79)))
        #expect(try store.record(of: "old") == .committed(ts(1)))
        #expect(try store.record(of: "tail") == .committed(ts(2)))
    }

    /// A record issued since the open skips the look on disk unless `resolve` has seen its
    /// id (or has seen too many ids to remember): a resolver that got there first still wins.
    @Test func idsIssuedSinceTheOpenSkipTheLookUnlessResolved() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = try SQLiteStore(directory: dir.path, resolvedMax: 2)
        #expect(try store.resolve("t1.1.1", at: ts(1)) == .aborted)
        #expect(try store.commit([CommitRecord(txn: "t1.1.1", ts: ts(5), writes: [("a", "1")], issuedSinceOpen: true)], ceiling: nil) == [.alreadyAborted])
        var lookups = store.recordLookups
        #expect(try store.commit([CommitRecord(txn: "t1.1.2", ts: ts(6), writes: [("b", "1")], issuedSinceOpen: true)], ceiling: nil) == [.committed])
        #expect(store.recordLookups == lookups, "an id issued since the open and never resolved is not looked for")
        #expect(try store.newest("a") == nil)
        // Client ids always look (whatever the record says), and resolving them takes no
        // place among the remembered ids.
        #expect(try store.commit([CommitRecord(txn: "cclient-id-0000000001", ts: ts(6), writes: [("d", "1")])], ceiling: nil) == [.committed])
        #expect(store.recordLookups == lookups + 1)
        for i in 0..<3 { #expect(try store.resolve("cclient-id-000000001\(i)", at: ts(1)) == .aborted) }
        lookups = store.recordLookups
        #expect(try store.commit([CommitRecord(txn: "t1.1.9", ts: ts(6), writes: [("e", "1")], issuedSinceOpen: true)], ceiling: nil) == [.committed])
        #expect(store.recordLookups == lookups, "client ids filled the remembered ids")
        #expect(try store.record(of: "t1.1.2") == .committed(ts(6)))
        // Past `resolvedMax` ids, every record is looked for on disk.
        #expect(try store.resolve("t1.1.3", at: ts(2)) == .aborted)
        #expect(try store.resolve("t1.1.4", at: ts(3)) == .aborted)
        #expect(try store.commit([CommitRecord(txn: "t1.1.4", ts: ts(7), writes: [("c", "1")], issuedSinceOpen: true)], ceiling: nil) == [.alreadyAborted])
        #expect(try store.newest("c") == nil)
        store.close()
        // After a reopen, ids fenced before it are not "issued since the open": a client's
        // id is looked for, and loses to its fence.
        let reopened = try SQLiteStore(directory: dir.path)
        defer { reopened.close() }
        #expect(try reopened.commit([CommitRecord(txn: "t1.1.1", ts: ts(8), writes: [("a", "2")])], ceiling: nil) == [.alreadyAborted])
        #expect(try reopened.newest("a") == nil)
    }

    /// A COMMIT that reached the log but reported a failure: the store reads back what the
    /// database holds and goes on; if it cannot, it refuses everything (its tail would miss
    /// the commit, and `resolve` would record a committed transaction aborted) until reopened.
    @Test func aCommitOfUnknownOutcomeIsReadBackOrTheStoreStops() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        do {
            let store = try SQLiteStore(directory: dir.path)
            defer { store.close() }
            store.faults.withLock { $0.commitFailsAfterWriting = true }
            #expect(throws: StoreError.self) { try store.commit([CommitRecord(txn: "a", ts: ts(1), writes: [("x", "1")])], ceiling: nil) }
            store.faults.withLock { $0 = .init() }
            #expect(try store.record(of: "a") == .committed(ts(1)), "read back from the log")
            #expect(store.failure == nil)
            #expect(try store.resolve("a", at: ts(2)) == .committed(ts(1)))
            store.faults.withLock { $0.commitFailsAfterWriting = true; $0.rebuildFails = true }
            #expect(throws: StoreError.self) { try store.commit([CommitRecord(txn: "b", ts: ts(3), writes: [("x", "2")])], ceiling: nil) }
            store.faults.withLock { $0 = .init() }
            #expect(store.failure != nil)
            #expect(throws: StoreError.self) { try store.resolve("b", at: ts(4)) }
            #expect(throws: StoreError.self) { try store.record(of: "b") }
            #expect(throws: StoreError.self) { try store.newest("x") }
            #expect(throws: StoreError.self) { try store.commit([CommitRecord(txn: "c", ts: ts(5), writes: [("y", "1")])], ceiling: nil) }
        }
        let reopened = try SQLiteStore(directory: dir.path)
        defer { reopened.close() }
        #expect(try reopened.record(of: "b") == .committed(ts(3)))
        #expect(try reopened.newest("x")?.value == "2")
        #expect(try reopened.newest("y") == nil)
    }

    /// A closed store refuses everything, before anything is written: a commit still queued
    /// when a node's shutdown gives up waiting must not land after another store has opened
    /// the directory (its tail and sequence numbers would not know it).
    @Test func aClosedStoreRefusesEverythingAndAnotherMayOpenTheDirectory() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let first = try SQLiteStore(directory: dir.path)
        _ = try first.commit([CommitRecord(txn: "a", ts: ts(1), writes: [("x", "1")])], ceiling: nil)
        first.close()
        first.close()  // twice is harmless
        let second = try SQLiteStore(directory: dir.path)
        defer { second.close() }
        #expect {
            _ = try first.commit([CommitRecord(txn: "b", ts: ts(2), writes: [("x", "2")])], ceiling: nil)
        } throws: { e in
            guard case .refused? = e as? StoreError else { return false }
            return true
        }
        #expect(throws: StoreError.self) { try first.record(of: "a") }
        #expect(throws: StoreError.self) { try first.resolve("b", at: ts(3)) }
        #expect(throws: StoreError.self) { try first.newest("x") }
        #expect(first.failure == nil, "closed is not failing")
        // The second store sees only what the first wrote before it closed, and goes on.
        #expect(try second.record(of: "a") == .committed(ts(1)))
        #expect(try second.record(of: "b") == nil)
        #expect(try second.newest("x")?.value == "1")
        #expect(try second.commit([CommitRecord(txn: "c", ts: ts(4), writes: [("x", "3")])], ceiling: nil) == [.committed])
        #expect(try second.newest("x")?.value == "3")
    }

    @Test func aStoreOfTheFirstLayoutIsMigrated() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        do {
            let db = try SQLiteConnection(path: dir.path + "/restm.sqlite", readOnly: false)
            try db.exec("PRAGMA journal_mode=WAL")
            try db.exec("""
                CREATE TABLE versions (ptr TEXT NOT NULL, ts TEXT NOT NULL, txn TEXT NOT NULL, value TEXT, PRIMARY KEY (ptr, ts)) WITHOUT ROWID;
                CREATE TABLE txns (id TEXT PRIMARY KEY, status INTEGER NOT NULL, ts TEXT) WITHOUT ROWID;
                CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
                """)
            for (p, t, v) in [("x", 10, "1"), ("x", 20, "2"), ("y", 15, "\"y\""), ("z", 12, "0"), ("z", 30, nil)] as [(String, UInt64, String?)] {
                try db.run("INSERT INTO versions (ptr, ts, txn, value) VALUES (?, ?, ?, ?)",
                           [.text(p), .text(ts(t).text), .text("old\(t)"), v.map { .text($0) } ?? .null])
            }
            try db.run("INSERT INTO txns (id, status, ts) VALUES ('old20', 1, ?)", [.text(ts(20).text)])
            try db.run("INSERT INTO meta (key, value) VALUES ('incarnation', '4')")
        }
        let store = try SQLiteStore(directory: dir.path)
        #expect(try store.history("x", before: nil, limit: 10).map(\.value) == ["2", "1"])
        #expect(try store.version("x", atOrBefore: ts(19))?.value == "1")
        #expect(try store.newest("z")?.value == nil && store.newest("z") != nil)
        #expect(try store.list(prefix: "", after: nil, limit: 10) == ["x", "y"])
        #expect(try store.record(of: "old20") == .committed(ts(20)))
        // That layout wrote every record when it committed: the migrated log is no tail.
        #expect(try store.record(of: "old10") == nil)
        #expect(store.tailCount == 0)
        #expect(try store.startIncarnation().incarnation == 5)
        _ = try store.commit([CommitRecord(txn: "new", ts: ts(40), writes: [("x", "3")])], ceiling: nil)
        #expect(try store.history("x", before: nil, limit: 10).map(\.value) == ["3", "2", "1"])
        store.close()
        // Once: a reopen finds the new layout and the same data.
        let again = try SQLiteStore(directory: dir.path)
        #expect(try again.history("x", before: nil, limit: 10).map(\.value) == ["3", "2", "1"])
        #expect(try again.stats().versions == 6)
        again.close()
    }
}
