import CSQLite
import Crypto
import Foundation

/// Why an address is suppressed (`suppressions.reason`).
public enum SuppressionReason: String, Sendable, Codable, CaseIterable {
    /// A permanent failure: a 5.x.x bounce, or a 5xx the relay answered during a blast.
    case bounce
    /// `softBounceLimit` soft bounces (4.x.x, mailbox full) within the window.
    case softBounce = "soft_bounce"
    /// A spam complaint (an ARF feedback report).
    case complaint
}

/// One bounce, complaint or reset (`bounces.kind`).
enum BounceKind: String, Sendable {
    case hard, soft, complaint
    /// `muster unsubscribe --reset-bounces`: soft bounces before it no longer count.
    case reset
}

/// Suppression: the ledger's list of outbox keys (keyed fingerprints) that bounced or
/// complained. A suppressed key is never mailed again, exactly as an opted-out one.
extension Ledger {
    /// SQL: the key `column` is suppressed.
    /// Only a sealed row counts (`sealed(suppression:)`): one written beside muster
    /// suppresses no one. The seal is computed only for a key that has a row, so a blast
    /// pays one HMAC per suppressed recipient, nothing for the others.
    static func suppressed(_ column: String) -> String {
        "EXISTS (SELECT 1 FROM suppressions s WHERE s.recipient = \(column) AND \(sealed(suppression: "s")))"
    }

    /// The key this ledger's Message-ID and VERP tokens are made with.
    public func mailTokenKey() throws -> MailTokenKey {
        try withStorage(path: url.path) {
            let statement = try database.prepare("SELECT value FROM meta WHERE key = 'mail_token_key'")
            defer { statement.reset() }
            guard try statement.step() else { throw MusterError.failure("\(url.path) has no mail token key (ledger format 6)") }
            return MailTokenKey(key: statement.blob(0))
        }
    }

    /// The outbox row a token names, when its code checks: (template, recipient key, signature).
    func resolve(_ token: MailToken, campaign: String, key: MailTokenKey, templates: [String]) throws -> (template: String, recipient: String, signature: Int64?)? {
        try withStorage(path: url.path) {
            for template in templates where MailToken.templateTag(template) == token.templateTag {
                let statement = try database.prepare("""
                    SELECT recipient, signature FROM outbox WHERE template = ?1 AND recipient >= ?2 AND recipient < ?2 || 'g' ORDER BY recipient LIMIT 16
                    """)
                try statement.bind([.text(template), .text(token.recipientPrefix)])
                while try statement.step() {
                    let recipient = statement.text(0) ?? ""
                    if key.verify(token, campaign: campaign, template: template, recipient: recipient) {
                        return (template, recipient, statement.isNull(1) ? nil : statement.int64(1))
                    }
                }
            }
            return nil
        }
    }

    /// The templates with outbox rows.
    func outboxTemplates() throws -> [String] {
        try withStorage(path: url.path) {
            let statement = try database.prepare("SELECT DISTINCT template FROM outbox ORDER BY template")
            var names: [String] = []
            while try statement.step() { names.append(statement.text(0) ?? "") }
            return names
        }
    }

    /// Whether the key is suppressed.
    func isSuppressed(fingerprint: String) throws -> Bool {
        try database.scalarInt("SELECT \(Self.suppressed("?1"))", .text(fingerprint)) == 1
    }

    /// The suppression of `canonicalEmail`, if any.
    public func suppression(canonicalEmail: String) throws -> SuppressionReason? {
        let key = try fingerprint(canonicalEmail: canonicalEmail)
        return try withStorage(path: url.path) {
            try database.scalarText("SELECT reason FROM suppressions s WHERE s.recipient = ? AND \(Self.sealed(suppression: "s"))", .text(key))
                .flatMap(SuppressionReason.init(rawValue:))
        }
    }

    /// Whether a mailbox message was processed, by its hash (of its Message-ID, or of its
    /// bytes without one). The UIDVALIDITY and UID recorded beside it are not matched on
    /// their own: they name a message only within one folder, and the hash finds the
    /// message again whatever folder or UIDVALIDITY it has now.
    func wasProcessed(messageHash: String) throws -> Bool {
        try withStorage(path: url.path) {
            try database.scalarInt("SELECT EXISTS (SELECT 1 FROM inbox_processed WHERE message_hash = ?1)", .text(messageHash)) == 1
        }
    }

