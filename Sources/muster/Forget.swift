import ArgumentParser
import MusterKit

extension Muster {
    struct Forget: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Erase a signer's personal data; the signature still counts.",
            discussion: """
                Deletes the signer's name, email, comment, personal fields and salt, and
                appends a redaction entry, so `muster verify` still passes with the count
                unchanged.
                What remains: the signing time, source, collector, non-personal fields (such as
                a region), consents, and a keyed fingerprint of the address, so the same
                address signing again is still a duplicate. (Another spelling of the same
                mailbox, such as a +tag, is not: its mailbox key goes with the address.)
                """)

        @Argument(help: "The email address to forget.")
        var email: String

        @OptionGroup var campaignOptions: CampaignOptions
        @OptionGroup var output: OutputOptions

        struct Outcome: Encodable {
            let status: String
            let entry: Int64?
            let redaction: Int64?
        }

        func run() throws {
            try reportingErrors {
                let (context, campaign, canonical) = try RunContext.forAddress(email, campaignOptions)
                guard let ledger = try Ledger.open(campaign.ledgerURL, create: false) else {
                    throw MusterError.failure("no signature from that address in \(campaign.slug) (its ledger is empty)")
                }
                switch try ledger.forget(canonicalEmail: canonical, at: context.clock.now()) {
                case .forgotten(let seq, let redaction):
                    if output.json { return Console.json(Outcome(status: "forgotten", entry: seq, redaction: redaction)) }
                    Console.line("forgotten: the personal data of signature \(seq) is erased; it still counts")
                case .alreadyForgotten(let seq):
                    if output.json { return Console.json(Outcome(status: "already_forgotten", entry: seq, redaction: nil)) }
                    Console.line("already forgotten: signature \(seq) holds no personal data")
                case .notFound:
                    if output.json {
                        Console.json(Outcome(status: "not_found", entry: nil, redaction: nil))
                        throw ExitCode.failure
                    }
                    throw MusterError.failure("no signature from that address in \(campaign.slug)")
                }
            }
        }
    }
}
