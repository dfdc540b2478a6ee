import CIDN2
import Synchronization

/// Domain names as mail is delivered to them: UTS #46 processing (non-transitional) with
/// IDNA2008 validation, through Debian's libidn2 (the library curl uses for IDN host
/// names), plus the few rules libidn2 leaves to its caller (README, "Who counts as one person").
///
/// - Fullwidth and compatibility forms are mapped (`ｅｘａｍｐｌｅ.org` → `example.org`,
///   `ⅷ` → `viii`); upper case is folded; NFC is applied.
/// - U+3002 `。`, U+FF0E `．` and U+FF61 `｡` separate labels like `.`.
/// - Every label must be letters, digits and hyphens once encoded (STD3), not start or
///   end with a hyphen, 1…63 octets; the whole name at most 253.
/// - Code points IDNA2008 disallows are refused, naming the character.
/// - Rules muster adds (documented, asserted in the differential test): in one label, an
///   Arabic-Indic digit beside a European digit is refused (RFC 5893 rule 4, which
///   libidn2 2.3.3 does not check); so is mixing Latin, Greek and Cyrillic letters in one
///   label (the classic look-alike spoof, which no registry allows). An all-ASCII label
///   with `--` in positions 3–4 that is not an `xn--` label is accepted as typed (such
///   host names exist and receive mail).
public enum IDNA {
    /// Why a domain was refused; `description` is the sentence shown to the user.
    public enum Failure: Error, Equatable, Sendable, CustomStringConvertible {
        case empty
        /// Two dots in a row, or a label whose characters all map to nothing (U+00AD …).
        case emptyLabel
        /// A code point IDNA2008/UTS #46 disallows (symbols, unassigned, …).
        case disallowed(Unicode.Scalar)
        /// A character that maps to something other than a letter, digit or hyphen.
        case notLetterDigitHyphen(Unicode.Scalar)
        case hyphenAtEdge
        case labelTooLong
        case tooLong
        /// RFC 5893's rules for right-to-left text.
        case bidi
        /// ZERO WIDTH JOINER / NON-JOINER where RFC 5892 does not allow them.
        case joiner
        case leadingCombiningMark
        /// An `xn--` label that is not valid Punycode of a valid label.
        case invalidALabel(String)
        /// Letters from two of Latin, Greek and Cyrillic in one label.
        case mixedScripts(String, String)
        /// Any other libidn2 refusal, with its message.
        case other(String)

        public var description: String {
            switch self {
            case .empty: return "it is empty"
            case .emptyLabel: return "empty label between dots"
            case .disallowed(let scalar): return "\(IDNA.show(scalar)) is not allowed in a domain name"
            case .notLetterDigitHyphen(let scalar):
                return scalar.isASCII
                    ? "only letters, digits and hyphens are allowed"
                    : "\(IDNA.show(scalar)) is not allowed in a domain name: only letters, digits and hyphens are"
            case .hyphenAtEdge: return "a label starts or ends with a hyphen"
            case .labelTooLong: return "a label is longer than 63 characters once encoded"
            case .tooLong: return "longer than 253 characters once encoded"
            case .bidi: return "mixes right-to-left and left-to-right characters in a way IDNA forbids (RFC 5893)"
            case .joiner: return "has a zero-width joiner or non-joiner where IDNA forbids it"
            case .leadingCombiningMark: return "a label starts with a combining mark"
            case .invalidALabel(let label): return "\(label) is not a valid xn-- label"
            case .mixedScripts(let a, let b): return "mixes \(a) and \(b) letters in one label"
            case .other(let message): return message
            }
        }
    }

