import RestmClient
import RestmCollections
import RestmCore

/// A sorted (or unsorted) run of strings stored in the memory: a `TList` whose elements are
/// chunks (JSON arrays) of `chunk` strings, all full but the last.
public struct StringRun: Sendable {
    public var list: String
    public var count: Int
    public var chunk: Int

    public var chunks: Int { (count + chunk - 1) / chunk }

    public var value: JSONValue {
        .object([("list", .string(list)), ("count", .number(String(count))), ("chunk", .number(String(chunk)))])
    }

    public init(list: String, count: Int, chunk: Int) {
        self.list = list
        self.count = count
        self.chunk = chunk
    }

    public init(_ v: JSONValue?) throws {
        guard let v, let list = v["list"]?.stringValue, let count = v["count"]?.intValue, let chunk = v["chunk"]?.intValue,
            (0...SortDemo.nMax).contains(count), (1...SortDemo.chunkMax).contains(chunk), (try? TList(list)) != nil
        else { throw TaskFailure("not a string run: \(v?.compactText ?? "null")") }
        self.init(list: list, count: count, chunk: chunk)
    }

    var tlist: TList { try! TList(list) }

    /// Every pointer of the run, for deleting it.
    public var pointers: [String] { tlist.pointers(appendedOnly: chunks) }

    /// Chunks `from..<to`, read in one transaction.
    public func readChunks(_ memory: TransactionalMemory<EmbeddedBackend>, _ from: Int, _ to: Int) async throws -> [[String]] {
        guard from < to else { return [] }
        let list = tlist
        let values = try await memory.atomically { tx in try await list.elements(tx, offset: from, limit: to - from) }
        return try values.map { v in
            guard case .array(let a) = v else { throw TaskFailure("a chunk of \(self.list) is not an array") }
            return try a.map { s in
                guard let s = s.stringValue else { throw TaskFailure("a chunk of \(self.list) holds a non-string") }
                return s
            }
        }
    }

    /// Strings `from..<to` of the run.
    public func read(_ memory: TransactionalMemory<EmbeddedBackend>, from: Int, to: Int) async throws -> [String] {
        let lo = max(0, from), hi = min(count, to)
        guard lo < hi else { return [] }
        let first = lo / chunk, last = (hi - 1) / chunk
        var out: [String] = []
        out.reserveCapacity(hi - lo)
        var c = first
        while c <= last {
            let upto = min(last + 1, c + RunWriter.chunksPerTxn)
            for (k, strings) in try await readChunks(memory, c, upto).enumerated() {
                let base = (c + k) * chunk
                let a = max(lo, base) - base, b = min(hi, base + strings.count) - base
                if a < b { out += strings[a..<b] }
            }
            c = upto
        }
        return out
    }
}

/// Writes strings into a new run, a few chunks per transaction. The list is private until
/// its run is published in a task's result, so these transactions conflict with nothing.
public struct RunWriter {
    static let chunksPerTxn = 16
    public let memory: TransactionalMemory<EmbeddedBackend>
    public let list: TList
    public let chunk: Int
    var buffer: [String] = []
    var pending: [JSONValue] = []
    public private(set) var count = 0

    public init(memory: TransactionalMemory<EmbeddedBackend>, chunk: Int = SortDemo.chunk) {
        self.memory = memory
        self.list = try! TList(PointerID.random(prefix: "run."))
        self.chunk = chunk
        buffer.reserveCapacity(chunk)
    }

    public mutating func append(_ s: String) async throws {
        buffer.append(s)
        count += 1
        if buffer.count == chunk { try await cut() }
    }

    mutating func cut() async throws {
        guard !buffer.isEmpty else { return }
        pending.append(.array(buffer.map { .string($0) }))
        buffer.removeAll(keepingCapacity: true)
        if pending.count >= Self.chunksPerTxn { try await flush() }
    }

    mutating func flush() async throws {
        guard !pending.isEmpty else { return }
        let chunks = pending
        let list = self.list
        pending = []
        try await memory.atomically { tx in try await list.append(tx, contentsOf: chunks) }
    }

    public mutating func finish() async throws -> StringRun {
        try await cut()
        try await flush()
        return StringRun(list: list.name, count: count, chunk: chunk)
    }
}

/// Streams a run chunk by chunk.
struct RunReader {
    let run: StringRun
    let memory: TransactionalMemory<EmbeddedBackend>
    var chunks: [[String]] = []
    var nextChunk = 0
    var current: [String] = []
    var index = 0

