import Foundation
import Testing

/// `muster serve`, slice 2: `POST /c/<slug>/sign` through the real binary (issue 12).
@Suite struct ServeSignTests {
    /// The form's token, read from the page as a browser would.
    static func csrf(_ server: ServerProcess) throws -> String {
        let html = try server.get("/c/fair-rates").body
        let range = try #require(html.range(of: #"name="csrf" value="[^"]+""#, options: .regularExpression))
        return String(html[range].dropFirst(#"name="csrf" value=""#.count).dropLast())
    }

    static func encode(_ pairs: [(String, String)]) -> Data {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return Data(pairs.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed)!)" }.joined(separator: "&").utf8)
    }

    static func post(_ server: ServerProcess, _ body: Data, origin: String? = nil, headers: [String: String] = [:]) throws -> HTTPResult {
        var all = headers
        all["Content-Type"] = all["Content-Type"] ?? "application/x-www-form-urlencoded"
        if let origin { all["Origin"] = origin }
        return try server.request("/c/fair-rates/sign", method: "POST", headers: all, body: body)
    }

    static func rows(_ box: Sandbox, _ sql: String) throws -> String {
        let result = try box.sqlite("campaigns/fair-rates/ledger.sqlite", sql)
        #expect(result.status == 0, "\(result)")
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func valid(_ token: String, email: String = "ana@example.org") -> [(String, String)] {
        [("csrf", token), ("name", "Ana Lima"), ("email", email), ("field.region", "Lyon"), ("comment", "Yes!"), ("consent.updates", "yes")]
    }

    @Test func aValidFormBecomesAPendingSignatureAndTheSamePageForEveryone() throws {
        let box = try Sandbox.withCampaign(manifest: ServePageTests.manifest)
        try box.write("muster.yaml", "sender: \"Fair Rates <hello@fairrates.example>\"\n") // no relay: the mail waits
        let server = try ServerProcess(box)
        let origin = server.base
        let first = try Self.post(server, Self.encode(valid(try Self.csrf(server))), origin: origin)
        #expect(first.status == 200 && first.body.contains("Check your inbox"), "\(first)")
        #expect(try Self.rows(box, "SELECT purpose, mail_state, length(token_hash), length(mail_token) FROM pending") == "confirm|queued|64|22")
        #expect(try Self.rows(box, "SELECT count(*) FROM entries") == "0", "pending signatures are not in the chain")
        #expect(try box.run(["verify"]).status == 0)
        #expect(try server.get("/c/fair-rates").body.contains("<strong>0</strong> of 10"), "and not counted")
        // The same address again: the same page, no second mail the same day.
        let again = try Self.post(server, Self.encode(valid(try Self.csrf(server))), origin: origin)
        #expect(again.status == 200 && again.body == first.body)
        #expect(try Self.rows(box, "SELECT count(*) FROM pending") == "1")
        // An address that already signed, here under another spelling of the same mailbox
        // (the `dedupe:` rules drop +tags): the same page, an "already signed" mail queued.
        #expect(try box.run(["sign", "--name", "Bo", "--email", "bo@example.org", "--field", "region=Paris"]).status == 0)
        let duplicate = try Self.post(server, Self.encode(valid(try Self.csrf(server), email: "BO+petition@Example.org")), origin: origin)
        #expect(duplicate.status == 200 && duplicate.body == first.body)
        #expect(try Self.rows(box, "SELECT purpose, json_extract(data, '$.consents') FROM pending ORDER BY id DESC LIMIT 1") == "already_signed|",
                "an already-signed row keeps only what its mail needs")
        #expect(try Self.rows(box, "SELECT count(*) FROM entries") == "1")
        let log = server.stop().log
        #expect(!log.contains("example.org") && !log.contains("Ana"), "\(log)")
    }

    @Test func errorsAreShownBesideTheirFieldsWithTheTypedValuesKept() throws {
        let box = try Sandbox.withCampaign(manifest: ServePageTests.manifest)
        let server = try ServerProcess(box)
        let token = try Self.csrf(server)
        let body = Self.encode([("csrf", token), ("name", "Ana\u{202E}Lima"), ("email", "ana@@example"),
                                ("field.region", "Lyon\r\nBcc: x@evil.test"), ("field.profession", "translator"),
                                ("comment", "<b>hi</b>"), ("consent.updates", "yes")])
        let page = try Self.post(server, body, origin: server.base)
        #expect(page.status == 422, "\(page)")
        let html = page.body
        #expect(html.contains("Please correct the 3 problems below"), "\(html)")
        for id in ["in-name", "in-email", "in-field-region"] {
            #expect(html.contains(#"id="\#(id)-error""#) && html.contains(#"aria-describedby="\#(id)-error""#), "error beside \(id): \(html)")
        }
        #expect(html.contains(#"value="ana@@example""#), "typed values are kept")
        #expect(html.contains(#"<option value="translator" selected>"#))
        #expect(html.contains("&lt;b&gt;hi&lt;/b&gt;</textarea>"), "HTML typed in a field comes back escaped")
        #expect(html.range(of: #"<input type="checkbox"[^>]*checked"#, options: .regularExpression) != nil, "the consent stays ticked")
        #expect(try Self.rows(box, "SELECT count(*) FROM pending") == "0")
    }

    @Test func invalidUTF8IsRefusedByName() throws {
        let box = try Sandbox.withCampaign(manifest: ServePageTests.manifest)
        let server = try ServerProcess(box)
        var body = Self.encode([("csrf", try Self.csrf(server)), ("email", "ana@example.org"), ("field.region", "Lyon")])
        body.append(Data("&name=Ana%FF%FELima".utf8))
        let page = try Self.post(server, body, origin: server.base)
        #expect(page.status == 422 && page.body.contains("invalid UTF-8"), "\(page)")
        #expect(try Self.rows(box, "SELECT count(*) FROM pending") == "0")
    }

    @Test func crossSiteMissingTokenAndOversizedPostsChangeNothing() throws {
        let box = try Sandbox.withCampaign(manifest: ServePageTests.manifest)
        let server = try ServerProcess(box)
        let good = Self.encode(valid(try Self.csrf(server)))
        let foreign = try Self.post(server, good, origin: "https://evil.example")
        #expect(foreign.status == 403 && foreign.body.contains("Sent from another site"), "\(foreign)")
        let fetchSite = try Self.post(server, good, headers: ["Sec-Fetch-Site": "cross-site"])
        #expect(fetchSite.status == 403)
        let noToken = try Self.post(server, Self.encode(Array(valid("").dropFirst())), origin: server.base)
        #expect(noToken.status == 422 && noToken.body.contains("did not come from this page"), "\(noToken)")
        #expect(noToken.body.contains(#"value="Lyon""#))
        let forged = try Self.post(server, Self.encode(valid("v1.\(Int(Date().timeIntervalSince1970)).\(String(repeating: "ab", count: 32))")), origin: server.base)
        #expect(forged.status == 422)
        let huge = try Self.post(server, good + Data(("&comment=" + String(repeating: "x", count: 70_000)).utf8), origin: server.base)
        #expect(huge.status == 413, "\(huge)")
        let json = try Self.post(server, Data("{}".utf8), origin: server.base, headers: ["Content-Type": "application/json"])
        #expect(json.status == 415)
        #expect(try Self.rows(box, "SELECT count(*) FROM pending") == "0")
        // A browser that sends no Origin and no Sec-Fetch-Site (a text browser) still signs with the token.
        let text = try Self.post(server, good)
        #expect(text.status == 200, "\(text)")
        #expect(try Self.rows(box, "SELECT count(*) FROM pending") == "1")
    }
}
