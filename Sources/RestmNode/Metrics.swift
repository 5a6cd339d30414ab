import RestmCore
import Synchronization

/// Per-operation counters and timings (the `code` section of `/sys/metrics`), plus counters
/// of transaction outcomes. Names are low-cardinality: components and operations are route
/// templates or fixed names, never raw ids.
public final class Metrics: Sendable {
    public struct OpStats: Sendable {
        public var success: Int = 0
        public var failed: Int = 0
        public var totalSeconds: Double = 0
        /// Bucket counts of `buckets` (seconds), for Prometheus histograms.
        public var histogram: [Int] = Array(repeating: 0, count: Metrics.buckets.count + 1)
        public var invocations: Int { success + failed }

        mutating func add(success ok: Bool, seconds: Double, bucket: Int) {
            if ok { success += 1 } else { failed += 1 }
            totalSeconds += seconds
            histogram[bucket] += 1
        }
    }

    public static let buckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

    struct State {
        var ops: [String: [String: OpStats]] = [:]
        var counters: [String: Int] = [:]
        var batches = 0
        var batchedCommits = 0
    }

    private let state = Mutex(State())

    public init() {}

    public func record(_ component: String, _ operation: String, success: Bool, duration: Duration) {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
        let bucket = Metrics.buckets.firstIndex(where: { seconds <= $0 }) ?? Metrics.buckets.count
        state.withLock { s in
            // In place: a copy of the stats would copy its histogram on every call.
            s.ops[component, default: [:]][operation, default: OpStats()].add(success: success, seconds: seconds, bucket: bucket)
        }
    }

    public func count(_ name: String, by n: Int = 1) {
        state.withLock { $0.counters[name, default: 0] += n }
    }

    func observeBatch(_ size: Int) {
        state.withLock { s in
            s.batches += 1
            s.batchedCommits += size
        }
    }

    public func snapshot() -> (ops: [String: [String: OpStats]], counters: [String: Int], batches: Int, batchedCommits: Int) {
        state.withLock { ($0.ops, $0.counters, $0.batches, $0.batchedCommits) }
    }

    /// Times `body` as `component.operation`; a thrown error counts as failed.
    public func time<T>(_ component: String, _ operation: String, _ body: () async throws -> T) async rethrows -> T {
        let start = ContinuousClock.now
        do {
            let r = try await body()
            record(component, operation, success: true, duration: ContinuousClock.now - start)
            return r
        } catch {
            record(component, operation, success: false, duration: ContinuousClock.now - start)
            throw error
        }
    }
}

/// A second-by-second record of a node's main figures over the last ten minutes, for the
/// explorer's charts. Bounded: `capacity` samples in a ring.
public final class MetricsHistory: Sendable {
    public struct Sample: Sendable {
        public var millis: UInt64
        /// Cumulative counters (rates are differences between samples).
        public var commits: Int
        public var readOnlyCommits: Int
        public var conflicts: Int
        public var versionsPruned: Int
        /// Gauges.
        public var openTxns: Int
        public var pointersInMemory: Int
        public var valueBytesInMemory: Int
        public var commitQueueDepth: Int
    }

    private let ring: Mutex<Ring<Sample>>

    public init(capacity: Int = 600) {
        ring = Mutex(Ring(capacity: max(2, capacity)))
    }

    public func add(_ s: Sample) {
        ring.withLock { $0.append(s) }
    }

    /// Oldest first.
    public var samples: [Sample] { ring.withLock { $0.ordered } }

    public var lastMillis: UInt64 { ring.withLock { $0.last?.millis ?? 0 } }
}
