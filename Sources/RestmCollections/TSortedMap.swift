import RestmCore

/// An ordered map of string keys (ascending by Unicode code points) to JSON values: a B+tree
/// whose nodes are pointers.
///
/// The root is always `<name>~r` (absent: the empty tree); other nodes get random ids
/// `<name>~n…`. A leaf is `{"k": [keys], "v": [values], "next": id or null}` and the leaves
/// form a chain in key order; an internal node is `{"k": [separators], "c": [children]}`, child
/// `i` holding the keys in `[k[i-1], k[i])`. Leaves split past `leafEntriesMax` entries or, when
/// they hold more than one, `leafBytesMax` bytes of JSON (a pointer's value is bounded, 1 MiB
/// by default); internal nodes split past `childrenMax` children or, when they hold three
/// separators or more, `leafBytesMax` bytes (keys are at most `keyBytesMax`, 64 KiB, so that
/// a node stays well below a pointer's limit); a split root moves its content into two new
/// nodes, so the root id never changes. Removal does not merge nodes, but a leaf it empties
/// leaves the tree: its predecessor in the chain skips it, its parent drops it (a parent left
/// with no child goes too, up to the root), and its pointer is deleted; a root left with one
/// child takes that child's place. A map drained by removals (a queue) therefore keeps no
/// empty leaves for scans to walk, and an emptied map holds no nodes at all.
///
/// Conflict footprint: `get` reads the path from the root to one leaf (log_B(n) + 1
/// pointers, B about half of `leafEntriesMax`); `put`/`remove` also write that leaf and one
/// stripe of the size counter when the size changes, so writers conflict only when their keys
/// share a leaf; a split also writes the parent (and, rarely, nodes up to the root); a removal
/// that empties a leaf also reads the path to the leaf before it and writes that leaf and the
/// parent. A range scan reads its path and the leaves it crosses, so it conflicts with writes
/// into that range only (phantoms included: an insert into a scanned leaf is a change of that
/// leaf).
public struct TSortedMap: Sendable, Hashable {
    public let name: String
    public let leafEntriesMax: Int
    /// A leaf whose JSON would be larger splits too (when it holds more than one entry).
    public let leafBytesMax: Int
    public let childrenMax: Int
    let size: TCounter

