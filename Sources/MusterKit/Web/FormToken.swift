import Crypto
import Foundation

/// The sign form's anti-forgery token: cookie-free, an HMAC over (campaign, issue time)
/// under a key the server draws at start.
///
/// `v1.<unix seconds>.<hex HMAC-SHA256(key, "sign-form\0" slug "\0" seconds)>`. It is good
/// for `lifetime` (default a day) after it was issued, for the campaign it names only; a
/// server restart draws a new key, and a form loaded before it is shown again with a
/// request to send it once more (the typed values kept). Compared in constant time.
struct FormToken: Sendable {
    private let key: [UInt8]
    let lifetime: TimeInterval

    init(key: [UInt8]? = nil, lifetime: TimeInterval = 24 * 3600) {
        var generator = SystemRandomNumberGenerator()
        self.key = key ?? (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        self.lifetime = lifetime
    }

    func issue(slug: String, at date: Date) -> String {
        let seconds = Int64(date.timeIntervalSince1970.rounded(.down))
        return "v1.\(seconds).\(mac(slug: slug, seconds: seconds))"
    }

    /// True when `token` was issued by this server for `slug` within its lifetime.
    func isValid(_ token: String, slug: String, at date: Date) -> Bool {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "v1", let seconds = Int64(parts[1]), parts[2].utf8.count == 64 else { return false }
        let age = date.timeIntervalSince1970 - Double(seconds)
        guard age >= -300, age <= lifetime else { return false }
        return ConstantTime.equal(Array(parts[2].utf8), Array(mac(slug: slug, seconds: seconds).utf8))
    }

    private func mac(slug: String, seconds: Int64) -> String {
        var hmac = HMAC<SHA256>(key: SymmetricKey(data: key))
        hmac.update(data: Array("sign-form\u{0}\(slug)\u{0}\(seconds)".utf8))
        return Hex.encode(hmac.finalize())
    }
}

enum ConstantTime {
    /// Equal lengths and bytes, in time that depends on the length only.
    static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}
