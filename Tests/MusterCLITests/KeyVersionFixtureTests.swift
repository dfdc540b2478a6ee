import Foundation
import Testing

/// The built binary against the committed ledger of format 3 as the first release with
/// mailbox keys wrote it (Tests/Fixtures/ledger-v3: key version 2, a key row for every
/// signature that counts). Reading it changes no key (it only gains the Merkle tree of
/// format 4); the first write remakes its keys
/// as today's muster makes them (rows only where the key is not the fingerprint's start)
/// without changing the chain or the count, and duplicates are still found both ways.
@Suite struct KeyVersionFixtureTests {
    static let fixture = CommittedFixture("ledger-v3")
    static let ledger = "campaigns/keys/ledger.sqlite"

    func rows(_ box: Sandbox) throws -> [Int] {
        try box.sqlite(Self.ledger, "SELECT seq FROM mailbox_keys ORDER BY seq").stdout
            .split(separator: "\n").compactMap { Int($0) }
    }

    @Test func theReleasedFormat3LedgerKeepsItsCountAndGetsTodaysKeys() throws {
        let box = try Self.fixture.workspace()
        let expected = try Self.fixture.expected()
        let madeRows = try #require(expected["key_rows_as_made"] as? Int)
        #expect(try rows(box).count == madeRows)

        // Reading: no key rewrite, the same head and counts; the one migration is format 4's,
        // which adds the Merkle tree and leaves the keys alone.
        let verify = try box.run(["verify", "--json"])
        // Later formats (5: the sign page's pending table) migrate it on opening, which
        // touches neither entries nor keys; nothing else may be said.
        let said = verify.stderr.split(separator: "\n").filter { !$0.hasPrefix("muster: migrated ") }
        #expect(verify.status == 0 && said.isEmpty, "\(verify)")
        let json = try verify.json()
        for key in ["head", "count", "entries", "withdrawn", "redacted"] {
            #expect(json[key] as? NSObject == expected[key] as? NSObject, "\(key): \(json)")
        }
        #expect(try rows(box).count == madeRows, "verify writes nothing")

        // The first write: another spelling of a counted mailbox is refused, and the keys
        // are remade, saying why.
        let variant = try box.run(["sign", "--name", "Fixture Signer", "--email", "ANA.FIXTURE+again@googlemail.com", "--field", "region=Lyon", "--json"],
                                  environment: ["MUSTER_NOW": "2026-12-02T09:00:00Z"])
        #expect(try variant.json()["status"] as? String == "duplicate", "\(variant)")
        #expect(variant.stderr.contains("this muster keys mailboxes differently"), "\(variant)")
        #expect(try rows(box) == (expected["key_rows_today"] as? [Int]), "rows only for lufixture+x and fi.fixture")
        for (email, status) in [("lufixture@example.org", "duplicate"), ("fifixture+1@gmail.com", "duplicate"),
                                ("cyfixture+later@example.org", "duplicate"), ("eli+3@example.org", "duplicate"),
                                ("bofixture+1@example.org", "added")] { // bo was forgotten: only the exact address stays a duplicate
            let result = try box.run(["sign", "--name", "Fixture Signer", "--email", email, "--field", "region=Lyon", "--json"],
                                     environment: ["MUSTER_NOW": "2026-12-02T09:05:00Z"])
            #expect(try result.json()["status"] as? String == status, "\(email): \(result)")
        }
        let after = try box.run(["verify", "--json"]).json()
        #expect(after["ok"] as? Bool == true)
        #expect(after["count"] as? Int == (expected["count"] as? Int ?? 0) + 1)
        // Nothing left to group; the keys are as dedupe would make them.
        let dedupe = try box.run(["dedupe", "--json"], environment: ["MUSTER_NOW": "2026-12-02T10:00:00Z"])
        #expect(dedupe.status == 0 && dedupe.stderr.isEmpty, "\(dedupe)")
        #expect(try (dedupe.json()["groups"] as? [Any])?.isEmpty == true)
        let independent = try DedupeTests.independentVerify(box, Self.ledger)
        #expect(independent["ok"] as? Bool == true, "\(independent)")
    }
}
