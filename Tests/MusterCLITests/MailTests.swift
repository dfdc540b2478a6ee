import Foundation
import Testing

/// The loopback SMTP server of Tests/support/smtp_server.py (aiosmtpd), for one test.
final class TestRelay {
    let process = Process()
    let spool: URL
    let port: Int
    private let stdin = Pipe()

    static var available: Bool {
        let check = Process()
        check.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        check.arguments = ["python3", "-c", "import aiosmtpd"]
        check.standardError = FileHandle.nullDevice
        try? check.run()
        check.waitUntilExit()
        return check.terminationStatus == 0
    }

    init(_ arguments: [String] = [], in sandbox: Sandbox) throws {
        spool = sandbox.root.appendingPathComponent("spool-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: spool, withIntermediateDirectories: true)
        let script = MusterBinary.packageRoot.appendingPathComponent("Tests/support/smtp_server.py")
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script.path, "--spool", spool.path, "--exit-on-stdin-eof"] + arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardInput = stdin
        try process.run()
        let line = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self)
        port = try #require(Int(line.trimmingCharacters(in: .whitespacesAndNewlines)), "server did not start: \(line)")
    }

    deinit {
        try? stdin.fileHandleForWriting.close()
        process.terminate()
        process.waitUntilExit()
    }

    var url: String { "smtp://127.0.0.1:\(port)" }

    /// Message `index` as Python's email package reads it (headers decoded, parts decoded).
    func parsed(_ index: Int) throws -> (subject: String, text: String, html: String, defects: [String]) {
        let names = try FileManager.default.contentsOfDirectory(atPath: spool.path).filter { $0.hasSuffix(".eml") }.sorted()
        let script = MusterBinary.packageRoot.appendingPathComponent("Tests/support/parse_message.py")
        let result = try Sandbox.run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", script.path, spool.appendingPathComponent(names[index]).path], in: spool)
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] ?? [:]
        let headers = object["headers"] as? [String: [String]] ?? [:]
        let parts = object["parts"] as? [[String: Any]] ?? []
        let text = parts.first { $0["content_type"] as? String == "text/plain" }?["text"] as? String ?? ""
        let html = parts.first { $0["content_type"] as? String == "text/html" }?["text"] as? String ?? ""
        return (headers["Subject"]?.first ?? "", text, html, object["defects"] as? [String] ?? [])
    }

    /// The envelopes received, in order: (recipients, raw message).
    func received() throws -> [(to: [String], raw: String, note: String)] {
        let names = try FileManager.default.contentsOfDirectory(atPath: spool.path).filter { $0.hasSuffix(".json") }.sorted()
        return try names.map { name in
            let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: spool.appendingPathComponent(name))) as? [String: Any] ?? [:]
            let raw = try String(contentsOf: spool.appendingPathComponent(name.replacingOccurrences(of: ".json", with: ".eml")), encoding: .utf8)
            return (meta["rcpt_tos"] as? [String] ?? [], raw, meta["note"] as? String ?? "")
        }
    }
}

@Suite(.enabled(if: TestRelay.available, "needs python3 with aiosmtpd (make test installs it)"))
struct MailTests {
    static let manifest = """
        title: Fair rates
        goal: 10
        sender: "Fair Rates Collective <hello@fairrates.example>"
        targets:
          - name: "Agency Board"
            email: board@agencies.example
        fields:
          - name: region
            required: true
            personal: false
        consent:
          updates: "Keep me informed"
        """

