import Foundation
import Testing
@testable import MusterKit

/// The parsers `muster mail doctor` judges DNS with, fed odd input. The doctor itself runs
/// against a real DNS server on loopback in MusterCLITests/MailDoctorTests.
@Suite struct MailDoctorRecordsTests {
    @Test func spfRecordsAreRecognisedAndParsedTermByTerm() throws {
        #expect(SPFRecord.isSPF("v=spf1 -all") && SPFRecord.isSPF("V=SPF1 ~all") && SPFRecord.isSPF("v=spf1"))
        #expect(!SPFRecord.isSPF("v=spf10 -all") && !SPFRecord.isSPF(" v=spf1 -all") && !SPFRecord.isSPF("spf2.0/pra -all") && !SPFRecord.isSPF(""))
        let record = try SPFRecord(parsing: "v=spf1  ip4:192.0.2.0/24 a/24 a:mail.example/28 -include:x.example MX ?exists:%{i}.x.example redirect=r.example exp=e.example ~all")
        #expect(record.mechanisms.map { $0.name } == ["ip4", "a", "a", "include", "mx", "exists", "all"])
        #expect(record.mechanisms[0].argument == "192.0.2.0/24" && record.mechanisms[1].argument == "/24" && record.mechanisms[2].argument == "mail.example/28")
        #expect(record.mechanisms[3].qualifier == .fail && record.mechanisms[5].qualifier == .neutral && record.all?.qualifier == .softfail)
        #expect(record.redirect == "r.example" && record.modifiers.map { $0.name } == ["redirect", "exp"])
        #expect(record.lookupTerms == 6, "a, a, include, mx, exists, redirect")
        #expect(try SPFRecord(parsing: "v=spf1").mechanisms.isEmpty)
        #expect(try SPFRecord(parsing: "v=spf1 +all").all?.qualifier == .pass)
        for (text, needle) in [("v=spf1 foo -all", "'foo' is not a mechanism"),
                               ("v=spf1 include -all", "needs a value"),
                               ("v=spf1 ip4: -all", "nothing after the colon"),
                               ("v=spf1 all:x", "all takes no value"),
                               ("v=spf1 redirect=a.example redirect=b.example", "redirect= appears 2 times"),
                               ("v=spf1 =x", "not a term SPF knows"),
                               ("v=spf2 -all", "does not start with v=spf1")] {
            #expect(throws: RecordError.self, "\(text)") { try SPFRecord(parsing: text) }
            do { _ = try SPFRecord(parsing: text) } catch { #expect(error.message.contains(needle), "\(text): \(error)") }
        }
    }

    @Test func tagListsKeepOrderIgnoreSpaceAndRefuseRepeats() throws {
        let tags = try TagList(parsing: " v = DKIM1 ;k=ed25519;\r\n\tp=AB CD ;;")
        #expect(tags.tags.map { $0.name } == ["v", "k", "p"] && tags["v"] == "DKIM1" && tags["p"] == "AB CD" && tags["x"] == nil)
        #expect(try TagList(parsing: "").tags.isEmpty)
        #expect(throws: RecordError("the tag p= appears twice")) { try TagList(parsing: "p=a; p=b") }
        #expect(throws: RecordError("'novalue' is not tag=value")) { try TagList(parsing: "v=DKIM1; novalue") }
        #expect(throws: RecordError("'=x' does not start with a tag name")) { try TagList(parsing: "=x") }
    }

    @Test func dkimKeyRecordsDecodeAndCompareKeys() throws {
        let key = [UInt8](repeating: 7, count: 32)
        let b64 = Data(key).base64EncodedString()
        let split = String(b64.prefix(10)) + " \t" + String(b64.dropFirst(10))
        let record = try DKIMKeyRecord(parsing: "v=DKIM1; k=ed25519; p=\(split)")
        #expect(record.keyType == "ed25519" && record.publicKey == key && record.publishes(key) && !record.testing)
        #expect(try DKIMKeyRecord(parsing: "p=\(b64)").keyType == "rsa", "k= defaults to rsa")
        #expect(try DKIMKeyRecord(parsing: "k=ed25519; p=; t=s:y").publicKey.isEmpty)
        #expect(try DKIMKeyRecord(parsing: "k=ed25519; p=\(b64); t=s:y").testing)
        #expect(!(try DKIMKeyRecord(parsing: "k=ed25519; p=\(b64)")).publishes([UInt8](repeating: 8, count: 32)))
        // An RSA record holding only the PKCS#1 key inside muster's SubjectPublicKeyInfo.
        let pkcs1 = [UInt8](repeating: 9, count: 140)
        let spki = [UInt8](repeating: 1, count: 24) + pkcs1
        #expect(try DKIMKeyRecord(parsing: "k=rsa; p=\(Data(pkcs1).base64EncodedString())").publishes(spki))
        #expect(!(try DKIMKeyRecord(parsing: "k=rsa; p=\(Data(pkcs1.suffix(10)).base64EncodedString())")).publishes(spki), "a short tail is not a key")
        for (text, needle) in [("v=DKIM2; p=\(b64)", "is not v=DKIM1"), ("k=rsa; v=DKIM1; p=\(b64)", "must come first"),
                               ("v=DKIM1; k=rsa", "no p="), ("v=DKIM1; p=not*base64", "not base64")] {
            do { _ = try DKIMKeyRecord(parsing: text); Issue.record("\(text) was accepted") } catch { #expect(error.message.contains(needle), "\(text): \(error)") }
        }
    }

    @Test func dmarcRecordsAreRecognisedAndRead() throws {
        #expect(DMARCRecord.isDMARC("v=DMARC1; p=none") && DMARCRecord.isDMARC("v = DMARC1;p=reject") && DMARCRecord.isDMARC("v=DMARC1"))
        #expect(!DMARCRecord.isDMARC("p=none; v=DMARC1") && !DMARCRecord.isDMARC("v=spf1 -all") && !DMARCRecord.isDMARC("v=DMARC10; p=none"))
        let record = try DMARCRecord(parsing: "v=DMARC1; p=Quarantine; sp=reject; adkim=s; pct=50; rua=mailto:a@x.example, mailto:b@y.example")
        #expect(record.policy == "quarantine" && record.subdomainPolicy == "reject" && record.strictDKIM && !record.strictSPF)
        #expect(record.percent == 50 && record.reportAddresses == ["mailto:a@x.example", "mailto:b@y.example"])
        #expect(try DMARCRecord(parsing: "v=DMARC1; p=none").reportAddresses.isEmpty)
        for (text, needle) in [("v=DMARC1", "no p="), ("v=DMARC1; p=maybe", "not none, quarantine or reject"), ("p=none; v=DMARC1", "does not start with v=DMARC1")] {
            do { _ = try DMARCRecord(parsing: text); Issue.record("\(text) was accepted") } catch { #expect(error.message.contains(needle), "\(text): \(error)") }
        }
    }

    @Test func alignmentAndAddressRanges() {
        #expect(DomainNames.aligned("mail.fairrates.example", "fairrates.example", strict: false))
        #expect(!DomainNames.aligned("mail.fairrates.example", "fairrates.example", strict: true))
        #expect(DomainNames.aligned("Fairrates.Example.", "fairrates.example", strict: true))
        #expect(!DomainNames.aligned("other.example", "fairrates.example", strict: false))
        #expect(DomainNames.ipv4("192.0.2.77", isIn: "192.0.2.0/24") && DomainNames.ipv4("192.0.2.77", isIn: "192.0.2.77"))
        #expect(!DomainNames.ipv4("192.0.3.1", isIn: "192.0.2.0/24") && DomainNames.ipv4("10.1.2.3", isIn: "0.0.0.0/0"))
        #expect(!DomainNames.ipv4("192.0.2.1", isIn: "192.0.2.0/33") && !DomainNames.ipv4("192.0.2.1", isIn: "example.org") && !DomainNames.ipv4("x", isIn: "192.0.2.0/24"))
    }

    // MARK: DNS messages

    /// A response with one question and `answers` (name as a pointer to the question).
    static func response(rcode: UInt8 = 0, question: String = "fairrates.example", answers: [(type: UInt16, rdata: [UInt8])]) -> [UInt8] {
        var bytes: [UInt8] = [0x12, 0x34, 0x81, 0x80 | rcode, 0, 1, 0, UInt8(answers.count), 0, 0, 0, 0]
        bytes += encode(question) + [0, 16, 0, 1]
        for answer in answers {
            bytes += [0xC0, 12, UInt8(answer.type >> 8), UInt8(answer.type & 0xFF), 0, 1, 0, 0, 0, 60, UInt8(answer.rdata.count >> 8), UInt8(answer.rdata.count & 0xFF)]
            bytes += answer.rdata
        }
        return bytes
    }

    static func encode(_ name: String) -> [UInt8] {
        name.split(separator: ".").flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) } + [0]
    }

    @Test func dnsMessagesDecodeTxtMxAAndAAAA() throws {
        let txt: [UInt8] = [5] + Array("v=spf".utf8) + [6] + Array("1 -all".utf8) + [0]
        let mx: [UInt8] = [0, 10, 3] + Array("mx1".utf8) + [0xC0, 12] // mx1.<pointer to the question>
        let message = try DNSMessage(Self.response(answers: [(16, txt), (15, mx), (1, [192, 0, 2, 1]), (28, [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1]), (5, Self.encode("alias.example"))]))
        #expect(message.id == 0x1234 && message.rcode == 0 && !message.truncated)
        #expect(message.answers.map { $0.record } == [.txt("v=spf1 -all", strings: 3), .mx(preference: 10, host: "mx1.fairrates.example"), .a("192.0.2.1"), .aaaa("2001:db8::1")])
        #expect(try message.answer(for: .txt, name: "x", server: "s") == .records([.txt("v=spf1 -all", strings: 3)]))
        #expect(try message.answer(for: .aaaa, name: "x", server: "s") == .records([.aaaa("2001:db8::1")]))
        #expect(try DNSMessage(Self.response(answers: [])).answer(for: .mx, name: "x", server: "s") == .noData)
        #expect(try DNSMessage(Self.response(rcode: 3, answers: [])).answer(for: .mx, name: "x", server: "s") == .nxDomain)
        #expect(throws: DNSFailure.self) { try DNSMessage(Self.response(rcode: 2, answers: [])).answer(for: .mx, name: "x", server: "s") }
        #expect(throws: DNSFailure.self) { try DNSMessage(Self.response(rcode: 5, answers: [])).answer(for: .mx, name: "x", server: "s") }
        // A null MX: preference 0, the root name.
        #expect(try DNSMessage(Self.response(answers: [(15, [0, 0, 0])])).answers.map { $0.record } == [.mx(preference: 0, host: "")])
    }

    @Test func malformedDnsMessagesAreRefusedNotTrusted() {
        let good = Self.response(answers: [(16, [3] + Array("abc".utf8))])
        var cases: [([UInt8], String)] = []
        for cut in [0, 5, 12, 20, good.count - 2] { cases.append((Array(good.prefix(cut)), "cut at \(cut)")) }
        cases.append((Self.response(answers: [(16, [9] + Array("abc".utf8))]), "a TXT string longer than its record"))
        var overrun = good
        overrun[overrun.count - 5] = 200 // rdlength past the end
        cases.append((overrun, "rdlength past the end"))
        var loop = Self.response(answers: [(16, [1, 65])])
        loop[12] = 0xC0; loop[13] = 12 // the question's name points at itself
        cases.append((loop, "a pointer loop"))
        var label = Self.response(answers: [])
        label[12] = 0x80 // label type 10
        cases.append((label, "a reserved label type"))
        let long = (0..<5).map { _ in String(repeating: "a", count: 63) }.joined(separator: ".")
        cases.append((Self.response(question: long, answers: []), "a name over 255 bytes"))
        cases.append((Self.response(answers: [(1, [1, 2, 3])]), "an A record of 3 bytes"))
        cases.append((Self.response(answers: [(28, [1, 2, 3, 4])]), "an AAAA record of 4 bytes"))
        cases.append((Self.response(answers: [(15, [0, 1])]), "an MX record without a name"))
        for (bytes, what) in cases {
            #expect(throws: DNSMessage.Malformed.self, "\(what)") { try DNSMessage(bytes) }
        }
    }

    /// Tens of thousands of damaged answers (bytes flipped, cut, repeated; a fixed seed):
    /// each one parses or is refused, none traps, and none takes long.
    @Test func damagedDnsMessagesNeverTrap() {
        let txt: [UInt8] = [5] + Array("v=spf".utf8) + [6] + Array("1 -all".utf8)
        let mx: [UInt8] = [0, 10, 3] + Array("mx1".utf8) + [0xC0, 12]
        let seed = Self.response(answers: [(16, txt), (15, mx), (1, [192, 0, 2, 1]), (28, [UInt8](repeating: 1, count: 16))])
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> Int {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return Int(state % 1_000_003)
        }
        var parsed = 0, refused = 0
        for _ in 0..<10_000 {
            var bytes = seed
            for _ in 0...(next() % 6) {
                switch next() % 4 {
                case 0: bytes[next() % bytes.count] = UInt8(next() % 256)
                case 1: bytes = Array(bytes.prefix(next() % (bytes.count + 1)))
                case 2: bytes.insert(UInt8(next() % 256), at: next() % (bytes.count + 1))
                default: bytes += bytes.prefix(next() % 16)
                }
                if bytes.isEmpty { bytes = [0] }
            }
            if (try? DNSMessage(bytes)) != nil { parsed += 1 } else { refused += 1 }
            for text in [String(decoding: bytes, as: UTF8.self), "v=spf1 " + String(decoding: bytes, as: UTF8.self)] {
                _ = try? SPFRecord(parsing: text)
                _ = try? DKIMKeyRecord(parsing: text)
                _ = try? DMARCRecord(parsing: "v=DMARC1; " + text)
            }
        }
        #expect(parsed > 100 && refused > 100, "the damage reaches both outcomes: \(parsed) parsed, \(refused) refused")
    }

    @Test func dnsServersAreIPv4WithAnOptionalPort() throws {
        #expect(try DNSServer(parsing: "127.0.0.1:5353") == DNSServer(parsing: "127.0.0.1:5353"))
        let server = try DNSServer(parsing: "192.0.2.53")
        #expect(server.port == 53 && server.description == "192.0.2.53")
        #expect(try DNSServer(parsing: "127.0.0.1:5353").description == "127.0.0.1:5353")
        for text in ["", "localhost", "::1", "[::1]:53", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:53:53", "256.0.0.1"] {
            #expect(throws: DNSFailure.self, "\(text)") { try DNSServer(parsing: text) }
        }
    }

    @Test func aRecordToPublishIsSplitInto255ByteStrings() {
        let doctor = MailDoctor(domain: "Fairrates.Example.", senderAddress: nil, ownKey: nil, relaySelector: nil, relayHost: nil)
        #expect(doctor.domain == "fairrates.example")
        let text = String(repeating: "x", count: 600)
        let record = doctor.txtRecord("a.example", text)
        #expect(record == "a.example. IN TXT \"\(String(repeating: "x", count: 255))\" \"\(String(repeating: "x", count: 255))\" \"\(String(repeating: "x", count: 90))\"")
        #expect(doctor.txtRecord("a.example", "short") == "a.example. IN TXT \"short\"")
    }
}
