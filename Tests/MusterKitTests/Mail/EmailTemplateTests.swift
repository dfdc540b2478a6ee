import Foundation
import Testing
@testable import MusterKit

@Suite("Email templates")
struct EmailTemplateTests {
    static let thanks = """
    ---
    subject: "Thank you, {{first_name}}!"
    audience: signers
    ---
    Hi {{first_name}},

    Thanks for signing **{{campaign.title}}**: we are {{campaign.count}} of {{campaign.goal}}.
    {{#campaign.milestone}}We just reached {{campaign.milestone}}!{{/campaign.milestone}}
    """

    @Test("parses front matter and body")
    func parse() throws {
        let t = try EmailTemplate(source: Self.thanks, file: "emails/thanks.md")
        #expect(t.name == "thanks")
        #expect(t.subject == "Thank you, {{first_name}}!")
        #expect(t.audience == .signers)
        #expect(t.replyTo == nil)
        #expect(t.body.hasPrefix("Hi {{first_name}},"))
        #expect(t.check(knownVariables: EmailTemplate.knownVariables()).isEmpty)
    }

    @Test("CRLF files parse like LF files, with the same positions")
    func crlf() throws {
        let t = try EmailTemplate(source: Self.thanks.replacingOccurrences(of: "\n", with: "\r\n"), file: "emails/thanks.md")
        #expect(t.subject == "Thank you, {{first_name}}!")
        #expect(t.audience == .signers)
        let d = t.check(knownVariables: ["first_name"]).map(\.description)
        #expect(d.first == "emails/thanks.md:7:22: unknown variable 'campaign.title'")
    }

    @Test("unknown variables are reported with exact line and column")
    func unknownVariables() throws {
        let source = """
        ---
        subject: "Hello {{frist_name}}"
        audience: consenting
        ---
        Hi {{name}}, from {{ region }}

        {{#campaign}}We are {{count}} of {{goal}}, {{titel}}.{{/campaign}}
        {{{campaign.tittle}}} {{^nope}}x{{/nope}} {{! a comment {{ignored}} }} {{campaign}}
        """
        let t = try EmailTemplate(source: source, file: "emails/news.md")
        let messages = t.check(knownVariables: EmailTemplate.knownVariables(fields: ["region"])).map(\.description)
        #expect(messages == [
            "emails/news.md:2:17: unknown variable 'frist_name' in subject",
            "emails/news.md:7:44: unknown variable 'titel'",
            "emails/news.md:8:1: unknown variable 'campaign.tittle'",
            "emails/news.md:8:23: unknown section 'nope'",
            "emails/news.md:8:72: unknown variable 'campaign'",
        ])
        let withoutRegion = t.check(knownVariables: EmailTemplate.knownVariables())
        #expect(withoutRegion.contains { $0.description == "emails/news.md:5:19: unknown variable 'region'" })
    }

    @Test("every front-matter and syntax problem is reported at once")
    func allErrors() {
        let source = """
        ---
        audience: everyone
        reply_to: "not an address"
        colour: blue
        ---
        Hi {{#name}} unclosed
        {{> footer}}
        """
        #expect {
            _ = try EmailTemplate(source: source, file: "emails/bad.md")
        } throws: { error in
            guard let errors = error as? TemplateErrors else { return false }
            let lines = errors.diagnostics.map(\.description)
            return lines == [
                "emails/bad.md:1:1: missing required key 'subject'",
                "emails/bad.md:2:11: audience must be signers, consenting or targets, not 'everyone'",
                "emails/bad.md:3:11: reply_to: invalid address \"not an address\" for Reply-To: missing @",
                "emails/bad.md:4:1: warning: unknown key 'colour' (expected subject, audience, reply_to, consent, attach_signatures, receipt)",
                "emails/bad.md:6:4: section 'name' is never closed",
                "emails/bad.md:7:1: partials ({{> footer}}) are not supported in email templates",
            ] || { print(lines); return false }()
        }
    }

    @Test("missing front matter and broken YAML")
    func brokenYAML() {
        #expect(throws: TemplateErrors.self) { _ = try EmailTemplate(source: "Hello", file: "e.md") }
        #expect {
            _ = try EmailTemplate(source: "---\nsubject: [unclosed\naudience: signers\n---\nbody", file: "e.md")
        } throws: { error in
            let d = (error as? TemplateErrors)?.diagnostics ?? []
            return d.map(\.description) == ["e.md:3:9: invalid YAML in front matter: did not find expected ',' or ']'"]
        }
    }
}

@Suite("Template rendering")
struct TemplateRenderingTests {
    static let sender = try! MailAddress(parsing: "Fair Rates <hello@fairrates.example>")
    static let campaign = CampaignMailInfo(slug: "fair-rates", title: "Fair rates & translators", count: 420, goal: 1000,
                                           deadline: "2027-03-31", daysLeft: 125, milestone: nil, sender: sender)
    static let settings = MessageSettings(unsubscribeMailbox: try! MailAddress(address: "unsubscribe@fairrates.example"))

