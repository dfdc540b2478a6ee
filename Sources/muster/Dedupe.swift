import ArgumentParser
import Foundation
import MusterKit

extension Muster {
    struct Dedupe: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List people who signed more than once; withdraw the later signatures.",
            discussion: """
                New signatures are checked against the mailbox rules as they come in
                (`ana+1@gmail.com` is `a.na@gmail.com` is `ana@googlemail.com`). Signatures
                recorded before those rules existed, or before a `dedupe:` change in
                muster.yaml, may still count one person twice. This command lists them:
                per group, the earliest signature (kept) and the later ones, with entry
                numbers, dates, sources and collectors — no addresses unless you pass
                --show-addresses.

                --withdraw appends one `withdrawal` entry per later signature, keeping the
                earliest: nothing is deleted, `muster verify` still passes, and the count
                drops by exactly the withdrawn signatures. A withdrawn signature is left out
                of reports, lists, exports and mail. Check the list first (or use
                --dry-run): a withdrawal cannot be undone.

                Examples:
                  muster dedupe
                  muster dedupe --withdraw --dry-run
                  muster dedupe --withdraw
                """)

        @Flag(help: "Append a withdrawal entry for each later signature of each group.")
        var withdraw = false

        @Flag(help: "Report what --withdraw would do; write nothing.")
        var dryRun = false

        @Flag(help: "Show each signature's email address (personal data: mind the screen).")
        var showAddresses = false

        @OptionGroup var campaignOptions: CampaignOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try reportingErrors {
                let (context, campaign, _) = try RunContext.loadCampaign(campaignOptions)
                guard let ledger = try Ledger.open(campaign, create: false) else {
                    let empty = DedupeSummary(groups: [], duplicates: 0, withdrawn: 0, withdrawnBefore: 0, count: 0, dryRun: dryRun)
                    if output.json { return Console.json(empty) }
                    return Console.line("no signatures yet (no ledger)")
                }
                let summary = try ledger.dedupe(withdraw: withdraw, commit: !dryRun, showAddresses: showAddresses,
                                                at: context.clock.now())
                if output.json { return Console.json(summary) }
                Console.out(Self.text(summary, withdraw: withdraw))
            }
        }

        static func text(_ summary: DedupeSummary, withdraw: Bool) -> String {
            var out = ""
            let later = summary.duplicates
            if summary.groups.isEmpty {
                out += "no duplicates: under the current dedupe rules every signature that counts is a different person\n"
            } else {
                let groups = summary.groups.count
                out += "\(Number.grouped(Int64(groups))) group\(groups == 1 ? "" : "s") of signatures that the dedupe rules count as one person "
                    + "(\(Number.grouped(Int64(later))) later signature\(later == 1 ? "" : "s")):\n"
                let width = summary.groups.flatMap { [$0.keep] + $0.later }.map { String($0.entry).count }.max() ?? 1
                for group in summary.groups {
                    out += "\n"
                    out += line("keep", group.keep, width: width)
                    for member in group.later { out += line(withdraw && !summary.dryRun ? "withdrawn" : "withdraw", member, width: width) }
                }
                out += "\n"
            }
            let previously = summary.withdrawnBefore > 0 ? " (\(Number.grouped(summary.withdrawnBefore)) withdrawn before)" : ""
            if withdraw && summary.dryRun {
                out += "dry run: would withdraw \(Number.grouped(Int64(later))); \(Number.grouped(summary.count)) signatures would count\(previously); nothing was written\n"
            } else if withdraw {
                out += "withdrew \(Number.grouped(Int64(summary.withdrawn))) (one withdrawal entry each); \(Number.grouped(summary.count)) signatures count\(previously)\n"
            } else {
                out += "\(Number.grouped(summary.count)) signatures count\(previously)"
                out += later > 0 ? "; `muster dedupe --withdraw` withdraws the \(Number.grouped(Int64(later))) later one\(later == 1 ? "" : "s")\n" : "\n"
            }
            return out
        }

        private static func line(_ label: String, _ member: DuplicateGroup.Member, width: Int) -> String {
            let number = String(member.entry)
            var text = "  " + label.padding(toLength: 10, withPad: " ", startingAt: 0) + "entry "
                + String(repeating: " ", count: max(0, width - number.count)) + number
                + "  \(member.signedAt.prefix(10))  \(member.source)"
            if let collector = member.collector { text += " (by \(collector))" }
            if let email = member.email { text += "  <\(email)>" }
            return text + "\n"
        }
    }
}
