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
        #expect(try ledger.markInterrupted(at: clock.now()) == 1)
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

    /// Rows `sending` after a crash, and journals that say what became of them.
    func interruptedRun(_ folder: TemporaryFolder) throws -> (Ledger, [Recipient]) {
        let ledger = try ledger(folder)
        let signers = try ledger.mailableSigners()
        try ledger.enqueue(template: "thanks", recipients: signers, at: clock.now())
        try ledger.updateOutbox(template: "thanks", signers.map { .init(recipient: $0.key, state: .sending) }, at: clock.now())
        return (ledger, signers)
    }

    func states(_ ledger: Ledger, _ signers: [Recipient]) throws -> [OutboxState] {
        let rows = try ledger.outboxRows(template: "thanks", states: Set(OutboxState.allCases))
        let byKey = Dictionary(uniqueKeysWithValues: rows.map { ($0.recipient, $0.state) })
        return signers.map { byKey[$0.key] ?? .queued }
    }

    @Test func aJournalFromThisBootTellsSentUnknownAndNeverHandedOverApart() throws {
        let folder = try TemporaryFolder()
        let (ledger, signers) = try interruptedRun(folder)
        // Two loops' journals: s1 accepted, s2 handed over with no reply, s3 and s4 only claimed.
        let first = try HandoverJournal(url: folder.url.appendingPathComponent(".mail.journal.0"), template: "thanks")
        first.handed(signers[0].key)
        first.accepted(signers[0].key)
        try first.flush()
        let second = try HandoverJournal(url: folder.url.appendingPathComponent(".mail.journal.1"), template: "thanks")
        second.handed(signers[1].key)
        try second.flush()
        let files = HandoverJournal.files(in: folder.url).journals
        #expect(files.map(\.lastPathComponent) == [".mail.journal.0", ".mail.journal.1"])
        let recovery = HandoverJournal.recover(files)
        #expect(recovery.covers("thanks") == (HandoverJournal.bootID != nil))
        try #require(HandoverJournal.bootID != nil, "this test needs Linux's boot_id")
        #expect(try ledger.markInterrupted(journal: recovery, at: clock.now()) == 1)
        #expect(try states(ledger, signers) == [.sent, .unknown, .queued, .queued])
        #expect(try ledger.outboxRows(template: "thanks", states: [.unknown]).map(\.attempts) == [1], "the hand-over was an attempt")
        let sent = try ledger.outboxRows(template: "thanks", states: [.sent])
        #expect(sent.map(\.attempts) == [1])
        #expect(sent.first?.reply?.hasPrefix("250 ") == true)
    }

    /// Issue 10, item 7: a message refused with 4xx (or 5xx) and claimed again left only its
    /// `H` line, which recovery read as "handed over, no reply": unknown.
    @Test func aJournaledRefusalIsRecoveredAsDeferredOrFailedNotUnknown() throws {
        let folder = try TemporaryFolder()
        let (ledger, signers) = try interruptedRun(folder)
        try #require(HandoverJournal.bootID != nil, "this test needs Linux's boot_id")
        let journal = try HandoverJournal(url: folder.url.appendingPathComponent(".mail.journal.0"), template: "thanks")
        // s1: 451, then claimed again (sending) but not yet handed over again.
        journal.handed(signers[0].key)
        journal.record(.deferred, signers[0].key)
        // s2: 550 to RCPT. s3: 451, handed over again, no reply yet: the one in flight.
        journal.handed(signers[1].key)
        journal.record(.failed, signers[1].key)
        journal.handed(signers[2].key)
        journal.record(.deferred, signers[2].key)
        journal.handed(signers[2].key)
        try journal.flush()
        let recovery = HandoverJournal.recover(HandoverJournal.files(in: folder.url).journals)
        #expect(recovery.last == [signers[0].key: .deferred, signers[1].key: .failed, signers[2].key: .handed])
        #expect(try ledger.markInterrupted(journal: recovery, at: clock.now()) == 1, "only the message in flight is unknown")
        #expect(try states(ledger, signers) == [.deferred, .failed, .unknown, .queued])
        // A rewrite keeps the order: an outcome, then the same key in flight again.
        try journal.rewrite([(.handed, signers[0].key), (.deferred, signers[0].key), (.handed, signers[0].key)])
        #expect(HandoverJournal.recover([journal.url]).last == [signers[0].key: .handed])
        journal.remove()
    }

    /// Issue 10, item 4: relays quote the address; the outbox keeps replies without it.
    @Test func repliesAreStoredWithoutAnyAddress() {
        #expect(Blast.redactingAddresses("550 5.1.1 <Ana.Lima+x@Example.org>: unknown user") == "550 5.1.1 <[address]>: unknown user")
        #expect(Blast.redactingAddresses("250 2.1.5 ana@example.org ok, zoé@bücher.example too") == "250 2.1.5 [address] ok, [address] too")
        #expect(Blast.redactingAddresses("250 2.0.0 OK queued as 0001") == "250 2.0.0 OK queued as 0001")
        #expect(Blast.redactingAddresses("451 4.3.0 @ the end: \"x\"@y") == "451 4.3.0 [address] the end: [address]")
    }

    /// Issue 10, items 4 and 5: another connection's opt-out or erasure is seen by the gate
    /// (one `PRAGMA data_version` a round), and a reply written after a forget is not kept.
    @Test func theGateSeesOptOutsAndErasuresCommittedElsewhereAndTheWriterKeepsNoReply() throws {
        let folder = try TemporaryFolder()
        let ledger = try ledger(folder)
        let signers = try ledger.mailableSigners()
        try ledger.enqueue(template: "thanks", recipients: signers, at: clock.now())
        let gate = try MailabilityGate(url: ledger.url, audience: .signers, consent: nil)
        let before = try gate.newestEntry()
        #expect(try gate.newestEntry() == before)
        #expect(try signers.allSatisfy { try gate.isMailable($0) })
        // Another connection, as another process would.
        let other = try #require(try Ledger.open(ledger.url, create: false))
        _ = try other.unsubscribe(canonicalEmail: "s1@example.org", at: clock.now())
        _ = try other.forget(canonicalEmail: "s2@example.org", at: clock.now())
        let after = try gate.newestEntry()
        #expect(after > before)
        #expect(try signers.map { try gate.isMailable($0) } == [false, false, true, true])
        // The blast's writer stores no reply for the forgotten signer.
        try ledger.updateOutbox(template: "thanks", [.init(recipient: signers[1].key, state: .failed, reply: "550 unknown user", countsAttempt: true),
                                                     .init(recipient: signers[2].key, state: .failed, reply: "550 unknown user", countsAttempt: true)], at: clock.now())
        #expect(try ledger.outboxRows(template: "thanks", states: [.failed]).map(\.reply) == ["(erased with the signer's personal data)", "550 unknown user"])
        // The cost on the hot path: one `PRAGMA data_version` per round when nothing changed.
        let rounds = 100_000
        let started = Date()
        for _ in 0..<rounds { _ = try gate.newestEntry() }
        let perRound = Date().timeIntervalSince(started) / Double(rounds) * 1_000_000
        print("MailabilityGate.newestEntry: \(String(format: "%.2f", perRound)) µs per round with nothing changed")
        #expect(perRound < 100)
    }

    @Test func aJournalFromAnotherBootOrTemplateOrDamagedTrustsNothing() throws {
        let folder = try TemporaryFolder()
        let (ledger, signers) = try interruptedRun(folder)
        let journal = try HandoverJournal(url: folder.url.appendingPathComponent(".mail.journal.0"), template: "thanks")
        journal.handed(signers[0].key)
        try journal.flush()
        let files = HandoverJournal.files(in: folder.url).journals
        // Written before a reboot: unsynced lines may be lost, so nothing is trusted.
        #expect(HandoverJournal.recover(files, bootID: "another-boot").covers("thanks") == false)
        #expect(HandoverJournal.recover(files, bootID: nil).covers("thanks") == false)
        #expect(HandoverJournal.recover([], bootID: "b").covers("thanks") == false)
        // The journal of another template says nothing about these rows.
        #expect(HandoverJournal.recover(files).covers("welcome") == false)
        // A line that is not an event: nothing is trusted.
        let handle = try FileHandle(forWritingTo: files[0])
        handle.seekToEndOfFile()
        handle.write(Data("X garbage\n".utf8))
        try handle.close()
        let damaged = HandoverJournal.recover(files)
        #expect(damaged.covers("thanks") == false)
        #expect(try ledger.markInterrupted(journal: damaged, at: clock.now()) == 4)
        #expect(try states(ledger, signers) == [.unknown, .unknown, .unknown, .unknown])
    }

    @Test func aLastLineCutShortIsIgnoredAndARewriteKeepsOnlyWhatIsUnresolved() throws {
        let folder = try TemporaryFolder()
        let (_, signers) = try interruptedRun(folder)
        try #require(HandoverJournal.bootID != nil, "this test needs Linux's boot_id")
        let url = folder.url.appendingPathComponent(".mail.journal.0")
        let journal = try HandoverJournal(url: url, template: "thanks")
        for signer in signers { journal.handed(signer.key) }
        journal.accepted(signers[0].key)
        try journal.flush()
        // A write cut short announces a hand-over that had not happened yet.
        let handle = try FileHandle(forWritingTo: url)
        handle.seekToEndOfFile()
        handle.write(Data("S \(signers[1].key.prefix(10))".utf8))
        try handle.close()
        var recovery = HandoverJournal.recover([url])
        #expect(recovery.handed == Set(signers.map(\.key)))
        #expect(recovery.accepted == [signers[0].key])
        try journal.rewrite([(.handed, signers[2].key)])
        recovery = HandoverJournal.recover([url])
        #expect(recovery.handed == [signers[2].key] && recovery.accepted.isEmpty && recovery.covers("thanks"))
        #expect(journal.size == (try Data(contentsOf: url)).count)
        journal.remove()
        #expect(HandoverJournal.files(in: folder.url).journals.isEmpty)
    }

    @Test func recipientsReadBackWithoutFoundationMatchFoundationsReading() throws {
        let values = ["Ana Lima", "", "quote \" and backslash \\", "tab\tline\nbreak\rcr", "\u{01}\u{1F}ctl", "Zoë 日本語 👩🏽‍💻", "{\"not\": [json]}"]
        for value in values {
            var body = CanonicalObjectWriter()
            body.strings("consent", ["updates", value])
            body.object("fields", ["region": value, "zone": "Lyon"])
            body.string("source", "kiosk")
            var data = CanonicalObjectWriter()
            data.string("email", "ana@example.org")
            data.object("fields", ["phone": value])
            data.string("name", value)
            let bodyText = body.finish(), dataText = data.finish()
            #expect(CanonicalJSONReader.object(bodyText) != nil, "\(bodyText)")
            let fast = Ledger.recipient(seq: 7, key: "k", body: bodyText, data: dataText)
            // What Foundation's parser reads from the same text.
            let parsedBody = Ledger.jsonObject(bodyText), parsedData = Ledger.jsonObject(dataText)
            var fields = parsedBody["fields"] as? [String: String] ?? [:]
            fields.merge(parsedData["fields"] as? [String: String] ?? [:]) { a, _ in a }
            #expect(fast.name == parsedData["name"] as? String && fast.email == "ana@example.org")
            #expect(fast.fields == fields && fast.consents == parsedBody["consent"] as? [String])
        }
        // Anything the writer does not write is read by Foundation's parser instead.
        #expect(CanonicalJSONReader.object(#"{"n":5}"#) == nil)
        #expect(CanonicalJSONReader.object(#"{"a":"\u00e9"}"#) == nil)
        #expect(CanonicalJSONReader.object(#"{"a":"x"} "#) == nil)
        let fallback = Ledger.recipient(seq: 1, key: "k", body: #"{"fields":{"region":"Lyon"},"n":5}"#, data: #"{"email":"a@b.example","name":"\u00c9va"}"#)
        #expect(fallback.name == "Éva" && fallback.fields == ["region": "Lyon"])
    }
}
