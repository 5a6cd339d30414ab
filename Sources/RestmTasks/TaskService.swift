import Logging
import RestmClient
import RestmCollections
import RestmCore
import RestmNode
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Limits and timing of a node's task executors.
public struct TaskConfiguration: Sendable {
    /// Workers started by `start()` (a few per core: tasks mostly wait on the store).
    public var workers: Int = max(2, 2 * Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    /// How long a claim lasts without a heartbeat; a dead worker's task is re-run after it.
    public var leaseMs: Int = 10_000
    /// Shards of the ready queue (pointers `tasks:q<i>`).
    public var queueShards: Int = 16
    /// Runs of one task (failures and lapsed leases count) before it is marked failed.
    public var attemptsMax: Int = 3
    /// Ready tasks per queue shard accepted from `submit`; beyond it, 503 `overloaded`.
    public var readyPerShardMax: Int = 4_096
    /// Ready ids per chunk of a queue shard (`tasks:q<i>.<n>`): what one enqueue or claim
    /// rewrites, whatever the queue's length.
    public var readyChunkMax: Int = 64
    /// A ready task of a kind this node lacks is left for a node that has it; queued this
    /// long with no node claiming it, it fails ("no worker knows its kind") instead of
    /// holding its queue shard's head for ever.
    public var foreignKindWaitMs: Int = 600_000
    /// Subtasks one step may spawn.
    public var childrenMax: Int = 1_024
    /// Tasks visited when `info` sums the progress of a tree.
    public var treeWalkMax: Int = 5_000
    /// How long a finished tree (its root done or failed) is kept; then its records and
    /// what its kinds name as leftovers are deleted (`GET /task/info` answers 404).
    public var finishedRetentionMs: Int = 24 * 3_600_000
    /// Finished trees kept at most, whatever their age: the oldest go first beyond it.
    public var finishedRootsMax: Int = 100_000

    public init() {}
}

/// Answer of `result(_:timeout:)`.
public enum TaskResult: Sendable {
    case done(JSONValue)
    case failed(String)
    /// Not finished at the timeout; carries the task's info.
    case pending(JSONValue)
}

/// Tasks stored in the memory and the workers that run them (DESIGN.md, Tasks).
///
/// A task is the pointer `task:<id>` (`TaskRecord`). Ready tasks wait in a sharded queue
/// (`tasks:q<i>`); a worker claims one in a transaction that moves it from `ready` to
/// `claims` with a lease and a random token, renews the lease while the step runs, and
/// records the outcome in a transaction that first checks the token is still there. So a
/// worker that dies has its claim lapse and the task re-run by another, and a worker that was
/// only slow cannot record anything after its task was taken over. A step either finishes
/// with a result or spawns subtasks; the last subtask to finish queues its parent again, whose
/// kind's `reduce` then runs over the subtasks' results. Failures are recorded and the task
/// re-run up to `attemptsMax` runs; then it fails, and so do its ancestors.
public final class TaskService: Sendable {
    public let node: Node
    public let kinds: TaskKinds
    public let configuration: TaskConfiguration
    let memory: TransactionalMemory<EmbeddedBackend>
    /// `n<node>.<incarnation>`: claims by an older incarnation of this node are dead.
    let owner: String
    let workers = Mutex<[Task<Void, Never>]>([])
    /// Deletes finished trees past their retention; runs with the workers.
    let sweeper = Mutex<Task<Void, Never>?>(nil)
    let stopped = Atomic<Bool>(false)
    let running = Atomic<Int>(0)

    public init(node: Node, kinds: TaskKinds, configuration: TaskConfiguration = TaskConfiguration()) {
        self.node = node
        self.kinds = kinds
        self.configuration = configuration
        self.memory = TransactionalMemory(backend: EmbeddedBackend(node: node))
        self.owner = "n\(node.configuration.nodeID).\(node.incarnation)"
    }

    static func pointer(_ id: String) -> String { "task:\(id)" }
    func shardPointer(_ i: Int) -> String { "tasks:q\(i)" }
    func chunkPointer(_ i: Int, _ n: Int) -> String { "tasks:q\(i).\(n)" }

    var now: UInt64 { node.physicalMillis }

    /// Task ids: `k` and 26 base-32 digits.
    public static func isTaskID(_ s: String) -> Bool {
        s.utf8.count == 27 && s.hasPrefix("k") && PointerID.isValid(s)
    }

    // MARK: workers

    /// Starts the workers if none run (idempotent); answers how many run.
    @discardableResult
    public func start(workers count: Int? = nil) -> Int {
        workers.withLock { ws in
            guard ws.isEmpty, !stopped.load(ordering: .relaxed) else { return ws.count }
            // Workers outlive the request that may start them (`POST /sys/init`): they must
            // not inherit its answer budgets.
            AnswerLease.$current.withValue(nil) {
                BatchAnswerBudget.$current.withValue(nil) {
                    for i in 0..<max(1, count ?? configuration.workers) {
                        ws.append(Task { await self.workerLoop(i) })
                    }
                    sweeper.withLock { $0 = Task { await self.sweeperLoop() } }
                }
            }
            node.activity.add("task workers started: \(ws.count)")
            return ws.count
        }
    }

