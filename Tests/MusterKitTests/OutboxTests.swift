import Foundation
import Testing
@testable import MusterKit

@Suite struct OutboxTests {
    let clock = FixedClock(Timestamp.parse("2026-11-26T10:00:00Z")!)

    func ledger(_ folder: TemporaryFolder) throws -> Ledger {
        let manifest = sampleManifest()
        let ledger = try #require(try Ledger.open(folder.url.appendingPathComponent("ledger.sqlite"), create: true))
        for (index, consent) in [true, false, true, true].enumerated() {
            let input = SignatureInput(name: "Signer \(index + 1)", email: "s\(index + 1)@example.org",
                                       fields: ["region": "Lyon", "phone": "06"], consents: consent ? ["updates"] : [])
            _ = try ledger.append(try input.validated(against: manifest), at: clock.now())
        }
        return ledger
    }

    @Test func audiencesLeaveOutForgottenUnsubscribedAndNonConsenting() throws {
        let folder = try TemporaryFolder()
        let ledger = try ledger(folder)
        _ = try ledger.forget(canonicalEmail: "s3@example.org", at: clock.now())
        _ = try ledger.unsubscribe(canonicalEmail: "s4@example.org", at: clock.now())
        let signers = try ledger.mailableSigners()
        #expect(signers.map(\.email) == ["s1@example.org", "s2@example.org"])
        #expect(signers[0].fields == ["region": "Lyon", "phone": "06"])
        #expect(signers[0].name == "Signer 1")
        #expect(try ledger.mailableSigners(consent: "updates").map(\.email) == ["s1@example.org"])
        let targets = try ledger.mailableTargets([.init(name: "Board", email: "board@example.org"), .init(name: "Gone", email: "s4@example.org")])
        #expect(targets.map(\.name) == ["Board"])
    }

    @Test func enqueueIsIdempotentAndInterruptedSendsBecomeUnknown() throws {
        let folder = try TemporaryFolder()
        let ledger = try ledger(folder)
        let signers = try ledger.mailableSigners()
        #expect(try ledger.enqueue(template: "thanks", recipients: signers, at: clock.now()) == 4)
        #expect(try ledger.enqueue(template: "thanks", recipients: signers, at: clock.now()) == 0)
        try ledger.updateOutbox(template: "thanks", [
            .init(recipient: signers[0].key, state: .sent, reply: "250 ok", countsAttempt: true),
            .init(recipient: signers[1].key, state: .sending),
            .init(recipient: signers[2].key, state: .failed, reply: "550 no such user", countsAttempt: true),
        ], at: clock.now())
        #expect(try ledger.markInterrupted(template: "thanks", at: clock.now()) == 1)
        let counts = try #require(try ledger.outboxCounts()["thanks"])
        #expect(counts.sent == 1 && counts.unknown == 1 && counts.failed == 1 && counts.queued == 1 && counts.total == 4)
        let failed = try ledger.outboxRows(template: "thanks", states: [.failed])
        #expect(failed.map(\.reply) == ["550 no such user"])
        #expect(failed.map(\.attempts) == [1])
        // the outbox keys are fingerprints: no address is stored in it
        let database = try SQLiteDatabase(path: folder.url.appendingPathComponent("ledger.sqlite").path)
        #expect(try database.scalarInt("SELECT count(*) FROM outbox WHERE recipient LIKE '%@%'") == 0)
        #expect(try ledger.verify().ok)
    }
}
