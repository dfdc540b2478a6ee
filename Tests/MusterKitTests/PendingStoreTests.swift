import Foundation
import Testing
@testable import MusterKit

/// The sign page's pending signatures (ledger format 5) on a real SQLite file:
/// duplicates by mailbox key at submission and at confirmation, one mail a day,
/// tokens bound to campaign and purpose, expiry, and `forget`.
@Suite struct PendingStoreTests {
    let manifest = sampleManifest()
    let start = Timestamp.parse("2026-11-26T10:00:00Z")!

    func signature(_ email: String) throws -> ValidSignature {
        try SignatureInput(name: "Ana Lima", email: email, fields: ["region": "Lyon"], consents: ["updates"], source: "web")
            .validated(against: manifest)
    }

    func ledger(_ folder: TemporaryFolder) throws -> Ledger {
        try #require(try Ledger.open(folder.url.appendingPathComponent("ledger.sqlite"), create: true))
    }

    func query(_ folder: TemporaryFolder, _ sql: String) throws -> [String] {
        let database = try SQLiteDatabase(path: folder.url.appendingPathComponent("ledger.sqlite").path)
        let statement = try database.prepare(sql)
        var rows: [String] = []
        while try statement.step() { rows.append(statement.text(0) ?? "NULL") }
        return rows
    }

    func token(_ outcome: Ledger.PendingOutcome) throws -> String {
        guard case .queued(_, let token) = outcome else { throw PendingTestError() }
        return token
    }

    struct PendingTestError: Error {}

    @Test func aTagVariantOfACountedSignerGetsTheAlreadySignedMail() throws {
        let folder = try TemporaryFolder()
        let ledger = try ledger(folder)
        _ = try ledger.append(signature("ana@gmail.com"), at: start)
        let outcome = try ledger.addPending(signature("a.na+petition@googlemail.com"), slug: "fair-rates", at: start)
        guard case .queued(.alreadySigned, _) = outcome else { Issue.record("\(outcome)"); return }
        // At most one such mail a day per mailbox, whatever the spelling.
        #expect(try ledger.addPending(signature("ana+2@gmail.com"), slug: "fair-rates", at: start.addingTimeInterval(3600))
                == .throttled(purpose: .alreadySigned))
        #expect(try query(folder, "SELECT count(*) FROM pending") == ["1"])
        #expect(try ledger.signatureCount() == 1)
        #expect(try ledger.verify().ok)
    }

    @Test func aVariantConfirmedAfterAnotherIsRefusedAsDuplicate() throws {
        let folder = try TemporaryFolder()
        let ledger = try ledger(folder)
        let first = try token(ledger.addPending(signature("ana@gmail.com"), slug: "fair-rates", at: start))
        // Another spelling the next day (after the one-mail-a-day window): a second pending row.
        let second = try token(ledger.addPending(signature("ana+x@gmail.com"), slug: "fair-rates", at: start.addingTimeInterval(86_401)))
        let later = start.addingTimeInterval(90_000)
        #expect(try ledger.lookupPending(token: second, slug: "fair-rates", at: later) == .waiting)
        #expect(try ledger.confirmPending(token: second, slug: "fair-rates", at: later) == .confirmed(seq: 1, count: 1))
        #expect(try ledger.confirmPending(token: second, slug: "fair-rates", at: later) == .alreadyConfirmed(count: 1))
        #expect(try ledger.confirmPending(token: first, slug: "fair-rates", at: later) == .duplicate(count: 1))
        #expect(try ledger.signatureCount() == 1)
        // Personal data leaves `pending` on confirmation, whatever the outcome.
        #expect(try query(folder, "SELECT data FROM pending") == ["{}", "{}"])
        #expect(try query(folder, "SELECT source FROM (SELECT json_extract(body, '$.source') AS source FROM entries)") == ["web"])
        // As for any append: a +tag spelling keeps a mailbox-key row (its key is not its
        // fingerprint's start); a plain address would need none.
        #expect(try query(folder, "SELECT count(*) FROM mailbox_keys") == ["1"])
        #expect(try ledger.verify().ok)
    }

    @Test func tokensAreBoundToTheCampaignAndExpire() throws {
        let folder = try TemporaryFolder()
        let ledger = try ledger(folder)
        let token = try token(ledger.addPending(signature("bo@example.org"), slug: "fair-rates", at: start))
        #expect(try ledger.lookupPending(token: token, slug: "other-campaign", at: start) == .unknown)
        #expect(try ledger.confirmPending(token: token, slug: "other-campaign", at: start) == .unknown)
        var altered = Array(token)
        altered[5] = altered[5] == "A" ? "B" : "A"
        #expect(try ledger.confirmPending(token: String(altered), slug: "fair-rates", at: start) == .unknown)
        #expect(try ledger.confirmPending(token: token + "x", slug: "fair-rates", at: start) == .unknown)
        let expired = start.addingTimeInterval(Ledger.pendingLifetime + 1)
        #expect(try ledger.confirmPending(token: token, slug: "fair-rates", at: expired) == .unknown)
        #expect(try ledger.sweepPending(at: expired) == 1)
        #expect(try query(folder, "SELECT count(*) FROM pending") == ["0"])
        #expect(try ledger.signatureCount() == 0)
    }

    @Test func forgetErasesUnconfirmedSignaturesOfTheMailbox() throws {
        let folder = try TemporaryFolder()
        let ledger = try ledger(folder)
        _ = try ledger.addPending(signature("a.na+1@gmail.com"), slug: "fair-rates", at: start)
        _ = try ledger.addPending(signature("bo@example.org"), slug: "fair-rates", at: start)
        #expect(try ledger.forget(canonicalEmail: "ana@gmail.com", at: start) == .pendingErased(count: 1))
        #expect(try query(folder, "SELECT count(*) FROM pending WHERE data LIKE '%gmail%'") == ["0"])
        #expect(try query(folder, "SELECT count(*) FROM pending") == ["1"])
        #expect(try ledger.forget(canonicalEmail: "zed@example.org", at: start) == .notFound)
    }
}

