import Foundation
import Testing
@testable import MusterKit

/// A mailbox held in memory: what the processor fetched and moved, and a connection that
/// drops on request.
final class ScriptedMailbox: MailboxAccess, @unchecked Sendable {
    private let lock = NSLock()
    var validity: UInt64 = 7
    var messages: [UInt64: [UInt8]] = [:]
    var folders: [UInt64: String] = [:]
    var fetched: [UInt64] = []
    /// Each `move(uids:to:)` call: the batches, in order.
    var batches: [(folder: String, uids: [UInt64])] = []
    /// Throws a dropped connection on this move call (counted from 1), once.
    var dropOnMove: Int?
    /// Throws a dropped connection when this UID is fetched, once.
    var dropOnFetch: UInt64?
    /// While true, every move fails as on a connection that cannot be opened again.
    var unreachable = false
    private var moves = 0

    func add(_ uid: UInt64, _ text: String) { messages[uid] = Array(text.utf8) }
    func add(_ uid: UInt64, bytes: [UInt8]) { messages[uid] = bytes }

    func listUIDs() throws -> (validity: UInt64, uids: [UInt64]) {
        lock.withLock { (validity, messages.keys.filter { folders[$0] == nil }.sorted()) }
    }

    func fetch(uid: UInt64, limit: Int) throws -> [UInt8] {
        try lock.withLock {
            fetched.append(uid)
            if dropOnFetch == uid {
                dropOnFetch = nil
                throw MailboxError.connection("the connection was lost while fetching")
            }
            guard let bytes = messages[uid] else { throw MailboxError.protocolError("no UID \(uid)") }
            if bytes.count > limit { throw MailboxError.tooLarge(uid: uid) }
            return bytes
        }
    }

    func move(uids: [UInt64], to folder: String) throws {
        try lock.withLock {
            moves += 1
            if unreachable { throw MailboxError.connection("cannot reach the server") }
            if let drop = dropOnMove, drop == moves {
                dropOnMove = nil
                throw MailboxError.connection("the server closed the connection")
            }
            batches.append((folder, uids))
            for uid in uids { folders[uid] = folder }
        }
    }

    func folder(_ uid: UInt64) -> String? { lock.withLock { folders[uid] } }
}

/// A workspace with one campaign whose ledger has signers and a sent template, and the
/// tokens of their messages.
struct InboxWorld {
    let folder: TemporaryFolder
    let workspace: Workspace
    let ledger: Ledger
    let signers: [Recipient]
    let key: MailTokenKey
    let clock = FixedClock(Timestamp.parse("2026-12-03T08:00:00Z")!)

    init(slug: String = "fair-rates", signerCount: Int = 3) throws {
        folder = try TemporaryFolder()
        workspace = Workspace(root: folder.url)
        try folder.write("muster.yaml", "sender: Fair Rates <campaign@fairrates.example>\n")
        try folder.write("campaigns/\(slug)/campaign.yaml", "title: Fair rates\n")
        ledger = try #require(try Ledger.open(workspace.root.appendingPathComponent("campaigns/\(slug)/ledger.sqlite"), create: true))
        for index in 0..<signerCount {
            let input = SignatureInput(name: "Signer \(index + 1)", email: "s\(index + 1)@example.org",
                                       fields: ["region": "Lyon", "phone": "06"], consents: ["updates"])
            _ = try ledger.append(try input.validated(against: sampleManifest()), at: clock.now())
        }
        signers = try ledger.mailableSigners()
        try ledger.enqueue(template: "thanks", recipients: signers, at: clock.now())
        try ledger.updateOutbox(template: "thanks", signers.map { .init(recipient: $0.key, state: .sent, reply: "250 ok", countsAttempt: true) },
                                at: clock.now())
        key = try ledger.mailTokenKey()
    }

    func token(_ index: Int, template: String = "thanks", campaign: String = "fair-rates") -> String {
        key.token(campaign: campaign, template: template, recipient: signers[index].key).text
    }

    func messageID(_ index: Int) -> String { "muster.\(token(index))@fairrates.example" }

