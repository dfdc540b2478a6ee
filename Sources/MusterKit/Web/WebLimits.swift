import Foundation
import Yams

/// The manifest's `web:` section: how many sign-page submissions one client and one email
/// domain may make before further ones are *held* (stored, not mailed, not counted, until
/// `muster review` approves them). The submitter sees the same page either way.
///
/// ```yaml
/// web:
///   client_per_minute: 10      # one client address (a keyed hash of it)
///   client_per_hour: 60
///   domain_per_minute: 60      # one email domain
///   domain_per_hour: 600
///   domain_exempt: [gmail.com, outlook.com]   # replaces the built-in list
///   language: fr               # the pages' and server mail's language (en, fr)
///   open: 2027-01-10           # the form is shown from this day (or date-time, UTC)
///   closes: 2027-02-28T18:00:00Z   # ... and taken until this day's end (or instant)
/// ```
public struct WebLimits: Sendable, Equatable {
    /// When the sign form opens (`open:`); nil: as soon as the server runs.
    public var opens: WebMoment?
    /// When the sign form closes (`closes:`), besides the manifest's `deadline`.
    public var closes: WebMoment?
    /// The language of the sign page and of the server's mail.
    public var language: WebLanguage = .en
    public var clientPerMinute = 10
    public var clientPerHour = 60
    public var domainPerMinute = 60
    public var domainPerHour = 600
    /// Domains with no domain limit: the large mail providers most real signers use
    /// (a surge from them is people, not a bomb aimed at one organisation).
    public var domainExempt: Set<String> = WebLimits.largeProviders

    public static let largeProviders: Set<String> = [
        "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com", "yahoo.com",
        "icloud.com", "me.com", "aol.com", "proton.me", "protonmail.com", "gmx.de", "gmx.net", "web.de",
        "orange.fr", "free.fr", "laposte.net", "sfr.fr", "wanadoo.fr",
    ]

    public init() {}

    static let knownKeys: Set<String> = ["client_per_minute", "client_per_hour", "domain_per_minute", "domain_per_hour", "domain_exempt",
                                         "language", "open", "closes"]

    /// Reads the `web:` mapping, reporting each problem with its line.
    static func parse(_ node: Node?, diagnostics: DiagnosticCollector) -> WebLimits {
        var limits = WebLimits()
        guard let node, let map = MappingReader(node, diagnostics: diagnostics, what: "'web'") else { return limits }
        map.warnUnknown(knownKeys, in: "'web'")
        if let value = map.positiveInt("client_per_minute", what: "'web'") { limits.clientPerMinute = value }
        if let value = map.positiveInt("client_per_hour", what: "'web'") { limits.clientPerHour = value }
        if let value = map.positiveInt("domain_per_minute", what: "'web'") { limits.domainPerMinute = value }
        if let value = map.positiveInt("domain_per_hour", what: "'web'") { limits.domainPerHour = value }
        if let text = map.string("language", what: "'web'") {
            if let language = WebLanguage(rawValue: text) {
                limits.language = language
            } else {
                diagnostics.error("'language' must be one of \(WebLanguage.listed), not '\(text)'", at: map["language"]?.mark)
            }
        }
        for key in ["open", "closes"] {
            guard let text = map.string(key, what: "'web'") else { continue }
            guard let moment = WebMoment(text, endOfDay: key == "closes") else {
                diagnostics.error("'\(key)' must be a date like 2027-03-31 or a UTC date-time like 2027-03-31T18:00:00Z, not '\(text)'",
                                  at: map[key]?.mark)
                continue
            }
            if key == "open" { limits.opens = moment } else { limits.closes = moment }
        }
        if let opens = limits.opens, let closes = limits.closes, closes.instant <= opens.instant {
            diagnostics.error("'closes' (\(closes.text)) must come after 'open' (\(opens.text))", at: map["closes"]?.mark)
        }
        if let value = map["domain_exempt"] {
            if case .sequence(let items) = value {
                limits.domainExempt = Set(items.compactMap { item -> String? in
                    guard let text = item.scalar?.string, !text.isEmpty, !text.contains("@"), !text.contains(" ") else {
                        diagnostics.error("'domain_exempt' takes domains like example.org, not '\(item.scalar?.string ?? "a list or mapping")'", at: item.mark)
                        return nil
                    }
                    return text.lowercased()
                })
            } else {
                diagnostics.error("'domain_exempt' must be a list of domains, e.g. [gmail.com]", at: value.mark)
            }
        }
        return limits
    }
}

/// A day or an instant of the manifest's `web: open:` and `closes:`.
public struct WebMoment: Sendable, Equatable {
    /// As written in the manifest.
    public let text: String
    /// The instant it stands for: a day's start for `open`, its end (the next day's
    /// start) for `closes`.
    public let instant: Date
    /// A bare date (not a date-time).
    public let isDay: Bool

    init?(_ text: String, endOfDay: Bool) {
        guard let date = Timestamp.parse(text) else { return nil }
        self.text = text
        isDay = text.count == 10
        instant = isDay && endOfDay ? date.addingTimeInterval(86_400) : date
    }

    /// For a page: the date, or the date and UTC time.
    var shown: String {
        isDay ? text : Timestamp.format(instant).prefix(16).replacingOccurrences(of: "T", with: " ") + " UTC"
    }
}

/// Why a submission was held.
public enum HeldCause: String, Sendable, CaseIterable {
    /// Its client went over `client_per_minute` or `client_per_hour`.
    case client
    /// Its email domain went over `domain_per_minute` or `domain_per_hour`.
    case domain
}

/// The client a request comes from, as the limits see it: a keyed hash of its address
/// (IPv6 addresses by their /64, which one household or phone typically holds), so the
/// address itself is never stored.
public enum ClientAddress {
    /// The address to count: the peer's, or, when the peer is a trusted proxy, the
    /// rightmost `X-Forwarded-For` entry that is not itself a trusted proxy.
    public static func resolve(peer: String?, forwardedFor: [String], trusted: [String]) -> String? {
        guard let peer else { return nil }
        let trustedSet = Set(trusted.compactMap(normalized))
        guard let peerKey = normalized(peer), trustedSet.contains(peerKey) else { return peer }
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        for hop in hops.reversed() {
            guard let key = normalized(hop) else { return peer } // a malformed entry: trust nothing beyond it
            if !trustedSet.contains(key) { return hop }
        }
        return peer
    }

    /// The text that is hashed: IPv4 as is, IPv6 by its first 64 bits (IPv4-mapped
    /// addresses as IPv4); nil when `text` is no IP address.
    static func normalized(_ text: String) -> String? {
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { $0.map(String.init).joined(separator: ".") }
        }
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
            return bytes[12..<16].map(String.init).joined(separator: ".")
        }
        return bytes[0..<8].map { String(format: "%02x", $0) }.joined() + "::/64"
    }
}
