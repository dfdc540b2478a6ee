import Foundation

/// What `muster mail send` was asked to do.
public struct BlastRequest: Sendable {
    public var template: String
    /// Send at most this many messages in this run.
    public var limit: Int?
    /// Parallel SMTP connections, each reused from message to message.
    public var connections: Int
    /// At most this many messages per second, across all connections.
    public var ratePerSecond: Double?
    /// Resend rows whose outcome was lost (may double-send those).
    public var retryUnknown: Bool
    /// Queue the rows that failed (refused by the relay, or not sendable) again, e.g.
    /// after fixing their cause; rows of people who may not be mailed stay failed.
    public var retryFailed = false
    /// Attempts per message in one run before it stays `deferred`.
    public var maxAttempts: Int
    /// The first retry waits this long; each next one twice as long.
    public var backoff: Double
    /// A hand-over journal is rewritten with only what is unresolved once it grows past
    /// this many bytes (see `HandoverJournal`).
    public var journalLimit = 1 << 20

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
    /// Failed rows of the audience this run queues again (`--retry-failed`), counted in `toSend`.
    public let retryFailed: Int
    public let firstSubject: String?

    enum CodingKeys: String, CodingKey {
        case template, audience, recipients, unknown, failed
        case retryFailed = "retry_failed"
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
    /// Failed rows this run queued again (`--retry-failed`).
    public var retriedFailed = 0
    public var seconds: Double = 0
    /// Messages per second over the run.
    public var rate: Double = 0
    /// Why the run stopped early, if it did.
    public var stoppedBecause: String?

    public init(template: String) { self.template = template }

    enum CodingKeys: String, CodingKey {
        case template, sent, deferred, failed, unknown, queued, seconds, rate
        case retriedFailed = "retried_failed"
        case stoppedBecause = "stopped_because"
    }
}

/// A blast: one template to its whole audience through the outbox, so that a
/// recipient is sent a template once however often the command is run.
public final class Blast: @unchecked Sendable {
    // Shared between the event loops: the only mutable state (`stopRequested`) goes through `lock`.
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
            url = base + (base.utf8.contains(UInt8(ascii: "?")) ? "&" : "?") + "c=\(campaign.slug)&r=\(recipient.key.prefix(32))"
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
        let counts = try ledger.outboxCounts(template: template.name)[template.name] ?? OutboxCounts()
        // Rows of people who left the audience are not counted as work; new audience members are.
        let queued = try ledger.mailablePendingCount(template: template.name, consent: consent, targets: template.audience == .targets ? targets : nil)
        let recipients = queued.audience
        let unknown = counts.unknown + counts.sending
        var pending = queued.pending
        if request.retryUnknown { pending += queued.unknown }
        let retryFailed = request.retryFailed ? queued.failed : 0
        pending += retryFailed
        let firstSubject = try audience(limit: 1).first.map { try render($0).subject }
        return BlastPlan(template: template.name, audience: template.audience.rawValue, recipients: recipients,
                         alreadySent: counts.sent, toSend: min(pending, request.limit ?? Int.max), unknown: unknown,
                         failed: counts.failed, retryFailed: retryFailed, firstSubject: firstSubject)
    }

    // MARK: - Sending

    struct Job {
        let recipient: Recipient
        var attempts: Int
        var notBefore: Double
        /// The ledger's newest entry when this person was last known to be mailable (see `MailabilityGate`).
        var checkedAt: Int64
    }

    private var stopRequested = false

    /// Asks a running blast to finish the messages in flight and stop. Thread-safe.
    public func requestStop() {
        lock.withLock { stopRequested = true }
    }

