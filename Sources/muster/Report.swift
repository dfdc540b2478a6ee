import ArgumentParser
import Foundation
import MusterKit

extension ReportFormat: ExpressibleByArgument {}

extension Muster {
    struct Report: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a progress report: count, goal, pace, milestones, breakdowns, quorums.",
            discussion: """
                Formats: text (bar charts in block characters; colour only on a terminal and
                never with NO_COLOR), markdown, json, or html (one self-contained file with
                SVG charts). --at DATE reports the campaign as it stood then (a day means
                its end, UTC). Set MUSTER_NOW=2026-11-26T12:00:00Z to report as of a fixed
                moment (reproducible output).

                --public gives the form to publish or forward: the count, goal, deadline,
                pace, milestones, days, quorums, the ledger head, and the breakdowns of
                fields with options and of the quorum field. It leaves out collectors,
                sources, free-text fields (even non-personal ones) and the mail section,
                and says it is the public form.

                When the campaign has checkpoints, text, markdown and json end with the
                latest (or --checkpoint FILE|SIZE), its signature checked against
                checkpoint.vkey.
                """)

        @Option(help: ArgumentHelp("Show this checkpoint instead of the latest.", valueName: "FILE|SIZE"))
        var checkpoint: String?

        @Option(help: "Output format.")
        var format: ReportFormat = .text

        @Option(help: ArgumentHelp("Write the report to FILE instead of stdout.", valueName: "FILE"))
        var out: String?

        @Option(help: ArgumentHelp("Report the campaign as it stood at DATE (YYYY-MM-DD or a UTC time).", valueName: "DATE"))
        var at: String?

        @Flag(name: .customLong("public"), help: "The public form: counts only, without collectors, sources, free-text fields or mail.")
        var publicForm = false

        @OptionGroup var campaignOptions: CampaignOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try reportingErrors {
                let (context, campaign, manifest) = try RunContext.loadCampaign(campaignOptions)
                if let out { try context.workspace.checkOutputTarget(out) }
                var asOf: Date?
                if let at {
                    guard let date = Timestamp.parse(at) else {
                        throw MusterError.usage("--at \(at) is not a date like 2026-11-20 or a UTC time like 2026-11-20T18:00:00Z")
                    }
                    asOf = at.count == 10 ? date.addingTimeInterval(86_400 - 0.001) : date
                }
                let full = try ProgressReport.make(campaign: campaign, manifest: manifest, clock: context.clock, asOf: asOf)
                let report = publicForm ? full.publicForm(manifest: manifest) : full
                if !publicForm, let ledger = try Ledger.open(campaign.ledgerURL, create: false) { MailContext.warnAboutSeals(ledger) }
                let shown = try shownCheckpoint(campaign: campaign, context: context)
                var text = try report.rendered(as: output.json ? .json : format, styled: out == nil && Console.colorEnabled)
                if let shown {
                    switch output.json ? .json : format {
                    case .json:
                        let encoder = JSONEncoder()
                        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
                        text = String(decoding: try encoder.encode(WithCheckpoint(report: report, checkpoint: shown)), as: UTF8.self) + "\n"
                    case .text, .markdown:
                        text += "\nCheckpoint \(shown.file): \(Number.grouped(shown.size)) entries, \(shown.signatures.map { "\(Number.grouped($0)) signatures, " } ?? "")root \(shown.root)\(shown.time.map { ", \($0)" } ?? "")\n"
                    case .html:
                        break
                    }
                }
                if let out {
                    let url = URL(fileURLWithPath: out)
                    try FileWriter.writeAtomically(Data(text.utf8), to: url)
                    if !output.json { Console.error("wrote \(out)") }
                } else {
                    Console.out(text)
                }
            }
        }

        struct ShownCheckpoint: Encodable {
            let file: String
            let origin: String
            let size: Int64
            let root: String
            let signatures: Int64?
            let time: String?
        }

        /// The report's keys and `checkpoint`.
        struct WithCheckpoint: Encodable {
            let report: ProgressReport
            let checkpoint: ShownCheckpoint

            enum CodingKeys: String, CodingKey { case checkpoint }

            func encode(to encoder: Encoder) throws {
                try report.encode(to: encoder)
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(checkpoint, forKey: .checkpoint)
            }
        }

        /// The latest checkpoint (or the one --checkpoint names), its signature checked; nil
        /// when the campaign has none and none was asked for.
        func shownCheckpoint(campaign: Campaign, context: RunContext) throws -> ShownCheckpoint? {
            let transparency = CampaignTransparency(campaign: campaign)
            guard checkpoint != nil || !transparency.checkpointFiles().isEmpty else { return nil }
            let (note, url) = try transparency.checkpointNote(checkpoint)
            let parsed: MusterKit.Checkpoint
            do {
                let key = try transparency.publicKey()
                parsed = try MusterKit.Checkpoint.verified(note, key: key, origin: key.name)
            } catch let error as TransparencyError {
                throw MusterError.failure("\(url.path) is not a valid checkpoint of this campaign: \(error.description)")
            }
            return ShownCheckpoint(file: context.workspace.display(url), origin: parsed.origin, size: parsed.size,
                                   root: Data(parsed.root).base64EncodedString(), signatures: parsed.signatures, time: parsed.time)
        }
    }
}
