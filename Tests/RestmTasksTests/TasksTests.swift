import RestmClient
import RestmCollections
import RestmCore
import RestmNode
import RestmStore
@testable import RestmTasks
import RestmTestSupport
import Synchronization
import Testing

/// Tasks: subtasks and reducers, failures, dead workers, unknown kinds, the sort demo.
@Suite struct TasksTests {
    static func node() async throws -> Node {
        var c = NodeConfiguration()
        c.shardCount = 8
        return try await Node.open(store: MemoryStore(), configuration: c)
    }

    static func config(leaseMs: Int = 10_000, workers: Int = 3) -> TaskConfiguration {
        var t = TaskConfiguration()
        t.leaseMs = leaseMs
        t.workers = workers
        return t
    }

    static func await(_ s: TaskService, _ id: String, seconds: Int = 30) async throws -> TaskResult {
        try await s.result(id, timeout: .seconds(seconds))
    }

    @Test func subtasksAndReducersComputeTheRightSum() async throws {
        let node = try await Self.node()
        let service = TaskService(node: node, kinds: TaskKinds(SortDemo.kinds), configuration: Self.config())
        service.start()
        let id = try await service.submit(TaskSpec(kind: "demo.sum", input: .object([("from", .number("0")), ("to", .number("5000")), ("leaf", .number("100")), ("fanout", .number("3"))])))
        let r = try await Self.await(service, id)
        guard case .done(let v) = r else { Issue.record("not done: \(r)"); return }
        #expect(v.intValue == (0..<5000).reduce(0, +))
        let info = try await service.info(id)
        #expect(info["status"]?.stringValue == "done")
        #expect(info["progress"]?["done"]?.intValue == info["progress"]?["total"]?.intValue)
        #expect((info["progress"]?["total"]?.intValue ?? 0) > 40, "the tree has many subtasks")
        await service.stop()
    }

    @Test func unknownKindsAreRefusedAndNeverRun() async throws {
        let node = try await Self.node()
        let service = TaskService(node: node, kinds: TaskKinds(SortDemo.kinds), configuration: Self.config())
        await #expect(throws: RestmError.self) { try await service.submit(TaskSpec(kind: "rm -rf", input: .null)) }
        do {
            _ = try await service.submit(TaskSpec(kind: "nope", input: .null))
        } catch let e as RestmError {
            #expect(e.code == .unknownKind)
            #expect(e.httpStatus == 400)
        }
    }

    @Test func aFailingLeafIsRetriedThenFailsItsAncestors() async throws {
        let node = try await Self.node()
        let runs = Counter()
        let kinds = TaskKinds(SortDemo.kinds)
        kinds.register(TaskKind("flaky", run: { ctx in
            runs.add()
            if ctx.attempt < 2 { throw TaskFailure("first run fails") }
            return .done(.string("ok on run \(ctx.attempt)"))
        }))
        let service = TaskService(node: node, kinds: kinds, configuration: Self.config())
        service.start()
        let flaky = try await service.submit(TaskSpec(kind: "flaky", input: .null))
        guard case .done(let v) = try await Self.await(service, flaky) else { Issue.record("flaky did not finish"); return }
        #expect(v.stringValue == "ok on run 2")
        #expect(runs.count == 2)

        let sum = try await service.submit(TaskSpec(kind: "demo.sum", input: .object([("from", .number("0")), ("to", .number("1000")), ("leaf", .number("100")), ("fail", .number("555"))])))
        let r = try await Self.await(service, sum)
        guard case .failed(let why) = r else { Issue.record("expected a failure, got \(r)"); return }
        #expect(why.contains("asked to fail at 555"), "\(why)")
        await service.stop()
    }

