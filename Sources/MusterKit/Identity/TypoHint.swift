/// "Did you mean …?" for a domain one typing slip away from a common mail provider:
/// `gmial.com`, `hotmial.com`, `yahooo.com`. A hint only: the address is kept as typed
/// unless the signer takes the suggestion. docs/identity.md ("Typos") describes them.
public enum TypoHint {
    /// The providers a slip is checked against.
    public static let providers: [String] = [
        "gmail.com", "googlemail.com", "hotmail.com", "outlook.com", "live.com", "yahoo.com",
        "icloud.com", "gmx.de", "gmx.net", "web.de", "t-online.de", "proton.me", "protonmail.com",
        "aol.com", "orange.fr", "free.fr", "laposte.net", "wanadoo.fr", "hotmail.fr", "yahoo.fr",
        "hotmail.co.uk", "yahoo.co.uk", "btinternet.com", "libero.it", "mail.ru", "yandex.ru",
        "msn.com", "comcast.net", "posteo.de", "mailbox.org",
    ]

    /// Real domains one slip away from a provider, never "corrected".
    public static let alsoReal: Set<String> = [
        "mail.com", "email.com", "ymail.com", "me.com", "mac.com", "gmx.at", "gmx.ch", "gmx.com",
        "gmx.fr", "live.de", "live.fr", "aim.com", "yahoo.de", "yahoo.es", "yahoo.it", "msn.fr",
        "pm.me", "web.com", "hotmail.de", "hotmail.es", "hotmail.it", "outlook.de", "outlook.fr",
    ]

    private static let known = Set(providers).union(alsoReal)

    /// The provider `domain` (canonical, ASCII) is one edit from — insertion, deletion,
    /// substitution or transposition of neighbours (Damerau) — or nil when it is a
    /// known domain itself, no provider is that close, or two are (`gmx.ne`: gmx.de or
    /// gmx.net? better no guess than a wrong one).
    public static func suggestion(forDomain domain: String) -> String? {
        guard !known.contains(domain) else { return nil }
        let typed = Array(domain.utf8)
        var found: String?
        for provider in providers where abs(provider.utf8.count - typed.count) <= 1 && isOneEdit(typed, Array(provider.utf8)) {
            guard found == nil else { return nil }
            found = provider
        }
        return found
    }

    /// The whole address with the suggested domain, for a canonical address; nil if none.
    public static func suggestion(forAddress canonical: String) -> String? {
        guard let at = canonical.lastIndex(of: "@") else { return nil }
        guard let domain = suggestion(forDomain: String(canonical[canonical.index(after: at)...])) else { return nil }
        return String(canonical[..<at]) + "@" + domain
    }

    /// Whether `a` and `b` differ by exactly one Damerau edit.
    static func isOneEdit(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        if a == b { return false }
        if a.count == b.count {
            let differences = a.indices.filter { a[$0] != b[$0] }
            if differences.count == 1 { return true }
            if differences.count == 2, differences[1] == differences[0] + 1 {
                let i = differences[0]
                return a[i] == b[i + 1] && a[i + 1] == b[i]
            }
            return false
        }
        let (short, long) = a.count < b.count ? (a, b) : (b, a)
        guard long.count == short.count + 1 else { return false }
        var i = 0
        while i < short.count, short[i] == long[i] { i += 1 }
        return short[i...] == long[(i + 1)...]
    }
}
