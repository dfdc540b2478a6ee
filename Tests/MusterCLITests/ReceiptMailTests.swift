import Foundation
import Testing

/// `receipt: attach` (docs/mail.md, "Receipts in a thank-you mail"), end to end: the real
/// binary blasts to the loopback relay (Tests/support/smtp_server.py), each received
/// message is read by Python's email package, and the attachment is checked by the
/// reference verifier (scripts/muster_verify.py) and against `muster receipt`.
@Suite(.enabled(if: TestRelay.available, "needs python3 with aiosmtpd (make test installs it)"))
struct ReceiptMailTests {
    static let template = """
        ---
        subject: "Thank you, {{first_name}}: your receipt"
        audience: signers
        receipt: attach
        ---
        Hi {{first_name}}, you are entry {{receipt_entry}} of our checkpoint ({{receipt_checkpoint}}).
        """

    static func workspace() throws -> Sandbox {
        let box = try MailTests.workspace(signers: [
            ("Ana Lima", "ana@example.org", true), ("Zoé Ŝ", "zoe@bücher.example", false),
            ("Bo", "bo@example.org", true), ("Gone", "gone@example.org", true),
        ])
        try box.write("campaigns/fair-rates/emails/receipt.md", Self.template)
        return box
    }

    /// Every part of the message as parse_message.py reads it.
    static func parts(_ file: URL) throws -> (structure: [String], parts: [[String: Any]], defects: [String]) {
        let script = MusterBinary.packageRoot.appendingPathComponent("Tests/support/parse_message.py")
        let result = try Sandbox.run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", script.path, file.path], in: file.deletingLastPathComponent())
        try #require(result.status == 0, "\(result)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        return (object["structure"] as? [String] ?? [], object["parts"] as? [[String: Any]] ?? [], object["defects"] as? [String] ?? [])
    }

    func env(_ relay: TestRelay, _ keys: TransparencyCLITests.KeyHome) -> [String: String] {
        keys.environment.merging(["MUSTER_SMTP_URL": relay.url, "MUSTER_BACKOFF_SECONDS": "0.05"]) { $1 }
    }

    @Test func eachSignerGetsTheirOwnReceiptThatTheReferenceVerifierAccepts() throws {
        let box = try Self.workspace()
        let keys = try TransparencyCLITests.KeyHome()
        let relay = try TestRelay(in: box)
        #expect(try box.run(["check"]).status == 0)

        // No checkpoint yet: refused before anything is queued or sent.
        let early = try box.run(["mail", "send", "receipt", "--yes"], environment: env(relay, keys))
        #expect(early.status == 1 && early.stderr.contains("receipt.md attaches each signer's receipt (receipt: attach), but fair-rates has no checkpoint yet"), "\(early)")
        #expect(try relay.received().isEmpty)
        #expect(try box.sqlite("campaigns/fair-rates/ledger.sqlite", "SELECT count(*) FROM outbox").stdout == "0\n")

        // A checkpoint, then a new signature after it: refused again, naming the checkpoint.
        #expect(try box.run(["checkpoint"], environment: keys.environment).status == 0)
        #expect(try box.run(["sign", "--name", "Late", "--email", "late@example.org", "--field", "region=Lyon"]).status == 0)
        let stale = try box.run(["mail", "send", "receipt", "--yes"], environment: env(relay, keys))
        #expect(stale.status == 1 && stale.stderr.contains("campaigns/fair-rates/checkpoints/4.txt, covers entries 1–4 and signatures were added after it (up to entry 5)"), "\(stale)")
        #expect(try relay.received().isEmpty)

        // A checkpoint covering everyone; a forget after it adds no signer and is fine.
        #expect(try box.run(["checkpoint"], environment: keys.environment).status == 0)
        #expect(try box.run(["forget", "gone@example.org"]).status == 0)
        let send = try box.run(["mail", "send", "receipt", "--yes", "--json"], environment: env(relay, keys))
        #expect(send.status == 0, "\(send)")
        #expect(try send.json()["sent"] as? Int == 4)

        let vkey = box.path("campaigns/fair-rates/checkpoint.vkey").path
        let note = try String(contentsOf: box.path("campaigns/fair-rates/checkpoints/5.txt"), encoding: .utf8)
        let rootLine = note.split(separator: "\n")[2]
        let messages = try FileManager.default.contentsOfDirectory(atPath: relay.spool.path).filter { $0.hasSuffix(".eml") }.sorted()
        #expect(messages.count == 4)
        var seen: Set<String> = []
        for (index, name) in messages.enumerated() {
            let to = try relay.received()[index].to
            let address = try #require(to.first)
            let parsed = try Self.parts(relay.spool.appendingPathComponent(name))
            #expect(parsed.structure == ["multipart/mixed", "multipart/alternative", "text/plain", "text/html", "application/json"], "\(parsed.structure)")
            #expect(parsed.defects.isEmpty, "\(parsed.defects)")
            let text = try #require(parsed.parts.first { $0["content_type"] as? String == "text/plain" }?["text"] as? String)
            let attachment = try #require(parsed.parts.last)
            #expect(attachment["disposition"] as? String == "attachment" && attachment["filename"] as? String == "receipt.json")
            let json = try #require(attachment["text"] as? String)
            let file = box.path("received-\(index).json")
            try Data(json.utf8).write(to: file)

            // The signer as muster knows them: the same bytes as `muster receipt`.
            let typed = address == "zoe@xn--bcher-kva.example" ? "zoe@bücher.example" : address
            let direct = try box.run(["receipt", typed])
            #expect(direct.status == 0, "\(direct)")
            #expect(direct.stdout == json, "the attachment is what `muster receipt \(typed)` writes")

            // The reference verifier accepts it for that address, and it is theirs only.
            let verified = try Sandbox.run(URL(fileURLWithPath: "/usr/bin/env"),
                                           ["python3", TransparencyCLITests.verifier.path, "receipt", file.path, "--key", vkey, "--email", typed, "--json"], in: box.root)
            #expect(verified.status == 0, "\(verified)")
            let receipt = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
            let entry = try #require((receipt["entry"] as? [String: Any])?["seq"] as? Int)
            #expect(receipt["tree_size"] as? Int == 5)
            #expect(text.contains("you are entry \(entry) of our checkpoint (5 entries, root \(rootLine.prefix(16)))."), "\(text)")
            for other in ["ana@example.org", "zoe@bücher.example", "bo@example.org", "late@example.org"] where other != typed {
                #expect(!json.contains(other), "\(typed)'s receipt holds nobody else's address")
            }
            let wrong = try Sandbox.run(URL(fileURLWithPath: "/usr/bin/env"),
                                        ["python3", TransparencyCLITests.verifier.path, "receipt", file.path, "--key", vkey, "--email", "gone@example.org"], in: box.root)
            #expect(wrong.status == 1, "a receipt proves its own signer only: \(wrong)")
            seen.insert(typed)
        }
        #expect(seen == ["ana@example.org", "zoe@bücher.example", "bo@example.org", "late@example.org"])

        // Never twice: a rerun sends nothing, even with a newer checkpoint.
        #expect(try box.run(["sign", "--name", "Later", "--email", "later@example.org", "--field", "region=Lyon"]).status == 0)
        #expect(try box.run(["checkpoint"], environment: keys.environment).status == 0)
        let again = try box.run(["mail", "send", "receipt", "--yes", "--json"], environment: env(relay, keys))
        #expect(again.status == 0, "\(again)")
        #expect(try again.json()["sent"] as? Int == 1, "only the new signer")
        #expect(try relay.received().count == 5)
        #expect(try relay.received().last?.to == ["later@example.org"])
    }