    /// Sends every pending message of the template over `request.connections` SMTP
    /// connections to the relay `smtp`. Returns when all are done, deferred past their
    /// last attempt, or the run had to stop. Calls `onProgress` on this thread about
    /// five times a second.
    public func run(_ request: BlastRequest, smtp: SMTPSettings,
                    onProgress: (BlastProgress) -> Void) throws -> BlastSummary {
        let lockFile = try BlastLock(campaign.folder.appendingPathComponent(".mail.lock"))
        defer { lockFile.release() }
        let now = clock.now()
        let consent = try requiredConsent()
        try ledger.dropOutboxStateIndex()
        try Self.recoverInterrupted(campaign: campaign, ledger: ledger, at: now)
        let retriedFailed = request.retryFailed ? try ledger.requeueFailed(template: template.name, at: now) : 0
        var targets: [String: Recipient] = [:]
        let people = template.audience == .targets ? try ledger.mailableTargets(manifest.targets) : []
        if template.audience == .targets { targets = Dictionary(people.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a }) }
        // Rows queued earlier for people who left the audience since are failed first; the
        // rows queued next are the audience itself (so a first run checks no row twice).
        try ledger.failUnmailable(template: template.name, consent: consent,
                                  targetKeys: template.audience == .targets ? Set(targets.keys) : nil, at: now)
        if template.audience == .targets {
            try ledger.enqueue(template: template.name, recipients: people, at: now)
        } else {
            try ledger.enqueueSigners(template: template.name, consent: consent, at: now)
        }
        var states: Set<OutboxState> = [.queued, .deferred]
        if request.retryUnknown { states.insert(.unknown) }
        let total = min(try ledger.outboxCount(template: template.name, states: states), request.limit ?? Int.max)
        // Pages of work are read on a connection of their own while the writer commits on the main one.
        guard let reader = try Ledger.open(ledger.url, create: false) else { throw MusterError.failure("the ledger disappeared") }
        let feed = Feed(reader: reader, template: template.name, states: states, targets: template.audience == .targets ? targets : nil, remaining: total)
        // Watches for opt-outs and erasures committed by other processes while the blast runs.
        let gate = try MailabilityGate(url: ledger.url, audience: template.audience, consent: consent)
        let shared = BlastShared(request: request, total: total, feed: feed, gate: gate)

        // One event loop per processor (at most one per connection), each driving its share
        // of the connections; all of them hand their state changes to one writer.
        let connections = max(1, min(request.connections, max(1, total)))
        let loops = max(1, min(connections, ProcessInfo.processInfo.activeProcessorCount, 4))
        var senders: [CurlSMTPMulti] = []
        var journals: [HandoverJournal] = []
        do {
            for index in 0..<loops {
                senders.append(try CurlSMTPMulti(settings: smtp, connections: connections / loops + (index < connections % loops ? 1 : 0)))
                journals.append(try HandoverJournal(url: campaign.folder.appendingPathComponent(".mail.journal.\(index)"), template: template.name))
            }
        } catch {
            // No connection or journal could be set up: nothing was marked or sent.
            shared.stop((error as? MusterError) ?? MusterError(.failure, error.localizedDescription))
            senders = []
            for journal in journals { journal.remove() }
            journals = []
        }
        if !senders.isEmpty {
            let wake = senders
            let writer = OutboxWriter(ledger: ledger, template: template.name, clock: clock, onCommit: { for sender in wake { sender.wakeup() } })
            let group = DispatchGroup()
            for (sender, journal) in zip(senders, journals) {
                group.enter()
                Thread.detachNewThread { [self] in
                    defer { group.leave() }
                    loop(shared, sender: sender, writer: writer, journal: journal)
                }
            }
            // Report progress while the loops run.
            while group.wait(timeout: .now() + 0.2) == .timedOut {
                onProgress(shared.snapshot())
            }
            if let failure = writer.close() {
                shared.stop((failure as? MusterError) ?? MusterError(.failure, "\(failure)"))
            } else {
                // Every outcome is in the ledger: the journals have nothing left to tell.
                for journal in journals { journal.remove() }
            }
            senders = []  // closes the connections (QUIT)
        }
        let final = shared.snapshot()
        onProgress(final)

