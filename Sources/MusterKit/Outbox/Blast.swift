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
    public var retryFailed: Bool

    public init(template: String, limit: Int? = nil, connections: Int = 4, ratePerSecond: Double? = nil,
                retryUnknown: Bool = false, retryFailed: Bool = false) {
        self.template = template
        self.limit = limit
        self.connections = connections
        self.ratePerSecond = ratePerSecond
        self.retryUnknown = retryUnknown
        self.retryFailed = retryFailed
    }
}

/// How the blast engine behaves, as opposed to what it is asked to send: timing and
/// limits. The CLI passes the real values; tests pass a clock they move by hand and
/// short back-offs, so nothing in the engine reads the environment or the wall clock
/// to decide when to retry.
public struct BlastConfiguration: Sendable {
    /// Elapsed time for back-off, the rate limit and progress.
    public var clock: any MonotonicClock
    /// Attempts per message in one run before it stays `deferred`.
    public var maxAttempts: Int
    /// The first retry waits this long (seconds); each next one twice as long.
    public var backoff: Double
    /// A hand-over journal is rewritten with only what is unresolved once it grows past
    /// this many bytes (see `HandoverJournal`).
    public var journalLimit: Int
    /// Claims are made when fewer than `claimLow` × connections claimed messages wait, up
    /// to `claimHigh` × connections: each claim is one durable transaction for several
    /// rows, made while earlier messages are still going out.
    public var claimLow: Int
    public var claimHigh: Int
    /// Outcomes are written with the next claim, or after this many seconds.
    public var outcomeDelay: Double
    /// At most this many event loops (each on a thread of its own); by default one per
    /// connection. libcurl (7.88, Debian 12) waits for the reply to a message's final "."
    /// inside `curl_multi_perform`, blocking (smtp.c, `smtp_done`), so every other
    /// connection of the same loop idles for that round trip: against a relay answering
    /// 5 ms late, 2,000 messages over eight connections on two loops took 1.5 times as
    /// long as on eight loops. A loop per connection also lets a loop render and sign
    /// while the others send (BENCHMARKS.md, "what DKIM signing by muster costs a blast").
    public var maxLoops: Int

    public init(clock: any MonotonicClock = SystemMonotonicClock(), maxAttempts: Int = 5, backoff: Double = 1,
                journalLimit: Int = 1 << 20, claimLow: Int = 6, claimHigh: Int = 16, outcomeDelay: Double = 0.1,
                maxLoops: Int = 64) {
        self.clock = clock
        self.maxAttempts = maxAttempts
        self.backoff = backoff
        self.journalLimit = journalLimit
        self.claimLow = claimLow
        self.claimHigh = claimHigh
        self.outcomeDelay = outcomeDelay
        self.maxLoops = maxLoops
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
    /// The rows this run is done with, by the state it left them in (a deferred row
    /// counts once it has had its last attempt).
    public var counts = OutboxCounts()
    public var elapsed: Double = 0

    public init(total: Int) { self.total = total }

    public var done: Int { counts.total }
    public var rate: Double { elapsed > 0 ? Double(counts.sent) / elapsed : 0 }
}

/// The outcome of a blast run. Encodes `template`, one key per outbox column (`sent`,
/// `failed`, `unknown`: this run's outcomes; `deferred`, `queued`: the rows left so),
/// `retried_failed`, `seconds`, `rate` and `stopped_because`.
public struct BlastSummary: Sendable, Encodable, Equatable {
    public var template: String
    public var counts = OutboxCounts()
    /// Failed rows this run queued again (`--retry-failed`).
    public var retriedFailed = 0
    public var seconds: Double = 0
    /// Messages per second over the run.
    public var rate: Double = 0
    /// Why the run stopped early, if it did.
    public var stoppedBecause: String?

    public init(template: String) { self.template = template }

