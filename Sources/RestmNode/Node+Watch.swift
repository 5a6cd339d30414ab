import RestmCore

extension Node {
    /// Long-poll: answers as soon as some pointer's current version differs from the one
    /// given (nil: absent), with the current value and version of each that differs; an
    /// empty answer at the timeout, or when the waiting task is cancelled (its client left).
    /// A pointer named twice counts once, with the version given last.
    ///
    /// `countingDeletes`: versions compare as the newest version's timestamp, a delete's
    /// included (nil only for a pointer with no version kept), so that a pointer created and
    /// deleted between two looks counts as changed; event streams use it.
    public func watch(_ expected: [(String, Timestamp?)], timeout: Duration, countingDeletes: Bool = false) async throws -> [(String, ReadResult)] {
        for (p, _) in expected { try PointerID.validate(p) }
        let expected = Self.distinct(expected)
        guard !expected.isEmpty else { throw RestmError(.badRequest, "a watch names at least one pointer") }
        guard expected.count <= limits.watchPointersMax else {
            throw RestmError(.tooLarge, "a watch may name at most \(limits.watchPointersMax) pointers")
        }
        try ensureRunning()
        let ptrs = expected.map(\.0)
        var registered: UInt64? = try registerWatcher(ptrs)
        let deadline = ContinuousClock.now + timeout
        defer { if let r = registered { watches.unregister(r) } }
        while true {
            let changed = try await changedPointers(expected, countingDeletes: countingDeletes)
            if !changed.isEmpty { return changed }
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero, let current = registered, !Task.isCancelled else { return [] }
            let fired = await watches.wait(current, timeout: remaining)
            registered = nil
            if !fired || state != .running || Task.isCancelled { return [] }
            // Something was written: register again before re-reading, then compare.
            switch watches.register(ptrs) {
            case .success(let id): registered = id
            case .failure: return try await changedPointers(expected, countingDeletes: countingDeletes)
            }
        }
    }

    /// Registers a watcher of `ptrs`, or throws what a client should be told.
    func registerWatcher(_ ptrs: [String]) throws -> UInt64 {
        switch watches.register(ptrs) {
        case .success(let id): return id
        case .failure(.closed): throw RestmError(.shuttingDown, "the node is shutting down")
        case .failure(.full):
            throw RestmError(
                .overloaded,
                "too many watchers on this node (watchersMax \(limits.watchersMax), watcherBytesMax \(limits.watcherBytesMax)); try again later")
        }
    }

    /// Throws what `watch` would for want of room (a full hub, a node shutting down), so that
    /// an event stream can be refused before it has answered 200.
    public func checkWatcherRoom(_ ptrs: [String]) throws {
        watches.unregister(try registerWatcher(ptrs))
    }

    /// `pairs` with each pointer once, where it first appears, with the value it last had.
    public static func distinct<V>(_ pairs: [(String, V)]) -> [(String, V)] {
        var index: [String: Int] = [:]
        var out: [(String, V)] = []
        for (p, v) in pairs {
            if let i = index[p] {
                out[i].1 = v
            } else {
                index[p] = out.count
                out.append((p, v))
            }
        }
        return out
    }

    /// Pointers whose current version differs from the expected one (`countingDeletes`: see
    /// `watch`; the answer's version is then the newest version's, a delete's included).
    func changedPointers(_ expected: [(String, Timestamp?)], countingDeletes: Bool = false) async throws -> [(String, ReadResult)] {
        try await ensureCeiling()
        let rv = tick()
        var out: [(String, ReadResult)] = []
        for (p, version) in expected {
            let v = try await readVersion(p, at: rv, txn: "-")
            let current = countingDeletes || v?.value != nil ? v?.ts : nil
            if current != version { out.append((p, ReadResult(value: v?.value, version: current))) }
        }
        return out
    }

    /// Where an event stream starts: the time it read at, and each pointer's newest version
    /// there, a delete's included (nil: none kept), as `watch(countingDeletes: true)`
    /// compares them. Changes after `at` are the stream's to report.
    public func eventStart(_ ptrs: [String]) async throws -> (at: Timestamp, versions: [(String, Timestamp?)]) {
        for p in ptrs { try PointerID.validate(p) }
        try await ensureCeiling()
        let rv = tick()
        var out: [(String, Timestamp?)] = []
        for p in ptrs {
            let v = try await readVersion(p, at: rv, txn: "-")
            out.append((p, v?.ts))
        }
        return (rv, out)
    }

    /// The committed versions of `ptr` after `after`, up to and including `upTo`, oldest
    /// first (a delete is a version without a value): what an event stream reports when a
    /// watch tells it the pointer changed, one event per commit. At most `limit` of them,
    /// and fewer when their values would pass `answerBytesMax` (at least one): `complete`
    /// is false when older ones were left out.
    public func versions(of ptr: String, after: Timestamp, upTo: Timestamp, limit: Int) async throws -> (versions: [Version], complete: Bool) {
        // `history` is newest first, before an exclusive bound: start just above `upTo`.
        var cursor: Timestamp? = Timestamp(raw: upTo.raw &+ 1, node: 0)
        var newestFirst: [Version] = []
        var bytes = 0
        // One more than `limit`, to tell "exactly `limit`" from "more".
        while let before = cursor, newestFirst.count <= limit {
            let page = try await historyPage(ptr, before: before, limit: min(32, limit + 1 - newestFirst.count))
            for v in page.versions {
                guard v.ts > after else { return (newestFirst.reversed(), true) }
                if newestFirst.count == limit { return (newestFirst.reversed(), false) }
                let size = (v.value?.utf8.count ?? 4) + 64
                if !newestFirst.isEmpty, bytes + size > limits.answerBytesMax { return (newestFirst.reversed(), false) }
                bytes += size
                newestFirst.append(v)
            }
            cursor = page.next
        }
        // No older version is kept: every one kept is newer than `after` (the pointer was
        // created since, or GC took what came between — it keeps the version current at its
        // cut, so only a stream silent past the retention window could miss one).
        return (newestFirst.reversed(), true)
    }

    public var watcherCount: Int { watches.count }
    /// What the registered watchers' pointer lists cost, against `watcherBytesMax`.
    public var watcherBytes: Int { watches.bytes }
}
