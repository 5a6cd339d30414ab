import RestmClient
import RestmCollections
import RestmCore
import RestmNode
import RestmStore
import RestmTestSupport
import Synchronization
import Testing

/// Each collection against a plain Swift model under seeded random operations, sequential and
/// concurrent, with the structure's invariants checked after every run. A failure prints the
/// seed; `RESTM_SEED=<seed> swift test --filter CollectionsTests` replays it.
@Suite struct CollectionsTests {
    typealias Memory = TransactionalMemory<EmbeddedBackend>

    static func embedded() async throws -> Memory {
        var c = NodeConfiguration()
        c.shardCount = 8
        return TransactionalMemory(backend: EmbeddedBackend(node: try await Node.open(store: MemoryStore(), configuration: c)))
    }

    static func num(_ n: Int) -> JSONValue { .number(String(n)) }

    /// The reference order, computed independently of the library: Unicode scalar values,
    /// compared lexicographically (not Swift's `<`, not UTF-16).
    static func codePoints(_ s: String) -> [UInt32] { s.unicodeScalars.map { $0.value } }
    static func codePointOrder(_ a: String, _ b: String) -> Bool { codePoints(a).lexicographicallyPrecedes(codePoints(b)) }

    /// What one operation answered, compared with what the model answers.
    enum Outcome: Equatable, Sendable {
        case unit
        case value(JSONValue?)
        case flag(Bool)
        case int(Int)
        case list([JSONValue])
    }

    enum MapOp: Sendable {
        case put(String, Int)
        case remove(String)
        case get(String)
        case contains(String)
    }

    static func randomMapOp(_ keys: [String], _ rng: inout SeededRandom, putPercent: Int = 45, removePercent: Int = 30) -> MapOp {
        let key = keys.randomElement(using: &rng)!
        let roll = Int.random(in: 0..<100, using: &rng)
        if roll < putPercent { return .put(key, Int.random(in: -1_000_000...1_000_000, using: &rng)) }
        if roll < putPercent + removePercent { return .remove(key) }
        return Bool.random(using: &rng) ? .get(key) : .contains(key)
    }

    static func apply(_ map: TMap, _ tx: any Transaction, _ op: MapOp) async throws -> Outcome {
        switch op {
        case .put(let k, let v): return .value(try await map.put(tx, k, num(v)))
        case .remove(let k): return .value(try await map.remove(tx, k))
        case .get(let k): return .value(try await map.get(tx, k))
        case .contains(let k): return .flag(try await map.contains(tx, k))
        }
    }

    static func apply(_ map: TSortedMap, _ tx: any Transaction, _ op: MapOp) async throws -> Outcome {
        switch op {
        case .put(let k, let v): return .value(try await map.put(tx, k, num(v)))
        case .remove(let k): return .value(try await map.remove(tx, k))
        case .get(let k): return .value(try await map.get(tx, k))
        case .contains(let k): return .flag(try await map.contains(tx, k))
        }
    }

    static func apply(_ model: inout [String: Int], _ op: MapOp) -> Outcome {
        switch op {
        case .put(let k, let v):
            let old = model[k].map(num)
            model[k] = v
            return .value(old)
        case .remove(let k):
            return .value(model.removeValue(forKey: k).map(num))
        case .get(let k):
            return .value(model[k].map(num))
        case .contains(let k):
            return .flag(model[k] != nil)
        }
    }

    /// Splits `ops` into transactions of 1...`maxPerTxn` operations.
    static func batches<T>(_ ops: [T], maxPerTxn: Int, _ rng: inout SeededRandom) -> [[T]] {
        var out: [[T]] = []
        var i = 0
        while i < ops.count {
            let n = min(ops.count - i, Int.random(in: 1...maxPerTxn, using: &rng))
            out.append(Array(ops[i..<(i + n)]))
            i += n
        }
        return out
    }

    // MARK: - Names and limits

    @Test func namesAndLimitsAreValidated() throws {
        for bad in ["", "a~b", "~", "é", "a b", "a/b", String(repeating: "a", count: 201)] {
            #expect(throws: CollectionError.self, "name \(bad.debugDescription)") { try TCounter(bad) }
            #expect(throws: CollectionError.self, "name \(bad.debugDescription)") { try TMap(bad) }
            #expect(throws: CollectionError.self, "name \(bad.debugDescription)") { try TSet(bad) }
            #expect(throws: CollectionError.self, "name \(bad.debugDescription)") { try TSortedMap(bad) }
            #expect(throws: CollectionError.self, "name \(bad.debugDescription)") { try TList(bad) }
        }
        for good in ["a", "A.b_c:d-9", String(repeating: "a", count: 200)] {
            #expect(throws: Never.self) { try TCounter(good) }
            #expect(throws: Never.self) { try TMap(good) }
            #expect(throws: Never.self) { try TSortedMap(good) }
            #expect(throws: Never.self) { try TList(good) }
        }
        #expect(throws: CollectionError.self) { try TCounter("c", stripes: 0) }
        #expect(throws: CollectionError.self) { try TCounter("c", stripes: 257) }
        #expect(throws: CollectionError.self) { try TMap("m", leafEntriesMax: 1) }
        #expect(throws: CollectionError.self) { try TSortedMap("s", leafEntriesMax: 2) }
        #expect(throws: CollectionError.self) { try TSortedMap("s", childrenMax: 2) }
        #expect(try TCounter("c", stripes: 5).pointers.count == 5)
    }

    // MARK: - TCounter

    @Test func counterEqualsTheSumOfCommittedAdds() async throws {
        var rng = SeededRandom.fromEnvironment()
        let seed = rng.seed
        let memory = try await Self.embedded()
        let striped = try TCounter("t1-counter")
        let hinted = try TCounter("t1-hinted", stripes: 3)
        let plans: [[Int]] = (0..<8).map { _ in (0..<50).map { _ in Int.random(in: -1_000...1_000, using: &rng) } }
        let applied = Counter()
        let appliedHinted = Counter()

        // An absent counter reads 0; an add is visible to the rest of its own transaction.
        let (before, within) = try await memory.atomically { tx in
            let before = try await striped.value(tx)
            try await striped.add(tx, 0)
            try await hinted.add(tx, 7, hint: -4)
            return (before, try await hinted.value(tx))
        }
        #expect(before == 0, "seed \(seed)")
        #expect(within == 7, "seed \(seed)")
        appliedHinted.add(7)

        try await withThrowingTaskGroup(of: Void.self) { group in
            for (w, deltas) in plans.enumerated() {
                group.addTask {
                    for (k, d) in deltas.enumerated() {
                        if k % 5 == 0 {
                            // Both counters in one transaction.
                            try await memory.atomically { tx in
                                try await striped.add(tx, d)
                                try await hinted.add(tx, d, hint: w)
                            }
                            applied.add(d)
                            appliedHinted.add(d)
                        } else {
                            try await memory.atomically { tx in try await striped.add(tx, d) }
                            applied.add(d)
                        }
                    }
                }
            }
            try await group.waitForAll()
        }

        let (v, h) = try await memory.atomically { tx in (try await striped.value(tx), try await hinted.value(tx)) }
        let planned = plans.joined().reduce(0, +)
        let plannedHinted = 7 + plans.map { ds in ds.enumerated().filter { $0.offset % 5 == 0 }.map { $0.element }.reduce(0, +) }.reduce(0, +)
        #expect(v == applied.count, "seed \(seed)")
        #expect(v == planned, "seed \(seed)")
        #expect(h == appliedHinted.count, "seed \(seed)")
        #expect(h == plannedHinted, "seed \(seed)")
        // Stripes hold plain integers that sum to the value.
        let stripes = try await memory.atomically { tx in try await tx.read(striped.pointers) }
        #expect(stripes.values.compactMap { $0.intValue }.reduce(0, +) == planned, "seed \(seed)")
        #expect(stripes.count <= 16, "seed \(seed)")
    }

