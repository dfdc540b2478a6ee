import Foundation
import Testing
@testable import MusterKit

@Suite struct IDNATests {
    /// The spellings issue 15 found counted twice are one address now.
    @Test(arguments: [
        ("k@ｅｘａｍｐｌｅ.org", "k@example.org"),
        ("m@example。org", "m@example.org"),
        ("m@example．org", "m@example.org"),
        ("m@example｡org", "m@example.org"),
        ("c@ⅷ.example", "c@viii.example"),
        ("c@ℌ.example", "c@h.example"),
        ("c@①.example", "c@1.example"),
        ("ana@bü\u{AD}cher.example", "ana@xn--bcher-kva.example"),
        ("ana@BÜCHER.EXAMPLE", "ana@xn--bcher-kva.example"),
        ("ana@faß.de", "ana@xn--fa-hia.de"),
        ("ana@XN--BCHER-KVA.example", "ana@xn--bcher-kva.example"),
        ("ana@ab--cd.example", "ana@ab--cd.example"),
    ])
    func variantsAreOneAddress(input: String, expected: String) throws {
        #expect(try EmailAddress.canonical(input) == expected)
    }

    /// Bad domains are refused with a message that says what is wrong, naming the character.
    @Test(arguments: [
        ("ana@\u{AD}.org", "empty label between dots"),
        ("ana@\u{AD}\u{200B}.org", "empty label between dots"),
        ("ana@" + String(repeating: "ａ", count: 64) + ".org", "a label is longer than 63 characters once encoded"),
        ("ana@" + String(repeating: "ü", count: 60) + ".org", "a label is longer than 63 characters once encoded"),
        ("ana@1ا.com", "mixes right-to-left and left-to-right characters in a way IDNA forbids (RFC 5893)"),
        ("ana@א0٠.com", "mixes right-to-left and left-to-right characters in a way IDNA forbids (RFC 5893)"),
        ("ana@раypal.com", "mixes Cyrillic and Latin letters in one label"),
        ("ana@pαypal.com", "mixes Latin and Greek letters in one label"),
        ("ana@snow☃.org", "U+2603 (☃) is not allowed in a domain name"),
        ("ana@ab≠.org", "U+2260 (≠) is not allowed in a domain name"),
        ("ana@a\u{FF3F}b.org", "U+FF3F (＿) is not allowed in a domain name: only letters, digits and hyphens are"),
        ("ana@¡hola.org", "U+00A1 (¡) is not allowed in a domain name"),
        ("ana@a\u{200D}.org", "has a zero-width joiner or non-joiner where IDNA forbids it"),
        ("ana@x.\u{301}a.org", "a label starts with a combining mark"),
        ("ana@xn--abc.example", "xn--abc is not a valid xn-- label"),
        ("ana@xn--ab--c.example", "xn--ab--c is not a valid xn-- label"),
        ("ana@ｅｘａｍｐｌｅ", "it needs a dot, as in example.org"),
        ("ana@exa_mple.org", "only letters, digits and hyphens are allowed"),
    ])
    func badDomainsAreRefused(input: String, reason: String) {
        #expect(throws: EmailAddress.Problem.domain(reason)) { try EmailAddress.canonical(input) }
    }

    /// Every address canonicalised before libidn2 (the hand-written punycode, commit 3b9b0fd)
    /// canonicalises identically now: fingerprints of existing ledgers stay meaningful.
    @Test func canonicalFormsOfExistingAddressesAreUnchanged() throws {
        let url = IDNAReference.packageRoot.appendingPathComponent("Tests/MusterKitTests/Fixtures/canonical-before-libidn2.tsv")
        let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(lines.count > 1900)
        var idn = 0
        for line in lines {
            let parts = line.split(separator: "\t", omittingEmptySubsequences: false)
            try #require(parts.count == 2)
            #expect(try EmailAddress.canonical(String(parts[0])) == String(parts[1]), "\(parts[0])")
            if parts[1].contains("xn--") { idn += 1 }
        }
        #expect(idn > 300, "the corpus holds typical IDN domains too")
    }

    /// The byte-level fast path leaves xn-- labels to libidn2 and agrees with it elsewhere.
    @Test func fastPathLeavesALabelsToLibidn2() throws {
        #expect(EmailAddress.plainASCIICanonical("a@xn--bcher-kva.example") == nil)
        #expect(EmailAddress.plainASCIICanonical("a@sub.XN--abc.example") == nil)
        #expect(EmailAddress.plainASCIICanonical("a@ab--cd.example") == "a@ab--cd.example")
        #expect(EmailAddress.plainASCIICanonical("a@xn-bcher.example") == "a@xn-bcher.example")
        var generator = SeededGenerator(seed: 15)
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789-")
        for _ in 0..<5000 {
            let labels = (0..<Int.random(in: 1...3, using: &generator)).map { _ in
                String((0..<Int.random(in: 1...8, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
            }
            let address = "a.b+c@" + (Bool.random(using: &generator) ? "xn--" : "") + labels.joined(separator: ".")
            let fast = EmailAddress.plainASCIICanonical(address)
            let full = try? EmailAddress.canonical(" " + address)
            if let fast { #expect(fast == full, "\(address)") }
            if fast == nil, full != nil, !address.lowercased().contains("xn--") {
                Issue.record("\(address): the fast path declined an address the full path accepts")
            }
        }
    }

    @Test func nulNeverReachesLibidn2() {
        #expect(throws: IDNA.Failure.disallowed("\u{0}")) { try IDNA.toASCII("bücher\u{0}evil.example") }
    }

    @Test func mailHostsKeepLocalhost() {
        #expect(IDNA.mailHost("localhost") == "localhost")
        #expect(IDNA.mailHost("ｅｘａｍｐｌｅ.org") == "example.org")
    }
}

/// A small deterministic generator (SplitMix64) for property tests.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
