import ArgumentParser
import MusterKit

extension Muster {
    struct Unsubscribe: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop all further mail to an address.",
            discussion: "Appends an opt-out entry to the ledger (keyed by a fingerprint of the address, not the address itself). Works for signers and non-signers alike.")

        @Argument(help: "The email address that must not be mailed again.")
        var email: String

        @OptionGroup var campaignOptions: CampaignOptions
        @OptionGroup var output: OutputOptions

        struct Outcome: Encodable {
            let status: String
            let entry: Int64?
        }

        func run() throws {
            try reportingErrors {
                let (context, campaign, canonical) = try RunContext.forAddress(email, campaignOptions)
                guard let ledger = try Ledger.open(campaign.ledgerURL, create: true) else { return }
                switch try ledger.unsubscribe(canonicalEmail: canonical, at: context.clock.now()) {
                case .unsubscribed(let seq):
                    if output.json { return Console.json(Outcome(status: "unsubscribed", entry: seq)) }
                    Console.line("unsubscribed: no further mail will go to that address")
                case .alreadyUnsubscribed:
                    if output.json { return Console.json(Outcome(status: "already_unsubscribed", entry: nil)) }
                    Console.line("already unsubscribed")
                }
            }
        }
    }
}
