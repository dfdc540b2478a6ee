import ArgumentParser
import Foundation
import MusterKit

/// `--workspace DIR`, shared by every command that works inside a workspace.
struct WorkspaceOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Use the workspace in DIR instead of searching upwards for muster.yaml.", valueName: "DIR"))
    var workspace: String?
}

/// `--workspace` plus `-c/--campaign`, for campaign-scoped commands.
struct CampaignOptions: ParsableArguments {
    @OptionGroup var workspaceOptions: WorkspaceOptions

    @Option(name: [.short, .long], help: ArgumentHelp("The campaign to use (default: the one you are in, or the only one).", valueName: "SLUG"))
    var campaign: String?
}

/// `--json`, for scripts.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print one JSON object on stdout instead of text.")
    var json = false
}

/// Everything one run needs, built once from the global options.
struct RunContext {
    let workspace: Workspace
    let clock: Clock

    static func make(_ options: WorkspaceOptions) throws -> RunContext {
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true)
        return RunContext(workspace: try Workspace.locate(explicit: options.workspace, start: cwd), clock: try SystemClock())
    }

    /// The run context, the chosen campaign and its manifest: what most campaign commands start with.
    static func loadCampaign(_ options: CampaignOptions) throws -> (RunContext, Campaign, Manifest) {
        let context = try make(options.workspaceOptions)
        let campaign = try context.campaign(options)
        return (context, campaign, try context.manifest(campaign))
    }

    /// The run context, the chosen campaign and the canonical form of `email` (validated
    /// first): what the commands about one address (`forget`, `unsubscribe`) start with.
    static func forAddress(_ email: String, _ options: CampaignOptions) throws -> (RunContext, Campaign, canonicalEmail: String) {
        let context = try make(options.workspaceOptions)
        let campaign = try context.campaign(options)
        return (context, campaign, try SignatureInput.validatedEmail(email))
    }

    func campaign(_ options: CampaignOptions) throws -> Campaign {
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true)
        return try workspace.resolveCampaign(options.campaign, workingDirectory: cwd)
    }

    /// Loads a campaign's manifest; warnings go to stderr.
    func manifest(_ campaign: Campaign) throws -> Manifest {
        let (manifest, warnings) = try campaign.loadManifest()
        for warning in warnings { Console.error(warning.description) }
        return manifest
    }
}

/// Writing to the terminal.
enum Console {
    static var stdoutIsTerminal: Bool { isatty(STDOUT_FILENO) == 1 }
    static var stdinIsTerminal: Bool { isatty(STDIN_FILENO) == 1 }
    static var stderrIsTerminal: Bool { isatty(STDERR_FILENO) == 1 }

    /// Colour only on a terminal, and never with NO_COLOR set.
    static var colorEnabled: Bool {
        stdoutIsTerminal && ProcessInfo.processInfo.environment["NO_COLOR"].map(\.isEmpty) ?? true
            && ProcessInfo.processInfo.environment["TERM"] != "dumb"
    }

    static func out(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    static func line(_ text: String) { out(text + "\n") }

    static func error(_ text: String, newline: Bool = true) {
        FileHandle.standardError.write(Data((text + (newline ? "\n" : "")).utf8))
    }

    /// Prints `value` as one JSON object on stdout.
    static func json<T: Encodable>(_ value: T) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        out(String(decoding: data, as: UTF8.self) + "\n")
    }
}

/// Runs a command body, turning muster's errors into a message and the contract's exit code.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as MusterError {
        Console.error("muster: error: \(error.message)")
        for line in error.details { Console.error(line) }
        throw ExitCode(error.status.rawValue)
    }
}
