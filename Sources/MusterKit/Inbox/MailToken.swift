import Crypto
import Foundation

/// The token muster puts in each blast message's `Message-ID` (`muster.<token>@domain`)
/// and, with VERP, in its envelope sender (`bounces+<token>@domain`): it names the
/// outbox row the message was sent for, and only the ledger that sent it can make or
/// check one.
///
/// 22 bytes, written in lower-case base32 (RFC 4648 alphabet, no padding: 36 letters
/// and digits, so a relay that lower-cases local parts changes nothing):
///
/// - 4 bytes: the first bytes of SHA-256 of the template name (which template);
/// - 8 bytes: the first bytes of the recipient's outbox key, the ledger's keyed
///   fingerprint of the address (which row; reveals nothing without the ledger's key);
/// - 10 bytes: HMAC-SHA256 under the ledger's `mail_token_key` of
///   `"muster-mail-token" 0x00 campaign 0x00 template 0x00 recipient-key`, cut to 80 bits.
///
/// A bounce, complaint or reply is tied to a recipient only through a token whose code
/// checks against an existing outbox row: prose naming an address ties nothing.
public struct MailToken: Sendable, Equatable {
    public let templateTag: [UInt8]
    public let recipientPrefix: String
    public let code: [UInt8]

    public static let byteCount = 22
    public static let textLength = 36

    /// The token's text.
    public var text: String {
        Base32.encode(templateTag + Self.hexBytes(recipientPrefix) + code)
    }

    /// Reads a token's text (any case); nil when it is not one.
    public init?(text: some StringProtocol) {
        guard text.utf8.count == Self.textLength, let bytes = Base32.decode(text.lowercased()), bytes.count == Self.byteCount else { return nil }
        templateTag = Array(bytes[0..<4])
        recipientPrefix = Hex.encode(bytes[4..<12])
        code = Array(bytes[12..<22])
    }

    init(templateTag: [UInt8], recipientPrefix: String, code: [UInt8]) {
        self.templateTag = templateTag
        self.recipientPrefix = recipientPrefix
        self.code = code
    }

    static func hexBytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var high: UInt8?
        for byte in hex.utf8 {
            guard let value = Hex.value(ofDigit: byte) else { return out }
            if let h = high { out.append(h << 4 | value); high = nil } else { high = value }
        }
        return out
    }

    static func templateTag(_ template: String) -> [UInt8] {
        Array(SHA256.hash(data: Data(template.utf8)).prefix(4))
    }
}

/// Makes and checks `MailToken`s under one ledger's key.
public struct MailTokenKey: Sendable {
    private let hash: KeyedHash

    init(key: [UInt8]) { hash = KeyedHash(key: key) }

    /// The token of (campaign, template, recipient key).
    public func token(campaign: String, template: String, recipient: String) -> MailToken {
        MailToken(templateTag: MailToken.templateTag(template), recipientPrefix: String(recipient.prefix(16)),
                  code: code(campaign: campaign, template: template, recipient: recipient))
    }

    /// Whether `token` is this ledger's token of (campaign, template, recipient).
    public func verify(_ token: MailToken, campaign: String, template: String, recipient: String) -> Bool {
        guard token.templateTag == MailToken.templateTag(template), recipient.hasPrefix(token.recipientPrefix) else { return false }
        let expected = code(campaign: campaign, template: template, recipient: recipient)
        // Constant time over the code.
        var difference: UInt8 = 0
        for (a, b) in zip(expected, token.code) { difference |= a ^ b }
        return difference == 0 && token.code.count == expected.count
    }

    private func code(campaign: String, template: String, recipient: String) -> [UInt8] {
        Array(hash.code("muster-mail-token\u{0}\(campaign)\u{0}\(template)\u{0}\(recipient)").prefix(10))
    }
}

/// RFC 4648 base32 in lower case, without padding.
enum Base32 {
    static let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        var buffer: UInt32 = 0, bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                out.append(alphabet[Int((buffer >> UInt32(bits - 5)) & 31)])
                bits -= 5
            }
        }
        if bits > 0 { out.append(alphabet[Int((buffer << UInt32(5 - bits)) & 31)]) }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        var buffer: UInt32 = 0, bits = 0
        for byte in text.utf8 {
            let value: UInt32
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = UInt32(byte - UInt8(ascii: "a"))
            case UInt8(ascii: "2")...UInt8(ascii: "7"): value = UInt32(byte - UInt8(ascii: "2") + 26)
            default: return nil
            }
            buffer = (buffer << 5) | value
            bits += 5
            if bits >= 8 {
                out.append(UInt8((buffer >> UInt32(bits - 8)) & 0xFF))
                bits -= 8
            }
        }
        // Leftover bits must be zero padding.
        if bits > 0 && (buffer & ((1 << UInt32(bits)) - 1)) != 0 { return nil }
        return out
    }
}

/// VERP (variable envelope return path): each message's envelope sender carries its
/// `MailToken`, `local+TOKEN@domain`, so that a bounce names the message it is about in
/// the address it is delivered to, whatever the bouncing server writes in it.
public enum VERP {
    /// The longest local part of the base address: with `+` and the token it must fit
    /// in the 64 octets RFC 5321 allows.
    static let maxLocalPart = 64 - 1 - MailToken.textLength

    /// `local+token@domain` from `local@domain`.
    public static func address(base: String, token: String) -> String {
        guard let at = base.lastIndex(of: "@") else { return base }
        return base[..<at] + "+" + token + base[at...]
    }

    /// Why `address` cannot be a VERP base address, or nil when it can.
    public static func problem(_ address: String) -> String? {
        guard let at = address.lastIndex(of: "@") else { return "must be an address such as bounces@example.org, not '\(address)'" }
        let local = address[..<at], domain = address[address.index(after: at)...]
        let atext = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*/=?^_`{|}~-.".utf8)
        guard !local.isEmpty, local.utf8.allSatisfy(atext.contains), !local.hasPrefix("."), !local.hasSuffix("."), !local.contains("..") else {
            return "must have a plain ASCII local part without '+' (as in bounces@example.org), not '\(address)'"
        }
        guard local.utf8.count <= maxLocalPart else {
            return "has a local part of \(local.utf8.count) characters; with '+' and the \(MailToken.textLength)-character token it must fit in 64, so at most \(maxLocalPart)"
        }
        guard DKIMSigner.isDomain(String(domain)) else { return "must end in a domain name in ASCII, as in example.org, not '\(address)'" }
        return nil
    }
}
