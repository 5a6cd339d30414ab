import RestmCore

/// One pointer as a backend answers it: its value and version, both nil when absent.
public struct ReadValue: Sendable, Equatable {
    public var value: JSONValue?
    public var version: Timestamp?

    public init(value: JSONValue?, version: Timestamp?) {
        self.value = value
        self.version = version
    }
}

/// Errors a client sees. Conflicts never reach a body's caller through `atomically`; they
/// are retried until the attempt limit or deadline, then reported as `retriesExhausted`.
public enum ClientError: Error, Sendable, CustomStringConvertible {
    /// An error answer of API.md.
    case server(status: Int, code: String, message: String, retryable: Bool)
    /// No answer (connection refused or lost, timeout).
    case transport(String)
    /// The transaction kept conflicting; `last` is the last cause.
    case retriesExhausted(attempts: Int, last: String)
    /// A commit's fate could not be learned before the deadline: it may or may not have
    /// happened. Never re-run blindly.
    case outcomeUnknown(txn: String)
    /// `retry()` waited past the deadline with nothing it read changing.
    case retryTimedOut

    /// API.md: any 409 means the transaction is aborted, so there is nothing left to abort.
    public var endedTheTransaction: Bool {
        if case .server(409, _, _, _) = self { return true }
        return false
    }

    /// No answer came (the request may or may not have reached the node).
    public var isTransport: Bool {
        if case .transport = self { return true }
        return false
    }

    public var retryable: Bool {
        if case .server(_, _, _, let r) = self { return r }
        return false
    }

    /// 413 `too_large` because the answer would pass the node's `answerBytesMax`: the same
    /// reads in smaller parts fit.
    public var isAnswerTooLarge: Bool {
        if case .server(413, "too_large", let message, _) = self { return message.contains(AnswerBudget.marker) }
        return false
    }

    public var code: String? {
        if case .server(_, let c, _, _) = self { return c }
        return nil
    }

    public var description: String {
        switch self {
        case .server(let s, let c, let m, _): return "\(s) \(c): \(m)"
        case .transport(let m): return "no answer: \(m)"
        case .retriesExhausted(let n, let last): return "gave up after \(n) attempts; last: \(last)"
        case .outcomeUnknown(let t): return "the outcome of \(t) is unknown"
        case .retryTimedOut: return "retry() waited past the deadline"
        }
    }
}

/// What a client transaction needs from a node: begin (with its first reads), read, commit,
/// abort, and a watch for `retry()`. Implemented over HTTP (`HTTPBackend`) and in-process
/// (`EmbeddedBackend`).
public protocol TransactionBackend: Sendable {
    associatedtype Handle: Sendable

    /// Begins a transaction and reads `ptrs` at its snapshot, in one round trip.
    func begin(priority: Timestamp?, reads: [String]) async throws -> (handle: Handle, rv: Timestamp, values: [String: ReadValue])
    func read(_ handle: Handle, _ ptrs: [String]) async throws -> [String: ReadValue]
    /// Commits with `writes` (compact JSON text; nil deletes). Throws `ClientError.server`
    /// with `retryable` for a conflict.
    func commit(_ handle: Handle, writes: [(String, String?)]) async throws -> Timestamp
    /// A transaction of writes only, in one round trip.
    func commitBlind(writes: [(String, String?)]) async throws -> Timestamp
    func abort(_ handle: Handle) async
    /// After a lost answer: committed (its timestamp), aborted (nil), or unknown (throws).
    func resolve(_ handle: Handle) async throws -> Timestamp?
    /// Waits until one of the pointers' versions differs from the one given; false at the timeout.
    func watch(_ versions: [(String, Timestamp?)], timeout: Duration) async throws -> Bool

    /// Reads `ptrs` outside any transaction, at one snapshot (answered with it).
    func snapshotRead(_ ptrs: [String]) async throws -> (ts: Timestamp, values: [String: ReadValue])
    /// One round trip: commits `writes` if every pointer of `expect` is still at the version
    /// given (nil: absent), else answers the current values of those that are not. The
    /// commit is known by the client-chosen `id` (`ClientTxnID`) to `resolve(id:)`.
    func commitExpecting(id: String, expect: [(String, Timestamp?)], writes: [(String, String?)]) async throws -> ExpectingOutcome
    /// After a lost answer of `commitExpecting`: committed (its timestamp), not committed
    /// (nil, and it never will be), or unknown yet (throws).
    func resolve(id: String) async throws -> Timestamp?
}

/// What an optimistic commit (`commitExpecting`) answers.
public enum ExpectingOutcome: Sendable {
    /// Committed at this timestamp; `attempts` > 1 when the node retried conflicts itself
    /// before it committed (each such retry is a conflict the caller did not see).
    case committed(Timestamp, attempts: Int = 1)
    /// A version read was no longer current: the current value and version of each such
    /// pointer (a 412 `expectation_failed`); nothing was written.
    case stale([String: ReadValue])
}

/// Optimistic commits, for transactions whose reads come from a `ReadCache`: a read outside
/// any transaction, and a one-shot commit that checks the versions read. Backends that lack
/// them throw, and `TransactionalMemory` then runs without its cache.
extension TransactionBackend {
    public func snapshotRead(_ ptrs: [String]) async throws -> (ts: Timestamp, values: [String: ReadValue]) {
        throw ClientError.server(status: 501, code: "unsupported", message: "this backend has no snapshot reads", retryable: false)
    }

    public func commitExpecting(id: String, expect: [(String, Timestamp?)], writes: [(String, String?)]) async throws -> ExpectingOutcome {
        throw ClientError.server(status: 501, code: "unsupported", message: "this backend has no expecting commits", retryable: false)
    }

    public func resolve(id: String) async throws -> Timestamp? {
        throw ClientError.outcomeUnknown(txn: id)
    }
}

/// The deadline of the `atomically` call a request is made for: a transport ends the request
/// then at the latest (rather than after its whole request timeout), so that a stalled node
/// cannot hold a caller far past its deadline. A commit ended this way has an unknown
/// outcome, which `atomically` then asks about (bounded too).
enum RequestDeadline {
    @TaskLocal static var current: ContinuousClock.Instant?

    /// `timeout` in nanoseconds, shortened to the current deadline, if any (never below
    /// 100 ms: a request made at its deadline still gets a chance to be answered).
    static func bound(nanoseconds timeout: Int64) -> Int64 {
        guard let deadline = current else { return timeout }
        let left = ContinuousClock.now.duration(to: deadline).components
        let leftNs = left.seconds &* 1_000_000_000 &+ left.attoseconds / 1_000_000_000
        return min(timeout, max(100_000_000, leftNs))
    }
}
