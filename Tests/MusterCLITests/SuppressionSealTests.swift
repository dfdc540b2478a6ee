import Foundation
import MusterKit
import Testing

/// Ledger format 7: bounces and suppressions lie outside the hash chain, so only rows
/// muster sealed count. These tests write rows beside muster with `sqlite3` on the real
/// ledger file and run the real binary: a forged suppression, hard bounce or soft bounce
/// suppresses no one and changes no count (a dry run shows it) but stops a blast until
/// dropped, a genuine row changed afterwards is caught, and `verify` fails naming the
/// table. Genuine suppressions (the relay's 5xx, the mailbox) keep working, and a
/// format-6 ledger's rows are sealed by migration 7.
@Suite(.enabled(if: TestRelay.available, "needs python3 with aiosmtpd (make test installs it)"))
struct SuppressionSealTests {
    static let ledger = InboxCLITests.ledger

    func env(_ relay: TestRelay) -> [String: String] { ["MUSTER_SMTP_URL": relay.url, "MUSTER_BACKOFF_SECONDS": "0.05"] }

    /// The outbox key (keyed fingerprint) of `email`, as muster stores it.
    func key(_ box: Sandbox, _ email: String) throws -> String {
        let ledger = try #require(try Ledger.open(box.path(Self.ledger), create: false))
        return try ledger.recipientKey(email: email)
    }

    func sql(_ box: Sandbox, _ statement: String) throws -> String {
        let result = try box.sqlite(Self.ledger, statement)
        try #require(result.status == 0, "\(statement): \(result)")
        return result.stdout
    }

    /// A prose mailbox-full bounce (soft) delivered to `envelope`.
    static func softBounce(to envelope: String, id: Int) -> String {
        InboxCLITests.proseBounce(to: envelope, id: id).replacingOccurrences(of: "550 5.1.1 no such user here", with: "552 5.2.2 mailbox full")
    }

    /// Sends template `name` (audience signers) through a fresh relay; returns who got it.
    func blast(_ box: Sandbox, _ name: String, campaign: String = "fair-rates") throws -> [String] {
        try box.write("campaigns/\(campaign)/emails/\(name).md", "---\nsubject: \"\(name)\"\naudience: signers\n---\nHello {{name}}.\n")
        let relay = try TestRelay(in: box)
        let send = try box.run(["mail", "send", name, "--yes"], environment: env(relay))
        try #require(send.status == 0, "\(send)")
        return try relay.received().flatMap(\.to).sorted()
    }

    /// Whom a blast of template `name` would mail, by a dry run (which warns instead of
    /// refusing when the seals cannot be trusted): the To addresses of its .eml files.
    func wouldMail(_ box: Sandbox, _ name: String, campaign: String = "fair-rates") throws -> [String] {
        let template = "campaigns/\(campaign)/emails/\(name).md"
        if !FileManager.default.fileExists(atPath: box.path(template).path) {
            try box.write(template, "---\nsubject: \"\(name)\"\naudience: signers\n---\nHello {{name}}.\n")
        }
        let folder = "dry-\(UUID().uuidString.prefix(8))"
        let dry = try box.run(["mail", "send", name, "--dry-run", "--out", folder, "-c", campaign])
        try #require(dry.status == 0, "\(dry)")
        return try FileManager.default.contentsOfDirectory(atPath: box.path(folder).path).sorted().compactMap { file in
            let raw = try String(contentsOf: box.path("\(folder)/\(file)"), encoding: .utf8)
            guard let line = raw.components(separatedBy: "\r\n").first(where: { $0.hasPrefix("To: ") }),
                  let open = line.firstIndex(of: "<"), let close = line.lastIndex(of: ">") else { return nil }
            return String(line[line.index(after: open)..<close])
        }.sorted()
    }

