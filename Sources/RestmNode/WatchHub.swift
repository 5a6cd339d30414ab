import RestmCore
import Synchronization

/// Who waits for which pointers to change: long-polls (`POST /watch`), event streams
/// (`GET /events`) and blocking `retry()`. A waiter costs a continuation and a few table
/// entries — no thread — and is woken once, by the first commit that writes any of its
/// pointers, or by its timeout. Bounded twice: by the number of watchers and by the bytes of
/// the pointer ids they name (`bytes(of:)`), so that many watches of long ids cannot hold
/// the node's memory.
final class WatchHub: Sendable {
    struct State: ~Copyable {
        var byPointer: [String: Set<UInt64>] = [:]
        var watchers: [UInt64: (ptrs: [String], continuation: CheckedContinuation<Bool, Never>?, fired: Bool, timer: Task<Void, Never>?)] = [:]
        var nextID: UInt64 = 1
        /// What the registered watchers' pointer lists cost, by `bytes(of:)`.
        var bytes = 0
        /// Set by `wakeAll` at shutdown: nothing registers after it.
        var closed = false
    }

    /// Why `register` refused.
    enum Refusal: Error {
        case full, closed
    }

    let watchersMax: Int
    let bytesMax: Int
    private let state = Mutex(State())

    init(watchersMax: Int, bytesMax: Int) {
        self.watchersMax = watchersMax
        self.bytesMax = bytesMax
    }

    var count: Int { state.withLock { $0.watchers.count } }
    var bytes: Int { state.withLock { $0.bytes } }

    /// What a watcher of `ptrs` costs in the tables: each id twice (its list, the pointer's
    /// entry) and a fixed 96 bytes per entry and per watcher for the tables' overhead.
    static func bytes(of ptrs: [String]) -> Int {
        ptrs.reduce(96) { $0 + 2 * $1.utf8.count + 96 }
    }

    /// Registers interest in `ptrs` (before reading their current versions, so no change
    /// between the read and the wait can be missed). Refused when the hub is full (watchers
    /// or bytes) or closed.
    func register(_ ptrs: [String]) -> Result<UInt64, Refusal> {
        let cost = Self.bytes(of: ptrs)
        return state.withLock { s in
            guard !s.closed else { return .failure(.closed) }
            guard s.watchers.count < watchersMax, s.bytes + cost <= bytesMax else { return .failure(.full) }
            let id = s.nextID
            s.nextID += 1
            s.watchers[id] = (ptrs, nil, false, nil)
            s.bytes += cost
            for p in ptrs { s.byPointer[p, default: []].insert(id) }
            return .success(id)
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
                    s.bytes -= Self.bytes(of: w.ptrs)
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
            s.bytes -= Self.bytes(of: w.ptrs)
            w.timer?.cancel()
            for p in w.ptrs {
                s.byPointer[p]?.remove(id)
                if s.byPointer[p]?.isEmpty == true { s.byPointer.removeValue(forKey: p) }
            }
        }
    }

    /// Wakes every watcher and refuses new ones (at shutdown, so no long-poll or stream holds
    /// the process: a watch that passed the node's running check just before would otherwise
    /// register after this and wait out its timeout).
    func wakeAll() {
        let wake: [CheckedContinuation<Bool, Never>] = state.withLock { s in
            s.closed = true
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
