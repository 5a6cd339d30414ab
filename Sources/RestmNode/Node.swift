import Dispatch
import Logging
import RestmCore
import RestmStore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Wall-clock milliseconds from the system.
public struct SystemPhysicalClock: PhysicalClock {
    public init() {}
    public func nowMillis() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
    }
}

/// How a node is set up.
public struct NodeConfiguration: Sendable {
    public var nodeID: UInt16 = 1
    public var shardCount: Int = 64
    public var limits = Limits()
    public var durability: Durability = .sync
    public var clock: any PhysicalClock = SystemPhysicalClock()
    public var version = "0.1.0"
    /// Testing only (`RESTM_FAULT_KILL_AFTER_COMMITS=n` for `restm serve`): the process kills
    /// itself with SIGKILL right after its n-th durable commit, before answering it.
    public var faultKillAfterCommits: Int?

    public init() {}
}

/// A reSTM node: shards, the transaction coordinator and registry, the group-commit
/// writer, and the durable timestamp ceiling (DESIGN.md). Every HTTP route and every
/// embedded caller goes through it.
///
///     let node = try await Node.open(store: SQLiteStore(directory: "restm-data"), configuration: .init())
///     let t = try await node.begin()
///     try node.write(t.id, "acct:1", value: #"{"balance":100}"#)
///     let ts = try await node.commit(t.id)
public final class Node: Sendable {
    public enum Lifecycle: Int, Sendable {
        case running = 0
        case shuttingDown = 1
        case stopped = 2
    }

    public let configuration: NodeConfiguration
    public var limits: Limits { configuration.limits }
    public let store: any Store
    public let metrics: Metrics
    public let logger: Logger
    public let incarnation: UInt64
    public let startedMillis: UInt64
    public let activity: ActivityLog
    let shards: [Shard]
    let hlc: Mutex<HybridLogicalClock>
    let ceiling: Mutex<Timestamp>
    let ceilingRaise = Mutex<Bool>(false)
    let writer: GroupCommitWriter
    let registry: TxnRegistry
    let watches: WatchHub
    let lifecycle = Atomic<Int>(Lifecycle.running.rawValue)
    let inflightCommits = Atomic<Int>(0)
    let shutdownStarted = Atomic<Bool>(false)
    /// Transactions whose commit this node is running (registered or not): their intents
    /// are alive whatever their lease says.
    let committingTxns = Mutex<Set<String>>([])
    /// Turns of the node's own retries (`autoRetry`): after a conflict, a retry waits its
    /// turn on the pointers it touches, and first attempts on pointers in turn join the line.
    let retryTurns = LocalLocks()
    let sequence = Atomic<UInt64>(0)
    let io = DispatchQueue(label: "restm.store-readers", attributes: .concurrent)
    /// Version GC: its published cut (raw timestamp) and progress.
    let gcCutRaw = Atomic<UInt64>(0)
    let gc = Mutex(GCStatus())
    let durableCommits = Atomic<Int>(0)
    /// The last ten minutes of the main figures, one sample a second (explorer charts).
    public let history = MetricsHistory()
    /// Read results held by the answers the HTTP layer is building or sending
    /// (`answerBytesInFlightMax`).
    public let answerPool: AnswerPool

    init(store: any Store, configuration: NodeConfiguration, incarnation: UInt64, ceiling: Timestamp, logger: Logger) {
        self.configuration = configuration
        self.store = store
        self.logger = logger
        self.incarnation = incarnation
        let metrics = Metrics()
        self.metrics = metrics
        self.activity = ActivityLog(capacity: configuration.limits.logEntriesMax)
        let node = configuration.nodeID
        var clock = HybridLogicalClock(node: node, start: ceiling)
        _ = clock.tick(physicalMillis: configuration.clock.nowMillis())
        self.hlc = Mutex(clock)
        self.ceiling = Mutex(ceiling)
        self.startedMillis = configuration.clock.nowMillis()
        // Reads may have been served up to the old ceiling: no write may land below it.
        self.shards = (0..<configuration.shardCount).map {
            Shard(index: $0, node: node, floor: ceiling, limits: configuration.limits)
        }
        self.writer = GroupCommitWriter(
            store: store, batchMax: configuration.limits.groupCommitBatchMax,
            queueMax: configuration.limits.commitQueueMax, metrics: metrics,
            ceilingLeadMillis: UInt64(configuration.limits.ceilingLeadMs))
        self.answerPool = AnswerPool(max: configuration.limits.answerBytesInFlightMax)
        self.registry = TxnRegistry(limits: configuration.limits)
        self.watches = WatchHub(watchersMax: configuration.limits.watchersMax, bytesMax: configuration.limits.watcherBytesMax)
    }

