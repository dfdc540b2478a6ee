import Foundation
import Testing

/// `muster serve`, slice 3: confirmation mail through the real relay transport to an
/// aiosmtpd sink, the one-button confirmation page, and the tokens (issue 12).
@Suite(.enabled(if: TestRelay.available, "needs python3 with aiosmtpd (make test installs it)"))
struct ServeConfirmTests {
    /// A workspace whose mail goes to `relayPort` (no TLS on loopback).
    static func workspace(relayPort: Int?, slugs: [String] = ["fair-rates"]) throws -> Sandbox {
        let box = try Sandbox.withCampaign(slugs[0], manifest: ServePageTests.manifest)
        for slug in slugs.dropFirst() {
            try #require(box.run(["new", slug, "--goal", "10"]).status == 0)
            try box.write("campaigns/\(slug)/campaign.yaml", ServePageTests.manifest)
        }
        var yaml = "sender: \"Fair Rates <hello@fairrates.example>\"\n"
        if let relayPort { yaml += "smtp:\n  url: smtp://127.0.0.1:\(relayPort)\n  starttls: never\n" }
        try box.write("muster.yaml", yaml)
        return box
    }

    /// Waits for `condition` (a safety net against a hang, not a measurement).
    static func eventually(_ what: String, _ condition: () throws -> Bool) throws {
        let deadline = Date(timeIntervalSinceNow: 120)
        while Date() < deadline {
            if try condition() { return }
            usleep(50_000)
        }
        throw ServeTestError("timed out waiting for \(what)")
    }

