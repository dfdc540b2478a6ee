import Foundation

/// RFC 3492 Punycode and the small part of IDNA that mail needs: turning a Unicode
/// domain into its ASCII (`xn--`) form for headers and the SMTP envelope.
///
/// The foundation's canonical-email helpers may replace this at merge; the behaviour
/// (NFC, lower case, per-label Punycode) is the same.
public enum Punycode {
    private static let base = 36, tMin = 1, tMax = 26, skew = 38, damp = 700
    private static let initialBias = 72, initialN = 128

    /// Encodes one label (without the `xn--` prefix); `nil` on arithmetic overflow.
    public static func encode(_ label: String) -> String? {
        let input = label.unicodeScalars.map { Int($0.value) }
        var output: [UInt8] = input.filter { $0 < 0x80 }.map { UInt8($0) }
        let basicCount = output.count
        var handled = basicCount
        if basicCount > 0 { output.append(UInt8(ascii: "-")) }
        var n = initialN, delta = 0, bias = initialBias
        while handled < input.count {
            guard let m = input.filter({ $0 >= n }).min() else { return nil }
            let (product, overflow) = (m - n).multipliedReportingOverflow(by: handled + 1)
            guard !overflow, delta <= Int(Int32.max) - product else { return nil }
            delta += product
            n = m
            for c in input {
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
                    bias = adapt(delta: delta, points: handled + 1, first: handled == basicCount)
                    delta = 0
                    handled += 1
                }
            }
            delta += 1
            n += 1
        }
        return String(decoding: output, as: UTF8.self)
    }

    private static func digit(_ d: Int) -> UInt8 {
        d < 26 ? UInt8(ascii: "a") + UInt8(d) : UInt8(ascii: "0") + UInt8(d - 26)
    }

    private static func adapt(delta: Int, points: Int, first: Bool) -> Int {
        var delta = first ? delta / damp : delta / 2
        delta += delta / points
        var k = 0
        while delta > ((base - tMin) * tMax) / 2 {
            delta /= base - tMin
            k += base
        }
        return k + (base - tMin + 1) * delta / (delta + skew)
    }

    /// The ASCII form of a domain: NFC, lower-cased, each non-ASCII label as `xn--…`.
    /// Returns `nil` when the domain is not a valid host name (empty label, label over
    /// 63 octets, name over 253 octets, characters outside letters, digits and hyphen).
    public static func asciiDomain(_ domain: String) -> String? {
        // Fast path: already a lower-case ASCII host name.
        if !domain.isEmpty, domain.utf8.count <= 253,
           domain.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x2E }) {
            let labels = domain.utf8.split(separator: 0x2E, omittingEmptySubsequences: false)
            if labels.allSatisfy({ !$0.isEmpty && $0.count <= 63 && $0.first != 0x2D && $0.last != 0x2D }) { return domain }
        }
        let normalized = domain.precomposedStringWithCanonicalMapping.lowercased()
        // IDNA treats these full stops as label separators too.
        let dotted = normalized.map { "\u{3002}\u{FF0E}\u{FF61}".contains($0) ? "." : $0 }
        var text = String(dotted)
        if text.hasSuffix(".") { text.removeLast() }
        var labels: [String] = []
        for label in text.split(separator: ".", omittingEmptySubsequences: false) {
            let ascii: String
            if label.unicodeScalars.allSatisfy({ $0.isASCII }) {
                ascii = String(label)
            } else {
                guard label.unicodeScalars.allSatisfy({ $0.value > 0x7F || isLDH($0) }),
                      let encoded = encode(String(label)) else { return nil }
                ascii = "xn--" + encoded
            }
            guard !ascii.isEmpty, ascii.utf8.count <= 63,
                  ascii.unicodeScalars.allSatisfy(isLDH),
                  !ascii.hasPrefix("-"), !ascii.hasSuffix("-") else { return nil }
            labels.append(ascii)
        }
        let result = labels.joined(separator: ".")
        guard !result.isEmpty, result.utf8.count <= 253 else { return nil }
        return result
    }

    private static func isLDH(_ s: Unicode.Scalar) -> Bool {
        switch s {
        case "a"..."z", "A"..."Z", "0"..."9", "-": return true
        default: return false
        }
    }
}