    /// What recording one bounce did.
    struct BounceOutcome: Sendable, Equatable {
        /// The key is suppressed by this bounce (it was not before).
        var suppressedNow: Bool
        /// Soft bounces counted in the window, this one included.
        var softCount: Int
    }

    /// Records a bounce or complaint of `recipient` (an outbox key) and suppresses it when
    /// it must be; with `processed`, records the mailbox message in the same transaction,
    /// so that it is counted once. `dryRun` reads only and says what would happen.
    func recordBounce(recipient: String, template: String?, kind: BounceKind, status: String?, source: String,
                      softLimit: Int, softWindowDays: Int, processed: (hash: String, validity: UInt64, uid: UInt64)?,
                      dryRun: Bool = false, at date: Date) throws -> BounceOutcome {
        let now = Timestamp.format(date)
        let since = Timestamp.format(date.addingTimeInterval(-Double(softWindowDays) * 86_400))
        func work() throws -> BounceOutcome {
            let already = try isSuppressed(fingerprint: recipient)
            var softCount = 0
            if kind == .soft {
                softCount = Int(try database.scalarInt("""
                    SELECT count(*) FROM bounces b WHERE b.recipient = ?1 AND b.kind = 'soft' AND b.at >= ?2 AND \(Self.sealed(bounce: "b"))
                      AND b.id > coalesce((SELECT max(r.id) FROM bounces r WHERE r.recipient = ?1 AND r.kind = 'reset' AND \(Self.sealed(bounce: "r"))), 0)
                    """, .text(recipient), .text(since)) ?? 0) + 1
            }
            let reason: SuppressionReason? = switch kind {
            case .hard: .bounce
            case .complaint: .complaint
            case .soft: softCount >= softLimit ? .softBounce : nil
            case .reset: nil
            }
            let outcome = BounceOutcome(suppressedNow: !already && reason != nil, softCount: softCount)
            guard !dryRun else { return outcome }
            try database.prepare("INSERT INTO bounces (recipient, template, kind, status, source, at) VALUES (?, ?, ?, ?, ?, ?)")
                .run(.text(recipient), template.map { .text($0) } ?? .null, .text(kind.rawValue), status.map { .text($0) } ?? .null,
                     .text(source), .text(now))
            try sealNewBounce()
            if let reason, !already {
                try dropUnsealedSuppression(of: recipient)
                try database.prepare("INSERT INTO suppressions (recipient, reason, template, status, source, at) VALUES (?, ?, ?, ?, ?, ?)")
                    .run(.text(recipient), .text(reason.rawValue), template.map { .text($0) } ?? .null, status.map { .text($0) } ?? .null,
                         .text(source), .text(now))
                try sealSuppression(of: recipient)
            }
            if let processed {
                try recordProcessed(processed, outcome: kind.rawValue, at: now)
            }
            return outcome
        }
        return try withStorage(path: url.path) { dryRun ? try work() : try database.writeTransaction(work) }
    }

    func recordProcessed(_ processed: (hash: String, validity: UInt64, uid: UInt64), outcome: String, at now: String) throws {
        try database.prepare("INSERT OR IGNORE INTO inbox_processed (message_hash, uid_validity, uid, outcome, at) VALUES (?, ?, ?, ?, ?)")
            .run(.text(processed.hash), .int(Int64(bitPattern: processed.validity)), .int(Int64(bitPattern: processed.uid)),
                 .text(outcome), .text(now))
    }

    /// Records a processed mailbox message on its own (an unsubscribe request).
    func recordProcessed(hash: String, validity: UInt64, uid: UInt64, outcome: String, at date: Date) throws {
        try withStorage(path: url.path) {
            try database.writeTransaction {
                try recordProcessed((hash, validity, uid), outcome: outcome, at: Timestamp.format(date))
            }
        }
    }

