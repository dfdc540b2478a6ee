import Foundation
import Testing

/// The loopback DNS server of Tests/support/dns_server.py (dnslib), serving one zone.
final class TestDNS {
    let process = Process()
    let port: Int
    let zoneFile: URL
    private let stdin = Pipe()

    static var available: Bool {
        (try? Sandbox.run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", "import dnslib, cryptography"], in: URL(fileURLWithPath: "/")).status) == 0
    }

    init(_ zone: [String: Any], mode: String = "zone") throws {
        zoneFile = FileManager.default.temporaryDirectory.appendingPathComponent("muster-zone-\(UUID().uuidString.prefix(8)).json")
        try JSONSerialization.data(withJSONObject: zone).write(to: zoneFile)
        let script = MusterBinary.packageRoot.appendingPathComponent("Tests/support/dns_server.py")
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script.path, "--zone", zoneFile.path, "--mode", mode, "--exit-on-stdin-eof"]
        let out = Pipe()
        process.standardOutput = out
        process.standardInput = stdin
        try process.run()
        let line = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self)
        port = try #require(Int(line.trimmingCharacters(in: .whitespacesAndNewlines)), "DNS server did not start: \(line)")
    }

    deinit {
        try? stdin.fileHandleForWriting.close()
        process.terminate()
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: zoneFile)
    }

    var address: String { "127.0.0.1:\(port)" }
}

/// `muster mail doctor`, the real binary against a real DNS server on loopback: good,
/// missing and broken records, a server that never answers.
@Suite(.enabled(if: TestDNS.available, "needs python3 with dnslib and cryptography (make test installs them)"))
struct MailDoctorTests {
    static let domain = "fairrates.example"
    static let selectorName = "muster2026._domainkey.fairrates.example"

    /// A DKIM key made by Python's cryptography package, outside any workspace, and its
    /// public half as a DKIM record's p= (computed by Python, not by muster).
    struct Key {
        let file: URL
        let p: String
        let kind: String
        var record: String { "v=DKIM1; k=\(kind); p=\(p)" }
    }

    static func key(_ kind: String) throws -> Key {
        let file = try DKIMCLITests.key(kind)
        let code = """
            import base64; from cryptography.hazmat.primitives import serialization as s
            key = s.load_pem_private_key(open('\(file.path)', 'rb').read(), None).public_key()
            raw = key.public_bytes(s.Encoding.Raw, s.PublicFormat.Raw) if '\(kind)' == 'ed25519' else key.public_bytes(s.Encoding.DER, s.PublicFormat.SubjectPublicKeyInfo)
            print(base64.b64encode(raw).decode())
            """
        let result = try Sandbox.run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", code], in: file.deletingLastPathComponent())
        try #require(result.status == 0, "\(result)")
        return Key(file: file, p: result.stdout.trimmingCharacters(in: .whitespacesAndNewlines), kind: kind)
    }

    /// A zone where everything is right for `key`; tests break one thing each.
    static func goodZone(_ key: Key) -> [String: Any] {
        // Verification tokens make the TXT answer longer than 512 bytes, so the resolver
        // must retry over TCP; a long DKIM key is split into 255-byte strings.
        let tokens = (1...4).map { "site-verification=\(String(repeating: Character(String($0)), count: 120))" }
        let chunks = stride(from: 0, to: key.record.count, by: 200).map { start in
            String(key.record.dropFirst(start).prefix(200))
        }
        return [
            domain: ["TXT": ["v=spf1 ip4:127.0.0.0/8 include:_spf.relay.example -all"] + tokens, "MX": [[10, "mx1.fairrates.example"]]],
            "_spf.relay.example": ["TXT": ["v=spf1 ip4:192.0.2.0/24 ~all"]],
            "mx1.fairrates.example": ["A": ["192.0.2.25"]],
            selectorName: ["TXT": [chunks]],
            "_dmarc.fairrates.example": ["TXT": ["v=DMARC1; p=quarantine; rua=mailto:dmarc@fairrates.example"]],
        ]
    }

