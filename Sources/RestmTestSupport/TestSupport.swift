import Foundation
import RestmCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A physical clock that moves only when told to: engine tests are deterministic.
public final class ManualClock: PhysicalClock {
    private let millis: Atomic<UInt64>

    public init(millis: UInt64 = 1_700_000_000_000) {
        self.millis = Atomic(millis)
    }

    public func nowMillis() -> UInt64 { millis.load(ordering: .relaxed) }

    public func advance(_ ms: UInt64) {
        millis.wrappingAdd(ms, ordering: .relaxed)
    }
}

/// SplitMix64: a small seeded generator, so a failing randomized test replays from its seed.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    public private(set) var state: UInt64
    public let seed: UInt64

    public init(seed: UInt64) {
        self.seed = seed
        self.state = seed
    }

    /// The seed from `RESTM_SEED` if set, else a fresh one. Tests print it on failure.
    public static func fromEnvironment() -> SeededRandom {
        if let s = getenv("RESTM_SEED").flatMap({ UInt64(String(cString: $0)) }) { return SeededRandom(seed: s) }
        return SeededRandom(seed: UInt64.random(in: 1...UInt64.max))
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A fresh temporary directory, removed by `remove()`.
public struct TemporaryDirectory: Sendable {
    public let path: String

    public init(prefix: String = "restm-test") {
        var template = Array("/tmp/\(prefix).XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buf in mkdtemp(buf.baseAddress!) }
        precondition(made != nil, "mkdtemp failed")
        path = String(cString: template)
    }

    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// A shared counter for concurrent tests.
public final class Counter: Sendable {
    private let value = Atomic<Int>(0)
    public init() {}
    public func add(_ n: Int = 1) { value.wrappingAdd(n, ordering: .relaxed) }
    public var count: Int { value.load(ordering: .relaxed) }
}
