import ArgumentParser
import MusterKit

extension Muster {
    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recompute the ledger's hash chain; print the count and head hash.",
            discussion: """
                Checks every entry's hash and link to the one before, every signer's personal
                data against the salted hash its entry recorded, that erased data has a
                redaction entry, and that each withdrawal takes out one earlier signature,
                once. The count leaves withdrawn signatures out (`muster dedupe`).
                Exits 1 and names the first bad entry when anything was edited, deleted or
                reordered — and when the file holds anything the chain (entries 1 to the
                head) does not account for: an entry numbered outside it, stray personal
                data, mailbox keys or outbox rows, a table, index, view or trigger muster
                did not create.
                """)

        @OptionGroup var campaignOptions: CampaignOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try reportingErrors {
                let context = try RunContext.make(campaignOptions.workspaceOptions)
                let campaign = try context.campaign(campaignOptions)
                guard let ledger = try Ledger.open(campaign.ledgerURL, create: false) else {
                    if output.json { return Console.json(VerifyReport.empty) }
                    Console.line("ok: 0 signatures (no ledger yet)")
                    return
                }
                let report = try ledger.verify()
                if output.json {
                    Console.json(report)
                } else if report.ok {
                    let notes = [report.redacted > 0 ? "\(Number.grouped(report.redacted)) forgotten" : nil,
                                 report.withdrawn > 0 ? "\(Number.grouped(report.withdrawn)) withdrawn" : nil].compactMap { $0 }
                    let aside = notes.isEmpty ? "" : " (\(notes.joined(separator: ", ")))"
                    Console.line("ok: \(Number.grouped(report.count)) signatures\(aside), \(Number.grouped(report.entries)) entries")
                    Console.line("head \(report.head)")
                } else if let bad = report.firstBad {
                    Console.line("FAILED: \(bad.entry.map { "entry \($0): " } ?? "")\(bad.reason)")
                    if report.problems > 1 { Console.line("\(report.problems - 1) more problem\(report.problems == 2 ? "" : "s") after it") }
                }
                if !report.ok { throw ExitCode.failure }
            }
        }
    }
}
