/// One committed version of a pointer. `value` is compact JSON text; nil marks a delete.
public struct Version: Sendable, Equatable {
    public var ts: Timestamp
    public var txn: String
    public var value: String?

    public init(ts: Timestamp, txn: String, value: String?) {
        self.ts = ts
        self.txn = txn
        self.value = value
    }
}

/// A write intent: a transaction in prepare proposes `value` at `ts` or later.
public struct Intent: Sendable, Equatable {
    public var txn: String
    public var ts: Timestamp
    public var value: String?
    public var leaseExpiryMs: UInt64
}

/// Why a transaction could not commit; each is a retryable conflict.
public enum ConflictCause: String, Sendable, CaseIterable {
    /// Another transaction holds an intent on a pointer this one writes.
    case writeIntent = "write_intent"
    /// A pointer this one read and writes got a newer version (first committer wins).
    case writeNewer = "write_newer"
    /// A pointer this one only read got a newer version before validation.
    case readNewer = "read_newer"
    /// A pointer this one only read has a foreign intent at or below the validation bound.
    case readIntent = "read_intent"
    /// Refreshing reads up to the pushed commit timestamp failed.
    case refresh = "refresh"
    /// A read waited too long for a lower intent to resolve.
    case waitTimeout = "wait_timeout"
    /// A pointer left memory between the steps of a commit.
    case evicted = "evicted"
}

/// A pointer write handed to prepare: `read` says whether the transaction also read it.
public struct PreparedWrite: Sendable {
    public var ptr: String
    public var value: String?
    public var read: Bool

    public init(ptr: String, value: String?, read: Bool) {
        self.ptr = ptr
        self.value = value
        self.read = read
    }
}

/// The state machine of one shard: version chains, intents, the timestamp cache and its
/// floor. A pure value with no I/O and no clock of its own; the node drives it under a lock,
/// one call per atomic step (DESIGN.md, Transactions). Steps that need the store answer
/// with what they need (`notResident`, `olderThanMemory`), and the caller retries.
///
/// Invariants (checked by `checkInvariants()` in tests):
/// - a version chain is newest first and strictly decreasing in timestamp;
/// - an entry that is not `complete` holds at least one version;
/// - an intent's timestamp is above the newest version of its pointer;
/// - the timestamp cache never answers below `floor`.
public struct ShardState: Sendable {
    struct Entry: Sendable {
        /// Newest first.
        private(set) var versions: [Version]
        /// True when `versions` is the pointer's whole history (nothing older in the store).
        var complete: Bool
        var intent: Intent?
        var waiters: [UInt64] = []
        /// Bytes this entry holds in memory, for the shard's byte budget: values and a fixed
        /// overhead per version. Kept with `versions` (summing them on every commit cost
        /// more than the commit's other steps together).
        private(set) var bytes: Int

        init(versions: [Version], complete: Bool) {
            self.versions = versions
            self.complete = complete
            self.bytes = versions.reduce(0) { $0 + Self.cost($1) }
        }

        static func cost(_ v: Version) -> Int { 64 + (v.value?.utf8.count ?? 0) }

        var pinned: Bool { intent != nil || !waiters.isEmpty }

        /// The intent becomes the newest version at `ct`; at most `versionsMax` versions
        /// stay, and only the newest when they hold more than `bytesMax` (older ones are read
        /// from the store), so one pointer cannot hold an eighth of the budget. Answers the
        /// change of `bytes` and the waiters to wake.
        mutating func makeIntentVersion(ct: Timestamp, value: String?, txn: String, versionsMax: Int, bytesMax: Int) -> (bytesDelta: Int, woken: [UInt64]) {
            precondition(versions.first.map { $0.ts < ct } ?? true, "commit timestamp below the newest version")
            let before = bytes
            intent = nil
            let newest = Version(ts: ct, txn: txn, value: value)
            versions.insert(newest, at: 0)
            bytes += Self.cost(newest)
            if versions.count > versionsMax {
                dropVersions(after: versionsMax)
                complete = false
            }
            if versions.count > 1, bytes > bytesMax {
                dropVersions(after: 1)
                complete = false
            }
            let after = bytes
            defer { waiters = [] }
            return (after - before, waiters)
        }

