import RestmCollections
import RestmCore

/// A task as stored in its pointer `task:<id>`.
struct TaskRecord: Sendable {
    enum Status: String, Sendable {
        case queued, running, waiting, done, failed
    }

    enum Phase: String, Sendable {
        case run, reduce
    }

    var kind: String
    var input: JSONValue
    var status: Status = .queued
    var phase: Phase = .run
    var parent: String?
    /// The root of its tree (nil for a root, and in records written before roots were kept):
    /// a task whose root has failed is not run.
    var root: String?
    var children: [String] = []
    var pending = 0
    var result: JSONValue?
    var state: JSONValue = .null
    var error: String?
    var attempts = 0
    var worker: String?
    var created: UInt64
    var updated: UInt64

    init(kind: String, input: JSONValue, parent: String?, now: UInt64) {
        self.kind = kind
        self.input = input
        self.parent = parent
        self.created = now
        self.updated = now
    }

    var finished: Bool { status == .done || status == .failed }

    var value: JSONValue {
        var m: [(String, JSONValue)] = [
            ("kind", .string(kind)), ("input", input), ("status", .string(status.rawValue)),
            ("phase", .string(phase.rawValue)), ("parent", parent.map { .string($0) } ?? .null),
            ("children", .array(children.map { .string($0) })), ("pending", .number(String(pending))),
            ("attempts", .number(String(attempts))),
            ("created", .number(String(created))), ("updated", .number(String(updated))),
        ]
        if let result { m.append(("result", result)) }
        if !state.isNull { m.append(("state", state)) }
        if let error { m.append(("error", .string(error))) }
        if let worker { m.append(("worker", .string(worker))) }
        if let root { m.append(("root", .string(root))) }
        return .object(m)
    }

    init(_ v: JSONValue, id: String) throws {
        guard let kind = v["kind"]?.stringValue, let s = v["status"]?.stringValue, let status = Status(rawValue: s) else {
            throw CollectionError.corrupt(ptr: TaskService.pointer(id), why: "not a task record")
        }
        self.kind = kind
        self.input = v["input"] ?? .null
        self.status = status
        self.phase = Phase(rawValue: v["phase"]?.stringValue ?? "run") ?? .run
        self.parent = v["parent"]?.stringValue
        self.root = v["root"]?.stringValue
        if case .array(let a) = v["children"] { self.children = a.compactMap(\.stringValue) }
        self.pending = v["pending"]?.intValue ?? 0
        self.result = v["result"]
        self.state = v["state"] ?? .null
        self.error = v["error"]?.stringValue
        self.attempts = v["attempts"]?.intValue ?? 0
        self.worker = v["worker"]?.stringValue
        self.created = UInt64(v["created"]?.intValue ?? 0)
        self.updated = UInt64(v["updated"]?.intValue ?? 0)
    }
}

/// One shard of the task queue, in pointer `tasks:q<i>`: the claims (leases) of tasks being
/// run, and where its ready tasks are. Ready ids live in chunks of their own
/// (`tasks:q<i>.<n>`, `ReadyChunk`) numbered `head` … `tail`, oldest first, so that a claim,
/// a lease renewal or an enqueue rewrites a few KiB, not the whole queue. `ready` is the
/// inline list of stores written before chunks: consumed first, never appended to.
struct QueueShard: Sendable {
    struct Claim: Sendable {
        var task: String
        var token: String
        var until: UInt64
        var owner: String
    }

    var ready: [String] = []
    var claims: [Claim] = []
    /// The oldest chunk that may hold ready ids, and the newest (the one appended to).
    var head = 0
    var tail = 0
    /// Ready ids in the shard, inline and in chunks.
    var count = 0

    init() {}

    init(_ v: JSONValue?) {
        guard let v else { return }
        if case .array(let a) = v["ready"] { ready = a.compactMap(\.stringValue) }
        if case .array(let a) = v["claims"] {
            claims = a.compactMap { c in
                guard let t = c["task"]?.stringValue, let k = c["token"]?.stringValue, let u = c["until"]?.intValue,
                    let o = c["owner"]?.stringValue
                else { return nil }
                return Claim(task: t, token: k, until: UInt64(max(0, u)), owner: o)
            }
        }
        head = max(0, v["head"]?.intValue ?? 0)
        tail = max(head, v["tail"]?.intValue ?? head)
        // A header written before chunks has its whole queue inline.
        count = max(0, v["count"]?.intValue ?? ready.count)
    }

    var value: JSONValue {
        var m: [(String, JSONValue)] = [
            (
                "claims",
                .array(
                    claims.map {
                        .object([
                            ("task", .string($0.task)), ("token", .string($0.token)),
                            ("until", .number(String($0.until))), ("owner", .string($0.owner)),
                        ])
                    })
            ),
            ("head", .number(String(head))), ("tail", .number(String(tail))), ("count", .number(String(count))),
        ]
        if !ready.isEmpty { m.insert(("ready", .array(ready.map { .string($0) })), at: 0) }
        return .object(m)
    }
}

/// A chunk of a queue shard's ready ids, in pointer `tasks:q<i>.<n>`: `{"ids": [...]}`.
struct ReadyChunk: Sendable {
    var ids: [String] = []

    init(ids: [String]) { self.ids = ids }

    init(_ v: JSONValue?) {
        if case .array(let a) = v?["ids"] { ids = a.compactMap(\.stringValue) }
    }

    var value: JSONValue { .object([("ids", .array(ids.map { .string($0) }))]) }
}
