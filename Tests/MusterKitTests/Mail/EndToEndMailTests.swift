import Foundation
import Testing
@testable import MusterKit

@Suite("Rendered messages through aiosmtpd, parsed back by Python's email package",
       .enabled(if: aiosmtpdAvailable, skipReason), .serialized)
struct EndToEndMailTests {
    static let template = """
    ---
    subject: "Merci {{first_name}} — {{campaign.percent}}% of {{campaign.title}}"
    audience: signers
    reply_to: "Équipe <team@fairrates.example>"
    ---
    Hi {{first_name}},

    Thanks for signing **{{campaign.title}}** from {{region}}: we are {{campaign.count}} of {{campaign.goal}}.

    Unsubscribe: <{{unsubscribe_url}}>
    """

    @Test("hostile and international recipients arrive intact, escaped and uninjected")
    func hostileRecipients() throws {
        let server = try SMTPTestServer()
        let transport = try CurlSMTPTransport(settings: server.settings())
        let template = try EmailTemplate(source: Self.template, file: "emails/thanks.md")
        #expect(template.check(knownVariables: EmailTemplate.knownVariables(fields: ["region"])).isEmpty)
        let campaign = CampaignMailInfo(slug: "fair-rates", title: "Fair rates for translators", count: 420, goal: 1000,
                                        sender: try MailAddress(parsing: "Fair Rates Collective <hello@fairrates.example>"))
        let settings = MessageSettings(unsubscribeMailbox: try MailAddress(address: "unsubscribe@fairrates.example"))
        let recipients = [
            MailRecipient(name: "Zoë Ünal", email: "zoe@bücher.example", fields: ["region": "Lyon"]),
            MailRecipient(name: "Eve <eve@evil.test>, Bcc: x@evil.test", email: "eve@example.org", fields: ["region": "<script>alert(1)</script>"]),
            MailRecipient(name: "{{campaign.goal}} **bold**", email: "mallory@example.org", fields: ["region": "<img src=x onerror=alert(1)>"]),
            MailRecipient(name: String(repeating: "Ж", count: 10_000), email: "long@example.org", fields: ["region": "Paris"]),
            MailRecipient(name: "山田 太郎", email: "taro@例え.テスト", fields: ["region": "東京"],
                          unsubscribeURL: "https://fairrates.example/u?t=abc&e=1"),
        ]
        for recipient in recipients {
            let message = try renderMessage(template: template, recipient: recipient, campaign: campaign, settings: settings)
            _ = try transport.send(message)
        }
        let received = try server.received()
        #expect(received.count == recipients.count)
        #expect(Set(received.map(\.peerPort)).count == 1)
        for (recipient, got) in zip(recipients, received) {
            let parsed = try PythonParsedMessage(file: got.file)
            #expect(parsed.defects.isEmpty, "defects: \(parsed.defects)")
            #expect(got.recipients == [try MailAddress(address: recipient.email).address])
            #expect(parsed.headers["Bcc"] == nil)
            #expect(parsed.headers["To"]?.count == 1)
            let to = try #require(parsed.header("To"))
            #expect(to.hasSuffix("<\(got.recipients[0])>"))
            // Python's address parser keeps the folding space between adjacent encoded words
            // (it cannot round-trip its own long names either); RFC 2047 §6.2 says drop it,
            // which the Swift unit tests check exactly. Compare without spaces here.
            let squeezed = to.replacingOccurrences(of: " ", with: "")
            #expect(squeezed.contains(recipient.name.replacingOccurrences(of: " ", with: "")), "To decoded as \(to.prefix(120))")
            #expect(parsed.header("Subject") == "Merci \(recipient.firstName) — 42% of Fair rates for translators")
            #expect(parsed.header("Reply-To") == "Équipe <team@fairrates.example>")
            // RFC 8058: one-click only beside an https URI (the last recipient has one).
            #expect(parsed.header("List-Unsubscribe-Post") == (recipient.unsubscribeURL == nil ? nil : "List-Unsubscribe=One-Click"))
            #expect(parsed.header("List-Id") == "Fair rates for translators <fair-rates.fairrates.example>")
            #expect(parsed.headers["List-Id"]?.count == 1)
            #expect(parsed.header("List-Unsubscribe")?.hasPrefix("<mailto:unsubscribe@fairrates.example?subject=unsubscribe>") == true)
            #expect(parsed.header("MIME-Version") == "1.0")
            #expect(parsed.header("Date") != nil)
            #expect(parsed.header("Message-ID")?.hasSuffix("@fairrates.example>") == true)
            #expect(parsed.content_type == "multipart/alternative")
            #expect(parsed.parts.map(\.content_type) == ["text/plain", "text/html"])
            let text = parsed.parts[0].text
            let html = parsed.parts[1].text
            #expect(text.contains("from \(recipient.fields["region"]!): we are 420 of 1000."))
            #expect(html.contains("from \(htmlEscape(recipient.fields["region"]!)): we are 420 of 1000."))
            #expect(!html.contains("<script") && !html.contains("<img"))
            #expect(hasOnlyCRLFAndShortLines(got.raw))
        }
        let last = try PythonParsedMessage(file: received[4].file)
        #expect(last.header("List-Unsubscribe")?.contains("<https://fairrates.example/u?t=abc&e=1>") == true)
        #expect(last.parts[1].text.contains("<a href=\"https://fairrates.example/u?t=abc&amp;e=1\">"))
        #expect(received[4].recipients == ["taro@xn--r8jz45g.xn--zckzah"])
    }