        /// Keeps the newest `n` versions.
        private mutating func dropVersions(after n: Int) {
            for v in versions[n...] { bytes -= Self.cost(v) }
            versions.removeLast(versions.count - n)
        }
    }

    public let node: UInt16
    public let pointersMax: Int
    public let versionsPerPointerMax: Int
    public let timestampCacheMax: Int
    public let bytesMax: Int

    var entries: [String: Entry] = [:]
    var readTimestamps: [String: Timestamp] = [:]
    /// Every pointer's read timestamp is at least this (evicted cache entries and, after a
    /// restart, the durable ceiling).
    public private(set) var floor: Timestamp
    /// Bumped on every eviction, so a load that raced one can tell.
    public private(set) var generation: UInt64 = 0
    public private(set) var waiterCount = 0
    public private(set) var intentCount = 0
    /// Sum of the resident entries' `bytes`.
    public private(set) var residentBytes = 0

    public init(node: UInt16, floor: Timestamp = .zero, limits: Limits = Limits()) {
        self.node = node
        self.floor = floor
        self.pointersMax = limits.pointersInMemoryPerShardMax
        self.versionsPerPointerMax = max(1, limits.versionsInMemoryPerPointerMax)
        self.timestampCacheMax = limits.timestampCacheEntriesPerShardMax
        self.bytesMax = limits.valueBytesInMemoryPerShardMax
    }

    public var residentCount: Int { entries.count }
    public var timestampCacheCount: Int { readTimestamps.count }
    public func isResident(_ ptr: String) -> Bool { entries[ptr] != nil }

    // MARK: timestamp cache

    public func readTimestamp(of ptr: String) -> Timestamp {
        readTimestamps[ptr].map { max($0, floor) } ?? floor
    }

    mutating func raiseReadTimestamp(_ ptr: String, to ts: Timestamp) {
        guard ts > floor else { return }
        if let old = readTimestamps[ptr] {
            if ts > old { readTimestamps[ptr] = ts }
        } else {
            readTimestamps[ptr] = ts
            if readTimestamps.count > timestampCacheMax { evictTimestamps() }
        }
    }

    /// Folds about an eighth of the cache into the floor. The floor only rises, so the
    /// cache never forgets downward.
    mutating func evictTimestamps() {
        let n = max(1, readTimestamps.count / 8)
        var victims: [String] = []
        victims.reserveCapacity(n)
        for (k, v) in readTimestamps {
            if v > floor { floor = v }
            victims.append(k)
            if victims.count >= n { break }
        }
        for k in victims { readTimestamps.removeValue(forKey: k) }
    }

    /// Raises the floor (e.g. to the durable ceiling after a restart).
    public mutating func raiseFloor(to ts: Timestamp) {
        if ts > floor { floor = ts }
    }

    // MARK: residency

    /// Installs what the store holds for `ptr` (its newest version, nil if none), loaded
    /// while `generation` was `generationAtLoad`. Answers false when the load may be stale
    /// (an eviction happened meanwhile): load again. An entry already resident wins: it is
    /// at least as new as anything a concurrent load saw. Installing never evicts, so a
    /// caller can install and use pointers in one step; it calls `evictIfNeeded` after.
    public mutating func install(_ ptr: String, newest: Version?, generationAtLoad: UInt64) -> Bool {
        if entries[ptr] != nil { return true }
        guard generationAtLoad == generation else { return false }
        let e = newest.map { Entry(versions: [$0], complete: false) } ?? Entry(versions: [], complete: true)
        residentBytes += e.bytes
        entries[ptr] = e
        return true
    }

    /// Evicts cold pointers when more than the limit are resident, or their values take more
    /// than the byte budget.
    public mutating func evictIfNeeded() {
        if entries.count > pointersMax { evictEntries() }
        // Large values: evict down to three quarters of the budget, so that evictions (and
        // the reloads they cause) come in rare batches; bounded work per step. Pinned entries
        // stay, so a budget exceeded by pinned entries alone is tolerated, not churned.
        guard residentBytes > bytesMax else { return }
        var rounds = 0
        while residentBytes > bytesMax / 4 * 3, rounds < 8, evictEntries() { rounds += 1 }
    }

