import Foundation

/// What one campaign's server-sent mail needs: its two templates, the sender, and where
/// the links point.
struct SiteMail: Sendable {
    let confirm: EmailTemplate
    let alreadySigned: EmailTemplate
    let sender: MailAddress
    let settings: MessageSettings

    /// Loads `emails/confirm.md` (the built-in one in the campaign's language when the
    /// campaign has none) and `emails/already-signed.md` (else the workspace's
    /// `templates/web/already-signed.md`, or `already-signed.fr.md` in French, else the
    /// built-in one). A template with errors stops the server (65); a missing sender
    /// gives nil and the reason: the mail then waits in the ledger. `catalogue` is the
    /// campaign's language's web catalogue, already parsed for the pages: the layout's
    /// words come from it.
    static func load(campaign: Campaign, manifest: Manifest, settings: WorkspaceSettings,
                     catalogue: WebCatalogue) throws -> (SiteMail?, String?) {
        func template(_ name: String, fallback: String) throws -> EmailTemplate {
            if FileManager.default.fileExists(atPath: campaign.emailsURL.appendingPathComponent(name + ".md").path) {
                return try MailTemplates.load(name, campaign: campaign, manifest: manifest)
            }
            let source = try TemplateSource.text(for: fallback, workspace: campaign.workspace)
            do {
                return try EmailTemplate(source: source, file: "templates/\(fallback)", name: name)
            } catch {
                throw MusterError(.badInput, "templates/\(fallback) is invalid", details: error.diagnostics.map(\.description))
            }
        }
        let language = manifest.web.language
        let confirm = try template("confirm", fallback: language.variant(of: "campaign/emails/confirm.md"))
        let already = try template("already-signed", fallback: language.variant(of: "web/already-signed.md"))
        guard let senderText = manifest.sender ?? settings.sender else {
            return (nil, "no sender: set 'sender' in \(campaign.workspace.display(campaign.manifestURL)) or muster.yaml")
        }
        let sender: MailAddress
        do {
            sender = try MailAddress(parsing: senderText, header: "From")
        } catch {
            throw MusterError.badInput("sender '\(senderText)': \(error.localizedDescription)")
        }
        var settings = MessageSettings(unsubscribeMailbox: (try? sender.named(nil)) ?? sender)
        settings.layoutWords = LayoutWords(catalogue)
        let mail = SiteMail(confirm: confirm, alreadySigned: already, sender: sender, settings: settings)
        return (mail, nil)
    }
}

/// Sends the sign page's mail (confirmation links, "you have already signed") from the
/// ledgers' `pending` rows, on a thread of its own, through the blasts' transport
/// (`BlastTransportFactory.curl`: libcurl) and the outbox's state machine.
///
/// A submission wakes it; otherwise it looks every few seconds for deferred mail that
/// is due. When the relay cannot be reached, the row is deferred (back-off doubling from
/// `backoff` seconds up to an hour) and the mailer pauses: the signer's page was already
/// answered, and the mail goes out once the relay is back, within the pending row's
/// 7 days. Expired rows are swept at start and every `sweepInterval`.
final class ConfirmationMailer: @unchecked Sendable {
    // `condition` guards `woken` and `stopping`; everything else is the mailer thread's.
    struct Site {
        let slug: String
        let title: String
        let goal: Int
        let deadline: String?
        let desk: LedgerDesk
        let mail: SiteMail?
    }

    let sites: [Site]
    let transportFactory: BlastTransportFactory?
    /// The public address links in mail start with (set by `start`).
    private(set) var baseURL: String
    let clock: any Clock
    let backoff: Double
    let sweepInterval: Double = 600
    /// The longest sleep between looks at the queue.
    let pollInterval: Double = 5

    private let condition = NSCondition()
    private var woken = false
    private var stopping = false
    private let finished = DispatchSemaphore(value: 0)
    private var transport: (any BlastTransport)?

    init(sites: [Site], transportFactory: BlastTransportFactory?, baseURL: String, clock: any Clock, backoff: Double) {
        self.sites = sites
        self.transportFactory = transportFactory
        self.baseURL = baseURL
        self.clock = clock
        self.backoff = backoff
    }

    private var started = false

    /// Starts the thread (which first recovers rows a stopped server left `sending`);
    /// links in mail start with `baseURL`.
    func start(baseURL: String) {
        self.baseURL = baseURL
        started = true
        Thread.detachNewThread { [self] in
            self.loop()
            self.finished.signal()
        }
    }

    /// A new mail was queued.
    func wake() {
        condition.lock()
        woken = true
        condition.broadcast()
        condition.unlock()
    }

    /// Finishes the message in transfer, then stops; returns once the thread has ended.
    func stop() {
        guard started else { return }
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
        finished.wait()
    }

