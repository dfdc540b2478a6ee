import Foundation
import Testing

/// A running `muster serve` on a free loopback port, started from the real binary.
final class ServerProcess {
    let process: Process
    let port: Int
    private let log: LogBuffer

    /// Starts `muster serve --listen 127.0.0.1:0 ARGS…` in `sandbox` and waits for its
    /// "serving http://…" line (or for it to end, which fails the test with its output).
    init(_ sandbox: Sandbox, _ arguments: [String] = [], environment: [String: String] = [:]) throws {
        let process = Process()
        process.executableURL = MusterBinary.url
        process.arguments = ["serve", "--listen", "127.0.0.1:0"] + arguments
        process.currentDirectoryURL = sandbox.root
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        let log = LogBuffer()
        try process.run()
        let reader = pipe.fileHandleForReading
        Thread.detachNewThread {
            while true {
                let data = reader.availableData
                if data.isEmpty { break }
                log.append(data)
            }
            log.close()
        }
        // A safety net against a server that never starts, not a measurement.
        let text = log.wait(until: Date(timeIntervalSinceNow: 180)) { $0.contains("muster: serving http://") }
        guard let range = text.range(of: #"serving http://127\.0\.0\.1:(\d+)/"#, options: .regularExpression) else {
            process.terminate()
            process.waitUntilExit()
            throw ServeTestError("muster serve did not start:\n\(log.text)")
        }
        let match = String(text[range])
        self.port = Int(match.split(separator: ":").last!.dropLast())!
        self.process = process
        self.log = log
    }

    deinit {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }

    var base: String { "http://127.0.0.1:\(port)" }

    /// Everything the server wrote to stderr so far.
    var logText: String { log.text }

    var logBuffer: LogBuffer { log }

    /// Sends SIGTERM and waits for the process to end; its exit status and full log.
    func stop() -> (status: Int32, log: String) {
        process.terminate()
        process.waitUntilExit()
        _ = log.wait(until: Date(timeIntervalSinceNow: 60)) { _ in false }
        return (process.terminationStatus, log.text)
    }

    /// One request with curl (no redirects followed).
    func request(_ path: String, method: String = "GET", headers: [String: String] = [:], body: Data? = nil) throws -> HTTPResult {
        try HTTPResult.curl(base + path, method: method, headers: headers, body: body)
    }

    func get(_ path: String) throws -> HTTPResult { try request(path) }
}

/// A response as curl saw it.
struct HTTPResult: CustomStringConvertible {
    let status: Int
    /// Header names lower-cased; the last value of each.
    let headers: [String: String]
    let body: String

    var description: String { "HTTP \(status)\n\(headers.map { "\($0): \($1)" }.sorted().joined(separator: "\n"))\n\n\(body)" }

    static func curl(_ url: String, method: String, headers: [String: String], body: Data?) throws -> HTTPResult {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("muster-http-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let head = scratch.appendingPathComponent("head"), out = scratch.appendingPathComponent("body")
        var arguments = ["-sS", "--max-time", "120", "-X", method, "-D", head.path, "-o", out.path]
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { arguments += ["-H", "\(name): \(value)"] }
        if let body {
            let file = scratch.appendingPathComponent("request")
            try body.write(to: file)
            arguments += ["--data-binary", "@" + file.path]
        }
        arguments.append(url)
        let result = try Sandbox.run(URL(fileURLWithPath: "/usr/bin/curl"), arguments, in: scratch)
        guard result.status == 0 else { throw ServeTestError("curl \(url) failed: \(result)") }
        let headText = String(decoding: try Data(contentsOf: head), as: UTF8.self)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst()
        let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") ?? 0
        var fields: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return HTTPResult(status: status, headers: fields, body: String(decoding: try Data(contentsOf: out), as: UTF8.self))
    }
}

struct ServeTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// What a child process wrote, collected by a reader thread.
final class LogBuffer: @unchecked Sendable {
    private let condition = NSCondition()
    private var data = Data()
    private var closed = false

    func append(_ chunk: Data) {
        condition.lock()
        data.append(chunk)
        condition.broadcast()
        condition.unlock()
    }

    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    var text: String {
        condition.lock()
        defer { condition.unlock() }
        return String(decoding: data, as: UTF8.self)
    }

    /// Waits until `done` holds for the text, the writer closes, or `deadline`.
    func wait(until deadline: Date, _ done: (String) -> Bool) -> String {
        condition.lock()
        defer { condition.unlock() }
        while true {
            let text = String(decoding: data, as: UTF8.self)
            if done(text) || closed { return text }
            if !condition.wait(until: deadline) { return text }
        }
    }
}
