import Foundation
import Testing
@testable import MusterKit

/// Issue 10: what the chain does not cover is never counted, and `verify` finds it;
/// the two-half verify checks every link; a forged sequence number costs no memory.
@Suite struct LedgerChainTests {
    let manifest = sampleManifest()
    let clock = FixedClock(Timestamp.parse("2026-11-26T10:00:00Z")!)

    func signature(_ index: Int) throws -> ValidSignature {
        try SignatureInput(name: "Signer \(index)", email: "signer\(index)@example.org", fields: ["region": "Lyon"],
                           consents: ["updates"]).validated(against: manifest)
    }

    func filledLedger(_ folder: TemporaryFolder, count: Int) throws -> Ledger {
        let ledger = try #require(try Ledger.open(folder.url.appendingPathComponent("ledger.sqlite"), create: true))
        for index in 1...count { _ = try ledger.append(signature(index), at: clock.now()) }
        return ledger
    }

    /// A second connection, as someone with an SQLite client would have.
    func tamper(_ folder: TemporaryFolder, _ sql: String) throws {
        let database = try SQLiteDatabase(path: folder.url.appendingPathComponent("ledger.sqlite").path)
        try database.execute(sql)
    }

    func reopen(_ folder: TemporaryFolder) throws -> Ledger {
        try #require(try Ledger.open(folder.url.appendingPathComponent("ledger.sqlite"), create: false))
    }

    /// The issue's repro: every entry copied beside the chain (seq −1…−n, new fingerprints),
    /// with its personal data.
    static let copyBesideTheChain = """
        INSERT INTO entries SELECT -seq, kind, at, lower(hex(randomblob(32))), body, personal_hash, prev, hash FROM entries;
        INSERT INTO personal SELECT -seq, salt, data FROM personal;
        """

    // MARK: - Item 1: rows beside the chain

    @Test(arguments: [
        (copyBesideTheChain, Int64?(-5), "entry -5 is outside the hash chain (entries 1–5): a row was added beside the chain"),
        ("INSERT INTO entries SELECT 0, kind, at, 'f0', body, personal_hash, prev, hash FROM entries WHERE seq = 1", 0,
         "entry 0 is outside the hash chain (entries 1–5): a row was added beside the chain"),
        ("INSERT INTO entries SELECT 99, kind, at, 'f99', body, personal_hash, prev, hash FROM entries WHERE seq = 5", 99,
         "entry 99 is outside the hash chain (entries 1–5): a row was added beside the chain"),
        ("INSERT INTO personal SELECT -1, salt, data FROM personal WHERE seq = 1", -1,
         "personal data is stored for entry -1, which is outside the hash chain (entries 1–5)"),
        ("INSERT INTO personal SELECT 42, salt, data FROM personal WHERE seq = 1", 42,
         "personal data is stored for entry 42, which is outside the hash chain (entries 1–5)"),
        ("INSERT INTO outbox (template, recipient, signature, state, updated_at) SELECT 'thanks', fingerprint, 99, 'queued', at FROM entries WHERE seq = 1", 99,
         "the outbox of template 'thanks' has a row for entry 99, which is not that signer's signature in the hash chain"),
        ("INSERT INTO outbox (template, recipient, signature, state, updated_at) SELECT 'thanks', fingerprint, 1, 'queued', at FROM entries WHERE seq = 2", 1,
         "the outbox of template 'thanks' has a row for entry 1, which is not that signer's signature in the hash chain"),
        ("INSERT INTO outbox (template, recipient, signature, state, updated_at) VALUES ('thanks', 'ana@example.org', 'x', 'queued', '')", nil,
         "the outbox of template 'thanks' has a row whose signature is not an entry number"),
        ("INSERT INTO outbox (template, recipient, signature, state, updated_at) VALUES ('deliver', 'not-a-key', NULL, 'sent', '')", nil,
         "the outbox of template 'deliver' has a row for a recipient key that muster cannot have written"),
        ("CREATE TRIGGER hide AFTER INSERT ON entries BEGIN SELECT 1; END", nil, "the ledger holds a trigger 'hide' that muster did not create"),
        ("CREATE VIEW everyone AS SELECT * FROM entries", nil, "the ledger holds a view 'everyone' that muster did not create"),
        ("CREATE TABLE extra (seq INTEGER PRIMARY KEY)", nil, "the ledger holds a table 'extra' that muster did not create"),
        ("CREATE INDEX entries_at ON entries(at)", nil, "the ledger holds an index 'entries_at' that muster did not create"),
        ("INSERT INTO meta VALUES ('signature_count_published', 500)", nil,
         "the ledger's meta table holds a record 'signature_count_published' that muster did not write"),
    ])
    func anythingBesideTheChainFailsVerify(sql: String, entry: Int64?, reason: String) throws {
        let folder = try TemporaryFolder()
        let healthy = try filledLedger(folder, count: 5).verify()
        try #require(healthy.ok)
        try tamper(folder, sql)
        let ledger = try reopen(folder)
        let report = try ledger.verify()
        #expect(!report.ok)
        #expect(report.firstBad == .init(entry: entry, reason: reason))
        // The count and head stay those of the chain.
        #expect(report.count == 5 && report.entries == 5 && report.head == healthy.head)
        let halves = try ledger.verify(parallelFrom: 2)
        #expect(halves.firstBad == report.firstBad && halves.problems == report.problems)
    }