/// The mail queue inside `pending`: the outbox's state machine, never doubled.
@Suite struct PendingMailQueueTests {
    let start = Timestamp.parse("2026-11-26T10:00:00Z")!

    func ledger(_ folder: TemporaryFolder) throws -> Ledger {
        try #require(try Ledger.open(folder.url.appendingPathComponent("ledger.sqlite"), create: true))
    }

    func query(_ folder: TemporaryFolder, _ sql: String) throws -> [String] {
        let database = try SQLiteDatabase(path: folder.url.appendingPathComponent("ledger.sqlite").path)
        let statement = try database.prepare(sql)
        var rows: [String] = []
        while try statement.step() { rows.append(statement.text(0) ?? "NULL") }
        return rows
    }

    func add(_ ledger: Ledger, _ email: String, at date: Date) throws -> Ledger.PendingOutcome {
        let signature = try SignatureInput(name: "Ana Lima", email: email, fields: ["region": "Lyon"], consents: [], source: "web")
            .validated(against: sampleManifest())
        return try ledger.addPending(signature, slug: "fair-rates", at: date)
    }

    @Test func aClaimedMailIsNeverClaimedTwiceAndOnlyDeferredOnesComeBack() throws {
        let folder = try TemporaryFolder()
        let ledger = try ledger(folder)
        for email in ["a@example.org", "b@example.org", "c@example.org", "d@example.org"] { _ = try add(ledger, email, at: start) }
        let claimed = try ledger.claimPendingMail(limit: 10, at: start, now: start)
        #expect(claimed.map(\.email) == ["a@example.org", "b@example.org", "c@example.org", "d@example.org"])
        #expect(claimed.allSatisfy { $0.token.count == 22 && $0.attempts == 0 && $0.purpose == .confirm })
        #expect(try ledger.claimPendingMail(limit: 10, at: start, now: start).isEmpty, "in flight: not claimed again")

        let failure = SMTPFailure(replyCode: 451, replyText: "4.3.0 try later <a@example.org>", detail: "scripted")
        let retry = start.addingTimeInterval(60)
        try ledger.finishPendingMail(id: claimed[0].id, outcome: .deferred(failure), retryAt: retry)
        try ledger.finishPendingMail(id: claimed[1].id, outcome: .unknown(failure), retryAt: retry)
        try ledger.finishPendingMail(id: claimed[2].id, outcome: .rejected(failure), retryAt: retry)
        try ledger.finishPendingMail(id: claimed[3].id, outcome: .delivered(SMTPReceipt(replyCode: 250, replyText: "OK")), retryAt: retry)
        #expect(try query(folder, "SELECT mail_state || ' ' || (mail_token IS NULL) || ' ' || mail_attempts FROM pending ORDER BY id")
                == ["deferred 0 1", "unknown 1 1", "failed 1 1", "sent 1 1"])
        let replies = try query(folder, "SELECT mail_reply FROM pending ORDER BY id").prefix(3)
        #expect(replies.allSatisfy { $0.contains("[address]") && !$0.contains("a@example.org") }, "no address in replies: \(replies)")
        #expect(try ledger.claimPendingMail(limit: 10, at: start, now: start.addingTimeInterval(59)).isEmpty, "not before its time")
        let again = try ledger.claimPendingMail(limit: 10, at: start, now: retry)
        #expect(again.map(\.email) == ["a@example.org"] && again[0].attempts == 1, "only the deferred one, never the unknown one")
        // A server that stopped with it in flight: unknown on the next start, not resent.
        #expect(try ledger.recoverPendingMail() == 1)
        #expect(try ledger.claimPendingMail(limit: 10, at: start, now: retry.addingTimeInterval(3600)).isEmpty)
        // …but the signer may use the form again at once: a new mail, with a new token.
        guard case .queued(.confirm, let token) = try add(ledger, "a@example.org", at: start.addingTimeInterval(120)) else {
            Issue.record("not queued"); return
        }
        #expect(try ledger.claimPendingMail(limit: 10, at: start, now: retry).map(\.token) == [token])
        // While that one is queued or sent, the same day, no third mail.
        #expect(try add(ledger, "a@example.org", at: start.addingTimeInterval(180)) == .throttled(purpose: .confirm))
    }

    @Test func anAlreadySignedRowKeepsNothingOnceSent() throws {
        let folder = try TemporaryFolder()
        let ledger = try ledger(folder)
        _ = try ledger.append(SignatureInput(name: "Bo", email: "bo@example.org", fields: ["region": "Lyon"]).validated(against: sampleManifest()), at: start)
        guard case .queued(.alreadySigned, _) = try add(ledger, "bo+web@example.org", at: start) else { Issue.record("not queued"); return }
        let claimed = try ledger.claimPendingMail(limit: 10, at: start, now: start)
        #expect(claimed.count == 1 && claimed[0].purpose == .alreadySigned && claimed[0].email == "bo+web@example.org")
        try ledger.finishPendingMail(id: claimed[0].id, outcome: .delivered(SMTPReceipt(replyCode: 250, replyText: "OK")), retryAt: start)
        #expect(try query(folder, "SELECT data || ' ' || (mail_token IS NULL) FROM pending") == ["{} 1"])
        #expect(try ledger.verify().ok)
    }
}

