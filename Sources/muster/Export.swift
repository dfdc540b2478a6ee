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
                """)

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
    }
}