    // MARK: - TMap

    @Test func mapMatchesADictionaryUnderRandomOperations() async throws {
        var rng = SeededRandom.fromEnvironment()
        let seed = rng.seed
        let memory = try await Self.embedded()
        let map = try TMap("t2-map", leafEntriesMax: 4)
        let keys = (0..<290).map { "k\($0)" } + ["", "a", "Z", "é", "ä", "😀", "😀x", "key with spaces", "k0:k1", "\u{FF5A}"]
        let ops = (0..<2_000).map { _ in Self.randomMapOp(keys, &rng) }
        var model: [String: Int] = [:]

        for (b, batch) in Self.batches(ops, maxPerTxn: 4, &rng).enumerated() {
            let got = try await memory.atomically { tx in
                var out: [Outcome] = []
                for op in batch { out.append(try await Self.apply(map, tx, op)) }
                return out
            }
            let want = batch.map { Self.apply(&model, $0) }
            #expect(got == want, "seed \(seed), transaction \(b): \(batch)")
            if got != want { return }
        }

        try await Self.checkMap(memory, map, model.mapValues(Self.num), probes: keys + ["absent", "k290", "K1"], seed: seed)
        // leafEntriesMax 4 with ~200 keys must have split the root into a branch.
        let root = try await memory.atomically { tx in try await tx.read("t2-map~m") }
        #expect(root?["b"] != nil, "seed \(seed): the trie did not split")
    }

    /// After a run: `entries` has no duplicate key and equals the model, `count` agrees, and
    /// `get`/`contains` agree for every probe.
    static func checkMap(_ memory: Memory, _ map: TMap, _ model: [String: JSONValue], probes: [String], seed: UInt64) async throws {
        let (entries, count, gets, contained) = try await memory.atomically { tx in
            var gets: [JSONValue?] = []
            var contained: [Bool] = []
            for k in probes {
                gets.append(try await map.get(tx, k))
                contained.append(try await map.contains(tx, k))
            }
            return (try await map.entries(tx), try await map.count(tx), gets, contained)
        }
        #expect(Set(entries.map { $0.0 }).count == entries.count, "seed \(seed): duplicate keys in entries")
        let asDictionary = Dictionary(entries.map { ($0.0, $0.1) }, uniquingKeysWith: { a, _ in a })
        #expect(asDictionary == model, "seed \(seed)")
        #expect(count == model.count, "seed \(seed)")
        #expect(gets == probes.map { model[$0] }, "seed \(seed)")
        #expect(contained == probes.map { model[$0] != nil }, "seed \(seed)")
    }

    enum Step: Sendable {
        case op(MapOp)
        case increment(String)
    }

    @Test func mapUnderConcurrentWritersWithPrivateAndSharedKeys() async throws {
        var rng = SeededRandom.fromEnvironment()
        let seed = rng.seed
        let memory = try await Self.embedded()
        let map = try TMap("t2-concurrent", leafEntriesMax: 4)
        let shared = ["s0", "s1", "s2", "s3"]
        let workers = 8
        let plans: [[[Step]]] = (0..<workers).map { w in
            let own = (0..<25).map { "w\(w)-\($0)" }
            return (0..<40).map { _ in
                (0..<Int.random(in: 1...3, using: &rng)).map { _ -> Step in
                    if Int.random(in: 0..<100, using: &rng) < 25 { return .increment(shared.randomElement(using: &rng)!) }
                    return .op(Self.randomMapOp(own, &rng, putPercent: 55, removePercent: 30))
                }
            }
        }

        let results = try await withThrowingTaskGroup(of: ([String: Int], [String: Int]).self, returning: [([String: Int], [String: Int])].self) { group in
            for plan in plans {
                group.addTask {
                    var model: [String: Int] = [:]
                    var increments: [String: Int] = [:]
                    for (t, steps) in plan.enumerated() {
                        let got = try await memory.atomically { tx -> [Outcome] in
                            var out: [Outcome] = []
                            for s in steps {
                                switch s {
                                case .op(let op):
                                    out.append(try await Self.apply(map, tx, op))
                                case .increment(let k):
                                    let n = try await map.get(tx, k)?.intValue ?? 0
                                    try await map.put(tx, k, Self.num(n + 1))
                                    out.append(.unit)
                                }
                            }
                            return out
                        }
                        var want: [Outcome] = []
                        for s in steps {
                            switch s {
                            case .op(let op): want.append(Self.apply(&model, op))
                            case .increment(let k):
                                increments[k, default: 0] += 1
                                want.append(.unit)
                            }
                        }
                        // Private keys are only this worker's: its answers are the model's.
                        #expect(got == want, "seed \(seed), transaction \(t): \(steps)")
                    }
                    return (model, increments)
                }
            }
            var all: [([String: Int], [String: Int])] = []
            for try await r in group { all.append(r) }
            return all
        }

        var expected: [String: JSONValue] = [:]
        var totals: [String: Int] = [:]
        for (model, increments) in results {
            for (k, v) in model { expected[k] = Self.num(v) }
            for (k, n) in increments { totals[k, default: 0] += n }
        }
        for (k, n) in totals { expected[k] = Self.num(n) }
        #expect(totals.values.reduce(0, +) == plans.joined().joined().filter { if case .increment = $0 { return true } else { return false } }.count, "seed \(seed)")
        let probes = shared + (0..<workers).flatMap { w in (0..<26).map { "w\(w)-\($0)" } }
        try await Self.checkMap(memory, map, expected, probes: probes, seed: seed)
    }