/// What `muster serve` does on every form and confirmation without Foundation's slower
/// parts: the pending signature read back by `CanonicalJSONReader`, the token encoded by
/// hand, and SQLite statements kept prepared on the connection.
@Suite struct PendingEncodingTests {
    let manifest = sampleManifest()

    @Test func aPendingSignatureReadsBackAsWrittenAndAsFoundationWroteIt() throws {
        let signature = try SignatureInput(name: "Ana \"Lima\" \\ Ødegård", email: "Ana.Lima+petition@Example.org", comment: "Fair / rates «now»",
                                           fields: ["region": "Lyon"], consents: ["updates"], source: "web")
            .validated(against: manifest)
        let written = Ledger.pendingData(signature)
        #expect(Ledger.pendingSignature(written) == signature)
        // A row written by JSONSerialization (escaped slashes, which the fast reader does not take).
        var object: [String: Any] = [
            "canonical_email": signature.canonicalEmail, "name": signature.name, "email": signature.email,
            "public_fields": signature.publicFields, "personal_fields": signature.personalFields,
            "consents": signature.consents, "source": signature.source,
        ]
        object["comment"] = signature.comment
        let foundation = String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
        #expect(foundation.contains(#"\/"#))
        #expect(Ledger.pendingSignature(foundation) == signature)
        // Parseable, but with a list where a text belongs: read as Foundation's parser read it.
        let odd = #"{"canonical_email":"a@b.org","consents":"x","email":"a@b.org","name":"A","source":"web"}"#
        #expect(Ledger.pendingSignature(odd)?.consents == [])
        for broken in ["", "{}", "[1]", #"{"name":"A"}"#, "{\"canonical_email\":"] {
            #expect(Ledger.pendingSignature(broken) == nil, "\(broken)")
        }
    }

