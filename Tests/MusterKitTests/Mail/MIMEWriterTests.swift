import Foundation
import Testing
@testable import MusterKit

@Suite("Header encoding")
struct HeaderEncodingTests {
    @Test("ASCII subjects stay readable and fold at 78", arguments: [
        "Hello",
        "Thanks for signing the petition for fair rates for translators in Lyon, Paris and everywhere else in the world",
    ])
    func asciiSubject(_ subject: String) throws {
        let field = try HeaderEncoding.fold(name: "Subject", tokens: HeaderEncoding.unstructuredTokens(subject, header: "Subject"))
        #expect(!field.contains("=?"))
        for line in field.components(separatedBy: "\r\n") { #expect(line.utf8.count <= 78) }
        let unfolded = field.replacingOccurrences(of: "\r\n", with: "")
        #expect(unfolded == "Subject: " + subject)
    }

    /// Subject and To take a shortcut for short plain values; it must write what folding
    /// the tokens writes.
    @Test("the short plain-value shortcut writes what folding the tokens writes")
    func shortcutsMatchFolding() throws {
        var values = ["Hello", "", " ", "a  b", " lead", "trail ", "x=?y", "x=y?z", "Thank you, Ada: we are 420", "Zoë", "tab\there",
                      "a.b c", "O'Brien & Sons", "\"quoted\"", "Eve <eve@x>", "a,b", "(comment)", "~!#$%&'*+-/=?^_`{|}"]
        for length in 50...80 { values.append(String(repeating: "w", count: length)) }
        for length in 50...80 { values.append("Ana " + String(repeating: "b", count: length - 4)) }
        for value in values {
            let folded = try? HeaderEncoding.fold(name: "Subject", tokens: HeaderEncoding.unstructuredTokens(value, header: "Subject"))
            #expect((try? HeaderEncoding.unstructuredField(name: "Subject", value)) == folded, "subject \(value.debugDescription)")
            let display = value.isEmpty ? nil : value
            guard let mailbox = try? MailAddress(displayName: display, address: "someone.with.a.long.address@example.org", header: "To") else { continue }
            let mailboxFolded = try? HeaderEncoding.fold(name: "To", tokens: HeaderEncoding.mailboxTokens(mailbox, header: "To"))
            #expect((try? HeaderEncoding.mailboxField(name: "To", uncached: mailbox)) == mailboxFolded, "to \(value.debugDescription)")
        }
    }

    @Test("non-ASCII and odd values become encoded words that decode back exactly", arguments: [
        "Merci, Zoë !",
        "Спасибо за подпись, дорогой друг, нас уже тысяча человек по всей стране",
        "日本語の件名はとても長くなることがあります。署名ありがとうございます。本当に。",
        "👩🏽‍💻 family: 👨‍👩‍👧‍👦👨‍👩‍👧‍👦👨‍👩‍👧‍👦👨‍👩‍👧‍👦👨‍👩‍👧‍👦 done",
        "  leading and  double spaces ",
        "looks like =?UTF-8?B?abc?= an encoded word",
        String(repeating: "x", count: 300),
        "tab\there",
        "e\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}",
    ])
    func encodedSubject(_ subject: String) throws {
        let field = try HeaderEncoding.fold(name: "Subject", tokens: HeaderEncoding.unstructuredTokens(subject, header: "Subject"))
        let lines = field.components(separatedBy: "\r\n")
        for line in lines { #expect(line.utf8.count <= 78, "line too long: \(line)") }
        #expect(field.unicodeScalars.allSatisfy { $0.isASCII })
        let value = String(field.dropFirst("Subject: ".count))
        #expect(decodeEncodedWords(value) == subject)
        // Each encoded word is valid UTF-8 on its own: no sequence is split.
        for word in value.replacingOccurrences(of: "\r\n", with: "").split(separator: " ") {
            #expect(decodeEncodedWords(String(word)) != "", "word does not decode alone: \(word)")
            #expect(word.utf8.count <= 75)
        }
    }

    @Test("display names: atoms, quoted strings, encoded words")
    func displayNames() throws {
        #expect(try HeaderEncoding.phraseTokens("Ada Lovelace", header: "To") == ["Ada", "Lovelace"])
        #expect(try HeaderEncoding.phraseTokens("Lovelace, Ada", header: "To") == ["\"Lovelace,", "Ada\""])
        #expect(try HeaderEncoding.phraseTokens("A \"B\" C", header: "To") == ["\"A", "\\\"B\\\"", "C\""])
        let encoded = try HeaderEncoding.phraseTokens("Zoë <z@evil.test>", header: "To")
        #expect(encoded.allSatisfy { $0.hasPrefix("=?UTF-8?") })
        #expect(decodeEncodedWords(encoded.joined(separator: " ")) == "Zoë <z@evil.test>")
    }

    @Test("CR, LF and NUL are refused, naming the header", arguments: ["\r\n", "\n", "\r", "\u{0}"])
    func injection(_ bad: String) {
        #expect(throws: MessageError.forbiddenCharacter(header: "Subject")) {
            _ = try HeaderEncoding.unstructuredTokens("Hi\(bad)Bcc: x@evil.test", header: "Subject")
        }
        #expect(throws: MessageError.forbiddenCharacter(header: "To")) {
            _ = try MailAddress(displayName: "Eve\(bad)Bcc: x@evil.test", address: "eve@example.org", header: "To")
        }
        #expect(throws: MessageError.forbiddenCharacter(header: "RCPT TO")) {
            _ = try MailAddress(address: "eve@example.org\(bad)RCPT TO:<x@evil.test>", header: "RCPT TO")
        }
    }

    @Test("RFC 5322 date")
    func date() {
        #expect(HeaderEncoding.rfc5322Date(Date(timeIntervalSince1970: 1_795_720_305)) == "Thu, 26 Nov 2026 19:11:45 +0000")
    }
}