    static func workspace(key: Key?, dkimDomain: String? = nil, relay: String = "smtp://127.0.0.1:2525") throws -> Sandbox {
        let box = try Sandbox()
        try #require(box.run(["init", "."]).status == 0)
        var yaml = "sender: \"Fair Rates <hello@fairrates.example>\"\nsmtp:\n  url: \(relay)\n  starttls: never\n"
        if let key {
            yaml += "dkim:\n  selector: muster2026\n  key: \(key.file.path)\n"
            if let dkimDomain { yaml += "  domain: \(dkimDomain)\n" }
        }
        try box.write("muster.yaml", yaml)
        return box
    }

    /// Runs `mail doctor --json` against `dns`; returns the result and each check by name.
    static func doctor(_ box: Sandbox, _ dns: TestDNS, _ extra: [String] = []) throws -> (RunResult, [String: [String: Any]]) {
        let result = try box.run(["mail", "doctor", "--json", "--dns", dns.address] + extra)
        guard result.status == 0 || result.status == 1 else { return (result, [:]) }
        let json = try result.json()
        let checks = try #require(json["checks"] as? [[String: Any]], "\(result)")
        var byName: [String: [String: Any]] = [:]
        for check in checks { byName[check["check"] as! String] = check }
        return (result, byName)
    }

    static func status(_ checks: [String: [String: Any]], _ name: String) -> String? { checks[name]?["status"] as? String }
    static func message(_ checks: [String: [String: Any]], _ name: String) -> String { checks[name]?["message"] as? String ?? "" }

    func cleanup(_ key: Key) { try? FileManager.default.removeItem(at: key.file.deletingLastPathComponent()) }