    public var sent: Int { counts.sent }
    public var deferred: Int { counts.deferred }
    public var failed: Int { counts.failed }
    public var unknown: Int { counts.unknown }
    /// Rows still waiting (not attempted in this run, e.g. past --limit).
    public var queued: Int { counts.queued }

    enum CodingKeys: String, CodingKey {
        case template, seconds, rate
        case retriedFailed = "retried_failed"
        case stoppedBecause = "stopped_because"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(template, forKey: .template)
        try counts.shown.encodeColumns(to: encoder)
        try container.encode(retriedFailed, forKey: .retriedFailed)
        try container.encode(seconds, forKey: .seconds)
        try container.encode(rate, forKey: .rate)
        try container.encodeIfPresent(stoppedBecause, forKey: .stoppedBecause)
    }
}

/// A blast that had to stop early, with what it had done so far.
public struct BlastStopped: Error {
    public let summary: BlastSummary
    public let error: MusterError
}

/// A blast: one template to its whole audience through the outbox, so that a
/// recipient is sent a template once however often the command is run.
///
/// The engine (`run`) claims rows, renders their messages and hands them to a
/// `BlastTransport` (libcurl's multi interface in production, a scripted one in tests),
/// and turns each `DeliveryOutcome` into the row's next state through the outbox state
/// machine (`OutboxState.after(_:)`). Its event loop is in BlastLoop.swift.
public final class Blast: @unchecked Sendable {
    // Shared between the event loops: the only mutable state (`stopRequested`) goes through `lock`.
    public let campaign: Campaign
    public let manifest: Manifest
    public let template: EmailTemplate
    public let configuration: BlastConfiguration
    let ledger: Ledger
    let clock: Clock
    let info: CampaignMailInfo
    var messageSettings: MessageSettings
    let unsubscribeURL: String?
    /// `serve.base_url` when it is https: unsubscribe links then go to `muster serve`'s `/u/<token>`.
    let signPageURL: String?
    let unsubscribeLinks: UnsubscribeLinks?
    /// Files every message carries: the signature sheet, for `attach_signatures`.
    let attachments: [MIMEAttachment]
    /// For `receipt: attach`: issues each signer's receipt against the checkpoint that was
    /// the latest when the blast started.
    let receipts: ReceiptIssuer?
    /// Makes each message's Message-ID (and VERP) token (Inbox/MailToken.swift).
    let mailTokens: MailTokenKey
    private let lock = NSLock()
    private var stopRequested = false

    /// Loads the template and everything its messages need; throws (65) when the
    /// template is invalid or uses a variable the campaign does not define.
    public init(campaign: Campaign, manifest: Manifest, settings: WorkspaceSettings, ledger: Ledger,
                templateName: String, clock: Clock, configuration: BlastConfiguration = .init()) throws {
        self.campaign = campaign
        self.manifest = manifest
        self.ledger = ledger
        self.clock = clock
        self.configuration = configuration
        if MailTemplates.serverTemplates[templateName] != nil {
            throw MusterError.usage("emails/\(templateName).md is the mail `muster serve` sends to one signer of the sign page; it cannot be sent with `mail send`")
        }
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
        messageSettings.layoutWords = try LayoutWords.of(manifest.web.language, workspace: campaign.workspace)
        messageSettings.dkim = try settings.dkimSigner(workspace: campaign.workspace, senderDomain: sender.domain)
        messageSettings.verpAddress = settings.smtpVERP
        mailTokens = try ledger.mailTokenKey()
        unsubscribeURL = settings.unsubscribeURL
        signPageURL = settings.serve.baseURL.flatMap { $0.hasPrefix("https://") ? $0 : nil }
        unsubscribeLinks = signPageURL == nil ? nil : try ledger.unsubscribeLinks()
        // Read once, with the count above, so every target gets the same sheet.
        attachments = try template.attachSignatures.map {
            [try SignatureSheet.attachment($0, campaign: campaign, manifest: manifest, ledger: ledger)]
        } ?? []
        let loaded = template
        receipts = loaded.receipt == nil ? nil : try Self.receiptIssuer(campaign: campaign, template: loaded, ledger: ledger)
    }