    /// `mail send name --yes` refuses: exit 1, the relay got nothing, the outbox did not
    /// change, and the message names no address and no key. Returns the message.
    @discardableResult
    func expectRefused(_ box: Sandbox, _ name: String, saying phrases: [String], campaign: String = "fair-rates",
                       sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let template = "campaigns/\(campaign)/emails/\(name).md"
        if !FileManager.default.fileExists(atPath: box.path(template).path) {
            try box.write(template, "---\nsubject: \"\(name)\"\naudience: signers\n---\nHello {{name}}.\n")
        }
        let outbox = "SELECT count(*) || ':' || coalesce(group_concat(template || '/' || recipient || '/' || state || '/' || attempts, ','), '') FROM outbox"
        let before = try box.sqlite("campaigns/\(campaign)/ledger.sqlite", outbox).stdout
        let relay = try TestRelay(in: box)
        let send = try box.run(["mail", "send", name, "--yes", "-c", campaign], environment: env(relay))
        #expect(send.status == 1, "\(send)", sourceLocation: sourceLocation)
        #expect(try relay.received().isEmpty, "nothing may be sent", sourceLocation: sourceLocation)
        #expect(try box.sqlite("campaigns/\(campaign)/ledger.sqlite", outbox).stdout == before, "the outbox is unchanged", sourceLocation: sourceLocation)
        #expect(send.stderr.contains("nothing was sent"), "\(send.stderr)", sourceLocation: sourceLocation)
        for phrase in phrases {
            #expect(send.stderr.contains(phrase), "'\(phrase)' in: \(send.stderr)", sourceLocation: sourceLocation)
        }
        #expect(!send.stderr.contains("@example.org"), "no address in: \(send.stderr)", sourceLocation: sourceLocation)
        let keys = try box.sqlite("campaigns/\(campaign)/ledger.sqlite", "SELECT recipient FROM outbox UNION SELECT recipient FROM suppressions")
            .stdout.split(separator: "\n").map(String.init)
        #expect(!keys.contains { send.stderr.contains($0) }, "no recipient key in: \(send.stderr)", sourceLocation: sourceLocation)
        return send.stderr
    }

    static let now = "'\(ISO8601DateFormatter().string(from: Date()))'"

    @Test func aForgedSuppressionStopsNoMailAndVerifyFailsNamingTheTable() throws {
        let box = try InboxCLITests.verpWorkspace(signers: ["ana", "bad", "cy"])
        let relay = try TestRelay(["--reject-rcpt", "^bad@"], in: box)
        #expect(try box.run(["mail", "send", "thanks", "--yes"], environment: env(relay)).status == 0)
        // The relay's 550 suppressed bad@: a genuine, sealed row.
        #expect(try box.run(["verify"]).status == 0)
        #expect(try sql(box, "SELECT count(*) FROM suppressions WHERE length(seal) = 32") == "1\n")

        // Written beside muster: ana suppressed for a complaint, with no seal and with a made-up one.
        let ana = try key(box, "ana@example.org"), cy = try key(box, "cy@example.org")
        _ = try sql(box, """
            INSERT INTO suppressions (recipient, reason, template, status, source, at) VALUES ('\(ana)', 'complaint', 'thanks', NULL, 'inbox', \(Self.now));
            INSERT INTO suppressions (recipient, reason, template, status, source, at, seal) VALUES ('\(cy)', 'bounce', 'thanks', '5.1.1', 'inbox', \(Self.now), randomblob(32));
            """)
        let status = try box.run(["mail", "status", "--json"]).json()
        #expect(status["bounced"] as? Int == 1 && status["complained"] as? Int == 0, "only bad@ counts: \(status)")
        let report = try box.run(["report", "--json"]).json()
        let mail = try #require((report["mail"] as? [[String: Any]])?.first)
        #expect(mail["bounced"] as? Int == 1 && mail["complained"] as? Int == 0, "\(mail)")
        let export = try box.run(["export", "--fields", "email,suppressed"]).stdout.replacingOccurrences(of: "\r\n", with: "\n")
        #expect(export.contains("ana@example.org,\n") && export.contains("cy@example.org,\n") && export.contains("bad@example.org,bounce"), "\(export)")
        // A blast refuses while rows written beside muster are there (a dry run shows they
        // suppress no one); bad@'s genuine row is sealed, so this is not a lost key.
        try expectRefused(box, "later", saying: ["2 suppressions (table suppressions)", "were not written by muster",
                                                 "`muster verify` shows them", "`muster verify --drop-unsealed` removes rows written beside muster"])
        #expect(try wouldMail(box, "later") == ["ana@example.org", "cy@example.org"])

        let verify = try box.run(["verify"])
        #expect(verify.status == 1, "\(verify)")
        #expect(verify.stdout.contains("FAILED: 2 suppressions (table suppressions) were not written by muster"), "\(verify.stdout)")
        #expect(verify.stdout.contains("muster verify --drop-unsealed"), "\(verify.stdout)")
        #expect(!verify.stdout.contains("ana") && !verify.stdout.contains(ana), "no address or key in the message")
        let json = try box.run(["verify", "--json"])
        #expect(json.status == 1)
        let object = try json.json()
        #expect(object["ok"] as? Bool == false)
        #expect(object["unsealed"] as? [String: Int] == ["bounces": 0, "suppressions": 2], "\(object)")
        #expect((object["first_bad"] as? [String: Any])?["reason"] as? String ?? "" != "")

        // --drop-unsealed deletes exactly those rows; bad@ stays suppressed.
        let drop = try box.run(["verify", "--drop-unsealed"])
        #expect(drop.status == 0 && drop.stdout.hasPrefix("dropped 2 unsealed suppressions and 0 unsealed bounce records\nok:"), "\(drop)")
        #expect(try sql(box, "SELECT count(*) FROM suppressions") == "1\n")
        #expect(try blast(box, "again") == ["ana@example.org", "cy@example.org"])
    }

