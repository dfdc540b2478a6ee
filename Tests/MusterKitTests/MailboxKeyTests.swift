import Foundation
import Testing
@testable import MusterKit

@Suite struct MailboxKeyTests {
    /// One row per rule of the provider table, and the generic ones.
    @Test(arguments: [
        // Generic: case, NFKC, fullwidth domain, ideographic full stop, RFC 5233 tags.
        ("Ana@Example.ORG", "ana@example.org"),
        ("ana+1@example.org", "ana@example.org"),
        ("ana+petition+2@example.org", "ana@example.org"),
        ("+ana@example.org", "+ana@example.org"),
        ("a.na@example.org", "a.na@example.org"),
        ("ana-1@example.org", "ana-1@example.org"),
        ("k@ｅｘａｍｐｌｅ.org", "k@example.org"),
        ("m@example。org", "m@example.org"),
        ("ＡＮＡ@example.org", "ana@example.org"),
        ("ﬁona@example.org", "fiona@example.org"),
        ("STRASSE@example.org", "strasse@example.org"),
        ("straße@example.org", "strasse@example.org"),
        ("\"Ana+1\"@example.org", "\"ana+1\"@example.org"),
        // Gmail: dots ignored, googlemail.com is gmail.com.
        ("a.na@gmail.com", "ana@gmail.com"),
        ("A.N.A+news@GoogleMail.com", "ana@gmail.com"),
        ("ana@googlemail.com", "ana@gmail.com"),
        // Outlook.com family: tags only; dots count; each domain its own.
        ("ana+x@outlook.com", "ana@outlook.com"),
        ("a.na@hotmail.com", "a.na@hotmail.com"),
        ("ana@live.com", "ana@live.com"),
        // Yahoo: '-' starts a disposable address's keyword.
        ("ana-shop@yahoo.com", "ana@yahoo.com"),
        ("a.na@yahoo.com", "a.na@yahoo.com"),
        // iCloud: me.com and mac.com are icloud.com.
        ("ana@me.com", "ana@icloud.com"),
        ("ana+x@mac.com", "ana@icloud.com"),
        // Proton: proton.me, protonmail.com, protonmail.ch and pm.me are one.
        ("ana@pm.me", "ana@proton.me"),
        ("ana+x@protonmail.com", "ana@proton.me"),
        ("a.na@protonmail.ch", "a.na@proton.me"),
        ("a_na@proton.me", "a_na@proton.me"),
    ])
    func providerTable(address: String, key: String) throws {
        #expect(try MailboxKey.key(for: address) == key)
    }

    @Test func keepTagsKeepsEveryTag() throws {
        let rules = MailboxRules(keepTags: true)
        #expect(try MailboxKey.key(for: "ana+1@example.org", rules: rules) == "ana+1@example.org")
        #expect(try MailboxKey.key(for: "ana-shop@yahoo.com", rules: rules) == "ana-shop@yahoo.com")
        #expect(try MailboxKey.key(for: "a.na+1@gmail.com", rules: rules) == "ana+1@gmail.com", "dots are not tags")
    }

    @Test func workspaceRulesAddToTheTable() throws {
        let rules = MailboxRules(separators: ["+", "="], domains: [
            "example.org": .init(separators: ["-"], ignoreDots: true, sameAs: ["example.net", "xn--bcher-kva.example"]),
            "gmail.com": .init(),
        ])
        #expect(try MailboxKey.key(for: "a.na-list@example.org", rules: rules) == "ana@example.org")
        #expect(try MailboxKey.key(for: "ana=x@Example.NET", rules: rules) == "ana@example.org")
        #expect(try MailboxKey.key(for: "ana@bücher.example", rules: rules) == "ana@example.org")
        #expect(try MailboxKey.key(for: "ana-list@other.org", rules: rules) == "ana-list@other.org")
        #expect(try MailboxKey.key(for: "a.na@gmail.com", rules: rules) == "a.na@gmail.com", "the workspace's rule wins")
        #expect(try MailboxKey.key(for: "ana@googlemail.com", rules: rules) == "ana@googlemail.com")
    }

    @Test func invalidAddressesThrowWhatCanonicalThrows() {
        #expect(throws: EmailAddress.Problem.noAt) { try MailboxKey.key(for: "ana.example.org") }
        #expect(throws: EmailAddress.Problem.domain("U+2603 (☃) is not allowed in a domain name")) { try MailboxKey.key(for: "ana@snow☃.org") }
    }

