import Hummingbird
import RestmCore
import RestmNode
import RestmTasks

/// Explorer pages for tasks and metrics.
extension Explorer {
    /// A task's live tree: each subtask with its status, indented by depth; the page reloads
    /// itself every second until the task is done or failed.
    func task(_ id: String, _ info: JSONValue) async throws -> Response {
        let status = info["status"]?.stringValue ?? "?"
        let done = info["progress"]?["done"]?.intValue ?? 0
        let total = max(1, info["progress"]?["total"]?.intValue ?? 1)
        var body = "<p>Status <b class=\"s-\(Self.escape(status))\" id=\"status\">\(Self.escape(status))</b> · "
        body += "<span class=\"bar\"><span style=\"width:\(done * 100 / total)%\"></span></span> "
        body += "<span id=\"progress\">\(done) of \(total)</span> tasks of the tree done · <a href=\"/task/result/\(id)?timeoutMs=0\">result</a></p>"
        if let parent = info["parent"]?.stringValue { body += "<p>Parent: <a href=\"/task/info/\(parent)\">\(Self.escape(parent))</a></p>" }
        if let e = info["error"]?.stringValue { body += "<p class=\"s-failed\">Error: \(Self.escape(e))</p>" }
        if let tasks {
            let tree = try await tasks.tree(id, limit: 300)
            body += "<h2>Tree</h2><div id=\"tree\">"
            var depth = 0
            body += "<ul class=\"tree\">"
            for (i, t) in tree.enumerated() {
                while depth < t.depth { body += "<ul class=\"tree\">"; depth += 1 }
                while depth > t.depth { body += "</ul>"; depth -= 1 }
                let link = i == 0 ? Self.escape(t.id) : "<a href=\"/task/info/\(t.id)\">\(t.id)</a>"
                body += "<li data-status=\"\(t.status)\">\(link) <code>\(Self.escape(t.kind))</code> <span class=\"s-\(t.status)\">\(t.status)</span>"
                if t.children > 0 { body += " · \(t.children) subtasks" }
                body += "</li>"
            }
            while depth > 0 { body += "</ul>"; depth -= 1 }
            body += "</ul></div>"
            if tree.count >= 300 { body += "<p>(the first 300 tasks of the tree)</p>" }
        }
        body += "<h2>Record</h2><pre>\(render(info, indent: 0))</pre>"
        if status != "done" && status != "failed" { body += "<script>setTimeout(()=>location.reload(),1000)</script>" }
        return Reply.html(layout("Task \(id)", body))
    }

    /// A line chart of `values` (one a second) as inline SVG: no external assets.
    static func chart(_ title: String, _ values: [Double], unit: String) -> String {
        let w = 420.0, h = 120.0
        let top = max(values.max() ?? 0, 1e-9)
        var points = ""
        for (i, v) in values.enumerated() {
            let x = values.count > 1 ? Double(i) * w / Double(values.count - 1) : 0
            let y = h - v / top * (h - 10)
            points += "\(Int(x)),\(Int(y)) "
        }
        let last = values.last.map { String(format: "%.1f", $0) } ?? "–"
        return """
            <figure class="chart"><figcaption><b>\(escape(title))</b> · now \(last) \(escape(unit)) · max \(String(format: "%.1f", top))</figcaption>\
            <svg width="\(Int(w))" height="\(Int(h))" viewBox="0 0 \(Int(w)) \(Int(h))" role="img" aria-label="\(escape(title))" style="background:#fafafa;border:1px solid #ddd">\
            <polyline fill="none" stroke="#27a" stroke-width="1.5" points="\(points)"/></svg></figure>
            """
    }

    /// Metrics over the last ten minutes as charts, then the JSON of `/sys/metrics`.
    func metrics(json: String) -> Response {
        let samples = node.history.samples
        func rate(_ f: (MetricsHistory.Sample) -> Int) -> [Double] {
            zip(samples, samples.dropFirst()).map { a, b in
                let dt = Double(max(1, b.millis - a.millis)) / 1000
                return Double(max(0, f(b) - f(a))) / dt
            }
        }
        var body = "<p>The last \(samples.count) seconds, one sample a second.</p><div id=\"charts\">"
        body += Self.chart("commits / s", rate { $0.commits }, unit: "/s")
        body += Self.chart("read-only commits / s", rate { $0.readOnlyCommits }, unit: "/s")
        body += Self.chart("conflicts / s", rate { $0.conflicts }, unit: "/s")
        body += Self.chart("open transactions", samples.map { Double($0.openTxns) }, unit: "")
        body += Self.chart("values in memory", samples.map { Double($0.valueBytesInMemory) / 1_048_576 }, unit: "MiB")
        body += Self.chart("pointers in memory", samples.map { Double($0.pointersInMemory) }, unit: "")
        body += Self.chart("versions pruned by GC / s", rate { $0.versionsPruned }, unit: "/s")
        body += Self.chart("commit queue depth", samples.map { Double($0.commitQueueDepth) }, unit: "")
        body += "</div>"
        let pretty = (try? JSONValue.parse(json)).map { render($0, indent: 0) } ?? Self.escape(json)
        body += "<h2>All figures</h2><pre>\(pretty)</pre><script>setTimeout(()=>location.reload(),5000)</script>"
        return Reply.html(layout("Metrics", body))
    }
}
