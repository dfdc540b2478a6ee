import Foundation

/// One-click unsubscribe links (`serve.base_url` + `/u/<token>`, RFC 8058).
///
/// The token names a recipient by their fingerprint (the ledger's keyed hash of their
/// canonical address: no address) and proves it with a MAC under the ledger's secret
/// key, bound to the campaign and the purpose:
///
///     token = base64url(fingerprint (32 bytes) ‖ first 16 bytes of
///             HMAC-SHA256(fingerprint key, "muster-link\0unsubscribe\0" slug "\0" fingerprint-hex))
///
/// 64 characters, stateless (a blast writes no row per link, and `mail send` on a
/// laptop makes the same links as the server), unguessable without the ledger's key,
/// and no use for another campaign or as a confirmation token. The MAC is compared in
/// constant time.
struct UnsubscribeLinks: Sendable {
    /// HMAC-SHA256 under the ledger's fingerprint key.
    let hmac: KeyedHash

    /// The token of the recipient with fingerprint `fingerprint` (64 hex digits).
    func token(slug: String, fingerprint: String) -> String {
        Ledger.base64URL(Ledger.hexBytes(fingerprint) + mac(slug: slug, fingerprint: fingerprint))
    }

    /// The fingerprint a token names, when the token was made for `slug` with this key.
    func fingerprint(token: String, slug: String) -> String? {
        guard token.utf8.count == 64, let bytes = Ledger.base64URLDecode(token), bytes.count == 48 else { return nil }
        let fingerprint = Hex.encode(bytes.prefix(32))
        return ConstantTime.equal(Array(bytes.suffix(16)), mac(slug: slug, fingerprint: fingerprint)) ? fingerprint : nil
    }

    private func mac(slug: String, fingerprint: String) -> [UInt8] {
        Array(hmac.code("muster-link\u{0}unsubscribe\u{0}\(slug)\u{0}\(fingerprint)").prefix(16))
    }
}

extension Ledger {
    /// The maker and checker of this ledger's unsubscribe links (loads its key once;
    /// then usable from any thread).
    func unsubscribeLinks() throws -> UnsubscribeLinks {
        try withStorage(path: url.path) {
            _ = try fingerprint(canonicalEmail: "") // loads the key
            return UnsubscribeLinks(hmac: fingerprintHMAC!)
        }
    }

    /// Whether the recipient with this fingerprint has opted out.
    public func isOptedOut(fingerprintHex: String) throws -> Bool {
        try withStorage(path: url.path) { try isOptedOut(fingerprint: fingerprintHex) }
    }

    /// Appends an opt-out for the recipient with this fingerprint (as `unsubscribe` does
    /// for an address), unless there is one.
    public func unsubscribe(fingerprintHex fingerprint: String, at date: Date) throws -> UnsubscribeOutcome {
        try withStorage(path: url.path) {
            try database.writeTransaction {
                try ensureNothingBesideChain()
                if try isOptedOut(fingerprint: fingerprint) { return .alreadyUnsubscribed }
                let seq = try appendEntry(kind: .optout, at: Timestamp.format(date), fingerprint: fingerprint, body: "{}", personal: nil)
                return .unsubscribed(seq: seq)
            }
        }
    }

    /// The bytes of lower-case hex text (a fingerprint); pairs that are not hex give 0.
    static func hexBytes(_ hex: String) -> [UInt8] {
        let digits = Array(hex.utf8)
        return stride(from: 0, to: digits.count - 1, by: 2).map { index in
            UInt8(String(decoding: digits[index...index + 1], as: UTF8.self), radix: 16) ?? 0
        }
    }

    // `base64URL` is in PendingStore.swift (the confirmation tokens use it too).

    static func base64URLDecode(_ text: String) -> [UInt8]? {
        guard text.utf8.allSatisfy({ byte in
            (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || byte == 0x2D || byte == 0x5F
        }) else { return nil }
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while standard.utf8.count % 4 != 0 { standard += "=" }
        return Data(base64Encoded: standard).map(Array.init)
    }
}