    // MARK: - TSet

    enum SetOp: Sendable {
        case insert(String)
        case remove(String)
        case contains(String)
    }

    @Test func setMatchesASwiftSetWithReturnValues() async throws {
        var rng = SeededRandom.fromEnvironment()
        let seed = rng.seed
        let memory = try await Self.embedded()
        let set = try TSet("t3-set", leafEntriesMax: 3)
        let universe = (0..<150).map { "e\($0)" } + ["", "é", "😀", "Z"]
        let ops: [SetOp] = (0..<1_200).map { _ in
            let e = universe.randomElement(using: &rng)!
            switch Int.random(in: 0..<10, using: &rng) {
            case 0..<5: return .insert(e)
            case 5..<8: return .remove(e)
            default: return .contains(e)
            }
        }
        var model = Set<String>()

        for (b, batch) in Self.batches(ops, maxPerTxn: 4, &rng).enumerated() {
            let got = try await memory.atomically { tx in
                var out: [Bool] = []
                for op in batch {
                    switch op {
                    case .insert(let e): out.append(try await set.insert(tx, e))
                    case .remove(let e): out.append(try await set.remove(tx, e))
                    case .contains(let e): out.append(try await set.contains(tx, e))
                    }
                }
                return out
            }
            let want: [Bool] = batch.map { op in
                switch op {
                case .insert(let e): return model.insert(e).inserted
                case .remove(let e): return model.remove(e) != nil
                case .contains(let e): return model.contains(e)
                }
            }
            #expect(got == want, "seed \(seed), transaction \(b): \(batch)")
            if got != want { return }
        }

        let (elements, count, membership) = try await memory.atomically { tx in
            var membership: [Bool] = []
            for e in universe { membership.append(try await set.contains(tx, e)) }
            return (try await set.elements(tx), try await set.count(tx), membership)
        }
        #expect(elements.count == Set(elements).count, "seed \(seed): duplicate elements")
        #expect(Set(elements) == model, "seed \(seed)")
        #expect(count == model.count, "seed \(seed)")
        #expect(membership == universe.map { model.contains($0) }, "seed \(seed)")
    }

    // MARK: - TSortedMap

    static let sortedPrefixes = ["", "a", "A", "Z", "z", "e", "é", "ä", "😀", "\u{FF5A}", "ab"]

    /// Full scan, count and `first` against the model, in code point order.
    static func checkSortedMap(_ memory: Memory, _ map: TSortedMap, _ model: [String: Int], seed: UInt64, _ label: String) async throws {
        let (entries, count, first) = try await memory.atomically { tx in
            (try await map.range(tx), try await map.count(tx), try await map.first(tx))
        }
        let keys = model.keys.sorted(by: Self.codePointOrder)
        #expect(entries.map { Self.codePoints($0.0) } == keys.map(Self.codePoints), "seed \(seed), \(label): keys or their order")
        #expect(entries.map { $0.1 } == keys.map { Self.num(model[$0]!) }, "seed \(seed), \(label): values")
        #expect(count == model.count, "seed \(seed), \(label): count")
        #expect(first.map { Self.codePoints($0.0) } == keys.first.map(Self.codePoints), "seed \(seed), \(label): first")
    }

    /// The B+tree's shape, read raw: an internal node holds one separator fewer than children
    /// (at least one child), separators ascend and bound their subtrees, every leaf is at the
    /// same depth, no leaf is empty (an emptied leaf leaves the tree, an emptied root is
    /// deleted), the chain from the leftmost leaf visits exactly the tree's leaves in order, and
    /// the store holds no `<name>~n` node the tree does not reach (an unlinked node is deleted).
    static func checkSortedStructure(_ memory: Memory, _ map: TSortedMap, seed: UInt64, _ label: String) async throws {
        let root = map.name + "~r"
        let (leaves, chain, reached, problems) = try await memory.atomically { tx -> ([String], [String], Set<String>, [String]) in
            var problems: [String] = []
            var leaves: [String] = []
            var leafDepths: Set<Int> = []
            var reached: Set<String> = []
            var stack: [(id: String, low: String?, high: String?, depth: Int)] = [(root, nil, nil, 0)]
            while let top = stack.popLast() {
                let (id, low, high, depth) = top
                guard reached.insert(id).inserted else {
                    problems.append("\(id) is reached twice")
                    continue
                }
                guard let v = try await tx.read(id) else {
                    if id != root { problems.append("\(id) is missing") }
                    continue
                }
                guard case .array(let ks)? = v["k"] else {
                    problems.append("\(id) has no keys")
                    continue
                }
                let keys = ks.compactMap(\.stringValue)
                if !zip(keys, keys.dropFirst()).allSatisfy({ Self.codePointOrder($0, $1) }) { problems.append("\(id): keys out of order") }
                if let low, let k = keys.first, Self.codePointOrder(k, low) { problems.append("\(id): a key below its separator") }
                if let high, let k = keys.last, !Self.codePointOrder(k, high) { problems.append("\(id): a key at or above its separator") }
                if case .array(let cs)? = v["c"] {
                    let children = cs.compactMap(\.stringValue)
                    if children.isEmpty || children.count != keys.count + 1 {
                        problems.append("\(id): \(children.count) children for \(keys.count) separators")
                        continue
                    }
                    for i in children.indices.reversed() {
                        stack.append((children[i], i == 0 ? low : keys[i - 1], i == keys.count ? high : keys[i], depth + 1))
                    }
                } else {
                    if keys.isEmpty { problems.append("\(id) is an empty leaf") }
                    leaves.append(id)
                    leafDepths.insert(depth)
                }
            }
            if leafDepths.count > 1 { problems.append("leaves at depths \(leafDepths.sorted())") }
            var chain: [String] = []
            var next = leaves.first
            while let c = next, chain.count <= leaves.count {
                chain.append(c)
                next = try await tx.read(c)?["next"]?.stringValue
            }
            return (leaves, chain, reached, problems)
        }
        #expect(problems.isEmpty, "seed \(seed), \(label): \(problems.prefix(5))")
        #expect(chain == leaves, "seed \(seed), \(label): the chain visits \(chain.count) leaves, the tree holds \(leaves.count)")
        let stored = try await memory.backend.node.list(prefix: map.name + "~n", after: nil, limit: 10_000).ptrs
        let unreached = Set(stored).subtracting(reached)
        #expect(unreached.isEmpty, "seed \(seed), \(label): \(unreached.count) nodes the tree does not reach, e.g. \(unreached.prefix(3))")
    }