    /// Issue 10 item 14 at a real sink: a long List-Unsubscribe folded after the colon and
    /// between its URIs, a non-ASCII List-Id, parsed back by Python without defects.
    @Test("folded List-Unsubscribe and an encoded List-Id arrive intact")
    func listHeadersAtTheSink() throws {
        let server = try SMTPTestServer()
        let transport = try CurlSMTPTransport(settings: server.settings())
        let template = try EmailTemplate(source: "---\nsubject: Hi\naudience: signers\n---\nHi {{name}}\n", file: "emails/hi.md")
        let campaign = CampaignMailInfo(slug: "tarifs-justes", title: "Tarifs équitables pour les traducteurs", count: 1,
                                        sender: try MailAddress(parsing: "Collectif <bonjour@bücher.example>"))
        let settings = MessageSettings(unsubscribeMailbox: try MailAddress(address: "unsubscribe-requests@lists.fair-rates-collective.example"))
        let url = "https://fair-rates-collective.example/unsubscribe?c=tarifs-justes&r=0123456789abcdef0123456789abcdef"
        let mailtoOnly = MailRecipient(name: "Ana", email: "ana@example.org")
        let withURL = MailRecipient(name: "Bo", email: "bo@example.org", unsubscribeURL: url)
        for recipient in [mailtoOnly, withURL] {
            _ = try transport.send(try renderMessage(template: template, recipient: recipient, campaign: campaign, settings: settings))
        }
        let received = try server.received()
        #expect(received.count == 2)
        let mailto = "<mailto:unsubscribe-requests@lists.fair-rates-collective.example?subject=unsubscribe>"
        for (index, got) in received.enumerated() {
            let parsed = try PythonParsedMessage(file: got.file)
            #expect(parsed.defects.isEmpty, "defects: \(parsed.defects)")
            #expect(parsed.header("List-Id") == "Tarifs équitables pour les traducteurs <tarifs-justes.xn--bcher-kva.example>")
            let unsubscribe = try #require(parsed.header("List-Unsubscribe"))
            #expect(unsubscribe.replacingOccurrences(of: " ", with: "") == (index == 0 ? mailto : mailto + ",<\(url)>"), "\(unsubscribe)")
            #expect(parsed.header("List-Unsubscribe-Post") == (index == 0 ? nil : "List-Unsubscribe=One-Click"))
            let raw = String(decoding: got.raw, as: UTF8.self)
            #expect(raw.contains("\r\nList-Unsubscribe:\r\n \(mailto)"), "\(raw.prefix(900))")
        }
    }
}
