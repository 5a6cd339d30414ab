import RestmCore

/// A counter striped over several pointers, so that concurrent increments rarely conflict.
///
/// Conflict footprint: `add` reads and writes one stripe, chosen at random (or by `hint`),
/// so two increments conflict only when they pick the same stripe (1 in `stripes`); `value`
/// reads every stripe, which makes it conflict with any concurrent `add` only if it also
/// writes. Pointers: `<name>~c<i>` for i in 0..<stripes, each a JSON number; absent is 0.
public struct TCounter: Sendable, Hashable {
    public let name: String
    public let stripes: Int

    public init(_ name: String, stripes: Int = 16) throws {
        self.name = try Names.validate(name)
        guard (1...256).contains(stripes) else { throw CollectionError.limit("a counter has 1–256 stripes") }
        self.stripes = stripes
    }

    /// For counters embedded in other collections, whose names are already checked.
    init(unchecked name: String, stripes: Int = 16) {
        self.name = name
        self.stripes = stripes
    }

    func stripe(_ i: Int) -> String { "\(name)~c\(i)" }

    public var pointers: [String] { (0..<stripes).map(stripe) }

    /// Adds `delta`. `hint` picks the stripe (e.g. a worker number); nil picks at random.
    public func add(_ tx: any Transaction, _ delta: Int, hint: Int? = nil) async throws {
        let i = hint.map { (($0 % stripes) + stripes) % stripes } ?? Int.random(in: 0..<stripes)
        let p = stripe(i)
        let current = try await tx.read(p)
        let n = try current.map { v -> Int in
            guard let n = v.intValue else { throw CollectionError.corrupt(ptr: p, why: "not an integer") }
            return n
        } ?? 0
        let (sum, overflow) = n.addingReportingOverflow(delta)
        guard !overflow else { throw CollectionError.limit("the counter's stripe \(p) would pass the range of Int") }
        try await tx.write(p, .int(sum))
    }

    /// The sum of all stripes.
    public func value(_ tx: any Transaction) async throws -> Int {
        let values = try await tx.read(pointers)
        var sum = 0
        for (p, v) in values {
            guard let n = v.intValue else { throw CollectionError.corrupt(ptr: p, why: "not an integer") }
            let (next, overflow) = sum.addingReportingOverflow(n)
            guard !overflow else { throw CollectionError.limit("the counter's sum passes the range of Int") }
            sum = next
        }
        return sum
    }
}
