import ArgumentParser
import Foundation
import MusterKit

extension Muster {
    struct Checkpoint: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign the ledger's Merkle tree: a checkpoint anyone can check the count against.",
            discussion: """
                Verifies the ledger, then signs its origin, tree size, root hash, signature
                count and time (a C2SP signed note, Ed25519) into
                campaigns/<slug>/checkpoints/<size>.txt and prints it. Publish it.

                The first checkpoint makes the campaign's key: the public half goes to
                campaigns/<slug>/checkpoint.vkey (commit and publish it), the private half
                to ~/.config/muster/keys/<origin>.key (mode 0600), never into the
                workspace. --key FILE or MUSTER_CHECKPOINT_KEY names another place.
                The origin (default: the sender's domain and the slug) is fixed then.

                --proof-from OLD writes a consistency proof from checkpoint OLD (a file or a
                size) to the new one, for scripts/muster_verify.py. See docs/transparency.md.
                """)

        @Option(help: ArgumentHelp("The private key file (default: ~/.config/muster/keys/<origin>.key).", valueName: "FILE"))
        var key: String?

        @Option(help: ArgumentHelp("The origin line, on the first checkpoint only (e.g. fairrates.example/fair-rates).", valueName: "ORIGIN"))
        var origin: String?

        @Option(name: .customLong("proof-from"), help: ArgumentHelp("Also write a consistency proof from this earlier checkpoint (file or size).", valueName: "OLD"))
        var proofFrom: String?

        @Option(help: ArgumentHelp("Where to write the consistency proof (default: stdout after the checkpoint).", valueName: "FILE"))
        var out: String?

        @OptionGroup var campaignOptions: CampaignOptions
        @OptionGroup var output: OutputOptions

        struct Summary: Encodable {
            let origin: String
            let size: Int64
            let root: String
            let signatures: Int64?
            let file: String
            let written: Bool
            let note: String
        }

        func run() throws {
            try reportingErrors {
                let (context, campaign, manifest) = try RunContext.loadCampaign(campaignOptions)
                if let out { try context.workspace.checkOutputTarget(out) }
                guard let ledger = try Ledger.open(campaign.ledgerURL, create: false) else {
                    throw MusterError.failure("\(campaign.slug) has no ledger yet: there is nothing to checkpoint")
                }
                let transparency = CampaignTransparency(campaign: campaign)
                let old = try proofFrom.map { try transparency.checkpointNote($0).note }
                let (signer, created) = try transparency.signer(keyPath: key, origin: origin, manifest: manifest)
                if created {
                    Console.error("made the checkpoint key \(signer.name): public key in \(context.workspace.display(transparency.publicKeyURL)) (commit and publish it)")
                }
                let made = try transparency.makeCheckpoint(ledger: ledger, signer: signer, now: context.clock.now())
                let file = context.workspace.display(made.url)
                if output.json {
                    Console.json(Summary(origin: made.checkpoint.origin, size: made.checkpoint.size,
                                         root: Data(made.checkpoint.root).base64EncodedString(),
                                         signatures: made.checkpoint.signatures, file: file, written: made.written, note: made.note))
                } else {
                    Console.out(made.note)
                    Console.error(made.written ? "wrote \(file)" : "\(file) already held this checkpoint; kept it")
                }
                if let old {
                    let proof = try transparency.consistencyProofFile(from: old, to: made.note, ledger: ledger)
                    if let out {
                        try FileWriter.writeAtomically(Data(proof.utf8), to: URL(fileURLWithPath: out))
                        Console.error("wrote the consistency proof to \(out)")
                    } else if !output.json {
                        Console.out(proof)
                    }
                }
            }
        }
    }
}
