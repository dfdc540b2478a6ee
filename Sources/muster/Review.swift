import ArgumentParser
import Foundation
import MusterKit

extension Muster {
    struct Review: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List, approve or reject the sign page's held submissions.",
            discussion: """
                A form sent over one of the campaign's web: limits (too many from one
                client or one email domain) is held: its sender saw the usual page, but
                no mail was sent and it is not counted. This lists the held forms
                grouped by cause (client or domain), bucket (a client's keyed hash or
                the domain) and hour, with counts and no addresses.

                CAUSE is 'all', 'client', 'domain', a group as listed
                (client:3f9a1c2b, domain:acme.example), or a group and one hour
                (client:3f9a1c2b@2026-12-03T04:00Z). Approved forms get their
                confirmation mail (sent by the running muster serve) and count once
                confirmed; rejected ones are erased with their personal data.

                Examples:
                  muster review
                  muster review --approve domain:acme.example
                  muster review --reject domain --all
                """)

        @OptionGroup var campaignOptions: CampaignOptions

        @Option(help: ArgumentHelp("Approve the held forms CAUSE names: their confirmation mail is sent.", valueName: "CAUSE"))
        var approve: String?

        @Option(help: ArgumentHelp("Reject the held forms CAUSE names: erased with their personal data.", valueName: "CAUSE"))
        var reject: String?

        @Flag(help: "Every campaign of the workspace, not just one.")
        var all = false

        @OptionGroup var output: OutputOptions

        struct Group: Encodable {
            let id: String
            let cause: String
            let bucket: String
            let window: String
            let count: Int
        }

        struct CampaignReview: Encodable {
            let campaign: String
            let held: Int
            let approved: Int?
            let rejected: Int?
            let groups: [Group]
        }

        struct Outcome: Encodable {
            let campaigns: [CampaignReview]
        }

        func validate() throws {
            if approve != nil && reject != nil { throw ValidationError("use --approve or --reject, not both") }
            for (option, value) in [("--approve", approve), ("--reject", reject)] {
                if let value, !Ledger.isHeldSelector(value) {
                    throw ValidationError("\(option) takes all, client, domain or a group as `muster review` lists it (client:3f9a1c2b), not '\(value)'")
                }
            }
            if all && campaignOptions.campaign != nil { throw ValidationError("use --all or -c, not both") }
        }

        func run() throws {
            try reportingErrors {
                let context = try RunContext.make(campaignOptions.workspaceOptions)
                let campaigns = all ? context.workspace.campaignSlugs().map { Campaign(workspace: context.workspace, slug: $0) }
                    : [try context.campaign(campaignOptions)]
                let now = context.clock.now()
                var reviews: [CampaignReview] = []
                for campaign in campaigns {
                    guard let ledger = try Ledger.open(campaign.ledgerURL, create: false) else {
                        reviews.append(CampaignReview(campaign: campaign.slug, held: 0, approved: approve.map { _ in 0 },
                                                      rejected: reject.map { _ in 0 }, groups: []))
                        continue
                    }
                    let approved = try approve.map { try ledger.approveHeld($0, at: now) }
                    let rejected = try reject.map { try ledger.rejectHeld($0, at: now) }
                    let groups = try ledger.heldGroups(at: now).map {
                        Group(id: $0.id, cause: $0.cause, bucket: $0.bucket, window: $0.window, count: $0.count)
                    }
                    reviews.append(CampaignReview(campaign: campaign.slug, held: groups.reduce(0) { $0 + $1.count },
                                                  approved: approved, rejected: rejected, groups: groups))
                }
                if output.json { return Console.json(Outcome(campaigns: reviews)) }
                for review in reviews { print(review) }
            }
        }

        func print(_ review: CampaignReview) {
            if let approved = review.approved {
                Console.line("\(review.campaign): approved \(Self.forms(approved)); their confirmation mail is queued")
            }
            if let rejected = review.rejected {
                Console.line("\(review.campaign): rejected \(Self.forms(rejected)); erased with their personal data")
            }
            guard !review.groups.isEmpty else {
                Console.line("\(review.campaign): no held forms")
                return
            }
            Console.line("\(review.campaign): \(Self.forms(review.held)) held (no mail sent, not counted)")
            let width = review.groups.map(\.id.count).max() ?? 0
            for group in review.groups {
                Console.line("  \(group.id.padding(toLength: width, withPad: " ", startingAt: 0))  \(group.window)  \(group.count)")
            }
            Console.line("Approve with `muster review --approve CAUSE`, reject with `--reject CAUSE`.")
        }

        static func forms(_ count: Int) -> String { count == 1 ? "1 form" : "\(count) forms" }
    }
}
