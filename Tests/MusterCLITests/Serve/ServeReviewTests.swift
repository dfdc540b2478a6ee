import Foundation
import Testing

/// `muster review`: held forms listed by cause without addresses, rejected (erased) or
/// approved (mailed by the running server, then confirmed as any other) (issue 12).
@Suite(.enabled(if: TestRelay.available, "needs python3 with aiosmtpd (make test installs it)"))
struct ServeReviewTests {
    @Test func heldFormsAreListedByCauseThenRejectedOrApprovedAndConfirmed() throws {
        let box = try Sandbox.withCampaign(manifest: ServeLimitsTests.manifest("  client_per_minute: 2\n  domain_per_minute: 1\n"))
        let relay = try TestRelay(in: box)
        try box.write("muster.yaml", """
            sender: "Fair Rates <hello@fairrates.example>"
            smtp:
              url: \(relay.url)
              starttls: never
            serve:
              trust_proxy: 127.0.0.1

            """)
        let server = try ServerProcess(box)
        _ = try ServeLimitsTests.sign(server, email: "first@acme.example", forwardedFor: "192.0.2.1")
        _ = try ServeLimitsTests.sign(server, email: "second@acme.example", forwardedFor: "192.0.2.2")   // domain
        _ = try ServeLimitsTests.sign(server, email: "b@one.example", forwardedFor: "192.0.2.3")
        _ = try ServeLimitsTests.sign(server, email: "c@two.example", forwardedFor: "192.0.2.3")
        _ = try ServeLimitsTests.sign(server, email: "dora@three.example", forwardedFor: "192.0.2.3") // client
        try ServeConfirmTests.eventually("three confirmation mails") { try relay.received().count == 3 }
        #expect(try relay.received().flatMap(\.to).sorted() == ["b@one.example", "c@two.example", "first@acme.example"],
                "held forms get no mail")

        let listed = try box.run(["review"])
        #expect(listed.status == 0, "\(listed)")
        #expect(listed.stdout.contains("fair-rates: 2 forms held (no mail sent, not counted)"), "\(listed.stdout)")
        #expect(listed.stdout.contains("domain:acme.example"))
        #expect(!listed.stdout.contains("@") && !listed.stdout.contains("192.0.2"), "no address: \(listed.stdout)")
        let json = try box.run(["review", "--json"]).json()
        let campaigns = try #require(json["campaigns"] as? [[String: Any]])
        let groups = try #require(campaigns.first?["groups"] as? [[String: Any]])
        #expect(campaigns.first?["held"] as? Int == 2 && groups.count == 2, "\(json)")
        let client = try #require(groups.first { $0["cause"] as? String == "client" })
        let clientID = try #require(client["id"] as? String)
        #expect(clientID.range(of: "^client:[0-9a-f]{8}$", options: .regularExpression) != nil, "\(clientID)")
        #expect((client["window"] as? String)?.hasSuffix(":00Z") == true && client["count"] as? Int == 1)

        let report = try box.run(["report", "--json"]).json()
        #expect(report["held"] as? Int == 2 && report["pending"] as? Int == 3, "\(report)")
        #expect(try box.run(["report"]).stdout.contains("2 forms from the sign page held for review (not counted)"))
        let bad = try box.run(["review", "--approve", "everyone"])
        #expect(bad.status == 64 && bad.stderr.contains("not 'everyone'"), "\(bad)")

        let rejected = try box.run(["review", "--reject", "domain:acme.example", "--json"]).json()
        #expect((rejected["campaigns"] as? [[String: Any]])?.first?["rejected"] as? Int == 1, "\(rejected)")
        #expect(try ServeSignTests.rows(box, "SELECT count(*) FROM pending WHERE data LIKE '%second@%'") == "0")
        #expect(try box.run(["verify"]).status == 0)
        let file = try Data(contentsOf: box.root.appendingPathComponent("campaigns/fair-rates/ledger.sqlite"))
        #expect(file.range(of: Data("second@acme".utf8)) == nil, "a rejected form is erased")

        // The server's mailer has looked at its queue many times since (it is woken by
        // each form and looks every few seconds): still no mail for the held forms.
        #expect(try relay.received().count == 3)
        let approved = try box.run(["review", "--approve", clientID])
        #expect(approved.stdout.contains("approved 1 form; their confirmation mail is queued"), "\(approved)")
        #expect(approved.stdout.contains("fair-rates: no held forms"))
        try ServeConfirmTests.eventually("the approved form's mail") { try relay.received().count == 4 }
        #expect(try relay.received()[3].to == ["dora@three.example"])
        let path = try ServeConfirmTests.confirmPath(try relay.parsed(3).text)
        let confirmed = try server.request(path, method: "POST", headers: ["Origin": server.base])
        #expect(confirmed.status == 200 && confirmed.body.contains("your signature counts"), "\(confirmed)")
        #expect(try box.run(["report", "--json"]).json()["count"] as? Int == 1)
        let log = server.stop().log
        #expect(!log.contains("dora") && !log.contains("192.0.2"), "\(log)")
    }
}
