import Foundation

// SMTPUTF8 (RFC 6531): a recipient whose local part is UTF-8.
//
// libcurl 7.88 (Debian 12) adds ` SMTPUTF8` to MAIL FROM by itself when the relay's EHLO
// offered it and an envelope address holds UTF-8; when the relay did not offer it,
// libcurl still sends the raw UTF-8 `RCPT TO` (which a strict relay refuses and a lax one
// may mangle). So muster decides first: it hands such a message to libcurl only once it
// knows the relay offers SMTPUTF8, from the EHLO reply of a connection it already made
// or, before the first one, from a connect-only probe (`smtpCheck`).

extension CurlSMTPHandle {
    /// Throws `.permanent` unless the relay offers SMTPUTF8, probing it once if no
    /// connection has told yet.
    func requireSMTPUTF8() throws(SMTPError) {
        if relayOffersSMTPUTF8 == nil {
            let report = try smtpCheck(settings: settings)
            relayOffersSMTPUTF8 = report.capabilities.contains { SMTPCapabilities.keyword($0) == "SMTPUTF8" }
        }
        guard relayOffersSMTPUTF8 == true else {
            throw .permanent(SMTPFailure(detail: "not sent: the recipient's address has a non-ASCII local part, which needs SMTPUTF8 (RFC 6531), and the relay does not offer it"))
        }
    }
}

/// Reading EHLO keywords.
enum SMTPCapabilities {
    /// The keyword of one EHLO line (`SIZE 35882577` → `SIZE`), upper-cased.
    static func keyword(_ line: String) -> String {
        String(line.prefix { $0 != " " }).uppercased()
    }

    /// The keywords of the EHLO reply among `replies`: the first 250 after the last 220
    /// (the greeting, or STARTTLS's go-ahead, after which EHLO is sent again); nil when
    /// the replies hold no greeting (the connection was already open).
    static func ehloKeywords(_ replies: [SMTPReply]) -> [String]? {
        guard let greeting = replies.lastIndex(where: { $0.code == 220 }),
              let ehlo = replies[(greeting + 1)...].first(where: { $0.code == 250 }) else { return nil }
        return ehlo.lines.dropFirst().map(keyword)
    }
}

extension ReplyCollector {
    /// Whether the EHLO reply collected since the last reset offered SMTPUTF8; nil when
    /// no EHLO was seen (no new connection was made).
    var offersSMTPUTF8: Bool? {
        SMTPCapabilities.ehloKeywords(all).map { $0.contains("SMTPUTF8") }
    }
}
