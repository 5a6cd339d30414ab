/// What a transaction body sees of the memory: the one interface that collections, tasks and
/// applications are written against, implemented both by the HTTP client and by an embedded
/// node, so the same code runs remote or in-process.
///
///     try await memory.atomically { tx in
///         let a = try await tx.read("acct:1")?["balance"]?.intValue ?? 0
///         try await tx.write("acct:1", .object([("balance", .number(String(a + 1)))]))
///     }
public protocol Transaction: Sendable {
    /// The pointer's value at this transaction's snapshot (or its own write); nil if absent.
    func read(_ ptr: String) async throws -> JSONValue?
    /// Several pointers in one round trip; absent ones are missing from the answer.
    func read(_ ptrs: [String]) async throws -> [String: JSONValue]
    /// Buffers a write; it takes effect at commit.
    func write(_ ptr: String, _ value: JSONValue) async throws
    /// Buffers a delete.
    func delete(_ ptr: String) async throws
    /// A fresh pointer id holding `value`, allocated inside this transaction.
    func allocate(_ value: JSONValue) async throws -> String
    /// Abandons this run of the body and waits until something it read changes, then runs
    /// it again (Haskell STM's `retry`).
    func retry() async throws -> Never
    /// Runs `first`; if it calls `retry()`, its writes are discarded (its reads still count)
    /// and `second` runs instead. If both retry, the whole body waits on everything either
    /// read (Haskell STM's `orElse`).
    func orElse<T: Sendable>(
        _ first: @Sendable (any Transaction) async throws -> T,
        _ second: @Sendable (any Transaction) async throws -> T
    ) async throws -> T
}

/// Thrown by `retry()`: caught by the `atomically` loop, which waits for a change of the
/// read set and runs the body again.
public struct RetrySignal: Error, Sendable {
    public init() {}
}
