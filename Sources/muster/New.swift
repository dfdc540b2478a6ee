import ArgumentParser
import MusterKit

extension Muster {
    struct New: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Scaffold a campaign from the templates.",
            discussion: """
                Creates campaigns/SLUG/ with campaign.yaml, petition.md and emails/, from the
                workspace's templates/campaign/ (or the built-in defaults). SLUG is 1 to 63
                lower-case letters, digits and hyphens.
                """)

        @Argument(help: "The campaign's short name, e.g. fair-rates.")
        var slug: String

        @Option(help: "The campaign's title (default: from the slug).")
        var title: String?

        @Option(help: "How many signatures the campaign aims for (default: 1000).")
        var goal: Int?

        @Option(help: ArgumentHelp("The last day of the campaign.", valueName: "YYYY-MM-DD"))
        var deadline: String?

        @OptionGroup var workspaceOptions: WorkspaceOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try reportingErrors {
                try Slug.validate(slug)
                let context = try RunContext.make(workspaceOptions)
                let result = try Scaffold.newCampaign(.init(slug: slug, title: title, goal: goal, deadline: deadline), in: context.workspace)
                if output.json { return Console.json(result) }
                Console.line("Created \(result.folder)/ with \(result.files.joined(separator: ", "))")
                Console.line("Edit \(result.folder)/campaign.yaml and petition.md, then: muster check")
            }
        }
    }
}