    /// A corpus file with its placeholders filled for signer `index`.
    static func fixture(_ name: String, messageID: String, envelope: String = "campaign@fairrates.example",
                        recipient: String = "s1@example.org") throws -> String {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/bounces/\(name)")
        let text = String(decoding: try Data(contentsOf: url), as: UTF8.self)
        return text.replacingOccurrences(of: "{{MESSAGE_ID}}", with: messageID).replacingOccurrences(of: "{{ENVELOPE}}", with: envelope)
            .replacingOccurrences(of: "{{RCPT}}", with: recipient)
    }

    func fixture(_ name: String, signer index: Int = 0, verp: Bool = false) throws -> String {
        try Self.fixture(name, messageID: messageID(index),
                         envelope: verp ? VERP.address(base: "bounces@fairrates.example", token: token(index)) : "campaign@fairrates.example",
                         recipient: signers[index].email)
    }

    var options: InboxOptions {
        var options = InboxOptions()
        let now = clock.now()
        options.now = { now }
        return options
    }

    func run(_ mailbox: ScriptedMailbox, _ options: InboxOptions? = nil) throws -> InboxSummary {
        try InboxProcessor.run(workspace: workspace, mailbox: mailbox, options: options ?? self.options)
    }

    func suppression(_ index: Int) throws -> SuppressionReason? {
        try ledger.suppression(canonicalEmail: signers[index].email)
    }
}

