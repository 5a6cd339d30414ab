import RestmCore
import RestmStore

/// What a one-shot transaction (`POST /txn`) asks.
public struct OneShotRequest: Sendable {
    public var reads: [String] = []
    /// Expected versions: nil expects the pointer absent.
    public var expect: [(String, Timestamp?)] = []
    public var writes: [(String, String?)] = []
    /// A client-chosen id (`ClientTxnID`): the transaction is then known by it to
    /// `GET /txn/{id}`, and a second request with the same id does not run again.
    public var txn: String?

    /// The pointers its retries take turns on: every pointer it reads, expects or writes (a
    /// pointer may come more than once); none when it writes nothing (it cannot conflict at
    /// commit, and must not hold up writers).
    var touched: [String] { writes.isEmpty ? [] : reads + expect.map(\.0) + writes.map(\.0) }

    public init(reads: [String] = [], expect: [(String, Timestamp?)] = [], writes: [(String, String?)] = [], txn: String? = nil) {
        self.reads = reads
        self.expect = expect
        self.writes = writes
        self.txn = txn
    }
}

public struct OneShotResult: Sendable {
    public var ts: Timestamp
    public var values: [(String, ReadResult)]
    /// How many times the node ran it: more than 1 when it retried conflicts itself.
    public var attempts = 1
}

extension Node {
    /// Runs `body` as its own transaction, retrying conflicts inside the node until the
    /// deadline (taking turns on `touching`, or backing off); only then does a conflict reach
    /// the caller.
    func autoRetry<T: Sendable>(id: String? = nil, touching: [String], _ body: (Txn) async throws -> T) async throws -> T {
        let deadline = physicalMillis + UInt64(limits.autoRetryDeadlineMs)
        // Retries take turns on the pointers they touch (all at once, in arrival order), so
        // that writers colliding on a hot pointer go one after another instead of failing
        // each other until one gives up; an attempt touching pointers in turn joins the line
        // even before it has conflicted. Larger transactions, and attempts that find the
        // line full, retry without turns, backing off.
        var turns: [String]?  // `touching` without repeats, made when first needed
        let queues = !touching.isEmpty && (touching.count <= LocalLocks.pointersMax || Set(touching).count <= LocalLocks.pointersMax)
        var attempt = 0
        var priority: Timestamp?
        while true {
            attempt += 1
            var held: [String]?
            if queues, attempt > 1 || retryTurns.anyHeld(touching) {
                let mine = turns ?? Self.distinct(touching.map { ($0, ()) }).map(\.0)
                turns = mine
                let left = Int(deadline) - Int(physicalMillis)
                let granted = await retryTurns.acquire(
                    mine, until: ContinuousClock.now + .milliseconds(max(0, left)), waitersMax: limits.retryTurnWaitersMax)
                if granted {
                    held = mine
                } else {
                    try Task.checkCancellation()
                    if physicalMillis >= deadline {
                        throw RestmError.conflict("waited past the retry deadline for a turn on contended pointers (\(attempt - 1) attempts)")
                    }
                    // The line is full: go without a turn.
                }
            }
            defer { if let held { retryTurns.release(held) } }
            let t = try await begin(priority: priority, register: false, id: id)
            priority = priority ?? t.rv
            do {
                return try await body(t)
            } catch let e as RestmError where e.code == .conflict {
                abort(t, reason: "conflict")
                if physicalMillis >= deadline {
                    throw RestmError.conflict("\(e.message) (still conflicting after \(attempt) attempts)")
                }
                // With others in line, the next attempt waits behind them. Alone (a conflict
                // with something outside the line, such as an intent of a commit in flight)
                // or without turns, it backs off.
                if held == nil || retryTurns.waitingCount == 0 {
                    let capMicros = min(50_000, 200 << min(attempt, 8))
                    try await Task.sleep(for: .microseconds(Int.random(in: capMicros / 2...capMicros)))
                }
            } catch {
                abort(t, reason: "failed")
                throw error
            }
        }
    }

    /// Reads `ptr` now (or as of `at`), outside any transaction. nil: absent.
    public func get(_ ptr: String, at: Timestamp? = nil) async throws -> Version? {
        try PointerID.validate(ptr)
        try ensureRunning()
        let rv: Timestamp
        if let at {
            let now = tick()
            guard at <= now else { throw RestmError(.badTimestamp, "cannot read at a time later than now") }
            let oldest = physicalMillis > UInt64(limits.retentionMs) ? physicalMillis - UInt64(limits.retentionMs) : 0
            guard at.wallMillis >= oldest else {
                throw RestmError(.pruned, "\(at.text) is older than the retention window of \(limits.retentionMs / 1000) s")
            }
            rv = at
        } else {
            try await ensureCeiling()
            rv = tick()
        }
        return try await metrics.time("ptr", "get") {
            try await readVersion(ptr, at: rv, txn: "-")
        }
    }