    @Test func checkReportsMisusedReceiptsWithTheirLine() throws {
        let box = try Self.workspace()
        try box.write("campaigns/fair-rates/emails/link.md", "---\nsubject: \"Hi\"\naudience: signers\nreceipt: link\n---\nHi\n")
        try box.write("campaigns/fair-rates/emails/board.md", "---\nsubject: \"Hi\"\naudience: targets\nreceipt: attach\n---\nDear {{name}}\n")
        try box.write("campaigns/fair-rates/emails/plain.md", "---\nsubject: \"Hi\"\naudience: signers\n---\nEntry {{receipt_entry}} of {{receipt_checkpoint}}\n")
        let check = try box.run(["check"])
        #expect(check.status == 65, "\(check)")
        let output = check.stdout + check.stderr
        #expect(output.contains("campaigns/fair-rates/emails/link.md:4:10: error: receipt must be 'attach' (each signer's receipt as the file receipt.json), not 'link'"), "\(output)")
        #expect(output.contains("campaigns/fair-rates/emails/board.md:4:10: error: receipt: attach is for signers (audience signers or consenting)"), "\(output)")
        #expect(output.contains("campaigns/fair-rates/emails/plain.md:5:7: error: unknown variable 'receipt_entry' (it needs 'receipt: attach' in the front matter)"), "\(output)")
        #expect(output.contains("plain.md:5:28: error: unknown variable 'receipt_checkpoint' (it needs 'receipt: attach' in the front matter)"), "\(output)")
    }

    @Test func aSampleSignerGetsNoReceiptAndADryRunWritesEachOne() throws {
        let box = try Self.workspace()
        let keys = try TransparencyCLITests.KeyHome()
        #expect(try box.run(["checkpoint"], environment: keys.environment).status == 0)
        let sample = try box.run(["mail", "preview", "receipt", "--to", "nobody@example.org"])
        #expect(sample.status == 0, "\(sample)")
        #expect(!sample.stdout.contains("receipt.json") && sample.stdout.contains("you are entry  of our checkpoint (4 entries, root "), "\(sample.stdout)")
        let dry = try box.run(["mail", "send", "receipt", "--dry-run", "--out", "eml"])
        #expect(dry.status == 0, "\(dry)")
        let files = try FileManager.default.contentsOfDirectory(atPath: box.path("eml").path).filter { $0.hasSuffix(".eml") }
        #expect(files.count == 4)
        for file in files {
            let parsed = try Self.parts(box.path("eml").appendingPathComponent(file))
            #expect(parsed.parts.last?["filename"] as? String == "receipt.json")
        }
    }
}