    static func workspace(signers: [(String, String, Bool)]) throws -> Sandbox {
        let box = try Sandbox.withCampaign(manifest: manifest)
        try box.write("muster.yaml", "sender: \"Fair Rates <hello@fairrates.example>\"\nsmtp:\n  url: smtp://127.0.0.1:9\n  starttls: never\n")
        try box.write("campaigns/fair-rates/emails/thanks.md", """
            ---
            subject: "Thank you, {{first_name}}!"
            audience: signers
            ---
            Hi {{first_name}} ({{name}}), you signed **{{campaign.title}}** from {{region}}: we are {{campaign.count}}.
            """)
        try box.write("campaigns/fair-rates/emails/news.md", "---\nsubject: \"News\"\naudience: consenting\n---\nNews for {{name}}.\n")
        try box.write("campaigns/fair-rates/emails/deliver.md", "---\nsubject: \"Petition: {{campaign.count}} signatures\"\naudience: targets\n---\nDear {{name}}, here is our petition.\n")
        for (name, email, consent) in signers {
            let result = try box.run(["sign", "--name", name, "--email", email, "--field", "region=Lyon"] + (consent ? ["--consent", "updates"] : []))
            try #require(result.status == 0, "\(result)")
        }
        return box
    }

    func env(_ relay: TestRelay) -> [String: String] { ["MUSTER_SMTP_URL": relay.url, "MUSTER_BACKOFF_SECONDS": "0.05"] }

    /// A campaign in French (`web: language: fr`): its blasts' HTML layout has the French
    /// footer, from the catalogue, and the workspace's own catalogue entry wins.
    @Test func aFrenchCampaignsBlastHasTheFrenchLayoutFooter() throws {
        let box = try Self.workspace(signers: [("Ana Lima", "ana@example.org", true)])
        let manifest = try String(contentsOf: box.path("campaigns/fair-rates/campaign.yaml"), encoding: .utf8)
        try box.write("campaigns/fair-rates/campaign.yaml", manifest + "\nweb:\n  language: fr\n")
        let relay = try TestRelay(in: box)
        let send = try box.run(["mail", "send", "thanks", "--yes"], environment: env(relay))
        let first = try relay.received().count
        try #require(send.status == 0 && first == 1, "\(send)")
        let french = try relay.parsed(0)
        #expect(french.html.contains(#"<html lang="fr">"#) && french.html.contains("Envoyé par Fair Rates Collective au sujet de «\u{00A0}Fair rates\u{00A0}»."), "\(french.html)")
        #expect(french.html.contains("Se désabonner</a>") && !french.html.contains("Unsubscribe</a>") && !french.html.contains("Sent by"))

        try box.write("templates/web/fr.yaml", "mail_unsubscribe: \"Ne plus rien recevoir\"\n")
        try box.write("campaigns/fair-rates/emails/again.md", "---\nsubject: \"Encore\"\naudience: signers\n---\nBonjour.\n")
        let again = try box.run(["mail", "send", "again", "--yes"], environment: env(relay))
        let second = try relay.received().count
        try #require(again.status == 0 && second == 2, "\(again)")
        let own = try relay.parsed(1)
        #expect(own.html.contains("Ne plus rien recevoir</a>") && own.html.contains("Envoyé par"), "\(own.html)")
    }

