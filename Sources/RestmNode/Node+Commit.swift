import RestmCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import RestmStore

extension Node {
    /// Commits transaction `t`, adding `writes` (value nil deletes) to its buffer first.
    /// Idempotent: committing a committed transaction answers its timestamp again, and a
    /// commit sent while one is in flight joins it. A conflict aborts the transaction.
    public func commit(_ t: Txn, adding writes: [(String, String?)] = []) async throws -> Timestamp {
        for (p, v) in writes {
            try PointerID.validate(p)
            if let v, v.utf8.count > limits.valueBytesMax {
                throw RestmError(.tooLarge, "a value may be at most \(limits.valueBytesMax) bytes")
            }
        }
        enum Start {
            case run(reads: Set<String>, writes: [String: String?])
            case done(Timestamp)
            case join
        }
        let start: Start = try t.state.withLock { s in
            switch s.status {
            case .committed(let ts): return .done(ts)
            case .committing: return .join
            case .aborted: throw RestmError(.txnNotActive, "transaction \(t.id) was aborted")
            case .unknown: throw RestmError(.outcomeUnknown, "the outcome of \(t.id) is not known yet; ask GET /txn/\(t.id) later")
            case .active:
                guard state == .running else { throw RestmError(.shuttingDown, "the node is shutting down") }
                if t.readOnly, !writes.isEmpty { throw RestmError(.badRequest, "transaction \(t.id) is read-only") }
                var merged = s.writes
                for (p, v) in writes { merged[p] = .some(v) }
                if merged.count + s.reads.count > limits.pointersPerTxnMax {
                    throw RestmError(.tooLarge, "a transaction may touch at most \(limits.pointersPerTxnMax) pointers")
                }
                s.writes = merged
                s.status = .committing
                // Counted under the transaction's lock, so a shutdown that aborts the
                // still-active transactions and then waits for this count misses none.
                inflightCommits.wrappingAdd(1, ordering: .relaxed)
                return .run(reads: s.reads, writes: merged)
            }
        }
        switch start {
        case .done(let ts):
            return ts
        case .join:
            let r: Result<Timestamp, RestmError> = await withCheckedContinuation { c in
                let immediate: Result<Timestamp, RestmError>? = t.state.withLock { s in
                    switch s.status {
                    case .committing:
                        s.joiners.append(c)
                        return nil
                    case .committed(let ts): return .success(ts)
                    case .aborted(let why): return .failure(RestmError(.txnNotActive, "transaction \(t.id) was aborted: \(why)"))
                    case .unknown, .active: return .failure(RestmError(.outcomeUnknown, "the outcome of \(t.id) is not known yet"))
                    }
                }
                if let immediate { c.resume(returning: immediate) }
            }
            return try r.get()
        case .run(let reads, let writes):
            committingTxns.withLock { _ = $0.insert(t.id) }
            // Once sent, a commit runs to its end even if the client goes away: nothing it
            // awaits observes task cancellation (store calls and the group-commit queue are
            // continuations), so it runs in the caller's task, without a hop to a new one.
            let result = await runCommit(t, reads: reads, writes: writes)
            inflightCommits.wrappingSubtract(1, ordering: .relaxed)
            if case .failure(let e) = result, e.code == .outcomeUnknown {
                // Still settling in the background: its intents stay alive.
            } else {
                committingTxns.withLock { _ = $0.remove(t.id) }
            }
            let status: Txn.Status
            switch result {
            case .success(let ts): status = .committed(ts)
            case .failure(let e) where e.code == .outcomeUnknown: status = .unknown
            case .failure(let e): status = .aborted(e.message)
            }
            let joiners = t.state.withLock { s in
                s.status = status
                defer { s.joiners = [] }
                return s.joiners
            }
            for j in joiners { j.resume(returning: result) }
            if status != .unknown, t.registered {
                let c = t.counts
                registry.finish(t, summary: TxnSummary(id: t.id, rv: t.rv, status: status, reads: c.reads, writes: c.writes))
            }
            return try result.get()
        }
    }

    struct Participant {
        var shard: Shard
        var reads: [String] = []
        var writes: [PreparedWrite] = []
        var bound = Timestamp.zero
        var prepared = false
    }

    /// Prepare, push, refresh, the commit write, apply (DESIGN.md steps 3–8).
    func runCommit(_ t: Txn, reads: Set<String>, writes: [String: String?]) async -> Result<Timestamp, RestmError> {
        if writes.isEmpty {
            // Read-only: serialized at rv; every read already raised its read timestamp.
            metrics.count("txn_committed_readonly")
            return .success(t.rv)
        }
        let started = ContinuousClock.now
        let result = await commitProtocol(t, reads: reads, writes: writes)
        metrics.record("txn", "commit", success: (try? result.get()) != nil, duration: ContinuousClock.now - started)
        return result
    }