    @Test func forgedHardAndSoftBouncesCountForNothingAndGenuineOnesStillSuppress() throws {
        let box = try InboxCLITests.verpWorkspace(signers: ["ana", "cy"])
        let relay = try TestRelay(in: box)
        #expect(try box.run(["mail", "send", "thanks", "--yes"], environment: env(relay)).status == 0)
        let envelopes = try InboxCLITests().envelopes(relay)
        let cyEnvelope = try #require(envelopes["cy@example.org"]?.from)
        let ana = try key(box, "ana@example.org"), cy = try key(box, "cy@example.org")

        // One genuine soft bounce of cy, then a forged one, then a second genuine one: with
        // the forged row counted cy would reach the limit (3) and be suppressed.
        func process(_ messages: [String]) throws -> InboxSummary {
            try InboxProcessor.run(workspace: Workspace(root: box.root), mailbox: MemoryMailbox(messages), options: InboxOptions())
        }
        #expect(try process([Self.softBounce(to: cyEnvelope, id: 1)]).soft == 1)
        _ = try sql(box, """
            INSERT INTO bounces (recipient, template, kind, status, source, at) VALUES ('\(cy)', 'thanks', 'soft', '5.2.2', 'inbox', \(Self.now));
            INSERT INTO bounces (recipient, template, kind, status, source, at) VALUES ('\(ana)', 'thanks', 'hard', '5.1.1', 'inbox', \(Self.now));
            """)
        let second = try process([Self.softBounce(to: cyEnvelope, id: 2)])
        #expect(second.soft == 1 && second.suppressedNow == 0, "the forged soft bounce did not count: \(second)")
        #expect(try box.run(["mail", "status", "--json"]).json()["bounced"] as? Int == 0)
        try expectRefused(box, "later", saying: ["2 bounce records (table bounces)", "--drop-unsealed"])
        #expect(try wouldMail(box, "later") == ["ana@example.org", "cy@example.org"])

        let verify = try box.run(["verify"])
        #expect(verify.status == 1 && verify.stdout.contains("FAILED: 2 bounce records (table bounces) were not written by muster"), "\(verify)")
        #expect(try box.run(["verify", "--json"]).json()["unsealed"] as? [String: Int] == ["bounces": 2, "suppressions": 0])

        // A forged reset does not stop the genuine soft bounces from counting: the third suppresses.
        _ = try sql(box, "INSERT INTO bounces (recipient, template, kind, status, source, at) VALUES ('\(cy)', NULL, 'reset', NULL, 'command', \(Self.now))")
        let third = try process([Self.softBounce(to: cyEnvelope, id: 3)])
        #expect(third.suppressedNow == 1, "\(third)")
        #expect(try box.run(["mail", "status", "--json"]).json()["bounced"] as? Int == 1)
        #expect(try wouldMail(box, "last") == ["ana@example.org"])
        #expect(try box.run(["verify", "--json"]).json()["unsealed"] as? [String: Int] == ["bounces": 3, "suppressions": 0])
    }

