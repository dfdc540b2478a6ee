import CSQLite
import Foundation

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
    /// The SQL condition for a signer (`e`, with personal data `p`) who can be mailed:
    /// not forgotten (no chained redaction names the entry, and its personal row is there:
    /// the join), not withdrawn, not opted out, not suppressed (a bounce or complaint:
    /// Inbox/Suppression.swift), and — with parameter ?1 — consenting.
    static let mailableSignerCondition = """
        e.kind = 'signature' AND \(chained("e")) AND NOT \(forgotten("e.seq")) AND e.seq NOT IN (\(withdrawnSeqs()))
        AND NOT EXISTS (SELECT 1 FROM entries x WHERE x.kind = 'optout' AND x.fingerprint = e.fingerprint AND \(chained("x")))
        AND NOT \(suppressed("e.fingerprint"))
        AND (?1 IS NULL OR EXISTS (SELECT 1 FROM json_each(e.body, '$.consent') WHERE value = ?1))
        """

    /// Signers who can be mailed: personal data present (not forgotten) and not opted
    /// out; with `consent`, only those who gave it. In signing order, from `afterSeq`, at most `limit`.
    public func mailableSigners(consent: String? = nil, afterSeq: Int64 = 0, limit: Int = Int.max) throws -> [Recipient] {
        try withStorage(path: url.path) {
            let statement = try database.prepare("""
                SELECT e.seq, e.fingerprint, e.body, p.data FROM entries e JOIN personal p ON p.seq = e.seq
                WHERE \(Self.mailableSignerCondition) AND e.seq > ?2 ORDER BY e.seq LIMIT ?3
                """)
            try statement.bind([consent.map { .text($0) } ?? .null, .int(afterSeq), .int(Int64(min(limit, Int(Int64.max))))])
            var recipients: [Recipient] = []
            while try statement.step() {
                recipients.append(Self.recipient(seq: statement.int64(0), key: statement.text(1) ?? "",
                                                 body: statement.text(2) ?? "", data: statement.text(3) ?? ""))
            }
            return recipients
        }
    }

    static func recipient(seq: Int64, key: String, body: String, data: String) -> Recipient {
        // Entries written by muster read back without Foundation's parser.
        if let body = CanonicalJSONReader.object(body), let data = CanonicalJSONReader.object(data) {
            func text(_ value: CanonicalJSONReader.Value?) -> String { if case .string(let s)? = value { return s }; return "" }
            func object(_ value: CanonicalJSONReader.Value?) -> [String: String] { if case .object(let o)? = value { return o }; return [:] }
            var fields = object(body["fields"])
            fields.merge(object(data["fields"])) { a, _ in a }
            let consents: [String] = { if case .strings(let list)? = body["consent"] { return list }; return [] }()
            return Recipient(key: key, signature: seq, name: text(data["name"]), email: text(data["email"]), fields: fields, consents: consents)
        }
        let body = jsonObject(body)
        let data = jsonObject(data)
        var fields = body["fields"] as? [String: String] ?? [:]
        fields.merge(data["fields"] as? [String: String] ?? [:]) { a, _ in a }
        return Recipient(key: key, signature: seq, name: data["name"] as? String ?? "", email: data["email"] as? String ?? "",
                         fields: fields, consents: body["consent"] as? [String] ?? [])
    }

    /// Queues every mailable signer without a row for `template`, in the database
    /// (no list in memory, however large the campaign); returns how many were new.
    @discardableResult
    public func enqueueSigners(template: String, consent: String?, at date: Date) throws -> Int {
        try outboxWrite {
            try database.prepare("""
                INSERT OR IGNORE INTO outbox (template, recipient, signature, state, attempts, updated_at)
                SELECT ?2, e.fingerprint, e.seq, \(OutboxState.queued.sqlLiteral), 0, ?3 FROM entries e JOIN personal p ON p.seq = e.seq
                WHERE \(Self.mailableSignerCondition)
                """).run(consent.map { .text($0) } ?? .null, .text(template), .text(Timestamp.format(date)))
            return Int(sqlite3_changes(database.handle))
        }
    }

    /// Rows waiting to be sent whose signer was forgotten or unsubscribed since they
    /// were queued (or who no longer consent) become `failed`; they are never mailed.
    /// With `targetKeys` (the template is for targets), every signer's row is failed too:
    /// it was queued while the template was for signers, and a row is only ever sent
    /// under the audience it was queued for (so a signer never gets a targets message).
    @discardableResult
    public func failUnmailable(template: String, consent: String?, targetKeys: Set<String>?, at date: Date) throws -> Int {
        try outboxWrite {
            let reply = Self.unmailableReply
            let failed = OutboxState.failed.sqlLiteral, claimable = OutboxState.sqlList(OutboxState.claimable)
            try database.prepare("""
                UPDATE outbox SET state = \(failed), reply = ?2, updated_at = ?3
                WHERE template = ?4 AND state IN (\(claimable)) AND signature IS NOT NULL
                  AND (?5 OR signature NOT IN (SELECT e.seq FROM entries e JOIN personal p ON p.seq = e.seq WHERE \(Self.mailableSignerCondition)))
                """).run(consent.map { .text($0) } ?? .null, .text(targetKeys == nil ? reply : Self.otherAudienceReply),
                         .text(Timestamp.format(date)), .text(template), .int(targetKeys == nil ? 0 : 1))
            var changed = Int(sqlite3_changes(database.handle))
            // Target rows (no signature); a signers' blast has none, so this reads nothing.
            let targetRows = try database.prepare("""
                SELECT recipient FROM outbox WHERE template = ? AND state IN (\(claimable)) AND signature IS NULL
                """)
            try targetRows.bind([.text(template)])
            var recipients: [String] = []
            while try targetRows.step() { recipients.append(targetRows.text(0) ?? "") }
            for recipient in recipients {
                let stillTargeted = targetKeys?.contains(recipient) ?? false
                if stillTargeted, try !isOptedOut(fingerprint: recipient), try !isSuppressed(fingerprint: recipient) { continue }
                try database.prepare("UPDATE outbox SET state = \(failed), reply = ?, updated_at = ? WHERE template = ? AND recipient = ?")
                    .run(.text(targetKeys == nil ? Self.otherAudienceReply : reply), .text(Timestamp.format(date)), .text(template), .text(recipient))
                changed += 1
            }
            return changed
        }
    }

    /// What a reply becomes when its signer is forgotten, as an SQL string literal's contents.
    static let erasedReplySQL = "(erased with the signer's personal data)".replacingOccurrences(of: "'", with: "''")

    /// The reply of a row whose recipient may not be mailed any more.
    static let unmailableReply = "not sent: unsubscribed, forgotten or no longer in the audience"

    /// The reply of a row left over from the template's earlier audience.
    static let otherAudienceReply = "not sent: queued for another audience (the template's audience changed since)"

    /// One page of rows in `states`, after (`afterSignature`, `afterRecipient`) in
    /// (signature, recipient) order, with the signer's data when the row is a signer's.
    public func outboxPage(template: String, states: Set<OutboxState>, after: (Int64, String), limit: Int) throws -> [(row: OutboxRow, signer: Recipient?)] {
        try withStorage(path: url.path) {
            let statement = try database.prepare("""
                SELECT o.recipient, o.signature, o.state, o.attempts, o.reply, e.body, p.data FROM outbox o
                LEFT JOIN entries e ON e.seq = o.signature AND \(Self.chained("e"))
                LEFT JOIN personal p ON p.seq = e.seq AND NOT \(Self.forgotten("e.seq"))
                WHERE o.template = ?1 AND o.state IN (\(OutboxState.sqlList(states)))
                  AND coalesce(o.signature, 0) >= ?2 AND (coalesce(o.signature, 0) > ?2 OR o.recipient > ?3)
                ORDER BY coalesce(o.signature, 0), o.recipient LIMIT ?4
                """)
            try statement.bind([.text(template), .int(after.0), .text(after.1), .int(Int64(limit))])
            var page: [(row: OutboxRow, signer: Recipient?)] = []
            while try statement.step() {
                let signature = statement.isNull(1) ? nil : statement.int64(1)
                let row = OutboxRow(template: template, recipient: statement.text(0) ?? "", signature: signature,
                                    state: OutboxState(rawValue: statement.text(2) ?? "") ?? .queued,
                                    attempts: Int(statement.int64(3)), reply: statement.text(4))
                var signer: Recipient?
                if let signature, !statement.isNull(6) {
                    signer = Self.recipient(seq: signature, key: row.recipient, body: statement.text(5) ?? "", data: statement.text(6) ?? "")
                }
                page.append((row, signer))
            }
            return page
        }
    }

    /// The template's current audience: how many it holds, and per state how many of
    /// their rows are in it (someone without a row yet counts as `queued`).
    public func mailablePendingCount(template: String, consent: String?, targets: [Recipient]?) throws -> (audience: Int, counts: OutboxCounts) {
        var counts = OutboxCounts()
        if let targets {
            let states = Dictionary(try outboxRows(template: template, states: Set(OutboxState.allCases)).map { ($0.recipient, $0.state) },
                                    uniquingKeysWith: { a, _ in a })
            for target in targets { counts[states[target.key] ?? .queued] += 1 }
            return (targets.count, counts)
        }
        return try withStorage(path: url.path) {
            let statement = try database.prepare("""
                SELECT coalesce(o.state, \(OutboxState.queued.sqlLiteral)), count(*)
                FROM entries e JOIN personal p ON p.seq = e.seq
                LEFT JOIN outbox o ON o.template = ?2 AND o.recipient = e.fingerprint
                WHERE \(Self.mailableSignerCondition) GROUP BY 1
                """)
            try statement.bind([consent.map { .text($0) } ?? .null, .text(template)])
            var audience = 0
            while try statement.step() {
                let count = Int(statement.int64(1))
                audience += count
                if let state = OutboxState(rawValue: statement.text(0) ?? "") { counts[state] += count }
            }
            return (audience, counts)
        }
    }

    /// `mail send --retry-failed`: every `failed` row of `template` is `queued` again (rows
    /// of people who may not be mailed any more are failed again by `failUnmailable`).
    /// Returns how many.
    @discardableResult
    public func requeueFailed(template: String, at date: Date) throws -> Int {
        try outboxWrite {
            var changed = 0
            for state in OutboxState.retryable {
                guard let next = state.after(.retryFailed) else { continue }
                try database.prepare("UPDATE outbox SET state = ?, updated_at = ? WHERE template = ? AND state = ?")
                    .run(.text(next.rawValue), .text(Timestamp.format(date)), .text(template), .text(state.rawValue))
                changed += Int(sqlite3_changes(database.handle))
            }
            return changed
        }
    }

    /// Rows of `template` per state, counting only rows in `states`.
    public func outboxCount(template: String, states: Set<OutboxState>) throws -> Int {
        try withStorage(path: url.path) {
            Int(try database.scalarInt("SELECT count(*) FROM outbox WHERE template = ? AND state IN (\(OutboxState.sqlList(states)))", .text(template)) ?? 0)
        }
    }

    /// A number that grows whenever someone may have left the audience: the seq of the
    /// newest entry (every opt-out and erasure appends one) plus the id of the newest
    /// bounce (every suppression records one; the table is append-only). A blast tells
    /// from it whether its recipients need checking again.
    func newestEntry() throws -> Int64 {
        try withStorage(path: url.path) {
            try database.scalarInt("SELECT coalesce((SELECT max(seq) FROM entries), 0) + coalesce((SELECT max(id) FROM bounces), 0)") ?? 0
        }
    }

    /// Whether `recipient` may be mailed now: not opted out; as a signer, also not
    /// forgotten and, with `consent`, still consenting.
    func isMailable(_ recipient: Recipient, asSigner: Bool, consent: String?) throws -> Bool {
        try withStorage(path: url.path) {
            guard asSigner else { return try !isOptedOut(fingerprint: recipient.key) && !isSuppressed(fingerprint: recipient.key) }
            guard let seq = recipient.signature else { return false }
            return try database.scalarInt("""
                SELECT EXISTS (SELECT 1 FROM entries e JOIN personal p ON p.seq = e.seq WHERE e.seq = ?2 AND \(Self.mailableSignerCondition))
                """, consent.map { .text($0) } ?? .null, .int(seq)) == 1
        }
    }

    /// The manifest's targets, less any who unsubscribed or are suppressed.
    public func mailableTargets(_ targets: [Manifest.Target]) throws -> [Recipient] {
        try targets.compactMap { target in
            let canonical = try SignatureInput.validatedEmail(target.email)
            let key = try fingerprint(canonicalEmail: canonical)
            if try isOptedOut(fingerprint: key) || isSuppressed(fingerprint: key) { return nil }
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
                VALUES (?, ?, ?, \(OutboxState.queued.sqlLiteral), 0, ?)
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

    /// Whether any row of any template is `sending` (in flight, or left by a killed blast).
    func hasSendingRows() throws -> Bool {
        try withStorage(path: url.path) {
            try database.scalarInt("SELECT EXISTS (SELECT 1 FROM outbox WHERE state = \(OutboxState.sending.sqlLiteral))") == 1
        }
    }

    /// Rows left in `sending` by an interrupted blast (of any template: a blast holds the
    /// campaign's lock, so none is running). Where `journal` covers the row's template, a
    /// row it shows was never handed over goes back to `queued` and a row the relay
    /// accepted becomes `sent`; every other row becomes `unknown`. Returns how many became `unknown`.
    @discardableResult
    func markInterrupted(journal: HandoverJournal.Recovery = .init(), at date: Date) throws -> Int {
        try outboxWrite {
            let sending = OutboxState.sending
            let rows = try database.prepare("SELECT template, recipient FROM outbox WHERE state = \(sending.sqlLiteral)")
            var found: [(template: String, recipient: String)] = []
            while try rows.step() { found.append((rows.text(0) ?? "", rows.text(1) ?? "")) }
            let now = Timestamp.format(date)
            let update = try database.prepare("""
                UPDATE outbox SET state = ?1, reply = coalesce(?2, reply), attempts = attempts + ?3, updated_at = ?4
                WHERE template = ?5 AND recipient = ?6 AND state = \(sending.sqlLiteral)
                """)
            var unknown = 0
            for row in found {
                let covered = journal.covers(row.template)
                let (event, reply, attempt) = Self.recovered(covered ? .some(journal.last[row.recipient]) : nil)
                let state = sending.after(event) ?? sending
                try update.run(.text(state.rawValue), reply.map { .text($0) } ?? .null, .int(attempt ? 1 : 0), .text(now),
                               .text(row.template), .text(row.recipient))
                if state == .unknown { unknown += 1 }
            }
            return unknown
        }
    }

    /// What the journal says of one `sending` row of an interrupted run, as the event that
    /// settles it, the reply to record and whether it was an attempt. `journal` is nil when
    /// no journal can be trusted for the row's template, `.some(nil)` when one can and
    /// never saw the row handed over.
    static func recovered(_ journal: HandoverJournal.Event??) -> (OutboxEvent, String?, Bool) {
        switch journal {
        case .some(.some(.accepted)):
            return (.delivered, "250 accepted by the relay (recorded after the run was interrupted)", true)
        case .some(.some(.failed)):
            return (.rejected, "refused by the relay (recorded after the run was interrupted)", true)
        case .some(.some(.deferred)):
            // Answered without acceptance (4xx, or the session was refused): nothing went out.
            return (.deferred, "not accepted by the relay; to be tried again (recorded after the run was interrupted)", true)
        case .some(nil):
            return (.release, nil, false)
        case .some(.some(.handed)), nil:
            // A hand-over the journal shows is an attempt; without a journal, it cannot be told.
            return (.lost, "interrupted while sending: the relay may or may not have accepted it", journal != nil)
        }
    }

    /// Rows of `template` in `states`, oldest recipients first.
    public func outboxRows(template: String, states: Set<OutboxState>, limit: Int = Int.max) throws -> [OutboxRow] {
        try withStorage(path: url.path) {
            let statement = try database.prepare("""
                SELECT recipient, signature, state, attempts, reply FROM outbox
                WHERE template = ? AND state IN (\(OutboxState.sqlList(states))) ORDER BY coalesce(signature, 0), recipient LIMIT ?
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
        }
    }

    /// One state change of one row.
    public struct OutboxUpdate: Sendable {
        public let recipient: String
        public let state: OutboxState
        public let reply: String?
        public let countsAttempt: Bool
        /// A relay's 5xx about this recipient, recorded as a hard bounce that suppresses the
        /// address (the enhanced status code when the reply has one, else the reply code).
        public var bounce: String?

        public init(recipient: String, state: OutboxState, reply: String? = nil, countsAttempt: Bool = false) {
            self.recipient = recipient
            self.state = state
            self.reply = reply
            self.countsAttempt = countsAttempt
        }
    }

    /// Applies several state changes in one durable transaction (group commit).
    public func updateOutbox(template: String, _ updates: [OutboxUpdate], at date: Date) throws {
        try OutboxUpdater(ledger: self, template: template).apply(updates, at: date)
    }

    /// Counts per state for each template (or one).
    public func outboxCounts(template: String? = nil) throws -> [String: OutboxCounts] {
        try withStorage(path: url.path) {
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
        }
    }

    /// Per template: counts per state (as readers see them), how many of its recipients
    /// unsubscribed since, and how many were suppressed by a bounce or complaint about it.
    public func mailStatus() throws -> [ProgressReport.MailStatus] {
        let unsubscribed = try withStorage(path: url.path) {
            let statement = try database.prepare("""
                SELECT o.template,
                       sum(EXISTS (SELECT 1 FROM entries x WHERE x.kind = 'optout' AND x.fingerprint = o.recipient AND \(Self.chained("x"))))
                FROM outbox o GROUP BY o.template ORDER BY o.template
                """)
            var rows: [(String, Int)] = []
            while try statement.step() { rows.append((statement.text(0) ?? "", Int(statement.int64(1)))) }
            return rows
        }
        let counts = try outboxCounts()
        let suppressed = try suppressionCounts()
        return unsubscribed.map { template, unsubscribed in
            let shown = (counts[template] ?? OutboxCounts()).shown
            var status = ProgressReport.MailStatus(template: template, queued: shown.queued, sent: shown.sent, deferred: shown.deferred,
                                                   failed: shown.failed, unknown: shown.unknown, unsubscribed: unsubscribed)
            status.bounced = suppressed[template]?.bounced ?? 0
            status.complained = suppressed[template]?.complained ?? 0
            return status
        }
    }

    fileprivate func outboxWrite<T>(_ body: () throws -> T) throws -> T {
        try withStorage(path: url.path) { try database.writeTransaction(body) }
    }

    static func jsonObject(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }
}

/// Applies batches of outbox state changes for one template, each batch in one durable
/// transaction, with the statement prepared once (a blast's writer commits thousands).
final class OutboxUpdater {
    private let ledger: Ledger
    private let template: String
    private var statement: SQLiteStatement?

    init(ledger: Ledger, template: String) {
        self.ledger = ledger
        self.template = template
    }

    /// For the length of a blast: checkpoint the WAL every `pages` pages instead of every
    /// 1,000 (each checkpoint copies every page changed since the last one back into the
    /// database, and a blast changes the same outbox pages over and over), and keep up to
    /// `cacheKiB` of pages in memory. `nil` restores SQLite's defaults.
    func tune(checkpointEvery pages: Int?, cacheKiB: Int?) {
        try? ledger.database.execute("PRAGMA wal_autocheckpoint=\(pages ?? 1000); PRAGMA cache_size=-\(cacheKiB ?? 2000)")
    }

    func apply(_ updates: [Ledger.OutboxUpdate], at date: Date) throws {
        guard !updates.isEmpty else { return }
        try ledger.outboxWrite {
            // A reply is kept only while the signer's personal data is: a `forget` committed
            // before this transaction wins, and one after it erases the reply itself.
            let statement = try self.statement ?? ledger.database.prepare("""
                UPDATE outbox SET state = ?1,
                    reply = CASE WHEN ?2 IS NULL THEN reply
                                 WHEN signature IS NOT NULL AND (NOT EXISTS (SELECT 1 FROM personal WHERE seq = outbox.signature)
                                                                 OR \(Ledger.forgotten("outbox.signature")))
                                 THEN '\(Ledger.erasedReplySQL)' ELSE ?2 END,
                    attempts = attempts + ?3, updated_at = ?4
                WHERE template = ?5 AND recipient = ?6
                """)
            self.statement = statement
            // Bindings stay between runs of the statement: the time and template once per batch.
            try statement.bindText(4, Timestamp.format(date))
            try statement.bindText(5, template)
            for update in updates {
                try statement.bindText(1, update.state.rawValue)
                try statement.bindText(2, update.reply)
                try statement.bindInt(3, update.countsAttempt ? 1 : 0)
                try statement.bindText(6, update.recipient)
                try statement.runBound()
                if let status = update.bounce {
                    try ledger.recordSMTPBounce(recipient: update.recipient, template: template, status: status, at: date)
                }
            }
        }
    }
}
