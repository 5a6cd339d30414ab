import RestmClient
import RestmCore
import Synchronization

/// A task to create: a registered kind and its input.
public struct TaskSpec: Sendable {
    public var kind: String
    public var input: JSONValue

    public init(kind: String, input: JSONValue) {
        self.kind = kind
        self.input = input
    }
}

/// What a task's run (or reduce) step ends with.
public enum TaskOutcome: Sendable {
    /// Finished with `result`. `deleting` names scratch pointers (say, subtasks' outputs this
    /// step consumed) that are deleted in the same transaction that records the result, so a
    /// step that dies half-way can run again and still find its inputs.
    case done(JSONValue, deleting: [String] = [])
    /// Waits for these subtasks; when all are done, the kind's `reduce` runs with their
    /// results, in order. `state` is kept in the task for the reduce step (`TaskContext.state`).
    case spawn([TaskSpec], state: JSONValue = .null)
}

/// What a running step sees: its task, its input, and the memory to work in.
public struct TaskContext: Sendable {
    public let id: String
    public let kind: String
    public let input: JSONValue
    /// 1 on the first run; higher after failures or a worker's death.
    public let attempt: Int
    /// In a reduce step: the `state` the run step spawned with.
    public let state: JSONValue
    public let memory: TransactionalMemory<EmbeddedBackend>
}

/// What a task of a finished tree leaves when the tree expires, for its kind to name the
/// pointers that go with it (`TaskKind.leftovers`).
public struct TaskRemains: Sendable {
    /// "done", "failed", or, in a failed tree, "queued", "running" or "waiting".
    public var status: String
    public var input: JSONValue
    /// The `state` it spawned with, if it spawned.
    public var state: JSONValue
    public var result: JSONValue?
    /// Whether its parent finished `done`: its parent's reduce then took its result over.
    public var consumed: Bool
}

/// A kind of task: a name, a run step and a reducer over its subtasks' results.
public struct TaskKind: Sendable {
    public let name: String
    public let run: @Sendable (TaskContext) async throws -> TaskOutcome
    public let reduce: @Sendable (TaskContext, [JSONValue]) async throws -> TaskOutcome
    /// Pointers a task of this kind owns beyond its record (an output list, an input it
    /// wrote), deleted with it when its finished tree expires
    /// (`TaskConfiguration.finishedRetentionMs`).
    public let leftovers: @Sendable (TaskRemains) -> [String]

    /// The default reducer finishes with the array of the subtasks' results; by default a
    /// task owns nothing but its record.
    public init(
        _ name: String,
        run: @escaping @Sendable (TaskContext) async throws -> TaskOutcome,
        reduce: @escaping @Sendable (TaskContext, [JSONValue]) async throws -> TaskOutcome = { _, results in .done(.array(results)) },
        leftovers: @escaping @Sendable (TaskRemains) -> [String] = { _ in [] }
    ) {
        self.name = name
        self.run = run
        self.reduce = reduce
        self.leftovers = leftovers
    }
}

/// The allow-list of a node: only kinds registered here are accepted and run.
public final class TaskKinds: Sendable {
    private let kinds = Mutex<[String: TaskKind]>([:])

    public init(_ kinds: [TaskKind] = []) {
        for k in kinds { register(k) }
    }

    public func register(_ kind: TaskKind) {
        kinds.withLock { $0[kind.name] = kind }
    }

    public func kind(_ name: String) -> TaskKind? {
        kinds.withLock { $0[name] }
    }

    public var names: [String] {
        kinds.withLock { Array($0.keys).sorted() }
    }
}

/// A failure a step reports on purpose (recorded as the task's error).
public struct TaskFailure: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
