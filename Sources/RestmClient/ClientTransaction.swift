import RestmCore
import RestmNode
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a client transaction has read and buffered. Not nested in the generic class, so
/// that its code (and destroying it) needs no generic metadata at run time.
struct ClientTxnState {
    var rv: Timestamp?
    /// Every pointer read: the version seen and its value (both nil: absent). Kept across
    /// `orElse`.
    var reads: [String: ReadValue] = [:]
    /// Buffered writes; a nil value deletes.
    var writes: [String: JSONValue?] = [:]
    /// The id of this attempt's optimistic commit (cache mode), once it is sent.
    var clientID: String?
    /// Conflicts the node retried itself before this attempt's commit went through (an
    /// optimistic commit is a single-request transaction, which the node retries).
    var nodeRetries = 0
}

/// A transaction body's handle: reads go to the node (the first ones together with begin),
/// writes are buffered here and sent with the commit, so a read-modify-write costs two
/// round trips and a write-only body one.
final class ClientTransaction<B: TransactionBackend>: Transaction {
    /// The one begin of this transaction. The first read runs it inline, in the reading task
    /// (a task of its own would cost a hop per transaction); reads that arrive meanwhile wait
    /// for it, and begin again themselves if that reader is cancelled.
    enum Begin {
        case idle
        case running(waiting: [CheckedContinuation<B.Handle?, any Error>])
        case done(B.Handle)
        case failed(any Error)
    }

    /// Pointers per read request (`Limits.batchReadMax` of a node).
    static var batchMax: Int { 1_000 }

    let backend: B
    let priority: Timestamp?
    /// Cache mode: reads come from the cache (or a snapshot read that fills it) and the commit
    /// checks every version read, in one round trip; no transaction is begun on the node.
    let cache: ReadCache?
    let state = Mutex(ClientTxnState())
    let begin = Mutex(Begin.idle)

    init(backend: B, priority: Timestamp?, cache: ReadCache? = nil) {
        self.backend = backend
        self.priority = priority
        self.cache = cache
    }

    var rv: Timestamp? { state.withLock { $0.rv } }

    func read(_ ptr: String) async throws -> JSONValue? {
        try await read([ptr])[ptr]
    }

    @_specialize(where B == EmbeddedBackend)
    @_specialize(where B == HTTPBackend)
    func read(_ ptrs: [String]) async throws -> [String: JSONValue] {
        var out: [String: JSONValue] = [:]
        var missing: [String] = []
        // Duplicates among a few pointers are found by scanning; a Set only for many.
        let few = ptrs.count <= 16
        var seen = Set<String>()
        state.withLock { s in
            for p in ptrs {
                if let w = s.writes[p] {
                    if let v = w { out[p] = v }
                } else if let r = s.reads[p] {
                    if let v = r.value { out[p] = v }
                } else if few ? !missing.contains(p) : seen.insert(p).inserted {
                    missing.append(p)
                }
            }
        }
        guard !missing.isEmpty else { return out }
        if let cache { return try await readCached(missing, cache, into: out) }
        // A node answers at most `batchReadMax` pointers per request (API.md's limit).
        var fetched: [String: ReadValue] = [:]
        var rest = missing[...]
        var handle: B.Handle?
        while handle == nil {
            let first: Bool = begin.withLock { b in
                guard case .idle = b else { return false }
                b = .running(waiting: [])
                return true
            }
            guard first else {
                // nil: the begin that was running was cancelled; try to begin it here.
                handle = try await begun()
                continue
            }
            var part = Array(rest.prefix(Self.batchMax))
            let started: (handle: B.Handle, rv: Timestamp, values: [String: ReadValue])
            do {
                do {
                    started = try await backend.begin(priority: priority, reads: part)
                } catch let e as ClientError where e.isAnswerTooLarge && part.count > 1 {
                    // Their answer would pass the node's `answerBytesMax` (and the node
                    // aborted that transaction): begin without reads; the loop below
                    // reads them in smaller parts.
                    part = []
                    started = try await backend.begin(priority: priority, reads: [])
                }
            } catch {
                // The begin runs in this reader's task: its cancellation is this reader's
                // alone, so the reads waiting for it begin again instead of failing.
                let cancelled = error is CancellationError || Task.isCancelled
                let waiting = begin.withLock { b in
                    defer { b = cancelled ? .idle : .failed(error) }
                    if case .running(let w) = b { return w }
                    return []
                }
                for w in waiting {
                    if cancelled { w.resume(returning: nil) } else { w.resume(throwing: error) }
                }
                throw error
            }
            state.withLock { $0.rv = started.rv }
            let waiting = begin.withLock { b in
                defer { b = .done(started.handle) }
                if case .running(let w) = b { return w }
                return []
            }
            for w in waiting { w.resume(returning: started.handle) }
            handle = started.handle
            fetched = started.values
            rest = rest.dropFirst(part.count)
        }
        guard let handle else { throw ClientError.transport("the transaction was never begun") }
        var parts = Self.parts(rest)
        while let part = parts.popLast() {
            do {
                for (p, r) in try await backend.read(handle, part) { fetched[p] = r }
            } catch let e as ClientError where e.isAnswerTooLarge && part.count > 1 {
                Self.split(part, into: &parts)  // a refused read writes nothing
            }
        }
        // A node answers every pointer asked for (an absent one with a null version): one
        // left out is a broken answer, not an absent pointer — read as absent, a body could
        // act on a value it never saw. Treated like a lost answer: the attempt runs again.
        if let lost = missing.first(where: { fetched[$0] == nil }) {
            throw ClientError.transport("the node's answer to a read left out \(lost)")
        }
        state.withLock { s in
            for p in missing {
                if s.reads[p] == nil { s.reads[p] = fetched[p] }
            }
        }
        for p in missing { if let v = fetched[p]?.value { out[p] = v } }
        return out
    }

