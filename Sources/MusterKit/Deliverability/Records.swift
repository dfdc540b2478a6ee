import Foundation

/// An SPF record (RFC 7208 §4.6, §12): its terms in order. Only what the doctor judges is
/// kept: the mechanisms with their qualifier and argument, and the modifiers.
public struct SPFRecord: Sendable, Equatable {
    public enum Qualifier: Character, Sendable {
        case pass = "+", fail = "-", softfail = "~", neutral = "?"
    }

    public struct Mechanism: Sendable, Equatable {
        public let qualifier: Qualifier
        /// `all`, `include`, `a`, `mx`, `ptr`, `ip4`, `ip6`, `exists` (lower-case).
        public let name: String
        /// What follows `:` (or `/` for a bare `a/24`), if anything.
        public let argument: String?
    }

    public let mechanisms: [Mechanism]
    /// `redirect=`, `exp=` and unknown modifiers, name lower-cased.
    public let modifiers: [(name: String, value: String)]

    public static func == (lhs: SPFRecord, rhs: SPFRecord) -> Bool {
        lhs.mechanisms == rhs.mechanisms && lhs.modifiers.map { $0.name } == rhs.modifiers.map { $0.name }
            && lhs.modifiers.map { $0.value } == rhs.modifiers.map { $0.value }
    }

    static let knownMechanisms: Set<String> = ["all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"]

    /// Whether a TXT record is an SPF record: `v=spf1` alone or followed by a space.
    public static func isSPF(_ text: String) -> Bool {
        let lower = text.lowercased()
        return lower == "v=spf1" || lower.hasPrefix("v=spf1 ")
    }

    /// Parses `text`, which `isSPF` accepted; a term it cannot read is the error's message.
    public init(parsing text: String) throws(RecordError) {
        guard Self.isSPF(text) else { throw RecordError("it does not start with v=spf1") }
        var mechanisms: [Mechanism] = []
        var modifiers: [(name: String, value: String)] = []
        for term in text.split(separator: " ").dropFirst() {
            let term = String(term)
            if let equals = term.firstIndex(of: "="), !term[..<equals].contains(":"), !term[..<equals].contains("/") {
                let name = term[..<equals].lowercased()
                guard !name.isEmpty, name.first!.isLetter else { throw RecordError("'\(term)' is not a term SPF knows") }
                modifiers.append((name, String(term[term.index(after: equals)...])))
                continue
            }
            var rest = Substring(term)
            var qualifier = Qualifier.pass
            if let first = rest.first, let given = Qualifier(rawValue: first) {
                qualifier = given
                rest = rest.dropFirst()
            }
            let split = rest.firstIndex { $0 == ":" || $0 == "/" }
            let name = (split.map { rest[..<$0] } ?? rest).lowercased()
            guard Self.knownMechanisms.contains(name) else { throw RecordError("'\(term)' is not a mechanism SPF knows") }
            var argument: String? = nil
            if let split {
                argument = rest[split] == ":" ? String(rest[rest.index(after: split)...]) : String(rest[split...])
                if argument?.isEmpty == true { throw RecordError("'\(term)' has nothing after the colon") }
            }
            if ["include", "exists", "ip4", "ip6"].contains(name), argument == nil {
                throw RecordError("'\(term)' needs a value (\(name):…)")
            }
            if name == "all", argument != nil { throw RecordError("'\(term)': all takes no value") }
            mechanisms.append(Mechanism(qualifier: qualifier, name: name, argument: argument))
        }
        let redirects = modifiers.filter { $0.name == "redirect" }.count
        if redirects > 1 { throw RecordError("redirect= appears \(redirects) times") }
        self.mechanisms = mechanisms
        self.modifiers = modifiers
    }

    /// The `all` mechanism, if any (terms after it are never reached).
    public var all: Mechanism? { mechanisms.first { $0.name == "all" } }
    public var redirect: String? { modifiers.first { $0.name == "redirect" }?.value }

    /// The DNS lookups this record itself costs (RFC 7208 §4.6.4): include, a, mx, ptr,
    /// exists and redirect; the records `include` and `redirect` bring in count too.
    public var lookupTerms: Int {
        mechanisms.filter { ["include", "a", "mx", "ptr", "exists"].contains($0.name) }.count + (redirect == nil ? 0 : 1)
    }
}

/// A record the doctor could not read, and why.
public struct RecordError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A DKIM or DMARC tag list (RFC 6376 §3.2): `tag=value` separated by `;`, white space
/// around either ignored. Tags are case-sensitive; a repeated tag is an error.
public struct TagList: Sendable, Equatable {
    public let tags: [(name: String, value: String)]

    public static func == (lhs: TagList, rhs: TagList) -> Bool {
        lhs.tags.map { $0.name } == rhs.tags.map { $0.name } && lhs.tags.map { $0.value } == rhs.tags.map { $0.value }
    }