    @Test func blastSendsOncePerRecipientAndNeverToTheForgottenOrUnsubscribed() throws {
        let box = try Self.workspace(signers: [
            ("Ana Lima", "ana@example.org", true), ("Zoé <script>alert(1)</script>", "zoe@bücher.example", false),
            ("Bo", "bo@example.org", true), ("Gone", "gone@example.org", true), ("Out", "out@example.org", true),
        ])
        #expect(try box.run(["forget", "gone@example.org"]).status == 0)
        #expect(try box.run(["unsubscribe", "out@example.org"]).status == 0)
        let relay = try TestRelay(in: box)

        let refused = try box.run(["mail", "send", "thanks"], environment: env(relay))
        #expect(refused.status == 64, "no --yes without a terminal: \(refused)")
        #expect(try relay.received().isEmpty)

        let send = try box.run(["mail", "send", "thanks", "--yes", "--json"], environment: env(relay))
        #expect(send.status == 0, "\(send)")
        let summary = try send.json()
        #expect(summary["sent"] as? Int == 3)
        #expect(summary["failed"] as? Int == 0)
        #expect(send.stderr.contains("plan: 3 recipients (signers), 0 already sent, 3 to send"))
        #expect(send.stderr.contains("first subject: Thank you, Ana!"))

        let messages = try relay.received()
        #expect(Set(messages.map(\.to)) == [["ana@example.org"], ["zoe@xn--bcher-kva.example"], ["bo@example.org"]])
        let zoe = try #require(messages.first { $0.to == ["zoe@xn--bcher-kva.example"] }).raw
        #expect(zoe.contains("\r\n") && !zoe.replacingOccurrences(of: "\r\n", with: "").contains("\n"), "CRLF line endings only")
        #expect(zoe.contains("Subject: =?UTF-8?Q?Thank_you=2C_Zo=C3=A9!?="), "encoded word for Zoé")
        let parsed = try relay.parsed(try #require(messages.firstIndex { $0.to == ["zoe@xn--bcher-kva.example"] }))
        #expect(parsed.subject == "Thank you, Zoé!")
        #expect(parsed.html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "the signer's markup is escaped in HTML")
        #expect(!parsed.html.contains("<script>"))
        #expect(parsed.text.contains("Zoé <script>alert(1)</script>"), "and literal in the text part")
        #expect(parsed.defects.isEmpty, "\(parsed.defects)")
        #expect(zoe.contains("List-Unsubscribe: <mailto:hello@fairrates.example?subject=unsubscribe>"))
        // RFC 8058: no one-click claim beside a mailto alone (no unsubscribe_url here); RFC 2919 List-Id.
        #expect(!zoe.contains("List-Unsubscribe-Post"))
        #expect(zoe.contains("\r\nList-Id: Fair rates <fair-rates.fairrates.example>\r\n"))
        #expect(!messages.contains { $0.raw.contains("gone@example.org") || $0.raw.contains("out@example.org") })

        // A rerun sends nothing; the status shows three sent.
        let again = try box.run(["mail", "send", "thanks", "--yes"], environment: env(relay))
        #expect(again.status == 0)
        #expect(again.stdout == "nothing to send\n")
        #expect(try relay.received().count == 3)
        let status = try box.run(["mail", "status", "thanks", "--json"]).json()
        #expect(status["sent"] as? Int == 3)
        #expect(status["queued"] as? Int == 0)

        // consenting: only those who gave the consent; targets: the manifest's decision makers.
        #expect(try box.run(["mail", "send", "news", "--yes"], environment: env(relay)).status == 0)
        #expect(Set(try relay.received().dropFirst(3).map(\.to)) == [["ana@example.org"], ["bo@example.org"]])
        #expect(try box.run(["mail", "send", "deliver", "--yes"], environment: env(relay)).status == 0)
        let delivered = try relay.received().last!
        #expect(delivered.to == ["board@agencies.example"])
        #expect(delivered.raw.contains("Subject: Petition: 5 signatures"))
        #expect(try box.run(["verify"]).status == 0)

        // The report counts mail per template, and who unsubscribed after receiving it.
        #expect(try box.run(["unsubscribe", "bo@example.org"]).status == 0)
        let report = try box.run(["report", "--json"]).json()
        let mail = try #require(report["mail"] as? [[String: Any]])
        let thanks = try #require(mail.first { $0["template"] as? String == "thanks" })
        #expect(thanks["sent"] as? Int == 3)
        #expect(thanks["unsubscribed"] as? Int == 1)
        #expect(mail.map { $0["template"] as? String } == ["deliver", "news", "thanks"])
        let text = try box.run(["report"])
        #expect(text.stdout.contains("Mail\n  template      sent  deferred"), "\(text)")
    }

    @Test func relayFaultsAreRetriedFailedOrUnknownAndNobodyElseIsAffected() throws {
        let box = try Self.workspace(signers: [
            ("Ana", "ana@example.org", true), ("Rejected", "rejected@example.org", true),
            ("Later", "later@example.org", true), ("Dropped", "dropped@example.org", true), ("Bo", "bo@example.org", true),
        ])
        let relay = try TestRelay(["--reject-rcpt", "^rejected@", "--tempfail-data", "^later@", "--drop-after-dot", "^dropped@"], in: box)
        let send = try box.run(["mail", "send", "thanks", "--yes", "--json", "--connections", "2"], environment: env(relay))
        #expect(send.status == 75, "deferred messages remain: \(send)")
        let summary = try send.json()
        #expect(summary["sent"] as? Int == 2)
        #expect(summary["failed"] as? Int == 1)
        #expect(summary["unknown"] as? Int == 1)
        #expect(summary["deferred"] as? Int == 1)
        let details = try box.run(["mail", "status", "thanks", "--details"])
        #expect(details.stdout.contains("failed: entry 2 after 1 attempt: 550"), "\(details)")
        #expect(details.stdout.contains("deferred: entry 3 after 5 attempts: 451"), "\(details)")
        #expect(details.stdout.contains("unknown: entry 4 after 1 attempt"), "\(details)")
        let delivered = try relay.received().filter { $0.note == "accepted" }.map(\.to)
        #expect(Set(delivered) == [["ana@example.org"], ["bo@example.org"]])

        // A rerun retries the deferred one only; --retry-unknown resends the unknown one.
        let rerun = try box.run(["mail", "send", "thanks", "--yes", "--json"], environment: env(relay))
        #expect(try rerun.json()["sent"] as? Int == 0)
        #expect(try relay.received().filter { $0.to == ["dropped@example.org"] }.count == 1)
        _ = try box.run(["mail", "send", "thanks", "--yes", "--retry-unknown"], environment: env(relay))
        #expect(try relay.received().filter { $0.to == ["dropped@example.org"] }.count == 2, "resent only on request")
        #expect(try relay.received().filter { $0.to == ["ana@example.org"] }.count == 1, "nobody else got a second copy")
    }

    @Test func unreachableRelayExits69AndSendsNothing() throws {
        let box = try Self.workspace(signers: [("Ana", "ana@example.org", true)])
        let send = try box.run(["mail", "send", "thanks", "--yes"], environment: ["MUSTER_SMTP_URL": "smtp://127.0.0.1:9"])
        #expect(send.status == 69, "\(send)")
        let status = try box.run(["mail", "status", "--json"]).json()
        #expect(status["sent"] as? Int == 0)
        #expect(status["unknown"] as? Int == 0)
    }

    @Test func dryRunWritesEmlFilesAndTouchesNoNetworkOrOutbox() throws {
        let box = try Self.workspace(signers: [("Ana Lima", "ana@example.org", true), ("Bo", "bo@example.org", false)])
        let dry = try box.run(["mail", "send", "thanks", "--dry-run", "--out", "preview"], environment: ["MUSTER_SMTP_URL": "smtp://127.0.0.1:9"])
        #expect(dry.status == 0, "\(dry)")
        let files = try FileManager.default.contentsOfDirectory(atPath: box.path("preview").path).sorted()
        #expect(files == ["00001.eml", "00002.eml"])
        let first = try String(contentsOf: box.path("preview/00001.eml"), encoding: .utf8)
        #expect(first.contains("To: Ana Lima <ana@example.org>"))
        #expect(first.contains("Subject: Thank you, Ana!"))
        #expect(try box.run(["mail", "status", "--json"]).json()["sent"] as? Int == 0)
        let preview = try box.run(["mail", "preview", "thanks", "--to", "bo@example.org"])
        #expect(preview.status == 0)
        #expect(preview.stdout.contains("Subject: Thank you, Bo!\r\n"))
        #expect(preview.stdout.contains("Message-ID: <"))
    }

    /// Issue 10 item 14: with `unsubscribe_url`, the https URI and the one-click header;
    /// the long line folds between the URIs; List-Id from the slug and the sender's domain.
    @Test func listHeadersFollowRFC2919And8058() throws {
        let box = try Self.workspace(signers: [("Ana Lima", "ana@example.org", true)])
        let plain = try box.run(["mail", "preview", "thanks", "--to", "ana@example.org"])
        #expect(plain.status == 0, "\(plain)")
        #expect(plain.stdout.contains("\r\nList-Id: Fair rates <fair-rates.fairrates.example>\r\n"))
        #expect(plain.stdout.contains("\r\nList-Unsubscribe: <mailto:hello@fairrates.example?subject=unsubscribe>\r\n"))
        #expect(!plain.stdout.contains("List-Unsubscribe-Post"))
        try box.write("muster.yaml", "sender: \"Fair Rates <hello@fairrates.example>\"\nunsubscribe_url: https://fr.example/u\nsmtp:\n  url: smtp://127.0.0.1:9\n  starttls: never\n")
        let preview = try box.run(["mail", "preview", "thanks", "--to", "ana@example.org"])
        #expect(preview.status == 0, "\(preview)")
        let head = try #require(preview.stdout.components(separatedBy: "\r\n\r\n").first)
        #expect(head.contains("\r\nList-Unsubscribe: <mailto:hello@fairrates.example?subject=unsubscribe>,\r\n <https://fr.example/u?c=fair-rates&r="), "\(head)")
        #expect(head.contains("\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click"))
        for line in head.components(separatedBy: "\r\n") { #expect(line.utf8.count <= 78, "\(line)") }
        // An http:// URL is refused by check (exit 65), so no one-click header can point at one.
        try box.write("muster.yaml", "sender: \"Fair Rates <hello@fairrates.example>\"\nunsubscribe_url: http://fairrates.example/unsubscribe\n")
        let check = try box.run(["check"])
        #expect(check.status == 65, "\(check)")
        #expect(check.stderr.contains("'unsubscribe_url' must start with https://") || check.stdout.contains("'unsubscribe_url' must start with https://"), "\(check)")
    }

    /// Issue 10 item 14, checked by SpamAssassin itself (offline, local tests only) when it is
    /// installed: the scaffolded thank-you message scores no LIST_PARTIAL_SHORT_MSG with its
    /// List-Id, and the same message without that one header does (+1.0).
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/spamassassin"), "needs spamassassin"))
    func scaffoldedMessageHasCompleteListHeadersForSpamAssassin() throws {
        let box = try Sandbox.withCampaign()
        try #require(box.run(["sign", "--name", "Ana Lima", "--email", "ana@example.org", "--field", "region=Lyon", "--consent", "updates"]).status == 0)
        let preview = try box.run(["mail", "preview", "thank-you", "--to", "ana@example.org"])
        #expect(preview.status == 0, "\(preview)")
        func status(of message: String) throws -> String {
            let spam = URL(fileURLWithPath: "/usr/bin/spamassassin")
            let result = try Sandbox.run(spam, ["-L", "-t", "--prefspath=\(box.path("sa_prefs").path)"], in: box.root, stdin: Data(message.utf8))
            let unfolded = result.stdout.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\n\t", with: " ")
            return try #require(unfolded.split(separator: "\n").first { $0.hasPrefix("X-Spam-Status:") }.map(String.init), "\(result)")
        }
        let with = try status(of: preview.stdout)
        #expect(!with.contains("LIST_PARTIAL_SHORT_MSG"), "\(with)")
        #expect(with.contains("score=-0.0") || with.contains("score=0.0"), "\(with)")
        let without = preview.stdout.replacingOccurrences(of: "\r\nList-Id: Fair rates <fair-rates.example.org>\r\n", with: "\r\n")
        #expect(without != preview.stdout, "the scaffolded message carries List-Id")
        #expect(try status(of: without).contains("LIST_PARTIAL_SHORT_MSG"))
    }

    @Test func ctrlCStopsCleanlyAndTheRerunFinishesWithoutDuplicates() throws {
        let box = try Self.workspace(signers: [])
        let fixture = MusterBinary.url.deletingLastPathComponent().appendingPathComponent("muster-fixture")
        try #require(try Sandbox.run(fixture, [box.root.path, "fair-rates", "1500"], in: box.root).status == 0)
        let relay = try TestRelay(in: box)
        let blast = try box.start(["mail", "send", "thanks", "--yes"], environment: env(relay))
        let deadline = Date().addingTimeInterval(20)
        while try relay.received().count < 200 && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        kill(blast.processIdentifier, SIGINT)
        blast.waitUntilExit()
        #expect(blast.terminationStatus == 130)
        let status = try box.run(["mail", "status", "thanks", "--json"]).json()
        #expect(status["unknown"] as? Int == 0, "in-flight messages were finished, not abandoned")
        #expect(status["sent"] as? Int == (try relay.received().count))
        let rerun = try box.run(["mail", "send", "thanks", "--yes", "--json"], environment: env(relay))
        #expect(rerun.status == 0, "\(rerun)")
        let copies = Dictionary(grouping: try relay.received(), by: { $0.to.first ?? "" }).mapValues(\.count)
        #expect(copies.count == 1500)
        #expect(copies.values.allSatisfy { $0 == 1 }, "nobody got a template twice")
    }

    @Test func onATerminalTheBlastAsksAndDrawsAProgressBar() throws {
        let box = try Self.workspace(signers: [("Ana Lima", "ana@example.org", true), ("Bo", "bo@example.org", true)])
        let relay = try TestRelay(in: box)
        let driver = """
            import os, pty, sys, time
            pid, fd = pty.fork()
            if pid == 0:
                os.environ["MUSTER_SMTP_URL"] = sys.argv[2]
                os.execv(sys.argv[1], [sys.argv[1], "mail", "send", "thanks"])
            out = b""
            end = time.time() + 20
            answered = False
            while time.time() < end:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
                if not answered and b"[y/N]" in out:
                    os.write(fd, b"y\\n")
                    answered = True
            _, status = os.waitpid(pid, 0)
            sys.stdout.buffer.write(out)
            sys.exit(os.WEXITSTATUS(status))
            """
        let result = try Sandbox.run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", driver, MusterBinary.url.path, relay.url], in: box.root)
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.contains("Send 2 messages of 'thanks' to signers via 127.0.0.1:\(relay.port)? [y/N]"), "\(result)")
        #expect(result.stdout.contains("\r\u{1B}[K"), "the bar is redrawn in place")
        #expect(result.stdout.contains("2/2 · sent 2"), "\(result)")
        #expect(try relay.received().count == 2)
    }

    @Test func afterARebootEveryRowTheKilledRunClaimedIsUnknown() throws {
        let box = try Self.workspace(signers: [])
        let fixture = MusterBinary.url.deletingLastPathComponent().appendingPathComponent("muster-fixture")
        try #require(try Sandbox.run(fixture, [box.root.path, "fair-rates", "1000"], in: box.root).status == 0)
        let relay = try TestRelay(in: box)
        let blast = try box.start(["mail", "send", "thanks", "--yes", "--connections", "2"], environment: env(relay))
        let deadline = Date().addingTimeInterval(20)
        while try relay.received().count < 100 && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        kill(blast.processIdentifier, SIGKILL)
        blast.waitUntilExit()
        let ledger = "campaigns/fair-rates/ledger.sqlite"
        let claimed = Int(try box.sqlite(ledger, "SELECT count(*) FROM outbox WHERE state = 'sending'").stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        #expect(claimed > 0)
        // As if the machine had restarted: the journals name another boot, so none of their
        // unsynced lines can be trusted.
        let folder = box.path("campaigns/fair-rates")
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) where name.hasPrefix(".mail.journal.") {
            let file = folder.appendingPathComponent(name)
            let text = try String(contentsOf: file, encoding: .utf8)
            try text.replacingOccurrences(of: "\nboot ", with: "\nboot before-the-reboot-").write(to: file, atomically: true, encoding: .utf8)
        }
        let resume = try box.run(["mail", "send", "thanks", "--yes", "--json"], environment: env(relay))
        #expect(resume.status == 0, "\(resume)")
        let unknown = Int(try box.sqlite(ledger, "SELECT count(*) FROM outbox WHERE state = 'unknown'").stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        #expect(unknown == claimed, "every claimed row is unknown after a reboot")
        // In flight, claimed ahead (sixteen per connection) and replies not yet written: a few dozen at most.
        #expect(claimed < 100, "rows claimed by the killed run: \(claimed)")
        let copies = Dictionary(grouping: try relay.received(), by: { $0.to.first ?? "" }).mapValues(\.count)
        #expect(copies.values.allSatisfy { $0 == 1 }, "nothing was resent")
        #expect(copies.count >= 1000 - unknown, "everyone else received it")
    }

    @Test func killedBlastResumesWithDuplicatesOnlyAmongUnknownRows() throws {
        try killAndResume(journalLimit: nil)
    }

    /// The same with journals rewritten every few dozen messages (they are, past 1 MiB, in
    /// long blasts): a rewrite keeps what is still unresolved, so the kill is sorted out alike.
    @Test func killedBlastWithRewrittenJournalsResumesAlike() throws {
        try killAndResume(journalLimit: 2_048)
    }

    func killAndResume(journalLimit: Int?) throws {
        let box = try Self.workspace(signers: [])
        let fixture = MusterBinary.url.deletingLastPathComponent().appendingPathComponent("muster-fixture")
        let filled = try Sandbox.run(fixture, [box.root.path, "fair-rates", "2000"], in: box.root)
        try #require(filled.status == 0, "\(filled)")
        let relay = try TestRelay(in: box)
        var environment = env(relay)
        if let journalLimit { environment["MUSTER_JOURNAL_LIMIT"] = String(journalLimit) }
        let blast = try box.start(["mail", "send", "thanks", "--yes", "--connections", "4"], environment: environment)
        // Let it get part of the way, then pull the plug.
        let deadline = Date().addingTimeInterval(20)
        while try relay.received().count < 300 && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        kill(blast.processIdentifier, SIGKILL)
        blast.waitUntilExit()
        let before = try relay.received().count
        #expect(before < 2000, "killed half-way")
        // Rows claimed ahead are `sending`; the journals say which of them went out.
        let claimed = try box.sqlite("campaigns/fair-rates/ledger.sqlite", "SELECT count(*) FROM outbox WHERE state = 'sending'").stdout
        #expect((Int(claimed.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) > 0, "rows in flight or claimed: \(claimed)")
        let journals = try FileManager.default.contentsOfDirectory(atPath: box.path("campaigns/fair-rates").path).filter { $0.hasPrefix(".mail.journal.") }
        #expect(!journals.isEmpty, "the killed run left its journals")
        if let journalLimit {
            for name in journals {
                let size = (try FileManager.default.attributesOfItem(atPath: box.path("campaigns/fair-rates/\(name)").path)[.size] as? Int) ?? 0
                #expect(size <= 2 * journalLimit, "\(name) was rewritten as it grew: \(size) bytes")
            }
        }
        // `mail status` sorts them out at once: only the messages in flight are unknown.
        let afterKill = try box.run(["mail", "status", "thanks", "--json"]).json()
        let counted = ["sent", "queued", "unknown"].map { afterKill[$0] as? Int ?? -1 }
        #expect(counted[2] <= 4, "\(afterKill)")
        #expect(counted.reduce(0, +) == 2000, "\(afterKill)")
        let received = try relay.received().count
        #expect(counted[0] <= received && received <= counted[0] + counted[2], "sent \(counted[0]), unknown \(counted[2]), received \(received)")

        let resume = try box.run(["mail", "send", "thanks", "--yes", "--json"], environment: env(relay))
        #expect(resume.status == 0, "\(resume)")
        let unknownAfterCrash = try box.sqlite("campaigns/fair-rates/ledger.sqlite",
            "SELECT p.data FROM outbox o JOIN personal p ON p.seq = o.signature WHERE o.state = 'unknown'").stdout
        // Only the message in flight on each of the 4 connections can be ambiguous.
        let unknownCount = unknownAfterCrash.split(separator: "\n").count
        #expect(unknownCount <= 4, "unknown rows after the kill: \(unknownCount)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: box.path("campaigns/fair-rates").path).filter { $0.hasPrefix(".mail.journal.") }.isEmpty,
                "a finished run removes its journals")
        _ = try box.run(["mail", "send", "thanks", "--yes", "--retry-unknown"], environment: env(relay))

        var copies: [String: Int] = [:]
        for message in try relay.received() { copies[message.to.first ?? "", default: 0] += 1 }
        #expect(copies.count == 2000, "every recipient received the message")
        for (address, count) in copies where count > 1 {
            #expect(unknownAfterCrash.contains("\"\(address)\""), "\(address) got \(count) copies but was not unknown")
        }
        let status = try box.run(["mail", "status", "thanks", "--json"]).json()
        #expect(status["sent"] as? Int == 2000)
    }
}

@Suite(.enabled(if: TestRelay.available, "needs python3 with aiosmtpd (make test installs it)"))
struct RelayCommandTests {
    @Test func smtpCheckAndTestSendOverSTARTTLSWithAuth() throws {
        let box = try MailTests.workspace(signers: [("Ana Lima", "ana@example.org", true)])
        let cert = box.path("relay-ca.pem")
        let relay = try TestRelay(["--mode", "starttls", "--cert-out", cert.path, "--auth", "fairrates:s3cret"], in: box)
        try box.write("muster.yaml", """
            sender: "Fair Rates <hello@fairrates.example>"
            smtp:
              url: smtp://127.0.0.1:\(relay.port)
              starttls: required
              username: fairrates
              ca_file: relay-ca.pem
            """)
        // No password in the environment: a clear usage error, nothing sent.
        let noPassword = try box.run(["smtp", "check"])
        #expect(noPassword.status == 64, "\(noPassword)")
        #expect(noPassword.stderr.contains("MUSTER_SMTP_PASSWORD"))

        let check = try box.run(["smtp", "check", "--json"], environment: ["MUSTER_SMTP_PASSWORD": "s3cret"])
        #expect(check.status == 0, "\(check)")
        let report = try check.json()
        #expect(report["tls"] as? Bool == true)
        #expect(report["authenticated"] as? Bool == true)
        #expect(try relay.received().isEmpty, "smtp check sends nothing")

        let wrong = try box.run(["smtp", "check"], environment: ["MUSTER_SMTP_PASSWORD": "hunter2"])
        #expect(wrong.status == 1, "\(wrong)")
        #expect(!wrong.stderr.contains("hunter2"), "the password is never printed")

        let test = try box.run(["mail", "send", "thanks", "--to", "me@organisers.example"], environment: ["MUSTER_SMTP_PASSWORD": "s3cret"])
        #expect(test.status == 0, "\(test)")
        let received = try relay.received()
        #expect(received.map(\.to) == [["me@organisers.example"]])
        #expect(received.first?.raw.contains("Subject: Thank you, Sam!") == true, "rendered for a sample signer")
        #expect(try box.run(["mail", "status", "--json"]).json()["sent"] as? Int == 0, "a test send leaves the outbox alone")
    }

    @Test func untrustedCertificateIsRefusedAndNothingGoesInClear() throws {
        let box = try MailTests.workspace(signers: [("Ana Lima", "ana@example.org", true)])
        let relay = try TestRelay(["--mode", "starttls", "--cert-out", box.path("ca.pem").path], in: box)
        try box.write("muster.yaml", "sender: \"A <a@fairrates.example>\"\nsmtp:\n  url: smtp://127.0.0.1:\(relay.port)\n  starttls: required\n")
        let send = try box.run(["mail", "send", "thanks", "--yes"])
        #expect(send.status == 1, "\(send)")
        #expect(send.stderr.contains("TLS"), "\(send)")
        #expect(try relay.received().isEmpty)
        #expect(try box.run(["mail", "status", "--json"]).json()["sent"] as? Int == 0)
    }

    @Test func unreachableRelayForSmtpCheckExits69() throws {
        let box = try MailTests.workspace(signers: [])
        let check = try box.run(["smtp", "check"], environment: ["MUSTER_SMTP_URL": "smtp://127.0.0.1:9"])
        #expect(check.status == 69, "\(check)")
    }
}