    /// The receipts of a `receipt: attach` template: against the campaign's latest
    /// checkpoint, which must exist and cover every signature (docs/mail.md, "Receipts").
    /// Read on a connection of the issuer's own, since the event loops render in parallel.
    static func receiptIssuer(campaign: Campaign, template: EmailTemplate, ledger: Ledger) throws -> ReceiptIssuer {
        let transparency = CampaignTransparency(campaign: campaign)
        guard let latest = transparency.checkpointFiles().last else {
            throw MusterError.failure("""
                \(template.file) attaches each signer's receipt (receipt: attach), but \(campaign.slug) has no checkpoint yet: \
                run `muster checkpoint` first; nothing was sent
                """)
        }
        guard let reader = try Ledger.open(ledger.url, create: false) else { throw MusterError.failure("the ledger disappeared") }
        let issuer = try ReceiptIssuer(transparency: transparency, ledger: reader, note: String(latest.size))
        let newest = try reader.snapshot { try reader.newestSignature() } ?? 0
        guard newest <= issuer.checkpoint.size else {
            throw MusterError.failure("""
                \(template.file) attaches each signer's receipt (receipt: attach), but the latest checkpoint, \
                \(campaign.workspace.display(latest.url)), covers entries 1–\(issuer.checkpoint.size) and signatures were added \
                after it (up to entry \(newest)): run `muster checkpoint` first so that every receipt is proven against it; nothing was sent
                """)
        }
        return issuer
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
        if let base = signPageURL {
            // The sign page's one-click link (RFC 8058; Web/UnsubscribeLinks.swift).
            url = base + "/u/" + (unsubscribeLinks?.token(slug: campaign.slug, fingerprint: recipient.key) ?? "")
        } else if let base = unsubscribeURL {
            url = base + (base.utf8.contains(UInt8(ascii: "?")) ? "&" : "?") + "c=\(campaign.slug)&r=\(recipient.key.prefix(32))"
        }
        var mailRecipient = MailRecipient(name: recipient.name, email: recipient.email, fields: recipient.fields, unsubscribeURL: url)
        mailRecipient.mailToken = mailTokens.token(campaign: campaign.slug, template: template.name, recipient: recipient.key).text
        var attachments = attachments
        if let receipts {
            // A sample signer (a test send to an address that has not signed) has no receipt.
            mailRecipient.variables = ["receipt_checkpoint": receipts.shortForm, "receipt_entry": recipient.signature.map(String.init) ?? ""]
            if let seq = recipient.signature {
                let receipt = try receipts.receipt(seq: seq)
                attachments.append(MIMEAttachment(mediaType: "application/json", filename: ReceiptRequest.filename,
                                                  data: Array(try receipt.encoded().utf8)))
            }
        }
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
        let members = try ledger.mailablePendingCount(template: template.name, consent: consent, targets: template.audience == .targets ? targets : nil)
        let retryFailed = request.retryFailed ? members.counts[OutboxState.retryable] : 0
        let pending = members.counts[OutboxState.toSend(retryUnknown: request.retryUnknown)] + retryFailed
        let firstSubject = try audience(limit: 1).first.map { try render($0).subject }
        return BlastPlan(template: template.name, audience: template.audience.rawValue, recipients: members.audience,
                         alreadySent: counts.sent, toSend: min(pending, request.limit ?? Int.max), unknown: counts[OutboxState.inDoubt],
                         failed: counts.failed, retryFailed: retryFailed, firstSubject: firstSubject)
    }

    // MARK: - Sending

    /// Asks a running blast to finish the messages in flight and stop. Thread-safe.
    public func requestStop() {
        lock.withLock { stopRequested = true }
    }

    var isStopRequested: Bool { lock.withLock { stopRequested } }