    public init(parsing text: String) throws(RecordError) {
        var tags: [(name: String, value: String)] = []
        for part in text.split(separator: ";", omittingEmptySubsequences: false) {
            let trimmed = part.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            guard let equals = trimmed.firstIndex(of: "=") else { throw RecordError("'\(trimmed)' is not tag=value") }
            let name = trimmed[..<equals].trimmingCharacters(in: .whitespaces)
            let value = trimmed[trimmed.index(after: equals)...].trimmingCharacters(in: .whitespacesAndNewlines)
            guard !name.isEmpty, name.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_") }) else {
                throw RecordError("'\(trimmed)' does not start with a tag name")
            }
            guard !tags.contains(where: { $0.name == name }) else { throw RecordError("the tag \(name)= appears twice") }
            tags.append((name, value))
        }
        self.tags = tags
    }

    public subscript(_ name: String) -> String? { tags.first { $0.name == name }?.value }
}

/// A DKIM key record (RFC 6376 §3.6.1).
public struct DKIMKeyRecord: Sendable, Equatable {
    /// `k=`, lower-cased; `rsa` when absent.
    public let keyType: String
    /// `p=` decoded; empty for a revoked key.
    public let publicKey: [UInt8]
    public let testing: Bool

    public init(parsing text: String) throws(RecordError) {
        let tags = try TagList(parsing: text)
        if let version = tags["v"] {
            guard version == "DKIM1" else { throw RecordError("v=\(version) is not v=DKIM1") }
            guard tags.tags.first?.name == "v" else { throw RecordError("v=DKIM1 must come first") }
        }
        keyType = (tags["k"] ?? "rsa").lowercased()
        guard let p = tags["p"] else { throw RecordError("it has no p= (the public key)") }
        let compact = p.filter { !$0.isWhitespace }
        if compact.isEmpty {
            publicKey = []
        } else {
            guard let data = Data(base64Encoded: compact) else { throw RecordError("p= is not base64") }
            publicKey = Array(data)
        }
        testing = (tags["t"] ?? "").split(separator: ":").contains { $0.trimmingCharacters(in: .whitespaces) == "y" }
    }

    /// Whether this record publishes `key` (muster's `publicKeyBase64`). For RSA, muster's
    /// key is a SubjectPublicKeyInfo; a record holding only the PKCS#1 RSAPublicKey inside
    /// it matches too.
    public func publishes(_ key: [UInt8]) -> Bool {
        if publicKey == key { return true }
        return keyType == "rsa" && publicKey.count >= 64 && key.count > publicKey.count && Array(key.suffix(publicKey.count)) == publicKey
    }
}

/// A DMARC record (RFC 7489 §6.3).
public struct DMARCRecord: Sendable, Equatable {
    public let policy: String
    public let subdomainPolicy: String?
    /// `adkim=` / `aspf=`: strict (`s`) or relaxed (`r`, the default).
    public let strictDKIM: Bool
    public let strictSPF: Bool
    public let reportAddresses: [String]
    public let percent: Int

    public static func isDMARC(_ text: String) -> Bool {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard trimmed.hasPrefix("v") else { return false }
        let first = trimmed.split(separator: ";", maxSplits: 1).first.map(String.init) ?? trimmed
        return first.replacingOccurrences(of: " ", with: "") == "v=DMARC1"
    }

    public init(parsing text: String) throws(RecordError) {
        let tags = try TagList(parsing: text)
        guard tags.tags.first?.name == "v", tags["v"] == "DMARC1" else { throw RecordError("it does not start with v=DMARC1") }
        guard let policy = tags["p"]?.lowercased() else { throw RecordError("it has no p= (the policy)") }
        guard ["none", "quarantine", "reject"].contains(policy) else { throw RecordError("p=\(policy) is not none, quarantine or reject") }
        self.policy = policy
        subdomainPolicy = tags["sp"]?.lowercased()
        strictDKIM = tags["adkim"]?.lowercased() == "s"
        strictSPF = tags["aspf"]?.lowercased() == "s"
        reportAddresses = (tags["rua"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        percent = tags["pct"].flatMap(Int.init) ?? 100
    }
}

/// Domain names as DMARC compares them.
public enum DomainNames {
    /// The organizational domain, approximated as the last two labels (muster does not
    /// carry the Public Suffix List, so `example.co.uk` is taken as `co.uk`).
    public static func organizational(_ domain: String) -> String {
        let labels = domain.lowercased().split(separator: ".")
        return labels.suffix(2).joined(separator: ".")
    }

    /// DMARC identifier alignment (RFC 7489 §3.1): equal names when strict, the same
    /// organizational domain when relaxed.
    public static func aligned(_ a: String, _ b: String, strict: Bool) -> Bool {
        let a = a.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: ".")), b = b.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "."))
        return strict ? a == b : organizational(a) == organizational(b)
    }

    /// Whether the IPv4 address `address` is in `network` (`a.b.c.d` or `a.b.c.d/len`).
    public static func ipv4(_ address: String, isIn network: String) -> Bool {
        let parts = network.split(separator: "/", maxSplits: 1)
        let length = parts.count == 2 ? Int(parts[1]) : 32
        guard let length, (0...32).contains(length), let net = ipv4Value(String(parts[0])), let ip = ipv4Value(address) else { return false }
        let mask: UInt32 = length == 0 ? 0 : ~UInt32(0) << UInt32(32 - length)
        return net & mask == ip & mask
    }

    static func ipv4Value(_ text: String) -> UInt32? {
        var address = in_addr()
        guard inet_pton(AF_INET, text, &address) == 1 else { return nil }
        return UInt32(bigEndian: address.s_addr)
    }
}
