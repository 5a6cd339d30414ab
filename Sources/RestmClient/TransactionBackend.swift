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

    public var retryable: Bool {
        if case .server(_, _, _, let r) = self { return r }
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
}
