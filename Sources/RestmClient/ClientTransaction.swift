import RestmCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A transaction body's handle: reads go to the node (the first ones together with begin),
/// writes are buffered here and sent with the commit, so a read-modify-write costs two
/// round trips and a write-only body one.
final class ClientTransaction<B: TransactionBackend>: Transaction {
    struct State {
        /// The one begin of this transaction; concurrent first reads share it.
        var beginTask: Task<(handle: B.Handle, rv: Timestamp, values: [String: ReadValue]), any Error>?
        var handle: B.Handle?
        var rv: Timestamp?
        /// Every pointer read, with the version seen (nil: absent). Kept across `orElse`.
        var reads: [String: Timestamp?] = [:]
        var values: [String: JSONValue] = [:]
        /// Buffered writes in order; nil deletes.
        var writes: [(String, JSONValue?)] = []
        var writeIndex: [String: Int] = [:]
    }

    /// Pointers per read request (`Limits.batchReadMax` of a node).
    static var batchMax: Int { 1_000 }

    let backend: B
    let priority: Timestamp?
    let state = Mutex(State())

    init(backend: B, priority: Timestamp?) {
        self.backend = backend
        self.priority = priority
    }

    var rv: Timestamp? { state.withLock { $0.rv } }

    private func own(_ ptr: String) -> (found: Bool, value: JSONValue?) {
        state.withLock { s in
            if let i = s.writeIndex[ptr] { return (true, s.writes[i].1) }
            if let v = s.reads[ptr] {
                return (true, v == nil ? nil : s.values[ptr])
            }
            return (false, nil)
        }
    }

    func read(_ ptr: String) async throws -> JSONValue? {
        try await read([ptr])[ptr]
    }

    func read(_ ptrs: [String]) async throws -> [String: JSONValue] {
        var out: [String: JSONValue] = [:]
        var missing: [String] = []
        var seen = Set<String>()
        for p in ptrs {
            let o = own(p)
            if o.found {
                if let v = o.value { out[p] = v }
            } else if seen.insert(p).inserted {
                missing.append(p)
            }
        }
        guard !missing.isEmpty else { return out }
        let backend = self.backend
        let priority = self.priority
        let wanted = missing
        let (task, mine) = state.withLock { s in
            if let t = s.beginTask { return (t, false) }
            let first = Array(wanted.prefix(Self.batchMax))
            let t = Task { try await backend.begin(priority: priority, reads: first) }
            s.beginTask = t
            return (t, true)
        }
        let begun = try await task.value
        state.withLock { s in
            s.handle = begun.handle
            s.rv = begun.rv
        }
        // A node answers at most `batchReadMax` pointers per request (API.md's limit).
        var fetched: [String: ReadValue] = mine ? begun.values : [:]
        var rest = mine ? Array(missing.dropFirst(Self.batchMax)) : missing
        while !rest.isEmpty {
            let part = Array(rest.prefix(Self.batchMax))
            rest.removeFirst(part.count)
            for (p, r) in try await backend.read(begun.handle, part) { fetched[p] = r }
        }
        state.withLock { s in
            for p in missing {
                let r = fetched[p] ?? ReadValue(value: nil, version: nil)
                if s.reads[p] == nil { s.reads[p] = .some(r.version) }
                if let v = r.value { s.values[p] = v }
            }
        }
        for p in missing { if let v = fetched[p]?.value { out[p] = v } }
        return out
    }

    func write(_ ptr: String, _ value: JSONValue) async throws {
        try PointerID.validate(ptr)
        buffer(ptr, value)
    }

    func delete(_ ptr: String) async throws {
        try PointerID.validate(ptr)
        buffer(ptr, nil)
    }

    private func buffer(_ ptr: String, _ value: JSONValue?) {
        state.withLock { s in
            if let i = s.writeIndex[ptr] {
                s.writes[i].1 = value
            } else {
                s.writeIndex[ptr] = s.writes.count
                s.writes.append((ptr, value))
            }
        }
    }

    /// Ids are 128 random bits (`o.` and 26 base-32 digits): unique without asking a node,
    /// so an abandoned `orElse` branch or a retried body leaves nothing behind.
    func allocate(_ value: JSONValue) async throws -> String {
        let id = PointerID.random()
        buffer(id, value)
        return id
    }

    func retry() async throws -> Never {
        throw RetrySignal()
    }

    func orElse<T: Sendable>(
        _ first: @Sendable (any Transaction) async throws -> T,
        _ second: @Sendable (any Transaction) async throws -> T
    ) async throws -> T {
        let checkpoint = state.withLock { ($0.writes, $0.writeIndex) }
        do {
            return try await first(self)
        } catch is RetrySignal {
            // The first branch's writes are discarded; its reads stay in the read set.
            state.withLock { s in
                s.writes = checkpoint.0
                s.writeIndex = checkpoint.1
            }
            return try await second(self)
        }
    }

    /// What the body read, to watch when it calls `retry()`.
    var readVersions: [(String, Timestamp?)] {
        state.withLock { s in s.reads.map { ($0.key, $0.value) } }
    }

    /// Commits; answers the commit timestamp (the snapshot for a read-only body).
    func commit() async throws -> Timestamp {
        let (handle, rv, writes) = state.withLock { s in
            (s.handle, s.rv, s.writes.map { ($0.0, $0.1?.compactText) })
        }
        guard let handle else {
            if writes.isEmpty { return .zero }
            return try await backend.commitBlind(writes: writes)
        }
        if writes.isEmpty {
            // Read-only: serialized at its snapshot; release the node's state.
            _ = try await backend.commit(handle, writes: [])
            return rv ?? .zero
        }
        return try await backend.commit(handle, writes: writes)
    }

    func abandon() async {
        if let t = state.withLock({ $0.beginTask }), let begun = try? await t.value { await backend.abort(begun.handle) }
    }

    var handle: B.Handle? { state.withLock { $0.handle } }
}