    /// `muster unsubscribe --reset-bounces`: lifts a bounce suppression (not a complaint)
    /// of `canonicalEmail` and stops its earlier soft bounces from counting. Returns
    /// whether it was suppressed by a bounce.
    public func resetBounces(canonicalEmail: String, at date: Date) throws -> Bool {
        let key = try fingerprint(canonicalEmail: canonicalEmail)
        try ensureSealKeyForWriting("nothing was written")
        return try withStorage(path: url.path) {
            try database.writeTransaction {
                // Lifted only if a sealed row suppressed it; an unsealed one (written beside
                // muster, suppressing no one) goes too.
                let lifted = try database.scalarInt("""
                    SELECT EXISTS (SELECT 1 FROM suppressions s WHERE s.recipient = ?1 AND s.reason IN ('bounce', 'soft_bounce') AND \(Self.sealed(suppression: "s")))
                    """, .text(key)) == 1
                try database.prepare("DELETE FROM suppressions WHERE recipient = ? AND reason IN ('bounce', 'soft_bounce')").run(.text(key))
                try dropUnsealedSuppression(of: key)
                try database.prepare("INSERT INTO bounces (recipient, template, kind, status, source, at) VALUES (?, NULL, 'reset', NULL, 'command', ?)")
                    .run(.text(key), .text(Timestamp.format(date)))
                try sealNewBounce()
                return lifted
            }
        }
    }

    /// Per template: distinct recipients suppressed for a bounce and for a complaint,
    /// counted against the template named in the suppression.
    public func suppressionCounts() throws -> [String: (bounced: Int, complained: Int)] {
        try withStorage(path: url.path) {
            let statement = try database.prepare("""
                SELECT coalesce(s.template, ''), sum(s.reason IN ('bounce', 'soft_bounce')), sum(s.reason = 'complaint') FROM suppressions s
                WHERE \(Self.sealed(suppression: "s")) GROUP BY 1
                """)
            var result: [String: (bounced: Int, complained: Int)] = [:]
            while try statement.step() {
                result[statement.text(0) ?? ""] = (Int(statement.int64(1)), Int(statement.int64(2)))
            }
            return result
        }
    }

    /// The suppression reason of each key in `keys` that has one (for `export`).
    public func suppressionReasons() throws -> [String: SuppressionReason] {
        try withStorage(path: url.path) {
            let statement = try database.prepare("SELECT s.recipient, s.reason FROM suppressions s WHERE \(Self.sealed(suppression: "s"))")
            var result: [String: SuppressionReason] = [:]
            while try statement.step() {
                if let reason = SuppressionReason(rawValue: statement.text(1) ?? "") { result[statement.text(0) ?? ""] = reason }
            }
            return result
        }
    }
}

extension Ledger {
    /// The status a blast records as a hard bounce for a relay's refusal, or nil when the
    /// refusal is not about the recipient: only 5xx replies count, and not those whose
    /// enhanced status is about the message's content or size (5.6.x, 5.3.4), which
    /// another message to the same address would not meet.
    static func smtpBounceStatus(_ failure: SMTPFailure) -> String? {
        guard let code = failure.replyCode, (500..<600).contains(code) else { return nil }
        let status = failure.replyText.flatMap { BounceClassifier.enhancedStatus(in: $0) }
        if let status {
            guard status.hasPrefix("5.") else { return nil }
            if status.hasPrefix("5.6.") || status == "5.3.4" { return nil }
            return status
        }
        return String(code)
    }

    /// Inside the outbox writer's transaction: one SMTP-time hard bounce of `recipient`.
    func recordSMTPBounce(recipient: String, template: String, status: String, at date: Date) throws {
        let now = Timestamp.format(date)
        try database.prepare("INSERT INTO bounces (recipient, template, kind, status, source, at) VALUES (?, ?, 'hard', ?, 'smtp', ?)")
            .run(.text(recipient), .text(template), .text(status), .text(now))
        try sealNewBounce()
        try dropUnsealedSuppression(of: recipient)
        try database.prepare("""
            INSERT OR IGNORE INTO suppressions (recipient, reason, template, status, source, at) VALUES (?, 'bounce', ?, ?, 'smtp', ?)
            """).run(.text(recipient), .text(template), .text(status), .text(now))
        try sealSuppression(of: recipient)
    }
}

