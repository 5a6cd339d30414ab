import Hummingbird
import RestmCore
import RestmNode
import RestmTasks

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The memory explorer: plain server-rendered HTML with no external assets, so it works
/// offline. Values are shown as JSON, with `{"$ptr": id}` references rendered as links.
struct Explorer {
    let node: Node
    var tasks: TaskService? = nil

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
        table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2em .6em;text-align:left}nav a{margin-right:1em}
        .s-done{color:#070}.s-failed{color:#b00}.s-running{color:#05a}.s-waiting{color:#a60}.s-queued{color:#666}
        .bar{background:#eee;width:20em;height:.8em;display:inline-block}.bar>span{background:#4a4;height:100%;display:block}
        ul.tree{list-style:none;padding-left:1.2em;margin:0}.chart{margin:.5em 1em 1em 0;display:inline-block}</style>
        </head><body><nav><a href="/">memory</a><a href="/#tasks">tasks</a><a href="/#txns">transactions</a><a href="/sys/metrics">metrics</a><a href="/sys/info">info</a><a href="/sys/logs">logs</a><a href="/openapi.json">API</a></nav>
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
        body += "<h2 id=\"txns\">Open transactions</h2><table><tr><th>id</th><th>age (ms)</th><th>status</th><th>reads</th><th>writes</th></tr>"
        let now = node.physicalMillis
        for t in node.openTxns().prefix(100) {
            let c = t.counts
            body += "<tr><td><a href=\"/txn/\(t.id)\">\(t.id)</a></td><td>\(now - t.createdMillis)</td><td>\(Self.escape("\(t.status)"))</td><td>\(c.reads)</td><td>\(c.writes)</td></tr>"
        }
        body += "</table>"
        if let tasks {
            body += "<h2 id=\"tasks\">Tasks</h2><p>\(tasks.workerCount) workers, \(tasks.runningSteps) steps running. Start one: <a href=\"/demo/sort?n=100000\">sort 100,000 strings</a>.</p>"
            body += "<table><tr><th>task</th><th>kind</th><th>status</th><th>subtasks</th><th>age (s)</th></tr>"
            for t in try await tasks.roots() {
                let age = now > t.created ? (now - t.created) / 1000 : 0
                body += "<tr><td><a href=\"/task/info/\(t.id)\">\(t.id)</a></td><td>\(Self.escape(t.kind))</td><td class=\"s-\(t.status)\">\(t.status)</td><td>\(t.children)</td><td>\(age)</td></tr>"
            }
            body += "</table>"
        }
        return Reply.html(layout("reSTM node \(node.configuration.nodeID)", body))
    }

    static func iso(_ millis: UInt64) -> String {
        Date(timeIntervalSince1970: Double(millis) / 1000).formatted(.iso8601)
    }

    func pointer(_ p: String, at: Timestamp?) async throws -> Response {
        let window = max(1, node.limits.retentionMs / 1000)
        let agoNow = at.map { node.physicalMillis > $0.wallMillis ? Int(node.physicalMillis - $0.wallMillis) / 1000 : 0 } ?? 0
        var body = "<form id=\"asof\"><label>as of <input name=\"at\" placeholder=\"version or ISO-8601 time\" value=\"\(at?.text ?? "")\"></label> <button>show</button> <a href=\"/ptr/\(p)\">now</a></form>"
        body += "<p><label>time travel: <input id=\"ago\" type=\"range\" min=\"0\" max=\"\(window)\" value=\"\(min(agoNow, window))\" style=\"width:30em\"></label> <span id=\"agotext\">\(agoNow) s ago</span></p>"
        body += "<script>const r=document.getElementById('ago'),t=document.getElementById('agotext');"
            + "r.oninput=()=>{t.textContent=r.value+' s ago'};"
            + "r.onchange=()=>{const v=+r.value;location.search=v?'?at='+new Date(Date.now()-v*1000).toISOString():''};</script>"
        if let at { body += "<p>Showing the value as of <code>\(at.text)</code> (\(Self.escape(Self.iso(at.wallMillis))))</p>" }
        if let v = try await node.get(p, at: at), let value = v.value, let parsed = try? JSONValue.parse(value) {
            body += "<p>version <code>\(v.ts.text)</code> by <code>\(Self.escape(v.txn))</code></p><pre>\(render(parsed, indent: 0))</pre>"
        } else {
            body += "<p>No value\(at == nil ? "" : " at that time").</p>"
        }
        body += "<h2>History</h2><table><tr><th>version</th><th>time</th><th>txn</th><th>value</th></tr>"
        for v in try await node.history(p, before: nil, limit: 50) {
            let shown = v.value.map { String($0.prefix(200)) } ?? "(deleted)"
            body += "<tr><td><a href=\"/ptr/\(p)?at=\(v.ts.text)\">\(v.ts.text)</a></td><td>\(Self.iso(v.ts.wallMillis))</td><td>\(Self.escape(v.txn))</td><td><code>\(Self.escape(shown))</code></td></tr>"
        }
        body += "</table>"
        return Reply.html(layout("Pointer \(p)", body))
    }
}
