import RestmCore
import RestmStore

/// What a transactional read answers: the value (compact JSON) and its version, both nil
/// when the pointer does not exist at the snapshot. An uncommitted own write has a value
/// and no version.
public struct ReadResult: Sendable, Equatable {
    public var value: String?
    public var version: Timestamp?

    public init(value: String?, version: Timestamp?) {
        self.value = value
        self.version = version
    }
}

extension Node {
    // MARK: begin

    /// Begins a transaction (DESIGN.md step 1). `idleTimeoutMs` nil takes the default.
    public func begin(
        readOnly: Bool = false, idleTimeoutMs: Int? = nil, priority: Timestamp? = nil, register: Bool = true, id given: String? = nil
    ) async throws -> Txn {
        try ensureRunning()
        if let t = idleTimeoutMs, t <= 0 || t > limits.txnIdleTimeoutMsMax {
            throw RestmError(.badRequest, "timeoutMs must be between 1 and \(limits.txnIdleTimeoutMsMax)")
        }
        try await ensureCeiling()
        let rv = tick()
        let id = given ?? TxnID(node: configuration.nodeID, incarnation: incarnation, sequence: nextSequence()).text
        let t = Txn(
            id: id, rv: rv, priority: priority, readOnly: readOnly, nowMillis: physicalMillis,
            idleTimeoutMillis: UInt64(idleTimeoutMs ?? limits.txnIdleTimeoutMs), registered: register)
        if register { try registry.add(t) }
        metrics.count("txn_begun")
        return t
    }

    /// The open transaction `id`, or the error API.md gives for it.
    public func activeTxn(_ id: String) throws -> Txn {
        if ClientTxnID.isValid(id) {
            // A one-shot's id: its transaction runs inside its one request, never continued.
            guard registry.active(id) != nil || registry.finished(id) != nil else {
                throw RestmError(.txnNotFound, "no transaction \(id) on this node")
            }
            throw RestmError(.txnNotActive, "transaction \(id) is a one-shot transaction and cannot be continued")
        }
        if let t = registry.active(id) { return t }
        if registry.finished(id) != nil { throw RestmError(.txnNotActive, "transaction \(id) has finished") }
        throw RestmError(.txnNotFound, "no transaction \(id) on this node")
    }

    // MARK: reads

    /// Reads `ptr` in transaction `t`: its own buffered write, else the snapshot at `rv`.
    public func read(_ t: Txn, _ ptr: String) async throws -> ReadResult {
        try PointerID.validate(ptr)
        let now = physicalMillis
        let own: String?? = try t.state.withLock { s in
            guard s.status == .active else { throw RestmError(.txnNotActive, "transaction \(t.id) is not active") }
            s.lastActiveMillis = now
            if let w = s.writes[ptr] { return .some(w) }
            guard s.reads.count + s.writes.count < limits.pointersPerTxnMax || s.reads.contains(ptr) else {
                throw RestmError(.tooLarge, "a transaction may touch at most \(limits.pointersPerTxnMax) pointers")
            }
            return .none
        }
        if let w = own { return ReadResult(value: w, version: nil) }
        let v = try await readVersion(ptr, at: t.rv, txn: t.id)
        try t.state.withLock { s in
            guard s.status == .active else { throw RestmError(.txnNotActive, "transaction \(t.id) is not active") }
            s.reads.insert(ptr)
            // Read again: the read may have waited for an intent or a store load.
            s.lastActiveMillis = physicalMillis
        }
        return ReadResult(value: v?.value, version: v?.value == nil ? nil : v?.ts)
    }