    /// Evicts about an eighth of the entries that hold no intent and no waiter; false when
    /// none could go.
    @discardableResult
    mutating func evictEntries() -> Bool {
        let n = max(1, entries.count / 8)
        var victims: [String] = []
        victims.reserveCapacity(n)
        for (k, e) in entries where !e.pinned {
            victims.append(k)
            if victims.count >= n { break }
        }
        guard !victims.isEmpty else { return false }
        for k in victims {
            if let e = entries.removeValue(forKey: k) { residentBytes -= e.bytes }
        }
        generation &+= 1
        return true
    }

    // MARK: reads

    public enum ReadOutcome: Sendable, Equatable {
        /// The newest version at or below the read timestamp (nil: the pointer did not exist).
        case found(Version?)
        /// A lower intent of another transaction must resolve first; register a waiter.
        case wait(owner: String, leaseExpired: Bool)
        /// Load the pointer from the store, install it, and step again.
        case notResident
        /// The read timestamp is recorded; the answer is older than memory holds: ask the
        /// store for the newest version at or below the read timestamp.
        case olderThanMemory
    }

    /// One atomic read step of `ptr` at `rv` for transaction `txn` (DESIGN.md step 2).
    public mutating func read(_ ptr: String, at rv: Timestamp, txn: String, nowMillis: UInt64) -> ReadOutcome {
        guard let e = entries[ptr] else { return .notResident }
        if let i = e.intent, i.txn != txn, i.ts <= rv {
            return .wait(owner: i.txn, leaseExpired: i.leaseExpiryMs <= nowMillis)
        }
        raiseReadTimestamp(ptr, to: rv)
        for v in e.versions where v.ts <= rv {
            return .found(v)
        }
        return e.complete ? .found(nil) : .olderThanMemory
    }

    /// Registers a waiter on `ptr` (the pointer must be resident: it holds an intent).
    public mutating func addWaiter(_ ptr: String, id: UInt64) {
        guard entries[ptr] != nil else { return }
        entries[ptr]!.waiters.append(id)
        waiterCount += 1
    }

    /// Removes a waiter that gave up; false when it was already woken.
    public mutating func removeWaiter(_ ptr: String, id: UInt64) -> Bool {
        guard let idx = entries[ptr]?.waiters.firstIndex(of: id) else { return false }
        entries[ptr]!.waiters.remove(at: idx)
        waiterCount -= 1
        return true
    }

    public func intent(on ptr: String) -> Intent? { entries[ptr]?.intent }

    // MARK: prepare, refresh, apply, abort

    public enum PrepareOutcome: Sendable, Equatable {
        /// Intents placed and reads validated up to `bound`; `proposal` is the largest
        /// timestamp proposed here (at least `bound`).
        case prepared(proposal: Timestamp, bound: Timestamp)
        case conflict(ConflictCause, ptr: String)
        /// Load these pointers and prepare again; nothing was changed.
        case notResident([String])
    }

    /// One atomic prepare step (DESIGN.md step 4). `bound` is `max(rv, clock)`. Prepare never
    /// waits: a foreign intent on a written pointer is a conflict. On any answer but
    /// `prepared`, nothing was changed.
    public mutating func prepare(
        txn: String, rv: Timestamp, reads: [String], writes: [PreparedWrite],
        bound v: Timestamp, leaseExpiryMs: UInt64
    ) -> PrepareOutcome {
        var missing: [String] = []
        for p in reads where entries[p] == nil { missing.append(p) }
        for w in writes where entries[w.ptr] == nil { missing.append(w.ptr) }
        if !missing.isEmpty { return .notResident(missing) }

        var proposals: [Timestamp] = []
        proposals.reserveCapacity(writes.count)
        var largest = v
        for w in writes {
            let e = entries[w.ptr]!
            if let i = e.intent, i.txn != txn { return .conflict(.writeIntent, ptr: w.ptr) }
            let newest = e.versions.first
            if w.read, let n = newest, n.ts > rv { return .conflict(.writeNewer, ptr: w.ptr) }
            var p = max(v, readTimestamp(of: w.ptr).successor(node: node))
            if let n = newest { p = max(p, n.ts.successor(node: node)) }
            proposals.append(p)
            largest = max(largest, p)
        }
        for r in reads {
            let e = entries[r]!
            if let n = e.versions.first, n.ts > rv { return .conflict(.readNewer, ptr: r) }
            if let i = e.intent, i.txn != txn, i.ts <= v { return .conflict(.readIntent, ptr: r) }
        }
        for (w, p) in zip(writes, proposals) {
            if entries[w.ptr]!.intent == nil { intentCount += 1 }
            entries[w.ptr]!.intent = Intent(txn: txn, ts: p, value: w.value, leaseExpiryMs: leaseExpiryMs)
        }
        for r in reads { raiseReadTimestamp(r, to: v) }
        return .prepared(proposal: largest, bound: v)
    }

