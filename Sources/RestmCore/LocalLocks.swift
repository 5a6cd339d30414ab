import Synchronization

/// The contention manager of a `TransactionalMemory` (and of a node's own retries): after a
/// conflict, a transaction's next attempt first takes in-process locks on the pointers the failed attempt touched, all of
/// them at once or none (it never holds some while waiting for others, so there is no
/// deadlock and no convoy behind a half-locked set), and releases them when the attempt ends.
/// Transactions of this process that keep colliding on the same pointers then take turns
/// instead of failing each other; a first attempt never waits, and nothing here is needed
/// for correctness (the node still checks every commit). Waiters are served in arrival
/// order per pointer: a waiter is granted only when all its pointers are free and no earlier
/// waiter wants one of them, so none starves.
public final class LocalLocks: Sendable {
    struct Waiter {
        var ptrs: [String]
        var ticket: UInt64
        /// true: granted; false: gave up (deadline or cancellation).
        var resume: CheckedContinuation<Bool, Never>
    }

    struct State {
        var held: Set<String> = []
        var waiting: [Waiter] = []
        var nextTicket: UInt64 = 0
    }

    /// Pointers one attempt may lock; a larger transaction retries without queueing.
    public static let pointersMax = 64

    private let state = Mutex(State())

    public init() {}

    public var heldCount: Int { state.withLock { $0.held.count } }
    public var waitingCount: Int { state.withLock { $0.waiting.count } }

    /// Whether another attempt holds a lock on one of `ptrs`.
    public func anyHeld(_ ptrs: [String]) -> Bool {
        state.withLock { s in !s.held.isEmpty && ptrs.contains { s.held.contains($0) } }
    }

    /// Takes every lock of `ptrs` (unique), waiting in line while any is held or wanted by an
    /// earlier waiter.
    public func acquire(_ ptrs: [String]) async {
        _ = await acquire(ptrs, until: nil, waitersMax: .max)
    }

    /// Like `acquire`, but gives up (false) at `deadline`, when the task is cancelled, or at
    /// once when `waitersMax` attempts are already in line.
    public func acquire(_ ptrs: [String], until deadline: ContinuousClock.Instant?, waitersMax: Int) async -> Bool {
        let now: Bool? = state.withLock { s in
            if Self.free(ptrs, in: s) {
                s.held.formUnion(ptrs)
                return true
            }
            return s.waiting.count >= waitersMax ? false : nil
        }
        if let now { return now }
        let ticket = state.withLock { s in
            defer { s.nextTicket += 1 }
            return s.nextTicket
        }
        let timer = deadline.map { end in
            Task { [weak self] in
                try? await Task.sleep(until: end)
                self?.giveUp(ticket)
            }
        }
        defer { timer?.cancel() }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
                let outcome: Bool? = state.withLock { s in
                    // Checked under the lock: a cancellation or a timer that came before the
                    // waiter was in line found nothing to take out.
                    if Task.isCancelled { return false }
                    if let deadline, ContinuousClock.now >= deadline { return false }
                    if Self.free(ptrs, in: s) {
                        s.held.formUnion(ptrs)
                        return true
                    }
                    s.waiting.append(Waiter(ptrs: ptrs, ticket: ticket, resume: c))
                    return nil
                }
                if let outcome { c.resume(returning: outcome) }
            }
        } onCancel: {
            giveUp(ticket)
        }
    }

    /// Takes waiter `ticket` out of the line, if it is still there, and tells it so.
    private func giveUp(_ ticket: UInt64) {
        let c: CheckedContinuation<Bool, Never>? = state.withLock { s in
            guard let i = s.waiting.firstIndex(where: { $0.ticket == ticket }) else { return nil }
            return s.waiting.remove(at: i).resume
        }
        c?.resume(returning: false)
    }

    /// Releases `ptrs` and grants, in arrival order, every waiter whose pointers are now all
    /// free and wanted by no earlier waiter still in line.
    public func release(_ ptrs: [String]) {
        let granted: [CheckedContinuation<Bool, Never>] = state.withLock { s in
            s.held.subtract(ptrs)
            guard !s.waiting.isEmpty else { return [] }
            var out: [CheckedContinuation<Bool, Never>] = []
            var blocked: Set<String> = []
            var kept: [Waiter] = []
            for w in s.waiting {
                if w.ptrs.allSatisfy({ !s.held.contains($0) && !blocked.contains($0) }) {
                    s.held.formUnion(w.ptrs)
                    out.append(w.resume)
                } else {
                    blocked.formUnion(w.ptrs)
                    kept.append(w)
                }
            }
            s.waiting = kept
            return out
        }
        for c in granted { c.resume(returning: true) }
    }

    /// All of `ptrs` are unlocked and none is wanted by a waiter already in line.
    private static func free(_ ptrs: [String], in s: State) -> Bool {
        for p in ptrs where s.held.contains(p) { return false }
        for w in s.waiting where w.ptrs.contains(where: { ptrs.contains($0) }) { return false }
        return true
    }
}