    /// The newest committed version of `ptr` at or below `rv` (DESIGN.md step 2), after
    /// recording the read in the timestamp cache. A delete is answered as its version with
    /// a nil value; nil means never written.
    func readVersion(_ ptr: String, at rv: Timestamp, txn: String) async throws -> Version? {
        let shard = shard(for: ptr)
        var steps = 0
        // Waits are measured on the monotonic clock; the injected physical clock only
        // names timestamps and judges intent leases. The deadline starts with the first step
        // that is not answered at once (most reads never need it).
        var deadline: ContinuousClock.Instant?
        var loaded: (newest: Version?, generation: UInt64)?
        func remaining() throws -> Duration {
            let end = deadline ?? ContinuousClock.now + .milliseconds(limits.intentWaitMs)
            deadline = end
            let left = ContinuousClock.now.duration(to: end)
            if left <= .zero || steps > 10_000 {
                metrics.count("conflict_\(ConflictCause.waitTimeout.rawValue)")
                throw RestmError.conflict("read of \(ptr) waited too long for a committing transaction")
            }
            return left
        }
        while true {
            steps += 1
            if steps > 1 { _ = try remaining() }
            let nowMillis = physicalMillis
            var answered = shard.readNow(ptr, at: rv, txn: txn, nowMillis: nowMillis, loaded: loaded)
            if answered == nil {
                // Behind a lower intent: wait for it, registered in a locked step.
                let left = try remaining()
                let waitMillis = max(1, Int(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000))
                answered = await shard.read(
                    ptr, at: rv, txn: txn, nowMillis: nowMillis, waitMillis: waitMillis,
                    waitersMax: limits.waitersPerShardMax, loaded: loaded)
            }
            loaded = nil
            guard let step = answered else { continue }
            switch step {
            case .found(let v):
                try checkNotPruned(rv, txn: txn)
                return v
            case .load(let generation):
                let newest = try await storeCall("load") { try self.store.newest(ptr) }
                loaded = (newest, generation)
            case .store:
                let v = try await storeCall("load_at") { try self.store.version(ptr, atOrBefore: rv) }
                try checkNotPruned(rv, txn: txn)
                return v
            case .waited(.woken):
                metrics.count("read_waits")
                continue
            case .waited(.timedOut):
                continue  // the deadline check above answers
            case .tooManyWaiters:
                throw RestmError(.overloaded, "too many reads are waiting on this shard")
            case .expired(let owner):
                try await resolveOrphan(owner, ptr: ptr)
            }
        }
    }

    /// An intent whose lease expired: if its coordinator (this node) still runs the
    /// transaction, wait again; otherwise resolve it through the store (DESIGN.md, Orphaned
    /// intents) and apply or drop it.
    func resolveOrphan(_ owner: String, ptr: String) async throws {
        if committingTxns.withLock({ $0.contains(owner) }) || registry.active(owner) != nil {
            // Its coordinator (this node) still runs it: wait for it rather than resolve.
            try await Task.sleep(for: .milliseconds(5))
            return
        }
        let status = try await storeCall("resolve") { try self.store.resolve(owner, at: self.recordStamp) }
        let shard = shard(for: ptr)
        switch status {
        case .committed(let ts):
            observe(ts)
            shard.stepWaking { e in
                guard e.intent(on: ptr)?.txn == owner else { return [] }
                return e.apply(txn: owner, ct: ts, ptrs: [ptr])
            }
            watches.notify([ptr])
        case .aborted:
            shard.stepWaking { $0.abort(txn: owner, ptrs: [ptr]) }
        }
        activity.add("resolved orphaned intent of \(owner) on a pointer: \(status)")
    }

    // MARK: writes

    /// Buffers a write (`value` nil deletes) in transaction `t`.
    public func write(_ t: Txn, _ ptr: String, value: String?) throws {
        try PointerID.validate(ptr)
        if let v = value, v.utf8.count > limits.valueBytesMax {
            throw RestmError(.tooLarge, "a value may be at most \(limits.valueBytesMax) bytes")
        }
        try t.state.withLock { s in
            guard s.status == .active else { throw RestmError(.txnNotActive, "transaction \(t.id) is not active") }
            if t.readOnly { throw RestmError(.badRequest, "transaction \(t.id) is read-only") }
            if s.writes[ptr] == nil, s.reads.count + s.writes.count >= limits.pointersPerTxnMax {
                throw RestmError(.tooLarge, "a transaction may touch at most \(limits.pointersPerTxnMax) pointers")
            }
            s.writes[ptr] = .some(value)
            s.lastActiveMillis = physicalMillis
        }
    }

    // MARK: abort

    /// Aborts an active transaction. Answers false if it had already finished or is committing.
    @discardableResult
    public func abort(_ t: Txn, reason: String = "aborted by the client") -> Bool {
        let done: Bool = t.state.withLock { s in
            guard s.status == .active else { return false }
            s.status = .aborted(reason)
            return true
        }
        if done, t.registered {
            let c = t.counts
            registry.finish(t, summary: TxnSummary(id: t.id, rv: t.rv, status: .aborted(reason), reads: c.reads, writes: c.writes))
            metrics.count("txn_aborted")
        }
        return done
    }

