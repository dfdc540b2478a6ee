import Foundation
import Testing

/// A real Dovecot IMAP server on loopback (Tests/support/dovecot.py), for one test:
/// STARTTLS on `plain`, implicit TLS on `tls`, a self-signed certificate at `ca`, one
/// user with a password. Stops when this object goes away.
final class TestDovecot {
    let process = Process()
    let plain: Int
    let tls: Int?
    let ca: String?
    let user: String
    let password: String
    let directory: URL
    private let stdin = Pipe()
    static let script = MusterBinary.packageRoot.appendingPathComponent("Tests/support/dovecot.py")

    /// Dovecot is installed (`make test` installs Debian's dovecot-imapd; CI has it).
    static var available: Bool {
        FileManager.default.isExecutableFile(atPath: "/usr/sbin/dovecot") && FileManager.default.fileExists(atPath: "/usr/lib/dovecot/imap")
    }

    /// `options`: `--no-tls`, `--hide-move`, `--hide-uidplus`, `--separator .`;
    /// `load`: messages in INBOX before the start.
    init(_ options: [String] = [], load: [URL] = [], in sandbox: Sandbox) throws {
        directory = sandbox.root.appendingPathComponent("dovecot-\(UUID().uuidString.prefix(8))")
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Self.script.path, "serve", "--dir", directory.path] + options
            + (load.isEmpty ? [] : ["--load"] + load.map(\.path))
        let out = Pipe()
        process.standardOutput = out
        process.standardInput = stdin
        try process.run()
        let line = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "dovecot.py: \(line)")
        guard let plain = object["plain"] as? Int else {
            Issue.record("dovecot did not start: \(object["log"] ?? line)")
            throw CancellationError()
        }
        self.plain = plain
        tls = object["tls"] as? Int
        ca = object["ca"] as? String
        user = try #require(object["user"] as? String)
        password = try #require(object["password"] as? String)
    }

    deinit {
        try? stdin.fileHandleForWriting.close()
        process.waitUntilExit()
    }

    var starttlsURL: String { "imap://127.0.0.1:\(plain)" }
    var imapsURL: String { "imaps://127.0.0.1:\(tls ?? 0)" }

    private func client(_ command: String, _ arguments: [String]) throws -> RunResult {
        let result = try Sandbox.run(URL(fileURLWithPath: "/usr/bin/env"),
                                     ["python3", Self.script.path, command, "--port", String(plain), "--ca", ca ?? "",
                                      "--user", user, "--password", password] + arguments,
                                     in: directory.deletingLastPathComponent())
        try #require(result.status == 0, "dovecot.py \(command): \(result)")
        return result
    }

    /// APPENDs each file (through Python's imaplib, an independent client).
    func append(_ files: [URL], folder: String = "INBOX", flags: String? = nil) throws {
        _ = try client("append", ["--folder", folder] + (flags.map { ["--flags", $0] } ?? []) + files.map(\.path))
    }

    /// Sets flags on one message of INBOX.
    func flag(uid: UInt64, _ flags: String) throws {
        _ = try client("flag", ["--uid", String(uid), "--flags", flags])
    }

    struct Message: Equatable, CustomStringConvertible {
        var uid: UInt64
        var flags: [String]
        var messageID: String
        var subject: String
        var description: String { "\(uid) \(subject) \(flags)" }
    }

    /// Every folder and its messages, read by imaplib with EXAMINE and BODY.PEEK (changes nothing).
    func state() throws -> [String: [Message]] {
        let result = try client("state", [])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: [[String: Any]]])
        return object.mapValues { messages in
            messages.map { Message(uid: UInt64($0["uid"] as? Int ?? 0), flags: $0["flags"] as? [String] ?? [],
                                   messageID: $0["message_id"] as? String ?? "", subject: $0["subject"] as? String ?? "") }
        }
    }
}

/// Tests/support/drop_proxy.py: forwards to `target`, cuts the first `connections`
/// after `cutAfter` bytes from the server, then closes the next `refuse` at once.
final class DropProxy {
    let process = Process()
    let port: Int
    private let stdin = Pipe()

    init(target: Int, cutAfter: Int, connections: Int = 1, refuse: Int = 0) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", MusterBinary.packageRoot.appendingPathComponent("Tests/support/drop_proxy.py").path,
                             "--target", String(target), "--cut-after", String(cutAfter), "--connections", String(connections),
                             "--refuse", String(refuse)]
        let out = Pipe()
        process.standardOutput = out
        process.standardInput = stdin
        try process.run()
        let line = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self)
        port = try #require(Int(line.trimmingCharacters(in: .whitespacesAndNewlines)), "proxy did not start: \(line)")
    }

    deinit {
        try? stdin.fileHandleForWriting.close()
        process.terminate()
        process.waitUntilExit()
    }
}
