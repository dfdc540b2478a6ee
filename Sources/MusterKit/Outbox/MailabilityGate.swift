import Foundation

/// Tells a blast's event loops, just before a message is handed to libcurl, whether its
/// recipient may still be mailed: `unsubscribe` and `forget` in another process take
/// effect on a running blast, whose work was read ahead in pages.
///
/// Cheap on the hot path: each round asks SQLite only for `PRAGMA data_version` on a
/// connection of its own, which changes when another connection has committed; only then
/// is the ledger's newest entry read. A job checked at an older newest entry is looked up
/// again (opt-outs and erasures both append an entry). Thread-safe.
final class MailabilityGate: @unchecked Sendable {
    // Every field is guarded by `lock`.
    private let lock = NSLock()
    private let ledger: Ledger
    private let audience: EmailAudience
    private let consent: String?
    private let version: SQLiteStatement
    private var lastVersion: Int64 = -1
    private var newest: Int64 = 0

    init(url: URL, audience: EmailAudience, consent: String?) throws {
        guard let ledger = try Ledger.open(url, create: false) else { throw MusterError.failure("the ledger disappeared") }
        self.ledger = ledger
        self.audience = audience
        self.consent = consent
        version = try withStorage(path: url.path) { try ledger.database.prepare("PRAGMA data_version") }
    }

    /// The seq of the ledger's newest entry now.
    func newestEntry() throws -> Int64 {
        try lock.withLock {
            try withStorage(path: ledger.url.path) {
                // Reset at once: a statement left on its row would hold a read transaction open.
                defer { version.reset() }
                guard try version.step() else { return newest }
                let current = version.int64(0)
                version.reset()
                if current != lastVersion {
                    lastVersion = current
                    newest = try ledger.newestEntry()
                }
                return newest
            }
        }
    }

    /// Whether `recipient` may be mailed now: not opted out, and for signers not forgotten
    /// and (for a consenting template) still consenting.
    func isMailable(_ recipient: Recipient) throws -> Bool {
        try lock.withLock {
            try ledger.isMailable(recipient, asSigner: audience != .targets, consent: consent)
        }
    }
}
