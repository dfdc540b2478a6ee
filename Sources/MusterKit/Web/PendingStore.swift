import Crypto
import CSQLite
import Foundation

/// Signatures from the sign page awaiting email confirmation (table `pending`, ledger
/// format 3): not counted, not in the chain, erased on confirmation or expiry.
///
/// Each row is also the durable queue entry of one mail to its signer: `mail_state`
/// follows `OutboxState` (`queued` until a sender hands it to the relay), and
/// `mail_token` holds the plain confirmation token only until then (the link in the
/// mail needs it); afterwards only its SHA-256 (`token_hash`) remains, which is what a
/// confirmation is looked up by.
extension Ledger {
    /// Why a pending row exists: the mail it sends.
    public enum PendingPurpose: String, Sendable {
        /// A new signer: the mail carries the confirmation link.
        case confirm
        /// The address already signed: the mail says so (at most one a day).
        case alreadySigned = "already_signed"
    }

    /// What `addPending` did; the sign page shows the same page for every case.
    public enum PendingOutcome: Sendable, Equatable {
        /// Stored; a mail with `token` is queued.
        case queued(purpose: PendingPurpose, token: String)
        /// Nothing stored: this address was sent the same kind of mail in the last day.
        case throttled(purpose: PendingPurpose)
    }

    /// How long a pending signature waits for its confirmation.
    public static let pendingLifetime: TimeInterval = 7 * 24 * 3600
    /// At most one mail of each purpose per address in this window.
    public static let pendingMailInterval: TimeInterval = 24 * 3600

    /// Stores `signature` as pending (or, when its signer already signed, an "already
    /// signed" mail) in one durable transaction. Expired rows are erased first.
    public func addPending(_ signature: ValidSignature, at date: Date) throws -> PendingOutcome {
        let fingerprint = try fingerprint(canonicalEmail: signature.canonicalEmail)
        let token = Self.newToken()
        return try withStorage(path: url.path) {
            try database.writeTransaction {
                try ensureNothingBesideChain()
                try erasePendingExpired(at: date)
                let purpose: PendingPurpose = try firstSignature(fingerprint: fingerprint) == nil ? .confirm : .alreadySigned
                let since = Timestamp.format(date.addingTimeInterval(-Self.pendingMailInterval))
                let recent = try database.scalarInt("""
                    SELECT count(*) FROM pending WHERE fingerprint = ? AND purpose = ? AND created_at > ?
                    """, .text(fingerprint), .text(purpose.rawValue), .text(since)) ?? 0
                if recent > 0 { return .throttled(purpose: purpose) }
                try database.prepare("""
                    INSERT INTO pending (token_hash, purpose, fingerprint, created_at, expires_at, data, mail_token, mail_state)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """).run(.text(Self.tokenHash(token)), .text(purpose.rawValue), .text(fingerprint),
                             .text(Timestamp.format(date)), .text(Timestamp.format(date.addingTimeInterval(Self.pendingLifetime))),
                             .text(purpose == .confirm ? Self.pendingData(signature) : "{}"), .text(token),
                             .text(OutboxState.queued.rawValue))
                return .queued(purpose: purpose, token: token)
            }
        }
    }

    /// Deletes pending rows past their expiry, with their personal data; how many.
    @discardableResult
    func erasePendingExpired(at date: Date) throws -> Int {
        try database.prepare("DELETE FROM pending WHERE expires_at <= ?").run(.text(Timestamp.format(date)))
        return Int(sqlite3_changes(database.handle))
    }

    /// How many signatures wait for confirmation (not expired).
    public func pendingCount(at date: Date) throws -> Int64 {
        try withStorage(path: url.path) {
            try database.scalarInt("SELECT count(*) FROM pending WHERE purpose = 'confirm' AND expires_at > ?",
                                   .text(Timestamp.format(date))) ?? 0
        }
    }

    /// A new confirmation token: 128 random bits, base64url without padding (22 characters).
    static func newToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// What is stored of a token: its SHA-256, hex.
    static func tokenHash(_ token: String) -> String {
        Hex.encode(SHA256.hash(data: Array(token.utf8)))
    }

    /// The signature as JSON, to be appended unchanged once confirmed.
    static func pendingData(_ signature: ValidSignature) -> String {
        var object: [String: Any] = [
            "canonical_email": signature.canonicalEmail, "name": signature.name, "email": signature.email,
            "public_fields": signature.publicFields, "personal_fields": signature.personalFields,
            "consents": signature.consents, "source": signature.source,
        ]
        if let comment = signature.comment { object["comment"] = comment }
        if let collector = signature.collector { object["collector"] = collector }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// The signature stored by `pendingData`, or nil when the JSON is not one.
    static func pendingSignature(_ json: String) -> ValidSignature? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
              let canonical = object["canonical_email"] as? String, let name = object["name"] as? String,
              let email = object["email"] as? String, let source = object["source"] as? String else { return nil }
        return ValidSignature(canonicalEmail: canonical, name: name, email: email, comment: object["comment"] as? String,
                              publicFields: object["public_fields"] as? [String: String] ?? [:],
                              personalFields: object["personal_fields"] as? [String: String] ?? [:],
                              consents: object["consents"] as? [String] ?? [], source: source,
                              collector: object["collector"] as? String)
    }
}
