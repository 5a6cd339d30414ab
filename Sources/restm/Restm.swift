import ArgumentParser
import Hummingbird
import Logging
import RestmCore
import RestmHTTP
import RestmNode
import RestmStore
import RestmTasks
import ServiceLifecycle
import Synchronization

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Foundation

@main
struct Restm: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restm",
        abstract: "reSTM: a distributed software transactional memory over HTTP.",
        subcommands: [Serve.self, Get.self, Put.self, Bench.self, Demo.self]
    )
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a node.")

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on.") var port = 9000
    @Option(help: "Directory of the embedded SQLite store.") var data = "./restm-data"
    @Option(help: "sync: acknowledge commits after fsync. async: relax only the fsync.") var durability = "sync"
    @Option(help: "Shards (the unit of locking and, later, ownership).") var shards = 64
    @Option(help: "Largest value in bytes (at most 16 MiB).") var valueBytesMax = 1 << 20
    @Option(help: "Default transaction idle timeout in milliseconds.") var txnTimeoutMs = 30_000
    @Option(help: "Transactions open at once.") var openTxnsMax = 10_000
    @Option(help: "How far back snapshot reads (?at=) reach, e.g. 10m, 1h, 90s.") var retention = "10m"
    @Option(help: "Task workers on this node (default: two per core; 0 starts none until POST /sys/init).") var workers: Int?
    @Option(help: "Lease of a task claim in milliseconds: a dead worker's task runs again after it.") var taskLeaseMs = 10_000
    @Option(help: "How long a finished task tree is kept, e.g. 24h, 30m (then its records and outputs are deleted).") var taskRetention = "24h"
    @Option(help: "Log level: trace, debug, info, notice, warning, error.") var logLevel = "info"

    func validate() throws {
        guard Durability(rawValue: durability) != nil else { throw ValidationError("--durability must be sync or async") }
        guard (1...65535).contains(port) else { throw ValidationError("--port must be 1–65535") }
        guard (1...4096).contains(shards) else { throw ValidationError("--shards must be 1–4096") }
        // Answers of reads are bounded (16 MiB each, 32 MiB per batch, under the client
        // library's 64 MiB): a larger value could be written but never read back.
        guard (1...(16 << 20)).contains(valueBytesMax) else { throw ValidationError("--value-bytes-max must be 1–16777216") }
        guard Serve.parseDuration(retention) != nil else { throw ValidationError("--retention must look like 90s, 10m or 2h") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level") }
        guard (0...256).contains(workers ?? 0) else { throw ValidationError("--workers must be 0–256") }
        guard (100...3_600_000).contains(taskLeaseMs) else { throw ValidationError("--task-lease-ms must be 100–3600000") }
        guard let kept = Serve.parseDuration(taskRetention), kept >= 1_000 else { throw ValidationError("--task-retention must look like 90s, 30m or 24h (at least 1s)") }
    }

    static func parseDuration(_ s: String) -> Int? {
        let units: [(String, Int)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
        for (u, factor) in units where s.hasSuffix(u) {
            if let n = Int(s.dropLast(u.count)), n > 0 { return n * factor }
        }
        return nil
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let logger = Logger(label: "restm")
        var config = NodeConfiguration()
        config.durability = Durability(rawValue: durability)!
        config.shardCount = shards
        config.limits.valueBytesMax = valueBytesMax
        config.limits.requestBytesMax = max(config.limits.requestBytesMax, valueBytesMax * 2)
        // One value of the largest size must fit an answer, and such an answer a batch.
        config.limits.answerBytesMax = max(config.limits.answerBytesMax, valueBytesMax + (1 << 20))
        config.limits.batchAnswerBytesMax = max(config.limits.batchAnswerBytesMax, 2 * config.limits.answerBytesMax)
        config.limits.txnIdleTimeoutMs = txnTimeoutMs
        config.limits.openTxnsMax = openTxnsMax
        config.limits.retentionMs = Serve.parseDuration(retention)!
        if let n = ProcessInfo.processInfo.environment["RESTM_FAULT_KILL_AFTER_COMMITS"].flatMap(Int.init), n > 0 {
            config.faultKillAfterCommits = n
        }
        let store: SQLiteStore
        do {
            store = try SQLiteStore(directory: data, durability: config.durability)
        } catch {
            logger.critical("cannot open the store", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
        let node = try await Node.open(store: store, configuration: config, logger: logger)

        var taskConfig = TaskConfiguration()
        taskConfig.leaseMs = taskLeaseMs
        taskConfig.finishedRetentionMs = Serve.parseDuration(taskRetention) ?? taskConfig.finishedRetentionMs
        if let workers, workers > 0 { taskConfig.workers = workers }
        let tasks = TaskService(node: node, kinds: TaskKinds(SortDemo.kinds), configuration: taskConfig)
        if workers != 0 { tasks.start() }

        let groupBox = Mutex<ServiceGroup?>(nil)
        let responder = RestmResponder(node: node, tasks: tasks) {
            guard let group = groupBox.withLock({ $0 }) else { return }
            Task { await group.triggerGracefulShutdown() }
        }
        let app = Application(
            responder: responder,
            server: .restm(node),
            configuration: .init(address: .hostname(host, port: port), serverName: "restm"),
            onServerRunning: { _ in
                logger.info("serving", metadata: ["restm.url": "http://\(host):\(port)", "restm.data": "\(data)"])
            },
            logger: logger
        )
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: app), .init(service: NodeService(node: node))],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            ))
        groupBox.withLock { $0 = group }
        try await group.run()
        logger.info("stopped")
    }
}

/// Options shared by the client commands.
struct ClientOptions: ParsableArguments {
    @Option(help: "Base URL of a node.") var url = "http://127.0.0.1:9000"
}

func request(_ method: String, _ url: String, body: Data? = nil) async throws -> (Int, String) {
    guard let u = URL(string: url) else { throw ValidationError("bad URL \(url)") }
    var r = URLRequest(url: u)
    r.httpMethod = method
    r.setValue("application/json", forHTTPHeaderField: "Accept")
    if let body {
        r.httpBody = body
        r.setValue("application/json", forHTTPHeaderField: "Content-Type")
    }
    let (data, response) = try await URLSession.shared.data(for: r)
    return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
}

struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a pointer's value (as JSON) from a node.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "Pointer id.") var ptr: String
    @Option(help: "A version or ISO-8601 time to read as of.") var at: String?

    func run() async throws {
        var path = "\(options.url)/ptr/\(ptr)"
        if let at { path += "?at=\(at.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? at)" }
        let (status, text) = try await request("GET", path)
        guard status == 200 else {
            FileHandle.standardError.write(Data("\(status) \(text)\n".utf8))
            throw ExitCode(1)
        }
        print(text)
    }
}

struct Put: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write a pointer's value (a JSON document) on a node.")
    @OptionGroup var options: ClientOptions
    @Argument(help: "Pointer id.") var ptr: String
    @Argument(help: "The value, as JSON (e.g. '{\"balance\": 100}' or '\"text\"').") var value: String

    func run() async throws {
        let (status, text) = try await request("PUT", "\(options.url)/ptr/\(ptr)", body: Data(value.utf8))
        guard status == 200 else {
            FileHandle.standardError.write(Data("\(status) \(text)\n".utf8))
            throw ExitCode(1)
        }
        print(text)
    }
}