    /// A worker that dies mid-task (it stops without recording anything, like a killed
    /// process) has its claim lapse; another worker runs the task again to the right result.
    @Test func aDeadWorkersTaskRunsAgain() async throws {
        let node = try await Self.node()
        let runs = Counter()
        let kinds = TaskKinds(SortDemo.kinds)
        kinds.register(TaskKind("slow-double", run: { ctx in
            runs.add()
            if ctx.attempt == 1 {
                // The first run hangs until its worker is killed.
                try await Task.sleep(for: .seconds(60))
            }
            return .done(.number(String((ctx.input.intValue ?? 0) * 2)))
        }))
        let first = TaskService(node: node, kinds: kinds, configuration: Self.config(leaseMs: 300, workers: 1))
        first.start()
        let id = try await first.submit(TaskSpec(kind: "slow-double", input: .number("21")))
        while runs.count == 0 { try await Task.sleep(for: .milliseconds(10)) }
        // Kill the worker: its step is cancelled and nothing is recorded; the claim stays.
        await first.stop()
        let info = try await first.info(id)
        #expect(info["status"]?.stringValue == "running")
        let second = TaskService(node: node, kinds: kinds, configuration: Self.config(leaseMs: 300, workers: 1))
        second.start()
        guard case .done(let v) = try await Self.await(second, id) else { Issue.record("not re-run"); return }
        #expect(v.intValue == 42)
        #expect(runs.count == 2)
        await second.stop()
    }

    /// A slow worker whose claim was taken over cannot record its (late) result.
    @Test func aTakenOverClaimCannotRecord() async throws {
        let node = try await Self.node()
        let service = TaskService(node: node, kinds: TaskKinds(SortDemo.kinds), configuration: Self.config(leaseMs: 200, workers: 1))
        let id = try await service.submit(TaskSpec(kind: "demo.sum", input: .object([("from", .number("1")), ("to", .number("3"))])))
        // Claim by hand, then let the lease lapse without renewing it.
        guard let stale = try await service.claim() else { Issue.record("nothing to claim"); return }
        #expect(stale.id == id)
        try await Task.sleep(for: .milliseconds(300))
        service.start()
        guard case .done(let v) = try await Self.await(service, id) else { Issue.record("not re-run"); return }
        #expect(v.intValue == 3)
        try await service.finish(stale, result: .number("999"), deleting: [])
        guard case .done(let again) = try await Self.await(service, id) else { Issue.record("changed state"); return }
        #expect(again.intValue == 3, "the stale worker's result must be dropped")
        await service.stop()
    }

    @Test func sortOf10000IsSortedAndComplete() async throws {
        let node = try await Self.node()
        let service = TaskService(node: node, kinds: TaskKinds(SortDemo.kinds), configuration: Self.config())
        service.start()
        let id = try await service.submit(TaskSpec(kind: "demo.sort", input: .object([("n", .number("10000")), ("seed", .number("7")), ("leaf", .number("1000"))])))
        guard case .done(let r) = try await Self.await(service, id, seconds: 60) else { Issue.record("sort did not finish"); return }
        #expect(r["total"]?.intValue == 10_000)
        #expect(r["sorted"]?.boolValue == true)
        var expected = Array(SortDemo.Strings(n: 10_000, seed: 7))
        expected.sort(by: codePointLess)
        var got: [String] = []
        while got.count < 10_000 {
            guard let (total, items) = try await SortDemo.page(id, offset: got.count, limit: 1000, on: service) else { break }
            #expect(total == 10_000)
            got += items
        }
        #expect(got == expected)
        // The scratch runs of the subtasks were deleted as they were merged.
        let left = try await node.list(prefix: "run.", after: nil, limit: 1000).ptrs
        let kept = Set(left.map { $0.split(separator: "~").first.map(String.init) ?? $0 })
        #expect(kept.count == 1, "only the final run remains: \(kept)")
        await service.stop()
    }

