import RestmCore

/// Shared pieces of the transactional collections.
///
/// Every collection is a value naming a family of pointers (`<name>~…`); an absent pointer
/// reads as the empty structure, so a collection needs no creation step and two processes
/// that name the same collection see the same data. Operations take the transaction they run
/// in, so several operations on several collections compose into one atomic step:
///
///     try await memory.atomically { tx in
///         let job = try await jobs.pop(tx)          // blocks (retry) until a job arrives
///         try await done.insert(tx, job["id"]!.stringValue!)
///         try await finished.add(tx, 1)
///     }
public enum CollectionError: Error, Sendable, CustomStringConvertible {
    /// A collection name that cannot prefix pointer ids.
    case badName(String)
    /// A stored node does not have the shape this collection writes (written by someone else).
    case corrupt(ptr: String, why: String)
    /// A limit of the structure (documented on the operation) was reached.
    case limit(String)

    public var description: String {
        switch self {
        case .badName(let n): return "collection names are 1–200 bytes of [A-Za-z0-9._:-]; got \(JSONWriter.quoted(n))"
        case .corrupt(let p, let why): return "pointer \(p) is not a node of this collection: \(why)"
        case .limit(let why): return why
        }
    }
}

enum Names {
    /// Names may use every pointer character but `~`, which separates a name from its nodes.
    static func validate(_ name: String) throws -> String {
        guard name.utf8.count <= 200, !name.contains("~"), PointerID.isValid(name) else {
            throw CollectionError.badName(name)
        }
        return name
    }
}

/// FNV-1a over UTF-8: a hash that is the same in every process and on every node (Swift's
/// `Hasher` is seeded per process, so it cannot place keys in shared structures).
public func stableHash(_ s: String) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in s.utf8 {
        h ^= UInt64(b)
        h &*= 0x0000_0100_0000_01b3
    }
    // Finalizer (from MurmurHash3) so that the low bits, which pick trie branches and
    // counter stripes, depend on every input byte.
    h ^= h >> 33
    h &*= 0xff51_afd7_ed55_8ccd
    h ^= h >> 33
    h &*= 0xc4ce_b9fe_1a85_ec53
    h ^= h >> 33
    return h
}

/// Ascending by Unicode code points (UTF-8 byte order is code point order), the order of
/// every sorted structure here; Swift's `<` on strings orders by canonical equivalence.
@inlinable
public func codePointLess(_ a: String, _ b: String) -> Bool {
    a.utf8.lexicographicallyPrecedes(b.utf8)
}

/// Key equality by code points. Swift's `==` on strings is canonical equivalence ("é" equals
/// "e" + U+0301), which would disagree with the ordering and hashing used here.
@inlinable
public func codePointEqual(_ a: String, _ b: String) -> Bool {
    a.utf8.elementsEqual(b.utf8)
}

extension JSONValue {
    static func int(_ n: Int) -> JSONValue { .number(String(n)) }

    var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }
}
