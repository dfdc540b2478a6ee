import Foundation
import Testing
@testable import MusterKit

/// Packed batches and the bulk path (duplicates checked in memory while the unique
/// fingerprint index is dropped and rebuilt inside the transaction).
@Suite struct LedgerBulkTests {
    let manifest = sampleManifest()
    let clock = FixedClock(Timestamp.parse("2026-11-26T10:00:00Z")!)
    static let indexQuery = "SELECT sql FROM sqlite_schema WHERE type = 'index' AND name = 'entries_one_signature_per_signer'"

    func signature(_ name: String, _ email: String, region: String = "Lyon") throws -> ValidSignature {
        try SignatureInput(name: name, email: email, fields: ["region": region]).validated(against: manifest)
    }

    func ledger(_ folder: TemporaryFolder, signers: Int = 3) throws -> Ledger {
        let ledger = try #require(try Ledger.open(folder.url.appendingPathComponent("ledger.sqlite"), create: true))
        for index in 0..<signers {
            _ = try ledger.append(signature("Signer \(index)", "signer\(index)@example.org"), at: clock.now())
        }
        return ledger
    }

    /// Appends `signatures` in packed batches of three, with the bulk path forced on or off.
    func appendPacked(_ ledger: Ledger, _ signatures: [ValidSignature], bulk: Bool, commit: Bool = true,
                      failAfter: Int? = nil) throws -> Counts {
        let preparer = try ledger.signaturePreparer()
        return try ledger.appendBatches(commit: commit, expectedCount: 1_000, bulkMinimum: bulk ? 1 : Int.max) { batch in
            #expect((batch.fingerprints != nil) == bulk)
            var total = Counts(added: 0, duplicates: 0)
            for start in stride(from: 0, to: signatures.count, by: 3) {
                var packed = PreparedBatch()
                for (offset, signature) in signatures[start..<min(start + 3, signatures.count)].enumerated() {
                    preparer.prepare(signature, at: clock.now().addingTimeInterval(Double(start + offset)), into: &packed)
                }
                let result = try batch.append(packed)
                total.added += result.added
                total.duplicates += result.duplicates
                if let failAfter, total.added >= failAfter { throw MusterError.failure("stop") }
            }
            return total
        }
    }

    struct Counts: Equatable {
        var added: Int
        var duplicates: Int
    }

    func rows(_ ledger: Ledger) throws -> [String] {
        let statement = try ledger.database.prepare("SELECT e.seq, e.kind, e.at, e.body, p.data FROM entries e JOIN personal p ON p.seq = e.seq ORDER BY e.seq")
        var out: [String] = []
        while try statement.step() {
            out.append([String(statement.int64(0)), statement.text(1), statement.text(2), statement.text(3), statement.text(4)].map { $0 ?? "-" }.joined(separator: " "))
        }
        return out
    }

    var batchWithDuplicates: [ValidSignature] {
        get throws {
            try [
                signature("Ana", "ana@example.org"),
                signature("Signer again", "SIGNER1@Example.org"), // in the ledger already
                signature("Ben", "ben@example.org", region: "Paris"),
                signature("Ana twice", "Ana@EXAMPLE.org"), // earlier in this import, another packed batch
                signature("Cleo", "cleo@example.org"),
                signature("Cleo twice", "cleo@example.org"), // in the same packed batch
                signature("Dan", "dan@example.org"),
            ]
        }
    }

    @Test func bulkAndIndexedAppendsWriteTheSameEntries() throws {
        let bulkFolder = try TemporaryFolder(), indexedFolder = try TemporaryFolder()
        let bulk = try ledger(bulkFolder), indexed = try ledger(indexedFolder)
        let indexSQL = try bulk.database.scalarText(Self.indexQuery)
        #expect(try appendPacked(bulk, batchWithDuplicates, bulk: true) == Counts(added: 4, duplicates: 3))
        #expect(try appendPacked(indexed, batchWithDuplicates, bulk: false) == Counts(added: 4, duplicates: 3))
        #expect(try rows(bulk) == rows(indexed))
        #expect(try rows(bulk).count == 7)
        #expect(try bulk.verify().ok && indexed.verify().ok)
        #expect(try bulk.signatureCount() == 7)
        // The index is back, as it was, and in use.
        #expect(indexSQL != nil)
        #expect(try bulk.database.scalarText(Self.indexQuery) == indexSQL)
        #expect(try bulk.append(signature("Ben again", "BEN@example.org"), at: clock.now()) == .duplicate(firstSignedAt: "2026-11-26T10:00:02.000Z", count: 7))
        #expect(try bulk.database.scalarText("PRAGMA integrity_check") == "ok")
    }

