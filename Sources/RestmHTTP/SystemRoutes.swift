import HTTPTypes
import Hummingbird
import NIOCore
import RestmCore
import RestmNode
import RestmTasks

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension RestmResponder {
    func system(_ request: Request, _ name: String, route: inout String) async throws -> Response {
        let method = request.method
        func only(_ a: HTTPRequest.Method, _ b: HTTPRequest.Method? = nil) throws { try Self.only(method, a, b, request.uri.path) }
        switch name {
        case "health":
            route = "GET /sys/health"
            try only(.get, .head)
            if let failure = node.store.failure {
                // The store refuses everything until the node restarts: say so, so that a
                // supervisor restarts it.
                var o = JSONObject()
                o.string("status", "failing")
                o.string("error", RestmError.Code.storeFailure.rawValue)
                o.string("message", failure)
                o.bool("retryable", false)
                return Reply.json(.serviceUnavailable, o.text)
            }
            if node.state == .running { return Reply.json(.ok, #"{"status":"ok"}"#) }
            return Reply.json(.serviceUnavailable, #"{"status":"shutting_down","error":"shutting_down","message":"the node is shutting down","retryable":true}"#)
        case "info":
            route = "GET /sys/info"
            try only(.get, .head)
            return Reply.json(.ok, info())
        case "metrics":
            route = "GET /sys/metrics"
            try only(.get, .head)
            let report = MetricsReport(node: node, tasks: tasks).json()
            if RequestParsing.wantsHTML(request) { return Explorer(node: node, tasks: tasks).metrics(json: report) }
            return Reply.json(.ok, report)
        case "shutdown":
            route = "POST /sys/shutdown"
            // GET as API.md allows, never HEAD: a HEAD must be safe (RFC 9110), and link
            // checkers and monitors send them freely.
            try only(.post, .get)
            let trigger = requestShutdown
            node.activity.add("shutdown requested over HTTP")
            node.refuseNewWork()
            Task {
                // Let this answer leave first.
                try? await Task.sleep(for: .milliseconds(20))
                trigger()
            }
            return Reply.json(.accepted, #"{"status":"shutting_down"}"#)
        case "init":
            route = "POST /sys/init"
            try only(.post, .get)
            let n = tasks.start()
            return Reply.json(.ok, "{\"status\":\"ok\",\"workers\":\(n)}")
        case "cluster":
            route = "GET /sys/cluster"
            try only(.get, .head)
            return Reply.json(.ok, cluster())
        case "logs":
            route = "GET /sys/logs"
            try only(.get, .head)
            let limit = min(try RequestParsing.limitQuery(request), node.limits.logEntriesMax)
            var out = "{\"entries\":["
            for (i, e) in node.activity.recent(limit).enumerated() {
                if i > 0 { out += "," }
                var o = JSONObject()
                o.string("time", Self.iso(e.millis))
                o.string("message", e.message)
                out += o.text
            }
            out += "]}"
            return Reply.json(.ok, out)
        default:
            throw RestmError(.routeNotFound, "no route \(method) \(request.uri.path)")
        }
    }

    static func iso(_ millis: UInt64) -> String {
        Date(timeIntervalSince1970: Double(millis) / 1000).formatted(.iso8601)
    }

    func info() -> String {
        let c = node.configuration
        var o = JSONObject()
        o.int("node", Int(c.nodeID))
        o.string("version", c.version)
        o.int("incarnation", Int(node.incarnation))
        o.string("store", node.store.kind)
        o.string("location", node.store.location)
        o.string("durability", c.durability.rawValue)
        o.int("shards", c.shardCount)
        o.int("uptimeMs", Int(node.physicalMillis - node.startedMillis))
        o.string("clock", node.clockNow.text)
        o.string("ceiling", node.durableCeiling.text)
        o.string("state", "\(node.state)")
        var l = JSONObject()
        l.int("valueBytesMax", c.limits.valueBytesMax)
        l.int("requestBytesMax", c.limits.requestBytesMax)
        l.int("pointersPerTxnMax", c.limits.pointersPerTxnMax)
        l.int("watchPointersMax", c.limits.watchPointersMax)
        l.int("answerBytesMax", c.limits.answerBytesMax)
        l.int("batchAnswerBytesMax", c.limits.batchAnswerBytesMax)
        l.int("answerBytesInFlightMax", c.limits.answerBytesInFlightMax)
        l.int("txnIdleTimeoutMs", c.limits.txnIdleTimeoutMs)
        l.int("txnLifetimeMs", c.limits.txnLifetimeMs)
        l.int("openTxnsMax", c.limits.openTxnsMax)
        l.int("intentLeaseMs", c.limits.intentLeaseMs)
        l.int("retentionMs", c.limits.retentionMs)
        o.raw("limits", l.text)
        return o.text
    }

    func cluster() -> String {
        let c = node.configuration
        var me = JSONObject()
        me.int("id", Int(c.nodeID))
        me.bool("self", true)
        me.string("health", node.store.failure != nil ? "failing" : node.state == .running ? "ok" : "shutting_down")
        var o = JSONObject()
        o.raw("members", "[" + me.text + "]")
        o.int("shardCount", c.shardCount)
        o.raw("owners", "{\"\(c.nodeID)\":[" + (0..<c.shardCount).map { String($0) }.joined(separator: ",") + "]}")
        return o.text
    }
}

/// The figures of `/sys/metrics` (JSON) and `/metrics` (Prometheus text).
struct MetricsReport {
    let node: Node
    let tasks: TaskService

    func json() -> String {
        let snap = node.metrics.snapshot()
        var code = "{"
        for (ci, (component, ops)) in snap.ops.sorted(by: { $0.key < $1.key }).enumerated() {
            if ci > 0 { code += "," }
            JSONWriter.appendString(component, to: &code)
            code += ":{"
            for (oi, (op, s)) in ops.sorted(by: { $0.key < $1.key }).enumerated() {
                if oi > 0 { code += "," }
                JSONWriter.appendString(op, to: &code)
                var o = JSONObject()
                o.int("success", s.success)
                o.int("failed", s.failed)
                o.int("invocations", s.invocations)
                o.double("avgTime", s.invocations == 0 ? 0 : s.totalSeconds * 1000 / Double(s.invocations))
                o.double("totalTime", s.totalSeconds * 1000)
                code += ":" + o.text
            }
            code += "}"
        }
        code += "}"
        let totals = node.shardTotals
        var scalars = JSONObject()
        scalars.int("openTxns", node.openTransactions)
        scalars.int("inflightCommits", node.inflightCommitCount)
        scalars.int("commitQueueDepth", node.commitQueueDepth)
        scalars.int("pointersInMemory", totals.resident)
        scalars.int("valueBytesInMemory", node.residentBytes)
        scalars.int("timestampCacheEntries", totals.cached)
        scalars.int("intents", totals.intents)
        scalars.int("waiters", totals.waiters)
        scalars.int("groupCommitBatches", snap.batches)
        scalars.double("groupCommitAvgSize", snap.batches == 0 ? 0 : Double(snap.batchedCommits) / Double(snap.batches))
        scalars.int("uptimeMs", Int(node.physicalMillis - node.startedMillis))
        let gc = node.gcStatus
        scalars.int("gcPasses", gc.passes)
        scalars.int("gcVersionsPruned", gc.versionsPruned)
        scalars.int("gcRecordsPruned", gc.recordsPruned)
        scalars.string("gcCut", gc.cut.text)
        scalars.int("workers", tasks.workerCount)
        scalars.int("taskStepsRunning", tasks.runningSteps)
        scalars.int("answerBytesInFlight", node.answerPool.inUse)
        scalars.int("watchers", node.watcherCount)
        scalars.int("watcherBytes", node.watcherBytes)
        var txns = JSONObject()
        let c = snap.counters
        txns.int("begun", c["txn_begun"] ?? 0)
        txns.int("committed", c["txn_committed"] ?? 0)
        txns.int("committedReadOnly", c["txn_committed_readonly"] ?? 0)
        txns.int("conflicted", c["txn_conflicted"] ?? 0)
        txns.int("aborted", c["txn_aborted"] ?? 0)
        txns.int("timedOut", c["txn_timed_out"] ?? 0)
        var causes = JSONObject()
        for cause in ConflictCause.allCases { causes.int(cause.rawValue, c["conflict_\(cause.rawValue)"] ?? 0) }
        txns.raw("conflicts", causes.text)
        var o = JSONObject()
        o.raw("code", code)
        o.raw("scalars", scalars.text)
        o.raw("txns", txns.text)
        return o.text
    }

    func prometheus() -> String {
        let snap = node.metrics.snapshot()
        let c = snap.counters
        var out = ""
        func counter(_ name: String, _ help: String, _ value: Int) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) counter\n\(name) \(value)\n"
        }
        func gauge(_ name: String, _ help: String, _ value: Int) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) gauge\n\(name) \(value)\n"
        }
        counter("restm_txn_begun_total", "Transactions begun.", c["txn_begun"] ?? 0)
        counter("restm_txn_commits_total", "Transactions committed with writes.", c["txn_committed"] ?? 0)
        counter("restm_txn_readonly_commits_total", "Read-only transactions committed.", c["txn_committed_readonly"] ?? 0)
        counter("restm_txn_aborts_total", "Transactions aborted by clients or timeouts.", c["txn_aborted"] ?? 0)
        out += "# HELP restm_txn_conflicts_total Retryable conflicts by cause.\n# TYPE restm_txn_conflicts_total counter\n"
        for cause in ConflictCause.allCases {
            out += "restm_txn_conflicts_total{cause=\"\(cause.rawValue)\"} \(c["conflict_\(cause.rawValue)"] ?? 0)\n"
        }
        let totals = node.shardTotals
        gauge("restm_open_txns", "Open transactions.", node.openTransactions)
        gauge("restm_pointers_in_memory", "Pointers resident in memory.", totals.resident)
        gauge("restm_value_bytes_in_memory", "Bytes of values resident in memory.", node.residentBytes)
        gauge("restm_timestamp_cache_entries", "Entries of the timestamp caches.", totals.cached)
        gauge("restm_intents", "Write intents held.", totals.intents)
        gauge("restm_waiters", "Reads waiting on intents.", totals.waiters)
        gauge("restm_commit_queue_depth", "Commits queued for the store writer.", node.commitQueueDepth)
        gauge("restm_answer_bytes_in_flight", "Bytes of read results in answers being built or sent.", node.answerPool.inUse)
        gauge("restm_watchers", "Watchers registered: long-polls, event streams, blocked retry().", node.watcherCount)
        gauge("restm_watcher_bytes", "What the watchers' pointer lists cost, against watcherBytesMax.", node.watcherBytes)
        let gc = node.gcStatus
        counter("restm_gc_passes_total", "Completed version-GC passes over every pointer.", gc.passes)
        counter("restm_gc_versions_pruned_total", "Versions deleted by version GC.", gc.versionsPruned)
        counter("restm_gc_records_pruned_total", "Transaction records deleted by version GC.", gc.recordsPruned)
        gauge("restm_task_workers", "Task workers running.", tasks.workerCount)
        gauge("restm_task_steps_running", "Task steps running now.", tasks.runningSteps)
        out += "# HELP restm_requests_total HTTP requests by route and outcome.\n# TYPE restm_requests_total counter\n"
        for (op, s) in (snap.ops["http"] ?? [:]).sorted(by: { $0.key < $1.key }) {
            out += "restm_requests_total{route=\"\(op)\",outcome=\"success\"} \(s.success)\n"
            out += "restm_requests_total{route=\"\(op)\",outcome=\"failed\"} \(s.failed)\n"
        }
        counter("restm_read_waits_total", "Reads that waited for a lower intent to resolve.", c["read_waits"] ?? 0)
        counter("restm_tasks_submitted_total", "Tasks submitted.", c["task_submitted"] ?? 0)
        counter("restm_tasks_expired_total", "Task records deleted with their finished trees.", c["task_expired"] ?? 0)
        let timed = [("txn", "commit")] + (snap.ops["store"] ?? [:]).keys.sorted().map { ("store", $0) }
        for (component, name) in timed {
            guard let s = snap.ops[component]?[name] else { continue }
            let metric = "restm_\(component)_\(name)_seconds"
            out += "# HELP \(metric) Latency of \(component) \(name).\n# TYPE \(metric) histogram\n"
            var cumulative = 0
            for (i, b) in Metrics.buckets.enumerated() {
                cumulative += s.histogram[i]
                out += "\(metric)_bucket{le=\"\(b)\"} \(cumulative)\n"
            }
            out += "\(metric)_bucket{le=\"+Inf\"} \(s.invocations)\n\(metric)_sum \(s.totalSeconds)\n\(metric)_count \(s.invocations)\n"
        }
        return out
    }
}
