import ArgumentParser
import MusterKit

@main
struct Muster: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run petitions on your own machine.", version: MusterKitVersion.string)
}
