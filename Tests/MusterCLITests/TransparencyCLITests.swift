import Foundation
import Testing
@testable import MusterKit

/// Checkpoints, `verify --against`, receipts and the public log, with the real binary,
/// and the reference verifier (scripts/muster_verify.py) run on what it writes.
@Suite struct TransparencyCLITests {
    static let verifier = MusterBinary.packageRoot.appendingPathComponent("scripts/muster_verify.py")

    /// A folder outside the workspace for the private keys (XDG_CONFIG_HOME).
    final class KeyHome {
        let url: URL
        init() throws {
            url = FileManager.default.temporaryDirectory.appendingPathComponent("muster-keys-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        }
        deinit { try? FileManager.default.removeItem(at: url) }
        var environment: [String: String] { ["XDG_CONFIG_HOME": url.path, "MUSTER_CHECKPOINT_KEY": ""] }
    }

    static func python(_ arguments: [String], in box: Sandbox) throws -> RunResult {
        try Sandbox.run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", verifier.path] + arguments, in: box.root)
    }

    static func sign(_ box: Sandbox, _ range: ClosedRange<Int>, region: String = "Lyon") throws {
        for index in range {
            let result = try box.run(["sign", "--name", "Signer \(index)", "--email", "s\(index)@example.org", "--field", "region=\(region)"])
            try #require(result.status == 0, "\(result)")
        }
    }

    static let vkey = "campaigns/fair-rates/checkpoint.vkey"

    @Test func theWholeStoryChecksOutWithTheReferenceVerifier() throws {
        let box = try Sandbox.withCampaign()
        let keys = try KeyHome()
        try Self.sign(box, 1...5)
        let first = try box.run(["checkpoint", "--json"], environment: keys.environment)
        #expect(first.status == 0, "\(first)")
        #expect(try first.json()["size"] as? Int == 5)
        #expect(box.exists("campaigns/fair-rates/checkpoints/5.txt") && box.exists(Self.vkey))
        // The private key: outside the workspace, mode 0600; nothing in the workspace holds it.
        let keyFiles = try FileManager.default.contentsOfDirectory(atPath: keys.url.appendingPathComponent("muster/keys").path)
        #expect(keyFiles.count == 1)
        let keyPath = keys.url.appendingPathComponent("muster/keys/\(keyFiles[0])").path
        let mode = try FileManager.default.attributesOfItem(atPath: keyPath)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let secret = try String(contentsOfFile: keyPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        // PRIVATE+KEY+<name>+<key id>+<base64 key>: the key is everything after the fourth
        // "+" (base64 itself may hold "+", so the last "+" would give a few random letters).
        let encodedKey = String(secret.split(separator: "+", maxSplits: 4).last!)
        #expect(encodedKey.count >= 40, "\(secret.prefix(20))…")
        let grep = try Sandbox.run(URL(fileURLWithPath: "/usr/bin/grep"), ["-rlF", encodedKey, "."], in: box.root)
        #expect(grep.stdout.isEmpty, "the private key leaked into the workspace: \(grep.stdout)")

        // More of everything: signatures, an import, a merge, a forget, an opt-out.
        try Self.sign(box, 6...8, region: "Paris")
        try box.write("people.csv", "name,email,region\nIa,ia@example.org,Lyon\nJo,jo@example.org,Paris\n")
        #expect(try box.run(["import", "people.csv"]).status == 0)
        let other = try Sandbox.withCampaign()
        #expect(try other.run(["sign", "--name", "Ka", "--email", "ka@example.org", "--field", "region=Lyon"]).status == 0)
        #expect(try box.run(["merge", other.path("campaigns/fair-rates/ledger.sqlite").path]).status == 0)
        #expect(try box.run(["forget", "s2@example.org"]).status == 0)
        #expect(try box.run(["unsubscribe", "s3@example.org"]).status == 0)

        let against = try box.run(["verify", "--against", "5", "--json"])
        #expect(against.status == 0, "\(against)")
        let consistency = try #require(try against.json()["against"] as? [String: Any])
        #expect(consistency["ok"] as? Bool == true && consistency["tree_size"] as? Int == 13, "\(against)")

        let second = try box.run(["checkpoint", "--proof-from", "5", "--out", "proof.json"], environment: keys.environment)
        #expect(second.status == 0, "\(second)")
        let proof = try Self.python(["consistency", "proof.json", "--key", Self.vkey, "--json"], in: box)
        #expect(proof.status == 0, "\(proof)")

        // A receipt, checked by the reference verifier; then tampered with.
        let receipt = try box.run(["receipt", "S4@example.org", "--out", "receipt.json"])
        #expect(receipt.status == 0, "\(receipt)")
        let checked = try Self.python(["receipt", "receipt.json", "--key", Self.vkey, "--email", "s4@example.org", "--json"], in: box)
        #expect(checked.status == 0, "\(checked)")
        #expect(try checked.json()["entry"] as? Int == 4)
        let text = try String(contentsOf: box.path("receipt.json"), encoding: .utf8)
        for (what, from, to) in [("name", "Signer 4", "Signer 5"), ("proof", "\"inclusion_proof\" : [\n    \"", "\"inclusion_proof\" : [\n    \"A"),
                                 ("body", "region\\\":\\\"Lyon", "region\\\":\\\"Nice"), ("index", "\"leaf_index\" : 3", "\"leaf_index\" : 4")] {
            #expect(text.contains(from), "\(what) not found to tamper with")
            try box.write("bad.json", text.replacingOccurrences(of: from, with: to))
            let refused = try Self.python(["receipt", "bad.json", "--key", Self.vkey], in: box)
            #expect(refused.status == 1 && refused.stdout.hasPrefix("FAILED: "), "\(what): \(refused)")
        }

        // The public log recounts to the report's count, and carries no personal data.
        #expect(try box.run(["export", "--log", "--out", "log.jsonl"]).status == 0)
        let log = try String(contentsOf: box.path("log.jsonl"), encoding: .utf8)
        #expect(!log.contains("example.org") && !log.contains("Signer"))
        let recount = try Self.python(["log", "log.jsonl", "--checkpoint", "campaigns/fair-rates/checkpoints/13.txt", "--key", Self.vkey, "--json"], in: box)
        #expect(recount.status == 0, "\(recount)")
        let report = try box.run(["report", "--json"])
        #expect(try recount.json()["signatures"] as? Int == (try report.json()["count"] as? Int))
        #expect(try (report.json()["checkpoint"] as? [String: Any])?["size"] as? Int == 13)
        // A log with an entry changed no longer has the checkpoint's root.
        try box.write("bad.jsonl", log.replacingOccurrences(of: "Paris", with: "Lyon"))
        #expect(try Self.python(["log", "bad.jsonl", "--checkpoint", "campaigns/fair-rates/checkpoints/13.txt", "--key", Self.vkey], in: box).status == 1)
        // Withheld fields: the tree still adds up.
        #expect(try box.run(["export", "--log", "--omit-field", "region", "--out", "withheld.jsonl"]).status == 0)
        let withheld = try Self.python(["log", "withheld.jsonl", "--checkpoint", "campaigns/fair-rates/checkpoints/13.txt", "--key", Self.vkey, "--json"], in: box)
        #expect(withheld.status == 0, "\(withheld)")
        #expect(!(try String(contentsOf: box.path("withheld.jsonl"), encoding: .utf8)).contains("Lyon"))

        // A receipt issued before a forget still verifies afterwards.
        #expect(try box.run(["forget", "s4@example.org"]).status == 0)
        #expect(try Self.python(["receipt", "receipt.json", "--key", Self.vkey], in: box).status == 0)
        let gone = try box.run(["receipt", "s4@example.org"])
        #expect(gone.status == 1 && gone.stderr.contains("forgotten"), "\(gone)")
    }

    /// Rewrites entry 2 and everything after it so the chain verifies again, and lets the
    /// migration rebuild the tree: a consistent ledger with another history.
    static let rewrite = """
        import hashlib, sqlite3, sys
        db = sqlite3.connect(sys.argv[1])
        db.execute("UPDATE entries SET body = replace(body, 'Lyon', 'Paris') WHERE seq = 2")
        prev = None
        for seq, kind, at, fp, body, ph, old_prev in db.execute("SELECT seq, kind, at, fingerprint, body, personal_hash, prev FROM entries ORDER BY seq").fetchall():
            prev = prev or old_prev
            data = b"muster-ledger-v1\\0" + str(seq).encode()
            for field in (kind, at, fp, body, ph, prev):
                data += b"\\0" + (field or "").encode()
            h = hashlib.sha256(data).hexdigest()
            db.execute("UPDATE entries SET prev = ?, hash = ? WHERE seq = ?", (prev, h, seq))
            prev = h
        db.execute("UPDATE meta SET value = ? WHERE key = 'head_hash'", (prev,))
        db.execute("DROP TABLE merkle_nodes")
        db.execute("DROP TABLE IF EXISTS pending")  # format 5 (the sign page), made again by its migration
        for table in ("bounces", "suppressions", "inbox_processed"):  # format 6 (bounces), made again by its migration
            db.execute(f"DROP TABLE IF EXISTS {table}")
        db.execute("DELETE FROM meta WHERE key IN ('mail_token_key', 'seal_key')")  # formats 6 and 7
        db.execute("DELETE FROM migrations WHERE version >= 4")
        db.execute("UPDATE meta SET value = 3 WHERE key = 'schema_version'")
        db.commit()
        """

    @Test func aRewrittenHistoryCannotProveConsistency() throws {
        let box = try Sandbox.withCampaign()
        let keys = try KeyHome()
        try Self.sign(box, 1...4)
        #expect(try box.run(["checkpoint"], environment: keys.environment).status == 0)
        try Self.sign(box, 5...6)
        try box.write("rewrite.py", Self.rewrite)
        let rewritten = try Sandbox.run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "rewrite.py", box.path("campaigns/fair-rates/ledger.sqlite").path], in: box.root)
        try #require(rewritten.status == 0, "\(rewritten)")
        let plain = try box.run(["verify"])
        #expect(plain.status == 0, "the rewritten ledger is consistent in itself: \(plain)")
        let against = try box.run(["verify", "--against", "4"])
        #expect(against.status == 1, "\(against)")
        #expect(against.stdout.contains("FAILED: checkpoint 4: the ledger's first 4 entries are not the ones the checkpoint signed"), "\(against)")
        // muster will not sign the new history over the old checkpoint's size either.
        let receipt = try box.run(["receipt", "s1@example.org", "--checkpoint", "4"])
        #expect(receipt.status == 1 && receipt.stderr.contains("no longer has the tree"), "\(receipt)")
    }

