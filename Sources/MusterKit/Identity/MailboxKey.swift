import Foundation

/// Which spellings of an address reach one inbox, and so count as one person: the rules
/// `MailboxKey` applies. The built-in provider table (`providers`) is the only place
/// provider knowledge lives; a workspace adds to it with `dedupe:` in `muster.yaml`
/// (`MailboxRules.parse`). docs/identity.md ("Who counts as one person") has the table.
public struct MailboxRules: Sendable, Equatable {
    /// What one domain adds to the workspace-wide rules.
    public struct DomainRule: Sendable, Equatable {
        /// Sub-address separators used here besides the workspace-wide ones.
        public var separators: [Character]
        /// Dots in the local part are ignored (`a.na` is `ana`).
        public var ignoreDots: Bool
        /// Other domains that are the same mailboxes (`googlemail.com` for `gmail.com`).
        public var sameAs: [String]

        public init(separators: [Character] = [], ignoreDots: Bool = false, sameAs: [String] = []) {
            self.separators = separators
            self.ignoreDots = ignoreDots
            self.sameAs = sameAs
        }
    }

    /// `dedupe.keep_tags`: when true, `ana+1@` and `ana@` are different people.
    public var keepTags: Bool
    /// `dedupe.separators`: sub-address separators for every domain (RFC 5233's `+`).
    public var separators: [Character]
    /// The rule of each domain (ASCII, A-label form): the provider table, then the
    /// workspace's `dedupe.domains`, which win for the same domain.
    public private(set) var domains: [String: DomainRule]
    /// Each `same_as` domain, mapped to the domain whose rule names it.
    public private(set) var primaryDomain: [String: String]

    public init(keepTags: Bool = false, separators: [Character] = ["+"], domains extra: [String: DomainRule] = [:]) {
        self.keepTags = keepTags
        self.separators = separators
        var merged = Self.providers
        var primary: [String: String] = [:]
        for (domain, rule) in Self.providers {
            for alias in rule.sameAs where alias != domain { primary[alias] = domain }
        }
        // The workspace's rules win over the table's, for a domain and for an alias.
        for (domain, rule) in extra.sorted(by: { $0.key < $1.key }) {
            merged[domain] = rule
            primary[domain] = nil
            primary = primary.filter { $0.value != domain } // the table's same_as goes with its rule
            for alias in rule.sameAs where alias != domain { primary[alias] = domain }
        }
        domains = merged
        primaryDomain = primary
    }

    /// The rules with no `dedupe:` section.
    public static let standard = MailboxRules()

    /// The provider table: only what each provider documents, with its source.
    ///
    /// | Domain(s) | Rule | Source |
    /// |---|---|---|
    /// | gmail.com ≡ googlemail.com | dots ignored, `+` tags | Google Gmail Help: "Dots don't matter in Gmail addresses" (support.google.com/mail/answer/7436150), "Create task-specific email addresses" (`+`), and its page on googlemail.com being the same address as gmail.com |
    /// | outlook.com, hotmail.com, live.com, msn.com | `+` tags; dots count; each domain its own mailboxes | Microsoft Support: plus addressing in Outlook.com |
    /// | yahoo.com | `-` separates a disposable address from its base name | Yahoo Help: "Create and manage disposable email addresses" (AddressGuard) |
    /// | icloud.com ≡ me.com ≡ mac.com | `+` tags | Apple Support: iCloud Mail addresses (an @me.com or @mac.com address also receives at @icloud.com) |
    /// | proton.me ≡ protonmail.com ≡ protonmail.ch ≡ pm.me | `+` tags | Proton Support: "Email addresses and aliases" (the @pm.me short form, `+` aliases) |
    ///
    /// Not in the table, because the provider does not document it: Proton ignoring dots,
    /// hyphens and underscores (reported by users only), Outlook.com ignoring dots (it does
    /// not). A workspace that wants them adds them under `dedupe.domains`.
    public static let providers: [String: DomainRule] = [
        "gmail.com": DomainRule(ignoreDots: true, sameAs: ["googlemail.com"]),
        "outlook.com": DomainRule(),
        "hotmail.com": DomainRule(),
        "live.com": DomainRule(),
        "msn.com": DomainRule(),
        "yahoo.com": DomainRule(separators: ["-"]),
        "icloud.com": DomainRule(sameAs: ["me.com", "mac.com"]),
        "proton.me": DomainRule(sameAs: ["protonmail.com", "protonmail.ch", "pm.me"]),
    ]

    /// The effective rule for a canonical domain and the domain the key uses.
    func rule(for domain: String) -> (domain: String, rule: DomainRule?) {
        let primary = primaryDomain[domain] ?? domain
        return (primary, domains[primary])
    }
}

