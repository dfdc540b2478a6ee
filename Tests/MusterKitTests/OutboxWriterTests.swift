import Foundation
import Synchronization
import Testing
@testable import MusterKit

@Suite struct OutboxWriterTests {
    let clock = FixedClock(Timestamp.parse("2026-11-26T10:00:00Z")!)

    func ledger(_ folder: TemporaryFolder, signers: Int) throws -> (Ledger, [Recipient]) {
        let manifest = sampleManifest()
        let ledger = try #require(try Ledger.open(folder.url.appendingPathComponent("ledger.sqlite"), create: true))
        for index in 0..<signers {
            let input = SignatureInput(name: "Signer \(index)", email: "s\(index)@example.org", fields: ["region": "Lyon", "phone": "06"], consents: [])
            _ = try ledger.append(try input.validated(against: manifest), at: clock.now())
        }
        let recipients = try ledger.mailableSigners()
        try ledger.enqueue(template: "thanks", recipients: recipients, at: clock.now())
        return (ledger, recipients)
    }

    /// What another connection (as after a crash) finds on disk.
    func statesOnDisk(_ folder: TemporaryFolder) throws -> [String: Int] {
        let reader = try #require(try Ledger.open(folder.url.appendingPathComponent("ledger.sqlite"), create: false))
        let counts = try reader.outboxCounts(template: "thanks")["thanks"] ?? OutboxCounts()
        var result: [String: Int] = [:]
        for state in OutboxState.allCases where counts[state] > 0 { result[state.rawValue] = counts[state] }
        return result
    }

    @Test func aTicketIsCommittedOnlyOnceItsChangesAreVisibleToAnotherConnection() throws {
        let folder = try TemporaryFolder()
        let (ledger, people) = try ledger(folder, signers: 6)
        let commits = Mutex(0)
        let writer = OutboxWriter(ledger: ledger, template: "thanks", clock: clock, onCommit: { commits.withLock { $0 += 1 } })
        let first = writer.submit(people.prefix(3).map { .init(recipient: $0.key, state: .sending) })
        let second = writer.submit([.init(recipient: people[0].key, state: .sent, reply: "250 ok", countsAttempt: true)])
        #expect(second > first, "tickets grow")
        // Wait for the writer (it commits on its own thread).
        let deadline = Date().addingTimeInterval(10)
        while try writer.committedTicket() < second && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
        #expect(try writer.committedTicket() >= second)
        #expect(try statesOnDisk(folder) == ["sending": 2, "sent": 1, "queued": 3])
        #expect(commits.withLock { $0 } >= 1, "onCommit runs after commits")
        #expect(writer.close() == nil)
        let sent = try ledger.outboxRows(template: "thanks", states: [.sent])
        #expect(sent.map(\.attempts) == [1])
        #expect(sent.map(\.reply) == ["250 ok"])
    }

    @Test func closeWritesWhatIsLeftAndRestoresTheCheckpointSetting() throws {
        let folder = try TemporaryFolder()
        let (ledger, people) = try ledger(folder, signers: 4)
        let writer = OutboxWriter(ledger: ledger, template: "thanks", clock: clock)
        for person in people {
            writer.submit([.init(recipient: person.key, state: .sending)])
            writer.submit([.init(recipient: person.key, state: .sent, reply: "250 ok", countsAttempt: true)])
        }
        #expect(writer.close() == nil)
        #expect(try statesOnDisk(folder) == ["sent": 4])
        #expect(try ledger.database.scalarInt("PRAGMA wal_autocheckpoint") == 1000)
        #expect(try ledger.database.scalarInt("PRAGMA cache_size") == -2000)
    }

    @Test func aFailedWriteIsReportedAndNothingAfterItCounts() throws {
        let folder = try TemporaryFolder()
        let (ledger, people) = try ledger(folder, signers: 2)
        // A trigger makes the next outbox update fail, as a full disk would.
        try ledger.database.execute("CREATE TRIGGER fail BEFORE UPDATE ON outbox BEGIN SELECT RAISE(ABORT, 'disk full'); END")
        let writer = OutboxWriter(ledger: ledger, template: "thanks", clock: clock)
        let ticket = writer.submit([.init(recipient: people[0].key, state: .sending)])
        let deadline = Date().addingTimeInterval(10)
        var failure: Error?
        while failure == nil && Date() < deadline {
            do { _ = try writer.committedTicket() } catch { failure = error }
            Thread.sleep(forTimeInterval: 0.005)
        }
        #expect(failure != nil, "the failure reaches the loops through committedTicket")
        #expect(ticket >= 1)
        writer.submit([.init(recipient: people[1].key, state: .sending)])
        #expect(writer.close() != nil)
        #expect(try statesOnDisk(folder) == ["queued": 2], "a mark that failed to commit never counts as on disk")
    }

    @Test func tokenBucketHandsOutOneTokenPerIntervalAndSavesNoneUp() {
        let bucket = TokenBucket(rate: 10)  // one every 0.1 s
        #expect(bucket.tryTake() == 0)
        let wait = bucket.tryTake()
        #expect(wait > 0 && wait <= 0.1, "the next token is not due yet: \(wait)")
        #expect(bucket.tryTake() > 0, "asking again takes nothing")
    }
}
