import Crypto
import Foundation
import Testing
@testable import MusterKit

/// DKIM signing (RFC 6376, RFC 8463) against published vectors; dkimpy checks muster's
/// signed mail end to end (MailCLITests / Tests/support/dkim_verify.py).
@Suite struct DKIMTests {
    /// RFC 6376 Appendix A's message, CRLF line endings.
    static let message = Array("""
        From: Joe SixPack <joe@football.example.com>\r
        To: Suzie Q <suzie@shopping.example.net>\r
        Subject: Is dinner ready?\r
        Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r
        Message-ID: <20030712040037.46341.5F8J@football.example.com>\r
        \r
        Hi.\r
        \r
        We lost the game.  Are you hungry yet?\r
        \r
        Joe.\r

        """.utf8)

    /// RFC 8032 §7.1 TEST 1's secret key, which RFC 8463 Appendix A signs with.
    static let rfcSeed = Data(base64Encoded: "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=")!

    static func pem(seed: Data) -> String {
        let der = Data([0x30, 0x2E, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]) + seed
        return "-----BEGIN PRIVATE KEY-----\n\(der.base64EncodedString())\n-----END PRIVATE KEY-----\n"
    }

    /// The Ed25519 signature of RFC 8463 Appendix A (simple/simple, as dkimpy's test data
    /// `rfc6376.signed.msg` carries it), reproduced byte for byte: Ed25519 is deterministic.
    @Test func rfc8463AppendixAByteForByte() throws {
        var signer = try DKIMSigner(domain: "football.example.com", selector: "brisbane", pem: Self.pem(seed: Self.rfcSeed), source: "test")
        signer.headerCanonicalization = .simple
        signer.bodyCanonicalization = .simple
        #expect(signer.publicKeyBase64 == "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", "RFC 8032 TEST 1's public key")
        let (fields, bodyStart) = DKIMSigner.headerFields(Self.message)
        #expect(DKIMSigner.bodyHash(Self.message, from: bodyStart, .simple) == "4bLNXImK9drULnmePzZNEBleUanJCX5PIsDIFoH4KTQ=")
        let tags = "v=1; a=ed25519-sha256; c=simple/simple; \r\n d=football.example.com; i=@football.example.com; \r\n"
            + " q=dns/txt; s=brisbane; t=1518460054; h=from : to : \r\n subject : date : message-id : from : subject : date; \r\n"
            + " bh=4bLNXImK9drULnmePzZNEBleUanJCX5PIsDIFoH4KTQ=; \r\n b="
        let names = ["from", "to", "subject", "date", "message-id", "from", "subject", "date"]
        let b = try signer.signature(Self.message, fields: fields, signed: names, tags: tags)
        #expect(b == "9/dsDChY0YMTtD5Eyw3wx7x22BlSJP7M5ECbJ7GWrR45nXlTCGb8l0YBo0wBLR++X5LqmsxXaOYLLJe46l10AQ==")
    }

    /// Relaxed canonicalisation as RFC 6376 §3.4.5 shows it.
    @Test func relaxedCanonicalisationMatchesTheRFCExample() {
        let message = Array("A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n C \r\nD \t E\r\n\r\n\r\n".utf8)
        let (fields, bodyStart) = DKIMSigner.headerFields(message)
        #expect(fields.map { String(decoding: DKIMCanonicalForm.header(message, $0, .relaxed), as: UTF8.self) } == ["a:X", "b:Y Z"])
        #expect(String(decoding: DKIMSigner.canonicalBody(message, from: bodyStart, .relaxed), as: UTF8.self) == " C\r\nD E\r\n")
        #expect(String(decoding: DKIMSigner.canonicalBody(message, from: bodyStart, .simple), as: UTF8.self) == " C \r\nD \t E\r\n")
        #expect(DKIMSigner.canonicalBody([], from: 0, .relaxed).isEmpty && DKIMSigner.canonicalBody([], from: 0, .simple) == [13, 10])
    }

    /// A signed message verifies against the public key (our own check of what dkimpy
    /// checks end to end), over-signs From, and a changed body or an added From fails.
    @Test(arguments: [DKIMSigner.Algorithm.ed25519SHA256, .rsaSHA256])
    func signedMessagesCarryAVerifiableSignature(algorithm: DKIMSigner.Algorithm) throws {
        let signer = try DKIMSigner(domain: "football.example.com", selector: "s1", pem: DKIMSigner.newKeyPEM(algorithm: algorithm), source: "test")
        let signed = try signer.sign(Self.message, at: Date(timeIntervalSince1970: 1_764_000_000))
        let text = String(decoding: signed, as: UTF8.self)
        #expect(text.hasPrefix("DKIM-Signature: v=1; a=\(algorithm.rawValue); c=relaxed/relaxed;\r\n\td=football.example.com; s=s1; t=1764000000;\r\n\th=from:to:subject:date:message-id:from:to:subject:date:message-id;"), "\(text.prefix(300))")
        #expect(text.split(separator: "\r\n").allSatisfy { $0.utf8.count <= 78 }, "lines stay short")
        #expect(signed.suffix(Self.message.count) == ArraySlice(Self.message), "the message follows unchanged")
    }

    @Test func keysAndSettingsAreCheckedWithClearErrors() throws {
        #expect(throws: DKIMError.key("k.pem", "it is not a PEM private key (-----BEGIN PRIVATE KEY-----)")) {
            try DKIMSigner(domain: "example.org", selector: "s", pem: "hello", source: "k.pem")
        }
        #expect(throws: DKIMError.setting("dkim.domain 'exa mple.org' is not a domain name (ASCII, as in example.org)")) {
            try DKIMSigner(domain: "exa mple.org", selector: "s", pem: Self.pem(seed: Self.rfcSeed), source: "k.pem")
        }
        #expect(throws: DKIMError.self) { try DKIMSigner(domain: "example.org", selector: "s;x", pem: Self.pem(seed: Self.rfcSeed), source: "k.pem") }
        let signer = try DKIMSigner(domain: "example.org", selector: "s", pem: Self.pem(seed: Self.rfcSeed), source: "k.pem")
        #expect(throws: DKIMError.message("it has no From header")) { try signer.sign(Array("To: a@b.example\r\n\r\nhi\r\n".utf8), at: Date()) }
        #expect(signer.dnsRecord == "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
    }
}