/// The mailbox key: one value per inbox, for duplicate checks. Separate from the
/// canonical address (kept for delivery and inside the hash chain's fingerprints).
public enum MailboxKey {
    /// The key of `address` under `rules`: the canonical domain (A-labels; a `same_as`
    /// domain replaced by its primary), the local part compatibility-folded (NFKC) and
    /// case-folded, the sub-address tag (from the first separator on) removed unless
    /// `keepTags`, dots removed where the domain ignores them. A quoted local part is
    /// only folded. Throws what `EmailAddress.canonical` throws for an invalid address.
    ///
    /// A pure function: the same address and rules give the same key on every machine.
    public static func key(for address: String, rules: MailboxRules = .standard) throws(EmailAddress.Problem) -> String {
        try key(forCanonical: EmailAddress.canonical(address), rules: rules)
    }

    /// `key(for:rules:)` of an address already in canonical form (what
    /// `EmailAddress.canonical` returned for it), without canonicalising it again.
    static func key(forCanonical canonical: String, rules: MailboxRules) throws(EmailAddress.Problem) -> String {
        if let plain = plainASCIIKey(canonical, rules: rules) { return plain }
        return try characterKey(forCanonical: canonical, rules: rules)
    }

    /// `key(forCanonical:rules:)` character by character: the definition, for any address.
    static func characterKey(forCanonical canonical: String, rules: MailboxRules) throws(EmailAddress.Problem) -> String {
        guard let at = canonical.lastIndex(of: "@") else { throw .noAt }
        let (domain, rule) = rules.rule(for: String(canonical[canonical.index(after: at)...]))
        let local = folded(String(canonical[..<at]))
        if local.hasPrefix("\"") { return local + "@" + domain }
        var mailbox = Substring(local)
        if !rules.keepTags {
            let separators = rules.separators + (rule?.separators ?? [])
            if let cut = mailbox.firstIndex(where: separators.contains), cut != mailbox.startIndex {
                mailbox = mailbox[..<cut]
            }
        }
        var result = String(mailbox)
        if rule?.ignoreDots == true {
            result.removeAll { $0 == "." }
            if result.isEmpty { result = String(mailbox) }
        }
        return result + "@" + domain
    }

    /// The same key for the common case — an ASCII canonical address with an unquoted
    /// local part (already lower-case: canonical addresses are) — byte by byte, without
    /// walking characters (an import computes one per row); nil for anything else.
    static func plainASCIIKey(_ canonical: String, rules: MailboxRules) -> String? {
        var text = canonical
        return text.withUTF8 { bytes -> String? in
            guard bytes.first != UInt8(ascii: "\""), !bytes.contains(where: { $0 >= 0x80 || ($0 >= 0x41 && $0 <= 0x5A) }) else { return nil }
            guard let at = bytes.lastIndex(of: UInt8(ascii: "@")) else { return nil }
            let canonicalDomain = String(decoding: UnsafeBufferPointer(rebasing: bytes[(at + 1)...]), as: UTF8.self)
            let (domain, rule) = rules.rule(for: canonicalDomain)
            var end = at
            if !rules.keepTags {
                if rule?.separators.isEmpty ?? true, rules.separators == ["+"] {
                    // The usual rules: one separator, no array to build.
                    if let cut = bytes[..<at].firstIndex(of: UInt8(ascii: "+")), cut != 0 { end = cut }
                } else {
                    let separators = (rules.separators + (rule?.separators ?? [])).compactMap(\.asciiValue)
                    if let cut = bytes[..<at].firstIndex(where: separators.contains), cut != 0 { end = cut }
                }
            }
            // Most addresses are their own mailbox: the same string, nothing allocated.
            if end == at, domain == canonicalDomain, rule?.ignoreDots != true || !bytes[..<at].contains(UInt8(ascii: ".")) {
                return canonical
            }
            var local = Array(bytes[..<end])
            if rule?.ignoreDots == true {
                let undotted = local.filter { $0 != UInt8(ascii: ".") }
                if !undotted.isEmpty { local = undotted }
            }
            local.append(UInt8(ascii: "@"))
            local.append(contentsOf: domain.utf8)
            return String(decoding: local, as: UTF8.self)
        }
    }

    /// NFKC, then full case folding, then NFKC again (case folding can denormalise).
    static func folded(_ text: String) -> String {
        if TextField.allBytes(of: text, in: 0..<0x80) { return text.lowercased() }
        let compatible = text.precomposedStringWithCompatibilityMapping
        return compatible.folding(options: [.caseInsensitive], locale: nil).precomposedStringWithCompatibilityMapping
    }
}
