import Logging
import RestmCore
import ServiceLifecycle

extension Node {
    /// One sweep: aborts transactions idle past their timeout or older than the lifetime
    /// cap, and keeps the durable ceiling ahead of the clock.
    public func sweep() async {
        let now = physicalMillis
        for t in registry.allActive() {
            let (status, last) = t.state.withLock { ($0.status, $0.lastActiveMillis) }
            guard status == .active else { continue }
            if now >= last + t.idleTimeoutMillis {
                abort(t, reason: "idle for more than \(t.idleTimeoutMillis) ms")
                metrics.count("txn_timed_out")
                logger.info("transaction timed out", metadata: ["restm.txn": "\(t.id)", "restm.reason": "idle"])
            } else if now >= t.createdMillis + UInt64(limits.txnLifetimeMs) {
                abort(t, reason: "open for more than \(limits.txnLifetimeMs) ms")
                metrics.count("txn_timed_out")
                logger.info("transaction timed out", metadata: ["restm.txn": "\(t.id)", "restm.reason": "lifetime"])
            }
        }
        if now >= history.lastMillis + 1_000 { sampleHistory(now) }
        if state == .running {
            do {
                try await ensureCeiling()
            } catch {
                logger.error("cannot raise the timestamp ceiling", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Graceful shutdown: new work is refused (503), transactions that have not sent their
    /// commit are aborted, commits already sent finish and are durable, then the store
    /// closes. Bounded by `timeout`.
    public func shutdown(timeout: Duration = .seconds(7)) async {
        guard shutdownStarted.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
            return
        }
        refuseNewWork()
        logger.info("shutting down")
        activity.add("shutdown started")
        for t in registry.allActive() { abort(t, reason: "the node is shutting down") }
        let deadline = ContinuousClock.now + timeout
        // Quiet twice in a row: a commit that passed its running check just before the
        // state flipped has then surely counted itself in.
        var quiet = 0
        while quiet < 2, ContinuousClock.now < deadline {
            quiet = inflightCommits.load(ordering: .relaxed) == 0 && writer.isIdle ? quiet + 1 : 0
            try? await Task.sleep(for: .milliseconds(5))
        }
        writer.close()
        // Let a drain that is writing its last batch finish.
        while !writer.isIdle, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
        store.close()
        lifecycle.store(Lifecycle.stopped.rawValue, ordering: .releasing)
        logger.info("shut down", metadata: ["restm.inflight": "\(inflightCommits.load(ordering: .relaxed))"])
    }

    /// From now on new transactions and requests answer 503 `shutting_down`; the shutdown
    /// itself follows (called first by `POST /sys/shutdown`, so nothing slips in between).
    public func refuseNewWork() {
        _ = lifecycle.compareExchange(
            expected: Lifecycle.running.rawValue, desired: Lifecycle.shuttingDown.rawValue, ordering: .acquiringAndReleasing)
        watches.wakeAll()
    }

    public var openTransactions: Int { registry.activeCount }
    public var inflightCommitCount: Int { inflightCommits.load(ordering: .relaxed) }
    public var commitQueueDepth: Int { writer.queueDepth }

    func sampleHistory(_ now: UInt64) {
        let c = metrics.snapshot().counters
        let totals = shardTotals
        history.add(
            MetricsHistory.Sample(
                millis: now, commits: c["txn_committed"] ?? 0, readOnlyCommits: c["txn_committed_readonly"] ?? 0,
                conflicts: c["txn_conflicted"] ?? 0, versionsPruned: gcStatus.versionsPruned,
                openTxns: openTransactions, pointersInMemory: totals.resident, valueBytesInMemory: residentBytes,
                commitQueueDepth: commitQueueDepth))
    }

    /// Bytes of values held in memory over all shards.
    public var residentBytes: Int {
        var n = 0
        for s in shards { s.step { n += $0.residentBytes } }
        return n
    }

    /// Totals over shards: resident pointers, timestamp-cache entries, intents, waiters.
    public var shardTotals: (resident: Int, cached: Int, intents: Int, waiters: Int) {
        var r = (0, 0, 0, 0)
        for s in shards {
            s.step { e in
                r.0 += e.residentCount
                r.1 += e.timestampCacheCount
                r.2 += e.intentCount
                r.3 += e.waiterCount
            }
        }
        return r
    }
}

/// Runs a node's background sweeps and shuts it down gracefully with the service group
/// (swift-service-lifecycle).
public struct NodeService: Service {
    public let node: Node
    public let interval: Duration

    public init(node: Node, interval: Duration = .milliseconds(250)) {
        self.node = node
        self.interval = interval
    }

    public func run() async throws {
        let node = self.node
        let interval = self.interval
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    while !Task.isCancelled {
                        await node.sweep()
                        try? await Task.sleep(for: interval)
                    }
                }
                // Version GC in its own loop, so a long step never delays the ceiling.
                group.addTask {
                    while !Task.isCancelled {
                        await node.gcTick()
                        // Behind (a pass in progress): keep going, leaving room for commits.
                        try? await Task.sleep(for: .milliseconds(node.gcStatus.passing ? 2 : 100))
                    }
                }
            }
        }
        await node.shutdown()
    }
}