    @Test func sortedMapMatchesAModelInCodePointOrder() async throws {
        var rng = SeededRandom.fromEnvironment()
        let seed = rng.seed
        let memory = try await Self.embedded()
        let map = try TSortedMap("t4-sorted", leafEntriesMax: 4, childrenMax: 4)
        let keys = Self.sortedPrefixes.flatMap { p in [p] + (0..<36).map { p + String($0) } }.filter { !$0.isEmpty } + [""]
        let ops = (0..<3_000).map { _ in Self.randomMapOp(keys, &rng, putPercent: 55, removePercent: 30) }
        var model: [String: Int] = [:]

        // An absent tree is empty.
        try await Self.checkSortedMap(memory, map, model, seed: seed, "empty")
        for (b, batch) in Self.batches(ops, maxPerTxn: 4, &rng).enumerated() {
            let got = try await memory.atomically { tx in
                var out: [Outcome] = []
                for op in batch { out.append(try await Self.apply(map, tx, op)) }
                return out
            }
            let want = batch.map { Self.apply(&model, $0) }
            #expect(got == want, "seed \(seed), transaction \(b): \(batch)")
            if got != want { return }
            if b % 400 == 399 {
                try await Self.checkSortedMap(memory, map, model, seed: seed, "after transaction \(b)")
                try await Self.checkSortedStructure(memory, map, seed: seed, "after transaction \(b)")
            }
        }
        try await Self.checkSortedMap(memory, map, model, seed: seed, "at the end")
        try await Self.checkSortedStructure(memory, map, seed: seed, "at the end")

        // Bounded scans.
        let sortedKeys = model.keys.sorted(by: Self.codePointOrder)
        func bound(_ rng: inout SeededRandom) -> String? {
            switch Int.random(in: 0..<6, using: &rng) {
            case 0: return nil
            case 1, 2: return keys.randomElement(using: &rng)!
            case 3: return sortedKeys.randomElement(using: &rng)
            case 4: return Self.sortedPrefixes.randomElement(using: &rng)!
            default: return Self.sortedPrefixes.randomElement(using: &rng)! + String(Int.random(in: 0..<400, using: &rng))
            }
        }
        var drafts: [(from: String?, to: String?, limit: Int)] = []
        for _ in 0..<50 {
            let from = bound(&rng)
            let to = bound(&rng)
            let limit = [Int.max, Int.max, 0, 1, 3, 17, 100].randomElement(using: &rng)!
            drafts.append((from: from, to: to, limit: limit))
        }
        let queries = drafts
        let answers = try await memory.atomically { tx in
            var out: [[(String, JSONValue)]] = []
            for q in queries { out.append(try await map.range(tx, from: q.from, to: q.to, limit: q.limit)) }
            return out
        }
        for (q, got) in zip(queries, answers) {
            let want = sortedKeys.filter { k in
                (q.from.map { !Self.codePointOrder(k, $0) } ?? true) && (q.to.map { Self.codePointOrder(k, $0) } ?? true)
            }.prefix(q.limit)
            let label = "seed \(seed), range from \(q.from.debugDescription) to \(q.to.debugDescription) limit \(q.limit)"
            #expect(got.map { Self.codePoints($0.0) } == want.map(Self.codePoints), "\(label)")
            #expect(got.map { $0.1 } == want.map { Self.num(model[$0]!) }, "\(label)")
        }

        // Point reads of every key of the key space and of keys never used.
        let probes = keys + ["a999", "😀😀", "zz", "\u{10FFFF}", "Ā", "e\u{301}x"]
        let gets = try await memory.atomically { tx in
            var out: [JSONValue?] = []
            for k in probes { out.append(try await map.get(tx, k)) }
            return out
        }
        #expect(gets == probes.map { model[$0].map(Self.num) }, "seed \(seed)")
    }

