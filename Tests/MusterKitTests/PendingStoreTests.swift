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
