import RestmCore
import RestmStore
import RestmTestSupport
import Testing

/// One suite every store passes: atomic commits, the record rules that let a commit and a
/// resolver never both win, history and listing, incarnations and the ceiling.
@Suite struct StoreConformanceTests {
    enum Kind: String, CaseIterable, CustomTestStringConvertible {
        case memory, sqlite
        var testDescription: String { rawValue }
    }

    func withStore(_ kind: Kind, _ body: (any Store) throws -> Void) throws {
        switch kind {
        case .memory:
            try body(MemoryStore())
        case .sqlite:
            let dir = TemporaryDirectory()
            defer { dir.remove() }
            let store = try SQLiteStore(directory: dir.path)
            defer { store.close() }
            try body(store)
        }
    }

    func ts(_ ms: UInt64) -> Timestamp { Timestamp(wallMillis: ms, node: 1) }

    @Test(arguments: Kind.allCases)
    func commitsAreReadBackByTimestamp(_ kind: Kind) throws {
        try withStore(kind) { store in
            let out = try store.commit([
                CommitRecord(txn: "t1", ts: ts(10), writes: [("a", "1"), ("b", "\"x\"")]),
                CommitRecord(txn: "t2", ts: ts(20), writes: [("a", "2")]),
                CommitRecord(txn: "t3", ts: ts(30), writes: [("a", nil)]),
            ], ceiling: nil)
            #expect(out == [.committed, .committed, .committed])
            #expect(try store.newest("a") == Version(ts: ts(30), txn: "t3", value: nil))
            #expect(try store.version("a", atOrBefore: ts(25)) == Version(ts: ts(20), txn: "t2", value: "2"))
            #expect(try store.version("a", atOrBefore: ts(5)) == nil)
            #expect(try store.newest("zz") == nil)
            #expect(try store.history("a", before: nil, limit: 10).map(\.ts) == [ts(30), ts(20), ts(10)])
            #expect(try store.history("a", before: ts(30), limit: 1).map(\.ts) == [ts(20)])
            #expect(try store.record(of: "t2") == .committed(ts(20)))
        }
    }

    @Test(arguments: Kind.allCases)
    func aResolvedTransactionCannotCommitAndACommittedOneResolvesCommitted(_ kind: Kind) throws {
        try withStore(kind) { store in
            #expect(try store.resolve("orphan", at: ts(2_000)) == .aborted)
            let out = try store.commit([
                CommitRecord(txn: "orphan", ts: ts(10), writes: [("p", "1")]),
                CommitRecord(txn: "fine", ts: ts(11), writes: [("q", "1")]),
            ], ceiling: nil)
            // One loser does not sink the batch.
            #expect(out == [.alreadyAborted, .committed])
            #expect(try store.newest("p") == nil)
            #expect(try store.newest("q")?.value == "1")
            #expect(try store.resolve("fine", at: ts(2_000)) == .committed(ts(11)))
            #expect(try store.record(of: "never") == nil)
        }
    }

    /// An aborted record (a fence made by `resolve`) is pruned like a committed one, one
    /// retention period after it was made, and never before; once gone, `resolve` fences the
    /// id again, and the pruned mark covers a node id's sequence.
    @Test(arguments: Kind.allCases)
    func abortedRecordsArePrunedAfterTheyWereMadeAndNotBefore(_ kind: Kind) throws {
        try withStore(kind) { store in
            #expect(try store.resolve("c-0123456789abcdefghij", at: ts(100)) == .aborted)
            #expect(try store.resolve("t1.2.7", at: ts(150)) == .aborted)
            _ = try store.commit([CommitRecord(txn: "t1.2.5", ts: ts(120), writes: [("p", "1")])], ceiling: nil)
            #expect(try store.pruneRecords(before: ts(100), limit: 10) == 0)
            #expect(try store.record(of: "c-0123456789abcdefghij") == .aborted)
            #expect(try store.pruneRecords(before: ts(101), limit: 10) == 1)
            #expect(try store.record(of: "c-0123456789abcdefghij") == nil)
            #expect(try store.record(of: "t1.2.7") == .aborted)
            #expect(try store.recordsPruned(prefix: "t1.2") == 0)
            // The limit counts both kinds: the aborted record first.
            #expect(try store.pruneRecords(before: ts(1_000), limit: 1) == 1)
            #expect(try store.record(of: "t1.2.7") == nil)
            #expect(try store.record(of: "t1.2.5") == .committed(ts(120)))
            #expect(try store.recordsPruned(prefix: "t1.2") == 7)
            #expect(try store.pruneRecords(before: ts(1_000), limit: 1) == 1)
            #expect(try store.record(of: "t1.2.5") == nil)
            #expect(try store.stats().txnRecords == 0)
            // Fenced again, and the fence still refuses a commit under that id.
            #expect(try store.resolve("c-0123456789abcdefghij", at: ts(2_000)) == .aborted)
            let out = try store.commit([CommitRecord(txn: "c-0123456789abcdefghij", ts: ts(2_001), writes: [("q", "1")])], ceiling: nil)
            #expect(out == [.alreadyAborted])
            #expect(try store.newest("q") == nil)
        }
    }

    @Test(arguments: Kind.allCases)
    func listingSkipsDeletedPointersAndPages(_ kind: Kind) throws {
        try withStore(kind) { store in
            _ = try store.commit([
                CommitRecord(txn: "t1", ts: ts(10), writes: [("acct:1", "1"), ("acct:2", "2"), ("acct:3", "3"), ("other", "0")]),
                CommitRecord(txn: "t2", ts: ts(20), writes: [("acct:2", nil)]),
            ], ceiling: nil)
            #expect(try store.list(prefix: "acct:", after: nil, limit: 10) == ["acct:1", "acct:3"])
            #expect(try store.list(prefix: "acct:", after: "acct:1", limit: 10) == ["acct:3"])
            #expect(try store.list(prefix: "", after: nil, limit: 2) == ["acct:1", "acct:3"])
        }
    }

    @Test(arguments: Kind.allCases)
    func incarnationsIncreaseAndTheCeilingOnlyRises(_ kind: Kind) throws {
        try withStore(kind) { store in
            let a = try store.startIncarnation()
            try store.raiseCeiling(ts(100))
            try store.raiseCeiling(ts(50))
            let b = try store.startIncarnation()
            #expect(b.incarnation == a.incarnation + 1)
            #expect(b.ceiling == ts(100))
            _ = try store.commit([], ceiling: ts(200))
            #expect(try store.startIncarnation().ceiling == ts(200))
        }
    }

    @Test func sqliteKeepsEverythingAcrossReopen() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        do {
            let store = try SQLiteStore(directory: dir.path)
            _ = try store.startIncarnation()
            _ = try store.commit([CommitRecord(txn: "t1", ts: ts(10), writes: [("a", "{\"k\":1}")])], ceiling: ts(99))
            store.close()
        }
        let store = try SQLiteStore(directory: dir.path)
        #expect(try store.newest("a")?.value == "{\"k\":1}")
        let inc = try store.startIncarnation()
        #expect(inc.incarnation == 2 && inc.ceiling == ts(99))
    }

    @Test func aDataDirectoryServesOneProcessAtATime() throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let first = try SQLiteStore(directory: dir.path)
        #expect(throws: StoreError.self) { _ = try SQLiteStore(directory: dir.path) }
        first.close()
    }
}
