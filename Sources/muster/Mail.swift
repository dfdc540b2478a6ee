import ArgumentParser
import Foundation
import MusterKit

extension Muster {
    struct Mail: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Preview, send and follow mail blasts.",
            discussion: """
                Templates are campaigns/<slug>/emails/<name>.md: YAML front matter (subject,
                audience: signers|consenting|targets, optional reply_to and consent; for
                targets, attach_signatures: csv or [name, region] attaches the signers as a
                CSV) and a Mustache body written in Markdown. Every (template, recipient) is
                recorded in the ledger's outbox, so a recipient gets a template once however
                often you run `mail send`.
                """,
            subcommands: [Preview.self, Send.self, Status.self, Doctor.self])
    }
}

/// What the mail commands share: the campaign, its manifest, the workspace settings and the ledger.
struct MailContext {
    let run: RunContext
    let campaign: Campaign
    let manifest: Manifest
    let settings: WorkspaceSettings
    let ledger: Ledger

    init(_ options: CampaignOptions) throws {
        (run, campaign, manifest) = try RunContext.loadCampaign(options)
        settings = try WorkspaceSettings.loadOrThrow(run.workspace)
        guard let ledger = try Ledger.open(campaign.ledgerURL, create: true) else { throw MusterError.failure("cannot open the ledger") }
        self.ledger = ledger
    }

    func blast(_ template: String) throws -> Blast {
        try Blast(campaign: campaign, manifest: manifest, settings: settings, ledger: ledger, templateName: template, clock: run.clock,
                  configuration: Self.blastConfiguration())
    }

    /// The blast engine's real timing, and the two knobs the end-to-end tests turn on the
    /// built binary: `MUSTER_BACKOFF_SECONDS` (the first retry's wait, so a test of 4xx
    /// replies does not wait 1 + 2 + 4 + 8 s) and `MUSTER_JOURNAL_LIMIT` (journal size
    /// before a rewrite, so a test that kills a blast sees rewritten journals). The engine
    /// itself takes them as parameters; only this command reads the environment.
    static func blastConfiguration(environment: [String: String] = ProcessInfo.processInfo.environment) -> BlastConfiguration {
        var configuration = BlastConfiguration()
        if let backoff = environment["MUSTER_BACKOFF_SECONDS"].flatMap(Double.init), backoff.isFinite, backoff >= 0 {
            configuration.backoff = backoff
        }
        if let limit = environment["MUSTER_JOURNAL_LIMIT"].flatMap(Int.init), limit > 0 {
            configuration.journalLimit = limit
        }
        return configuration
    }

    /// SMTP settings from muster.yaml and the environment (which wins).
    func smtpSettings(verbose: Bool = false) throws -> SMTPSettings {
        var smtp = try settings.smtpSettings(workspace: run.workspace)
        if verbose { smtp.dialogue = SMTPDialogueLog { Console.error($0) } }
        return smtp
    }

    /// One line on stderr when the bounced and complained counts cannot be trusted (only
    /// sealed rows count: a lost seal key shows them as 0).
    func warnAboutSeals() {
        MailContext.warnAboutSeals(ledger)
    }

    static func warnAboutSeals(_ ledger: Ledger) {
        guard let state = try? ledger.sealState(), !state.isSound else { return }
        let why = state.isKeyLost ? "the ledger's seal key is missing or was replaced" : "\(state.unsealed.total) of them were not written by muster"
        Console.error("muster: warning: the bounced and complained counts show only sealed rows, and \(why): run `muster verify`")
    }

    /// The audience member with `email`, or a sample signer writing from that address.
    func recipient(for email: String?, in blast: Blast) throws -> Recipient {
        if let email {
            return try blast.audienceMember(email: email) ?? blast.sampleRecipient(email: email)
        }
        return try blast.audience(limit: 1).first ?? blast.sampleRecipient(email: "sam.sample@example.org")
    }
}

