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
    public var mailtoURI: String { "mailto:" + mailto.address + "?subject=unsubscribe" }

    /// Whether the message may carry `List-Unsubscribe-Post: List-Unsubscribe=One-Click`:
    /// RFC 8058 §3.1 allows it only beside an https URI that unsubscribes on a POST.
    public var allowsOneClick: Bool { url != nil }
}

/// The `List-Id` of a campaign's messages (RFC 2919): the campaign title as the
/// optional phrase and `<slug.sender-domain>` as the identifier, the same in every
/// message of the campaign so mail clients and filters can group them.
public struct ListID: Sendable, Hashable {
    /// The phrase (any Unicode except line breaks; RFC 2047 encoded when not ASCII).
    public var title: String
    /// The campaign slug (`[a-z0-9][a-z0-9-]*`, a dot-atom label).
    public var slug: String
    /// The sender's domain in ASCII form (`xn--` for IDN labels).
    public var domain: String

    /// Creates the list identity of campaign `slug` sent from `domain`.
    public init(title: String, slug: String, domain: String) {
        self.title = title
        self.slug = slug
        self.domain = domain
    }

    /// `slug.domain`: a dot-atom of at most 255 octets (RFC 2919 §2). A sender domain that
    /// is an address literal (`[192.0.2.1]`) or would make the identifier too long gives
    /// RFC 2919's namespace for lists without a domain, `slug.localhost`.
    public var identifier: String {
        let dotAtom = domain.unicodeScalars.allSatisfy { MailAddress.isAtext($0) }
            && !domain.hasPrefix(".") && !domain.hasSuffix(".") && !domain.containsBytes("..")
        let full = slug + "." + domain
        return dotAtom && full.utf8.count <= 255 ? full : slug + ".localhost"
    }
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
    /// The list the message belongs to (`List-Id`); muster always sets it for blasts.
    public var listID: ListID?
    /// The text/plain part.
    public var text: String
    /// The text/html part; when `nil` the message is a single text/plain part.
    public var html: String?
    /// Files attached after the text (and HTML); none for ordinary blasts.
    public var attachments: [MIMEAttachment]

    /// Creates a message from its parts; nothing is validated until `serialized()`.
    public init(from: MailAddress, to: MailAddress, replyTo: MailAddress? = nil, subject: String,
                date: Date, messageID: String, listUnsubscribe: ListUnsubscribe? = nil, listID: ListID? = nil,
                text: String, html: String? = nil, attachments: [MIMEAttachment] = []) {
        self.from = from
        self.to = to
        self.replyTo = replyTo
        self.subject = subject
        self.date = date
        self.messageID = messageID
        self.listUnsubscribe = listUnsubscribe
        self.listID = listID
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
        let textBody = QuotedPrintable.encodeBytes(Self.terminated(text))
        let htmlBody = html.map { QuotedPrintable.encodeBytes(Self.terminated($0)) }
        var out: [UInt8] = []
        out.reserveCapacity(textBody.count + (htmlBody?.count ?? 0) + 1_536)
        func field(_ text: String) {
            if !out.isEmpty { out += [0x0D, 0x0A] }
            out += text.utf8
        }
        field(try HeaderEncoding.fold(name: "Date", tokens: [HeaderEncoding.rfc5322Date(date)]))
        // A blast's From (and Reply-To) is the same in every message: folded once.
        field(try HeaderEncoding.mailboxField(name: "From", from))
        field(try HeaderEncoding.mailboxField(name: "To", uncached: to))
        if let replyTo { field(try HeaderEncoding.mailboxField(name: "Reply-To", replyTo)) }
        field(try HeaderEncoding.unstructuredField(name: "Subject", subject))
        try refuseLineBreaks(messageID, header: "Message-ID")
        guard messageID.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F && $0 != "<" && $0 != ">" }),
              messageID.utf8.contains(UInt8(ascii: "@")) else {
            throw .invalidAddress(header: "Message-ID", address: messageID, reason: "not an id-left@id-right value")
        }
        field(try HeaderEncoding.fold(name: "Message-ID", tokens: ["<\(messageID)>"]))
        // The same in every message of a campaign: built once, then taken from a cache.
        if let listID { field(try HeaderEncoding.listIDField(listID)) }
        if let listUnsubscribe {
            if let url = listUnsubscribe.url {
                try refuseLineBreaks(url, header: "List-Unsubscribe")
                try Self.validateUnsubscribeURL(url)
            }
            field(try HeaderEncoding.listUnsubscribeField(listUnsubscribe))
            // RFC 8058 §3.1: only beside an https URI that unsubscribes on a POST; a
            // mailto alone must not claim one-click.
            if listUnsubscribe.allowsOneClick { field("List-Unsubscribe-Post: List-Unsubscribe=One-Click") }
        }
        field("MIME-Version: 1.0")

        // Each part ends with a line break of its own (the CRLF before a boundary belongs
        // to the boundary, RFC 2046 §5.1.1).
        var contentFields: [String] = []
        var body: [UInt8] = []
        if let htmlBody {
            let boundary = Self.boundary(for: messageID, avoiding: [textBody, htmlBody])
            contentFields.append(try HeaderEncoding.fold(name: "Content-Type",
                                                         tokens: ["multipart/alternative;", "boundary=\"\(boundary)\""]))
            body.reserveCapacity(textBody.count + htmlBody.count + 512)
            if attachments.isEmpty { body += "This is a multi-part message in MIME format.\r\n".utf8 }
            body += "\r\n--\(boundary)\r\n".utf8
            body += "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n".utf8
            body += textBody
            body += "\r\n--\(boundary)\r\n".utf8
            body += "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n".utf8
            body += htmlBody
            body += "\r\n--\(boundary)--\r\n".utf8
        } else {
            contentFields.append("Content-Type: text/plain; charset=utf-8")
            contentFields.append("Content-Transfer-Encoding: quoted-printable")
            body = textBody
        }
        if attachments.isEmpty {
            for content in contentFields { field(content) }
        } else {
            let mixed = try Self.mixed(contentFields: contentFields, contentBody: String(decoding: body, as: UTF8.self),
                                       attachments: attachments, messageID: messageID)
            for content in mixed.fields { field(content) }
            body = Array(mixed.body.utf8)
        }
        out += [0x0D, 0x0A, 0x0D, 0x0A]
        out += body
        return out
    }

    private static func terminated(_ s: String) -> String {
        s.isEmpty || s.utf8.last == 0x0A || s.utf8.last == 0x0D ? s : s + "\n"
    }

    /// A boundary containing `=_`, which quoted-printable output can never contain;
    /// checked against the encoded parts anyway.
    static func boundary(for messageID: String, avoiding parts: [[UInt8]]) -> String {
        let digest = Hex.encode(SHA256.hash(data: Data(messageID.utf8)).prefix(12))
        var boundary = "=_muster_\(digest)"
        var salt = 0
        while parts.contains(where: { part in
            var needle = boundary
            return needle.withUTF8 { n in part.withUnsafeBufferPointer { firstOffset(of: n, in: $0, from: 0) != nil } }
        }) {
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