    func render(_ body: String, name: String = "Ada Lovelace", fields: [String: String] = [:], subject: String = "Hi {{first_name}}") throws -> RenderedContent {
        let t = try EmailTemplate(source: "---\nsubject: \"\(subject)\"\naudience: signers\n---\n\(body)", file: "t.md")
        let r = MailRecipient(name: name, email: "ada@example.org", fields: fields, unsubscribeURL: "https://fairrates.example/u?t=1&x=2")
        return renderContent(template: t, recipient: r, campaign: Self.campaign,
                             unsubscribe: ListUnsubscribe(mailto: Self.settings.unsubscribeMailbox, url: r.unsubscribeURL), layout: false)
    }

    @Test("text part is the rendered Markdown source, HTML is CommonMark")
    func basic() throws {
        let c = try render("Hi {{first_name}},\n\nWe are **{{campaign.count}}** of {{campaign.goal}} ({{campaign.percent}}%) for *{{campaign.title}}*.\n")
        #expect(c.subject == "Hi Ada")
        #expect(c.text == "Hi Ada,\n\nWe are **420** of 1000 (42%) for *Fair rates & translators*.\n")
        #expect(c.html == "<p>Hi Ada,</p>\n<p>We are <strong>420</strong> of 1000 (42%) for <em>Fair rates &amp; translators</em>.</p>\n")
    }

    @Test("hostile values are escaped, never Markdown, never Mustache", arguments: [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "**bold** _it_ [link](javascript:alert(1))",
        "{{campaign.title}} {{{email}}}",
        "\" onmouseover=\"alert(1)",
        "# Heading\n\n- list",
    ])
    func hostile(_ name: String) throws {
        let c = try render("Hi {{name}} and {{{name}}}, **{{name}}**\n\n<p title=\"{{name}}\">raw</p>\n\n<a href={{name}}>x</a>\n", name: name)
        let escaped = htmlEscape(name)
        #expect(c.html.contains("Hi \(escaped) and \(escaped), <strong>\(escaped)</strong>"))
        #expect(c.html.contains("<p title=\"\(escaped)\">raw</p>"))
        #expect(c.html.contains("<a href=\"\(escaped)\">x</a>"))
        #expect(!c.html.contains("<script"))
        #expect(!c.html.contains("<img"))
        #expect(!c.html.contains("<em>"))
        #expect(!c.html.contains("<h1>"))
        #expect(!c.html.contains("Fair rates"))  // {{ in a value is not Mustache
        #expect(c.text.contains("Hi \(name) and \(name), **\(name)**"))
    }

    @Test("URL attribute scheme check", arguments: [
        ("https://x.example", true), ("mailto:a@b.example", true), ("/relative?a=b:c", true), ("page.html", true),
        ("javascript:alert(1)", false), (" JavaScript:alert(1)", false), ("java\tscript:alert(1)", false),
        ("data:text/html,x", false), ("vbscript:x", false),
    ])
    func safeURL(_ value: String, _ safe: Bool) {
        #expect(SlotTable.isSafeURL(value) == safe)
    }

    @Test("javascript: in a URL attribute is neutralised")
    func javascriptURL() throws {
        let c = try render("[site]({{website}}) <a href=\"{{website}}\">b</a> <a href={{website}}>c</a> <a title={{website}}>d</a>",
                           fields: ["website": "javascript:alert(1)"])
        #expect(c.html == "<p><a href=\"#\">site</a> <a href=\"#\">b</a> <a href=\"#\">c</a> <a title=\"javascript:alert(1)\">d</a></p>\n")
        let ok = try render("[site]({{website}})", fields: ["website": "https://example.org/?a=1&b=2"])
        #expect(ok.html == "<p><a href=\"https://example.org/?a=1&amp;b=2\">site</a></p>\n")
    }

    @Test("autolinked variables and sections on empty values")
    func autolinks() throws {
        let c = try render("Unsubscribe: <{{unsubscribe_url}}>\n\n{{#campaign.milestone}}Milestone!{{/campaign.milestone}}{{^campaign.milestone}}No milestone{{/campaign.milestone}}\n")
        #expect(c.html.contains("<a href=\"https://fairrates.example/u?t=1&amp;x=2\">https://fairrates.example/u?t=1&amp;x=2</a>"))
        #expect(c.html.contains("No milestone"))
        #expect(!c.html.contains("Milestone!"))
        #expect(c.text.contains("Unsubscribe: <https://fairrates.example/u?t=1&x=2>"))
    }

