import Foundation
import Testing

@Suite struct LedgerIntegrityTests {
    static let ledger = "campaigns/fair-rates/ledger.sqlite"

    func signed(_ count: Int) throws -> Sandbox {
        let box = try Sandbox.withCampaign()
        for index in 1...count {
            let result = try box.run(["sign", "--name", "Signer \(index)", "--email", "signer\(index)@example.org", "--field", "region=Lyon"])
            try #require(result.status == 0, "\(result)")
        }
        return box
    }

    @Test(arguments: [
        ("UPDATE entries SET body = replace(body, 'Lyon', 'Paris') WHERE seq = 3", "FAILED: entry 3: entry 3 was altered: its contents no longer match its hash"),
        ("DELETE FROM entries WHERE seq = 2", "FAILED: entry 2: entry 2 is missing (deleted?); entry 3 follows entry 1"),
        ("UPDATE entries SET seq = 100 WHERE seq = 2; UPDATE entries SET seq = 2 WHERE seq = 4; UPDATE entries SET seq = 4 WHERE seq = 100",
         "FAILED: entry 2: entry 2 does not follow entry 1: its previous-hash does not match (an entry was changed, removed or reordered)"),
        ("UPDATE personal SET data = replace(data, 'Signer 4', 'Someone else') WHERE seq = 4", "FAILED: entry 4: the personal data of entry 4 was altered: it no longer matches the hash the entry recorded"),
        ("DELETE FROM personal WHERE seq = 5", "FAILED: entry 5: the personal data of entry 5 is gone, but no redaction entry records its erasure"),
        ("DELETE FROM entries WHERE seq = 5; DELETE FROM personal WHERE seq = 5", "FAILED: entry 5: the ledger ends at entry 4, but it recorded entry 5 as its newest: entries at the end were removed"),
    ])
    func tamperingWithTheSQLiteClientFailsVerify(sql: String, expected: String) throws {
        let box = try signed(5)
        let tampered = try box.sqlite(Self.ledger, sql)
        try #require(tampered.status == 0, "\(tampered)")
        let verify = try box.run(["verify"])
        #expect(verify.status == 1, "\(verify)")
        #expect(verify.stdout.hasPrefix(expected + "\n"), "\(verify)")
        let json = try box.run(["verify", "--json"])
        #expect(json.status == 1)
        let object = try json.json()
        #expect(object["ok"] as? Bool == false)
        #expect((object["first_bad"] as? [String: Any])?["entry"] != nil)
    }

