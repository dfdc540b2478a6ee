import Testing
@testable import MusterKit

@Suite struct CanonicalEmailTests {
    @Test(arguments: [
        ("Ana@Example.ORG", "ana@example.org"),
        ("  ana@example.org\t", "ana@example.org"),
        ("ana@bücher.example", "ana@xn--bcher-kva.example"),
        ("ana@xn--bcher-kva.example", "ana@xn--bcher-kva.example"),
        ("ana@BÜCHER.example", "ana@xn--bcher-kva.example"),
        ("ana@münchen.de", "ana@xn--mnchen-3ya.de"),
        ("ana@例え.テスト", "ana@xn--r8jz45g.xn--zckzah"),
        ("ana@bücher\u{FF0E}example", "ana@xn--bcher-kva.example"),
        ("ana@example.org.", "ana@example.org"),
        ("\"ana lima\"@example.org", "\"ana lima\"@example.org"),
        ("o'brien+petition@example.org", "o'brien+petition@example.org"),
    ])
    func canonicalForms(input: String, expected: String) throws {
        #expect(try EmailAddress.canonical(input) == expected)
    }

    @Test func nfcAndNfdAreOneSigner() throws {
        let composed = "zo\u{E9}@example.org"      // é as one code point
        let decomposed = "zoe\u{301}@example.org"  // e + combining acute
        #expect(try EmailAddress.canonical(composed) == EmailAddress.canonical(decomposed))
        let nfdDomain = "ana@bu\u{308}cher.example"
        #expect(try EmailAddress.canonical(nfdDomain) == "ana@xn--bcher-kva.example")
    }

    @Test(arguments: [
        ("", EmailAddress.Problem.empty),
        ("ana@example.org\r\nBcc: x@evil.test", .controlCharacter),
        ("ana\n@example.org", .controlCharacter),
        ("ana\u{0}@example.org", .controlCharacter),
        ("ana.example.org", .noAt),
        ("@example.org", .localPart("it is empty")),
        ("ana..lima@example.org", .localPart("empty label between dots")),
        ("ana lima@example.org", .localPart("a space is not allowed there")),
        ("ana@localhost", .domain("it needs a dot, as in example.org")),
        ("ana@exa_mple.org", .domain("only letters, digits and hyphens are allowed")),
        ("ana@-example.org", .domain("a label starts or ends with a hyphen")),
        ("ana@example..org", .domain("empty label between dots")),
        (String(repeating: "a", count: 65) + "@example.org", .localPart("longer than 64 octets")),
    ])
    func refused(input: String, problem: EmailAddress.Problem) {
        #expect(throws: problem) { try EmailAddress.canonical(input) }
    }

    @Test func forbiddenCharactersAreNamed() {
        #expect(TextField.forbiddenCharacter(in: "Eve\r\nBcc") == "a carriage return (CR) at character 4")
        #expect(TextField.forbiddenCharacter(in: "a\u{202E}b") == "the control character U+202E at character 2")
        #expect(TextField.forbiddenCharacter(in: "Zoé Ørsted 李") == nil)
    }
}
