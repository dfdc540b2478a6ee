import ArgumentParser
import Foundation
import MusterKit

extension Muster {
    struct Sign: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add one signature, or run a signing kiosk for a stall.",
            discussion: """
                One signature per person per campaign: an address that already signed, or
                another spelling of the same mailbox (case, Unicode and IDN forms, +tags,
                Gmail dots, provider aliases; see `dedupe:` in muster.yaml), is reported as
                a duplicate with its first signing date, and the command still succeeds.

                --kiosk locks the terminal for a stall: the volunteer first chooses a
                passphrase (typed twice, not shown); the screen and scrollback are
                cleared; then each signer is asked every field the manifest declares, each
                consent and an optional comment, sees it all on a confirmation screen, and
                is recorded; the screen is cleared for the next. Ctrl-C, Ctrl-\\, Ctrl-Z
                and Ctrl-D do not end it: Ctrl-C abandons the entry being typed (counted
                as discarded); Ctrl-D on an empty Name line asks for the passphrase, and
                only the passphrase ends the session (exit 0). It needs a terminal: with
                standard input not a terminal it refuses (exit 64).

                Examples:
                  muster sign --name "Ana Lima" --email ana@example.org \\
                    --field region=Lyon --consent updates
                  muster sign --kiosk --by "Sam at the Saturday market"
                """)

        @Option(help: "The signer's name.")
        var name: String?

        @Option(help: "The signer's email address.")
        var email: String?

        @Option(name: .customLong("field"), parsing: .singleValue, help: ArgumentHelp("A manifest field, e.g. --field region=Lyon (repeatable).", valueName: "KEY=VALUE"))
        var fields: [String] = []

        @Option(name: .customLong("consent"), parsing: .singleValue, help: ArgumentHelp("A consent the signer gave, by its key in the manifest (repeatable).", valueName: "KEY"))
        var consents: [String] = []

        @Option(help: "An optional comment from the signer.")
        var comment: String?

        @Option(help: "Where the signature was collected (default: cli, or kiosk).")
        var source: String?

        @Option(name: .customLong("by"), help: ArgumentHelp("The volunteer who collected it.", valueName: "VOLUNTEER"))
        var collector: String?

        @Flag(help: "Run an interactive signing loop for a stall or event.")
        var kiosk = false

        @OptionGroup var campaignOptions: CampaignOptions
        @OptionGroup var output: OutputOptions

        func validate() throws {
            if kiosk {
                if name != nil || email != nil || !fields.isEmpty || !consents.isEmpty || comment != nil {
                    throw ValidationError("--kiosk asks for each signer's details; do not pass --name, --email, --field, --consent or --comment with it")
                }
            } else {
                if name == nil { throw ValidationError("missing --name (or use --kiosk)") }
                if email == nil { throw ValidationError("missing --email (or use --kiosk)") }
            }
            for field in fields where !field.contains("=") {
                throw ValidationError("--field takes KEY=VALUE, e.g. --field region=Lyon; got '\(field)'")
            }
        }

        struct Added: Encodable {
            let status: String
            let count: Int64
            let entry: Int64?
            let first_signed_at: String?
        }

        func run() throws {
            try reportingErrors {
                let (context, campaign, manifest) = try RunContext.loadCampaign(campaignOptions)
                if kiosk { return try runKiosk(context: context, campaign: campaign, manifest: manifest) }

                var fieldValues: [String: String] = [:]
                for field in fields {
                    let parts = field.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                    let key = String(parts[0])
                    if fieldValues[key] != nil { throw MusterError.usage("--field \(key) is given twice") }
                    fieldValues[key] = String(parts[1])
                }
                let input = SignatureInput(name: name ?? "", email: email ?? "", comment: comment, fields: fieldValues,
                                           consents: consents, source: source ?? "cli", collector: collector)
                let signature = try input.validated(against: manifest)
                guard let ledger = try Ledger.open(campaign, create: true) else { return }
                switch try ledger.append(signature, at: context.clock.now()) {
                case .added(let seq, let count):
                    if output.json { return Console.json(Added(status: "added", count: count, entry: seq, first_signed_at: nil)) }
                    Console.line("added: \(Number.grouped(count)) of \(Number.grouped(Int64(manifest.goal))) signatures")
                case .duplicate(let first, let count):
                    if output.json { return Console.json(Added(status: "duplicate", count: count, entry: nil, first_signed_at: first)) }
                    Console.line("duplicate: this address already signed on \(first.prefix(10)); \(Number.grouped(count)) signature\(count == 1 ? "" : "s")")
                }
            }
        }

        private func runKiosk(context: RunContext, campaign: Campaign, manifest: Manifest) throws {
            // A kiosk is locked: only the volunteer's passphrase ends it. That takes a terminal
            // in raw mode; input from a pipe or a file could end it at any moment.
            guard Console.stdinIsTerminal else {
                throw MusterError.usage("--kiosk needs a terminal (standard input is not one), so that the session can be locked; to add signatures from a script use 'muster sign --name N --email E' or 'muster import'")
            }
            let screen: Int32
            if Console.stdoutIsTerminal && !output.json { screen = STDOUT_FILENO }
            else if Console.stderrIsTerminal { screen = STDERR_FILENO }
            else { throw MusterError.usage("--kiosk needs a terminal to show its screens on (standard error is not one)") }
            guard let ledger = try Ledger.open(campaign, create: true) else { return }
            // Rebuilt keys are announced before the screen is taken over.
            try ledger.refreshMailboxKeys()
            let session = KioskSession(manifest: manifest, ledger: ledger, clock: context.clock,
                                       source: source ?? "kiosk", collector: collector)
            try session.check()

            var terminal = try KioskTerminal(output: screen)
            defer { terminal.restore() }
            let passphrase: KioskPassphrase
            do {
                guard let chosen = try KioskSession.choosePassphrase(console: &terminal) else {
                    terminal.restore()
                    throw MusterError.failure("kiosk not started: no passphrase was chosen")
                }
                passphrase = chosen
            } catch let stop as KioskSession.Stop {
                terminal.restore()
                Self.end(by: stop.signal)
            }
            let (tally, ending) = try session.run(console: &terminal, passphrase: passphrase)
            terminal.write(KioskSession.summary(tally))
            terminal.restore()
            if output.json { Console.json(tally) }
            if case .signal(let number) = ending { Self.end(by: number) }
        }

        /// Ends the process by `signal` (its default action), as a program that tidied
        /// up after SIGTERM or SIGHUP should, so its parent sees why it ended.
        static func end(by signal: Int32) -> Never {
            Glibc.signal(signal, SIG_DFL)
            var set = sigset_t()
            sigemptyset(&set)
            sigaddset(&set, signal)
            sigprocmask(SIG_UNBLOCK, &set, nil)
            raise(signal)
            Glibc.exit(128 + signal)
        }
    }
}