    @Test func anAlteredTreeOrAForeignCheckpointIsRefused() throws {
        let box = try Sandbox.withCampaign()
        let keys = try KeyHome()
        // 20 entries, so that the tree stores a node (subtrees of 16 entries or more).
        try box.write("people.csv", "name,email,region\n" + (1...20).map { "P \($0),p\($0)@example.org,Lyon\n" }.joined())
        #expect(try box.run(["import", "people.csv"]).status == 0)
        #expect(try box.run(["checkpoint"], environment: keys.environment).status == 0)
        #expect(try box.run(["new", "other", "--title", "Other", "--goal", "5"]).status == 0)
        #expect(try box.run(["sign", "-c", "other", "--name", "O", "--email", "o@example.org", "--field", "region=Lyon"]).status == 0)
        #expect(try box.run(["checkpoint", "-c", "other"], environment: keys.environment).status == 0)

        let foreign = try box.run(["verify", "-c", "fair-rates", "--against", "campaigns/other/checkpoints/1.txt"])
        #expect(foreign.status == 1 && foreign.stdout.contains("not for this campaign"), "\(foreign)")
        let note = try String(contentsOf: box.path("campaigns/fair-rates/checkpoints/20.txt"), encoding: .utf8)
        try box.write("truncated.txt", String(note.prefix(note.count - 30)))
        let truncated = try box.run(["verify", "-c", "fair-rates", "--against", "truncated.txt"])
        #expect(truncated.status == 1 && truncated.stdout.contains("truncated"), "\(truncated)")
        try box.write("edited.txt", note.replacingOccurrences(of: "signatures 20", with: "signatures 21"))
        let edited = try box.run(["verify", "-c", "fair-rates", "--against", "edited.txt"])
        #expect(edited.status == 1 && edited.stdout.contains("does not verify"), "\(edited)")
        // A checkpoint signed with another key under this campaign's origin.
        let origin = String(note.prefix { $0 != "\n" })
        let stranger = try NoteSigner.generate(name: origin)
        try box.write("stranger.txt", try stranger.sign(try SignedNote(parsing: note).text))
        let signedByStranger = try box.run(["verify", "-c", "fair-rates", "--against", "stranger.txt"])
        #expect(signedByStranger.status == 1 && signedByStranger.stdout.contains("not signed by the key"), "\(signedByStranger)")

        try box.sqlite("campaigns/fair-rates/ledger.sqlite", "UPDATE merkle_nodes SET hash = zeroblob(32) WHERE pos = 1")
        let altered = try box.run(["verify", "-c", "fair-rates", "--against", "20"])
        #expect(altered.status == 1 && altered.stdout.contains("Merkle tree does not match"), "\(altered)")
    }