    @Test func aGenuineRowChangedAfterwardsIsCaughtAndIgnored() throws {
        let box = try InboxCLITests.verpWorkspace(signers: ["ana", "bad", "cy"])
        let relay = try TestRelay(["--reject-rcpt", "^bad@"], in: box)
        #expect(try box.run(["mail", "send", "thanks", "--yes"], environment: env(relay)).status == 0)
        let pristine = box.path("pristine.sqlite")
        _ = try sql(box, "VACUUM INTO '\(pristine.path)'")
        func restore() throws {
            for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(at: box.path(Self.ledger + suffix)) }
            try FileManager.default.removeItem(at: box.path(Self.ledger))
            try FileManager.default.copyItem(at: pristine, to: box.path(Self.ledger))
        }
        let ana = try key(box, "ana@example.org")
        for (change, table, stillSuppressed) in [
            ("UPDATE suppressions SET recipient = '\(ana)'", "suppressions", [String]()),  // moved to another signer
            ("UPDATE suppressions SET reason = 'complaint'", "suppressions", []),
            ("UPDATE suppressions SET template = 'later'", "suppressions", []),
            ("UPDATE suppressions SET at = '2020-01-01T00:00:00Z'", "suppressions", []),
            ("UPDATE bounces SET status = '4.0.0'", "bounces", ["bad@example.org"]),
            ("UPDATE bounces SET id = id + 10", "bounces", ["bad@example.org"]),
            ("UPDATE meta SET value = randomblob(32) WHERE key = 'seal_key'", "suppressions", []),
        ] {
            try restore()
            _ = try sql(box, change)
            let verify = try box.run(["verify", "--json"])
            #expect(verify.status == 1, "\(change): \(verify)")
            let unsealed = try verify.json()["unsealed"] as? [String: Int] ?? [:]
            #expect(unsealed[table] == 1, "\(change): \(unsealed)")
            try expectRefused(box, "later", saying: ["(table \(table))"])
            let mailed = try wouldMail(box, "later")
            let all = ["ana@example.org", "bad@example.org", "cy@example.org"]
            #expect(mailed == all.filter { !stillSuppressed.contains($0) }, "\(change): \(mailed)")
        }
        // A seal copied from a genuine row onto another recipient does not fit it either.
        try restore()
        _ = try sql(box, """
            INSERT INTO suppressions (recipient, reason, template, status, source, at, seal)
            SELECT '\(ana)', reason, template, status, source, at, seal FROM suppressions
            """)
        #expect(try box.run(["verify", "--json"]).json()["unsealed"] as? [String: Int] == ["bounces": 0, "suppressions": 1])
        #expect(try wouldMail(box, "later") == ["ana@example.org", "cy@example.org"])
        // The seal key gone: everything looks forged, verify says why, and --drop-unsealed refuses.
        _ = try sql(box, "DELETE FROM meta WHERE key = 'seal_key'")
        let verify = try box.run(["verify"])
        #expect(verify.status == 1 && verify.stdout.contains("no seal key"), "\(verify)")
        let drop = try box.run(["verify", "--drop-unsealed"])
        #expect(drop.status == 1 && drop.stderr.contains("has no seal key") && drop.stderr.contains("nothing was written"), "\(drop)")
        #expect(try sql(box, "SELECT count(*) FROM suppressions") == "2\n")
    }

    /// A ledger of format 6 as muster wrote it (made from a format-7 one by undoing
    /// migration 7 with sqlite3: the seal column, the key and the version): opening it
    /// seals its rows, which keep suppressing.
    @Test func aFormatSixLedgersRowsAreSealedByMigrationSeven() throws {
        let box = try InboxCLITests.verpWorkspace(signers: ["ana", "bad", "cy"])
        let relay = try TestRelay(["--reject-rcpt", "^bad@"], in: box)
        #expect(try box.run(["mail", "send", "thanks", "--yes"], environment: env(relay)).status == 0)
        #expect(try box.run(["unsubscribe", "cy@example.org", "--reset-bounces"]).status == 0)  // a reset row
        _ = try sql(box, """
            ALTER TABLE bounces DROP COLUMN seal; ALTER TABLE suppressions DROP COLUMN seal;
            DELETE FROM meta WHERE key = 'seal_key'; DELETE FROM migrations WHERE version = 7;
            UPDATE meta SET value = 6 WHERE key = 'schema_version';
            """)
        #expect(try sql(box, "SELECT count(*) FROM bounces") == "2\n")
        let status = try box.run(["mail", "status", "--json"])
        #expect(status.stderr.contains("from ledger format 6 to 7"), "\(status)")
        #expect(try status.json()["bounced"] as? Int == 1)
        #expect(try sql(box, "SELECT (SELECT count(*) FROM bounces WHERE length(seal) = 32) || ' ' || (SELECT count(*) FROM suppressions WHERE length(seal) = 32) || ' ' || (SELECT length(value) FROM meta WHERE key = 'seal_key')") == "2 1 32\n")
        #expect(try box.run(["verify"]).status == 0)
        #expect(try blast(box, "later") == ["ana@example.org", "cy@example.org"])
    }

    static let fixture = CommittedFixture("ledger-v6")

    /// The committed format-6 ledger (Tests/Fixtures/ledger-v6, made by muster at 8d9842e):
    /// migration 7 seals its hard bounce, reset and suppression, it verifies with the head
    /// and count it was made with, and the relay-refused signer stays suppressed.
    @Test func theCommittedFormatSixLedgerIsSealedAndStillSuppresses() throws {
        let box = try Self.fixture.workspace()
        let expected = try Self.fixture.expected()
        let ledger = "campaigns/bounces/ledger.sqlite"
        func sql(_ statement: String) throws -> String { try box.sqlite(ledger, statement).stdout }
        #expect(try sql("SELECT value FROM meta WHERE key = 'schema_version'") == "6\n")
        #expect(try sql("SELECT count(*) FROM bounces") == "\((expected["bounces"] as? [String])?.count ?? -1)\n")
        let status = try box.run(["mail", "status", "--json"])
        #expect(status.status == 0 && status.stderr.contains("from ledger format 6 to 7"), "\(status)")
        #expect(try status.json()["bounced"] as? Int == expected["bounced"] as? Int)
        #expect(try sql("SELECT (SELECT count(*) FROM bounces WHERE length(seal) = 32) || ' ' || (SELECT count(*) FROM suppressions WHERE length(seal) = 32)")
                == "\((expected["bounces"] as? [String])?.count ?? -1) \((expected["suppressions"] as? [String])?.count ?? -1)\n")
        let verify = try box.run(["verify", "--json"])
        #expect(verify.status == 0, "\(verify)")
        let report = try verify.json()
        #expect(report["head"] as? String == expected["head"] as? String && report["count"] as? Int == expected["count"] as? Int)
        #expect(report["unsealed"] as? [String: Int] == ["bounces": 0, "suppressions": 0])
        let suppressed = try #require(expected["suppressed"] as? [String])
        #expect(try blast(box, "later", campaign: "bounces") == ["anafixture@example.org", "cyfixture@example.org"].filter { !suppressed.contains($0) })
        #expect(!suppressed.isEmpty)
    }
}

