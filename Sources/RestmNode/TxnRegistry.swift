import RestmCore
import Synchronization

/// Open transactions by id, and a bounded memory of finished ones (for `GET /txn/{t}` and
/// idempotent commits). Both are bounded by `Limits`.
final class TxnRegistry: Sendable {
    struct State {
        var active: [String: Txn] = [:]
        var finished: [String: TxnSummary] = [:]
        /// Ring of finished ids, oldest first, to forget the oldest beyond the limit.
        var finishedOrder: [String] = []
        var finishedHead = 0
    }

    let limits: Limits
    private let state = Mutex(State())

    init(limits: Limits) {
        self.limits = limits
    }

    func add(_ t: Txn) throws {
        try state.withLock { s in
            guard s.active.count < limits.openTxnsMax else {
                throw RestmError(.overloaded, "\(limits.openTxnsMax) transactions are open on this node; retry later")
            }
            s.active[t.id] = t
        }
    }

    func active(_ id: String) -> Txn? {
        state.withLock { $0.active[id] }
    }

    func finished(_ id: String) -> TxnSummary? {
        state.withLock { $0.finished[id] }
    }

    var activeCount: Int { state.withLock { $0.active.count } }

    func allActive() -> [Txn] {
        state.withLock { Array($0.active.values) }
    }

    /// Moves a transaction that reached a final status to the finished memory.
    func finish(_ t: Txn, summary: TxnSummary) {
        state.withLock { s in
            s.active.removeValue(forKey: t.id)
            if s.finished[t.id] == nil {
                let max = limits.finishedTxnsMax
                if s.finishedOrder.count < max {
                    s.finishedOrder.append(t.id)
                } else {
                    s.finished.removeValue(forKey: s.finishedOrder[s.finishedHead])
                    s.finishedOrder[s.finishedHead] = t.id
                    s.finishedHead = (s.finishedHead + 1) % max
                }
            }
            s.finished[t.id] = summary
        }
    }
}

/// A bounded ring of recent activity for `/sys/logs`. Never holds stored values.
public final class ActivityLog: Sendable {
    public struct Entry: Sendable {
        public var millis: UInt64
        public var message: String
    }

    struct State {
        var entries: [Entry] = []
        var head = 0
    }

    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    public func add(_ message: String) {
        let e = Entry(millis: SystemPhysicalClock().nowMillis(), message: message)
        state.withLock { s in
            if s.entries.count < capacity {
                s.entries.append(e)
            } else {
                s.entries[s.head] = e
                s.head = (s.head + 1) % capacity
            }
        }
    }

    /// Newest first.
    public func recent(_ limit: Int) -> [Entry] {
        state.withLock { s in
            let ordered = Array(s.entries[s.head...]) + Array(s.entries[..<s.head])
            return Array(ordered.reversed().prefix(limit))
        }
    }
}