    @Test func rewritingTheWholeChainChangesThePublishedHead() throws {
        let box = try signed(3)
        let published = try box.run(["verify", "--json"]).json()["head"] as? String
        // Someone deletes the last signature and fixes up every record: verify cannot
        // tell, but the head no longer matches what was published.
        try #require(try box.sqlite(Self.ledger, """
            DELETE FROM personal WHERE seq = 3; DELETE FROM entries WHERE seq = 3;
            UPDATE meta SET value = 2 WHERE key IN ('head_seq', 'signature_count');
            UPDATE meta SET value = (SELECT hash FROM entries WHERE seq = 2) WHERE key = 'head_hash';
            """).status == 0)
        let after = try box.run(["verify", "--json"]).json()
        #expect(after["head"] as? String != published)
        #expect(after["count"] as? Int == 2)
    }

    @Test func forgetErasesPersonalDataButKeepsTheCountAndChain() throws {
        let box = try signed(4)
        let before = try box.run(["verify", "--json"]).json()
        let forget = try box.run(["forget", "Signer2@Example.org"])
        #expect(forget.status == 0, "\(forget)")
        #expect(forget.stdout == "forgotten: the personal data of signature 2 is erased; it still counts\n")
        let verify = try box.run(["verify", "--json"])
        #expect(verify.status == 0, "\(verify)")
        let after = try verify.json()
        #expect(after["ok"] as? Bool == true)
        #expect(after["count"] as? Int == 4)
        #expect(after["count"] as? Int == before["count"] as? Int)
        #expect(after["redacted"] as? Int == 1)
        #expect(try box.run(["report", "--json"]).json()["count"] as? Int == 4)

        // The address and name are gone from the database file and its log.
        for suffix in ["", "-wal", "-shm"] where box.exists(Self.ledger + suffix) {
            let bytes = try Data(contentsOf: box.path(Self.ledger + suffix))
            #expect(bytes.range(of: Data("signer2@example.org".utf8)) == nil, "found in ledger.sqlite\(suffix)")
            #expect(bytes.range(of: Data("Signer 2\"".utf8)) == nil, "found in ledger.sqlite\(suffix)")
        }
        // Signing again is still a duplicate; forgetting again is harmless.
        let again = try box.run(["sign", "--name", "Signer 2", "--email", "signer2@example.org", "--field", "region=Lyon", "--json"])
        #expect(try again.json()["status"] as? String == "duplicate")
        #expect(try box.run(["forget", "signer2@example.org"]).stdout.hasPrefix("already forgotten"))
        let unknown = try box.run(["forget", "nobody@example.org"])
        #expect(unknown.status == 1)
        #expect(unknown.stderr == "muster: error: no signature from that address in fair-rates\n")
    }

    /// A forgotten signer's personal data put back with the sqlite3 client, with an empty
    /// salt (SQLite hands an empty blob over as a NULL pointer, which `verify` once took
    /// for "no row"): verify fails, and neither export nor a blast brings the signer back.
    @Test func personalDataPutBackWithAnEmptySaltFailsVerifyAndStaysForgotten() throws {
        let box = try signed(3)
        try #require(try box.run(["forget", "signer2@example.org"]).status == 0)
        try #require(try box.run(["verify"]).status == 0)
        let putBack = try box.sqlite(Self.ledger, """
            INSERT INTO personal (seq, salt, data) VALUES (2, x'', '{"email":"signer2@example.org","name":"Signer 2"}')
            """)
        try #require(putBack.status == 0, "\(putBack)")

        let verify = try box.run(["verify"])
        #expect(verify.status == 1, "\(verify)")
        #expect(verify.stdout.hasPrefix("FAILED: entry 2: the personal data of entry 2 was altered: it no longer matches the hash the entry recorded\n"),
                "\(verify)")
        let json = try box.run(["verify", "--json"]).json()
        #expect(json["ok"] as? Bool == false && json["problems"] as? Int == 2 && json["redacted"] as? Int == 1)

        let export = try box.run(["export", "--format", "jsonl"])
        #expect(export.status == 0, "\(export)")
        #expect(!export.stdout.contains("signer2@example.org") && !export.stdout.contains("Signer 2"), "\(export.stdout)")
        #expect(export.stdout.split(separator: "\n").count == 3, "the signature still counts")

        let preview = try box.run(["mail", "send", "thank-you", "--dry-run", "--out", "preview"])
        #expect(preview.status == 0, "\(preview)")
        let messages = try FileManager.default.contentsOfDirectory(atPath: box.path("preview").path).filter { $0.hasSuffix(".eml") }
        #expect(messages.count == 2, "\(messages)")
        for name in messages {
            let message = try String(contentsOf: box.path("preview/\(name)"), encoding: .utf8)
            #expect(!message.contains("signer2@example.org"), "\(name) is for the forgotten signer")
        }
    }

    @Test func unsubscribeAppendsAnOptOut() throws {
        let box = try signed(2)
        let result = try box.run(["unsubscribe", "signer1@example.org", "--json"])
        #expect(try result.json()["status"] as? String == "unsubscribed")
        #expect(try box.run(["unsubscribe", "SIGNER1@example.org"]).stdout == "already unsubscribed\n")
        let verify = try box.run(["verify", "--json"]).json()
        #expect(verify["ok"] as? Bool == true)
        #expect(verify["count"] as? Int == 2)
        #expect(verify["entries"] as? Int == 3)
        let body = try box.sqlite(Self.ledger, "SELECT body FROM entries WHERE kind = 'optout'")
        #expect(!body.stdout.contains("signer1"), "the opt-out holds a fingerprint, not the address")
    }

    /// Issue 10, item 1, from outside: every entry and its personal data copied beside the
    /// chain (seq −1…−3, new fingerprints) with the sqlite3 client.
    static let copyBesideTheChain = """
        INSERT INTO entries SELECT -seq, kind, at, lower(hex(randomblob(32))), body, personal_hash, prev, hash FROM entries;
        INSERT INTO personal SELECT -seq, salt, replace(data, 'signer', 'forged') FROM personal;
        """

    @Test func rowsBesideTheChainAreNeverCountedAndFailVerify() throws {
        let box = try signed(3)
        let published = try box.run(["verify", "--json"]).json()["head"] as? String
        try #require(try box.sqlite(Self.ledger, Self.copyBesideTheChain).status == 0)

        let verify = try box.run(["verify"])
        #expect(verify.status == 1, "\(verify)")
        #expect(verify.stdout == "FAILED: entry -3: entry -3 is outside the hash chain (entries 1–3): a row was added beside the chain\n5 more problems after it\n")
        let json = try box.run(["verify", "--json"])
        #expect(json.status == 1)
        let object = try json.json()
        #expect(object["ok"] as? Bool == false && object["count"] as? Int == 3 && object["head"] as? String == published)
        #expect(object["problems"] as? Int == 6)

        // Every figure is the chain's: 3, with the head that was published.
        let report = try box.run(["report", "--json"])
        #expect(report.status == 0, "\(report)")
        #expect(try report.json()["count"] as? Int == 3)
        #expect(try report.json()["head"] as? String == published)
        for format in ["text", "markdown", "html"] {
            let text = try box.run(["report", "--format", format]).stdout
            #expect(text.contains("3 of 10") || text.contains("3</") || text.contains("**3**"), "\(format): \(text)")
            #expect(!text.contains("6 of 10"), "\(format)")
        }
        let listed = try box.run(["list", "--json"]).json()["campaigns"] as? [[String: Any]]
        #expect(listed?.first?["count"] as? Int == 3)
        let csv = try box.run(["export", "--format", "csv"])
        #expect(csv.status == 0)
        #expect(csv.stdout.utf8.filter { $0 == 10 }.count == 4, "header and 3 rows: \(csv)")
        #expect(!csv.stdout.contains("forged"))
        let jsonl = try box.run(["export", "--format", "jsonl"]).stdout
        #expect(jsonl.utf8.filter { $0 == 10 }.count == 3 && !jsonl.contains("forged"))
        let publicExport = try box.run(["export", "--public"])
        #expect(publicExport.status == 0)
        #expect(publicExport.stdout.contains("total,,3\r\n") || publicExport.stdout.contains("total,,3\n"), "\(publicExport)")
        #expect(!publicExport.stdout.contains(",6"), "\(publicExport)")

        // Nothing is written to such a ledger (exit 1): no real signer is turned away as a
        // duplicate of a forged row, and no forged row is drawn into the chain.
        let sign = try box.run(["sign", "--name", "New Signer", "--email", "new@example.org", "--field", "region=Lyon"])
        #expect(sign.status == 1, "\(sign)")
        #expect(sign.stderr.hasPrefix("muster: error: ") && sign.stderr.contains("holds an entry numbered -3, outside its hash chain (entries 1–3): the ledger was altered outside muster; nothing was written — run `muster verify`"), "\(sign)")
        try box.write("more.csv", "name,email,region\nNew Signer,new@example.org,Lyon\n")
        let imported = try box.run(["import", "more.csv"])
        #expect(imported.status == 1, "\(imported)")
        // The kiosk (in a real terminal) refuses before the volunteer chooses a passphrase.
        let kiosk = try KioskDriver.run(box, steps: [.end])
        #expect(kiosk.status == 1, "\(kiosk)")
        #expect(kiosk.transcript.contains("outside its hash chain"), "\(kiosk)")
        let other = try signed(1)
        let mergedInto = try box.run(["merge", other.path(Self.ledger).path])
        #expect(mergedInto.status == 1, "\(mergedInto)")
        #expect(mergedInto.stderr.contains("outside its hash chain"), "\(mergedInto)")
        #expect(try box.run(["forget", "signer1@example.org"]).status == 1)
        #expect(try box.run(["unsubscribe", "signer1@example.org"]).status == 1)
        #expect(try box.sqlite(Self.ledger, "SELECT count(*), max(seq) FROM entries").stdout == "6|3\n")
    }

    @Test(arguments: [
        ("CREATE TRIGGER hide AFTER INSERT ON entries BEGIN DELETE FROM entries WHERE seq = new.seq; END",
         "FAILED: the ledger holds a trigger 'hide' that muster did not create\n"),
        ("INSERT INTO meta VALUES ('published_count', 5000)", "FAILED: the ledger's meta table holds a record 'published_count' that muster did not write\n"),
        ("INSERT INTO outbox (template, recipient, signature, state, updated_at) SELECT 'thanks', fingerprint, 7, 'sent', at FROM entries WHERE seq = 1",
         "FAILED: entry 7: the outbox of template 'thanks' has a row for entry 7, which is not that signer's signature in the hash chain\n"),
        ("INSERT INTO entries SELECT 4, kind, at, 'f', body, personal_hash, prev, hash FROM entries WHERE seq = 3",
         "FAILED: entry 4: entry 4 is outside the hash chain (entries 1–3): a row was added beside the chain\n"),
    ])
    func whatTheChainDoesNotAccountForFailsVerify(sql: String, expected: String) throws {
        let box = try signed(3)
        try #require(try box.sqlite(Self.ledger, sql).status == 0)
        let verify = try box.run(["verify"])
        #expect(verify.status == 1, "\(verify)")
        #expect(verify.stdout == expected, "\(verify)")
        let json = try box.run(["verify", "--json"])
        #expect(json.status == 1)
        let bad = try json.json()["first_bad"] as? [String: Any]
        if let entry = bad?["entry"] as? Int {
            #expect(expected.hasPrefix("FAILED: entry \(entry): "), "\(json)")
        } else {
            #expect(bad?["entry"] == nil && !expected.hasPrefix("FAILED: entry "), "no entry number when not at an entry: \(json)")
        }
        #expect(bad?["reason"] as? String != nil)
        #expect(try box.run(["report", "--json"]).json()["count"] as? Int == 3)
    }

    @Test(.enabled(if: TestRelay.available, "needs python3 with aiosmtpd"))
    func aForgedSignerBesideTheChainIsNeverMailed() throws {
        let box = try MailTests.workspace(signers: [("Ana Lima", "ana@example.org", true), ("Bo", "bo@example.org", true)])
        // Copies of both signers beside the chain (after its head, and before it), with other
        // addresses, and an outbox row already queued for one of them.
        try #require(try box.sqlite(Self.ledger, Self.copyBesideTheChain + """
            INSERT INTO entries SELECT seq + 100, kind, at, lower(hex(randomblob(32))), body, personal_hash, prev, hash FROM entries WHERE seq > 0;
            INSERT INTO personal SELECT seq + 100, salt, data FROM personal WHERE seq > 0;
            UPDATE personal SET data = replace(data, 'example.org', 'forged.example') WHERE seq < 0 OR seq > 100;
            INSERT INTO outbox (template, recipient, signature, state, updated_at) SELECT 'thanks', fingerprint, seq, 'queued', at FROM entries WHERE seq IN (-1, 101);
            """).status == 0)
        let relay = try TestRelay(in: box)
        let send = try box.run(["mail", "send", "thanks", "--yes", "--json"], environment: ["MUSTER_SMTP_URL": relay.url, "MUSTER_BACKOFF_SECONDS": "0.05"])
        #expect(send.status == 0, "\(send)")
        #expect(try send.json()["sent"] as? Int == 2, "\(send)")
        let messages = try relay.received()
        #expect(Set(messages.map(\.to)) == [["ana@example.org"], ["bo@example.org"]], "\(messages.map(\.to))")
        #expect(!messages.contains { $0.raw.contains("forged.example") })
    }

    @Test func eightVolunteersSigningAtOnceLoseAndDoubleNothing() throws {
        let box = try Sandbox.withCampaign()
        // 8 processes × 100 signatures: each signs its own 50 addresses and the next
        // worker's 50 (written in other case), so every address is signed twice at once.
        var expected = Set<String>()
        var batches: [[String]] = []
        for worker in 0..<8 {
            let own = (0..<50).map { "person\(worker)-\($0)@example.org" }
            let next = (0..<50).map { "PERSON\((worker + 1) % 8)-\($0)@Example.org" }
            expected.formUnion(own)
            batches.append(zip(own, next).flatMap { [$0, $1] })
        }
        #expect(expected.count == 400)
        let script = """
            for email in "$@"; do
              "$MUSTER" sign --name "Volunteer signer" --email "$email" --field region=Lyon >/dev/null || echo "FAILED $email" >&2
            done
            """
        var processes: [(Process, URL)] = []
        for emails in batches {
            let errors = box.root.appendingPathComponent("errors-\(processes.count)")
            _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            process.arguments = ["-c", script, "worker"] + emails
            process.currentDirectoryURL = box.root
            process.environment = ProcessInfo.processInfo.environment.merging(["MUSTER": MusterBinary.url.path]) { $1 }
            process.standardError = try FileHandle(forWritingTo: errors)
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            processes.append((process, errors))
        }
        for (process, errors) in processes {
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
            #expect(try String(contentsOf: errors, encoding: .utf8) == "", "a sign failed")
        }
        let verify = try box.run(["verify", "--json"])
        #expect(verify.status == 0, "\(verify)")
        let object = try verify.json()
        #expect(object["ok"] as? Bool == true)
        #expect(object["count"] as? Int == expected.count)
        #expect(object["entries"] as? Int == expected.count)
    }
}