    /// SQLite's own statistics tables (ANALYZE, `PRAGMA optimize`) hold no rows of
    /// muster's: an organizer who ran them has not altered the ledger.
    @Test func sqliteStatisticsAreNotTampering() throws {
        let folder = try TemporaryFolder()
        let healthy = try filledLedger(folder, count: 5).verify()
        try tamper(folder, "ANALYZE")
        let report = try reopen(folder).verify()
        #expect(report.ok, "\(String(describing: report.firstBad))")
        #expect(report.head == healthy.head && report.count == 5)
    }

    @Test func everyFigureComesFromTheChainOnly() throws {
        let folder = try TemporaryFolder()
        _ = try filledLedger(folder, count: 3)
        _ = try reopen(folder).unsubscribe(canonicalEmail: "signer3@example.org", at: clock.now())
        // Signer 1's opt-out, forged beside the chain, means nothing either.
        try tamper(folder, Self.copyBesideTheChain + """
            INSERT INTO entries SELECT -10, 'optout', at, fingerprint, '{}', NULL, prev, hash FROM entries WHERE seq = 1;
            UPDATE meta SET value = 6 WHERE key = 'signature_count';
            """)
        let ledger = try reopen(folder)
        #expect(try ledger.signatureCount() == 3)
        #expect(try !ledger.isOptedOut(canonicalEmail: "signer1@example.org"))
        #expect(try ledger.isOptedOut(canonicalEmail: "signer3@example.org"))
        let tally = try ledger.tally(upTo: nil)
        #expect(tally.count == 3)
        #expect(tally.bodies.values.reduce(0, +) == 3)
        #expect(tally.daily.map(\.count) == [3])
        #expect(try ledger.tally(upTo: "2026-11-27T00:00:00.000Z").count == 3)
        var stored: [Int64] = []
        try ledger.forEachSignature { stored.append($0.seq) }
        #expect(stored == [1, 2, 3])
        // Mailing: the copied rows (personal data and all) are nobody's audience.
        #expect(try ledger.mailableSigners().map(\.signature) == [1, 2])
        #expect(try ledger.enqueueSigners(template: "thanks", consent: nil, at: clock.now()) == 2)
        #expect(try ledger.mailablePendingCount(template: "news", consent: "updates", targets: nil).audience == 2)
    }

    @Test func aLedgerWithRowsBesideItsChainIsNeverWritten() throws {
        let folder = try TemporaryFolder()
        _ = try filledLedger(folder, count: 3)
        try tamper(folder, "INSERT INTO entries SELECT -1, kind, at, lower(hex(randomblob(32))), body, personal_hash, prev, hash FROM entries WHERE seq = 1")
        let ledger = try reopen(folder)
        let writes: [(String, () throws -> Void)] = [
            ("append", { _ = try ledger.append(signature(4), at: clock.now()) }),
            ("appendBatch", { _ = try ledger.appendBatch { append in try append(signature(5), clock.now()) } }),
            ("forget", { _ = try ledger.forget(canonicalEmail: "signer1@example.org", at: clock.now()) }),
            ("unsubscribe", { _ = try ledger.unsubscribe(canonicalEmail: "signer2@example.org", at: clock.now()) }),
        ]
        for (name, write) in writes {
            do {
                try write()
                Issue.record("\(name) wrote to a ledger with an entry beside its chain")
            } catch let error as MusterError {
                #expect(error.status == .failure, "\(name)")
                #expect(error.message.contains("holds an entry numbered -1, outside its hash chain (entries 1–3)"), "\(name): \(error.message)")
            }
        }
        #expect(try ledger.readHead().seq == 3)
        // Personal data beside the chain is refused the same way.
        try tamper(folder, "DELETE FROM entries WHERE seq = -1; INSERT INTO personal SELECT 7, salt, data FROM personal WHERE seq = 1")
        #expect(throws: MusterError.self) { _ = try reopen(folder).append(signature(4), at: clock.now()) }
    }

