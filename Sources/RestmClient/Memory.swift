import RestmCore
import RestmNode
import Synchronization

/// Options of `atomically`.
public struct AtomicOptions: Sendable {
    /// Attempts after conflicts before giving up with `retriesExhausted`.
    public var attemptsMax: Int = 1_000
    /// Total time allowed, retries and `retry()` waits included.
    public var deadline: Duration = .seconds(60)
    /// First backoff after a conflict; it doubles per attempt (jittered) up to `backoffMax`.
    public var backoffBase: Duration = .microseconds(500)
    public var backoffMax: Duration = .milliseconds(100)

    public init() {}
}

/// Counters of one `atomically` call, for benchmarks and tests.
public struct AtomicReport: Sendable {
    /// Runs of the transaction: the body's runs (including one that stepped back to queue
    /// behind a conflicting transaction, or re-ran without the read cache after its body
    /// failed on cached values), plus the conflicts the node retried itself inside an
    /// optimistic commit.
    public var attempts = 0
    /// Conflicts: attempts that failed with a retryable error, here or inside the node.
    public var conflicts = 0
    /// `retry()` waits.
    public var retries = 0
}

/// A transactional memory: runs bodies as serializable transactions, re-running them on
/// conflicts (jittered exponential backoff, shorter for older transactions) and blocking on
/// `retry()` until something they read changes. The same bodies run over HTTP or embedded.
///
///     let memory = TransactionalMemory(backend: try HTTPBackend(url: "http://127.0.0.1:9000"))
///     let total = try await memory.atomically { tx in
///         try await tx.read(["acct:0", "acct:1"]).values.compactMap { $0["balance"]?.intValue }.reduce(0, +)
///     }
public struct TransactionalMemory<B: TransactionBackend>: Sendable {
    public let backend: B
    /// With a cache, bodies read from it and commit in one round trip that checks the
    /// versions they read (see `ReadCache` for what that means for a body).
    public let cache: ReadCache?
    /// After a conflict, attempts of this memory that collide take turns (see `LocalLocks`).
    let contention = LocalLocks()

    public init(backend: B, cache: ReadCache? = nil) {
        self.backend = backend
        self.cache = cache
    }

    public func atomically<T: Sendable>(
        _ options: AtomicOptions = AtomicOptions(),
        _ body: @Sendable (any Transaction) async throws -> T
    ) async throws -> T {
        try await atomicallyReporting(options, body).0
    }