    /// Writes `ptr` (nil deletes) as its own transaction; with `ifMatch`, only if that is
    /// still its current version (else 412).
    public func put(_ ptr: String, value: String?, ifMatch: Timestamp? = nil) async throws -> Timestamp {
        try await put(ptr, value: value, when: ifMatch.map { .versionIn([$0]) })
    }

    /// Writes `ptr` (nil deletes) as its own transaction, only if `condition` holds of its
    /// current version (else 412 with the current version), checked in the same transaction.
    public func put(_ ptr: String, value: String?, when condition: VersionCondition?) async throws -> Timestamp {
        try PointerID.validate(ptr)
        return try await autoRetry(touching: [ptr]) { t in
            if let condition {
                let current = try await self.read(t, ptr)
                guard condition.holds(for: current.version) else {
                    throw RestmError(
                        .preconditionFailed, "the current version of \(ptr) is \(current.version?.text ?? "none"), not \(condition)",
                        extra: [("current", current.version.map { JSONWriter.quoted($0.text) } ?? "null")])
                }
            }
            try self.write(t, ptr, value: value)
            return try await self.commit(t)
        }
    }

    /// Allocates a fresh pointer id holding `value` (JSON null if none): inside transaction
    /// `t` if given, else as its own transaction. The id is checked absent in the same
    /// transaction, so it is unique even among ids clients chose.
    public func allocate(value: String?, in t: Txn? = nil) async throws -> String {
        let initial = value ?? "null"
        if let v = value, v.utf8.count > limits.valueBytesMax {
            throw RestmError(.tooLarge, "a value may be at most \(limits.valueBytesMax) bytes")
        }
        func pick(_ t: Txn) async throws -> String {
            for _ in 0..<16 {
                let id = "p\(configuration.nodeID).\(incarnation).\(nextSequence())"
                if try await read(t, id).version == nil {
                    try write(t, id, value: initial)
                    return id
                }
            }
            throw RestmError.conflict("could not find a free pointer id")
        }
        if let t { return try await pick(t) }
        // Fresh ids collide with nothing: no turns to take.
        return try await autoRetry(touching: []) { t in
            let id = try await pick(t)
            _ = try await self.commit(t)
            return id
        }
    }

