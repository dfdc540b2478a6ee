import Foundation
import Testing

/// Group commit (issue 12, performance): forms and confirmations that arrive together
/// share durable transactions, and each is answered only once its own row is committed.
@Suite struct ServeGroupCommitTests {
    /// Limits high enough that 600 forms from one client address are not held.
    static let manifest = ServePageTests.manifest + """

        web:
          client_per_minute: 100000
          client_per_hour: 100000
          domain_per_minute: 100000
          domain_per_hour: 100000
        """

    @Test func manyConcurrentFormsAndConfirmationsAllLandAndAllGetTheirPage() throws {
        let box = try Sandbox.withCampaign(manifest: Self.manifest)
        try box.write("muster.yaml", "sender: \"Fair Rates <hello@fairrates.example>\"\n") // no relay: tokens stay readable
        let server = try ServerProcess(box)
        let html = try server.get("/c/fair-rates").body
        let range = try #require(html.range(of: #"name="csrf" value="[^"]+""#, options: .regularExpression))
        let csrf = String(html[range].dropFirst(#"name="csrf" value=""#.count).dropLast())

        // 300 signers, each sending the form twice, all at once from 16 clients: a second
        // form lands in the same transaction as the first, or in a later one.
        let emails = (0..<300).map { "crowd\($0)@example.org" }
        let listing = (emails + emails).map { email in
            "/c/fair-rates/sign\t" + String(decoding: ServeSignTests.encode([("csrf", csrf), ("name", "Crowd Signer"), ("email", email),
                                                                           ("field.region", "Lyon")]), as: UTF8.self)
        }
        try box.write("sign.tsv", listing.joined(separator: "\n") + "\n")
        let signing = try ServeOperationsTests.Client("post-many", server, [box.path("sign.tsv").path, "Check your inbox"])
        let signed = ServeCrashTests.ok(signing.wait { $0.contains("done") })
        #expect(signed.count == 600, "every form answered with its page: \(600 - signed.count) were not")
        let stored = try ServeSignTests.rows(box, """
            SELECT json_extract(data, '$.email') FROM pending WHERE purpose = 'confirm' AND held IS NULL AND mail_state = 'queued'
            """).split(separator: "\n").map(String.init)
        #expect(stored.count == 300 && Set(stored) == Set(emails), "one pending row per signer: \(stored.count)")

        // Every confirmation button pressed twice, all at once.
        let tokens = try ServeSignTests.rows(box, "SELECT mail_token FROM pending WHERE mail_token IS NOT NULL")
            .split(separator: "\n").map(String.init)
        #expect(tokens.count == 300)
        try box.write("confirm.tsv", (tokens + tokens).map { "/confirm/\($0)\tgo=1" }.joined(separator: "\n") + "\n")
        let confirming = try ServeOperationsTests.Client("post-many", server, [box.path("confirm.tsv").path, "signatures so far"])
        let confirmed = ServeCrashTests.ok(confirming.wait { $0.contains("done") })
        #expect(confirmed.count == 600, "every press answered with the count: \(600 - confirmed.count) were not")
        #expect(try ServeSignTests.rows(box, "SELECT count(*) FROM entries WHERE kind = 'signature'") == "300")
        #expect(try ServeSignTests.rows(box, "SELECT count(*) FROM pending WHERE confirmed_seq IS NULL") == "0")
        #expect(server.stop().status == 0)
        #expect(try box.run(["verify"]).status == 0)
    }
}
