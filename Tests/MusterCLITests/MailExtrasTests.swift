import Foundation
import Testing

/// A message file as Python's email package reads it (Tests/support/parse_message.py).
private func pythonParse(_ file: URL) throws -> [String: Any] {
    let script = MusterBinary.packageRoot.appendingPathComponent("Tests/support/parse_message.py")
    let result = try Sandbox.run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", script.path, file.path], in: file.deletingLastPathComponent())
    try #require(result.status == 0, "\(result)")
    return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
}

/// The envelopes the relay saved, with their MAIL FROM parameters.
private func envelopes(_ relay: TestRelay) throws -> [(to: [String], options: [String], file: URL)] {
    let names = try FileManager.default.contentsOfDirectory(atPath: relay.spool.path).filter { $0.hasSuffix(".json") }.sorted()
    return try names.map { name in
        let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: relay.spool.appendingPathComponent(name))) as? [String: Any] ?? [:]
        return (meta["rcpt_tos"] as? [String] ?? [], meta["mail_options"] as? [String] ?? [],
                relay.spool.appendingPathComponent(name.replacingOccurrences(of: ".json", with: ".eml")))
    }
}

@Suite(.enabled(if: TestRelay.available, "needs python3 with aiosmtpd (make test installs it)"))
struct MailExtrasTests {
    func env(_ relay: TestRelay) -> [String: String] { ["MUSTER_SMTP_URL": relay.url, "MUSTER_BACKOFF_SECONDS": "0.05"] }

    /// The CSV the deliver email must carry for the signers below: names and regions,
    /// formulas neutralised, the forgotten signer left out, no address anywhere.
    static let expectedSheet = "name,region\r\n"
        + "Ana Lima,Lyon\r\n"
        + "\"'=HYPERLINK(\"\"http://evil.test\"\",\"\"x\"\")\",Lyon\r\n"
        + "\"'@SUM(1+1)\",Lyon\r\n"
        + "Out Person,Lyon\r\n"

    static func deliverWorkspace() throws -> Sandbox {
        let box = try MailTests.workspace(signers: [
            ("Ana Lima", "ana@example.org", true), ("=HYPERLINK(\"http://evil.test\",\"x\")", "eve@example.org", false),
            ("Gone Person", "gone@example.org", true), ("@SUM(1+1)", "sum@example.org", true), ("Out Person", "out@example.org", true),
        ])
        #expect(try box.run(["forget", "gone@example.org"]).status == 0)
        #expect(try box.run(["unsubscribe", "out@example.org"]).status == 0)
        try box.write("campaigns/fair-rates/emails/deliver.md", """
            ---
            subject: "Petition: {{campaign.count}} signatures"
            audience: targets
            attach_signatures: csv
            ---
            Dear {{name}}, here is our petition, signed by {{campaign.count}} people: their names are attached.
            """)
        return box
    }

    func checkSheet(_ file: URL) throws {
        let parsed = try pythonParse(file)
        #expect(parsed["content_type"] as? String == "multipart/mixed")
        #expect(parsed["structure"] as? [String] == ["multipart/mixed", "multipart/alternative", "text/plain", "text/html", "text/csv"])
        #expect((parsed["defects"] as? [String])?.isEmpty == true, "\(parsed["defects"] ?? "")")
        let parts = try #require(parsed["parts"] as? [[String: Any]])
        let sheet = try #require(parts.last)
        #expect(sheet["disposition"] as? String == "attachment")
        #expect(sheet["filename"] as? String == "fair-rates-signatures.csv")
        #expect(sheet["charset"] as? String == "utf-8")
        #expect(sheet["cte"] as? String == "base64")
        let csv = try #require(sheet["text"] as? String)
        #expect(csv == Self.expectedSheet)
        #expect(!csv.contains("@example.org") && !csv.contains("Gone"), "no addresses, no forgotten signer")
        #expect((parts[0]["text"] as? String)?.contains("signed by 5 people") == true)
    }

