import Foundation
import Testing
@testable import MusterKit

@Suite struct LedgerTests {
    let manifest = sampleManifest()
    let clock = FixedClock(Timestamp.parse("2026-11-26T10:00:00Z")!)

    func signature(_ name: String, _ email: String, region: String = "Lyon", phone: String? = nil) throws -> ValidSignature {
        var fields = ["region": region]
        if let phone { fields["phone"] = phone }
        return try SignatureInput(name: name, email: email, fields: fields).validated(against: manifest)
    }

    func filledLedger(_ folder: TemporaryFolder, count: Int = 5) throws -> Ledger {
        let ledger = try #require(try Ledger.open(folder.url.appendingPathComponent("ledger.sqlite"), create: true))
        for index in 1...count {
            _ = try ledger.append(signature("Signer \(index)", "signer\(index)@example.org", phone: "06\(index)"), at: clock.now())
        }
        return ledger
    }

    /// A second connection, as someone with an SQLite client would have.
    func tamper(_ folder: TemporaryFolder, _ sql: String) throws {
        let database = try SQLiteDatabase(path: folder.url.appendingPathComponent("ledger.sqlite").path)
        try database.execute(sql)
    }

    @Test func entryHashIsAFixedFunctionOfItsFields() {
        let hash = LedgerHash.entry(seq: 1, kind: "signature", at: "2026-11-26T10:00:00.000Z", fingerprint: "ab",
                                    body: "{\"source\":\"cli\"}", personalHash: "cd", prev: Ledger.genesis)
        // computed independently with Python: hashlib.sha256(b"muster-ledger-v1\x001\x00signature\x00…\x00cd\x00" + b"0" * 64)
        #expect(hash == "4c4aa91acbb873f83c3fa19844e7df415b9aa6ab12fc61983c38eb25d9c062bb")
        let changed = LedgerHash.entry(seq: 2, kind: "signature", at: "2026-11-26T10:00:00.000Z", fingerprint: "ab",
                                       body: "{\"source\":\"cli\"}", personalHash: "cd", prev: Ledger.genesis)
        #expect(hash != changed)
        #expect(LedgerHash.personal(salt: [1, 2], data: Array("x".utf8)) != LedgerHash.personal(salt: [1, 3], data: Array("x".utf8)))
    }

    @Test func appendsDedupesAndVerifies() throws {
        let folder = try TemporaryFolder()
        let ledger = try filledLedger(folder, count: 3)
        #expect(try ledger.append(signature("Again", "SIGNER2@Example.org"), at: clock.now()) == .duplicate(firstSignedAt: "2026-11-26T10:00:00.000Z", count: 3))
        #expect(try ledger.append(signature("New", "new@example.org"), at: clock.now()) == .added(seq: 4, count: 4))
        let report = try ledger.verify()
        #expect(report.ok)
        #expect(report.count == 4)
        #expect(report.head == (try ledger.headHash()))
    }

    @Test func personalDataIsStoredApartFromTheChain() throws {
        let folder = try TemporaryFolder()
        _ = try filledLedger(folder, count: 1)
        let database = try SQLiteDatabase(path: folder.url.appendingPathComponent("ledger.sqlite").path)
        let body = try #require(try database.scalarText("SELECT body FROM entries WHERE seq = 1"))
        #expect(body == "{\"fields\":{\"region\":\"Lyon\"},\"source\":\"cli\"}")
        let personal = try #require(try database.scalarText("SELECT data FROM personal WHERE seq = 1"))
        #expect(personal == "{\"email\":\"signer1@example.org\",\"fields\":{\"phone\":\"061\"},\"name\":\"Signer 1\"}")
    }

    @Test func forgetKeepsCountAndChainAndStillDedupes() throws {
        let folder = try TemporaryFolder()
        let ledger = try filledLedger(folder, count: 3)
        #expect(try ledger.forget(canonicalEmail: "signer2@example.org", at: clock.now()) == .forgotten(seq: 2, redaction: 4))
        #expect(try ledger.forget(canonicalEmail: "signer2@example.org", at: clock.now()) == .alreadyForgotten(seq: 2))
        #expect(try ledger.forget(canonicalEmail: "nobody@example.org", at: clock.now()) == .notFound)
        let report = try ledger.verify()
        #expect(report.ok)
        #expect(report.count == 3)
        #expect(report.redacted == 1)
        #expect(try ledger.append(signature("Back", "signer2@example.org"), at: clock.now()) == .duplicate(firstSignedAt: "2026-11-26T10:00:00.000Z", count: 3))
        let bytes = try Data(contentsOf: folder.url.appendingPathComponent("ledger.sqlite"))
        #expect(bytes.range(of: Data("signer2@example.org".utf8)) == nil)
        #expect(bytes.range(of: Data("Signer 2".utf8)) == nil)
    }