@Suite("Addresses and IDN")
struct AddressTests {
    @Test("mail host names go through libidn2")
    func mailHosts() {
        #expect(IDNA.mailHost("Bücher.Example") == "xn--bcher-kva.example")
        #expect(IDNA.mailHost("例え.テスト") == "xn--r8jz45g.xn--zckzah")
        #expect(IDNA.mailHost("localhost") == "localhost")
        #expect(IDNA.mailHost("bad domain.org") == nil)
        #expect(IDNA.mailHost("a..b") == nil)
    }

    @Test("IDN domains are written as xn-- in the address")
    func idnAddress() throws {
        let a = try MailAddress(parsing: "Jürgen <jurgen@Bücher.example>")
        #expect(a.address == "jurgen@xn--bcher-kva.example")
        #expect(a.displayName == "Jürgen")
    }

    @Test("invalid addresses", arguments: ["no-at-sign", "a@b", "ünï@example.org", "a..b@example.org", "a b@example.org", "<x>@example.org", "@example.org"])
    func invalid(_ address: String) {
        #expect(throws: MessageError.self) { _ = try MailAddress(address: address) }
    }

    @Test("sender parsing with quoted display names")
    func sender() throws {
        let a = try MailAddress(parsing: "\"Fair Rates, Lyon\" <hello@fairrates.example>")
        #expect(a.displayName == "Fair Rates, Lyon")
        #expect(a.address == "hello@fairrates.example")
        #expect(try MailAddress(parsing: "hello@fairrates.example").displayName == nil)
    }
}

@Suite("Quoted-printable")
struct QuotedPrintableTests {
    @Test("round trip, line lengths, no trailing whitespace", arguments: [
        "Hello, world",
        "Zoë = 1 + 1\nnext line   \n.dot line\nFrom here\n\n",
        String(repeating: "é", count: 200),
        String(repeating: "a", count: 75) + "=" + String(repeating: "b", count: 300),
        "tab\tand trailing tab\t",
        "mixed\r\nendings\rhere\n",
    ])
    func roundTrip(_ text: String) {
        let encoded = QuotedPrintable.encode(text)
        for line in encoded.components(separatedBy: "\r\n") {
            #expect(line.utf8.count <= 76)
            #expect(!line.hasSuffix(" ") && !line.hasSuffix("\t"))
            #expect(!line.hasPrefix("."))
            #expect(!line.hasPrefix("From "))
        }
        #expect(!encoded.contains("=_"))
        #expect(encoded.unicodeScalars.allSatisfy { $0.isASCII })
        let normalized = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
            .replacingOccurrences(of: "\n", with: "\r\n")
        #expect(decodeQuotedPrintable(encoded) == normalized)
    }
}

