import Foundation
import Testing

/// `web: open:` and `web: closes:`: the sign form only within its window, besides the
/// manifest's deadline; a POST outside it gets a 403 page and stores nothing (issue 12).
@Suite struct ServeWindowTests {
    static func manifest(_ web: String) -> String {
        ServePageTests.manifest + "\nweb:\n" + web
    }

    /// The page and a POST of a whole form at the time `now` (the server's clock).
    static func attempt(_ box: Sandbox, at now: String) throws -> (page: String, post: HTTPResult) {
        let server = try ServerProcess(box, environment: ["MUSTER_NOW": now])
        let page = try server.get("/c/fair-rates").body
        // The form's token, when the page has a form; a POST outside the window is
        // refused before its token is looked at.
        let token = page.range(of: #"name="csrf" value="[^"]+""#, options: .regularExpression)
            .map { String(page[$0].dropFirst(#"name="csrf" value=""#.count).dropLast()) } ?? "none"
        let post = try ServeSignTests.post(server, ServeSignTests.encode([("csrf", token), ("name", "Ana Lima"), ("email", "ana@example.org"),
                                                                          ("field.region", "Lyon")]), origin: server.base)
        return (page, post)
    }

    @Test func theFormOpensOnItsDayAndClosesAfterItsLastDay() throws {
        let box = try Sandbox.withCampaign(manifest: Self.manifest("  open: 2027-01-10\n  closes: 2027-02-01\n"))
        let early = try Self.attempt(box, at: "2027-01-09T23:59:59Z")
        #expect(early.page.contains("This petition is not open yet: the form appears on 2027-01-10.") && !early.page.contains("<form"), "\(early.page)")
        #expect(early.post.status == 403 && early.post.body.contains("This petition is not open yet")
                && early.post.body.contains("It takes signatures from 2027-01-10. Nothing was recorded."), "\(early.post)")
        #expect(try ServeSignTests.rows(box, "SELECT count(*) FROM pending") == "0")

        let first = try Self.attempt(box, at: "2027-01-10T00:00:00Z")
        #expect(first.page.contains(#"<form class="sign""#) && first.page.contains("Open until 2027-02-01."), "the earlier of closes and the deadline: \(first.page)")
        #expect(first.post.status == 200 && first.post.body.contains("Check your inbox"), "\(first.post)")
        #expect(try ServeSignTests.rows(box, "SELECT count(*) FROM pending") == "1")

        let last = try Self.attempt(box, at: "2027-02-01T23:59:59Z")
        #expect(last.page.contains(#"<form class="sign""#) && last.post.status == 200, "the whole last day: \(last.post)")

        let after = try Self.attempt(box, at: "2027-02-02T00:00:00Z")
        #expect(after.page.contains("Closed on 2027-02-01.") && after.page.contains("This petition is closed") && !after.page.contains("<form"), "\(after.page)")
        #expect(after.post.status == 403 && after.post.body.contains("This petition is closed"), "\(after.post)")
        #expect(try ServeSignTests.rows(box, "SELECT count(*) FROM pending") == "1", "nothing stored outside the window")
        #expect(try box.run(["verify"]).status == 0)
    }

    @Test func dateTimesAreInstantsAndTheFrenchPagesSayItToo() throws {
        let box = try Sandbox.withCampaign(manifest: Self.manifest("  language: fr\n  open: 2027-01-10T09:30:00Z\n  closes: 2027-01-20T18:00:00Z\n"))
        let early = try Self.attempt(box, at: "2027-01-10T09:29:59Z")
        #expect(early.page.contains("le formulaire apparaîtra le 2027-01-10 09:30 UTC") && !early.page.contains("<form"), "\(early.page)")
        #expect(early.post.status == 403 && early.post.body.contains("<h1>Cette pétition n"), "\(early.post)")
        #expect(try Self.attempt(box, at: "2027-01-10T09:30:00Z").post.status == 200)
        let open = try Self.attempt(box, at: "2027-01-20T17:59:59Z")
        #expect(open.page.contains("au 2027-01-20 18:00 UTC."), "\(open.page)")
        let closed = try Self.attempt(box, at: "2027-01-20T18:00:00Z")
        #expect(closed.post.status == 403 && closed.post.body.contains("Cette pétition est close"), "\(closed.post)")
        #expect(try ServeSignTests.rows(box, "SELECT count(*) FROM pending") == "1")
    }

    /// A confirmation link of a closed petition gets the closed page and counts nothing;
    /// an unknown one is still 404, and the same link counts while the petition is open.
    @Test func aConfirmationAfterTheCloseIsRefusedAndCountsNothing() throws {
        // Closed before the pending signature's 7 days are over (an expired one is a 404).
        let box = try Sandbox.withCampaign(manifest: Self.manifest("  closes: 2027-01-22\n"))
        #expect(try Self.attempt(box, at: "2027-01-20T10:00:00Z").post.status == 200)
        let token = try ServeSignTests.rows(box, "SELECT mail_token FROM pending")
        #expect(token.count == 22, "\(token)")
        do {
            let late = try ServerProcess(box, environment: ["MUSTER_NOW": "2027-01-23T00:00:00Z"])
            let refused = try late.request("/confirm/\(token)", method: "POST", headers: ["Origin": late.base])
            #expect(refused.status == 403 && refused.body.contains("This petition is closed"), "\(refused)")
            let unknown = try late.request("/confirm/" + String(repeating: "A", count: 22), method: "POST", headers: ["Origin": late.base])
            #expect(unknown.status == 404, "\(unknown)")
        }
        #expect(try ServeSignTests.rows(box, "SELECT count(*) FROM entries") == "0")
        let open = try ServerProcess(box, environment: ["MUSTER_NOW": "2027-01-21T00:00:00Z"])
        let pressed = try open.request("/confirm/\(token)", method: "POST", headers: ["Origin": open.base])
        #expect(pressed.status == 200 && pressed.body.contains("1 of 10 signatures so far."), "\(pressed)")
        let again = try open.request("/confirm/\(token)", method: "POST", headers: ["Origin": open.base])
        #expect(again.status == 200 && again.body.contains("already confirmed") && again.body.contains("1 of 10 signatures so far."), "\(again)")
        #expect(try ServeSignTests.rows(box, "SELECT count(*) FROM entries WHERE kind = 'signature'") == "1")
        #expect(try box.run(["verify"]).status == 0)
    }

    @Test func theDeadlineStillClosesItWhenEarlier() throws {
        let box = try Sandbox.withCampaign(manifest: Self.manifest("  closes: 2099-12-31T12:00:00Z\n")
            .replacingOccurrences(of: "deadline: 2099-12-31", with: "deadline: 2027-03-31"))
        let page = try Self.attempt(box, at: "2027-04-01T00:00:00Z")
        #expect(page.page.contains("Closed on 2027-03-31.") && page.post.status == 403, "\(page.page)")
    }

    @Test func badWindowsAreRefusedWithTheirLine() throws {
        for (web, message) in [("  open: tomorrow\n", "'open' must be a date like 2027-03-31 or a UTC date-time"),
                               ("  open: 2027-02-01\n  closes: 2027-01-31\n", "'closes' (2027-01-31) must come after 'open' (2027-02-01)"),
                               ("  closes: 2027-13-01\n", "'closes' must be a date")] {
            let box = try Sandbox.withCampaign(manifest: Self.manifest(web))
            for command in [["serve"], ["check"]] {
                let result = try box.run(command)
                #expect(result.status == 65 && result.stderr.contains("campaigns/fair-rates/campaign.yaml:1") && result.stderr.contains(message),
                        "\(command) \(web): \(result)")
            }
        }
    }
}