extension Muster.Mail {
    struct Preview: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the exact message one recipient would get.",
            discussion: "Without --to, the first recipient of the template's audience (or a sample signer when there is none). The output is the raw RFC 5322 message, CRLF line endings included.")

        @Argument(help: "The template: a file name in emails/ without .md.")
        var template: String

        @Option(help: ArgumentHelp("Render for this signer (or a sample signer at this address).", valueName: "EMAIL"))
        var to: String?

        @OptionGroup var campaignOptions: CampaignOptions
        @OptionGroup var output: OutputOptions

        struct Rendered: Encodable {
            let to: String
            let subject: String
            let message_id: String
            let message: String
        }

        func run() throws {
            try reportingErrors {
                let context = try MailContext(campaignOptions)
                let blast = try context.blast(template)
                let message = try blast.render(try context.recipient(for: to, in: blast))
                if output.json {
                    return Console.json(Rendered(to: message.envelopeTo, subject: message.subject, message_id: message.messageID,
                                                 message: String(decoding: message.bytes, as: UTF8.self)))
                }
                FileHandle.standardOutput.write(Data(message.bytes))
            }
        }
    }

    struct Send: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send a template to its whole audience, through the outbox.",
            discussion: """
                Prints the plan (audience, recipients, already sent, to send, first subject) and asks for confirmation on a terminal; --yes skips it (and is required when not on a terminal). Rerunning sends only what is left.

                A message whose outcome was lost (the run was killed, or the connection dropped after the data was sent) is marked unknown and is resent only with --retry-unknown; after a killed run that is at most the message in flight on each connection (see docs/mail.md, "Blasts and the outbox"). 4xx replies and dropped connections are retried with exponential backoff; a 5xx reply to RCPT TO or DATA is a permanent failure of that message (sent again only with --retry-failed). A 5xx reply to the greeting, EHLO/HELO or MAIL FROM is about the relay or the sender, not a recipient: the blast stops and leaves the rows queued.

                Whoever unsubscribes or is forgotten while a blast runs is not mailed from that moment on (checked just before each message goes to the relay).

                Exit codes: 0 done; 75 some messages are still deferred (run again later); 69 the relay cannot be reached; 1 the relay refused the session, the sender, the login or TLS (nothing more was sent; rows not yet sent stay queued), or the ledger's bounces and suppressions cannot all be proven muster's (its seal key is missing or was replaced, or rows were written beside muster: nothing is sent, see `muster verify`); 64 a bad option (e.g. --rate out of range) or no --yes without a terminal.

                Examples:
                  muster mail send thank-you --to me@example.org   # a test to yourself
                  muster mail send thank-you --dry-run --out preview/
                  muster mail send thank-you --limit 100 --rate 10/s --yes
                """)

        @Argument(help: "The template: a file name in emails/ without .md.")
        var template: String

        @Flag(help: "Write .eml files to --out instead of sending; touches no network and no outbox.")
        var dryRun = false

        @Option(help: ArgumentHelp("With --dry-run: the folder for the .eml files.", valueName: "DIR"))
        var out: String?

        @Option(help: "Send at most N messages in this run.")
        var limit: Int?

        @Option(help: ArgumentHelp("At most N messages per second, e.g. 10/s.", valueName: "N/s"))
        var rate: String?

        @Option(help: "Parallel SMTP connections.")
        var connections: Int = 4

        @Option(help: ArgumentHelp("Send one test message to EMAIL (rendered for that signer, or a sample one); no outbox.", valueName: "EMAIL"))
        var to: String?

        @Flag(help: "Also resend messages whose outcome was lost in an earlier run (may double-send those).")
        var retryUnknown = false

        @Flag(help: "Also send again the messages that failed (refused by the relay) in earlier runs, once you have fixed the cause.")
        var retryFailed = false

        @Flag(help: "Send without asking.")
        var yes = false

        @Flag(help: "Show the SMTP dialogue on stderr (credentials hidden; best with --to or --limit).")
        var verbose = false

        @OptionGroup var campaignOptions: CampaignOptions
        @OptionGroup var output: OutputOptions

        func validate() throws {
            if dryRun && out == nil { throw ValidationError("--dry-run needs --out DIR for the .eml files") }
            if out != nil && !dryRun { throw ValidationError("--out goes with --dry-run") }
            if let limit, !Self.limitRange.contains(limit) {
                throw ValidationError("--limit must be between 1 and \(Self.limitRange.upperBound); got \(limit)")
            }
            if !Self.connectionRange.contains(connections) {
                throw ValidationError("--connections must be between 1 and \(Self.connectionRange.upperBound); got \(connections)")
            }
            if let rate, Self.parseRate(rate) == nil {
                throw ValidationError("--rate takes N/s with N between 0.001 and \(Int(Self.rateRange.upperBound)), e.g. 10/s or 0.5/s; got '\(rate)'")
            }
        }

        /// The ranges of the numeric options (checked before anything is opened or written).
        static let limitRange = 1...1_000_000_000
        static let connectionRange = 1...64
        static let rateRange = 0.001...1_000_000.0

        static func parseRate(_ text: String) -> Double? {
            let number = text.hasSuffix("/s") ? String(text.dropLast(2)) : text
            guard let value = Double(number), value.isFinite, rateRange.contains(value) else { return nil }
            return value
        }

        struct TestSend: Encodable {
            let status: String
            let to: String
            let reply: String
        }

        /// `written`, `folder`, and the outbox columns (every message written counts as queued).
        struct DryRun: Encodable {
            let written: Int
            let folder: String

            enum CodingKeys: String, CodingKey { case written, folder }

            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(written, forKey: .written)
                try container.encode(folder, forKey: .folder)
                var counts = OutboxCounts()
                counts[.queued] = written
                try counts.encodeColumns(to: encoder)
            }
        }

        func run() throws {
            try reportingErrors {
                let context = try MailContext(campaignOptions)
                let blast = try context.blast(template)
                if let to { return try testSend(to: to, blast: blast, context: context) }
                if dryRun {
                    // Sends nothing, so it warns instead of refusing; the real send refuses.
                    if let problem = try context.ledger.sealState().problem(ledger: context.ledger.url.path) {
                        Console.error("muster: warning: \(problem); these files may include such addresses, and `mail send` refuses until this is fixed")
                    }
                    return try writeFiles(blast: blast, context: context)
                }
                // Before the plan, the prompt and sorting out a killed run: nothing is written.
                try context.ledger.ensureSealsForBlast()

                let request = BlastRequest(template: template, limit: limit, connections: connections,
                                           ratePerSecond: rate.flatMap(Self.parseRate), retryUnknown: retryUnknown, retryFailed: retryFailed)
                // A killed run's rows are sorted out before the plan counts them.
                _ = try Blast.recoverIfIdle(campaign: context.campaign, ledger: context.ledger, at: context.run.clock.now())
                let plan = try blast.plan(request)
                let settings = try context.smtpSettings(verbose: verbose)
                let describe = "\(plan.toSend) message\(plan.toSend == 1 ? "" : "s") of '\(plan.template)' to \(plan.audience) via \(settings.host):\(settings.port)"
                Console.error("plan: \(plan.recipients) recipient\(plan.recipients == 1 ? "" : "s") (\(plan.audience)), \(plan.alreadySent) already sent, \(plan.toSend) to send" + (plan.unknown > 0 ? ", \(plan.unknown) unknown (resent only with --retry-unknown)" : "") + (plan.failed > 0 ? ", \(plan.failed) failed earlier" + (plan.retryFailed > 0 ? " (\(plan.retryFailed) sent again: --retry-failed)" : " (sent again only with --retry-failed)") : ""))
                if let subject = plan.firstSubject { Console.error("first subject: \(subject)") }
                if plan.toSend == 0 {
                    let summary = BlastSummary(template: template)
                    if output.json { Console.json(summary) } else { Console.line("nothing to send") }
                    return
                }
                if !yes {
                    guard Console.stdinIsTerminal else {
                        throw MusterError.usage("not on a terminal: add --yes to send \(describe)")
                    }
                    Console.error("Send \(describe)? [y/N] ", newline: false)
                    guard let answer = readLine(), ["y", "yes"].contains(answer.lowercased()) else {
                        Console.error("nothing sent")
                        return
                    }
                }
                let display = ProgressDisplay(enabled: isatty(STDERR_FILENO) == 1)
                let signals = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
                signal(SIGINT, SIG_IGN)
                signals.setEventHandler { blast.requestStop() }
                signals.resume()
                defer { signals.cancel(); signal(SIGINT, SIG_DFL) }
                let summary: BlastSummary
                do {
                    summary = try blast.run(request, transport: .curl(settings),
                                            onProgress: { display.show($0) })
                } catch let stopped as BlastStopped {
                    display.finish()
                    if output.json { Console.json(stopped.summary) }
                    throw stopped.error
                }
                display.finish()
                if output.json {
                    Console.json(summary)
                } else {
                    Console.line("sent \(summary.sent), deferred \(summary.deferred), failed \(summary.failed), unknown \(summary.unknown), still queued \(summary.queued) (\(String(format: "%.1f", summary.seconds)) s, \(Int(summary.rate))/s)")
                    if summary.failed + summary.unknown + summary.deferred > 0 { Console.line("details: muster mail status \(template)") }
                }
                if summary.stoppedBecause == "interrupted" { throw ExitCode(130) }
                if summary.deferred > 0 { throw ExitCode(ExitStatus.temporary.rawValue) }
            }
        }

        private func testSend(to: String, blast: Blast, context: MailContext) throws {
            let recipient = try context.recipient(for: to, in: blast)
            var message = try blast.render(recipient)
            message.envelopeTo = try EmailAddress.canonical(to)
            let settings = try context.smtpSettings(verbose: verbose)
            do {
                let transport = try CurlSMTPTransport(settings: settings)
                let receipt = try transport.send(message)
                if output.json { return Console.json(TestSend(status: "sent", to: to, reply: "\(receipt.replyCode) \(receipt.replyText)")) }
                Console.line("sent a test of '\(template)' to \(to) (\(receipt.replyCode) \(receipt.replyText))")
            } catch {
                throw MusterError(error)
            }
        }

        private func writeFiles(blast: Blast, context: MailContext) throws {
            try context.run.workspace.checkOutputTarget(out!)
            let folder = URL(fileURLWithPath: out!, isDirectory: true)
            let fm = FileManager.default
            var isDirectory: ObjCBool = false
            if fm.fileExists(atPath: folder.path, isDirectory: &isDirectory) {
                guard isDirectory.boolValue else { throw MusterError.usage("--out \(out!) is a file, not a folder") }
                if let existing = try? fm.contentsOfDirectory(atPath: folder.path), existing.contains(where: { $0.hasSuffix(".eml") }) {
                    throw MusterError.usage("--out \(out!) already holds .eml files; choose an empty folder")
                }
            } else {
                do {
                    try fm.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                } catch {
                    throw MusterError.failure("cannot create \(out!): \(error.localizedDescription)")
                }
            }
            var done: Set<OutboxState> = [.sent]
            if !retryUnknown { done.insert(.unknown) }
            let sent = Set(try context.ledger.outboxRows(template: template, states: done).map(\.recipient))
            var written = 0
            try blast.forEachAudienceMember { person in
                if let limit, written >= limit { return false }
                guard !sent.contains(person.key) else { return true }
                let message = try blast.render(person)
                written += 1
                let file = folder.appendingPathComponent(String(format: "%05d.eml", written))
                try FileWriter.writeAtomically(Data(message.bytes), to: file, permissions: 0o600)
                return true
            }
            if output.json { return Console.json(DryRun(written: written, folder: folder.path)) }
            Console.line("wrote \(written) message\(written == 1 ? "" : "s") to \(folder.path) (nothing sent)")
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Per-template counts: queued, sent, deferred, failed, unknown.",
            discussion: """
                When no blast is running, rows that a killed one left half-done are sorted out first, as the next `mail send` would: those never handed to the relay are queued again, those the relay accepted are sent, and the messages that were in flight are unknown.
                """)

        @Argument(help: "One template (default: all).")
        var template: String?

        @Flag(help: "List the failed, deferred and unknown messages with the relay's reply.")
        var details = false

        @OptionGroup var campaignOptions: CampaignOptions
        @OptionGroup var output: OutputOptions

        /// `templates` (every state of each), then the totals as readers see them, one key per
        /// column, then the suppressions: in total and per template.
        struct Listing: Encodable {
            let templates: [String: OutboxCounts]
            let total: OutboxCounts
            let suppressions: [Suppressed]

            struct Suppressed: Encodable {
                let template: String
                let bounced: Int
                let complained: Int
            }

            enum CodingKeys: String, CodingKey { case templates, bounced, complained, suppressions }

            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(templates, forKey: .templates)
                try total.shown.encodeColumns(to: encoder)
                try container.encode(suppressions.reduce(0) { $0 + $1.bounced }, forKey: .bounced)
                try container.encode(suppressions.reduce(0) { $0 + $1.complained }, forKey: .complained)
                try container.encode(suppressions, forKey: .suppressions)
            }
        }

        func run() throws {
            try reportingErrors {
                let context = try MailContext(campaignOptions)
                if let template { _ = try MailTemplates.load(template, campaign: context.campaign, manifest: context.manifest) }
                // Rows a killed blast left `sending` are sorted out first (while a blast runs, they are in flight).
                // A ledger this user cannot write still gets its counts, with those rows as queued.
                do {
                    _ = try Blast.recoverIfIdle(campaign: context.campaign, ledger: context.ledger, at: context.run.clock.now())
                } catch {
                    let reason = (error as? MusterError)?.message ?? "\(error)"
                    Console.error("muster: warning: rows a killed blast left were not sorted out (\(reason)); they count as queued until the next mail send")
                }
                let counts = try context.ledger.outboxCounts(template: template)
                let total = counts.values.reduce(OutboxCounts(), +)
                let suppressed = try context.ledger.suppressionCounts()
                context.warnAboutSeals()
                let suppressions = counts.keys.sorted().map {
                    Listing.Suppressed(template: $0, bounced: suppressed[$0]?.bounced ?? 0, complained: suppressed[$0]?.complained ?? 0)
                }
                if output.json { return Console.json(Listing(templates: counts, total: total, suppressions: suppressions)) }
                if counts.isEmpty { return Console.line("no mail sent yet") }
                let width = max(8, counts.keys.map(\.count).max() ?? 0)
                func cell(_ text: String, _ size: Int = 10) -> String { String(repeating: " ", count: max(0, size - text.count)) + text }
                Console.line("template".padding(toLength: width, withPad: " ", startingAt: 0) + OutboxState.columns.map { cell($0.rawValue) }.joined()
                             + cell("bounced") + cell("complained", 12))
                for (name, value) in counts.sorted(by: { $0.key < $1.key }) {
                    let shown = value.shown
                    Console.line(name.padding(toLength: width, withPad: " ", startingAt: 0) + OutboxState.columns.map { cell(String(shown[$0])) }.joined()
                                 + cell(String(suppressed[name]?.bounced ?? 0)) + cell(String(suppressed[name]?.complained ?? 0), 12))
                    if details {
                        for row in try context.ledger.outboxRows(template: name, states: OutboxState.needsAttention) {
                            Console.line("  \(row.state.rawValue): entry \(row.signature.map(String.init) ?? "target") after \(row.attempts) attempt\(row.attempts == 1 ? "" : "s"): \(row.reply ?? "")")
                        }
                    }
                }
                let bounced = suppressions.reduce(0) { $0 + $1.bounced }, complained = suppressions.reduce(0) { $0 + $1.complained }
                if bounced + complained > 0 {
                    Console.line("suppressed: \(bounced) bounced, \(complained) complained (never mailed again; see muster inbox)")
                }
            }
        }
    }
}

