import Synchronization

/// The contention manager of a `TransactionalMemory`: after a conflict, a transaction's next
/// attempt first takes in-process locks on the pointers the failed attempt touched (all at
/// once, in pointer order, so no two can deadlock), and releases them when the attempt ends.
/// Transactions of this process that keep colliding on the same pointers then take turns
/// instead of failing each other; a first attempt never waits, and nothing here is needed
/// for correctness (the node still checks every commit). Locks exist only while held or
/// waited for.
final class LocalLocks: Sendable {
    struct Entry {
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    /// Pointers one attempt may lock; a larger transaction retries without queueing.
    static let pointersMax = 64

    private let state = Mutex<[String: Entry]>([:])

    var heldCount: Int { state.withLock { $0.count } }

    /// Whether another attempt holds a lock on one of `ptrs`.
    func anyHeld(_ ptrs: [String]) -> Bool {
        state.withLock { s in ptrs.contains { s[$0] != nil } }
    }

    /// Takes every lock of `ptrs` (sorted, unique), waiting in line for those held.
    func acquire(_ ptrs: [String]) async {
        for p in ptrs {
            let free = state.withLock { s -> Bool in
                guard s[p] == nil else { return false }
                s[p] = Entry()
                return true
            }
            if free { continue }
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let mine = state.withLock { s -> Bool in
                    if s[p] == nil {
                        s[p] = Entry()
                        return true
                    }
                    s[p]!.waiters.append(c)
                    return false
                }
                if mine { c.resume() }
            }
        }
    }

    /// Releases `ptrs`: each goes to its first waiter, if any.
    func release(_ ptrs: [String]) {
        for p in ptrs {
            let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
                guard var e = s[p] else { return nil }
                if e.waiters.isEmpty {
                    s[p] = nil
                    return nil
                }
                let n = e.waiters.removeFirst()
                s[p] = e
                return n
            }
            next?.resume()
        }
    }
}
