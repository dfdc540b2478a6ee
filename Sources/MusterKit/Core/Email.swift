import Synchronization
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

    /// The canonical form: trimmed, NFC, lower-cased, the domain IDNA-encoded (xn--).
    ///
    /// Two addresses that differ only in case, Unicode normalisation, surrounding
    /// space or the IDN/xn-- spelling of their domain are the same signer.
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
        for byte in bytes[(at + 1)...] {
            if byte == 0x2E {
                guard labelLength > 0, previous != 0x2D else { return nil }
                labels += 1
                labelLength = 0
            } else {
                let allowed = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x2D
                guard allowed, !(labelLength == 0 && byte == 0x2D) else { return nil }
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

    /// Returns the domain in ASCII (IDNA: each non-ASCII label as xn-- punycode).
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
        // UTS 46: ideographic and fullwidth full stops separate labels too.
        let unified = domain.utf8.allSatisfy({ $0 < 0x80 }) ? domain : domain.replacingOccurrences(of: "\u{3002}", with: ".")
            .replacingOccurrences(of: "\u{FF0E}", with: ".")
            .replacingOccurrences(of: "\u{FF61}", with: ".")
        var labels = unified.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        if labels.count > 1, labels.last == "" { labels.removeLast() } // trailing root dot
        guard labels.count >= 2 else { throw .domain("it needs a dot, as in example.org") }
        var ascii: [String] = []
        for label in labels {
            guard !label.isEmpty else { throw .domain("empty label between dots") }
            let encoded: String
            if label.unicodeScalars.allSatisfy({ $0.isASCII }) {
                encoded = label
            } else {
                guard let punycode = Punycode.encode(label) else { throw .domain("cannot encode \(label)") }
                encoded = "xn--" + punycode
            }
            guard encoded.utf8.count <= 63 else { throw .domain("a label is longer than 63 characters") }
            guard encoded.unicodeScalars.allSatisfy({ ($0.value >= 97 && $0.value <= 122) || ($0.value >= 48 && $0.value <= 57) || $0 == "-" }) else {
                throw .domain("only letters, digits and hyphens are allowed")
            }
            guard !encoded.hasPrefix("-"), !encoded.hasSuffix("-") else {
                throw .domain("a label starts or ends with a hyphen")
            }
            ascii.append(encoded)
        }
        let result = ascii.joined(separator: ".")
        guard result.utf8.count <= 253 else { throw .domain("longer than 253 characters") }
        return result
    }
}

/// Punycode (RFC 3492), the encoding behind IDNA's xn-- labels.
public enum Punycode {
    private static let base = 36, tMin = 1, tMax = 26, skew = 38, damp = 700
    private static let initialBias = 72, initialN = 128

    private static func digit(_ value: Int) -> Character {
        Character(UnicodeScalar(UInt8(value < 26 ? value + 97 : value + 22)))
    }

    private static func adapt(_ delta: Int, _ numPoints: Int, _ firstTime: Bool) -> Int {
        var delta = firstTime ? delta / damp : delta / 2
        delta += delta / numPoints
        var k = 0
        while delta > ((base - tMin) * tMax) / 2 {
            delta /= base - tMin
            k += base
        }
        return k + (base - tMin + 1) * delta / (delta + skew)
    }

    /// A host name in ASCII: each non-ASCII label as `xn--…`, lower-cased; nil when it
    /// is not a valid host name (`localhost` is accepted, for test relays).
    public static func asciiDomain(_ domain: String) -> String? {
        // A blast converts the same few domains over and over: remember recent answers.
        if let known = recentDomains.withLock({ $0[domain] }) { return known }
        let prepared = TextField.nfc(domain).lowercased()
        let ascii = prepared == "localhost" ? prepared : try? EmailAddress.canonicalDomain(prepared)
        recentDomains.withLock { cache in
            if cache.count >= 4096 { cache.removeAll(keepingCapacity: true) }
            cache[domain] = .some(ascii)
        }
        return ascii
    }

    private static let recentDomains = Mutex<[String: String?]>([:])

    /// Encodes a label (without the xn-- prefix); nil on overflow.
    public static func encode(_ input: String) -> String? {
        let scalars = input.unicodeScalars.map { Int($0.value) }
        var output = String(input.unicodeScalars.filter(\.isASCII).map(Character.init))
        let basicCount = output.count
        var handled = basicCount
        if basicCount > 0 { output.append("-") }
        var n = initialN, delta = 0, bias = initialBias
        while handled < scalars.count {
            guard let m = scalars.filter({ $0 >= n }).min() else { break }
            let (product, overflow) = (m - n).multipliedReportingOverflow(by: handled + 1)
            guard !overflow else { return nil }
            delta += product
            n = m
            for c in scalars {
                if c < n { delta += 1 }
                if c == n {
                    var q = delta
                    var k = base
                    while true {
                        let t = k <= bias ? tMin : (k >= bias + tMax ? tMax : k - bias)
                        if q < t { break }
                        output.append(digit(t + (q - t) % (base - t)))
                        q = (q - t) / (base - t)
                        k += base
                    }
                    output.append(digit(q))
                    bias = adapt(delta, handled + 1, handled == basicCount)
                    delta = 0
                    handled += 1
                }
            }
            delta += 1
            n += 1
        }
        return output
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