/// The blast's progress: a bar redrawn in place on a terminal, a line every few seconds otherwise.
final class ProgressDisplay: @unchecked Sendable {
    private let enabled: Bool
    private let lock = NSLock()
    private var lastLine = Date.distantPast
    private var drawn = false

    init(enabled: Bool) { self.enabled = enabled }

    func show(_ progress: BlastProgress) {
        lock.withLock {
            let remaining = max(0, progress.total - progress.done)
            let eta = progress.rate > 0 ? Int(Double(remaining) / progress.rate) : 0
            let counts = progress.counts
            let text = "\(progress.done)/\(progress.total) · sent \(counts.sent) · failed \(counts.failed) · unknown \(counts.unknown) · deferred \(counts.deferred) · \(Int(progress.rate))/s · ETA \(eta / 60):\(String(format: "%02d", eta % 60))"
            if enabled {
                let bar = TextBar.horizontal(fraction: progress.total == 0 ? 1 : Double(progress.done) / Double(progress.total), width: 24)
                FileHandle.standardError.write(Data("\r\u{1B}[K\(bar) \(text)".utf8))
                drawn = true
            } else if Date().timeIntervalSince(lastLine) >= 5 || progress.done == progress.total {
                lastLine = Date()
                FileHandle.standardError.write(Data("progress: \(text)\n".utf8))
            }
        }
    }

    func finish() {
        lock.withLock { if drawn { FileHandle.standardError.write(Data("\n".utf8)); drawn = false } }
    }
}
