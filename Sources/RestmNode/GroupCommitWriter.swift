import Dispatch
import RestmCore
import RestmStore
import Synchronization

/// Funnels commits into the store: every commit that arrives while a store transaction is
/// in flight joins the next one, so many commits share one fsync (group commit), each with
/// its own outcome. Runs on its own serial dispatch queue, off Swift's cooperative pool,
/// because the store's calls block.
final class GroupCommitWriter: Sendable {
    typealias Completion = CheckedContinuation<Result<CommitOutcome, StoreError>, Never>

    struct Pending {
        var record: CommitRecord
        var completion: Completion
    }

    struct State {
        var pending: [Pending] = []
        var draining = false
        var closed = false
    }

    let store: any Store
    let batchMax: Int
    let queueMax: Int
    let metrics: Metrics
    let ceilingLeadMillis: UInt64
    private let state = Mutex(State())
    private let queue = DispatchQueue(label: "restm.store-writer")

    init(store: any Store, batchMax: Int, queueMax: Int, metrics: Metrics, ceilingLeadMillis: UInt64) {
        self.store = store
        self.ceilingLeadMillis = ceilingLeadMillis
        self.batchMax = batchMax
        self.queueMax = queueMax
        self.metrics = metrics
    }

    /// Queues `record` and answers once the store transaction holding it has finished.
    func submit(_ record: CommitRecord) async -> Result<CommitOutcome, StoreError> {
        await withCheckedContinuation { (c: Completion) in
            let (accepted, startDrain): (Bool, Bool) = state.withLock { s in
                if s.closed || s.pending.count >= queueMax { return (false, false) }
                s.pending.append(Pending(record: record, completion: c))
                if s.draining { return (true, false) }
                s.draining = true
                return (true, true)
            }
            if !accepted {
                c.resume(returning: .failure(.refused("the commit queue is full or the node is shutting down")))
                return
            }
            if startDrain {
                queue.async { self.drain() }
            }
        }
    }

    var queueDepth: Int { state.withLock { $0.pending.count } }

    /// Nothing queued and no batch being written (`draining` stays true until the drain
    /// loop has finished its last batch and found the queue empty).
    var isIdle: Bool { state.withLock { !$0.draining && $0.pending.isEmpty } }

    /// Refuses new commits; those already queued are still written.
    func close() {
        state.withLock { $0.closed = true }
    }

    private func drain() {
        while true {
            let batch: [Pending] = state.withLock { s in
                guard !s.pending.isEmpty else {
                    s.draining = false
                    return []
                }
                let n = min(batchMax, s.pending.count)
                let b = Array(s.pending.prefix(n))
                s.pending.removeFirst(n)
                return b
            }
            if batch.isEmpty { return }
            let start = ContinuousClock.now
            let result: Result<[CommitOutcome], StoreError>
            do {
                // The durable ceiling rises with the commits, in the same store transaction:
                // no committed timestamp can ever sit above it.
                let top = batch.map(\.record.ts).max()!.adding(millis: ceilingLeadMillis)
                result = .success(try store.commit(batch.map(\.record), ceiling: top))
            } catch let e as StoreError {
                result = .failure(e)
            } catch {
                result = .failure(.uncertain("\(error)"))
            }
            let elapsed = ContinuousClock.now - start
            metrics.record("store", "commit", success: (try? result.get()) != nil, duration: elapsed)
            metrics.observeBatch(batch.count)
            switch result {
            case .success(let outcomes):
                for (p, o) in zip(batch, outcomes) { p.completion.resume(returning: .success(o)) }
            case .failure(let e):
                for p in batch { p.completion.resume(returning: .failure(e)) }
            }
        }
    }
}