    /// Read refresh (DESIGN.md step 5): the pointers only read must show no version newer
    /// than `rv` and no foreign intent at or below `ct`; then their read timestamps rise to
    /// `ct`. Answers the cause on failure (nothing changed).
    public mutating func refresh(txn: String, rv: Timestamp, reads: [String], to ct: Timestamp) -> ConflictCause? {
        for r in reads {
            guard let e = entries[r] else { return .evicted }
            if let n = e.versions.first, n.ts > rv { return .refresh }
            if let i = e.intent, i.txn != txn, i.ts <= ct { return .refresh }
        }
        for r in reads { raiseReadTimestamp(r, to: ct) }
        return nil
    }

    /// Turns `txn`'s intents on `ptrs` into versions at `ct` (DESIGN.md step 7), after the
    /// commit is durable. Pointers without its intent are skipped. Answers the waiters to wake.
    public mutating func apply(txn: String, ct: Timestamp, ptrs: [String]) -> [UInt64] {
        var wake: [UInt64] = []
        for p in ptrs {
            // A reader that resolved an orphaned intent through the store may have applied
            // this one already: applying is idempotent per pointer.
            // In place (through the values view): a copy of the entry would copy its
            // versions on the first change.
            guard let at = entries.index(forKey: p), let i = entries.values[at].intent, i.txn == txn else { continue }
            let (delta, woken) = entries.values[at].makeIntentVersion(
                ct: ct, value: i.value, txn: txn, versionsMax: versionsPerPointerMax, bytesMax: bytesMax / 8)
            intentCount -= 1
            residentBytes += delta
            wake.append(contentsOf: woken)
            waiterCount -= woken.count
        }
        return wake
    }

    /// Drops `txn`'s intents on `ptrs` (those it holds). Answers the waiters to wake.
    public mutating func abort(txn: String, ptrs: [String]) -> [UInt64] {
        var wake: [UInt64] = []
        for p in ptrs {
            guard let at = entries.index(forKey: p), let i = entries.values[at].intent, i.txn == txn else { continue }
            entries.values[at].intent = nil
            intentCount -= 1
            wake.append(contentsOf: entries.values[at].waiters)
            waiterCount -= entries.values[at].waiters.count
            entries.values[at].waiters = []
        }
        return wake
    }

    /// Asserts the invariants above; for tests.
    public func checkInvariants() {
        var intents = 0
        var waiters = 0
        for (p, e) in entries {
            for (a, b) in zip(e.versions, e.versions.dropFirst()) {
                precondition(a.ts > b.ts, "chain of \(p) not newest first")
            }
            precondition(e.complete || !e.versions.isEmpty, "incomplete empty chain for \(p)")
            if let i = e.intent {
                intents += 1
                if let n = e.versions.first { precondition(i.ts > n.ts, "intent of \(p) not above its newest version") }
            }
            waiters += e.waiters.count
            precondition(e.bytes == e.versions.reduce(0) { $0 + Entry.cost($1) }, "bytes of \(p) drifted")
        }
        precondition(intents == intentCount, "intent count drifted")
        precondition(entries.values.reduce(0) { $0 + $1.bytes } == residentBytes, "resident bytes drifted")
        precondition(waiters == waiterCount, "waiter count drifted")
    }
}
