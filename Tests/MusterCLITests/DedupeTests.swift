import Foundation
import Testing

/// Issue 15, phase 2, on the built binary: one person, one signature through mailbox keys
/// at `sign`, the kiosk, `import` and `merge`, and `muster dedupe` on a ledger made by
/// muster 0.1.0 before the rules existed (Tests/Fixtures/ledger-v1-variants). Every
/// person here is invented.
@Suite(.serialized) struct DedupeTests {
    static let fixture = CommittedFixture("ledger-v1-variants")
    static let ledger = "campaigns/variants/ledger.sqlite"
    static let now = ["MUSTER_NOW": "2026-11-26T12:00:00Z"]

    static func expected() throws -> [String: Any] { try fixture.expected() }

    /// A sandbox holding a copy of the fixture's workspace.
    static func workspace() throws -> Sandbox { try fixture.workspace() }

    /// The groups of `dedupe --json`: each as [kept entry, later entries…].
    static func groups(_ json: [String: Any]) throws -> Set<[Int]> {
        let groups = try #require(json["groups"] as? [[String: Any]])
        return Set(try groups.map { group in
            let keep = try #require(group["keep"] as? [String: Any])
            let later = try #require(group["later"] as? [[String: Any]])
            return [try #require(keep["entry"] as? Int)] + (try later.map { try #require($0["entry"] as? Int) })
        })
    }

    static func addDedupeSettings(_ box: Sandbox, _ yaml: String) throws {
        let settings = try String(contentsOf: box.path("muster.yaml"), encoding: .utf8)
        try box.write("muster.yaml", settings + "\ndedupe:\n" + yaml + "\n")
    }

    /// The independent verifier of docs/ledger-format.md on the same file.
    static func independentVerify(_ box: Sandbox, _ ledger: String) throws -> [String: Any] {
        let script = MusterBinary.packageRoot.appendingPathComponent("scripts/verify_ledger.py")
        let result = try Sandbox.run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", script.path, box.path(ledger).path, "--json"], in: box.root)
        return try result.json()
    }

    // MARK: - Duplicates through the mailbox key

    @Test func theIssuesVariantsAreDuplicatesAtSign() throws {
        let box = try Sandbox.withCampaign(manifest: "title: T\ngoal: 10\n")
        func sign(_ email: String, at: String) throws -> [String: Any] {
            let result = try box.run(["sign", "--name", "Ana", "--email", email, "--json"], environment: ["MUSTER_NOW": at])
            #expect(result.status == 0, "\(result)")
            #expect(!result.stderr.contains("@"), "no address on stderr: \(result)")
            return try result.json()
        }
        for (first, variants) in [("ana@gmail.com", ["ana+1@gmail.com", "a.na@gmail.com", "ana@googlemail.com", "A.NA+news@GOOGLEMAIL.com"]),
                                  ("k@example.org", ["k@ｅｘａｍｐｌｅ.org", "k+petition@example.org"]),
                                  ("m@example.org", ["m@example。org"]),
                                  ("c@viii.example", ["c@ⅷ.example"]),
                                  ("bo@yahoo.com", ["bo-news@yahoo.com"]),
                                  ("zoe@me.com", ["zoe@icloud.com", "zoe@mac.com"]),
                                  ("lu@pm.me", ["lu@protonmail.com", "lu@proton.me"])] {
            #expect(try sign(first, at: "2026-11-20T09:00:00Z")["status"] as? String == "added", "\(first)")
            for variant in variants {
                let json = try sign(variant, at: "2026-11-21T09:00:00Z")
                #expect(json["status"] as? String == "duplicate", "\(variant) after \(first): \(json)")
                #expect(json["first_signed_at"] as? String == "2026-11-20T09:00:00.000Z", "\(variant)")
            }
        }
        // Other people: the provider does not document these as one inbox.
        for other in ["a.na@outlook.com", "ana@outlook.com", "ana@hotmail.com", "a_na@proton.me"] {
            #expect(try sign(other, at: "2026-11-22T09:00:00Z")["status"] as? String == "added", "\(other)")
        }
        let text = try box.run(["sign", "--name", "Ana", "--email", "ANA+2@gmail.com"])
        #expect(text.stdout == "duplicate: this address already signed on 2026-11-20; 11 signatures\n", "\(text)")
        let verify = try box.run(["verify", "--json"])
        #expect(try verify.json()["count"] as? Int == 11 && verify.json()["ok"] as? Bool == true, "\(verify)")

        // keep_tags: a tag is another person from now on; the keys are rebuilt, and said so.
        try Self.addDedupeSettings(box, "  keep_tags: true")
        let tagged = try box.run(["sign", "--name", "Ana", "--email", "ana+3@gmail.com", "--json"])
        #expect(try tagged.json()["status"] as? String == "added", "\(tagged)")
        #expect(tagged.stderr.contains("made the mailbox keys of 11 signatures") && tagged.stderr.contains("the dedupe rules changed"), "\(tagged)")
        #expect(!tagged.stderr.contains("gmail"), "\(tagged)")
        let dotted = try box.run(["sign", "--name", "Ana", "--email", "a.n.a@gmail.com", "--json"])
        #expect(try dotted.json()["status"] as? String == "duplicate", "dots still do not count: \(dotted)")
        #expect(dotted.stderr.isEmpty, "rebuilt once only: \(dotted)")
    }

    @Test func theKioskTellsAVariantItAlreadySigned() throws {
        let box = try Sandbox.withCampaign(manifest: KioskTests.manifest)
        #expect(try box.run(["sign", "--name", "Ana", "--email", "ana@gmail.com", "--field", "region=Lyon"],
                            environment: ["MUSTER_NOW": "2026-11-20T09:00:00Z"]).status == 0)
        let run = try KioskDriver.run(box, steps: KioskDriver.start
            + KioskTests.signer("Ana Lima", "a.na+stall@googlemail.com") + [.expect("already signed on 2026-11-20"), .expect("Name: ")]
            + KioskTests.signer("Bo Chen", "bo@example.org") + [.expect("✓ Signed"), .expect("Name: ")]
            + KioskDriver.finish)
        #expect(run.ok, "\(run)")
        #expect(run.status == 0, "\(run)")
        #expect(try box.run(["verify", "--json"]).json()["count"] as? Int == 2)
    }

    /// Variants of each other within one file, and of the ledger, on the bulk path (a file
    /// large enough for the in-memory check) and on the indexed one (a small file).
    @Test func importCountsVariantsAsDuplicatesOnBothPaths() throws {
        let box = try Sandbox.withCampaign()
        #expect(try box.run(["sign", "--name", "Ana", "--email", "ana@gmail.com", "--field", "region=Lyon"]).status == 0)
        var rows = ["name,email,region"]
        let variants = ["a.na@gmail.com", "ana+1@gmail.com", "ana@googlemail.com", "bo@yahoo.com", "bo-news@yahoo.com",
                        "k@example.org", "k@ｅｘａｍｐｌｅ.org", "m@example。org", "m@example.org", "c@ⅷ.example", "c@viii.example"]
        for email in variants { rows.append("Someone,\(email),Lyon") }
        for index in 0..<20_100 { rows.append("Signer \(index),signer\(index)@example.org,Lyon") }
        for index in 0..<100 { rows.append("Signer \(index),signer\(index)+again@example.org,Lyon") }
        try box.write("big.csv", rows.joined(separator: "\n") + "\n")
        let big = try box.run(["import", "big.csv", "--json"], environment: Self.now)
        #expect(big.status == 0, "\(big)")
        let json = try big.json()
        #expect(json["added"] as? Int == 20_100 + 4, "bo, k, m, c: \(json)")
        #expect(json["duplicates"] as? Int == 3 + 1 + 1 + 1 + 1 + 100, "\(json)")
        #expect(json["count"] as? Int == 20_105)

        try box.write("small.csv", "name,email,region\nX,signer7+x@example.org,Lyon\nY,s.igner7@example.org,Lyon\nZ,ANA+z@GMAIL.COM,Lyon\n")
        let small = try box.run(["import", "small.csv", "--json"], environment: Self.now)
        #expect(try small.json()["added"] as? Int == 1, "s.igner7 is another person at example.org: \(small)")
        #expect(try small.json()["duplicates"] as? Int == 2, "\(small)")
        let verify = try box.run(["verify", "--json"])
        #expect(try verify.json()["ok"] as? Bool == true && verify.json()["count"] as? Int == 20_106, "\(verify)")
    }

    /// The other ledger's signers are keyed again under this workspace's rules: what the
    /// other machine (with keep_tags) took for two people is one person here.
    @Test func mergeKeysTheOtherLedgersSignersUnderThisWorkspacesRules() throws {
        let home = try Sandbox.withCampaign(), other = try Sandbox.withCampaign()
        try Self.addDedupeSettings(other, "  keep_tags: true")
        for (box, email) in [(home, "a.na@gmail.com"), (other, "ana+1@gmail.com"), (other, "ana+2@gmail.com"), (other, "cy@example.org")] {
            let signed = try box.run(["sign", "--name", "Someone", "--email", email, "--field", "region=Lyon", "--json"], environment: Self.now)
            #expect(try signed.json()["status"] as? String == "added", "\(signed)")
        }
        let merged = try home.run(["merge", other.path("campaigns/fair-rates/ledger.sqlite").path, "--json"], environment: Self.now)
        #expect(merged.status == 0, "\(merged)")
        let json = try merged.json()
        #expect(json["added"] as? Int == 1 && json["duplicates"] as? Int == 2 && json["count"] as? Int == 2, "\(merged)")
    }

    // MARK: - muster dedupe on a ledger made before the rules

    @Test func theFixtureMigratesVerifiesAndDedupeFindsExactlyItsGroups() throws {
        let box = try Self.workspace()
        let expected = try Self.expected()
        let count = try #require(expected["count"] as? Int)

        let verify = try box.run(["verify", "--json"])
        #expect(verify.status == 0, "\(verify)")
        #expect(try verify.json()["head"] as? String == expected["head"] as? String)
        #expect(try verify.json()["count"] as? Int == count)
        #expect(try verify.json()["withdrawn"] as? Int == 0)
        #expect(verify.stderr.contains("from ledger format 1 to"), "\(verify)")

        let listed = try box.run(["dedupe", "--json"], environment: Self.now)
        #expect(listed.status == 0, "\(listed)")
        #expect(listed.stderr.contains("made the mailbox keys of \(count - 1) signatures"), "one is forgotten: \(listed)")
        let json = try listed.json()
        let groups = try #require(expected["groups"] as? [[Int]])
        #expect(try Self.groups(json) == Set(groups), "\(listed.stdout)")
        #expect(!listed.stdout.contains("@"), "no addresses unless asked")
        let later = groups.reduce(0) { $0 + $1.count - 1 }
        #expect(json["duplicates"] as? Int == later && json["count"] as? Int == count && json["withdrawn"] as? Int == 0)
        // The earliest by time is kept, even when a later entry: the import's backdated row.
        let first = try #require((json["groups"] as? [[String: Any]])?.first?["keep"] as? [String: Any])
        #expect(first["signed_at"] as? String == "2026-11-01T09:00:00.000Z" && first["source"] as? String == "import"
                && first["collector"] as? String == "Stall volunteer", "\(first)")

        let text = try box.run(["dedupe"])
        #expect(text.stdout.contains("\(groups.count) groups of signatures that the dedupe rules count as one person (\(later) later signatures)"), "\(text)")
        #expect(text.stdout.contains("`muster dedupe --withdraw` withdraws the \(later) later ones"), "\(text)")
        let shown = try box.run(["dedupe", "--show-addresses"])
        #expect(shown.stdout.contains("<anafixture+1@gmail.com>") && shown.stdout.contains("<ANAFIXTURE+2@GMAIL.COM>"), "\(shown)")

        // A dry run writes nothing.
        let head = try #require(expected["head"] as? String)
        let dry = try box.run(["dedupe", "--withdraw", "--dry-run", "--json"], environment: Self.now)
        #expect(try dry.json()["count"] as? Int == count - later && dry.json()["withdrawn"] as? Int == 0, "\(dry)")
        #expect(try box.run(["verify", "--json"]).json()["head"] as? String == head)

        let withdrawn = try box.run(["dedupe", "--withdraw"], environment: Self.now)
        #expect(withdrawn.status == 0, "\(withdrawn)")
        #expect(withdrawn.stdout.contains("withdrew \(later) (one withdrawal entry each); \(count - later) signatures count"), "\(withdrawn)")
        let after = try box.run(["verify", "--json"]).json()
        #expect(after["ok"] as? Bool == true && after["count"] as? Int == count - later && after["withdrawn"] as? Int == later, "\(after)")
        #expect(try box.sqlite(Self.ledger, "SELECT count(*) FROM entries WHERE kind = 'withdrawal'").stdout == "\(later)\n")
        let independent = try Self.independentVerify(box, Self.ledger)
        for key in ["ok", "count", "withdrawn", "redacted", "entries", "head"] {
            #expect("\(independent[key] ?? "nil")" == "\(after[key] ?? "nil")", "\(key): \(independent) vs \(after)")
        }
        let text2 = try box.run(["verify"])
        #expect(text2.stdout.hasPrefix("ok: \(count - later) signatures (1 forgotten, \(later) withdrawn), "), "\(text2)")

        // Every figure leaves the withdrawn signatures out.
        let report = try box.run(["report", "--json"], environment: Self.now).json()
        #expect(report["count"] as? Int == count - later && report["withdrawn"] as? Int == later)
        let publicReport = try box.run(["report", "--public", "--json"], environment: Self.now).json()
        #expect(publicReport["count"] as? Int == count - later && publicReport["withdrawn"] as? Int == later)
        #expect(try box.run(["report"], environment: Self.now).stdout.contains("\(later) signatures withdrawn as duplicates (not counted)"))
        let list = try #require(try box.run(["list", "--json"]).json()["campaigns"] as? [[String: Any]])
        #expect(list.first?["count"] as? Int == count - later, "\(list)")
        let export = try box.run(["export", "--format", "jsonl", "--fields", "entry,email"]).stdout
        #expect(export.split(separator: "\n").count == count - later)
        for group in groups { for entry in group.dropFirst() { #expect(!export.contains("\"entry\":\(entry)}"), "\(entry) withdrawn") } }
        let publicExport = try box.run(["export", "--public", "--format", "csv"]).stdout
        #expect(publicExport.contains("total,,\(count - later)"), "\(publicExport)")

        // Nothing left to withdraw; a variant of a withdrawn spelling is still a duplicate.
        #expect(try Self.groups(box.run(["dedupe", "--json"]).json()).isEmpty)
        let again = try box.run(["sign", "--name", "Fixture Signer", "--email", "anafixture+3@gmail.com", "--field", "region=Lyon", "--json"])
        #expect(try again.json()["status"] as? String == "duplicate", "\(again)")
    }

    @Test func aRulesChangeRebuildsTheKeysAndChangesTheGroups() throws {
        let box = try Self.workspace()
        let expected = try Self.expected()
        try Self.addDedupeSettings(box, "  keep_tags: true")
        let tagged = try box.run(["dedupe", "--json"])
        #expect(tagged.status == 0, "\(tagged)")
        #expect(try Self.groups(tagged.json()) == Set(try #require(expected["groups_keep_tags"] as? [[Int]])), "\(tagged.stdout)")
        #expect(tagged.stderr.contains("new in ledger format 3"), "\(tagged)")

        // Back to the standard rules.
        try box.write("muster.yaml", try String(contentsOf: Self.fixture.folder.appendingPathComponent("workspace/muster.yaml"), encoding: .utf8))
        let standard = try box.run(["dedupe", "--json"])
        #expect(try Self.groups(standard.json()) == Set(try #require(expected["groups"] as? [[Int]])))
        #expect(standard.stderr.contains("the dedupe rules changed"), "\(standard)")
        // A workspace's own rule: dots do not count at outlook.com either.
        try Self.addDedupeSettings(box, "  domains:\n    outlook.com: { ignore_dots: true }")
        let outlook = try box.run(["dedupe", "--json"])
        let apart = try #require(expected["apart"] as? [Int])
        #expect(try Self.groups(outlook.json()).contains([apart[0], apart[1]]), "evefixture and eve.fixture at outlook.com: \(outlook.stdout)")
    }

    @Test func forgedWithdrawalsAndMailboxKeysFailVerify() throws {
        let box = try Self.workspace()
        #expect(try box.run(["dedupe", "--withdraw"], environment: Self.now).status == 0)
        let head = try #require(try box.run(["verify", "--json"]).json()["head"] as? String)
        let key = "X'" + String(repeating: "c", count: 32) + "'"
        for (sql, needle) in [
            ("INSERT INTO mailbox_keys VALUES (1, \(key))", "entry 1: a mailbox key is stored for entry 1, which was withdrawn"),
            ("INSERT INTO mailbox_keys VALUES (15, \(key))", "entry 15: a mailbox key is stored for entry 15, whose signer was forgotten"),
            ("INSERT INTO mailbox_keys VALUES (99, \(key))", "entry 99: a mailbox key is stored for entry 99, which is outside the hash chain"),
            ("UPDATE entries SET at = '2020-01-01T00:00:00.000Z' WHERE seq = 26", "entry 26: entry 26 was altered"),
            // The last withdrawal deleted: the chain no longer reaches its recorded head.
            ("DELETE FROM entries WHERE seq = (SELECT max(seq) FROM entries)", "entry 34: the ledger ends at entry 33, but it recorded entry 34 as its newest"),
        ] {
            let copy = try Sandbox()
            try FileManager.default.removeItem(at: copy.root)
            try FileManager.default.copyItem(at: box.root, to: copy.root)
            try copy.sqlite(Self.ledger, "PRAGMA wal_checkpoint(TRUNCATE); \(sql);")
            let result = try copy.run(["verify"])
            #expect(result.status == 1, "\(sql): \(result)")
            #expect(result.stdout.contains("FAILED: \(needle)"), "\(sql): \(result)")
            let independent = try Self.independentVerify(copy, Self.ledger)
            #expect(independent["ok"] as? Bool == false, "\(sql): \(independent)")
        }
        #expect(try box.run(["verify", "--json"]).json()["head"] as? String == head)

        // A key row deleted: verify cannot tell it from a signer who is their own mailbox
        // (docs/ledger-format.md says so); dedupe remakes every key and says so.
        let rows = try box.sqlite(Self.ledger, "SELECT seq FROM mailbox_keys ORDER BY seq").stdout
        let seq = try #require(rows.split(separator: "\n").first.map(String.init), "the fixture keeps a variant signature")
        try box.sqlite(Self.ledger, "DELETE FROM mailbox_keys WHERE seq = \(seq)")
        #expect(try box.run(["verify"]).status == 0)
        let repaired = try box.run(["dedupe"], environment: Self.now)
        #expect(repaired.status == 0 && repaired.stderr.contains("1 stored key was missing, altered or extra"), "\(repaired)")
        #expect(try box.sqlite(Self.ledger, "SELECT seq FROM mailbox_keys ORDER BY seq").stdout == rows)
    }

    /// The ledger of format 1 (Tests/Fixtures/ledger-v1) keeps verifying once its keys are made.
    @Test func theFirstFixtureVerifiesWithItsKeys() throws {
        let box = try LedgerMigrationCLITests.workspace()
        let dedupe = try box.run(["dedupe", "--json"])
        #expect(dedupe.status == 0, "\(dedupe)")
        #expect(try Self.groups(dedupe.json()).isEmpty, "\(dedupe)")
        let verify = try box.run(["verify", "--json"]).json()
        let expectedCount = try LedgerMigrationCLITests.expected()["count"] as? Int
        #expect(verify["ok"] as? Bool == true && verify["count"] as? Int == expectedCount)
        let independent = try Self.independentVerify(box, LedgerMigrationCLITests.ledger)
        #expect(independent["ok"] as? Bool == true && independent["head"] as? String == verify["head"] as? String, "\(independent)")
    }
}