    @Test func theFormat1FixtureGetsATreeThatVerifiesAndRecounts() throws {
        let box = try LedgerMigrationCLITests.workspace()
        let keys = try KeyHome()
        let expected = try LedgerMigrationCLITests.expected()
        let checkpoint = try box.run(["checkpoint", "--json"], environment: keys.environment)
        #expect(checkpoint.status == 0, "\(checkpoint)")
        let size = try #require(try checkpoint.json()["size"] as? Int)
        // Migrated through every format (2 to 7) in one go, the tree built by migration 4.
        #expect(try box.sqlite("campaigns/fair-rates/ledger.sqlite", "SELECT group_concat(version) FROM (SELECT version FROM migrations ORDER BY version)").stdout
                == "1,2,3,4,5,6,7\n")
        #expect(try box.sqlite("campaigns/fair-rates/ledger.sqlite", "SELECT value FROM meta WHERE key = 'schema_version'").stdout == "7\n")
        #expect(try box.run(["verify", "--against", String(size)]).status == 0)
        #expect(try box.run(["export", "--log", "--out", "log.jsonl"]).status == 0)
        let recount = try Self.python(["log", "log.jsonl", "--checkpoint", "campaigns/fair-rates/checkpoints/\(size).txt",
                                       "--key", Self.vkey, "--json"], in: box)
        #expect(recount.status == 0, "\(recount)")
        #expect(try recount.json()["signatures"] as? Int == expected["count"] as? Int)
    }

