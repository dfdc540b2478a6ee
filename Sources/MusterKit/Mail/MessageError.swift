import Foundation

/// Why a message could not be written. Nothing is sent when one of these is thrown.
public enum MessageError: Error, Equatable, Sendable, LocalizedError {
    /// A value bound for a header or the SMTP envelope holds CR, LF or NUL (header injection).
    case forbiddenCharacter(header: String)
    /// An address bound for `header` is not one muster can send to.
    case invalidAddress(header: String, address: String, reason: String)
    /// A header value cannot be written within the 998-octet line limit.
    case lineTooLong(header: String)
    /// A URL for `List-Unsubscribe` is unusable.
    case invalidUnsubscribeURL(reason: String)
    /// An attachment cannot be written (bad media type or file name).
    case invalidAttachment(reason: String)
    /// The message cannot be DKIM-signed.
    case dkim(String)

    /// A short, lower-case message for the user.
    public var errorDescription: String? {
        switch self {
        case .forbiddenCharacter(let header):
            return "the \(header) value contains a line break or NUL character; refused"
        case .invalidAddress(let header, let address, let reason):
            return "invalid address \(Self.printable(address)) for \(header): \(reason)"
        case .lineTooLong(let header):
            return "the \(header) value is too long to fit a 998-octet line"
        case .invalidUnsubscribeURL(let reason):
            return "invalid unsubscribe URL: \(reason)"
        case .invalidAttachment(let reason):
            return "invalid attachment: \(reason)"
        case .dkim(let reason):
            return reason
        }
    }

    /// Quotes a hostile value so control characters show as escapes, never as line breaks.
    static func printable(_ value: String) -> String {
        let clipped = value.count > 80 ? String(value.prefix(80)) + "…" : value
        return clipped.debugDescription
    }
}

/// Refuses CR, LF and NUL anywhere in `value`, naming `header` in the error.
func refuseLineBreaks(_ value: String, header: String) throws(MessageError) {
    if value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }) {
        throw .forbiddenCharacter(header: header)
    }
}
