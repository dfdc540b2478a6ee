import ArgumentParser
import Foundation
import MusterKit

extension Muster {
    struct Witness: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cosign another collective's checkpoint, as a witness.",
            discussion: """
                A witness is a second organisation that adds its own signature to a
                collective's published checkpoint, so the collective cannot show different
                checkpoints to different people. It needs no workspace: only the
                checkpoint and the collective's public key (checkpoint.vkey). Anyone then
                checks both signatures with `muster verify --against NOTE --witness
                WITNESS.vkey` or scripts/muster_verify.py --witness. See
                docs/transparency.md.
                """,
            subcommands: [Key.self, Sign.self])
    }
}

extension Muster.Witness {
    struct Key: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a witness's Ed25519 key.",
            discussion: """
                Writes the private key to --out FILE (default
                ~/.config/muster/keys/<name>.key, mode 0600; an existing file is never
                overwritten) and prints the public key (C2SP vkey) to publish.
                """)

        @Argument(help: "The witness's name, without spaces or '+' (e.g. witness.example/muster).")
        var name: String

        @Option(help: ArgumentHelp("Where to write the private key (mode 0600).", valueName: "FILE"))
        var out: String?

        @OptionGroup var output: OutputOptions

        struct Summary: Encodable {
            let name: String
            let vkey: String
            let key_file: String
        }

        func run() throws {
            try reportingErrors {
                let signer: NoteSigner
                do { signer = try NoteSigner.generate(name: name) } catch let error as TransparencyError { throw MusterError.usage(error.description) }
                let url = out.map { URL(fileURLWithPath: $0) } ?? CampaignTransparency.defaultKeyURL(name: name)
                try CampaignTransparency.writePrivateKey(signer, to: url)
                if output.json { return Console.json(Summary(name: signer.name, vkey: signer.verifier.text, key_file: url.path)) }
                Console.out(signer.verifier.text + "\n")
                Console.error("wrote the private key to \(url.path); publish the public key above")
            }
        }
    }

    struct Sign: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a witness's signature to a checkpoint.",
            discussion: """
                Checks NOTE's signature with the collective's public key (--vkey) and that
                the checkpoint is for that key's origin, then adds a signature line by the
                witness's key and writes the note to stdout, or to --out FILE. Before
                cosigning a newer checkpoint of the same collective, check that it extends
                the one you cosigned last (scripts/muster_verify.py consistency).
                """)

        @Argument(help: "The checkpoint (a signed note file).")
        var note: String

        @Option(help: ArgumentHelp("The witness's private key file.", valueName: "FILE"))
        var key: String

        @Option(help: ArgumentHelp("The collective's public key: its checkpoint.vkey file, or that line.", valueName: "VKEY"))
        var vkey: String

        @Option(help: ArgumentHelp("Write the cosigned note to FILE instead of stdout.", valueName: "FILE"))
        var out: String?

        func run() throws {
            try reportingErrors {
                func read(_ path: String, _ what: String) throws -> String {
                    guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
                        throw MusterError.badInput("cannot read \(what) \(path)")
                    }
                    return text
                }
                let text = try read(note, "the checkpoint")
                let collective: NoteVerifierKey
                let signer: NoteSigner
                do {
                    collective = try NoteVerifierKey(parsing: FileManager.default.fileExists(atPath: vkey) ? try read(vkey, "the public key") : vkey)
                } catch let error as TransparencyError {
                    throw MusterError.badInput("--vkey \(vkey): \(error.description)")
                }
                do {
                    signer = try NoteSigner(parsing: try read(key, "the key"))
                } catch let error as TransparencyError {
                    throw MusterError.badInput("\(key): \(error.description)")
                }
                let cosigned: String
                do {
                    _ = try Checkpoint.verified(text, key: collective, origin: collective.name)
                    cosigned = try signer.cosign(text)
                } catch let error as TransparencyError {
                    throw MusterError.failure("\(note) is not a checkpoint of \(collective.name): \(error.description); nothing was signed")
                }
                guard let out else { return Console.out(cosigned) }
                try FileWriter.writeAtomically(Data(cosigned.utf8), to: URL(fileURLWithPath: out))
                Console.error("wrote \(out), cosigned by \(signer.name)")
            }
        }
    }
}
