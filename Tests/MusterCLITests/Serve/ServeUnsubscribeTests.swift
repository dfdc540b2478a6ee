import Foundation
import Testing

/// `muster serve`, slice 4: blasts carry the sign page's one-click unsubscribe link
/// (RFC 8058), and `/u/<token>` acts on a POST only (issue 12).
@Suite(.enabled(if: TestRelay.available, "needs python3 with aiosmtpd (make test installs it)"))
struct ServeUnsubscribeTests {
    static let base = "https://sign.example"

    static func workspace(_ relay: TestRelay?, in box: Sandbox) throws {
        var yaml = "sender: \"Fair Rates <hello@fairrates.example>\"\nserve:\n  base_url: \(base)\n"
        if let relay { yaml += "smtp:\n  url: \(relay.url)\n  starttls: never\n" }
        try box.write("muster.yaml", yaml)
        try box.write("campaigns/fair-rates/emails/news.md", "---\nsubject: \"News\"\naudience: signers\n---\nNews for {{name}}: <{{unsubscribe_url}}>\n")
        try box.write("campaigns/fair-rates/emails/more.md", "---\nsubject: \"More\"\naudience: signers\n---\nMore for {{name}}.\n")
        for (name, email) in [("Ana Lima", "ana@example.org"), ("Bo", "bo@example.org")] {
            try #require(box.run(["sign", "--name", name, "--email", email, "--field", "region=Lyon"]).status == 0)
        }
    }

    static func header(_ raw: String, _ name: String) -> String? {
        // Unfolded (RFC 5322 §2.2.3): a continuation line starts with white space.
        let head = raw.components(separatedBy: "\r\n\r\n")[0].replacingOccurrences(of: "\r\n ", with: " ")
        return head.components(separatedBy: "\r\n").first { $0.lowercased().hasPrefix(name.lowercased() + ":") }
            .map { String($0.dropFirst(name.count + 1)).trimmingCharacters(in: .whitespaces) }
    }

    @Test func blastsCarryTheOneClickLinkAndAPostUnsubscribes() throws {
        let box = try Sandbox.withCampaign(manifest: ServePageTests.manifest)
        let relay = try TestRelay(in: box)
        try Self.workspace(relay, in: box)
        #expect(try box.run(["check"]).status == 0, "{{unsubscribe_url}} is defined by serve.base_url")
        let send = try box.run(["mail", "send", "news", "--yes"])
        #expect(send.status == 0, "\(send)")
        let messages = try relay.received()
        #expect(messages.count == 2)
        let ana = try #require(messages.first { $0.to == ["ana@example.org"] }).raw
        let bo = try #require(messages.first { $0.to == ["bo@example.org"] }).raw
        let list = try #require(Self.header(ana, "List-Unsubscribe"), "\(ana)")
        let range = try #require(list.range(of: #"<https://sign\.example/u/[A-Za-z0-9_-]{64}>"#, options: .regularExpression), "\(list)")
        let path = String(list[range].dropFirst("<https://sign.example".count).dropLast())
        #expect(list.hasPrefix("<mailto:"), "the mailto stays beside it: \(list)")
        #expect(Self.header(ana, "List-Unsubscribe-Post") == "List-Unsubscribe=One-Click")
        #expect(!bo.contains(path), "one link per recipient")

        let server = try ServerProcess(box)
        // A GET (a mail scanner, a preview) changes nothing.
        let page = try server.get(path)
        #expect(page.status == 200 && page.body.contains(#"<form method="post" action="\#(path)">"#), "\(page)")
        #expect(try ServeSignTests.rows(box, "SELECT count(*) FROM entries WHERE kind = 'optout'") == "0")
        // Forged, altered, or another site's POST: refused, nothing changed.
        var altered = Array(path)
        altered[10] = altered[10] == "A" ? "B" : "A"
        for bad in ["/u/" + String(repeating: "A", count: 64), String(altered), path + "A", String(path.dropLast())] {
            #expect(try server.request(bad, method: "POST", body: Data("List-Unsubscribe=One-Click".utf8)).status == 404, "\(bad)")
        }
        let foreign = try server.request(path, method: "POST", headers: ["Origin": "https://evil.example"], body: Data("List-Unsubscribe=One-Click".utf8))
        #expect(foreign.status == 403)
        #expect(try ServeSignTests.rows(box, "SELECT count(*) FROM entries WHERE kind = 'optout'") == "0")
        // RFC 8058 one-click: a POST from the mail provider, without Origin or cookie.
        for _ in 0..<2 {
            let click = try server.request(path, method: "POST", headers: ["Content-Type": "application/x-www-form-urlencoded"],
                                           body: Data("List-Unsubscribe=One-Click".utf8))
            #expect(click.status == 200 && click.body.contains("You are unsubscribed"), "\(click)")
        }
        #expect(try ServeSignTests.rows(box, "SELECT count(*) FROM entries WHERE kind = 'optout'") == "1", "idempotent")
        #expect(try server.get(path).body.contains("You are unsubscribed"))
        let log = server.stop().log
        #expect(!log.contains(String(path.dropFirst(3))), "\(log)")
        #expect(try box.run(["verify"]).status == 0)
        // The next blast leaves Ana out; the count is unchanged.
        #expect(try box.run(["mail", "send", "more", "--yes"]).status == 0)
        #expect(try relay.received().filter { $0.raw.contains("Subject: More") }.map(\.to) == [["bo@example.org"]])
    }

    @Test func aLinkIsBoundToItsCampaignAndPurpose() throws {
        let box = try Sandbox.withCampaign(manifest: ServePageTests.manifest)
        try Self.workspace(nil, in: box)
        #expect(try box.run(["new", "other", "--goal", "10"]).status == 0)
        // A dry run writes the messages without a relay.
        #expect(try box.run(["mail", "send", "-c", "fair-rates", "news", "--dry-run", "--out", "preview"]).status == 0)
        let files = try FileManager.default.contentsOfDirectory(atPath: box.path("preview").path).filter { $0.hasSuffix(".eml") }
        let raw = try String(contentsOf: box.path("preview/" + files.sorted()[0]), encoding: .utf8)
        let list = try #require(Self.header(raw, "List-Unsubscribe"))
        let range = try #require(list.range(of: #"/u/[A-Za-z0-9_-]{64}"#, options: .regularExpression), "\(list)")
        let path = String(list[range])
        // Served alone, the other campaign does not know the link; nor is it a confirmation.
        let server = try ServerProcess(box, ["-c", "other"])
        #expect(try server.get(path).status == 404)
        #expect(try server.request(path, method: "POST").status == 404)
        #expect(try server.get("/confirm/" + path.dropFirst(3)).status == 404)
        _ = server.stop()
        #expect(try ServeSignTests.rows(box, "SELECT count(*) FROM entries WHERE kind = 'optout'") == "0")
        let own = try ServerProcess(box, ["-c", "fair-rates"])
        #expect(try own.request(path, method: "POST").status == 200)
        #expect(try ServeSignTests.rows(box, "SELECT count(*) FROM entries WHERE kind = 'optout'") == "1")
    }
}
