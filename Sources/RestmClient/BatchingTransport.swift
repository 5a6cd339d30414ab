import NIOCore
import NIOHTTP1
import RestmCore
import Synchronization

/// Coalesces concurrent requests into `POST /batch` (docs/API-EXTENSIONS.md), the way a
/// database's group commit coalesces commits: at most `inFlightMax` exchanges are on the
/// wire at once; a request that finds them all busy waits in a queue, and the next exchange
/// to finish sends the whole queue as one batch. A lone request goes out alone, at once, so
/// batching adds no latency at low load, and under load the cost of an HTTP exchange is
/// shared by every request of a batch.
///
/// Each item keeps the meaning of a request of its own: it is answered with its own status
/// and body, and a lost batch is a lost answer for each of its items (a commit's outcome is
/// then resolved with `GET /txn/{t}` like any lost answer). Requests that wait by design
/// (`POST /watch`, `GET /events`, task results) and `/sys/` ones always travel alone.
final class BatchingTransport: HTTPTransport {
    let inner: any HTTPTransport
    let inFlightMax: Int
    let itemsMax: Int

    struct Item: Sendable {
        var method: HTTPMethod
        var path: String
        var body: String?
        var restmAfter: String?
        /// Its caller's `RequestDeadline`: a batch ends at the latest of its items'.
        var deadline: ContinuousClock.Instant?
        var answer: CheckedContinuation<HTTPAnswer, any Error>
    }

    struct Lane {
        var queue: [Item] = []
        var inFlight = 0
    }

    struct State {
        /// Two lanes, each with its own slots: commits (which wait for the store's fsync)
        /// and everything else (begins and reads, answered at once). One batch answers when
        /// its slowest item does, so a begin never waits behind a commit's fsync.
        var lanes = [Lane(), Lane()]
        /// Set when the node answered that it has no `/batch` route (an older node).
        var unsupported = false
    }

    private let state = Mutex(State())
    /// Exchanges sent on the inner transport (a batch counts once).
    let exchangeCount = Atomic<Int>(0)

    /// Commits (`/txn/{t}/commit`, and `POST /txn` unless it only reads) go in lane 1.
    static func lane(_ method: HTTPMethod, _ path: String, _ body: String?) -> Int {
        if path.hasSuffix("/commit") { return 1 }
        if path == "/txn" { return body?.hasPrefix("{\"reads\":") == true ? 0 : 1 }
        return 0
    }

    init(inner: any HTTPTransport, inFlightMax: Int, itemsMax: Int) {
        self.inner = inner
        self.inFlightMax = max(1, inFlightMax)
        self.itemsMax = max(2, itemsMax)
    }

    func shutdown() async throws {
        let waiting = state.withLock { s in
            defer { for l in s.lanes.indices { s.lanes[l].queue.removeAll() } }
            return s.lanes.flatMap(\.queue)
        }
        for item in waiting { item.answer.resume(throwing: ClientError.transport("the client is shutting down")) }
        try await inner.shutdown()
    }

    static func travelsAlone(_ method: HTTPMethod, _ path: String) -> Bool {
        path == "/watch" || path.hasPrefix("/events") || path.hasPrefix("/task/result/") || path.hasPrefix("/sys/")
            || path.hasPrefix("/batch")
    }

    func send(_ method: HTTPMethod, _ path: String, body: String?, restmAfter: String?) async throws -> HTTPAnswer {
        if Self.travelsAlone(method, path) {
            exchangeCount.wrappingAdd(1, ordering: .relaxed)
            return try await inner.send(method, path, body: body, restmAfter: restmAfter)
        }
        // A free slot: go at once, alone. Otherwise wait for a batch (the invariant: the queue
        // is empty whenever a slot is free, because a finishing exchange drains it).
        let lane = Self.lane(method, path, body)
        let alone = state.withLock { s in
            guard s.lanes[lane].inFlight < inFlightMax || s.unsupported else { return false }
            s.lanes[lane].inFlight += 1
            return true
        }
        if alone {
            defer { finished(lane) }
            exchangeCount.wrappingAdd(1, ordering: .relaxed)
            return try await inner.send(method, path, body: body, restmAfter: restmAfter)
        }
        return try await withCheckedThrowingContinuation { c in
            let item = Item(method: method, path: path, body: body, restmAfter: restmAfter, deadline: RequestDeadline.current, answer: c)
            let goNow = state.withLock { s in
                // A slot may have freed between the two locks: then this item goes now.
                if s.lanes[lane].inFlight < inFlightMax {
                    s.lanes[lane].inFlight += 1
                    return true
                }
                s.lanes[lane].queue.append(item)
                return false
            }
            if goNow { Task { await self.drain(lane, [item]) } }
        }
    }

