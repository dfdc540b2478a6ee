import Crypto
import Foundation
import Testing
@testable import MusterKit

/// RFC 9162 §2.1 written out as the RFC states it, recursively, over a list of leaf
/// data: the reference muster's incremental tree and proofs are held to. MTH is memoized
/// by range (the data never changes), which keeps 2,048 sizes quick in a debug build.
private final class Reference {
    private var memo: [Int: [UInt8]] = [:]

    static func k(_ n: Int) -> Int {
        var k = 1
        while k * 2 < n { k *= 2 }
        return k
    }

    func mth(_ d: ArraySlice<[UInt8]>) -> [UInt8] {
        let key = d.startIndex << 20 | d.count
        if let known = memo[key] { return known }
        let hash: [UInt8]
        switch d.count {
        case 0: hash = Array(SHA256.hash(data: [UInt8]()))
        case 1: hash = Array(SHA256.hash(data: [0] + d.first!))
        default:
            let k = Self.k(d.count)
            hash = Array(SHA256.hash(data: [1] + mth(d.prefix(k)) + mth(d.dropFirst(k))))
        }
        memo[key] = hash
        return hash
    }

    func path(_ m: Int, _ d: ArraySlice<[UInt8]>) -> [[UInt8]] {
        guard d.count > 1 else { return [] }
        let k = Self.k(d.count)
        return m < k ? path(m, d.prefix(k)) + [mth(d.dropFirst(k))] : path(m - k, d.dropFirst(k)) + [mth(d.prefix(k))]
    }

    func subproof(_ m: Int, _ d: ArraySlice<[UInt8]>, _ b: Bool) -> [[UInt8]] {
        if m == d.count { return b ? [] : [mth(d)] }
        let k = Self.k(d.count)
        return m <= k ? subproof(m, d.prefix(k), b) + [mth(d.dropFirst(k))] : subproof(m - k, d.dropFirst(k), false) + [mth(d.prefix(k))]
    }

    func proof(_ m: Int, _ d: [[UInt8]]) -> [[UInt8]] { m == d.count ? [] : subproof(m, d[...], true) }
}

@Suite struct MerkleTests {
    static func data(_ count: Int) -> [[UInt8]] { (0..<count).map { Array("leaf \($0)".utf8) } }

    @Test func rootsAndProofsMatchTheRFCAtEverySizeTo2048() throws {
        let data = Self.data(2048)
        let reference = Reference()
        var tree = MemoryMerkleTree()
        var frontier = MerkleFrontier()
        var roots: [[UInt8]] = [Merkle.emptyRoot]
        var generator = SystemRandomNumberGenerator()
        for size in 1...2048 {
            let leaf = Merkle.leafHash(data[size - 1])
            tree.append(leafHash: leaf)
            frontier.append(leaf: leaf) { _, _, _ in }
            let d = data[0..<size]
            let root = reference.mth(d)
            roots.append(root)
            #expect(try tree.root(size: Int64(size)) == root, "root at \(size)")
            #expect(frontier.root == root, "frontier root at \(size)")
            // Every leaf and every older size up to 64; else the ends and a random sample,
            // more of them at powers of two and one past them.
            let edge = size & (size - 1) == 0 || (size - 1) & (size - 2) == 0
            let samples = size <= 64 ? nil : (edge ? 8 : 2)
            let indexes = samples.map { count in [0, size - 1] + (0..<count).map { _ in Int.random(in: 0..<size, using: &generator) } } ?? Array(0..<size)
            for m in indexes {
                let proof = try tree.inclusionProof(index: Int64(m), size: Int64(size))
                #expect(proof == reference.path(m, d), "inclusion \(m) of \(size)")
                try Merkle.verifyInclusion(index: Int64(m), size: Int64(size), leafHash: Merkle.leafHash(data[m]), proof: proof, root: root)
            }
            let olds = samples.map { count in [1, size - 1, size] + (0..<count).map { _ in Int.random(in: 1...size, using: &generator) } } ?? Array(1...size)
            for m in olds {
                let proof = try tree.consistencyProof(oldSize: Int64(m), newSize: Int64(size))
                #expect(proof == reference.proof(m, Array(d)), "consistency \(m) → \(size)")
                try Merkle.verifyConsistency(oldSize: Int64(m), newSize: Int64(size), oldRoot: roots[m], newRoot: root, proof: proof)
            }
        }
    }

