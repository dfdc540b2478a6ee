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
        guard found.salt != nil, found.personal != nil else {
            throw ReceiptIssuer.forgotten(found.entry.seq)
        }
        if let withdrawal = try ledger.snapshot({ try ledger.withdrawal(of: found.entry.seq) }) {
            throw MusterError.failure("""
                the signature of that address (entry \(found.entry.seq)) was withdrawn by entry \(withdrawal.entry) as a duplicate of \
                entry \(withdrawal.duplicateOf) (`muster dedupe`): it is not in the count, so it gets no receipt; the receipt of the \
                signature kept is that person's
                """)
        }
        return try ReceiptIssuer(transparency: self, ledger: ledger, note: reference).receipt(seq: found.entry.seq)
    }
}

/// Issues receipts against one checkpoint, checked once: its signature by the campaign's
/// key and its root against the ledger. `muster receipt` issues one; a blast whose
/// template says `receipt: attach` issues one per signer, from several threads (the
/// issuer reads on its own connection, one receipt at a time).
public final class ReceiptIssuer: @unchecked Sendable {
    // `ledger` is only used under `lock`; the rest is immutable.
    let ledger: Ledger
    let key: NoteVerifierKey
    /// The signed note and where it was read.
    public let note: String
    public let url: URL
    public let checkpoint: Checkpoint
    let display: String
    private let lock = NSLock()

    /// Checks the checkpoint `reference` (a file or a size; nil: the latest) of the
    /// campaign; throws when there is none, it is not the campaign's, or the ledger no
    /// longer has its tree.
    public init(transparency: CampaignTransparency, ledger: Ledger, note reference: String?) throws {
        self.ledger = ledger
        key = try transparency.publicKey()
        (note, url) = try transparency.checkpointNote(reference)
        display = transparency.display(url)
        do {
            checkpoint = try Checkpoint.verified(note, key: key, origin: key.name)
        } catch let error as TransparencyError {
            throw MusterError.failure("\(display) is not a valid checkpoint of this campaign: \(error.description)")
        }
        let (checkpoint, display) = (checkpoint, display)
        try ledger.withTree { tree, size in
            guard checkpoint.size <= size, try tree.root(size: checkpoint.size) == checkpoint.root else {
                throw MusterError.failure("the ledger no longer has the tree the checkpoint \(display) signed: run `muster verify --against \(checkpoint.size)`")
            }
        }
    }

    /// The checkpoint in a few words, for a message: `412 entries, root 8y1SLNr2MoRyxzSR`
    /// (the root's first 16 base64 characters).
    public var shortForm: String {
        "\(Number.grouped(checkpoint.size)) entries, root \(Data(checkpoint.root).base64EncodedString().prefix(16))"
    }

    static func forgotten(_ seq: Int64) -> MusterError {
        MusterError.failure("the signature of that address (entry \(seq)) was forgotten: without its personal data and salt no receipt can tie it to the signer; receipts issued before still verify")
    }

    /// The receipt of the signature entry `seq`: its entry, salt and personal data, and an
    /// inclusion proof against the checkpoint.
    public func receipt(seq: Int64) throws -> Receipt {
        try lock.withLock {
            guard checkpoint.size >= seq else {
                throw MusterError.failure("the checkpoint \(display) covers entries 1–\(checkpoint.size), not this signature (entry \(seq)); run `muster checkpoint` first")
            }
            let (entry, salt, data, proof) = try ledger.withTree { tree, _ -> (PublicEntry, [UInt8]?, String?, [Merkle.Hash]) in
                let entry = try ledger.publicEntry(seq: seq)
                let personal = try ledger.personal(seq: seq)
                return (entry, personal?.salt, personal?.data, try tree.inclusionProof(index: seq - 1, size: checkpoint.size))
            }
            guard entry.kind == EntryKind.signature.rawValue else {
                throw MusterError.failure("entry \(seq) is a \(entry.kind), not a signature: it has no receipt")
            }
            guard let salt, let data else { throw Self.forgotten(seq) }
            return Receipt(entry: .init(seq: seq, kind: entry.kind, at: entry.at, fingerprint: entry.fingerprint, body: entry.body,
                                        personalHash: entry.personalHash, prev: entry.prev, hash: entry.hash),
                           personal: .init(salt: Hex.encode(salt), data: data),
                           leafIndex: seq - 1, treeSize: checkpoint.size,
                           inclusionProof: proof.map { Data($0).base64EncodedString() },
                           checkpoint: note, publicKey: key.text)
        }
    }
}
