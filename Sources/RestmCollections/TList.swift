import RestmCore

/// A FIFO list: elements are pointers numbered in push order, with a head and a tail index.
///
/// Pointers: `<name>~h` and `<name>~t` hold the index of the first element and the index
/// the next push takes (absent: 0); element `i` is `<name>~<i>`. An absent element at the head
/// index means the list is empty.
///
/// Conflict footprint: `push` reads and writes the tail and writes one element; `pop` reads
/// and writes the head, reads and deletes one element. So pushes conflict with pushes and pops
/// with pops (a FIFO order needs that), while a push and a pop conflict only when the list is
/// empty or about to be (the pop read the absent element the push writes). `peek`, `get` and
/// `count` read one or two indexes and an element; `elements` reads a page of elements.
/// `pop` on an empty list can `retry()`: the body then blocks until a push changes what it read.
public struct TList: Sendable, Hashable {
    public let name: String

    public init(_ name: String) throws {
        self.name = try Names.validate(name)
    }

    var headPointer: String { "\(name)~h" }
    var tailPointer: String { "\(name)~t" }
    func element(_ i: Int) -> String { "\(name)~\(i)" }

    func index(_ v: JSONValue?, _ p: String) throws -> Int {
        guard let v else { return 0 }
        guard let n = v.intValue, n >= 0 else { throw CollectionError.corrupt(ptr: p, why: "not an index") }
        return n
    }

    func head(_ tx: any Transaction) async throws -> Int { try index(try await tx.read(headPointer), headPointer) }
    func tail(_ tx: any Transaction) async throws -> Int { try index(try await tx.read(tailPointer), tailPointer) }

    /// Appends `value` at the end.
    public func push(_ tx: any Transaction, _ value: JSONValue) async throws {
        try await append(tx, contentsOf: [value])
    }

    /// Appends `values` in order (one tail update for all of them).
    public func append(_ tx: any Transaction, contentsOf values: [JSONValue]) async throws {
        guard !values.isEmpty else { return }
        let t = try await tail(tx)
        for (k, v) in values.enumerated() { try await tx.write(element(t + k), v) }
        try await tx.write(tailPointer, .int(t + values.count))
    }

    /// Removes and answers the first element; nil when empty.
    public func popIfAny(_ tx: any Transaction) async throws -> JSONValue? {
        let h = try await head(tx)
        guard let v = try await tx.read(element(h)) else { return nil }
        try await tx.delete(element(h))
        try await tx.write(headPointer, .int(h + 1))
        return v
    }

    /// Removes and answers the first element; on an empty list the body `retry()`s, blocking
    /// until an element arrives.
    public func pop(_ tx: any Transaction) async throws -> JSONValue {
        guard let v = try await popIfAny(tx) else { try await tx.retry() }
        return v
    }

    /// The first element without removing it; nil when empty.
    public func peek(_ tx: any Transaction) async throws -> JSONValue? {
        try await tx.read(element(try await head(tx)))
    }

    /// Elements in the list.
    public func count(_ tx: any Transaction) async throws -> Int {
        let v = try await tx.read([headPointer, tailPointer])
        return max(0, try index(v[tailPointer], tailPointer) - index(v[headPointer], headPointer))
    }

    /// The element at `offset` from the head; nil past the end.
    public func get(_ tx: any Transaction, _ offset: Int) async throws -> JSONValue? {
        guard offset >= 0 else { return nil }
        // Past `Int.max` is past the end (an overflow would trap, stopping the process).
        let (i, overflow) = try await head(tx).addingReportingOverflow(offset)
        guard !overflow else { return nil }
        return try await tx.read(element(i))
    }

    /// Up to `limit` elements from `offset`, read in one batch.
    public func elements(_ tx: any Transaction, offset: Int = 0, limit: Int = 1_000) async throws -> [JSONValue] {
        guard offset >= 0, limit > 0 else { return [] }
        let v = try await tx.read([headPointer, tailPointer])
        let h = try index(v[headPointer], headPointer)
        let t = try index(v[tailPointer], tailPointer)
        // `offset` and `limit` are the caller's: clamp them to the list before adding, so
        // that no sum can overflow (a trap would stop the process).
        guard offset < t - h else { return [] }
        let from = h + offset
        let to = from + min(limit, t - from)
        guard from < to else { return [] }
        let ptrs = (from..<to).map(element)
        let values = try await tx.read(ptrs)
        return try ptrs.map { p in
            guard let e = values[p] else { throw CollectionError.corrupt(ptr: p, why: "an element between head and tail is missing") }
            return e
        }
    }

    /// Every pointer of the list (indexes and elements), for deleting it.
    public func pointers(_ tx: any Transaction) async throws -> [String] {
        let v = try await tx.read([headPointer, tailPointer])
        let h = try index(v[headPointer], headPointer)
        let t = try index(v[tailPointer], tailPointer)
        return [headPointer, tailPointer] + (h..<max(h, t)).map(element)
    }
}

extension TList {
    /// The pointers of a list that was only ever appended to (head at 0) and holds `count`
    /// elements, without reading it: for deleting scratch lists in a later transaction.
    public func pointers(appendedOnly count: Int) -> [String] {
        [headPointer, tailPointer] + (0..<max(0, count)).map(element)
    }
}

/// A queue is a list used from both ends: `push` at the tail, `pop` (blocking) at the head.
public typealias TQueue = TList