@Suite struct InboxCorpusTests {
    /// Every corpus shape: what it is, and whom it suppresses.
    @Test(arguments: [
        ("rfc3464-hard.eml", "hard", "5.1.1", true),
        ("postfix-hard.eml", "hard", "5.1.1", true),
        ("exim-hard.eml", "hard", "5.1.1", true),
        ("qmail-hard.eml", "hard", "5.1.1", true),
        ("exchange-hard.eml", "hard", "5.1.10", true),
        ("gmail-hard.eml", "hard", "5.1.1", true),
        ("yahoo-hard.eml", "hard", nil, true),
        ("arf-complaint.eml", "complaint", nil, true),
        ("postfix-mailbox-full.eml", "soft", "5.2.2", false),
        ("postfix-delayed.eml", "delayed", "4.4.1", false),
        ("autoreply-rfc3834.eml", "auto_reply", nil, false),
        ("vacation-subject.eml", "auto_reply", nil, false),
    ] as [(String, String, String?, Bool)])
    func shape(file: String, kind: String, status: String?, suppresses: Bool) throws {
        let world = try InboxWorld()
        let mailbox = ScriptedMailbox()
        mailbox.add(1, try world.fixture(file, signer: 1))
        let summary = try world.run(mailbox)
        let action = try #require(summary.actions.first)
        #expect(action.kind == kind, "\(file): \(action.reason)")
        #expect(action.status == status, "\(file)")
        #expect(action.suppressed == suppresses, "\(file)")
        #expect(action.campaign == "fair-rates" && action.template == "thanks", "\(file)")
        #expect(mailbox.folder(1) == "muster/processed", "\(file)")
        // Only the signer the token names: never the others.
        #expect(try (world.suppression(1) != nil) == suppresses, "\(file)")
        #expect(try world.suppression(0) == nil && world.suppression(2) == nil, "\(file)")
        if kind == "complaint" { #expect(try world.suppression(1) == .complaint) }
    }

    @Test func verpTokenTiesAProseBounceWithoutAnyMessageID() throws {
        let world = try InboxWorld()
        let mailbox = ScriptedMailbox()
        mailbox.add(1, try world.fixture("verp-only-prose.eml", signer: 2, verp: true))
        let summary = try world.run(mailbox)
        #expect(summary.hard == 1 && summary.suppressedNow == 1)
        #expect(try world.suppression(2) == .bounce)
        // Without the VERP address the same prose ties to nothing.
        let other = try InboxWorld()
        let plain = ScriptedMailbox()
        plain.add(1, try other.fixture("verp-only-prose.eml", signer: 2, verp: false))
        let unrecognised = try other.run(plain)
        #expect(unrecognised.unrecognised == 1 && unrecognised.suppressedNow == 0)
        #expect(plain.folder(1) == "muster/unrecognised")
    }

    @Test func verpWinsOverTheMessageIDOfTheProse() throws {
        let world = try InboxWorld()
        // The VERP address names signer 2; the quoted Message-ID names signer 0.
        let text = try InboxWorld.fixture("exim-hard.eml", messageID: world.messageID(0),
                                          envelope: VERP.address(base: "bounces@fairrates.example", token: world.token(2)),
                                          recipient: world.signers[0].email)
        let mailbox = ScriptedMailbox()
        mailbox.add(1, text)
        _ = try world.run(mailbox)
        #expect(try world.suppression(2) == .bounce)
        #expect(try world.suppression(0) == nil)
    }

    @Test func unsubscribeByMailtoRecordsAnOptOut() throws {
        let world = try InboxWorld()
        let mailbox = ScriptedMailbox()
        mailbox.add(1, try world.fixture("unsubscribe-mailto.eml", signer: 1))
        let summary = try world.run(mailbox)
        #expect(summary.unsubscribes == 1 && summary.suppressedNow == 1)
        #expect(try world.ledger.isOptedOut(canonicalEmail: "s2@example.org"))
        #expect(try !world.ledger.isOptedOut(canonicalEmail: "s1@example.org"))
        #expect(try world.ledger.mailableSigners().map(\.email) == ["s1@example.org", "s3@example.org"])
        #expect(try world.ledger.verify().ok)
    }

    @Test func unrelatedMailIsLeftAlone() throws {
        let world = try InboxWorld()
        let mailbox = ScriptedMailbox()
        mailbox.add(1, try world.fixture("unrelated.eml"))
        let summary = try world.run(mailbox)
        #expect(summary.untouched == 1 && summary.actions[0].folder == nil)
        #expect(mailbox.folder(1) == nil)
    }
}

@Suite struct InboxForgeryTests {
    func expectNothingSuppressed(_ world: InboxWorld, _ text: String, file: String) throws {
        let mailbox = ScriptedMailbox()
        mailbox.add(1, text)
        let summary = try world.run(mailbox)
        #expect(summary.unrecognised == 1, "\(file): \(summary.actions.first?.reason ?? "")")
        #expect(summary.suppressedNow == 0)
        #expect(mailbox.folder(1) == "muster/unrecognised")
        for index in world.signers.indices { #expect(try world.suppression(index) == nil) }
        #expect(try world.ledger.mailableSigners().count == world.signers.count)
    }

    @Test func aBounceWithoutMustersMessageIDSuppressesNobody() throws {
        let world = try InboxWorld()
        // A real signer's address in the prose and the DSN, a Message-ID that is not muster's.
        try expectNothingSuppressed(world, try InboxWorld.fixture("forged-no-token.eml", messageID: "20261203.abc@fairrates.example",
                                                                  recipient: world.signers[0].email), file: "no token")
    }

    @Test func aTokenOfAnotherWorkspaceOrCampaignSuppressesNobody() throws {
        let world = try InboxWorld()
        let elsewhere = try InboxWorld()  // same addresses, same slug, another ledger key
        try expectNothingSuppressed(world, try InboxWorld.fixture("postfix-hard.eml", messageID: elsewhere.messageID(0),
                                                                  recipient: world.signers[0].email), file: "other key")
        // This ledger's key, but made for another campaign's slug.
        let other = "muster.\(world.token(0, campaign: "other-campaign"))@fairrates.example"
        try expectNothingSuppressed(world, try InboxWorld.fixture("postfix-hard.eml", messageID: other, recipient: world.signers[0].email),
                                    file: "other campaign")
    }

    @Test func aTamperedTokenSuppressesNobody() throws {
        let world = try InboxWorld()
        var token = Array(world.token(0))
        token[30] = token[30] == "a" ? "b" : "a"
        try expectNothingSuppressed(world, try InboxWorld.fixture("gmail-hard.eml", messageID: "muster.\(String(token))@fairrates.example",
                                                                  recipient: world.signers[0].email), file: "tampered")
    }

    @Test func aTokenForAnAddressThatNeverSignedSuppressesNobody() throws {
        let world = try InboxWorld()
        let stranger = try world.ledger.recipientKey(email: "never@example.org")
        let token = world.key.token(campaign: "fair-rates", template: "thanks", recipient: stranger).text
        try expectNothingSuppressed(world, try InboxWorld.fixture("rfc3464-hard.eml", messageID: "muster.\(token)@fairrates.example",
                                                                  recipient: "never@example.org"), file: "never signed")
    }

    @Test(arguments: ["malformed-no-boundary.eml", "invalid-utf8.eml"])
    func malformedMailIsUnrecognised(file: String) throws {
        let world = try InboxWorld()
        // The file's bytes as they are (Latin-1 keeps every byte), the placeholder filled.
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/bounces/\(file)")
        let raw = try #require(String(data: try Data(contentsOf: url), encoding: .isoLatin1))
        let bytes = Array(try #require(raw.replacingOccurrences(of: "{{MESSAGE_ID}}", with: world.messageID(0)).data(using: .isoLatin1)))
        #expect(file != "invalid-utf8.eml" || String(validating: bytes, as: UTF8.self) == nil)
        let mailbox = ScriptedMailbox()
        mailbox.add(1, bytes: bytes)
        let summary = try world.run(mailbox)
        #expect(summary.unrecognised == 1 && summary.suppressedNow == 0, "\(file): \(summary.actions.first?.reason ?? "")")
        #expect(mailbox.folder(1) == "muster/unrecognised")
        for index in world.signers.indices { #expect(try world.suppression(index) == nil) }
    }

    @Test func hugeAndGarbageMessagesNeverCrash() throws {
        let world = try InboxWorld()
        let mailbox = ScriptedMailbox()
        mailbox.add(1, String(repeating: "x", count: 2_000))
        var random = SystemRandomNumberGenerator()
        mailbox.add(2, bytes: (0..<5_000).map { _ in UInt8.random(in: 0...255, using: &random) })
        // 70 levels of nested multiparts.
        var nested = "From: MAILER-DAEMON@x.example\nContent-Type: multipart/mixed; boundary=b0\n\n"
        for level in 1..<70 { nested += "--b\(level - 1)\nContent-Type: multipart/mixed; boundary=b\(level)\n\n" }
        mailbox.add(3, nested)
        mailbox.add(4, try world.fixture("postfix-hard.eml") + String(repeating: "y", count: 4_000))
        var options = world.options
        options.maxMessageBytes = 3_000
        let summary = try world.run(mailbox, options)
        #expect(summary.scanned == 4 && summary.suppressedNow == 0)
        #expect(summary.actions.first { $0.uid == 4 }?.kind == "unrecognised")
        #expect(mailbox.folder(4) == "muster/unrecognised")
        for index in world.signers.indices { #expect(try world.suppression(index) == nil) }
    }
}

@Suite struct InboxSuppressionTests {
    /// Three mailbox-full bounces of signer 0, each its own message (UIDs 1...3).
    static func threeSoftBounces(_ world: InboxWorld) throws -> ScriptedMailbox {
        let mailbox = ScriptedMailbox()
        for uid in 1...3 {
            let text = try world.fixture("postfix-mailbox-full.eml", signer: 0)
                .replacingOccurrences(of: "Message-Id: <20261203080001.4F2A11C0123@", with: "Message-Id: <soft\(uid)@")
            mailbox.add(UInt64(uid), text)
        }
        return mailbox
    }

    @Test func softBouncesSuppressAfterTheLimitAndAreCountedOnceAcrossADroppedConnection() throws {
        let world = try InboxWorld()
        let mailbox = try Self.threeSoftBounces(world)
        // The connection drops while the third message is fetched, and the server stays
        // unreachable: the two processed messages cannot be moved in this run.
        mailbox.dropOnFetch = 3
        mailbox.unreachable = true
        #expect(throws: MailboxError.self) { try world.run(mailbox) }
        #expect(mailbox.folder(1) == nil && mailbox.folder(2) == nil, "nothing moved")
        #expect(try world.suppression(0) == nil)
        // The rerun moves the first two without counting them again, then counts the third.
        mailbox.unreachable = false
        let rerun = try world.run(mailbox)
        #expect(rerun.alreadyProcessed == 2 && rerun.soft == 1)
        #expect(try world.suppression(0) == .softBounce)
        #expect(rerun.suppressedNow == 1)
        #expect((1...3).allSatisfy { mailbox.folder($0) == "muster/processed" })
        let database = try SQLiteDatabase(path: world.ledger.url.path)
        #expect(try database.scalarInt("SELECT count(*) FROM bounces WHERE kind = 'soft'") == 3)
        #expect(try database.scalarInt("SELECT count(*) FROM inbox_processed") == 3)
        // Nothing personal in the new tables.
        #expect(try database.scalarInt("SELECT count(*) FROM bounces WHERE recipient LIKE '%@%'") == 0)
        #expect(try world.ledger.verify().ok)
    }

    @Test func aDropMidFetchStillMovesWhatWasProcessedWhenTheServerAnswersAgain() throws {
        let world = try InboxWorld()
        let mailbox = try Self.threeSoftBounces(world)
        mailbox.dropOnFetch = 3
        #expect(throws: MailboxError.self) { try world.run(mailbox) }
        // The batch of what was processed went out before the command gave up.
        #expect(mailbox.batches.map(\.uids) == [[1, 2]])
        #expect(mailbox.folder(1) == "muster/processed" && mailbox.folder(2) == "muster/processed" && mailbox.folder(3) == nil)
        #expect(try world.suppression(0) == nil)
        let rerun = try world.run(mailbox)
        #expect(rerun.scanned == 1 && rerun.alreadyProcessed == 0 && rerun.soft == 1 && rerun.suppressedNow == 1)
        let database = try SQLiteDatabase(path: world.ledger.url.path)
        #expect(try database.scalarInt("SELECT count(*) FROM bounces WHERE kind = 'soft'") == 3)
    }

    @Test func aDropOnTheMoveItselfIsRetriedOnceAndStillReported() throws {
        let world = try InboxWorld()
        let mailbox = try Self.threeSoftBounces(world)
        mailbox.dropOnMove = 1
        #expect(throws: MailboxError.self) { try world.run(mailbox) }
        #expect((1...3).allSatisfy { mailbox.folder($0) == "muster/processed" })
        #expect(try world.suppression(0) == .softBounce)
        let rerun = try world.run(mailbox)
        #expect(rerun.scanned == 0)
        let database = try SQLiteDatabase(path: world.ledger.url.path)
        #expect(try database.scalarInt("SELECT count(*) FROM bounces WHERE kind = 'soft'") == 3)
    }

    /// More messages than one batch, bounces, forgeries and other mail interleaved: every
    /// processed message lands in its folder, in batches of at most `moveBatchSize`, one
    /// move per folder per batch; the other mail is never part of a move.
    @Test func moreThanOneBatchMovesEverythingToItsFolderInFewMoves() throws {
        let world = try InboxWorld(signerCount: 8)
        let mailbox = ScriptedMailbox()
        var expected: [UInt64: String?] = [:]
        var uid: UInt64 = 0
        for index in 0..<8 {
            uid += 1
            // Each notice its own Message-ID (the first one: the notice's, not the quoted message's).
            var bounce = try world.fixture(index % 2 == 0 ? "postfix-hard.eml" : "rfc3464-hard.eml", signer: index)
            let own = try #require(bounce.range(of: "Message-Id: <", options: .caseInsensitive))
            bounce.replaceSubrange(own, with: "Message-ID: <b\(index).")
            mailbox.add(uid, bounce)
            expected[uid] = "muster/processed"
            uid += 1
            mailbox.add(uid, try InboxWorld.fixture("forged-no-token.eml", messageID: "forged\(index)@fairrates.example",
                                                    recipient: world.signers[index].email)
                .replacingOccurrences(of: "Message-ID: <", with: "Message-ID: <f\(index)."))
            expected[uid] = "muster/unrecognised"
            if index % 3 == 0 {
                uid += 1
                mailbox.add(uid, try world.fixture("unrelated.eml"))
                expected[uid] = .some(nil)
            }
        }
        var options = world.options
        options.moveBatchSize = 5
        let summary = try world.run(mailbox, options)
        #expect(summary.hard == 8 && summary.unrecognised == 8 && summary.untouched == 3, "\(summary.actions.map(\.reason))")
        for (uid, folder) in expected { #expect(mailbox.folder(uid) == folder, "UID \(uid)") }
        let moved = mailbox.batches.flatMap(\.uids)
        #expect(moved.count == 16 && Set(moved).count == 16, "each processed message moved once")
        #expect(mailbox.batches.count < 16, "batched, not one move a message: \(mailbox.batches.map(\.uids))")
        // Flushed whenever 5 waited: each flush moves at most 5, in at most two moves.
        var waiting = 0
        for batch in mailbox.batches {
            #expect(batch.uids == batch.uids.sorted() && !batch.uids.isEmpty)
            waiting += batch.uids.count
            #expect(waiting <= 5)
            if waiting == 5 { waiting = 0 }
        }
        // The last flush comes at the end of the run: nothing is left behind.
        #expect(try mailbox.listUIDs().uids.count == 3)
        for index in 0..<8 { #expect(try world.suppression(index) == .bounce) }
    }

    @Test func twoSoftBouncesDoNotSuppressAndResetStartsAgain() throws {
        let world = try InboxWorld()
        let mailbox = ScriptedMailbox()
        for uid in 1...2 {
            mailbox.add(UInt64(uid), try world.fixture("postfix-mailbox-full.eml", signer: 0)
                .replacingOccurrences(of: "Message-Id: <20261203080001.4F2A11C0123@", with: "Message-Id: <soft\(uid)@"))
        }
        _ = try world.run(mailbox)
        #expect(try world.suppression(0) == nil)
        #expect(try !world.ledger.resetBounces(canonicalEmail: "s1@example.org", at: world.clock.now()))
        mailbox.add(3, try world.fixture("postfix-mailbox-full.eml", signer: 0)
            .replacingOccurrences(of: "Message-Id: <20261203080001.4F2A11C0123@", with: "Message-Id: <soft3@"))
        _ = try world.run(mailbox)
        #expect(try world.suppression(0) == nil)  // only one counts since the reset
        // A hard bounce suppresses at once; the reset lifts it.
        mailbox.add(4, try world.fixture("postfix-hard.eml", signer: 0))
        _ = try world.run(mailbox)
        #expect(try world.suppression(0) == .bounce)
        #expect(try world.ledger.mailableSigners().map(\.email) == ["s2@example.org", "s3@example.org"])
        #expect(try world.ledger.resetBounces(canonicalEmail: "s1@example.org", at: world.clock.now()))
        #expect(try world.suppression(0) == nil)
    }

    @Test func aDryRunWritesAndMovesNothing() throws {
        let world = try InboxWorld()
        let mailbox = ScriptedMailbox()
        mailbox.add(1, try world.fixture("postfix-hard.eml", signer: 0))
        mailbox.add(2, try world.fixture("unsubscribe-mailto.eml", signer: 1))
        var options = world.options
        options.dryRun = true
        let summary = try world.run(mailbox, options)
        #expect(summary.dryRun && summary.hard == 1 && summary.unsubscribes == 1 && summary.suppressedNow == 2)
        #expect(summary.actions.map(\.folder) == ["muster/processed", "muster/processed"])
        #expect(mailbox.folder(1) == nil && mailbox.folder(2) == nil)
        #expect(try world.suppression(0) == nil)
        #expect(try !world.ledger.isOptedOut(canonicalEmail: "s2@example.org"))
        // Nothing in the summary is an address.
        let json = String(decoding: try JSONEncoder().encode(summary), as: UTF8.self)
        #expect(!json.contains("@"))
    }

    @Test func smtpRejectionsSuppressOnlyForRecipientFailures() {
        #expect(Ledger.smtpBounceStatus(SMTPFailure(replyCode: 550, replyText: "5.1.1 <x@y>: user unknown", detail: "")) == "5.1.1")
        #expect(Ledger.smtpBounceStatus(SMTPFailure(replyCode: 550, replyText: "no such user", detail: "")) == "550")
        #expect(Ledger.smtpBounceStatus(SMTPFailure(replyCode: 554, replyText: "5.6.0 message content rejected", detail: "")) == nil)
        #expect(Ledger.smtpBounceStatus(SMTPFailure(replyCode: 452, replyText: "4.2.2 mailbox full", detail: "")) == nil)
        #expect(Ledger.smtpBounceStatus(SMTPFailure(detail: "invalid SMTP envelope")) == nil)
    }

    @Test func tokensRoundTripAndVERPAddressesFit() throws {
        let world = try InboxWorld()
        let token = world.token(0)
        #expect(token.count == MailToken.textLength)
        #expect(token.allSatisfy { $0.isLowercase || $0.isNumber })
        #expect(!token.contains(world.signers[0].key.prefix(16)))
        let parsed = try #require(MailToken(text: token.uppercased()))
        #expect(world.key.verify(parsed, campaign: "fair-rates", template: "thanks", recipient: world.signers[0].key))
        #expect(!world.key.verify(parsed, campaign: "fair-rates", template: "thanks", recipient: world.signers[1].key))
        #expect(!world.key.verify(parsed, campaign: "fair-rates", template: "reminder", recipient: world.signers[0].key))
        let address = VERP.address(base: "bounces@fairrates.example", token: token)
        #expect(address.split(separator: "@")[0].utf8.count <= 64)
        #expect(VERP.problem("bounces@fairrates.example") == nil)
        #expect(VERP.problem("bounces+x@fairrates.example") != nil)
        #expect(VERP.problem(String(repeating: "b", count: 28) + "@fairrates.example") != nil)
        #expect(VERP.problem("nobody") != nil)
    }
}

@Suite struct InboxMutationTests {
    /// Every corpus file cut short, with bytes flipped, lines dropped or doubled: the
    /// parser never traps, and nothing but a token that checks ever suppresses.
    @Test func mutatedCorpusNeverCrashesAndNeverSuppressesWithoutAToken() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/bounces")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".eml") }.sorted()
        var generator = SystemRandomNumberGenerator()
        var parsed = 0
        for file in files {
            // Filled with a Message-ID that is not muster's: nothing may suppress.
            let text = try InboxWorld.fixture(file, messageID: "20261203.x@fairrates.example")
            let original = Array(text.utf8)
            for round in 0..<60 {
                var bytes = original
                switch round % 4 {
                case 0: bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &generator)))
                case 1:
                    for _ in 0..<8 where !bytes.isEmpty { bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator) }
                case 2:
                    var lines = bytes.split(separator: 10, omittingEmptySubsequences: false)
                    if !lines.isEmpty { lines.remove(at: Int.random(in: 0..<lines.count, using: &generator)) }
                    bytes = Array(lines.joined(separator: [10]))
                default:
                    var lines = bytes.split(separator: 10, omittingEmptySubsequences: false)
                    if !lines.isEmpty { let i = Int.random(in: 0..<lines.count, using: &generator); lines.insert(lines[i], at: i) }
                    bytes = Array(lines.joined(separator: [10]))
                }
                let message = InboxMessage(bytes: bytes)
                let verdict = BounceClassifier.classify(message)
                #expect(verdict.verpTokens.isEmpty && verdict.idTokens.isEmpty, "\(file) round \(round)")
                parsed += 1
            }
        }
        #expect(parsed == files.count * 60)
    }
}

@Suite struct InboxPeopleMailTests {
    /// People's mail that mentions bounces, holidays or unsubscribing in passing is not
    /// muster's business: it stays where it is.
    @Test(arguments: [
        "Subject: Returned mail from the printer\nFrom: Bea <bea@example.net>\n\nThe 550 flyers came back: 5.1.1 of them smudged.\n",
        "Subject: Re: Thank you for signing - I'm on vacation next week\nFrom: Ana <ana@example.net>\n\nCan we talk after?\n",
        "Subject: Undeliverable petition boxes?\nFrom: Cy <cy@example.net>\n\nThe post office says permanent error.\n",
        "Subject: Re: how do I unsubscribe my friend\nFrom: Di <di@example.net>\n\nShe asked me.\n",
    ])
    func peoplesMailIsLeftAlone(text: String) throws {
        let world = try InboxWorld()
        let mailbox = ScriptedMailbox()
        mailbox.add(1, "Message-ID: <p@example.net>\nIn-Reply-To: <\(world.messageID(0))>\n" + text)
        let summary = try world.run(mailbox)
        #expect(summary.untouched == 1, "\(summary.actions.first?.reason ?? "")")
        #expect(mailbox.folder(1) == nil)
        #expect(try world.suppression(0) == nil && !world.ledger.isOptedOut(canonicalEmail: "s1@example.org"))
    }
}

/// A mailbox whose every call takes at least `delay`: the server's share of the time.
final class SlowMailbox: MailboxAccess, @unchecked Sendable {
    let inner: ScriptedMailbox
    let delay: TimeInterval
    init(_ inner: ScriptedMailbox, delay: TimeInterval) { self.inner = inner; self.delay = delay }
    func listUIDs() throws -> (validity: UInt64, uids: [UInt64]) { Thread.sleep(forTimeInterval: delay); return try inner.listUIDs() }
    func fetch(uid: UInt64, limit: Int) throws -> [UInt8] { Thread.sleep(forTimeInterval: delay); return try inner.fetch(uid: uid, limit: limit) }
    func move(uids: [UInt64], to folder: String) throws { Thread.sleep(forTimeInterval: delay); try inner.move(uids: uids, to: folder) }
}

@Suite struct InboxTimingsTests {
    /// The time waiting on the server lands in the IMAP parts (each at least the calls'
    /// sleeps), never in `processing`; the parts add up to the total. Lower bounds only.
    @Test func serverWaitIsCountedAsIMAPNotProcessing() throws {
        let world = try InboxWorld()
        let scripted = ScriptedMailbox()
        scripted.add(1, try world.fixture("postfix-hard.eml", signer: 0))
        scripted.add(2, try world.fixture("rfc3464-hard.eml", signer: 1))
        scripted.add(3, try InboxWorld.fixture("unrelated.eml", messageID: "<x@example.net>"))
        let delay = 0.05
        let summary = try InboxProcessor.run(workspace: world.workspace, mailbox: SlowMailbox(scripted, delay: delay), options: world.options)
        let timings = summary.timings
        #expect(summary.hard == 2 && summary.untouched == 1)
        #expect(timings.imapList >= delay)
        #expect(timings.imapFetch >= 3 * delay)
        #expect(timings.imapMove >= delay)  // the two bounces move in one batch; the unrelated message stays
        #expect(timings.total >= timings.imap)
        #expect(abs(timings.processing - (timings.total - timings.imap)) < 1e-9)
        #expect(timings.processing >= 0)
        // The --json keys the benchmark and docs/reference.md name.
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(summary)) as? [String: Any]
        let keys = Set((json?["timings"] as? [String: Any])?.keys.map { $0 } ?? [])
        #expect(keys == ["total_seconds", "imap_list_seconds", "imap_fetch_seconds", "imap_move_seconds", "processing_seconds"])
    }
}

@Suite struct IMAPUIDSetTests {
    /// Reads a UID set back, independently of the code under test.
    static func expand(_ set: String) -> [UInt64] {
        guard !set.isEmpty else { return [] }
        return set.split(separator: ",").flatMap { part -> [UInt64] in
            let bounds = part.split(separator: ":").map { UInt64($0)! }
            return bounds.count == 1 ? bounds : Array(bounds[0]...bounds[1])
        }
    }

