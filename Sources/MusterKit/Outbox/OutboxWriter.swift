import Foundation

/// Writes outbox state changes in shared transactions on a thread of its own (group
/// commit): one fsync covers every change submitted meanwhile. `submit` returns a
/// ticket at once; a change is on disk once `committedTicket()` reaches its ticket,
/// and `onCommit` runs after every commit.
final class OutboxWriter: @unchecked Sendable {
    // All fields are guarded by `condition`; the updater is used by the writer thread only.
    private let condition = NSCondition()
    private let updater: OutboxUpdater
    private let clock: Clock
    private let onCommit: @Sendable () -> Void
    private var pending: [Ledger.OutboxUpdate] = []
    private var submitted = 0
    private var committed = 0
    private var failure: Error?
    private var closing = false
    private var finished = false

    init(ledger: Ledger, template: String, clock: Clock, onCommit: @escaping @Sendable () -> Void = {}) {
        self.updater = OutboxUpdater(ledger: ledger, template: template)
        self.clock = clock
        self.onCommit = onCommit
        Thread.detachNewThread { [self] in loop() }
    }

    /// Queues `updates` to be written together; returns their ticket.
    @discardableResult
    func submit(_ updates: [Ledger.OutboxUpdate]) -> Int {
        condition.lock()
        defer { condition.unlock() }
        submitted += 1
        guard failure == nil else { return submitted }
        pending += updates
        condition.broadcast()
        return submitted
    }

    /// The highest ticket whose changes are on disk; throws once a write has failed.
    func committedTicket() throws -> Int {
        condition.lock()
        defer { condition.unlock() }
        if let failure { throw failure }
        return committed
    }

    /// Writes what is left and stops; returns the first write failure, if any.
    func close() -> Error? {
        condition.lock()
        closing = true
        condition.broadcast()
        while !finished { condition.wait() }
        defer { condition.unlock() }
        updater.tune(checkpointEvery: nil, cacheKiB: nil)  // the writer thread is done with it
        return failure
    }

    private func loop() {
        updater.tune(checkpointEvery: 10_000, cacheKiB: 8_192)
        condition.lock()
        while true {
            while pending.isEmpty && !closing { condition.wait() }
            if pending.isEmpty && closing { break }
            let batch = pending
            pending.removeAll(keepingCapacity: true)
            let ticket = submitted
            condition.unlock()
            var error: Error?
            do {
                try updater.apply(batch, at: clock.now())
            } catch let thrown {
                error = thrown
            }
            condition.lock()
            if let error, failure == nil { failure = error }
            if failure == nil { committed = ticket }
            condition.broadcast()
            if failure != nil { pending.removeAll() }
            condition.unlock()
            onCommit()
            condition.lock()
        }
        finished = true
        condition.broadcast()
        condition.unlock()
    }
}
