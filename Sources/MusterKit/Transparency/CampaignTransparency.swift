import Foundation

/// A campaign's checkpoints, keys and proofs (docs/transparency.md).
///
/// - the public key: `campaigns/<slug>/checkpoint.vkey`, one line in the C2SP vkey form,
///   whose key name is the campaign's origin; safe to commit and publish;
/// - the private key: outside the workspace, by default
///   `$XDG_CONFIG_HOME/muster/keys/<origin>.key` (`~/.config/…`), mode 0600, or a file
///   named with `--key` or `MUSTER_CHECKPOINT_KEY`;
/// - checkpoints: `campaigns/<slug>/checkpoints/<size>.txt`, signed notes.
public struct CampaignTransparency: Sendable {
    public let campaign: Campaign
    public let environment: [String: String]

    public init(campaign: Campaign, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.campaign = campaign
        self.environment = environment
    }

    public var publicKeyURL: URL { campaign.folder.appendingPathComponent("checkpoint.vkey") }
    public var checkpointsURL: URL { campaign.folder.appendingPathComponent("checkpoints", isDirectory: true) }

    func display(_ url: URL) -> String { campaign.workspace.display(url) }

    // MARK: - Keys

    /// The campaign's published verifier key.
    public func publicKey() throws -> NoteVerifierKey {
        guard let text = try? String(contentsOf: publicKeyURL, encoding: .utf8) else {
            throw MusterError.failure("\(display(publicKeyURL)) does not exist: this campaign has no checkpoint key yet (run `muster checkpoint`)")
        }
        do {
            return try NoteVerifierKey(parsing: text)
        } catch let error as TransparencyError {
            throw MusterError.failure("\(display(publicKeyURL)): \(error.description)")
        }
    }

    /// The default origin: the sender's domain and the slug (`fairrates.example/fair-rates`).
    public func defaultOrigin(manifest: Manifest) -> String {
        if let sender = manifest.sender, let at = sender.lastIndex(of: "@") {
            let domain = sender[sender.index(after: at)...].prefix { $0 != ">" && $0 != " " }.lowercased()
            if !domain.isEmpty { return "\(domain)/\(campaign.slug)" }
        }
        return "\(campaign.slug).muster.invalid"
    }

    /// Where the private key of `name` is kept unless `--key` or MUSTER_CHECKPOINT_KEY says.
    public func defaultKeyURL(name: String) -> URL {
        Self.defaultKeyURL(name: name, environment: environment)
    }