    @Test func runsBecomeRangesAndTheRestStaysAsItIs() {
        #expect(IMAPUIDSet.compress([1, 2, 3, 5, 7, 8]) == "1:3,5,7:8")
        #expect(IMAPUIDSet.compress(Array(1...40) + [42] + Array(50...60)) == "1:40,42,50:60")
        #expect(IMAPUIDSet.compress([9, 3, 4, 3, 9, 10]) == "3:4,9:10", "sorted and deduplicated")
        #expect(IMAPUIDSet.compress([7]) == "7")
        #expect(IMAPUIDSet.compress([]) == "")
        #expect(IMAPUIDSet.compress([0, 1]) == "1", "UID 0 does not exist")
        #expect(IMAPUIDSet.compress([1, 3, 5]) == "1,3,5", "no range across a gap")
        #expect(IMAPUIDSet.compress([4_294_967_294, 4_294_967_295]) == "4294967294:4294967295")
    }

    @Test func compressionRoundTripsRandomSets() {
        var generator = SeededGenerator(seed: 13)
        for _ in 0..<300 {
            let count = Int.random(in: 0...200, using: &generator)
            let uids = (0..<count).map { _ in UInt64.random(in: 1...300, using: &generator) }
            let set = IMAPUIDSet.compress(uids)
            #expect(Self.expand(set) == Array(Set(uids)).sorted(), "\(set)")
            #expect(!set.contains(",,") && !set.hasPrefix(",") && !set.hasSuffix(","))
        }
    }

    @Test func chunksBoundEveryCommand() {
        let uids = (1...1_200).map { UInt64($0 * 2) }  // no two adjacent: the longest set
        let chunks = IMAPUIDSet.chunks(uids.reversed(), size: IMAPMailbox.maxUIDsPerCommand)
        #expect(chunks.map(\.count) == [500, 500, 200])
        #expect(chunks.flatMap { $0 } == uids, "sorted, nothing lost")
        let longest = chunks.map { "UID MOVE \(IMAPUIDSet.compress($0)) \"muster/processed\"".utf8.count }.max() ?? 0
        #expect(longest < 8_192, "\(longest) bytes")
        #expect(IMAPUIDSet.chunks([], size: 500).isEmpty)
        #expect(IMAPUIDSet.chunks([3, 3, 0], size: 0) == [[3]])
    }
}
