import Foundation
import MusterKit
import Testing

/// A mailbox in memory for `InboxProcessor` (the IMAP one needs a server).
final class MemoryMailbox: MailboxAccess, @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [UInt64: [UInt8]] = [:]
    private(set) var moved: [UInt64: String] = [:]

    init(_ texts: [String]) {
        for (index, text) in texts.enumerated() { messages[UInt64(index + 1)] = Array(text.utf8) }
    }

    func listUIDs() throws -> (validity: UInt64, uids: [UInt64]) {
        lock.withLock { (1, messages.keys.filter { moved[$0] == nil }.sorted()) }
    }

    func fetch(uid: UInt64, limit: Int) throws -> [UInt8] {
        try lock.withLock {
            guard let bytes = messages[uid] else { throw MailboxError.protocolError("no UID \(uid)") }
            return bytes
        }
    }

    func move(uids: [UInt64], to folder: String) throws { lock.withLock { for uid in uids { moved[uid] = folder } } }
}

/// Bounces and suppression with the real binary and the loopback relay: VERP envelope
/// senders, the relay's 5xx, what `mail status`, `report` and `export` show, and a
/// suppression recorded while a blast runs.
@Suite(.enabled(if: TestRelay.available, "needs python3 with aiosmtpd (make test installs it)"))
struct InboxCLITests {
    static let ledger = "campaigns/fair-rates/ledger.sqlite"

    func env(_ relay: TestRelay) -> [String: String] { ["MUSTER_SMTP_URL": relay.url, "MUSTER_BACKOFF_SECONDS": "0.05"] }

    static func verpWorkspace(signers: [String]) throws -> Sandbox {
        let box = try MailTests.workspace(signers: signers.map { ($0.capitalized, "\($0)@example.org", true) })
        try box.write("muster.yaml", """
            sender: "Fair Rates <hello@fairrates.example>"
            smtp:
              url: smtp://127.0.0.1:9
              starttls: never
              verp: bounces@fairrates.example

            """)
        return box
    }

    /// A prose bounce delivered to `envelope`, quoting nothing of the message.
    static func proseBounce(to envelope: String, id: Int) -> String {
        """
        Return-Path: <>
        Delivered-To: \(envelope)
        From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
        To: \(envelope)
        Subject: Undelivered Mail Returned to Sender
        Message-ID: <bounce-\(id)@mx.example.net>

        550 5.1.1 no such user here

        """
    }

