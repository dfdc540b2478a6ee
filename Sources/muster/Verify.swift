import ArgumentParser
import Foundation
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
                did not create. Also checks the Merkle tree against the entries, and that
                every bounce and suppression carries muster's seal: one without is ignored
                (it suppresses no one; `mail send` refuses while it is there) and reported
                with its table's count; --drop-unsealed deletes such rows first.

                --against CHECKPOINT (a file, or the size of one in checkpoints/) also
                checks that checkpoint's signature with the campaign's public key and
                proves (RFC 9162 consistency proof) that the ledger still holds, unchanged,
                every entry it covered. Exits 1 with the reason when it does not.
                --witness VKEY (repeatable) also requires that witness's cosignature on it
                (`muster witness sign`).
                """)

        @Option(help: ArgumentHelp("Also prove the ledger extends this published checkpoint.", valueName: "FILE|SIZE"))
        var against: String?

        @Option(help: ArgumentHelp("With --against: also require this witness's cosignature (its vkey file or line; repeatable).", valueName: "VKEY"))
        var witness: [String] = []

        @Flag(help: "First delete the bounces and suppressions muster did not write (unsealed).")
        var dropUnsealed = false

        @OptionGroup var campaignOptions: CampaignOptions
        @OptionGroup var output: OutputOptions

        /// The JSON of `verify --against`: the report's keys and `against`.
        struct AgainstReport: Encodable {
            let report: VerifyReport
            let against: CampaignTransparency.Consistency

            enum CodingKeys: String, CodingKey { case against }

            func encode(to encoder: Encoder) throws {
                try report.encode(to: encoder)
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(against, forKey: .against)
            }
        }

        func run() throws {
            try reportingErrors {
                let context = try RunContext.make(campaignOptions.workspaceOptions)
                let campaign = try context.campaign(campaignOptions)
                guard let ledger = try Ledger.open(campaign.ledgerURL, create: false) else {
                    if against != nil { throw MusterError.failure("\(campaign.slug) has no ledger: it cannot extend any checkpoint") }
                    if output.json { return Console.json(VerifyReport.empty) }
                    Console.line("ok: 0 signatures (no ledger yet)")
                    return
                }
                guard witness.isEmpty || against != nil else { throw MusterError.usage("--witness goes with --against CHECKPOINT") }
                let witnesses = try witness.map { text -> NoteVerifierKey in
                    let line = FileManager.default.fileExists(atPath: text)
                        ? try String(contentsOfFile: text, encoding: .utf8) : text
                    do { return try NoteVerifierKey(parsing: line) } catch let error as TransparencyError {
                        throw MusterError.badInput("--witness \(text): \(error.description)")
                    }
                }
                if dropUnsealed {
                    let dropped = try ledger.dropUnsealedRows()
                    if !output.json {
                        Console.line("dropped \(dropped.suppressions) unsealed suppression\(dropped.suppressions == 1 ? "" : "s") and "
                                     + "\(dropped.bounces) unsealed bounce record\(dropped.bounces == 1 ? "" : "s")")
                    }
                }
                let report = try ledger.verify()
                var consistency: CampaignTransparency.Consistency?
                if let against {
                    let transparency = CampaignTransparency(campaign: campaign)
                    consistency = try transparency.consistency(of: transparency.checkpointNote(against).note, ledger: ledger, report: report,
                                                               witnesses: witnesses)
                }
                if output.json {
                    if let consistency { Console.json(AgainstReport(report: report, against: consistency)) } else { Console.json(report) }
                } else if report.ok {
                    let notes = [report.redacted > 0 ? "\(Number.grouped(report.redacted)) forgotten" : nil,
                                 report.withdrawn > 0 ? "\(Number.grouped(report.withdrawn)) withdrawn" : nil].compactMap { $0 }
                    let aside = notes.isEmpty ? "" : " (\(notes.joined(separator: ", ")))"
                    Console.line("ok: \(Number.grouped(report.count)) signatures\(aside), \(Number.grouped(report.entries)) entries")
                    Console.line("head \(report.head)")
                } else if let bad = report.firstBad {
                    Console.line("FAILED: \(bad.entry.map { "entry \($0): " } ?? "")\(bad.reason)")
                    if report.problems > 1 { Console.line("\(report.problems - 1) more problem\(report.problems == 2 ? "" : "s") after it") }
                    // Each table's unsealed rows, when the first problem is not already theirs.
                    if let unsealed = report.unsealed, unsealed.total > 0 {
                        for (count, table) in [(unsealed.suppressions, "suppressions"), (unsealed.bounces, "bounces")] where count > 0 {
                            if !bad.reason.contains("(table \(table))") {
                                Console.line("FAILED: \(count) row\(count == 1 ? "" : "s") of \(table) not written by muster (unsealed, ignored); "
                                             + "see `muster verify --drop-unsealed`")
                            }
                        }
                    }
                }
                if let consistency, !output.json {
                    if consistency.ok, let size = consistency.size, let now = consistency.treeSize {
                        let cosigned = consistency.witnesses.map { "; cosigned by \($0.joined(separator: ", "))" } ?? ""
                        Console.line("consistent with the checkpoint of \(Number.grouped(size)) entries: they are unchanged; the tree now has \(Number.grouped(now))\(cosigned)")
                    } else {
                        Console.line("FAILED: checkpoint \(against ?? ""): \(consistency.reason ?? "not consistent")")
                    }
                }
                if !report.ok || consistency?.ok == false { throw ExitCode.failure }
            }
        }
    }
}