        var summary = BlastSummary(template: template.name)
        summary.sent = final.sent
        summary.failed = final.failed
        summary.unknown = final.unknown
        let counts = try ledger.outboxCounts(template: template.name)[template.name]
        summary.deferred = counts?.deferred ?? 0
        summary.queued = counts?.queued ?? 0
        summary.retriedFailed = retriedFailed
        summary.seconds = final.elapsed
        summary.rate = final.rate
        if let reason = shared.stopReason {
            summary.stoppedBecause = reason.message
            throw BlastStopped(summary: summary, error: reason)
        }
        if lock.withLock({ stopRequested }) { summary.stoppedBecause = "interrupted" }
        return summary
    }

    /// Sorts out the rows a killed run left `sending`: its journals tell which went out
    /// (see `HandoverJournal`). Only with the campaign's blast lock held.
    static func recoverInterrupted(campaign: Campaign, ledger: Ledger, at date: Date) throws {
        let leftover = HandoverJournal.files(in: campaign.folder)
        try ledger.markInterrupted(journal: HandoverJournal.recover(leftover.journals), at: date)
        for file in leftover.journals + leftover.rewrites { unlink(file.path) }
    }

    /// For `mail status`: when rows are `sending` but no blast is running (it was killed),
    /// sorts them out as the next `mail send` would, so the counts are right. Returns
    /// whether anything was done; does nothing while a blast runs.
    public static func recoverIfIdle(campaign: Campaign, ledger: Ledger, at date: Date) throws -> Bool {
        guard try ledger.hasSendingRows(),
              let lock = try? BlastLock(campaign.folder.appendingPathComponent(".mail.lock")) else { return false }
        defer { lock.release() }
        try recoverInterrupted(campaign: campaign, ledger: ledger, at: date)
        return true
    }

    /// A claimed message: waiting for its `sending` mark to be on disk, then in transfer.
    private final class Transfer {
        var job: Job
        let message: RenderedMessage
        /// The writer ticket of its `sending` mark.
        var ticket: Int

        init(job: Job, message: RenderedMessage, ticket: Int) {
            self.job = job
            self.message = message
            self.ticket = ticket
        }
    }

    /// An outcome whose outbox update may not be on disk yet (`ticket` nil: not submitted).
    private struct Unresolved {
        let key: String
        /// What the journal says of it after "handed over" (nil: nothing more, it is unknown).
        let event: HandoverJournal.Event?
        var ticket: Int?
    }

    /// Claims are made when fewer than `claimLow` × connections claimed messages wait, up to
    /// `claimHigh` × connections: each claim is one durable transaction for several rows,
    /// made while earlier messages are still going out.
    static let claimLow = 6, claimHigh = 16
    /// Outcomes are written with the next claim, or after this many seconds.
    static let outcomeDelay = 0.1

    /// One event loop: claims rows ahead (rendering their messages), hands state changes to
    /// the group-committing writer, and drives its connections through libcurl's multi
    /// interface, all on one thread. A message is handed to libcurl only once its
    /// `sending` mark is durable and its hand-over is in the journal, so after a crash of
    /// the process only the messages in flight (at most one per connection) are `unknown`.
    private func loop(_ shared: BlastShared, sender: CurlSMTPMulti, writer: OutboxWriter, journal: HandoverJournal) {
        let connections = sender.count
        // Under --rate, claim no more than about half a second's worth ahead.
        let claimHigh = min(Self.claimHigh * connections, shared.request.ratePerSecond.map { max(1, Int(min($0, 1e9) / 2)) } ?? Int.max)
        let claimLow = min(Self.claimLow * connections, claimHigh)
        var slots = [Transfer?](repeating: nil, count: connections)
        var ready: [Transfer] = []       // claimed, in order; the first ones may still wait for their mark
        var claimed = 0                  // how many at the end of `ready` are not yet submitted
        var retries: [Job] = []
        var updates: [Ledger.OutboxUpdate] = []
        var unresolved: [Unresolved] = []
        var outcomesPending = false
        var lastSubmit = shared.elapsed
        var feedEmpty = false
        var tally = BlastProgress(total: 0)
        while true {
            // Outcomes of the transfers that ended.
            for (slot, outcome) in sender.perform() {
                guard let transfer = slots[slot] else { continue }
                slots[slot] = nil
                let event = record(outcome, of: transfer.job, slot: slot, sender: sender, shared: shared, tally: &tally, retries: &retries, into: &updates)
                if let event { journal.record(event, transfer.job.recipient.key) }
                unresolved.append(Unresolved(key: transfer.job.recipient.key, event: event, ticket: nil))
                outcomesPending = true
            }
            var committed: Int
            do {
                committed = try writer.committedTicket()
            } catch {
                shared.stop((error as? MusterError) ?? MusterError(.failure, "\(error)"))
                committed = -1
            }
            let stopping = shared.stopReason != nil || lock.withLock({ stopRequested })

            // Claim the next rows (retries that are due first) while fewer than `claimLow` wait.
            if !stopping && ready.count < claimLow {
                let now = shared.elapsed
                while ready.count < claimHigh {
                    let job: Job
                    if let due = retries.firstIndex(where: { $0.notBefore <= now }) {
                        job = retries.remove(at: due)
                    } else if !feedEmpty, let next = shared.nextJob() {
                        job = next
                    } else {
                        feedEmpty = true
                        break
                    }
                    do {
                        let message = try render(job.recipient)
                        updates.append(.init(recipient: job.recipient.key, state: .sending))
                        ready.append(Transfer(job: job, message: message, ticket: Int.max))
                        claimed += 1
                    } catch {
                        updates.append(.init(recipient: job.recipient.key, state: .failed, reply: "not sent: \((error as? MusterError)?.message ?? "\(error)")"))
                        tally.failed += 1
                    }
                }
            }
            let idle = !slots.contains(where: { $0 != nil })
            if stopping {
                // Claimed rows that never went out go back to the queue.
                for transfer in ready { updates.append(.init(recipient: transfer.job.recipient.key, state: .queued)) }
                ready.removeAll()
                claimed = 0
            }
            let finishing = idle && ready.isEmpty && (stopping || (feedEmpty && retries.isEmpty))

            // Claims go to the writer at once; outcomes with them, or once they are a little old.
            if claimed > 0 || (!updates.isEmpty && (finishing || shared.elapsed - lastSubmit >= Self.outcomeDelay || !outcomesPending)) {
                let ticket = writer.submit(updates)
                for index in (ready.count - claimed)..<ready.count { ready[index].ticket = ticket }
                for index in unresolved.indices where unresolved[index].ticket == nil { unresolved[index].ticket = ticket }
                updates.removeAll(keepingCapacity: true)
                claimed = 0
                outcomesPending = false
                lastSubmit = shared.elapsed
            }
            if tally.sent + tally.failed + tally.unknown + tally.deferred > 0 {
                shared.add(tally)
                tally = BlastProgress(total: 0)
            }

            // Hand the claimed messages whose mark is on disk to idle connections: first
            // into the journal (with the outcomes just read), then to libcurl.
            var starting: [(slot: Int, transfer: Transfer)] = []
            if !stopping, slots.contains(where: { $0 == nil }), let first = ready.first, first.ticket <= committed {
                // Whoever unsubscribed or was forgotten since their row was read is not mailed:
                // a `PRAGMA data_version` per round, a look-up only after another process wrote.
                var head = first.job.checkedAt
                do {
                    head = try shared.gate.newestEntry()
                } catch {
                    shared.stop((error as? MusterError) ?? MusterError(.failure, "\(error)"))
                }
                var index = 0
                while index < slots.count, shared.stopReason == nil {
                    defer { index += 1 }
                    guard slots[index] == nil else { continue }
                    guard let next = ready.first, next.ticket <= committed else { break }
                    if next.job.checkedAt != head {
                        let mailable: Bool
                        do {
                            mailable = try shared.gate.isMailable(next.job.recipient)
                        } catch {
                            shared.stop((error as? MusterError) ?? MusterError(.failure, "\(error)"))
                            break
                        }
                        if !mailable {
                            ready.removeFirst()
                            updates.append(.init(recipient: next.job.recipient.key, state: .failed, reply: Ledger.unmailableReply))
                            tally.failed += 1
                            outcomesPending = true
                            index -= 1  // the slot is still free
                            continue
                        }
                        next.job.checkedAt = head
                    }
                    if let bucket = shared.bucket, bucket.tryTake() > 0 { break }
                    ready.removeFirst()
                    journal.handed(next.job.recipient.key)
                    starting.append((index, next))
                }
            }
            do {
                try journal.flush()
            } catch {
                shared.stop((error as? MusterError) ?? MusterError(.failure, "\(error)"))
                // Not in the journal: not handed over. They go back to the queue next time round.
                ready.insert(contentsOf: starting.map(\.transfer), at: 0)
                starting = []
            }
            for (index, transfer) in starting {
                do {
                    try sender.start(slot: index, from: transfer.message.envelopeFrom, to: [transfer.message.envelopeTo],
                                     message: transfer.message.bytes)
                    slots[index] = transfer
                } catch {
                    let event = record(.failure(error), of: transfer.job, slot: index, sender: sender, shared: shared, tally: &tally, retries: &retries, into: &updates)
                    // Written with the next flush; until then the journal says handed over, which
                    // recovery reads as unknown: never less safe than the truth.
                    if let event { journal.record(event, transfer.job.recipient.key) }
                    unresolved.append(Unresolved(key: transfer.job.recipient.key, event: event, ticket: nil))
                    outcomesPending = true
                }
            }

            if finishing && updates.isEmpty { return }

            // Keep the journal small: rewrite it with the messages in flight and the
            // outcomes not yet on disk.
            if journal.size > shared.request.journalLimit, committed >= 0 {
                unresolved.removeAll { $0.ticket.map { $0 <= committed } ?? false }
                // The outcomes not yet on disk, then the messages in flight (a key deferred and
                // handed over again ends with its hand-over).
                var events: [(HandoverJournal.Event, String)] = []
                for entry in unresolved {
                    events.append((.handed, entry.key))
                    if let event = entry.event { events.append((event, entry.key)) }
                }
                events += slots.compactMap { $0.map { (.handed, $0.job.recipient.key) } }
                do {
                    try journal.rewrite(events)
                } catch {
                    shared.stop((error as? MusterError) ?? MusterError(.failure, "\(error)"))
                }
            } else if unresolved.count > 4 * claimHigh, committed >= 0 {
                unresolved.removeAll { $0.ticket.map { $0 <= committed } ?? false }
            }

            var wait = 0.2
            if outcomesPending { wait = Self.outcomeDelay }
            if let bucket = shared.bucket, slots.contains(where: { $0 == nil }), !ready.isEmpty { wait = min(wait, max(0.001, bucket.delay())) }
            if idle, ready.isEmpty, !stopping, let soonest = retries.map(\.notBefore).min() {
                wait = min(wait, max(0.001, soonest - shared.elapsed))
            }
            if finishing { wait = 0.001 }
            // A claimed message waiting for its mark starts as soon as the writer reports it on disk.
            if slots.contains(where: { $0 == nil }), let awaited = ready.first?.ticket, awaited > committed, committed >= 0 {
                sender.wait(timeout: wait, unless: { ((try? writer.committedTicket()) ?? Int.max) >= awaited })
            } else {
                sender.wait(timeout: wait)
            }
        }
    }

    /// Turns the outcome of one transfer into its outbox update and counters. Returns what
    /// the hand-over journal is to say of it after "handed over" (nil: unknown).
    private func record(_ outcome: Result<SMTPReceipt, SMTPError>, of job: Job, slot: Int, sender: CurlSMTPMulti, shared: BlastShared,
                        tally: inout BlastProgress, retries: inout [Job], into updates: inout [Ledger.OutboxUpdate]) -> HandoverJournal.Event? {
        let key = job.recipient.key
        let error: SMTPError
        switch outcome {
        case .success(let receipt):
            updates.append(.init(recipient: key, state: .sent, reply: Self.redactingAddresses("\(receipt.replyCode) \(receipt.replyText)"), countsAttempt: true))
            tally.sent += 1
            return .accepted
        case .failure(let failure):
            error = failure
        }
        var job = job
        job.attempts += 1
        // Relays quote the address ("550 5.1.1 <ana@…>: unknown user"): the outbox keeps the reply without it.
        let reply = Self.redactingAddresses(error.failure?.description ?? error.localizedDescription)
        switch error {
        case .transient:
            sender.useFreshConnection(slot: slot)
            let last = job.attempts >= shared.request.maxAttempts
            updates.append(.init(recipient: key, state: .deferred, reply: reply, countsAttempt: true))
            if last {
                tally.deferred += 1
            } else {
                job.notBefore = shared.elapsed + shared.request.backoff * pow(2, Double(job.attempts - 1))
                retries.append(job)
            }
            return .deferred
        case .permanent, .invalidEnvelope:
            updates.append(.init(recipient: key, state: .failed, reply: reply, countsAttempt: true))
            tally.failed += 1
            return .failed
        case .outcomeUnknown:
            sender.useFreshConnection(slot: slot)
            updates.append(.init(recipient: key, state: .unknown, reply: reply, countsAttempt: true))
            tally.unknown += 1
            return nil
        case .sessionRefused:
            // About the sender, the relay or the session, not this recipient: every message
            // would meet it. The row waits, untouched, for a run after the cause is fixed.
            sender.useFreshConnection(slot: slot)
            updates.append(.init(recipient: key, state: .queued))
            shared.stop(MusterError(.failure, error.localizedDescription))
            return .deferred
        case .relayUnreachable, .authFailed, .tlsFailed, .setup:
            // Nothing was handed over: the message waits for the next run.
            updates.append(.init(recipient: key, state: .deferred, reply: reply, countsAttempt: true))
            let status: ExitStatus = { if case .relayUnreachable = error { return .relayUnreachable }; return .failure }()
            shared.stop(MusterError(status, error.localizedDescription))
            return .deferred
        }
    }

    /// `text` with every email address in it replaced by `[address]`, so a relay's reply
    /// never puts a recipient's address into the ledger (where `forget` could miss it).
    static func redactingAddresses(_ text: String) -> String {
        let bytes = Array(text.utf8)
        guard bytes.contains(UInt8(ascii: "@")) else { return text }
        func isDelimiter(_ byte: UInt8) -> Bool {
            byte <= 0x20 || byte == 0x7F || "<>\"'(),;:[]{}`".utf8.contains(byte)
        }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            guard bytes[index] == UInt8(ascii: "@") else { out.append(bytes[index]); index += 1; continue }
            // Take back the local part already copied (a quoted one too), skip the domain.
            if out.last == UInt8(ascii: "\""), let open = out.dropLast().lastIndex(of: UInt8(ascii: "\"")) {
                out.removeSubrange(open...)
            } else {
                while let last = out.last, !isDelimiter(last) { out.removeLast() }
            }
            index += 1
            while index < bytes.count, !isDelimiter(bytes[index]) { index += 1 }
            out += Array("[address]".utf8)
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// What the event loops of one blast run share: the work feed, the rate limit, the
/// counters and why the run stops. Every mutable field is guarded by `lock`.
final class BlastShared: @unchecked Sendable {
    let request: BlastRequest
    let bucket: TokenBucket?
    let gate: MailabilityGate
    let started = Date()
    private let lock = NSLock()
    private let feed: Feed
    private var progress: BlastProgress
    private var reason: MusterError?

    init(request: BlastRequest, total: Int, feed: Feed, gate: MailabilityGate) {
        self.request = request
        self.feed = feed
        self.gate = gate
        self.bucket = request.ratePerSecond.map { TokenBucket(rate: $0) }
        self.progress = BlastProgress(total: total)
    }

    var elapsed: Double { Date().timeIntervalSince(started) }

    /// The next new job, or nil when the feed is used up (or failed: then the run stops).
    func nextJob() -> Blast.Job? {
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

    func add(_ tally: BlastProgress) {
        lock.withLock {
            progress.sent += tally.sent
            progress.failed += tally.failed
            progress.unknown += tally.unknown
            progress.deferred += tally.deferred
        }
    }

    func snapshot() -> BlastProgress {
        lock.withLock {
            progress.elapsed = elapsed
            return progress
        }
    }
}

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

/// Hands out a blast's work a page at a time, so memory stays flat however large the
/// audience. Used under `BlastShared`'s lock only.
final class Feed {
    private let reader: Ledger
    private let template: String
    private let states: Set<OutboxState>
    /// The template's targets by key, when the template is for targets (nil: for signers).
    private let targets: [String: Recipient]?
    private var remaining: Int
    private var page: [Blast.Job] = []
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

    func next() -> Blast.Job? {
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
                    return Blast.Job(recipient: person, attempts: 0, notBefore: 0, checkedAt: checkedAt)
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
        do {
            version = try ledger.database.prepare("PRAGMA data_version")
        } catch let error as SQLiteError {
            throw MusterError.storage(error, path: url.path)
        }
    }

    /// The seq of the ledger's newest entry now.
    func newestEntry() throws -> Int64 {
        try lock.withLock {
            do {
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
            } catch let error as SQLiteError {
                throw MusterError.storage(error, path: ledger.url.path)
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

/// A blast that had to stop early, with what it had done so far.
public struct BlastStopped: Error {
    public let summary: BlastSummary
    public let error: MusterError
}

/// At most `rate` tokens a second.
final class TokenBucket: @unchecked Sendable {
    private let lock = NSLock()
    private let interval: Double
    private var next = Date().timeIntervalSince1970

    init(rate: Double) { interval = 1 / max(rate, 0.001) }

    /// Seconds until the next token (0 when one is due); takes nothing.
    func delay() -> Double {
        lock.withLock { max(0, next - Date().timeIntervalSince1970) }
    }

    /// Takes a token and returns 0 when one is due; otherwise takes nothing and returns
    /// the seconds until the next one. A token not taken on time is not saved up
    /// (at most one is made up for), so there is no burst after a pause.
    func tryTake() -> Double {
        lock.withLock {
            let now = Date().timeIntervalSince1970
            if next > now { return next - now }
            next = max(next, now - interval) + interval
            return 0
        }
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

