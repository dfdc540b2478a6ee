import Foundation
import Testing

/// Runs the real, built `muster` binary.
enum MusterBinary {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `MUSTER_BIN`, or the debug build in `.build/`.
    static let url: URL = {
        if let explicit = ProcessInfo.processInfo.environment["MUSTER_BIN"], !explicit.isEmpty {
            return URL(fileURLWithPath: explicit)
        }
        return packageRoot.appendingPathComponent(".build/debug/muster")
    }()
}

/// What one run of the binary printed and returned.
struct RunResult: CustomStringConvertible {
    let status: Int32
    let stdout: String
    let stderr: String

    var description: String { "exit \(status)\n--- stdout\n\(stdout)--- stderr\n\(stderr)" }

    /// stdout parsed as one JSON object.
    func json() throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(stdout.utf8))
        return try #require(object as? [String: Any], "stdout is not a JSON object: \(stdout)")
    }
}

/// A temporary folder with helpers to run muster inside it.
final class Sandbox {
    let root: URL

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("muster-e2e-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: root) }

    /// A workspace with one campaign, `slug`, whose manifest is `manifest` (or the scaffold's).
    static func withCampaign(_ slug: String = "fair-rates", manifest: String? = nil) throws -> Sandbox {
        let sandbox = try Sandbox()
        try #require(sandbox.run(["init", "."]).status == 0)
        try #require(sandbox.run(["new", slug, "--title", "Fair rates", "--goal", "10"]).status == 0)
        if let manifest { try sandbox.write("campaigns/\(slug)/campaign.yaml", manifest) }
        return sandbox
    }

    func path(_ relative: String) -> URL { root.appendingPathComponent(relative) }

    func write(_ relative: String, _ text: String) throws {
        let url = path(relative)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }

    func exists(_ relative: String) -> Bool { FileManager.default.fileExists(atPath: path(relative).path) }

    /// Runs muster with `arguments` in `directory` (default: the sandbox root).
    @discardableResult
    func run(_ arguments: [String], in directory: URL? = nil, stdin: Data? = nil, environment: [String: String] = [:]) throws -> RunResult {
        try Sandbox.run(MusterBinary.url, arguments, in: directory ?? root, stdin: stdin, environment: environment)
    }

    /// Starts muster without waiting (for concurrency tests).
    func start(_ arguments: [String], environment: [String: String] = [:]) throws -> Process {
        let process = Process()
        process.executableURL = MusterBinary.url
        process.arguments = arguments
        process.currentDirectoryURL = root
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    static func run(_ executable: URL, _ arguments: [String], in directory: URL, stdin: Data? = nil, environment: [String: String] = [:]) throws -> RunResult {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("muster-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let outURL = scratch.appendingPathComponent("out"), errURL = scratch.appendingPathComponent("err"), inURL = scratch.appendingPathComponent("in")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: inURL.path, contents: stdin ?? Data())
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = directory
        var env = ProcessInfo.processInfo.environment
        env["NO_COLOR"] = "1"
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
        let input = try FileHandle(forReadingFrom: inURL)
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        process.waitUntilExit()
        try out.close(); try err.close(); try input.close()
        return RunResult(status: process.terminationStatus,
                         stdout: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
                         stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
    }

    /// Runs the sqlite3 command-line client on `database`, as a person tampering would.
    @discardableResult
    func sqlite(_ database: String, _ sql: String) throws -> RunResult {
        try Sandbox.run(URL(fileURLWithPath: "/usr/bin/sqlite3"), [path(database).path, sql], in: root)
    }
}