    @Test func tokensAreBase64URLOf128RandomBits() throws {
        var generator = SystemRandomNumberGenerator()
        for length in 0...40 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let foundation = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            #expect(Ledger.base64URL(bytes) == foundation, "\(bytes)")
        }
        #expect(Ledger.base64URL([0xFB, 0xFF, 0xBF]) == "-_-_")
        let tokens = (0..<200).map { _ in Ledger.newToken() }
        #expect(tokens.allSatisfy(Ledger.isWellFormedToken))
        #expect(Set(tokens).count == tokens.count)
    }

    @Test func keptStatementsSurviveErrorsSchemaChangesAndManyTexts() throws {
        let folder = try TemporaryFolder()
        let database = try SQLiteDatabase(path: folder.url.appendingPathComponent("kept.sqlite").path)
        try database.execute("CREATE TABLE t (x INTEGER UNIQUE)")
        try database.cached("INSERT INTO t VALUES (?)").runAndReset(.int(1))
        #expect(try database.scalarInt("SELECT count(*) FROM t") == 1)
        // The same text fails (a unique conflict), then works with another value.
        #expect(throws: SQLiteError.self) { try database.cached("INSERT INTO t VALUES (?)").runAndReset(.int(1)) }
        try database.cached("INSERT INTO t VALUES (?)").runAndReset(.int(2))
        #expect(try database.scalarInt("SELECT count(*) FROM t") == 2)
        // A schema change under kept statements: SQLite prepares them again.
        try database.execute("ALTER TABLE t ADD COLUMN y TEXT")
        try database.execute("INSERT INTO t VALUES (3, 'c')")
        #expect(try database.scalarInt("SELECT count(*) FROM t") == 3)
        #expect(try database.scalarText("SELECT y FROM t WHERE x = ?", .int(3)) == "c")
        #expect(try database.scalarText("SELECT y FROM t WHERE x = ?", .int(9)) == nil)
        // More distinct texts than the cache keeps: still right.
        for number in 0..<(SQLiteDatabase.cacheLimit + 10) {
            #expect(try database.scalarInt("SELECT \(number)") == Int64(number))
        }
        // No kept statement holds a read open between uses, and a savepoint undone by
        // its kept statements leaves the rest of the transaction.
        #expect(!database.hasStatementInProgress)
        try database.writeTransaction {
            try database.executeCached("SAVEPOINT request")
            try database.execute("INSERT INTO t VALUES (4, 'd')")
            try database.executeCached("ROLLBACK TO request")
            try database.executeCached("RELEASE request")
            try database.execute("INSERT INTO t VALUES (5, 'e')")
        }
        #expect(try database.scalarText("SELECT group_concat(x) FROM (SELECT x FROM t ORDER BY x)") == "1,2,3,5")
        #expect(!database.hasStatementInProgress)
    }
}
