import ArgumentParser
import MusterKit

extension Muster {
    struct Unsubscribe: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop all further mail to an address.",
            discussion: """
                Appends an opt-out entry to the ledger (keyed by a fingerprint of the address, not the address itself). Works for signers and non-signers alike.

                With --reset-bounces, records no opt-out: lifts the address's suppression for a bounce (hard, repeated soft, or the relay's 5xx) and stops its earlier soft bounces from counting, once the mailbox works again. A complaint is not lifted.
                """)

        @Argument(help: "The email address that must not be mailed again.")
        var email: String

        @Flag(help: "Lift a bounce suppression of the address instead of unsubscribing it.")
        var resetBounces = false

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
                if resetBounces {
                    let lifted = try ledger.resetBounces(canonicalEmail: canonical, at: context.clock.now())
                    if output.json { return Console.json(Outcome(status: lifted ? "bounces_reset" : "not_suppressed", entry: nil)) }
                    return Console.line(lifted ? "bounces reset: that address can be mailed again" : "that address was not suppressed for a bounce; its soft bounces start again from zero")
                }
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
