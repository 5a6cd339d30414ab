import ArgumentParser
import RestmCollections
import RestmCore
import RestmTasks

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Foundation

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a demo on a node.", subcommands: [DemoSort.self])
}

struct DemoSort: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sort",
        abstract: "Sort N random strings with tasks on a node, showing the task tree's progress.",
        discussion: """
            Prints one JSON line on standard output: {"n", "task", "ms", "server_ms", "verified", "sort_ms"}.
            --verify reads the whole output back and compares it with the same strings sorted here;
            --compare-sort also times `LC_ALL=C sort` on them.
            """)

    @OptionGroup var options: ClientOptions
    @Option(help: "How many strings (1–10,000,000).") var n = 100_000
    @Option(help: "Seed of the strings (the same seed gives the same strings).") var seed = 1
    @Flag(help: "Read the sorted output back and compare it with a local sort.") var verify = false
    @Flag(help: "Time `LC_ALL=C sort` on the same strings.") var compareSort = false
    @Option(help: "Give up after this many seconds.") var timeout = 600

    func validate() throws {
        guard (1...SortDemo.nMax).contains(n) else { throw ValidationError("--n must be 1–\(SortDemo.nMax)") }
        guard seed > 0 else { throw ValidationError("--seed must be positive") }
    }

    static func json(_ text: String) throws -> JSONValue {
        do { return try JSONValue.parse(text) } catch { throw ValidationError("the node answered something that is not JSON: \(text.prefix(200))") }
    }

    func run() async throws {
        let started = ContinuousClock.now
        let (status, text) = try await request("GET", "\(options.url)/demo/sort?n=\(n)&seed=\(seed)")
        guard status == 202, let id = try Self.json(text)["task"]?.stringValue else {
            FileHandle.standardError.write(Data("could not start the sort: \(status) \(text)\n".utf8))
            throw ExitCode(1)
        }
        FileHandle.standardError.write(Data("task \(id): \(options.url)/task/info/\(id)\n".utf8))
        let deadline = started + .seconds(timeout)
        var result: JSONValue?
        while ContinuousClock.now < deadline {
            let (s, body) = try await request("GET", "\(options.url)/task/result/\(id)?timeoutMs=300")
            if s == 200 {
                result = try Self.json(body)
                break
            }
            guard s == 202 else {
                FileHandle.standardError.write(Data("\n\(s) \(body)\n".utf8))
                throw ExitCode(1)
            }
            let info = try Self.json(body)
            let done = info["progress"]?["done"]?.intValue ?? 0
            let total = max(1, info["progress"]?["total"]?.intValue ?? 1)
            let width = 30
            let filled = min(width, done * width / total)
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            let secs = Double((ContinuousClock.now - started).components.attoseconds / 1_000_000_000_000_000) / 1000
                + Double((ContinuousClock.now - started).components.seconds)
            let line = String(format: "\r[%@] %d/%d tasks · %@ · %.1f s ", bar, done, total, info["status"]?.stringValue ?? "?", secs)
            FileHandle.standardError.write(Data(line.utf8))
        }
        FileHandle.standardError.write(Data("\n".utf8))
        let elapsed = ContinuousClock.now - started
        guard let result else {
            FileHandle.standardError.write(Data("timed out after \(timeout) s\n".utf8))
            throw ExitCode(1)
        }
        guard result["status"]?.stringValue == "done", let r = result["result"] else {
            FileHandle.standardError.write(Data("the sort failed: \(result.compactText)\n".utf8))
            throw ExitCode(1)
        }
        let ms = Int(elapsed.components.seconds * 1000) + Int(elapsed.components.attoseconds / 1_000_000_000_000_000)
        var verified: Bool?
        var sortMs: Int?
        if verify || compareSort {
            var local = Array(SortDemo.Strings(n: n, seed: UInt64(seed)))
            if compareSort { sortMs = try Self.timeUnixSort(local) }
            if verify {
                local.sort(by: codePointLess)
                verified = try await fetchAndCompare(id, local)
            }
        }
        var out = "{\"n\":\(n),\"task\":\(JSONWriter.quoted(id)),\"ms\":\(ms),\"server_ms\":\(r["ms"]?.intValue ?? -1)"
        out += ",\"verified\":\(verified.map { String($0) } ?? "null"),\"sort_ms\":\(sortMs.map { String($0) } ?? "null")}"
        print(out)
        if verified == false { throw ExitCode(1) }
    }

    /// Pages through `/demo/sort/result/{id}` and compares with `expected`.
    func fetchAndCompare(_ id: String, _ expected: [String]) async throws -> Bool {
        var offset = 0
        while offset < expected.count {
            let (s, body) = try await request("GET", "\(options.url)/demo/sort/result/\(id)?offset=\(offset)&limit=1000")
            guard s == 200 else {
                FileHandle.standardError.write(Data("reading the output: \(s) \(body.prefix(300))\n".utf8))
                return false
            }
            let page = try Self.json(body)
            guard page["total"]?.intValue == expected.count, case .array(let items) = page["items"], !items.isEmpty else {
                FileHandle.standardError.write(Data("bad page at \(offset): \(body.prefix(300))\n".utf8))
                return false
            }
            for (k, item) in items.enumerated() where item.stringValue != expected[offset + k] {
                FileHandle.standardError.write(Data("mismatch at \(offset + k): \(item.compactText) vs \(expected[offset + k])\n".utf8))
                return false
            }
            offset += items.count
        }
        FileHandle.standardError.write(Data("verified \(expected.count) strings\n".utf8))
        return true
    }

    /// Wall milliseconds of `LC_ALL=C sort` over the strings (written to a temporary file first).
    static func timeUnixSort(_ strings: [String]) throws -> Int {
        let dir = FileManager.default.temporaryDirectory
        let input = dir.appendingPathComponent("restm-sort-\(getpid()).txt")
        let output = dir.appendingPathComponent("restm-sort-\(getpid()).out")
        defer {
            try? FileManager.default.removeItem(at: input)
            try? FileManager.default.removeItem(at: output)
        }
        try Data((strings.joined(separator: "\n") + "\n").utf8).write(to: input)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["sort", "-o", output.path, input.path]
        var env = ProcessInfo.processInfo.environment
        env["LC_ALL"] = "C"
        p.environment = env
        let t0 = ContinuousClock.now
        try p.run()
        p.waitUntilExit()
        let d = ContinuousClock.now - t0
        return Int(d.components.seconds * 1000) + Int(d.components.attoseconds / 1_000_000_000_000_000)
    }
}