    @Test func sortedMapUnderConcurrentDisjointInserters() async throws {
        var rng = SeededRandom.fromEnvironment()
        let seed = rng.seed
        let memory = try await Self.embedded()
        let map = try TSortedMap("t4-concurrent", leafEntriesMax: 4, childrenMax: 4)
        let workers = 8
        // Worker w owns numbers ≡ w (mod 8): its keys interleave with everyone's in key order,
        // so concurrent inserts land in the same leaves and split the same parents.
        let plans: [[[String]]] = (0..<workers).map { w in
            let own = (0..<36).map { i -> String in
                let n = i * workers + w
                return Self.sortedPrefixes[n % Self.sortedPrefixes.count] + String(n)
            }
            let shuffled = own.shuffled(using: &rng)
            return Self.batches(shuffled, maxPerTxn: 4, &rng)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for plan in plans {
                group.addTask {
                    for batch in plan {
                        try await memory.atomically { tx in
                            for k in batch {
                                let old = try await map.put(tx, k, .string(k))
                                #expect(old == nil, "seed \(seed): \(k) was already there")
                            }
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let union = plans.joined().joined().sorted(by: Self.codePointOrder)
        let (entries, count) = try await memory.atomically { tx in (try await map.range(tx), try await map.count(tx)) }
        #expect(entries.map { Self.codePoints($0.0) } == union.map(Self.codePoints), "seed \(seed)")
        #expect(entries.map { $0.1 } == union.map { JSONValue.string($0) }, "seed \(seed)")
        #expect(count == union.count, "seed \(seed)")
        // The root must have grown at least two levels (4 children × 4 entries < 288 keys).
        let root = try await memory.atomically { tx in try await tx.read("t4-concurrent~r") }
        #expect(root?["c"] != nil, "seed \(seed): the root is still a leaf")
    }

    /// A sorted map used as a queue (keys added at the back, taken from the front) keeps no
    /// empty leaves: each leaf a removal empties leaves the tree, so `first` stays a walk down
    /// one path, and a drained map holds no nodes at all.
    @Test func sortedMapDrainedFromTheFrontKeepsNoEmptyLeaves() async throws {
        var rng = SeededRandom.fromEnvironment()
        let seed = rng.seed
        let memory = try await Self.embedded()
        let map = try TSortedMap("t9-queue", leafEntriesMax: 4, childrenMax: 4)
        var added = 0, taken = 0
        for round in 0..<80 {
            let adds = Int.random(in: 0...14, using: &rng)
            let keys = (added..<(added + adds)).map { String(format: "q%06d", $0) }
            try await memory.atomically { tx in
                for k in keys { _ = try await map.put(tx, k, .string(k)) }
            }
            added += adds
            for _ in 0..<Int.random(in: 0...12, using: &rng) where taken < added {
                let got = try await memory.atomically { tx -> String? in
                    guard let k = try await map.first(tx)?.0 else { return nil }
                    _ = try await map.remove(tx, k)
                    return k
                }
                #expect(got == String(format: "q%06d", taken), "seed \(seed), round \(round)")
                taken += 1
            }
            if round % 10 == 9 { try await Self.checkSortedStructure(memory, map, seed: seed, "after round \(round)") }
        }
        // Drain it, in transactions of several removals.
        while taken < added {
            let n = min(added - taken, Int.random(in: 1...9, using: &rng))
            let got = try await memory.atomically { tx -> [String] in
                var out: [String] = []
                for (k, _) in try await map.range(tx, limit: n) {
                    _ = try await map.remove(tx, k)
                    out.append(k)
                }
                return out
            }
            #expect(got == (taken..<(taken + n)).map { String(format: "q%06d", $0) }, "seed \(seed)")
            taken += n
        }
        try await Self.checkSortedStructure(memory, map, seed: seed, "drained")
        let (count, first, root) = try await memory.atomically { tx in
            (try await map.count(tx), try await map.first(tx), try await tx.read("t9-queue~r"))
        }
        #expect(count == 0 && first == nil && root == nil, "seed \(seed): count \(count), root \(String(describing: root))")
        let nodes = try await memory.backend.node.list(prefix: "t9-queue~n", after: nil, limit: 100).ptrs
        #expect(nodes.isEmpty, "seed \(seed): \(nodes.count) nodes left after draining")
        // It still works as a map afterwards.
        try await memory.atomically { tx in _ = try await map.put(tx, "again", .bool(true)) }
        let again = try await memory.atomically { tx in try await map.range(tx) }
        #expect(again.map(\.0) == ["again"])
    }

    /// Removals in random order, from transactions that run at once, against inserts: the tree
    /// unlinks the leaves they empty (rewriting the leaf before and the parent) without losing
    /// a key or leaving a node behind.
    @Test func sortedMapUnderConcurrentRemovalsAndInserts() async throws {
        var rng = SeededRandom.fromEnvironment()
        let seed = rng.seed
        let memory = try await Self.embedded()
        let map = try TSortedMap("t9-concurrent", leafEntriesMax: 3, childrenMax: 3)
        let initial = (0..<240).map { String(format: "c%04d", $0) }
        for batch in Self.batches(initial, maxPerTxn: 12, &rng) {
            try await memory.atomically { tx in for k in batch { _ = try await map.put(tx, k, .string(k)) } }
        }
        // Four removers take disjoint shares of the keys in random order; two inserters add
        // keys between them.
        let shares: [[[String]]] = (0..<4).map { w in
            Self.batches(initial.enumerated().filter { $0.offset % 4 == w }.map(\.element).shuffled(using: &rng), maxPerTxn: 3, &rng)
        }
        let inserts: [[[String]]] = (0..<2).map { w in
            Self.batches((0..<60).map { String(format: "c%04d+%d", $0 * 4 + w, w) }.shuffled(using: &rng), maxPerTxn: 3, &rng)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for plan in shares {
                group.addTask {
                    for batch in plan {
                        try await memory.atomically { tx in
                            for k in batch {
                                let old = try await map.remove(tx, k)
                                #expect(old == .string(k), "seed \(seed): \(k) was not there")
                            }
                        }
                    }
                }
            }
            for plan in inserts {
                group.addTask {
                    for batch in plan {
                        try await memory.atomically { tx in for k in batch { _ = try await map.put(tx, k, .string(k)) } }
                    }
                }
            }
            try await group.waitForAll()
        }
        let want = inserts.joined().joined().sorted(by: Self.codePointOrder)
        let (entries, count) = try await memory.atomically { tx in (try await map.range(tx), try await map.count(tx)) }
        #expect(entries.map(\.0) == want, "seed \(seed)")
        #expect(count == want.count, "seed \(seed)")
        try await Self.checkSortedStructure(memory, map, seed: seed, "after the concurrent run")
    }

    /// Internal nodes split by bytes too: 40 KB keys would make a node of 64 separators 2.5 MB,
    /// past a pointer's 1 MiB. A key longer than `keyBytesMax` is refused before anything is
    /// written.
    @Test func largeKeysSplitInternalNodesByBytes() async throws {
        var rng = SeededRandom(seed: 9)
        let memory = try await Self.embedded()
        let map = try TSortedMap("t9-keys")
        let pad = String(repeating: "x", count: 40_000)
        let keys = (0..<160).map { String(format: "k%03d", $0) + pad }
        for k in keys.shuffled(using: &rng) {
            try await memory.atomically { tx in _ = try await map.put(tx, k, .number("1")) }
        }
        let got = try await memory.atomically { tx in try await map.range(tx) }
        #expect(got.map(\.0) == keys)
        try await Self.checkSortedStructure(memory, map, seed: 9, "40 KB keys")
        let nodes = try await memory.backend.node.list(prefix: "t9-keys~", after: nil, limit: 1_000).ptrs
        let values = try await memory.atomically { tx in try await tx.read(nodes) }
        var inner = 0
        for (p, v) in values {
            guard case .array(let c)? = v["c"], case .array(let k)? = v["k"] else { continue }
            inner += 1
            if k.count >= 3 { #expect(v.compactText.utf8.count <= map.leafBytesMax, "\(p): \(c.count) children in \(v.compactText.utf8.count) bytes") }
        }
        #expect(inner >= 3, "the keys should have needed several internal nodes")

        let tooLong = String(repeating: "y", count: TSortedMap.keyBytesMax + 1)
        await #expect(throws: CollectionError.self) {
            try await memory.atomically { tx in _ = try await map.put(tx, tooLong, .null) }
        }
        let count = try await memory.atomically { tx in try await map.count(tx) }
        #expect(count == keys.count)
    }

    /// A caller's offsets and limits are clamped to the list before any addition, and a
    /// counter refuses to pass `Int`'s range: an overflow trapped and stopped the process.
    @Test func hugeOffsetsLimitsAndSumsDoNotTrap() async throws {
        let memory = try await Self.embedded()
        let list = try TList("t10-list")
        try await memory.atomically { tx in try await list.append(tx, contentsOf: [.string("a"), .string("b"), .string("c")]) }
        _ = try await memory.atomically { tx in try await list.pop(tx) }
        let (all, far, tail) = try await memory.atomically { tx in
            (try await list.elements(tx, offset: 0, limit: .max), try await list.get(tx, .max), try await list.elements(tx, offset: .max, limit: .max))
        }
        #expect(all == [.string("b"), .string("c")] && far == nil && tail.isEmpty)
        let counter = try TCounter("t10-counter", stripes: 1)
        try await memory.atomically { tx in try await counter.add(tx, .max) }
        await #expect(throws: CollectionError.self) { try await memory.atomically { tx in try await counter.add(tx, 1) } }
        #expect(try await memory.atomically { tx in try await counter.value(tx) } == .max)
    }

    /// Keys are sequences of code points: "é" (U+00E9) and "e" + U+0301 are two keys, as they
    /// are two distinct JSON strings and sort apart. Swift's `==` on `String` calls them equal
    /// (canonical equivalence), so comparing keys with it conflates them.
    @Test func canonicallyEquivalentKeysAreDistinctKeys() async throws {
        let memory = try await Self.embedded()
        let composed = "\u{E9}"
        let decomposed = "e\u{301}"
        #expect(Self.codePoints(composed) != Self.codePoints(decomposed))
        let sorted = try TSortedMap("t7-sorted")
        let map = try TMap("t7-map")
        let (sortedOld, mapOld) = try await memory.atomically { tx in
            try await sorted.put(tx, composed, Self.num(1))
            try await map.put(tx, composed, Self.num(1))
            return (try await sorted.put(tx, decomposed, Self.num(2)), try await map.put(tx, decomposed, Self.num(2)))
        }
        #expect(sortedOld == nil, "TSortedMap.put(\"e\\u{301}\") replaced \"\\u{E9}\"")
        #expect(mapOld == nil, "TMap.put(\"e\\u{301}\") replaced \"\\u{E9}\"")
        let (range, sortedCount, sortedGets, mapEntries, mapCount, mapGets) = try await memory.atomically { tx in
            (
                try await sorted.range(tx), try await sorted.count(tx),
                [try await sorted.get(tx, composed), try await sorted.get(tx, decomposed)],
                try await map.entries(tx), try await map.count(tx),
                [try await map.get(tx, composed), try await map.get(tx, decomposed)]
            )
        }
        #expect(range.map { Self.codePoints($0.0) } == [Self.codePoints(decomposed), Self.codePoints(composed)])
        #expect(sortedCount == 2)
        #expect(sortedGets == [Self.num(1), Self.num(2)])
        #expect(Set(mapEntries.map { Self.codePoints($0.0) }) == [Self.codePoints(composed), Self.codePoints(decomposed)])
        #expect(mapCount == 2)
        #expect(mapGets == [Self.num(1), Self.num(2)])
    }

    /// Large values: a leaf splits by bytes as well as by entries, so a map of values of
    /// tens of KB (far more in all than one pointer may hold, 1 MiB) takes every put, and a
    /// value that grows in place splits its leaf too. Before, the 17th value of 60 KB made
    /// the root leaf too large to write (413).
    @Test func largeValuesSplitLeavesByBytes() async throws {
        let memory = try await Self.embedded()
        let map = try TMap("t8-map")
        @Sendable func big(_ i: Int, _ bytes: Int) -> JSONValue { .string(String(repeating: Character(UnicodeScalar(UInt8(97 + i % 26))), count: bytes)) }
        for i in 0..<40 {
            try await memory.atomically { tx in _ = try await map.put(tx, "k\(i)", big(i, 60_000)) }
        }
        // Small values that then grow in place, in one transaction each.
        for i in 40..<50 {
            try await memory.atomically { tx in _ = try await map.put(tx, "k\(i)", Self.num(i)) }
        }
        for i in 40..<50 {
            try await memory.atomically { tx in _ = try await map.put(tx, "k\(i)", big(i, 200_000)) }
        }
        let (count, entries, gets) = try await memory.atomically { tx in
            var gets: [JSONValue?] = []
            for i in 0..<50 { gets.append(try await map.get(tx, "k\(i)")) }
            return (try await map.count(tx), try await map.entries(tx), gets)
        }
        #expect(count == 50 && entries.count == 50)
        for i in 0..<50 {
            #expect(gets[i] == big(i, i < 40 ? 60_000 : 200_000), "k\(i)")
        }
        // Every node stays within the leaf's byte budget, unless it holds a single entry.
        var nodes = ["t8-map~m"]
        for a in 0..<16 {
            let first = "t8-map~m" + String(a, radix: 16)
            nodes.append(first)
            for b in 0..<16 { nodes.append(first + String(b, radix: 16)) }
        }
        let ids = nodes
        let leaves = try await memory.atomically { tx in try await tx.read(ids) }
        for (p, v) in leaves {
            guard case .array(let e)? = v["e"], e.count > 1 else { continue }
            #expect(v.compactText.utf8.count <= map.leafBytesMax, "\(p) holds \(e.count) entries in \(v.compactText.utf8.count) bytes")
        }
    }

    /// The same for the B+tree: leaves split at their byte midpoint (again, while the part
    /// holding the new entry is still too large), the chain and the order stay right.
    @Test func largeValuesSplitSortedLeavesByBytes() async throws {
        let memory = try await Self.embedded()
        let map = try TSortedMap("t8-sorted")
        @Sendable func big(_ i: Int, _ bytes: Int) -> JSONValue { .string(String(repeating: Character(UnicodeScalar(UInt8(97 + i % 26))), count: bytes)) }
        // Keys in an order that fills the middle of leaves, values from 1 byte to 300 KB.
        var rng = SeededRandom(seed: 8)
        var sizes: [String: Int] = [:]
        for i in (0..<60).shuffled(using: &rng) {
            let key = String(format: "k%03d", i)
            let bytes = [1, 100, 30_000, 90_000, 300_000][i % 5]
            sizes[key] = bytes
            try await memory.atomically { tx in _ = try await map.put(tx, key, big(i, bytes)) }
        }
        // Values that grow in place.
        for i in stride(from: 0, to: 60, by: 5) {
            let key = String(format: "k%03d", i)
            sizes[key] = 250_000
            try await memory.atomically { tx in _ = try await map.put(tx, key, big(i, 250_000)) }
        }
        let (count, range) = try await memory.atomically { tx in (try await map.count(tx), try await map.range(tx)) }
        #expect(count == 60)
        #expect(range.map(\.0) == sizes.keys.sorted())
        for (k, v) in range {
            let i = Int(k.dropFirst())!
            #expect(v == big(i, sizes[k]!), "\(k)")
        }
        // Every leaf of the chain stays within the byte budget, unless it holds one entry.
        let leaves = try await memory.atomically { tx in
            var out: [(String, JSONValue)] = []
            var id: String? = "t8-sorted~r"
            // Down the leftmost path, then along the chain.
            while let current = id, let v = try await tx.read(current) {
                if case .array(let c)? = v["c"], let first = c.first?.stringValue {
                    id = first
                    continue
                }
                out.append((current, v))
                id = v["next"]?.stringValue
            }
            return out
        }
        #expect(leaves.count > 1)
        for (p, v) in leaves {
            guard case .array(let k)? = v["k"], k.count > 1 else { continue }
            #expect(v.compactText.utf8.count <= map.leafBytesMax, "\(p) holds \(k.count) entries in \(v.compactText.utf8.count) bytes")
        }
    }

    // MARK: - TList / TQueue

    enum ListOp: Sendable {
        case push(JSONValue)
        case append([JSONValue])
        case popIfAny
        case peek
        case get(Int)
        case count
        case elements(offset: Int, limit: Int)
    }

    @Test func listIsFIFOAgainstAnArrayModel() async throws {
        var rng = SeededRandom.fromEnvironment()
        let seed = rng.seed
        let memory = try await Self.embedded()
        let list = try TList("t5-list")
        var next = 0
        var ops: [ListOp] = [.popIfAny, .peek, .count, .get(0), .elements(offset: 0, limit: 10)]
        for j in 0..<600 {
            // Grow in the first half, drain in the second, so the list also runs empty.
            let popPercent = j < 300 ? 25 : 55
            let roll = Int.random(in: 0..<100, using: &rng)
            if roll < popPercent {
                ops.append(.popIfAny)
            } else if roll < popPercent + 25 {
                ops.append(.push(next % 3 == 0 ? .string("v\(next)") : Self.num(next)))
                next += 1
            } else if roll < popPercent + 32 {
                let n = Int.random(in: 2...3, using: &rng)
                ops.append(.append((next..<(next + n)).map { Self.num($0) }))
                next += n
            } else {
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: ops.append(.peek)
                case 1: ops.append(.get(Int.random(in: -1...20, using: &rng)))
                case 2: ops.append(.count)
                default: ops.append(.elements(offset: Int.random(in: -1...10, using: &rng), limit: Int.random(in: -1...15, using: &rng)))
                }
            }
        }
        var model: [JSONValue] = []
        var emptyPops = 0

        for (b, batch) in Self.batches(ops, maxPerTxn: 3, &rng).enumerated() {
            let got = try await memory.atomically { tx in
                var out: [Outcome] = []
                for op in batch {
                    switch op {
                    case .push(let v): try await list.push(tx, v); out.append(.unit)
                    case .append(let vs): try await list.append(tx, contentsOf: vs); out.append(.unit)
                    case .popIfAny: out.append(.value(try await list.popIfAny(tx)))
                    case .peek: out.append(.value(try await list.peek(tx)))
                    case .get(let i): out.append(.value(try await list.get(tx, i)))
                    case .count: out.append(.int(try await list.count(tx)))
                    case .elements(let o, let l): out.append(.list(try await list.elements(tx, offset: o, limit: l)))
                    }
                }
                return out
            }
            var want: [Outcome] = []
            for op in batch {
                switch op {
                case .push(let v): model.append(v); want.append(.unit)
                case .append(let vs): model += vs; want.append(.unit)
                case .popIfAny:
                    if model.isEmpty { emptyPops += 1 }
                    want.append(.value(model.isEmpty ? nil : model.removeFirst()))
                case .peek: want.append(.value(model.first))
                case .get(let i): want.append(.value(i >= 0 && i < model.count ? model[i] : nil))
                case .count: want.append(.int(model.count))
                case .elements(let o, let l):
                    guard o >= 0, l > 0, o < model.count else { want.append(.list([])); break }
                    want.append(.list(Array(model[o..<min(model.count, o + l)])))
                }
            }
            #expect(got == want, "seed \(seed), transaction \(b): \(batch)")
            if got != want { return }
        }
        #expect(emptyPops > 0, "seed \(seed): the run never popped an empty list")

        let (all, count, pointers) = try await memory.atomically { tx in
            (try await list.elements(tx), try await list.count(tx), try await list.pointers(tx))
        }
        #expect(all == model, "seed \(seed)")
        #expect(count == model.count, "seed \(seed)")
        #expect(pointers.count == 2 + model.count, "seed \(seed)")
        // Drain: FIFO to the end, then nil.
        let drained = try await memory.atomically { tx in
            var out: [JSONValue] = []
            while let v = try await list.popIfAny(tx) { out.append(v) }
            return out
        }
        #expect(drained == model, "seed \(seed)")
        let (emptyPop, emptyCount) = try await memory.atomically { tx in (try await list.popIfAny(tx), try await list.count(tx)) }
        #expect(emptyPop == nil && emptyCount == 0, "seed \(seed)")
    }

    struct Item: Sendable, Hashable {
        let producer: Int
        let index: Int
    }

    static func item(_ v: JSONValue) -> Item? {
        guard case .array(let a) = v, a.count == 2, let p = a[0].intValue, let i = a[1].intValue else { return nil }
        return Item(producer: p, index: i)
    }

    @Test func queueWithConcurrentProducersAndBlockingConsumers() async throws {
        var rng = SeededRandom.fromEnvironment()
        let seed = rng.seed
        let memory = try await Self.embedded()
        let queue = try TQueue("t5-queue")
        let producers = 4, consumers = 4, perProducer = 100
        let stop = JSONValue.string("stop")
        // Each producer pushes its values in order, one to three per transaction.
        let plans: [[[Int]]] = (0..<producers).map { _ in Self.batches(Array(0..<perProducer), maxPerTxn: 3, &rng) }

        let taken: [[Item]] = try await withThrowingTaskGroup(of: [Item].self, returning: [[Item]].self) { group in
            for _ in 0..<consumers {
                group.addTask {
                    var seen: [Item] = []
                    while true {
                        let v = try await memory.atomically { tx in try await queue.pop(tx) }
                        if v == stop { return seen }
                        guard let item = Self.item(v) else {
                            Issue.record("seed \(seed): unexpected element \(v)")
                            return seen
                        }
                        seen.append(item)
                    }
                }
            }
            try await withThrowingTaskGroup(of: Void.self) { producing in
                for (p, plan) in plans.enumerated() {
                    producing.addTask {
                        for batch in plan {
                            let values = batch.map { JSONValue.array([Self.num(p), Self.num($0)]) }
                            try await memory.atomically { tx in
                                if values.count == 1 {
                                    try await queue.push(tx, values[0])
                                } else {
                                    try await queue.append(tx, contentsOf: values)
                                }
                            }
                        }
                    }
                }
                try await producing.waitForAll()
            }
            // Every value is in before the stops: one stop per consumer ends them all.
            try await memory.atomically { tx in
                try await queue.append(tx, contentsOf: Array(repeating: stop, count: consumers))
            }
            var all: [[Item]] = []
            for try await seen in group { all.append(seen) }
            return all
        }

        let flat = Array(taken.joined())
        #expect(flat.count == producers * perProducer, "seed \(seed)")
        #expect(Set(flat).count == flat.count, "seed \(seed): a value was taken twice")
        #expect(Set(flat) == Set((0..<producers).flatMap { p in (0..<perProducer).map { Item(producer: p, index: $0) } }), "seed \(seed)")
        for (c, seen) in taken.enumerated() {
            for p in 0..<producers {
                let order = seen.filter { $0.producer == p }.map { $0.index }
                #expect(order == order.sorted(), "seed \(seed): consumer \(c) saw producer \(p) out of order: \(order)")
            }
        }
        let (left, count) = try await memory.atomically { tx in (try await queue.popIfAny(tx), try await queue.count(tx)) }
        #expect(left == nil && count == 0, "seed \(seed)")
    }

    @Test func popBlocksOnAnEmptyQueueUntilAPush() async throws {
        let memory = try await Self.embedded()
        let queue = try TQueue("t5-blocking")
        let runs = Counter()
        async let popped: JSONValue = memory.atomically { tx in
            runs.add()
            return try await queue.pop(tx)
        }
        try await Task.sleep(for: .milliseconds(100))
        #expect(runs.count <= 1)  // parked on the watch, not spinning
        try await memory.atomically { tx in try await queue.push(tx, .string("hello")) }
        #expect(try await popped == .string("hello"))
        #expect(runs.count <= 2)
        let count = try await memory.atomically { tx in try await queue.count(tx) }
        #expect(count == 0)
    }

    // MARK: - Composition

    @Test func oneTransactionMovesAcrossQueueMapAndCounter() async throws {
        var rng = SeededRandom.fromEnvironment()
        let seed = rng.seed
        let memory = try await Self.embedded()
        let queue = try TQueue("t6-queue")
        let map = try TMap("t6-map", leafEntriesMax: 4)
        let moves = try TCounter("t6-moves", stripes: 4)
        let total = 60
        let values = (0..<total).map { _ in Int.random(in: 0..<1_000_000, using: &rng) }
        try await memory.atomically { tx in
            try await queue.append(tx, contentsOf: values.enumerated().map { JSONValue.array([Self.num($0.offset), Self.num($0.element)]) })
        }

        let finished = Counter()
        let observations = Counter()
        try await withThrowingTaskGroup(of: Int.self) { group in
            for w in 0..<4 {
                group.addTask {
                    var mine = 0
                    while true {
                        let moved = try await memory.atomically { tx -> Bool in
                            guard let v = try await queue.popIfAny(tx) else { return false }
                            guard case .array(let pair) = v, pair.count == 2, let i = pair[0].intValue else {
                                throw CollectionError.corrupt(ptr: "t6-queue", why: "unexpected element")
                            }
                            try await map.put(tx, "e\(i)", pair[1])
                            try await moves.add(tx, 1, hint: w)
                            return true
                        }
                        if !moved { return mine }
                        mine += 1
                    }
                }
            }
            // An observer: every snapshot shows each element in exactly one place.
            group.addTask {
                var checks = 0
                while finished.count == 0 || checks < 3 {
                    let (inQueue, inMap, counted) = try await memory.atomically { tx in
                        (try await queue.count(tx), try await map.count(tx), try await moves.value(tx))
                    }
                    #expect(inQueue + inMap == total, "seed \(seed): \(inQueue) queued + \(inMap) mapped")
                    #expect(counted == inMap, "seed \(seed): counter \(counted), map \(inMap)")
                    checks += 1
                    observations.add()
                }
                return 0
            }
            var movedByWorkers = 0
            var workersDone = 0
            for try await n in group {
                movedByWorkers += n
                workersDone += 1
                if workersDone == 4 { finished.add() }
            }
            #expect(movedByWorkers == total, "seed \(seed)")
        }
        #expect(observations.count >= 3)

        let (left, entries, counted, mapCount) = try await memory.atomically { tx in
            (try await queue.count(tx), try await map.entries(tx), try await moves.value(tx), try await map.count(tx))
        }
        #expect(left == 0, "seed \(seed)")
        #expect(counted == total, "seed \(seed)")
        #expect(mapCount == total, "seed \(seed)")
        let expected = Dictionary(uniqueKeysWithValues: values.enumerated().map { ("e\($0.offset)", Self.num($0.element)) })
        #expect(Dictionary(entries.map { ($0.0, $0.1) }, uniquingKeysWith: { a, _ in a }) == expected, "seed \(seed)")
    }

    struct Abandon: Error {}

    @Test func aThrowingBodyLeavesEveryCollectionUntouched() async throws {
        let memory = try await Self.embedded()
        let queue = try TQueue("t6-throw-queue")
        let map = try TMap("t6-throw-map")
        let sorted = try TSortedMap("t6-throw-sorted", leafEntriesMax: 3, childrenMax: 3)
        let counter = try TCounter("t6-throw-counter")
        try await memory.atomically { tx in
            try await queue.push(tx, .string("x"))
            try await map.put(tx, "k", .string("x"))
        }
        await #expect(throws: Abandon.self) {
            try await memory.atomically { tx in
                _ = try await queue.pop(tx)
                try await map.put(tx, "k", .string("y"))
                try await map.put(tx, "k2", .string("y"))
                for i in 0..<10 { try await sorted.put(tx, "s\(i)", Self.num(i)) }
                try await counter.add(tx, 5)
                throw Abandon()
            }
        }
        let (q, m, s, c, sc) = try await memory.atomically { tx in
            (try await queue.elements(tx), try await map.entries(tx), try await sorted.range(tx), try await counter.value(tx), try await sorted.count(tx))
        }
        #expect(q == [.string("x")])
        #expect(m.map { $0.0 } == ["k"] && m.map { $0.1 } == [.string("x")])
        #expect(s.isEmpty && sc == 0)
        #expect(c == 0)
    }

    @Test func orElseTakesFromTheFirstQueueThatHasAnElement() async throws {
        let memory = try await Self.embedded()
        let urgent = try TQueue("t6-urgent")
        let normal = try TQueue("t6-normal")
        try await memory.atomically { tx in
            try await normal.append(tx, contentsOf: [.string("n1"), .string("n2")])
        }
        let takeOne: @Sendable (any Transaction) async throws -> JSONValue = { tx in
            try await tx.orElse({ try await urgent.pop($0) }, { try await normal.pop($0) })
        }
        #expect(try await memory.atomically { tx in try await takeOne(tx) } == .string("n1"))
        try await memory.atomically { tx in try await urgent.push(tx, .string("u1")) }
        #expect(try await memory.atomically { tx in try await takeOne(tx) } == .string("u1"))
        #expect(try await memory.atomically { tx in try await takeOne(tx) } == .string("n2"))
        // Both empty: blocks until either gets an element.
        async let later: JSONValue = memory.atomically { tx in try await takeOne(tx) }
        try await Task.sleep(for: .milliseconds(50))
        try await memory.atomically { tx in try await normal.push(tx, .string("n3")) }
        #expect(try await later == .string("n3"))
    }
}
