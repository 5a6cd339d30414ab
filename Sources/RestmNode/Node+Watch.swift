import RestmCore

extension Node {
    /// Long-poll: answers as soon as some pointer's current version differs from the one
    /// given (nil: absent), with the current value and version of each that differs; an
    /// empty answer at the timeout.
    public func watch(_ expected: [(String, Timestamp?)], timeout: Duration) async throws -> [(String, ReadResult)] {
        for (p, _) in expected { try PointerID.validate(p) }
        guard expected.count <= limits.watchPointersMax else {
            throw RestmError(.tooLarge, "a watch may name at most \(limits.watchPointersMax) pointers")
        }
        try ensureRunning()
        guard let id = watches.register(expected.map(\.0)) else {
            throw RestmError(.overloaded, "too many watchers on this node")
        }
        let deadline = ContinuousClock.now + timeout
        var registered: UInt64? = id
        defer { if let r = registered { watches.unregister(r) } }
        while true {
            let changed = try await changedPointers(expected)
            if !changed.isEmpty { return changed }
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero, let current = registered else { return [] }
            let fired = await watches.wait(current, timeout: remaining)
            registered = nil
            if !fired || state != .running || Task.isCancelled { return [] }
            // Something was written: register again before re-reading, then compare.
            registered = watches.register(expected.map(\.0))
            if registered == nil { return try await changedPointers(expected) }
        }
    }

    /// Pointers whose current version differs from the expected one.
    func changedPointers(_ expected: [(String, Timestamp?)]) async throws -> [(String, ReadResult)] {
        try await ensureCeiling()
        let rv = tick()
        var out: [(String, ReadResult)] = []
        for (p, version) in expected {
            let v = try await readVersion(p, at: rv, txn: "-")
            let current = v?.value == nil ? nil : v?.ts
            if current != version { out.append((p, ReadResult(value: v?.value, version: current))) }
        }
        return out
    }

    /// The current version of each pointer (nil: absent), for event streams to start from.
    public func currentVersions(_ ptrs: [String]) async throws -> [(String, Timestamp?)] {
        for p in ptrs { try PointerID.validate(p) }
        try await ensureCeiling()
        let rv = tick()
        var out: [(String, Timestamp?)] = []
        for p in ptrs {
            let v = try await readVersion(p, at: rv, txn: "-")
            out.append((p, v?.value == nil ? nil : v?.ts))
        }
        return out
    }

    public var watcherCount: Int { watches.count }
}
