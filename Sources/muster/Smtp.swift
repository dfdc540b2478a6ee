import ArgumentParser
import Foundation
import MusterKit

extension Muster {
    struct Smtp: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Test the SMTP relay.", subcommands: [CheckRelay.self])
    }
}

extension Muster.Smtp {
    struct CheckRelay: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check",
            abstract: "Connect, EHLO, STARTTLS and AUTH against the configured relay; send nothing.",
            discussion: "Settings come from muster.yaml's smtp section and MUSTER_SMTP_URL, MUSTER_SMTP_USERNAME, MUSTER_SMTP_PASSWORD (which win). Exit 69 when the relay cannot be reached.")

        @OptionGroup var workspaceOptions: WorkspaceOptions
        @OptionGroup var output: OutputOptions

        @Flag(help: "Show the SMTP dialogue on stderr (credentials hidden).")
        var verbose = false

        struct Result: Encodable {
            let ok: Bool
            let relay: String
            let tls: Bool
            let authenticated: Bool
            let greeting: String
            let capabilities: [String]
        }

        func run() throws {
            try reportingErrors {
                let context = try RunContext.make(workspaceOptions)
                var smtp = try WorkspaceSettings.loadOrThrow(context.workspace).smtpSettings(workspace: context.workspace)
                if verbose { smtp.dialogue = SMTPDialogueLog { Console.error($0) } }
                let report: SMTPCheckReport
                do throws(SMTPError) {
                    report = try smtpCheck(settings: smtp)
                } catch {
                    throw MusterError(error)
                }
                if output.json {
                    return Console.json(Result(ok: true, relay: "\(smtp.host):\(smtp.port)", tls: report.tls, authenticated: report.authenticated, greeting: report.greeting, capabilities: report.capabilities))
                }
                Console.line("ok: \(smtp.host):\(smtp.port) answered; TLS \(report.tls ? "on" : "off"); \(report.authenticated ? "authenticated as \(smtp.username ?? "")" : "no authentication"); nothing sent")
            }
        }
    }
}
