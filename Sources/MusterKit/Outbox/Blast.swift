import Foundation

/// What `muster mail send` was asked to do.
public struct BlastRequest: Sendable {
    public var template: String
    /// Send at most this many messages in this run.
    public var limit: Int?
    /// Parallel SMTP connections, one per worker.
    public var connections: Int
    /// At most this many messages per second, across all connections.
    public var ratePerSecond: Double?
    /// Resend rows whose outcome was lost (may double-send those).
    public var retryUnknown: Bool
    /// Attempts per message in one run before it stays `deferred`.
    public var maxAttempts: Int
    /// The first retry waits this long; each next one twice as long.
    public var backoff: Double

    public init(template: String, limit: Int? = nil, connections: Int = 4, ratePerSecond: Double? = nil,
                retryUnknown: Bool = false, maxAttempts: Int = 5, backoff: Double = 1) {
        self.template = template
        self.limit = limit
        self.connections = connections
        self.ratePerSecond = ratePerSecond
        self.retryUnknown = retryUnknown
        self.maxAttempts = maxAttempts
        self.backoff = backoff
    }
}

/// What a blast will do, shown before anything is sent.
public struct BlastPlan: Sendable, Codable, Equatable {
    public let template: String
    public let audience: String
    /// Everyone the template is for, now (unsubscribed and forgotten signers excluded).
    public let recipients: Int
    public let alreadySent: Int
    /// Messages this run will try to send.
    public let toSend: Int
    /// Rows whose outcome was lost in an earlier run (resent only with --retry-unknown).
    public let unknown: Int
    public let failed: Int
    public let firstSubject: String?

    enum CodingKeys: String, CodingKey {
        case template, audience, recipients, unknown, failed
        case alreadySent = "already_sent"
        case toSend = "to_send"
        case firstSubject = "first_subject"
    }
}

/// How a blast is going, for the progress display.
public struct BlastProgress: Sendable {
    public var total: Int
    public var sent = 0
    public var deferred = 0
    public var failed = 0
    public var unknown = 0
    public var elapsed: Double = 0

    public var done: Int { sent + failed + unknown }
    public var rate: Double { elapsed > 0 ? Double(sent) / elapsed : 0 }
}

/// The outcome of a blast run.
public struct BlastSummary: Sendable, Codable, Equatable {
    public var template: String
    public var sent = 0
    public var deferred = 0
    public var failed = 0
    public var unknown = 0
    /// Rows still waiting (not attempted in this run, e.g. past --limit).
    public var queued = 0
    public var seconds: Double = 0
    /// Messages per second over the run.
    public var rate: Double = 0
    /// Why the run stopped early, if it did.
    public var stoppedBecause: String?

    public init(template: String) { self.template = template }

    enum CodingKeys: String, CodingKey {
        case template, sent, deferred, failed, unknown, queued, seconds, rate
        case stoppedBecause = "stopped_because"
    }
}

/// A blast: one template to its whole audience through the outbox, so that a
/// recipient is sent a template once however often the command is run.
public final class Blast: @unchecked Sendable {
    // Shared between worker threads: every mutable access goes through `lock`.
    public let campaign: Campaign
    public let manifest: Manifest
    public let template: EmailTemplate
    let ledger: Ledger
    let clock: Clock
    let info: CampaignMailInfo
    let messageSettings: MessageSettings
    let unsubscribeURL: String?
    /// Files every message carries: the signature sheet, for `attach_signatures`.
    let attachments: [MIMEAttachment]
    private let lock = NSLock()

    /// Loads the template and everything its messages need; throws (65) when the
    /// template is invalid or uses a variable the campaign does not define.
    public init(campaign: Campaign, manifest: Manifest, settings: WorkspaceSettings, ledger: Ledger,
                templateName: String, clock: Clock) throws {
        self.campaign = campaign
        self.manifest = manifest
        self.ledger = ledger
        self.clock = clock
        self.template = try MailTemplates.load(templateName, campaign: campaign, manifest: manifest)
        guard let senderText = manifest.sender ?? settings.sender else {
            throw MusterError.badInput("no sender: set 'sender' in \(campaign.workspace.display(campaign.manifestURL)) or muster.yaml")
        }
        let sender: MailAddress
        do {
            sender = try MailAddress(parsing: senderText, header: "From")
        } catch {
            throw MusterError.badInput("sender '\(senderText)': \(error.localizedDescription)")
        }
        let report = try ProgressReport.make(campaign: campaign, manifest: manifest, clock: clock)
        let milestone = report.milestones.last(where: \.reached).map { $0.label ?? "\(Number.grouped(Int64($0.at))) signatures" }
        info = CampaignMailInfo(slug: campaign.slug, title: manifest.title, count: Int(report.count), goal: manifest.goal,
                                deadline: manifest.deadline, daysLeft: report.daysLeft, milestone: milestone, sender: sender)
        messageSettings = MessageSettings(unsubscribeMailbox: (try? sender.named(nil)) ?? sender)
        unsubscribeURL = settings.unsubscribeURL
        // Read once, with the count above, so every target gets the same sheet.
        attachments = try template.attachSignatures.map {
            [try SignatureSheet.attachment($0, campaign: campaign, manifest: manifest, ledger: ledger)]
        } ?? []
    }

