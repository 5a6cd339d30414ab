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

    /// Registers `t` under a client-chosen id unless that id is already known: answers the
    /// summary of a finished one, throws for one still running.
    func claim(_ t: Txn) throws -> TxnSummary? {
        try state.withLock { s in
            if let done = s.finished[t.id] { return done }
            // Still running: it may yet commit, so no final answer (a 409 would say "not
            // committed"). The caller asks GET /txn/{id} later.
            guard s.active[t.id] == nil else {
                throw RestmError(.outcomeUnknown, "transaction \(t.id) is still running; ask GET /txn/\(t.id) later")
            }
            guard s.active.count < limits.openTxnsMax else {
                throw RestmError(.overloaded, "\(limits.openTxnsMax) transactions are open on this node; retry later")
            }
            s.active[t.id] = t
            return nil
        }
    }

    /// Forgets an open transaction without a final status (its fate is in the store).
    func forget(_ id: String) {
        _ = state.withLock { $0.active.removeValue(forKey: id) }
    }

    /// Records a final status for an id this node has not seen running (a client-chosen id
    /// asked about before its request arrived): a later arrival is refused. Answers the
    /// status now known, which may be another's if the id was seen meanwhile.
    func fence(_ summary: TxnSummary) -> TxnSummary {
        state.withLock { s in
            if let t = s.active[summary.id] {
                let c = t.counts
                return TxnSummary(id: t.id, rv: t.rv, status: t.status, reads: c.reads, writes: c.writes)
            }
            if let done = s.finished[summary.id] { return done }
            Self.remember(&s, summary, limits.finishedTxnsMax)
            return summary
        }
    }

    private static func remember(_ s: inout State, _ summary: TxnSummary, _ max: Int) {
        if s.finished[summary.id] == nil {
            if s.finishedOrder.count < max {
                s.finishedOrder.append(summary.id)
            } else {
                s.finished.removeValue(forKey: s.finishedOrder[s.finishedHead])
                s.finishedOrder[s.finishedHead] = summary.id
                s.finishedHead = (s.finishedHead + 1) % max
            }
        }
        s.finished[summary.id] = summary
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
            Self.remember(&s, summary, limits.finishedTxnsMax)
        }
    }
}

/// A ring of at most `capacity` elements: adding past it overwrites the oldest.
struct Ring<Element> {
    let capacity: Int
    private var elements: [Element] = []
    private var head = 0

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    mutating func append(_ e: Element) {
        if elements.count < capacity {
            elements.append(e)
        } else {
            elements[head] = e
            head = (head + 1) % capacity
        }
    }

    /// Oldest first.
    var ordered: [Element] { Array(elements[head...] + elements[..<head]) }
    var last: Element? { elements.isEmpty ? nil : elements[(head + elements.count - 1) % elements.count] }
}

extension Ring: Sendable where Element: Sendable {}

/// A bounded ring of recent activity for `/sys/logs`. Never holds stored values.
public final class ActivityLog: Sendable {
    public struct Entry: Sendable {
        public var millis: UInt64
        public var message: String
    }

    private let ring: Mutex<Ring<Entry>>

    init(capacity: Int) {
        ring = Mutex(Ring(capacity: capacity))
    }

    public func add(_ message: String) {
        let e = Entry(millis: SystemPhysicalClock().nowMillis(), message: message)
        ring.withLock { $0.append(e) }
    }

    /// Newest first.
    public func recent(_ limit: Int) -> [Entry] {
        ring.withLock { Array($0.ordered.reversed().prefix(limit)) }
    }
}