    @Test func givenStringsAreSortedByCodePoints() async throws {
        let node = try await Self.node()
        let service = TaskService(node: node, kinds: TaskKinds(SortDemo.kinds), configuration: Self.config())
        service.start()
        var rng = SeededRandom.fromEnvironment()
        let alphabet: [String] = ["a", "B", "é", "e\u{301}", "😀", "ｚ", "", "Z", "ä", "0"]
        let strings = (0..<3000).map { _ in (0..<Int.random(in: 0...4, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }.joined() }
        let id = try await SortDemo.submit(strings, on: service)
        guard case .done = try await Self.await(service, id, seconds: 60) else { Issue.record("sort did not finish, seed \(rng.seed)"); return }
        guard let (total, _) = try await SortDemo.page(id, offset: 0, limit: 1, on: service) else { Issue.record("no result"); return }
        var got: [String] = []
        while got.count < total {
            guard let (_, items) = try await SortDemo.page(id, offset: got.count, limit: 1000, on: service) else { break }
            got += items
        }
        let expected = strings.sorted { Array($0.unicodeScalars.map(\.value)).lexicographicallyPrecedes(Array($1.unicodeScalars.map(\.value))) }
        #expect(got.map { Array($0.utf8) } == expected.map { Array($0.utf8) }, "seed \(rng.seed)")
        await service.stop()
    }

    /// Runs held a fixed 4,096 strings per chunk: sorting gathers the long strings together,
    /// so an output chunk could pass the value limit although every input chunk fit, and the
    /// sort failed with a 413 after its input was accepted.
    @Test func longStringsSortWithoutPassingTheValueLimit() async throws {
        let node = try await Self.node()
        let service = TaskService(node: node, kinds: TaskKinds(SortDemo.kinds), configuration: Self.config())
        service.start()
        let long = String(repeating: "z", count: 300)
        let strings = (0..<8_192).map { i in i % 2 == 0 ? "a\(i)" : "\(long)\(i)" }
        let id = try await SortDemo.submit(strings, on: service)
        let r = try await Self.await(service, id, seconds: 60)
        guard case .done = r else { Issue.record("the sort did not finish: \(r)"); return }
        guard let (total, first) = try await SortDemo.page(id, offset: 0, limit: 1, on: service) else { Issue.record("no result"); return }
        #expect(total == strings.count && first == ["a0"])
        // A string that could never fit in a value is refused before anything runs.
        await #expect(throws: RestmError.self) { _ = try await SortDemo.submit([String(repeating: "x", count: 1 << 20)], on: service) }
        await service.stop()
    }

    /// Failing a task failed its ancestors but not the rest of its tree: the cousins of the
    /// failed leaf ran to the end (a failed 131k-task tree ran ~49,000 more steps). Every task
    /// now knows its root and is not run once the root has failed.
    @Test func aFailedTreeStopsRunningItsOtherTasks() async throws {
        let node = try await Self.node()
        var config = Self.config(workers: 2)
        config.attemptsMax = 1
        let failed = Counter()
        let ran = Counter()
        let rootID = Mutex<String?>(nil)
        let kinds = TaskKinds(SortDemo.kinds)
        // root → (a branch whose leaf fails, a branch that spawns 200 leaves once that leaf
        // has failed): the leaves are cousins of the failing one, and their parent never
        // fails, so only the root says they are moot. Ordered by the failure itself, not by
        // timing, so that a loaded machine cannot make the test pass or fail by luck.
        @Sendable func spec(_ role: String) -> TaskSpec { TaskSpec(kind: "tree", input: .object([("role", .string(role))])) }
        kinds.register(TaskKind("tree", run: { ctx in
            switch ctx.input["role"]?.stringValue {
            case "root": return .spawn([spec("fail-branch"), spec("late-branch")])
            case "fail-branch": return .spawn([spec("fail")])
            case "late-branch":
                // Until the failure has been recorded up to the root.
                for _ in 0..<3_000 {
                    if let root = rootID.withLock({ $0 }), let v = try await node.get(TaskService.pointer(root))?.value,
                        (try? JSONValue.parse(Array(v.utf8)))?["status"]?.stringValue == "failed"
                    {
                        break
                    }
                    try await Task.sleep(for: .milliseconds(10))
                }
                return .spawn((0..<200).map { _ in spec("leaf") })
            case "fail":
                failed.add()
                throw TaskFailure("this leaf fails")
            default:
                ran.add()
                return .done(.null)
            }
        }, reduce: { _, _ in .done(.null) }))
        let service = TaskService(node: node, kinds: kinds, configuration: config)
        service.start()
        let id = try await service.submit(spec("root"))
        rootID.withLock { $0 = id }
        guard case .failed = try await Self.await(service, id, seconds: 60) else { Issue.record("the tree did not fail"); return }
        // Wait for the late branch to spawn, and the workers to drain what it spawned (moot
        // tasks are failed unrun).
        try await Task.sleep(for: .seconds(3))
        await service.stop()
        #expect(failed.count == 1)
        #expect(ran.count == 0, "\(ran.count) of 200 cousins ran after their tree had failed")
    }

    /// `demo.sort` deletes its input run when done; given another list through `POST /task`,
    /// it deleted a list of the user's. Only runs the service wrote (`run.` lists) go.
    @Test func aSortOfAUsersListLeavesTheListAlone() async throws {
        let node = try await Self.node()
        let service = TaskService(node: node, kinds: TaskKinds(SortDemo.kinds), configuration: Self.config())
        service.start()
        let list = try TList("mine")
        try await service.memory.atomically { tx in try await list.append(tx, contentsOf: [.array([.string("b"), .string("a")])]) }
        let src = StringRun(list: "mine", count: 2, chunk: 2)
        let id = try await service.submit(TaskSpec(kind: "demo.sort", input: .object([("src", src.value)])))
        guard case .done = try await Self.await(service, id) else { Issue.record("the sort did not finish"); return }
        let kept = try await service.memory.atomically { tx in try await list.count(tx) }
        #expect(kept == 1, "the user's list lost its chunk")
        await service.stop()
    }

    // MARK: the ready queue's chunks

    static func chunked(shards: Int, chunk: Int, workers: Int = 3) -> TaskConfiguration {
        var t = config(workers: workers)
        t.queueShards = shards
        t.readyChunkMax = chunk
        t.readyPerShardMax = 5_000
        return t
    }

    static func echo() -> TaskKinds {
        TaskKinds(SortDemo.kinds + [TaskKind("echo", run: { ctx in .done(ctx.input) })])
    }

    /// Sizes of the queue's pointers (the header and each ready chunk).
    static func queueBytes(_ node: Node, shard: Int = 0) async throws -> (header: Int, chunks: [Int]) {
        let header = try await node.get("tasks:q\(shard)")?.value?.utf8.count ?? 0
        var chunks: [Int] = []
        for p in try await node.list(prefix: "tasks:q\(shard).", after: nil, limit: 1_000).ptrs {
            chunks.append(try await node.get(p)?.value?.utf8.count ?? 0)
        }
        return (header, chunks)
    }

    /// The ready ids of a queue shard were one list in its pointer, so every enqueue, claim,
    /// lease renewal and outcome rewrote the whole queue (a 131,000-task tree wrote a 26 GB
    /// store). They are now in chunks: what one operation writes does not grow with the queue.
    @Test func queueWritesStaySmallWhateverTheQueueLength() async throws {
        let node = try await Self.node()
        let service = TaskService(node: node, kinds: Self.echo(), configuration: Self.chunked(shards: 1, chunk: 64))
        var ids: [String] = []
        for n in 0..<3_000 { ids.append(try await service.submit(TaskSpec(kind: "echo", input: .number(String(n))))) }
        var (header, chunks) = try await Self.queueBytes(node)
        #expect(header < 300, "the shard's header holds \(header) bytes with 3,000 tasks queued")
        #expect(chunks.count == (3_000 + 63) / 64)
        #expect(chunks.allSatisfy { $0 <= 64 * 32 + 16 }, "a chunk passed 64 ids: \(chunks.max() ?? 0) bytes")
        // Claims take the oldest first, across chunks, and write only the header and one chunk.
        var claims: [TaskService.Claim] = []
        for n in 0..<100 {
            guard let c = try await service.claim() else { Issue.record("nothing to claim at \(n)"); return }
            #expect(c.id == ids[n], "claim \(n) took \(c.id), not the oldest ready task")
            claims.append(c)
        }
        (header, chunks) = try await Self.queueBytes(node)
        #expect(header < 100 * 200, "100 claims in a header of \(header) bytes")
        #expect(chunks.count == (3_000 + 63) / 64 - 1, "the emptied head chunk is deleted")
        for c in claims { try await service.finish(c, result: .null, deleting: []) }
        #expect(try await Self.queueBytes(node).header < 300, "finished claims leave the header")
        // The workers drain the rest; the queue's chunks all go.
        service.start()
        for id in ids.suffix(10) {
            guard case .done(let v) = try await Self.await(service, id) else { Issue.record("\(id) did not run"); return }
            #expect(v.intValue == ids.firstIndex(of: id))
        }
        await service.stop()
        var left = 0
        for id in ids { if try await service.info(id)["status"]?.stringValue != "done" { left += 1 } }
        #expect(left == 0, "\(left) tasks not done")
        #expect(try await Self.queueBytes(node).chunks.isEmpty, "ready chunks left behind an empty queue")
    }

    /// A tree of subtasks through tiny chunks (each enqueue of a spawn may start a chunk, and
    /// claims delete them concurrently) still computes the right sum and leaves no chunk.
    @Test func subtasksThroughTinyChunksComputeTheRightSum() async throws {
        let node = try await Self.node()
        let service = TaskService(node: node, kinds: Self.echo(), configuration: Self.chunked(shards: 2, chunk: 2, workers: 4))
        service.start()
        let id = try await service.submit(TaskSpec(kind: "demo.sum", input: .object([("from", .number("0")), ("to", .number("3000")), ("leaf", .number("50")), ("fanout", .number("5"))])))
        guard case .done(let v) = try await Self.await(service, id, seconds: 60) else { Issue.record("the tree did not finish"); return }
        #expect(v.intValue == (0..<3000).reduce(0, +))
        await service.stop()
        for shard in 0..<2 {
            #expect(try await Self.queueBytes(node, shard: shard).chunks.isEmpty, "shard \(shard) kept ready chunks")
        }
    }

    /// A worker looks past the kinds it lacks into later chunks; a header written before
    /// chunks (its `ready` list inline) is emptied first, in order.
    @Test func claimsLookAcrossChunksAndEmptyAnOldInlineListFirst() async throws {
        let node = try await Self.node()
        let other = TaskKinds([TaskKind("elsewhere", run: { _ in .done(.null) })])
        let foreign = TaskService(node: node, kinds: other, configuration: Self.chunked(shards: 1, chunk: 2))
        let service = TaskService(node: node, kinds: Self.echo(), configuration: Self.chunked(shards: 1, chunk: 2))
        for _ in 0..<5 { _ = try await foreign.submit(TaskSpec(kind: "elsewhere", input: .null)) }
        let mine = try await service.submit(TaskSpec(kind: "echo", input: .number("1")))
        #expect(try await Self.queueBytes(node).chunks.count == 3)
        guard let c = try await service.claim() else { Issue.record("the task past 5 foreign ones was not found"); return }
        #expect(c.id == mine)
        try await service.finish(c, result: .null, deleting: [])

        // An older store's header: ready ids inline, no chunks, no head, tail or count.
        let fresh = try await Self.node()
        let old = TaskService(node: fresh, kinds: Self.echo(), configuration: Self.chunked(shards: 1, chunk: 2))
        let a = try await old.submit(TaskSpec(kind: "echo", input: .number("2")))
        let b = try await old.submit(TaskSpec(kind: "echo", input: .number("3")))
        try await old.memory.atomically { tx in
            for p in try await fresh.list(prefix: "tasks:q0.", after: nil, limit: 100).ptrs { try await tx.delete(p) }
            try await tx.write("tasks:q0", try JSONValue.parse("{\"ready\": [\"\(a)\", \"\(b)\"], \"claims\": []}"))
        }
        let later = try await old.submit(TaskSpec(kind: "echo", input: .number("4")))
        #expect(QueueShard(try await fresh.get("tasks:q0")?.value.map { try JSONValue.parse($0) }).count == 3)
        var order: [String] = []
        for _ in 0..<3 {
            guard let c = try await old.claim() else { Issue.record("nothing to claim"); return }
            order.append(c.id)
            try await old.finish(c, result: .null, deleting: [])
        }
        #expect(order == [a, b, later])
        let header = QueueShard(try await fresh.get("tasks:q0")?.value.map { try JSONValue.parse($0) })
        #expect(header.ready.isEmpty && header.count == 0)
    }

    /// Each finishing subtask rewrote its parent's record (with the list of all its children)
    /// to count down `pending`: quadratic bytes in the fan-out. A counter of its own now
    /// counts; the parent's record is written a few times, whatever its fan-out.
    @Test func finishingSubtasksCountDownWithoutRewritingTheParent() async throws {
        let node = try await Self.node()
        let kinds = Self.echo()
        kinds.register(TaskKind("fan", run: { ctx in
            .spawn((0..<300).map { TaskSpec(kind: "echo", input: .number(String($0))) })
        }, reduce: { _, results in .done(.number(String(results.compactMap(\.intValue).reduce(0, +)))) }))
        let service = TaskService(node: node, kinds: kinds, configuration: Self.config(workers: 4))
        service.start()
        let id = try await service.submit(TaskSpec(kind: "fan", input: .null))
        guard case .done(let v) = try await Self.await(service, id, seconds: 60) else { Issue.record("the fan did not finish"); return }
        #expect(v.intValue == (0..<300).reduce(0, +))
        await service.stop()
        let versions = try await node.history(TaskService.pointer(id), before: nil, limit: 1_000)
        #expect(versions.count < 20, "the parent's record was written \(versions.count) times for 300 subtasks")
        #expect(try await node.get(TaskService.pendingPointer(id))?.value == nil, "the counter outlived the wait")
    }

    // MARK: expiring finished trees

    static func allPointers(_ node: Node) async throws -> [String] {
        var out: [String] = []
        var after: String?
        repeat {
            let page = try await node.list(prefix: "", after: after, limit: 1_000)
            out += page.ptrs
            after = page.next
        } while after != nil
        return out
    }

    /// Waits until `id` is gone (its tree expired), up to 20 s.
    static func awaitExpiry(_ service: TaskService, _ id: String) async throws -> Bool {
        for _ in 0..<400 {
            do { _ = try await service.record(id) } catch let e as RestmError where e.code == .notFound { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    /// Finished trees were kept for ever, sort outputs with them (each `GET /demo/sort` added
    /// its output for good). Past the retention a tree's records go, and so do what its kinds
    /// name as leftovers: nothing of a sort is left but the queue's own pointers.
    @Test func finishedTreesExpireWithTheirOutputs() async throws {
        let node = try await Self.node()
        var config = Self.config(workers: 3)
        config.finishedRetentionMs = 2_000
        let service = TaskService(node: node, kinds: TaskKinds(SortDemo.kinds), configuration: config)
        service.start()
        let sort = try await service.submit(TaskSpec(kind: "demo.sort", input: .object([("n", .number("20000")), ("leaf", .number("2000")), ("fanout", .number("3"))])))
        guard case .done(let r) = try await Self.await(service, sort) else { Issue.record("the sort did not finish"); return }
        let output = r["list"]?.stringValue ?? "?"
        #expect(try await Self.allPointers(node).contains { $0.hasPrefix(output) }, "the output is there while the tree is young")
        let sum = try await service.submit(TaskSpec(kind: "demo.sum", input: .object([("from", .number("0")), ("to", .number("1000")), ("leaf", .number("100")), ("fail", .number("555"))])))
        guard case .failed = try await Self.await(service, sum) else { Issue.record("the sum did not fail"); return }
        #expect(try await Self.awaitExpiry(service, sort), "the sort's tree was not deleted")
        #expect(try await Self.awaitExpiry(service, sum), "the failed tree was not deleted")
        // The sweeper's last tree is done when `tasks:sweep` is gone.
        for _ in 0..<200 where try await node.get(TaskService.sweepPointer)?.value != nil {
            try await Task.sleep(for: .milliseconds(50))
        }
        await service.stop()
        let left = try await Self.allPointers(node).filter { !$0.hasPrefix("tasks:q") && !$0.hasPrefix("tasks:done") }
        #expect(left.isEmpty, "left behind: \(left.prefix(10))")
    }

    /// Beyond `finishedRootsMax` the oldest finished trees go, however young; the newest stay
    /// readable.
    @Test func finishedTreesBeyondTheirBoundGoOldestFirst() async throws {
        let node = try await Self.node()
        var config = Self.chunked(shards: 1, chunk: 64, workers: 2)
        config.finishedRootsMax = 2
        config.leaseMs = 200  // beyond the bound, trees older than three leases go
        let service = TaskService(node: node, kinds: Self.echo(), configuration: config)
        service.start()
        var ids: [String] = []
        for n in 0..<5 {
            let id = try await service.submit(TaskSpec(kind: "echo", input: .number(String(n))))
            guard case .done = try await Self.await(service, id) else { Issue.record("\(n) did not finish"); return }
            ids.append(id)
        }
        for id in ids.prefix(3) { #expect(try await Self.awaitExpiry(service, id)) }
        for (n, id) in ids.enumerated().suffix(2) {
            guard case .done(let v) = try await Self.await(service, id) else { Issue.record("\(n) is gone"); continue }
            #expect(v.intValue == n)
        }
        await service.stop()
    }

    /// The sweeper deletes a tree top down. A failed tree's queued tasks whose root was
    /// already gone counted as live (only a root marked failed made them moot) and ran
    /// again; they now leave the queue unrun (the sweeper deletes their records as it walks
    /// the tree).
    @Test func tasksOfAnExpiringTreeDoNotRunAgain() async throws {
        let node = try await Self.node()
        let ran = Counter()
        let gate = Counter()
        let kinds = Self.echo()
        kinds.register(TaskKind("gated", run: { _ in
            ran.add()
            while gate.count == 0 { try await Task.sleep(for: .milliseconds(5)) }
            return .done(.null)
        }))
        kinds.register(TaskKind("fan", run: { _ in .spawn((0..<20).map { _ in TaskSpec(kind: "gated", input: .null) }) }))
        let service = TaskService(node: node, kinds: kinds, configuration: Self.chunked(shards: 1, chunk: 64, workers: 1))
        service.start()
        let root = try await service.submit(TaskSpec(kind: "fan", input: .null))
        while ran.count == 0 { try await Task.sleep(for: .milliseconds(5)) }
        // What the sweeper's first step does to a tree: its root's record goes.
        try await service.memory.atomically { tx in try await tx.delete(TaskService.pointer(root)) }
        gate.add()
        var queued = 20
        for _ in 0..<400 where queued > 0 {
            try await Task.sleep(for: .milliseconds(25))
            queued = QueueShard(try await node.get("tasks:q0")?.value.map { try JSONValue.parse($0) }).count
        }
        try await Task.sleep(for: .milliseconds(100))
        await service.stop()
        #expect(ran.count == 1, "\(ran.count) subtasks of a deleted tree ran")
        #expect(queued == 0, "\(queued) tasks of the deleted tree are still queued")
    }

    /// A ready task of a kind no node has sat at its shard's head for ever (and a claim
    /// read more chunks each time). Queued past `foreignKindWaitMs` without a claim, it
    /// fails; the tasks behind it run.
    @Test func aTaskNoWorkerKnowsFailsAfterItsWait() async throws {
        let node = try await Self.node()
        let gone = TaskService(node: node, kinds: TaskKinds([TaskKind("retired", run: { _ in .done(.null) })]), configuration: Self.chunked(shards: 1, chunk: 2))
        let orphan = try await gone.submit(TaskSpec(kind: "retired", input: .null))
        var config = Self.chunked(shards: 1, chunk: 2)
        config.foreignKindWaitMs = 300
        config.leaseMs = 600  // idle claims look again every half lease
        let service = TaskService(node: node, kinds: Self.echo(), configuration: config)
        var ids: [String] = []
        for n in 0..<5 { ids.append(try await service.submit(TaskSpec(kind: "echo", input: .number(String(n))))) }
        service.start()
        for (n, id) in ids.enumerated() {
            guard case .done(let v) = try await Self.await(service, id) else { Issue.record("\(n) did not run"); return }
            #expect(v.intValue == n)
        }
        guard case .failed(let why) = try await Self.await(service, orphan) else { Issue.record("the orphan did not fail"); return }
        #expect(why.contains("no worker knows the kind"), "\(why)")
        await service.stop()
        #expect(QueueShard(try await node.get("tasks:q0")?.value.map { try JSONValue.parse($0) }).count == 0)
    }
}

extension TasksTests {
    /// A parent spawned by a binary before counters has no `tasks:pending:` pointer: its
    /// children count down in its record, and the last one queues it.
    @Test func aParentSpawnedBeforeCountersCountsDownInItsRecord() async throws {
        let node = try await Self.node()
        let service = TaskService(node: node, kinds: Self.echo(), configuration: Self.chunked(shards: 1, chunk: 64))
        let pid = PointerID.random(prefix: "k")
        var parent = TaskRecord(kind: "echo", input: .null, parent: nil, now: 0)
        parent.status = .waiting
        parent.phase = .reduce
        parent.pending = 2
        let value = parent.value
        try await service.memory.atomically { tx in try await tx.write(TaskService.pointer(pid), value) }
        func status() async throws -> (TaskRecord, Int) {
            let rec = try await service.record(pid).0
            let header = QueueShard(try await node.get("tasks:q0")?.value.map { try JSONValue.parse($0) })
            return (rec, header.count)
        }
        try await service.memory.atomically { tx in try await service.childFinished(tx, pid) }
        var (rec, queued) = try await status()
        #expect(rec.status == .waiting && rec.pending == 1 && queued == 0)
        try await service.memory.atomically { tx in try await service.childFinished(tx, pid) }
        (rec, queued) = try await status()
        #expect(rec.status == .queued && queued == 1)
    }
}