    /// For a `consenting` template, the consent its recipients must have given.
    func requiredConsent() throws -> String? {
        guard template.audience == .consenting else { return nil }
        guard let consent = template.consent ?? (manifest.consents.count == 1 ? manifest.consents[0].key : nil) else {
            throw MusterError.badInput("\(template.file): audience 'consenting' needs 'consent: KEY' (one of \(manifest.consents.map(\.key).joined(separator: ", ")))")
        }
        guard manifest.consents.contains(where: { $0.key == consent }) else {
            throw MusterError.badInput("\(template.file): consent '\(consent)' is not declared in the manifest")
        }
        return consent
    }

    /// The people this template goes to, now (the whole list: for previews and tests;
    /// blasts page through the outbox instead).
    public func audience(limit: Int = Int.max) throws -> [Recipient] {
        switch template.audience {
        case .signers, .consenting: return try ledger.mailableSigners(consent: requiredConsent(), limit: limit)
        case .targets: return Array(try ledger.mailableTargets(manifest.targets).prefix(limit))
        }
    }

    /// Calls `body` for each audience member in order, a page at a time; stops when it returns false.
    public func forEachAudienceMember(_ body: (Recipient) throws -> Bool) throws {
        if template.audience == .targets {
            for target in try ledger.mailableTargets(manifest.targets) where try !body(target) { return }
            return
        }
        let consent = try requiredConsent()
        var after: Int64 = 0
        while true {
            let page = try ledger.mailableSigners(consent: consent, afterSeq: after, limit: 500)
            for person in page where try !body(person) { return }
            guard page.count == 500, let last = page.last?.signature else { return }
            after = last
        }
    }

    /// The audience member with this address, if any.
    public func audienceMember(email: String) throws -> Recipient? {
        let key = try ledger.recipientKey(email: email)
        switch template.audience {
        case .targets: return try ledger.mailableTargets(manifest.targets).first { $0.key == key }
        case .signers, .consenting:
            guard let first = try ledger.firstSignature(fingerprint: key) else { return nil }
            return try ledger.mailableSigners(consent: requiredConsent(), afterSeq: first.seq - 1, limit: 1).first { $0.key == key }
        }
    }

    /// The message `recipient` would get, byte for byte.
    public func render(_ recipient: Recipient) throws -> RenderedMessage {
        var url: String?
        if let base = unsubscribeURL {
            url = base + (base.contains("?") ? "&" : "?") + "c=\(campaign.slug)&r=\(recipient.key.prefix(32))"
        }
        let mailRecipient = MailRecipient(name: recipient.name, email: recipient.email, fields: recipient.fields, unsubscribeURL: url)
        do {
            return try renderMessage(template: template, recipient: mailRecipient, campaign: info, settings: messageSettings,
                                     date: clock.now(), attachments: attachments)
        } catch {
            throw MusterError.badInput(error.localizedDescription)
        }
    }

    /// A stand-in signer for test sends and checks: every field filled.
    public func sampleRecipient(email: String) throws -> Recipient {
        var fields: [String: String] = [:]
        for field in manifest.fields { fields[field.name] = field.options?.first ?? "Sample \(field.name)" }
        return Recipient(key: try ledger.recipientKey(email: email), signature: nil, name: "Sam Sample", email: email,
                         fields: fields, consents: manifest.consents.map(\.key))
    }