    init(_ run: StringRun, _ memory: TransactionalMemory<EmbeddedBackend>) {
        self.run = run
        self.memory = memory
    }

    /// The next string, nil at the end.
    mutating func next() async throws -> String? {
        while index >= current.count {
            if chunks.isEmpty {
                guard nextChunk < run.chunks else { return nil }
                let upto = min(run.chunks, nextChunk + RunWriter.chunksPerTxn)
                chunks = try await run.readChunks(memory, nextChunk, upto).reversed()
                nextChunk = upto
                guard !chunks.isEmpty else { return nil }
            }
            current = chunks.removeLast()
            index = 0
        }
        defer { index += 1 }
        return current[index]
    }
}

/// The distributed merge sort of the demo, as task kinds:
/// - `demo.sort` `{"n": N, "seed": s}` (or `{"src": run, "checksum": c}` for given strings):
///   generates N random 10-character strings into a run, spawns one `sort.range` over it, and
///   in its reduce checks the output is sorted (ascending by code points) and complete (the
///   same count and multiset checksum as the input), then answers
///   `{"list", "total", "chunk", "sorted", "complete", "checksum", "ms"}`.
/// - `sort.range` `{"src": run, "from", "to", "leaf", "fanout"}`: a range of at most `leaf`
///   strings is sorted in memory into a new run; a larger one spawns `fanout` subranges and
///   its reduce merges their runs (deleting them in the transaction that records its result).
public enum SortDemo {
    public static let chunk = 4_096
    /// Largest chunk a run given in a task's input may claim (bounds the arithmetic on runs).
    static let chunkMax = 1 << 20
    /// `demo.sum` bounds: |from|, |to| at most this (keeps every sum within Int).
    static let sumBoundMax = 1_000_000_000
    public static let nMax = 10_000_000
    public static let leafDefault = 16_384
    public static let fanoutDefault = 4
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)

    public static var kinds: [TaskKind] { [demoSort, sortRange, demoSum] }

    /// The demo's strings: 10 characters of [A-Za-z0-9] each, from a SplitMix64 stream.
    public struct Strings: Sequence, IteratorProtocol {
        var state: UInt64
        var left: Int

        public init(n: Int, seed: UInt64) {
            state = seed
            left = n
        }

        public mutating func next() -> String? {
            guard left > 0 else { return nil }
            left -= 1
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            var bytes = [UInt8](repeating: 0, count: 10)
            for i in 0..<10 {
                bytes[i] = SortDemo.alphabet[Int(z % 62)]
                z /= 62
                if i == 4 {
                    state &+= 0x9E37_79B9_7F4A_7C15
                    z ^= state &* 0xBF58_476D_1CE4_E5B9
                }
            }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    /// A multiset checksum: the wrapping sum of the strings' stable hashes, as hex.
    public static func checksum<S: Sequence>(_ strings: S) -> UInt64 where S.Element == String {
        strings.reduce(0) { $0 &+ stableHash($1) }
    }

    static func hex(_ v: UInt64) -> String { String(v, radix: 16) }

    static let demoSort = TaskKind(
        "demo.sort",
        run: { ctx in
            let started = ctx.memory.backend.node.physicalMillis
            let src: StringRun
            let sum: String
            if let given = ctx.input["src"] {
                src = try StringRun(given)
                sum = ctx.input["checksum"]?.stringValue ?? ""
            } else {
                guard let n = ctx.input["n"]?.intValue, (1...nMax).contains(n) else {
                    throw TaskFailure("demo.sort needs n in 1…\(nMax)")
                }
                let seed = UInt64(truncatingIfNeeded: ctx.input["seed"]?.intValue ?? 1)
                var w = RunWriter(memory: ctx.memory)
                var total: UInt64 = 0
                for s in Strings(n: n, seed: seed) {
                    total = total &+ stableHash(s)
                    try await w.append(s)
                }
                src = try await w.finish()
                sum = hex(total)
            }
            let leaf = min(max(ctx.input["leaf"]?.intValue ?? leafDefault, 256), 1_000_000)
            let fanout = min(max(ctx.input["fanout"]?.intValue ?? fanoutDefault, 2), 16)
            let child = TaskSpec(
                kind: "sort.range",
                input: .object([
                    ("src", src.value), ("from", .number("0")), ("to", .number(String(src.count))),
                    ("leaf", .number(String(leaf))), ("fanout", .number(String(fanout))),
                ]))
            return .spawn(
                [child],
                state: .object([("src", src.value), ("checksum", .string(sum)), ("started", .number(String(started)))]))
        },
        reduce: { ctx, results in
            guard let first = results.first else { throw TaskFailure("the sort produced nothing") }
            let out = try StringRun(first)
            let src = try StringRun(ctx.state["src"])
            // Check: ascending by code points, the same count and the same multiset checksum.
            var reader = RunReader(out, ctx.memory)
            var previous: String?
            var n = 0
            var total: UInt64 = 0
            while let s = try await reader.next() {
                if let p = previous, codePointLess(s, p) {
                    throw TaskFailure("not sorted at position \(n): \(JSONWriter.quoted(p)) before \(JSONWriter.quoted(s))")
                }
                total = total &+ stableHash(s)
                previous = s
                n += 1
            }
            guard n == src.count, n == out.count else { throw TaskFailure("incomplete: \(n) strings out of \(src.count)") }
            let expected = ctx.state["checksum"]?.stringValue ?? ""
            guard expected.isEmpty || expected == hex(total) else { throw TaskFailure("the sorted strings are not the input strings (checksum)") }
            let started = UInt64(ctx.state["started"]?.intValue ?? 0)
            let ms = Int(ctx.memory.backend.node.physicalMillis) - Int(started)
            return .done(
                .object([
                    ("list", .string(out.list)), ("total", .number(String(n))), ("chunk", .number(String(out.chunk))),
                    ("sorted", .bool(true)), ("complete", .bool(true)), ("checksum", .string(hex(total))),
                    ("ms", .number(String(max(0, ms)))),
                ]),
                // The input run goes with the sort — only a run this service wrote (a
                // `run.` list): `demo.sort` given another list through `POST /task` must not
                // delete a list of the user's.
                deleting: src.list.hasPrefix("run.") ? src.pointers : [])
        },
        leftovers: { r in
            // Done: its sorted output. Failed after spawning: the input run it wrote.
            if r.status == "done", let res = r.result, let list = res["list"]?.stringValue, list.hasPrefix("run."),
                let total = res["total"]?.intValue, let chunk = res["chunk"]?.intValue, total >= 0, chunk >= 1
            {
                return StringRun(list: list, count: total, chunk: chunk).pointers
            }
            if r.status != "done", let src = try? StringRun(r.state["src"]), src.list.hasPrefix("run.") { return src.pointers }
            return []
        })

    static let sortRange = TaskKind(
        "sort.range",
        run: { ctx in
            let src = try StringRun(ctx.input["src"])
            guard let from = ctx.input["from"]?.intValue, let to = ctx.input["to"]?.intValue, 0 <= from, from <= to, to <= src.count else {
                throw TaskFailure("sort.range needs 0 ≤ from ≤ to ≤ the run's count")
            }
            let leaf = max(ctx.input["leaf"]?.intValue ?? leafDefault, 2)
            let fanout = min(max(ctx.input["fanout"]?.intValue ?? fanoutDefault, 2), 16)
            if to - from <= leaf {
                var strings = try await src.read(ctx.memory, from: from, to: to)
                strings.sort(by: codePointLess)
                // The source's chunk size: it was chosen so that any `chunk` of its strings
                // fit in a value, and sorting only regroups them.
                var w = RunWriter(memory: ctx.memory, chunk: src.chunk)
                for s in strings { try await w.append(s) }
                return .done(try await w.finish().value)
            }
            var specs: [TaskSpec] = []
            let n = to - from
            for k in 0..<fanout {
                let a = from + n * k / fanout, b = from + n * (k + 1) / fanout
                var input = ctx.input
                if case .object(var m) = input {
                    m.removeAll { $0.0 == "from" || $0.0 == "to" }
                    m.append(("from", .number(String(a))))
                    m.append(("to", .number(String(b))))
                    input = .object(m)
                }
                specs.append(TaskSpec(kind: "sort.range", input: input))
            }
            return .spawn(specs)
        },
        reduce: { ctx, results in
            let runs = try results.map { try StringRun($0) }
            var readers = runs.map { RunReader($0, ctx.memory) }
            var heads: [String?] = []
            for i in readers.indices { heads.append(try await readers[i].next()) }
            var w = RunWriter(memory: ctx.memory, chunk: runs.map(\.chunk).min() ?? SortDemo.chunk)
            while true {
                var best = -1
                for i in heads.indices {
                    guard let h = heads[i] else { continue }
                    if best < 0 || codePointLess(h, heads[best]!) { best = i }
                }
                guard best >= 0 else { break }
                try await w.append(heads[best]!)
                heads[best] = try await readers[best].next()
            }
            return .done(try await w.finish().value, deleting: runs.flatMap(\.pointers))
        },
        leftovers: { r in
            // Its sorted run, unless its parent's merge took it over (and deleted it).
            guard r.status == "done", !r.consumed, let run = try? StringRun(r.result), run.list.hasPrefix("run.") else { return [] }
            return run.pointers
        })

    /// A small example kind (and a test of subtasks): the sum of the integers in
    /// `[from, to)`, split into `fanout` subtasks down to ranges of `leaf`. `"fail": k` makes
    /// the leaf containing k fail (to exercise failure handling).
    static let demoSum = TaskKind(
        "demo.sum",
        run: { ctx in
            // Bounded so that no sum, difference or split below can overflow (a trap would
            // stop the node, and the queued task would stop it again at every restart).
            guard let from = ctx.input["from"]?.intValue, let to = ctx.input["to"]?.intValue, from <= to,
                (-sumBoundMax...sumBoundMax).contains(from), (-sumBoundMax...sumBoundMax).contains(to)
            else {
                throw TaskFailure("demo.sum needs from ≤ to, both within ±\(sumBoundMax)")
            }
            let leaf = max(ctx.input["leaf"]?.intValue ?? 100, 1)
            if to - from <= leaf {
                if let f = ctx.input["fail"]?.intValue, (from..<to).contains(f) { throw TaskFailure("asked to fail at \(f)") }
                return .done(.number(String((from..<to).reduce(0, +))))
            }
            let fanout = min(max(ctx.input["fanout"]?.intValue ?? 4, 2), 16)
            let n = to - from
            return .spawn(
                (0..<fanout).map { k in
                    var m: [(String, JSONValue)] = []
                    if case .object(let o) = ctx.input { m = o.filter { $0.0 != "from" && $0.0 != "to" } }
                    m.append(("from", .number(String(from + n * k / fanout))))
                    m.append(("to", .number(String(from + n * (k + 1) / fanout))))
                    return TaskSpec(kind: "demo.sum", input: .object(m))
                })
        },
        reduce: { _, results in
            .done(.number(String(results.compactMap(\.intValue).reduce(0, +))))
        })

    /// Stores `strings` as a run and starts `demo.sort` over them; answers the task id.
    public static func submit(_ strings: [String], on service: TaskService) async throws -> String {
        // Chunks of at most `chunk` strings, so few that the longest strings together still
        // fit in one value (each encoded as JSON, plus a comma): a fixed 4,096 made the
        // sorted output fail once sorting gathered the long strings into the same chunks.
        let longest = strings.reduce(0) { max($0, JSONWriter.quoted($1).utf8.count) }
        let room = service.node.limits.valueBytesMax - 64
        guard longest + 1 <= room else {
            throw RestmError(.tooLarge, "a string to sort may be at most about \(room) bytes as JSON")
        }
        let chunk = max(1, min(SortDemo.chunk, room / (longest + 1)))
        var w = RunWriter(memory: service.memory, chunk: chunk)
        for s in strings { try await w.append(s) }
        let run = try await w.finish()
        return try await service.submit(
            TaskSpec(kind: "demo.sort", input: .object([("src", run.value), ("checksum", .string(hex(checksum(strings))))])))
    }

    /// A page of a finished `demo.sort`'s output: (total, items).
    public static func page(_ id: String, offset: Int, limit: Int, on service: TaskService) async throws -> (Int, [String])? {
        let (rec, _) = try await service.record(id)
        guard rec.kind == "demo.sort" else { throw RestmError(.notFound, "task \(id) is not a demo.sort task") }
        switch rec.status {
        case .done: break
        case .failed: throw RestmError(.taskFailed, "the sort failed: \(rec.error ?? "")")
        default: return nil
        }
        guard let r = rec.result, let list = r["list"]?.stringValue, let total = r["total"]?.intValue, let chunk = r["chunk"]?.intValue else {
            throw RestmError(.internal, "the sort's result has no list")
        }
        let run = StringRun(list: list, count: total, chunk: chunk)
        return (total, try await run.read(service.memory, from: offset, to: offset + limit))
    }
}
