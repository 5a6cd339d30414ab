import Hummingbird
import RestmCore
import RestmNode

/// The memory explorer: plain server-rendered HTML with no external assets, so it works
/// offline. Values are shown as JSON, with `{"$ptr": id}` references rendered as links.
struct Explorer {
    let node: Node

    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            switch c {
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "&": out += "&amp;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    func layout(_ title: String, _ body: String) -> String {
        """
        <!doctype html><html><head><meta charset="utf-8"><title>\(Self.escape(title)) · reSTM</title>
        <style>body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;max-width:70em}pre{background:#f5f5f5;padding:.8em;overflow:auto}
        table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2em .6em;text-align:left}nav a{margin-right:1em}</style>
        </head><body><nav><a href="/">memory</a><a href="/sys/metrics">metrics</a><a href="/sys/info">info</a><a href="/sys/logs">logs</a></nav>
        <h1>\(Self.escape(title))</h1>\(body)</body></html>
        """
    }

    func page(title: String, json: String) -> Response {
        let pretty = (try? JSONValue.parse(json)).map { render($0, indent: 0) } ?? Self.escape(json)
        return Reply.html(layout(title, "<pre>\(pretty)</pre>"))
    }

    /// Pretty-prints a JSON value as HTML, linking pointer references.
    func render(_ v: JSONValue, indent: Int) -> String {
        let pad = String(repeating: String("  "), count: indent + 1)
        let close = String(repeating: String("  "), count: indent)
        switch v {
        case .object(let members):
            if members.count == 1, members[0].0 == "$ptr", case .string(let p) = members[0].1, PointerID.isValid(p) {
                return "{\"$ptr\": <a href=\"/ptr/\(p)\">\(Self.escape(JSONWriter.quoted(p)))</a>}"
            }
            if members.isEmpty { return "{}" }
            let inner = members.map { pad + Self.escape(JSONWriter.quoted($0.0)) + ": " + render($0.1, indent: indent + 1) }
            return "{\n" + inner.joined(separator: ",\n") + "\n" + close + "}"
        case .array(let items):
            if items.isEmpty { return "[]" }
            return "[\n" + items.map { pad + render($0, indent: indent + 1) }.joined(separator: ",\n") + "\n" + close + "]"
        default:
            return Self.escape(v.compactText)
        }
    }

    func home(_ request: Request) async throws -> Response {
        let prefix = request.uri.queryParameters.get("prefix").map { String($0) } ?? ""
        let after = request.uri.queryParameters.get("after").map { String($0) }
        var body = "<form><label>prefix <input name=\"prefix\" value=\"\(Self.escape(prefix))\"></label> <button>list</button></form>"
        if prefix.isEmpty || PointerID.isValid(prefix), after.map({ PointerID.isValid($0) }) ?? true {
            let page = try await node.list(prefix: prefix, after: after, limit: 100)
            body += "<h2>Pointers</h2><ul>"
            for p in page.ptrs { body += "<li><a href=\"/ptr/\(p)\">\(Self.escape(p))</a></li>" }
            body += "</ul>"
            if page.ptrs.isEmpty { body += "<p>No pointers\(prefix.isEmpty ? "" : " with this prefix").</p>" }
            if let next = page.next { body += "<p><a href=\"/?prefix=\(prefix)&amp;after=\(next)\">next page</a></p>" }
        } else {
            body += "<p>Pointer ids use only the characters <code>A-Za-z0-9._:~-</code>.</p>"
        }
        body += "<h2>Open transactions</h2><table><tr><th>id</th><th>age (ms)</th><th>status</th><th>reads</th><th>writes</th></tr>"
        let now = node.physicalMillis
        for t in node.openTxns().prefix(100) {
            let c = t.counts
            body += "<tr><td><a href=\"/txn/\(t.id)\">\(t.id)</a></td><td>\(now - t.createdMillis)</td><td>\(Self.escape("\(t.status)"))</td><td>\(c.reads)</td><td>\(c.writes)</td></tr>"
        }
        body += "</table>"
        return Reply.html(layout("reSTM node \(node.configuration.nodeID)", body))
    }

    func pointer(_ p: String, at: Timestamp?) async throws -> Response {
        var body = "<form><label>as of <input name=\"at\" placeholder=\"version or ISO-8601 time\" value=\"\(at?.text ?? "")\"></label> <button>show</button></form>"
        if let v = try await node.get(p, at: at), let value = v.value, let parsed = try? JSONValue.parse(value) {
            body += "<p>version <code>\(v.ts.text)</code> by <code>\(Self.escape(v.txn))</code></p><pre>\(render(parsed, indent: 0))</pre>"
        } else {
            body += "<p>No value\(at == nil ? "" : " at that time").</p>"
        }
        body += "<h2>History</h2><table><tr><th>version</th><th>txn</th><th>value</th></tr>"
        for v in try await node.history(p, before: nil, limit: 50) {
            let shown = v.value.map { String($0.prefix(200)) } ?? "(deleted)"
            body += "<tr><td><a href=\"/ptr/\(p)?at=\(v.ts.text)\">\(v.ts.text)</a></td><td>\(Self.escape(v.txn))</td><td><code>\(Self.escape(shown))</code></td></tr>"
        }
        body += "</table>"
        return Reply.html(layout("Pointer \(p)", body))
    }
}
