import Foundation
import Testing

/// `muster check` catches what would embarrass the organiser in thousands of inboxes
/// (issue 10, item 15): `{{unsubscribe_url}}` with no unsubscribe_url configured (an
/// error, exit 65), a `targets` template with no targets (an error, exit 65), and a
/// sender still at a placeholder address (a warning: exit 0, printed on stderr).
@Suite struct CheckMailStandardsTests {
    static let realSender = "sender: \"Fair Rates <hello@fairrates.example>\"\n"

    static func workspace() throws -> Sandbox {
        let box = try Sandbox.withCampaign()
        try box.write("muster.yaml", realSender)
        return box
    }

    @Test func unsubscribeURLWithoutAConfiguredURLIsAnErrorNamingFileLineAndFix() throws {
        let box = try Self.workspace()
        try box.write("campaigns/fair-rates/emails/news.md", "---\nsubject: News\naudience: signers\n---\nHello {{first_name}},\n\nNews.\n<a href=\"{{unsubscribe_url}}\">Unsubscribe</a>\n")
        let check = try box.run(["check"])
        #expect(check.status == 65, "\(check)")
        #expect(check.stderr.contains("campaigns/fair-rates/emails/news.md:8:10: error: {{unsubscribe_url}} is used but muster.yaml sets no unsubscribe_url"), "\(check)")
        #expect(check.stderr.contains("add unsubscribe_url: https://… to muster.yaml"), "\(check)")
        let json = try box.run(["check", "--json"])
        #expect(json.status == 65, "\(json)")
        let errors = try #require(try json.json()["errors"] as? [[String: Any]])
        #expect(errors.map { $0["file"] as? String } == ["campaigns/fair-rates/emails/news.md"])
        #expect(errors.first?["line"] as? Int == 8)

        // Guarded by a section, it renders nothing when unset: fine.
        try box.write("campaigns/fair-rates/emails/news.md", "---\nsubject: News\naudience: signers\n---\nNews.\n{{#unsubscribe_url}}<a href=\"{{unsubscribe_url}}\">Unsubscribe</a>{{/unsubscribe_url}}\n")
        var ok = try box.run(["check"])
        #expect(ok.status == 0, "\(ok)")
        #expect(ok.stderr.isEmpty, "\(ok)")

        // Configured: fine.
        try box.write("campaigns/fair-rates/emails/news.md", "---\nsubject: News\naudience: signers\n---\n<a href=\"{{unsubscribe_url}}\">Unsubscribe</a>\n")
        try box.write("muster.yaml", Self.realSender + "unsubscribe_url: https://fairrates.example/unsubscribe\n")
        ok = try box.run(["check"])
        #expect(ok.status == 0, "\(ok)")
        #expect(ok.stderr.isEmpty, "\(ok)")
    }

    @Test func aTargetsTemplateWithNoTargetsIsAnError() throws {
        let box = try Self.workspace()
        try box.write("campaigns/fair-rates/emails/deliver.md", "---\nsubject: \"Our petition\"\naudience: targets\n---\nDear {{name}}, {{campaign.count}} people signed.\n")
        let check = try box.run(["check"])
        #expect(check.status == 65, "\(check)")
        #expect(check.stderr.contains("campaigns/fair-rates/emails/deliver.md:3:1: error: audience 'targets' but the manifest lists no targets, so it would be sent to nobody; add them under 'targets:' in campaign.yaml"), "\(check)")
        #expect(check.stderr.contains("muster: error: 1 error found"), "\(check)")

        let manifest = try String(contentsOf: box.path("campaigns/fair-rates/campaign.yaml"), encoding: .utf8)
        try box.write("campaigns/fair-rates/campaign.yaml", manifest + "targets:\n  - name: The board\n    email: board@agency.example\n")
        let ok = try box.run(["check"])
        #expect(ok.status == 0, "\(ok)")
        #expect(ok.stderr.isEmpty, "\(ok)")
    }

    @Test func aPlaceholderSenderIsAWarningNamingWhereToChangeIt() throws {
        // The scaffold as `init` writes it: the sender is the placeholder.
        let box = try Sandbox.withCampaign()
        var check = try box.run(["check"])
        #expect(check.status == 0, "\(check)")
        #expect(check.stderr == "muster.yaml:4:1: warning: the sender 'Our Collective <hello@example.org>' is a placeholder (an example.org, .com or .net address): mail from it would bounce or land in spam; set 'sender' to your collective's real address\n", "\(check)")
        #expect(check.stdout == "ok: 1 campaign, 8 files checked (1 warning)\n", "\(check)")
        let json = try box.run(["check", "--json"])
        #expect(json.status == 0, "\(json)")
        #expect((try json.json()["warnings"] as? [[String: Any]])?.first?["file"] as? String == "muster.yaml")

        // A campaign's own placeholder sender is reported in its manifest; one warning per campaign.
        #expect(try box.run(["new", "second", "--title", "Second", "--goal", "5"]).status == 0)
        let manifest = try String(contentsOf: box.path("campaigns/second/campaign.yaml"), encoding: .utf8)
        try box.write("campaigns/second/campaign.yaml", "sender: \"Second <info@EXAMPLE.com>\"\n" + manifest)
        check = try box.run(["check"])
        #expect(check.status == 0, "\(check)")
        let warnings = check.stderr.split(separator: "\n").map(String.init)
        #expect(warnings.count == 2, "\(check)")
        #expect(warnings.contains { $0.hasPrefix("campaigns/second/campaign.yaml:1:1: warning: the sender 'Second <info@EXAMPLE.com>' is a placeholder") }, "\(check)")

        // Real senders: no warning.
        try box.write("muster.yaml", Self.realSender)
        try box.write("campaigns/second/campaign.yaml", manifest)
        check = try box.run(["check"])
        #expect(check.status == 0 && check.stderr.isEmpty, "\(check)")
        #expect(check.stdout == "ok: 2 campaigns, 12 files checked\n", "\(check)")
    }
}