    /// The committed format-3 ledger (Tests/Fixtures/ledger-v3) gains its tree on opening,
    /// and the count recounted from its public log is the count muster verifies.
    @Test func theFormat3FixtureGetsATreeThatVerifiesAndRecounts() throws {
        let box = try KeyVersionFixtureTests.fixture.workspace()
        let keys = try KeyHome()
        let expected = try KeyVersionFixtureTests.fixture.expected()
        let checkpoint = try box.run(["checkpoint", "--json"], environment: keys.environment)
        #expect(checkpoint.status == 0 && checkpoint.stderr.contains("from ledger format 3 to 7"), "\(checkpoint)")
        let size = try #require(try checkpoint.json()["size"] as? Int)
        #expect(size == expected["entries"] as? Int)
        #expect(try box.run(["export", "--log", "--out", "log.jsonl"]).status == 0)
        let recount = try Self.python(["log", "log.jsonl", "--checkpoint", "campaigns/keys/checkpoints/\(size).txt",
                                       "--key", "campaigns/keys/checkpoint.vkey", "--json"], in: box)
        #expect(recount.status == 0, "\(recount)")
        #expect(try recount.json()["signatures"] as? Int == expected["count"] as? Int, "\(recount)")
        #expect(try recount.json()["withdrawn"] as? Int == expected["withdrawn"] as? Int, "\(recount)")
    }

