import Foundation

/// `muster mail doctor`: what a receiver will think of mail from the sender's domain,
/// looked up in DNS — SPF, the DKIM key, DMARC policy and alignment, MX — each as ok,
/// warning or problem with a sentence saying what to change.
public struct MailDoctor: Sendable {
    public enum Status: String, Sendable, Encodable, Comparable {
        case ok, warning, problem

        public static func < (lhs: Status, rhs: Status) -> Bool {
            let order: [Status] = [.ok, .warning, .problem]
            return order.firstIndex(of: lhs)! < order.firstIndex(of: rhs)!
        }
    }

    /// One finding. `name` is the DNS name looked at, `records` what it holds, `publish`
    /// the exact record to publish when muster knows it.
    public struct Finding: Sendable, Encodable, Equatable {
        public let check: String
        public let status: Status
        public let name: String?
        public let records: [String]?
        public let message: String
        public let publish: String?

        init(_ check: String, _ status: Status, name: String? = nil, records: [String]? = nil, _ message: String, publish: String? = nil) {
            self.check = check
            self.status = status
            self.name = name
            self.records = records
            self.message = message
            self.publish = publish
        }
    }

    /// muster's own DKIM signing (`dkim:` in muster.yaml).
    public struct OwnKey: Sendable {
        public let domain: String
        public let selector: String
        /// The public key muster signs with, nil when its key file cannot be used (`problem`).
        public let publicKey: [UInt8]?
        /// `k=` of that key: `rsa` or `ed25519`.
        public let keyType: String?
        /// The TXT record muster's key needs (`DKIMSigner.dnsRecord`).
        public let record: String?
        public let problem: String?

        public init(domain: String, selector: String, publicKey: [UInt8]?, keyType: String?, record: String?, problem: String?) {
            self.domain = domain
            self.selector = selector
            self.publicKey = publicKey
            self.keyType = keyType
            self.record = record
            self.problem = problem
        }

        public init(signer: DKIMSigner) {
            self.init(domain: signer.domain, selector: signer.selector, publicKey: Array(Data(base64Encoded: signer.publicKeyBase64) ?? Data()),
                      keyType: signer.algorithm == .rsaSHA256 ? "rsa" : "ed25519", record: signer.dnsRecord, problem: nil)
        }
    }

    /// The From domain (the sender's), ASCII.
    public let domain: String
    /// The sender address, for the `rua=` of a suggested DMARC record.
    public let senderAddress: String?
    public let ownKey: OwnKey?
    /// A selector the relay signs with (`--selector`), when muster does not sign.
    public let relaySelector: String?
    /// The relay's host name or address (from smtp.url), for the SPF coverage guess.
    public let relayHost: String?

