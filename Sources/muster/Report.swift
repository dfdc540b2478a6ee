import ArgumentParser
import Foundation
import MusterKit

extension Muster {
    struct Report: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a progress report: count, goal, milestones, signatures per day.",
            discussion: "Set MUSTER_NOW=2026-11-26T12:00:00Z to report as of a fixed moment (reproducible output).")

        enum Format: String, ExpressibleByArgument, CaseIterable {
            case text, json
        }

        @Option(help: "Output format: text or json.")
        var format: Format = .text

        @Option(help: ArgumentHelp("Write the report to FILE instead of stdout.", valueName: "FILE"))
        var out: String?

        @OptionGroup var campaignOptions: CampaignOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try reportingErrors {
                let context = try RunContext.make(campaignOptions.workspaceOptions)
                let campaign = try context.campaign(campaignOptions)
                let manifest = try context.manifest(campaign)
                let report = try ProgressReport.make(campaign: campaign, manifest: manifest, clock: context.clock)
                let asJSON = output.json || format == .json
                let text: String
                if asJSON {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
                    text = String(decoding: try encoder.encode(report), as: UTF8.self) + "\n"
                } else {
                    text = report.renderText(styled: out == nil && Console.colorEnabled)
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
    }
}
