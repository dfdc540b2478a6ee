import Foundation
import Testing

@Suite struct MergeTests {
    static let ledger = "campaigns/fair-rates/ledger.sqlite"

    func sign(_ box: Sandbox, _ name: String, _ email: String, at: String, by: String? = nil) throws {
        let result = try box.run(["sign", "--name", name, "--email", email, "--field", "region=Lyon"] + (by.map { ["--by", $0] } ?? []),
                                 environment: ["MUSTER_NOW": at])
        try #require(result.status == 0, "\(result)")
    }

    @Test func overlappingSignersAreFoldedInTimeOrderOnce() throws {
        let home = try Sandbox.withCampaign()
        try sign(home, "Ana Lima", "ana@example.org", at: "2026-10-01T09:00:00Z")
        try sign(home, "Bo Chen", "bo@example.org", at: "2026-10-05T09:00:00Z")
        let laptop = try Sandbox.withCampaign()
        try sign(laptop, "Dee Late", "dee@example.org", at: "2026-10-04T12:00:00Z", by: "Sam")
        try sign(laptop, "Bo Again", "BO@example.org", at: "2026-10-02T09:00:00Z", by: "Sam")
        try sign(laptop, "Cy Early", "cy@example.org", at: "2026-10-03T12:00:00Z")
        try sign(laptop, "Gone Person", "gone@example.org", at: "2026-10-03T13:00:00Z")
        try #require(laptop.run(["forget", "gone@example.org"]).status == 0)
        try #require(laptop.run(["unsubscribe", "cy@example.org"]).status == 0)

        let other = laptop.path(Self.ledger).path
        let dry = try home.run(["merge", other, "--dry-run", "--json"])
        #expect(try dry.json()["added"] as? Int == 2, "\(dry)")
        #expect(try home.run(["verify", "--json"]).json()["count"] as? Int == 2)

        let merged = try home.run(["merge", other, "--by", "laptop-2", "--json"])
        #expect(merged.status == 0, "\(merged)")
        let json = try merged.json()
        #expect(json["added"] as? Int == 2)
        #expect(json["duplicates"] as? Int == 1)
        #expect(json["forgotten_skipped"] as? Int == 1)
        #expect(json["unsubscribed"] as? Int == 1)
        #expect(json["count"] as? Int == 4)
        // Appended in their original signed_at order, with time and collector kept.
        let rows = try home.sqlite(Self.ledger, "SELECT e.at || ' ' || e.body FROM entries e WHERE kind = 'signature' ORDER BY seq").stdout
        #expect(rows == """
            2026-10-01T09:00:00.000Z {"fields":{"region":"Lyon"},"source":"cli"}
            2026-10-05T09:00:00.000Z {"fields":{"region":"Lyon"},"source":"cli"}
            2026-10-03T12:00:00.000Z {"collector":"laptop-2","fields":{"region":"Lyon"},"source":"cli"}
            2026-10-04T12:00:00.000Z {"collector":"Sam","fields":{"region":"Lyon"},"source":"cli"}

            """)
        #expect(try home.run(["verify"]).status == 0)
        // Merging twice changes nothing.
        let head = try home.run(["verify", "--json"]).json()["head"] as? String
        let again = try home.run(["merge", other, "--json"])
        #expect(try again.json()["added"] as? Int == 0)
        #expect(try home.run(["verify", "--json"]).json()["head"] as? String == head)
    }

    /// Issue 10, item 1: forged rows beside the chain of a volunteer's ledger (entries and
    /// personal data, other people) must not be laundered into this ledger's chain.
    @Test func aLedgerWithRowsBesideItsChainIsRefused() throws {
        let home = try Sandbox.withCampaign()
        try sign(home, "Ana Lima", "ana@example.org", at: "2026-10-01T09:00:00Z")
        let laptop = try Sandbox.withCampaign()
        for index in 1...3 { try sign(laptop, "Signer \(index)", "signer\(index)@example.org", at: "2026-10-0\(index)T09:00:00Z") }
        try #require(try laptop.sqlite(Self.ledger, LedgerIntegrityTests.copyBesideTheChain).status == 0)
        let other = laptop.path(Self.ledger).path
        let head = try home.run(["verify", "--json"]).json()["head"] as? String
        for arguments in [["merge", other], ["merge", other, "--dry-run"], ["merge", other, "--json"]] {
            let merged = try home.run(arguments)
            #expect(merged.status == 65, "\(merged)")
            #expect(merged.stdout == "")
            #expect(merged.stderr == "muster: error: \(other) does not verify: entry -3: entry -3 is outside the hash chain (entries 1–3): a row was added beside the chain; nothing was merged\n", "\(merged)")
        }
        let after = try home.run(["verify", "--json"]).json()
        #expect(after["count"] as? Int == 1 && after["head"] as? String == head)
        // Without the forged rows, the same ledger merges.
        try #require(try laptop.sqlite(Self.ledger, "DELETE FROM entries WHERE seq < 1; DELETE FROM personal WHERE seq < 1").status == 0)
        let clean = try home.run(["merge", other, "--json"])
        #expect(clean.status == 0, "\(clean)")
        #expect(try clean.json()["added"] as? Int == 3)
    }

    @Test func signaturesThisManifestRefusesAreListedNotMerged() throws {
        let home = try Sandbox.withCampaign(manifest: "title: T\ngoal: 10\nfields:\n  - name: region\n    required: true\n    options: [Lyon]\n")
        let laptop = try Sandbox.withCampaign()
        try sign(laptop, "Ana Lima", "ana@example.org", at: "2026-10-01T09:00:00Z")
        try #require(laptop.run(["sign", "--name", "Bo", "--email", "bo@example.org", "--field", "region=Paris"]).status == 0)
        let merged = try home.run(["merge", laptop.path(Self.ledger).path, "--json"])
        #expect(merged.status == 0, "\(merged)")
        let json = try merged.json()
        #expect(json["added"] as? Int == 1)
        #expect(json["rejected"] as? Int == 1)
        #expect(json["rejected_entries"] as? [String] == ["entry 2: region '…' is not one of: Lyon"])
    }

    @Test func aTamperedLedgerIsRefused() throws {
        let home = try Sandbox.withCampaign()
        try sign(home, "Ana Lima", "ana@example.org", at: "2026-10-01T09:00:00Z")
        let laptop = try Sandbox.withCampaign()
        for index in 1...3 { try sign(laptop, "Signer \(index)", "s\(index)@example.org", at: "2026-10-0\(index)T09:00:00Z") }
        try #require(laptop.sqlite(Self.ledger, "UPDATE entries SET body = replace(body, 'Lyon', 'Paris') WHERE seq = 2").status == 0)
        let head = try home.run(["verify", "--json"]).json()["head"] as? String
        let result = try home.run(["merge", laptop.path(Self.ledger).path])
        #expect(result.status == 65, "\(result)")
        #expect(result.stderr.contains("does not verify: entry 2: entry 2 was altered: its contents no longer match its hash; nothing was merged"), "\(result)")
        #expect(try home.run(["verify", "--json"]).json()["head"] as? String == head)

        try home.write("not-a-ledger.sqlite", "hello")
        let garbage = try home.run(["merge", "not-a-ledger.sqlite"])
        #expect(garbage.status == 65, "\(garbage)")
        #expect(try home.run(["merge", Self.ledger]).status == 64)
    }
}