    private func commitProtocol(_ t: Txn, reads: Set<String>, writes: [String: String?]) async -> Result<Timestamp, RestmError> {
        do {
            try await ensureCeiling()
        } catch {
            return .failure(RestmError(.storeFailure, "cannot raise the timestamp ceiling: \(error)"))
        }
        // Participants: every shard read or written, in shard order.
        var byShard: [Int: Participant] = [:]
        for (p, v) in writes {
            let s = shard(for: p)
            byShard[s.index, default: Participant(shard: s)].writes.append(PreparedWrite(ptr: p, value: v, read: reads.contains(p)))
        }
        for p in reads where writes[p] == nil {
            let s = shard(for: p)
            byShard[s.index, default: Participant(shard: s)].reads.append(p)
        }
        var parts = byShard.values.sorted { $0.shard.index < $1.shard.index }
        let lease = physicalMillis + UInt64(limits.intentLeaseMs)
        var ct = t.rv

        // Prepare each participant in one atomic step; a prepare never waits.
        for i in parts.indices {
            var loads = 0
            var loaded: [(String, Version?)] = []
            var loadedAt: UInt64 = 0
            prepareLoop: while true {
                // Pointers just loaded are installed and prepared in the same step, so a
                // busy shard cannot evict them in between.
                let (generation, outcome): (UInt64, ShardState.PrepareOutcome?) = parts[i].shard.step { e in
                    for (p, v) in loaded where !e.install(p, newest: v, generationAtLoad: loadedAt) {
                        return (e.generation, nil)
                    }
                    defer { e.evictIfNeeded() }
                    let v = max(t.rv, self.tick())
                    return (e.generation, e.prepare(txn: t.id, rv: t.rv, reads: parts[i].reads, writes: parts[i].writes, bound: v, leaseExpiryMs: lease))
                }
                var missing: [String] = []
                switch outcome {
                case .prepared(let proposal, let bound):
                    parts[i].prepared = true
                    parts[i].bound = bound
                    ct = max(ct, proposal, bound)
                    break prepareLoop
                case .conflict(let cause, let ptr):
                    abortIntents(t, parts)
                    return .failure(conflict(cause, Self.explain(cause, ptr)))
                case .notResident(let ptrs):
                    missing = ptrs
                case nil:
                    missing = loaded.map(\.0)  // an eviction raced the loads: load again
                }
                loads += 1
                guard loads <= 8 else {
                    abortIntents(t, parts)
                    return .failure(conflict(.evicted, "pointers left memory while preparing"))
                }
                do {
                    loaded = []
                    loadedAt = generation
                    for p in missing {
                        loaded.append((p, try await storeCall("load") { try self.store.newest(p) }))
                    }
                } catch {
                    abortIntents(t, parts)
                    return .failure(error as? RestmError ?? RestmError(.storeFailure, "\(error)"))
                }
            }
        }

        // Push: the commit timestamp is the largest proposal; refresh reads validated lower.
        for p in parts where p.bound < ct && !p.reads.isEmpty {
            if let cause = p.shard.step({ $0.refresh(txn: t.id, rv: t.rv, reads: p.reads, to: ct) }) {
                abortIntents(t, parts)
                return .failure(conflict(cause, "reads changed before the pushed commit timestamp"))
            }
        }

        // Prepare and refresh judged by the versions memory holds; version GC may have pruned
        // what a snapshot below its cut depended on (a delete that made a pointer look never
        // written): refuse such a snapshot rather than validate against pruned history.
        do {
            try checkNotPruned(t.rv, txn: t.id)
        } catch let e as RestmError {
            abortIntents(t, parts)
            return .failure(e)
        } catch {
            abortIntents(t, parts)
            return .failure(RestmError(.internal, "\(error)"))
        }

        // The commit point: one durable store write of the record and every new version.
        // Every id but a client's was issued by this incarnation (`begin`): no record of it
        // can predate this process, and the node resolves only ids it has issued.
        let record = CommitRecord(
            txn: t.id, ts: ct, writes: writes.map { (ptr: $0.key, value: $0.value) }, issuedSinceOpen: !ClientTxnID.isValid(t.id))
        let outcome = await writer.submit(record)
        switch outcome {
        case .success(.committed):
            if let n = configuration.faultKillAfterCommits, durableCommits.add(1, ordering: .relaxed).newValue >= n {
                // Fault injection for tests: die with the commit durable and its answer unsent.
                logger.critical("fault injection: killing the process after a durable commit", metadata: ["restm.txn": "\(t.id)"])
                kill(getpid(), SIGKILL)
            }
            apply(t, ct, parts)
            return .success(ct)
        case .failure(.refused(let why)):
            abortIntents(t, parts)
            return .failure(RestmError(state == .running ? .overloaded : .shuttingDown, why))
        case .success(.alreadyAborted):
            abortIntents(t, parts)
            return .failure(conflict(.refresh, "the transaction was resolved as aborted"))
        case .failure(.failed(let why)):
            // Definitely not written (SQLite rolled the transaction back).
            abortIntents(t, parts)
            logger.error("commit write failed", metadata: ["restm.txn": "\(t.id)", "error": "\(why)"])
            return .failure(RestmError(.storeFailure, "the store refused the commit: \(why)"))
        case .failure(let e):
            // Fate unclear: keep the intents and ask the store for the record.
            logger.error("commit outcome unknown", metadata: ["restm.txn": "\(t.id)", "error": "\(e)"])
            return await settleUnknown(t, ct, parts)
        }
    }