    // MARK: - Item 2: the two-half verify checks every link

    /// The issue's repro at a small scale: everything up to head − k deleted, the count
    /// fixed up. With the split after entry 5 (of 10), the first half is empty for k < 5.
    @Test(arguments: [1, 3, 4, 5, 6, 9])
    func deletingTheStartIsFoundWhateverTheHalvesHold(kept: Int) throws {
        let folder = try TemporaryFolder()
        _ = try filledLedger(folder, count: 10)
        let deleted = 10 - kept
        try tamper(folder, """
            DELETE FROM personal WHERE seq <= \(deleted); DELETE FROM entries WHERE seq <= \(deleted);
            UPDATE meta SET value = \(kept) WHERE key = 'signature_count';
            """)
        let ledger = try reopen(folder)
        let expected = VerifyReport.Problem(entry: 1, reason: deleted == 1
            ? "entry 1 is missing (deleted?); entry 2 follows entry 0"
            : "entries 1–\(deleted) are missing (deleted?); entry \(deleted + 1) follows entry 0")
        let sequential = try ledger.verify(parallelFrom: .max)
        #expect(!sequential.ok && sequential.firstBad == expected)
        let halves = try ledger.verify(parallelFrom: 2)
        #expect(!halves.ok && halves.firstBad == expected)
    }

    // MARK: - Item 3: memory follows the rows, not the sequence numbers

    @Test func aForgedHugeSeqIsReported() throws {
        let folder = try TemporaryFolder()
        _ = try filledLedger(folder, count: 3)
        try tamper(folder, "INSERT INTO entries SELECT 400000000, kind, at, 'f', body, personal_hash, prev, hash FROM entries WHERE seq = 3")
        let report = try reopen(folder).verify()
        #expect(report.firstBad == .init(entry: 400_000_000, reason: "entry 400000000 is outside the hash chain (entries 1–3): a row was added beside the chain"))
        // …and when the head record is forged to cover it, the gap is reported.
        try tamper(folder, "UPDATE meta SET value = 400000000 WHERE key = 'head_seq'")
        for threshold in [Int64.max, 2] {
            let forged = try reopen(folder).verify(parallelFrom: threshold)
            #expect(forged.firstBad == .init(entry: 4, reason: "entries 4–399999999 are missing (deleted?); entry 400000000 follows entry 3"))
        }
    }

    @Test func aRowBesideAnEmptyChainIsReported() throws {
        let folder = try TemporaryFolder()
        let ledger = try #require(try Ledger.open(folder.url.appendingPathComponent("ledger.sqlite"), create: true))
        #expect(try ledger.verify().ok)
        try tamper(folder, "INSERT INTO entries VALUES (-1, 'signature', '2026-11-26T10:00:00.000Z', 'f', '{}', NULL, 'x', 'y')")
        let report = try reopen(folder).verify()
        #expect(report.firstBad == .init(entry: -1, reason: "entry -1 is outside the hash chain (no entries yet): a row was added beside the chain"))
        #expect(report.count == 0 && report.head == Ledger.genesis)
        #expect(try reopen(folder).signatureCount() == 0)
        #expect(throws: MusterError.self) { _ = try reopen(folder).append(signature(1), at: clock.now()) }
    }

    @Test func seqFlagsAnswerForEveryRunAndNothingElse() {
        var flags = SeqFlags()
        for (seq, flag) in [(1, true), (2, false), (3, true), (10, true), (11, false), (400_000_000, true)] { flags.append(Int64(seq), flag) }
        var joined = SeqFlags()
        var second = SeqFlags()
        joined.append(1, true); joined.append(2, false)
        second.append(3, true); second.append(10, true); second.append(11, false); second.append(400_000_000, true)
        joined.append(contentsOf: second)
        for table in [flags, joined] {
            #expect([0, 1, 2, 3, 4, 9, 10, 11, 12, 399_999_999, 400_000_000, 400_000_001, -1].map { table[Int64($0)] }
                    == [false, true, false, true, false, false, true, false, false, false, true, false, false])
        }
    }
}
