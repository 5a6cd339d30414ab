/// Operating errors of reSTM, thrown through the layers and mapped to HTTP in one place
/// (RestmHTTP). `retryable` means running the whole transaction again may succeed.
public struct RestmError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case badPointer = "bad_pointer"
        case badJSON = "bad_json"
        case badRequest = "bad_request"
        case badTimestamp = "bad_timestamp"
        case notFound = "not_found"
        case txnNotFound = "txn_not_found"
        case routeNotFound = "no_such_route"
        case methodNotAllowed = "method_not_allowed"
        case conflict = "conflict"
        case txnNotActive = "txn_not_active"
        case pruned = "pruned"
        case preconditionFailed = "precondition_failed"
        case expectationFailed = "expectation_failed"
        case tooLarge = "too_large"
        case overloaded = "overloaded"
        case shuttingDown = "shutting_down"
        case outcomeUnknown = "outcome_unknown"
        case unknownKind = "unknown_kind"
        case taskFailed = "task_failed"
        case storeFailure = "store_failure"
        case `internal` = "internal"
    }

    public var code: Code
    public var message: String
    /// Extra members for the JSON error body (e.g. `current` of `expectation_failed`),
    /// as compact JSON text keyed by member name.
    public var extra: [(String, String)]
    /// The methods a path allows, for a 405 (`method_not_allowed`): its `Allow` header.
    public var allow: [String] = []
    /// The request could not be read to its end (the HTTP parser refused its body): the
    /// connection closes after this answer, and the answer says so.
    public var closesConnection = false

    public init(_ code: Code, _ message: String, extra: [(String, String)] = []) {
        self.code = code
        self.message = message
        self.extra = extra
    }

    public static func == (a: RestmError, b: RestmError) -> Bool { a.code == b.code && a.message == b.message }

    public var retryable: Bool {
        switch code {
        case .conflict, .shuttingDown, .overloaded: return true
        default: return false
        }
    }

    public var httpStatus: Int {
        switch code {
        case .badPointer, .badJSON, .badRequest, .badTimestamp, .unknownKind: return 400
        case .notFound, .txnNotFound, .routeNotFound: return 404
        case .methodNotAllowed: return 405
        case .conflict, .txnNotActive, .taskFailed: return 409
        case .pruned: return 410
        case .preconditionFailed, .expectationFailed: return 412
        case .tooLarge: return 413
        case .overloaded, .shuttingDown, .outcomeUnknown, .storeFailure: return 503
        case .internal: return 500
        }
    }

    public var description: String { "\(code.rawValue): \(message)" }

    public static func conflict(_ why: String) -> RestmError { RestmError(.conflict, why) }
}

/// Pointer id rules of API.md: 1–256 bytes of `[A-Za-z0-9._:~-]`.
public enum PointerID {
    public static let bytesMax = 256

    public static func isValid(_ id: some StringProtocol) -> Bool {
        let utf8 = id.utf8
        guard !utf8.isEmpty, utf8.count <= bytesMax else { return false }
        for c in utf8 {
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: ":"), UInt8(ascii: "~"), UInt8(ascii: "-"):
                continue
            default:
                return false
            }
        }
        return true
    }

    public static func validate(_ id: String) throws(RestmError) {
        guard isValid(id) else {
            let shown = id.utf8.count > 64 ? String(id.prefix(64)) + "…" : id
            throw RestmError(.badPointer, "pointer ids are 1–256 bytes of [A-Za-z0-9._:~-]; got \(JSONWriter.quoted(shown)) (\(id.utf8.count) bytes)")
        }
    }

    /// `prefix` and 26 base-32 digits (128 random bits): unique without asking a node, so an
    /// abandoned `orElse` branch or a retried body leaves nothing behind.
    public static func random(prefix: String = "o.") -> String {
        var g = SystemRandomNumberGenerator()
        let digits = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)
        var hi = g.next() as UInt64
        var lo = g.next() as UInt64
        var out: [UInt8] = Array(prefix.utf8)
        for i in 0..<26 {
            let d: UInt64
            if i < 13 {
                d = lo & 31
                lo >>= 5
            } else {
                d = hi & 31
                hi >>= 5
            }
            out.append(digits[Int(d)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
