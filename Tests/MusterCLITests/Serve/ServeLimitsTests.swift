import Foundation
import Testing

/// `muster serve`, slice 7: the `web:` limits hold submissions over them, with the same
/// page, no mail and no count (issue 12).
@Suite struct ServeLimitsTests {
    static func manifest(_ web: String) -> String { ServePageTests.manifest + "\nweb:\n" + web }

    static func sign(_ server: ServerProcess, email: String, forwardedFor: String? = nil) throws -> HTTPResult {
        var headers: [String: String] = [:]
        if let forwardedFor { headers["X-Forwarded-For"] = forwardedFor }
        let body = ServeSignTests.encode([("csrf", try ServeSignTests.csrf(server)), ("name", "Ana Lima"), ("email", email),
                                          ("field.region", "Lyon")])
        return try ServeSignTests.post(server, body, origin: server.base, headers: headers)
    }

    static func held(_ box: Sandbox) throws -> String {
        try ServeSignTests.rows(box, "SELECT coalesce(group_concat(held, ','), '') FROM (SELECT held FROM pending WHERE held IS NOT NULL ORDER BY id)")
    }

    @Test func aBurstFromOneClientIsHeldWithTheSamePageAndForgedForwardsAreIgnored() throws {
        let box = try Sandbox.withCampaign(manifest: Self.manifest("  client_per_minute: 3\n  client_per_hour: 100\n"))
        try box.write("muster.yaml", "sender: \"Fair Rates <hello@fairrates.example>\"\n") // no proxy trusted
        let server = try ServerProcess(box)
        var pages: [String] = []
        for index in 1...5 {
            // A different X-Forwarded-For each time, from a peer that is no trusted proxy: a lie, ignored.
            let page = try Self.sign(server, email: "person\(index)@example\(index).org", forwardedFor: "198.51.100.\(index)")
            #expect(page.status == 200, "\(page)")
            pages.append(page.body)
        }
        #expect(Set(pages).count == 1, "held or not, the page is the same")
        #expect(try Self.held(box) == "client,client")
        #expect(try ServeSignTests.rows(box, "SELECT count(DISTINCT client_key), min(length(client_key)) FROM pending") == "1|16")
        let file = try Data(contentsOf: box.root.appendingPathComponent("campaigns/fair-rates/ledger.sqlite"))
        for address in ["127.0.0.1", "198.51.100"] {
            #expect(file.range(of: Data(address.utf8)) == nil, "no raw address at rest: \(address)")
        }
        #expect(try box.run(["report"]).stdout.contains("3 signatures from the sign page await email confirmation"),
                "held submissions are not pending")
        let log = server.stop().log.split(separator: "\n").filter { $0.contains("POST") }.joined(separator: "\n")
        #expect(log.split(separator: "\n").count == 5 && !log.contains("127.0.0.1") && !log.contains("198.51.100"), "\(log)")
    }

    @Test func behindATrustedProxyClientsAreToldApartByTheirForwardedAddress() throws {
        let box = try Sandbox.withCampaign(manifest: Self.manifest("  client_per_minute: 2\n"))
        try box.write("muster.yaml", "sender: \"Fair Rates <hello@fairrates.example>\"\nserve:\n  trust_proxy: 127.0.0.1\n")
        let server = try ServerProcess(box)
        for index in 1...3 { _ = try Self.sign(server, email: "a\(index)@one\(index).org", forwardedFor: "203.0.113.7") }
        #expect(try Self.held(box) == "client", "the third from one client is held")
        // Another client behind the same proxy (its own hop appended last) is not.
        _ = try Self.sign(server, email: "b@two.org", forwardedFor: "203.0.113.7, 192.0.2.44")
        // An IPv6 client's neighbours in its /64 are the same client.
        _ = try Self.sign(server, email: "c1@three.org", forwardedFor: "2001:db8:1:2::10")
        _ = try Self.sign(server, email: "c2@four.org", forwardedFor: "2001:db8:1:2::99")
        _ = try Self.sign(server, email: "c3@five.org", forwardedFor: "2001:db8:1:2:aaaa::1")
        #expect(try Self.held(box) == "client,client")
        #expect(try ServeSignTests.rows(box, "SELECT count(DISTINCT client_key) FROM pending") == "3")
    }

    @Test func oneDomainOverItsLimitIsHeldButLargeProvidersAreNot() throws {
        let box = try Sandbox.withCampaign(manifest: Self.manifest("  domain_per_minute: 2\n"))
        try box.write("muster.yaml", "sender: \"Fair Rates <hello@fairrates.example>\"\nserve:\n  trust_proxy: 127.0.0.1\n")
        let server = try ServerProcess(box)
        for index in 1...3 { _ = try Self.sign(server, email: "staff\(index)@acme.example", forwardedFor: "192.0.2.\(index)") }
        for index in 1...3 { _ = try Self.sign(server, email: "fan\(index)@gmail.com", forwardedFor: "192.0.2.\(10 + index)") }
        #expect(try Self.held(box) == "domain")
        #expect(try ServeSignTests.rows(box, "SELECT domain FROM pending WHERE held IS NOT NULL") == "acme.example")
    }

    @Test func aBadWebSectionIsReportedWithItsLine() throws {
        let box = try Sandbox.withCampaign(manifest: Self.manifest("  client_per_minute: lots\n"))
        let result = try box.run(["check"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("'client_per_minute' must be a whole number above 0, not 'lots'"), "\(result)")
        #expect(result.stderr.contains("campaign.yaml:17:"), "\(result)")
    }
}