    @Test func deliverEmailCarriesTheSignatureSheetInPreviewDryRunAndSend() throws {
        let box = try Self.deliverWorkspace()
        let check = try box.run(["check"])
        #expect(check.status == 0, "\(check)")

        // Preview: the exact message, attachment included.
        let preview = try box.run(["mail", "preview", "deliver"])
        #expect(preview.status == 0, "\(preview)")
        #expect(preview.stdout.contains("Content-Type: multipart/mixed;"))
        #expect(preview.stdout.contains("Content-Disposition: attachment; filename=\"fair-rates-signatures.csv\"\r\n"))
        try box.write("preview.eml", preview.stdout)
        try checkSheet(box.path("preview.eml"))

        // Dry run: the .eml carries it too.
        let dry = try box.run(["mail", "send", "deliver", "--dry-run", "--out", "out"])
        #expect(dry.status == 0, "\(dry)")
        try checkSheet(box.path("out/00001.eml"))

        // Sent through a real relay: parsed back, the CSV decodes to the expected sheet.
        let relay = try TestRelay(in: box)
        let send = try box.run(["mail", "send", "deliver", "--yes", "--json"], environment: env(relay))
        #expect(send.status == 0, "\(send)")
        #expect(try send.json()["sent"] as? Int == 1)
        let received = try envelopes(relay)
        #expect(received.map(\.to) == [["board@agencies.example"]])
        try checkSheet(try #require(received.first).file)
    }

    @Test func checkRefusesAttachSignaturesOutsideTargetsAndPersonalColumns() throws {
        let box = try MailTests.workspace(signers: [("Ana Lima", "ana@example.org", true)])
        try box.write("campaigns/fair-rates/emails/leak.md", "---\nsubject: \"Hi\"\naudience: signers\nattach_signatures: [name, email]\n---\nHi\n")
        let check = try box.run(["check"])
        #expect(check.status == 65, "\(check)")
        let output = check.stdout + check.stderr
        #expect(output.contains("campaigns/fair-rates/emails/leak.md:4:20: error: attach_signatures is only for 'audience: targets'"), "\(check)")
        #expect(output.contains("campaigns/fair-rates/emails/leak.md:4:27: error: attach_signatures: 'email' cannot be attached"), "\(check)")
        let send = try box.run(["mail", "send", "leak", "--dry-run", "--out", "out"])
        #expect(send.status == 65, "\(send)")
        #expect(!box.exists("out/00001.eml"), "nothing written")
    }

    @Test func utf8LocalPartIsSentWithSMTPUTF8WhenTheRelayOffersItAndFailsClearlyOtherwise() throws {
        let box = try MailTests.workspace(signers: [("Ana Lima", "ana@example.org", true), ("Jöns Ek", "jöns@bücher.example", true)])

        // A relay without SMTPUTF8: Ana gets it; Jöns is `failed` with the reason, not mangled.
        let plain = try TestRelay(in: box)
        let first = try box.run(["mail", "send", "thanks", "--yes", "--json"], environment: env(plain))
        #expect(first.status == 0, "\(first)")
        #expect(try first.json()["sent"] as? Int == 1)
        #expect(try first.json()["failed"] as? Int == 1)
        #expect(try envelopes(plain).map(\.to) == [["ana@example.org"]])
        let details = try box.run(["mail", "status", "thanks", "--details"])
        #expect(details.stdout.contains("failed: entry 2 after 1 attempt: not sent: the recipient's address has a non-ASCII local part, which needs SMTPUTF8 (RFC 6531), and the relay does not offer it"), "\(details)")
        #expect(!details.stdout.contains("jöns"), "no address in the outbox")

        // A relay with SMTPUTF8: a test send goes out with SMTPUTF8, To in raw UTF-8 (RFC 6532), domain as Punycode.
        let utf8 = try TestRelay(["--smtputf8"], in: box)
        let test = try box.run(["mail", "send", "thanks", "--to", "jöns@bücher.example"], environment: env(utf8))
        #expect(test.status == 0, "\(test)")
        let got = try #require(try envelopes(utf8).first)
        #expect(got.to == ["jöns@xn--bcher-kva.example"])
        #expect(got.options.contains("SMTPUTF8"))
        let parsed = try pythonParse(got.file)
        #expect(parsed["utf8_headers"] as? Bool == true)
        #expect((parsed["headers"] as? [String: [String]])?["To"] == ["Jöns Ek <jöns@xn--bcher-kva.example>"])
        #expect((parsed["headers"] as? [String: [String]])?["Subject"] == ["Thank you, Jöns!"])
        // Python flags a non-ASCII local part as a defect under RFC 5322; RFC 6532 allows it.
        #expect((parsed["defects"] as? [String] ?? []).filter { $0 != "NonASCIILocalPartDefect" }.isEmpty, "\(parsed["defects"] ?? "")")
        let parts = try #require(parsed["parts"] as? [[String: Any]])
        #expect((parts.first?["text"] as? String)?.contains("Hi Jöns (Jöns Ek)") == true)
    }
}

/// Issue 10: numeric options, audience changes, refusals that are about the session, and
/// opt-outs taking effect on a running blast — all through the real binary.
@Suite(.enabled(if: TestRelay.available, "needs python3 with aiosmtpd (make test installs it)"))
struct BlastSafetyTests {
    static let ledger = "campaigns/fair-rates/ledger.sqlite"

