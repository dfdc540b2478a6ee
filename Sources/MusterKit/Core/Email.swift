import Foundation

/// Email addresses: syntax (an RFC 5321 mailbox, with UTF-8 allowed as RFC 6531 does)
/// and the canonical form signatures are deduplicated on.
public enum EmailAddress {
    /// Why an address was refused.
    public enum Problem: Error, Equatable, CustomStringConvertible {
        case empty
        case controlCharacter
        case invalidUTF8
        case noAt
        case localPart(String)
        case domain(String)
        case tooLong

        public var description: String {
            switch self {
            case .empty: return "is empty"
            case .controlCharacter: return "contains a line break or control character"
            case .invalidUTF8: return "contains invalid UTF-8 (shown as U+FFFD)"
            case .noAt: return "has no @"
            case .localPart(let why): return "has an invalid part before the @ (\(why))"
            case .domain(let why): return "has an invalid domain (\(why))"
            case .tooLong: return "is longer than 254 characters"
            }
        }
    }

    /// The canonical form: trimmed, NFC, lower-cased, the domain as mail is delivered to
    /// it (`IDNA.toASCII`: UTS #46 through libidn2, A-labels).
    ///
    /// Two addresses that differ only in case, Unicode normalisation, surrounding
    /// space, the IDN/xn-- spelling of their domain, or its fullwidth, compatibility and
    /// full-stop variants are the same address. (Who is the same *person* — tags, dots,
    /// provider aliases — is `MailboxKey`'s question.)
    public static func canonical(_ raw: String) throws(Problem) -> String {
        if let plain = plainASCIICanonical(raw) { return plain }
        for scalar in raw.unicodeScalars where TextField.isForbidden(scalar) && scalar != "\t" {
            throw scalar == "\u{FFFD}" ? .invalidUTF8 : .controlCharacter
        }
        let trimmed = TextField.trimmed(raw)
        guard !trimmed.isEmpty else { throw .empty }
        for scalar in trimmed.unicodeScalars where TextField.isForbidden(scalar) {
            throw .controlCharacter
        }
        let normalized = TextField.nfc(trimmed).lowercased()
        guard let at = normalized.lastIndex(of: "@") else { throw .noAt }
        let local = String(normalized[..<at])
        let domain = String(normalized[normalized.index(after: at)...])
        try validateLocalPart(local)
        let asciiDomain = try canonicalDomain(domain)
        let address = local + "@" + asciiDomain
        guard address.utf8.count <= 254 else { throw .tooLong }
        return address
    }

    private static let atextSymbols = Set("!#$%&'*+-/=?^_`{|}~".unicodeScalars)

    /// The canonical form of the common case — printable ASCII, a dot-atom local part, a
    /// host name domain — checked byte by byte; nil for anything else, which then takes
    /// the full path (and its precise error). Accepts only what the full path accepts,
    /// and returns what it would.
    static func plainASCIICanonical(_ raw: String) -> String? {
        var bytes = Array(raw.utf8)
        guard !bytes.isEmpty, bytes.count <= 254 else { return nil }
        var at = -1
        for (index, byte) in bytes.enumerated() {
            guard byte > 0x20, byte < 0x7F else { return nil }
            if byte >= 0x41 && byte <= 0x5A { bytes[index] = byte | 0x20 }
            if byte == 0x40 { at = index }
        }
        guard at > 0, at <= 64, at < bytes.count - 1 else { return nil }
        // Local part: dot-atom of atext.
        var previousDot = true
        for byte in bytes[..<at] {
            if byte == 0x2E {
                if previousDot { return nil }
                previousDot = true
                continue
            }
            previousDot = false
            let isAlnum = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x7A)
            guard isAlnum || atextBytes.contains(byte) else { return nil }
        }
        if previousDot { return nil }
        // Domain: at least two labels of [a-z0-9-], 1…63 long, no hyphen at either end.
        let domainCount = bytes.count - at - 1
        guard domainCount <= 253 else { return nil }
        var labels = 0, labelLength = 0
        var previous: UInt8 = 0x2E
        for (domainOffset, byte) in bytes[(at + 1)...].enumerated() {
            if byte == 0x2E {
                guard labelLength > 0, previous != 0x2D else { return nil }
                labels += 1
                labelLength = 0
            } else {
                let allowed = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x2D
                guard allowed, !(labelLength == 0 && byte == 0x2D) else { return nil }
                // An xn-- label is Punycode to decode and check: the full path does that.
                if labelLength == 3, byte == 0x2D, previous == 0x2D {
                    let index = at + 1 + domainOffset
                    if bytes[index - 3] == 0x78, bytes[index - 2] == 0x6E { return nil }
                }
                labelLength += 1
                guard labelLength <= 63 else { return nil }
            }
            previous = byte
        }
        guard labelLength > 0, previous != 0x2D, labels >= 1 else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static let atextBytes = Set("!#$%&'*+-/=?^_`{|}~".utf8)

