import Dispatch
import Foundation

/// One campaign's ledger inside `muster serve`: a single connection used from one serial
/// queue, so SQLite's blocking calls (a durable commit waits for fsync) never run on
/// Swift's cooperative threads, and requests for the same ledger take turns.
///
/// The CLI keeps working beside the server: it opens the same file through its own
/// connection, and SQLite's locks (WAL mode, a busy time-out) order the writers.
final class LedgerDesk: @unchecked Sendable {
    // `ledger` is touched only on `queue`.
    private let ledger: Ledger
    private let queue: DispatchQueue
    let url: URL

    init(campaign: Campaign) throws {
        // With the workspace's `dedupe:` rules: duplicates are found by mailbox.
        guard let ledger = try Ledger.open(campaign, create: true) else {
            throw MusterError.failure("cannot open \(campaign.ledgerURL.path)")
        }
        self.ledger = ledger
        self.url = campaign.ledgerURL
        self.queue = DispatchQueue(label: "muster.serve.ledger.\(campaign.slug)")
    }

    /// Runs `body` with the ledger on the desk's queue.
    func perform<T: Sendable>(_ body: @escaping @Sendable (Ledger) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try body(self.ledger) })
            }
        }
    }

    /// Runs `body` with the ledger on the desk's queue, blocking the calling thread (the
    /// mailer's own thread, never a cooperative one).
    func sync<T>(_ body: (Ledger) throws -> T) throws -> T {
        try queue.sync { try body(ledger) }
    }

    /// The count and head hash as one consistent reading.
    func standing() async throws -> LedgerStanding {
        try await perform { ledger in
            try ledger.snapshot {
                let head = try ledger.readHead()
                // Withdrawn duplicates are not counted (`muster dedupe --withdraw`).
                return LedgerStanding(count: try ledger.countedSignatures(), head: head.hash,
                                      updatedAt: head.seq > 0 ? try ledger.database.scalarText("SELECT at FROM entries WHERE seq = ?", .int(head.seq)) : nil)
            }
        }
    }

    /// Nil when the ledger can be written (file and folder writable, nothing beside its
    /// chain), or why not.
    func writableProblem() async -> String? {
        let path = url.path
        guard access(path, W_OK) == 0, access(url.deletingLastPathComponent().path, W_OK) == 0 else {
            return "ledger not writable"
        }
        do {
            try await perform { ledger in try ledger.ensureWritable() }
            return nil
        } catch {
            return "ledger refuses writes"
        }
    }
}

/// What the pages show of a ledger.
struct LedgerStanding: Sendable {
    var count: Int64
    var head: String
    /// The time of the newest entry; nil for an empty ledger.
    var updatedAt: String?
}