    func env(_ relay: TestRelay) -> [String: String] { ["MUSTER_SMTP_URL": relay.url, "MUSTER_BACKOFF_SECONDS": "0.05"] }

    static func signers(_ count: Int) -> [(String, String, Bool)] {
        (0..<count).map { ("Person \($0)", "p\($0)@example.org", true) }
    }

    func journals(_ box: Sandbox) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: box.path("campaigns/fair-rates").path).filter { $0.hasPrefix(".mail.journal") }
    }

    func states(_ box: Sandbox, _ template: String = "thanks") throws -> [String: Int] {
        let rows = try box.sqlite(Self.ledger, "SELECT state, count(*) FROM outbox WHERE template = '\(template)' GROUP BY state").stdout
        var result: [String: Int] = [:]
        for line in rows.split(separator: "\n") {
            let cells = line.split(separator: "|")
            if cells.count == 2 { result[String(cells[0])] = Int(cells[1]) }
        }
        return result
    }

    /// Item 9: `--rate 1e20/s` crashed (Double → Int) and left journals behind.
    @Test func everyNumericOptionIsRangeCheckedWithAUsageError() throws {
        let box = try MailTests.workspace(signers: Self.signers(2))
        let relay = try TestRelay(in: box)
        let cases: [([String], String)] = [
            (["--rate", "1e20/s"], "--rate"), (["--rate", "0/s"], "--rate"), (["--rate", "-3/s"], "--rate"),
            (["--rate", "nan/s"], "--rate"), (["--rate", "inf/s"], "--rate"), (["--rate", "0.0001/s"], "--rate"),
            (["--limit", "0"], "--limit"), (["--limit", "-5"], "--limit"), (["--limit", "2000000000"], "--limit"),
            (["--limit", "99999999999999999999"], "--limit"),
            (["--connections", "0"], "--connections"), (["--connections", "65"], "--connections"),
            (["--connections", "-1"], "--connections"),
        ]
        for (options, name) in cases {
            let result = try box.run(["mail", "send", "thanks", "--yes"] + options, environment: env(relay))
            #expect(result.status == 64, "\(options): \(result)")
            #expect(result.stderr.contains(name), "\(options) names the option: \(result.stderr)")
            let left = try journals(box)
            #expect(left.isEmpty, "\(options) left \(left)")
        }
        let rate = try box.run(["mail", "send", "thanks", "--yes", "--rate", "1e20/s"], environment: env(relay))
        #expect(rate.stderr.contains("between 0.001 and 1000000"), "the allowed range: \(rate.stderr)")
        let connections = try box.run(["mail", "send", "thanks", "--yes", "--connections", "65"], environment: env(relay))
        #expect(connections.stderr.contains("between 1 and 64"), "\(connections.stderr)")
        #expect(try relay.received().isEmpty, "nothing was sent")
        #expect(try states(box).isEmpty, "nothing was queued")
        for goal in ["0", "-1", "2000000000"] {
            let new = try box.run(["new", "other", "--goal=\(goal)"])
            #expect(new.status == 64, "--goal \(goal): \(new)")
            #expect(new.stderr.contains("--goal must be between 1 and 1000000000"), "\(new.stderr)")
            #expect(!box.exists("campaigns/other"), "nothing written for --goal \(goal)")
        }
        // The edges of the ranges are accepted.
        let edge = try box.run(["mail", "send", "thanks", "--yes", "--rate", "1000000/s", "--connections", "64", "--limit", "1", "--json"], environment: env(relay))
        #expect(edge.status == 0, "\(edge)")
        #expect(try relay.received().count == 1)
        #expect(try journals(box).isEmpty)
    }

    /// Item 8: rows queued while a template was for signers were sent the targets message
    /// (with the signature sheet) after its audience became `targets`.
    @Test func rowsQueuedForOneAudienceAreNeverSentUnderAnother() throws {
        let box = try MailTests.workspace(signers: Self.signers(3))
        try box.write("campaigns/fair-rates/emails/switch.md", "---\nsubject: \"For signers\"\naudience: signers\n---\nHello {{name}}.\n")
        let relay = try TestRelay(in: box)
        let first = try box.run(["mail", "send", "switch", "--yes", "--limit", "1", "--json"], environment: env(relay))
        #expect(first.status == 0, "\(first)")
        #expect(try states(box, "switch") == ["sent": 1, "queued": 2])
        // The template now goes to the targets, with the signature sheet.
        try box.write("campaigns/fair-rates/emails/switch.md", "---\nsubject: \"Petition for the board\"\naudience: targets\nattach_signatures: csv\n---\nDear {{name}}, here is our petition.\n")
        let plan = try box.run(["mail", "send", "switch", "--yes", "--json"], environment: env(relay))
        #expect(plan.status == 0, "\(plan)")
        #expect(plan.stderr.contains("plan: 1 recipient (targets), 1 already sent, 1 to send"), "\(plan.stderr)")
        let received = try relay.received()
        #expect(received.count == 2, "the first signer, then the board only: \(received.map(\.to))")
        #expect(received.filter { $0.raw.contains("Petition for the board") }.map(\.to) == [["board@agencies.example"]])
        for message in received where message.to != ["board@agencies.example"] {
            #expect(!message.raw.contains("Petition for the board") && !message.raw.contains("text/csv"), "a signer got the targets message")
        }
        #expect(try states(box, "switch") == ["sent": 2, "failed": 2])
        let status = try box.run(["mail", "status", "switch", "--details"])
        #expect(status.stdout.contains("queued for another audience"), "\(status.stdout)")
        // And back to signers: the board's row is not sent the signers message either.
        try box.write("campaigns/fair-rates/emails/switch.md", "---\nsubject: \"For signers\"\naudience: signers\n---\nHello {{name}}.\n")
        let back = try box.run(["mail", "send", "switch", "--yes", "--retry-failed", "--json"], environment: env(relay))
        #expect(back.status == 0, "\(back)")
        #expect(try relay.received().filter { $0.to == ["board@agencies.example"] }.count == 1, "the board got only the targets message")
        #expect(try relay.received().count == 4, "the two signers left over get the signers message")
    }

    /// Item 6: a 5xx to the greeting, EHLO/HELO or MAIL FROM marked every row failed for
    /// good (exit 0, nothing could be resent). It is about the session: stop, rows queued, exit 1.
    @Test func aRefusedSessionOrSenderStopsTheBlastAndLeavesRowsQueued() throws {
        let box = try MailTests.workspace(signers: Self.signers(5))
        for (arguments, code) in [(["--reject-sender", "hello@"], "553"), (["--mode", "greet554"], "554"), (["--reject-helo"], "550")] {
            let relay = try TestRelay(arguments, in: box)
            let result = try box.run(["mail", "send", "thanks", "--yes", "--json"], environment: env(relay))
            #expect(result.status == 1, "\(arguments): \(result)")
            #expect(result.stderr.contains("the relay refused the session or the sender"), "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains(code), "\(arguments): the relay's reply: \(result.stderr)")
            #expect(try relay.received().isEmpty)
            #expect(try states(box) == ["queued": 5], "\(arguments): every row still queued")
            #expect(try box.sqlite(Self.ledger, "SELECT count(*) FROM outbox WHERE attempts > 0 OR reply IS NOT NULL").stdout == "0\n")
            #expect(try journals(box).isEmpty)
        }
        // Fixed: the same rows go out.
        let good = try TestRelay(["--reject-rcpt", "p3@"], in: box)
        let send = try box.run(["mail", "send", "thanks", "--yes", "--json"], environment: env(good))
        #expect(send.status == 0, "\(send)")
        #expect(try states(box) == ["sent": 4, "failed": 1], "a 5xx to RCPT is still about that recipient")
        // That 550 5.1.1 also suppressed p3 (docs/mail.md, "Bounces and suppression"): lift it, as
        // once the mailbox is fixed, so that --retry-failed may send it again.
        #expect(try box.run(["unsubscribe", "p3@example.org", "--reset-bounces"]).status == 0)
        // --retry-failed requeues failed rows (never unknown ones), and the plan says so.
        try box.sqlite(Self.ledger, "UPDATE outbox SET state = 'unknown' WHERE template = 'thanks' AND signature = (SELECT min(signature) FROM outbox)")
        let fixed = try TestRelay(in: box)
        let without = try box.run(["mail", "send", "thanks", "--yes", "--json"], environment: env(fixed))
        #expect(without.status == 0, "\(without)")
        #expect(without.stderr.contains("1 failed earlier (sent again only with --retry-failed)"), "\(without.stderr)")
        #expect(try fixed.received().isEmpty)
        let retry = try box.run(["mail", "send", "thanks", "--yes", "--retry-failed", "--json"], environment: env(fixed))
        #expect(retry.status == 0, "\(retry)")
        #expect(retry.stderr.contains("1 to send"), "\(retry.stderr)")
        #expect(retry.stderr.contains("1 failed earlier (1 sent again: --retry-failed)"), "\(retry.stderr)")
        #expect(try retry.json()["retried_failed"] as? Int == 1)
        #expect(try fixed.received().map(\.to) == [["p3@example.org"]])
        #expect(try states(box) == ["sent": 4, "unknown": 1], "the unknown row waits for --retry-unknown")
    }

    /// Item 5: the feed holds pages of 500 in memory, so at a low --rate someone who
    /// unsubscribed or was forgotten meanwhile was still mailed minutes later.
    @Test func unsubscribeAndForgetTakeEffectOnARunningBlast() throws {
        let box = try MailTests.workspace(signers: Self.signers(10))
        let relay = try TestRelay(in: box)
        let blast = try box.start(["mail", "send", "thanks", "--yes", "--rate", "2/s", "--connections", "1"], environment: env(relay))
        let deadline = Date().addingTimeInterval(30)
        while try relay.received().count < 2 && Date() < deadline { usleep(20_000) }
        #expect(blast.isRunning, "the blast is still running")
        let unsubscribe = try box.run(["unsubscribe", "p7@example.org"])
        #expect(unsubscribe.status == 0, "\(unsubscribe)")
        let forget = try box.run(["forget", "p8@example.org"])
        #expect(forget.status == 0, "\(forget)")
        let mailedBefore = Set(try relay.received().flatMap(\.to))
        blast.waitUntilExit()
        #expect(blast.terminationStatus == 0)
        let mailed = try relay.received().flatMap(\.to)
        #expect(!mailed.contains("p7@example.org") || mailedBefore.contains("p7@example.org"), "p7 was mailed after unsubscribing")
        #expect(!mailed.contains("p8@example.org") || mailedBefore.contains("p8@example.org"), "p8 was mailed after being forgotten")
        #expect(mailedBefore.count < 7, "the opt-outs came before p7 and p8 were due: \(mailedBefore)")
        #expect(mailed.count == 8, "everyone else: \(mailed)")
        #expect(try states(box) == ["sent": 8, "failed": 2])
    }
}
