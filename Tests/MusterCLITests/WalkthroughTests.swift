import Foundation
import Testing

@Suite struct WalkthroughTests {
    @Test func initNewSignReportVerifyList() throws {
        let box = try Sandbox()
        var result = try box.run(["init", "ws"])
        #expect(result.status == 0, "\(result)")
        #expect(box.exists("ws/muster.yaml") && box.exists("ws/.gitignore") && box.exists("ws/templates/campaign/campaign.yaml.mustache"))
        let gitignore = try String(contentsOf: box.path("ws/.gitignore"), encoding: .utf8)
        #expect(gitignore.contains("ledger.sqlite"))

        let ws = box.path("ws")
        result = try box.run(["new", "fair-rates", "--title", "Fair rates for translators", "--goal", "4", "--deadline", "2027-03-31"], in: ws)
        #expect(result.status == 0, "\(result)")
        #expect(box.exists("ws/campaigns/fair-rates/campaign.yaml") && box.exists("ws/campaigns/fair-rates/petition.md") && box.exists("ws/campaigns/fair-rates/emails/thank-you.md"))
        let petition = try String(contentsOf: box.path("ws/campaigns/fair-rates/petition.md"), encoding: .utf8)
        #expect(petition.hasPrefix("# Fair rates for translators\n"))

        result = try box.run(["check"], in: ws)
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout == "ok: 1 campaign, 8 files checked (1 warning)\n", "the scaffold's placeholder sender is a warning")

        let day1 = ["MUSTER_NOW": "2026-11-20T09:00:00Z"], day2 = ["MUSTER_NOW": "2026-11-25T16:30:00Z"]
        result = try box.run(["sign", "--name", "Ana Lima", "--email", "ana@example.org", "--field", "region=Lyon", "--consent", "updates"], in: ws, environment: day1)
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout == "added: 1 of 4 signatures\n")
        result = try box.run(["sign", "--name", "Bo", "--email", "bo@example.org", "--field", "region=Paris", "--json"], in: ws, environment: day2)
        #expect(try result.json()["status"] as? String == "added")
        #expect(try result.json()["count"] as? Int == 2)
        // The same person, written differently, is a duplicate: exit 0, first date shown.
        result = try box.run(["sign", "--name", "Ana L.", "--email", "  ANA@Example.ORG ", "--field", "region=Lyon"], in: ws, environment: day2)
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout == "duplicate: this address already signed on 2026-11-20; 2 signatures\n")
        result = try box.run(["sign", "--name", "Ana", "--email", "ana@example.org", "--field", "region=Lyon", "--json"], in: ws, environment: day2)
        let duplicate = try result.json()
        #expect(duplicate["status"] as? String == "duplicate")
        #expect(duplicate["count"] as? Int == 2)
        #expect(duplicate["first_signed_at"] as? String == "2026-11-20T09:00:00.000Z")

        // From inside the campaign folder, -c is not needed (and from a workspace with one campaign).
        result = try box.run(["report", "--json"], in: box.path("ws/campaigns/fair-rates/emails"), environment: ["MUSTER_NOW": "2026-11-26T12:00:00Z"])
        #expect(result.status == 0, "\(result)")
        let report = try result.json()
        #expect(report["count"] as? Int == 2)
        #expect(report["goal"] as? Int == 4)
        #expect(report["percent"] as? Double == 50)
        #expect(report["days_left"] as? Int == 125)
        let milestones = try #require(report["milestones"] as? [[String: Any]])
        #expect(milestones.map { $0["at"] as? Int } == [1, 2, 4])
        #expect(milestones.map { $0["reached_on"] as? String } == ["2026-11-20", "2026-11-25", nil])
        let perDay = try #require(report["per_day"] as? [[String: Any]])
        #expect(perDay.count == 14)
        #expect(perDay.first?["date"] as? String == "2026-11-13")
        #expect(perDay.last?["date"] as? String == "2026-11-26")
        #expect(perDay.filter { ($0["count"] as? Int ?? 0) > 0 }.map { $0["date"] as? String } == ["2026-11-20", "2026-11-25"])

        result = try box.run(["report"], in: ws, environment: ["MUSTER_NOW": "2026-11-26T12:00:00Z"])
        #expect(result.stdout.hasPrefix("Fair rates for translators\n  2 of 4 signatures (50%)"))
        #expect(result.stdout.contains("✓ 1  reached 2026-11-20"))
        #expect(!result.stdout.contains("\u{1B}["), "no colour when piped")

        result = try box.run(["verify", "--json"], in: ws)
        let verify = try result.json()
        #expect(verify["ok"] as? Bool == true)
        #expect(verify["count"] as? Int == 2)
        #expect((verify["head"] as? String)?.count == 64)
        #expect(verify["head"] as? String == report["head"] as? String)

        result = try box.run(["list", "--json"], in: ws)
        let campaigns = try #require(try result.json()["campaigns"] as? [[String: Any]])
        #expect(campaigns.count == 1)
        #expect(campaigns[0]["slug"] as? String == "fair-rates")
        #expect(campaigns[0]["count"] as? Int == 2)
        #expect(campaigns[0]["goal"] as? Int == 4)

        // The ledger is private to its owner.
        let attributes = try FileManager.default.attributesOfItem(atPath: box.path("ws/campaigns/fair-rates/ledger.sqlite").path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
    }

    @Test func helpTeachesEveryCommand() throws {
        let box = try Sandbox()
        for command in ["init", "new", "list", "check", "sign", "import", "export", "merge", "forget", "unsubscribe", "verify", "report", "mail", "mail send", "mail preview", "mail status", "smtp", "smtp check"] {
            let result = try box.run(command.split(separator: " ").map(String.init) + ["--help"])
            #expect(result.status == 0, "\(command): \(result)")
            #expect(result.stdout.contains("USAGE: muster \(command)"), "\(command)")
        }
        let top = try box.run(["--help"])
        #expect(top.stdout.contains("Exit codes"))
    }

    @Test func workspaceIsFoundFromBelowOrByFlag() throws {
        let box = try Sandbox.withCampaign()
        try FileManager.default.createDirectory(at: box.path("campaigns/fair-rates/deep/er"), withIntermediateDirectories: true)
        #expect(try box.run(["list"], in: box.path("campaigns/fair-rates/deep/er")).status == 0)
        let outside = try Sandbox()
        let lost = try outside.run(["list"])
        #expect(lost.status == 64)
        #expect(lost.stderr.contains("not inside a muster workspace"))
        #expect(try outside.run(["list", "--workspace", box.root.path]).status == 0)
        let again = try box.run(["init", "."])
        #expect(again.status == 1)
        #expect(again.stderr.contains("already a muster workspace"))
    }

    @Test func severalCampaignsNeedAChoice() throws {
        let box = try Sandbox.withCampaign()
        #expect(try box.run(["new", "second"]).status == 0)
        let ambiguous = try box.run(["report"])
        #expect(ambiguous.status == 64)
        #expect(ambiguous.stderr == "muster: error: this workspace has 2 campaigns (fair-rates, second); choose one with -c SLUG\n")
        #expect(try box.run(["report", "-c", "second"]).status == 0)
        let unknown = try box.run(["report", "-c", "third"])
        #expect(unknown.status == 64)
        #expect(unknown.stderr.contains("no campaign 'third'"))
    }
}