    // Applications call this from other modules, where it would run unspecialized (generic
    // metadata looked up at run time, values copied through witness tables): the common
    // backends get specialized copies that the generic entry point jumps to.
    @_specialize(where B == EmbeddedBackend, T == Void)
    @_specialize(where B == HTTPBackend, T == Void)
    public func atomicallyReporting<T: Sendable>(
        _ options: AtomicOptions = AtomicOptions(),
        _ body: @Sendable (any Transaction) async throws -> T
    ) async throws -> (T, AtomicReport) {
        let clock = ContinuousClock()
        let started = clock.now
        let deadline = started + options.deadline
        var report = AtomicReport()
        var priority: Timestamp?
        var conflictAttempts = 0
        // Set when a body failed on cached reads: its next attempt reads from the node, so
        // that an error is only ever surfaced from values read in one snapshot.
        var bypassCache = false
        // What the last conflicting attempt touched: the next attempt queues on it.
        var queueOn: [String] = []
        var pause: Duration?
        // Waits of `retry()` that failed, and requests that got no answer (not conflicts):
        // they back off on their own schedule (`failurePause`).
        var retryWaitFailures = 0
        var transportFailures = 0
        while true {
            try Task.checkCancellation()
            if let p = pause { try await Task.sleep(for: p) }
            pause = nil
            report.attempts += 1
            var held = queueOn
            if !held.isEmpty { await contention.acquire(held) }
            defer { if !held.isEmpty { contention.release(held) } }
            let tx = ClientTransaction(backend: backend, priority: priority, cache: bypassCache ? nil : cache)
            // Set once the body has returned: an error after that is the commit's, and is
            // never a reason to run the body again.
            var bodyReturned = false
            do {
                // Requests end at the deadline at the latest (`RequestDeadline`).
                let value = try await RequestDeadline.$current.withValue(deadline) { try await body(tx) }
                bodyReturned = true
                if held.isEmpty, contention.heldCount > 0 {
                    // Pointers that queued retries are taking turns on: this attempt would
                    // most likely fail against them, so it joins the line instead of committing.
                    let touched = tx.touched
                    if touched.count <= LocalLocks.pointersMax, contention.anyHeld(touched) {
                        await tx.abandon()
                        queueOn = touched
                        continue
                    }
                }
                do {
                    _ = try await RequestDeadline.$current.withValue(deadline) { try await tx.commit() }
                    // Conflicts the node retried inside the commit count as the caller's own.
                    let hidden = tx.nodeRetries
                    report.attempts += hidden
                    report.conflicts += hidden
                } catch let e as ClientError where Self.isUnknownOutcome(e) {
                    // The commit may have happened: ask, never re-run blindly.
                    let backend = self.backend
                    if let id = tx.clientID {
                        if try await resolve(until: deadline, id, { try await backend.resolve(id: id) }) { return (value, report) }
                    } else {
                        guard let handle = tx.handle else { throw e }
                        // A commit that never reached the node leaves its transaction active
                        // until the node's idle timeout (30 s): abort it first. An abort ends
                        // only an active transaction, never a commit under way, so the answer
                        // that follows is the commit's fate. Bounded like the asks.
                        _ = try? await Self.before(max(deadline, clock.now + .seconds(2))) { await backend.abort(handle) }
                        if try await resolve(until: deadline, "\(handle)", { try await backend.resolve(handle) }) { return (value, report) }
                    }
                    throw ClientError.server(status: 409, code: "conflict", message: "the commit was resolved as aborted", retryable: true)
                } catch is CancellationError {
                    // Cancelled with the commit sent: it may have happened, and the caller
                    // must not take the cancellation for "not done".
                    throw ClientError.outcomeUnknown(txn: tx.clientID ?? tx.handle.map { "\($0)" } ?? "the commit")
                }
                return (value, report)
            } catch is RetrySignal {
                // Never wait for a change while holding a turn that others wait for.
                if !held.isEmpty { contention.release(held) }
                held = []
                queueOn = []
                tx.dropCachedReads()
                await tx.abandon()
                report.retries += 1
                let remaining = clock.now.duration(to: deadline)
                guard remaining > .zero else { throw ClientError.retryTimedOut }
                let watched = tx.readVersions
                if watched.isEmpty {
                    // Nothing read: nothing can change; wait out the deadline like Haskell's `retry` would block.
                    try await Task.sleep(for: remaining)
                    throw ClientError.retryTimedOut
                }
                do {
                    _ = try await backend.watch(watched, timeout: min(remaining, .seconds(30)))
                } catch let e as ClientError where e.retryable || e.isTransport {
                    // A full watcher table, a node restarting, a lost connection: the wait
                    // failed, not the transaction. Run the body again after a pause; it
                    // retries again (and waits) if nothing it read has changed.
                    retryWaitFailures += 1
                    pause = Self.failurePause(retryWaitFailures)
                }
                continue
            } catch let e as ClientError where e.retryable || (e.isTransport && !bodyReturned) {
                // A conflict already ended the transaction: no abort request to send. A lost
                // connection before the commit was sent (a begin, a read) changed nothing:
                // the transaction is abandoned (aborted if it began) and run again.
                if !e.endedTheTransaction { await tx.abandon() }
                report.conflicts += 1
                conflictAttempts += 1
                priority = priority ?? tx.rv
                guard conflictAttempts < options.attemptsMax, clock.now < deadline else {
                    throw ClientError.retriesExhausted(attempts: conflictAttempts, last: e.description)
                }
                if e.isTransport {
                    // No answer: the node may be restarting. Wait longer each time (to a
                    // second), not shorter with age as between conflicting transactions.
                    transportFailures += 1
                    queueOn = []
                    pause = Self.failurePause(transportFailures)
                    continue
                }
                let touched = tx.touched
                queueOn = touched.count <= LocalLocks.pointersMax ? touched : []
                // A retry that will queue needs no pause: its turn comes when the attempts it
                // collided with are done. Otherwise back off, with no lock held.
                pause = queueOn.isEmpty || conflictAttempts > 3 ? backoff(conflictAttempts, age: clock.now - started, options) : nil
            } catch {
                await tx.abandon()
                if tx.cache != nil, !bodyReturned, !(error is CancellationError) {
                    tx.dropCachedReads()
                    bypassCache = true
                    continue
                }
                throw error
            }
        }
    }

    static func isUnknownOutcome(_ e: ClientError) -> Bool {
        switch e {
        case .transport: return true
        // 500 (an unexpected failure), 502 and 504 (a proxy's): the request may have run.
        case .server(let status, let code, _, _): return code == "outcome_unknown" || status == 500 || status == 502 || status == 504
        default: return false
        }
    }