    static func explain(_ cause: ConflictCause, _ ptr: String) -> String {
        switch cause {
        case .writeIntent: return "\(ptr) is being committed by another transaction (\(cause.rawValue))"
        case .writeNewer: return "\(ptr) changed after this transaction read it; first committer wins (\(cause.rawValue))"
        case .readNewer: return "\(ptr) changed after this transaction read it (\(cause.rawValue))"
        case .readIntent: return "\(ptr), which this transaction read, is being written by another one (\(cause.rawValue))"
        default: return "\(cause.rawValue) on \(ptr)"
        }
    }

    private func conflict(_ cause: ConflictCause, _ message: String) -> RestmError {
        metrics.count("conflict_\(cause.rawValue)")
        return RestmError.conflict(message)
    }

    func apply(_ t: Txn, _ ct: Timestamp, _ parts: [Participant]) {
        // Nobody may see the version before the clock has passed it.
        observe(ct)
        for p in parts where !p.writes.isEmpty {
            p.shard.stepWaking { e in
                defer { e.evictIfNeeded() }
                return e.apply(txn: t.id, ct: ct, ptrs: p.writes.map(\.ptr))
            }
        }
        for p in parts where !p.writes.isEmpty { watches.notify(p.writes.map(\.ptr)) }
        metrics.count("txn_committed")
    }

    func abortIntents(_ t: Txn, _ parts: [Participant]) {
        for p in parts where p.prepared && !p.writes.isEmpty {
            p.shard.stepWaking { $0.abort(txn: t.id, ptrs: p.writes.map(\.ptr)) }
        }
        metrics.count("txn_conflicted")
        logger.debug("commit conflicted", metadata: ["restm.txn": "\(t.id)"])
    }

    /// The commit write's fate is unclear: ask the store (resolving absent records as
    /// aborted) a few times; if it cannot answer, keep the intents, answer
    /// `outcome_unknown`, and keep asking in the background.
    private func settleUnknown(_ t: Txn, _ ct: Timestamp, _ parts: [Participant]) async -> Result<Timestamp, RestmError> {
        for attempt in 0..<5 {
            if let status = try? await run({ try self.store.resolve(t.id, at: self.recordStamp) }) {
                switch status {
                case .committed:
                    apply(t, ct, parts)
                    return .success(ct)
                case .aborted:
                    abortIntents(t, parts)
                    return .failure(RestmError(.storeFailure, "the commit write failed and was rolled back"))
                }
            }
            try? await Task.sleep(for: .milliseconds(20 << attempt))
        }
        Task {
            while self.state != .stopped {
                try? await Task.sleep(for: .seconds(1))
                guard self.state != .stopped, let status = try? await self.run({ try self.store.resolve(t.id, at: self.recordStamp) }) else { continue }
                let final: Txn.Status
                switch status {
                case .committed:
                    self.apply(t, ct, parts)
                    final = .committed(ct)
                case .aborted:
                    self.abortIntents(t, parts)
                    final = .aborted("the commit write failed")
                }
                t.state.withLock { $0.status = final }
                self.committingTxns.withLock { _ = $0.remove(t.id) }
                guard t.registered else { return }
                let c = t.counts
                self.registry.finish(t, summary: TxnSummary(id: t.id, rv: t.rv, status: final, reads: c.reads, writes: c.writes))
                return
            }
        }
        return .failure(RestmError(.outcomeUnknown, "the commit of \(t.id) may or may not have happened; ask GET /txn/\(t.id) later"))
    }
}