    /// What `run` would do, without writing anything.
    public func plan(_ request: BlastRequest) throws -> BlastPlan {
        let consent = try requiredConsent()
        let targets = template.audience == .targets ? try ledger.mailableTargets(manifest.targets) : []
        let recipients = template.audience == .targets ? targets.count : try ledger.mailableSignerCount(consent: consent)
        let counts = try ledger.outboxCounts(template: template.name)[template.name] ?? OutboxCounts()
        // Rows of people who left the audience are not counted as work; new audience members are.
        let queued = try ledger.mailablePendingCount(template: template.name, consent: consent, targets: template.audience == .targets ? targets : nil)
        let unknown = counts.unknown + counts.sending
        var pending = queued.pending
        if request.retryUnknown { pending += queued.unknown }
        let firstSubject = try audience(limit: 1).first.map { try render($0).subject }
        return BlastPlan(template: template.name, audience: template.audience.rawValue, recipients: recipients,
                         alreadySent: counts.sent, toSend: min(pending, request.limit ?? Int.max), unknown: unknown,
                         failed: counts.failed, firstSubject: firstSubject)
    }

    // MARK: - Sending

    struct Job {
        let recipient: Recipient
        var attempts: Int
        var notBefore: Double
    }

    /// Retries waiting for their time (the next page of new work comes from `feed`).
    private var jobs: [Job] = []
    private var feed: Feed?
    private var progress = BlastProgress(total: 0)
    private var stopReason: MusterError?
    private var stopRequested = false
    private var writer: OutboxWriter?

    /// Asks a running blast to finish the messages in flight and stop.
    public func requestStop() {
        lock.withLock { stopRequested = true }
    }

