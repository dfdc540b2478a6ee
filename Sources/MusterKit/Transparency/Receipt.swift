import Foundation

/// A signer's receipt (docs/transparency.md, "Receipts"): their entry, the salt and
/// personal data that its `personal_hash` commits to, and an inclusion proof of the entry
/// against a signed checkpoint, with the campaign's public key. JSON, checkable offline
/// with scripts/muster_verify.py.
public struct Receipt: Sendable, Codable, Equatable {
    public struct Entry: Sendable, Codable, Equatable {
        public var seq: Int64
        public var kind: String
        public var at: String
        public var fingerprint: String?
        public var body: String
        public var personalHash: String?
        public var prev: String
        public var hash: String

        enum CodingKeys: String, CodingKey {
            case seq, kind, at, fingerprint, body
            case personalHash = "personal_hash"
            case prev, hash
        }
    }

    public struct Personal: Sendable, Codable, Equatable {
        /// The 16-byte salt, hex.
        public var salt: String
        /// The canonical JSON of the personal data, as hashed.
        public var data: String
    }

    public var format = "muster-receipt/1"
    public var entry: Entry
    public var personal: Personal
    public var leafIndex: Int64
    public var treeSize: Int64
    /// Base64 hashes, leaf side first (RFC 9162 §2.1.3.1 order).
    public var inclusionProof: [String]
    /// The signed checkpoint note.
    public var checkpoint: String
    /// The campaign's verifier key (C2SP vkey).
    public var publicKey: String

    enum CodingKeys: String, CodingKey {
        case format, entry, personal
        case leafIndex = "leaf_index"
        case treeSize = "tree_size"
        case inclusionProof = "inclusion_proof"
        case checkpoint
        case publicKey = "public_key"
    }

    /// Pretty JSON with sorted keys.
    public func encoded() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self) + "\n"
    }
}

extension CampaignTransparency {
    /// The receipt of the signer of `canonicalEmail` against the checkpoint `note` (the
    /// latest when nil): checks the note's signature and that the ledger still has its
    /// root, so a receipt is never issued against a checkpoint the ledger has left.
    public func receipt(ledger: Ledger, canonicalEmail: String, note reference: String?) throws -> Receipt {
        guard let found = try ledger.signatureForReceipt(canonicalEmail: canonicalEmail) else {
            throw MusterError.failure("no signature from that address in \(campaign.slug)")
        }
        guard let salt = found.salt, let data = found.personal else {
            throw MusterError.failure("the signature of that address (entry \(found.entry.seq)) was forgotten: without its personal data and salt no receipt can tie it to the signer; receipts issued before still verify")
        }
        let key = try publicKey()
        let (note, url) = try checkpointNote(reference)
        let checkpoint: Checkpoint
        do {
            checkpoint = try Checkpoint.verified(note, key: key, origin: key.name)
        } catch let error as TransparencyError {
            throw MusterError.failure("\(display(url)) is not a valid checkpoint of this campaign: \(error.description)")
        }
        let seq = found.entry.seq
        guard checkpoint.size >= seq else {
            throw MusterError.failure("the checkpoint \(display(url)) covers entries 1–\(checkpoint.size), not this signature (entry \(seq)); run `muster checkpoint` first")
        }
        let proof: [Merkle.Hash] = try ledger.withTree { tree, size in
            guard checkpoint.size <= size, try tree.root(size: checkpoint.size) == checkpoint.root else {
                throw MusterError.failure("the ledger no longer has the tree the checkpoint \(display(url)) signed: run `muster verify --against \(checkpoint.size)`")
            }
            return try tree.inclusionProof(index: seq - 1, size: checkpoint.size)
        }
        let entry = found.entry
        return Receipt(entry: .init(seq: seq, kind: entry.kind, at: entry.at, fingerprint: entry.fingerprint, body: entry.body,
                                    personalHash: entry.personalHash, prev: entry.prev, hash: entry.hash),
                       personal: .init(salt: Hex.encode(salt), data: data),
                       leafIndex: seq - 1, treeSize: checkpoint.size,
                       inclusionProof: proof.map { Data($0).base64EncodedString() },
                       checkpoint: note, publicKey: key.text)
    }
}
