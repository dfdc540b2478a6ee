import ArgumentParser
import Foundation
import MusterKit

extension ExportFormat: ExpressibleByArgument {}

extension Muster {
    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the signatures out: CSV, JSON Lines or OSDI.",
            discussion: """
                CSV is spreadsheet-safe: a cell starting with =, +, -, @, a tab or a carriage
                return gets a leading ' so no spreadsheet runs it as a formula (muster import
                removes that ' again). JSON Lines holds raw values. OSDI writes people and
                signatures for Action Network-style tools. Forgotten signers appear without
                personal data. --public writes only counts (per day, per source, per
                non-personal field), for publishing.

                Personal exports written with --out are created with mode 0600, atomically.

                --log writes the public audit log instead: one JSON line per ledger entry,
                no personal data, to recount and check against a checkpoint with
                scripts/muster_verify.py (docs/transparency.md). --omit-field F publishes
                entries whose body holds field F as their leaf hash only.
                """)

        @Flag(name: .customLong("log"), help: "The public audit log (JSON lines, no personal data).")
        var log = false

        @Option(name: .customLong("omit-field"), help: ArgumentHelp("With --log: withhold entries holding this field (repeatable).", valueName: "FIELD"))
        var omitFields: [String] = []

        @Option(help: "Output format.")
        var format: ExportFormat = .csv

        @Option(help: ArgumentHelp("Columns to write, comma-separated (e.g. name,email,region).", valueName: "a,b"))
        var fields: String?

        @Option(help: ArgumentHelp("Write to FILE instead of stdout.", valueName: "FILE"))
        var out: String?

        @Flag(name: .customLong("public"), help: "Aggregate counts only, no personal data.")
        var publicOnly = false

        @OptionGroup var campaignOptions: CampaignOptions

        func run() throws {
            try reportingErrors {
                let (context, campaign, manifest) = try RunContext.loadCampaign(campaignOptions)
                if let out { try context.workspace.checkOutputTarget(out) }
                if log { return try exportLog(campaign: campaign) }
                if !omitFields.isEmpty { throw MusterError.usage("--omit-field goes with --log") }
                let request = ExportRequest(format: format,
                                            fields: fields.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } },
                                            publicOnly: publicOnly)
                guard let out else {
                    try Exporter.run(request, campaign: campaign, manifest: manifest, to: STDOUT_FILENO)
                    return
                }
                let file = try AtomicFile(URL(fileURLWithPath: out), permissions: publicOnly ? 0o644 : 0o600)
                do {
                    let count = try Exporter.run(request, campaign: campaign, manifest: manifest, to: file.descriptor)
                    try file.commit()
                    Console.error("wrote \(out) (\(Number.grouped(Int64(count))) signature\(count == 1 ? "" : "s")\(publicOnly ? ", counts only" : ""))")
                } catch {
                    file.discard()
                    throw error
                }
            }
        }

        /// `--log`: the public audit log, mode 0644 (it holds no personal data).
        func exportLog(campaign: Campaign) throws {
            guard let ledger = try Ledger.open(campaign.ledgerURL, create: false) else {
                throw MusterError.failure("\(campaign.slug) has no ledger yet: the log is empty")
            }
            let omitted = Set(omitFields)
            guard let out else {
                _ = try PublicLog.write(ledger: ledger, omitting: omitted, to: STDOUT_FILENO)
                return
            }
            let file = try AtomicFile(URL(fileURLWithPath: out), permissions: 0o644)
            do {
                let summary = try PublicLog.write(ledger: ledger, omitting: omitted, to: file.descriptor)
                try file.commit()
                let withheld = summary.withheld > 0 ? ", \(Number.grouped(summary.withheld)) withheld" : ""
                Console.error("wrote \(out) (\(Number.grouped(summary.entries)) entries\(withheld))")
            } catch {
                file.discard()
                throw error
            }
        }
    }
}
