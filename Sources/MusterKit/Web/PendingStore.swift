import Crypto
import CSQLite
import Foundation

/// Signatures from the sign page awaiting email confirmation (table `pending`, ledger
/// format 5): not counted, not in the chain; their personal data is erased on
/// confirmation, and the row on expiry.
///
/// Each row is also the durable queue entry of one mail to its signer: `mail_state`
/// follows `OutboxState` (`queued` until the server's mailer hands it to the relay), and
/// `mail_token` holds the plain confirmation token only until then (the link in the
/// mail needs it); afterwards only its hash (`token_hash`) remains, which is what a
/// confirmation is looked up by. The hash covers the campaign and the purpose
/// (`SHA-256("muster-link\0confirm\0" slug "\0" token)`), so a token works for one
/// campaign's confirmation only.
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
        /// Nothing stored: this mailbox was sent (or is about to be sent) the same kind of
        /// mail in the last day.
        case throttled(purpose: PendingPurpose)
        /// Stored held (over a `web:` limit): no mail until `muster review` approves it.
        case held(purpose: PendingPurpose, cause: HeldCause)
    }

    /// Inside a write transaction: the limit a new submission from `clientKey` for
    /// `domain` would go over, if any. Every stored submission counts (held ones too), in
    /// the last minute and the last hour.
    func heldCause(clientKey: [UInt8]?, domain: String, limits: WebLimits, at date: Date) throws -> HeldCause? {
        let minute = Timestamp.format(date.addingTimeInterval(-60)), hour = Timestamp.format(date.addingTimeInterval(-3600))
        func count(_ column: String, _ value: SQLiteValue, since: String) throws -> Int64 {
            try database.scalarInt("SELECT count(*) FROM pending WHERE \(column) = ? AND created_at > ?", value, .text(since)) ?? 0
        }
        if let clientKey {
            if try count("client_key", .blob(clientKey), since: minute) >= Int64(limits.clientPerMinute)
                || count("client_key", .blob(clientKey), since: hour) >= Int64(limits.clientPerHour) { return .client }
        }
        if !domain.isEmpty, !limits.domainExempt.contains(domain) {
            if try count("domain", .text(domain), since: minute) >= Int64(limits.domainPerMinute)
                || count("domain", .text(domain), since: hour) >= Int64(limits.domainPerHour) { return .domain }
        }
        return nil
    }

    /// How long a pending signature waits for its confirmation.
    public static let pendingLifetime: TimeInterval = 7 * 24 * 3600
    /// At most one mail of each purpose per mailbox in this window.
    public static let pendingMailInterval: TimeInterval = 24 * 3600

    /// Stores `signature` as pending (or, when its signer already signed — the same
    /// address or the same mailbox under the `dedupe:` rules — an "already signed" mail)
    /// in one durable transaction. Expired rows are erased first.
    ///
    /// `client` is the submitter's address (see `ClientAddress`): only a keyed hash of it
    /// is stored. When the client or the email's domain is over the `limits`, the row is
    /// stored *held*: no mail is sent and it waits for `muster review`.
    public func addPending(_ signature: ValidSignature, slug: String, at date: Date,
                           client: String? = nil, limits: WebLimits = WebLimits()) throws -> PendingOutcome {
        var note: String?
        let outcome: PendingOutcome = try withStorage(path: url.path) {
            try database.writeTransaction {
                note = try beginPendingWrites()
                return try addPendingRow(signature, slug: slug, at: date, client: client, limits: limits)
            }
        }
        Self.announce(note)
        return outcome
    }

    /// Inside a write transaction: what every transaction of the sign page checks first
    /// (once per group commit): nothing beside the chain, the mailbox keys under the
    /// current `dedupe:` rules. Returns the note to print once it commits.
    func beginPendingWrites() throws -> String? {
        try ensureNothingBesideChain()
        return try syncMailboxKeys()
    }

    /// Inside a write transaction begun by `beginPendingWrites`: `addPending`'s work.
    func addPendingRow(_ signature: ValidSignature, slug: String, at date: Date,
                       client: String?, limits: WebLimits) throws -> PendingOutcome {
        let fingerprint = try fingerprint(canonicalEmail: signature.canonicalEmail)
        let clientKey: [UInt8]? = client.flatMap(ClientAddress.normalized).map {
            Array(fingerprintHMAC!.code("muster-client\u{0}\($0)").prefix(16))
        }
        let domain = signature.canonicalEmail.split(separator: "@").last.map { $0.lowercased() } ?? ""

        let mailbox = try mailboxKeyMaker().key(for: signature)
        let token = Self.newToken()
        try erasePendingExpired(at: date)
        let signed = try firstSignature(fingerprint: fingerprint) ?? firstSignature(mailboxKey: mailbox)
        let purpose: PendingPurpose = signed == nil ? .confirm : .alreadySigned
        let since = Timestamp.format(date.addingTimeInterval(-Self.pendingMailInterval))
        // A mail the relay refused, or whose fate a stopped server could not know
        // (never resent by itself), does not hold back the signer's next try.
        let recent = try database.scalarInt("""
            SELECT count(*) FROM pending WHERE mailbox_key = ? AND purpose = ? AND created_at > ?
              AND mail_state NOT IN (\(OutboxState.sqlList([.failed, .unknown]))) AND held IS NULL
            """, .blob(mailbox), .text(purpose.rawValue), .text(since)) ?? 0
        if recent > 0 { return .throttled(purpose: purpose) }
        let held = try heldCause(clientKey: clientKey, domain: domain, limits: limits, at: date)
        if held != nil {
            // One held row per mailbox and purpose is enough for review.
            let waiting = try database.scalarInt(
                "SELECT count(*) FROM pending WHERE mailbox_key = ? AND purpose = ? AND held IS NOT NULL",
                .blob(mailbox), .text(purpose.rawValue)) ?? 0
            if waiting > 0 { return .throttled(purpose: purpose) }
        } else {
            // A submission that passes supersedes a held one of the same mailbox.
            try database.cached("DELETE FROM pending WHERE mailbox_key = ? AND purpose = ? AND held IS NOT NULL")
                .runAndReset(.blob(mailbox), .text(purpose.rawValue))
        }
        // An "already signed" row keeps the name and address only until its mail is sent.
        let data = purpose == .confirm ? Self.pendingData(signature)
            : CanonicalJSON.encode(["email": signature.email, "name": signature.name])
        try database.cached("""
            INSERT INTO pending (token_hash, purpose, mailbox_key, created_at, expires_at, data, mail_token, mail_state,
                                 client_key, domain, held)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """).runAndReset(.text(Self.tokenHash(token, purpose: .confirm, slug: slug)), .text(purpose.rawValue), .blob(mailbox),
                     .text(Timestamp.format(date)), .text(Timestamp.format(date.addingTimeInterval(Self.pendingLifetime))),
                     .text(data), .text(token), .text(OutboxState.queued.rawValue),
                     clientKey.map { .blob($0) } ?? .null, .text(domain), held.map { .text($0.rawValue) } ?? .null)
        if let held { return .held(purpose: purpose, cause: held) }
        return .queued(purpose: purpose, token: token)
    }

    /// What a confirmation link leads to.
    public enum PendingLookup: Sendable, Equatable {
        /// A pending signature, not confirmed yet.
        case waiting
        /// Confirmed already (the button was pressed before).
        case confirmed
        /// No such token here: never issued, altered, for another campaign, or expired.
        case unknown
    }

    /// Reads what `token` names, without changing anything (a GET of the link).
    public func lookupPending(token: String, slug: String, at date: Date) throws -> PendingLookup {
        guard Self.isWellFormedToken(token) else { return .unknown }
        return try withStorage(path: url.path) {
            let statement = try database.cached("""
                SELECT confirmed_seq FROM pending WHERE token_hash = ? AND purpose = 'confirm' AND held IS NULL AND expires_at > ?
                """)
            try statement.bind([.text(Self.tokenHash(token, purpose: .confirm, slug: slug)), .text(Timestamp.format(date))])
            defer { statement.reset() }
            guard try statement.step() else { return .unknown }
            return statement.isNull(0) ? .waiting : .confirmed
        }
    }

    /// What pressing the confirmation button did.
    public enum ConfirmOutcome: Sendable, Equatable {
        /// The signature entered the ledger as entry `seq`; `count` signatures now.
        case confirmed(seq: Int64, count: Int64)
        /// It had been confirmed before (a second press, a reload): nothing changed.
        case alreadyConfirmed(count: Int64)
        /// Another signature of the same mailbox was counted in the meantime (a `+tag`
        /// variant confirmed first, or a signature typed in): this one is not added.
        case duplicate(count: Int64)
        /// No such token here (never issued, altered, other campaign, expired).
        case unknown
    }

    /// `POST /confirm/<token>`: appends the pending signature (source `web`) in one
    /// durable transaction that also erases its personal data from `pending`; idempotent.
    public func confirmPending(token: String, slug: String, at date: Date) throws -> ConfirmOutcome {
        guard Self.isWellFormedToken(token) else { return .unknown }
        var note: String?
        let outcome: ConfirmOutcome = try withStorage(path: url.path) {
            try database.writeTransaction {
                note = try beginPendingWrites()
                return try confirmPendingRow(token: token, slug: slug, at: date)
            }
        }
        Self.announce(note)
        return outcome
    }

    /// Inside a write transaction begun by `beginPendingWrites`: `confirmPending`'s work.
    func confirmPendingRow(token: String, slug: String, at date: Date) throws -> ConfirmOutcome {
        guard Self.isWellFormedToken(token) else { return .unknown }
        let hash = Self.tokenHash(token, purpose: .confirm, slug: slug)
        let maker = try mailboxKeyMaker()
        let statement = try database.cached("""
            SELECT id, data, confirmed_seq FROM pending WHERE token_hash = ? AND purpose = 'confirm' AND held IS NULL AND expires_at > ?
            """)
        try statement.bind([.text(hash), .text(Timestamp.format(date))])
        guard try statement.step() else { statement.reset(); return .unknown }
        let id = statement.int64(0), data = statement.text(1) ?? "", done = !statement.isNull(2)
        statement.reset()
        if done { return .alreadyConfirmed(count: try countedSignatures()) }
        guard let signature = Self.pendingSignature(data) else {
            throw MusterError.failure("pending signature \(id) in \(url.path) is damaged (its data is not a signature)")
        }
        let fingerprint = try fingerprint(canonicalEmail: signature.canonicalEmail)
        let mailbox = maker.key(for: signature)
        if let first = try firstSignature(fingerprint: fingerprint) ?? firstSignature(mailboxKey: mailbox) {
            try database.cached("UPDATE pending SET data = '{}', mail_token = NULL, confirmed_seq = ? WHERE id = ?")
                .runAndReset(.int(first.seq), .int(id))
            return .duplicate(count: try countedSignatures())
        }
        let seq = try appendEntry(kind: .signature, at: Timestamp.format(date), fingerprint: fingerprint,
                                  body: Self.canonical(.body, of: signature), personal: Self.canonical(.personal, of: signature))
        try insertMailboxKey(seq: seq, key: mailbox, fingerprint: fingerprint)
        try database.cached("UPDATE pending SET data = '{}', mail_token = NULL, confirmed_seq = ? WHERE id = ?")
            .runAndReset(.int(seq), .int(id))
        return .confirmed(seq: seq, count: try countedSignatures())
    }

    /// Deletes pending rows past their expiry, with their personal data; how many.
    @discardableResult
    func erasePendingExpired(at date: Date) throws -> Int {
        try database.cached("DELETE FROM pending WHERE expires_at <= ?").runAndReset(.text(Timestamp.format(date)))
        return Int(sqlite3_changes(database.handle))
    }

    /// `erasePendingExpired` in a transaction of its own (the server's periodic sweep).
    @discardableResult
    public func sweepPending(at date: Date) throws -> Int {
        try withStorage(path: url.path) {
            try database.writeTransaction { try erasePendingExpired(at: date) }
        }
    }

    /// Inside a write transaction: deletes the pending rows of the mailbox of
    /// `canonicalEmail` (`forget`): their stored key, or, should the `dedupe:` rules have
    /// changed since, the key of the address they hold. How many.
    func erasePending(canonicalEmail: String) throws -> Int {
        guard try database.scalarInt("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'pending'") == 1 else { return 0 }
        let maker = try mailboxKeyMaker()
        let key = maker.key(forEmail: canonicalEmail)
        var ids: [Int64] = []
        let select = try database.prepare("SELECT id, mailbox_key, data FROM pending")
        while try select.step() {
            var matches = select.blob(1) == key
            if !matches, let object = CanonicalJSONReader.object(select.text(2) ?? ""), case .string(let email)? = object["email"] {
                matches = maker.key(forEmail: email) == key
            }
            if matches { ids.append(select.int64(0)) }
        }
        select.reset()
        for id in ids { try database.prepare("DELETE FROM pending WHERE id = ?").run(.int(id)) }
        return ids.count
    }

    /// How many signatures wait for confirmation (not expired, not confirmed).
    public func pendingCount(at date: Date) throws -> Int64 {
        try withStorage(path: url.path) {
            try database.scalarInt("SELECT count(*) FROM pending WHERE purpose = 'confirm' AND confirmed_seq IS NULL AND held IS NULL AND expires_at > ?",
                                   .text(Timestamp.format(date))) ?? 0
        }
    }

    /// A new token: 128 random bits, base64url without padding (22 characters).
    static func newToken() -> String {
        // Two draws of the system's generator (one per byte was 16 system calls).
        var generator = SystemRandomNumberGenerator()
        let bytes = [generator.next(), generator.next()].flatMap { (word: UInt64) in (0..<8).map { UInt8(truncatingIfNeeded: word >> ($0 * 8)) } }
        return base64URL(bytes)
    }

    /// base64url without padding, written directly (Foundation's encoder and three
    /// `replacingOccurrences` were a twentieth of a form's time on the server).
    static func base64URL(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var index = 0
        while index < bytes.count {
            let count = min(3, bytes.count - index)
            var group = UInt32(bytes[index]) << 16
            if count > 1 { group |= UInt32(bytes[index + 1]) << 8 }
            if count > 2 { group |= UInt32(bytes[index + 2]) }
            for position in 0...count { out.append(alphabet[Int(group >> UInt32(18 - 6 * position) & 0x3F)]) }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// 22 base64url characters, as `newToken` makes them.
    static func isWellFormedToken(_ token: String) -> Bool {
        token.utf8.count == 22 && token.utf8.allSatisfy { byte in
            (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || byte == 0x2D || byte == 0x5F
        }
    }

    /// What is stored of a link's token: SHA-256 over the purpose, the campaign and the
    /// token, hex. A token is looked up by this hash (no comparison of secrets).
    static func tokenHash(_ token: String, purpose: PendingPurpose, slug: String) -> String {
        Hex.encode(SHA256.hash(data: Array("muster-link\u{0}\(purpose.rawValue)\u{0}\(slug)\u{0}\(token)".utf8)))
    }

    /// The signature as JSON, to be appended unchanged once confirmed. Written by
    /// `CanonicalJSON` (sorted keys, as before): JSONSerialization took more time than the
    /// rest of a form's transaction, on the server's one writer.
    static func pendingData(_ signature: ValidSignature) -> String {
        var object: [String: Any] = [
            "canonical_email": signature.canonicalEmail, "name": signature.name, "email": signature.email,
            "public_fields": signature.publicFields, "personal_fields": signature.personalFields,
            "consents": signature.consents, "source": signature.source,
        ]
        if let comment = signature.comment { object["comment"] = comment }
        if let collector = signature.collector { object["collector"] = collector }
        return CanonicalJSON.encode(object)
    }

    /// The signature stored by `pendingData`, or nil when the JSON is not one. Read by
    /// `CanonicalJSONReader` (JSONSerialization was the largest cost of a confirmation);
    /// JSON it does not read (written otherwise) goes to Foundation's parser.
    static func pendingSignature(_ json: String) -> ValidSignature? {
        if let object = CanonicalJSONReader.object(json) {
            func text(_ key: String) -> String? { if case .string(let value)? = object[key] { return value }; return nil }
            func map(_ key: String) -> [String: String]? {
                switch object[key] {
                case .object(let members)?: return members
                case nil: return [:]
                default: return nil
                }
            }
            func list(_ key: String) -> [String]? {
                switch object[key] {
                case .strings(let values)?: return values
                case nil: return []
                default: return nil
                }
            }
            guard let canonical = text("canonical_email"), let name = text("name"), let email = text("email"),
                  let source = text("source"), let publicFields = map("public_fields"), let personalFields = map("personal_fields"),
                  let consents = list("consents") else { return foundationPendingSignature(json) }
            return ValidSignature(canonicalEmail: canonical, name: name, email: email, comment: text("comment"),
                                  publicFields: publicFields, personalFields: personalFields, consents: consents, source: source,
                                  collector: text("collector"))
        }
        return foundationPendingSignature(json)
    }

    private static func foundationPendingSignature(_ json: String) -> ValidSignature? {
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
