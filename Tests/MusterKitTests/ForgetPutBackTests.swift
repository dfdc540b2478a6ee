import Foundation
import Testing
@testable import MusterKit

/// Personal data put back for a forgotten signer (with an SQLite client, say) is tampering:
/// `verify` reports it whatever its salt and data bytes, and no reader — export, merge,
/// the mail audiences, the outbox's replies — treats the signer as present again. What
/// makes a signer forgotten is the chained redaction, not the absence of a row.
@Suite struct ForgetPutBackTests {
    let manifest = sampleManifest()
    let clock = FixedClock(Timestamp.parse("2026-11-26T10:00:00Z")!)

    /// Three signers who consent to updates; signer 2 forgotten. Returns the ledger, its
    /// file, and signer 2's salt and data as they were before the forget.
    func ledgerWithAForgottenSigner(_ folder: TemporaryFolder) throws -> (Ledger, URL, salt: [UInt8], data: String) {
        let url = folder.url.appendingPathComponent("ledger.sqlite")
        let ledger = try #require(try Ledger.open(url, create: true))
        for index in 1...3 {
            let input = SignatureInput(name: "Signer \(index)", email: "signer\(index)@example.org",
                                       fields: ["region": "Lyon"], consents: ["updates"])
            _ = try ledger.append(try input.validated(against: manifest), at: clock.now())
        }
        let client = try SQLiteDatabase(path: url.path)
        let statement = try client.prepare("SELECT salt, data FROM personal WHERE seq = 2")
        try #require(try statement.step())
        let salt = statement.blob(0), data = try #require(statement.text(1))
        statement.reset()
        #expect(try ledger.forget(canonicalEmail: "signer2@example.org", at: clock.now()) == .forgotten(seq: 2, redaction: 4))
        return (ledger, url, salt, data)
    }