    /// Sends every pending message of the template over `request.connections`
    /// connections of the transports `transport` makes (one per event loop). Returns when
    /// all are done, deferred past their last attempt, or the run had to stop (then it
    /// throws `BlastStopped`). Calls `onProgress` on this thread about five times a second.
    public func run(_ request: BlastRequest, transport: BlastTransportFactory,
                    onProgress: (BlastProgress) -> Void) throws -> BlastSummary {
        let lockFile = try BlastLock(campaign.folder.appendingPathComponent(".mail.lock"))
        defer { lockFile.release() }
        // Before anything is written: only sealed rows suppress (Inbox/Suppression.swift).
        try ledger.ensureSealsForBlast()
        let now = clock.now()
        let consent = try requiredConsent()
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
        let states = OutboxState.toSend(retryUnknown: request.retryUnknown)
        let total = min(try ledger.outboxCount(template: template.name, states: states), request.limit ?? Int.max)
        // Pages of work are read on a connection of their own while the writer commits on the main one.
        guard let reader = try Ledger.open(ledger.url, create: false) else { throw MusterError.failure("the ledger disappeared") }
        let feed = Feed(reader: reader, template: template.name, states: states, targets: template.audience == .targets ? targets : nil, remaining: total)
        // Watches for opt-outs and erasures committed by other processes while the blast runs.
        let gate = try MailabilityGate(url: ledger.url, audience: template.audience, consent: consent)
        let shared = BlastShared(request: request, configuration: configuration, total: total, feed: feed, gate: gate)

        // One event loop per connection (at most `maxLoops`, see there), each driving its
        // share of the connections; all of them hand their state changes to one writer.
        let connections = max(1, min(request.connections, max(1, total)))
        let loops = max(1, min(connections, configuration.maxLoops))
        var senders: [any BlastTransport] = []
        var journals: [HandoverJournal] = []
        do {
            for index in 0..<loops {
                senders.append(try transport(connections: connections / loops + (index < connections % loops ? 1 : 0)))
                journals.append(try HandoverJournal(url: campaign.folder.appendingPathComponent(".mail.journal.\(index)"), template: template.name))
            }
        } catch {
            // No connection or journal could be set up: nothing was marked or sent.
            shared.stop(Self.musterError(error))
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
                let loop = BlastLoop(blast: self, shared: shared, sender: sender, writer: writer, journal: journal)
                Thread.detachNewThread {
                    defer { group.leave() }
                    loop.run()
                }
            }
            // Report progress while the loops run.
            while group.wait(timeout: .now() + 0.2) == .timedOut {
                onProgress(shared.snapshot())
            }
            if let failure = writer.close() {
                shared.stop(Self.musterError(failure))
            } else {
                // Every outcome is in the ledger: the journals have nothing left to tell.
                for journal in journals { journal.remove() }
            }
            senders = []  // closes the connections (QUIT)
        }
        let final = shared.snapshot()
        onProgress(final)

        var summary = BlastSummary(template: template.name)
        // This run's outcomes, and the rows it leaves waiting as the ledger has them.
        summary.counts = final.counts
        let left = try ledger.outboxCounts(template: template.name)[template.name] ?? OutboxCounts()
        for state in OutboxState.pending { summary.counts[state] = left[state] }
        summary.retriedFailed = retriedFailed
        summary.seconds = final.elapsed
        summary.rate = final.rate
        if let reason = shared.stopReason {
            summary.stoppedBecause = reason.message
            throw BlastStopped(summary: summary, error: reason)
        }
        if isStopRequested { summary.stoppedBecause = "interrupted" }
        return summary
    }

    /// Any error as the `MusterError` a blast stops with; an `SMTPError` through the one mapping.
    static func musterError(_ error: any Error) -> MusterError {
        if let error = error as? MusterError { return error }
        if let error = error as? SMTPError { return MusterError(error) }
        return MusterError(.failure, "\(error)")
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
}