    public var workerCount: Int { workers.withLock { $0.count } }

    /// Steps running right now.
    public var runningSteps: Int { running.load(ordering: .relaxed) }

    /// Stops the workers; steps in flight are cancelled and their claims lapse (they run again
    /// after a restart).
    public func stop() async {
        stopped.store(true, ordering: .relaxed)
        let ws = workers.withLock { ws in
            defer { ws = [] }
            return ws
        }
        let sweep = sweeper.withLock { s in
            defer { s = nil }
            return s
        }
        sweep?.cancel()
        for w in ws { w.cancel() }
        for w in ws { await w.value }
        await sweep?.value
    }

    var active: Bool { !stopped.load(ordering: .relaxed) && node.state == .running && !Task.isCancelled }

    func workerLoop(_ index: Int) async {
        let name = "\(owner).w\(index)"
        while active {
            do {
                guard let claim = try await claim() else { continue }
                await execute(claim, worker: name)
            } catch ClientError.retryTimedOut {
                continue
            } catch {
                guard active else { break }
                node.logger.warning("task worker error", metadata: ["restm.worker": "\(name)", "error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    struct Claim: Sendable {
        var id: String
        var token: String
        var shard: Int
        var record: TaskRecord
    }

    enum ClaimStep: Sendable {
        case claimed(Claim)
        /// Something was tidied (a dangling entry dropped, a task failed): look again.
        case tidied
    }

    func isDead(_ c: QueueShard.Claim, now: UInt64) -> Bool {
        if c.until < now { return true }
        // An older incarnation of this node cannot be running: its store lock is ours.
        let mine = "n\(node.configuration.nodeID)."
        return c.owner.hasPrefix(mine) && c.owner != owner
    }

    /// Claims a ready task, or one whose claim lapsed; blocks (`retry`) while there is none,
    /// up to half a lease so lapsed claims are noticed. nil: look again.
    func claim() async throws -> Claim? {
        var options = AtomicOptions()
        options.deadline = .milliseconds(max(50, configuration.leaseMs / 2))
        let step: ClaimStep = try await memory.atomically(options) { tx in
            let now = self.now
            let shards = self.configuration.queueShards
            let start = Int.random(in: 0..<shards)
            for k in 0..<shards {
                let i = (start + k) % shards
                let p = self.shardPointer(i)
                var shard = QueueShard(try await tx.read(p))
                // Lapsed claims first (a dead worker's task), skipping kinds this node lacks.
                for ci in shard.claims.indices.prefix(64) where self.isDead(shard.claims[ci], now: now) {
                    let id = shard.claims[ci].task
                    guard let v = try await tx.read(Self.pointer(id)), var rec = try? TaskRecord(v, id: id), !rec.finished else {
                        shard.claims.remove(at: ci)
                        try await tx.write(p, shard.value)
                        return .tidied
                    }
                    guard self.kinds.kind(rec.kind) != nil else { continue }
                    switch try await self.ancestry(tx, rec) {
                    case .expired:
                        // Its tree is being deleted: the sweeper, walking it, deletes the record.
                        shard.claims.remove(at: ci)
                        try await tx.write(p, shard.value)
                        return .tidied
                    case .failed:
                        // An ancestor failed meanwhile: its work is moot; fail it, not run again.
                        shard.claims.remove(at: ci)
                        try await tx.write(p, shard.value)
                        rec.status = .failed
                        rec.error = "not run again: an ancestor failed"
                        rec.updated = now
                        try await tx.write(Self.pointer(id), rec.value)
                        return .tidied
                    case .live: break
                    }
                    if self.oversize(rec) {
                        shard.claims.remove(at: ci)
                        try await tx.write(p, shard.value)
                        try await self.failOversize(tx, id, &rec)
                        return .tidied
                    }
                    rec.attempts += 1
                    if rec.attempts > self.configuration.attemptsMax {
                        shard.claims.remove(at: ci)
                        try await tx.write(p, shard.value)
                        try await self.fail(tx, id, &rec, "gave up after \(rec.attempts - 1) runs; the last worker (\(rec.worker ?? "?")) stopped renewing its claim")
                        return .tidied
                    }
                    shard.claims.remove(at: ci)
                    return .claimed(try await self.take(tx, id, &rec, from: &shard, shard: i, now: now))
                }
                // Ready tasks, oldest first (up to 16 looked at): the inline list of an older
                // store, then the chunks from the head on.
                var examined = 0
                var chunksRead = 0
                var source: Int? = shard.ready.isEmpty ? shard.head : nil  // nil: the inline list
                while examined < 16, chunksRead < 4 {
                    let here = source
                    var ready = shard.ready
                    if let n = here {
                        chunksRead += 1
                        ready = ReadyChunk(try await tx.read(self.chunkPointer(i, n))).ids
                        if ready.isEmpty, n == shard.head, shard.head < shard.tail {
                            // An emptied chunk before the tail: move the head past it (no id
                            // leaves the queue: the count stays).
                            try await tx.delete(self.chunkPointer(i, n))
                            shard.head += 1
                            try await tx.write(p, shard.value)
                            return .tidied
                        }
                    }
                    for (j, id) in ready.prefix(16 - examined).enumerated() {
                        examined += 1
                        guard let v = try await tx.read(Self.pointer(id)), var rec = try? TaskRecord(v, id: id), !rec.finished else {
                            ready.remove(at: j)
                            try await self.saveReady(tx, i, &shard, chunk: here, ready)
                            return .tidied
                        }
                        guard self.kinds.kind(rec.kind) != nil else {
                            // Left for a node that has the kind, unless none has claimed it
                            // for so long that none has.
                            guard now > rec.updated + UInt64(max(0, self.configuration.foreignKindWaitMs)) else { continue }
                            ready.remove(at: j)
                            try await self.saveReady(tx, i, &shard, chunk: here, ready)
                            rec.attempts = self.configuration.attemptsMax
                            try await self.fail(tx, id, &rec, "no worker knows the kind \(JSONWriter.quoted(rec.kind)): it was queued \((now - rec.updated) / 1000) s and never claimed")
                            return .tidied
                        }
                        let ancestry = try await self.ancestry(tx, rec)
                        ready.remove(at: j)
                        try await self.saveReady(tx, i, &shard, chunk: here, ready)
                        if ancestry == .expired {
                            // Its tree is being deleted (the sweeper deleted an ancestor): it
                            // leaves the queue unrun, and the sweeper, walking the tree, deletes
                            // its record (deleting it here would cut the walk short).
                            return .tidied
                        }
                        if ancestry == .failed {
                            // An ancestor failed: this subtree's work is moot; fail it unrun.
                            rec.status = .failed
                            rec.error = "not run: an ancestor failed"
                            rec.updated = now
                            try await tx.write(Self.pointer(id), rec.value)
                            return .tidied
                        }
                        if self.oversize(rec) {
                            // It could not be written as running: fail it (without its input, so
                            // that the record fits) instead of failing the whole shard's claims.
                            try await self.failOversize(tx, id, &rec)
                            return .tidied
                        }
                        rec.attempts += 1
                        return .claimed(try await self.take(tx, id, &rec, from: &shard, shard: i, now: now))
                    }
                    // Only kinds this node lacks so far: look in the next chunk.
                    let next = here.map { $0 + 1 } ?? shard.head
                    guard next <= shard.tail else { break }
                    source = next
                }
            }
            try await tx.retry()
        }
        if case .claimed(let c) = step { return c }
        return nil
    }

    enum Ancestry { case live, failed, expired }

    /// Whether a task's parent or root has failed (its work is moot: failing a task fails its
    /// ancestors up to the root, not the rest of the tree), or is gone (its tree expired and
    /// is being deleted).
    func ancestry(_ tx: any Transaction, _ rec: TaskRecord) async throws -> Ancestry {
        var failed = false
        for aid in [rec.parent, rec.root].compactMap({ $0 }) {
            guard let av = try await tx.read(Self.pointer(aid)) else { return .expired }
            if let a = try? TaskRecord(av, id: aid), a.status == .failed { failed = true }
        }
        return failed ? .failed : .live
    }

    /// Claims task `id` for this worker: a new claim (fresh token and lease) in the shard,
    /// the record marked running; both written.
    func take(_ tx: any Transaction, _ id: String, _ rec: inout TaskRecord, from shard: inout QueueShard, shard index: Int, now: UInt64) async throws -> Claim {
        let token = PointerID.random(prefix: "c")
        shard.claims.append(.init(task: id, token: token, until: now + UInt64(configuration.leaseMs), owner: owner))
        rec.status = .running
        rec.worker = owner
        rec.updated = now
        try await tx.write(shardPointer(index), shard.value)
        try await tx.write(Self.pointer(id), rec.value)
        return Claim(id: id, token: token, shard: index, record: rec)
    }

    /// Runs one step of a claimed task, renewing its lease meanwhile, and records the outcome.
    func execute(_ c: Claim, worker: String) async {
        running.add(1, ordering: .relaxed)
        defer { running.subtract(1, ordering: .relaxed) }
        let memory = self.memory
        let ctx = TaskContext(id: c.id, kind: c.record.kind, input: c.record.input, attempt: c.record.attempts, state: c.record.state, memory: memory)
        guard let kind = kinds.kind(c.record.kind) else { return }
        let step = Task { () async throws -> TaskOutcome in
            switch c.record.phase {
            case .run:
                return try await kind.run(ctx)
            case .reduce:
                let results = try await self.childResults(c.record.children)
                return try await kind.reduce(ctx, results)
            }
        }
        let heartbeat = Task {
            let every = Duration.milliseconds(max(10, self.configuration.leaseMs / 3))
            while !Task.isCancelled {
                try? await Task.sleep(for: every)
                guard !Task.isCancelled else { return }
                if (try? await self.renew(c)) == false {
                    self.node.logger.warning("lost the claim of a running task", metadata: ["restm.task": "\(c.id)"])
                    step.cancel()
                    return
                }
            }
        }
        defer { heartbeat.cancel() }
        do {
            // Stopping the worker stops its step (like a killed process: nothing is recorded).
            let outcome = try await withTaskCancellationHandler {
                try await step.value
            } onCancel: {
                step.cancel()
            }
            heartbeat.cancel()
            guard active else { return }
            switch outcome {
            case .done(let result, let deleting):
                try await finish(c, result: result, deleting: deleting)
            case .spawn(let specs, let state):
                try await spawn(c, specs, state: state, worker: worker)
            }
        } catch {
            guard active else { return }  // shutting down: the claim lapses, the task runs again
            let message = (error as? TaskFailure)?.message ?? "\(error)"
            node.logger.info("task step failed", metadata: ["restm.task": "\(c.id)", "error": "\(message)"])
            do {
                try await memory.atomically { tx in
                    guard var rec = try await self.release(tx, c) else { return }
                    try await self.fail(tx, c.id, &rec, message)
                }
            } catch {
                node.logger.warning("cannot record a task failure", metadata: ["restm.task": "\(c.id)", "error": "\(error)"])
            }
        }
    }

    func childResults(_ children: [String]) async throws -> [JSONValue] {
        try await memory.atomically { tx in
            let values = try await tx.read(children.map(Self.pointer))
            return try children.map { id in
                guard let v = values[Self.pointer(id)] else { throw TaskFailure("subtask \(id) is missing") }
                let rec = try TaskRecord(v, id: id)
                guard rec.status == .done else { throw TaskFailure("subtask \(id) is \(rec.status.rawValue), not done") }
                return rec.result ?? .null
            }
        }
    }

    /// Extends a claim's lease; false if the claim is gone (taken over).
    func renew(_ c: Claim) async throws -> Bool {
        try await memory.atomically { tx in
            let p = self.shardPointer(c.shard)
            var shard = QueueShard(try await tx.read(p))
            guard let i = shard.claims.firstIndex(where: { $0.token == c.token }) else { return false }
            shard.claims[i].until = self.now + UInt64(self.configuration.leaseMs)
            try await tx.write(p, shard.value)
            return true
        }
    }

    /// Removes the claim if it is still ours and answers the task's record; nil when the
    /// claim was taken over (then nothing may be recorded).
    func release(_ tx: any Transaction, _ c: Claim) async throws -> TaskRecord? {
        let p = shardPointer(c.shard)
        var shard = QueueShard(try await tx.read(p))
        guard let i = shard.claims.firstIndex(where: { $0.token == c.token }) else { return nil }
        shard.claims.remove(at: i)
        try await tx.write(p, shard.value)
        guard let v = try await tx.read(Self.pointer(c.id)) else { return nil }
        return try TaskRecord(v, id: c.id)
    }

    func finish(_ c: Claim, result: JSONValue, deleting: [String]) async throws {
        let recorded = try await memory.atomically { tx -> Bool in
            guard var rec = try await self.release(tx, c) else { return false }
            rec.status = .done
            rec.result = result
            rec.error = nil
            rec.updated = self.now
            try await tx.write(Self.pointer(c.id), rec.value)
            for p in deleting { try await tx.delete(p) }
            if let parent = rec.parent {
                try await self.childFinished(tx, parent)
            } else {
                try await self.rootFinished(tx, c.id)
            }
            return true
        }
        if !recorded { node.logger.warning("a task's claim was taken over before it finished; its result is dropped", metadata: ["restm.task": "\(c.id)"]) }
    }

    func spawn(_ c: Claim, _ specs: [TaskSpec], state: JSONValue, worker: String) async throws {
        guard specs.count <= configuration.childrenMax else {
            throw TaskFailure("a step may spawn at most \(configuration.childrenMax) subtasks; it asked for \(specs.count)")
        }
        for s in specs where kinds.kind(s.kind) == nil { throw TaskFailure("unknown task kind \(JSONWriter.quoted(s.kind))") }
        guard !specs.isEmpty else {
            // Nothing to wait for: reduce over no results at once.
            var next = c
            next.record.phase = .reduce
            next.record.children = []
            next.record.state = state
            return await execute(next, worker: worker)
        }
        try await memory.atomically { tx in
            guard var rec = try await self.release(tx, c) else { return }
            var ids: [String] = []
            for s in specs {
                let id = PointerID.random(prefix: "k")
                var child = TaskRecord(kind: s.kind, input: s.input, parent: c.id, now: self.now)
                child.root = rec.root ?? c.id
                try await self.create(tx, id, child, bounded: false)
                ids.append(id)
            }
            rec.status = .waiting
            rec.phase = .reduce
            rec.children = ids
            rec.pending = ids.count
            try await tx.write(Self.pendingPointer(c.id), .number(String(ids.count)))
            rec.attempts = 0  // runs are counted per phase
            rec.state = state
            rec.updated = self.now
            try await tx.write(Self.pointer(c.id), rec.value)
        }
    }

    /// Subtasks of `id` not finished yet, while it waits for them: a counter of its own, so
    /// that each finishing subtask rewrites a number, not the parent's record (whose list of
    /// up to `childrenMax` children would be rewritten once per child).
    static func pendingPointer(_ id: String) -> String { "tasks:pending:\(id)" }

    /// One subtask of `parentID` finished: the last one queues the parent for its reduce.
    func childFinished(_ tx: any Transaction, _ parentID: String) async throws {
        let counter = Self.pendingPointer(parentID)
        var last = false
        if let left = try await tx.read(counter)?.intValue {
            guard left <= 1 else {
                try await tx.write(counter, .number(String(left - 1)))
                return
            }
            try await tx.delete(counter)
            last = true
        }
        guard let v = try await tx.read(Self.pointer(parentID)) else { return }
        var parent = try TaskRecord(v, id: parentID)
        guard parent.status == .waiting else { return }  // failed meanwhile: nothing to reduce
        // No counter: a parent that spawned before counters existed counts in its record.
        parent.pending = last ? 0 : parent.pending - 1
        parent.updated = now
        if parent.pending <= 0 {
            parent.status = .queued
            try await enqueue(tx, parentID, bounded: false)
        }
        try await tx.write(Self.pointer(parentID), parent.value)
    }

    /// Fails a task whose record has grown past what can be claimed, dropping its input and
    /// state so that the failed record fits.
    func failOversize(_ tx: any Transaction, _ id: String, _ rec: inout TaskRecord) async throws {
        let bytes = rec.value.compactText.utf8.count
        rec.input = .null
        rec.state = .null
        rec.attempts = configuration.attemptsMax
        try await fail(tx, id, &rec, "not run: its record (\(bytes) bytes) is too large to be claimed; the input was dropped")
    }

    /// Errors kept in records are cut to this many characters (a record must stay within
    /// the value limit, whatever a step threw).
    static let errorCharactersMax = 2_000

    /// Records a failed run: queued again while runs remain, else failed with its ancestors.
    func fail(_ tx: any Transaction, _ id: String, _ rec: inout TaskRecord, _ message: String) async throws {
        let message = message.count > Self.errorCharactersMax ? String(message.prefix(Self.errorCharactersMax)) + "…" : message
        rec.error = message
        rec.updated = now
        if rec.attempts < configuration.attemptsMax {
            rec.status = .queued
            try await tx.write(Self.pointer(id), rec.value)
            try await enqueue(tx, id, bounded: false)
            return
        }
        rec.status = .failed
        try await tx.write(Self.pointer(id), rec.value)
        if rec.parent == nil { try await rootFinished(tx, id) }
        var child = id
        var next = rec.parent
        for _ in 0..<1_024 {
            guard let pid = next, let pv = try await tx.read(Self.pointer(pid)) else { return }
            var parent = try TaskRecord(pv, id: pid)
            guard !parent.finished else { return }
            parent.status = .failed
            parent.error = "subtask \(child) failed: \(message)"
            parent.updated = now
            try await tx.write(Self.pointer(pid), parent.value)
            try await tx.delete(Self.pendingPointer(pid))  // its other subtasks count for nothing now
            if parent.parent == nil { try await rootFinished(tx, pid) }
            child = pid
            next = parent.parent
        }
    }

    // MARK: expiring finished trees

    /// Finished roots, in the order they finished (`{"task", "at"}`), spread over 16 lists so
    /// that finishing roots seldom conflict.
    static let finishedLists = 16
    func finishedRoots(_ k: Int) -> TList { try! TList("tasks:done\(k)") }

    /// The tree being deleted: `{"stack": [...]}`, a stack of what is left to delete — a
    /// task as `{"t": id, "c": consumed}`, another pointer as its id.
    static let sweepPointer = "tasks:sweep"

    /// Pointers one sweep transaction deletes at most.
    static let sweepPointersMax = 1_000
    /// Bytes of a sweep's stack past which a task's leftovers are not added (and stay).
    static let sweepStackBytesMax = 512 * 1024

    /// A tree whose root is `id` has finished: it expires after the retention.
    func rootFinished(_ tx: any Transaction, _ id: String) async throws {
        let list = finishedRoots(Int.random(in: 0..<Self.finishedLists))
        try await list.push(tx, .object([("task", .string(id)), ("at", .number(String(now)))]))
    }

    func sweeperLoop() async {
        let idle = Duration.milliseconds(max(50, min(configuration.finishedRetentionMs / 4, 1_000)))
        while active {
            do {
                if try await sweepStep() { continue }
            } catch {
                guard active else { break }
                node.logger.warning("sweeping finished tasks failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: idle)  // `active` is false once cancelled
        }
    }

    /// One transaction of deleting expired trees: goes on with the tree being deleted, or
    /// starts on the oldest finished tree if it is past the retention, or if more than
    /// `finishedRootsMax` trees are kept (and it finished more than a few leases ago). False
    /// when there was nothing to do.
    func sweepStep() async throws -> Bool {
        let expired = try await memory.atomically { tx -> Int? in
            if let state = try await tx.read(Self.sweepPointer) {
                return try await self.sweepSome(tx, state)
            }
            let now = self.now
            var kept = 0
            var oldest: (list: TList, id: String, at: UInt64)?
            for k in 0..<Self.finishedLists {
                let list = self.finishedRoots(k)
                guard let head = try await list.peek(tx) else { continue }
                kept += try await list.count(tx)
                let at = UInt64(max(0, head["at"]?.intValue ?? 0))
                if oldest == nil || at < oldest!.at { oldest = (list, head["task"]?.stringValue ?? "", at) }
            }
            guard let oldest else { return nil }
            let retention = UInt64(max(0, self.configuration.finishedRetentionMs))
            let settled = UInt64(3 * max(0, self.configuration.leaseMs))
            guard oldest.at + retention <= now || (kept > self.configuration.finishedRootsMax && oldest.at + settled <= now) else { return nil }
            _ = try await oldest.list.popIfAny(tx)
            guard Self.isTaskID(oldest.id) else { return 0 }
            try await tx.write(Self.sweepPointer, .object([("stack", .array([Self.sweepItem(oldest.id, consumed: false)]))]))
            return 0
        }
        guard let expired else { return false }
        if expired > 0 { node.metrics.count("task_expired", by: expired) }
        return true
    }

    static func sweepItem(_ id: String, consumed: Bool) -> JSONValue {
        .object([("t", .string(id)), ("c", .bool(consumed))])
    }

    /// Deletes up to `sweepPointersMax` pointers of the tree being deleted, top down: a
    /// task's record, its counter, its kind's leftovers (deleted next, before its children:
    /// the stack stays small), then its children. Answers how many records it deleted.
    func sweepSome(_ tx: any Transaction, _ state: JSONValue) async throws -> Int {
        var stack: [JSONValue] = []
        if case .array(let a) = state["stack"] { stack = a }
        var bytes = stack.reduce(0) { $0 + ($1.stringValue?.utf8.count ?? 40) + 4 }
        var deleted = 0
        var records = 0
        while deleted < Self.sweepPointersMax, let item = stack.popLast() {
            if let p = item.stringValue {
                if PointerID.isValid(p) { try await tx.delete(p) }
                deleted += 1
                bytes -= p.utf8.count + 4
                continue
            }
            bytes -= 40
            guard let id = item["t"]?.stringValue, Self.isTaskID(id) else { continue }
            guard let v = try await tx.read(Self.pointer(id)), let rec = try? TaskRecord(v, id: id) else { continue }
            try await tx.delete(Self.pointer(id))
            deleted += 1
            records += 1
            if rec.status == .waiting {
                try await tx.delete(Self.pendingPointer(id))
                deleted += 1
            }
            stack += rec.children.map { Self.sweepItem($0, consumed: rec.status == .done) }
            bytes += rec.children.count * 40
            guard let kind = kinds.kind(rec.kind) else {
                node.logger.warning("a finished task of a kind this node lacks goes without its leftovers", metadata: ["restm.task": "\(id)", "kind": "\(rec.kind)"])
                continue
            }
            let remains = TaskRemains(
                status: rec.status.rawValue, input: rec.input, state: rec.state, result: rec.result,
                consumed: item["c"]?.boolValue ?? false)
            let extra = kind.leftovers(remains).filter { PointerID.isValid($0) }
            let extraBytes = extra.reduce(0) { $0 + $1.utf8.count + 4 }
            guard bytes + extraBytes <= Self.sweepStackBytesMax else {
                node.logger.warning("a finished task's leftovers are too many to delete; they stay", metadata: ["restm.task": "\(id)", "pointers": "\(extra.count)"])
                continue
            }
            // Reversed: the first named (a list's head and tail) go first, so that a reader
            // meanwhile finds no list rather than a list without its elements.
            stack += extra.reversed().map { .string($0) }
            bytes += extraBytes
        }
        if stack.isEmpty {
            try await tx.delete(Self.sweepPointer)
        } else {
            try await tx.write(Self.sweepPointer, .object([("stack", .array(stack))]))
        }
        return records
    }

    // MARK: submitting and watching

    /// Writes a new task record and queues it.
    func create(_ tx: any Transaction, _ id: String, _ rec: TaskRecord, bounded: Bool) async throws {
        try await tx.write(Self.pointer(id), rec.value)
        try await enqueue(tx, id, bounded: bounded)
    }

    /// Appends `id` to a random queue shard with room (`bounded`: refuse when all are full):
    /// to the shard's tail chunk, or a new chunk after it when the tail is full.
    func enqueue(_ tx: any Transaction, _ id: String, bounded: Bool) async throws {
        let shards = configuration.queueShards
        let chunkMax = max(1, configuration.readyChunkMax)
        let start = Int.random(in: 0..<shards)
        for k in 0..<shards {
            let i = (start + k) % shards
            let p = shardPointer(i)
            var shard = QueueShard(try await tx.read(p))
            // Submissions stop at the soft limit; subtasks and re-queues may go up to four
            // times it (so a running tree can finish).
            let cap = bounded ? configuration.readyPerShardMax : configuration.readyPerShardMax * 4
            if shard.count >= cap { continue }
            let tailPointer = chunkPointer(i, shard.tail)
            var chunk = ReadyChunk(try await tx.read(tailPointer))
            if chunk.ids.count >= chunkMax {
                shard.tail += 1
                try await tx.write(chunkPointer(i, shard.tail), ReadyChunk(ids: [id]).value)
            } else {
                chunk.ids.append(id)
                try await tx.write(tailPointer, chunk.value)
            }
            shard.count += 1
            try await tx.write(p, shard.value)
            return
        }
        throw RestmError(.overloaded, "the task queue is full (\(shards * configuration.readyPerShardMax) ready tasks)")
    }

    /// Writes back the ready ids a claim left in `chunk` (nil: the shard's inline list). An
    /// emptied chunk is deleted, and the head moves past it while newer chunks exist.
    /// The header's `count` goes down by the one id taken.
    func saveReady(_ tx: any Transaction, _ i: Int, _ shard: inout QueueShard, chunk: Int?, _ ready: [String]) async throws {
        shard.count = max(0, shard.count - 1)
        if let n = chunk {
            if ready.isEmpty {
                try await tx.delete(chunkPointer(i, n))
                if n == shard.head, shard.head < shard.tail { shard.head += 1 }
            } else {
                try await tx.write(chunkPointer(i, n), ReadyChunk(ids: ready).value)
            }
        } else {
            shard.ready = ready
        }
        try await tx.write(shardPointer(i), shard.value)
    }

    /// Room a task record keeps under the value limit for what running adds to it (the
    /// worker, the status, an error, a small state).
    static let recordHeadroom = 8 * 1024

    /// Whether `rec` is too large to be claimed and recorded (its value plus the headroom
    /// would pass the node's value limit).
    func oversize(_ rec: TaskRecord) -> Bool {
        rec.value.compactText.utf8.count + Self.recordHeadroom > node.limits.valueBytesMax
    }

    /// Creates a task of a registered kind; answers its id.
    public func submit(_ spec: TaskSpec) async throws -> String {
        guard kinds.kind(spec.kind) != nil else {
            throw RestmError(.unknownKind, "no task kind \(JSONWriter.quoted(spec.kind)) is registered; known: \(kinds.names.joined(separator: ", "))")
        }
        let id = PointerID.random(prefix: "k")
        let rec = TaskRecord(kind: spec.kind, input: spec.input, parent: nil, now: now)
        // A record that fits only as submitted could never be claimed (claiming adds to it):
        // it would sit at the front of its queue shard for ever.
        guard !oversize(rec) else {
            throw RestmError(.tooLarge, "a task's record (its input) may be at most \(node.limits.valueBytesMax - Self.recordHeadroom) bytes of JSON")
        }
        try await memory.atomically { tx in
            try await self.create(tx, id, rec, bounded: true)
        }
        node.metrics.count("task_submitted")
        return id
    }

    func record(_ id: String) async throws -> (TaskRecord, Timestamp) {
        guard Self.isTaskID(id), let v = try await node.get(Self.pointer(id)), let text = v.value else {
            throw RestmError(.notFound, "no task \(JSONWriter.quoted(id))")
        }
        return (try TaskRecord(try JSONValue.parse(text), id: id), v.ts)
    }

    /// `{"task", "kind", "status", "children", "progress": {"done", "total"}, …}`; progress counts
    /// the finished tasks of the whole tree below (up to `treeWalkMax` tasks).
    public func info(_ id: String) async throws -> JSONValue {
        let (rec, _) = try await record(id)
        return try await info(id, rec)
    }

    func info(_ id: String, _ rec: TaskRecord) async throws -> JSONValue {
        // Level by level, 256 records per transaction: records may be large (a task's
        // input), and a progress count needs no single snapshot.
        let walkMax = configuration.treeWalkMax
        var done = rec.status == .done ? 1 : 0
        var total = 1
        var level = rec.children[...]
        var next: [String] = []
        while total < walkMax {
            if level.isEmpty {
                guard !next.isEmpty else { break }
                level = next[...]
                next = []
            }
            let batch = Array(level.prefix(min(256, walkMax - total)))
            level = level.dropFirst(batch.count)
            let (d, t, children) = try await memory.atomically { tx -> (Int, Int, [String]) in
                let values = try await tx.read(batch.map(Self.pointer))
                var d = 0, t = 0
                var children: [String] = []
                for cid in batch {
                    guard let v = values[Self.pointer(cid)], let r = try? TaskRecord(v, id: cid) else { continue }
                    t += 1
                    if r.status == .done { d += 1 }
                    children += r.children
                }
                return (d, t, children)
            }
            done += d
            total += t
            next += children.prefix(walkMax)
        }
        let complete = level.isEmpty && next.isEmpty
        var m: [(String, JSONValue)] = [
            ("task", .string(id)), ("kind", .string(rec.kind)), ("status", .string(rec.status.rawValue)),
            ("phase", .string(rec.phase.rawValue)),
            ("parent", rec.parent.map { .string($0) } ?? .null),
            ("children", .array(rec.children.map { .string($0) })),
            ("progress", .object([("done", .number(String(done))), ("total", .number(String(total))), ("complete", .bool(complete))])),
            ("attempts", .number(String(rec.attempts))),
            ("created", .number(String(rec.created))), ("updated", .number(String(rec.updated))),
        ]
        if let e = rec.error { m.append(("error", .string(e))) }
        return .object(m)
    }

    /// Waits (watching the task's pointer, not polling) until the task finishes or `timeout`.
    public func result(_ id: String, timeout: Duration) async throws -> TaskResult {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (rec, version) = try await record(id)
            switch rec.status {
            case .done: return .done(rec.result ?? .null)
            case .failed: return .failed(rec.error ?? "failed")
            default: break
            }
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero, node.state == .running else { return .pending(try await info(id, rec)) }
            _ = try await node.watch([(Self.pointer(id), version)], timeout: remaining)
        }
    }
}

/// One task as the explorer shows it.
public struct TaskSummary: Sendable {
    public var id: String
    public var kind: String
    public var status: String
    public var depth: Int
    public var parent: String?
    public var children: Int
    public var created: UInt64
    public var updated: UInt64
    public var error: String?
}

extension TaskService {
    func summary(_ id: String, _ r: TaskRecord, depth: Int) -> TaskSummary {
        TaskSummary(
            id: id, kind: r.kind, status: r.status.rawValue, depth: depth, parent: r.parent, children: r.children.count,
            created: r.created, updated: r.updated, error: r.error)
    }

    /// The tree below `id`, depth-first in child order, at most `limit` tasks, read at one
    /// snapshot.
    public func tree(_ id: String, limit: Int = 300) async throws -> [TaskSummary] {
        let (root, _) = try await record(id)
        return try await memory.atomically { tx in
            var out = [self.summary(id, root, depth: 0)]
            var stack: [(String, Int)] = root.children.reversed().map { ($0, 1) }
            while let (cid, depth) = stack.popLast(), out.count < limit {
                guard let v = try await tx.read(Self.pointer(cid)), let r = try? TaskRecord(v, id: cid) else { continue }
                out.append(self.summary(cid, r, depth: depth))
                stack += r.children.reversed().map { ($0, depth + 1) }
            }
            return out
        }
    }

    /// Tasks without a parent among the first `scan` task records, newest first.
    public func roots(scan: Int = 500, limit: Int = 20) async throws -> [TaskSummary] {
        let ptrs = try await node.list(prefix: "task:", after: nil, limit: scan).ptrs
        let values = try await memory.atomically { tx in try await tx.read(ptrs) }
        var out: [TaskSummary] = []
        for p in ptrs {
            let id = String(p.dropFirst("task:".count))
            guard let v = values[p], let r = try? TaskRecord(v, id: id), r.parent == nil else { continue }
            out.append(summary(id, r, depth: 0))
        }
        return Array(out.sorted { $0.created > $1.created }.prefix(limit))
    }
}

extension RestmError {
    /// The node's error for what the client library threw in a task route (the task service
    /// runs its transactions through an embedded `TransactionalMemory`, whose errors are
    /// `ClientError`): the same code and status, so that a refusal (413, 503…) is not
    /// answered as a 500. Nil for anything else.
    public init?(client error: any Error) {
        guard let e = error as? ClientError else { return nil }
        switch e {
        case .server(_, let code, let message, _): self.init(Code(rawValue: code) ?? .internal, message)
        case .retriesExhausted(_, let last): self.init(.conflict, "gave up after repeated conflicts; last: \(last)")
        case .outcomeUnknown(let t): self.init(.outcomeUnknown, "the outcome of \(t) is unknown: ask again later")
        case .retryTimedOut: self.init(.conflict, "waited past the deadline")
        case .transport(let m): self.init(.internal, m)
        }
    }
}
