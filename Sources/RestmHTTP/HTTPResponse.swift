import HTTPTypes
import Hummingbird
import NIOCore
import RestmCore

extension HTTPField.Name {
    static let restmTs = HTTPField.Name("Restm-Ts")!
    static let restmAfter = HTTPField.Name("Restm-After")!
    static let xRequestID = HTTPField.Name("X-Request-Id")!
}

/// Builders of the JSON (and HTML) responses of API.md.
enum Reply {
    static func json(_ status: HTTPResponse.Status, _ body: String, headers: HTTPFields = [:]) -> Response {
        var h = headers
        h[.contentType] = "application/json"
        return Response(status: status, headers: h, body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }

    static func html(_ body: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "text/html; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }

    static func text(_ body: String, contentType: String) -> Response {
        Response(status: .ok, headers: [.contentType: contentType], body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }

    static func noContent() -> Response {
        Response(status: .noContent)
    }

    /// `{"error", "message", "retryable", …extra}` with the error's status.
    static func error(_ e: RestmError) -> Response {
        var headers = HTTPFields()
        if !e.allow.isEmpty { headers[.allow] = e.allow.joined(separator: ", ") }
        if e.closesConnection { headers[.connection] = "close" }
        return json(HTTPResponse.Status(code: e.httpStatus), errorText(e), headers: headers)
    }

    static func errorText(_ e: RestmError) -> String {
        var out = "{\"error\":"
        JSONWriter.appendString(e.code.rawValue, to: &out)
        out += ",\"message\":"
        JSONWriter.appendString(e.message, to: &out)
        out += ",\"retryable\":\(e.retryable)"
        for (k, v) in e.extra {
            out += ","
            JSONWriter.appendString(k, to: &out)
            out += ":" + v
        }
        out += "}"
        return out
    }
}

/// A tiny JSON object writer for responses.
struct JSONObject {
    private var out = "{"
    private var first = true

    private mutating func key(_ k: String) {
        if !first { out += "," }
        first = false
        JSONWriter.appendString(k, to: &out)
        out += ":"
    }

    mutating func string(_ k: String, _ v: String?) {
        key(k)
        if let v { JSONWriter.appendString(v, to: &out) } else { out += "null" }
    }

    /// `v` is already JSON text (nil writes null).
    mutating func raw(_ k: String, _ v: String?) {
        key(k)
        out += v ?? "null"
    }

    mutating func int(_ k: String, _ v: Int) {
        key(k)
        out += String(v)
    }

    mutating func double(_ k: String, _ v: Double) {
        key(k)
        out += v.isFinite ? String(v) : "0"
    }

    mutating func bool(_ k: String, _ v: Bool) {
        key(k)
        out += v ? "true" : "false"
    }

    var text: String { out + "}" }
}

extension String {
    /// The string without leading and trailing characters from `set`.
    func trimmingCharacters(in set: String) -> String {
        let chars = Set(set.unicodeScalars)
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !chars.contains($0) }) else { return "" }
        let last = scalars.lastIndex(where: { !chars.contains($0) })!
        return String(scalars[first...last])
    }
}
