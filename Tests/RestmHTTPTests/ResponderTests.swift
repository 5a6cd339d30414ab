import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOEmbedded
import RestmCore
import RestmHTTP
import RestmNode
@testable import RestmStore
import RestmTestSupport
import Testing

/// The HTTP layer in-process (Hummingbird's router test framework, no sockets): shapes of
/// answers and errors, and the headers every response carries. The black-box suite in
/// `Tests/api` drives a real server over TCP.
@Suite struct ResponderTests {
    func app(_ configure: (inout Limits) -> Void = { _ in }) async throws -> some ApplicationProtocol {
        var c = NodeConfiguration()
        c.shardCount = 4
        configure(&c.limits)
        let node = try await Node.open(store: MemoryStore(), configuration: c)
        return Application(responder: RestmResponder(node: node))
    }

    func json(_ r: TestResponse) throws -> JSONValue {
        try JSONValue.parse(r.body.readableBytesView)
    }

    @Test func aTransactionOverHTTP() async throws {
        try await app().test(.router) { client in
            let begun = try await client.execute(uri: "/txn/begin", method: .post)
            #expect(begun.status == .created)
            #expect(begun.headers[HTTPField.Name("Restm-Ts")!] != nil)
            let t = try json(begun)["txn"]?.stringValue ?? ""
            let put = try await client.execute(uri: "/ptr/a?txn=\(t)", method: .put, body: ByteBuffer(string: #" {"n": 1} "#))
            #expect(put.status == .noContent)
            let read = try await client.execute(uri: "/ptr/a?txn=\(t)", method: .get)
            #expect(try json(read)["value"] == .object([("n", .number("1"))]))
            let commit = try await client.execute(uri: "/txn/\(t)/commit", method: .post, body: ByteBuffer(string: #"{"writes": {"b": [true]}}"#))
            #expect(commit.status == .ok)
            let ts = try json(commit)["ts"]?.stringValue
            let got = try await client.execute(uri: "/ptr/b", method: .get)
            #expect(got.headers[.eTag] == "\"\(ts ?? "")\"")
            #expect(try json(got)["value"] == .array([.bool(true)]))
        }
    }

    @Test(arguments: [
        ("/ptr/bad%20id", HTTPRequest.Method.get, "", 400, "bad_pointer"),
        ("/ptr/ok", .put, "{oops", 400, "bad_json"),
        ("/ptr/never", .get, "", 404, "not_found"),
        ("/txn/t1.99.99", .get, "", 404, "txn_not_found"),
        ("/txn/begin", .post, #"{"timeoutMs": "x"}"#, 400, "bad_request"),
        ("/txn/nope/commit", .post, "", 404, "txn_not_found"),
        ("/no/such/route", .get, "", 404, "no_such_route"),
        ("/ptr/a?at=garbage", .get, "", 400, "bad_timestamp"),
    ])
    func errorsAreTheJSONOfAPIMD(uri: String, method: HTTPRequest.Method, body: String, status: Int, code: String) async throws {
        try await app().test(.router) { client in
            let r = try await client.execute(uri: uri, method: method, body: body.isEmpty ? nil : ByteBuffer(string: body))
            #expect(Int(r.status.code) == status)
            let e = try json(r)
            #expect(e["error"]?.stringValue == code)
            #expect(e["message"]?.stringValue?.isEmpty == false)
            #expect(e["retryable"]?.boolValue == false)
            #expect(r.headers[HTTPField.Name("Restm-Ts")!] != nil)
        }
    }

    @Test func oversizeValuesAre413AndChangeNothing() async throws {
        try await app().test(.router) { client in
            let big = "\"" + String(repeating: "x", count: 1 << 20) + "\""
            let r = try await client.execute(uri: "/ptr/big", method: .put, body: ByteBuffer(string: big))
            #expect(r.status.code == 413)
            #expect(try json(r)["error"]?.stringValue == "too_large")
            let after = try await client.execute(uri: "/ptr/big", method: .get)
            #expect(after.status.code == 404)
        }
    }

    /// Answers carrying read results are bounded (`answerBytesMax`: 413, and nothing
    /// changes), a batch's answers together too (`batchAnswerBytesMax`: the items past it
    /// answer 503 `overloaded`, retryable), and a history page holds fewer versions rather
    /// than more bytes.
    @Test func answersOfLargeReadsAreBounded() async throws {
        let app = try await app { l in
            l.answerBytesMax = 4_096
            l.batchAnswerBytesMax = 8_192
        }
        try await app.test(.router) { client in
            let kb = "\"" + String(repeating: "v", count: 1_000) + "\""
            for i in 0..<10 {
                let put = try await client.execute(uri: "/ptr/big\(i)", method: .put, body: ByteBuffer(string: kb))
                #expect(put.status == .ok)
            }
            let all = (0..<10).map { "\"big\($0)\"" }.joined(separator: ",")
            // Begin with reads: 413, and no transaction is left open.
            let begun = try await client.execute(uri: "/txn/begin", method: .post, body: ByteBuffer(string: "{\"reads\": [\(all)]}"))
            #expect(begun.status.code == 413)
            #expect(try json(begun)["error"]?.stringValue == "too_large")
            // A batch read inside a transaction: 413, and the transaction goes on.
            let t = try json(try await client.execute(uri: "/txn/begin", method: .post))["txn"]?.stringValue ?? ""
            let many = try await client.execute(uri: "/txn/\(t)/read", method: .post, body: ByteBuffer(string: "{\"ptrs\": [\(all)]}"))
            #expect(many.status.code == 413)
            let e = try json(many)
            #expect(e["retryable"]?.boolValue == false)
            #expect(e["message"]?.stringValue?.contains("read fewer pointers") == true)
            let few = try await client.execute(uri: "/txn/\(t)/read", method: .post, body: ByteBuffer(string: #"{"ptrs": ["big0", "big1"]}"#))
            #expect(few.status == .ok)
            #expect(try await client.execute(uri: "/txn/\(t)/commit", method: .post).status == .ok)
            // A one-shot that reads too much: refused before its commit, so nothing is
            // written, and its client id may be used again.
            let id = "c-answers-too-large-1"
            let one = try await client.execute(
                uri: "/txn", method: .post, body: ByteBuffer(string: "{\"txn\": \"\(id)\", \"reads\": [\(all)], \"writes\": {\"x\": 1}}"))
            #expect(one.status.code == 413)
            #expect(try await client.execute(uri: "/ptr/x", method: .get).status.code == 404)
            let again = try await client.execute(
                uri: "/txn", method: .post, body: ByteBuffer(string: "{\"txn\": \"\(id)\", \"reads\": [\"big0\"], \"writes\": {\"x\": 1}}"))
            #expect(again.status == .ok)
            #expect(try await client.execute(uri: "/ptr/x", method: .get).status == .ok)
            // A 412 whose current values would pass the budget carries the versions only.
            let stale = (0..<10).map { "\"big\($0)\": null" }.joined(separator: ",")
            let expect = try await client.execute(
                uri: "/txn", method: .post, body: ByteBuffer(string: "{\"expect\": {\(stale)}, \"writes\": {\"y\": 1}}"))
            #expect(expect.status.code == 412)
            let failed = try json(expect)
            if case .object(let current)? = failed["current"] { #expect(current.count == 10) } else { Issue.record("no current") }
            #expect(failed["values"] == nil)
            #expect(try await client.execute(uri: "/ptr/y", method: .get).status.code == 404)
            // Three items of ~3.2 KB each under an 8 KiB batch budget: two fit, one answers
            // 503 overloaded (retryable); which one depends on timing.
            let item = { (a: Int) in
                #"{"method": "POST", "path": "/txn", "body": {"reads": ["big\#(a)", "big\#(a + 1)", "big\#(a + 2)"]}}"#
            }
            let batch = try await client.execute(
                uri: "/batch", method: .post, body: ByteBuffer(string: "{\"requests\": [\(item(0)), \(item(3)), \(item(6))]}"))
            #expect(batch.status == .ok)
            guard case .array(let answers)? = try json(batch)["responses"] else {
                Issue.record("no responses")
                return
            }
            let statuses = answers.compactMap { $0["status"]?.intValue }.sorted()
            #expect(statuses == [200, 200, 503], "\(statuses)")
            let refused = answers.first { $0["status"]?.intValue == 503 }
            #expect(refused?["body"]?["error"]?.stringValue == "overloaded")
            #expect(refused?["body"]?["retryable"]?.boolValue == true)
            // History: ten versions of ~1 KB asked at once come in pages of at most four.
            for _ in 0..<9 { _ = try await client.execute(uri: "/ptr/big0", method: .put, body: ByteBuffer(string: kb)) }
            var versions = 0
            var before: String?
            var pages = 0
            while pages < 20 {
                let uri = "/ptr/big0/history?limit=10" + (before.map { "&before=\($0)" } ?? "")
                let page = try json(try await client.execute(uri: uri, method: .get))
                guard case .array(let vs)? = page["versions"] else { break }
                #expect(vs.count <= 4)
                versions += vs.count
                pages += 1
                guard let next = page["next"]?.stringValue else { break }
                #expect(next == vs.last?["version"]?.stringValue)
                before = next
            }
            #expect(versions == 10)
            #expect(pages >= 3)
            // The last page says so.
            let whole = try json(try await client.execute(uri: "/ptr/big1/history?limit=10", method: .get))
            #expect(whole["next"]?.isNull == true)
        }
    }

    /// The read results of all answers in flight share the node's `answerBytesInFlightMax`:
    /// an answer that would pass it is 503 `overloaded` (retryable, nothing changes), and
    /// every answer gives its bytes back once sent — alone, in a batch, as an error.
    @Test func answersInFlightShareTheNodesBudget() async throws {
        let app = try await app { l in
            l.answerBytesMax = 8_192
            l.batchAnswerBytesMax = 8_192
            l.answerBytesInFlightMax = 3_000
        }
        try await app.test(.router) { client in
            let kb = "\"" + String(repeating: "v", count: 1_000) + "\""
            for i in 0..<4 {
                #expect(try await client.execute(uri: "/ptr/big\(i)", method: .put, body: ByteBuffer(string: kb)).status == .ok)
            }
            func inFlight() async throws -> Int? {
                try json(try await client.execute(uri: "/sys/metrics", method: .get))["scalars"]?["answerBytesInFlight"]?.intValue
            }
            #expect(try await inFlight() == 0)
            // Two values (~2.1 KB) fit; three (~3.2 KB) do not, though the answer's own limit
            // would allow them.
            let two = try await client.execute(uri: "/txn/begin", method: .post, body: ByteBuffer(string: #"{"reads": ["big0", "big1"]}"#))
            #expect(two.status == .created)
            let three = try await client.execute(uri: "/txn/begin", method: .post, body: ByteBuffer(string: #"{"reads": ["big0", "big1", "big2"]}"#))
            #expect(three.status.code == 503)
            let e = try json(three)
            #expect(e["error"]?.stringValue == "overloaded")
            #expect(e["retryable"]?.boolValue == true)
            #expect(e["message"]?.stringValue?.contains("answerBytesInFlightMax") == true)
            // A one-shot refused so writes nothing.
            let one = try await client.execute(
                uri: "/txn", method: .post, body: ByteBuffer(string: #"{"reads": ["big0", "big1", "big2"], "writes": {"x": 1}}"#))
            #expect(one.status.code == 503)
            #expect(try await client.execute(uri: "/ptr/x", method: .get).status.code == 404)
            // A batch's items share one lease: two items of two values each pass it together.
            let item = #"{"method": "POST", "path": "/txn", "body": {"reads": ["big0", "big1"]}}"#
            let batch = try await client.execute(uri: "/batch", method: .post, body: ByteBuffer(string: "{\"requests\": [\(item), \(item)]}"))
            #expect(batch.status == .ok)
            let statuses = (try json(batch)["responses"]).flatMap { r -> [Int]? in
                guard case .array(let a) = r else { return nil }
                return a.compactMap { $0["status"]?.intValue }.sorted()
            }
            #expect(statuses == [200, 503])
            // History pages count too.
            let page = try await client.execute(uri: "/ptr/big0/history", method: .get)
            #expect(page.status == .ok)
            // Every answer has been sent: nothing is held.
            #expect(try await inFlight() == 0)
        }
    }

    /// Answers that carry stored task data count too: under a pool too small for any, a
    /// task's info is refused (503) and its submission, which carries none, is not.
    @Test func taskAnswersCountAgainstTheNodesBudget() async throws {
        let app = try await app { l in l.answerBytesInFlightMax = 64 }
        try await app.test(.router) { client in
            let made = try await client.execute(uri: "/task", method: .post, body: ByteBuffer(string: #"{"kind": "demo.sort", "input": {"n": 10, "seed": 1}}"#))
            #expect(made.status == .created)
            let id = try json(made)["task"]?.stringValue ?? ""
            let info = try await client.execute(uri: "/task/info/\(id)", method: .get)
            #expect(info.status.code == 503)
            #expect(try json(info)["error"]?.stringValue == "overloaded")
        }
    }

    /// The bytes stay taken while the answer exists unsent, and go back once it is written.
    @Test func anAnswerHoldsItsBytesUntilWritten() async throws {
        var c = NodeConfiguration()
        c.shardCount = 4
        let node = try await Node.open(store: MemoryStore(), configuration: c)
        let responder = RestmResponder(node: node)
        let t = try await node.begin()
        try node.write(t, "v", value: "\"" + String(repeating: "x", count: 500) + "\"")
        _ = try await node.commit(t)
        let context = RestmRequestContext(source: ApplicationRequestContextSource(channel: EmbeddedChannel(), logger: node.logger))
        /// Sends a request; its answer holds more than `bytes` until written, none after.
        func expectHeldUntilWritten(_ method: HTTPRequest.Method, _ path: String, _ body: String, _ bytes: Int) async throws {
            let head = HTTPRequest(method: method, scheme: nil, authority: nil, path: path, headerFields: [.contentType: "application/json"])
            var response: Response? = try await responder.respond(to: Request(head: head, body: RequestBody(buffer: ByteBuffer(string: body))), context: context)
            #expect(node.answerPool.inUse > bytes, "\(method) \(path)")
            let sink = Sink()
            try await response?.body.write(sink)
            #expect(sink.bytes > bytes, "\(method) \(path)")
            response = nil
            #expect(node.answerPool.inUse == 0, "\(method) \(path)")
        }
        try await expectHeldUntilWritten(.get, "/ptr/v", "", 500)
        // A batch's items (here through the general path) share the batch's lease, held
        // until the batch's answer has been written.
        let items = #"{"requests": [{"method": "GET", "path": "/ptr/v"}, {"method": "GET", "path": "/ptr/v"}]}"#
        try await expectHeldUntilWritten(.post, "/batch", items, 1_000)
    }

    /// What an answer took from the shared budgets goes back when the answer is not sent
    /// (an attempt that runs again), and a charge the node refuses takes nothing from the
    /// batch either.
    @Test func refusedOrAbandonedAnswersGiveTheirBytesBack() throws {
        let pool = AnswerPool(max: 1_000)
        let batch = BatchAnswerBudget(max: 1_000)
        try AnswerLease.$current.withValue(AnswerLease(pool: pool)) {
            try BatchAnswerBudget.$current.withValue(batch) {
                var budget = AnswerBudget(max: 10_000)
                try budget.charge("p", String(repeating: "x", count: 600))
                #expect(pool.inUse > 600)
                budget.refund()
                #expect(pool.inUse == 0)
                #expect(budget.shared == 0)
                // The node refuses (its pool is too small): the batch keeps nothing.
                let small = AnswerLease(pool: AnswerPool(max: 100))
                #expect(throws: RestmError.self) {
                    try AnswerLease.$current.withValue(small) { try AnswerBytes.charge(900) }
                }
            }
        }
        // All of the batch's budget is free again.
        try batch.charge(1_000)
    }

    final class Sink: ResponseBodyWriter, @unchecked Sendable {
        var bytes = 0
        func write(_ buffer: ByteBuffer) async throws { bytes += buffer.readableBytes }
        func finish(_ trailingHeaders: HTTPFields?) async throws {}
    }

    /// A store that stopped (an uncertain COMMIT it could not read back) makes the node
    /// report itself failing, so that a supervisor restarts it.
    @Test func healthSaysWhenTheStoreHasStopped() async throws {
        let dir = TemporaryDirectory()
        defer { dir.remove() }
        let store = try SQLiteStore(directory: dir.path)
        defer { store.close() }
        var c = NodeConfiguration()
        c.shardCount = 4
        let node = try await Node.open(store: store, configuration: c)
        try await Application(responder: RestmResponder(node: node)).test(.router) { client in
            #expect(try await client.execute(uri: "/sys/health", method: .get).status == .ok)
            store.faults.withLock { $0.commitFailsAfterWriting = true; $0.rebuildFails = true }
            let put = try await client.execute(uri: "/ptr/a", method: .put, body: ByteBuffer(string: "1"))
            #expect(put.status.code == 503)
            let health = try await client.execute(uri: "/sys/health", method: .get)
            #expect(health.status.code == 503)
            #expect(try json(health)["status"]?.stringValue == "failing")
            #expect(try json(health)["error"]?.stringValue == "store_failure")
            #expect(try json(health)["retryable"]?.boolValue == false)
        }
    }

    @Test func limitsThatContradictEachOtherAreNamed() {
        #expect(Limits().problems.isEmpty)
        var l = Limits()
        l.txnRecordRetentionMs = 1
        l.answerBytesMax = l.valueBytesMax
        l.answerBytesInFlightMax = 1
        let p = l.problems
        #expect(p.count == 3, "\(p)")
        #expect(p.contains { $0.hasPrefix("txnRecordRetentionMs") })
        #expect(p.contains { $0.hasPrefix("answerBytesMax") })
        #expect(p.contains { $0.hasPrefix("answerBytesInFlightMax") })
        l = Limits()
        l.batchAnswerBytesMax = l.answerBytesMax - 1
        #expect(l.problems.count == 1)
    }

    /// A lease holds its bytes until it is released (its answer sent), and only then may
    /// another answer take them.
    @Test func aLeaseHoldsItsBytesUntilReleased() throws {
        let pool = AnswerPool(max: 1_000)
        var a: AnswerLease? = AnswerLease(pool: pool)
        try a?.charge(600)
        let b = AnswerLease(pool: pool)
        #expect(throws: RestmError.self) { try b.charge(600) }
        try b.charge(400)
        #expect(pool.inUse == 1_000)
        #expect(a?.holding == 600)
        a = nil
        #expect(pool.inUse == 400)
        try b.charge(600)
        #expect(pool.inUse == 1_000)
    }

    @Test func metricsInBothFormats() async throws {
        try await app().test(.router) { client in
            _ = try await client.execute(uri: "/ptr/m", method: .put, body: ByteBuffer(string: "1"))
            let m = try json(try await client.execute(uri: "/sys/metrics", method: .get))
            #expect(m["code"]?["http"]?["PUT /ptr/{p}"]?["invocations"]?.intValue == 1)
            #expect(m["txns"]?["committed"]?.intValue == 1)
            let prom = try await client.execute(uri: "/metrics", method: .get)
            let text = String(buffer: prom.body)
            #expect(text.contains("# TYPE restm_txn_commits_total counter"))
            #expect(text.contains("restm_txn_commits_total 1"))
        }
    }
}
