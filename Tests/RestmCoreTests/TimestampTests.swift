import RestmCore
import Testing

@Suite struct TimestampTests {
    @Test func textRoundTripsAndOrders() {
        let a = Timestamp(wallMillis: 1_700_000_000_000, logical: 7, node: 3)
        let b = Timestamp(wallMillis: 1_700_000_000_000, logical: 7, node: 4)
        let c = Timestamp(wallMillis: 1_700_000_000_001, logical: 0, node: 1)
        #expect(Timestamp(text: a.text) == a)
        #expect(a.text.count == 20)
        #expect(a < b && b < c)
        #expect(a.text < b.text && b.text < c.text)
        #expect(Timestamp(text: "xyz") == nil)
        #expect(Timestamp(text: "0000000000000000000g") == nil)
    }

    @Test func clockIsMonotonicAndAbsorbsObservedTimestamps() {
        var hlc = HybridLogicalClock(node: 2)
        let t1 = hlc.tick(physicalMillis: 1000)
        let t2 = hlc.tick(physicalMillis: 1000)
        let t3 = hlc.tick(physicalMillis: 999)  // physical clock went back
        #expect(t1 < t2 && t2 < t3)
        #expect(t1.wallMillis == 1000 && t2.logical == 1)
        let remote = Timestamp(wallMillis: 5000, logical: 9, node: 7)
        hlc.observe(remote)
        let t4 = hlc.tick(physicalMillis: 1001)
        #expect(t4 > remote)
        #expect(t4.node == 2)
    }

    @Test func logicalOverflowCarriesIntoMilliseconds() {
        var hlc = HybridLogicalClock(node: 1, start: Timestamp(wallMillis: 10, logical: .max, node: 1))
        let t = hlc.tick(physicalMillis: 10)
        #expect(t.wallMillis == 11 && t.logical == 0)
    }

    @Test func startIsAboveACeiling() {
        let ceiling = Timestamp(wallMillis: 9_000, node: 1)
        var hlc = HybridLogicalClock(node: 1, start: ceiling)
        #expect(hlc.tick(physicalMillis: 1_000) > ceiling)
    }
}

@Suite struct JSONTests {
    @Test(arguments: [
        "null", "true", "false", "0", "-1.5e+10", "\"a\\u00e9\\n\"", "[]", "{}",
        "{\"a\":[1,2,{\"b\":null}]}", "12345678901234567890123", "\"\\ud83d\\ude00\"",
    ])
    func parsesValidDocuments(_ text: String) throws {
        let v = try JSONValue.parse(text)
        #expect(try JSONValue.parse(v.compactText) == v)
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\"}", "01", "1.", "tru", "\"\\x\"", "\"\u{1}\"", "{} x", "[1 2]", "\"\\ud800\"", "NaN",
    ])
    func refusesInvalidDocuments(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue.parse(text) }
    }

    @Test func keepsNumbersExactlyAndMembersInOrder() throws {
        let v = try JSONValue.parse(#" { "z" : 12345678901234567890123 , "a" : 1.50 } "#)
        #expect(v.compactText == #"{"z":12345678901234567890123,"a":1.50}"#)
    }

    @Test func refusesDeepNesting() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: JSONParseError.self) { try JSONValue.parse(deep, maxDepth: 128) }
        let ok = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect((try? JSONValue.parse(ok, maxDepth: 128)) != nil)
    }

    @Test func escapesOnOutput() throws {
        let v = JSONValue.string("quote\" backslash\\ newline\n ctrl\u{1}")
        #expect(try JSONValue.parse(v.compactText) == v)
    }

    @Test func pointerIDs() {
        #expect(PointerID.isValid("acct:1"))
        #expect(PointerID.isValid("a.b_c~d-e:F9"))
        #expect(PointerID.isValid(".."))
        #expect(!PointerID.isValid(""))
        #expect(!PointerID.isValid("a b"))
        #expect(!PointerID.isValid("a/b"))
        #expect(!PointerID.isValid("é"))
        #expect(PointerID.isValid(String(repeating: "x", count: 256)))
        #expect(!PointerID.isValid(String(repeating: "x", count: 257)))
    }
}
