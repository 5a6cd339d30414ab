import RestmCore
import Synchronization

/// Who waits for which pointers to change: long-polls (`POST /watch`), event streams
/// (`GET /events`) and blocking `retry()`. A waiter costs a continuation and a few table
/// entries — no thread — and is woken once, by the first commit that writes any of its
/// pointers, or by its timeout.
final class WatchHub: Sendable {
    struct State: ~Copyable {
        var byPointer: [String: Set<UInt64>] = [:]
        var watchers: [UInt64: (ptrs: [String], continuation: CheckedContinuation<Bool, Never>?, fired: Bool, timer: Task<Void, Never>?)] = [:]
        var nextID: UInt64 = 1
    }

    let watchersMax: Int
    private let state = Mutex(State())

    init(watchersMax: Int) {
        self.watchersMax = watchersMax
    }

    var count: Int { state.withLock { $0.watchers.count } }

    /// Registers interest in `ptrs` (before reading their current versions, so no change
    /// between the read and the wait can be missed). Nil when too many are registered.
    func register(_ ptrs: [String]) -> UInt64? {
        state.withLock { s in
            guard s.watchers.count < watchersMax else { return nil }
            let id = s.nextID
            s.nextID += 1
            s.watchers[id] = (ptrs, nil, false, nil)
            for p in ptrs { s.byPointer[p, default: []].insert(id) }
            return id
        }
    }

    /// Waits until a commit writes one of the watcher's pointers (true), or the timeout
    /// passes or the waiting task is cancelled (false). Unregisters the watcher either way.
    func wait(_ id: UInt64, timeout: Duration) async -> Bool {
        let fired: Bool = await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
                let immediate: Bool? = state.withLock { s in
                    guard var w = s.watchers[id] else { return false }
                    if w.fired { return true }
                    w.continuation = c
                    // The timer is cancelled when the watcher goes, so none lingers.
                    w.timer = Task {
                        try? await Task.sleep(for: timeout)
                        guard !Task.isCancelled else { return }
                        self.expire(id)
                    }
                    s.watchers[id] = w
                    return nil
                }
                if let immediate { c.resume(returning: immediate) }
            }
        } onCancel: {
            self.expire(id)
        }
        unregister(id)
        return fired
    }

    /// Ends a wait with false (timeout or cancellation), if it is still waiting; a wait that
    /// has not parked yet finds the watcher gone and returns at once.
    private func expire(_ id: UInt64) {
        let pending: CheckedContinuation<Bool, Never>? = state.withLock { s in
            guard var w = s.watchers[id] else { return nil }
            guard let c = w.continuation else {
                if !w.fired {
                    s.watchers.removeValue(forKey: id)
                    for p in w.ptrs {
                        s.byPointer[p]?.remove(id)
                        if s.byPointer[p]?.isEmpty == true { s.byPointer.removeValue(forKey: p) }
                    }
                }
                return nil
            }
            w.continuation = nil
            s.watchers[id] = w
            return c
        }
        pending?.resume(returning: false)
    }

    func unregister(_ id: UInt64) {
        state.withLock { s in
            guard let w = s.watchers.removeValue(forKey: id) else { return }
            w.timer?.cancel()
            for p in w.ptrs {
                s.byPointer[p]?.remove(id)
                if s.byPointer[p]?.isEmpty == true { s.byPointer.removeValue(forKey: p) }
            }
        }
    }

    /// Wakes every watcher (at shutdown, so no long-poll or stream holds the process).
    func wakeAll() {
        let wake: [CheckedContinuation<Bool, Never>] = state.withLock { s in
            var out: [CheckedContinuation<Bool, Never>] = []
            for (id, var w) in s.watchers {
                w.fired = true
                if let c = w.continuation { out.append(c) }
                w.continuation = nil
                s.watchers[id] = w
            }
            return out
        }
        for c in wake { c.resume(returning: true) }
    }

    /// Called after a commit is applied: wakes everyone watching any of `ptrs`.
    func notify(_ ptrs: some Sequence<String>) {
        let wake: [CheckedContinuation<Bool, Never>] = state.withLock { s in
            guard !s.byPointer.isEmpty else { return [] }
            var out: [CheckedContinuation<Bool, Never>] = []
            for p in ptrs {
                guard let ids = s.byPointer[p] else { continue }
                for id in ids {
                    guard var w = s.watchers[id], !w.fired else { continue }
                    w.fired = true
                    if let c = w.continuation {
                        out.append(c)
                        w.continuation = nil
                    }
                    s.watchers[id] = w
                }
            }
            return out
        }
        for c in wake { c.resume(returning: true) }
    }
}
