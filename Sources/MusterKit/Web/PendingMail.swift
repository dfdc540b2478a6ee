import CSQLite
import Foundation

/// The mail queue inside `pending`: each row's `mail_state` moves through the outbox's
/// state machine (`OutboxState.after(_:)`), exactly as a blast's rows do, so the same
/// rules hold — durable, retried, never doubled:
///
/// - a row is claimed (`sending`, committed) just before its message goes to the relay;
/// - the relay's answer moves it on: `sent`, `failed`, or `deferred` with a time
///   (`mail_after`) before which it is not tried again;
/// - a row found in `sending` when the server starts was claimed by a server that
///   stopped mid-transfer: the message may have gone out, so it becomes `unknown` and is
///   not sent again (the signer may use the form again the next day).
///
/// Once a message is sent or refused for good, the plain token (`mail_token`) is
/// erased, and an "already signed" row keeps no name or address.
extension Ledger {
    /// One message to send: its row, what it is for, and what its template needs.
    public struct PendingMail: Sendable {
        public let id: Int64
        public let purpose: PendingPurpose
        public let name: String
        public let email: String
        /// The plain token for the confirmation link.
        public let token: String
        /// A stable, non-personal name for this message (for its Message-ID).
        public let reference: String
        /// Tries so far.
        public let attempts: Int
    }

    /// Claims up to `limit` rows whose mail is due (queued, or deferred with its time
    /// passed at `now`), oldest first, in one durable transaction: they are `sending`
    /// when this returns. A row whose data cannot be read fails (and is reported by
    /// nothing but its state).
    public func claimPendingMail(limit: Int, at date: Date, now: Date) throws -> [PendingMail] {
        try withStorage(path: url.path) {
            try database.writeTransaction {
                let select = try database.prepare("""
                    SELECT id, purpose, data, mail_token, token_hash, mail_attempts FROM pending
                    WHERE mail_state IN (\(OutboxState.sqlList(OutboxState.pending))) AND held IS NULL AND expires_at > ?
                      AND (mail_after IS NULL OR mail_after <= ?)
                    ORDER BY id LIMIT ?
                    """)
                try select.bind([.text(Timestamp.format(date)), .text(Timestamp.format(now)), .int(Int64(limit))])
                var claimed: [PendingMail] = []
                var unreadable: [Int64] = []
                while try select.step() {
                    let id = select.int64(0)
                    let object = CanonicalJSONReader.object(select.text(2) ?? "")
                    guard let purpose = PendingPurpose(rawValue: select.text(1) ?? ""), let token = select.text(3),
                          case .string(let email)? = object?["email"], case .string(let name)? = object?["name"] else {
                        unreadable.append(id)
                        continue
                    }
                    claimed.append(PendingMail(id: id, purpose: purpose, name: name, email: email, token: token,
                                               reference: String((select.text(4) ?? "").prefix(32)), attempts: Int(select.int64(5))))
                }
                select.reset()
                let stamp = Timestamp.format(date)
                for mail in claimed {
                    try database.prepare("UPDATE pending SET mail_state = ? WHERE id = ?")
                        .run(.text(OutboxState.sending.rawValue), .int(mail.id))
                }
                for id in unreadable {
                    try database.prepare("UPDATE pending SET mail_state = ?, mail_token = NULL, mail_reply = ? WHERE id = ?")
                        .run(.text(OutboxState.failed.rawValue), .text("not sent: the pending row is damaged (\(stamp))"), .int(id))
                }
                return claimed
            }
        }
    }

    /// Records what became of claimed row `id`'s message: its next state by the outbox's
    /// state machine; a deferred one waits until `retryAt`.
    public func finishPendingMail(id: Int64, outcome: DeliveryOutcome, retryAt: Date) throws {
        let next = OutboxState.sending.after(outcome.event) ?? .unknown
        var reply: String?
        switch outcome {
        case .delivered(let receipt): reply = "\(receipt.replyCode) \(receipt.replyText)"
        case .rejected(let failure), .deferred(let failure), .unknown(let failure): reply = failure.description
        case .sessionRefused(let error), .relayUnusable(let error): reply = error.failure?.description ?? error.localizedDescription
        }
        try finishPendingMail(id: id, state: next, reply: reply.map(Blast.redactingAddresses),
                              retryAt: OutboxState.pending.contains(next) ? retryAt : nil)
    }

    /// Puts claimed rows whose message never went to the relay back in the queue.
    public func releasePendingMail(ids: [Int64]) throws {
        for id in ids {
            try finishPendingMail(id: id, state: OutboxState.sending.after(.release) ?? .queued, reply: nil, retryAt: nil)
        }
    }

    func finishPendingMail(id: Int64, state: OutboxState, reply: String?, retryAt: Date?) throws {
        try withStorage(path: url.path) {
            try database.writeTransaction {
                let done = OutboxState.done.contains(state) || state == .unknown
                try database.prepare("""
                    UPDATE pending SET mail_state = ?, mail_reply = coalesce(?, mail_reply),
                        mail_attempts = mail_attempts + ?, mail_after = ?,
                        mail_token = CASE WHEN ? THEN NULL ELSE mail_token END,
                        data = CASE WHEN ? AND purpose = 'already_signed' THEN '{}' ELSE data END
                    WHERE id = ? AND mail_state = 'sending'
                    """).run(.text(state.rawValue), reply.map { .text(String($0.prefix(500))) } ?? .null,
                             .int(state == .queued ? 0 : 1), retryAt.map { .text(Timestamp.format($0)) } ?? .null,
                             .int(done ? 1 : 0), .int(done ? 1 : 0), .int(id))
            }
        }
    }

    /// At server start: rows left `sending` by a server that stopped mid-transfer become
    /// `unknown` (their message may have been accepted: never sent twice). How many.
    @discardableResult
    public func recoverPendingMail() throws -> Int {
        try withStorage(path: url.path) {
            try database.writeTransaction {
                try database.prepare("""
                    UPDATE pending SET mail_state = ?, mail_token = NULL,
                        data = CASE WHEN purpose = 'already_signed' THEN '{}' ELSE data END
                    WHERE mail_state = 'sending'
                    """).run(.text(OutboxState.sending.after(.lost)!.rawValue))
                return Int(sqlite3_changes(database.handle))
            }
        }
    }

    /// The earliest time a deferred mail is due, if any is waiting (for the mailer's sleep).
    public func nextPendingMailDue(at date: Date) throws -> Date? {
        try withStorage(path: url.path) {
            let text = try database.scalarText("""
                SELECT min(coalesce(mail_after, '')) FROM pending
                WHERE mail_state IN (\(OutboxState.sqlList(OutboxState.pending))) AND held IS NULL AND expires_at > ?
                """, .text(Timestamp.format(date)))
            guard let text else { return nil }
            return text.isEmpty ? date : Timestamp.parse(text)
        }
    }
}
