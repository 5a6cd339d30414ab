import Hummingbird
import NIOCore
import NIOHTTP1
import RestmCore
import RestmNode

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Reading what a request carries: its body as JSON, path segments, query values.
enum RequestParsing {
    /// Percent-decodes one path segment; nil if it is malformed or not UTF-8.
    static func percentDecode(_ s: Substring) -> String? {
        guard s.utf8.contains(UInt8(ascii: "%")) else { return String(s) }
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count)
        var it = Array(s.utf8)[...]
        while let c = it.popFirst() {
            if c == UInt8(ascii: "%") {
                guard it.count >= 2, let h = hexValue(it[it.startIndex]), let l = hexValue(it[it.startIndex + 1]) else { return nil }
                out.append(h << 4 | l)
                it = it.dropFirst(2)
            } else {
                out.append(c)
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// The whole body, refusing more than `limit` bytes with 413 and a body the HTTP parser
    /// rejects (a broken chunked encoding) with 400.
    static func body(_ request: Request, limit: Int) async throws -> ByteBuffer {
        do {
            return try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw RestmError(.tooLarge, "the request body is larger than \(limit) bytes")
        } catch let e as HTTPParserError {
            throw MalformedRequestHandler.error(e)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            var e = RestmError(.badRequest, "the request body could not be read: \(error)")
            e.closesConnection = true
            throw e
        }
    }

    /// The body as JSON; nil when the body is empty.
    static func json(_ request: Request, limit: Int, depth: Int) async throws -> JSONValue? {
        let buffer = try await body(request, limit: limit)
        if buffer.readableBytes == 0 { return nil }
        let bytes = buffer.readableBytesView
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return nil }
        do {
            return try JSONValue.parse(bytes, maxDepth: depth)
        } catch {
            throw RestmError(.badJSON, "the body is not valid JSON: \(error)")
        }
    }

    /// The body as a JSON object (or nil if empty); anything else is 400.
    static func object(_ request: Request, limit: Int, depth: Int) async throws -> [(String, JSONValue)]? {
        guard let v = try await json(request, limit: limit, depth: depth) else { return nil }
        guard case .object(let members) = v else { throw RestmError(.badRequest, "the body must be a JSON object") }
        return members
    }

    static func member(_ members: [(String, JSONValue)]?, _ key: String) -> JSONValue? {
        members?.first(where: { $0.0 == key })?.1
    }

    static func pointerList(_ v: JSONValue?, field: String) throws -> [String] {
        guard let v, !v.isNull else { return [] }
        guard case .array(let items) = v else { throw RestmError(.badRequest, "\(field) must be an array of pointer ids") }
        return try items.map { item in
            guard case .string(let p) = item else { throw RestmError(.badRequest, "\(field) must be an array of pointer ids") }
            try PointerID.validate(p)
            return p
        }
    }

    static func writeMap(_ v: JSONValue?, field: String, valueMax: Int) throws -> [(String, String?)] {
        guard let v, !v.isNull else { return [] }
        guard case .object(let members) = v else { throw RestmError(.badRequest, "\(field) must be an object of pointer id to value") }
        return try members.map { (p, value) in
            try PointerID.validate(p)
            let text = value.compactText
            guard text.utf8.count <= valueMax else { throw RestmError(.tooLarge, "the value of \(p) is larger than \(valueMax) bytes") }
            return (p, text)
        }
    }

    /// A timestamp in its text form, or an ISO-8601 instant (read as of the end of that
    /// millisecond).
    static func instant(_ s: String) throws -> Timestamp {
        if let ts = Timestamp(text: s) { return ts }
        // Foundation rolls impossible fields over (February 30th is March 2nd, second 99 a
        // minute later): check them first, so that a typo is an error, not another instant.
        if let date = try? Date(s, strategy: .iso8601), validFields(s) {
            let ms = date.timeIntervalSince1970 * 1000
            guard ms >= 0 else { throw RestmError(.badTimestamp, "\(s) is before 1970") }
            return Timestamp(wallMillis: UInt64(ms), logical: UInt16.max, node: UInt16.max)
        }
        throw RestmError(.badTimestamp, "\(JSONWriter.quoted(String(s.prefix(64)))) is neither a version nor an ISO-8601 instant")
    }

    /// Whether the `YYYY-MM-DDTHH:MM:SS` an ISO-8601 instant starts with names a real date
    /// and time of day (no leap seconds).
    static func validFields(_ s: String) -> Bool {
        let b = Array(s.utf8.prefix(19))
        guard b.count == 19, b[4] == 0x2D, b[7] == 0x2D, b[10] == 0x54 || b[10] == 0x74, b[13] == 0x3A, b[16] == 0x3A else { return false }
        func number(_ r: Range<Int>) -> Int? {
            var n = 0
            for i in r {
                guard (0x30...0x39).contains(b[i]) else { return nil }
                n = n * 10 + Int(b[i] - 0x30)
            }
            return n
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19)
        else { return false }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        return (1...12).contains(month) && (1...days[month - 1]).contains(day) && hour < 24 && minute < 60 && second < 60
    }

    static func version(_ s: String) throws -> Timestamp {
        guard let ts = Timestamp(text: s) else {
            throw RestmError(.badTimestamp, "\(JSONWriter.quoted(String(s.prefix(64)))) is not a version issued by this server")
        }
        return ts
    }

    static func intQuery(_ request: Request, _ name: String, default d: Int, minimum: Int = 0) throws -> Int {
        guard let s = request.uri.queryParameters.get(name) else { return d }
        guard let v = Int(s), v >= minimum else {
            throw RestmError(.badRequest, minimum == 0 ? "\(name) must be a non-negative integer" : "\(name) must be an integer of at least \(minimum)")
        }
        return v
    }

    /// `limit=` of a page: 1 or more (100 by default); a larger one is capped by the caller.
    static func limitQuery(_ request: Request) throws -> Int {
        try intQuery(request, "limit", default: 100, minimum: 1)
    }

    static func wantsHTML(_ request: Request) -> Bool {
        // HEAD answers the headers GET would, the content type included.
        guard request.method == .get || request.method == .head, let accept = request.headers[.accept] else { return false }
        guard let html = accept.range(of: "text/html") else { return false }
        if let json = accept.range(of: "application/json"), json.lowerBound < html.lowerBound { return false }
        return true
    }
}
