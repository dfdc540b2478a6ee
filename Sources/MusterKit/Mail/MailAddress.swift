import Foundation

/// One mailbox: an optional display name and an address, validated for SMTP.
///
/// The local part is ASCII, except for recipients, whose local part may be UTF-8
/// (RFC 6531: such a message needs a relay that offers SMTPUTF8). The domain may be
/// Unicode and is kept in its ASCII (`xn--`) form, which is what headers and the
/// envelope carry.
public struct MailAddress: Sendable, Hashable, CustomStringConvertible {
    /// The human name shown by mail clients, if any (any Unicode except CR, LF, NUL).
    public var displayName: String?
    /// The part before `@`: a dot-atom, ASCII unless created with `allowUTF8LocalPart` (then NFC).
    public let localPart: String
    /// The domain in ASCII form (IDN labels as `xn--…`), lower-cased.
    public let domain: String

    /// `local@domain` in ASCII, as written in headers and in MAIL FROM / RCPT TO.
    public var address: String { "\(localPart)@\(domain)" }

    /// A readable form for messages and logs.
    public var description: String {
        if let displayName, !displayName.isEmpty { return "\(displayName) <\(address)>" }
        return address
    }

    /// Whether the local part holds non-ASCII characters, so the message must travel with
    /// SMTPUTF8 (RFC 6531) and its headers carry raw UTF-8 (RFC 6532).
    public var isInternationalized: Bool { localPart.utf8.contains { $0 >= 0x80 } }

    /// Validates `address` (Unicode domain allowed) and keeps `displayName` as given.
    /// - Parameters:
    ///   - header: the header or envelope command named in errors.
    ///   - allowUTF8LocalPart: accept a UTF-8 local part (RFC 6531), normalised to NFC.
    public init(displayName: String? = nil, address: String, header: String = "address",
                allowUTF8LocalPart: Bool = false) throws(MessageError) {
        try refuseLineBreaks(address, header: header)
        if let displayName { try refuseLineBreaks(displayName, header: header) }
        let trimmed = TextField.trimmed(address)
        guard let at = trimmed.lastIndex(of: "@") else {
            throw .invalidAddress(header: header, address: address, reason: "missing @")
        }
        var local = String(trimmed[..<at])
        let utf8Local = allowUTF8LocalPart && local.utf8.contains { $0 >= 0x80 }
        if utf8Local {
            guard TextField.forbiddenCharacter(in: local) == nil else {
                throw .invalidAddress(header: header, address: address, reason: "local part holds a control or formatting character")
            }
            local = TextField.nfc(local)
        }
        let domainPart = String(trimmed[trimmed.index(after: at)...])
        guard !local.isEmpty, local.utf8.count <= 64 else {
            throw .invalidAddress(header: header, address: address, reason: "local part must have 1 to 64 characters")
        }
        guard local.unicodeScalars.allSatisfy({ Self.isAtext($0) || (utf8Local && $0.value > 0x7F) }),
              !local.hasPrefix("."), !local.hasSuffix("."), !local.containsBytes("..") else {
            throw .invalidAddress(header: header, address: address,
                                  reason: !allowUTF8LocalPart && local.utf8.contains { $0 >= 0x80 }
                                    ? "local part must be ASCII here (only recipients may have a UTF-8 local part)"
                                    : "local part may only use letters, digits and !#$%&'*+-/=?^_`{|}~ separated by single dots")
        }
        guard let ascii = IDNA.mailHost(domainPart), ascii.utf8.contains(UInt8(ascii: ".")) || ascii == "localhost" else {
            throw .invalidAddress(header: header, address: address, reason: "domain is not a valid host name")
        }
        guard local.utf8.count + 1 + ascii.utf8.count <= 254 else {
            throw .invalidAddress(header: header, address: address, reason: "address is longer than 254 characters")
        }
        let name = displayName.map(TextField.trimmed)
        self.displayName = (name?.isEmpty ?? true) ? nil : name
        self.localPart = local
        self.domain = ascii
    }

    /// Parses `Name <local@domain>`, `"Quoted, Name" <local@domain>` or a bare address,
    /// as written in `campaign.yaml`'s `sender` or a template's `reply_to`.
    public init(parsing text: String, header: String = "address") throws(MessageError) {
        try refuseLineBreaks(text, header: header)
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.hasSuffix(">"), let open = trimmed.lastIndex(of: "<") {
            var name = trimmed[..<open].trimmingCharacters(in: .whitespaces)
            if name.count >= 2, name.hasPrefix("\""), name.hasSuffix("\"") {
                name = String(name.dropFirst().dropLast())
                    .replacingOccurrences(of: "\\\"", with: "\"")
                    .replacingOccurrences(of: "\\\\", with: "\\")
            }
            let inner = String(trimmed[trimmed.index(after: open)..<trimmed.index(before: trimmed.endIndex)])
            try self.init(displayName: name, address: inner, header: header)
        } else {
            try self.init(displayName: nil, address: trimmed, header: header)
        }
    }

    /// The same mailbox with another display name.
    public func named(_ name: String?) throws(MessageError) -> MailAddress {
        try MailAddress(displayName: name, address: address)
    }

    static func isAtext(_ s: Unicode.Scalar) -> Bool {
        switch s {
        case "a"..."z", "A"..."Z", "0"..."9", "!", "#", "$", "%", "&", "'", "*", "+", "-", "/", "=", "?", "^", "_", "`",
             "{", "|", "}", "~", ".":
            return true
        default:
            return false
        }
    }
}
