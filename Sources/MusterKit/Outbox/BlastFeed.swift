import Foundation

/// What the event loops of one blast run share: the work feed, the rate limit, the
/// counters and why the run stops. Every mutable field is guarded by `lock`.
final class BlastShared: @unchecked Sendable {
    let request: BlastRequest
    let bucket: TokenBucket?
    let gate: MailabilityGate
    private let clock: any MonotonicClock
    private let started: Double
    private let lock = NSLock()
    private let feed: Feed
    private var progress: BlastProgress
    private var reason: MusterError?

    init(request: BlastRequest, configuration: BlastConfiguration, total: Int, feed: Feed, gate: MailabilityGate) {
        self.request = request
        self.feed = feed
        self.gate = gate
        self.clock = configuration.clock
        self.started = configuration.clock.seconds()
        self.bucket = request.ratePerSecond.map { TokenBucket(rate: $0, clock: configuration.clock) }
        self.progress = BlastProgress(total: total)
    }

    /// Seconds since the run started, on the configuration's monotonic clock.
    var elapsed: Double { clock.seconds() - started }

    /// The next new job, or nil when the feed is used up (or failed: then the run stops).
    func nextJob() -> BlastJob? {
        lock.withLock {
            if let job = feed.next() { return job }
            if let failure = feed.failure, reason == nil { reason = failure }
            return nil
        }
    }

    /// The first reason given wins.
    func stop(_ error: MusterError) {
        lock.withLock { if reason == nil { reason = error } }
    }

    var stopReason: MusterError? { lock.withLock { reason } }

    func add(_ tally: OutboxCounts) {
        lock.withLock { progress.counts += tally }
    }

    func snapshot() -> BlastProgress {
        lock.withLock {
            progress.elapsed = elapsed
            return progress
        }
    }
}

/// Hands out a blast's work a page at a time, so memory stays flat however large the
/// audience. Used under `BlastShared`'s lock only.
final class Feed {
    private let reader: Ledger
    private let template: String
    private let states: Set<OutboxState>
    /// The template's targets by key, when the template is for targets (nil: for signers).
    private let targets: [String: Recipient]?
    private var remaining: Int
    private var page: [BlastJob] = []
    private var position: (Int64, String) = (0, "")
    private var exhausted = false
    private(set) var failure: MusterError?
    static let pageSize = 500

    init(reader: Ledger, template: String, states: Set<OutboxState>, targets: [String: Recipient]?, remaining: Int) {
        self.reader = reader
        self.template = template
        self.states = states
        self.targets = targets
        self.remaining = remaining
    }

    func next() -> BlastJob? {
        guard remaining > 0 else { return nil }
        if page.isEmpty && !exhausted {
            do {
                // Read before the page: the page is at least as new as this.
                let checkedAt = try reader.newestEntry()
                let rows = try reader.outboxPage(template: template, states: states, after: position, limit: Self.pageSize)
                if rows.count < Self.pageSize { exhausted = true }
                if let last = rows.last { position = (last.row.signature ?? 0, last.row.recipient) }
                page = rows.reversed().compactMap { entry in
                    // A row is sent only under the audience it was queued for: a target's row
                    // has no signature, a signer's row has one.
                    let person: Recipient?
                    if let targets {
                        person = entry.row.signature == nil ? targets[entry.row.recipient] : nil
                    } else {
                        person = entry.row.signature == nil ? nil : entry.signer
                    }
                    guard let person else { return nil }
                    return BlastJob(recipient: person, attempts: 0, notBefore: 0, checkedAt: checkedAt)
                }
            } catch {
                failure = Blast.musterError(error)
                exhausted = true
            }
        }
        guard let job = page.popLast() else { return nil }
        remaining -= 1
        return job
    }
}
