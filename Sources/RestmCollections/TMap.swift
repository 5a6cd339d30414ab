import RestmCore

/// A hash map of string keys to JSON values, stored as a hash trie of pointers.
///
/// Each node is a pointer: a leaf holds up to `leafEntriesMax` entries and, unless one entry
/// is larger by itself, up to `leafBytesMax` bytes of JSON (`{"e": [[key, value], …]}`: a
/// pointer's value is bounded, 1 MiB by default); a branch (`{"b": true}`) has 16 children
/// whose ids extend its own by one hex digit of the key's stable hash: `<name>~m` is the root,
/// `<name>~m3` its fourth child, `<name>~m3a` a grandchild. An absent node is an empty leaf, so
/// the map needs no creation and ids are computed, not stored. A leaf that overflows becomes a branch; branches
/// never shrink back (a leaf a removal empties is deleted, but branches stay: a map that once
/// held some 300,000 keys keeps thousands of branch pointers, which `entries` walks even when
/// the map is empty again).
///
/// Conflict footprint: `get`/`contains` read the path from the root to one leaf (about
/// log16(n / 64) + 1 pointers); `put`/`remove` also write that leaf, and one stripe of the size
/// counter when the size changes. Two writers conflict only when their keys share a leaf
/// (about `leafEntriesMax` keys) or pick the same counter stripe; a split also writes the
/// splitting node. `count` reads the counter's stripes; `entries` reads the whole trie.
public struct TMap: Sendable, Hashable {
    public let name: String
    public let leafEntriesMax: Int
    /// A leaf whose JSON would be larger splits too (when it holds more than one entry).
    public let leafBytesMax: Int
    let size: TCounter

    /// Depth at which leaves stop splitting (16 hex digits use all 64 bits of the hash).
    static let depthMax = 16

    public init(_ name: String, leafEntriesMax: Int = 64, leafBytesMax: Int = 256 * 1024) throws {
        self.name = try Names.validate(name)
        guard (2...4096).contains(leafEntriesMax) else { throw CollectionError.limit("a map leaf holds 2–4096 entries") }
        guard leafBytesMax >= 1024 else { throw CollectionError.limit("a map leaf may hold at least 1,024 bytes") }
        self.leafEntriesMax = leafEntriesMax
        self.leafBytesMax = leafBytesMax
        self.size = TCounter(unchecked: name + "~m.size")
    }

    func node(_ path: String) -> String { "\(name)~m\(path)" }

    static let hex = Array("0123456789abcdef")

    static func digit(_ hash: UInt64, _ depth: Int) -> Character { hex[Int((hash >> UInt64(4 * depth)) & 15)] }

    /// The leaf that holds (or would hold) `key`: its path and entries.
    func leaf(_ tx: any Transaction, _ key: String) async throws -> (path: String, entries: [(String, JSONValue)]) {
        let h = stableHash(key)
        var path = ""
        for depth in 0...Self.depthMax {
            let p = node(path)
            guard let v = try await tx.read(p) else { return (path, []) }
            if v["b"] != nil, depth < Self.depthMax {
                path.append(Self.digit(h, depth))
                continue
            }
            return (path, try Self.entries(v, p))
        }
        fatalError("unreachable: the loop returns at depthMax")
    }

    static func entries(_ v: JSONValue, _ p: String) throws -> [(String, JSONValue)] {
        guard let e = v["e"]?.arrayValue else { throw CollectionError.corrupt(ptr: p, why: "neither a leaf nor a branch") }
        return try e.map { pair in
            guard let kv = pair.arrayValue, kv.count == 2, let k = kv[0].stringValue else {
                throw CollectionError.corrupt(ptr: p, why: "an entry is not [key, value]")
            }
            return (k, kv[1])
        }
    }

    static func leafValue(_ entries: [(String, JSONValue)]) -> JSONValue {
        .object([("e", .array(entries.map { .array([.string($0.0), $0.1]) }))])
    }

    public func get(_ tx: any Transaction, _ key: String) async throws -> JSONValue? {
        try await leaf(tx, key).entries.first(where: { codePointEqual($0.0, key) })?.1
    }