    /// Asks for a commit's fate until it is known: true committed, false aborted. Bounded
    /// by `deadline`, each ask included (one ask is always allowed two seconds, so that a
    /// commit that ran out the deadline still gets one answer); past it, or when the caller
    /// is cancelled, the fate is unknown — never a `CancellationError` that a caller could
    /// take for "not done".
    func resolve(
        until deadline: ContinuousClock.Instant, _ name: String, _ ask: @escaping @Sendable () async throws -> Timestamp?
    ) async throws -> Bool {
        var wait = Duration.milliseconds(10)
        var limit = max(deadline, ContinuousClock.now + .seconds(2))
        while true {
            // `try?` would flatten "aborted" (nil) into "unknown": keep the two apart.
            let answer: Timestamp??
            do {
                answer = try await Self.before(limit, ask)
            } catch let e as ClientError where e.code == "pruned" {
                // The node no longer knows (its record retention has passed): asking again
                // will not tell.
                throw ClientError.outcomeUnknown(txn: name)
            } catch {
                answer = nil
            }
            if let known = answer { return known != nil }
            limit = deadline
            guard ContinuousClock.now < deadline, !Task.isCancelled else { throw ClientError.outcomeUnknown(txn: name) }
            do {
                try await Task.sleep(for: min(wait, ContinuousClock.now.duration(to: deadline)))
            } catch {
                throw ClientError.outcomeUnknown(txn: name)
            }
            wait = min(wait * 2, .seconds(1))
        }
    }

    /// `operation`'s answer, or nil when `deadline` comes first (the operation is then
    /// cancelled, and its answer, if it still comes, dropped). A cancelled caller gets
    /// `CancellationError` at once, whatever the operation does with its own cancellation.
    static func before<T: Sendable>(_ deadline: ContinuousClock.Instant, _ operation: @escaping @Sendable () async throws -> T) async throws -> T? {
        let race = FirstResult<T?>()
        let timer = Task {
            try? await Task.sleep(until: deadline)
            race.finish(.success(nil))
        }
        let work = Task {
            defer { timer.cancel() }
            do { race.finish(.success(try await operation())) } catch { race.finish(.failure(error)) }
        }
        // Whichever ends first, the timer ends: then the operation is no longer wanted.
        Task {
            _ = await timer.value
            work.cancel()
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<T?, any Error>) in
                race.wait(c)
            }
        } onCancel: {
            race.finish(.failure(CancellationError()))
            timer.cancel()
        }
    }

    /// The pause after a failure that is not a conflict (no answer, a wait the node
    /// refused): 10 ms doubling to a second, jittered.
    static func failurePause(_ n: Int) -> Duration {
        let ms = min(1_000.0, 10.0 * Double(1 << min(n - 1, 10)))
        return .microseconds(Int64(ms * 1_000 * Double.random(in: 0.5...1.0)))
    }

    /// Jittered exponential backoff, shortened for transactions that have been trying for
    /// longer (`age`, measured on this process's own clock: a node's timestamps would bring
    /// in the skew between the two machines), so the oldest gets through instead of
    /// livelocking.
    func backoff(_ attempt: Int, age: Duration, _ o: AtomicOptions) -> Duration {
        let grown = o.backoffBase * (1 << min(attempt - 1, 16))
        let capped = min(grown, o.backoffMax)
        let ageMillis = max(0, Double(age.components.seconds) * 1000 + Double(age.components.attoseconds) / 1e15)
        let shrink = 1.0 / (1.0 + ageMillis / 100.0)
        let nanos = Double(capped.components.seconds) * 1e9 + Double(capped.components.attoseconds) / 1e9
        return .nanoseconds(Int64(max(1_000, nanos * shrink * Double.random(in: 0.5...1.0))))
    }
}

/// The first of several racing results, handed to one waiting continuation (which may
/// start waiting before or after the result comes).
final class FirstResult<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var result: Result<T, any Error>?
        var delivered = false
    }

    private let state = Mutex(State())

    func wait(_ c: CheckedContinuation<T, any Error>) {
        let ready: Result<T, any Error>? = state.withLock { s in
            guard let r = s.result else {
                s.continuation = c
                return nil
            }
            s.delivered = true
            return r
        }
        if let ready { c.resume(with: ready) }
    }

    func finish(_ result: Result<T, any Error>) {
        let c: CheckedContinuation<T, any Error>? = state.withLock { s in
            guard s.result == nil, !s.delivered else { return nil }
            s.result = result
            guard let c = s.continuation else { return nil }
            s.continuation = nil
            s.delivered = true
            return c
        }
        c?.resume(with: result)
    }
}
