import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import RestmCore
import RestmHTTP
import RestmNode
import RestmStore
import Testing

/// The HTTP layer in-process (Hummingbird's router test framework, no sockets): shapes of
/// answers and errors, and the headers every response carries. The black-box suite in
/// `Tests/api` drives a real server over TCP.
@Suite struct ResponderTests {
    func app() async throws -> some ApplicationProtocol {
        var c = NodeConfiguration()
        c.shardCount = 4
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
