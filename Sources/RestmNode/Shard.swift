import RestmCore
import Synchronization

/// The shell around one shard's state machine: a lock, and the continuations of reads
/// waiting for intents. Every engine step runs entirely under the lock, with no suspension
/// point inside (DESIGN.md: actors are reentrant across `await`, a lock is not); nothing
/// awaits while holding it, and continuations are resumed after it is released.
final class Shard: Sendable {
    enum WaitResult: Sendable {
        case woken
        case timedOut
    }

    enum ReadStep: Sendable {
        case found(Version?)
        case load(generation: UInt64)
        case store
        case expired(owner: String)
        case waited(WaitResult)
        case tooManyWaiters
    }

    struct Box: ~Copyable {
        var engine: ShardState
        var waiters: [UInt64: CheckedContinuation<ReadStep, Never>] = [:]
        var nextWaiter: UInt64 = 1
    }

    let index: Int
    let box: Mutex<Box>

    init(index: Int, node: UInt16, floor: Timestamp, limits: Limits) {
        self.index = index
        self.box = Mutex(Box(engine: ShardState(node: node, floor: floor, limits: limits)))
    }

    /// Runs one engine step under the lock.
    func step<T>(_ body: (inout ShardState) -> T) -> T {
        box.withLock { body(&$0.engine) }
    }

    /// Runs a step that answers waiters to wake, and wakes them after unlocking.
    func stepWaking(_ body: (inout ShardState) -> [UInt64]) {
        let conts: [CheckedContinuation<ReadStep, Never>] = box.withLock { b in
            let ids = body(&b.engine)
            return ids.compactMap { b.waiters.removeValue(forKey: $0) }
        }
        for c in conts { c.resume(returning: .waited(.woken)) }
    }

    /// One read step that needs no waiting, without suspending; nil when it must wait for a
    /// lower intent (then `read` registers the waiter in a step of its own).
    func readNow(_ ptr: String, at rv: Timestamp, txn: String, nowMillis: UInt64, loaded: (newest: Version?, generation: UInt64)?) -> ReadStep? {
        box.withLock { b in
            if let l = loaded, !b.engine.install(ptr, newest: l.newest, generationAtLoad: l.generation) {
                return .load(generation: b.engine.generation)
            }
            defer { b.engine.evictIfNeeded() }
            switch b.engine.read(ptr, at: rv, txn: txn, nowMillis: nowMillis) {
            case .found(let v): return .found(v)
            case .notResident: return .load(generation: b.engine.generation)
            case .olderThanMemory: return .store
            case .wait(let owner, let expired): return expired ? .expired(owner: owner) : nil
            }
        }
    }

    /// One read step. When it must wait for a lower intent, it registers the waiter in the
    /// same locked step (so no wake-up can be missed) and suspends until a wake-up or the
    /// timer, whichever removes the waiter first, resumes it (exactly once).
    /// `loaded` is what the store answered for a pointer that was not resident, with the
    /// generation it was loaded at: it is installed and read in the same step, so a busy
    /// shard cannot evict it in between.
    func read(
        _ ptr: String, at rv: Timestamp, txn: String, nowMillis: UInt64, waitMillis: Int, waitersMax: Int,
        loaded: (newest: Version?, generation: UInt64)? = nil
    ) async -> ReadStep {
        await withCheckedContinuation { (cont: CheckedContinuation<ReadStep, Never>) in
            let outcome: (ReadStep?, UInt64) = box.withLock { b in
                if let l = loaded, !b.engine.install(ptr, newest: l.newest, generationAtLoad: l.generation) {
                    return (.load(generation: b.engine.generation), 0)
                }
                defer { b.engine.evictIfNeeded() }
                switch b.engine.read(ptr, at: rv, txn: txn, nowMillis: nowMillis) {
                case .found(let v): return (.found(v), 0)
                case .notResident: return (.load(generation: b.engine.generation), 0)
                case .olderThanMemory: return (.store, 0)
                case .wait(let owner, let expired):
                    if expired { return (.expired(owner: owner), 0) }
                    if b.engine.waiterCount >= waitersMax { return (.tooManyWaiters, 0) }
                    let id = b.nextWaiter
                    b.nextWaiter += 1
                    b.engine.addWaiter(ptr, id: id)
                    b.waiters[id] = cont
                    return (nil, id)
                }
            }
            if let s = outcome.0 {
                cont.resume(returning: s)
                return
            }
            let id = outcome.1
            Task {
                try? await Task.sleep(for: .milliseconds(waitMillis))
                let timedOut: CheckedContinuation<ReadStep, Never>? = self.box.withLock { b in
                    guard b.engine.removeWaiter(ptr, id: id) else { return nil }
                    return b.waiters.removeValue(forKey: id)
                }
                timedOut?.resume(returning: .waited(.timedOut))
            }
        }
    }
}
