import ArgumentParser
import Foundation
import MusterKit

extension Muster {
    struct Merge: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fold in a ledger collected on another machine.",
            discussion: """
                Verifies the other ledger as `muster verify` does and refuses a tampered one,
                or one with anything beside its chain (exit 65, naming the problem). Then
                appends its signatures (only those its chain covers) in their original
                signed_at order, validated against this campaign's manifest, keeping their
                time, source and collector (--by fills in a collector where the other ledger
                has none). An address that already signed here, or another spelling of its
                mailbox under this workspace's dedupe rules, is a duplicate and this ledger
                keeps its own signature. Signers forgotten in the other ledger cannot be
                matched by address and are skipped (counted); signatures withdrawn there
                (`muster dedupe`) are not merged. Unsubscribed signers stay
                unsubscribed. Merging the same ledger twice changes nothing.
                """)

        @Argument(help: "The other ledger.sqlite.")
        var otherLedger: String

        @Option(name: .customLong("by"), help: ArgumentHelp("Collector recorded for signatures that name none.", valueName: "VOLUNTEER"))
        var collector: String?

        @Flag(help: "Report what would happen; write nothing.")
        var dryRun = false

        @OptionGroup var campaignOptions: CampaignOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try reportingErrors {
                let (context, campaign, manifest) = try RunContext.loadCampaign(campaignOptions)
                let summary = try Merger.run(other: URL(fileURLWithPath: otherLedger), campaign: campaign, manifest: manifest,
                                             collector: collector, dryRun: dryRun, clock: context.clock)
                if output.json { return Console.json(summary) }
                Console.line("verified \(otherLedger): \(Number.grouped(summary.otherCount)) signatures, head \(summary.otherHead)")
                Console.line("\(dryRun ? "dry run: would add" : "added") \(Number.grouped(Int64(summary.added))), duplicates \(Number.grouped(Int64(summary.duplicates)))"
                             + (summary.forgottenSkipped > 0 ? ", forgotten there (skipped) \(summary.forgottenSkipped)" : "")
                             + (summary.rejected == 0 ? "" : ", refused by this manifest \(summary.rejected)"))
                for line in summary.rejectedEntries.prefix(10) { Console.line("  \(line)") }
                if summary.unsubscribed > 0 { Console.line("unsubscribed here too: \(summary.unsubscribed)") }
                Console.line("\(Number.grouped(summary.count)) of \(Number.grouped(Int64(manifest.goal))) signatures\(dryRun ? " after a real merge" : "")")
            }
        }
    }
}
