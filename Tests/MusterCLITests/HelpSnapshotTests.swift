import Foundation
import Testing

/// `muster <command> --help` for every command and subcommand, at 80 columns, against
/// the files in Snapshots/help/ (issue 10, item 16).
///
/// CONTRIBUTING — when you add or change a command, an option or a help string:
///
///     MUSTER_UPDATE_SNAPSHOTS=1 swift test --filter HelpSnapshotTests
///
/// rewrites every snapshot (and deletes those of commands that are gone); review the
/// diff of Snapshots/help/ and commit it with your change. After merging branches that
/// each added options, regenerate once on the merged tree the same way. The commands
/// are found from the binary's own help (its SUBCOMMANDS sections), so a new command
/// without a snapshot fails here. `RECORD_SNAPSHOTS=1` works too, as for ReportTests.
///
/// Besides the snapshots, rules hold for every command whatever its text:
/// - hand-wrapped text is never wrapped again at 80 columns (a wrapped example line
///   breaks copy-paste): hand-wrapped and indented lines fit in 80 columns, and a
///   longer line is a whole paragraph that ArgumentParser wraps itself;
/// - an option states its default and its values once (ArgumentParser adds
///   "(values: …; default: …)" itself).
@Suite struct HelpSnapshotTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Snapshots/help")
    static var updating: Bool {
        let environment = ProcessInfo.processInfo.environment
        return environment["MUSTER_UPDATE_SNAPSHOTS"] == "1" || environment["RECORD_SNAPSHOTS"] == "1"
    }

    /// `muster <path> --help` at `columns` columns.
    static func help(_ path: [String], columns: Int = 80) throws -> String {
        let box = try Sandbox()
        let result = try box.run(path + ["--help"], environment: ["COLUMNS": String(columns), "LINES": "50"])
        #expect(result.status == 0, "muster \(path.joined(separator: " ")) --help: \(result)")
        return result.stdout
    }

    /// The subcommand names listed under SUBCOMMANDS in `help`.
    static func subcommands(in help: String) -> [String] {
        var names: [String] = []
        var inSection = false
        for line in help.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasSuffix(":") && !line.hasPrefix(" ") { inSection = line == "SUBCOMMANDS:"; continue }
            if line.isEmpty { inSection = false; continue }
            // "  name    abstract" or "  name (default)   abstract"; wrapped abstracts are indented further.
            guard inSection, line.hasPrefix("  "), !line.hasPrefix("   "), let name = line.split(separator: " ").first else { continue }
            names.append(String(name))
        }
        return names
    }

    /// Every command path, found by walking the binary's help: [], ["init"], ["mail", "send"], …
    static func commandPaths() throws -> [[String]] {
        var paths: [[String]] = []
        var queue: [[String]] = [[]]
        while !queue.isEmpty, paths.count < 100 {
            let path = queue.removeFirst()
            paths.append(path)
            for name in subcommands(in: try help(path)) where name != "help" {
                queue.append(path + [name])
            }
        }
        return paths
    }

    static func fileName(_ path: [String]) -> String { (["muster"] + path).joined(separator: "-") + ".txt" }

    @Test func helpOfEveryCommandMatchesItsSnapshot() throws {
        let paths = try Self.commandPaths()
        #expect(paths.count >= 15, "found \(paths.count) commands: \(paths)")
        try FileManager.default.createDirectory(at: Self.folder, withIntermediateDirectories: true)
        var expected = Set<String>()
        for path in paths {
            let name = Self.fileName(path)
            expected.insert(name)
            let text = try Self.help(path)
            let url = Self.folder.appendingPathComponent(name)
            if Self.updating {
                try Data(text.utf8).write(to: url)
                continue
            }
            guard let golden = try? String(contentsOf: url, encoding: .utf8) else {
                Issue.record("no snapshot for `muster \(path.joined(separator: " ")) --help` (Snapshots/help/\(name)); run MUSTER_UPDATE_SNAPSHOTS=1 swift test --filter HelpSnapshotTests")
                continue
            }
            #expect(text == golden, "`muster \(path.joined(separator: " ")) --help` differs from Snapshots/help/\(name); if intended, run MUSTER_UPDATE_SNAPSHOTS=1 swift test --filter HelpSnapshotTests")
        }
        let present = Set(((try? FileManager.default.contentsOfDirectory(atPath: Self.folder.path)) ?? []).filter { $0.hasSuffix(".txt") })
        for stale in present.subtracting(expected).sorted() {
            if Self.updating {
                try FileManager.default.removeItem(at: Self.folder.appendingPathComponent(stale))
            } else {
                Issue.record("Snapshots/help/\(stale) belongs to no command any more; run MUSTER_UPDATE_SNAPSHOTS=1 swift test --filter HelpSnapshotTests")
            }
        }
    }

    /// The text between the OVERVIEW paragraph (the abstract, which ArgumentParser may
    /// wrap) and USAGE: the hand-written discussion.
    static func discussion(_ help: String) -> String {
        let text = help.components(separatedBy: "\nUSAGE:").first ?? ""
        guard let firstBreak = text.range(of: "\n\n") else { return "" }
        return String(text[firstBreak.upperBound...])
    }

    @Test func handWrappedTextIsNotWrappedAgainAndDefaultsAreStatedOnce() throws {
        for path in try Self.commandPaths() {
            let command = "muster " + path.joined(separator: " ")
            let narrow = try Self.help(path, columns: 80), wide = try Self.help(path, columns: 1000)
            // At 1,000 columns the discussion is as written. A line longer than 80 columns
            // must be a paragraph of its own, which ArgumentParser wraps cleanly at any
            // width; hand-wrapped lines (several in a row) and indented ones (examples)
            // must fit in 80 columns, so that they are never wrapped a second time.
            let lines = Self.discussion(wide).components(separatedBy: "\n")
            for (index, line) in lines.enumerated() where line.count > 80 {
                let alone = (index == 0 || lines[index - 1].isEmpty) && (index == lines.count - 1 || lines[index + 1].isEmpty)
                #expect(alone && !line.hasPrefix(" "), "\(command) --help: a hand-wrapped or indented line longer than 80 columns is wrapped again: \(line)")
            }
            // Indented lines (examples, lists) appear unbroken at 80 columns.
            let narrowLines = Set(Self.discussion(narrow).components(separatedBy: "\n"))
            for line in lines where line.hasPrefix(" ") {
                #expect(narrowLines.contains(line), "\(command) --help: '\(line)' is broken at 80 columns")
            }
            // At 1,000 columns each option's help is one line: a default stated once.
            for line in wide.split(separator: "\n") where line.hasPrefix("  ") {
                let defaults = line.components(separatedBy: "default").count - 1
                #expect(defaults <= 1, "\(command) --help states a default twice: \(line)")
                #expect(!(line.contains("(values: ") && line.contains(" or ")), "\(command) --help lists the values twice: \(line)")
            }
        }
    }
}
