import RestmCore

/// An ordered map of string keys (ascending by Unicode code points) to JSON values: a B+tree
/// whose nodes are pointers.
///
/// The root is always `<name>~r` (absent: the empty tree); other nodes get random ids
/// `<name>~n…`. A leaf is `{"k": [keys], "v": [values], "next": id or null}` and the leaves
/// form a chain in key order; an internal node is `{"k": [separators], "c": [children]}`, child
/// `i` holding the keys in `[k[i-1], k[i])`. Leaves split past `leafEntriesMax` entries or, when
/// they hold more than one, `leafBytesMax` bytes of JSON (a pointer's value is bounded, 1 MiB
/// by default); internal nodes split past `childrenMax`; a split root moves its content into
/// two new nodes, so the root id never changes. Removal does not rebalance: leaves may become
/// empty and stay in the chain.
///
/// Conflict footprint: `get` reads the path from the root to one leaf (log_B(n) + 1
/// pointers, B about half of `leafEntriesMax`); `put`/`remove` also write that leaf and one
/// stripe of the size counter when the size changes, so writers conflict only when their keys
/// share a leaf; a split also writes the parent (and, rarely, nodes up to the root). A range
/// scan reads its path and the leaves it crosses, so it conflicts with writes into that range
/// only (phantoms included: an insert into a scanned leaf is a change of that leaf).
public struct TSortedMap: Sendable, Hashable {
    public let name: String
    public let leafEntriesMax: Int
    /// A leaf whose JSON would be larger splits too (when it holds more than one entry).
    public let leafBytesMax: Int
    public let childrenMax: Int
    let size: TCounter

    public init(_ name: String, leafEntriesMax: Int = 64, childrenMax: Int = 64, leafBytesMax: Int = 256 * 1024) throws {
        self.name = try Names.validate(name)
        guard (3...4096).contains(leafEntriesMax), (3...4096).contains(childrenMax) else {
            throw CollectionError.limit("a sorted map node holds 3–4096 entries or children")
        }
        guard leafBytesMax >= 1024 else { throw CollectionError.limit("a sorted map leaf may hold at least 1,024 bytes") }
        self.leafEntriesMax = leafEntriesMax
        self.leafBytesMax = leafBytesMax
        self.childrenMax = childrenMax
        self.size = TCounter(unchecked: name + "~r.size")
    }

    var root: String { "\(name)~r" }

    func newNode() -> String { PointerID.random(prefix: "\(name)~n") }

    enum Node {
        case leaf(keys: [String], values: [JSONValue], next: String?)
        case inner(keys: [String], children: [String])

        var value: JSONValue {
            switch self {
            case .leaf(let k, let v, let next):
                return .object([("k", .array(k.map { .string($0) })), ("v", .array(v)), ("next", next.map { .string($0) } ?? .null)])
            case .inner(let k, let c):
                return .object([("k", .array(k.map { .string($0) })), ("c", .array(c.map { .string($0) }))])
            }
        }
    }

    func load(_ tx: any Transaction, _ id: String) async throws -> Node {
        guard let v = try await tx.read(id) else {
            guard id == root else { throw CollectionError.corrupt(ptr: id, why: "a child node is missing") }
            return .leaf(keys: [], values: [], next: nil)
        }
        return try Self.decode(v, id)
    }

    static func decode(_ v: JSONValue, _ id: String) throws -> Node {
        guard let ks = v["k"]?.arrayValue else { throw CollectionError.corrupt(ptr: id, why: "no keys") }
        let keys = try ks.map { k -> String in
            guard let s = k.stringValue else { throw CollectionError.corrupt(ptr: id, why: "a key is not a string") }
            return s
        }
        if let cs = v["c"]?.arrayValue {
            let children = try cs.map { c -> String in
                guard let s = c.stringValue else { throw CollectionError.corrupt(ptr: id, why: "a child is not an id") }
                return s
            }
            guard children.count == keys.count + 1 else { throw CollectionError.corrupt(ptr: id, why: "children do not match separators") }
            return .inner(keys: keys, children: children)
        }
        guard let values = v["v"]?.arrayValue, values.count == keys.count else {
            throw CollectionError.corrupt(ptr: id, why: "values do not match keys")
        }
        return .leaf(keys: keys, values: values, next: v["next"]?.stringValue)
    }