    static func sign(_ server: ServerProcess, email: String, slug: String = "fair-rates") throws -> HTTPResult {
        let html = try server.get("/c/\(slug)").body
        let range = try #require(html.range(of: #"name="csrf" value="[^"]+""#, options: .regularExpression))
        let token = String(html[range].dropFirst(#"name="csrf" value=""#.count).dropLast())
        let body = ServeSignTests.encode([("csrf", token), ("name", "Ana Lima"), ("email", email), ("field.region", "Lyon")])
        return try server.request("/c/\(slug)/sign", method: "POST",
                                  headers: ["Content-Type": "application/x-www-form-urlencoded", "Origin": server.base], body: body)
    }

    static func ledgerRows(_ box: Sandbox, _ slug: String, _ sql: String) throws -> String {
        let result = try box.sqlite("campaigns/\(slug)/ledger.sqlite", sql)
        #expect(result.status == 0, "\(result)")
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The confirmation path of the link in a mail's text.
    static func confirmPath(_ text: String) throws -> String {
        let range = try #require(text.range(of: #"/confirm/[A-Za-z0-9_-]{22}"#, options: .regularExpression), "no link in \(text)")
        return String(text[range])
    }

    @Test func signReadTheMailPressTheButtonAndTheCountRises() throws {
        let box = try Self.workspace(relayPort: nil)
        let relay = try TestRelay(in: box)
        try box.write("muster.yaml", "sender: \"Fair Rates <hello@fairrates.example>\"\nsmtp:\n  url: \(relay.url)\n  starttls: never\n")
        let server = try ServerProcess(box)
        #expect(try Self.sign(server, email: "ana@example.org").body.contains("Check your inbox"))
        try Self.eventually("the confirmation mail") { try relay.received().count == 1 }
        let mail = try relay.parsed(0)
        #expect(mail.subject == "Please confirm your signature: Fair rates <for> translators", "\(mail)")
        #expect(try relay.received()[0].to == ["ana@example.org"])
        let path = try Self.confirmPath(mail.text)
        #expect(mail.text.contains(server.base + path), "the link starts with the server's address: \(mail.text)")
        // Once handed to the relay, the plain token is gone from the ledger.
        try Self.eventually("the row marked sent") { try ServeSignTests.rows(box, "SELECT mail_state, mail_token IS NULL FROM pending") == "sent|1" }

        // A mail scanner's GET (twice, with HEAD-like curiosity) changes nothing.
        for _ in 0..<2 {
            let page = try server.get(path)
            #expect(page.status == 200 && page.body.contains("Confirm my signature"), "\(page)")
            #expect(page.body.contains(#"<form method="post" action="\#(path)">"#))
            #expect(page.headers["cache-control"] == "no-store" && page.headers["referrer-policy"] == "same-origin")
        }
        #expect(try ServeSignTests.rows(box, "SELECT count(*) FROM entries") == "0")
        #expect(try ServeSignTests.rows(box, "SELECT confirmed_seq IS NULL FROM pending") == "1")
        #expect(try server.get("/c/fair-rates").body.contains("<strong>0</strong> of 10"))
        // The report shows it as pending, not counted.
        let pendingReport = try box.run(["report", "--json"]).json()
        #expect(pendingReport["pending"] as? Int == 1 && pendingReport["count"] as? Int == 0, "\(pendingReport)")
        #expect(try box.run(["report"]).stdout.contains("1 signature from the sign page awaits email confirmation (not counted)"))

        // A POST from another site is refused.
        let foreign = try server.request(path, method: "POST", headers: ["Origin": "https://evil.example"])
        #expect(foreign.status == 403)
        #expect(try ServeSignTests.rows(box, "SELECT count(*) FROM entries") == "0")

        // The button: the signature enters the ledger, source web; the page shows the count.
        let pressed = try server.request(path, method: "POST", headers: ["Origin": server.base])
        #expect(pressed.status == 200 && pressed.body.contains("your signature counts") && pressed.body.contains("1 of 10 signatures"), "\(pressed)")
        #expect(try ServeSignTests.rows(box, "SELECT kind, json_extract(body, '$.source') FROM entries") == "signature|web")
        #expect(try ServeSignTests.rows(box, "SELECT data, confirmed_seq FROM pending") == "{}|1", "personal data leaves pending")
        #expect(try server.get("/c/fair-rates").body.contains("<strong>1</strong> of 10"))
        // Idempotent: pressing again, or reloading, adds nothing.
        let again = try server.request(path, method: "POST", headers: ["Origin": server.base])
        #expect(again.status == 200 && again.body.contains("already confirmed"), "\(again)")
        #expect(try server.get(path).body.contains("already confirmed"))
        #expect(try ServeSignTests.rows(box, "SELECT count(*) FROM entries") == "1")
        let confirmedReport = try box.run(["report", "--json"]).json()
        #expect(confirmedReport["pending"] as? Int == 0 && confirmedReport["count"] as? Int == 1, "\(confirmedReport)")
        let log = server.stop().log
        #expect(try box.run(["verify"]).status == 0)
        #expect(!log.contains(String(path.dropFirst(9))) && !log.contains("example.org") && log.contains("POST /confirm/{token} 200"), "\(log)")
    }

    @Test func aDuplicateGetsTheAlreadySignedMailAtMostOnceADay() throws {
        let box = try Self.workspace(relayPort: nil)
        let relay = try TestRelay(in: box)
        try box.write("muster.yaml", "sender: \"Fair Rates <hello@fairrates.example>\"\nsmtp:\n  url: \(relay.url)\n  starttls: never\n")
        #expect(try box.run(["sign", "--name", "Bo", "--email", "bo@example.org", "--field", "region=Paris"]).status == 0)
        let server = try ServerProcess(box)
        let first = try Self.sign(server, email: "bo+again@example.org")
        let second = try Self.sign(server, email: "BO@example.org")
        #expect(first.body == second.body && first.body.contains("Check your inbox"))
        try Self.eventually("the mail") { try relay.received().count == 1 }
        let mail = try relay.parsed(0)
        #expect(mail.subject.hasPrefix("You have already signed") && mail.text.contains(server.base + "/c/fair-rates"), "\(mail)")
        #expect(!mail.text.contains("/confirm/"))
        // A new signer's mail goes out after it: the second "already signed" was never queued.
        _ = try Self.sign(server, email: "cy@example.org")
        try Self.eventually("the next mail") { try relay.received().count == 2 }
        #expect(try relay.parsed(1).subject.hasPrefix("Please confirm"))
        #expect(try relay.received().map(\.to) == [["bo+again@example.org"], ["cy@example.org"]])
        try Self.eventually("rows marked sent") { try ServeSignTests.rows(box, "SELECT count(*) FROM pending WHERE mail_state = 'sent'") == "2" }
        #expect(try ServeSignTests.rows(box, "SELECT data FROM pending WHERE purpose = 'already_signed'") == "{}", "nothing kept once sent")
    }

    @Test func forgedAlteredOtherCampaignAndExpiredTokensAreRefused() throws {
        // No relay: the mail waits, and the test reads the token from the queued row.
        let box = try Self.workspace(relayPort: nil, slugs: ["fair-rates", "other"])
        var server = try ServerProcess(box)
        #expect(server.logText.contains("no SMTP relay"))
        _ = try Self.sign(server, email: "ana@example.org")
        let token = try Self.ledgerRows(box, "fair-rates", "SELECT mail_token FROM pending")
        #expect(token.count == 22)
        var altered = Array(token)
        altered[3] = altered[3] == "a" ? "b" : "a"
        for bad in [String(repeating: "A", count: 22), String(altered), token + "A", String(token.dropLast()), "..%2F..%2Fetc"] {
            let get = try server.get("/confirm/\(bad)")
            #expect(get.status == 404 && get.body.contains("This link does not work"), "\(bad): \(get)")
            let post = try server.request("/confirm/\(bad)", method: "POST", headers: ["Origin": server.base])
            #expect(post.status == 404, "\(bad): \(post)")
        }
        // The row copied into the other campaign's ledger does not confirm there: the
        // stored hash covers the campaign.
        #expect(try Self.ledgerRows(box, "other", "SELECT count(*) FROM pending") == "0")
        let copy = try box.sqlite("campaigns/other/ledger.sqlite", """
            ATTACH 'campaigns/fair-rates/ledger.sqlite' AS a; INSERT INTO pending SELECT * FROM a.pending;
            """)
        #expect(copy.status == 0, "\(copy)")
        _ = server.stop()
        server = try ServerProcess(box, ["-c", "other"])
        #expect(try server.request("/confirm/\(token)", method: "POST", headers: ["Origin": server.base]).status == 404)
        #expect(try Self.ledgerRows(box, "other", "SELECT count(*) FROM entries") == "0")
        _ = server.stop()
        // Eight days later: the link is refused and the pending row is gone with its data.
        let later = ISO8601DateFormatter().string(from: Date(timeIntervalSinceNow: 8 * 86_400))
        server = try ServerProcess(box, environment: ["MUSTER_NOW": later])
        let expired = try server.request("/confirm/\(token)", method: "POST", headers: ["Origin": server.base])
        #expect(expired.status == 404 && expired.body.contains("expired"), "\(expired)")
        try Self.eventually("the expired row erased") { try Self.ledgerRows(box, "fair-rates", "SELECT count(*) FROM pending") == "0" }
        #expect(try Self.ledgerRows(box, "fair-rates", "SELECT count(*) FROM entries") == "0")
        for slug in ["fair-rates", "other"] {
            let verify = try box.run(["verify", "-c", slug])
            #expect(verify.status == 0, "\(verify)")
        }
    }

    @Test func aRelayOutageDelaysTheMailButDoesNotLoseIt() throws {
        let port = try FreePort.pick()
        let box = try Self.workspace(relayPort: port)
        let server = try ServerProcess(box, environment: ["MUSTER_BACKOFF_SECONDS": "0.5"])
        let page = try Self.sign(server, email: "ana@example.org")
        #expect(page.status == 200 && page.body.contains("Check your inbox"), "the signer is answered while the relay is down")
        try Self.eventually("the mail deferred") { try ServeSignTests.rows(box, "SELECT mail_state FROM pending") == "deferred" }
        #expect(try ServeSignTests.rows(box, "SELECT mail_token IS NOT NULL FROM pending") == "1", "the token waits with the mail")
        let relay = try TestRelay(["--port", String(port)], in: box)
        try Self.eventually("the mail delivered once the relay is back") { try relay.received().count == 1 }
        try Self.eventually("the row marked sent") { try ServeSignTests.rows(box, "SELECT mail_state FROM pending") == "sent" }
        #expect(try Self.confirmPath(try relay.parsed(0).text).count == 31)
        let log = server.stop().log
        #expect(log.contains("mail confirm deferred") && log.contains("mail confirm sent"), "\(log)")
        #expect(try relay.received().count == 1, "sent once")
    }
}

/// A loopback port nothing listens on (bound, then released).
enum FreePort {
    static func pick() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw ServeTestError("cannot pick a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