    /// Properties over generated addresses: the key is idempotent, and every variant the
    /// rules call one person has the key of the original.
    @Test func variantsShareTheKeyAndTheKeyIsStable() throws {
        var generator = SeededGenerator(seed: 15)
        let letters = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        let domains = ["example.org", "gmail.com", "googlemail.com", "outlook.com", "yahoo.com", "icloud.com", "me.com", "proton.me", "pm.me", "bücher.example"]
        for _ in 0..<2000 {
            let local = String((0..<Int.random(in: 1...12, using: &generator)).map { _ in letters.randomElement(using: &generator)! })
            let domain = domains.randomElement(using: &generator)!
            let original = local + "@" + domain
            let key = try MailboxKey.key(for: original)
            #expect(try MailboxKey.key(for: key) == key, "idempotent: \(original)")
            var variants = [
                original.uppercased(),
                local + "+" + String(letters.shuffled(using: &generator).prefix(4)) + "@" + domain,
                " " + local + "@" + domain.replacingOccurrences(of: ".", with: "\u{3002}") + " ",
                String(local.unicodeScalars.map { Character(Unicode.Scalar($0.value + 0xFEE0)!) }) + "@" + domain,
                local + "@" + String(domain.unicodeScalars.map { $0.isASCII && $0 != "." ? Character(Unicode.Scalar($0.value + 0xFEE0)!) : Character($0) }),
            ]
            if ["gmail.com", "googlemail.com"].contains(domain), local.count > 1 {
                var dotted = local
                dotted.insert(".", at: dotted.index(after: dotted.startIndex))
                variants.append(dotted + "@" + domain)
                variants.append(local + "@" + (domain == "gmail.com" ? "googlemail.com" : "gmail.com"))
            }
            if domain == "yahoo.com" { variants.append(local + "-shopping@yahoo.com") }
            if ["icloud.com", "me.com"].contains(domain) { variants.append(local + "@mac.com") }
            if ["proton.me", "pm.me"].contains(domain) { variants.append(local + "@protonmail.com") }
            for variant in variants {
                #expect(try MailboxKey.key(for: variant) == key, "\(variant) vs \(original)")
            }
        }
    }

    /// The standard rules read from muster.yaml's dedupe: section, and the defaults without one.
    @Test func settingsAreReadFromMusterYAML() throws {
        let folder = try TemporaryFolder()
        try folder.write("muster.yaml", "sender: \"A <a@example.org>\"\n")
        #expect(try Workspace(root: folder.url).mailboxRules() == .standard)
        try folder.write("muster.yaml", """
            dedupe:
              keep_tags: true
              separators: ["+", "-"]
              domains:
                Example.ORG: { ignore_dots: true, same_as: [example.net] }
            """)
        let rules = try Workspace(root: folder.url).mailboxRules()
        #expect(rules == MailboxRules(keepTags: true, separators: ["+", "-"], domains: ["example.org": .init(ignoreDots: true, sameAs: ["example.net"])]))
        try folder.write("muster.yaml", "dedupe:\n  separators: [\".\"]\n")
        do {
            _ = try Workspace(root: folder.url).mailboxRules()
            Issue.record("a dot is not a sub-address separator")
        } catch let error as MusterError {
            #expect(error.status == .badInput)
            #expect(error.details.joined().contains("muster.yaml:2:16: error: 'dedupe.separators' must list single characters"), "\(error.details)")
        }
    }
}

@Suite struct TypoHintTests {
    @Test(arguments: [
        ("gmial.com", "gmail.com"), ("gmai.com", "gmail.com"), ("gmaill.com", "gmail.com"), ("gamil.com", "gmail.com"),
        ("gmail.con", "gmail.com"), ("hotmial.com", "hotmail.com"), ("hotmal.com", "hotmail.com"), ("yahooo.com", "yahoo.com"),
        ("outlok.com", "outlook.com"), ("iclod.com", "icloud.com"), ("gmx.nett", "gmx.net"), ("wbe.de", "web.de"), ("proton.m", "proton.me"),
    ])
    func oneSlipFromAProvider(typed: String, provider: String) {
        #expect(TypoHint.suggestion(forDomain: typed) == provider)
    }

    @Test(arguments: ["gmail.com", "mail.com", "ymail.com", "me.com", "mac.com", "gmx.at", "example.org", "gmali.co", "hotmail.co.uk", "pm.me", "yahoo.de", "gmx.ne"])
    func realOrDistantDomainsAreLeftAlone(domain: String) {
        #expect(TypoHint.suggestion(forDomain: domain) == nil)
    }

    @Test func theAddressKeepsItsLocalPart() {
        #expect(TypoHint.suggestion(forAddress: "ana.lima+x@gmial.com") == "ana.lima+x@gmail.com")
        #expect(TypoHint.suggestion(forAddress: "ana@example.org") == nil)
    }
}