    @Test func storagePositionsAreTheOrderSubtreesComplete() {
        var frontier = MerkleFrontier()
        var next: Int64 = 1
        for _ in 0..<5000 {
            frontier.append(leaf: Merkle.leafHash([1])) { level, index, _ in
                guard level >= Merkle.storedLevel else { return }
                #expect(Merkle.position(level: level, index: index) == next)
                next += 1
            }
            #expect(Merkle.storedNodeCount(size: frontier.size) == next - 1)
        }
    }

    @Test func tamperedProofsAreRefusedWithAReason() throws {
        let data = Self.data(37)
        let tree = MemoryMerkleTree(leafHashes: data.map { Merkle.leafHash($0) })
        let root = try tree.root(size: 37)
        let proof = try tree.inclusionProof(index: 12, size: 37)
        let leaf = Merkle.leafHash(data[12])
        func refused(_ body: () throws -> Void) -> String? {
            do { try body() } catch let error as Merkle.ProofError { return error.description } catch { return "\(error)" }
            return nil
        }
        var flipped = proof
        flipped[1][0] ^= 1
        #expect(refused { try Merkle.verifyInclusion(index: 12, size: 37, leafHash: leaf, proof: flipped, root: root) }?.contains("does not lead to the root") == true)
        #expect(refused { try Merkle.verifyInclusion(index: 13, size: 37, leafHash: leaf, proof: proof, root: root) } != nil, "swapped leaf position")
        #expect(refused { try Merkle.verifyInclusion(index: 12, size: 37, leafHash: Merkle.leafHash(data[13]), proof: proof, root: root) } != nil, "swapped leaf")
        // A size is bound by the signed checkpoint, not by the proof: a proof of the same
        // shape verifies under another size, a different shape does not.
        let last = try tree.inclusionProof(index: 36, size: 37)
        #expect(refused { try Merkle.verifyInclusion(index: 36, size: 38, leafHash: Merkle.leafHash(data[36]), proof: last, root: root) } != nil, "wrong size")
        #expect(refused { try Merkle.verifyInclusion(index: 12, size: 37, leafHash: leaf, proof: proof.dropLast(), root: root) }?.contains("shorter") == true)
        #expect(refused { try Merkle.verifyInclusion(index: 12, size: 37, leafHash: leaf, proof: proof + [leaf], root: root) }?.contains("longer") == true)
        #expect(refused { try Merkle.verifyInclusion(index: 40, size: 37, leafHash: leaf, proof: proof, root: root) }?.contains("not inside") == true)

        let old = try tree.root(size: 20)
        let consistency = try tree.consistencyProof(oldSize: 20, newSize: 37)
        try Merkle.verifyConsistency(oldSize: 20, newSize: 37, oldRoot: old, newRoot: root, proof: consistency)
        var bad = consistency
        bad[0][5] ^= 0x80
        #expect(refused { try Merkle.verifyConsistency(oldSize: 20, newSize: 37, oldRoot: old, newRoot: root, proof: bad) } != nil)
        #expect(refused { try Merkle.verifyConsistency(oldSize: 21, newSize: 37, oldRoot: old, newRoot: root, proof: consistency) } != nil, "wrong old size")
        #expect(refused { try Merkle.verifyConsistency(oldSize: 20, newSize: 16, oldRoot: old, newRoot: root, proof: consistency) } != nil, "wrong new size")
        #expect(refused { try Merkle.verifyConsistency(oldSize: 20, newSize: 37, oldRoot: root, newRoot: root, proof: consistency) }?.contains("old root") == true)
        #expect(refused { try Merkle.verifyConsistency(oldSize: 38, newSize: 37, oldRoot: old, newRoot: root, proof: consistency) }?.contains("removed") == true)
    }

    // MARK: - Notes and checkpoints

    static func signedCheckpoint(origin: String = "fairrates.example/fair-rates", signer: NoteSigner? = nil) throws -> (String, NoteSigner) {
        let signer = try signer ?? NoteSigner.generate(name: origin)
        let checkpoint = Checkpoint(origin: origin, size: 12, root: Array(repeating: 7, count: 32), signatures: 10, time: "2026-11-20T09:00:00.000Z")
        return (try signer.sign(checkpoint.body), signer)
    }