    /// Index of the first key not less than `key`.
    static func lowerBound(_ keys: [String], _ key: String) -> Int {
        var lo = 0, hi = keys.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if codePointLess(keys[mid], key) { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// Child index for `key` under separators `keys`: the number of separators ≤ key.
    static func childIndex(_ keys: [String], _ key: String) -> Int {
        var lo = 0, hi = keys.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if codePointLess(key, keys[mid]) { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }

    /// The path from the root to the leaf for `key` (nil: the leftmost leaf).
    func descend(_ tx: any Transaction, _ key: String?) async throws -> [(id: String, node: Node, slot: Int)] {
        var path: [(id: String, node: Node, slot: Int)] = []
        var id = root
        for _ in 0..<64 {
            let n = try await load(tx, id)
            switch n {
            case .leaf:
                path.append((id, n, 0))
                return path
            case .inner(let keys, let children):
                let i = key.map { Self.childIndex(keys, $0) } ?? 0
                path.append((id, n, i))
                id = children[i]
            }
        }
        throw CollectionError.corrupt(ptr: root, why: "deeper than 64 levels")
    }

    public func get(_ tx: any Transaction, _ key: String) async throws -> JSONValue? {
        guard case .leaf(let keys, let values, _) = try await descend(tx, key).last!.node else { return nil }
        let i = Self.lowerBound(keys, key)
        return i < keys.count && codePointEqual(keys[i], key) ? values[i] : nil
    }

    public func contains(_ tx: any Transaction, _ key: String) async throws -> Bool {
        try await get(tx, key) != nil
    }

    /// Sets `key` to `value`; answers the previous value.
    @discardableResult
    public func put(_ tx: any Transaction, _ key: String, _ value: JSONValue) async throws -> JSONValue? {
        var path = try await descend(tx, key)
        var leaf = path.removeLast()
        guard case .leaf(var keys, var values, var next) = leaf.node else { fatalError("descend ends at a leaf") }
        let i = Self.lowerBound(keys, key)
        var old: JSONValue?
        if i < keys.count, codePointEqual(keys[i], key) {
            old = values[i]
            values[i] = value
        } else {
            keys.insert(key, at: i)
            values.insert(value, at: i)
            try await size.add(tx, 1)
        }
        // Split while over capacity. Before this put every leaf of several entries was within
        // `leafBytesMax`, so a part that is still over holds `key`: follow it down again.
        while true {
            let node = Node.leaf(keys: keys, values: values, next: next)
            let bytes = keys.count > 1 ? node.value.compactText.utf8.count : 0
            guard keys.count > leafEntriesMax || bytes > leafBytesMax else {
                try await tx.write(leaf.id, node.value)
                return old
            }
            // The right part gets a new id and joins the chain.
            let mid = keys.count > leafEntriesMax ? keys.count / 2 : Self.byteMidpoint(keys, values)
            let rightID = newNode()
            let right = Node.leaf(keys: Array(keys[mid...]), values: Array(values[mid...]), next: next)
            let left = Node.leaf(keys: Array(keys[..<mid]), values: Array(values[..<mid]), next: rightID)
            try await tx.write(rightID, right.value)
            try await replace(tx, path: path, id: leaf.id, left: left, separator: keys[mid], rightID: rightID)
            path = try await descend(tx, key)
            leaf = path.removeLast()
            guard case .leaf(let k, let v, let n) = leaf.node else { fatalError("descend ends at a leaf") }
            (keys, values, next) = (k, v, n)
        }
    }

    /// Where to cut a leaf that is too large: the cut (1..<count) that leaves the larger part
    /// smallest, by the size of its entries.
    static func byteMidpoint(_ keys: [String], _ values: [JSONValue]) -> Int {
        let sizes = zip(keys, values).map { $0.utf8.count + $1.compactText.utf8.count + 8 }
        let total = sizes.reduce(0, +)
        var best = 1, bestLarger = Int.max, left = 0
        for cut in 1..<sizes.count {
            left += sizes[cut - 1]
            let larger = max(left, total - left)
            if larger < bestLarger { (best, bestLarger) = (cut, larger) }
        }
        return best
    }

    /// Writes `left` where node `id` was and inserts (`separator`, `rightID`) into its parent,
    /// splitting upwards as needed. A root that splits moves into a new node.
    func replace(_ tx: any Transaction, path: [(id: String, node: Node, slot: Int)], id: String, left: Node, separator: String, rightID: String) async throws {
        guard let parent = path.last else {
            // `id` is the root: its left half moves to a new node, the root points at both.
            let leftID = newNode()
            try await tx.write(leftID, left.value)
            try await tx.write(root, Node.inner(keys: [separator], children: [leftID, rightID]).value)
            return
        }
        try await tx.write(id, left.value)
        guard case .inner(var keys, var children) = parent.node else { fatalError("parents are inner nodes") }
        keys.insert(separator, at: parent.slot)
        children.insert(rightID, at: parent.slot + 1)
        guard children.count > childrenMax else {
            try await tx.write(parent.id, Node.inner(keys: keys, children: children).value)
            return
        }
        let mid = keys.count / 2
        let up = keys[mid]
        let newRight = newNode()
        try await tx.write(newRight, Node.inner(keys: Array(keys[(mid + 1)...]), children: Array(children[(mid + 1)...])).value)
        let newLeft = Node.inner(keys: Array(keys[..<mid]), children: Array(children[...mid]))
        try await replace(tx, path: Array(path.dropLast()), id: parent.id, left: newLeft, separator: up, rightID: newRight)
    }

    /// Removes `key`; answers the value it had. Leaves are not merged.
    @discardableResult
    public func remove(_ tx: any Transaction, _ key: String) async throws -> JSONValue? {
        let leaf = try await descend(tx, key).last!
        guard case .leaf(var keys, var values, let next) = leaf.node else { return nil }
        let i = Self.lowerBound(keys, key)
        guard i < keys.count, codePointEqual(keys[i], key) else { return nil }
        keys.remove(at: i)
        let old = values.remove(at: i)
        try await tx.write(leaf.id, Node.leaf(keys: keys, values: values, next: next).value)
        try await size.add(tx, -1)
        return old
    }

    public func count(_ tx: any Transaction) async throws -> Int {
        try await size.value(tx)
    }

    /// Entries with `from` ≤ key < `to` (nil: unbounded) in ascending order, at most `limit`.
    public func range(_ tx: any Transaction, from: String? = nil, to: String? = nil, limit: Int = .max) async throws -> [(String, JSONValue)] {
        var out: [(String, JSONValue)] = []
        guard limit > 0 else { return out }
        var node = try await descend(tx, from).last!.node
        var hops = 0
        while true {
            guard case .leaf(let keys, let values, let next) = node else { fatalError("the chain holds leaves") }
            var i = from.map { Self.lowerBound(keys, $0) } ?? 0
            while i < keys.count {
                if let to, !codePointLess(keys[i], to) { return out }
                out.append((keys[i], values[i]))
                if out.count >= limit { return out }
                i += 1
            }
            guard let next else { return out }
            hops += 1
            guard hops < 1_000_000 else { throw CollectionError.corrupt(ptr: root, why: "the leaf chain does not end") }
            node = try await load(tx, next)
        }
    }

    /// The smallest key and its value.
    public func first(_ tx: any Transaction) async throws -> (String, JSONValue)? {
        try await range(tx, limit: 1).first
    }
}
