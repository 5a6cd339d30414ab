import RestmCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A transaction coordinated by this node: its snapshot timestamp, read set and buffered
/// writes (DESIGN.md, Transactions steps 1–3). Requests for one transaction may arrive
/// concurrently; its mutable state lives under `state`'s lock.
public final class Txn: Sendable {
    public enum Status: Sendable, Equatable {
        case active
        /// The commit has been sent; no idle timeout applies any more.
        case committing
        case committed(Timestamp)
        case aborted(String)
        /// The commit write's fate is not known yet (DESIGN.md step 6).
        case unknown
    }

    struct State {
        var status: Status = .active
        /// Pointers read (their reads must stay valid until commit).
        var reads: Set<String> = []
        /// Buffered writes; `.none` deletes.
        var writes: [String: String?] = [:]
        var lastActiveMillis: UInt64
        /// Commits that joined one already in flight.
        var joiners: [CheckedContinuation<Result<Timestamp, RestmError>, Never>] = []
    }

    public let id: String
    /// The snapshot (read) timestamp.
    public let rv: Timestamp
    /// The first attempt's timestamp: kept across retries (used by clients' backoff).
    public let priority: Timestamp
    public let readOnly: Bool
    public let createdMillis: UInt64
    public let idleTimeoutMillis: UInt64
    /// False for the node's own single-request transactions, which no client can name.
    public let registered: Bool
    let state: Mutex<State>

    init(id: String, rv: Timestamp, priority: Timestamp?, readOnly: Bool, nowMillis: UInt64, idleTimeoutMillis: UInt64, registered: Bool) {
        self.id = id
        self.registered = registered
        self.rv = rv
        self.priority = priority ?? rv
        self.readOnly = readOnly
        self.createdMillis = nowMillis
        self.idleTimeoutMillis = idleTimeoutMillis
        self.state = Mutex(State(lastActiveMillis: nowMillis))
    }

    public var status: Status { state.withLock { $0.status } }

    public var counts: (reads: Int, writes: Int) {
        state.withLock { ($0.reads.count, $0.writes.count) }
    }
}

/// What `GET /txn/{t}` shows of a transaction that has finished.
public struct TxnSummary: Sendable, Equatable {
    public var id: String
    public var rv: Timestamp
    public var status: Txn.Status
    public var reads: Int
    public var writes: Int
}

/// Client-chosen transaction ids of one-shot transactions (`POST /txn` with `"txn"`, an
/// extension): `c` and 16–64 of `[A-Za-z0-9_-]`, e.g. 128 random bits in base 32. They
/// never collide with a node's ids (`t…`), and let a client that lost the answer ask
/// `GET /txn/{id}` what became of the transaction.
public enum ClientTxnID {
    /// A fresh id: `c0` (the mark of this format: `0` is not a digit of its base 32), 11
    /// digits of the microsecond clock and 14 random digits (70 bits), in base 32 with digits
    /// in ASCII order, so that ids sort by creation time: records keyed by them are appended
    /// at the end of the store's index, not scattered over it.
    public static func make() -> String {
        let digits = Array("234567abcdefghijklmnopqrstuvwxyz".utf8)
        var out: [UInt8] = [UInt8(ascii: "c"), UInt8(ascii: "0")]
        out.reserveCapacity(27)
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let micros = UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1_000
        for i in stride(from: 10, through: 0, by: -1) { out.append(digits[Int((micros >> (UInt64(i) * 5)) & 31)]) }
        var (r, r2) = randomPool.withLock { $0.next() }
        for i in 0..<14 {
            if i == 12 { r = r2; r2 = 0 }
            out.append(digits[Int(r & 31)])
            r >>= 5
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Random bits read from `/dev/urandom` 512 bytes at a time: two `getrandom` calls per
    /// id were ~0.6 µs of a one-shot transfer's ~25 µs of CPU in a profile of the embedded
    /// bank with the read cache (each system call also costs a kernel entry).
    struct RandomPool {
        var words = [UInt64](repeating: 0, count: 64)
        var index = 64

        mutating func next() -> (UInt64, UInt64) {
            if index + 2 > words.count {
                let want = words.count * 8
                let filled = urandom >= 0 ? words.withUnsafeMutableBytes { b in read(urandom, b.baseAddress, want) } : -1
                if filled != want {
                    // No /dev/urandom, or a short read: the stdlib's generator, a call a word.
                    var g = SystemRandomNumberGenerator()
                    for i in words.indices { words[i] = g.next() }
                }
                index = 0
            }
            defer { index += 2 }
            return (words[index], words[index + 1])
        }
    }

    static let randomPool = Mutex(RandomPool())
    static let urandom: Int32 = open("/dev/urandom", O_RDONLY | O_CLOEXEC)

    /// When an id in `make()`'s format was made (Unix milliseconds of the maker's clock);
    /// nil for other ids. Another client's id could have the same shape and decode to some
    /// time too: only use it to withhold an answer, never to give one.
    public static func madeAtMillis(_ id: String) -> UInt64? {
        let u = Array(id.utf8)
        guard u.count == 27, u[0] == UInt8(ascii: "c"), u[1] == UInt8(ascii: "0") else { return nil }
        var micros: UInt64 = 0
        for c in u[2...12] {
            let d: UInt64
            switch c {
            case UInt8(ascii: "2")...UInt8(ascii: "7"): d = UInt64(c - UInt8(ascii: "2"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): d = UInt64(c - UInt8(ascii: "a")) + 6
            default: return nil
            }
            micros = micros << 5 | d
        }
        return micros / 1_000
    }

    public static func isValid(_ id: String) -> Bool {
        let u = id.utf8
        guard u.first == UInt8(ascii: "c"), (17...65).contains(u.count) else { return false }
        return u.dropFirst().allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x5f || c == 0x2d
        }
    }
}

/// Transaction ids: `t<node>.<incarnation>.<sequence>`, using only `[A-Za-z0-9._~-]`.
/// The incarnation makes ids unique across restarts of the node.
public struct TxnID: Sendable, Equatable {
    public var node: UInt16
    public var incarnation: UInt64
    public var sequence: UInt64

    public var text: String { "t\(node).\(incarnation).\(sequence)" }

    public init(node: UInt16, incarnation: UInt64, sequence: UInt64) {
        self.node = node
        self.incarnation = incarnation
        self.sequence = sequence
    }

    public init?(text: String) {
        guard text.hasPrefix("t") else { return nil }
        let parts = text.dropFirst().split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let n = UInt16(parts[0]), let i = UInt64(parts[1]), let s = UInt64(parts[2]) else { return nil }
        guard "t\(n).\(i).\(s)" == text else { return nil }
        node = n
        incarnation = i
        sequence = s
    }
}