    @Test func aCheckpointRoundTripsAndItsKeyIDFollowsTheSpec() throws {
        let (note, signer) = try Self.signedCheckpoint()
        let key = try NoteVerifierKey(parsing: signer.verifier.text)
        #expect(key == signer.verifier)
        let checkpoint = try Checkpoint.verified(note, key: key, origin: "fairrates.example/fair-rates")
        #expect(checkpoint.size == 12 && checkpoint.signatures == 10 && checkpoint.time == "2026-11-20T09:00:00.000Z")
        #expect(note.hasPrefix("fairrates.example/fair-rates\n12\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\nsignatures 10\ntime 2026-11-20T09:00:00.000Z\n\n\u{2014} fairrates.example/fair-rates "))
        // Key ID: SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key)[0..<4], computed here independently.
        let digest = Array(SHA256.hash(data: Array("fairrates.example/fair-rates".utf8) + [0x0A, 0x01] + key.publicKey))
        #expect(key.text.contains("+" + digest.prefix(4).map { String(format: "%02x", $0) }.joined() + "+"))
        let reparsed = try NoteSigner(parsing: signer.text)
        #expect(reparsed.verifier == signer.verifier)
    }

    @Test func badCheckpointsAreRefusedWithAReason() throws {
        let (note, signer) = try Self.signedCheckpoint()
        let key = signer.verifier
        func reason(_ text: String, key: NoteVerifierKey, origin: String? = "fairrates.example/fair-rates") -> String? {
            do { _ = try Checkpoint.verified(text, key: key, origin: origin) } catch let error as TransparencyError { return error.description } catch { return "\(error)" }
            return nil
        }
        #expect(reason(note, key: key) == nil)
        #expect(reason(note.replacingOccurrences(of: "\n12\n", with: "\n13\n"), key: key)?.contains("does not verify") == true, "changed size")
        #expect(reason(note.replacingOccurrences(of: "signatures 10", with: "signatures 11"), key: key)?.contains("does not verify") == true)
        #expect(reason(try NoteSigner.generate(name: "fairrates.example/fair-rates").sign(Checkpoint(body: try SignedNote(parsing: note).text).body),
                       key: key)?.contains("not signed by the key") == true, "a foreign key of the same name")
        #expect(reason(String(note.prefix(note.count - 20)), key: key)?.contains("truncated") == true)
        #expect(reason(String(note.prefix(60)), key: key)?.contains("truncated") == true)
        let (other, otherSigner) = try Self.signedCheckpoint(origin: "fairrates.example/other-campaign")
        #expect(reason(other, key: key)?.contains("not for this campaign") == true, "another campaign's checkpoint")
        #expect(reason(other, key: otherSigner.verifier)?.contains("not for this campaign") == true)
        #expect(throws: TransparencyError.self) { try NoteVerifierKey(parsing: "name+00000000+AAAA") }
        var wrongID = key.text
        wrongID.replaceSubrange(wrongID.range(of: "+")!.upperBound..<wrongID.index(wrongID.range(of: "+")!.upperBound, offsetBy: 8), with: "00000000")
        #expect(throws: TransparencyError.self) { try NoteVerifierKey(parsing: wrongID) }
    }

    // MARK: - The ledger's tree

    @Test func theLedgerTreeFollowsEveryKindOfAppendAndVerifyCatchesAnAlteredNode() throws {
        let folder = try TemporaryFolder()
        let ledger = try #require(try Ledger.open(folder.url.appendingPathComponent("ledger.sqlite"), create: true))
        let manifest = sampleManifest()
        for index in 0..<9 {
            _ = try ledger.append(try SignatureInput(name: "P \(index)", email: "p\(index)@example.org", fields: ["region": "Lyon"]).validated(against: manifest), at: Date())
        }
        _ = try ledger.forget(canonicalEmail: "p2@example.org", at: Date())
        _ = try ledger.unsubscribe(canonicalEmail: "x@example.org", at: Date())
        try ledger.appendBatch { append in
            for index in 9..<40 {
                _ = try append(try SignatureInput(name: "Q \(index)", email: "q\(index)@example.org", fields: ["region": "Paris"]).validated(against: manifest), Date())
            }
        }
        // A withdrawal (`muster dedupe --withdraw`) is a leaf like any other entry: two
        // spellings signed under rules that kept them apart, then one withdrawn.
        ledger.mailboxRules = MailboxRules(keepTags: true)
        for email in ["r+1@gmail.com", "r+2@gmail.com"] {
            _ = try ledger.append(try SignatureInput(name: "R", email: email, fields: ["region": "Lyon"]).validated(against: manifest), at: Date())
        }
        ledger.mailboxRules = .standard
        #expect(try ledger.dedupe(withdraw: true, commit: true, showAddresses: false, at: Date()).withdrawn == 1)
        let verified = try ledger.verify()
        #expect(verified.ok && verified.withdrawn == 1, "\(verified)")
        #expect(try ledger.signatureCount(through: 44) == 42, "the withdrawal (entry 45) is not among entries 1…44")
        #expect(try ledger.signatureCount(through: 45) == verified.count)
        #expect(try ledger.withdrawal(of: 44)?.entry == 45 && ledger.withdrawal(of: 43) == nil)
        // The stored tree equals a tree built in memory from the entries' leaf data.
        try ledger.withTree { tree, size in
            #expect(size == 45)
            #expect(try ledger.publicEntry(seq: size).kind == "withdrawal")
            var leaves: [Merkle.Hash] = []
            try ledger.forEachPublicEntry(through: size) { leaves.append(Merkle.leafHash($0.leafData)) }
            let memory = MemoryMerkleTree(leafHashes: leaves)
            for m in Int64(1)...size {
                #expect(try tree.root(size: m) == (try memory.root(size: m)))
            }
            #expect(try tree.inclusionProof(index: 17, size: size) == (try memory.inclusionProof(index: 17, size: size)))
        }
        try ledger.database.execute("UPDATE merkle_nodes SET hash = zeroblob(32) WHERE pos = 2")
        let report = try ledger.verify()
        #expect(!report.ok)
        #expect(report.firstBad?.reason.contains("Merkle tree does not match") == true, "\(String(describing: report.firstBad))")
    }

    /// The packed path (import, merge) keeps the tree in memory and stores the subtrees it
    /// completes after each batch, many rows per statement: the same tree as one append at
    /// a time, whatever the batch sizes, before and after a rolled-back batch.
    @Test func packedBatchesStoreTheSameTreeAsSingleAppends() throws {
        let folder = try TemporaryFolder()
        let ledger = try #require(try Ledger.open(folder.url.appendingPathComponent("ledger.sqlite"), create: true))
        let manifest = sampleManifest()
        let preparer = try ledger.signaturePreparer()
        var next = 0
        func packed(_ count: Int) throws -> PreparedBatch {
            var batch = PreparedBatch()
            for _ in 0..<count {
                let signature = try SignatureInput(name: "P \(next)", email: "p\(next)@example.org", fields: ["region": "Lyon"]).validated(against: manifest)
                preparer.prepare(signature, at: Date(timeIntervalSince1970: 1_800_000_000 + Double(next)), into: &batch)
                next += 1
            }
            return batch
        }
        _ = try ledger.append(try SignatureInput(name: "First", email: "first@example.org", fields: ["region": "Lyon"]).validated(against: manifest), at: Date())
        for (sizes, bulk) in [([1, 700, 3], true), ([2_000, 17], false), ([1_100], true)] {
            try ledger.appendBatches(commit: true, expectedCount: 4_000, bulkMinimum: bulk ? 1 : Int.max) { batch in
                for size in sizes { _ = try batch.append(try packed(size)) }
            }
            _ = try ledger.unsubscribe(canonicalEmail: "x\(next)@example.org", at: Date())
        }
        // A batch rolled back half-way leaves no node behind, and the next append goes on.
        #expect(throws: MusterError.self) {
            try ledger.appendBatches(commit: true, expectedCount: 4_000, bulkMinimum: 1) { batch in
                _ = try batch.append(try packed(900))
                throw MusterError.failure("stop")
            }
        }
        _ = try ledger.append(try SignatureInput(name: "Last", email: "last@example.org", fields: ["region": "Lyon"]).validated(against: manifest), at: Date())
        let report = try ledger.verify()
        #expect(report.ok, "\(String(describing: report.firstBad))")
        try ledger.withTree { tree, size in
            #expect(size == 1 + 704 + 1 + 2_017 + 1 + 1_100 + 1 + 1)
            #expect(try ledger.database.scalarInt("SELECT count(*) FROM merkle_nodes") == Merkle.storedNodeCount(size: size))
            var leaves: [Merkle.Hash] = []
            try ledger.forEachPublicEntry(through: size) { leaves.append(Merkle.leafHash($0.leafData)) }
            let memory = MemoryMerkleTree(leafHashes: leaves)
            for m in [Int64(1), 2, 16, 17, 705, 706, 1_024, 2_723, 2_724, 3_824, 3_825, 3_826, size] {
                #expect(try tree.root(size: m) == (try memory.root(size: m)), "root at \(m)")
            }
            #expect(try tree.consistencyProof(oldSize: 706, newSize: size) == (try memory.consistencyProof(oldSize: 706, newSize: size)))
        }
    }
}
