import Crypto
import Foundation

/// The `List-Unsubscribe` targets of a message (RFC 2369, RFC 8058).
public struct ListUnsubscribe: Sendable, Equatable {
    /// The mailbox that receives unsubscribe requests (`mailto:` target).
    public var mailto: MailAddress
    /// An `https` one-click URL (RFC 8058), if the workspace configures one.
    public var url: String?

    /// Creates the targets; `url`, when given, must be `https`, ASCII and free of spaces,
    /// `<`, `>`, `,` and line breaks.
    public init(mailto: MailAddress, url: String? = nil) {
        self.mailto = mailto
        self.url = url
    }

    /// The `mailto:` URI written into the header and offered to templates.
    public var mailtoURI: String { "mailto:\(mailto.address)?subject=unsubscribe" }
}

/// A complete outgoing message as muster writes it: RFC 5322 headers, a
/// multipart/alternative body (text/plain first, text/html last), both parts
/// quoted-printable UTF-8; with attachments, that body and then the attachments
/// inside multipart/mixed.
public struct MIMEMessage: Sendable {
    /// Author (`From`).
    public var from: MailAddress
    /// The single recipient (`To`); blasts send one message per recipient.
    public var to: MailAddress
    /// Where replies go (`Reply-To`), when not the sender.
    public var replyTo: MailAddress?
    /// The subject, any Unicode except CR, LF, NUL.
    public var subject: String
    /// The `Date` header.
    public var date: Date
    /// The `Message-ID` without angle brackets, e.g. `muster.3f…@example.org`.
    public var messageID: String
    /// Unsubscribe targets; muster always sets them for blasts.
    public var listUnsubscribe: ListUnsubscribe?
    /// The text/plain part.
    public var text: String
    /// The text/html part; when `nil` the message is a single text/plain part.
    public var html: String?
    /// Files attached after the text (and HTML); none for ordinary blasts.
    public var attachments: [MIMEAttachment]

    /// Creates a message from its parts; nothing is validated until `serialized()`.
    public init(from: MailAddress, to: MailAddress, replyTo: MailAddress? = nil, subject: String,
                date: Date, messageID: String, listUnsubscribe: ListUnsubscribe? = nil,
                text: String, html: String? = nil, attachments: [MIMEAttachment] = []) {
        self.from = from
        self.to = to
        self.replyTo = replyTo
        self.subject = subject
        self.date = date
        self.messageID = messageID
        self.listUnsubscribe = listUnsubscribe
        self.text = text
        self.html = html
        self.attachments = attachments
    }

    /// A Message-ID that is the same every time for the same (campaign, template,
    /// recipient), so a retried message keeps its identity: `muster.<hash>@<domain>`.
    public static func stableMessageID(campaign: String, template: String, recipient: String, domain: String) -> String {
        let key = [campaign, template, recipient.lowercased()].joined(separator: "\u{0}")
        let digest = SHA256.hash(data: Data(key.utf8))
        let hex = Hex.encode(digest.prefix(16))
        return "muster.\(hex)@\(domain)"
    }

    /// The message as CRLF-terminated octets ready for SMTP DATA.
    /// - Throws: `MessageError` when a value would inject a header or break a limit.
    public func serialized() throws(MessageError) -> [UInt8] {
        var fields: [String] = []
        fields.append(try HeaderEncoding.fold(name: "Date", tokens: [HeaderEncoding.rfc5322Date(date)]))
        fields.append(try HeaderEncoding.fold(name: "From", tokens: HeaderEncoding.mailboxTokens(from, header: "From")))
        fields.append(try HeaderEncoding.fold(name: "To", tokens: HeaderEncoding.mailboxTokens(to, header: "To")))
        if let replyTo {
            fields.append(try HeaderEncoding.fold(name: "Reply-To", tokens: HeaderEncoding.mailboxTokens(replyTo, header: "Reply-To")))
        }
        fields.append(try HeaderEncoding.fold(name: "Subject", tokens: HeaderEncoding.unstructuredTokens(subject, header: "Subject")))
        try refuseLineBreaks(messageID, header: "Message-ID")
        guard messageID.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F && $0 != "<" && $0 != ">" }),
              messageID.contains("@") else {
            throw .invalidAddress(header: "Message-ID", address: messageID, reason: "not an id-left@id-right value")
        }
        fields.append(try HeaderEncoding.fold(name: "Message-ID", tokens: ["<\(messageID)>"]))
        if let listUnsubscribe {
            var targets = ["<\(listUnsubscribe.mailtoURI)>"]
            if let url = listUnsubscribe.url {
                try refuseLineBreaks(url, header: "List-Unsubscribe")
                try Self.validateUnsubscribeURL(url)
                targets[0] += ","
                targets.append("<\(url)>")
            }
            fields.append(try HeaderEncoding.fold(name: "List-Unsubscribe", tokens: targets))
            fields.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
        }
        fields.append("MIME-Version: 1.0")

        // Each part ends with a line break of its own (the CRLF before a boundary belongs
        // to the boundary, RFC 2046 §5.1.1).
        func terminated(_ s: String) -> String { s.isEmpty || s.utf8.last == 0x0A || s.utf8.last == 0x0D ? s : s + "\n" }
        let textBody = QuotedPrintable.encode(terminated(text))
        var contentFields: [String] = []
        var body: String
        if let html {
            let htmlBody = QuotedPrintable.encode(terminated(html))
            let boundary = Self.boundary(for: messageID, avoiding: [textBody, htmlBody])
            contentFields.append(try HeaderEncoding.fold(name: "Content-Type",
                                                         tokens: ["multipart/alternative;", "boundary=\"\(boundary)\""]))
            body = attachments.isEmpty ? "This is a multi-part message in MIME format.\r\n" : ""
            body += "\r\n--\(boundary)\r\n"
            body += "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
            body += textBody
            body += "\r\n--\(boundary)\r\n"
            body += "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
            body += htmlBody
            body += "\r\n--\(boundary)--\r\n"
        } else {
            contentFields.append("Content-Type: text/plain; charset=utf-8")
            contentFields.append("Content-Transfer-Encoding: quoted-printable")
            body = textBody
        }
        if attachments.isEmpty {
            fields += contentFields
        } else {
            let mixed = try Self.mixed(contentFields: contentFields, contentBody: body, attachments: attachments, messageID: messageID)
            fields += mixed.fields
            body = mixed.body
        }
        let message = fields.joined(separator: "\r\n") + "\r\n\r\n" + body
        return Array(message.utf8)
    }

    /// A boundary containing `=_`, which quoted-printable output can never contain;
    /// checked against the encoded parts anyway.
    static func boundary(for messageID: String, avoiding parts: [String]) -> String {
        let digest = Hex.encode(SHA256.hash(data: Data(messageID.utf8)).prefix(12))
        var boundary = "=_muster_\(digest)"
        var salt = 0
        while parts.contains(where: { $0.containsBytes(boundary) }) {
            salt += 1
            boundary = "=_muster_\(digest)_\(salt)"
        }
        return boundary
    }

    static func validateUnsubscribeURL(_ url: String) throws(MessageError) {
        guard url.lowercased().hasPrefix("https://") else { throw .invalidUnsubscribeURL(reason: "must start with https://") }
        guard url.utf8.count <= 900 else { throw .invalidUnsubscribeURL(reason: "longer than 900 characters") }
        guard url.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F && !"<>,\"".unicodeScalars.contains($0) }) else {
            throw .invalidUnsubscribeURL(reason: "must be ASCII without spaces, quotes, commas or angle brackets (percent-encode them)")
        }
    }
}