    @Test func bulkDryRunAndFailureLeaveTheLedgerAndItsIndexAsTheyWere() throws {
        let folder = try TemporaryFolder()
        let ledger = try ledger(folder)
        let head = try ledger.headHash()
        let indexSQL = try ledger.database.scalarText(Self.indexQuery)
        #expect(try appendPacked(ledger, batchWithDuplicates, bulk: true, commit: false) == Counts(added: 4, duplicates: 3))
        #expect(try ledger.headHash() == head && ledger.signatureCount() == 3)
        #expect(try ledger.database.scalarText(Self.indexQuery) == indexSQL)
        #expect(throws: MusterError.self) { try appendPacked(ledger, batchWithDuplicates, bulk: true, failAfter: 1) }
        #expect(try ledger.headHash() == head && ledger.signatureCount() == 3)
        #expect(try ledger.database.scalarText(Self.indexQuery) == indexSQL)
        #expect(try ledger.verify().ok)
        #expect(try ledger.append(signature("Ana", "ana@example.org"), at: clock.now()) == .added(seq: 4, count: 4))
        #expect(try ledger.append(signature("Ana", "ANA@example.org"), at: clock.now()) == .duplicate(firstSignedAt: "2026-11-26T10:00:00.000Z", count: 4))
    }

    @Test func oneAtATimeAppendsUseTheInMemoryCheckToo() throws {
        let folder = try TemporaryFolder()
        let ledger = try ledger(folder)
        let preparer = try ledger.signaturePreparer()
        let outcomes = try ledger.appendBatches(commit: true, expectedCount: 1_000, bulkMinimum: 1) { batch in
            try batchWithDuplicates.map { try batch.append(preparer.prepare($0, at: clock.now())) }
        }
        #expect(outcomes == [true, false, true, false, true, false, true])
        #expect(try ledger.verify().ok && ledger.signatureCount() == 7)
    }

    @Test func smallBatchesAndBigLedgersKeepTheIndex() throws {
        let folder = try TemporaryFolder()
        let ledger = try ledger(folder, signers: 5)
        for expected in [0, 9, Ledger.bulkMinimum - 1] {
            try ledger.appendBatches(commit: false, expectedCount: expected) { batch in #expect(batch.fingerprints == nil) }
        }
        // 5 signatures: a bulk append needs at least twice as many coming.
        try ledger.appendBatches(commit: false, expectedCount: 9, bulkMinimum: 1) { batch in #expect(batch.fingerprints == nil) }
        try ledger.appendBatches(commit: false, expectedCount: 10, bulkMinimum: 1) { batch in #expect(batch.fingerprints != nil) }
        #expect(try ledger.database.scalarText(Self.indexQuery) != nil)
    }

    @Test func packedPreparationHoldsTheSameFieldsAsTheSingleOne() throws {
        let folder = try TemporaryFolder()
        let ledger = try ledger(folder, signers: 0)
        let preparer = try ledger.signaturePreparer()
        let signature = ValidSignature(canonicalEmail: "ana@example.org", name: "Ana \"Q\" Lima", email: "Ana@Example.org",
                                           comment: "tab\tand é", publicFields: ["region": "Lyon"], personalFields: ["phone": "06"],
                                           consents: ["updates"], source: "import", collector: "Sam")
        let date = try #require(Timestamp.parse("2026-11-02T14:03:22.5Z"))
        let single = preparer.prepare(signature, at: date)
        var batch = PreparedBatch()
        preparer.prepare(try self.signature("First", "first@example.org"), at: date, into: &batch)
        preparer.prepare(signature, at: date, into: &batch)
        let row = batch.rows[1]
        func text(_ range: Range<Int>) -> String { String(decoding: batch.bytes[range], as: UTF8.self) }
        let atStart = row.start + PreparedBatch.fixedBytes, bodyStart = atStart + row.atCount, personalStart = bodyStart + row.bodyCount
        #expect(text(row.start..<(row.start + 64)) == single.fingerprint)
        #expect(Array(batch.bytes[(row.start + 144)..<(row.start + 160)]) == single.mailboxKey)
        #expect(text(atStart..<bodyStart) == single.at)
        #expect(text(bodyStart..<personalStart) == single.body)
        #expect(text(personalStart..<(personalStart + row.personalCount)) == single.personal)
        let salt = Array(batch.bytes[(row.start + 128)..<(row.start + 144)])
        #expect(text((row.start + 64)..<(row.start + 128)) == LedgerHash.personal(salt: salt, data: Array(single.personal.utf8)))
        #expect(salt != single.salt)
        let set = FingerprintSet(capacity: 4)
        #expect(set.insert(hex: single.fingerprint) == true)
        #expect(set.insert(row.key) == false)
        #expect(single.mailboxKey.withUnsafeBytes { set.insert(FingerprintKey(mailboxKey: $0)) })
        #expect(set.insert(row.mailbox) == false)
    }

    @Test func fingerprintSetGrowsAndIsExact() throws {
        let set = FingerprintSet(capacity: 1)
        var generator = SystemRandomNumberGenerator()
        let keys = (0..<5_000).map { _ in (0..<32).map { _ in String(format: "%02x", generator.next() as UInt8) }.joined() }
        #expect(keys.allSatisfy { set.insert(hex: $0) == true })
        #expect(keys.allSatisfy { set.insert(hex: $0) == false })
        #expect(set.count == 5_000)
        // The same first word, another last one: a different fingerprint.
        let sibling = String(keys[0].dropLast()) + (keys[0].last == "0" ? "1" : "0")
        #expect(set.insert(hex: sibling) == true)
        #expect(set.insert(hex: keys[1].uppercased()) == nil)
        #expect(set.insert(hex: String(keys[1].dropLast())) == nil)
        #expect(set.count == 5_001)
    }
}