    /// A one-shot transaction: reads, expectations, writes, all at once (`POST /txn`).
    public func oneShot(_ req: OneShotRequest) async throws -> OneShotResult {
        // A pointer read or expected twice is once (the version expected last counts): the
        // answer is a JSON object, which must not name it twice.
        var req = req
        if Self.hasDuplicates(req.reads) { req.reads = Self.distinct(req.reads.map { ($0, ()) }).map(\.0) }
        if Self.hasDuplicates(req.expect.map(\.0)) {
            // The same expectation twice is one; two different versions for one pointer can
            // never both hold, and dropping either would commit on a check not made.
            var first: [String: Timestamp?] = [:]
            for (p, v) in req.expect {
                if let seen = first[p], seen != v {
                    throw RestmError(.badRequest, "expect names \(p) twice, with two different versions")
                }
                first[p] = v
            }
            req.expect = Self.distinct(req.expect)
        }
        for p in req.reads { try PointerID.validate(p) }
        for (p, _) in req.expect { try PointerID.validate(p) }
        for (p, _) in req.writes { try PointerID.validate(p) }
        if req.reads.count + req.expect.count + req.writes.count > limits.pointersPerTxnMax {
            throw RestmError(.tooLarge, "a transaction may touch at most \(limits.pointersPerTxnMax) pointers")
        }
        guard let cid = req.txn else {
            var attempt = 0
            var r = try await autoRetry(touching: req.touched) { t in
                attempt += 1
                return try await self.oneShotAttempt(t, req)
            }
            r.attempts = attempt
            return r
        }
        guard ClientTxnID.isValid(cid) else {
            throw RestmError(.badRequest, "txn must be a c followed by 16 to 64 of A-Z a-z 0-9 _ -")
        }
        try ensureRunning()
        // The id is claimed for the whole request: `GET /txn/{id}` answers "active" while it
        // runs (as committing: no idle timeout applies), then its final status.
        let claim = Txn(
            id: cid, rv: clockNow, priority: nil, readOnly: false, nowMillis: physicalMillis,
            idleTimeoutMillis: UInt64(limits.txnIdleTimeoutMs), registered: true)
        claim.state.withLock { $0.status = .committing }
        if let done = try registry.claim(claim) {
            // The same id again (a client resending): the first outcome, not a second run.
            guard case .committed(let ts) = done.status else {
                throw RestmError(.txnNotActive, "transaction \(cid) has finished without committing")
            }
            return OneShotResult(ts: ts, values: [])
        }
        if committingTxns.withLock({ $0.contains(cid) }) {
            // An earlier request under this id ended `outcome_unknown` and its commit is still
            // settling (its intents held): running this one could only conflict with it, and
            // its failure would then be remembered as this id's outcome. The store decides.
            registry.forget(cid)
            throw RestmError(.outcomeUnknown, "an earlier request under \(cid) is still settling; ask GET /txn/\(cid) later")
        }
        // Runs of this request (the answer says how many when the node retried).
        var attempt = 0
        do {
            // A retry first asks the store whether the id already has a record: after a
            // restart the same request may come again (its first run committed), and a
            // reader may have resolved a stalled attempt's intents as aborted. Either way the
            // store refuses a second record, and the recorded outcome is the answer.
            var r = try await autoRetry(id: cid, touching: req.touched) { t in
                attempt += 1
                if attempt > 1, let known = try await storeCall("record", { try self.store.record(of: cid) }) {
                    throw AlreadyRecorded(status: known)
                }
                return try await self.oneShotAttempt(t, req)
            }
            r.attempts = attempt
            registry.finish(claim, summary: TxnSummary(id: cid, rv: r.ts, status: .committed(r.ts), reads: req.reads.count + req.expect.count, writes: req.writes.count))
            return r
        } catch let known as AlreadyRecorded {
            switch known.status {
            case .committed(let ts):
                registry.finish(claim, summary: TxnSummary(id: cid, rv: ts, status: .committed(ts), reads: 0, writes: 0))
                return OneShotResult(ts: ts, values: [], attempts: max(1, attempt))
            case .aborted:
                registry.finish(claim, summary: TxnSummary(id: cid, rv: .zero, status: .aborted("resolved as aborted"), reads: 0, writes: 0))
                throw RestmError(.txnNotActive, "transaction \(cid) was resolved as aborted")
            }
        } catch let e as RestmError where e.code != .outcomeUnknown && e.code != .internal {
            // The same request may be here a second time (after a restart, or once the node
            // forgot the id), failing against its own first run: the record answers.
            let recorded: TxnRecordStatus?
            do {
                recorded = try await storeCall("record", { try self.store.record(of: cid) })
            } catch {
                // The store cannot say whether an earlier run (before a restart, say)
                // committed: neither this failure nor "not committed" is known to be the
                // id's outcome. `status(of:)` will ask the store.
                registry.forget(cid)
                throw RestmError(.outcomeUnknown, "\(e.message); whether an earlier request under \(cid) committed is not known: ask GET /txn/\(cid) later")
            }
            if case .committed(let ts)? = recorded {
                registry.finish(claim, summary: TxnSummary(id: cid, rv: ts, status: .committed(ts), reads: 0, writes: 0))
                return OneShotResult(ts: ts, values: [], attempts: max(1, attempt))
            }
            if e.code == .tooLarge || e.code == .overloaded {
                // Refused before its commit (an answer too large, a full batch budget, a
                // full wait queue): nothing was written, and the same request may be sent
                // again under the same id, as the error says.
                registry.forget(cid)
                throw e
            }
            registry.finish(claim, summary: TxnSummary(id: cid, rv: .zero, status: .aborted(e.message), reads: 0, writes: 0))
            throw e
        } catch {
            // The fate is the store's to tell: `status(of:)` reads the record, or fences.
            registry.forget(cid)
            throw error
        }
    }

    /// Whether some id appears twice (without allocating for the few ids of a usual
    /// one-shot).
    static func hasDuplicates(_ ids: [String]) -> Bool {
        guard ids.count > 1 else { return false }
        guard ids.count > 16 else {
            for i in 1..<ids.count where ids[..<i].contains(ids[i]) { return true }
            return false
        }
        return Set(ids).count < ids.count
    }

    private struct AlreadyRecorded: Error {
        var status: TxnRecordStatus
    }

    private func oneShotAttempt(_ t: Txn, _ req: OneShotRequest) async throws -> OneShotResult {
        var budget = AnswerBudget(max: limits.answerBytesMax)
        do {
            return try await oneShotAttempt(t, req, &budget)
        } catch let e as RestmError where e.code == .expectationFailed {
            throw e  // a 412 carries what it charged
        } catch {
            // No answer of this attempt is sent (it runs again, or fails without values).
            budget.refund()
            throw error
        }
    }