    /// `$XDG_CONFIG_HOME/muster/keys/<name>.key` (`~/.config/…`): where a key named `name`
    /// is kept by default (a campaign's, or a witness's).
    public static func defaultKeyURL(name: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        let config = environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ((environment["HOME"] ?? NSHomeDirectory()) + "/.config")
        let file = String(name.map { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) ? $0 : "_" })
        return URL(fileURLWithPath: config).appendingPathComponent("muster/keys/\(file).key")
    }

    /// The signing key: read from `keyPath` (or MUSTER_CHECKPOINT_KEY, or the default
    /// place), or made there on the first checkpoint, when the campaign has no public key
    /// yet; the public key file is then written beside the manifest. `created` says so.
    public func signer(keyPath: String?, origin: String?, manifest: Manifest) throws -> (signer: NoteSigner, created: Bool) {
        let published = FileManager.default.fileExists(atPath: publicKeyURL.path) ? try publicKey() : nil
        if let origin, let published, origin != published.name {
            throw MusterError.usage("--origin \(origin) differs from the origin of this campaign's key, \(published.name) (\(display(publicKeyURL))); an origin never changes")
        }
        let name = published?.name ?? origin ?? defaultOrigin(manifest: manifest)
        do { try NoteVerifierKey.checkName(name) } catch let error as TransparencyError { throw MusterError.usage(error.description) }
        let explicit = keyPath ?? environment["MUSTER_CHECKPOINT_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        let keyURL = explicit.map { URL(fileURLWithPath: $0) } ?? defaultKeyURL(name: name)
        let workspaceRoot = Workspace.resolved(campaign.workspace.root).path
        let resolvedKey = Workspace.resolved(keyURL).path
        if resolvedKey.hasPrefix(workspaceRoot + "/") {
            throw MusterError.usage("the checkpoint key \(keyURL.path) is inside the workspace, where git, exports and backups could carry it; keep it outside (default: \(defaultKeyURL(name: name).path))")
        }
        if FileManager.default.fileExists(atPath: keyURL.path) {
            let signer: NoteSigner
            do {
                signer = try NoteSigner(parsing: try String(contentsOf: keyURL, encoding: .utf8))
            } catch let error as TransparencyError {
                throw MusterError.failure("\(keyURL.path): \(error.description)")
            } catch {
                throw MusterError.failure("cannot read \(keyURL.path): \(error.localizedDescription)")
            }
            if let published {
                guard signer.verifier == published else {
                    throw MusterError.failure("the key in \(keyURL.path) (\(signer.verifier.text)) is not the one this campaign publishes in \(display(publicKeyURL)); checkpoints must be signed with the published key")
                }
                return (signer, false)
            }
            guard signer.name == name else {
                throw MusterError.failure("the key in \(keyURL.path) is named \(signer.name), not \(name)")
            }
            try writePublicKey(signer.verifier)
            return (signer, true)
        }
        if let published {
            throw MusterError.failure("""
                the private key of \(published.name) is not at \(keyURL.path): this campaign's checkpoints are signed with the key \
                published in \(display(publicKeyURL)); give its file with --key or MUSTER_CHECKPOINT_KEY
                """)
        }
        let signer: NoteSigner
        do { signer = try NoteSigner.generate(name: name) } catch let error as TransparencyError { throw MusterError.usage(error.description) }
        try Self.writePrivateKey(signer, to: keyURL)
        try writePublicKey(signer.verifier)
        return (signer, true)
    }

    /// Writes a new private key file (mode 0600, its folder 0700 when made); refuses to
    /// replace an existing file.
    public static func writePrivateKey(_ signer: NoteSigner, to url: URL) throws {
        let folder = url.deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw MusterError.failure("cannot create \(folder.path): \(error.localizedDescription)")
        }
        let fd = Foundation.open(url.path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw MusterError.failure("cannot create \(url.path): \(String(cString: strerror(errno)))") }
        fchmod(fd, 0o600)
        do {
            try FileOutput.writeAll(fd, Array((signer.text + "\n").utf8), path: url.path)
            fsync(fd)
            close(fd)
        } catch {
            close(fd)
            unlink(url.path)
            throw error
        }
    }

    private func writePublicKey(_ key: NoteVerifierKey) throws {
        try FileWriter.writeAtomically(Data((key.text + "\n").utf8), to: publicKeyURL)
    }

    // MARK: - Checkpoints

    /// The checkpoint files, smallest size first.
    public func checkpointFiles() -> [(size: Int64, url: URL)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: checkpointsURL.path)) ?? []
        return names.compactMap { name -> (Int64, URL)? in
            guard name.hasSuffix(".txt"), let size = Int64(name.dropLast(4)), String(size) + ".txt" == name else { return nil }
            return (size, checkpointsURL.appendingPathComponent(name))
        }.sorted { $0.0 < $1.0 }
    }

    /// The note named by `reference`: a file, or the size of one of the campaign's
    /// checkpoints; nil reference: the latest one.
    public func checkpointNote(_ reference: String?) throws -> (note: String, url: URL) {
        let url: URL
        if let reference {
            if let size = Int64(reference), !FileManager.default.fileExists(atPath: reference) {
                url = checkpointsURL.appendingPathComponent("\(size).txt")
            } else {
                url = URL(fileURLWithPath: reference)
            }
        } else {
            guard let latest = checkpointFiles().last else {
                throw MusterError.failure("this campaign has no checkpoint yet (run `muster checkpoint`)")
            }
            url = latest.url
        }
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw MusterError.badInput("cannot read the checkpoint \(url.path)")
        }
        guard let note = String(data: data, encoding: .utf8) else { throw MusterError.badInput("\(url.path) is not UTF-8 text") }
        return (note, url)
    }

    /// What `makeCheckpoint` did.
    public struct Made: Sendable {
        public let checkpoint: Checkpoint
        public let note: String
        public let url: URL
        /// False when a checkpoint of this size already existed (and was kept).
        public let written: Bool
    }

    /// Signs the tree as it is now and writes `checkpoints/<size>.txt`. The ledger must
    /// verify first (muster never signs a tree it cannot vouch for). A checkpoint of the
    /// same size is kept when its root is the same, and refused otherwise.
    public func makeCheckpoint(ledger: Ledger, signer: NoteSigner, now: Date) throws -> Made {
        let report = try ledger.verify()
        guard report.ok else {
            let bad = report.firstBad.map { "\($0.entry.map { "entry \($0): " } ?? "")\($0.reason)" } ?? "it does not verify"
            throw MusterError.failure("the ledger does not verify (\(bad)); no checkpoint was signed")
        }
        let (size, root, signatures) = try ledger.withTree { tree, size in
            (size, try tree.root(size: size), try ledger.signatureCount(through: size))
        }
        guard size > 0 else { throw MusterError.failure("the ledger is empty: there is nothing to checkpoint yet") }
        let checkpoint = Checkpoint(origin: signer.name, size: size, root: root, signatures: signatures, time: Timestamp.format(now))
        let url = checkpointsURL.appendingPathComponent("\(size).txt")
        if let existing = try? String(contentsOf: url, encoding: .utf8) {
            let old = try? Checkpoint.verified(existing, key: signer.verifier)
            guard let old, old.root == root else {
                throw MusterError.failure("\(display(url)) already holds a checkpoint of size \(size) with another root hash or signature: the ledger's history differs from what was published; nothing was written")
            }
            return Made(checkpoint: old, note: existing, url: url, written: false)
        }
        let note = try signer.sign(checkpoint.body)
        do {
            try FileManager.default.createDirectory(at: checkpointsURL, withIntermediateDirectories: true)
        } catch {
            throw MusterError.failure("cannot create \(checkpointsURL.path): \(error.localizedDescription)")
        }
        try FileWriter.writeAtomically(Data(note.utf8), to: url)
        return Made(checkpoint: checkpoint, note: note, url: url, written: true)
    }

    // MARK: - Consistency

    /// What `verify --against` found.
    public struct Consistency: Sendable, Codable, Equatable {
        public var ok: Bool
        public var reason: String?
        /// The checkpoint's tree size, and the ledger's now.
        public var size: Int64?
        public var treeSize: Int64?
        /// Base64, as in checkpoints.
        public var root: String?
        public var proof: [String]?
        /// The witnesses whose cosignature was checked (their key names), when asked.
        public var witnesses: [String]?

        enum CodingKeys: String, CodingKey {
            case ok, reason, size
            case treeSize = "tree_size"
            case root, proof, witnesses
        }
    }

    /// Checks `note` (a checkpoint of this campaign) against the ledger: its signature by
    /// the published key, its origin, and an RFC 9162 consistency proof from its size to
    /// the ledger's tree now, whose root is computed from the verified entries.
    /// With `witnesses`, also that each of them cosigned it (docs/transparency.md, "Witnesses").
    public func consistency(of note: String, ledger: Ledger, report: VerifyReport, witnesses: [NoteVerifierKey] = []) throws -> Consistency {
        let key = try publicKey()
        let checkpoint: Checkpoint
        do {
            checkpoint = try Checkpoint.verified(note, key: key, origin: key.name)
        } catch let error as TransparencyError {
            return Consistency(ok: false, reason: "the checkpoint is not valid for this campaign: \(error.description)")
        }
        var result = Consistency(ok: false, size: checkpoint.size)
        if !witnesses.isEmpty {
            result.witnesses = witnesses.map(\.name)
            for witness in witnesses {
                do {
                    try SignedNote(parsing: note).verify(with: witness)
                } catch let error as TransparencyError {
                    result.reason = "the checkpoint is not cosigned by the witness \(witness.name): \(error.description)"
                    return result
                }
            }
        }
        guard report.ok else {
            result.reason = "the ledger does not verify, so no proof from it means anything: \(report.firstBad.map { "\($0.entry.map { "entry \($0): " } ?? "")\($0.reason)" } ?? "")"
            return result
        }
        return try ledger.withTree { tree, size in
            result.treeSize = size
            guard checkpoint.size >= 1 else {
                result.reason = "the checkpoint covers no entries"
                return result
            }
            guard checkpoint.size <= size else {
                result.reason = "the checkpoint covers \(checkpoint.size) entries but the ledger now has \(size): entries it covered were removed"
                return result
            }
            let root = try tree.root(size: size)
            let proof = try tree.consistencyProof(oldSize: checkpoint.size, newSize: size)
            result.root = Data(root).base64EncodedString()
            result.proof = proof.map { Data($0).base64EncodedString() }
            do {
                try Merkle.verifyConsistency(oldSize: checkpoint.size, newSize: size, oldRoot: checkpoint.root, newRoot: root, proof: proof)
            } catch let error as Merkle.ProofError {
                let was = Data(try tree.root(size: checkpoint.size)).base64EncodedString()
                result.reason = "the ledger's first \(checkpoint.size) entries are not the ones the checkpoint signed (their root is \(was), the checkpoint's is \(Data(checkpoint.root).base64EncodedString())): history was rewritten (\(error.description))"
                return result
            }
            if let signatures = checkpoint.signatures, signatures != (try ledger.signatureCount(through: checkpoint.size)) {
                result.reason = "the checkpoint states \(signatures) signatures, but its \(checkpoint.size) entries hold \(try ledger.signatureCount(through: checkpoint.size))"
                return result
            }
            result.ok = true
            return result
        }
    }

    /// A consistency proof between two of the campaign's checkpoints, as a file a third
    /// party checks with the reference verifier (docs/transparency.md).
    public func consistencyProofFile(from old: String, to new: String, ledger: Ledger) throws -> String {
        let key = try publicKey()
        let (older, newer): (Checkpoint, Checkpoint)
        do {
            older = try Checkpoint.verified(old, key: key, origin: key.name)
            newer = try Checkpoint.verified(new, key: key, origin: key.name)
        } catch let error as TransparencyError {
            throw MusterError.failure("a checkpoint is not valid for this campaign: \(error.description)")
        }
        guard older.size >= 1, older.size <= newer.size else {
            throw MusterError.usage("the proof runs from the older checkpoint (size \(older.size)) to a newer one (size \(newer.size))")
        }
        let proof: [Merkle.Hash] = try ledger.withTree { tree, size in
            guard newer.size <= size else { throw MusterError.failure("the ledger has \(size) entries, fewer than the newer checkpoint covers (\(newer.size))") }
            guard try tree.root(size: newer.size) == newer.root else {
                throw MusterError.failure("the ledger's first \(newer.size) entries do not have the root of the newer checkpoint: history was rewritten")
            }
            return try tree.consistencyProof(oldSize: older.size, newSize: newer.size)
        }
        let object: [String: Any] = ["format": "muster-consistency/1", "old": old, "new": new,
                                     "proof": proof.map { Data($0).base64EncodedString() }]
        return String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]), as: UTF8.self) + "\n"
    }
}