    @Test(arguments: ["ed25519", "rsa"])
    func aGoodZoneIsAllOkAndExits0(kind: String) throws {
        let key = try Self.key(kind)
        defer { cleanup(key) }
        let box = try Self.workspace(key: key)
        let dns = try TestDNS(Self.goodZone(key))
        let (result, checks) = try Self.doctor(box, dns)
        #expect(result.status == 0, "\(result)")
        #expect(Set(checks.keys) == ["spf", "spf-lookups", "spf-relay", "dkim", "dmarc", "dmarc-alignment", "dmarc-reports", "mx"], "\(result)")
        for (name, check) in checks { #expect(check["status"] as? String == "ok", "\(name): \(check)") }
        #expect(Self.message(checks, "dkim").contains("publishes muster's \(kind) key"), "\(result)")
        #expect(Self.message(checks, "spf-lookups").contains("needs 1 of the 10"), "\(result)")
        #expect(Self.message(checks, "spf-relay").contains("ip4:127.0.0.0/8"), "\(result)")
        #expect((checks["dkim"]?["records"] as? [String]) == [key.record], "the split strings are joined back into one record")
        let json = try result.json()
        #expect(json["problems"] as? Int == 0 && json["warnings"] as? Int == 0 && json["domain"] as? String == Self.domain)

        let text = try box.run(["mail", "doctor", "--dns", dns.address])
        #expect(text.status == 0 && text.stdout.contains("ok: dkim: ") && text.stdout.hasSuffix("all checks ok\n"), "\(text)")
    }

    @Test func spfMissingDoubledOrPlusAllIsAProblem() throws {
        let key = try Self.key("ed25519")
        defer { cleanup(key) }
        let box = try Self.workspace(key: key)
        let cases: [([String], String)] = [
            (["site-verification=abc"], "publishes no SPF record (the name holds other records only)"),
            (["v=spf1 ip4:127.0.0.0/8 -all", "v=spf1 include:_spf.relay.example ~all"], "has 2 SPF records"),
            (["v=spf1 +all"], "ends in +all"),
            (["v=spf1 ip4:127.0.0.0/8 bogus:x -all"], "cannot be read ('bogus:x' is not a mechanism SPF knows)"),
        ]
        for (records, needle) in cases {
            var zone = Self.goodZone(key)
            zone[Self.domain] = ["TXT": records, "MX": [[10, "mx1.fairrates.example"]]]
            let dns = try TestDNS(zone)
            let (result, checks) = try Self.doctor(box, dns)
            #expect(result.status == 1, "\(records): \(result)")
            #expect(Self.status(checks, "spf") == "problem" && Self.message(checks, "spf").contains(needle), "\(records): \(result)")
            #expect(Self.status(checks, "dkim") == "ok", "one broken record does not hide the others: \(result)")
        }
        // ?all is only a warning (exit 0); one record split over two strings is joined as is.
        var zone = Self.goodZone(key)
        zone[Self.domain] = ["TXT": [["v=spf1 ip4:127.0.0.0/8", " ?all"]], "MX": [[10, "mx1.fairrates.example"]]]
        let dns = try TestDNS(zone)
        let (result, checks) = try Self.doctor(box, dns)
        #expect(result.status == 0 && Self.status(checks, "spf") == "warning" && Self.message(checks, "spf").contains("?all (neutral)"), "\(result)")
    }

    @Test func escapeSequencesInRecordsNeverReachTheTerminal() throws {
        let box = try Self.workspace(key: nil)
        let dns = try TestDNS([Self.domain: ["TXT": ["v=spf1 \u{1B}[2J\u{1B}]0;owned\u{07} -all"], "MX": [[10, "mx1.fairrates.example"]]],
                               "mx1.fairrates.example": ["A": ["192.0.2.25"]]])
        let text = try box.run(["mail", "doctor", "--dns", dns.address])
        #expect(text.status == 1, "\(text)")
        #expect(!text.stdout.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 }, "\(text)")
        #expect(text.stdout.contains("found: v=spf1 \\u{1b}[2J\\u{1b}]0;owned\\u{7} -all"), "\(text)")
    }

    @Test func tooManySpfLookupsAndAMissingIncludeAreProblems() throws {
        let box = try Self.workspace(key: nil)
        var zone: [String: Any] = [Self.domain: ["TXT": ["v=spf1 include:a.relay.example include:b.relay.example -all"], "MX": [[10, "mx1.fairrates.example"]]],
                                   "mx1.fairrates.example": ["A": ["192.0.2.25"]]]
        zone["a.relay.example"] = ["TXT": ["v=spf1 a mx include:c.relay.example ~all"]]
        zone["b.relay.example"] = ["TXT": ["v=spf1 a mx ptr exists:x.relay.example ~all"]]
        zone["c.relay.example"] = ["TXT": ["v=spf1 a mx a:o.relay.example mx:p.relay.example ~all"]]
        var dns = try TestDNS(zone)
        var (result, checks) = try Self.doctor(box, dns)
        #expect(result.status == 1 && Self.status(checks, "spf-lookups") == "problem", "\(result)")
        #expect(Self.message(checks, "spf-lookups").contains("needs 13 DNS lookups"), "\(result)")

        // An include that includes itself is followed until the count is over 10, no further.
        zone[Self.domain] = ["TXT": ["v=spf1 include:loop.relay.example -all"], "MX": [[10, "mx1.fairrates.example"]]]
        zone["loop.relay.example"] = ["TXT": ["v=spf1 include:loop.relay.example ~all"]]
        dns = try TestDNS(zone)
        (result, checks) = try Self.doctor(box, dns)
        #expect(result.status == 1 && Self.message(checks, "spf-lookups").contains("needs at least 11 DNS lookups"), "\(result)")

        zone[Self.domain] = ["TXT": ["v=spf1 include:a.relay.example include:b.relay.example -all"], "MX": [[10, "mx1.fairrates.example"]]]
        zone["b.relay.example"] = [:] as [String: Any]
        dns = try TestDNS(zone)
        (result, checks) = try Self.doctor(box, dns)
        #expect(result.status == 1 && Self.message(checks, "spf-lookups").contains("include:b.relay.example, which has no SPF record"), "\(result)")
        #expect(Self.status(checks, "spf-relay") == "warning" && Self.message(checks, "spf-relay").contains("cannot tell"), "127.0.0.1 is in no range: \(result)")
    }

    @Test func dkimKeyMissingEmptyOrNotMustersIsAProblemWithTheRecordToPublish() throws {
        let key = try Self.key("ed25519")
        defer { cleanup(key) }
        let other = try Self.key("ed25519")
        defer { cleanup(other) }
        let box = try Self.workspace(key: key)
        let expected = "\(Self.selectorName). IN TXT \"\(key.record)\""
        for (entry, needle) in [(nil, "(no such name in DNS)"),
                                (["A": ["192.0.2.1"]], "(the name exists but holds no record of that type)"),
                                (["TXT": [other.record]], "is not muster's key"),
                                (["TXT": ["v=DKIM1; k=rsa; p=\(other.p)"]], "publishes a k=rsa key but muster signs with ed25519"),
                                (["TXT": ["v=DKIM1; k=ed25519; p="]], "is revoked"),
                                (["TXT": [key.record, other.record]], "holds 2 TXT records")] as [([String: Any]?, String)] {
            var zone = Self.goodZone(key)
            zone[Self.selectorName] = entry
            let dns = try TestDNS(zone)
            let (result, checks) = try Self.doctor(box, dns)
            #expect(result.status == 1, "\(needle): \(result)")
            #expect(Self.status(checks, "dkim") == "problem" && Self.message(checks, "dkim").contains(needle), "\(needle): \(result)")
            #expect(checks["dkim"]?["publish"] as? String == expected, "\(needle): \(result)")
        }
        // An RSA key published split in two strings is muster's own once joined.
        let rsa = try Self.key("rsa")
        defer { cleanup(rsa) }
        #expect(rsa.record.utf8.count > 255)
        var zone = Self.goodZone(key)
        zone[Self.selectorName] = ["TXT": [["v=DKIM1; k=rsa; p=" + rsa.p.prefix(200), String(rsa.p.dropFirst(200))]]]
        let dns = try TestDNS(zone)
        let rsaBox = try Self.workspace(key: rsa)
        let (result, checks) = try Self.doctor(rsaBox, dns)
        #expect(result.status == 0 && Self.status(checks, "dkim") == "ok", "\(result)")
        // The record to publish for an RSA key comes in strings of at most 255 bytes.
        zone[Self.selectorName] = nil
        let (missing, missingChecks) = try Self.doctor(rsaBox, try TestDNS(zone))
        let publish = try #require(missingChecks["dkim"]?["publish"] as? String, "\(missing)")
        let strings = publish.components(separatedBy: "\"").enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
        #expect(strings.count == 2 && strings.allSatisfy { $0.utf8.count <= 255 } && strings.joined() == rsa.record, "\(publish)")
    }

    @Test func withoutMusterSigningTheRelayMustAndSelectorLooksItsKeyUp() throws {
        let key = try Self.key("ed25519")
        defer { cleanup(key) }
        let box = try Self.workspace(key: nil)
        let dns = try TestDNS(Self.goodZone(key))
        var (result, checks) = try Self.doctor(box, dns)
        #expect(result.status == 0, "\(result)")
        #expect(Self.status(checks, "dkim") == "warning" && Self.message(checks, "dkim").contains("your relay must sign with d=fairrates.example"), "\(result)")
        #expect(Self.status(checks, "dmarc-alignment") == "warning", "\(result)")
        (result, checks) = try Self.doctor(box, dns, ["--selector", "muster2026"])
        #expect(result.status == 0 && Self.status(checks, "dkim") == "ok" && Self.message(checks, "dkim").contains("publishes a ed25519 key"), "\(result)")
        (result, checks) = try Self.doctor(box, dns, ["--selector", "relay1"])
        #expect(result.status == 1 && Self.message(checks, "dkim").contains("no DKIM key at relay1._domainkey.fairrates.example"), "\(result)")
    }

    @Test func dmarcMissingNoneOrMisalignedIsReported() throws {
        let key = try Self.key("ed25519")
        defer { cleanup(key) }
        let box = try Self.workspace(key: key)
        var zone = Self.goodZone(key)
        zone["_dmarc.fairrates.example"] = nil
        var (result, checks) = try Self.doctor(box, try TestDNS(zone))
        #expect(result.status == 1 && Self.status(checks, "dmarc") == "problem", "\(result)")
        #expect(checks["dmarc"]?["publish"] as? String == "_dmarc.fairrates.example. IN TXT \"v=DMARC1; p=none; rua=mailto:hello@fairrates.example\"", "\(result)")

        zone["_dmarc.fairrates.example"] = ["TXT": ["v=DMARC1; p=none"]]
        (result, checks) = try Self.doctor(box, try TestDNS(zone))
        #expect(result.status == 0, "p=none and no rua are warnings: \(result)")
        #expect(Self.status(checks, "dmarc") == "warning" && Self.message(checks, "dmarc").contains("p=none: monitoring only"), "\(result)")
        #expect(Self.status(checks, "dmarc-reports") == "warning", "\(result)")

        zone["_dmarc.fairrates.example"] = ["TXT": ["v=DMARC1; p=reject; rua=mailto:a@fairrates.example", "v=DMARC1; p=none"]]
        (result, checks) = try Self.doctor(box, try TestDNS(zone))
        #expect(result.status == 1 && Self.message(checks, "dmarc").contains("holds 2 DMARC records"), "\(result)")

        // muster signs for another organisation's domain: DKIM does not align with From.
        let misaligned = try Self.workspace(key: key, dkimDomain: "campaign-mail.example")
        zone = Self.goodZone(key)
        zone["muster2026._domainkey.campaign-mail.example"] = zone[Self.selectorName]
        (result, checks) = try Self.doctor(misaligned, try TestDNS(zone))
        #expect(result.status == 1, "\(result)")
        #expect(Self.status(checks, "dkim") == "ok", "the key itself is right: \(result)")
        #expect(Self.status(checks, "dmarc-alignment") == "problem" && Self.message(checks, "dmarc-alignment").contains("d=campaign-mail.example, which does not align"), "\(result)")
        // A subdomain aligns when relaxed, not when strict.
        let sub = try Self.workspace(key: key, dkimDomain: "mail.fairrates.example")
        zone["muster2026._domainkey.mail.fairrates.example"] = zone[Self.selectorName]
        (result, checks) = try Self.doctor(sub, try TestDNS(zone))
        #expect(result.status == 0 && Self.status(checks, "dmarc-alignment") == "ok", "\(result)")
        zone["_dmarc.fairrates.example"] = ["TXT": ["v=DMARC1; p=reject; adkim=s; rua=mailto:d@fairrates.example"]]
        (result, checks) = try Self.doctor(sub, try TestDNS(zone))
        #expect(result.status == 1 && Self.message(checks, "dmarc-alignment").contains("strict alignment"), "\(result)")
    }

    @Test func noMxNullMxAndANonexistentDomainAreProblems() throws {
        let key = try Self.key("ed25519")
        defer { cleanup(key) }
        let box = try Self.workspace(key: key)
        for (mx, needle) in [([] as [[Any]], "has no MX record (the name exists but holds no record of that type)"),
                             ([[0, ""]], "null MX"),
                             ([[10, "gone.fairrates.example"]], "has an address in DNS")] {
            var zone = Self.goodZone(key)
            var apex = zone[Self.domain] as! [String: Any]
            apex["MX"] = mx
            zone[Self.domain] = apex
            let (result, checks) = try Self.doctor(box, try TestDNS(zone))
            #expect(result.status == 1 && Self.status(checks, "mx") == "problem" && Self.message(checks, "mx").contains(needle), "\(needle): \(result)")
        }
        let (result, checks) = try Self.doctor(box, try TestDNS(["other.example": [:] as [String: Any]]))
        #expect(result.status == 1 && Array(checks.keys) == ["domain"] && Self.message(checks, "domain").contains("does not exist in DNS (NXDOMAIN)"), "\(result)")
    }

    @Test func aServerThatNeverAnswersOrFailsExits69WithAClearMessage() throws {
        let box = try Self.workspace(key: nil)
        let silent = try TestDNS([:], mode: "silent")
        let result = try box.run(["mail", "doctor", "--dns", silent.address, "--timeout", "1"])
        #expect(result.status == 69, "\(result)")
        #expect(result.stderr.contains("no answer from DNS in 2 s (DNS server \(silent.address), 2 tries of 1 s"), "\(result)")
        #expect(result.stdout.isEmpty, "nothing judged: \(result)")
        let json = try box.run(["mail", "doctor", "--json", "--timeout", "1"], environment: ["MUSTER_DNS_SERVER": silent.address])
        #expect(json.status == 69 && json.stdout.isEmpty, "\(json)")

        let failing = try TestDNS([Self.domain: ["SERVFAIL": true]])
        let servfail = try box.run(["mail", "doctor", "--dns", failing.address])
        #expect(servfail.status == 69 && servfail.stderr.contains("failed to answer for TXT fairrates.example (SERVFAIL or REFUSED)"), "\(servfail)")
    }

    @Test func anInternationalisedDomainIsLookedUpInItsASCIIForm() throws {
        let box = try Self.workspace(key: nil)
        let dns = try TestDNS(["xn--bcher-kva.example": ["TXT": ["v=spf1 ip4:127.0.0.0/8 -all"], "MX": [[10, "mx.xn--bcher-kva.example"]]],
                               "mx.xn--bcher-kva.example": ["A": ["192.0.2.25"]],
                               "_dmarc.xn--bcher-kva.example": ["TXT": ["v=DMARC1; p=reject; rua=mailto:d@xn--bcher-kva.example"]]])
        let (result, checks) = try Self.doctor(box, dns, ["--domain", "Bücher.example"])
        #expect(result.status == 0, "\(result)")
        #expect(try result.json()["domain"] as? String == "xn--bcher-kva.example")
        #expect(Self.status(checks, "spf") == "ok" && Self.status(checks, "dmarc") == "ok" && Self.status(checks, "mx") == "ok", "\(result)")
    }

    @Test func badSettingsAreUsageErrors() throws {
        let box = try Self.workspace(key: nil)
        for (arguments, needle) in [(["--dns", "dns.example"], "--dns: 'dns.example' is not a DNS server address"),
                                    (["--dns", "127.0.0.1:99999"], "the port must be a number from 1 to 65535"),
                                    (["--timeout", "0"], "--timeout must be from 1 to 60"),
                                    (["--domain", "no spaces.example"], "is not a domain name muster can look up"),
                                    (["--domain", "localhost"], "at least two labels")] {
            let result = try box.run(["mail", "doctor"] + arguments)
            #expect(result.status == 64 && result.stderr.contains(needle), "\(arguments): \(result)")
        }
        try box.write("muster.yaml", "smtp:\n  url: smtp://127.0.0.1:2525\n")
        let noSender = try box.run(["mail", "doctor", "--dns", "127.0.0.1:9"])
        #expect(noSender.status == 64 && noSender.stderr.contains("no sender: set 'sender' in muster.yaml"), "\(noSender)")
        let key = try Self.key("ed25519")
        defer { cleanup(key) }
        let signing = try Self.workspace(key: key)
        let both = try signing.run(["mail", "doctor", "--selector", "x"])
        #expect(both.status == 64, "\(both)")
    }

    @Test func anUnusableKeyIsAProblemAndTheRestIsStillChecked() throws {
        let key = try Self.key("ed25519")
        defer { cleanup(key) }
        let box = try Self.workspace(key: key)
        chmod(key.file.path, 0o644)
        let (result, checks) = try Self.doctor(box, try TestDNS(Self.goodZone(key)))
        #expect(result.status == 1 && Self.message(checks, "dkim").contains("can be read by others (mode 644)"), "\(result)")
        #expect(Self.status(checks, "spf") == "ok" && Self.status(checks, "mx") == "ok", "\(result)")
    }

    /// Every key `--json` prints is named in docs/reference.md's section for the command.
    @Test func everyJSONKeyIsDocumented() throws {
        let key = try Self.key("ed25519")
        defer { cleanup(key) }
        let box = try Self.workspace(key: key)
        var zone = Self.goodZone(key)
        zone[Self.selectorName] = nil
        let (result, _) = try Self.doctor(box, try TestDNS(zone))
        let reference = try String(contentsOf: MusterBinary.packageRoot.appendingPathComponent("docs/reference.md"), encoding: .utf8)
        let section = try #require(reference.components(separatedBy: "## `muster mail doctor`").dropFirst().first?.components(separatedBy: "\n## ").first)
        var keys = Set(try result.json().keys)
        for check in try result.json()["checks"] as! [[String: Any]] { keys.formUnion(check.keys) }
        #expect(keys.isSuperset(of: ["checks", "check", "status", "message", "records", "publish", "name"]))
        for key in keys { #expect(section.contains("`\(key)`"), "docs/reference.md does not name \(key)") }
    }
}