    /// Withdrawals (`muster dedupe --withdraw`, on the format-1 ledger in which one person
    /// signed under several spellings) are leaves like any other entry: the checkpoint
    /// states the count without the withdrawn, and the reference verifier recounts it from
    /// the public log, checking each withdrawal; a withdrawn signature gets no receipt.
    @Test func withdrawalsAreLeavesAndTheRecountLeavesTheWithdrawnOut() throws {
        let box = try DedupeTests.workspace()
        let keys = try KeyHome()
        let ledger = DedupeTests.ledger
        #expect(try box.run(["verify"]).status == 0)
        #expect(try box.run(["checkpoint"], environment: keys.environment).status == 0)
        let before = try #require(Int(try box.sqlite(ledger, "SELECT value FROM meta WHERE key = 'head_seq'").stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        let withdrew = try box.run(["dedupe", "--withdraw"], environment: DedupeTests.now)
        #expect(withdrew.status == 0, "\(withdrew)")
        let verify = try box.run(["verify", "--json"])
        let verified = try verify.json()
        let withdrawn = try #require(verified["withdrawn"] as? Int)
        #expect(withdrawn > 0 && verified["entries"] as? Int == before + withdrawn, "\(verify)")

        let made = try box.run(["checkpoint", "--json"], environment: keys.environment)
        #expect(made.status == 0, "\(made)")
        let size = try #require(try made.json()["size"] as? Int)
        #expect(size == before + withdrawn, "every withdrawal is a leaf")
        #expect(try made.json()["signatures"] as? Int == verified["count"] as? Int, "the checkpoint states the count without the withdrawn")
        // The tree before the withdrawals is a prefix of the tree after them.
        let against = try box.run(["verify", "--against", String(before)])
        #expect(against.status == 0 && against.stdout.contains("consistent with the checkpoint of \(before) entries"), "\(against)")

        let note = "campaigns/variants/checkpoints/\(size).txt"
        let vkey = "campaigns/variants/checkpoint.vkey"
        #expect(try box.run(["export", "--log", "--out", "log.jsonl"]).status == 0)
        let recount = try Self.python(["log", "log.jsonl", "--checkpoint", note, "--key", vkey, "--json"], in: box)
        #expect(recount.status == 0, "\(recount)")
        #expect(try recount.json()["signatures"] as? Int == verified["count"] as? Int, "\(recount)")
        #expect(try recount.json()["withdrawn"] as? Int == withdrawn, "\(recount)")
        // The log before the withdrawals still recounts against the first checkpoint.
        let first = try Self.python(["log", "log.jsonl", "--checkpoint", "campaigns/variants/checkpoints/\(before).txt", "--key", vkey, "--json"], in: box)
        #expect(first.status == 0, "\(first)")
        #expect(try first.json()["withdrawn"] as? Int == 0, "\(first)")

        // A collective that signs a tree holding a second withdrawal of the same signature
        // (its count one lower) is caught by the recount, though root and count match.
        let target = try #require(Int(try box.sqlite(ledger, "SELECT json_extract(body, '$.withdraws') FROM entries WHERE seq = \(size)").stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        try box.write("forge.py", """
            import base64, hashlib, json, sys
            sys.path.insert(0, sys.argv[1])
            import muster_verify as mv
            lines = [json.loads(l) for l in open("log.jsonl")]
            last = lines[-1]
            extra = dict(last, seq=last["seq"] + 1, prev=last["hash"])
            extra["hash"] = hashlib.sha256(mv.entry_bytes(extra)).hexdigest()
            lines.append(extra)
            with open("forged.jsonl", "w") as f:
                for e in lines:
                    f.write(json.dumps(e, sort_keys=True, separators=(",", ":")) + "\\n")
            print(base64.b64encode(mv.root_of([mv.leaf_hash(mv.entry_bytes(e)) for e in lines])).decode())
            """)
        let forge = try Sandbox.run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "forge.py", Self.verifier.deletingLastPathComponent().path], in: box.root)
        try #require(forge.status == 0, "\(forge)")
        let root = try #require(Data(base64Encoded: forge.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        let keyDirectory = keys.url.appendingPathComponent("muster/keys")
        let keyFile = try #require(try FileManager.default.contentsOfDirectory(atPath: keyDirectory.path).first)
        let signer = try NoteSigner(parsing: try String(contentsOf: keyDirectory.appendingPathComponent(keyFile), encoding: .utf8))
        let forgedCount = try #require(verified["count"] as? Int) - 1
        let forgedNote = try signer.sign(Checkpoint(origin: signer.name, size: Int64(size + 1), root: Array(root),
                                                    signatures: Int64(forgedCount), time: nil).body)
        try box.write("forged.txt", forgedNote)
        let refused = try Self.python(["log", "forged.jsonl", "--checkpoint", "forged.txt", "--key", vkey], in: box)
        #expect(refused.status == 1 && refused.stdout.contains("takes out entry \(target), which line \(size) already took out"), "\(refused)")

        // A withdrawn signature gets no receipt; the one kept does.
        let email = try box.sqlite(ledger, "SELECT json_extract(data, '$.email') FROM personal WHERE seq = \(target)").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let receipt = try box.run(["receipt", email])
        #expect(receipt.status == 1 && receipt.stderr.contains("was withdrawn by entry \(size)"), "\(receipt)")
        let kept = try #require(Int(try box.sqlite(ledger, "SELECT json_extract(body, '$.duplicate_of') FROM entries WHERE seq = \(size)").stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        let keptEmail = try box.sqlite(ledger, "SELECT json_extract(data, '$.email') FROM personal WHERE seq = \(kept)").stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try box.run(["receipt", keptEmail, "--out", "kept.json"]).status == 0)
        #expect(try Self.python(["receipt", "kept.json", "--key", vkey], in: box).status == 0)
    }

    /// A witness cosigns a checkpoint (`muster witness`); `verify --against --witness` and
    /// the reference verifier require its line, and refuse a missing or altered one.
    @Test func aWitnessCosignsAndBothVerifiersRequireItsSignature() throws {
        let box = try Sandbox.withCampaign()
        let keys = try KeyHome()
        try Self.sign(box, 1...3)
        #expect(try box.run(["checkpoint"], environment: keys.environment).status == 0)
        let note = "campaigns/fair-rates/checkpoints/3.txt"
        let witnessKey = keys.url.appendingPathComponent("witness.key").path
        let made = try box.run(["witness", "key", "news.example/witness", "--out", witnessKey, "--json"])
        #expect(made.status == 0, "\(made)")
        let vkey = try #require(try made.json()["vkey"] as? String)
        #expect(vkey.hasPrefix("news.example/witness+"))
        let mode = try FileManager.default.attributesOfItem(atPath: witnessKey)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let again = try box.run(["witness", "key", "news.example/witness", "--out", witnessKey])
        #expect(again.status != 0, "an existing key file is never overwritten: \(again)")
        try box.write("witness.vkey", vkey + "\n")

        // Before the cosignature: required, so refused by both verifiers.
        let missing = try box.run(["verify", "--against", "3", "--witness", "witness.vkey"])
        #expect(missing.status == 1 && missing.stdout.contains("the checkpoint is not cosigned by the witness news.example/witness"), "\(missing)")
        #expect(try Self.python(["checkpoint", note, "--key", Self.vkey, "--witness", "witness.vkey"], in: box).status == 1)

        let original = try String(contentsOf: box.path(note), encoding: .utf8)
        let signed = try box.run(["witness", "sign", note, "--key", witnessKey, "--vkey", Self.vkey, "--out", note])
        #expect(signed.status == 0, "\(signed)")
        let cosigned = try String(contentsOf: box.path(note), encoding: .utf8)
        #expect(cosigned.hasPrefix(original) && cosigned.split(separator: "\n").last?.hasPrefix("\u{2014} news.example/witness ") == true, "\(cosigned)")
        let twice = try box.run(["witness", "sign", note, "--key", witnessKey, "--vkey", Self.vkey])
        #expect(twice.status == 0 && twice.stdout == cosigned, "a second cosignature changes nothing")

        let ok = try box.run(["verify", "--against", "3", "--witness", vkey])
        #expect(ok.status == 0 && ok.stdout.contains("cosigned by news.example/witness"), "\(ok)")
        let json = try box.run(["verify", "--against", "3", "--witness", "witness.vkey", "--json"])
        #expect(try (json.json()["against"] as? [String: Any])?["witnesses"] as? [String] == ["news.example/witness"], "\(json)")
        #expect(try Self.python(["checkpoint", note, "--key", Self.vkey, "--witness", "witness.vkey"], in: box).status == 0)
        // A receipt made from the cosigned note carries both signatures.
        #expect(try box.run(["receipt", "s2@example.org", "--out", "r.json"]).status == 0)
        #expect(try Self.python(["receipt", "r.json", "--key", Self.vkey, "--witness", "witness.vkey", "--email", "s2@example.org"], in: box).status == 0)
        // The campaign's own checks still pass (checkpoint of the same size kept, report).
        #expect(try box.run(["checkpoint"], environment: keys.environment).status == 0)
        #expect(try String(contentsOf: box.path(note), encoding: .utf8) == cosigned)

        // Another witness, an altered cosignature, a foreign collective, a flag alone: refused.
        let other = try box.run(["witness", "key", "other.example/witness", "--out", keys.url.appendingPathComponent("other.key").path, "--json"])
        let otherKey = try #require(try other.json()["vkey"] as? String)
        let foreign = try box.run(["verify", "--against", "3", "--witness", "witness.vkey", "--witness", otherKey])
        #expect(foreign.status == 1 && foreign.stdout.contains("not cosigned by the witness other.example/witness"), "\(foreign)")
        var lines = cosigned.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let last = lines.count - 2
        lines[last] = String(lines[last].dropLast(4)) + (lines[last].hasSuffix("AAA=") ? "BBB=" : "AAA=")
        try box.write("altered.txt", lines.joined(separator: "\n"))
        let altered = try box.run(["verify", "--against", "altered.txt", "--witness", "witness.vkey"])
        #expect(altered.status == 1 && altered.stdout.contains("the signature by news.example/witness does not verify"), "\(altered)")
        #expect(try Self.python(["checkpoint", "altered.txt", "--key", Self.vkey, "--witness", "witness.vkey"], in: box).status == 1)
        let elsewhere = try Sandbox.withCampaign()
        #expect(try elsewhere.run(["sign", "--name", "Ka", "--email", "ka@example.org", "--field", "region=Lyon"]).status == 0)
        #expect(try elsewhere.run(["checkpoint", "--origin", "other.example/fair-rates"], environment: keys.environment).status == 0)
        let wrong = try box.run(["witness", "sign", elsewhere.path("campaigns/fair-rates/checkpoints/1.txt").path, "--key", witnessKey, "--vkey", Self.vkey])
        #expect(wrong.status == 1 && wrong.stderr.contains("is not a checkpoint of") && wrong.stdout.isEmpty, "\(wrong)")
        #expect(try box.run(["verify", "--witness", "witness.vkey"]).status == 64)
    }

    /// muster's proof verification and the reference verifier's give the same verdict on
    /// valid and tampered proofs over random trees of every size from 1 to 1,100.
    @Test func musterAndTheReferenceVerifierAgreeOnRandomProofs() throws {
        var generator = SystemRandomNumberGenerator()
        var cases: [[String: Any]] = []
        var verdicts: [Bool] = []
        func hex(_ bytes: [UInt8]) -> String { Hex.encode(bytes) }
        var tree = MemoryMerkleTree()
        for size in Int64(1)...1100 {
            tree.append(leafHash: (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
            let root = try tree.root(size: size)
            let index = Int64.random(in: 0..<size, using: &generator)
            var proof = try tree.inclusionProof(index: index, size: size)
            var leaf = try tree.subtree(level: 0, index: index)
            var claimedIndex = index, claimedSize = size
            switch Int.random(in: 0..<5, using: &generator) {
            case 0 where !proof.isEmpty: proof[Int.random(in: 0..<proof.count, using: &generator)][0] ^= 1
            case 1: leaf[31] ^= 0x40
            case 2: claimedSize += 1
            case 3 where size > 1: claimedIndex = (index + 1) % size
            default: break
            }
            let ok = (try? Merkle.verifyInclusion(index: claimedIndex, size: claimedSize, leafHash: leaf, proof: proof, root: root)) != nil
            cases.append(["type": "inclusion", "index": claimedIndex, "size": claimedSize, "leaf": hex(leaf), "proof": proof.map(hex), "root": hex(root)])
            verdicts.append(ok)

            let old = Int64.random(in: 1...size, using: &generator)
            var consistency = try tree.consistencyProof(oldSize: old, newSize: size)
            var oldRoot = try tree.root(size: old)
            var claimedOld = old
            switch Int.random(in: 0..<4, using: &generator) {
            case 0 where !consistency.isEmpty: consistency[Int.random(in: 0..<consistency.count, using: &generator)][7] ^= 2
            case 1: oldRoot[0] ^= 1
            case 2 where old > 1: claimedOld -= 1
            default: break
            }
            let consistent = (try? Merkle.verifyConsistency(oldSize: claimedOld, newSize: size, oldRoot: oldRoot, newRoot: root, proof: consistency)) != nil
            cases.append(["type": "consistency", "old_size": claimedOld, "new_size": size, "old_root": hex(oldRoot), "new_root": hex(root),
                          "proof": consistency.map(hex)])
            verdicts.append(consistent)
        }
        #expect(verdicts.contains(true) && verdicts.contains(false))
        let box = try Sandbox()
        try JSONSerialization.data(withJSONObject: cases).write(to: box.path("cases.json"))
        let result = try Self.python(["vectors", "cases.json", "--json"], in: box)
        #expect(result.status == 0, "\(result)")
        let theirs = try #require(try result.json()["verdicts"] as? [Bool])
        #expect(theirs == verdicts)
    }
}
