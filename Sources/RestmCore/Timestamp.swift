/// A hybrid-logical-clock timestamp: 48 bits of wall-clock milliseconds and 16 logical bits
/// in `raw`, with the issuing node's id as the tie-breaker, so timestamps are unique and
/// totally ordered without an oracle.
///
/// Its text form (the opaque "version" of API.md) is 20 lowercase hex digits: 16 for `raw`,
/// 4 for `node`. Text order equals timestamp order, which the store relies on.
///
///     let ts = Timestamp(wallMillis: 1_700_000_000_000, logical: 3, node: 1)
///     Timestamp(text: ts.text) == ts   // true
public struct Timestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var raw: UInt64
    public var node: UInt16

    public init(raw: UInt64, node: UInt16) {
        self.raw = raw
        self.node = node
    }

    public init(wallMillis: UInt64, logical: UInt16 = 0, node: UInt16) {
        self.raw = (wallMillis << 16) | UInt64(logical)
        self.node = node
    }

    public static let zero = Timestamp(raw: 0, node: 0)

    public var wallMillis: UInt64 { raw >> 16 }
    public var logical: UInt16 { UInt16(truncatingIfNeeded: raw) }

    /// The smallest timestamp greater than this one issued by `node`. Overflow of the
    /// logical bits carries into the milliseconds.
    public func successor(node: UInt16) -> Timestamp {
        Timestamp(raw: raw &+ 1, node: node)
    }

    /// This timestamp moved `ms` milliseconds later (logical bits kept).
    public func adding(millis ms: UInt64) -> Timestamp {
        Timestamp(raw: raw &+ (ms << 16), node: node)
    }

    public static func < (a: Timestamp, b: Timestamp) -> Bool {
        a.raw != b.raw ? a.raw < b.raw : a.node < b.node
    }

    public var text: String {
        var out = [UInt8](repeating: 0, count: 20)
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var r = raw
        for i in stride(from: 15, through: 0, by: -1) {
            out[i] = digits[Int(r & 0xf)]
            r >>= 4
        }
        var n = node
        for i in stride(from: 19, through: 16, by: -1) {
            out[i] = digits[Int(n & 0xf)]
            n >>= 4
        }
        return String(decoding: out, as: UTF8.self)
    }

    public var description: String { text }

    /// Parses the 20-hex-digit text form; nil for anything else.
    public init?(text: some StringProtocol) {
        let bytes = Array(text.utf8)
        guard bytes.count == 20 else { return nil }
        var r: UInt64 = 0
        var n: UInt16 = 0
        for (i, c) in bytes.enumerated() {
            let d: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
            default: return nil
            }
            if i < 16 { r = (r << 4) | UInt64(d) } else { n = (n << 4) | UInt16(d) }
        }
        self.raw = r
        self.node = n
    }
}

/// Physical time source, injected so the engine is deterministic under test.
public protocol PhysicalClock: Sendable {
    /// Milliseconds since the Unix epoch.
    func nowMillis() -> UInt64
}

/// The hybrid logical clock's state (a pure value; the node guards it with a lock).
///
/// Update rule (DESIGN.md, Timestamps): `l = max(l, received, physical)`, then tick.
public struct HybridLogicalClock: Sendable {
    public private(set) var last: Timestamp
    public let node: UInt16

    public init(node: UInt16, start: Timestamp = .zero) {
        self.node = node
        self.last = Timestamp(raw: start.raw, node: node)
    }

    /// A fresh timestamp, strictly greater than every one issued or observed before.
    public mutating func tick(physicalMillis: UInt64) -> Timestamp {
        let phys = Timestamp(wallMillis: physicalMillis, node: node)
        if phys.raw > last.raw {
            last = phys
        } else {
            last = last.successor(node: node)
        }
        return last
    }

    /// Absorbs a timestamp seen elsewhere (a peer, a client token, a commit): the clock
    /// will never again issue anything at or below it.
    public mutating func observe(_ ts: Timestamp) {
        if ts.raw > last.raw || (ts.raw == last.raw && ts.node > last.node) {
            last = Timestamp(raw: ts.raw, node: node)
            if ts.node > node { last = last.successor(node: node) }
        }
    }

    /// The current value without ticking.
    public var current: Timestamp { last }
}
