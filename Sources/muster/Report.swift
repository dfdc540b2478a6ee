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
                """)

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
                let text = try report.rendered(as: output.json ? .json : format, styled: out == nil && Console.colorEnabled)
                if let out {
                    let url = URL(fileURLWithPath: out)
                    try FileWriter.writeAtomically(Data(text.utf8), to: url)
                    if !output.json { Console.error("wrote \(out)") }
                } else {
                    Console.out(text)
                }
            }
        }
    }
}
