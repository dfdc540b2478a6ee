import Foundation
import FuzzSupport
import MusterKit

// One input = subject NUL display-name NUL address NUL text-body [NUL html-body].
// Checks what HeaderEncoding, QuotedPrintable and MIMEMessage promise: CR/LF/NUL in a
// header value refused; folded lines CRLF-separated, ≤ 998 octets, ≤ 78 unless a single
// token; encoded words ≤ 75 and decoding back to exactly the input; quoted-printable
// lines ≤ 76 decoding back to the body; a message with exactly the expected fields.
func hasLineBreakOrNUL(_ s: String) -> Bool { s.utf8.contains { $0 == 0x0D || $0 == 0x0A || $0 == 0 } }

func fuzzHeader(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let parts = nulSeparatedStrings(bytes(data, count), count: 5)
    let (subject, name, address, text) = (parts[0], parts[1], parts[2], parts[3])
    let html: String? = parts[4].isEmpty ? nil : parts[4]

    // Subject: unstructured.
    do {
        let tokens = try HeaderEncoding.unstructuredTokens(subject, header: "Subject")
        require(!hasLineBreakOrNUL(subject), "a subject with CR/LF/NUL was accepted")
        let field = try HeaderEncoding.fold(name: "Subject", tokens: tokens)
        let unfolded = checkFoldedField(field, name: "Subject", tokens: tokens)
        let value = String(unfolded.dropFirst("Subject:".count))
        let decoded = value.isEmpty ? "" : decodeUnstructured(String(value.dropFirst()))
        require(decoded == subject, "subject \(subject.debugDescription) decodes as \(decoded.debugDescription) from \(field.debugDescription)")
        if tokens.contains(where: { $0.hasPrefix("=?") }) {
            require(field.crlfLines.allSatisfy { $0.utf8.count <= 78 }, "encoded subject line over 78: \(field.debugDescription)")
        }
    } catch .forbiddenCharacter {
        require(hasLineBreakOrNUL(subject), "subject refused without CR/LF/NUL")
    } catch {
        require(false, "subject: unexpected \(error)")
    }

    // Display name: phrase, on a mailbox whose address is valid (the input's if it parses).
    let mailbox: MailAddress
    do {
        mailbox = try MailAddress(displayName: name, address: address, header: "To")
        require(!hasLineBreakOrNUL(name) && !hasLineBreakOrNUL(address), "a mailbox with CR/LF/NUL was accepted")
        require(mailbox.address.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7F }, "non-ASCII address \(mailbox.address.debugDescription)")
    } catch {
        guard let fallback = try? MailAddress(displayName: name, address: "ada@example.org", header: "To") else {
            require(hasLineBreakOrNUL(name), "display name refused without CR/LF/NUL")
            return 0
        }
        mailbox = fallback
    }
    do {
        let tokens = try HeaderEncoding.mailboxTokens(mailbox, header: "To")
        let field = try HeaderEncoding.fold(name: "To", tokens: tokens)
        let unfolded = String(checkFoldedField(field, name: "To", tokens: tokens).dropFirst("To: ".count))
        let angle = "<\(mailbox.address)>"
        if let displayName = mailbox.displayName {
            require(unfolded.hasSuffix(" " + angle), "To does not end with the address: \(unfolded.debugDescription)")
            let phrase = String(unfolded.dropLast(angle.count + 1))
            let decoded = decodePhrase(phrase)
            require(decoded == displayName, "display name \(displayName.debugDescription) decodes as \(decoded.debugDescription) from \(field.debugDescription)")
        } else {
            require(unfolded == mailbox.address, "To without a name is not the bare address: \(unfolded.debugDescription)")
        }
    } catch .lineTooLong {
        // Allowed only if some token cannot fit a line at all.
    } catch {
        require(false, "To: unexpected \(error)")
    }

    // Quoted-printable body on its own.
    let encoded = QuotedPrintable.encode(text)
    let decoded = decodeQuotedPrintable(encoded)
    require(decoded == crlfNormalised(text), "quoted-printable does not decode back: \(text.debugDescription) -> \(encoded.debugDescription)")

    // The whole message.
    let from = try! MailAddress(displayName: "Fair Rates Collective", address: "hello@fairrates.example")
    let unsubscribe = ListUnsubscribe(mailto: try! MailAddress(address: "unsubscribe@fairrates.example"), url: "https://fairrates.example/u/abc")
    let message = MIMEMessage(from: from, to: mailbox, replyTo: nil, subject: subject, date: Date(timeIntervalSince1970: 1_790_000_000),
                              messageID: "muster.0123456789abcdef@fairrates.example", listUnsubscribe: unsubscribe,
                              text: text, html: html)
    do {
        let bytes = try message.serialized()
        require(!hasLineBreakOrNUL(subject), "a message with a CR/LF/NUL subject was written")
        var expected = ["Date", "From", "To", "Subject", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post", "MIME-Version", "Content-Type"]
        if html == nil { expected.append("Content-Transfer-Encoding") }
        let parsed = parseMessage(bytes, expectedFields: expected)
        func terminated(_ s: String) -> String { s.isEmpty || s.hasSuffix("\n") || s.hasSuffix("\r") || s.hasSuffix("\r\n") ? s : s + "\n" }
        require(parsed.text == crlfNormalised(terminated(text)), "text part does not decode back")
        if let html { require(parsed.html == crlfNormalised(terminated(html)), "html part does not decode back") }
        let subjectValue = parsed.field("Subject") ?? ""
        require(decodeUnstructured(String(subjectValue.dropFirst())) == subject || (subject.isEmpty && subjectValue.isEmpty), "Subject in the message does not decode back")
    } catch .forbiddenCharacter {
        require(hasLineBreakOrNUL(subject), "message refused without CR/LF/NUL")
    } catch .lineTooLong {
    } catch {
        require(false, "message: unexpected \(error)")
    }
    return 0
}

runFuzzer(fuzzHeader)