extension Ledger {
    /// The signatures that count among entries 1…`size`, as a checkpoint states them and
    /// a reader of the public log recounts them: the signature entries (forgotten ones
    /// included), less those that a withdrawal among the same entries takes out (each
    /// once). The ledger is verified before any checkpoint is signed, so every withdrawal
    /// counted here names an earlier signature.
    public func signatureCount(through size: Int64) throws -> Int64 {
        try withStorage(path: url.path) {
            let signatures = try database.scalarInt("SELECT count(*) FROM entries e WHERE e.kind = 'signature' AND +e.seq BETWEEN 1 AND ?", .int(size)) ?? 0
            let withdrawn = try database.scalarInt("""
                SELECT count(DISTINCT s.seq) FROM entries w JOIN entries s ON s.seq = json_extract(w.body, '$.withdraws')
                WHERE w.kind = 'withdrawal' AND w.seq BETWEEN 1 AND ?1 AND s.kind = 'signature' AND s.seq < w.seq
                  AND CASE WHEN json_valid(w.body) THEN json_type(w.body, '$.withdraws') = 'integer' ELSE 0 END
                """, .int(size)) ?? 0
            return signatures - withdrawn
        }
    }

    /// The newest chained signature entry, nil when there is none (inside a transaction).
    func newestSignature() throws -> Int64? {
        try database.scalarInt("SELECT max(e.seq) FROM entries e WHERE e.kind = 'signature' AND \(Self.chained("e"))")
    }

    /// The withdrawal among the chained entries that takes signature `seq` out of the
    /// count, and the signature it duplicates; nil when none does.
    public func withdrawal(of seq: Int64) throws -> (entry: Int64, duplicateOf: Int64)? {
        let statement = try database.prepare("""
            SELECT w.seq, json_extract(w.body, '$.duplicate_of') FROM entries w
            WHERE w.kind = 'withdrawal' AND \(Self.chained("w")) AND w.seq > ?1
              AND CASE WHEN json_valid(w.body) THEN json_type(w.body, '$.withdraws') = 'integer' ELSE 0 END
              AND json_extract(w.body, '$.withdraws') = ?1
            ORDER BY w.seq LIMIT 1
            """)
        try statement.bind([.int(seq)])
        defer { statement.reset() }
        guard try statement.step() else { return nil }
        return (statement.int64(0), statement.int64(1))
    }
}