/// Seals: proof that a row of `bounces` or `suppressions` was written by muster.
///
/// Both tables lie outside the hash chain, so a row put there beside muster (with
/// `sqlite3`, say) would otherwise stop mail to a real signer without a trace. From
/// ledger format 7 on, muster seals every row it writes: `seal` is HMAC-SHA256, keyed with
/// `meta.seal_key` (32 random bytes made by migration 7, used for nothing else), over
///
///     "muster-seal-v1" 0x00, then for the table's name and each field in order:
///     one type byte ('t' text, 'i' integer as decimal ASCII, 'n' NULL),
///     the byte count as 8 bytes big-endian, the bytes (none for NULL)
///
/// with the fields `recipient, reason, template, status, source, at` for a suppression and
/// `id, recipient, template, kind, status, source, at` for a bounce (the id, so that a
/// genuine soft bounce copied under a new id does not count twice). A field of any other
/// type (a REAL or a BLOB, which muster never writes) leaves the row unsealed.
///
/// Every reader counts only sealed rows, so an unsealed or mis-sealed row suppresses no
/// one and adds no soft bounce; `verify` reports how many each table holds, and
/// `verify --drop-unsealed` deletes them. The key lives in the ledger, as the chain's
/// hashes do: the seal tells muster's rows from rows written beside it, not from
/// someone who reads the key out of the file on purpose.
///
/// SQL computes the seal through `muster_seal(key, table, field…)`, a deterministic
/// function registered on every connection (`SQLiteDatabase.init`), so writers, readers,
/// the migration and `verify` share one definition. A blast's selection computes it only
/// for recipients that have a suppression row.
extension Ledger {
    /// SQL: the seal key (a constant subquery, evaluated once per statement).
    static let sealKeySQL = "(SELECT value FROM meta WHERE key = 'seal_key')"

    /// SQL: the seal the suppression row `row` (a table name or alias) should have.
    static func suppressionSeal(_ row: String) -> String {
        "muster_seal(\(sealKeySQL), 'suppressions', \(row).recipient, \(row).reason, \(row).template, \(row).status, \(row).source, \(row).at)"
    }

    /// SQL: the seal the bounce row `row` (a table name or alias) should have.
    static func bounceSeal(_ row: String) -> String {
        "muster_seal(\(sealKeySQL), 'bounces', \(row).id, \(row).recipient, \(row).template, \(row).kind, \(row).status, \(row).source, \(row).at)"
    }

    /// SQL: 1 when the suppression row `row` carries its seal, else 0 (never NULL).
    static func sealed(suppression row: String) -> String {
        "coalesce(\(row).seal = \(suppressionSeal(row)), 0)"
    }

    /// SQL: 1 when the bounce row `row` carries its seal, else 0 (never NULL).
    static func sealed(bounce row: String) -> String {
        "coalesce(\(row).seal = \(bounceSeal(row)), 0)"
    }

    /// Seals the bounce row just inserted on this connection.
    func sealNewBounce() throws {
        try database.execute("UPDATE bounces SET seal = \(Self.bounceSeal("bounces")) WHERE id = last_insert_rowid()")
    }

    /// Seals the suppression of `recipient` just inserted (a sealed row is left as it is).
    func sealSuppression(of recipient: String) throws {
        try database.prepare("UPDATE suppressions SET seal = \(Self.suppressionSeal("suppressions")) WHERE recipient = ?1 AND seal IS NULL")
            .run(.text(recipient))
    }

    /// Deletes a suppression of `recipient` that muster did not write, before muster
    /// writes its own (it would otherwise stand in the way of the primary key).
    func dropUnsealedSuppression(of recipient: String) throws {
        try database.prepare("DELETE FROM suppressions WHERE recipient = ?1 AND NOT \(Self.sealed(suppression: "suppressions"))")
            .run(.text(recipient))
    }

    /// Rows of `bounces` and `suppressions` without a valid seal (`verify`).
    public struct UnsealedRows: Sendable, Codable, Equatable {
        public var bounces: Int
        public var suppressions: Int
        public var total: Int { bounces + suppressions }
    }

    /// Whether `meta` holds a seal key as migration 7 makes it.
    static func hasSealKey(_ database: SQLiteDatabase) throws -> Bool {
        try database.scalarInt("SELECT count(*) FROM meta WHERE key = 'seal_key' AND typeof(value) = 'blob' AND length(value) = 32") == 1
    }

    /// Counts the rows without a valid seal, on `database` (verify's snapshot).
    static func unsealedRows(on database: SQLiteDatabase) throws -> UnsealedRows {
        UnsealedRows(
            bounces: Int(try database.scalarInt("SELECT count(*) FROM bounces b WHERE NOT \(sealed(bounce: "b"))") ?? 0),
            suppressions: Int(try database.scalarInt("SELECT count(*) FROM suppressions s WHERE NOT \(sealed(suppression: "s"))") ?? 0))
    }

