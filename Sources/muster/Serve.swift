import ArgumentParser
import Foundation
import MusterKit

extension Muster {
    struct Serve: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the sign page: a web server over this workspace's campaigns.",
            discussion: """
                Serves every campaign of the workspace, or those named with -c, until
                SIGTERM or Ctrl-C (requests in flight are finished first). The CLI keeps
                working on the same ledgers while it runs.

                It listens on 127.0.0.1:8080 unless --listen or muster.yaml's serve.listen
                says otherwise; put a TLS reverse proxy (Caddy, nginx) in front of it to
                publish it, and set serve.base_url to its https address. Routes: / (the
                campaigns), /c/SLUG (a petition and its sign form), /confirm/TOKEN (the
                link of the confirmation mail), /u/TOKEN (one-click unsubscribe),
                /c/SLUG/count.json and /c/SLUG/badge.svg (for other websites),
                /style.css and /healthz (200 when every ledger can be written).

                Signatures from the form count once confirmed by email. The server
                sends that mail itself through the SMTP relay of muster.yaml (or
                MUSTER_SMTP_URL), retrying while the relay is down; without a relay the
                mail waits in the ledger. See docs/serve.md.

                Each request is logged on standard error as one line: time, method,
                route, status and duration; never an address, a name or a token.

                Examples:
                  muster serve
                  muster serve --listen 127.0.0.1:9000 -c fair-rates
                """)

        @OptionGroup var workspaceOptions: WorkspaceOptions

        @Option(name: [.short, .customLong("campaign")], parsing: .singleValue,
                help: ArgumentHelp("A campaign to serve (repeatable; default: all).", valueName: "SLUG"))
        var campaigns: [String] = []

        @Option(help: ArgumentHelp("Where to listen: HOST:PORT, [IPv6]:PORT; port 0 picks a free one (default: serve.listen, or 127.0.0.1:8080).", valueName: "HOST:PORT"))
        var listen: String?

        func run() throws {
            try reportingErrors {
                let context = try RunContext.make(workspaceOptions)
                let workspace = context.workspace
                let settings = try WorkspaceSettings.loadOrThrow(workspace)
                var address = settings.serve.listen
                if let listen {
                    do { address = try ListenAddress(parsing: listen) } catch let error as MusterError {
                        throw MusterError.usage("--listen \(error.message)")
                    }
                }
                var slugs = campaigns
                if slugs.isEmpty {
                    slugs = workspace.campaignSlugs()
                    if slugs.isEmpty { throw MusterError.usage("this workspace has no campaign yet; create one with `muster new SLUG`") }
                }
                var served: [(Campaign, Manifest)] = []
                for slug in slugs where !served.contains(where: { $0.0.slug == slug }) {
                    let campaign = try workspace.resolveCampaign(slug, workingDirectory: workspace.root)
                    served.append((campaign, try context.manifest(campaign)))
                }
                let environment = ProcessInfo.processInfo.environment
                var transport: BlastTransportFactory?
                if settings.smtpURL != nil || environment["MUSTER_SMTP_URL"]?.isEmpty == false {
                    transport = .curl(try settings.smtpSettings(workspace: workspace, environment: environment))
                }
                // A minute before the first retry; tests shorten it as for `mail send`.
                let backoff = environment["MUSTER_BACKOFF_SECONDS"].flatMap(Double.init).flatMap { $0.isFinite && $0 >= 0 ? $0 : nil } ?? 60
                var configuration = WebServer.Configuration(workspace: workspace, campaigns: served, listen: address,
                                                            settings: settings.serve, clock: context.clock, workspaceSettings: settings,
                                                            transport: transport, mailBackoff: max(backoff, 0.1))
                // Test knobs: shorter deadlines for a request's head and body (seconds).
                if let head = environment["MUSTER_SERVE_HEAD_TIMEOUT"].flatMap(Double.init), head > 0 { configuration.headTimeout = head }
                if let body = environment["MUSTER_SERVE_BODY_TIMEOUT"].flatMap(Double.init), body > 0 { configuration.bodyTimeout = body }
                let server = try WebServer(configuration)
                for warning in server.warnings { Console.error("muster: warning: \(warning)") }
                let names = served.map(\.0.slug).joined(separator: ", ")
                try server.run { bound in
                    Console.error("muster: serving http://\(bound)/ (\(names)); stop with Ctrl-C or SIGTERM")
                }
                Console.error("muster: stopped")
            }
        }
    }
}
