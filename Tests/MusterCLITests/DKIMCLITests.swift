import Foundation
import Testing

/// Blasts DKIM-signed by the real binary, delivered to the loopback relay, and checked by
/// dkimpy (Tests/support/dkim_verify.py), an implementation independent of muster's.
enum Dkimpy {
    static var available: Bool {
        (try? Sandbox.run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", "import dkim, nacl, cryptography"], in: URL(fileURLWithPath: "/")).status) == 0
    }
}

@Suite(.enabled(if: TestRelay.available && Dkimpy.available, "needs python3 with aiosmtpd and dkimpy (make test installs them)"))
struct DKIMCLITests {
    static let script = MusterBinary.packageRoot.appendingPathComponent("Tests/support/dkim_verify.py")

    /// A private key made by Python's cryptography package (PKCS#8 for Ed25519,
    /// PKCS#1 "traditional" for RSA), in a folder outside any workspace.
    static func key(_ kind: String, mode: Int = 0o600) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("muster-dkim-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let file = folder.appendingPathComponent("\(kind).pem")
        let code = kind == "ed25519"
            ? "from cryptography.hazmat.primitives.asymmetric import ed25519 as k; from cryptography.hazmat.primitives import serialization as s; key = k.Ed25519PrivateKey.generate(); fmt = s.PrivateFormat.PKCS8"
            : "from cryptography.hazmat.primitives.asymmetric import rsa as k; from cryptography.hazmat.primitives import serialization as s; key = k.generate_private_key(65537, 2048); fmt = s.PrivateFormat.TraditionalOpenSSL"
        let result = try Sandbox.run(URL(fileURLWithPath: "/usr/bin/env"),
                                     ["python3", "-c", code + "; open('\(file.path)', 'wb').write(key.private_bytes(s.Encoding.PEM, fmt, s.NoEncryption()))"],
                                     in: folder)
        try #require(result.status == 0, "\(result)")
        chmod(file.path, mode_t(mode))
        return file
    }

    func verify(_ files: [URL], key: URL) throws -> [Bool] {
        let result = try Sandbox.run(URL(fileURLWithPath: "/usr/bin/env"),
                                     ["python3", Self.script.path, "--key", key.path, "--selector", "muster2026", "--domain", "fairrates.example"] + files.map(\.path),
                                     in: key.deletingLastPathComponent())
        try #require(result.status == 0, "\(result)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Bool])
        return files.map { json[$0.path] ?? false }
    }

    func messages(_ relay: TestRelay) throws -> [URL] {
        try FileManager.default.contentsOfDirectory(atPath: relay.spool.path).filter { $0.hasSuffix(".eml") }.sorted()
            .map { relay.spool.appendingPathComponent($0) }
    }

    @Test(arguments: ["ed25519", "rsa"])
    func aSignedBlastVerifiesWithDkimpyAndATamperedCopyDoesNot(kind: String) throws {
        let key = try Self.key(kind)
        defer { try? FileManager.default.removeItem(at: key.deletingLastPathComponent()) }
        let box = try MailTests.workspace(signers: [("Ana Lima", "ana@example.org", true), ("Zoé Ça", "zoe@bücher.example", true), ("Bo", "bo@example.org", false)])
        try box.write("muster.yaml", "sender: \"Fair Rates <hello@fairrates.example>\"\nsmtp:\n  url: smtp://127.0.0.1:9\n  starttls: never\ndkim:\n  selector: muster2026\n  key: \(key.path)\n")
        #expect(try box.run(["check"]).status == 0)
        let relay = try TestRelay(in: box)
        let send = try box.run(["mail", "send", "thanks", "--yes"], environment: ["MUSTER_SMTP_URL": relay.url])
        #expect(send.status == 0, "\(send)")
        let files = try messages(relay)
        #expect(files.count == 3)
        #expect(try verify(files, key: key) == [true, true, true], "dkimpy accepts every message muster signed")
        let first = try String(decoding: Data(contentsOf: files[0]), as: UTF8.self)
        #expect(first.hasPrefix("DKIM-Signature: v=1; a=\(kind == "rsa" ? "rsa" : "ed25519")-sha256; c=relaxed/relaxed;"), "\(first.prefix(200))")
        #expect(first.contains("d=fairrates.example; s=muster2026;"))

        // A changed body, a second From added in transit, another key: each fails.
        let tampered = files[0].deletingLastPathComponent().appendingPathComponent("tampered.eml")
        try Data(first.replacingOccurrences(of: "Hi ", with: "Hi! ").utf8).write(to: tampered)
        let added = files[0].deletingLastPathComponent().appendingPathComponent("added.eml")
        try Data(first.replacingOccurrences(of: "\r\nTo: ", with: "\r\nFrom: Evil <evil@attacker.example>\r\nTo: ").utf8).write(to: added)
        #expect(try verify([tampered, added], key: key) == [false, false])
        let other = try Self.key(kind)
        defer { try? FileManager.default.removeItem(at: other.deletingLastPathComponent()) }
        #expect(try verify([files[0]], key: other) == [false])
    }