    @Test func unsubscribeIsRecordedOnce() throws {
        let folder = try TemporaryFolder()
        let ledger = try filledLedger(folder, count: 1)
        #expect(try ledger.unsubscribe(canonicalEmail: "signer1@example.org", at: clock.now()) == .unsubscribed(seq: 2))
        #expect(try ledger.unsubscribe(canonicalEmail: "signer1@example.org", at: clock.now()) == .alreadyUnsubscribed)
        #expect(try ledger.isOptedOut(canonicalEmail: "signer1@example.org"))
        #expect(try !ledger.isOptedOut(canonicalEmail: "other@example.org"))
        #expect(try ledger.verify().ok)
        #expect(try ledger.signatureCount() == 1)
    }

    @Test(arguments: [
        ("UPDATE entries SET body = replace(body, 'Lyon', 'Paris') WHERE seq = 3", Int64(3), "entry 3 was altered: its contents no longer match its hash"),
        ("UPDATE entries SET at = '2020-01-01T00:00:00.000Z' WHERE seq = 2", 2, "entry 2 was altered: its contents no longer match its hash"),
        ("DELETE FROM entries WHERE seq = 2", 2, "entry 2 is missing (deleted?); entry 3 follows entry 1"),
        ("UPDATE entries SET seq = seq + 100 WHERE seq = 2; UPDATE entries SET seq = 2 WHERE seq = 4; UPDATE entries SET seq = 4 WHERE seq = 102",
         2, "entry 2 does not follow entry 1: its previous-hash does not match (an entry was changed, removed or reordered)"),
        ("UPDATE personal SET data = replace(data, 'Signer 4', 'Mallory') WHERE seq = 4", 4, "the personal data of entry 4 was altered: it no longer matches the hash the entry recorded"),
        ("DELETE FROM personal WHERE seq = 1", 1, "the personal data of entry 1 is gone, but no redaction entry records its erasure"),
        ("DELETE FROM entries WHERE seq = 5", 5, "the ledger ends at entry 4, but it recorded entry 5 as its newest: entries at the end were removed"),
        ("UPDATE entries SET fingerprint = 'x' WHERE seq = 1", 1, "entry 1 was altered: its contents no longer match its hash"),
    ])
    func tamperingIsDetectedAndLocated(sql: String, entry: Int64, reason: String) throws {
        let folder = try TemporaryFolder()
        _ = try filledLedger(folder)
        try tamper(folder, sql)
        let ledger = try #require(try Ledger.open(folder.url.appendingPathComponent("ledger.sqlite"), create: false))
        let report = try ledger.verify()
        #expect(!report.ok)
        #expect(report.firstBad == .init(entry: entry, reason: reason))
        // The two-halves check used on large ledgers finds the same first problem.
        let halves = try ledger.verify(parallelFrom: 2)
        #expect(halves.firstBad == report.firstBad)
        #expect(halves.count == report.count)
    }

    @Test(arguments: [2, 3, 4]) // the halves split after entry 2 (of 5), so 3 is the seam
    func tamperingAtTheSeamOfTheHalvesIsFound(entry: Int) throws {
        let folder = try TemporaryFolder()
        _ = try filledLedger(folder)
        try tamper(folder, "UPDATE entries SET prev = 'x' WHERE seq = \(entry)")
        let ledger = try #require(try Ledger.open(folder.url.appendingPathComponent("ledger.sqlite"), create: false))
        let report = try ledger.verify(parallelFrom: 2)
        #expect(report.firstBad?.entry == Int64(entry))
        #expect(try ledger.verify(parallelFrom: 1_000).firstBad?.entry == Int64(entry))
    }

    @Test func bothWaysAgreeOnAHealthyLedgerWithForgottenSigners() throws {
        let folder = try TemporaryFolder()
        let ledger = try filledLedger(folder, count: 9)
        _ = try ledger.forget(canonicalEmail: "signer2@example.org", at: clock.now())
        _ = try ledger.forget(canonicalEmail: "signer8@example.org", at: clock.now())
        _ = try ledger.unsubscribe(canonicalEmail: "signer3@example.org", at: clock.now())
        let one = try ledger.verify(parallelFrom: 1_000)
        let two = try ledger.verify(parallelFrom: 2)
        #expect(one.ok && two.ok)
        #expect(one == two)
        #expect(one.count == 9 && one.entries == 12 && one.redacted == 2)
    }

    @Test func batchAppendIsAllOrNothingAndDedupes() throws {
        let folder = try TemporaryFolder()
        let ledger = try filledLedger(folder, count: 2)
        let batch = try [
            (signature("A", "a@example.org"), clock.now()),
            (signature("B", "signer1@example.org"), clock.now()),
            (signature("A again", "A@EXAMPLE.ORG"), clock.now()),
        ]
        let added = try ledger.appendBatch { append in try batch.map { try append($0.0, $0.1) } }
        #expect(added == [true, false, false])
        #expect(try ledger.verify().ok)
        #expect(try ledger.signatureCount() == 3)
    }
}
