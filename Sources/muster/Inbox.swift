import ArgumentParser
import Foundation
import MusterKit

extension Muster {
    struct Inbox: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Process bounces, complaints and unsubscribe requests from the mailbox.",
            discussion: """
                Reads the folder set in muster.yaml's inbox section over IMAP (imaps://,
                or imap:// with STARTTLS; TLS is always required), with the password from
                MUSTER_IMAP_PASSWORD. Bounces tied to muster's own mail suppress their
                address, unsubscribe requests unsubscribe it; what muster acted on moves
                to muster/processed, bounce-shaped mail it cannot tie to its own moves to
                muster/unrecognised. Other mail stays where it is, unread. Nothing is
                deleted.

                With --dry-run, says what it would do and changes nothing.

                Exit 75 when the connection fails or drops (run it again: it carries on
                where it stopped and counts nothing twice); 1 when the server refuses
                the login or TLS.
                """)

        @Flag(help: "Say what would be done; move nothing, record nothing.")
        var dryRun = false

        @OptionGroup var workspaceOptions: WorkspaceOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try reportingErrors {
                let context = try RunContext.make(workspaceOptions)
                let settings = try WorkspaceSettings.loadOrThrow(context.workspace)
                guard let inbox = settings.inbox else {
                    throw MusterError.usage("no mailbox configured: add an inbox: section with url and username to muster.yaml (see docs/mail.md)")
                }
                let imap = try inbox.imapSettings(workspace: context.workspace)
                var options = InboxOptions()
                options.dryRun = dryRun
                if let size = inbox.maxMessageSize { options.maxMessageBytes = size }
                if let limit = inbox.softBounceLimit { options.softBounceLimit = limit }
                if let days = inbox.softBounceDays { options.softBounceWindowDays = days }
                let clock = context.clock
                options.now = { clock.now() }
                let mailbox = IMAPMailbox(settings: imap)
                defer { mailbox.close() }
                let summary: InboxSummary
                do {
                    summary = try InboxProcessor.run(workspace: context.workspace, mailbox: mailbox, options: options)
                } catch let error as MailboxError {
                    throw MusterError(error)
                }
                if output.json { return Console.json(summary) }
                if dryRun {
                    for action in summary.actions where action.kind != "untouched" {
                        var line = "UID \(action.uid): \(action.kind.replacingOccurrences(of: "_", with: " "))"
                        if let status = action.status { line += " \(status)" }
                        if let campaign = action.campaign { line += " (\(campaign)\(action.template.map { "/\($0)" } ?? ""))" }
                        if action.suppressed { line += ", would suppress" }
                        if let folder = action.folder { line += ", would move to \(folder)" }
                        Console.line(line + ": \(action.reason)")
                    }
                }
                let verb = dryRun ? "dry run, nothing changed" : "done"
                Console.line("\(verb): \(summary.scanned) messages in \(imap.folder); \(summary.hard) hard and \(summary.soft) soft bounces, "
                    + "\(summary.delayed) delay notices, \(summary.complaints) complaints, \(summary.unsubscribes) unsubscribe requests, "
                    + "\(summary.autoReplies) auto-replies, \(summary.unrecognised) unrecognised, \(summary.alreadyProcessed) already processed; "
                    + "\(summary.untouched) left alone; \(summary.suppressedNow) addresses \(dryRun ? "would be " : "")suppressed")
            }
        }
    }
}

extension MusterError {
    /// A mailbox failure as the user sees it: a dropped or unreachable server is worth
    /// retrying (75); a refused login, TLS or an unexpected answer is not (1).
    init(_ error: MailboxError) {
        switch error {
        case .connection(let message): self.init(.temporary, message)
        case .authentication(let message): self.init(.failure, message)
        case .protocolError(let message): self.init(.failure, message)
        case .tooLarge(let uid): self.init(.failure, "message UID \(uid) is over the size limit")
        }
    }
}