    /// What is put back: the salt as SQL, and the data (nil: the original data).
    static let putBack: [(salt: String, data: String?)] = [
        ("x''", #"{"email":"signer2@example.org","name":"Signer 2"}"#), // the reported hole: an empty blob
        ("x''", nil),
        ("x''", ""),
        ("''", #"{"email":"signer2@example.org","name":"Signer 2"}"#), // empty text, not a blob
        ("x'00'", #"{"email":"signer2@example.org","name":"Signer 2"}"#),
        ("original", nil), // the very row forget deleted: its hash matches again
    ]

    @Test(arguments: 0..<putBack.count)
    func personalDataPutBackAfterForgetIsTamperingAndIgnored(_ index: Int) throws {
        let (salt, data) = Self.putBack[index]
        let folder = try TemporaryFolder()
        let (ledger, url, originalSalt, originalData) = try ledgerWithAForgottenSigner(folder)
        #expect(try ledger.verify().ok)
        let audienceBefore = try ledger.mailablePendingCount(template: "news", consent: nil, targets: nil).audience
        #expect(audienceBefore == 2)

        // Put back with a second connection, as `sqlite3` would.
        let client = try SQLiteDatabase(path: url.path)
        let insert = try client.prepare("INSERT INTO personal (seq, salt, data) VALUES (2, \(salt == "original" ? "?" : salt), ?)")
        if salt == "original" {
            try insert.run(.blob(originalSalt), .text(data ?? originalData))
        } else {
            try insert.run(.text(data ?? originalData))
        }

        // verify: a problem, in one pass and in two halves.
        for report in [try ledger.verify(), try ledger.verify(parallelFrom: 2)] {
            #expect(!report.ok, "put back with salt \(salt): \(report)")
            #expect(report.count == 3 && report.redacted == 1)
            if salt == "original" {
                #expect(report.firstBad == .init(entry: 4, reason: "entry 4 redacts entry 2, but that signature's personal data is present again"))
            } else {
                #expect(report.firstBad?.entry == 2, "\(report)")
                #expect(report.problems == 2, "the altered personal data, and the redaction it contradicts")
            }
        }

        // Export and merge (forEachSignature): still forgotten.
        var people: [Int64: StoredSignature.Personal?] = [:]
        try ledger.forEachSignature { people[$0.seq] = .some($0.personal) }
        #expect(people.count == 3)
        #expect(people[2] == .some(nil), "signature 2 is exported as forgotten")
        #expect(people[1]??.email == "signer1@example.org")

        // The mail audiences: never mailed again.
        #expect(try ledger.mailableSigners().compactMap(\.signature) == [1, 3])
        #expect(try ledger.mailableSigners(consent: "updates").compactMap(\.signature) == [1, 3])
        #expect(try ledger.mailablePendingCount(template: "news", consent: nil, targets: nil).audience == 2)
        #expect(try ledger.enqueueSigners(template: "news", consent: nil, at: clock.now()) == 2)
        let forgotten = Recipient(key: try ledger.recipientKey(email: "signer2@example.org"), signature: 2, name: "", email: "",
                                  fields: [:], consents: ["updates"])
        #expect(try !ledger.isMailable(forgotten, asSigner: true, consent: nil))
    }

    @Test func aQueuedRowOfAForgottenSignerIsFailedAndKeepsNoReplyEvenIfTheDataIsPutBack() throws {
        let folder = try TemporaryFolder()
        let url = folder.url.appendingPathComponent("ledger.sqlite")
        let ledger = try #require(try Ledger.open(url, create: true))
        for index in 1...2 {
            let input = SignatureInput(name: "Signer \(index)", email: "signer\(index)@example.org", fields: ["region": "Lyon"])
            _ = try ledger.append(try input.validated(against: manifest), at: clock.now())
        }
        #expect(try ledger.enqueueSigners(template: "news", consent: nil, at: clock.now()) == 2)
        _ = try ledger.forget(canonicalEmail: "signer2@example.org", at: clock.now())
        try SQLiteDatabase(path: url.path).execute("""
            INSERT INTO personal (seq, salt, data) VALUES (2, x'', '{"email":"signer2@example.org","name":"Signer 2"}')
            """)
        let key = try ledger.recipientKey(email: "signer2@example.org")

        // The blast's writer: a relay reply quoting the address is not kept for a forgotten signer.
        let updater = OutboxUpdater(ledger: ledger, template: "news")
        try updater.apply([.init(recipient: key, state: .failed, reply: "550 signer2@example.org unknown", countsAttempt: true)], at: clock.now())
        let row = try #require(try ledger.outboxRows(template: "news", states: Set(OutboxState.allCases)).first { $0.recipient == key })
        #expect(row.reply == "(erased with the signer's personal data)")

        // The outbox page a blast reads carries no signer data for it.
        try SQLiteDatabase(path: url.path).execute("UPDATE outbox SET state = 'queued' WHERE recipient = '\(key)'")
        let page = try ledger.outboxPage(template: "news", states: [.queued], after: (0, ""), limit: 10)
        #expect(page.count == 2)
        #expect(page.first { $0.row.signature == 2 }?.signer == nil)
        #expect(page.first { $0.row.signature == 1 }?.signer?.email == "signer1@example.org")
        // And the row is failed before any blast could claim it.
        #expect(try ledger.failUnmailable(template: "news", consent: nil, targetKeys: nil, at: clock.now()) == 1)
    }

    @Test func theSchemaRefusesAPersonalRowWithANullSalt() throws {
        let folder = try TemporaryFolder()
        let (_, url, _, _) = try ledgerWithAForgottenSigner(folder)
        let client = try SQLiteDatabase(path: url.path)
        #expect(try client.scalarInt("SELECT \"notnull\" FROM pragma_table_info('personal') WHERE name = 'salt'") == 1)
        #expect(try client.scalarInt("SELECT \"notnull\" FROM pragma_table_info('personal') WHERE name = 'data'") == 1)
        let error = try #require(throws: SQLiteError.self) {
            try client.execute("INSERT INTO personal (seq, salt, data) VALUES (2, NULL, '{}')")
        }
        #expect(error.code == 1299, "SQLITE_CONSTRAINT_NOTNULL: \(error)")
        #expect(try client.scalarInt("SELECT count(*) FROM personal WHERE seq = 2") == 0)
    }
}
