import CSQLite
import Foundation

/// Where one (template, recipient) pair stands in a blast.
///
/// `queued → sending → sent | deferred | failed | unknown`. A row is `sent` only once the
/// relay answered 250 to the end of DATA; a row found in `sending` when a blast starts
/// was interrupted by a crash and becomes `unknown`: it is resent only on request.
public enum OutboxState: String, Sendable, Codable, CaseIterable {
    case queued, sending, sent, deferred, failed, unknown
}

/// Counts per state, for `mail status` and blast summaries.
public struct OutboxCounts: Sendable, Codable, Equatable {
    public var queued = 0
    public var sending = 0
    public var sent = 0
    public var deferred = 0
    public var failed = 0
    public var unknown = 0

    public init() {}

    public var total: Int { queued + sending + sent + deferred + failed + unknown }

    subscript(state: OutboxState) -> Int {
        get {
            switch state {
            case .queued: return queued
            case .sending: return sending
            case .sent: return sent
            case .deferred: return deferred
            case .failed: return failed
            case .unknown: return unknown
            }
        }
        set {
            switch state {
            case .queued: queued = newValue
            case .sending: sending = newValue
            case .sent: sent = newValue
            case .deferred: deferred = newValue
            case .failed: failed = newValue
            case .unknown: unknown = newValue
            }
        }
    }
}

/// A person a blast may write to: a signer (with their entry) or a target.
///
/// The outbox stores only `key` — the ledger's keyed fingerprint of the address — so it
/// holds no personal data; name and address are read from the ledger or manifest at send time.
public struct Recipient: Sendable, Equatable {
    /// The fingerprint of the canonical address (the outbox key).
    public let key: String
    /// The signature entry, for signers.
    public let signature: Int64?
    public let name: String
    /// The address as typed.
    public let email: String
    /// Every field: non-personal and personal.
    public let fields: [String: String]
    public let consents: [String]
}

/// One outbox row.
public struct OutboxRow: Sendable, Equatable {
    public let template: String
    public let recipient: String
    public let signature: Int64?
    public let state: OutboxState
    public let attempts: Int
    public let reply: String?
}

extension Ledger {
    /// Signers who can be mailed: personal data present (not forgotten) and not opted
    /// out; with `consent`, only those who gave it. In signing order.
    public func mailableSigners(consent: String? = nil) throws -> [Recipient] {
        do {
            return try snapshot {
                let statement = try database.prepare("""
                    SELECT e.seq, e.fingerprint, e.body, p.data FROM entries e JOIN personal p ON p.seq = e.seq
                    WHERE e.kind = 'signature'
                      AND e.fingerprint NOT IN (SELECT fingerprint FROM entries WHERE kind = 'optout')
                    ORDER BY e.seq
                    """)
                var recipients: [Recipient] = []
                while try statement.step() {
                    let body = Self.jsonObject(statement.text(2) ?? "")
                    let data = Self.jsonObject(statement.text(3) ?? "")
                    let consents = body["consent"] as? [String] ?? []
                    if let consent, !consents.contains(consent) { continue }
                    var fields = body["fields"] as? [String: String] ?? [:]
                    fields.merge(data["fields"] as? [String: String] ?? [:]) { a, _ in a }
                    recipients.append(Recipient(
                        key: statement.text(1) ?? "", signature: statement.int64(0),
                        name: data["name"] as? String ?? "", email: data["email"] as? String ?? "",
                        fields: fields, consents: consents))
                }
                return recipients
            }
        } catch let error as SQLiteError {
            throw MusterError.storage(error, path: url.path)
        }
    }

    /// The manifest's targets, less any who unsubscribed.
    public func mailableTargets(_ targets: [Manifest.Target]) throws -> [Recipient] {
        try targets.compactMap { target in
            let canonical = try SignatureInput.validatedEmail(target.email)
            let key = try fingerprint(canonicalEmail: canonical)
            if try isOptedOut(fingerprint: key) { return nil }
            return Recipient(key: key, signature: nil, name: target.name, email: target.email, fields: [:], consents: [])
        }
    }

    /// The keyed fingerprint of an address, as the outbox stores it.
    public func recipientKey(email: String) throws -> String {
        try fingerprint(canonicalEmail: SignatureInput.validatedEmail(email))
    }

