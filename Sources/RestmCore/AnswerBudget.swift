import Synchronization

/// Bounds the bytes of read results one answer carries (413 `too_large`), and those all
/// items of one `POST /batch` carry together (503 `overloaded`, retryable). A result counts
/// its value, its pointer id and 48 bytes for its version and punctuation. Answers are
/// built in memory, and without a bound one request — 1,000 pointers of up to 1 MiB each,
/// or a batch of such requests — would make a node build gigabytes, and a client's answer
/// limit (64 MiB by default) would turn every item of a batch into a lost answer.
///
///     var budget = AnswerBudget(max: limits.answerBytesMax)
///     for p in ptrs { let r = try await node.read(t, p); try budget.charge(p, r.value) }
public struct AnswerBudget: Sendable {
    public let max: Int
    public private(set) var used = 0
    /// What this answer took from the shared budgets (its batch's, the node's).
    public private(set) var shared = 0

    public init(max: Int) {
        self.max = max
    }

    public mutating func charge(_ ptr: String, _ value: String?) throws(RestmError) {
        let n = ptr.utf8.count + (value?.utf8.count ?? 4) + 48
        used += n
        guard used <= max else {
            throw RestmError(
                .tooLarge,
                "the values read would make an answer of more than \(AnswerBudget.size(max)) \(AnswerBudget.marker); read fewer pointers per request")
        }
        try AnswerBytes.charge(n)
        shared += n
    }

    /// Gives back to the shared budgets what this answer took: for an answer that will not
    /// be sent after all (an attempt that conflicted and runs again, a refused read).
    public mutating func refund() {
        AnswerBytes.refund(shared)
        shared = 0
    }

    /// In the message of the 413 an answer over `answerBytesMax` gets: the client library
    /// splits a read on it (and on no other 413).
    public static let marker = "(answerBytesMax)"

    static func size(_ bytes: Int) -> String {
        bytes >= 1 << 20 && bytes % (1 << 20) == 0 ? "\(bytes >> 20) MiB" : "\(bytes) bytes"
    }
}

/// The budget of one `POST /batch`, shared by its items (a task-local the batch sets around
/// them). An item that would pass it fails with 503 `overloaded` (retryable, and nothing
/// changed): sent again alone or in a smaller batch, it fits.
public final class BatchAnswerBudget: Sendable {
    @TaskLocal public static var current: BatchAnswerBudget?

    public var max: Int { pool.max }
    private let pool: AnswerPool

    public init(max: Int) {
        pool = AnswerPool(max: max)
    }

    /// Takes `bytes` if they fit (a charge that does not fit takes nothing, so a smaller
    /// item after it may still fit).
    public func charge(_ bytes: Int) throws(RestmError) {
        guard pool.take(bytes) else {
            throw RestmError(
                .overloaded,
                "the answers of this batch would carry more than \(AnswerBudget.size(max)) of values read (batchAnswerBytesMax); send this request again, alone or in a smaller batch")
        }
    }

    public func refund(_ bytes: Int) {
        pool.give(bytes)
    }
}

/// The shared budgets an answer's read results are charged to beside its own: the batch it
/// is part of (`BatchAnswerBudget`) and the node's answers in flight (`AnswerLease`), each
/// when the request runs under one.
public enum AnswerBytes {
    /// All or nothing: bytes the node refuses are given back to the batch.
    public static func charge(_ bytes: Int) throws(RestmError) {
        try BatchAnswerBudget.current?.charge(bytes)
        do {
            try AnswerLease.current?.charge(bytes)
        } catch {
            BatchAnswerBudget.current?.refund(bytes)
            throw error
        }
    }

    public static func refund(_ bytes: Int) {
        guard bytes > 0 else { return }
        BatchAnswerBudget.current?.refund(bytes)
        AnswerLease.current?.refund(bytes)
    }
}

/// Bytes taken from a fixed budget, all or nothing: a batch's, or the node's read results
/// held by every answer it is building or sending at once (`answerBytesInFlightMax`). Each
/// answer is bounded on its own, but not how many arrive together: without the node's, a
/// few hundred concurrent reads of 16 MiB would hold gigabytes. A request that would pass
/// it fails with 503 `overloaded` (retryable, nothing changed).
public final class AnswerPool: Sendable {
    public let max: Int
    private let used = Atomic<Int>(0)

    public init(max: Int) {
        self.max = max
    }

    /// Bytes held now.
    public var inUse: Int { used.load(ordering: .relaxed) }

    /// Takes `bytes` if they fit, all or nothing.
    func take(_ bytes: Int) -> Bool {
        var current = used.load(ordering: .relaxed)
        while current + bytes <= max {
            let (exchanged, original) = used.compareExchange(expected: current, desired: current + bytes, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    func give(_ bytes: Int) {
        used.wrappingSubtract(bytes, ordering: .relaxed)
    }
}

/// What one request (a batch with all its items) took from the node's `AnswerPool`, a
/// task-local that the HTTP layer sets around the request and keeps alive with its answer:
/// the bytes go back when the lease is released, once the answer has been sent (or dropped).
public final class AnswerLease: Sendable {
    @TaskLocal public static var current: AnswerLease?

    public let pool: AnswerPool
    private let taken = Atomic<Int>(0)

    public init(pool: AnswerPool) {
        self.pool = pool
    }

    /// Bytes this lease holds.
    public var holding: Int { taken.load(ordering: .relaxed) }

    public func charge(_ bytes: Int) throws(RestmError) {
        guard pool.take(bytes) else {
            throw RestmError(
                .overloaded,
                "the node holds \(AnswerBudget.size(pool.max)) of read answers being built or sent (answerBytesInFlightMax); send this request again later")
        }
        taken.wrappingAdd(bytes, ordering: .relaxed)
    }

    public func refund(_ bytes: Int) {
        taken.wrappingSubtract(bytes, ordering: .relaxed)
        pool.give(bytes)
    }

    deinit {
        pool.give(taken.load(ordering: .relaxed))
    }
}
