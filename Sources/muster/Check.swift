import ArgumentParser
import MusterKit

extension Muster {
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate the workspace, its manifests and templates.",
            discussion: """
                Reports every problem at once as FILE:LINE:COLUMN: error|warning: MESSAGE and
                exits 65 when there is any error. Unknown keys are warnings.
                """)

        @OptionGroup var campaignOptions: CampaignOptions
        @OptionGroup var output: OutputOptions

        struct Summary: Encodable {
            struct Item: Encodable {
                let file: String
                let line: Int
                let column: Int
                let severity: String
                let message: String
            }
            let ok: Bool
            let campaigns: [String]
            let errors: [Item]
            let warnings: [Item]
        }

        func run() throws {
            try reportingErrors {
                let context = try RunContext.make(campaignOptions.workspaceOptions)
                let only = try campaignOptions.campaign.map { _ in try context.campaign(campaignOptions) }
                let result = WorkspaceCheck.run(context.workspace, only: only)
                if output.json {
                    let item = { (d: Diagnostic) in Summary.Item(file: d.file, line: d.line, column: d.column, severity: d.severity.rawValue, message: d.message) }
                    Console.json(Summary(ok: result.errors.isEmpty, campaigns: result.campaigns, errors: result.errors.map(item), warnings: result.warnings.map(item)))
                } else {
                    for diagnostic in result.diagnostics { Console.error(diagnostic.description) }
                    if result.errors.isEmpty {
                        let warned = result.warnings.isEmpty ? "" : " (\(result.warnings.count) warning\(result.warnings.count == 1 ? "" : "s"))"
                        Console.line("ok: \(result.campaigns.count) campaign\(result.campaigns.count == 1 ? "" : "s"), \(result.filesChecked) files checked\(warned)")
                    }
                }
                if !result.errors.isEmpty {
                    if !output.json {
                        Console.error("muster: error: \(result.errors.count) error\(result.errors.count == 1 ? "" : "s") found")
                    }
                    throw ExitCode(ExitStatus.badInput.rawValue)
                }
            }
        }
    }
}