    private var isStopping: Bool {
        condition.lock()
        defer { condition.unlock() }
        return stopping
    }

    private func loop() {
        var lastSweep = -Double.infinity
        for site in sites {
            if let recovered = try? site.desk.sync({ try $0.recoverPendingMail() }), recovered > 0 {
                WebLog.line("mail \(recovered) in doubt after a stop (not resent)")
            }
        }
        while !isStopping {
            let monotonic = SystemMonotonicClock().seconds()
            if monotonic - lastSweep >= sweepInterval {
                lastSweep = monotonic
                for site in sites {
                    if let erased = try? site.desk.sync({ try $0.sweepPending(at: clock.now()) }), erased > 0 {
                        WebLog.line("pending \(erased) expired and erased")
                    }
                }
            }
            var pause = pollInterval
            for site in sites where site.mail != nil && transportFactory != nil {
                if isStopping { break }
                if let wait = sendDue(site) { pause = min(pause, wait) }
            }
            condition.lock()
            if !woken && !stopping { _ = condition.wait(until: Date(timeIntervalSinceNow: max(0.05, pause))) }
            woken = false
            condition.unlock()
        }
    }

    /// Sends what is due for `site`; returns how long to wait before looking again when
    /// the relay asked for a pause (nil: the usual poll).
    private func sendDue(_ site: Site) -> Double? {
        guard let mail = site.mail else { return nil }
        while !isStopping {
            let batch: [Ledger.PendingMail]
            do {
                batch = try site.desk.sync { try $0.claimPendingMail(limit: 20, at: clock.now(), now: Date()) }
            } catch {
                WebLog.line("mail error \(PageMiddleware.kind(of: error))")
                return pollInterval
            }
            if batch.isEmpty {
                let due = try? site.desk.sync { try $0.nextPendingMailDue(at: clock.now()) }
                return due.map { max(0.05, $0.timeIntervalSinceNow) }
            }
            let count = (try? site.desk.sync { try $0.signatureCount() }) ?? 0
            for (index, item) in batch.enumerated() {
                if isStopping {
                    // Never handed over: back to the queue for the next start.
                    try? site.desk.sync { try $0.releasePendingMail(ids: batch[index...].map(\.id)) }
                    return nil
                }
                let outcome = deliver(item, site: site, mail: mail, count: Int(count))
                let retry = Date(timeIntervalSinceNow: min(backoff * pow(2, Double(item.attempts)), 3600))
                do {
                    try site.desk.sync { try $0.finishPendingMail(id: item.id, outcome: outcome, retryAt: retry) }
                } catch {
                    WebLog.line("mail error \(PageMiddleware.kind(of: error))")
                }
                WebLog.line("mail \(item.purpose == .confirm ? "confirm" : "already-signed") \(OutboxState.sending.after(outcome.event)?.rawValue ?? "unknown")")
                switch outcome {
                case .relayUnusable, .sessionRefused:
                    // Every message would meet the same: the rest of the batch waits.
                    try? site.desk.sync { try $0.releasePendingMail(ids: batch[(index + 1)...].map(\.id)) }
                    transport = nil
                    return min(backoff, pollInterval * 12)
                default: break
                }
            }
        }
        return nil
    }

    /// Renders and sends one message; the outcome for its row.
    private func deliver(_ item: Ledger.PendingMail, site: Site, mail: SiteMail, count: Int) -> DeliveryOutcome {
        var template = item.purpose == .confirm ? mail.confirm : mail.alreadySigned
        template.name += "." + item.reference
        let fields = item.purpose == .confirm ? ["confirm_url": "\(baseURL)/confirm/\(item.token)"]
            : ["petition_url": "\(baseURL)/c/\(site.slug)"]
        let recipient = MailRecipient(name: item.name, email: item.email, fields: fields)
        let info = CampaignMailInfo(slug: site.slug, title: site.title, count: count, goal: site.goal, deadline: site.deadline,
                                    sender: mail.sender)
        let message: RenderedMessage
        do {
            message = try renderMessage(template: template, recipient: recipient, campaign: info, settings: mail.settings, date: clock.now())
        } catch {
            return .rejected(SMTPFailure(detail: "not sent: \(error.localizedDescription)"))
        }
        do {
            if transport == nil { transport = try transportFactory?(connections: 1) }
        } catch let error as SMTPError {
            return .relayUnusable(error)
        } catch {
            return .relayUnusable(.setup("\(error)"))
        }
        guard let transport else { return .relayUnusable(.setup("no relay")) }
        if let immediate = transport.start(slot: 0, message: message) { return immediate }
        while true {
            if let ended = transport.collect().first(where: { $0.slot == 0 }) { return ended.outcome }
            transport.wait(timeout: 1, unless: nil)
        }
    }
}
