import Crypto
import Foundation

/// A file attached to a message: a base64 body part with `Content-Disposition: attachment`
/// (RFC 2045, RFC 2183), placed after the text and HTML in a multipart/mixed message
/// (RFC 2046 §5.1.3).
public struct MIMEAttachment: Sendable, Equatable {
    /// `type/subtype`, e.g. `text/csv`.
    public var mediaType: String
    /// The `charset` parameter for text types (e.g. `utf-8`), if any.
    public var charset: String?
    /// The file name shown by mail clients; any Unicode except control characters and `/`.
    public var filename: String
    /// The file's bytes.
    public var data: [UInt8]

    /// Creates an attachment; nothing is validated until the message is serialized.
    public init(mediaType: String, charset: String? = nil, filename: String, data: [UInt8]) {
        self.mediaType = mediaType
        self.charset = charset
        self.filename = filename
        self.data = data
    }

    /// The part's header fields (CRLF-separated, no final CRLF) and base64 body.
    func part() throws(MessageError) -> (header: String, body: String) {
        guard mediaType.range(of: "^[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*$", options: .regularExpression) != nil else {
            throw .invalidAttachment(reason: "media type '\(mediaType)' is not type/subtype")
        }
        if let charset, charset.range(of: "^[A-Za-z0-9._-]+$", options: .regularExpression) == nil {
            throw .invalidAttachment(reason: "charset '\(charset)' is not a token")
        }
        let nameParameter = try Self.parameter("filename", filename)
        var typeTokens = [mediaType + ";"]
        if let charset { typeTokens.append("charset=\(charset);") }
        typeTokens.append(try Self.parameter("name", filename))
        let fields = [
            try HeaderEncoding.fold(name: "Content-Type", tokens: typeTokens),
            "Content-Transfer-Encoding: base64",
            try HeaderEncoding.fold(name: "Content-Disposition", tokens: ["attachment;", nameParameter]),
        ]
        return (fields.joined(separator: "\r\n"), Self.base64Lines(data))
    }

    /// Base64 in lines of 76 characters separated by CRLF (RFC 2045 §6.8), no final CRLF.
    static func base64Lines(_ data: [UInt8]) -> String {
        let encoded = Array(Data(data).base64EncodedString().utf8)
        var out: [UInt8] = []
        out.reserveCapacity(encoded.count + encoded.count / 76 * 2 + 2)
        var index = 0
        while index < encoded.count {
            if index > 0 { out += [0x0D, 0x0A] }
            let end = min(index + 76, encoded.count)
            out += encoded[index..<end]
            index = end
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `name="value"` for a file name made of printable ASCII other than `"` and `\`
    /// (RFC 2183), otherwise `name*=utf-8''percent-encoded` (RFC 2231).
    static func parameter(_ name: String, _ value: String) throws(MessageError) -> String {
        guard !value.isEmpty, value.utf8.count <= 200 else {
            throw .invalidAttachment(reason: "the file name must have 1 to 200 octets")
        }
        guard !value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F || $0 == "/" || $0 == "\\" }),
              TextField.forbiddenCharacter(in: value) == nil else {
            throw .invalidAttachment(reason: "the file name holds a control character or a path separator")
        }
        if value.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value < 0x7F && $0 != "\"" }) {
            return "\(name)=\"\(value)\""
        }
        // attr-char (RFC 2231 / RFC 5987): ALPHA DIGIT ! # $ & + - . ^ _ ` | ~
        let plain = Set("!#$&+-.^_`|~".utf8)
        var encoded = "utf-8''"
        for byte in value.utf8 {
            let isAlnum = (byte >= 0x30 && byte <= 0x39) || (byte | 0x20 >= 0x61 && byte | 0x20 <= 0x7A)
            if isAlnum || plain.contains(byte) {
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                encoded += String(format: "%%%02X", byte)
            }
        }
        return "\(name)*=\(encoded)"
    }
}

extension MIMEMessage {
    /// Wraps the message's content (its Content-Type fields and body, as the single-part
    /// or multipart/alternative writer produced them) and the attachments in a
    /// multipart/mixed body: content first, attachments after it.
    static func mixed(contentFields: [String], contentBody: String, attachments: [MIMEAttachment],
                      messageID: String) throws(MessageError) -> (fields: [String], body: String) {
        let parts = try attachments.map { attachment throws(MessageError) in try attachment.part() }
        // `=_` never occurs in quoted-printable or base64 text; the check is a safeguard.
        let digest = Hex.encode(SHA256.hash(data: Data(("mixed\u{0}" + messageID).utf8)).prefix(12))
        var boundary = "=_mixed_\(digest)"
        var salt = 0
        while contentBody.containsBytes(boundary) || parts.contains(where: { $0.body.containsBytes(boundary) }) {
            salt += 1
            boundary = "=_mixed_\(digest)_\(salt)"
        }
        var body = "This is a multi-part message in MIME format.\r\n"
        body += "\r\n--\(boundary)\r\n"
        body += contentFields.joined(separator: "\r\n") + "\r\n\r\n"
        // The CRLF before a delimiter belongs to the delimiter (RFC 2046 §5.1.1).
        // A multipart/alternative content starts with its first delimiter's CRLF: the part's
        // body may start with the delimiter itself. Its end is kept: a text part's last line
        // break is content, and after a close delimiter a CRLF is allowed (RFC 2046 §5.1.1).
        let content = contentBody.utf8.starts(with: [0x0D, 0x0A]) ? contentBody.utf8.dropFirst(2) : contentBody.utf8[...]
        body += String(decoding: content, as: UTF8.self)
        for part in parts {
            body += "\r\n--\(boundary)\r\n"
            body += part.header + "\r\n\r\n"
            body += part.body
        }
        body += "\r\n--\(boundary)--\r\n"
        let fields = [try HeaderEncoding.fold(name: "Content-Type", tokens: ["multipart/mixed;", "boundary=\"\(boundary)\""])]
        return (fields, body)
    }
}
