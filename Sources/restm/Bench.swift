import ArgumentParser
import Foundation
import RestmClient
import RestmCore
import RestmNode
import RestmStore
import Synchronization

/// `restm bench`: the workloads of shared/bench/WORKLOADS.md against a node over HTTP
/// (`--url`) or an embedded node (`--embedded`, durable SQLite in a temporary directory).
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a benchmark workload: bank, hot or read-mostly (or ping: the cost of one HTTP request).",
        discussion: """
            Progress goes to standard error; the final result is one JSON line on standard output. \
            The accounts acct:0 … acct:<A-1> are set to {"balance": 100} first and left in place (with --embedded, \
            in a temporary directory removed at the end unless --data names one). total_ok reads every account back \
            from the node. conflicts_per_commit and max_attempts count the conflicts the node retried itself too. \
            read-mostly: transfers_per_s counts its transfers, txns_per_s every transaction; the latencies, \
            conflicts and attempts cover every transaction.
            """)

    enum EmbeddedStore: String, ExpressibleByArgument, CaseIterable {
        case sqlite, memory
    }

    enum OnOff: String, ExpressibleByArgument, CaseIterable {
        case on, off
    }

    enum Workload: String, ExpressibleByArgument, CaseIterable {
        case bank, hot
        case readMostly = "read-mostly"
        /// Not a workload of WORKLOADS.md: `GET /sys/health` in a loop, no transaction. It
        /// measures what one request costs the server and the load generator at least.
        case ping
    }

    @Argument(help: "bank | hot | read-mostly | ping (GET /sys/health in a loop: the cost of a request alone)") var workload: Workload
    @Option(help: "Base URL of a node.") var url = "http://127.0.0.1:9000"
    @Flag(help: "Run against an embedded node in this process (durable SQLite in a temporary directory, removed at the end; --data keeps one).") var embedded = false
    @Option(help: "Data directory for --embedded (default: a fresh temporary one).") var data: String?
    @Option(help: "Store of --embedded: sqlite (durable, the default) or memory (not durable; only to measure what the store costs).")
    var store: EmbeddedStore = .sqlite
    @Option(help: "Accounts (default 10,000; hot: 10; read-mostly: 100,000).") var accounts: Int?
    @Option(help: "Concurrent clients.") var clients = 32
    @Option(help: "HTTP client of the load generator: nio (lean, the default: the load generator shares the machine) or ahc (AsyncHTTPClient, as applications use).")
    var httpClient: HTTPBackend.Transport = .nio
    @Option(help: "Coalesce concurrent requests into POST /batch with at most this many exchanges in flight (0: every request alone).")
    var batching = 4
    @Option(help: "Client read cache: on (bodies read from a shared cache and commit in one round trip that checks the versions read; the default over HTTP) or off (each transaction begins on the node and reads there: two round trips; the default embedded).")
    var readCache: OnOff?
    @Option(help: "Measured seconds, after the warm-up.") var seconds = 20
    @Option(help: "Warm-up seconds (not measured).") var warmup = 3
    @Option(help: "Random seed (default: fresh; printed).") var seed: UInt64?

    func validate() throws {
        guard clients > 0, clients <= 4096 else { throw ValidationError("--clients must be 1–4096") }
        guard seconds > 0, warmup >= 0 else { throw ValidationError("--seconds must be positive") }
        guard batching >= 0, batching <= 1_024 else { throw ValidationError("--batching must be 0–1024") }
        if let a = accounts, a < 2 { throw ValidationError("--accounts must be at least 2") }
        if workload == .readMostly, let a = accounts, a < 5 {
            throw ValidationError("read-mostly reads 5 distinct accounts: --accounts must be at least 5")
        }
    }

    /// Over HTTP the cache saves a round trip per transaction; embedded, reads cost no round
    /// trip and the cache only adds failed checks, so it is off there unless asked for.
    var cacheOn: Bool { (readCache ?? (embedded ? .off : .on)) == .on }

    var accountCount: Int {
        accounts ?? (workload == .hot ? 10 : workload == .readMostly ? 100_000 : 10_000)
    }

    func run() async throws {
        let seed = self.seed ?? UInt64.random(in: 1...UInt64.max)
        if workload == .ping {
            guard !embedded else { throw ValidationError("ping measures HTTP requests: use --url") }
            log("bench ping: GET /sys/health, \(clients) clients, \(seconds) s, \(url) (\(httpClient.rawValue))")
            try await ping()
            return
        }
        let cache = cacheOn ? ReadCache(capacity: max(100_000, 2 * accountCount)) : nil
        log("bench \(workload.rawValue): \(accountCount) accounts, \(clients) clients, \(warmup)+\(seconds) s, seed \(seed), \(embedded ? "embedded" : url)")
        if embedded {
            let dir = data ?? NSTemporaryDirectory() + "restm-bench-\(UInt32.random(in: 0...UInt32.max))"
            var c = NodeConfiguration()
            c.limits.openTxnsMax = max(c.limits.openTxnsMax, clients * 2)
            let backing: any Store = store == .memory ? MemoryStore() : try SQLiteStore(directory: dir, durability: .sync)
            let node = try await Node.open(store: backing, configuration: c)
            log(store == .memory ? "embedded node on a memory store (NOT durable: measures the store's cost)" : "embedded node on \(dir) (sync durability)")
            try await runWorkload(TransactionalMemory(backend: EmbeddedBackend(node: node), cache: cache), seed: seed)
            let m = node.metrics.snapshot()
            log("group commits: \(m.batches), \(String(format: "%.1f", Double(m.batchedCommits) / Double(max(1, m.batches)))) commits each on average")
            await node.shutdown()
            if data == nil { try? FileManager.default.removeItem(atPath: dir) }
        } else {
            let backend = HTTPBackend(
                url: url, connections: clients, transport: httpClient,
                batching: batching == 0 ? nil : HTTPBackend.Batching(inFlightMax: batching))
            do {
                try await runWorkload(TransactionalMemory(backend: backend, cache: cache), seed: seed, traffic: { backend.traffic })
            } catch {
                try? await backend.shutdown()
                throw error
            }
            try await backend.shutdown()
        }
    }

    func log(_ s: String) {
        FileHandle.standardError.write(Data((s + "\n").utf8))
    }

    static func account(_ i: Int) -> String { "acct:\(i)" }
    static let hundred: JSONValue = .object([("balance", .number("100"))])

    /// Traffic counts at the start and the end of the measured window, and when it began and
    /// ended as it really ran (the one-second sleeps drift a little).
    final class TrafficWindow: Sendable {
        let counts = Mutex<[(requests: Int, exchanges: Int)]>([])
        let span = Mutex<(start: ContinuousClock.Instant?, end: ContinuousClock.Instant?)>((nil, nil))
    }

    final class Stats: Sendable {
        struct S {
            var transfers = 0
            var readOnly = 0
            var conflicts = 0
            var maxAttempts = 0
            var latencies: [Double] = []
        }
        let s = Mutex(S())
        let measuring = Atomic<Bool>(false)
        let stop = Atomic<Bool>(false)
        let progress = Atomic<Int>(0)
    }

    /// `traffic`: requests and HTTP exchanges so far (over HTTP), to report per transfer.
    func runWorkload<B: TransactionBackend>(
        _ memory: TransactionalMemory<B>, seed: UInt64, traffic: @escaping @Sendable () -> (requests: Int, exchanges: Int)? = { nil }
    ) async throws {
        let n = accountCount
        // Set every account to 100, in chunks of blind writes.
        var i = 0
        while i < n {
            let chunk = Array(i..<min(n, i + 500))
            try await memory.atomically { tx in
                for a in chunk { try await tx.write(Self.account(a), Self.hundred) }
            }
            i += 500
        }
        log("\(n) accounts set to 100")

        let stats = Stats()
        let cpuStart = Self.cpuSeconds()
        let trafficWindow = TrafficWindow()
        let begun = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for c in 0..<clients {
                group.addTask {
                    var rng = SplitMix(seed: seed &+ UInt64(c) &* 0x9E37_79B9)
                    var local = Stats.S()
                    var flushed = ContinuousClock.now
                    while !stats.stop.load(ordering: .relaxed) {
                        let readOnly = workload == .readMostly && rng.next() % 10 != 0
                        let start = ContinuousClock.now
                        let report: AtomicReport
                        if readOnly {
                            var ptrs: [String] = []
                            while ptrs.count < 5 {
                                let p = Self.account(Int(rng.next() % UInt64(n)))
                                if !ptrs.contains(p) { ptrs.append(p) }
                            }
                            let set = ptrs
                            (_, report) = try await memory.atomicallyReporting { tx in _ = try await tx.read(set) }
                        } else {
                            let a = Int(rng.next() % UInt64(n))
                            let r = Int(rng.next() % UInt64(n - 1))
                            let b = r >= a ? r + 1 : r
                            let amount = Int(rng.next() % 10) + 1
                            (_, report) = try await memory.atomicallyReporting { tx in
                                let pa = Self.account(a), pb = Self.account(b)
                                let v = try await tx.read([pa, pb])
                                let ba = v[pa]?["balance"]?.intValue ?? 0
                                let bb = v[pb]?["balance"]?.intValue ?? 0
                                guard ba >= amount else { return }
                                try await tx.write(pa, .object([("balance", .number(String(ba - amount)))]))
                                try await tx.write(pb, .object([("balance", .number(String(bb + amount)))]))
                            }
                        }
                        let ms = Self.millis(ContinuousClock.now - start)
                        if stats.measuring.load(ordering: .relaxed) {
                            if readOnly { local.readOnly += 1 } else { local.transfers += 1 }
                            local.conflicts += report.conflicts
                            local.maxAttempts = max(local.maxAttempts, report.attempts)
                            local.latencies.append(ms)
                        }
                        stats.progress.wrappingAdd(1, ordering: .relaxed)
                        if ContinuousClock.now - flushed > .milliseconds(500) || stats.stop.load(ordering: .relaxed) {
                            Self.flush(&local, into: stats)
                            flushed = ContinuousClock.now
                        }
                    }
                    Self.flush(&local, into: stats)
                }
            }
            group.addTask {
                try await Task.sleep(for: .seconds(warmup))
                if let t = traffic() { trafficWindow.counts.withLock { $0.append(t) } }
                trafficWindow.span.withLock { $0.start = ContinuousClock.now }
                stats.measuring.store(true, ordering: .relaxed)
                var last = stats.progress.load(ordering: .relaxed)
                for t in 1...seconds {
                    try await Task.sleep(for: .seconds(1))
                    let now = stats.progress.load(ordering: .relaxed)
                    log("t=\(t)s \(now - last) txns/s")
                    last = now
                }
                stats.measuring.store(false, ordering: .relaxed)
                trafficWindow.span.withLock { $0.end = ContinuousClock.now }
                if let t = traffic() { trafficWindow.counts.withLock { $0.append(t) } }
                stats.stop.store(true, ordering: .relaxed)
            }
            try await group.waitForAll()
        }
        let cpu = Self.cpuSeconds() - cpuStart
        let elapsed = Self.millis(ContinuousClock.now - begun) / 1000
        let measured = trafficWindow.span.withLock { w in w.start.flatMap { s in w.end.map { Self.millis($0 - s) / 1000 } } } ?? Double(seconds)

        // Read every account back from the node (not from the read cache, which holds what
        // this process wrote). All clients have stopped, so the state is quiescent and may
        // be read in several transactions (one may touch at most 10,000 pointers).
        let reader = TransactionalMemory(backend: memory.backend)
        var total = 0
        var j = 0
        while j < n {
            let chunk = (j..<min(n, j + 5_000)).map(Self.account)
            total += try await reader.atomically { tx in
                var sum = 0
                var k = 0
                while k < chunk.count {
                    let values = try await tx.read(Array(chunk[k..<min(chunk.count, k + 1_000)]))
                    sum += values.values.reduce(0) { $0 + ($1["balance"]?.intValue ?? 0) }
                    k += 1_000
                }
                return sum
            }
            j += 5_000
        }
        let s = stats.s.withLock { $0 }
        let lat = s.latencies.sorted()
        func pct(_ p: Double) -> Double { lat.isEmpty ? 0 : lat[min(lat.count - 1, Int(Double(lat.count) * p))] }
        let secs = measured
        let committed = s.transfers + s.readOnly
        let window = trafficWindow.counts.withLock { $0 }
        /// HTTP requests (or exchanges on the wire) per committed transaction, retries included.
        func perTransfer(_ key: KeyPath<(requests: Int, exchanges: Int), Int>) -> String {
            guard window.count == 2, committed > 0 else { return "null" }
            return String(format: "%.3f", Double(window[1][keyPath: key] - window[0][keyPath: key]) / Double(committed))
        }
        var o: [(String, String)] = [
            ("workload", "\"\(workload.rawValue)\""),
            ("transfers_per_s", String(format: "%.1f", Double(s.transfers) / secs)),
            ("conflicts_per_commit", String(format: "%.4f", committed == 0 ? 0 : Double(s.conflicts) / Double(committed))),
            ("p50_ms", String(format: "%.3f", pct(0.5))),
            ("p99_ms", String(format: "%.3f", pct(0.99))),
            ("p999_ms", String(format: "%.3f", pct(0.999))),
            ("max_attempts", String(s.maxAttempts)),
            ("total_ok", total == 100 * n ? "true" : "false"),
        ]
        if workload == .readMostly { o.append(("txns_per_s", String(format: "%.1f", Double(committed) / secs))) }
        o.append(contentsOf: [
            ("total", String(total)), ("accounts", String(n)), ("clients", String(clients)), ("seconds", String(seconds)),
            ("mode", embedded ? (store == .memory ? "\"embedded-memory\"" : "\"embedded\"") : "\"http\""),
            ("http_client", embedded ? "null" : "\"\(httpClient.rawValue)\""),
            ("batching", embedded ? "null" : String(batching)),
            ("read_cache", cacheOn ? "\"on\"" : "\"off\""),
            ("requests_per_transfer", perTransfer(\.requests)),
            ("exchanges_per_transfer", perTransfer(\.exchanges)),
            ("bench_cpu_percent", String(format: "%.1f", 100 * cpu / elapsed)),
            ("seed", String(seed)),
        ])
        print("{" + o.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}")
        if total != 100 * n {
            log("TOTAL MISMATCH: \(total) != \(100 * n)")
            throw ExitCode(2)
        }
    }

    static func millis(_ d: Duration) -> Double {
        Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
    }

    static func flush(_ local: inout Stats.S, into stats: Stats) {
        let l = local
        stats.s.withLock { s in
            s.transfers += l.transfers
            s.readOnly += l.readOnly
            s.conflicts += l.conflicts
            s.maxAttempts = max(s.maxAttempts, l.maxAttempts)
            s.latencies.append(contentsOf: l.latencies)
        }
        local = Stats.S()
    }

    /// Requests per second of `GET /sys/health`, with the load generator's CPU per request.
    func ping() async throws {
        let backend = HTTPBackend(url: url, connections: clients, transport: httpClient)
        let stats = Stats()
        let cpuStart = Self.cpuSeconds()
        let start = ContinuousClock.now
        do {
            try await backend.health()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<clients {
                    group.addTask {
                        while !stats.stop.load(ordering: .relaxed) {
                            try await backend.health()
                            stats.progress.wrappingAdd(1, ordering: .relaxed)
                        }
                    }
                }
                try await Task.sleep(for: .seconds(seconds))
                stats.stop.store(true, ordering: .relaxed)
                try await group.waitForAll()
            }
        } catch {
            try? await backend.shutdown()
            throw error
        }
        let secs = Self.millis(ContinuousClock.now - start) / 1000
        let cpu = Self.cpuSeconds() - cpuStart
        try await backend.shutdown()
        let n = Double(stats.progress.load(ordering: .relaxed))
        print(
            "{\"workload\":\"ping\",\"requests_per_s\":\(String(format: "%.1f", n / secs)),\"bench_cpu_us_per_request\":\(String(format: "%.1f", cpu * 1e6 / max(n, 1))),\"bench_cpu_percent\":\(String(format: "%.1f", 100 * cpu / secs)),\"clients\":\(clients),\"seconds\":\(seconds),\"http_client\":\"\(httpClient.rawValue)\"}"
        )
    }

    /// CPU seconds used by this process (user + system).
    static func cpuSeconds() -> Double {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6 + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) / 1e6
    }
}

/// SplitMix64, seeded per client.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension HTTPBackend.Transport: ExpressibleByArgument {}