    @Test("full message: subject with a hostile name is refused, never injected")
    func injectionThroughSubject() throws {
        let t = try EmailTemplate(source: "---\nsubject: \"Thanks {{name}}\"\naudience: signers\n---\nHi", file: "t.md")
        let r = MailRecipient(name: "Eve\r\nBcc: x@evil.test", email: "eve@example.org")
        #expect(throws: MessageError.forbiddenCharacter(header: "To")) {
            _ = try renderMessage(template: t, recipient: r, campaign: Self.campaign, settings: Self.settings)
        }
        let bad = MailRecipient(name: "Eve", email: "eve@example.org>\r\nRCPT TO:<x@evil.test")
        #expect(throws: MessageError.self) {
            _ = try renderMessage(template: t, recipient: bad, campaign: Self.campaign, settings: Self.settings)
        }
    }

    @Test("full message: envelope, IDN, layout, stable Message-ID")
    func fullMessage() throws {
        let t = try EmailTemplate(source: EmailTemplateTests.thanks, file: "emails/thanks.md")
        let r = MailRecipient(name: "Jürgen Groß", email: "jurgen@bücher.example")
        let m1 = try renderMessage(template: t, recipient: r, campaign: Self.campaign, settings: Self.settings, date: Date(timeIntervalSince1970: 0))
        let m2 = try renderMessage(template: t, recipient: r, campaign: Self.campaign, settings: Self.settings, date: Date(timeIntervalSince1970: 99))
        #expect(m1.envelopeTo == "jurgen@xn--bcher-kva.example")
        #expect(m1.envelopeFrom == "hello@fairrates.example")
        #expect(m1.messageID == m2.messageID)
        #expect(m1.subject == "Thank you, Jürgen!")
        #expect(hasOnlyCRLFAndShortLines(m1.bytes))
        let text = String(decoding: m1.bytes, as: UTF8.self)
        #expect(text.contains("<!DOCTYPE html>"))
        #expect(decodeEncodedWords(headerBlock(of: m1.bytes).value("Subject") ?? "") == "Thank you, Jürgen!")
    }
}

@Suite("Skeleton cache")
struct SkeletonCacheTests {
    @Test("recipients with different shapes never see each other's skeleton or values")
    func shapes() throws {
        let t = try EmailTemplate(source: """
        ---
        subject: "{{#region}}{{region}}: {{/region}}hi {{name}}"
        audience: signers
        ---
        {{#region}}From **{{region}}**.{{/region}}{{^region}}No region.{{/region}} Contact: <{{contact}}>
        """, file: "t.md")
        let campaign = TemplateRenderingTests.campaign
        let unsubscribe = ListUnsubscribe(mailto: TemplateRenderingTests.settings.unsubscribeMailbox)
        func render(_ name: String, _ fields: [String: String]) -> RenderedContent {
            renderContent(template: t, recipient: MailRecipient(name: name, email: "x@example.org", fields: fields),
                          campaign: campaign, unsubscribe: unsubscribe, layout: false)
        }
        for _ in 0..<2 {
            let a = render("Ann", ["region": "Lyon", "contact": "https://a.example"])
            let b = render("Bob", ["region": "", "contact": "bob@example.org"])
            let c = render("Cy", ["region": "Paris", "contact": "just text"])
            #expect(a.subject == "Lyon: hi Ann")
            #expect(b.subject == "hi Bob")
            #expect(c.subject == "Paris: hi Cy")
            #expect(a.html == "<p>From <strong>Lyon</strong>. Contact: <a href=\"https://a.example\">https://a.example</a></p>\n")
            #expect(b.html == "<p>No region. Contact: <a href=\"mailto:bob@example.org\">bob@example.org</a></p>\n")
            #expect(c.html == "<p>From <strong>Paris</strong>. Contact: &lt;just text&gt;</p>\n")
            #expect(c.text == "From **Paris**. Contact: <just text>")
        }
    }
}

@Suite("Loading a campaign's emails folder")
struct LoadAllTests {
    @Test("collects every file's diagnostics and every good template")
    func loadAll() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("muster-emails-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try EmailTemplateTests.thanks.write(to: dir.appendingPathComponent("a-thanks.md"), atomically: true, encoding: .utf8)
        try "---\naudience: all\n---\nx".write(to: dir.appendingPathComponent("b-bad.md"), atomically: true, encoding: .utf8)
        try "---\nsubject: s\naudience: targets\nextra: 1\n---\n{{name}}".write(to: dir.appendingPathComponent("c-warn.md"), atomically: true, encoding: .utf8)
        try "not a template".write(to: dir.appendingPathComponent("notes.txt"), atomically: true, encoding: .utf8)
        let (templates, diagnostics) = EmailTemplate.loadAll(in: dir, displayPrefix: "campaigns/x/emails")
        #expect(templates.map(\.name) == ["a-thanks", "c-warn"])
        #expect(diagnostics.map(\.description) == [
            "campaigns/x/emails/b-bad.md:1:1: missing required key 'subject'",
            "campaigns/x/emails/b-bad.md:2:11: audience must be signers, consenting or targets, not 'all'",
            "campaigns/x/emails/c-warn.md:4:1: warning: unknown key 'extra' (expected subject, audience, reply_to, consent, attach_signatures, receipt)",
        ])
        let sample = MailRecipient.sample(fields: ["region"])
        let content = renderContent(template: templates[0], recipient: sample, campaign: TemplateRenderingTests.campaign,
                                    unsubscribe: ListUnsubscribe(mailto: TemplateRenderingTests.settings.unsubscribeMailbox), layout: false)
        #expect(content.subject == "Thank you, Ada!")
    }
}