/// The seal key deleted or replaced beside muster (issue 13 hardening): every suppression
/// would count for nothing, so a blast refuses (exit 1, nothing sent, the outbox as it
/// was), and so do the commands that write bounces; `mail status`, `report` and a dry run
/// warn. Opt-outs are chained entries and keep working whatever happens to the key.
extension SuppressionSealTests {
    /// A workspace where the relay's 550 suppressed bad@ (a genuine hard bounce, sealed),
    /// cy@ unsubscribed (a chained opt-out) and dan@ never bounced.
    func bouncedWorkspace() throws -> (box: Sandbox, relay: TestRelay) {
        let box = try InboxCLITests.verpWorkspace(signers: ["ana", "bad", "cy", "dan"])
        let relay = try TestRelay(["--reject-rcpt", "^bad@"], in: box)
        #expect(try box.run(["mail", "send", "thanks", "--yes"], environment: env(relay)).status == 0)
        #expect(try box.run(["unsubscribe", "cy@example.org"]).status == 0)
        #expect(try sql(box, "SELECT count(*) FROM suppressions WHERE length(seal) = 32") == "1\n")
        #expect(try sql(box, "SELECT count(*) FROM bounces WHERE length(seal) = 32") == "1\n")
        #expect(try wouldMail(box, "later") == ["ana@example.org", "dan@example.org"])
        return (box, relay)
    }