    // MARK: status

    /// How far ahead of the node's a client's clock may run before an id it made looks
    /// younger than it is: the record retention less this, at most a sixth of it (tests
    /// shrink the retention), is the age past which `status(of:)` no longer fences an id
    /// of the client library's format that has no record.
    var clientClockMarginMs: UInt64 { min(10 * 60_000, UInt64(limits.txnRecordRetentionMs) / 6) }

    /// What `GET /txn/{t}` shows: an open or remembered transaction, else (for ids of this
    /// node's incarnations) the store's record; other ids are not found.
    public func status(of id: String) async throws -> TxnSummary {
        if let t = registry.active(id) {
            let c = t.counts
            return TxnSummary(id: id, rv: t.rv, status: t.status, reads: c.reads, writes: c.writes)
        }
        if let s = registry.finished(id) { return s }
        if ClientTxnID.isValid(id) {
            // A client-chosen id neither running nor remembered: the store's record decides,
            // and a missing one is recorded as aborted, durably, so that a request still on
            // its way can never commit under this id (the store refuses a second record).
            // Records are pruned `txnRecordRetentionMs` after their commit: an id made (by
            // the client library's clock in it) nearly that long ago may have committed and
            // lost its record, so without one the outcome is no longer known. The margin
            // covers a client clock running ahead of the node's; one running behind makes
            // ids look older, which only withholds an answer sooner.
            if let made = ClientTxnID.madeAtMillis(id),
                made + UInt64(limits.txnRecordRetentionMs) < physicalMillis + clientClockMarginMs,
                try await storeCall("record", { try self.store.record(of: id) }) == nil
            {
                throw RestmError(.pruned, "\(id) was made about the record retention (\(limits.txnRecordRetentionMs / 60_000) min) ago or earlier and has no record: its outcome is no longer known")
            }
            let status = try await storeCall("resolve") { try self.store.resolve(id, at: self.recordStamp) }
            let summary: TxnSummary
            switch status {
            case .committed(let ts): summary = TxnSummary(id: id, rv: ts, status: .committed(ts), reads: 0, writes: 0)
            case .aborted: summary = TxnSummary(id: id, rv: .zero, status: .aborted("not committed (unknown to this node)"), reads: 0, writes: 0)
            }
            return registry.fence(summary)
        }
        guard let tid = TxnID(text: id), tid.node == configuration.nodeID, tid.incarnation <= incarnation,
            tid.incarnation < incarnation || tid.sequence <= sequence.load(ordering: .relaxed)
        else {
            throw RestmError(.txnNotFound, "no transaction \(id) on this node")
        }
        // A transaction this node forgot (or a previous incarnation's): resolve it through
        // the store, recording `aborted` if it never committed — unless version GC pruned
        // records up to its sequence: then a missing record proves nothing.
        let known = try await storeCall("record") { try self.store.record(of: id) }
        if known == nil {
            let prefix = "t\(tid.node).\(tid.incarnation)"
            let pruned = try await storeCall("records_pruned") { try self.store.recordsPruned(prefix: prefix) }
            if tid.sequence <= pruned {
                throw RestmError(.pruned, "the record of \(id) is older than the record retention (\(limits.txnRecordRetentionMs / 60_000) min); its outcome is no longer known")
            }
        }
        let status = try await storeCall("resolve") { try self.store.resolve(id, at: self.recordStamp) }
        switch status {
        case .committed(let ts): return TxnSummary(id: id, rv: ts, status: .committed(ts), reads: 0, writes: 0)
        case .aborted: return TxnSummary(id: id, rv: .zero, status: .aborted("not committed"), reads: 0, writes: 0)
        }
    }
}

extension Node {
    /// The open transaction `id`, if any.
    public func registry(active id: String) -> Txn? { ClientTxnID.isValid(id) ? nil : registry.active(id) }

    /// What this node remembers of a finished transaction.
    public func finishedSummary(_ id: String) -> TxnSummary? { registry.finished(id) }

    /// Open transactions, for the explorer.
    public func openTxns() -> [Txn] { registry.allActive() }
}