@Suite("MIME message")
struct MIMEMessageTests {
    func sample(name: String = "Zoë Ünal", subject: String = "Merci, Zoë !") throws -> MIMEMessage {
        MIMEMessage(
            from: try MailAddress(parsing: "Fair Rates Collective <hello@fairrates.example>"),
            to: try MailAddress(displayName: name, address: "zoe@bücher.example", header: "To"),
            replyTo: try MailAddress(parsing: "team@fairrates.example"),
            subject: subject,
            date: Date(timeIntervalSince1970: 1_795_720_305),
            messageID: MIMEMessage.stableMessageID(campaign: "fair-rates", template: "thanks", recipient: "zoe@xn--bcher-kva.example", domain: "fairrates.example"),
            listUnsubscribe: ListUnsubscribe(mailto: try MailAddress(address: "unsubscribe@fairrates.example"), url: "https://fairrates.example/u?t=abc"),
            text: "Hi Zoë,\nthanks.\n",
            html: "<p>Hi Zoë,</p>\n<p>thanks.</p>\n")
    }

    @Test("headers present, CRLF only, short lines, multipart order")
    func structure() throws {
        let bytes = try sample().serialized()
        #expect(hasOnlyCRLFAndShortLines(bytes))
        let headers = headerBlock(of: bytes)
        for name in ["Date", "From", "To", "Reply-To", "Subject", "Message-ID", "MIME-Version", "List-Unsubscribe", "List-Unsubscribe-Post", "Content-Type"] {
            #expect(headers.value(name) != nil, "missing \(name)")
        }
        for line in headers.rawLines { #expect(line.utf8.count <= 78, "\(line)") }
        #expect(headers.value("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click")
        #expect(headers.value("List-Unsubscribe") == "<mailto:unsubscribe@fairrates.example?subject=unsubscribe>,\r\n <https://fairrates.example/u?t=abc>"
            || headers.value("List-Unsubscribe") == "<mailto:unsubscribe@fairrates.example?subject=unsubscribe>, <https://fairrates.example/u?t=abc>")
        #expect(headers.value("To")?.hasSuffix("<zoe@xn--bcher-kva.example>") == true)
        #expect(decodeEncodedWords(headers.value("Subject") ?? "") == "Merci, Zoë !")
        let text = String(decoding: bytes, as: UTF8.self)
        let plain = try #require(text.range(of: "text/plain"))
        let html = try #require(text.range(of: "text/html"))
        #expect(plain.lowerBound < html.lowerBound)
        #expect(text.hasSuffix("--\r\n"))
        #expect(text.contains("thanks.\r\n\r\n--=_muster_"))  // each part ends with its own line break, once
    }

    @Test("Message-ID is stable for (campaign, template, recipient)")
    func stableID() {
        let a = MIMEMessage.stableMessageID(campaign: "c", template: "t", recipient: "x@example.org", domain: "example.org")
        let b = MIMEMessage.stableMessageID(campaign: "c", template: "t", recipient: "X@example.org", domain: "example.org")
        let c = MIMEMessage.stableMessageID(campaign: "c", template: "t2", recipient: "x@example.org", domain: "example.org")
        #expect(a == b)
        #expect(a != c)
    }

    @Test("a 10,000-character name folds without breaking any limit")
    func hugeName() throws {
        let name = String(repeating: "Ö", count: 10_000)
        let bytes = try sample(name: name).serialized()
        #expect(hasOnlyCRLFAndShortLines(bytes))
        let to = try #require(headerBlock(of: bytes).value("To"))
        #expect(decodeEncodedWords(String(to[..<to.range(of: " <zoe@")!.lowerBound])) == name)
        let ascii = String(repeating: "a", count: 10_000)
        #expect(hasOnlyCRLFAndShortLines(try sample(name: ascii, subject: ascii).serialized()))
    }