    /// The longest key, in UTF-8 bytes: keys are copied into internal nodes as separators,
    /// which split by bytes only once they hold three, so a key must fit several times in one.
    public static let keyBytesMax = 64 * 1024

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
        guard key.utf8.count <= Self.keyBytesMax else {
            throw CollectionError.limit("a sorted map key is at most \(Self.keyBytesMax) bytes of UTF-8; got \(key.utf8.count)")
        }
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
        bestCut(zip(keys, values).map { $0.utf8.count + $1.compactText.utf8.count + 8 }, in: 1..<keys.count)
    }

    /// The cut in `cuts` that leaves the larger side smallest: entries `..<cut` on the left,
    /// `cut...` on the right.
    static func bestCut(_ sizes: [Int], in cuts: Range<Int>) -> Int {
        let total = sizes.reduce(0, +)
        var left = sizes[..<cuts.lowerBound].reduce(0, +)
        var best = cuts.lowerBound, bestLarger = Int.max
        for cut in cuts {
            let larger = max(left, total - left)
            if larger < bestLarger { (best, bestLarger) = (cut, larger) }
            left += sizes[cut]
        }
        return best
    }

    /// Where to cut an internal node that is too large (it has at least three separators):
    /// the separator `keys[mid]` moves up, `keys[..<mid]` stay left and `keys[(mid + 1)...]`
    /// go right, with `mid` in `1...keys.count - 2` so that both sides keep a separator.
    static func innerMidpoint(_ keys: [String], _ children: [String]) -> Int {
        guard keys.count >= 3 else { return keys.count / 2 }
        // Each separator with the child to its right; the one that moves up counts on
        // neither side, which a cut between entries approximates well enough.
        return bestCut(zip(keys, children.dropFirst()).map { $0.utf8.count + $1.utf8.count + 8 }, in: 1..<(keys.count - 1))
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
        let node = Node.inner(keys: keys, children: children)
        let tooLarge = keys.count >= 3 && node.value.compactText.utf8.count > leafBytesMax
        guard children.count > childrenMax || tooLarge else {
            try await tx.write(parent.id, node.value)
            return
        }
        let mid = children.count > childrenMax ? keys.count / 2 : Self.innerMidpoint(keys, children)
        let up = keys[mid]
        let newRight = newNode()
        try await tx.write(newRight, Node.inner(keys: Array(keys[(mid + 1)...]), children: Array(children[(mid + 1)...])).value)
        let newLeft = Node.inner(keys: Array(keys[..<mid]), children: Array(children[...mid]))
        try await replace(tx, path: Array(path.dropLast()), id: parent.id, left: newLeft, separator: up, rightID: newRight)
    }

    /// Removes `key`; answers the value it had. Nodes are not merged, but a leaf left empty
    /// leaves the tree (`unlink`).
    @discardableResult
    public func remove(_ tx: any Transaction, _ key: String) async throws -> JSONValue? {
        var path = try await descend(tx, key)
        let leaf = path.removeLast()
        guard case .leaf(var keys, var values, let next) = leaf.node else { return nil }
        let i = Self.lowerBound(keys, key)
        guard i < keys.count, codePointEqual(keys[i], key) else { return nil }
        keys.remove(at: i)
        let old = values.remove(at: i)
        try await size.add(tx, -1)
        if !keys.isEmpty {
            try await tx.write(leaf.id, Node.leaf(keys: keys, values: values, next: next).value)
        } else if path.isEmpty {
            // The root was the only leaf: an absent root is the empty tree.
            try await tx.delete(root)
        } else {
            try await unlink(tx, path: path, leafID: leaf.id, next: next)
        }
        return old
    }

    /// Takes the empty leaf `leafID`, reached through the internal nodes `path`, out of the
    /// tree: the leaf before it in the chain points past it, its parent drops it (a parent left
    /// with no child is dropped by its own parent, and so on; the root, left with none, is
    /// deleted: the empty tree), and its pointer is deleted. A root left with one child takes
    /// that child's content, so a shrinking tree also gets shallower.
    func unlink(_ tx: any Transaction, path: [(id: String, node: Node, slot: Int)], leafID: String, next: String?) async throws {
        // The leaf before it is the rightmost leaf of the subtree just left of the path, at the
        // deepest ancestor where the path does not take the first child. None: it was first.
        if let level = path.lastIndex(where: { $0.slot > 0 }), case .inner(_, let children) = path[level].node {
            var id = children[path[level].slot - 1]
            var linked = false
            for _ in 0..<64 {
                switch try await load(tx, id) {
                case .inner(_, let children):
                    id = children[children.count - 1]
                    continue
                case .leaf(let k, let v, _):
                    try await tx.write(id, Node.leaf(keys: k, values: v, next: next).value)
                    linked = true
                }
                break
            }
            guard linked else { throw CollectionError.corrupt(ptr: root, why: "deeper than 64 levels") }
        }
        try await tx.delete(leafID)
        // Drop the child from its parent, and parents left with no child from theirs.
        var level = path.count - 1
        while true {
            guard case .inner(var keys, var children) = path[level].node else { fatalError("parents are inner nodes") }
            let slot = path[level].slot
            children.remove(at: slot)
            // Child `slot` held [k[slot-1], k[slot]): its range joins its left neighbour's
            // (or, for the first child, the next child's) by dropping the separator between.
            if !keys.isEmpty { keys.remove(at: max(slot - 1, 0)) }
            if !children.isEmpty {
                try await tx.write(path[level].id, Node.inner(keys: keys, children: children).value)
                if level == 0 { try await collapseRoot(tx, children: children) }
                return
            }
            try await tx.delete(path[level].id)
            if level == 0 { return }
            level -= 1
        }
    }

    /// While the root (an internal node) has one child, the child's content moves into the
    /// root and the child's pointer is deleted. Only internal nodes are moved when the child is
    /// internal; a leaf child is the tree's only leaf, so nothing in the chain points at it.
    func collapseRoot(_ tx: any Transaction, children: [String]) async throws {
        var children = children
        for _ in 0..<64 {
            guard children.count == 1 else { return }
            let child = children[0]
            let node = try await load(tx, child)
            try await tx.write(root, node.value)
            try await tx.delete(child)
            guard case .inner(_, let grandchildren) = node else { return }
            children = grandchildren
        }
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
