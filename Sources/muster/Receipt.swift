import ArgumentParser
import Foundation
import MusterKit

extension Muster {
    struct Receipt: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Give a signer the proof that their signature is in a published count.",
            discussion: """
                Writes the signer's receipt (JSON): their ledger entry, the salt and personal
                data its hash commits to (their own data only), an inclusion proof against
                the latest checkpoint (or --checkpoint FILE|SIZE), that checkpoint and the
                campaign's public key. Anyone holding it can check it offline with
                scripts/muster_verify.py receipt FILE, without muster and without seeing
                anyone else's data. --out files are written with mode 0600.
                """)

        @Argument(help: "The signer's email address.")
        var email: String

        @Option(help: ArgumentHelp("Prove against this checkpoint: a file, or the size of one of the campaign's.", valueName: "FILE|SIZE"))
        var checkpoint: String?

        @Option(help: ArgumentHelp("Write the receipt to FILE (mode 0600) instead of stdout.", valueName: "FILE"))
        var out: String?

        @OptionGroup var campaignOptions: CampaignOptions
        @OptionGroup var output: OutputOptions

        struct Summary: Encodable {
            let entry: Int64
            let treeSize: Int64
            let out: String?

            enum CodingKeys: String, CodingKey {
                case entry
                case treeSize = "tree_size"
                case out
            }
        }

        func run() throws {
            try reportingErrors {
                let (context, campaign, canonicalEmail) = try RunContext.forAddress(email, campaignOptions)
                if let out { try context.workspace.checkOutputTarget(out) }
                guard let ledger = try Ledger.open(campaign.ledgerURL, create: false) else {
                    throw MusterError.failure("no signature from that address in \(campaign.slug) (it has no ledger yet)")
                }
                let receipt = try CampaignTransparency(campaign: campaign).receipt(ledger: ledger, canonicalEmail: canonicalEmail, note: checkpoint)
                let text = try receipt.encoded()
                guard let out else { return Console.out(text) }
                let file = try AtomicFile(URL(fileURLWithPath: out), permissions: 0o600)
                do {
                    try FileHandle(fileDescriptor: file.descriptor, closeOnDealloc: false).write(contentsOf: Data(text.utf8))
                    try file.commit()
                } catch {
                    file.discard()
                    throw MusterError.failure("cannot write \(out): \(error.localizedDescription)")
                }
                if output.json {
                    Console.json(Summary(entry: receipt.entry.seq, treeSize: receipt.treeSize, out: out))
                } else {
                    Console.line("wrote \(out): entry \(receipt.entry.seq) proven against the checkpoint of \(receipt.treeSize) entries")
                }
            }
        }
    }
}
