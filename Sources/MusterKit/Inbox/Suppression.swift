import CSQLite
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
    static func suppressed(_ column: String) -> String {
        "EXISTS (SELECT 1 FROM suppressions s WHERE s.recipient = \(column))"
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
            try database.scalarText("SELECT reason FROM suppressions WHERE recipient = ?", .text(key)).flatMap(SuppressionReason.init(rawValue:))
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
                    SELECT count(*) FROM bounces WHERE recipient = ?1 AND kind = 'soft' AND at >= ?2
                      AND id > coalesce((SELECT max(id) FROM bounces WHERE recipient = ?1 AND kind = 'reset'), 0)
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
            if let reason, !already {
                try database.prepare("INSERT INTO suppressions (recipient, reason, template, status, source, at) VALUES (?, ?, ?, ?, ?, ?)")
                    .run(.text(recipient), .text(reason.rawValue), template.map { .text($0) } ?? .null, status.map { .text($0) } ?? .null,
                         .text(source), .text(now))
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
        return try withStorage(path: url.path) {
            try database.writeTransaction {
                try database.prepare("DELETE FROM suppressions WHERE recipient = ? AND reason IN ('bounce', 'soft_bounce')").run(.text(key))
                let lifted = sqlite3_changes(database.handle) > 0
                try database.prepare("INSERT INTO bounces (recipient, template, kind, status, source, at) VALUES (?, NULL, 'reset', NULL, 'command', ?)")
                    .run(.text(key), .text(Timestamp.format(date)))
                return lifted
            }
        }
    }

    /// Per template: distinct recipients suppressed for a bounce and for a complaint,
    /// counted against the template named in the suppression.
    public func suppressionCounts() throws -> [String: (bounced: Int, complained: Int)] {
        try withStorage(path: url.path) {
            let statement = try database.prepare("""
                SELECT coalesce(template, ''), sum(reason IN ('bounce', 'soft_bounce')), sum(reason = 'complaint') FROM suppressions GROUP BY 1
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
            let statement = try database.prepare("SELECT recipient, reason FROM suppressions")
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
        try database.prepare("""
            INSERT OR IGNORE INTO suppressions (recipient, reason, template, status, source, at) VALUES (?, 'bounce', ?, ?, 'smtp', ?)
            """).run(.text(recipient), .text(template), .text(status), .text(now))
    }
}
