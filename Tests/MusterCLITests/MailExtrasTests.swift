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