    public init(domain: String, senderAddress: String?, ownKey: OwnKey?, relaySelector: String?, relayHost: String?) {
        self.domain = domain.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "."))
        self.senderAddress = senderAddress
        self.ownKey = ownKey
        self.relaySelector = relaySelector
        self.relayHost = relayHost
    }

    /// Runs every check. DNS that does not answer stops the run (`DNSFailure`): a
    /// missing record is a finding, an unreachable server is not.
    public func run(_ dns: any DNSLookup) throws(DNSFailure) -> [Finding] {
        let txt = try dns.lookup(domain, .txt)
        if txt == .nxDomain {
            return [Finding("domain", .problem, name: domain,
                            "\(domain) does not exist in DNS (NXDOMAIN): receivers refuse mail from a domain that does not exist. Register it, or set sender in muster.yaml to an address at a domain you own.")]
        }
        var findings = try spf(txt, dns)
        findings += try dkim(dns)
        findings += try dmarc(dns)
        findings += try mx(dns)
        return findings
    }

    // MARK: SPF

    func spf(_ answer: DNSAnswer, _ dns: any DNSLookup) throws(DNSFailure) -> [Finding] {
        let spf = Self.texts(answer, of: SPFRecord.isSPF)
        let record: SPFRecord
        switch OneRecord(spf, parse: SPFRecord.init(parsing:)) {
        case .missing:
            return [Finding("spf", .problem, name: domain, records: [],
                            "\(domain) publishes no SPF record (\(describe(answer))): receivers cannot tell which servers may send as \(domain) and treat its mail as suspect. Publish one TXT record naming your relay, as your mail provider documents it (for example v=spf1 include:_spf.provider.example ~all).")]
        case .several:
            return [Finding("spf", .problem, name: domain, records: spf,
                            "\(domain) has \(spf.count) SPF records: receivers treat that as a permanent error (RFC 7208 §4.5), so SPF fails for all its mail. Merge them into one record.")]
        case .unreadable(let error):
            return [Finding("spf", .problem, name: domain, records: spf,
                            "the SPF record of \(domain) cannot be read (\(error.message)): receivers treat it as a permanent error and SPF fails. Fix the record.")]
        case .one(let one):
            record = one
        }
        var walk = SPFWalk()
        let all = try walk.visit(record, domain: domain, dns: dns, depth: 0)
        var findings: [Finding] = []
        let ending = all.map { "\($0.qualifier == .pass ? "+" : String($0.qualifier.rawValue))all" }
        switch all?.qualifier {
        case .fail?:
            findings.append(Finding("spf", .ok, name: domain, records: spf,
                                    "\(domain) has one SPF record ending in \(ending!): receivers may reject mail from servers it does not list."))
        case .softfail?:
            findings.append(Finding("spf", .ok, name: domain, records: spf,
                                    "\(domain) has one SPF record ending in ~all: receivers mark mail from servers it does not list as suspect (softfail), and DMARC decides."))
        case .neutral?:
            findings.append(Finding("spf", .warning, name: domain, records: spf,
                                    "the SPF record of \(domain) ends in ?all (neutral): it says nothing about servers it does not list, so it protects nobody. End it in ~all or -all."))
        case .pass?:
            findings.append(Finding("spf", .problem, name: domain, records: spf,
                                    "the SPF record of \(domain) ends in +all: it allows every server on the Internet to send as \(domain), so receivers give it no weight and spam filters count it against you. End it in ~all or -all."))
        case nil:
            findings.append(Finding("spf", .warning, name: domain, records: spf,
                                    "the SPF record of \(domain) has no all at the end: servers it does not list get a neutral result. End it in ~all or -all."))
        }
        if !walk.broken.isEmpty {
            findings.append(Finding("spf-lookups", .problem, name: domain,
                                    "the SPF record of \(domain) brings in \(walk.broken.joined(separator: "; ")): receivers stop with a permanent error and SPF fails. Fix or remove those terms."))
        } else if walk.lookups > 10 {
            findings.append(Finding("spf-lookups", .problem, name: domain,
                                    "the SPF record of \(domain) needs \(walk.stopped ? "at least " : "")\(walk.lookups) DNS lookups (include, a, mx, ptr, exists, redirect, counted through every include); receivers stop at 10 (RFC 7208 §4.6.4) and SPF fails with a permanent error. Remove includes you no longer use, or replace some with ip4:/ip6: ranges."))
        } else if walk.lookups >= 9 {
            findings.append(Finding("spf-lookups", .warning, name: domain,
                                    "the SPF record of \(domain) needs \(walk.lookups) of the 10 DNS lookups receivers allow: one more include and SPF fails for all its mail."))
        } else {
            findings.append(Finding("spf-lookups", .ok, name: domain, "the SPF record of \(domain) needs \(walk.lookups) of the 10 DNS lookups receivers allow."))
        }
        findings.append(try relayCoverage(walk, dns))
        return findings
    }

    /// Best effort: whether the relay seems to be among the servers SPF lists.
    func relayCoverage(_ walk: SPFWalk, _ dns: any DNSLookup) throws(DNSFailure) -> Finding {
        guard let relay = relayHost?.lowercased() else {
            return Finding("spf-relay", .warning, name: domain,
                           "no relay is set (smtp.url in muster.yaml or MUSTER_SMTP_URL), so muster cannot tell whether SPF lists it.")
        }
        var addresses: [String] = []
        if DomainNames.ipv4Value(relay) != nil {
            addresses = [relay]
        } else if !relay.contains(":") {
            addresses = try dns.lookup(relay, .a).records.compactMap { if case .a(let ip) = $0 { return ip } else { return nil } }
        }
        if let network = walk.ipv4.first(where: { network in addresses.contains { DomainNames.ipv4(_: $0, isIn: network) } }) {
            return Finding("spf-relay", .ok, name: domain, "the relay \(relay) is covered: its address is in ip4:\(network) of the SPF record of \(domain).")
        }
        if walk.hosts.contains(relay) {
            return Finding("spf-relay", .ok, name: domain, "the relay \(relay) is named by an a: term of the SPF record of \(domain).")
        }
        let relayOrg = DomainNames.organizational(relay)
        if DomainNames.ipv4Value(relay) == nil, let match = walk.includes.first(where: { DomainNames.organizational($0) == relayOrg }) {
            return Finding("spf-relay", .ok, name: domain,
                           "the relay \(relay) appears covered: the SPF record of \(domain) includes \(match), the same provider. (The server that delivers your mail may differ from the one muster hands it to; a test message's spf=pass settles it.)")
        }
        return Finding("spf-relay", .warning, name: domain,
                       "muster cannot tell whether the SPF record of \(domain) covers the relay \(relay): no ip4: range, a: name or include: of the same provider matches it (relays often deliver from other machines than the one muster talks to). Check your provider's SPF instructions, or send yourself a test message and look for spf=pass.")
    }

    /// Follows include: and redirect= through DNS, counting lookups (bounded: at most 10
    /// levels and 30 records).
    struct SPFWalk {
        var lookups = 0
        var broken: [String] = []
        var ipv4: [String] = []
        var hosts: Set<String> = []
        var includes: [String] = []
        /// Records left unread because the count was already over 10 (or the includes ran
        /// too deep): `lookups` is then a lower bound.
        var stopped = false
        var records = 0

        /// Visits `record` (published at `domain`); returns its effective `all`: its own,
        /// else that of the record its redirect= names.
        @discardableResult
        mutating func visit(_ record: SPFRecord, domain: String, dns: any DNSLookup, depth: Int) throws(DNSFailure) -> SPFRecord.Mechanism? {
            records += 1
            lookups += record.lookupTerms
            for mechanism in record.mechanisms {
                switch mechanism.name {
                case "ip4": if let value = mechanism.argument, mechanism.qualifier == .pass { ipv4.append(value) }
                case "a":
                    if mechanism.qualifier == .pass {
                        let target = mechanism.argument.flatMap { $0.hasPrefix("/") ? nil : $0.split(separator: "/").first.map(String.init) } ?? domain
                        hosts.insert(target.lowercased())
                    }
                case "include":
                    guard let target = mechanism.argument?.lowercased() else { continue }
                    includes.append(target)
                    if target.contains("%") { continue } // a macro: expanded per message
                    _ = try follow(target, as: "include:\(target)", dns: dns, depth: depth)
                default: break
                }
            }
            if let all = record.all { return all }
            guard let target = record.redirect?.lowercased(), !target.contains("%") else { return nil }
            includes.append(target)
            return try follow(target, as: "redirect=\(target)", dns: dns, depth: depth)
        }

        mutating func follow(_ target: String, as term: String, dns: any DNSLookup, depth: Int) throws(DNSFailure) -> SPFRecord.Mechanism? {
            guard depth < 10, records < 30, lookups <= 10 else {
                stopped = true
                return nil
            }
            let texts = MailDoctor.texts(try dns.lookup(target, .txt), of: SPFRecord.isSPF)
            let record: SPFRecord
            switch OneRecord(texts, parse: SPFRecord.init(parsing:)) {
            case .missing:
                broken.append("\(term), which has no SPF record")
                return nil
            case .several:
                broken.append("\(term), which has \(texts.count) SPF records")
                return nil
            case .unreadable(let error):
                broken.append("\(term), whose record cannot be read (\(error.message))")
                return nil
            case .one(let one):
                record = one
            }
            return try visit(record, domain: target, dns: dns, depth: depth + 1)
        }
    }

    // MARK: DKIM

    func dkim(_ dns: any DNSLookup) throws(DNSFailure) -> [Finding] {
        guard let selector = ownKey?.selector ?? relaySelector else {
            return [Finding("dkim", .warning,
                            "muster does not sign (no dkim: in muster.yaml), so your relay must sign with d=\(domain) (or a domain aligned with it) for DMARC to pass through DKIM. muster cannot know the relay's selector: give it with --selector, or check a test message's Authentication-Results for dkim=pass. Or let muster sign (docs/mail.md, DKIM signing by muster).")]
        }
        let keyDomain = ownKey?.domain ?? domain
        let name = "\(selector)._domainkey.\(keyDomain)"
        let answer = try dns.lookup(name, .txt)
        let texts = Self.texts(answer)
        let publish = ownKey?.record.map { txtRecord(name, $0) }
        var findings: [Finding] = []
        if let problem = ownKey?.problem {
            findings.append(Finding("dkim", .problem, name: name, records: texts,
                                    "muster cannot use its DKIM key (\(problem)): mail send refuses to send until it can. Fix dkim: in muster.yaml, then run mail doctor again to compare the key with DNS."))
        }
        let record: DKIMKeyRecord
        switch OneRecord(texts, parse: DKIMKeyRecord.init(parsing:)) {
        case .missing:
            let signer = ownKey == nil ? "the relay's signatures with selector \(selector)" : "muster's signatures"
            findings.append(Finding("dkim", .problem, name: name, records: [],
                                    "no DKIM key at \(name) (\(describe(answer))): receivers cannot verify \(signer), so DKIM fails and DMARC can pass only through SPF. "
                                        + (publish == nil ? "Publish the key your relay gives you there." : "Publish muster's key:"),
                                    publish: publish))
            return findings
        case .several:
            findings.append(Finding("dkim", .problem, name: name, records: texts,
                                    "\(name) holds \(texts.count) TXT records: receivers may use either, and verification fails when they pick the wrong one. Keep only one."
                                        + (publish == nil ? "" : " muster's is:"),
                                    publish: publish))
            return findings
        case .unreadable(let error):
            findings.append(Finding("dkim", .problem, name: name, records: texts,
                                    "the DKIM record at \(name) cannot be read (\(error.message)): receivers cannot verify signatures with it." + (publish == nil ? "" : " Publish instead:"),
                                    publish: publish))
            return findings
        case .one(let one):
            record = one
        }
        guard !record.publicKey.isEmpty else {
            findings.append(Finding("dkim", .problem, name: name, records: texts,
                                    "the DKIM key at \(name) is revoked (p= is empty): every signature with selector \(selector) fails." + (publish == nil ? "" : " Publish muster's key:"),
                                    publish: publish))
            return findings
        }
        guard let own = ownKey, let key = own.publicKey else {
            if ownKey == nil {
                findings.append(Finding("dkim", record.testing ? .warning : .ok, name: name, records: texts,
                                        "\(name) publishes a \(record.keyType) key. muster does not sign, so it cannot tell whether this is the key your relay signs with; a test message's dkim=pass settles it."
                                            + (record.testing ? " t=y marks it as testing: receivers treat failures as unsigned mail; remove t=y once tested." : "")))
            }
            return findings
        }
        if record.keyType != own.keyType {
            findings.append(Finding("dkim", .problem, name: name, records: texts,
                                    "\(name) publishes a k=\(record.keyType) key but muster signs with \(own.keyType ?? "another") (dkim.key): every message muster signs fails DKIM. Publish:",
                                    publish: publish))
        } else if !record.publishes(key) {
            findings.append(Finding("dkim", .problem, name: name, records: texts,
                                    "the key at \(name) is not muster's key (dkim.key in muster.yaml): every message muster signs fails DKIM. Publish muster's key instead, or point dkim.key at the key that matches:",
                                    publish: publish))
        } else if record.testing {
            findings.append(Finding("dkim", .warning, name: name, records: texts,
                                    "\(name) publishes muster's key with t=y (testing): receivers treat failing signatures as unsigned mail. Remove t=y once a test message shows dkim=pass."))
        } else {
            findings.append(Finding("dkim", .ok, name: name, records: texts,
                                    "\(name) publishes muster's \(own.keyType ?? "") key: receivers can verify every message muster signs (d=\(own.domain))."))
        }
        return findings
    }

    // MARK: DMARC

    func dmarc(_ dns: any DNSLookup) throws(DNSFailure) -> [Finding] {
        var name = "_dmarc.\(domain)"
        var answer = try dns.lookup(name, .txt)
        var records = Self.texts(answer, of: DMARCRecord.isDMARC)
        var inherited = false
        let organizational = DomainNames.organizational(domain)
        if records.isEmpty, organizational != domain {
            let parent = try dns.lookup("_dmarc.\(organizational)", .txt)
            let found = Self.texts(parent, of: DMARCRecord.isDMARC)
            if !found.isEmpty {
                name = "_dmarc.\(organizational)"
                answer = parent
                records = found
                inherited = true
            }
        }
        let suggested = txtRecord("_dmarc.\(domain)", "v=DMARC1; p=none; rua=mailto:\(senderAddress ?? "dmarc-reports@\(domain)")")
        let record: DMARCRecord
        switch OneRecord(records, parse: DMARCRecord.init(parsing:)) {
        case .missing:
            return [Finding("dmarc", .problem, name: name, records: [],
                            "no DMARC record at \(name) (\(describe(answer))): large mailbox providers require one of bulk senders, and without it anyone can send as \(domain) unchecked. Start by collecting reports:",
                            publish: suggested)]
        case .several:
            return [Finding("dmarc", .problem, name: name, records: records,
                            "\(name) holds \(records.count) DMARC records: receivers ignore DMARC for \(domain) altogether (RFC 7489 §6.6.3). Keep only one.")]
        case .unreadable(let error):
            return [Finding("dmarc", .problem, name: name, records: records,
                            "the DMARC record at \(name) cannot be read (\(error.message)): receivers ignore it. Fix it, for example:", publish: suggested)]
        case .one(let one):
            record = one
        }
        var findings: [Finding] = []
        let policy = inherited ? (record.subdomainPolicy ?? record.policy) : record.policy
        let from = inherited ? " (inherited by \(domain))" : ""
        switch policy {
        case "none":
            findings.append(Finding("dmarc", .warning, name: name, records: records,
                                    "the DMARC policy\(from) is p=none: monitoring only, so receivers deliver mail that fails DMARC anyway and anyone can still send as \(domain). Once the reports show your mail passes, move to p=quarantine, then p=reject."))
        default:
            findings.append(Finding("dmarc", .ok, name: name, records: records,
                                    "the DMARC policy\(from) is p=\(policy)\(record.percent < 100 ? " for \(record.percent)% of failing mail" : ""): receivers \(policy == "reject" ? "refuse" : "put in spam") mail as \(domain) that fails both SPF and DKIM alignment."))
        }
        findings.append(alignment(record))
        if record.reportAddresses.isEmpty {
            findings.append(Finding("dmarc-reports", .warning, name: name, records: records,
                                    "the DMARC record has no rua=: receivers send you no reports, so you cannot see who sends as \(domain) or whether your own mail passes. Add rua=mailto:<an address that reads them>."))
        } else {
            findings.append(Finding("dmarc-reports", .ok, name: name, records: records,
                                    "aggregate reports go to \(record.reportAddresses.joined(separator: ", "))."))
        }
        return findings
    }

    /// DMARC passes when SPF or DKIM passes for a domain aligned with the From domain.
    func alignment(_ record: DMARCRecord) -> Finding {
        let mode = { (strict: Bool) in strict ? "strict" : "relaxed" }
        let spf = "SPF: muster sends MAIL FROM the sender, at \(domain), which aligns — unless your relay replaces the return path with its own domain, as many do."
        guard let own = ownKey else {
            return Finding("dmarc-alignment", .warning,
                           "\(spf) DKIM: muster does not sign, so alignment rests on the relay signing with d=\(domain) (\(mode(record.strictDKIM)) alignment); muster cannot check that.")
        }
        if DomainNames.aligned(own.domain, domain, strict: record.strictDKIM) {
            return Finding("dmarc-alignment", .ok,
                           "DKIM: muster signs with d=\(own.domain), aligned with From: \(domain) (\(mode(record.strictDKIM)) alignment), so DMARC passes whatever the relay does to the return path. \(spf)")
        }
        return Finding("dmarc-alignment", .problem,
                       "DKIM: muster signs with d=\(own.domain), which does not align with From: \(domain) (\(mode(record.strictDKIM)) alignment, adkim=\(record.strictDKIM ? "s" : "r")): DMARC ignores that signature and rests on SPF alone. Set dkim.domain in muster.yaml to \(domain) (or a parent of it) and publish the key there\(record.strictDKIM ? ", or relax adkim" : ""). \(spf)")
    }

    // MARK: MX

    func mx(_ dns: any DNSLookup) throws(DNSFailure) -> [Finding] {
        let answer = try dns.lookup(domain, .mx)
        let hosts = answer.records.compactMap { record -> (Int, String)? in
            if case .mx(let preference, let host) = record { return (preference, host.lowercased()) }
            return nil
        }.sorted { $0.0 < $1.0 }
        let shown = hosts.map { "\($0.0) \($0.1.isEmpty ? "." : $0.1)" }
        guard !hosts.isEmpty else {
            return [Finding("mx", .problem, name: domain, records: [],
                            "\(domain) has no MX record (\(describe(answer))): replies and bounces to \(domain) have nowhere to go, and some receivers refuse mail from a domain that cannot receive any. Publish the MX records your mail provider gives you.")]
        }
        if hosts.count == 1, hosts[0].1.isEmpty {
            return [Finding("mx", .problem, name: domain, records: shown,
                            "\(domain) publishes a null MX (0 ., RFC 7505): it declares that it receives no mail, so replies and bounces are lost and receivers may refuse its mail. Publish the MX records of a mailbox that reads them.")]
        }
        var unreachable: [String] = []
        for (_, host) in hosts.prefix(5) where !host.isEmpty {
            let v4 = try dns.lookup(host, .a)
            if v4.records.isEmpty, try dns.lookup(host, .aaaa).records.isEmpty { unreachable.append(host) }
        }
        let checked = hosts.prefix(5).filter { !$0.1.isEmpty }.count
        if unreachable.count == checked {
            return [Finding("mx", .problem, name: domain, records: shown,
                            "none of the MX hosts of \(domain) (\(unreachable.joined(separator: ", "))) has an address in DNS: replies and bounces cannot be delivered. Fix the MX records or the hosts' A/AAAA records.")]
        }
        if !unreachable.isEmpty {
            return [Finding("mx", .warning, name: domain, records: shown,
                            "the MX hosts \(unreachable.joined(separator: ", ")) of \(domain) have no address in DNS: mail falls back to the others. Fix or remove them.")]
        }
        return [Finding("mx", .ok, name: domain, records: shown,
                        "replies and bounces to \(domain) go to \(hosts[0].1)\(hosts.count > 1 ? " (and \(hosts.count - 1) more)" : "").")]
    }

    // MARK: Helpers

    /// The texts of an answer's TXT records (each record's strings joined), only those of
    /// one kind (`v=spf1`, `v=DMARC1`) when `kind` is given.
    static func texts(_ answer: DNSAnswer, of kind: ((String) -> Bool)? = nil) -> [String] {
        let texts = answer.records.compactMap(\.text)
        guard let kind else { return texts }
        return texts.filter(kind)
    }

    /// The record of a kind a name must hold exactly one of (SPF, a DKIM key, DMARC), as
    /// its TXT texts of that kind give it: none, more than one, one that cannot be read,
    /// or the one, read.
    enum OneRecord<Record> {
        case missing
        case several
        case unreadable(RecordError)
        case one(Record)

        init(_ texts: [String], parse: (String) throws(RecordError) -> Record) {
            guard !texts.isEmpty else { self = .missing; return }
            guard texts.count == 1 else { self = .several; return }
            do {
                self = .one(try parse(texts[0]))
            } catch {
                self = .unreadable(error)
            }
        }
    }

    func describe(_ answer: DNSAnswer) -> String {
        switch answer {
        case .nxDomain: return "no such name in DNS"
        case .noData: return "the name exists but holds no record of that type"
        case .records: return "the name holds other records only"
        }
    }

    /// A TXT record in zone-file form, split into strings of at most 255 bytes.
    public func txtRecord(_ name: String, _ text: String) -> String {
        var chunks: [String] = []
        var rest = Substring(text)
        while !rest.isEmpty {
            chunks.append("\"\(rest.prefix(255))\"")
            rest = rest.dropFirst(255)
        }
        return "\(name). IN TXT \(chunks.joined(separator: " "))"
    }
}
