import ArgumentParser
import Foundation
import MusterKit

extension Muster {
    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a workspace.",
            discussion: """
                Writes muster.yaml (sender and SMTP settings, no secrets), a .gitignore that
                keeps ledgers out of git, campaigns/, and an editable copy of the default
                templates in templates/. DIR defaults to the current folder.
                """)

        @Argument(help: "The folder to make the workspace in (created if missing).")
        var directory: String = "."

        @OptionGroup var output: OutputOptions

        func run() throws {
            try reportingErrors {
                let url = URL(fileURLWithPath: directory, isDirectory: true)
                let result = try Scaffold.initWorkspace(at: url)
                if output.json { return Console.json(result) }
                Console.line("Initialised a muster workspace in \(result.workspace)")
                Console.line("Next: muster new SLUG --title \"…\" --goal N")
            }
        }
    }
}