    /// `muster verify --drop-unsealed`: deletes every bounce and suppression row that
    /// muster did not write (they count for nothing already). Refuses when the seal key
    /// itself is gone, which would make every row look unsealed.
    public func dropUnsealedRows() throws -> UnsealedRows {
        try withStorage(path: url.path) {
            try database.writeTransaction {
                guard try Self.hasSealKey(database) else {
                    throw MusterError.failure("""
                        \(url.path) has no seal key (meta.seal_key): every bounce and suppression looks unsealed, \
                        so none is dropped; nothing was written
                        """)
                }
                let found = try Self.unsealedRows(on: database)
                try database.execute("DELETE FROM bounces WHERE NOT \(Self.sealed(bounce: "bounces"))")
                try database.execute("DELETE FROM suppressions WHERE NOT \(Self.sealed(suppression: "suppressions"))")
                return found
            }
        }
    }
}

/// Guards against a ledger whose seals cannot be trusted (a blast, `muster inbox`,
/// `unsubscribe --reset-bounces`; warnings in `mail status`, `report`, a dry run).
///
/// Only sealed rows suppress, so a ledger whose `meta.seal_key` was deleted, damaged or
/// replaced (with `sqlite3`, say) would have every bounced or complaining address mailed
/// again, and a row written beside muster would stand for nothing without anyone noticing.
/// A blast refuses to start while any row is unsealed; a command that writes bounces
/// refuses while the key is lost (it would write unsealed rows, or seal new ones under a
/// key a restored backup does not have, and the mailbox messages would be moved anyway).
extension Ledger {
    /// The key and the rows of `bounces` and `suppressions`, counted in one statement.
    public struct SealState: Sendable, Equatable {
        /// `meta.seal_key` is a 32-byte BLOB, as migration 7 makes it.
        public var hasKey: Bool
        /// All rows of each table, sealed or not.
        public var bounces: Int
        public var suppressions: Int
        /// The rows without a valid seal.
        public var unsealed: UnsealedRows

        /// Every row carries its seal under a key of the right shape.
        public var isSound: Bool { hasKey && unsealed.total == 0 }

        /// No row can be proven muster's: the key is gone or damaged, or there are rows
        /// and none is sealed, which is what a replaced key looks like (or a ledger whose
        /// every row was written beside muster: the two cannot be told apart).
        public var isKeyLost: Bool { !hasKey || (unsealed.total > 0 && unsealed.total == bounces + suppressions) }

        /// What is wrong and what to do, naming tables and counts (never a row's
        /// recipient); nil when sound.
        public func problem(ledger path: String) -> String? {
            guard !isSound else { return nil }
            func rows(_ suppressions: Int, _ bounces: Int) -> String {
                var parts: [String] = []
                if suppressions > 0 || bounces == 0 { parts.append("\(suppressions) suppression\(suppressions == 1 ? "" : "s") (table suppressions)") }
                if bounces > 0 || suppressions == 0 { parts.append("\(bounces) bounce record\(bounces == 1 ? "" : "s") (table bounces)") }
                return parts.joined(separator: " and ")
            }
            if !hasKey {
                let held = bounces + suppressions == 0 ? "no bounce or suppression it records from now on"
                    : "its \(rows(suppressions, bounces))"
                return """
                    \(path) has no seal key (meta.seal_key), or one that is not 32 bytes: \(held) \
                    can no longer be told from rows written beside muster, so every suppression is unprovable and every address \
                    that bounced or complained would be mailed again. Restore the ledger from a backup (`muster verify` shows the problem)
                    """
            }
            let count = rows(unsealed.suppressions, unsealed.bounces)
            if isKeyLost {
                return """
                    none of the \(count) in \(path) carries a valid seal: the seal key (meta.seal_key) was most likely replaced, \
                    and then every suppression is unprovable and every address that bounced or complained would be mailed again. \
                    Restore the ledger from a backup; only if you know every one of these rows was written beside muster, \
                    remove them with `muster verify --drop-unsealed` (`muster verify` shows them)
                    """
            }
            return """
                \(count) in \(path) \(unsealed.total == 1 ? "was" : "were") not written by muster (seal missing or wrong): \
                `muster verify` shows them, and `muster verify --drop-unsealed` removes rows written beside muster
                """
        }
    }