    public func contains(_ tx: any Transaction, _ key: String) async throws -> Bool {
        try await get(tx, key) != nil
    }

    /// Sets `key` to `value`; answers the previous value.
    @discardableResult
    public func put(_ tx: any Transaction, _ key: String, _ value: JSONValue) async throws -> JSONValue? {
        var (path, entries) = try await leaf(tx, key)
        if let i = entries.firstIndex(where: { codePointEqual($0.0, key) }) {
            let old = entries[i].1
            entries[i].1 = value
            // A larger value may push the leaf past `leafBytesMax`.
            try await store(tx, path, entries)
            return old
        }
        entries.append((key, value))
        try await store(tx, path, entries)
        try await size.add(tx, 1)
        return nil
    }

    /// Writes a leaf's entries, splitting it into a branch while it is over capacity: more
    /// than `leafEntriesMax` entries, or more than one entry in over `leafBytesMax` bytes.
    func store(_ tx: any Transaction, _ path: String, _ entries: [(String, JSONValue)]) async throws {
        let depth = path.count
        let leaf = Self.leafValue(entries)
        let over = entries.count > leafEntriesMax || (entries.count > 1 && leaf.compactText.utf8.count > leafBytesMax)
        guard over, depth < Self.depthMax else {
            try await tx.write(node(path), leaf)
            return
        }
        try await tx.write(node(path), .object([("b", .bool(true))]))
        var parts: [Character: [(String, JSONValue)]] = [:]
        for e in entries { parts[Self.digit(stableHash(e.0), depth), default: []].append(e) }
        for (d, part) in parts { try await store(tx, path + String(d), part) }
    }

    /// Removes `key`; answers the value it had.
    @discardableResult
    public func remove(_ tx: any Transaction, _ key: String) async throws -> JSONValue? {
        var (path, entries) = try await leaf(tx, key)
        guard let i = entries.firstIndex(where: { codePointEqual($0.0, key) }) else { return nil }
        let old = entries.remove(at: i).1
        if entries.isEmpty {
            try await tx.delete(node(path))
        } else {
            try await tx.write(node(path), Self.leafValue(entries))
        }
        try await size.add(tx, -1)
        return old
    }

    public func count(_ tx: any Transaction) async throws -> Int {
        try await size.value(tx)
    }

    /// Every entry, in trie order (stable, not sorted), reading the trie a level at a time.
    public func entries(_ tx: any Transaction) async throws -> [(String, JSONValue)] {
        var out: [(String, JSONValue)] = []
        var level = [""]
        while !level.isEmpty {
            let ptrs = level.map(node)
            let values = try await tx.read(ptrs)
            var next: [String] = []
            for path in level {
                let p = node(path)
                guard let v = values[p] else { continue }
                if v["b"] != nil, path.count < Self.depthMax {
                    for d in Self.hex { next.append(path + String(d)) }
                } else {
                    out += try Self.entries(v, p)
                }
            }
            level = next
        }
        return out
    }
}

/// A set of strings: a `TMap` whose values are `true`, with the same conflict footprint.
public struct TSet: Sendable, Hashable {
    public let map: TMap

    public init(_ name: String, leafEntriesMax: Int = 64) throws {
        self.map = try TMap(name, leafEntriesMax: leafEntriesMax)
    }

    public var name: String { map.name }

    /// Adds `element`; answers whether it was new.
    @discardableResult
    public func insert(_ tx: any Transaction, _ element: String) async throws -> Bool {
        try await map.put(tx, element, .bool(true)) == nil
    }

    /// Removes `element`; answers whether it was there.
    @discardableResult
    public func remove(_ tx: any Transaction, _ element: String) async throws -> Bool {
        try await map.remove(tx, element) != nil
    }

    public func contains(_ tx: any Transaction, _ element: String) async throws -> Bool {
        try await map.contains(tx, element)
    }

    public func count(_ tx: any Transaction) async throws -> Int {
        try await map.count(tx)
    }

    public func elements(_ tx: any Transaction) async throws -> [String] {
        try await map.entries(tx).map(\.0)
    }
}
