import Foundation

/// Erasing a signer's personal data (`forget`) and opting addresses out of mail (`unsubscribe`).
extension Ledger {
    /// The outcome of `forget`.
    public enum ForgetOutcome: Sendable, Equatable {
        /// Personal data of entry `seq` erased; redaction appended as `redaction`.
        case forgotten(seq: Int64, redaction: Int64)
        /// Erased earlier; nothing to do.
        case alreadyForgotten(seq: Int64)
        /// No signature with that address.
        case notFound
    }

    /// Erases the personal data and salt of the signature with `canonicalEmail`,
    /// appends a redaction entry, and scrubs the write-ahead log.
    public func forget(canonicalEmail: String, at date: Date) throws -> ForgetOutcome {
        let fingerprint = try fingerprint(canonicalEmail: canonicalEmail)
        let outcome: ForgetOutcome = try withStorage(path: url.path) {
            try database.writeTransaction {
                try ensureNothingBesideChain()
                guard let signature = try firstSignature(fingerprint: fingerprint) else { return .notFound }
                guard try database.scalarInt("SELECT count(*) FROM personal WHERE seq = ?", .int(signature.seq)) == 1 else {
                    return .alreadyForgotten(seq: signature.seq)
                }
                try database.prepare("DELETE FROM personal WHERE seq = ?").run(.int(signature.seq))
                // The mailbox key is derived from the address: it goes with it.
                try database.prepare("DELETE FROM mailbox_keys WHERE seq = ?").run(.int(signature.seq))
                // Relays quote the address in their replies ("550 <ana@…>: unknown user").
                try database.prepare("UPDATE outbox SET reply = '(erased with the signer''s personal data)' WHERE signature = ? AND reply IS NOT NULL")
                    .run(.int(signature.seq))
                let redaction = try appendEntry(kind: .redaction, at: Timestamp.format(date), fingerprint: nil,
                                                body: CanonicalJSON.encode(["redacts": signature.seq]), personal: nil)
                return .forgotten(seq: signature.seq, redaction: redaction)
            }
        }
        if case .forgotten = outcome { try scrubWriteAheadLog() }
        return outcome
    }

    /// Copies the log into the database and truncates it, so erased bytes no longer
    /// sit in `ledger.sqlite-wal` (`secure_delete` already zeroes them in the file).
    func scrubWriteAheadLog() throws {
        for _ in 0..<100 {
            let statement = try database.prepare("PRAGMA wal_checkpoint(TRUNCATE)")
            guard try statement.step() else { return }
            if statement.int64(0) == 0 { return } // not blocked by a reader
            usleep(50_000)
        }
        throw MusterError(.temporary, "the personal data was erased, but another muster process kept the write-ahead log open; run `muster forget` again when it has finished to scrub the log")
    }

    /// The outcome of `unsubscribe`.
    public enum UnsubscribeOutcome: Sendable, Equatable {
        case unsubscribed(seq: Int64)
        case alreadyUnsubscribed
    }

    /// Records that `canonicalEmail` must never be mailed again (signer or not).
    public func unsubscribe(canonicalEmail: String, at date: Date) throws -> UnsubscribeOutcome {
        let fingerprint = try fingerprint(canonicalEmail: canonicalEmail)
        return try withStorage(path: url.path) {
            try database.writeTransaction {
                try ensureNothingBesideChain()
                if try isOptedOut(fingerprint: fingerprint) { return .alreadyUnsubscribed }
                let seq = try appendEntry(kind: .optout, at: Timestamp.format(date), fingerprint: fingerprint, body: "{}", personal: nil)
                return .unsubscribed(seq: seq)
            }
        }
    }

    func isOptedOut(fingerprint: String) throws -> Bool {
        try database.scalarInt("SELECT count(*) FROM entries e WHERE e.fingerprint = ? AND e.kind = 'optout' AND \(Self.chained("e"))", .text(fingerprint)) ?? 0 > 0
    }

    /// Whether `canonicalEmail` has opted out of mail.
    public func isOptedOut(canonicalEmail: String) throws -> Bool {
        try isOptedOut(fingerprint: fingerprint(canonicalEmail: canonicalEmail))
    }
}