    /// An exchange ended: its slot goes to the queue if anything waits there.
    private func finished(_ lane: Int) {
        let next = state.withLock { s -> [Item] in
            guard !s.lanes[lane].queue.isEmpty else {
                s.lanes[lane].inFlight -= 1
                return []
            }
            return take(&s.lanes[lane])
        }
        if !next.isEmpty { Task { await self.drain(lane, next) } }
    }

    /// Bodies of one batch, together: well under a node's 8 MiB request limit.
    static let batchBytesMax = 2 << 20

    private func take(_ s: inout Lane) -> [Item] {
        var n = 0
        var bytes = 0
        while n < s.queue.count, n < itemsMax {
            bytes += (s.queue[n].body?.utf8.count ?? 0) + s.queue[n].path.utf8.count + 40
            if n > 0, bytes > Self.batchBytesMax { break }
            n += 1
        }
        let items = Array(s.queue.prefix(n))
        s.queue.removeFirst(n)
        return items
    }

    /// Sends `items` (as a batch if more than one), then keeps the slot for as long as the
    /// queue holds more.
    private func drain(_ lane: Int, _ first: [Item]) async {
        var items = first
        while true {
            await exchange(items)
            items = state.withLock { s -> [Item] in
                guard !s.lanes[lane].queue.isEmpty else {
                    s.lanes[lane].inFlight -= 1
                    return []
                }
                return take(&s.lanes[lane])
            }
            if items.isEmpty { return }
        }
    }

    /// Each item as a request of its own, concurrently.
    private func sendAlone(_ items: [Item]) async {
        await withTaskGroup(of: Void.self) { group in
            for item in items {
                group.addTask {
                    self.exchangeCount.wrappingAdd(1, ordering: .relaxed)
                    do {
                        let answer = try await RequestDeadline.$current.withValue(item.deadline) {
                            try await self.inner.send(item.method, item.path, body: item.body, restmAfter: item.restmAfter)
                        }
                        item.answer.resume(returning: answer)
                    } catch {
                        item.answer.resume(throwing: error)
                    }
                }
            }
        }
    }

    private func exchange(_ items: [Item]) async {
        if items.count == 1 || state.withLock({ $0.unsupported }) {
            await sendAlone(items)
            return
        }
        var body = "{\"requests\":["
        var after: String?
        for (i, item) in items.enumerated() {
            if i > 0 { body += "," }
            body += "{\"method\":\"" + item.method.rawValue + "\",\"path\":"
            JSONWriter.appendString(item.path, to: &body)
            if let b = item.body { body += ",\"body\":" + b }
            body += "}"
            if let a = item.restmAfter, after == nil || a > after! { after = a }
        }
        body += "]}"
        let answer: HTTPAnswer
        exchangeCount.wrappingAdd(1, ordering: .relaxed)
        // The latest of the items' deadlines (none if any item has none).
        let deadline = items.contains { $0.deadline == nil } ? nil : items.compactMap(\.deadline).max()
        do {
            answer = try await RequestDeadline.$current.withValue(deadline) {
                try await inner.send(.POST, "/batch", body: body, restmAfter: after)
            }
        } catch {
            for item in items { item.answer.resume(throwing: error) }
            return
        }
        let json = try? JSONValue.parse(answer.body.readableBytesView)
        guard answer.status == 200, case .array(let responses)? = json?["responses"], responses.count == items.count else {
            if answer.status == 404 || answer.status == 405 {
                // A node without `/batch`: nothing of this batch ran. Send each alone, from now on.
                state.withLock { $0.unsupported = true }
                await exchange(items)
                return
            }
            let refusal = [400, 413, 503].contains(answer.status) && json?["error"]?.stringValue != nil
            guard refusal else {
                // A malformed success, a 500, a proxy's 502/504: items may have run, but their
                // answers are unknown: a lost answer each (a commit is then resolved by id).
                for item in items { item.answer.resume(throwing: ClientError.transport("POST /batch answered \(answer.status) without item answers")) }
                return
            }
            if answer.status == 400 || answer.status == 413 {
                // Refused whole (one item the node cannot parse, a token it refuses, too
                // large together): nothing ran. Sent alone, each item gets its own answer, so
                // one bad request fails alone, as it would have without batching.
                await sendAlone(items)
                return
            }
            // The node refused the whole batch (shutting down, overloaded): nothing of it
            // ran, and the refusal is each item's answer.
            for item in items {
                item.answer.resume(returning: HTTPAnswer(status: answer.status, restmTs: answer.restmTs, body: answer.body, json: json))
            }
            return
        }
        for (item, r) in zip(items, responses) {
            let status = r["status"]?.intValue ?? 500
            let json = r["body"]
            item.answer.resume(returning: HTTPAnswer(status: status, restmTs: answer.restmTs, body: ByteBuffer(), json: json))
        }
    }
}