    @Test("a display name with injection attempts is encoded, never injected")
    func hostileName() throws {
        let bytes = try sample(name: "Eve <eve@evil.test>, Bcc: x@evil.test").serialized()
        let headers = headerBlock(of: bytes)
        #expect(headers.value("Bcc") == nil)
        #expect(headers.fields.filter { $0.name == "To" }.count == 1)
        #expect(throws: MessageError.forbiddenCharacter(header: "To")) {
            _ = try sample(name: "Eve\r\nBcc: x@evil.test").serialized()
        }
    }

    // Issue 10 item 14: RFC 8058 one-click only beside an https URI.
    @Test("List-Unsubscribe-Post only when List-Unsubscribe holds an https URI")
    func oneClickOnlyWithHTTPS() throws {
        var message = try sample()
        let withURL = headerBlock(of: try message.serialized())
        #expect(withURL.value("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click")
        message.listUnsubscribe?.url = nil
        let bytes = try message.serialized()
        let mailtoOnly = headerBlock(of: bytes)
        #expect(mailtoOnly.value("List-Unsubscribe") == "<mailto:unsubscribe@fairrates.example?subject=unsubscribe>")
        #expect(mailtoOnly.value("List-Unsubscribe-Post") == nil)
        #expect(!String(decoding: bytes, as: UTF8.self).contains("One-Click"))
    }

    // Issue 10 item 14: RFC 2919 List-Id, `phrase <slug.domain>`.
    @Test("List-Id: the campaign title, then <slug.sender-domain>")
    func listID() throws {
        var message = try sample()
        message.listID = ListID(title: "Fair rates for translators", slug: "fair-rates", domain: "fairrates.example")
        var headers = headerBlock(of: try message.serialized())
        #expect(headers.rawLines.contains("List-Id: Fair rates for translators <fair-rates.fairrates.example>"))
        // Before List-Unsubscribe, once.
        let names = headers.fields.map(\.name)
        #expect(names.filter { $0 == "List-Id" }.count == 1)
        #expect(try #require(names.firstIndex(of: "List-Id")) < (try #require(names.firstIndex(of: "List-Unsubscribe"))))
        // A title that is not plain atoms is quoted; a non-ASCII one is RFC 2047 encoded.
        message.listID = ListID(title: "Fair rates, now", slug: "fair-rates", domain: "fairrates.example")
        #expect(headerBlock(of: try message.serialized()).value("List-Id") == "\"Fair rates, now\" <fair-rates.fairrates.example>")
        message.listID = ListID(title: "Tarifs équitables", slug: "tarifs", domain: "xn--bcher-kva.example")
        headers = headerBlock(of: try message.serialized())
        let value = try #require(headers.value("List-Id"))
        #expect(value.hasPrefix("=?UTF-8?"))
        #expect(value.hasSuffix(" <tarifs.xn--bcher-kva.example>"))
        #expect(decodeEncodedWords(String(value[..<value.range(of: " <tarifs.")!.lowerBound])) == "Tarifs équitables")
        // No title: the identifier alone. An address literal has no domain name: RFC 2919's localhost.
        message.listID = ListID(title: "  ", slug: "fair-rates", domain: "fairrates.example")
        #expect(headerBlock(of: try message.serialized()).rawLines.contains("List-Id: <fair-rates.fairrates.example>"))
        message.listID = ListID(title: "Fair", slug: "fair-rates", domain: "[192.0.2.1]")
        #expect(headerBlock(of: try message.serialized()).rawLines.contains("List-Id: Fair <fair-rates.localhost>"))
        #expect(ListID(title: "", slug: "s", domain: String(repeating: "a.", count: 127) + "example").identifier == "s.localhost")
        // A long title folds; every line within 78 octets.
        message.listID = ListID(title: String(repeating: "Ölçü ", count: 60), slug: "fair-rates", domain: "fairrates.example")
        let bytes = try message.serialized()
        #expect(hasOnlyCRLFAndShortLines(bytes))
        for line in headerBlock(of: bytes).rawLines { #expect(line.utf8.count <= 78, "\(line)") }
        // A line break in the title cannot reach the header.
        message.listID = ListID(title: "Fair\r\nBcc: x@evil.test", slug: "fair-rates", domain: "fairrates.example")
        #expect(throws: MessageError.forbiddenCharacter(header: "List-Id")) { _ = try message.serialized() }
    }

    @Test("renderMessage gives every message the campaign's List-Id")
    func renderedListID() throws {
        let template = try EmailTemplate(source: "---\nsubject: Hi\naudience: signers\n---\nHi {{name}}\n", file: "emails/hi.md")
        let campaign = CampaignMailInfo(slug: "fair-rates", title: "Fair rates", count: 1,
                                        sender: try MailAddress(parsing: "Fair Rates <hello@Fairrates.Example>"))
        let settings = MessageSettings(unsubscribeMailbox: try MailAddress(address: "unsubscribe@fairrates.example"))
        for recipient in [MailRecipient(name: "Ana", email: "ana@example.org"),
                          MailRecipient(name: "Bo", email: "bo@example.org", unsubscribeURL: "https://fairrates.example/u?t=1")] {
            let headers = headerBlock(of: try renderMessage(template: template, recipient: recipient, campaign: campaign, settings: settings).bytes)
            #expect(headers.value("List-Id") == "Fair rates <fair-rates.fairrates.example>")
            #expect((headers.value("List-Unsubscribe-Post") != nil) == (recipient.unsubscribeURL != nil))
        }
    }

    // Issue 10 item 14: long List-Unsubscribe values fold between the <…> items, never inside.
    @Test("a long List-Unsubscribe folds between its URIs, and after the colon when needed")
    func longListUnsubscribe() throws {
        var message = try sample()
        let mailbox = try MailAddress(address: "unsubscribe-requests@lists.fair-rates-collective.example")
        let url = "https://fair-rates-collective.example/unsubscribe?c=fair-rates&r=0123456789abcdef0123456789abcdef"
        message.listUnsubscribe = ListUnsubscribe(mailto: mailbox)
        var lines = headerBlock(of: try message.serialized()).rawLines
        var start = try #require(lines.firstIndex { $0.hasPrefix("List-Unsubscribe:") })
        #expect(Array(lines[start...(start + 1)]) == ["List-Unsubscribe:", " <mailto:unsubscribe-requests@lists.fair-rates-collective.example?subject=unsubscribe>"])
        message.listUnsubscribe = ListUnsubscribe(mailto: try MailAddress(address: "u@fairrates.example"), url: url)
        lines = headerBlock(of: try message.serialized()).rawLines
        start = try #require(lines.firstIndex { $0.hasPrefix("List-Unsubscribe:") })
        #expect(Array(lines[start...(start + 1)]) == ["List-Unsubscribe: <mailto:u@fairrates.example?subject=unsubscribe>,", " <\(url)>"])
        // Short enough for one line: one line.
        message.listUnsubscribe = ListUnsubscribe(mailto: try MailAddress(address: "u@f.example"), url: "https://f.ex/u")
        #expect(headerBlock(of: try message.serialized()).rawLines.contains("List-Unsubscribe: <mailto:u@f.example?subject=unsubscribe>, <https://f.ex/u>"))
        // The longest URL allowed (900 characters) stays whole on its own line, under 998 octets.
        let longest = "https://fairrates.example/u?t=" + String(repeating: "a", count: 870)
        message.listUnsubscribe = ListUnsubscribe(mailto: mailbox, url: longest)
        let bytes = try message.serialized()
        #expect(hasOnlyCRLFAndShortLines(bytes))
        lines = headerBlock(of: bytes).rawLines
        start = try #require(lines.firstIndex { $0.hasPrefix("List-Unsubscribe:") })
        #expect(lines[start] == "List-Unsubscribe:")
        #expect(lines[start + 2] == " <\(longest)>")
        // Every other header line of these messages is within 78 octets.
        for line in lines where !line.contains(longest) && !line.contains("unsubscribe-requests@") { #expect(line.utf8.count <= 78, "\(line)") }
    }

    @Test("unsafe unsubscribe URLs are refused")
    func badURL() throws {
        var m = try sample()
        m.listUnsubscribe?.url = "http://plain.example/u"
        #expect(throws: MessageError.self) { _ = try m.serialized() }
        m.listUnsubscribe?.url = "https://x.example/u>, <https://evil"
        #expect(throws: MessageError.self) { _ = try m.serialized() }
    }
}