    /// `U+2260 (≠)`: how a refused character is named.
    static func show(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16, uppercase: true)
        return "U+\(String(repeating: "0", count: max(0, 4 - hex.count)))\(hex) (\(scalar))"
    }

    /// The ASCII (A-label) form of `domain`: UTS #46 ToASCII, non-transitional,
    /// CheckHyphens, CheckBidi, CheckJoiners, UseSTD3ASCIIRules and VerifyDnsLength, with
    /// IDNA2008 validation. A final empty (root) label is kept as a trailing dot.
    public static func toASCII(_ domain: String) throws(Failure) -> String {
        guard !domain.isEmpty else { throw .empty }
        var labels = split(domain)
        var root = false
        if labels.count > 1, labels.last?.isEmpty == true {
            labels.removeLast()
            root = true
        }
        var ascii: [String] = []
        ascii.reserveCapacity(labels.count)
        for label in labels {
            ascii.append(try labelToASCII(label))
        }
        let result = ascii.joined(separator: ".")
        guard result.utf8.count <= 253 else { throw .tooLong }
        return root ? result + "." : result
    }

    /// Labels of `domain`, split at `.` and the three other full stops UTS #46 maps to it.
    static func split(_ domain: String) -> [Substring.UnicodeScalarView] {
        domain.unicodeScalars.split(omittingEmptySubsequences: false) {
            $0 == "." || $0 == "\u{3002}" || $0 == "\u{FF0E}" || $0 == "\u{FF61}"
        }
    }

    static func labelToASCII(_ label: Substring.UnicodeScalarView) throws(Failure) -> String {
        guard !label.isEmpty else { throw .emptyLabel }
        if label.allSatisfy(\.isASCII) {
            let lower = String(String.UnicodeScalarView(label)).lowercased()
            for scalar in lower.unicodeScalars where !isLDH(scalar) { throw .notLetterDigitHyphen(scalar) }
            guard !lower.hasPrefix("-"), !lower.hasSuffix("-") else { throw .hyphenAtEdge }
            guard lower.utf8.count <= 63 else { throw .labelTooLong }
            // An A-label is decoded and checked like any other label; other ASCII labels are
            // final (libidn2 would refuse `ab--cd`, a host name that exists and gets mail).
            guard lower.hasPrefix("xn--") else { return lower }
            let checked = try viaLibidn2(String(String.UnicodeScalarView(label)))
            guard checked == lower else { throw .invalidALabel(lower) }
            return checked
        }
        return try viaLibidn2(String(String.UnicodeScalarView(label)))
    }

    /// One label through libidn2, then the checks muster adds on its result.
    private static func viaLibidn2(_ label: String) throws(Failure) -> String {
        // A C string ends at NUL: never let libidn2 see only the part before it.
        if label.utf8.contains(0) { throw .disallowed("\u{0}") }
        let encoded: String
        switch convert(label) {
        case .success(let output): encoded = output
        case .failure(let code): throw failure(code, label: label)
        }
        guard !encoded.isEmpty else { throw .emptyLabel }
        for scalar in encoded.unicodeScalars where !isLDH(scalar) {
            throw .notLetterDigitHyphen(culprit(in: label) ?? scalar)
        }
        guard !encoded.hasPrefix("-"), !encoded.hasSuffix("-") else { throw .hyphenAtEdge }
        guard encoded.utf8.count <= 63 else { throw .labelTooLong }
        if encoded.hasPrefix("xn--"), let unicode = decode(encoded) {
            try checkULabel(unicode.unicodeScalars)
        }
        return encoded
    }

    /// What libidn2 leaves unchecked, on the U-label (after mapping).
    static func checkULabel(_ scalars: String.UnicodeScalarView) throws(Failure) {
        var european = false, arabicIndic = false
        var scripts: [String] = []
        for scalar in scalars {
            switch scalar.value {
            // ≠ ≮ ≯: valid for UTS #46 without STD3 (they decompose to = < > plus U+0338),
            // disallowed with it and by IDNA2008; libidn2 passes them when STD3 is off.
            case 0x2260, 0x226E, 0x226F: throw .disallowed(scalar)
            case 0x30...0x39, 0x6F0...0x6F9: european = true
            case 0x660...0x669, 0x10D30...0x10D39: arabicIndic = true
            default: break
            }
            if let script = letterScript(scalar), !scripts.contains(script) { scripts.append(script) }
        }
        // A label holding an AN digit makes the name a Bidi domain name (RFC 5893 §1.4);
        // an LTR label may not hold AN (rule 5), an RTL label may not mix EN and AN (rule 4).
        if european && arabicIndic { throw .bidi }
        if scripts.count > 1 { throw .mixedScripts(scripts[0], scripts[1]) }
    }

    /// Latin, Greek or Cyrillic for a letter of those scripts, nil for anything else.
    static func letterScript(_ scalar: Unicode.Scalar) -> String? {
        switch scalar.value {
        case 0x61...0x7A, 0xDF...0xF6, 0xF8...0x24F, 0x250...0x2AF, 0x1D00...0x1D25, 0x1E00...0x1EFF,
             0x2C60...0x2C7F, 0xA720...0xA7FF, 0xAB30...0xAB5A: return "Latin"
        case 0x370...0x373, 0x376...0x377, 0x37B...0x37D, 0x386...0x3FF, 0x1F00...0x1FFF: return "Greek"
        case 0x400...0x482, 0x48A...0x52F, 0x1C80...0x1C8F, 0xA640...0xA66E, 0xA680...0xA69D: return "Cyrillic"
        default: return nil
        }
    }

    static func isLDH(_ scalar: Unicode.Scalar) -> Bool {
        (scalar.value >= 0x61 && scalar.value <= 0x7A) || (scalar.value >= 0x30 && scalar.value <= 0x39) || scalar == "-"
    }

    /// libidn2's ToASCII of `text` (NFC, non-transitional, IDNA2008), or its error code.
    static func convert(_ text: String) -> Result<String, LibIDN2Error> {
        var output: UnsafeMutablePointer<CChar>?
        let code = idn2_to_ascii_8z(text, &output, muster_idn2_flags)
        guard code == muster_idn2_ok, let output else { return .failure(LibIDN2Error(code: code)) }
        defer { idn2_free(output) }
        return .success(String(cString: output))
    }

    /// The U-label of an A-label, nil if libidn2 cannot decode it.
    static func decode(_ alabel: String) -> String? {
        var output: UnsafeMutablePointer<CChar>?
        let code = idn2_to_unicode_8z8z(alabel, &output, 0)
        guard code == muster_idn2_ok, let output else { return nil }
        defer { idn2_free(output) }
        return String(cString: output)
    }

    /// A libidn2 return code.
    struct LibIDN2Error: Error { let code: Int32 }

    /// The user-facing failure for libidn2's `code` on `label`.
    static func failure(_ error: LibIDN2Error, label: String) -> Failure {
        switch error.code {
        case muster_idn2_disallowed, muster_idn2_unassigned, muster_idn2_invalid_nontransitional, muster_idn2_invalid_transitional:
            if label.lowercased().hasPrefix("xn--"), label.unicodeScalars.allSatisfy(\.isASCII) {
                return .invalidALabel(label.lowercased())
            }
            if let scalar = culprit(in: label) { return .disallowed(scalar) }
            return .other(message(error.code))
        case muster_idn2_bidi: return .bidi
        case muster_idn2_contextj, muster_idn2_contexto: return .joiner
        case muster_idn2_leading_combining: return .leadingCombiningMark
        case muster_idn2_hyphen_startend: return .hyphenAtEdge
        case muster_idn2_too_big_label, muster_idn2_punycode_big_output, muster_idn2_punycode_overflow: return .labelTooLong
        case muster_idn2_too_big_domain: return .tooLong
        case muster_idn2_punycode_bad_input, muster_idn2_invalid_alabel, muster_idn2_alabel_roundtrip_failed, muster_idn2_2hyphen:
            return label.unicodeScalars.allSatisfy(\.isASCII) ? .invalidALabel(label.lowercased()) : .other(message(error.code))
        default: return .other(message(error.code))
        }
    }

    private static func message(_ code: Int32) -> String {
        guard let text = idn2_strerror(code) else { return "refused by libidn2 (\(code))" }
        return String(cString: text)
    }

    /// The first character of `label` that is refused (or maps to something other than a
    /// letter, digit or hyphen) on its own, after a harmless `a`.
    static func culprit(in label: String) -> Unicode.Scalar? {
        for scalar in label.unicodeScalars {
            if scalar.isASCII {
                if !isLDH(scalar) && !(scalar.value >= 0x41 && scalar.value <= 0x5A) { return scalar }
                continue
            }
            switch convert("a" + String(scalar)) {
            case .failure(let error):
                if [muster_idn2_disallowed, muster_idn2_unassigned, muster_idn2_invalid_nontransitional].contains(error.code) { return scalar }
            case .success(let output):
                if !output.unicodeScalars.allSatisfy(isLDH) { return scalar }
                if output.hasPrefix("xn--"), let unicode = decode(output),
                   unicode.unicodeScalars.contains(where: { [0x2260, 0x226E, 0x226F].contains($0.value) }) { return scalar }
            }
        }
        return nil
    }

    /// A host name in ASCII for the mail code (`localhost` accepted, for test relays);
    /// nil when it is not a valid domain. Recent answers are remembered: a blast converts
    /// the same few domains over and over.
    public static func mailHost(_ domain: String) -> String? {
        if let known = recentHosts.withLock({ $0[domain] }) { return known }
        let prepared = TextField.nfc(domain).lowercased()
        let ascii = prepared == "localhost" ? prepared : try? EmailAddress.canonicalDomain(prepared)
        recentHosts.withLock { cache in
            if cache.count >= 4096 { cache.removeAll(keepingCapacity: true) }
            cache[domain] = .some(ascii)
        }
        return ascii
    }

    private static let recentHosts = Mutex<[String: String?]>([:])
}