    /// Read requests of at most `batchMax` pointers (a node's limit), as a stack: the first
    /// part is popped first.
    static func parts(_ ptrs: ArraySlice<String>) -> [[String]] {
        stride(from: ptrs.startIndex, to: ptrs.endIndex, by: batchMax)
            .map { Array(ptrs[$0..<min($0 + batchMax, ptrs.endIndex)]) }
            .reversed()
    }

    /// A part whose answer would pass the node's `answerBytesMax` (413): its two halves go
    /// back on the stack, the first half on top.
    static func split(_ part: [String], into parts: inout [[String]]) {
        parts.append(Array(part[(part.count / 2)...]))
        parts.append(Array(part[..<(part.count / 2)]))
    }

    /// The handle of the begin that another read started, once it has answered; nil when
    /// that begin was cancelled (nothing began: the caller may begin it itself).
    private func begun() async throws -> B.Handle? {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<B.Handle?, any Error>) in
            let now: Result<B.Handle?, any Error>? = begin.withLock { b in
                switch b {
                case .running(var w):
                    w.append(c)
                    b = .running(waiting: w)
                    return nil
                case .done(let h): return .success(h)
                case .failed(let e): return .failure(e)
                case .idle: return .success(nil)
                }
            }
            if let now { c.resume(with: now) }
        }
    }

    /// Cache mode: hits from the cache, misses from one snapshot read per 1,000 pointers.
    private func readCached(_ missing: [String], _ cache: ReadCache, into found: [String: JSONValue]) async throws -> [String: JSONValue] {
        var out = found
        var got: [(String, JSONValue?, Timestamp?)] = []
        var misses: [String] = []
        for p in missing {
            if let e = cache.lookup(p) { got.append((p, e.value, e.version)) } else { misses.append(p) }
        }
        var parts = Self.parts(misses[...])
        while let part = parts.popLast() {
            let ts: Timestamp
            let values: [String: ReadValue]
            do {
                (ts, values) = try await backend.snapshotRead(part)
            } catch let e as ClientError where e.isAnswerTooLarge && part.count > 1 {
                // Each part is its own snapshot, as parts of 1,000 already are; the commit
                // checks every version read.
                Self.split(part, into: &parts)
                continue
            }
            for p in part {
                guard let r = values[p] else { throw ClientError.transport("the node's answer to a read left out \(p)") }
                cache.store(p, value: r.value, version: r.version, stamp: ts)
                got.append((p, r.value, r.version))
            }
        }
        state.withLock { s in
            for (p, value, version) in got where s.reads[p] == nil {
                s.reads[p] = ReadValue(value: value, version: version)
            }
        }
        // What this transaction saw first stays what it sees (a concurrent fill may differ).
        let seen = state.withLock { s in missing.map { ($0, s.reads[$0]?.value) } }
        for (p, v) in seen { if let v { out[p] = v } }
        return out
    }

    @_specialize(where B == EmbeddedBackend)
    @_specialize(where B == HTTPBackend)
    func write(_ ptr: String, _ value: JSONValue) async throws {
        try PointerID.validate(ptr)
        guard value.isWellFormed else {
            // Written as it is, a bad number's text would corrupt the request around it (and,
            // batched, the other transactions' requests): refuse it here, as a node would.
            throw ClientError.server(status: 400, code: "bad_json", message: "a value to write for \(ptr) has a number that is not JSON", retryable: false)
        }
        buffer(ptr, value)
    }

    func delete(_ ptr: String) async throws {
        try PointerID.validate(ptr)
        buffer(ptr, nil)
    }

    private func buffer(_ ptr: String, _ value: JSONValue?) {
        state.withLock { s in
            // `.some`: assigning nil itself would remove the key instead of recording a delete.
            s.writes[ptr] = .some(value)
        }
    }

    /// Ids are 128 random bits (`o.` and 26 base-32 digits): unique without asking a node,
    /// so an abandoned `orElse` branch or a retried body leaves nothing behind.
    func allocate(_ value: JSONValue) async throws -> String {
        let id = PointerID.random()
        try await write(id, value)
        return id
    }

    func retry() async throws -> Never {
        throw RetrySignal()
    }

    func orElse<T: Sendable>(
        _ first: @Sendable (any Transaction) async throws -> T,
        _ second: @Sendable (any Transaction) async throws -> T
    ) async throws -> T {
        let checkpoint = state.withLock { $0.writes }
        do {
            return try await first(self)
        } catch is RetrySignal {
            // The first branch's writes are discarded; its reads stay in the read set.
            state.withLock { $0.writes = checkpoint }
            return try await second(self)
        }
    }

    /// What the body read, to watch when it calls `retry()`.
    var readVersions: [(String, Timestamp?)] {
        state.withLock { s in s.reads.map { ($0.key, $0.value.version) } }
    }

    /// Commits; answers the commit timestamp (the snapshot for a read-only body).
    @_specialize(where B == EmbeddedBackend)
    @_specialize(where B == HTTPBackend)
    func commit() async throws -> Timestamp {
        if let cache { return try await commitExpecting(cache) }
        let handle = self.handle
        let (rv, writes) = state.withLock { s in
            (s.rv, s.writes.map { ($0.key, $0.value?.compactText) })
        }
        guard let handle else {
            if writes.isEmpty { return .zero }
            return try await commitBlind(writes)
        }
        if writes.isEmpty {
            // Read-only: serialized at its snapshot; release the node's state.
            _ = try await backend.commit(handle, writes: [])
            return rv ?? .zero
        }
        return try await backend.commit(handle, writes: writes)
    }

    /// A body that only wrote: one round trip under a client-chosen id, so that a lost answer
    /// is resolved by asking for that id (`atomically` does), never by writing again. A
    /// backend without client ids commits blind.
    private func commitBlind(_ writes: [(String, String?)]) async throws -> Timestamp {
        let id = ClientTxnID.make()
        state.withLock { $0.clientID = id }
        let outcome: ExpectingOutcome
        do {
            outcome = try await backend.commitExpecting(id: id, expect: [], writes: writes)
        } catch let e as ClientError where e.code == "unsupported" {
            state.withLock { $0.clientID = nil }
            return try await backend.commitBlind(writes: writes)
        }
        switch outcome {
        case .committed(let ts, let attempts):
            if attempts > 1 { state.withLock { $0.nodeRetries = attempts - 1 } }
            return ts
        case .stale:
            // Nothing was expected, so nothing can be stale: a node that says so misbehaves.
            throw ClientError.server(status: 412, code: "expectation_failed", message: "a write-only commit was refused as stale", retryable: true)
        }
    }

    /// Cache mode: one round trip that checks every version read and writes. A failed check
    /// puts the current values the node answers in the cache, so the next attempt runs on
    /// them without a read of its own; any other conflict drops what was read.
    private func commitExpecting(_ cache: ReadCache) async throws -> Timestamp {
        let id = ClientTxnID.make()
        let (expect, writes) = state.withLock { s in
            s.clientID = id
            return (s.reads.map { ($0.key, $0.value.version) }, s.writes)
        }
        if expect.isEmpty && writes.isEmpty { return .zero }
        let outcome: ExpectingOutcome
        do {
            outcome = try await backend.commitExpecting(id: id, expect: expect, writes: writes.map { ($0.0, $0.1?.compactText) })
        } catch let e as ClientError where e.retryable {
            cache.invalidate(expect.map(\.0))
            throw e
        }
        switch outcome {
        case .committed(let ts, let attempts):
            if attempts > 1 { state.withLock { $0.nodeRetries = attempts - 1 } }
            for (p, v) in writes { cache.store(p, value: v, version: v == nil ? nil : ts, stamp: ts) }
            return ts
        case .stale(let current):
            // The node said what is current now: the next attempt starts from it, with no
            // read of its own. (A newer version was committed after the stale one was known
            // current, so its version is a safe stamp; an absent one is simply forgotten.)
            if current.isEmpty {
                // A node that does not say which: forget everything this attempt read.
                cache.invalidate(expect.map(\.0))
            }
            for (p, r) in current {
                if let v = r.version { cache.store(p, value: r.value, version: v, stamp: v) } else { cache.invalidate([p]) }
            }
            throw ClientError.server(status: 412, code: "expectation_failed", message: "a version read is no longer current", retryable: true)
        }
    }

    /// Cache mode: forgets what this attempt read (after `retry()` or an error of the body,
    /// which may have come from values that were never current together).
    func dropCachedReads() {
        guard let cache else { return }
        cache.invalidate(state.withLock { Array($0.reads.keys) })
    }

    var clientID: String? { state.withLock { $0.clientID } }

    /// Conflicts the node retried itself before the commit went through.
    var nodeRetries: Int { state.withLock { $0.nodeRetries } }

    /// Every pointer read or written, sorted.
    var touched: [String] {
        state.withLock { s in Set(s.reads.keys).union(s.writes.keys).sorted() }
    }

    func abandon() async {
        let running: Bool = begin.withLock { b in
            if case .running = b { return true }
            return false
        }
        if running { _ = try? await begun() }
        if let h = handle { await backend.abort(h) }
    }

    var handle: B.Handle? {
        begin.withLock { b in
            if case .done(let h) = b { return h }
            return nil
        }
    }
}
