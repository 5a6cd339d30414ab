import RestmCore
import RestmNode

/// Runs client transactions inside this process on a node: no HTTP, the same durability.
///
///     let node = try await Node.open(store: SQLiteStore(directory: "restm-data"))
///     let memory = TransactionalMemory(backend: EmbeddedBackend(node: node))
public struct EmbeddedBackend: TransactionBackend {
    public let node: Node

    public init(node: Node) {
        self.node = node
    }

    static func map(_ error: any Error) -> any Error {
        guard let e = error as? RestmError else { return error }
        return ClientError.server(status: e.httpStatus, code: e.code.rawValue, message: e.message, retryable: e.retryable)
    }

    func readValues(_ t: Txn, _ ptrs: [String]) async throws -> [String: ReadValue] {
        var out: [String: ReadValue] = [:]
        for p in ptrs {
            let r = try await node.read(t, p)
            out[p] = ReadValue(value: try r.value.map { try JSONValue.parse($0) }, version: r.version)
        }
        return out
    }

    public func begin(priority: Timestamp?, reads: [String]) async throws -> (handle: Txn, rv: Timestamp, values: [String: ReadValue]) {
        do {
            let t = try await node.begin(priority: priority, register: false)
            return (t, t.rv, try await readValues(t, reads))
        } catch {
            throw Self.map(error)
        }
    }

    public func read(_ handle: Txn, _ ptrs: [String]) async throws -> [String: ReadValue] {
        do { return try await readValues(handle, ptrs) } catch { throw Self.map(error) }
    }

    public func commit(_ handle: Txn, writes: [(String, String?)]) async throws -> Timestamp {
        do { return try await node.commit(handle, adding: writes) } catch { throw Self.map(error) }
    }

    public func commitBlind(writes: [(String, String?)]) async throws -> Timestamp {
        do { return try await node.oneShot(OneShotRequest(writes: writes)).ts } catch { throw Self.map(error) }
    }

    public func snapshotRead(_ ptrs: [String]) async throws -> (ts: Timestamp, values: [String: ReadValue]) {
        do {
            let r = try await node.oneShot(OneShotRequest(reads: ptrs))
            var out: [String: ReadValue] = [:]
            for (p, v) in r.values { out[p] = ReadValue(value: try v.value.map { try JSONValue.parse($0) }, version: v.version) }
            return (r.ts, out)
        } catch {
            throw Self.map(error)
        }
    }

    public func commitExpecting(id: String, expect: [(String, Timestamp?)], writes: [(String, String?)]) async throws -> ExpectingOutcome {
        do {
            let r = try await node.oneShot(OneShotRequest(expect: expect, writes: writes, txn: id))
            return .committed(r.ts, attempts: r.attempts)
        } catch let e as RestmError where e.code == .expectationFailed {
            let values = e.extra.first(where: { $0.0 == "values" }).flatMap { try? JSONValue.parse(Array($0.1.utf8)) }
            return .stale(HTTPBackend.values(values.map { .object([("values", $0)]) }))
        } catch {
            throw Self.map(error)
        }
    }

    public func resolve(id: String) async throws -> Timestamp? {
        let s: TxnSummary
        do { s = try await node.status(of: id) } catch { throw Self.map(error) }
        switch s.status {
        case .committed(let ts): return ts
        case .aborted: return nil
        default: throw ClientError.outcomeUnknown(txn: id)
        }
    }

    public func abort(_ handle: Txn) async {
        node.abort(handle)
    }

    public func resolve(_ handle: Txn) async throws -> Timestamp? {
        switch handle.status {
        case .committed(let ts): return ts
        case .aborted: return nil
        default: throw ClientError.outcomeUnknown(txn: handle.id)
        }
    }

    public func watch(_ versions: [(String, Timestamp?)], timeout: Duration) async throws -> Bool {
        do { return !(try await node.watch(versions, timeout: timeout)).isEmpty } catch { throw Self.map(error) }
    }
}