    /// Sends every pending message of the template with `request.connections` workers,
    /// each reusing one connection from `makeTransport`. Returns when all are done,
    /// deferred past their last attempt, or the run had to stop.
    public func run(_ request: BlastRequest, makeTransport: @escaping @Sendable () throws -> MailTransport,
                    onProgress: @escaping @Sendable (BlastProgress) -> Void) throws -> BlastSummary {
        let lockFile = try BlastLock(campaign.folder.appendingPathComponent(".mail.lock"))
        defer { lockFile.release() }
        let now = clock.now()
        let consent = try requiredConsent()
        try ledger.markInterrupted(template: template.name, at: now)
        var targets: [String: Recipient] = [:]
        if template.audience == .targets {
            let people = try ledger.mailableTargets(manifest.targets)
            try ledger.enqueue(template: template.name, recipients: people, at: now)
            targets = Dictionary(people.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        } else {
            try ledger.enqueueSigners(template: template.name, consent: consent, at: now)
        }
        try ledger.failUnmailable(template: template.name, consent: consent,
                                  targetKeys: template.audience == .targets ? Set(targets.keys) : nil, at: now)
        var states: Set<OutboxState> = [.queued, .deferred]
        if request.retryUnknown { states.insert(.unknown) }
        let total = min(try ledger.outboxCount(template: template.name, states: states), request.limit ?? Int.max)
        // Pages of work are read on a connection of their own while the writer commits on the main one.
        guard let reader = try Ledger.open(ledger.url, create: false) else { throw MusterError.failure("the ledger disappeared") }
        lock.withLock {
            feed = Feed(reader: reader, template: template.name, states: states, targets: targets, remaining: total)
        }

        let started = Date()
        lock.withLock {
            jobs = []
            progress = BlastProgress(total: total)
        }
        let bucket = request.ratePerSecond.map { TokenBucket(rate: $0) }
        let writer = OutboxWriter(ledger: ledger, template: template.name, clock: clock)
        lock.withLock { self.writer = writer }
        let workers = max(1, min(request.connections, max(1, total)))
        let group = DispatchGroup()
        for _ in 0..<workers {
            group.enter()
            Thread.detachNewThread { [self] in
                defer { group.leave() }
                self.work(request: request, makeTransport: makeTransport, bucket: bucket, started: started, onProgress: onProgress)
            }
        }
        // Report progress while the workers run.
        while group.wait(timeout: .now() + 0.2) == .timedOut {
            let snapshot = lock.withLock { () -> BlastProgress in
                progress.elapsed = Date().timeIntervalSince(started)
                return progress
            }
            onProgress(snapshot)
        }
        if let failure = writer.close() {
            lock.withLock { if stopReason == nil { stopReason = (failure as? MusterError) ?? MusterError(.failure, "\(failure)") } }
        }
        let final = lock.withLock { () -> BlastProgress in
            progress.elapsed = Date().timeIntervalSince(started)
            return progress
        }
        onProgress(final)
        var summary = BlastSummary(template: template.name)
        summary.sent = final.sent
        summary.failed = final.failed
        summary.unknown = final.unknown
        summary.deferred = try ledger.outboxCounts(template: template.name)[template.name]?.deferred ?? 0
        summary.queued = try ledger.outboxCounts(template: template.name)[template.name]?.queued ?? 0
        summary.seconds = final.elapsed
        summary.rate = final.rate
        if let reason = lock.withLock({ stopReason }) {
            summary.stoppedBecause = reason.message
            throw BlastStopped(summary: summary, error: reason)
        }
        if lock.withLock({ stopRequested }) { summary.stoppedBecause = "interrupted" }
        return summary
    }

    /// One worker: takes the next due job, sends it over its own connection, records the outcome.
    private func work(request: BlastRequest, makeTransport: () throws -> MailTransport, bucket: TokenBucket?,
                      started: Date, onProgress: (BlastProgress) -> Void) {
        var transport: MailTransport?
        while true {
            // Take the next job whose time has come.
            var next: Job?
            var wait = 0.0
            let finished: Bool = lock.withLock {
                if stopReason != nil || stopRequested { return true }
                let now = Date().timeIntervalSince(started)
                if let index = jobs.firstIndex(where: { $0.notBefore <= now }) {
                    next = jobs.remove(at: index)
                    return false
                }
                if let job = feed?.next() {
                    next = job
                    return false
                }
                if let error = feed?.failure, stopReason == nil { stopReason = error }
                if jobs.isEmpty { return true }
                wait = max(0.01, (jobs.map(\.notBefore).min() ?? now) - now)
                return false
            }
            if finished { return }
            guard var job = next else {
                Thread.sleep(forTimeInterval: min(wait, 0.25))
                continue
            }
            bucket?.take()
            let key = job.recipient.key
            let message: RenderedMessage
            do {
                message = try render(job.recipient)
            } catch {
                record(.init(recipient: key, state: .failed, reply: "not sent: \((error as? MusterError)?.message ?? "\(error)")")) { $0.failed += 1 }
                continue
            }
            // Durable before a byte goes out: a crash from here on leaves `sending`, which becomes `unknown`.
            guard record(.init(recipient: key, state: .sending), durable: true, { _ in }) else { return }
            do {
                if transport == nil { transport = try makeTransport() }
                let receipt = try transport!.send(message)
                record(.init(recipient: key, state: .sent, reply: "\(receipt.replyCode) \(receipt.replyText)", countsAttempt: true)) { $0.sent += 1 }
            } catch let error as SMTPError {
                job.attempts += 1
                let reply = error.failure?.description ?? error.localizedDescription
                switch error {
                case .transient:
                    transport = nil // a fresh connection for the next message
                    let last = job.attempts >= request.maxAttempts
                    record(.init(recipient: key, state: .deferred, reply: reply, countsAttempt: true)) { $0.deferred += last ? 1 : 0 }
                    if !last {
                        job.notBefore = Date().timeIntervalSince(started) + request.backoff * pow(2, Double(job.attempts - 1))
                        lock.withLock { jobs.append(job) }
                    }
                case .permanent, .invalidEnvelope:
                    record(.init(recipient: key, state: .failed, reply: reply, countsAttempt: true)) { $0.failed += 1 }
                case .outcomeUnknown:
                    transport = nil
                    record(.init(recipient: key, state: .unknown, reply: reply, countsAttempt: true)) { $0.unknown += 1 }
                case .relayUnreachable, .authFailed, .tlsFailed, .setup:
                    // Nothing was handed over: the message waits for the next run.
                    record(.init(recipient: key, state: .deferred, reply: reply, countsAttempt: true)) { _ in }
                    let status: ExitStatus = { if case .relayUnreachable = error { return .relayUnreachable }; return .failure }()
                    lock.withLock { if stopReason == nil { stopReason = MusterError(status, error.localizedDescription) } }
                    return
                }
            } catch {
                record(.init(recipient: key, state: .deferred, reply: "\(error)", countsAttempt: true)) { _ in }
                lock.withLock { if stopReason == nil { stopReason = MusterError(.failure, "\(error)") } }
                return
            }
        }
    }

    /// Records a state change through the group-committing writer and updates the
    /// counters. With `durable`, returns only once the change is on disk. False (and
    /// the run stops) if the ledger fails.
    @discardableResult
    private func record(_ update: Ledger.OutboxUpdate, durable: Bool = false, _ count: (inout BlastProgress) -> Void = { _ in }) -> Bool {
        guard let writer = lock.withLock({ self.writer }) else { return false }
        do {
            try writer.submit(update, waitUntilDurable: durable)
            lock.withLock { count(&progress) }
            return true
        } catch {
            lock.withLock {
                if stopReason == nil { stopReason = (error as? MusterError) ?? MusterError(.failure, "\(error)") }
            }
            return false
        }
    }
}

/// Writes outbox state changes from all workers in shared transactions (group commit):
/// one fsync covers every change submitted meanwhile, and a worker that must not send
/// before its `sending` mark is on disk waits for exactly that.
final class OutboxWriter: @unchecked Sendable {
    // All fields are guarded by `condition`; the ledger is used by the writer thread only.
    private let condition = NSCondition()
    private let ledger: Ledger
    private let template: String
    private let clock: Clock
    private var pending: [Ledger.OutboxUpdate] = []
    private var submitted = 0
    private var committed = 0
    private var failure: Error?
    private var closing = false
    private var finished = false