    static func validateLocalPart(_ local: String) throws(Problem) {
        guard !local.isEmpty else { throw .localPart("it is empty") }
        guard local.utf8.count <= 64 else { throw .localPart("longer than 64 octets") }
        if local.hasPrefix("\"") {
            // quoted-string: printable characters, backslash escapes allowed
            guard local.count >= 2, local.hasSuffix("\"") else { throw .localPart("unbalanced quote") }
            var escaped = false
            for scalar in local.unicodeScalars.dropFirst().dropLast() {
                if escaped { escaped = false; continue }
                if scalar == "\\" { escaped = true; continue }
                if scalar == "\"" { throw .localPart("unescaped quote") }
            }
            if escaped { throw .localPart("ends in a backslash") }
            return
        }
        // dot-string of atext (RFC 5322), UTF-8 allowed (RFC 6531)
        for atom in local.split(separator: ".", omittingEmptySubsequences: false) {
            guard !atom.isEmpty else { throw .localPart("empty label between dots") }
            for scalar in atom.unicodeScalars {
                let ok = scalar.value > 127
                    || (scalar.value >= 48 && scalar.value <= 57)
                    || (scalar.value >= 97 && scalar.value <= 122)
                    || (scalar.value >= 65 && scalar.value <= 90)
                    || Self.atextSymbols.contains(scalar)
                if !ok {
                    let shown = scalar == " " ? "a space" : "\"\(scalar)\""
                    throw .localPart("\(shown) is not allowed there")
                }
            }
        }
    }

    /// The domain mail is delivered to, in ASCII (A-labels): `IDNA.toASCII` (libidn2,
    /// UTS #46 non-transitional, IDNA2008), without a final root dot, at least two labels.
    /// An address literal (`[192.0.2.1]`) is kept as typed.
    static func canonicalDomain(_ domain: String) throws(Problem) -> String {
        guard !domain.isEmpty else { throw .domain("it is empty") }
        if domain.hasPrefix("[") {
            guard domain.hasSuffix("]"), domain.count > 2 else { throw .domain("unbalanced bracket") }
            let literal = domain.dropFirst().dropLast()
            let allowed = CharacterSet(charactersIn: "0123456789abcdef.:ipv6")
            guard literal.unicodeScalars.allSatisfy(allowed.contains) else {
                throw .domain("not an address literal")
            }
            return domain
        }
        var ascii: String
        do {
            ascii = try IDNA.toASCII(domain)
        } catch {
            throw .domain(error.description)
        }
        if ascii.hasSuffix(".") { ascii.removeLast() } // the root label: example.org. is example.org
        guard ascii.contains(".") else {
            throw .domain(ascii.isEmpty ? "empty label between dots" : "it needs a dot, as in example.org")
        }
        return ascii
    }
}

/// Rules for free-text values typed by signers and organisers.
public enum TextField {
    /// Characters refused in every value: C0/C1 controls (CR, LF, NUL, tab, …),
    /// Unicode line and paragraph separators, bidi overrides, and U+FFFD (the mark
    /// left by invalid UTF-8).
    public static func isForbidden(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: return true
        case 0x2028, 0x2029: return true
        case 0x202A...0x202E, 0x2066...0x2069: return true
        case 0xFFFD: return true
        default: return false
        }
    }

    /// A description of the first forbidden character in `value`, if any.
    public static func forbiddenCharacter(in value: String) -> String? {
        if allBytes(of: value, in: 0x20..<0x7F) { return nil }
        for (offset, scalar) in value.unicodeScalars.enumerated() where isForbidden(scalar) {
            let name: String
            switch scalar.value {
            case 0x0D: name = "a carriage return (CR)"
            case 0x0A: name = "a line feed (LF)"
            case 0x00: name = "a NUL byte"
            case 0x09: name = "a tab"
            case 0xFFFD: name = "invalid UTF-8 (U+FFFD)"
            default: name = String(format: "the control character U+%04X", scalar.value)
            }
            return "\(name) at character \(offset + 1)"
        }
        return nil
    }

    /// Trims surrounding white space and normalises to NFC.
    public static func clean(_ value: String) -> String {
        nfc(trimmed(value))
    }

    /// `value` without leading and trailing spaces and tabs (Unicode spaces too).
    static func trimmed(_ value: String) -> String {
        // Fast path: nothing to trim when both ends are visible ASCII.
        if let first = value.utf8.first, let last = value.utf8.last, first > 32, first < 127, last > 32, last < 127 { return value }
        let scalars = value.unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace || $0 == "\n" || $0 == "\r" }) else { return "" }
        let last = scalars.lastIndex(where: { !$0.properties.isWhitespace || $0 == "\n" || $0 == "\r" })!
        if first == scalars.startIndex && last == scalars.index(before: scalars.endIndex) { return value }
        return String(scalars[first...last])
    }

    /// Unicode normalisation form C; ASCII text is already in it.
    static func nfc(_ value: String) -> String {
        allBytes(of: value, in: 0..<0x80) ? value : value.precomposedStringWithCanonicalMapping
    }

    /// Whether every UTF-8 byte of `value` is in `range` (checked on its contiguous storage).
    static func allBytes(of value: String, in range: Range<UInt8>) -> Bool {
        value.utf8.withContiguousStorageIfAvailable { bytes in
            for byte in bytes where !range.contains(byte) { return false }
            return true
        } ?? value.utf8.allSatisfy { range.contains($0) }
    }
}