    /// The envelope sender and Message-ID of every message the relay accepted, by recipient.
    func envelopes(_ relay: TestRelay) throws -> [String: (from: String, messageID: String)] {
        var result: [String: (String, String)] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: relay.spool.path).filter({ $0.hasSuffix(".json") }) {
            let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: relay.spool.appendingPathComponent(name))) as? [String: Any] ?? [:]
            let raw = try String(contentsOf: relay.spool.appendingPathComponent(name.replacingOccurrences(of: ".json", with: ".eml")), encoding: .utf8)
            let id = raw.split(separator: "\r\n").first { $0.lowercased().hasPrefix("message-id:") }.map { String($0.dropFirst(11)).trimmingCharacters(in: CharacterSet(charactersIn: " <>")) } ?? ""
            for to in meta["rcpt_tos"] as? [String] ?? [] { result[to] = (meta["mail_from"] as? String ?? "", id) }
        }
        return result
    }

    @Test func verpSendsAndTheBounceComesBackToTheRightSignerAndEverythingShowsIt() throws {
        let box = try Self.verpWorkspace(signers: ["ana", "bad", "cy"])
        #expect(try box.run(["check"]).status == 0)
        let relay = try TestRelay(["--reject-rcpt", "^bad@"], in: box)
        let send = try box.run(["mail", "send", "thanks", "--yes", "--json"], environment: env(relay))
        #expect(send.status == 0, "a refused recipient fails its row, not the run: \(send)")
        // Each envelope sender is bounces+<the Message-ID's token>@fairrates.example.
        let sent = try envelopes(relay)
        #expect(Set(sent.keys) == ["ana@example.org", "cy@example.org"])
        for (address, envelope) in sent {
            #expect(envelope.messageID.hasPrefix("muster.") && envelope.messageID.hasSuffix("@fairrates.example"), "\(envelope)")
            let token = envelope.messageID.dropFirst("muster.".count).prefix(36)
            #expect(envelope.from == "bounces+\(token)@fairrates.example", "\(envelope)")
            // The recipient's address is not in its envelope sender (a short local part such
            // as "cy" may turn up in a random token by chance, so the whole address is checked).
            #expect(!envelope.from.contains(address) && !envelope.from.contains("example.org"), "\(envelope)")
        }
        #expect(sent["ana@example.org"]?.from != sent["cy@example.org"]?.from)
        // The relay refused bad@ with 550 5.1.1: suppressed at once.
        var status = try box.run(["mail", "status", "--json"]).json()
        #expect(status["bounced"] as? Int == 1 && status["complained"] as? Int == 0, "\(status)")

        // A bounce delivered to cy's VERP address, with nothing else in it, is decoded back to cy.
        let cyEnvelope = try #require(sent["cy@example.org"]?.from)
        let mailbox = MemoryMailbox([Self.proseBounce(to: cyEnvelope, id: 1),
                                     Self.proseBounce(to: "bounces+\(String(repeating: "a", count: 36))@fairrates.example", id: 2)])
        let summary = try InboxProcessor.run(workspace: Workspace(root: box.root), mailbox: mailbox, options: InboxOptions())
        #expect(summary.hard == 1 && summary.unrecognised == 1 && summary.suppressedNow == 1, "\(summary)")
        #expect(mailbox.moved == [1: "muster/processed", 2: "muster/unrecognised"])

        status = try box.run(["mail", "status", "--json"]).json()
        #expect(status["bounced"] as? Int == 2, "\(status)")
        let text = try box.run(["mail", "status"]).stdout
        #expect(text.contains("bounced") && text.contains("suppressed: 2 bounced, 0 complained"), "\(text)")
        let report = try box.run(["report", "--json"]).json()
        let mail = try #require((report["mail"] as? [[String: Any]])?.first)
        #expect(mail["bounced"] as? Int == 2 && mail["complained"] as? Int == 0, "\(mail)")
        for format in ["text", "markdown", "html"] {
            let shown = try box.run(["report", "--format", format]).stdout
            #expect(shown.contains("uppressed: 2 bounced, 0 complained"), "\(format): \(shown)")
        }
        let export = try box.run(["export", "--fields", "email,suppressed"]).stdout.replacingOccurrences(of: "\r\n", with: "\n")
        #expect(export.contains("ana@example.org,\n") && export.contains("bad@example.org,bounce") && export.contains("cy@example.org,bounce"), "\(export)")

        // Nobody suppressed gets the next template; the reset brings bad@ back.
        try box.write("campaigns/fair-rates/emails/later.md", "---\nsubject: \"Later\"\naudience: signers\n---\nLater, {{name}}.\n")
        let later = try TestRelay(in: box)
        #expect(try box.run(["mail", "send", "later", "--yes"], environment: env(later)).status == 0)
        #expect(try later.received().flatMap(\.to) == ["ana@example.org"])
        let reset = try box.run(["unsubscribe", "bad@example.org", "--reset-bounces", "--json"]).json()
        #expect(reset["status"] as? String == "bounces_reset")
        #expect(try box.run(["mail", "send", "later", "--yes"], environment: env(later)).status == 0)
        #expect(try later.received().flatMap(\.to).sorted() == ["ana@example.org", "bad@example.org"])
        #expect(try box.run(["verify"]).status == 0)
        // No address in the new tables.
        let stored = try box.sqlite(Self.ledger, "SELECT count(*) FROM bounces WHERE recipient LIKE '%@%' OR coalesce(status, '') LIKE '%@%'").stdout
        #expect(stored == "0\n")
    }

    @Test func aVERPBaseThatCannotWorkIsAnErrorOfCheck() throws {
        let box = try Self.verpWorkspace(signers: [])
        try box.write("muster.yaml", "sender: \"Fair Rates <hello@fairrates.example>\"\nsmtp:\n  url: smtp://127.0.0.1:9\n  verp: bounces+x@fairrates.example\n")
        let check = try box.run(["check"])
        #expect(check.status == 65 && check.stderr.contains("'verp'") && check.stderr.contains("muster.yaml:4"), "\(check)")
    }

    /// The reviewer's test for opt-outs, for suppressions: a bounce processed by another
    /// process while a slow blast runs stops that signer's message.
    @Test func aBounceProcessedDuringABlastStopsThatMessage() throws {
        let names = (0..<12).map { "m\($0)" }
        let box = try Self.verpWorkspace(signers: names)
        let relay = try TestRelay(in: box)
        let blast = try box.start(["mail", "send", "thanks", "--yes", "--rate", "2/s"], environment: env(relay))
        let deadline = Date().addingTimeInterval(30)
        while try relay.received().count < 2 && Date() < deadline { usleep(20_000) }
        // m9's token, as its message will carry it (the blast queued its row).
        let ledger = try #require(try Ledger.open(box.path(Self.ledger), create: false))
        let token = try ledger.mailTokenKey().token(campaign: "fair-rates", template: "thanks",
                                                    recipient: try ledger.recipientKey(email: "m9@example.org")).text
        let mailbox = MemoryMailbox([Self.proseBounce(to: "bounces+\(token)@fairrates.example", id: 9)])
        let summary = try InboxProcessor.run(workspace: Workspace(root: box.root), mailbox: mailbox, options: InboxOptions())
        #expect(summary.suppressedNow == 1, "\(summary)")
        let before = try relay.received().count
        #expect(before < 9, "the bounce came before m9 was due: \(before) sent")
        blast.waitUntilExit()
        #expect(blast.terminationStatus == 0)
        let mailed = try relay.received().flatMap(\.to)
        #expect(!mailed.contains("m9@example.org"), "\(mailed)")
        #expect(mailed.count == 11, "everyone else was mailed: \(mailed)")
        let failed = try box.sqlite(Self.ledger, "SELECT reply FROM outbox WHERE state = 'failed'").stdout
        #expect(failed == "not sent: unsubscribed, forgotten or no longer in the audience\n", "\(failed)")
    }
}
