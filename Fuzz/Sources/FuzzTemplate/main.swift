import Foundation
import FuzzSupport
import MusterKit

// One input = an email template file (front matter + Mustache + Markdown), optionally
// followed by NUL and a signer value. A template that parses is rendered for two
// recipients: one carrying the input's value, one carrying hostile values (HTML, Mustache,
// javascript: URLs). The message must be well-formed (see parseMessage) and signer values
// must never come out as markup: the probes appear in the HTML part at most as often as
// the template itself writes them.
let campaign = CampaignMailInfo(slug: "fuzz", title: "Fair <rates> & \"translators\"", count: 420, goal: 1000,
                                deadline: "2027-03-31", daysLeft: 12, milestone: nil,
                                sender: try! MailAddress(displayName: "Fair Rates", address: "hello@fairrates.example"))
let settings = MessageSettings(unsubscribeMailbox: try! MailAddress(address: "unsubscribe@fairrates.example"))
let hostile = MailRecipient(
    name: "Eve <x-probe>{{email}}", email: "eve@example.org",
    fields: ["region": "javascript:alert(1)", "languages": "<x-probe onerror=x>{{#name}}{{/name}}", "first_name": "\"><x-probe"],
    unsubscribeURL: "https://fairrates.example/u/1")

/// `javascript:` right after `=`, `="` or `='` (spaces and control characters skipped, as
/// browsers skip them), i.e. starting an attribute value.
func scriptURLsInAttributes(_ html: [UInt8]) -> Int {
    let needle = Array("javascript:".utf8)
    var count = 0
    var start = 0
    while start + needle.count <= html.count {
        if html[start] == needle[0], Array(html[start..<start + needle.count]) == needle {
            var back = start - 1
            while back >= 0, html[back] <= 0x20 || html[back] == UInt8(ascii: "\"") || html[back] == UInt8(ascii: "'") { back -= 1 }
            if back >= 0, html[back] == UInt8(ascii: "=") { count += 1 }
        }
        start += 1
    }
    return count
}

func fuzzTemplate(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let parts = nulSeparatedStrings(bytes(data, count), count: 2)
    let source = parts[0]
    let template: EmailTemplate
    do {
        template = try EmailTemplate(source: source, file: "emails/fuzz.md")
    } catch {
        require(!error.diagnostics.isEmpty, "template refused without a diagnostic")
        for diagnostic in error.diagnostics {
            require(diagnostic.line >= 1 && diagnostic.column >= 1, "diagnostic without a position: \(diagnostic)")
        }
        return 0
    }
    _ = template.check(knownVariables: EmailTemplate.knownVariables(fields: ["region", "languages"]))

    let value = parts[1]
    let fromInput = MailRecipient(name: value.isEmpty ? "Ada Lovelace" : value, email: "ada@example.org",
                                  fields: ["region": value, "languages": value], unsubscribeURL: nil)
    for recipient in [fromInput, hostile] {
        let rendered: RenderedMessage
        do {
            rendered = try renderMessage(template: template, recipient: recipient, campaign: campaign, settings: settings,
                                         date: Date(timeIntervalSince1970: 1_790_000_000))
        } catch .forbiddenCharacter {
            // A subject or name holding CR, LF or NUL is refused: fine, if it really does.
            let content = renderContent(template: template, recipient: recipient, campaign: campaign,
                                        unsubscribe: ListUnsubscribe(mailto: settings.unsubscribeMailbox))
            require((content.subject + recipient.name).utf8.contains { $0 == 0x0D || $0 == 0x0A || $0 == 0 },
                    "forbiddenCharacter without CR/LF/NUL")
            continue
        } catch .lineTooLong {
            continue
        } catch {
            require(false, "render: unexpected \(error)")
            continue
        }
        var expected = ["Date", "From", "To"]
        if template.replyTo != nil { expected.append("Reply-To") }
        expected += ["Subject", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post", "MIME-Version", "Content-Type"]
        let parsed = parseMessage(rendered.bytes, expectedFields: expected)
        guard recipient.name == hostile.name, let html = parsed.html else { continue }
        let sourceBytes = Array(source.utf8)
        let markup = occurrences(of: "<x-probe", in: html)
        require(markup <= occurrences(of: "<x-probe", in: sourceBytes),
                "signer value became markup: '<x-probe' \(markup) times in the HTML")
        let scripts = scriptURLsInAttributes(html)
        require(scripts <= occurrences(of: "javascript:", in: sourceBytes),
                "signer value became a javascript: URL in an attribute (\(scripts) times)")
    }
    return 0
}

runFuzzer(fuzzTemplate)
