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

    convenience init(campaign: Campaign) throws {
        // With the workspace's `dedupe:` rules: duplicates are found by mailbox.
        guard let ledger = try Ledger.open(campaign, create: true) else {
            throw MusterError.failure("cannot open \(campaign.ledgerURL.path)")
        }
        self.init(ledger: ledger, url: campaign.ledgerURL, label: campaign.slug)
    }

    init(ledger: Ledger, url: URL, label: String) {
        self.ledger = ledger
        self.url = url
        self.queue = DispatchQueue(label: "muster.serve.ledger.\(label)")
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

    // MARK: - Group commit

    /// The most writes one transaction takes.
    static let maxBatch = 512

    /// One request's write waiting for the next transaction.
    private final class WriteJob: @unchecked Sendable {
        // `run` and `finish` are called on the desk's queue only, once each.
        let run: (Ledger) -> Bool
        let finish: ((any Error)?) -> Void
        init(run: @escaping (Ledger) -> Bool, finish: @escaping ((any Error)?) -> Void) {
            self.run = run
            self.finish = finish
        }
    }

    private final class Slot<T>: @unchecked Sendable {
        // Written by `run`, read by `finish`, both on the desk's queue.
        var result: Result<T, any Error>?
    }

    // `lock` guards `waiting` and `draining`.
    private let lock = NSLock()
    private var waiting: [WriteJob] = []
    private var draining = false

    /// Runs `body` inside a durable write transaction shared with the other writes that
    /// are waiting (group commit): one `BEGIN IMMEDIATE … COMMIT` (one fsync) for up to
    /// `maxBatch` requests, each in a savepoint of its own, so that one request's error
    /// undoes its own writes only. Returns, or throws, only once that transaction has
    /// committed (or failed, when every write in it fails with the same error): a page
    /// that says something was stored is never sent before it is durable.
    ///
    /// The transaction starts with `beginPendingWrites` (nothing beside the chain, mailbox
    /// keys current), once for the batch. Writes queue while the previous transaction
    /// commits; reads and the mailer's calls on the same queue take their turn between
    /// transactions.
    func write<T: Sendable>(_ body: @escaping @Sendable (Ledger) throws -> T) async throws -> T {
        let path = url.path
        return try await withCheckedThrowingContinuation { continuation in
            let slot = Slot<T>()
            let job = WriteJob(run: { ledger in
                slot.result = Result { try withStorage(path: path) { try body(ledger) } }
                if case .success = slot.result { return true }
                return false
            }, finish: { failure in
                if let failure {
                    continuation.resume(throwing: failure)
                } else {
                    continuation.resume(with: slot.result!)
                }
            })
            lock.lock()
            waiting.append(job)
            let start = !draining
            draining = true
            lock.unlock()
            if start { queue.async { self.commitWaiting() } }
        }
    }

    /// On the queue: commits up to `maxBatch` waiting writes, then lets whatever else is
    /// queued run before the next batch.
    private func commitWaiting() {
        lock.lock()
        let jobs = Array(waiting.prefix(Self.maxBatch))
        waiting.removeFirst(jobs.count)
        lock.unlock()
        if !jobs.isEmpty { commit(jobs) }
        lock.lock()
        let more = !waiting.isEmpty
        draining = more
        lock.unlock()
        if more { queue.async { self.commitWaiting() } }
    }

    private func commit(_ jobs: [WriteJob]) {
        let database = ledger.database
        var note: String?
        do {
            try withStorage(path: url.path) {
                try database.writeTransaction {
                    note = try ledger.beginPendingWrites()
                    for job in jobs {
                        try database.executeCached("SAVEPOINT request")
                        if job.run(ledger) {
                            try database.executeCached("RELEASE request")
                        } else {
                            try database.executeCached("ROLLBACK TO request")
                            try database.executeCached("RELEASE request")
                        }
                    }
                }
            }
        } catch {
            for job in jobs { job.finish(error) }
            return
        }
        Ledger.announce(note)
        for job in jobs { job.finish(nil) }
    }
}

/// What the pages show of a ledger.
struct LedgerStanding: Sendable {
    var count: Int64
    var head: String
    /// The time of the newest entry; nil for an empty ledger.
    var updatedAt: String?
}
