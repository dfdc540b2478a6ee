import Foundation
import Testing
@testable import MusterKit

/// `Tests/support/`, found from this file's path.
let supportDirectory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("support")

/// Whether python3 with aiosmtpd is available; integration tests skip (with this reason) otherwise.
let aiosmtpdAvailable: Bool = {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", "import aiosmtpd"]
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    do { try process.run() } catch { return false }
    process.waitUntilExit()
    return process.terminationStatus == 0
}()

let skipReason: Comment = "python3 with aiosmtpd is not installed (python3 -m pip install aiosmtpd==1.4.6)"

/// A real aiosmtpd server on a free loopback port, run by `Tests/support/smtp_server.py`.
final class SMTPTestServer {
    let process = Process()
    let directory: URL
    let spool: URL
    let certificate: URL
    private(set) var port = 0
    private let stdinPipe = Pipe()

    struct Received {
        var mailFrom: String
        var recipients: [String]
        var peerPort: Int
        var tls: Bool
        var authenticated: Bool
        var note: String
        var raw: [UInt8]
        var file: URL
        /// MAIL FROM parameters, e.g. `SIZE=1234`, `SMTPUTF8`.
        var mailOptions: [String]
    }

    init(_ arguments: [String] = []) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("muster-smtp-\(UUID().uuidString)")
        spool = directory.appendingPathComponent("spool")
        certificate = directory.appendingPathComponent("ca.pem")
        try FileManager.default.createDirectory(at: spool, withIntermediateDirectories: true)
        let stdout = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", supportDirectory.appendingPathComponent("smtp_server.py").path,
                             "--spool", spool.path, "--cert-out", certificate.path, "--exit-on-stdin-eof"] + arguments
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        process.standardInput = stdinPipe
        try process.run()
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = stdout.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        guard let port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            process.terminate()
            throw TestServerError.didNotStart
        }
        self.port = port
    }

    enum TestServerError: Error { case didNotStart }

    deinit {
        try? stdinPipe.fileHandleForWriting.close()
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }

    func settings(_ scheme: String = "smtp", starttls: STARTTLSPolicy = .never, username: String? = nil,
                  password: String? = nil, caFile: Bool = false, host: String = "127.0.0.1") throws -> SMTPSettings {
        var s = try SMTPSettings(url: "\(scheme)://\(host):\(port)", starttls: starttls, username: username, password: password,
                                 caFile: caFile ? certificate.path : nil, heloName: "muster-tests.example")
        s.connectTimeout = 5
        s.responseTimeout = 2
        s.transferTimeout = 30
        return s
    }

    /// Messages saved so far, in arrival order.
    func received() throws -> [Received] {
        let files = try FileManager.default.contentsOfDirectory(at: spool, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "json" }.sorted { $0.lastPathComponent < $1.lastPathComponent }
        return try files.map { json in
            let object = try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any] ?? [:]
            let eml = json.deletingPathExtension().appendingPathExtension("eml")
            return Received(mailFrom: object["mail_from"] as? String ?? "", recipients: object["rcpt_tos"] as? [String] ?? [],
                            peerPort: (object["peer"] as? [Any])?.last as? Int ?? 0, tls: object["tls"] as? Bool ?? false,
                            authenticated: object["auth"] as? Bool ?? false, note: object["note"] as? String ?? "",
                            raw: [UInt8](try Data(contentsOf: eml)), file: eml,
                            mailOptions: object["mail_options"] as? [String] ?? [])
        }
    }
}

/// A message parsed by Python's `email` package (policy.default), via `Tests/support/parse_message.py`.
struct PythonParsedMessage: Decodable {
    struct Part: Decodable {
        var content_type: String
        var charset: String?
        var cte: String?
        var disposition: String?
        var filename: String?
        var text: String
    }
    var headers: [String: [String]]
    var content_type: String
    var parts: [Part]
    var defects: [String]

    func header(_ name: String) -> String? { headers.first { $0.key.lowercased() == name.lowercased() }?.value.first }

    init(file: URL) throws {
        let process = Process()
        let out = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", supportDirectory.appendingPathComponent("parse_message.py").path, file.path]
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        self = try JSONDecoder().decode(PythonParsedMessage.self, from: data)
    }
}