    /// What every command that reads or writes bounces must do once the key is lost.
    func expectKeyLostEverywhere(_ box: Sandbox, _ relay: TestRelay, saying phrases: [String]) throws {
        let before = try sql(box, "SELECT (SELECT count(*) FROM bounces) || ' ' || (SELECT count(*) FROM suppressions) || ' ' || (SELECT count(*) FROM meta WHERE key = 'seal_key')")
        try expectRefused(box, "later", saying: phrases + ["Restore the ledger from a backup", "every suppression is unprovable"])
        // A dry run sends nothing: it warns, and its files show what the guard prevents
        // (bad@ would be mailed again) while the opt-out of cy@ still holds.
        let dry = try box.run(["mail", "send", "later", "--dry-run", "--out", "dry-warned"])
        #expect(dry.status == 0 && dry.stderr.contains("warning:") && dry.stderr.contains("refuses until this is fixed"), "\(dry)")
        #expect(try wouldMail(box, "later") == ["ana@example.org", "bad@example.org", "dan@example.org"])
        // mail status and report: the counts show 0, with one warning line on stderr.
        let status = try box.run(["mail", "status", "--json"])
        let bounced = try status.json()["bounced"] as? Int
        #expect(status.status == 0 && bounced == 0, "\(status)")
        #expect(status.stderr.contains("warning: the bounced and complained counts show only sealed rows, and the ledger's seal key is missing or was replaced"), "\(status.stderr)")
        let report = try box.run(["report"])
        #expect(report.status == 0 && report.stderr.contains("seal key is missing or was replaced"), "\(report)")
        // Writers of bounces refuse, and no new key appears.
        let reset = try box.run(["unsubscribe", "bad@example.org", "--reset-bounces"])
        #expect(reset.status == 1 && reset.stderr.contains("Restore the ledger from a backup") && reset.stderr.contains("nothing was written"), "\(reset)")
        let envelope = try #require(try InboxCLITests().envelopes(relay)["ana@example.org"]?.from)
        let mailbox = MemoryMailbox([InboxCLITests.proseBounce(to: envelope, id: 7)])
        #expect {
            try InboxProcessor.run(workspace: Workspace(root: box.root), mailbox: mailbox, options: InboxOptions())
        } throws: { error in
            let message = (error as? MusterError)?.message ?? ""
            return (error as? MusterError)?.status == .failure && message.contains("nothing was read from the mailbox, moved or written")
                && message.contains("Restore the ledger from a backup") && !message.contains("@")
        }
        #expect(mailbox.moved.isEmpty)
        #expect(try sql(box, "SELECT (SELECT count(*) FROM bounces) || ' ' || (SELECT count(*) FROM suppressions) || ' ' || (SELECT count(*) FROM meta WHERE key = 'seal_key')") == before)
        // Opt-outs are chained entries, untouched by the key: a new one is recorded and holds.
        #expect(try box.run(["unsubscribe", "dan@example.org"]).status == 0)
        #expect(try wouldMail(box, "later") == ["ana@example.org", "bad@example.org"])
    }

    /// (a) meta.seal_key deleted with sqlite3.
    @Test func aDeletedSealKeyStopsTheBlastAndEveryWriterOfBounces() throws {
        let (box, relay) = try bouncedWorkspace()
        _ = try sql(box, "DELETE FROM meta WHERE key = 'seal_key'")
        try expectKeyLostEverywhere(box, relay, saying: ["has no seal key (meta.seal_key)", "1 suppression (table suppressions)",
                                                        "1 bounce record (table bounces)"])
        #expect(try sql(box, "SELECT count(*) FROM meta WHERE key = 'seal_key'") == "0\n")
    }

    /// (b) meta.seal_key replaced by 32 other bytes: every row looks forged.
    @Test func aReplacedSealKeyStopsTheBlastAndEveryWriterOfBounces() throws {
        let (box, relay) = try bouncedWorkspace()
        let old = try sql(box, "SELECT hex(value) FROM meta WHERE key = 'seal_key'")
        _ = try sql(box, "UPDATE meta SET value = randomblob(32) WHERE key = 'seal_key'")
        let replaced = try sql(box, "SELECT hex(value) FROM meta WHERE key = 'seal_key'")
        #expect(replaced != old && replaced.count == 65)
        try expectKeyLostEverywhere(box, relay, saying: ["none of the 1 suppression (table suppressions) and 1 bounce record (table bounces)",
                                                        "most likely replaced"])
        #expect(try sql(box, "SELECT hex(value) FROM meta WHERE key = 'seal_key'") == replaced, "no new key")
        let verify = try box.run(["verify"])
        #expect(verify.status == 1 && verify.stdout.contains("the seal key (meta.seal_key) was most likely replaced"), "\(verify)")
        // Putting the original key back (what restoring the backup does) is all it takes.
        _ = try sql(box, "UPDATE meta SET value = x'\(old.trimmingCharacters(in: .whitespacesAndNewlines))' WHERE key = 'seal_key'")
        #expect(try box.run(["verify"]).status == 0)
        #expect(try blast(box, "restored") == ["ana@example.org"])
    }

    /// (c) a forged suppression beside a genuine one: refused; `verify --drop-unsealed`
    /// removes it, and the blast runs and still skips the genuinely bounced address.
    @Test func aForgedRowStopsTheBlastUntilDroppedAndTheGenuineBounceStillHolds() throws {
        let (box, _) = try bouncedWorkspace()
        let dan = try key(box, "dan@example.org")
        _ = try sql(box, "INSERT INTO suppressions (recipient, reason, template, status, source, at) VALUES ('\(dan)', 'complaint', 'thanks', NULL, 'inbox', \(Self.now))")
        let message = try expectRefused(box, "later", saying: ["1 suppression (table suppressions)", "was not written by muster",
                                                              "`muster verify --drop-unsealed` removes rows written beside muster"])
        #expect(!message.contains("Restore the ledger"), "a forged row beside genuine ones is not a lost key: \(message)")
        // Rows written beside muster among sealed ones do not stop the writers of bounces.
        #expect(try box.run(["unsubscribe", "ana@example.org", "--reset-bounces"]).status == 0)
        let status = try box.run(["mail", "status"])
        #expect(status.stderr.contains("1 of them were not written by muster"), "\(status)")
        let drop = try box.run(["verify", "--drop-unsealed"])
        #expect(drop.status == 0 && drop.stdout.hasPrefix("dropped 1 unsealed suppression"), "\(drop)")
        #expect(try blast(box, "later") == ["ana@example.org", "dan@example.org"])
    }

    /// (d) a clean ledger with genuine bounces (the relay's and the mailbox's): the guard
    /// does not misfire, and nothing warns.
    @Test func aCleanLedgerWithBouncesBlastsNormally() throws {
        let (box, relay) = try bouncedWorkspace()
        let envelope = try #require(try InboxCLITests().envelopes(relay)["dan@example.org"]?.from)
        let summary = try InboxProcessor.run(workspace: Workspace(root: box.root), mailbox: MemoryMailbox([InboxCLITests.proseBounce(to: envelope, id: 1)]),
                                             options: InboxOptions())
        #expect(summary.hard == 1 && summary.suppressedNow == 1, "\(summary)")
        let status = try box.run(["mail", "status", "--json"])
        #expect(try status.json()["bounced"] as? Int == 2 && !status.stderr.contains("warning"), "\(status)")
        #expect(!(try box.run(["report"]).stderr.contains("warning")))
        #expect(try box.run(["verify"]).status == 0)
        #expect(try blast(box, "later") == ["ana@example.org"])
    }
}