    init(ledger: Ledger, template: String, clock: Clock) {
        self.ledger = ledger
        self.template = template
        self.clock = clock
        Thread.detachNewThread { [self] in loop() }
    }

    /// Queues `update`; with `waitUntilDurable`, returns once it is committed.
    func submit(_ update: Ledger.OutboxUpdate, waitUntilDurable: Bool) throws {
        condition.lock()
        defer { condition.unlock() }
        if let failure { throw failure }
        pending.append(update)
        submitted += 1
        let ticket = submitted
        condition.broadcast()
        guard waitUntilDurable else { return }
        while committed < ticket && failure == nil { condition.wait() }
        if let failure { throw failure }
    }

    /// Writes what is left and stops; returns the first write failure, if any.
    func close() -> Error? {
        condition.lock()
        closing = true
        condition.broadcast()
        while !finished { condition.wait() }
        defer { condition.unlock() }
        return failure
    }

    private func loop() {
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
                try ledger.updateOutbox(template: template, batch, at: clock.now())
            } catch let thrown {
                error = thrown
            }
            condition.lock()
            if let error, failure == nil { failure = error }
            committed = ticket
            condition.broadcast()
            if failure != nil { pending.removeAll() }
        }
        finished = true
        condition.broadcast()
        condition.unlock()
    }
}

/// Hands out a blast's work a page at a time, so memory stays flat however large the
/// audience. Used under the blast's lock only.
final class Feed {
    private let reader: Ledger
    private let template: String
    private let states: Set<OutboxState>
    private let targets: [String: Recipient]
    private var remaining: Int
    private var page: [Blast.Job] = []
    private var position: (Int64, String) = (0, "")
    private var exhausted = false
    private(set) var failure: MusterError?
    static let pageSize = 500

    init(reader: Ledger, template: String, states: Set<OutboxState>, targets: [String: Recipient], remaining: Int) {
        self.reader = reader
        self.template = template
        self.states = states
        self.targets = targets
        self.remaining = remaining
    }

    func next() -> Blast.Job? {
        guard remaining > 0 else { return nil }
        if page.isEmpty && !exhausted {
            do {
                let rows = try reader.outboxPage(template: template, states: states, after: position, limit: Self.pageSize)
                if rows.count < Self.pageSize { exhausted = true }
                if let last = rows.last { position = (last.row.signature ?? 0, last.row.recipient) }
                page = rows.reversed().compactMap { entry in
                    guard let person = entry.signer ?? targets[entry.row.recipient] else { return nil }
                    return Blast.Job(recipient: person, attempts: 0, notBefore: 0)
                }
            } catch {
                failure = (error as? MusterError) ?? MusterError(.failure, "\(error)")
                exhausted = true
            }
        }
        guard let job = page.popLast() else { return nil }
        remaining -= 1
        return job
    }
}

/// A blast that had to stop early, with what it had done so far.
public struct BlastStopped: Error {
    public let summary: BlastSummary
    public let error: MusterError
}

/// At most `rate` tokens a second, shared by all workers.
final class TokenBucket: @unchecked Sendable {
    private let lock = NSLock()
    private let interval: Double
    private var next = Date().timeIntervalSince1970

    init(rate: Double) { interval = 1 / max(rate, 0.001) }

    func take() {
        let delay: Double = lock.withLock {
            let now = Date().timeIntervalSince1970
            let slot = max(now, next)
            next = slot + interval
            return slot - now
        }
        if delay > 0 { Thread.sleep(forTimeInterval: delay) }
    }
}

/// An exclusive lock on a campaign's outbox, so two blasts never send the same rows.
final class BlastLock {
    private var descriptor: Int32

    init(_ url: URL) throws {
        descriptor = open(url.path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw MusterError.failure("cannot create \(url.path): \(String(cString: strerror(errno)))") }
        if flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            close(descriptor)
            descriptor = -1
            throw MusterError(.temporary, "another `muster mail send` is running for this campaign; wait for it to finish")
        }
    }

    func release() {
        if descriptor >= 0 { flock(descriptor, LOCK_UN); close(descriptor); descriptor = -1 }
    }

    deinit { release() }
}