    /// Opens a node on `store`: starts a new incarnation, puts the clock and every shard
    /// floor at or above the durable ceiling, and raises the ceiling ahead of the clock.
    public static func open(store: any Store, configuration: NodeConfiguration = .init(), logger: Logger = Logger(label: "restm")) async throws -> Node {
        precondition(configuration.shardCount > 0 && configuration.shardCount <= 4096, "shard count out of range")
        let (incarnation, ceiling) = try store.startIncarnation()
        let node = Node(store: store, configuration: configuration, incarnation: incarnation, ceiling: ceiling, logger: logger)
        // What earlier incarnations pruned stays refused, whatever the retention is now.
        let cut = try store.prunedCut()
        node.gcCutRaw.store(cut.raw, ordering: .sequentiallyConsistent)
        node.gc.withLock { $0.cut = cut }
        try await node.ensureCeiling()
        var l = logger
        l[metadataKey: "restm.node"] = "\(configuration.nodeID)"
        l.info("node open", metadata: ["restm.incarnation": "\(incarnation)", "restm.store": "\(store.location)"])
        for problem in configuration.limits.problems { l.warning("limits contradict each other", metadata: ["restm.problem": "\(problem)"]) }
        node.activity.add("node \(configuration.nodeID) incarnation \(incarnation) opened on \(store.kind) store \(store.location)")
        return node
    }

    public var state: Lifecycle { Lifecycle(rawValue: lifecycle.load(ordering: .acquiring)) ?? .stopped }

    func ensureRunning() throws {
        guard state == .running else { throw RestmError(.shuttingDown, "the node is shutting down") }
    }

    // MARK: clock

    public var physicalMillis: UInt64 { configuration.clock.nowMillis() }

    /// The time an aborted record made now carries: record GC prunes it one retention
    /// period later, as it does a committed record (`Limits.txnRecordRetentionMs`).
    var recordStamp: Timestamp { Timestamp(wallMillis: physicalMillis, node: configuration.nodeID) }

    /// A fresh timestamp from the hybrid logical clock.
    public func tick() -> Timestamp {
        let phys = configuration.clock.nowMillis()
        return hlc.withLock { $0.tick(physicalMillis: phys) }
    }

    /// The clock's current value (the `Restm-Ts` token).
    public var clockNow: Timestamp { hlc.withLock { $0.current } }

    /// Absorbs a timestamp seen elsewhere.
    public func observe(_ ts: Timestamp) {
        hlc.withLock { $0.observe(ts) }
    }

    /// Absorbs a client's causality token (`Restm-After`), refusing one further ahead of
    /// this node's physical clock than the offset bound — unless the node's own clock is
    /// already there: after a restart the clock starts at the durable ceiling, up to
    /// `ceilingLeadMs` ahead of the machine's, and the tokens it hands out then must come
    /// back without a 400. (Only tokens at or below the clock pass that way, so clients
    /// cannot walk the clock forward step by step.)
    public func observeClientToken(_ ts: Timestamp) throws {
        let limit = configuration.clock.nowMillis() + UInt64(limits.clockOffsetMaxMs)
        guard ts.wallMillis <= limit || ts <= clockNow else {
            throw RestmError(.badTimestamp, "Restm-After is further ahead of this node's clock than \(limits.clockOffsetMaxMs) ms")
        }
        observe(ts)
    }

    public var durableCeiling: Timestamp { ceiling.withLock { $0 } }

    /// Makes sure the durable ceiling stays ahead of the clock by at least half the lead,
    /// raising it (a short store write) when it does not. No timestamp at or below the
    /// clock is ever used above the durable ceiling.
    func ensureCeiling() async throws {
        let lead = UInt64(limits.ceilingLeadMs)
        let now = max(clockNow, Timestamp(wallMillis: configuration.clock.nowMillis(), node: configuration.nodeID))
        if now.adding(millis: lead / 2) <= durableCeiling { return }
        let target = now.adding(millis: lead)
        // Through `storeCall`: a store that fails or has stopped answers 503 `store_failure`
        // like any other store call, not a raw error (which the HTTP layer answered 500).
        try await storeCall("raise_ceiling") { try self.store.raiseCeiling(target) }
        ceiling.withLock { if target > $0 { $0 = target } }
    }

    // MARK: blocking I/O

    /// Runs a blocking store call off the cooperative pool.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { c in
            io.async {
                do { c.resume(returning: try body()) } catch { c.resume(throwing: error) }
            }
        }
    }

    func storeCall<T: Sendable>(_ what: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        do {
            return try await metrics.time("store", what) { try await run(body) }
        } catch let e as RestmError {
            throw e
        } catch {
            logger.error("store call failed", metadata: ["restm.op": "\(what)", "error": "\(error)"])
            throw RestmError(.storeFailure, "the store failed: \(error)")
        }
    }

    func shard(for ptr: String) -> Shard {
        shards[Node.shardIndex(ptr, count: shards.count)]
    }

    /// Stable FNV-1a hash of the id, so the shard of a pointer never changes across runs.
    public static func shardIndex(_ ptr: String, count: Int) -> Int {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in ptr.utf8 {
            h ^= UInt64(b)
            h = h &* 0x100_0000_01b3
        }
        return Int(h % UInt64(count))
    }

    func nextSequence() -> UInt64 {
        sequence.wrappingAdd(1, ordering: .relaxed).newValue
    }
}
