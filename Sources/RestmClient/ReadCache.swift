import RestmCore
import Synchronization

/// The newest value and version a client has seen of each pointer, shared by the
/// transactions of one `TransactionalMemory`. With it, a transaction reads from memory and
/// commits in one round trip that checks every version it read (`POST /txn` with `expect`):
/// a stale entry costs a failed check and a re-read, never a wrong commit.
///
/// The price: a body may see values of different moments (each one was committed, but
/// they may never have been current together); such an attempt never commits, but the body
/// runs on them. Bodies that stay correct on any committed values — all of this package's —
/// can use it; a body that would trap on an impossible combination should not.
///
/// At most `capacity` pointers are kept; beyond it an arbitrary eighth is dropped.
public final class ReadCache: Sendable {
    struct Entry: Sendable {
        var value: JSONValue?
        var version: Timestamp?
        /// When this was known to be current: the newest knowledge wins.
        var stamp: Timestamp
    }

    public let capacity: Int
    private let entries = Mutex<[String: Entry]>([:])

    public init(capacity: Int = 100_000) {
        self.capacity = max(16, capacity)
    }

    public var count: Int { entries.withLock { $0.count } }

    func lookup(_ ptr: String) -> Entry? {
        entries.withLock { $0[ptr] }
    }

    /// Remembers `ptr` as of `stamp`, unless something newer is known already.
    func store(_ ptr: String, value: JSONValue?, version: Timestamp?, stamp: Timestamp) {
        entries.withLock { e in
            if let old = e[ptr], old.stamp >= stamp { return }
            if e.count >= capacity, e[ptr] == nil {
                for k in Array(e.keys.prefix(capacity / 8)) { e.removeValue(forKey: k) }
            }
            e[ptr] = Entry(value: value, version: version, stamp: stamp)
        }
    }

    func invalidate<S: Sequence>(_ ptrs: S) where S.Element == String {
        entries.withLock { e in
            for p in ptrs { e.removeValue(forKey: p) }
        }
    }

    /// Forgets everything.
    public func clear() {
        entries.withLock { $0.removeAll() }
    }
}