    /// The seal key's shape and the rows of both tables, sealed and not: one statement
    /// (one HMAC per row, computed in SQLite: about 50 ms for 10,000 rows, release build).
    public func sealState() throws -> SealState {
        try withStorage(path: url.path) {
            let statement = try database.prepare("""
                SELECT (SELECT count(*) FROM meta WHERE key = 'seal_key' AND typeof(value) = 'blob' AND length(value) = 32),
                       (SELECT count(*) FROM bounces), (SELECT count(*) FROM bounces b WHERE NOT \(Self.sealed(bounce: "b"))),
                       (SELECT count(*) FROM suppressions), (SELECT count(*) FROM suppressions s WHERE NOT \(Self.sealed(suppression: "s")))
                """)
            defer { statement.reset() }
            guard try statement.step() else { throw MusterError.failure("\(url.path): cannot count its bounces and suppressions") }
            return SealState(hasKey: statement.int64(0) == 1, bounces: Int(statement.int64(1)), suppressions: Int(statement.int64(3)),
                             unsealed: UnsealedRows(bounces: Int(statement.int64(2)), suppressions: Int(statement.int64(4))))
        }
    }

    /// Throws (exit 1, as for a ledger altered beside its chain) when a blast must not
    /// start: the key is lost or any row is unsealed. `outcome` ends the message
    /// ("nothing was sent").
    public func ensureSealsForBlast(_ outcome: String = "nothing was sent") throws {
        if let problem = try sealState().problem(ledger: url.path) {
            throw MusterError.failure("a blast needs every bounce and suppression proven: \(problem); \(outcome)")
        }
    }

    /// Throws (exit 1) when bounces must not be written: the key is lost. Rows written
    /// beside muster among sealed ones do not stop it (they are ignored; a new genuine
    /// row is sealed as always).
    func ensureSealKeyForWriting(_ outcome: String) throws {
        let state = try sealState()
        if state.isKeyLost, let problem = state.problem(ledger: url.path) {
            throw MusterError.failure("\(problem); \(outcome)")
        }
    }
}

/// The start of every sealed message (see the seal documentation above).
private let sealPrefix: [UInt8] = Array("muster-seal-v1\0".utf8)

extension SQLiteDatabase {
    /// Registers `muster_seal(key, table, field…)` on this connection: the row seal of
    /// `Ledger`'s seal documentation as a 32-byte BLOB, or NULL when the key is not a
    /// 32-byte BLOB or a field is neither text, integer nor NULL. Deterministic, and
    /// direct-only: no trigger or view (which muster never creates) can call it.
    func registerSealFunction() {
        sqlite3_create_function_v2(handle, "muster_seal", -1, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY, nil, { context, count, values in
            guard count >= 2, let values, let keyValue = values[0], sqlite3_value_type(keyValue) == SQLITE_BLOB,
                  sqlite3_value_bytes(keyValue) == 32, let keyBytes = sqlite3_value_blob(keyValue) else {
                sqlite3_result_null(context)
                return
            }
            // The whole message in one buffer, then one HMAC: a blast computes this once per
            // suppressed recipient.
            var message = sealPrefix
            message.reserveCapacity(320)
            func header(_ tag: Unicode.Scalar, _ count: Int) {
                message.append(UInt8(ascii: tag))
                for shift in stride(from: 56, through: 0, by: -8) { message.append(UInt8(truncatingIfNeeded: UInt64(count) >> UInt64(shift))) }
            }
            for index in 1..<Int(count) {
                let value = values[index]
                switch sqlite3_value_type(value) {
                case SQLITE_NULL:
                    header("n", 0)
                case SQLITE_INTEGER:
                    let digits = String(sqlite3_value_int64(value)).utf8
                    header("i", digits.count)
                    message.append(contentsOf: digits)
                case SQLITE_TEXT:
                    let bytes = sqlite3_value_text(value)
                    let size = Int(sqlite3_value_bytes(value))
                    header("t", size)
                    if let bytes, size > 0 { message.append(contentsOf: UnsafeBufferPointer(start: bytes, count: size)) }
                default:
                    sqlite3_result_null(context)
                    return
                }
            }
            let seal = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: UnsafeRawBufferPointer(start: keyBytes, count: 32)))
            seal.withUnsafeBytes { bytes in
                sqlite3_result_blob(context, bytes.baseAddress, Int32(bytes.count), muster_sqlite_transient())
            }
        }, nil, nil, nil)
    }
}
