import ArgumentParser
import Foundation
import MusterKit

extension Muster {
    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Bulk-add signatures from a CSV file.",
            discussion: """
                Columns are matched from the header (a plain name,email,… sheet, muster's own
                export, Action Network, Change.org and Google Forms exports; see
                docs/import.md) and with --map COLUMN=FIELD, where FIELD is name, first_name,
                last_name, email, comment, signed_at, source, collector, consent,
                consent:KEY, a manifest field, or ignore. First and last name columns are
                joined.

                Every row is validated as `muster sign` does. Bad rows do not stop the import:
                they go to the rejects file (default FILE.rejects.csv beside the input) with
                their line number and the reason. Addresses that already signed, in the ledger
                or earlier in the file, are counted as duplicates, and so are other spellings
                of the same mailbox (+tags, Gmail dots, provider aliases; see `dedupe:`).
                A row with a time but no name, email or comment is a forgotten signer as
                `muster export` writes one: it is skipped and counted as forgotten. The
                import is one transaction: all of it is recorded or none of it, and running
                it again changes nothing.

                Exit 0 when the import went through (even with rejected rows); 65 when the file
                itself is unreadable (invalid UTF-8, an unterminated quote, a 1 MiB field,
                10,000 columns), and then nothing is written.
                """)

        @Argument(help: "The CSV file (comma, semicolon or tab separated; UTF-8).")
        var file: String

        @Option(name: .customLong("map"), parsing: .singleValue, help: ArgumentHelp("Use COLUMN (its header) as FIELD (repeatable).", valueName: "COLUMN=FIELD"))
        var maps: [String] = []

        @Option(help: "The source recorded for rows without a source column (default: import).")
        var source: String?

        @Option(name: .customLong("by"), help: ArgumentHelp("The collector recorded for rows without a collector column.", valueName: "VOLUNTEER"))
        var collector: String?

        @Flag(help: "Report what would happen; write nothing.")
        var dryRun = false

        @Option(help: ArgumentHelp("Write rejected rows to FILE (default: beside the input, NAME.rejects.csv).", valueName: "FILE"))
        var rejects: String?

        @OptionGroup var campaignOptions: CampaignOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try reportingErrors {
                let (context, campaign, manifest) = try RunContext.loadCampaign(campaignOptions)
                if let rejects { try context.workspace.checkOutputTarget(rejects, option: "--rejects") }
                let request = ImportRequest(file: URL(fileURLWithPath: file), maps: maps, source: source, collector: collector,
                                            dryRun: dryRun, rejects: rejects.map { URL(fileURLWithPath: $0) })
                let progress = ProgressLine(enabled: Console.stderrIsTerminal)
                let summary = try Importer.run(request, campaign: campaign, manifest: manifest, clock: context.clock) { rows, bytes in
                    progress.update("importing \(file): \(Number.grouped(Int64(rows))) rows, \(bytes / 1_048_576) MiB")
                }
                progress.clear()
                if output.json { return Console.json(summary) }
                let verb = dryRun ? "would add" : "added"
                Console.line("\(dryRun ? "dry run: " : "")\(verb) \(Number.grouped(Int64(summary.added))), duplicates \(Number.grouped(Int64(summary.duplicates))), rejected \(Number.grouped(Int64(summary.rejected))) of \(Number.grouped(Int64(summary.rows))) rows")
                if summary.forgotten > 0 {
                    Console.line("skipped \(Number.grouped(Int64(summary.forgotten))) forgotten signer\(summary.forgotten == 1 ? "" : "s") (rows with a time but no name, email or comment, as `muster export` writes them: there is no one to add)")
                }
                if summary.suspectedTypos > 0 {
                    let lines = summary.suspectedTypoLines.prefix(20).map(String.init).joined(separator: ", ")
                    let more = summary.suspectedTypos > 20 ? ", …" : ""
                    Console.line("\(Number.grouped(Int64(summary.suspectedTypos))) row\(summary.suspectedTypos == 1 ? " has a domain" : "s have domains") one typing slip from a common mail provider (e.g. gmial.com), imported as typed; check line\(summary.suspectedTypos == 1 ? "" : "s") \(lines)\(more)")
                }
                if !summary.ignoredColumns.isEmpty {
                    Console.line("ignored columns: \(summary.ignoredColumns.joined(separator: ", ")) (use --map COLUMN=FIELD to use them)")
                }
                if summary.rejected > 0 {
                    if let path = summary.rejectsFile {
                        Console.line("the import went through; \(Number.grouped(Int64(summary.rejected))) rejected row\(summary.rejected == 1 ? " is" : "s are") in \(path) with line numbers and reasons")
                    }
                    for (reason, count) in summary.reasons.sorted(by: { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }).prefix(10) {
                        Console.line("  \(Number.grouped(Int64(count)))× \(reason)")
                    }
                }
                if dryRun {
                    Console.line("nothing was written; \(Number.grouped(summary.count + Int64(summary.added))) signatures after a real import")
                } else {
                    Console.line("\(Number.grouped(summary.count)) of \(Number.grouped(Int64(manifest.goal))) signatures")
                }
            }
        }
    }
}

/// A one-line progress display on stderr, redrawn in place at most four times a second.
final class ProgressLine {
    private let enabled: Bool
    private var last = Date.distantPast
    private var shown = false

    init(enabled: Bool) { self.enabled = enabled }

    func update(_ text: @autoclosure () -> String) {
        guard enabled else { return }
        let now = Date()
        guard now.timeIntervalSince(last) >= 0.25 else { return }
        last = now
        shown = true
        FileHandle.standardError.write(Data("\r\u{1B}[K\(text())".utf8))
    }

    func clear() {
        if shown { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}