    /// Adds a `queued` row for every recipient without one; returns how many were new.
    @discardableResult
    public func enqueue(template: String, recipients: [Recipient], at date: Date) throws -> Int {
        try outboxWrite {
            let insert = try database.prepare("""
                INSERT OR IGNORE INTO outbox (template, recipient, signature, state, attempts, updated_at)
                VALUES (?, ?, ?, 'queued', 0, ?)
                """)
            let now = Timestamp.format(date)
            var added = 0
            for recipient in recipients {
                try insert.run(.text(template), .text(recipient.key), recipient.signature.map { .int($0) } ?? .null, .text(now))
                added += Int(sqlite3_changes(database.handle))
            }
            return added
        }
    }

    /// Rows left in `sending` by an interrupted blast become `unknown`; returns how many.
    @discardableResult
    public func markInterrupted(template: String, at date: Date) throws -> Int {
        try outboxWrite {
            try database.prepare("UPDATE outbox SET state = 'unknown', reply = coalesce(reply, 'interrupted while sending: the relay may or may not have accepted it'), updated_at = ? WHERE template = ? AND state = 'sending'")
                .run(.text(Timestamp.format(date)), .text(template))
            return Int(sqlite3_changes(database.handle))
        }
    }

    /// Rows of `template` in `states`, oldest recipients first.
    public func outboxRows(template: String, states: Set<OutboxState>, limit: Int = Int.max) throws -> [OutboxRow] {
        do {
            let placeholders = states.map { "'\($0.rawValue)'" }.sorted().joined(separator: ",")
            let statement = try database.prepare("""
                SELECT recipient, signature, state, attempts, reply FROM outbox
                WHERE template = ? AND state IN (\(placeholders)) ORDER BY coalesce(signature, 0), recipient LIMIT ?
                """)
            try statement.bind([.text(template), .int(Int64(min(limit, Int(Int64.max))))])
            var rows: [OutboxRow] = []
            while try statement.step() {
                rows.append(OutboxRow(template: template, recipient: statement.text(0) ?? "",
                                      signature: statement.isNull(1) ? nil : statement.int64(1),
                                      state: OutboxState(rawValue: statement.text(2) ?? "") ?? .queued,
                                      attempts: Int(statement.int64(3)), reply: statement.text(4)))
            }
            return rows
        } catch let error as SQLiteError {
            throw MusterError.storage(error, path: url.path)
        }
    }

    /// One state change of one row.
    public struct OutboxUpdate: Sendable {
        public let recipient: String
        public let state: OutboxState
        public let reply: String?
        public let countsAttempt: Bool

        public init(recipient: String, state: OutboxState, reply: String? = nil, countsAttempt: Bool = false) {
            self.recipient = recipient
            self.state = state
            self.reply = reply
            self.countsAttempt = countsAttempt
        }
    }

    /// Applies several state changes in one durable transaction (group commit).
    public func updateOutbox(template: String, _ updates: [OutboxUpdate], at date: Date) throws {
        guard !updates.isEmpty else { return }
        try outboxWrite {
            let statement = try database.prepare("""
                UPDATE outbox SET state = ?, reply = coalesce(?, reply), attempts = attempts + ?, updated_at = ?
                WHERE template = ? AND recipient = ?
                """)
            let now = Timestamp.format(date)
            for update in updates {
                try statement.run(.text(update.state.rawValue), update.reply.map { .text($0) } ?? .null,
                                  .int(update.countsAttempt ? 1 : 0), .text(now), .text(template), .text(update.recipient))
            }
        }
    }

    /// Counts per state for each template (or one).
    public func outboxCounts(template: String? = nil) throws -> [String: OutboxCounts] {
        do {
            let statement = try database.prepare("""
                SELECT template, state, count(*) FROM outbox WHERE (?1 IS NULL OR template = ?1) GROUP BY template, state
                """)
            try statement.bind([template.map { .text($0) } ?? .null])
            var result: [String: OutboxCounts] = [:]
            if let template { result[template] = OutboxCounts() }
            while try statement.step() {
                guard let state = OutboxState(rawValue: statement.text(1) ?? "") else { continue }
                result[statement.text(0) ?? "", default: OutboxCounts()][state] = Int(statement.int64(2))
            }
            return result
        } catch let error as SQLiteError {
            throw MusterError.storage(error, path: url.path)
        }
    }

    private func outboxWrite<T>(_ body: () throws -> T) throws -> T {
        do {
            return try database.writeTransaction(body)
        } catch let error as SQLiteError {
            throw MusterError.storage(error, path: url.path)
        }
    }

    static func jsonObject(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }
}