    private func oneShotAttempt(_ t: Txn, _ req: OneShotRequest, _ budget: inout AnswerBudget) async throws -> OneShotResult {
        var values: [(String, ReadResult)] = []
        for p in req.reads {
            let r = try await self.read(t, p)
            try budget.charge(p, r.value)  // before the commit: a refused answer changes nothing
            values.append((p, r))
        }
        var mismatched: [(String, ReadResult)] = []
        var valuesFit = true
        for (p, expected) in req.expect {
            let r = try await self.read(t, p)
            guard r.version != expected else { continue }
            // The 412's `values` only while they fit the answer's budget; past it, the
            // versions alone (and no value is kept in memory).
            if valuesFit {
                do { try budget.charge(p, r.value) } catch { valuesFit = false }
            }
            mismatched.append((p, valuesFit ? r : ReadResult(value: nil, version: r.version)))
        }
        if !mismatched.isEmpty {
            // `current` (API.md) has the versions; `values` (an extension) the values too, as
            // of one snapshot, so that a client can re-run without reading them again —
            // unless they would pass the answer's budget: then the client reads them.
            var current = "{"
            var values = "{"
            for (i, (p, r)) in mismatched.enumerated() {
                if i > 0 { current += "," }
                JSONWriter.appendString(p, to: &current)
                current += ":" + (r.version.map { JSONWriter.quoted($0.text) } ?? "null")
                guard valuesFit else { continue }
                if i > 0 { values += "," }
                JSONWriter.appendString(p, to: &values)
                values += ":{\"value\":" + (r.value ?? "null") + ",\"version\":" + (r.version.map { JSONWriter.quoted($0.text) } ?? "null") + "}"
            }
            current += "}"
            values += "}"
            throw RestmError(
                .expectationFailed, "\(mismatched.count) pointer(s) are not at the expected version",
                extra: valuesFit ? [("current", current), ("values", values)] : [("current", current)])
        }
        for (p, v) in req.writes { try self.write(t, p, value: v) }
        let ts = try await self.commit(t)
        return OneShotResult(ts: ts, values: values)
    }

    /// Versions of `ptr`, newest first, strictly older than `before` if given: at most
    /// `limit`, and fewer when their values would pass `answerBytesMax` (at least one).
    public func history(_ ptr: String, before: Timestamp?, limit: Int) async throws -> [Version] {
        try await historyPage(ptr, before: before, limit: limit).versions
    }

    /// A page of `history`, and `next`: the `before` of the next page, nil when the history
    /// has no more versions (a page that is full, or cut short by `answerBytesMax`, has a
    /// `next`; the page after it may be empty). Loaded from the store in chunks of 32, so a
    /// page of large values is never all in memory.
    public func historyPage(_ ptr: String, before: Timestamp?, limit: Int) async throws -> (versions: [Version], next: Timestamp?) {
        try PointerID.validate(ptr)
        let n = max(1, min(limit, limits.pageItemsMax))
        if let before {
            let oldest = physicalMillis > UInt64(limits.retentionMs) ? physicalMillis - UInt64(limits.retentionMs) : 0
            guard before.wallMillis >= oldest else {
                throw RestmError(.pruned, "\(before.text) is older than the retention window of \(limits.retentionMs / 1000) s")
            }
        }
        var out: [Version] = []
        var bytes = 0
        var cursor = before
        while out.count < n {
            let chunk = min(n - out.count, 32)
            let from = cursor
            let page = try await storeCall("history") { try self.store.history(ptr, before: from, limit: chunk) }
            for v in page {
                let size = (v.value?.utf8.count ?? 4) + v.txn.utf8.count + 64
                if !out.isEmpty, bytes + size > limits.answerBytesMax { return (out, out.last?.ts) }
                bytes += size
                out.append(v)
            }
            guard page.count == chunk, let last = page.last else { return (out, nil) }
            cursor = last.ts
        }
        return (out, out.last?.ts)
    }

    /// A page of pointer ids by prefix, for browsing (not a transactional read).
    public func list(prefix: String, after: String?, limit: Int) async throws -> (ptrs: [String], next: String?) {
        let n = max(1, min(limit, limits.pageItemsMax))
        let page = try await storeCall("list") { try self.store.list(prefix: prefix, after: after, limit: n + 1) }
        if page.count > n {
            let items = Array(page.prefix(n))
            return (items, items.last)
        }
        return (page, nil)
    }
}

/// A condition on a pointer's current version (an HTTP `If-Match`).
public enum VersionCondition: Sendable, Equatable, CustomStringConvertible {
    /// The pointer exists (`If-Match: *`).
    case exists
    /// Its version is one of these (an empty list never holds).
    case versionIn([Timestamp])

    public func holds(for version: Timestamp?) -> Bool {
        switch self {
        case .exists: return version != nil
        case .versionIn(let tags): return version.map { tags.contains($0) } ?? false
        }
    }

    public var description: String {
        switch self {
        case .exists: return "any version (*)"
        case .versionIn(let tags): return tags.isEmpty ? "a version this node issued" : tags.map(\.text).joined(separator: " or ")
        }
    }
}
