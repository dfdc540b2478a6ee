import ArgumentParser
import MusterKit

extension Muster {
    struct New: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Scaffold a campaign from the templates.",
            discussion: """
                Creates campaigns/SLUG/ with campaign.yaml, petition.md and emails/, from the
                workspace's templates/campaign/ (or the built-in defaults). SLUG is 1 to 63
                lower-case letters, digits and hyphens. With --language fr, the manifest
                says `web: language: fr` and the texts signers read (the confirmation mail
                among them) are in French.
                """)

        @Argument(help: "The campaign's short name, e.g. fair-rates.")
        var slug: String

        @Option(help: "The campaign's title (default: from the slug).")
        var title: String?

        @Option(help: "How many signatures the campaign aims for (default: 1000).")
        var goal: Int?

        @Option(help: ArgumentHelp("The last day of the campaign.", valueName: "YYYY-MM-DD"))
        var deadline: String?

        @Option(help: ArgumentHelp("The sign page's language: en or fr (default: en).", valueName: "LANG"))
        var language: String?

        @OptionGroup var workspaceOptions: WorkspaceOptions
        @OptionGroup var output: OutputOptions

        /// The goals `new` accepts (the manifest's own check takes any whole number above 0).
        static let goalRange = 1...1_000_000_000

        func validate() throws {
            if let goal, !Self.goalRange.contains(goal) {
                throw ValidationError("--goal must be between 1 and \(Self.goalRange.upperBound); got \(goal)")
            }
            if let language, WebLanguage(rawValue: language) == nil {
                throw ValidationError("--language must be one of \(WebLanguage.allCases.map(\.rawValue).joined(separator: ", ")); got '\(language)'")
            }
        }

        func run() throws {
            try reportingErrors {
                try Slug.validate(slug)
                let context = try RunContext.make(workspaceOptions)
                let result = try Scaffold.newCampaign(.init(slug: slug, title: title, goal: goal, deadline: deadline,
                                                                   language: language.flatMap(WebLanguage.init(rawValue:)) ?? .en), in: context.workspace)
                if output.json { return Console.json(result) }
                Console.line("Created \(result.folder)/ with \(result.files.joined(separator: ", "))")
                Console.line("Edit \(result.folder)/campaign.yaml and petition.md, then: muster check")
            }
        }
    }
}