    /// With a key, a blast runs more event loops than processors (one signs while another
    /// sends): over 8 connections every signer still gets exactly one message, each one
    /// verifies, and the outbox says all were sent.
    @Test func aSignedBlastOverManyLoopsSendsEachMessageOnceAndEveryOneVerifies() throws {
        let key = try Self.key("rsa")
        defer { try? FileManager.default.removeItem(at: key.deletingLastPathComponent()) }
        let people = (1...24).map { ("Person \($0)", "p\($0)@example.org", true) }
        let box = try MailTests.workspace(signers: people)
        try box.write("muster.yaml", "sender: \"Fair Rates <hello@fairrates.example>\"\nsmtp:\n  url: smtp://127.0.0.1:9\n  starttls: never\ndkim:\n  selector: muster2026\n  key: \(key.path)\n")
        let relay = try TestRelay(in: box)
        let send = try box.run(["mail", "send", "thanks", "--yes", "--connections", "8"], environment: ["MUSTER_SMTP_URL": relay.url])
        #expect(send.status == 0, "\(send)")
        let files = try messages(relay)
        let recipients = try files.map { file in
            let text = try String(decoding: Data(contentsOf: file), as: UTF8.self)
            return text.components(separatedBy: "\r\n").first { $0.hasPrefix("To: ") } ?? ""
        }
        #expect(files.count == people.count, "one message per signer")
        #expect(Set(recipients).count == people.count, "no one twice: \(recipients.sorted())")
        #expect(people.allSatisfy { person in recipients.contains { $0.contains(person.1) } })
        #expect(try verify(files, key: key) == Array(repeating: true, count: files.count), "dkimpy accepts every message")
        let status = try box.run(["mail", "status", "thanks", "--json"])
        #expect(status.stdout.contains("\"sent\":\(people.count)"), "\(status)")
    }

    @Test func aKeyInTheWorkspaceOrReadableByOthersIsRefusedBeforeAnythingIsSent() throws {
        let box = try MailTests.workspace(signers: [("Ana Lima", "ana@example.org", true)])
        let relay = try TestRelay(in: box)
        let outside = try Self.key("ed25519")
        defer { try? FileManager.default.removeItem(at: outside.deletingLastPathComponent()) }
        try FileManager.default.copyItem(at: outside, to: box.path("dkim.pem"))
        chmod(box.path("dkim.pem").path, 0o600)
        let readable = try Self.key("ed25519", mode: 0o644)
        defer { try? FileManager.default.removeItem(at: readable.deletingLastPathComponent()) }
        let garbage = outside.deletingLastPathComponent().appendingPathComponent("garbage.pem")
        try Data("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".utf8).write(to: garbage)
        chmod(garbage.path, 0o600)
        for (path, needle) in [("dkim.pem", "is inside the workspace, which goes into git"),
                               (readable.path, "can be read by others (mode 644): run chmod 600"),
                               (outside.deletingLastPathComponent().appendingPathComponent("missing.pem").path, "cannot be read: No such file or directory"),
                               (garbage.path, "cannot be used")] {
            try box.write("muster.yaml", "sender: \"Fair Rates <hello@fairrates.example>\"\nsmtp:\n  url: smtp://127.0.0.1:9\n  starttls: never\ndkim:\n  selector: muster2026\n  key: \(path)\n")
            let send = try box.run(["mail", "send", "thanks", "--yes"], environment: ["MUSTER_SMTP_URL": relay.url])
            #expect(send.status == 64, "\(path): \(send)")
            #expect(send.stderr.contains(needle), "\(path): \(send)")
            #expect(try messages(relay).isEmpty, "nothing sent")
        }
        // A setting that is not a selector is a muster.yaml error, with its line.
        try box.write("muster.yaml", "sender: \"Fair Rates <hello@fairrates.example>\"\ndkim:\n  selector: \"a b\"\n  key: /nowhere.pem\n")
        let check = try box.run(["check"])
        #expect(check.status != 0 && (check.stdout + check.stderr).contains("muster.yaml:3:13: error: 'selector' must be"), "\(check)")
    }
}
