import Hummingbird
import RestmCore
import RestmNode
import RestmTasks

extension RestmResponder {
    func tasksRoute(_ request: Request, _ segments: [Substring], route: inout String) async throws -> Response? {
        let method = request.method
        func only(_ a: HTTPRequest.Method, _ b: HTTPRequest.Method? = nil) throws { try Self.only(method, a, b, request.uri.path) }
        switch (segments[0], segments.count) {
        case ("task", 1):
            route = "POST /task"
            try only(.post)
            let body = try await RequestParsing.object(request, limit: limits.requestBytesMax, depth: limits.jsonDepthMax)
            guard let kind = RequestParsing.member(body, "kind")?.stringValue else {
                throw RestmError(.badRequest, "the body must be {\"kind\": name, \"input\": json}")
            }
            let id = try await tasks.submit(TaskSpec(kind: kind, input: RequestParsing.member(body, "input") ?? .null))
            return Reply.json(.created, "{\"task\":\(JSONWriter.quoted(id))}")

        case ("task", 3) where segments[1] == "info":
            route = "GET /task/info/{id}"
            try only(.get, .head)
            let id = String(segments[2])
            let info = try await tasks.info(id)
            if RequestParsing.wantsHTML(request) { return try await Explorer(node: node, tasks: tasks).task(id, info) }
            return try counted(.ok, info.compactText)

        case ("task", 3) where segments[1] == "result":
            route = "GET /task/result/{id}"
            try only(.get, .head)
            let timeout = min(try RequestParsing.intQuery(request, "timeoutMs", default: 30_000), limits.watchTimeoutMsMax)
            switch try await tasks.result(String(segments[2]), timeout: .milliseconds(timeout)) {
            case .done(let v):
                return try counted(.ok, "{\"status\":\"done\",\"result\":\(v.compactText)}")
            case .failed(let e):
                return Reply.json(.ok, "{\"status\":\"failed\",\"error\":\(JSONWriter.quoted(e))}")
            case .pending(let info):
                return try counted(.accepted, info.compactText)
            }

        case ("demo", 2) where segments[1] == "sort":
            let id: String
            if method == .post {
                route = "POST /demo/sort"
                guard case .array(let items) = try await RequestParsing.json(request, limit: limits.requestBytesMax, depth: limits.jsonDepthMax) else {
                    throw RestmError(.badRequest, "the body must be a JSON array of strings")
                }
                var strings: [String] = []
                strings.reserveCapacity(items.count)
                for (i, item) in items.enumerated() {
                    guard let s = item.stringValue else { throw RestmError(.badRequest, "item \(i) is not a string") }
                    strings.append(s)
                }
                guard strings.count <= SortDemo.nMax else { throw RestmError(.tooLarge, "at most \(SortDemo.nMax) strings") }
                id = try await SortDemo.submit(strings, on: tasks)
            } else if method == .get {
                route = "GET /demo/sort"
                let n = try RequestParsing.intQuery(request, "n", default: 10_000)
                guard (1...SortDemo.nMax).contains(n) else { throw RestmError(.badRequest, "n must be 1–\(SortDemo.nMax)") }
                let seed = try RequestParsing.intQuery(request, "seed", default: Int.random(in: 1...Int(Int32.max)))
                id = try await tasks.submit(TaskSpec(kind: "demo.sort", input: .object([("n", .number(String(n))), ("seed", .number(String(seed)))])))
            } else {
                throw Self.notAllowed(method, [.get, .post], request.uri.path)
            }
            if RequestParsing.wantsHTML(request) { return Explorer(node: node).sortStarted(id) }
            return Reply.json(.accepted, "{\"task\":\(JSONWriter.quoted(id))}")

        case ("demo", 4) where segments[1] == "sort" && segments[2] == "result":
            route = "GET /demo/sort/result/{task}"
            try only(.get, .head)
            // No run holds more than nMax strings; the cap keeps `offset + limit` within Int.
            let offset = min(try RequestParsing.intQuery(request, "offset", default: 0), SortDemo.nMax)
            let limit = min(try RequestParsing.limitQuery(request), limits.pageItemsMax)
            let id = String(segments[3])
            guard let (total, items) = try await SortDemo.page(id, offset: offset, limit: limit, on: tasks) else {
                return Reply.json(.accepted, try await tasks.info(id).compactText)
            }
            var out = "{\"total\":\(total),\"items\":["
            for (i, s) in items.enumerated() {
                if i > 0 { out += "," }
                JSONWriter.appendString(s, to: &out)
            }
            out += "]}"
            return try counted(.ok, out)

        default:
            return nil
        }
    }

    /// An answer that carries stored data (a task's record or result, a page of a sort),
    /// counted against a batch's budget and the node's answers in flight like read results.
    func counted(_ status: HTTPResponse.Status, _ text: String) throws -> Response {
        try AnswerBytes.charge(text.utf8.count)
        return Reply.json(status, text)
    }
}

extension Explorer {
    func sortStarted(_ id: String) -> Response {
        Reply.html(
            layout(
                "Sort started",
                "<p>Task <a href=\"/task/info/\(id)\">\(Self.escape(id))</a> is sorting. Its result, when done: <a href=\"/task/result/\(id)\">/task/result/\(id)</a>; the sorted strings: <a href=\"/demo/sort/result/\(id)\">/demo/sort/result/\(id)</a>.</p>"
            ), status: .accepted)
    }
}
